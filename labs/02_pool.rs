//! Lab 02 — the process pool: map, starmap, imap, imap_unordered,
//! apply_async, map_async; faults that never hang the caller; and what
//! chunksize buys on 10 000 tiny tasks.
//! Handout: docs/labs/02-pool.md

use std::process::ExitCode;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::pool::{self, PoolConfig};

/// Run the tutorials' Pool examples on worker processes, then time chunks.
#[derive(Parser)]
#[command(name = "lab02-pool", version)]
struct Args {
    /// Worker processes in the pool (default: one per CPU).
    #[arg(long, value_parser = parse_workers)]
    workers: Option<usize>,
    /// Tiny tasks per timed run.
    #[arg(long, default_value = "10_000", value_parser = |s: &str| parse_count(s, 10_000_000))]
    tasks: u64,
    /// Chunk sizes to time with map, comma-separated.
    #[arg(long, default_value = "1,100", value_delimiter = ',', value_parser = |s: &str| parse_count(s, 1_000_000))]
    chunksizes: Vec<u64>,
    /// Timed runs per row (the report gives the median).
    #[arg(long, default_value = "9", value_parser = |s: &str| parse_count(s, 1000))]
    repeats: u64,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a pool worker runs its loop here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = PoolConfig {
        workers: args.workers.unwrap_or_else(shmlab::cli::available_cpus),
        tasks: args.tasks as usize,
        chunksizes: args.chunksizes.iter().map(|&c| c as usize).collect(),
        repeats: args.repeats as usize,
        quiet: args.common.json,
    };
    let report = pool::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
