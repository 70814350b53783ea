//! Lab 04 — the race: W workers add 1 to one shared counter N times each,
//! racy vs atomic vs locked. Handout: docs/labs/04-race.md

use std::process::ExitCode;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::race::{self, RaceConfig};

/// Lose updates on a shared counter, then stop losing them.
#[derive(Parser)]
#[command(name = "lab04-race", version)]
struct Args {
    /// Worker processes.
    #[arg(long, default_value = "2", value_parser = parse_workers)]
    workers: usize,
    /// Increments per worker.
    #[arg(long, default_value = "10_000_000", value_parser = |s: &str| parse_count(s, 1 << 40))]
    increments: u64,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a worker process runs its task here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = RaceConfig {
        workers: args.workers,
        increments: args.increments,
    };
    let report = race::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
