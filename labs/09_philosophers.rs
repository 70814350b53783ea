//! Lab 09 — dining philosophers across processes: the naive deadlock,
//! detected by a watchdog that names the wait-for cycle, then a fix.
//! Handout: docs/labs/09-philosophers.md

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shmlab::cli::{
    Common, parse_count, parse_millis, parse_philosophers, parse_seconds, parse_up_to,
};
use shmlab::lessons::philosophers::{self, PhilosophersConfig};
use shmlab::philosophers::{DinnerConfig, Strategy};

/// Deadlock, shown, detected, explained and broken.
#[derive(Parser)]
#[command(name = "lab09-philosophers", version)]
struct Args {
    /// How philosophers take forks.
    #[arg(long, value_enum, default_value = "naive")]
    strategy: Strategy,
    /// After a naive dinner, dine again with this strategy.
    #[arg(long, value_enum, default_value = "ordered")]
    fix: Strategy,
    /// Skip the second dinner.
    #[arg(long)]
    no_fix: bool,
    /// Philosophers (and forks), 2 to 64.
    #[arg(long, default_value = "5", value_parser = parse_philosophers)]
    philosophers: usize,
    /// Meals each philosopher eats.
    #[arg(long, default_value = "20", value_parser = |s: &str| parse_count(s, 1_000_000))]
    meals: u64,
    /// Dine for this many seconds instead (as many meals as fit: fairness).
    #[arg(long, value_parser = |s: &str| parse_seconds(s, 600.0))]
    duration: Option<Duration>,
    /// A wait in a wait-for cycle this old (ms) is reported as a deadlock.
    #[arg(long, default_value = "500", value_parser = |s: &str| parse_millis(s, 60_000))]
    deadlock_timeout: Duration,
    /// Philosophers are threads with parking_lot mutexes, not processes.
    #[arg(long)]
    threads: bool,
    /// Do not synchronise the first reach: let a deadlock happen (or not) by
    /// itself.
    #[arg(long)]
    natural: bool,
    /// Longest think between meals, in microseconds (0 = greedy).
    #[arg(long, default_value = "500", value_parser = |s: &str| parse_up_to(s, 1_000_000))]
    think_us: u64,
    /// Longest meal, in microseconds.
    #[arg(long, default_value = "500", value_parser = |s: &str| parse_up_to(s, 1_000_000))]
    eat_us: u64,
    /// How long `timeout` waits for its second fork (ms).
    #[arg(long, default_value = "2", value_parser = |s: &str| parse_millis(s, 10_000))]
    patience: Duration,
    /// Stop everything after this many seconds, whatever happens.
    #[arg(long, default_value = "60", value_parser = |s: &str| parse_seconds(s, 3600.0))]
    time_limit: Duration,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a philosopher process dines here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = PhilosophersConfig {
        dinner: DinnerConfig {
            philosophers: args.philosophers,
            strategy: args.strategy,
            threads: args.threads,
            together: !args.natural,
            meals: Some(args.meals),
            duration: args.duration,
            think: Duration::from_micros(args.think_us),
            eat: Duration::from_micros(args.eat_us),
            deadlock_timeout: args.deadlock_timeout,
            patience: args.patience,
            time_limit: args.time_limit,
        },
        fix: (!args.no_fix).then_some(args.fix),
    };
    let report = philosophers::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
