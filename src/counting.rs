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
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::SharedArray;
//! use shmlab::cells::Cells;
//! use shmlab::counting::{atomic_increment, racy_increment};
//!
//! // W = 4 workers (threads here, processes in the labs) add 1, N = 1000 times.
//! fn count_with(increment: fn(&Cells<'_, i64>)) -> anyhow::Result<i64> {
//!     let counter = SharedArray::<i64>::create(1, 0)?;
//!     let cells = counter.cells();
//!     std::thread::scope(|s| {
//!         for _ in 0..4 {
//!             s.spawn(move || (0..1000).for_each(|_| increment(&cells)));
//!         }
//!     });
//!     Ok(counter.get(0)?)
//! }
//! assert_eq!(count_with(atomic_increment)?, 4 * 1000); // exact
//! assert!(count_with(racy_increment)? <= 4 * 1000); // lost updates, if any
//! # Ok(()) }
//! ```

use crate::cells::Cells;
use crate::lock::{LockError, RawLock};

/// The tutorials' `counter.value += 1` without a lock: a logic race on
/// atomics (never undefined behaviour). Loses updates under contention.
///
/// Alone it counts right; lab 04 runs it in several processes at once.
///
/// ```
/// use shmlab::counting::racy_increment;
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// racy_increment(&counts);
/// racy_increment(&counts);
/// assert_eq!(counts.load(0)?, 2);
/// # Ok(()) }
/// ```
pub fn racy_increment<L: RawLock>(counter: &Cells<'_, i64, L>) {
    if let Ok(seen) = counter.load(0) {
        // Another worker may store between our load and this store.
        let _ = counter.store(0, seen.wrapping_add(1));
    }
}

/// One atomic read-modify-write: never loses an update.
///
/// ```
/// use shmlab::counting::atomic_increment;
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..100).for_each(|_| atomic_increment(&counts)));
///     }
/// });
/// assert_eq!(counts.load(0)?, 400);
/// # Ok(()) }
/// ```
pub fn atomic_increment<L: RawLock>(counter: &Cells<'_, i64, L>) {
    let _ = counter.fetch_add(0, 1);
}

/// `with counter.get_lock(): counter.value += 1`. Exact: no other lock user
/// can run between the read and the write.
///
/// ```
/// use shmlab::counting::locked_increment;
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..100).try_for_each(|_| locked_increment(&counts)));
///     }
/// });
/// assert_eq!(counts.load(0)?, 400);
/// # Ok(()) }
/// ```
pub fn locked_increment<L: RawLock>(counter: &Cells<'_, i64, L>) -> Result<(), LockError<()>> {
    let guard = counter.lock().map_err(LockError::discard_guard)?;
    let seen = guard.get(0).unwrap_or_default();
    let _ = guard.set(0, seen.wrapping_add(1));
    Ok(())
}

/// Adds 1 to cell `slot`, which no other worker writes: the same racy-looking
/// load and store as [`racy_increment`], exact because nobody else stores
/// there.
///
/// ```
/// use shmlab::counting::slot_increment;
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// std::thread::scope(|s| {
///     for slot in 0..3 {
///         s.spawn(move || (0..100).for_each(|_| slot_increment(&counts, slot)));
///     }
/// });
/// let total: i64 = (0..3).map(|i| counts.load(i)).sum::<Result<i64, _>>()?;
/// assert_eq!(total, 300);
/// # Ok(()) }
/// ```
pub fn slot_increment<L: RawLock>(counts: &Cells<'_, i64, L>, slot: usize) {
    if let Ok(seen) = counts.load(slot) {
        let _ = counts.store(slot, seen.wrapping_add(1));
    }
}

