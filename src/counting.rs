//! Counting strategies: W workers each add 1 to a count N times, and the
//! total must be W × N.
//!
//! The increment algorithms work on a [`Cells`] view, so the very functions
//! below run across processes in the labs and under loom in the model
//! checks:
//!
//! - [`racy_increment`] — `store(load() + 1)`: two atomic steps, so two
//!   workers can both load 41 and both store 42. Updates are lost.
//! - [`atomic_increment`] — `fetch_add(1)`: one indivisible step. Exact.
//! - [`locked_increment`] — load and store inside the lock. Exact, slower.
//! - [`slot_increment`] — load and store on a cell that only this worker
//!   writes. Exact without a lock or a read-modify-write: nobody shares.
//!
//! Across processes, [`Strategy`] names the seven ways the labs compare,
//! each a [`Counting`] implementation: where its counts live in shared
//! memory, how a worker adds one, and how the parent gets the total.

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

/// Adds 1 to cell `slot`, which no other worker writes: the same racy-looking
/// load and store as [`racy_increment`], exact because nobody else stores
/// there.
pub fn slot_increment<L: RawLock>(counts: &Cells<'_, i64, L>, slot: usize) {
    if let Ok(seen) = counts.load(slot) {
        let _ = counts.store(slot, seen.wrapping_add(1));
    }
}

/// Cells from one padded slot to the next: the size of crossbeam's
/// `CachePadded` (128 bytes on x86-64, where the prefetcher pulls cache lines
/// in pairs) in `i64` cells. The segment's cells are a flat slice of atomics,
/// so the padding is a stride rather than a wrapper type.
#[cfg(not(loom))]
pub const PADDED_STRIDE: usize = std::mem::size_of::<
    crossbeam_utils::CachePadded<std::sync::atomic::AtomicI64>,
>() / std::mem::size_of::<std::sync::atomic::AtomicI64>();

/// One way to count with W workers: the cells it needs, what a worker does,
/// and how the total is formed.
pub trait Counting {
    /// Shared cells needed for `workers` workers (0: none, nothing shared).
    fn cells(&self, workers: usize) -> usize;
    /// Worker `index` adds 1, `n` times. Returns what it kept privately
    /// (map-reduce's local count; 0 for strategies that count in shared
    /// memory).
    fn work<L: RawLock>(
        &self,
        counts: &Cells<'_, i64, L>,
        index: usize,
        n: u64,
    ) -> Result<i64, LockError<()>>;
    /// The total, from the cells and what the `workers` returned.
    fn total<L: RawLock>(&self, counts: &Cells<'_, i64, L>, returned: &[i64]) -> i64;
}

/// `store(load() + 1)` on one shared cell.
#[derive(Debug, Clone, Copy)]
pub struct Racy;
/// `fetch_add(1)` on one shared cell.
#[derive(Debug, Clone, Copy)]
pub struct Atomic;
/// Load and store under the segment's lock (shmlab's futex lock or the OS
/// mutex: the lock type of the segment decides).
#[derive(Debug, Clone, Copy)]
pub struct Locked;
/// One cell per worker, side by side (they share cache lines); summed at
/// the end.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// Cells from one worker's slot to the next.
    pub stride: usize,
}
/// A private count in each worker, returned and summed by the parent:
/// nothing is shared while counting.
#[derive(Debug, Clone, Copy)]
pub struct MapReduce;

fn first_cell<L: RawLock>(counts: &Cells<'_, i64, L>) -> i64 {
    counts.load(0).unwrap_or_default()
}

impl Counting for Racy {
    fn cells(&self, _workers: usize) -> usize {
        1
    }
    fn work<L: RawLock>(
        &self,
        c: &Cells<'_, i64, L>,
        _: usize,
        n: u64,
    ) -> Result<i64, LockError<()>> {
        (0..n).for_each(|_| racy_increment(c));
        Ok(0)
    }
    fn total<L: RawLock>(&self, c: &Cells<'_, i64, L>, _: &[i64]) -> i64 {
        first_cell(c)
    }
}

impl Counting for Atomic {
    fn cells(&self, _workers: usize) -> usize {
        1
    }
    fn work<L: RawLock>(
        &self,
        c: &Cells<'_, i64, L>,
        _: usize,
        n: u64,
    ) -> Result<i64, LockError<()>> {
        (0..n).for_each(|_| atomic_increment(c));
        Ok(0)
    }
    fn total<L: RawLock>(&self, c: &Cells<'_, i64, L>, _: &[i64]) -> i64 {
        first_cell(c)
    }
}

impl Counting for Locked {
    fn cells(&self, _workers: usize) -> usize {
        1
    }
    fn work<L: RawLock>(
        &self,
        c: &Cells<'_, i64, L>,
        _: usize,
        n: u64,
    ) -> Result<i64, LockError<()>> {
        for _ in 0..n {
            locked_increment(c)?;
        }
        Ok(0)
    }
    fn total<L: RawLock>(&self, c: &Cells<'_, i64, L>, _: &[i64]) -> i64 {
        first_cell(c)
    }
}

