//! Lab 06 — per-worker slots, adjacent or padded (false sharing), and
//! logical vs physical cores: detect the topology, measure whether two
//! workers really get two cores, then compare the slots.
//! Handout: docs/labs/06-slots.md

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::slots::{self, SlotsConfig};

/// Count in per-worker slots, adjacent and padded, and say whether false
/// sharing can show on this machine.
#[derive(Parser)]
#[command(name = "lab06-slots", version)]
struct Args {
    /// Workers from 1 up to this (default: one per CPU, 2 to 4).
    #[arg(long, value_parser = parse_workers)]
    max_workers: Option<usize>,
    /// Milliseconds each timed run should take, about.
    #[arg(long, default_value = "40", value_parser = |s: &str| parse_count(s, 10_000))]
    run_ms: u64,
    /// Timed rounds (the median is reported).
    #[arg(long, default_value = "7", value_parser = |s: &str| parse_count(s, 100))]
    repeats: u64,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a pool worker runs its loop here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = SlotsConfig {
        max_workers: args
            .max_workers
            .unwrap_or_else(|| shmlab::cli::available_cpus().clamp(2, 4)),
        run_time: Duration::from_millis(args.run_ms),
        repeats: args.repeats as usize,
    };
    let report = slots::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