/// Cells from one padded slot to the next: the size of crossbeam's
/// `CachePadded` (128 bytes on x86-64, where the prefetcher pulls cache lines
/// in pairs) in `i64` cells. The segment's cells are a flat slice of atomics,
/// so the padding is a stride rather than a wrapper type.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedArray;
/// use shmlab::counting::{Counting, PADDED_STRIDE, Slots};
///
/// let padded = Slots { stride: PADDED_STRIDE };
/// let counts = SharedArray::<i64>::create(padded.cells(2), 0)?;
/// let cells = counts.cells();
/// std::thread::scope(|s| {
///     for worker in 0..2 {
///         s.spawn(move || padded.work(&cells, worker, 100));
///     }
/// });
/// // Worker 1 counted PADDED_STRIDE cells after worker 0: never on a
/// // 64-byte cache line that worker 0 writes.
/// assert!(PADDED_STRIDE * std::mem::size_of::<i64>() >= 64);
/// assert_eq!((counts.get(0)?, counts.get(PADDED_STRIDE)?), (100, 100));
/// assert_eq!(padded.total(&cells, &[0, 0]), 200);
/// # Ok(()) }
/// ```
#[cfg(not(loom))]
pub const PADDED_STRIDE: usize = std::mem::size_of::<
    crossbeam_utils::CachePadded<std::sync::atomic::AtomicI64>,
>() / std::mem::size_of::<std::sync::atomic::AtomicI64>();

/// One way to count with W workers: the cells it needs, what a worker does,
/// and how the total is formed.
///
/// Any strategy, run with threads on cells in this process:
///
/// ```
/// use shmlab::cells::Cells;
/// use shmlab::counting::{Counting, MapReduce, Slots};
/// use shmlab::{element::Element, lock::FutexLock};
///
/// fn run<C: Counting + Sync>(strategy: &C, workers: usize, n: u64) -> i64 {
///     let lock = FutexLock::new();
///     let storage: Vec<_> = (0..strategy.cells(workers)).map(|_| i64::new_cell(0)).collect();
///     let cells = Cells::<i64>::new(&lock, &storage);
///     let kept: Vec<i64> = std::thread::scope(|s| {
///         let work = |i| s.spawn(move || strategy.work(&cells, i, n).unwrap());
///         let handles: Vec<_> = (0..workers).map(work).collect();
///         handles.into_iter().map(|h| h.join().unwrap()).collect()
///     });
///     strategy.total(&cells, &kept)
/// }
/// assert_eq!(run(&Slots { stride: 1 }, 3, 100), 300);
/// assert_eq!(run(&MapReduce, 3, 100), 300);
/// ```
pub trait Counting {
    /// Shared cells needed for `workers` workers (0: none, nothing shared).
    ///
    /// ```
    /// use shmlab::counting::{Atomic, Counting, MapReduce, Slots};
    ///
    /// assert_eq!(Atomic.cells(4), 1); // one shared counter
    /// assert_eq!(Slots { stride: 2 }.cells(4), 8); // a padded slot each
    /// assert_eq!(MapReduce.cells(4), 0); // nothing shared
    /// ```
    ///
    /// By default one: the strategies of lab 04 share a single counter.
    fn cells(&self, _workers: usize) -> usize {
        1
    }
    /// Worker `index` adds 1, `n` times. Returns what it kept privately
    /// (map-reduce's local count; 0 for strategies that count in shared
    /// memory).
    ///
    /// ```
    /// use shmlab::counting::{Atomic, Counting, MapReduce};
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
    /// # let counts = Cells::<i64>::new(&lock, &storage);
    /// assert_eq!(Atomic.work(&counts, 0, 5)?, 0); // counted in the cell
    /// assert_eq!(counts.load(0)?, 5);
    /// assert_eq!(MapReduce.work(&counts, 0, 5)?, 5); // counted privately
    /// # Ok(()) }
    /// ```
    fn work<L: RawLock>(
        &self,
        counts: &Cells<'_, i64, L>,
        index: usize,
        n: u64,
    ) -> Result<i64, LockError<()>>;
    /// The total, from the cells and what the `workers` returned.
    ///
    /// ```
    /// use shmlab::counting::{Counting, Slots};
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
    /// # let counts = Cells::<i64>::new(&lock, &storage);
    /// let slots = Slots { stride: 1 };
    /// slots.work(&counts, 0, 2)?;
    /// slots.work(&counts, 1, 3)?;
    /// assert_eq!(slots.total(&counts, &[0, 0]), 5); // two workers' slots
    /// # Ok(()) }
    /// ```
    ///
    /// By default the single shared counter, cell 0.
    fn total<L: RawLock>(&self, counts: &Cells<'_, i64, L>, _returned: &[i64]) -> i64 {
        counts.load(0).unwrap_or_default()
    }
}

