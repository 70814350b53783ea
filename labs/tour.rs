//! The tour: every lab with quick defaults, one verdict line each, then a
//! summary. `cargo run --release` runs this.

use std::process::ExitCode;

use clap::Parser;
use shmlab::cli::Common;

/// Run every lab with quick settings and print each verdict.
#[derive(Parser)]
#[command(name = "tour", version)]
struct Args {
    #[command(flatten)]
    common: Common,
}

fn main() -> anyhow::Result<ExitCode> {
    shmlab::entry(); // a worker process runs its task here and exits
    let args = Args::parse();
    let tour = shmlab::lessons::tour::run(!args.common.json);
    shmlab::report::emit(&tour, args.common.json)
}
