//! Lab 05 — locks: keep an invariant across array slots, compare shmlab's
//! lock with the OS mutex, give up with a timed lock, and survive a lock
//! holder that dies. Handout: docs/labs/05-locks.md

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::locks::{self, LocksConfig};

/// What a process-shared lock guarantees, what it costs, and how it fails.
#[derive(Parser)]
#[command(name = "lab05-locks", version)]
struct Args {
    /// Worker processes (transfers and contended throughput).
    #[arg(long, default_value = "2", value_parser = parse_workers)]
    workers: usize,
    /// Accounts in the shared array (at least 2).
    #[arg(long, default_value = "8", value_parser = parse_accounts)]
    accounts: u64,
    /// Transfers per worker.
    #[arg(long, default_value = "1_000_000", value_parser = |s: &str| parse_count(s, 1 << 40))]
    transfers: u64,
    /// Locked increments per worker in the throughput test.
    #[arg(long, default_value = "2_000_000", value_parser = |s: &str| parse_count(s, 1 << 40))]
    increments: u64,
    /// The timed lock's timeout, in milliseconds (at most 10 s).
    #[arg(long, default_value = "100", value_parser = |s: &str| parse_count(s, 10_000))]
    timeout_ms: u64,
    #[command(flatten)]
    common: Common,
}

/// A transfer needs two accounts.
fn parse_accounts(s: &str) -> Result<u64, String> {
    match parse_count(s, 1 << 24)? {
        1 => Err("at least 2 accounts are needed (a transfer moves money between two)".to_string()),
        n => Ok(n),
    }
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a worker process runs its task here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs

    let config = LocksConfig {
        workers: args.workers,
        accounts: args.accounts as usize,
        transfers: args.transfers,
        increments: args.increments,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let report = locks::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