/// `store(load() + 1)` on one shared cell.
///
/// ```
/// use shmlab::counting::{Counting, Racy};
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// Racy.work(&counts, 0, 10)?; // alone, nothing can come between the steps
/// assert_eq!(Racy.total(&counts, &[0]), 10);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Racy;
/// `fetch_add(1)` on one shared cell.
///
/// ```
/// use shmlab::counting::{Atomic, Counting};
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// std::thread::scope(|s| {
///     s.spawn(|| Atomic.work(&counts, 0, 100));
///     s.spawn(|| Atomic.work(&counts, 1, 100));
/// });
/// assert_eq!(Atomic.total(&counts, &[0, 0]), 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Atomic;
/// Load and store under the segment's lock (shmlab's futex lock or the OS
/// mutex: the lock type of the segment decides).
///
/// ```
/// use shmlab::counting::{Counting, Locked};
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// std::thread::scope(|s| {
///     s.spawn(|| Locked.work(&counts, 0, 100));
///     s.spawn(|| Locked.work(&counts, 1, 100));
/// });
/// assert_eq!(Locked.total(&counts, &[0, 0]), 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Locked;
/// One cell per worker, side by side (they share cache lines); summed at
/// the end.
///
/// ```
/// use shmlab::counting::{Counting, Slots};
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// let slots = Slots { stride: 1 };
/// std::thread::scope(|s| {
///     s.spawn(|| slots.work(&counts, 0, 100));
///     s.spawn(|| slots.work(&counts, 1, 100));
/// });
/// assert_eq!((counts.load(0)?, counts.load(1)?), (100, 100));
/// assert_eq!(slots.total(&counts, &[0, 0]), 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// Cells from one worker's slot to the next.
    pub stride: usize,
}
/// A private count in each worker, returned and summed by the parent:
/// nothing is shared while counting.
///
/// ```
/// use shmlab::counting::{Counting, MapReduce};
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::{cells::Cells, element::Element, lock::FutexLock};
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0), i64::new_cell(0)];
/// # let counts = Cells::<i64>::new(&lock, &storage);
/// let kept: Vec<i64> = std::thread::scope(|s| {
///     let a = s.spawn(|| MapReduce.work(&counts, 0, 100));
///     let b = s.spawn(|| MapReduce.work(&counts, 1, 100));
///     [a, b].map(|h| h.join().unwrap().unwrap()).to_vec()
/// });
/// assert_eq!(kept, [100, 100]);
/// assert_eq!(MapReduce.total(&counts, &kept), 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MapReduce;

impl Counting for Racy {
    fn work<L: RawLock>(
        &self,
        c: &Cells<'_, i64, L>,
        _: usize,
        n: u64,
    ) -> Result<i64, LockError<()>> {
        (0..n).for_each(|_| racy_increment(c));
        Ok(0)
    }
}

impl Counting for Atomic {
    fn work<L: RawLock>(
        &self,
        c: &Cells<'_, i64, L>,
        _: usize,
        n: u64,
    ) -> Result<i64, LockError<()>> {
        (0..n).for_each(|_| atomic_increment(c));
        Ok(0)
    }
}

