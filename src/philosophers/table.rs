//! The table: N forks, a footman, and a seat per philosopher on which the
//! philosopher publishes what it holds, what it waits for, and since when.
//!
//! Everything here is atomics and locks, so the same layout lives in a
//! shared segment (processes, [`SharedTable`]) or in an ordinary allocation
//! (threads and loom, [`LocalTable`]). The watchdog only ever *reads* the
//! seats and forks; it never takes a fork.
//!
//! A philosopher process dines at a table in a segment; the parent reads
//! what it published through its own view of the same memory:
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::philosophers::{NoPace, SeatState, SharedTable, Strategy, Waits};
//! use std::time::Duration;
//!
//! let shared = SharedTable::create(3)?;
//! let philosopher = SharedTable::open(shared.name())?; // in a philosopher process
//! let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::ZERO, together: false };
//! philosopher.table().dine(2, std::process::id(), Strategy::Ordered, Some(2), &waits, &mut NoPace)?;
//! let seat = &shared.table().seats()[2];
//! assert_eq!((seat.meals(), seat.state()), (2, SeatState::Done));
//! assert!(shared.table().forks().iter().all(|fork| fork.holder().is_none()));
//! # Ok(()) }
//! ```

use crate::lock::{Acquired, FutexLock, RawLock, RawLockError};
use crate::sync::{AtomicU32, AtomicU64, Deadline, FutexWord, Ordering};

/// The fewest philosophers a table seats: one philosopher with one fork
/// cannot even eat.
///
/// ```
/// use shmlab::lock::FutexLock;
/// use shmlab::philosophers::{DineError, LocalTable, MIN_PHILOSOPHERS, SharedTable};
///
/// let alone = SharedTable::create(MIN_PHILOSOPHERS - 1);
/// assert!(matches!(alone, Err(DineError::Philosophers(1))));
/// // A table in this process seats at least that many.
/// assert_eq!(LocalTable::<FutexLock>::new(1).table().philosophers(), MIN_PHILOSOPHERS);
/// ```
pub const MIN_PHILOSOPHERS: usize = 2;
/// The most: each is a process, and this machine has few CPUs.
///
/// ```
/// use shmlab::philosophers::{DineError, MAX_PHILOSOPHERS, SharedTable, check_philosophers};
///
/// assert!(check_philosophers(MAX_PHILOSOPHERS).is_ok());
/// let crowd = SharedTable::create(MAX_PHILOSOPHERS + 1);
/// assert!(matches!(crowd, Err(DineError::Philosophers(n)) if n == MAX_PHILOSOPHERS + 1));
/// ```
pub const MAX_PHILOSOPHERS: usize = 64;

/// A lock that can serve as a fork.
///
/// [`FutexLock`] is the fork across processes (and under loom);
/// `parking_lot::RawMutex` is the fork of the thread variant.
///
/// ```
/// use shmlab::lock::FutexLock;
/// use shmlab::philosophers::{ForkLock, LocalTable, NoPace, Strategy, Waits};
/// use std::time::Duration;
///
/// fn one_meal<L: ForkLock>() -> u64 {
///     let local = LocalTable::<L>::new(2);
///     let waits = Waits { limit: None, patience: Duration::ZERO, together: false };
///     local.table().dine(0, 0, Strategy::Ordered, Some(1), &waits, &mut NoPace).unwrap();
///     local.table().seats()[0].meals()
/// }
/// assert_eq!(one_meal::<FutexLock>(), 1); // the fork of processes and loom
/// assert_eq!(one_meal::<parking_lot::RawMutex>(), 1); // the thread variant's
/// ```
pub trait ForkLock: Send + Sync + 'static {
    /// A fork on the table, not held.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::{Acquired, FutexLock};
    /// # use shmlab::philosophers::ForkLock;
    /// # use shmlab::sync::Deadline;
    /// let fork = FutexLock::new_fork();
    /// assert_eq!(fork.holder_pid(), None); // on the table
    /// # Ok(()) }
    /// ```
    fn new_fork() -> Self;
    /// Picks the fork up, giving up when `deadline` passes.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::{Acquired, FutexLock};
    /// # use shmlab::philosophers::ForkLock;
    /// # use shmlab::sync::Deadline;
    /// let fork = FutexLock::new_fork();
    /// assert_eq!(fork.take(Deadline::never())?, Acquired::Clean);
    /// // SAFETY: this thread picked the fork up on the line above.
    /// unsafe { fork.put() };
    /// # Ok(()) }
    /// ```
    fn take(&self, deadline: Deadline) -> Result<Acquired, RawLockError>;
    /// Puts the fork down.
    ///
    /// # Safety
    /// The caller must hold the fork (a successful [`ForkLock::take`] not
    /// yet matched by a `put`).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::{Acquired, FutexLock};
    /// # use shmlab::philosophers::ForkLock;
    /// # use shmlab::sync::Deadline;
    /// let fork = FutexLock::new_fork();
    /// fork.take(Deadline::never())?;
    /// // SAFETY: this thread picked the fork up on the line above.
    /// unsafe { fork.put() };
    /// assert_eq!(fork.holder_pid(), None);
    /// # Ok(()) }
    /// ```
    unsafe fn put(&self);
    /// The pid the lock itself records as holder, if the lock records one
    /// (the watchdog cross-checks it against the seats).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::{Acquired, FutexLock};
    /// # use shmlab::philosophers::ForkLock;
    /// # use shmlab::sync::Deadline;
    /// let fork = FutexLock::new_fork();
    /// fork.take(Deadline::never())?;
    /// assert_eq!(fork.holder_pid(), Some(std::process::id()));
    /// // SAFETY: this thread picked the fork up above.
    /// unsafe { fork.put() };
    /// // parking_lot's mutex does not record its holder.
    /// assert_eq!(<parking_lot::RawMutex as ForkLock>::new_fork().holder_pid(), None);
    /// # Ok(()) }
    /// ```
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
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::lock::FutexLock;
/// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
/// # use std::time::Duration;
/// # let local = LocalTable::<FutexLock>::new(3);
/// # let table = local.table();
/// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
/// table.pick_up(0, Strategy::Ordered, &waits, false, &mut NoPace)?;
/// let holders: Vec<Option<usize>> = table.forks().iter().map(|f| f.holder()).collect();
/// assert_eq!(holders, [Some(0), Some(0), None]);
/// # Ok(()) }
/// ```
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
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// assert_eq!(table.forks()[2].holder(), None); // on the table
    /// table.pick_up(2, Strategy::Naive, &waits, false, &mut NoPace)?; // forks 2 and 0
    /// assert_eq!(table.forks()[2].holder(), Some(2));
    /// # Ok(()) }
    /// ```
    pub fn holder(&self) -> Option<usize> {
        match self.holder.load(Ordering::Acquire) {
            0 => None,
            h => Some(h as usize - 1),
        }
    }
}

