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
//! 1. [`process`] — worker processes: start, join, exit status, faults
//!    (lab01). Every program's `main` starts with [`entry()`].
//! 2. [`shm`] — named shared memory: [`SharedValue`] and [`SharedArray`],
//!    the header every segment carries, and the typed errors of a bad open.
//! 3. [`element`] and [`cells`] — what may live in shared memory and which
//!    operations on it are atomic (lab04).
//! 4. [`lock`] — process-shared locks: shmlab's own futex lock and the OS's
//!    pthread mutex; timed locking and a holder that dies (lab05).
//! 5. [`pool`] — a pool of worker processes: `map`, `starmap`, `imap`,
//!    `imap_unordered`, `apply_async`, `map_async`, `submit`, chunks,
//!    faults that never hang the caller (lab02, lab12).
//! 6. [`channel`] — `Pipe` and `Queue` between processes, in shared memory
//!    (lab03).
//! 7. [`counting`] — counting strategies from racy to exact, run across
//!    processes (lab04); every interleaving of the racy one's steps
//!    (lab07, [`lessons::interleavings`]).
//! 8. [`philosophers`] — dining philosophers across processes: the naive
//!    deadlock, a watchdog that names the wait-for cycle, and the fixes
//!    (lab09).
//! 9. [`lessons`] — the experiments behind each lab, returning reports;
//!    [`report`] prints them as text or JSON.
//! 10. [`cleanup`] — nothing leaks: Ctrl-C handling and removal of stale
//!     segments.
//! 11. [`sync`] — the loom facade that lets the model checker run the same
//!     lock and cell code that the labs run across processes.
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