impl Counting for Locked {
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
    ///
    /// ```
    /// use shmlab::counting::Strategy;
    ///
    /// let lossy: Vec<Strategy> = Strategy::ALL.into_iter().filter(|s| !s.is_exact()).collect();
    /// assert_eq!(lossy, [Strategy::Racy]);
    /// ```
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
        ///
        /// Lab 08 runs them all when none is named:
        ///
        /// ```
        /// use shmlab::counting::{Strategy, count_in};
        /// use shmlab::pool::Pool;
        ///
        /// fn main() -> anyhow::Result<()> {
        ///     shmlab::entry();
        ///     let pool = Pool::new(2)?;
        ///     for strategy in Strategy::ALL {
        ///         let run = count_in(&pool, strategy, 2, 100)?;
        ///         // Only the racy strategy may lose updates.
        ///         assert!(run.exact() || !strategy.is_exact(), "{}", strategy.name());
        ///     }
        ///     Ok(())
        /// }
        /// ```
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
        ///
        /// ```
        /// use shmlab::counting::Strategy;
        ///
        /// assert_eq!(Strategy::LockedOs.name(), "locked-os");
        /// for s in Strategy::ALL {
        ///     // JSON reports spell it the same way.
        ///     assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
        /// }
        /// ```
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
        ///
        /// ```
        /// use shmlab::counting::Strategy;
        ///
        /// assert!(!Strategy::Racy.is_exact());
        /// assert!(Strategy::Atomic.is_exact());
        /// ```
        pub fn is_exact(self) -> bool {
            self != Strategy::Racy
        }

        /// Shared cells for `workers` workers.
        ///
        /// ```
        /// use shmlab::counting::{PADDED_STRIDE, Strategy};
        ///
        /// assert_eq!(Strategy::Atomic.cells(4), 1);
        /// assert_eq!(Strategy::Slots.cells(4), 4);
        /// assert_eq!(Strategy::PaddedSlots.cells(4), 4 * PADDED_STRIDE);
        /// assert_eq!(Strategy::MapReduce.cells(4), 0);
        /// ```
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
    ///
    /// In JSON reports `final_value` is called `final`:
    ///
    /// ```
    /// use shmlab::counting::{CountResult, Strategy};
    ///
    /// let run = CountResult {
    ///     strategy: Strategy::Racy,
    ///     workers: 2,
    ///     increments_per_worker: 1000,
    ///     expected: 2000,
    ///     final_value: 1391,
    ///     lost: 609,
    ///     seconds: 0.001,
    ///     ops_per_s: 2e6,
    /// };
    /// assert_eq!(serde_json::to_value(&run).unwrap()["final"], 1391);
    /// ```
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
        ///
        /// ```
        /// # use shmlab::counting::{CountResult, Strategy};
        /// # let mut run = CountResult {
        /// #     strategy: Strategy::Racy,
        /// #     workers: 2,
        /// #     increments_per_worker: 1000,
        /// #     expected: 2000,
        /// #     final_value: 2000,
        /// #     lost: 0,
        /// #     seconds: 0.001,
        /// #     ops_per_s: 2e6,
        /// # };
        /// assert!(run.exact());
        /// (run.final_value, run.lost) = (1391, 609);
        /// assert!(!run.exact());
        /// ```
        pub fn exact(&self) -> bool {
            self.lost == 0
        }
    }

    /// Why a counting run failed.
    ///
    /// ```
    /// use shmlab::counting::CountError;
    ///
    /// let err = CountError::PoolTooSmall { workers: 4, pool: 2 };
    /// assert_eq!(err.to_string(), "4 counting workers need a pool of at least 4 (it has 2)");
    /// ```
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
    ///
    /// ```
    /// use shmlab::counting::{Strategy, count_in};
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let pool = Pool::new(2)?; // started once, used for both runs
    ///     for strategy in [Strategy::Atomic, Strategy::Slots] {
    ///         assert_eq!(count_in(&pool, strategy, 2, 500)?.final_value, 1000);
    ///     }
    ///     Ok(())
    /// }
    /// ```
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

    /// Increments per worker so that one run of `strategy` takes about
    /// `run_time`: a short probe run first, since strategies differ by a
    /// factor of 100 (labs 06 and 08).
    pub(crate) fn calibrate(
        pool: &Pool,
        strategy: Strategy,
        workers: usize,
        run_time: Duration,
    ) -> Result<u64, CountError> {
        let probe = 200_000;
        let run = count_in(pool, strategy, workers, probe)?;
        let per_worker_per_s = run.ops_per_s / workers as f64;
        let n = (per_worker_per_s * run_time.as_secs_f64()) as u64;
        Ok(n.clamp(probe, 4_000_000_000))
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
