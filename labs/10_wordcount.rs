//! Lab 10 — word count over a large file (the tutorials' Gutenberg
//! exercise): the four words dog, cat, boy, girl and every word's
//! frequency, serially, with a pool over chunks of a memory-mapped file
//! (map-reduce), and with every worker updating one shared locked table.
//! Handout: docs/labs/10-wordcount.md

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use shmlab::cli::{Common, parse_count, parse_workers};
use shmlab::lessons::wordcount::{self, DEFAULT_SEED, WordcountConfig, parse_mb};

/// Count words in a file with worker processes: serial, map-reduce, and
/// one shared locked table.
#[derive(Parser)]
#[command(name = "lab10-wordcount", version)]
struct Args {
    /// Count this file (default: generate a corpus of --mb MB in the temp
    /// directory and delete it afterwards).
    #[arg(long, value_name = "PATH", conflicts_with = "make_corpus")]
    corpus: Option<PathBuf>,
    /// Write a generated corpus of --mb MB to PATH and exit.
    #[arg(long, value_name = "PATH")]
    make_corpus: Option<PathBuf>,
    /// Size of a generated corpus in MB (10^6 bytes; decimals allowed).
    #[arg(long, default_value = "32", value_parser = parse_mb)]
    mb: u64,
    /// Seed of the corpus generator (the same seed gives the same corpus).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Worker processes in the pool (default: one per CPU).
    #[arg(long, value_parser = parse_workers)]
    workers: Option<usize>,
    /// Chunks the file is cut into for the pool (default: 2 per worker).
    #[arg(long, value_parser = |s: &str| parse_count(s, 1_000_000))]
    chunks: Option<u64>,
    /// Words in the top list.
    #[arg(long, default_value = "10", value_parser = |s: &str| parse_count(s, 1_000_000))]
    top: u64,
    /// Timed runs per variant (the report gives the median).
    #[arg(long, default_value = "5", value_parser = |s: &str| parse_count(s, 1000))]
    repeats: u64,
    /// MB from the start of the corpus that the slow locked table counts.
    #[arg(long, default_value = "4", value_parser = parse_mb)]
    locked_mb: u64,
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a pool worker runs its loop here and exits
    let args = Args::parse();
    if let Some(path) = &args.make_corpus {
        wordcount::make_corpus(path, args.mb, args.seed, args.common.json)?;
        eprintln!("wrote {} bytes to {}", args.mb, path.display());
        return Ok(ExitCode::SUCCESS);
    }
    shmlab::cleanup::clean_and_report(); // segments leaked by killed runs
    let workers = args.workers.unwrap_or_else(shmlab::cli::available_cpus);
    let config = WordcountConfig {
        corpus: args.corpus,
        bytes: args.mb,
        seed: args.seed,
        workers,
        chunks: args.chunks.map_or(2 * workers, |c| c as usize),
        top: args.top as usize,
        repeats: args.repeats as usize,
        locked_bytes: args.locked_mb,
        quiet: args.common.json,
    };
    let report = wordcount::run(&config)?;
    shmlab::report::emit(&report, args.common.json)
}
