//! The table: N forks, a footman, and a seat per philosopher on which the
//! philosopher publishes what it holds, what it waits for, and since when.
//!
//! Everything here is atomics and locks, so the same layout lives in a
//! shared segment (processes, [`SharedTable`]) or in an ordinary allocation
//! (threads and loom, [`LocalTable`]). The watchdog only ever *reads* the
//! seats and forks; it never takes a fork.

use crate::lock::{Acquired, FutexLock, RawLock, RawLockError};
use crate::sync::{AtomicU32, AtomicU64, Deadline, FutexWord, Ordering};

/// The fewest philosophers a table seats: one philosopher with one fork
/// cannot even eat.
pub const MIN_PHILOSOPHERS: usize = 2;
/// The most: each is a process, and this machine has few CPUs.
pub const MAX_PHILOSOPHERS: usize = 64;

/// A lock that can serve as a fork.
///
/// [`FutexLock`] is the fork across processes (and under loom);
/// `parking_lot::RawMutex` is the fork of the thread variant.
pub trait ForkLock: Send + Sync + 'static {
    /// A fork on the table, not held.
    fn new_fork() -> Self;
    /// Picks the fork up, giving up when `deadline` passes.
    fn take(&self, deadline: Deadline) -> Result<Acquired, RawLockError>;
    /// Puts the fork down.
    ///
    /// # Safety
    /// The caller must hold the fork (a successful [`ForkLock::take`] not
    /// yet matched by a `put`).
    unsafe fn put(&self);
    /// The pid the lock itself records as holder, if the lock records one
    /// (the watchdog cross-checks it against the seats).
    fn holder_pid(&self) -> Option<u32>;
}

impl ForkLock for FutexLock {
    fn new_fork() -> Self {
        FutexLock::new()
    }

    fn take(&self, deadline: Deadline) -> Result<Acquired, RawLockError> {
        self.lock_until(deadline)
    }

    unsafe fn put(&self) {
        // SAFETY: the caller holds the fork, as `put` requires.
        unsafe { self.unlock() }
    }

    fn holder_pid(&self) -> Option<u32> {
        self.holder()
    }
}

#[cfg(not(loom))]
impl ForkLock for parking_lot::RawMutex {
    fn new_fork() -> Self {
        <parking_lot::RawMutex as parking_lot::lock_api::RawMutex>::INIT
    }

    fn take(&self, deadline: Deadline) -> Result<Acquired, RawLockError> {
        use parking_lot::lock_api::{RawMutex, RawMutexTimed};
        match deadline.remaining() {
            // An untimed wait: the only kind parking_lot's deadlock detector
            // looks at (a thread parked with a timeout can still move on).
            None => {
                self.lock();
                Ok(Acquired::Clean)
            }
            Some(left) if self.try_lock_for(left) => Ok(Acquired::Clean),
            Some(_) => Err(RawLockError::Timeout),
        }
    }

    unsafe fn put(&self) {
        // SAFETY: the caller holds the fork, as `put` requires.
        unsafe { parking_lot::lock_api::RawMutex::unlock(self) }
    }

    fn holder_pid(&self) -> Option<u32> {
        None
    }
}

/// One fork: the lock, and which philosopher holds it (philosopher + 1; 0 =
/// on the table). The holder is written by the philosopher right after it
/// takes the lock and cleared right before it puts the lock down, so the
/// watchdog can name the holder; each fork has a cache line to itself.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Fork<L> {
    pub(crate) lock: L,
    pub(crate) holder: AtomicU32,
}

impl<L: ForkLock> Fork<L> {
    fn new() -> Self {
        Fork {
            lock: L::new_fork(),
            holder: AtomicU32::new(0),
        }
    }

    /// The philosopher holding this fork, as the fork says.
    pub fn holder(&self) -> Option<usize> {
        match self.holder.load(Ordering::Acquire) {
            0 => None,
            h => Some(h as usize - 1),
        }
    }
}

/// What a philosopher is doing, as published on its seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeatState {
    /// Not at the table yet, or thinking between meals.
    Thinking = 0,
    /// Waiting for the footman's permission to reach for forks.
    Hungry = 1,
    /// Waiting for the fork in `waits_for`.
    Waiting = 2,
    /// Holding both forks.
    Eating = 3,
    /// Ate every meal and left.
    Done = 4,
    /// Removed by the watchdog to break a deadlock.
    Aborted = 5,
    /// Gave up (a wait ran past the run's time limit) or failed.
    Failed = 6,
}

impl SeatState {
    fn from_tag(tag: u32) -> SeatState {
        match tag {
            1 => SeatState::Hungry,
            2 => SeatState::Waiting,
            3 => SeatState::Eating,
            4 => SeatState::Done,
            5 => SeatState::Aborted,
            6 => SeatState::Failed,
            _ => SeatState::Thinking,
        }
    }
}

