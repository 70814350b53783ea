//! Lab 01 — processes: start and join workers, pids and exit status, a
//! global that is not shared, and what a worker costs to start.
//! Handout: docs/labs/01-processes.md

use std::process::ExitCode;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::processes::{self, ProcessesConfig};

/// Start worker processes and see what they share (nothing, by default).
#[derive(Parser)]
#[command(name = "lab01-processes", version)]
struct Args {
    /// Workers to start at once.
    #[arg(long, default_value = "4", value_parser = parse_workers)]
    workers: usize,
    /// Start+join runs to time.
    #[arg(long, default_value = "50", value_parser = |s: &str| parse_count(s, 100_000))]
    runs: u64,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a worker process runs its task here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = ProcessesConfig {
        workers: args.workers,
        runs: args.runs as usize,
    };
    let report = processes::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
