//! The experiments behind the labs. Each lab's `main` parses its options,
//! calls one `run` here and prints the report it returns.
//!
//! ```
//! use std::process::ExitCode;
//! use shmlab::lessons::race::{self, RaceConfig};
//! use shmlab::report;
//!
//! // Lab 04's `main`, with its options already parsed.
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // first in every lab: a worker runs its task here
//!     let config = RaceConfig { workers: 2, increments: 1_000 };
//!     let code = report::emit(&race::run(&config)?, false)?; // the table, then the verdict
//!     assert_eq!(code, ExitCode::SUCCESS); // atomic and locked were exact
//!     Ok(())
//! }
//! ```

pub mod background;
pub mod interleavings;
pub mod locks;
pub mod mapreduce;
pub mod montecarlo;
pub mod philosophers;
pub mod pool;
pub mod processes;
pub mod queues;
pub mod race;
pub mod slots;
pub mod threads;
pub mod tour;
pub mod wordcount;