/// A philosopher's seat: what it publishes for the watchdog and the report.
/// Only its philosopher writes it (the watchdog writes `state` once, when it
/// aborts a philosopher that can no longer run).
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Seat {
    /// Process id (thread id in the thread variant) of the philosopher.
    pub(crate) pid: AtomicU32,
    /// A [`SeatState`].
    pub(crate) state: AtomicU32,
    /// The fork waited for, + 1 (0 = none).
    pub(crate) waits_for: AtomicU32,
    /// The forks held, each + 1 (0 = empty hand): first and second.
    pub(crate) holding: [AtomicU32; 2],
    /// When the current wait began ([`crate::sync::now_ns`]).
    pub(crate) wait_since_ns: AtomicU64,
    /// Meals eaten.
    pub(crate) meals: AtomicU64,
    /// The longest wait from hungry to eating.
    pub(crate) max_wait_ns: AtomicU64,
    /// Every wait from hungry to eating, summed.
    pub(crate) total_wait_ns: AtomicU64,
    /// Times the `timeout` strategy put its first fork back.
    pub(crate) backoffs: AtomicU64,
    /// Forks taken over from a holder that died with them.
    pub(crate) recovered: AtomicU64,
    /// Times a fork was found in another philosopher's hand while this one
    /// held its lock: must stay 0, or the forks are not exclusive.
    pub(crate) violations: AtomicU64,
}

impl Seat {
    fn new() -> Self {
        Seat {
            pid: AtomicU32::new(0),
            state: AtomicU32::new(0),
            waits_for: AtomicU32::new(0),
            holding: [AtomicU32::new(0), AtomicU32::new(0)],
            wait_since_ns: AtomicU64::new(0),
            meals: AtomicU64::new(0),
            max_wait_ns: AtomicU64::new(0),
            total_wait_ns: AtomicU64::new(0),
            backoffs: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            violations: AtomicU64::new(0),
        }
    }

    /// What the philosopher is doing.
    pub fn state(&self) -> SeatState {
        SeatState::from_tag(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: SeatState) {
        self.state.store(state as u32, Ordering::Release);
    }

    /// Meals eaten so far.
    pub fn meals(&self) -> u64 {
        self.meals.load(Ordering::Relaxed)
    }

    /// Times a fork was found in another philosopher's hand (must be 0).
    pub fn violations(&self) -> u64 {
        self.violations.load(Ordering::Relaxed)
    }
}

/// The table's own words: how many seats, the footman's permits, a change
/// counter the start barrier sleeps on, and the parent's "stop" flag.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct TableCtl {
    pub(crate) philosophers: AtomicU32,
    /// Permits left: philosophers − 1 for the `waiter` strategy.
    pub(crate) footman: FutexWord,
    /// Bumped on every published change during the first meal.
    pub(crate) changes: FutexWord,
    /// Non-zero: finish the current meal and leave (duration mode).
    pub(crate) stop: AtomicU32,
}

impl TableCtl {
    fn new(philosophers: usize) -> Self {
        TableCtl {
            philosophers: AtomicU32::new(philosophers as u32),
            footman: FutexWord::new(philosophers as u32 - 1),
            changes: FutexWord::new(0),
            stop: AtomicU32::new(0),
        }
    }
}

/// A view of a table: its control words, its forks and its seats, wherever
/// they live.
#[derive(Debug)]
pub struct Table<'a, L> {
    pub(crate) ctl: &'a TableCtl,
    pub(crate) forks: &'a [Fork<L>],
    pub(crate) seats: &'a [Seat],
}

impl<L> Clone for Table<'_, L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L> Copy for Table<'_, L> {}

impl<'a, L: ForkLock> Table<'a, L> {
    /// How many philosophers (and forks).
    pub fn philosophers(&self) -> usize {
        self.seats.len()
    }

    /// The seats, in philosopher order.
    pub fn seats(&self) -> &'a [Seat] {
        self.seats
    }

    /// The forks, in fork order.
    pub fn forks(&self) -> &'a [Fork<L>] {
        self.forks
    }

    /// Asks every philosopher to finish its current meal and leave.
    pub fn stop(&self) {
        self.ctl.stop.store(1, Ordering::Release);
    }

    /// Whether [`Table::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.ctl.stop.load(Ordering::Acquire) != 0
    }
}

/// A table in this process's memory: for the thread variant and for loom.
#[derive(Debug)]
pub struct LocalTable<L> {
    ctl: TableCtl,
    forks: Vec<Fork<L>>,
    seats: Vec<Seat>,
}

impl<L: ForkLock> LocalTable<L> {
    /// A table for `philosophers` (at least 2), every fork on it.
    pub fn new(philosophers: usize) -> Self {
        let philosophers = philosophers.max(MIN_PHILOSOPHERS);
        LocalTable {
            ctl: TableCtl::new(philosophers),
            forks: (0..philosophers).map(|_| Fork::new()).collect(),
            seats: (0..philosophers).map(|_| Seat::new()).collect(),
        }
    }

