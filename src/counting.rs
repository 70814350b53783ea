//! Counting strategies: W workers each add 1 to a shared counter N times.
//!
//! The increment algorithms work on a [`Cells`] view, so the very functions
//! below run across processes in the labs and under loom in the model
//! checks:
//!
//! - [`racy_increment`] — `store(load() + 1)`: two atomic steps, so two
//!   workers can both load 41 and both store 42. Updates are lost.
//! - [`atomic_increment`] — `fetch_add(1)`: one indivisible step. Exact.
//! - [`locked_increment`] — load and store inside the lock. Exact, slower.

use crate::cells::Cells;
use crate::lock::{LockError, RawLock};

/// The tutorials' `counter.value += 1` without a lock: a logic race on
/// atomics (never undefined behaviour). Loses updates under contention.
pub fn racy_increment<L: RawLock>(counter: &Cells<'_, i64, L>) {
    if let Ok(seen) = counter.load(0) {
        // Another worker may store between our load and this store.
        let _ = counter.store(0, seen.wrapping_add(1));
    }
}

/// One atomic read-modify-write: never loses an update.
pub fn atomic_increment<L: RawLock>(counter: &Cells<'_, i64, L>) {
    let _ = counter.fetch_add(0, 1);
}

/// `with counter.get_lock(): counter.value += 1`. Exact: no other lock user
/// can run between the read and the write.
pub fn locked_increment<L: RawLock>(counter: &Cells<'_, i64, L>) -> Result<(), LockError<()>> {
    let guard = counter.lock().map_err(LockError::discard_guard)?;
    let seen = guard.get(0).unwrap_or_default();
    let _ = guard.set(0, seen.wrapping_add(1));
    Ok(())
}

#[cfg(not(loom))]
pub use across::*;

#[cfg(not(loom))]
mod across {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::{atomic_increment, locked_increment, racy_increment};
    use crate::lock::{FutexLock, OsMutex, RawLock};
    use crate::process::{self, StartGate, WorkerError};
    use crate::shm::{SharedValue, ShmError};

    /// How long workers and parent wait for each other at the start gate.
    const GATE_TIMEOUT: Duration = Duration::from_secs(30);

    /// A way to count.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
    #[serde(rename_all = "kebab-case")]
    pub enum Strategy {
        /// `store(load() + 1)`: loses updates.
        Racy,
        /// `fetch_add(1)` on one cell.
        Atomic,
        /// Load and store under shmlab's futex lock.
        Locked,
        /// Load and store under the OS's pthread mutex.
        LockedOs,
    }

    impl Strategy {
        /// The name used in reports and on the command line.
        pub fn name(self) -> &'static str {
            match self {
                Strategy::Racy => "racy",
                Strategy::Atomic => "atomic",
                Strategy::Locked => "locked",
                Strategy::LockedOs => "locked-os",
            }
        }

        /// Whether the strategy never loses an update.
        pub fn is_exact(self) -> bool {
            self != Strategy::Racy
        }
    }

    /// One strategy's run across processes.
    #[derive(Debug, Clone, Serialize)]
    pub struct CountResult {
        /// Which strategy.
        pub strategy: Strategy,
        /// How many worker processes.
        pub workers: usize,
        /// Increments each worker made.
        pub increments_per_worker: u64,
        /// workers × increments.
        pub expected: i64,
        /// The counter at the end.
        #[serde(rename = "final")]
        pub final_value: i64,
        /// expected − final.
        pub lost: i64,
        /// From the start gate opening to the last worker finishing.
        pub seconds: f64,
        /// Increments per second, all workers together.
        pub ops_per_s: f64,
    }

    /// Why a counting run failed.
    #[derive(Debug, thiserror::Error)]
    pub enum CountError {
        /// A segment could not be made.
        #[error(transparent)]
        Shm(#[from] ShmError),
        /// A worker failed (panicked, was killed, ...).
        #[error(transparent)]
        Worker(#[from] WorkerError),
        /// A worker reported an error from its task.
        #[error("a counting worker failed: {0}")]
        Task(String),
    }

    #[derive(Serialize, Deserialize)]
    struct CountArgs {
        index: usize,
        strategy: Strategy,
        counter: String,
        gate: String,
        increments: u64,
    }

    /// The counting worker: opens the counter, waits at the gate, counts,
    /// and says when it finished.
    fn count_worker(args: CountArgs) -> Result<u64, String> {
        match args.strategy {
            Strategy::LockedOs => count_on::<OsMutex>(&args),
            _ => count_on::<FutexLock>(&args),
        }
    }
    crate::task!(count_worker);

    fn count_on<L: RawLock>(args: &CountArgs) -> Result<u64, String> {
        let counter = SharedValue::<i64, L>::open(&args.counter).map_err(|e| e.to_string())?;
        let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
        // One worker per CPU where possible, so they truly overlap.
        process::pin_to_cpu(args.index);
        gate.arrive_and_wait(GATE_TIMEOUT)
            .map_err(|e| e.to_string())?;
        let cells = counter.cells();
        match args.strategy {
            Strategy::Racy => (0..args.increments).for_each(|_| racy_increment(&cells)),
            Strategy::Atomic => (0..args.increments).for_each(|_| atomic_increment(&cells)),
            Strategy::Locked | Strategy::LockedOs => {
                for _ in 0..args.increments {
                    locked_increment(&cells).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(process::monotonic_ns())
    }

    /// Runs `strategy` with `workers` processes making `increments` each,
    /// all released together by a start gate.
    ///
    /// ```
    /// use shmlab::counting::{count, Strategy};
    /// fn main() {
    ///     shmlab::entry();
    ///     let run = count(Strategy::Atomic, 2, 1000).unwrap();
    ///     assert_eq!(run.final_value, 2000);
    /// }
    /// ```
    pub fn count(
        strategy: Strategy,
        workers: usize,
        increments: u64,
    ) -> Result<CountResult, CountError> {
        match strategy {
            Strategy::LockedOs => count_with::<OsMutex>(strategy, workers, increments),
            _ => count_with::<FutexLock>(strategy, workers, increments),
        }
    }

    fn count_with<L: RawLock>(
        strategy: Strategy,
        workers: usize,
        increments: u64,
    ) -> Result<CountResult, CountError> {
        let counter = SharedValue::<i64, L>::create(0)?;
        let gate = StartGate::create()?;
        let mut crew = (0..workers)
            .map(|index| {
                let args = CountArgs {
                    index,
                    strategy,
                    counter: counter.name().to_string(),
                    gate: gate.name().to_string(),
                    increments,
                };
                process::spawn(count_worker, &args)
            })
            .collect::<Result<Vec<_>, _>>()?;
        gate.wait_for(&mut crew, GATE_TIMEOUT)?;
        let opened = gate.open_now();
        let mut last_finish = opened;
        for worker in crew {
            let finished = worker.join()?.map_err(CountError::Task)?;
            last_finish = last_finish.max(finished);
        }
        let seconds = (last_finish - opened) as f64 / 1e9;
        let expected = (workers as i64).saturating_mul(increments as i64);
        let final_value = counter.load();
        Ok(CountResult {
            strategy,
            workers,
            increments_per_worker: increments,
            expected,
            final_value,
            lost: expected - final_value,
            seconds,
            ops_per_s: if seconds > 0.0 {
                expected as f64 / seconds
            } else {
                0.0
            },
        })
    }
}