/// What a philosopher is doing, as published on its seat.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::lock::FutexLock;
/// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
/// # use std::time::Duration;
/// # let local = LocalTable::<FutexLock>::new(3);
/// # let table = local.table();
/// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
/// assert_eq!(table.seats()[0].state(), SeatState::Thinking); // not seated yet
/// table.dine(0, 0, Strategy::Ordered, Some(1), &waits, &mut NoPace)?;
/// assert_eq!(table.seats()[0].state(), SeatState::Done);
/// # Ok(()) }
/// ```
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
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::lock::FutexLock;
/// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
/// # use std::time::Duration;
/// # let local = LocalTable::<FutexLock>::new(3);
/// # let table = local.table();
/// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
/// table.dine(1, 0, Strategy::Ordered, Some(4), &waits, &mut NoPace)?;
/// let seat = &table.seats()[1];
/// assert_eq!((seat.state(), seat.meals(), seat.violations()), (SeatState::Done, 4, 0));
/// # Ok(()) }
/// ```
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
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// table.pick_up(0, Strategy::Ordered, &waits, false, &mut NoPace)?;
    /// assert_eq!(table.seats()[0].state(), SeatState::Eating);
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> SeatState {
        SeatState::from_tag(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: SeatState) {
        self.state.store(state as u32, Ordering::Release);
    }

    /// Meals eaten so far.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// table.dine(0, 0, Strategy::Ordered, Some(2), &waits, &mut NoPace)?;
    /// assert_eq!(table.seats()[0].meals(), 2);
    /// # Ok(()) }
    /// ```
    pub fn meals(&self) -> u64 {
        self.meals.load(Ordering::Relaxed)
    }

    /// Times a fork was found in another philosopher's hand (must be 0).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// table.dine(0, 0, Strategy::Ordered, Some(2), &waits, &mut NoPace)?;
    /// assert_eq!(table.seats()[0].violations(), 0); // the forks were exclusive
    /// # Ok(()) }
    /// ```
    pub fn violations(&self) -> u64 {
        self.violations.load(Ordering::Relaxed)
    }
}

