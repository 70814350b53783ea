//! Lab 11 — Monte Carlo π and strided midpoint-rule π, serial vs threads
//! vs the process pool; every worker drawing the same random numbers, and
//! per-task seeds that make the result the same for any worker count.
//! Handout: docs/labs/11-montecarlo.md

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::montecarlo::{self, MAX_SAMPLES, MAX_TASKS, MonteCarloConfig};

/// Estimate π with random points and with the midpoint rule on threads
/// and worker processes, and seed the workers' generators right.
#[derive(Parser)]
#[command(name = "lab11-montecarlo", version)]
struct Args {
    /// Monte Carlo samples per run (at most 10^12).
    #[arg(long, default_value = "100_000_000", value_parser = |s: &str| parse_count(s, MAX_SAMPLES))]
    samples: u64,
    /// Samples per batch: each batch is one task with its own seed.
    #[arg(long, default_value = "1_000_000", value_parser = |s: &str| parse_count(s, MAX_SAMPLES))]
    batch: u64,
    /// Midpoint-rule steps per run (at most 10^12).
    #[arg(long, default_value = "50_000_000", value_parser = |s: &str| parse_count(s, MAX_SAMPLES))]
    steps: u64,
    /// The master seed every batch's seed is derived from.
    #[arg(long, default_value = "42")]
    seed: u64,
    /// Time 1..=WORKERS threads and processes (default: one per CPU).
    #[arg(long, value_parser = parse_workers)]
    workers: Option<usize>,
    /// Worker processes in the pitfall and fix demonstrations.
    #[arg(long, default_value = "4", value_parser = parse_workers)]
    demo_workers: usize,
    /// Timed runs per row (the report gives the median).
    #[arg(long, default_value = "5", value_parser = |s: &str| parse_count(s, 1000))]
    repeats: u64,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a pool worker runs its loop here and exits
    let args = Args::parse();
    if args.samples.div_ceil(args.batch) > MAX_TASKS {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--samples {} in --batch {} makes more than {MAX_TASKS} tasks: raise --batch",
                    args.samples, args.batch
                ),
            )
            .exit();
    }
    if args.samples < args.demo_workers as u64 {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                "--samples must be at least --demo-workers (each demo worker draws samples/demo-workers)",
            )
            .exit();
    }
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = MonteCarloConfig {
        samples: args.samples,
        batch: args.batch,
        steps: args.steps,
        master_seed: args.seed,
        max_workers: args.workers.unwrap_or_else(shmlab::cli::available_cpus),
        demo_workers: args.demo_workers,
        repeats: args.repeats as usize,
    };
    let report = montecarlo::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