impl Counting for Slots {
    fn cells(&self, workers: usize) -> usize {
        workers * self.stride
    }
    fn work<L: RawLock>(
        &self,
        c: &Cells<'_, i64, L>,
        index: usize,
        n: u64,
    ) -> Result<i64, LockError<()>> {
        let slot = index * self.stride;
        (0..n).for_each(|_| slot_increment(c, slot));
        Ok(0)
    }
    fn total<L: RawLock>(&self, c: &Cells<'_, i64, L>, returned: &[i64]) -> i64 {
        (0..returned.len())
            .map(|i| c.load(i * self.stride).unwrap_or_default())
            .sum()
    }
}

impl Counting for MapReduce {
    fn cells(&self, _workers: usize) -> usize {
        0
    }
    fn work<L: RawLock>(
        &self,
        _: &Cells<'_, i64, L>,
        _: usize,
        n: u64,
    ) -> Result<i64, LockError<()>> {
        let mut local: i64 = 0;
        for _ in 0..n {
            // black_box: count for real, one add at a time, as the other
            // strategies do (the compiler would otherwise replace the loop
            // with `local = n`).
            local += std::hint::black_box(1);
        }
        Ok(local)
    }
    fn total<L: RawLock>(&self, _: &Cells<'_, i64, L>, returned: &[i64]) -> i64 {
        returned.iter().sum()
    }
}

#[cfg(not(loom))]
pub use across::*;

#[cfg(not(loom))]
mod across {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::{Atomic, Counting, Locked, MapReduce, PADDED_STRIDE, Racy, Slots};
    use crate::lock::{FutexLock, OsMutex, RawLock};
    use crate::pool::{Pool, PoolError};
    use crate::process::{self, StartGate};
    use crate::shm::{SharedArray, ShmError};

    /// How long workers and parent wait for each other at the start gate.
    const GATE_TIMEOUT: Duration = Duration::from_secs(30);

    /// A way to count.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
    #[serde(rename_all = "kebab-case")]
    pub enum Strategy {
        /// `store(load() + 1)` on one shared cell: loses updates.
        Racy,
        /// `fetch_add(1)` on one shared cell.
        Atomic,
        /// Load and store under shmlab's futex lock.
        Locked,
        /// Load and store under the OS's pthread mutex.
        LockedOs,
        /// One cell per worker, adjacent (sharing cache lines), summed at the end.
        Slots,
        /// One cell per worker, each on its own cache-line pair, summed at the end.
        PaddedSlots,
        /// A private count per worker, returned through the pool and summed.
        MapReduce,
    }

    impl Strategy {
        /// Every strategy, from the one that loses updates to the one that
        /// shares nothing.
        pub const ALL: [Strategy; 7] = [
            Strategy::Racy,
            Strategy::Atomic,
            Strategy::Locked,
            Strategy::LockedOs,
            Strategy::Slots,
            Strategy::PaddedSlots,
            Strategy::MapReduce,
        ];

        /// The name used in reports and on the command line.
        pub fn name(self) -> &'static str {
            match self {
                Strategy::Racy => "racy",
                Strategy::Atomic => "atomic",
                Strategy::Locked => "locked",
                Strategy::LockedOs => "locked-os",
                Strategy::Slots => "slots",
                Strategy::PaddedSlots => "padded-slots",
                Strategy::MapReduce => "map-reduce",
            }
        }

        /// Whether the strategy never loses an update.
        pub fn is_exact(self) -> bool {
            self != Strategy::Racy
        }

        /// Shared cells for `workers` workers.
        pub fn cells(self, workers: usize) -> usize {
            self.with(
                |c| c.cells(workers),
                |c| c.cells(workers),
                |c| c.cells(workers),
                |c| c.cells(workers),
                |c| c.cells(workers),
            )
        }

        /// Calls the closure for this strategy's [`Counting`] implementation.
        fn with<T>(
            self,
            racy: impl FnOnce(Racy) -> T,
            atomic: impl FnOnce(Atomic) -> T,
            locked: impl FnOnce(Locked) -> T,
            slots: impl FnOnce(Slots) -> T,
            map_reduce: impl FnOnce(MapReduce) -> T,
        ) -> T {
            match self {
                Strategy::Racy => racy(Racy),
                Strategy::Atomic => atomic(Atomic),
                Strategy::Locked | Strategy::LockedOs => locked(Locked),
                Strategy::Slots => slots(Slots { stride: 1 }),
                Strategy::PaddedSlots => slots(Slots {
                    stride: PADDED_STRIDE,
                }),
                Strategy::MapReduce => map_reduce(MapReduce),
            }
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
        /// The total at the end.
        #[serde(rename = "final")]
        pub final_value: i64,
        /// expected − final.
        pub lost: i64,
        /// From the start gate opening to the last worker finishing.
        pub seconds: f64,
        /// Increments per second, all workers together.
        pub ops_per_s: f64,
    }

    impl CountResult {
        /// Whether no update was lost.
        pub fn exact(&self) -> bool {
            self.lost == 0
        }
    }

