//! # shmlab — shared-memory concurrency, taught across real processes
//!
//! shmlab re-teaches the lessons of Python's `multiprocessing` tutorials —
//! `Process`, `Value`, `Array`, `Lock`, the race that loses increments,
//! deadlock, map-reduce — in Rust, with real OS processes that share named
//! memory segments. Each lesson is a numbered lab binary (`labs/`) with a
//! handout (`docs/labs/`); this crate does the work behind them.
//!
//! ## The modules, in lesson order
//!
//! Each lab is a short `main` over this library; the table follows the
//! labs, and a module appears where a lab first needs it. Every lab's
//! experiment is in [`lessons`], named after the lab.
//!
//! | lab | lesson | modules |
//! |---|---|---|
//! | 01 | processes: start, join, what is (not) shared | [`process`] — [`entry()`], [`process::spawn`], [`task!`], [`process::Worker`] |
//! | 02 | the pool: `map`, `imap`, `apply_async`, chunks, faults | [`pool`] |
//! | 03 | queues and pipes between processes | [`channel`] — [`channel::Pipe`], [`channel::Queue`] |
//! | 04 | the race: lost updates and the fixes | [`shm`] — [`SharedValue`], [`SharedArray`]; [`element`], [`cells`] (which operations are atomic); [`counting`] |
//! | 05 | locks: invariants, timeouts, a holder that dies | [`lock`] — [`lock::FutexLock`], [`lock::OsMutex`]; [`bank`] |
//! | 06 | one slot per worker, false sharing | [`counting::Slots`] |
//! | 07 | every interleaving of `load; add; store` | [`lessons::interleavings`]; the loom suite (`docs/loom.md`) |
//! | 08 | map-reduce vs locked vs atomic vs slots | [`counting::MapReduce`], [`lessons::mapreduce`] |
//! | 09 | dining philosophers: deadlock named and broken | [`philosophers`] |
//! | 10 | word count: map-reduce over a file | [`lessons::wordcount`] |
//! | 11 | Monte Carlo π: seeds and reproducibility | [`lessons::montecarlo`] |
//! | 12 | threads vs processes | [`lessons::threads`] |
//!
//! Behind every lab:
//!
//! - [`report`] prints a lesson's report as text ending in one verdict line,
//!   or as JSON (`--json`); [`cli`] turns absurd options into usage errors.
//! - [`cleanup`] — nothing leaks: Ctrl-C removes this process's segments,
//!   and stale segments of killed processes are removed at the next start.
//! - [`sync`] — the loom facade: the atomics, futex and owner identity the
//!   lock, cells, channels and philosophers are written against, so that
//!   the model checker runs the code the labs ship (`loom/`,
//!   `docs/loom.md`).
//!
//! ```
//! use shmlab::SharedValue;
//!
//! let counter = SharedValue::<i64>::create(0).unwrap();
//! counter.fetch_add(1);
//! assert_eq!(counter.load(), 1);
//! // `counter` is dropped here and /dev/shm/<its name> is unlinked.
//! ```
#![warn(missing_docs)]

pub mod bank;
pub mod cells;
pub mod channel;
pub mod element;
pub mod lock;
pub mod philosophers;
pub mod sync;

#[cfg(not(loom))]
pub mod cleanup;
#[cfg(not(loom))]
pub mod cli;
pub mod counting;
#[cfg(not(loom))]
pub mod lessons;
#[cfg(not(loom))]
pub mod pool;
#[cfg(not(loom))]
pub mod process;
#[cfg(not(loom))]
pub mod report;
#[cfg(not(loom))]
pub mod shm;

#[cfg(not(loom))]
pub use process::entry;
#[cfg(not(loom))]
pub use shm::{SharedArray, SharedValue};

#[doc(hidden)]
#[cfg(not(loom))]
pub mod __private {
    pub use linkme;
}
