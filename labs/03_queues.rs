//! Lab 03 — queues and pipes: results arrive out of order and are put back
//! in order by rank; then Pipe vs Queue throughput.
//! Handout: docs/labs/03-queues.md

use std::process::ExitCode;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::queues::{self, QueuesConfig};

/// Send results and messages between processes through shared memory.
#[derive(Parser)]
#[command(name = "lab03-queues", version)]
struct Args {
    /// Workers in the out-of-order demo.
    #[arg(long, default_value = "4", value_parser = parse_workers)]
    workers: usize,
    /// Tasks in the out-of-order demo.
    #[arg(long, default_value = "40", value_parser = |s: &str| parse_count(s, 100_000))]
    tasks: u64,
    /// Messages per throughput run.
    #[arg(long, default_value = "200_000", value_parser = |s: &str| parse_count(s, 1 << 32))]
    messages: u64,
    /// Message sizes in bytes, comma-separated (at most 1 MiB each).
    #[arg(long, default_value = "64,4096", value_delimiter = ',', value_parser = |s: &str| parse_count(s, 1 << 20))]
    sizes: Vec<u64>,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a worker process runs its task here and exits
    let args = Args::parse();
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let config = QueuesConfig {
        workers: args.workers,
        tasks: args.tasks as usize,
        messages: args.messages,
        sizes: args.sizes.iter().map(|&s| s as usize).collect(),
    };
    let report = queues::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
