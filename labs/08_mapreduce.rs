//! Lab 08 — the headline: sharing (locked, atomic, slots) versus not
//! sharing (map-reduce), at 1..=W workers, with a table and an SVG chart.
//! Handout: docs/labs/08-mapreduce.md

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::counting::Strategy;
use shmlab::lessons::mapreduce::{self, MapReduceConfig};

/// Count with every strategy, from a locked shared counter to map-reduce.
#[derive(Parser)]
#[command(name = "lab08-mapreduce", version)]
struct Args {
    /// Workers from 1 up to this (default: one per CPU).
    #[arg(long, value_parser = parse_workers)]
    max_workers: Option<usize>,
    /// Strategies to run, comma-separated (default: all seven).
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<Strategy>,
    /// Milliseconds each timed run should take, about.
    #[arg(long, default_value = "100", value_parser = |s: &str| parse_count(s, 10_000))]
    run_ms: u64,
    /// Timed runs per cell (the median is reported).
    #[arg(long, default_value = "3", value_parser = |s: &str| parse_count(s, 100))]
    repeats: u64,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "target/lab08-mapreduce.svg")]
    chart: PathBuf,
    /// Do not write a chart.
    #[arg(long)]
    no_chart: bool,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a pool worker runs its loop here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = MapReduceConfig {
        max_workers: args.max_workers.unwrap_or_else(shmlab::cli::available_cpus),
        strategies: if args.strategies.is_empty() {
            Strategy::ALL.to_vec()
        } else {
            args.strategies
        },
        run_time: Duration::from_millis(args.run_ms),
        repeats: args.repeats as usize,
        chart: (!args.no_chart).then_some(args.chart),
    };
    let report = mapreduce::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