    /// The table to dine at.
    pub fn table(&self) -> Table<'_, L> {
        Table {
            ctl: &self.ctl,
            forks: &self.forks,
            seats: &self.seats,
        }
    }
}

#[cfg(not(loom))]
pub use shared::SharedTable;

#[cfg(not(loom))]
mod shared {
    use std::mem::size_of;

    use super::{Fork, Seat, Table, TableCtl};
    use crate::element::ElementType;
    use crate::lock::{FutexLock, LockKind};
    use crate::philosophers::DineError;
    use crate::shm::{ObjectKind, Segment, Spec};
    use crate::sync::Ordering;

    const CTL: usize = size_of::<TableCtl>();
    const FORK: usize = size_of::<Fork<FutexLock>>();
    const SEAT: usize = size_of::<Seat>();
    // The parts follow each other without gaps and stay 64-byte aligned.
    const _: () = assert!(CTL % 64 == 0 && FORK % 64 == 0 && SEAT % 64 == 0);

    fn spec() -> Spec {
        Spec {
            kind: ObjectKind::Table,
            element: ElementType::U64,
            lock: LockKind::Futex,
        }
    }

    fn words(philosophers: usize) -> usize {
        (CTL + philosophers * (FORK + SEAT)) / 8
    }

    /// A table in a named shared segment, for philosophers that are
    /// processes: `[TableCtl][Fork; N][Seat; N]` in the segment's cells.
    ///
    /// ```
    /// use shmlab::philosophers::SharedTable;
    ///
    /// let table = SharedTable::create(5).unwrap();
    /// // A philosopher process: SharedTable::open(table.name())
    /// assert_eq!(table.table().philosophers(), 5);
    /// assert!(table.table().forks().iter().all(|f| f.holder().is_none()));
    /// ```
    #[derive(Debug)]
    pub struct SharedTable {
        segment: Segment,
        philosophers: usize,
    }

    impl SharedTable {
        /// Lays a table for `philosophers` in a new segment.
        pub fn create(philosophers: usize) -> Result<SharedTable, DineError> {
            super::super::check_philosophers(philosophers)?;
            let segment =
                Segment::create::<u64, FutexLock>(ObjectKind::Table, None, words(philosophers), 0)?;
            let table = SharedTable {
                segment,
                philosophers,
            };
            // Zeroed memory is a table with every fork down and no permits:
            // set the size and the footman's permits.
            let ctl = table.ctl();
            ctl.philosophers
                .store(philosophers as u32, Ordering::Relaxed);
            ctl.footman
                .store(philosophers as u32 - 1, Ordering::Release);
            Ok(table)
        }

        /// Opens the table another process laid.
        pub fn open(name: &str) -> Result<SharedTable, DineError> {
            let segment = Segment::open(name, spec())?;
            if segment.len() * 8 < CTL {
                return Err(DineError::Malformed);
            }
            let mut table = SharedTable {
                segment,
                philosophers: 0,
            };
            let philosophers = table.ctl().philosophers.load(Ordering::Acquire) as usize;
            if super::super::check_philosophers(philosophers).is_err()
                || words(philosophers) > table.segment.len()
            {
                return Err(DineError::Malformed);
            }
            table.philosophers = philosophers;
            Ok(table)
        }

        /// The segment's name, for the philosopher processes.
        pub fn name(&self) -> &str {
            self.segment.name()
        }

        fn ctl(&self) -> &TableCtl {
            // SAFETY: the segment holds at least CTL bytes of cells (created
            // so; checked on open), 64-byte aligned (DATA_OFFSET in a
            // page-aligned mapping). TableCtl is repr(C) atomics only, valid
            // for any bits, and these bytes are only ever used as a TableCtl.
            unsafe { &*self.segment.cells::<u64>().as_ptr().cast::<TableCtl>() }
        }

        /// The table to dine at (or to watch).
        pub fn table(&self) -> Table<'_, FutexLock> {
            let base = self.segment.cells::<u64>().as_ptr().cast::<u8>();
            let n = self.philosophers;
            // SAFETY: the cells hold CTL + n × (FORK + SEAT) bytes (`words`,
            // checked on open), laid out as [TableCtl][Fork; n][Seat; n];
            // every part starts 64-byte aligned (the sizes are multiples of
            // 64). Fork<FutexLock> and Seat are repr(C) atomics (a FutexLock
            // is one atomic word), valid for any bits — all-zero is a fork on
            // the table and an empty seat. They live as long as `self`.
            unsafe {
                Table {
                    ctl: self.ctl(),
                    forks: std::slice::from_raw_parts(base.add(CTL).cast::<Fork<FutexLock>>(), n),
                    seats: std::slice::from_raw_parts(base.add(CTL + n * FORK).cast::<Seat>(), n),
                }
            }
        }
    }
}
