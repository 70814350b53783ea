//! Lab 07 — interleavings: every order in which W workers' `load; add;
//! store` steps can run, simulated on registers, and the ones that lose an
//! update; `--schedule` replays one step by step.
//! Handout: docs/labs/07-interleavings.md

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use shmlab::cli::{Common, parse_count, parse_interleaving_workers};
use shmlab::lessons::interleavings::{self, InterleavingsConfig};

/// Enumerate every interleaving of the racy increment's steps, predict,
/// then verify.
#[derive(Parser)]
#[command(name = "lab07-interleavings", version)]
struct Args {
    /// Workers, each doing `load; add; store` (1 to 4, named A to D)
    /// [default: 2, or read off --schedule].
    #[arg(long, value_parser = parse_interleaving_workers)]
    workers: Option<usize>,
    /// Increments per worker, 3 steps each (at most 1_000_000 interleavings
    /// in all: 2 workers up to 3, 3 or 4 workers 1) [default: 1, or read off
    /// --schedule].
    #[arg(long, value_parser = |s: &str| parse_count(s, 1000))]
    increments: Option<u64>,
    /// Replay one interleaving step by step, given as worker letters, one per
    /// step (e.g. AABABB; each worker 3 x increments times; the sizes not
    /// given are read off the letters).
    #[arg(long, value_name = "SPEC")]
    schedule: Option<String>,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // no workers here, but every lab starts the same way
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = match args.schedule {
        Some(schedule) => InterleavingsConfig::replay(schedule, args.workers, args.increments),
        None => InterleavingsConfig {
            workers: args.workers.unwrap_or(2),
            increments: args.increments.unwrap_or(1),
            schedule: None,
        },
    };
    // Whether the options fit together (the number of interleavings, a
    // schedule's letters) is known only once all are parsed; report it as a
    // usage error like the options' own.
    let report = interleavings::run(&config).unwrap_or_else(|e| {
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, e)
            .exit()
    });
    shmlab::report::emit(&report, args.common.json)
}