/// The table's own words: how many seats, the footman's permits, a change
/// counter the start barrier sleeps on, and the parent's "stop" flag.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct TableCtl {
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
///
/// ```
/// use shmlab::lock::FutexLock;
/// use shmlab::philosophers::{LocalTable, Table};
///
/// let local = LocalTable::<FutexLock>::new(4);
/// let table: Table<'_, FutexLock> = local.table(); // a view: Copy, shared by threads
/// std::thread::scope(|s| {
///     s.spawn(move || table.stop());
/// });
/// assert!(local.table().stopping());
/// ```
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
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// assert_eq!(table.philosophers(), 3);
    /// # Ok(()) }
    /// ```
    pub fn philosophers(&self) -> usize {
        self.seats.len()
    }

    /// The seats, in philosopher order.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// assert_eq!(table.seats().len(), 3);
    /// assert!(table.seats().iter().all(|seat| seat.meals() == 0));
    /// # Ok(()) }
    /// ```
    pub fn seats(&self) -> &'a [Seat] {
        self.seats
    }

    /// The forks, in fork order.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// assert!(table.forks().iter().all(|fork| fork.holder().is_none()));
    /// # Ok(()) }
    /// ```
    pub fn forks(&self) -> &'a [Fork<L>] {
        self.forks
    }

    /// Asks every philosopher to finish its current meal and leave.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// // A philosopher that dines until told to stop.
    /// std::thread::scope(|s| {
    ///     let diner = s.spawn(|| table.dine(0, 0, Strategy::Ordered, None, &waits, &mut NoPace));
    ///     while table.seats()[0].meals() < 10 {
    ///         std::thread::yield_now();
    ///     }
    ///     table.stop();
    ///     diner.join().unwrap()
    /// })?;
    /// assert_eq!(table.seats()[0].state(), SeatState::Done);
    /// # Ok(()) }
    /// ```
    pub fn stop(&self) {
        self.ctl.stop.store(1, Ordering::Release);
    }

    /// Whether [`Table::stop`] was called.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// assert!(!table.stopping());
    /// table.stop();
    /// assert!(table.stopping());
    /// # Ok(()) }
    /// ```
    pub fn stopping(&self) -> bool {
        self.ctl.stop.load(Ordering::Acquire) != 0
    }
}

/// A table in this process's memory: for the thread variant and for loom.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::philosophers::{LocalTable, NoPace, Strategy, Waits};
/// use std::time::Duration;
///
/// // The thread variant's forks: parking_lot mutexes.
/// let local = LocalTable::<parking_lot::RawMutex>::new(2);
/// let waits = Waits { limit: None, patience: Duration::ZERO, together: false };
/// local.table().dine(1, 0, Strategy::Waiter, Some(3), &waits, &mut NoPace)?;
/// assert_eq!(local.table().seats()[1].meals(), 3);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LocalTable<L> {
    ctl: TableCtl,
    forks: Vec<Fork<L>>,
    seats: Vec<Seat>,
}

impl<L: ForkLock> LocalTable<L> {
    /// A table for `philosophers` (at least 2), every fork on it.
    ///
    /// ```
    /// use shmlab::lock::FutexLock;
    /// use shmlab::philosophers::LocalTable;
    ///
    /// assert_eq!(LocalTable::<FutexLock>::new(5).table().philosophers(), 5);
    /// assert_eq!(LocalTable::<FutexLock>::new(1).table().philosophers(), 2); // at least 2
    /// ```
    pub fn new(philosophers: usize) -> Self {
        let philosophers = philosophers.max(MIN_PHILOSOPHERS);
        LocalTable {
            ctl: TableCtl::new(philosophers),
            forks: (0..philosophers).map(|_| Fork::new()).collect(),
            seats: (0..philosophers).map(|_| Seat::new()).collect(),
        }
    }

    /// The table to dine at.
    ///
    /// ```
    /// use shmlab::lock::FutexLock;
    /// use shmlab::philosophers::LocalTable;
    ///
    /// let local = LocalTable::<FutexLock>::new(3);
    /// let (a, b) = (local.table(), local.table());
    /// a.stop();
    /// assert!(b.stopping()); // two views of the same table
    /// ```
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
        ///
        /// ```
        /// # fn main() -> anyhow::Result<()> {
        /// use shmlab::philosophers::SharedTable;
        ///
        /// let shared = SharedTable::create(3)?;
        /// assert_eq!(shared.table().philosophers(), 3);
        /// assert!(SharedTable::create(65).is_err()); // more than MAX_PHILOSOPHERS
        /// # Ok(()) }
        /// ```
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
        ///
        /// ```
        /// # fn main() -> anyhow::Result<()> {
        /// use shmlab::philosophers::SharedTable;
        ///
        /// let shared = SharedTable::create(4)?;
        /// // A philosopher process would do this with the name it was given:
        /// let seen = SharedTable::open(shared.name())?;
        /// assert_eq!(seen.table().philosophers(), 4); // read from the segment
        /// # Ok(()) }
        /// ```
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
        ///
        /// ```
        /// # fn main() -> anyhow::Result<()> {
        /// use shmlab::philosophers::SharedTable;
        ///
        /// let shared = SharedTable::create(2)?;
        /// assert!(std::path::Path::new("/dev/shm").join(shared.name()).exists());
        /// # Ok(()) }
        /// ```
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
        ///
        /// ```
        /// # fn main() -> anyhow::Result<()> {
        /// use shmlab::philosophers::{NoPace, SharedTable, Strategy, Waits};
        /// use std::time::Duration;
        ///
        /// let shared = SharedTable::create(2)?;
        /// let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::ZERO, together: false };
        /// shared.table().dine(0, std::process::id(), Strategy::Ordered, Some(2), &waits, &mut NoPace)?;
        /// assert_eq!(shared.table().seats()[0].meals(), 2);
        /// # Ok(()) }
        /// ```
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