    /// Why a counting run failed.
    #[derive(Debug, thiserror::Error)]
    pub enum CountError {
        /// A segment could not be made.
        #[error(transparent)]
        Shm(#[from] ShmError),
        /// The pool failed (a worker died, ...).
        #[error(transparent)]
        Pool(#[from] PoolError),
        /// A worker reported an error from its task.
        #[error("a counting worker failed: {0}")]
        Task(String),
        /// More counting workers than the pool has processes.
        #[error("{workers} counting workers need a pool of at least {workers} (it has {pool})")]
        PoolTooSmall {
            /// Workers asked for.
            workers: usize,
            /// The pool's size.
            pool: usize,
        },
    }

    #[derive(Serialize, Deserialize)]
    struct CountArgs {
        index: usize,
        strategy: Strategy,
        counts: String,
        gate: String,
        increments: u64,
    }

    /// The counting task: opens the counts, waits at the gate, counts, and
    /// returns its private count and when it finished.
    fn count_worker(args: CountArgs) -> Result<(i64, u64), String> {
        match args.strategy {
            Strategy::LockedOs => count_on::<OsMutex>(&args),
            _ => count_on::<FutexLock>(&args),
        }
    }
    crate::task!(count_worker);

    fn count_on<L: RawLock>(args: &CountArgs) -> Result<(i64, u64), String> {
        let counts = SharedArray::<i64, L>::open(&args.counts).map_err(|e| e.to_string())?;
        let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
        // One worker per CPU where possible, so they truly overlap.
        process::pin_to_cpu(args.index);
        gate.arrive_and_wait(GATE_TIMEOUT)
            .map_err(|e| e.to_string())?;
        let cells = counts.cells();
        let (index, n) = (args.index, args.increments);
        let kept = args
            .strategy
            .with(
                |c| c.work(&cells, index, n),
                |c| c.work(&cells, index, n),
                |c| c.work(&cells, index, n),
                |c| c.work(&cells, index, n),
                |c| c.work(&cells, index, n),
            )
            .map_err(|e| e.to_string())?;
        Ok((kept, process::monotonic_ns()))
    }

    /// Runs `strategy` with `workers` processes (a pool of that size) making
    /// `increments` each, all released together by a start gate.
    ///
    /// ```
    /// use shmlab::counting::{count, Strategy};
    /// fn main() {
    ///     shmlab::entry();
    ///     let run = count(Strategy::MapReduce, 2, 1000).unwrap();
    ///     assert_eq!(run.final_value, 2000);
    /// }
    /// ```
    pub fn count(
        strategy: Strategy,
        workers: usize,
        increments: u64,
    ) -> Result<CountResult, CountError> {
        let pool = Pool::new(workers)?;
        count_in(&pool, strategy, workers, increments)
    }

    /// [`count`] on an existing, idle pool of at least `workers` processes
    /// (so a lab can time many runs without starting processes each time).
    pub fn count_in(
        pool: &Pool,
        strategy: Strategy,
        workers: usize,
        increments: u64,
    ) -> Result<CountResult, CountError> {
        if pool.workers() < workers {
            return Err(CountError::PoolTooSmall {
                workers,
                pool: pool.workers(),
            });
        }
        match strategy {
            Strategy::LockedOs => count_with::<OsMutex>(pool, strategy, workers, increments),
            _ => count_with::<FutexLock>(pool, strategy, workers, increments),
        }
    }

    fn count_with<L: RawLock>(
        pool: &Pool,
        strategy: Strategy,
        workers: usize,
        increments: u64,
    ) -> Result<CountResult, CountError> {
        let counts = SharedArray::<i64, L>::create(strategy.cells(workers).max(1), 0)?;
        let gate = StartGate::create()?;
        let args: Vec<CountArgs> = (0..workers)
            .map(|index| CountArgs {
                index,
                strategy,
                counts: counts.name().to_string(),
                gate: gate.name().to_string(),
                increments,
            })
            .collect();
        // Chunksize 1 on an idle pool: one task per worker process.
        let running = pool.map_async(count_worker, args, Some(1))?;
        // A task that ends before the gate opens has failed: stop waiting.
        let arrived = gate.wait_until(workers, GATE_TIMEOUT, || running.progress().done > 0);
        let opened = gate.open_now();
        let outcomes = running.get()?;
        if !arrived {
            return Err(CountError::Task(
                "the workers did not all reach the start gate".to_string(),
            ));
        }
        let mut kept = Vec::with_capacity(workers);
        let mut last_finish = opened;
        for outcome in outcomes {
            let (count, finished) = outcome.map_err(CountError::Task)?;
            kept.push(count);
            last_finish = last_finish.max(finished);
        }
        let cells = counts.cells();
        let final_value = strategy.with(
            |c| c.total(&cells, &kept),
            |c| c.total(&cells, &kept),
            |c| c.total(&cells, &kept),
            |c| c.total(&cells, &kept),
            |c| c.total(&cells, &kept),
        );
        let seconds = (last_finish - opened) as f64 / 1e9;
        let expected = (workers as i64).saturating_mul(increments as i64);
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
