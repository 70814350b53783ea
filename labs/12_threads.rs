//! Lab 12 — threads vs processes: the same CPU-bound work (strided pi
//! integration) on std threads, on rayon and on the process pool, with 1,
//! 2, … workers; speed-up and start-up cost.
//! Handout: docs/labs/12-threads.md

use std::process::ExitCode;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::threads::{self, MAX_STEPS, MIN_STEPS, ThreadsConfig};

/// Integration steps: MIN_STEPS..=MAX_STEPS, `_` allowed.
fn parse_steps(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    match n {
        n if n < MIN_STEPS => Err(format!(
            "at least {MIN_STEPS} steps (got {n}): fewer would time nothing but overhead"
        )),
        n if n > MAX_STEPS => Err(format!(
            "at most {MAX_STEPS} steps (got {n}): about 15 s per run of one worker"
        )),
        n => Ok(n),
    }
}

/// Time the same pi integration on threads, rayon and processes.
#[derive(Parser)]
#[command(name = "lab12-threads", version)]
struct Args {
    /// Integration steps for the whole of pi, split among the workers.
    #[arg(long, default_value = "80_000_000", value_parser = parse_steps)]
    steps: u64,
    /// Time 1, 2, ... up to this many workers (default: one per CPU).
    #[arg(long, value_parser = parse_workers)]
    max_workers: Option<usize>,
    /// Timed runs per engine and worker count (the report gives the median).
    #[arg(long, default_value = "3", value_parser = |s: &str| parse_count(s, 100))]
    repeats: u64,
    /// Start-up measurements per engine and worker count (median).
    #[arg(long, default_value = "10", value_parser = |s: &str| parse_count(s, 1000))]
    startup_runs: u64,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a pool worker runs its loop here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = ThreadsConfig {
        steps: args.steps,
        max_workers: args.max_workers.unwrap_or_else(shmlab::cli::available_cpus),
        repeats: args.repeats as usize,
        startup_runs: args.startup_runs as usize,
    };
    let report = threads::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
