//! How a philosopher picks up and puts down forks, for each strategy, and the
//! meal loop around it.
//!
//! Written against [`crate::sync`] and [`ForkLock`], so that the loom suite
//! runs this very code with three philosopher threads (finding the naive
//! deadlock and proving `ordered` and `waiter` free of it), the thread
//! variant runs it with parking_lot's mutexes, and the lab runs it in
//! processes with shmlab's futex lock.
//!
//! One meal by hand — what [`Table::dine`] repeats, meal after meal:
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::lock::FutexLock;
//! use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
//! use std::time::Duration;
//!
//! let local = LocalTable::<FutexLock>::new(3);
//! let table = local.table();
//! let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::ZERO, together: false };
//! // The footman's permit, then fork 0 (left) and fork 1 (right).
//! table.pick_up(0, Strategy::Waiter, &waits, false, &mut NoPace)?;
//! assert_eq!(table.seats()[0].state(), SeatState::Eating);
//! table.eat(0, Strategy::Waiter, &mut NoPace);
//! table.put_down(0, Strategy::Waiter); // forks back, permit back
//! assert_eq!(table.seats()[0].meals(), 1);
//! assert!(table.forks().iter().all(|fork| fork.holder().is_none()));
//! # Ok(()) }
//! ```

use std::time::Duration;

use super::table::{ForkLock, SeatState, Table};
use crate::lock::{Acquired, RawLockError};
use crate::sync::{self, Deadline, Ordering};

/// How a philosopher gets two forks.
///
/// ```
/// use shmlab::philosophers::Strategy;
///
/// let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
/// assert_eq!(names, ["naive", "ordered", "waiter", "timeout"]);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Left fork, then right fork. Every philosopher holding its left fork
    /// and waiting for its right one is a cycle: deadlock.
    Naive,
    /// The lower-numbered fork first (a resource hierarchy): the last
    /// philosopher reaches right-then-left, so no cycle can close.
    Ordered,
    /// A footman lets at most N − 1 philosophers reach for forks at once:
    /// one seat always stays empty, so someone can always eat.
    Waiter,
    /// Left fork, then the right one with a timed lock; on timeout put the
    /// left fork back and try again after a random pause.
    Timeout,
}

impl Strategy {
    /// Every strategy, the deadlocking one first.
    ///
    /// Each in turn, with three philosopher threads at a table in this
    /// process, every one holding its first fork before anyone reaches for
    /// a second (`together`: the start that makes the naive deadlock
    /// certain):
    ///
    /// ```
    /// use shmlab::lock::FutexLock;
    /// use shmlab::philosophers::{LocalTable, Pace, Strategy, Waits};
    /// use std::time::Duration;
    ///
    /// // `timeout` pauses a random while before it tries again, as in the
    /// // lab: with equal pauses the three would retry in lock-step.
    /// struct Jitter;
    /// impl Pace for Jitter {
    ///     fn back_off(&mut self, _attempt: u32) {
    ///         std::thread::sleep(Duration::from_micros(fastrand::u64(0..200)));
    ///     }
    /// }
    /// for strategy in Strategy::ALL {
    ///     let local = LocalTable::<FutexLock>::new(3);
    ///     let table = local.table();
    ///     // Naive philosophers would wait for ever: they give up after 50 ms.
    ///     let limit = if strategy == Strategy::Naive { 50 } else { 5_000 };
    ///     let waits = Waits {
    ///         limit: Some(Duration::from_millis(limit)),
    ///         patience: Duration::from_millis(1),
    ///         together: true,
    ///     };
    ///     let everyone_ate = std::thread::scope(|s| {
    ///         let diners: Vec<_> = (0..3)
    ///             .map(|me| s.spawn(move || table.dine(me, me as u32, strategy, Some(2), &waits, &mut Jitter)))
    ///             .collect();
    ///         diners.into_iter().all(|diner| diner.join().expect("no panic").is_ok())
    ///     });
    ///     assert_eq!(everyone_ate, strategy != Strategy::Naive, "{}", strategy.name());
    /// }
    /// ```
    pub const ALL: [Strategy; 4] = [
        Strategy::Naive,
        Strategy::Ordered,
        Strategy::Waiter,
        Strategy::Timeout,
    ];

    /// The name used on the command line and in reports.
    ///
    /// ```
    /// use shmlab::philosophers::Strategy;
    ///
    /// assert_eq!(Strategy::Waiter.name(), "waiter");
    /// // JSON reports spell it the same way.
    /// assert_eq!(serde_json::to_string(&Strategy::Waiter).unwrap(), "\"waiter\"");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::Ordered => "ordered",
            Strategy::Waiter => "waiter",
            Strategy::Timeout => "timeout",
        }
    }

    /// The first and second fork philosopher `me` of `n` reaches for.
    ///
    /// ```
    /// use shmlab::philosophers::Strategy;
    ///
    /// // Philosopher 2 of 3 sits between fork 2 (left) and fork 0 (right).
    /// assert_eq!(Strategy::Naive.forks(2, 3), (2, 0)); // left first: closes the ring
    /// assert_eq!(Strategy::Ordered.forks(2, 3), (0, 2)); // lower number first
    /// ```
    pub fn forks(self, me: usize, n: usize) -> (usize, usize) {
        let (left, right) = (me, (me + 1) % n);
        match self {
            Strategy::Ordered => (left.min(right), left.max(right)),
            _ => (left, right),
        }
    }

    /// Which of Coffman's four conditions the strategy breaks, for reports.
    ///
    /// ```
    /// use shmlab::philosophers::Strategy;
    ///
    /// assert!(Strategy::Naive.breaks().ends_with("so it can deadlock"));
    /// assert!(Strategy::Timeout.breaks().starts_with("breaks hold-and-wait"));
    /// ```
    pub fn breaks(self) -> &'static str {
        match self {
            Strategy::Naive => "breaks none of Coffman's four conditions, so it can deadlock",
            Strategy::Ordered => "breaks circular wait: forks are taken in one global order",
            Strategy::Waiter => {
                "breaks circular wait: at most N-1 reach for forks, so the ring never closes"
            }
            Strategy::Timeout => {
                "breaks hold-and-wait: a philosopher that waits too long puts its fork back"
            }
        }
    }
}

/// What a philosopher does between taking forks: think, eat, pause after a
/// failed attempt. The labs sleep for random times; loom does nothing.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::philosophers::Pace;
/// # use shmlab::lock::FutexLock;
/// # use shmlab::philosophers::{LocalTable, Strategy, Waits};
/// # use std::time::Duration;
/// # let local = LocalTable::<FutexLock>::new(3);
/// # let table = local.table();
/// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
///
/// // Sleeps a fixed time at each step instead of a random one.
/// struct Steady(Duration);
/// impl Pace for Steady {
///     fn think(&mut self) { std::thread::sleep(self.0) }
///     fn eat(&mut self) { std::thread::sleep(self.0) }
/// }
/// table.dine(0, 0, Strategy::Ordered, Some(2), &waits, &mut Steady(Duration::from_micros(100)))?;
/// assert_eq!(table.seats()[0].meals(), 2);
/// # Ok(()) }
/// ```
pub trait Pace {
    /// Before getting hungry.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// use shmlab::philosophers::Pace;
    ///
    /// struct Thoughts(u32);
    /// impl Pace for Thoughts {
    ///     fn think(&mut self) {
    ///         self.0 += 1;
    ///     }
    /// }
    /// let mut thoughts = Thoughts(0);
    /// table.dine(1, 0, Strategy::Ordered, Some(3), &waits, &mut thoughts)?;
    /// assert_eq!(thoughts.0, 3); // once before each meal
    /// # Ok(()) }
    /// ```
    fn think(&mut self) {}
    /// With both forks.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// use shmlab::philosophers::Pace;
    ///
    /// struct Bites(u32);
    /// impl Pace for Bites {
    ///     fn eat(&mut self) {
    ///         self.0 += 1;
    ///     }
    /// }
    /// let mut bites = Bites(0);
    /// table.dine(0, 0, Strategy::Ordered, Some(2), &waits, &mut bites)?;
    /// assert_eq!(bites.0, 2); // once per meal, with both forks in hand
    /// # Ok(()) }
    /// ```
    fn eat(&mut self) {}
    /// After putting the first fork back (`timeout`), before trying again.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// use shmlab::philosophers::Pace;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// struct Count<'a>(&'a AtomicU32);
    /// impl Pace for Count<'_> {
    ///     fn back_off(&mut self, _attempt: u32) {
    ///         self.0.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }
    /// let backoffs = AtomicU32::new(0);
    /// table.pick_up(1, Strategy::Timeout, &waits, false, &mut NoPace)?; // forks 1 and 2
    /// std::thread::scope(|s| {
    ///     let hungry = s.spawn(|| table.pick_up(0, Strategy::Timeout, &waits, false, &mut Count(&backoffs)));
    ///     while backoffs.load(Ordering::Relaxed) == 0 {
    ///         std::thread::yield_now(); // 0 takes fork 0, times out on fork 1, puts 0 back
    ///     }
    ///     table.put_down(1, Strategy::Timeout);
    ///     hungry.join().unwrap()
    /// })?;
    /// assert_eq!(table.seats()[0].state(), SeatState::Eating);
    /// # Ok(()) }
    /// ```
    fn back_off(&mut self, attempt: u32) {
        let _ = attempt;
    }
}

/// The pace of a model checker: no time passes.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::lock::FutexLock;
/// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
/// # use std::time::Duration;
/// # let local = LocalTable::<FutexLock>::new(3);
/// # let table = local.table();
/// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
/// table.dine(0, 0, Strategy::Naive, Some(2), &waits, &mut NoPace)?;
/// assert_eq!(table.seats()[0].meals(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPace;
impl Pace for NoPace {}

/// How a philosopher waits.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::philosophers::{LocalTable, NoPace, Strategy, Waits};
/// use std::time::Duration;
///
/// let waits = Waits {
///     limit: Some(Duration::from_secs(1)), // give up rather than hang
///     patience: Duration::from_millis(1), // only the timeout strategy uses it
///     together: false,
/// };
/// let local = LocalTable::<shmlab::lock::FutexLock>::new(2);
/// local.table().dine(0, 0, Strategy::Timeout, Some(1), &waits, &mut NoPace)?;
/// assert_eq!(local.table().seats()[0].meals(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// The longest any one wait may last before the philosopher gives up
    /// (`None`: forever, the classic deadlock).
    pub limit: Option<Duration>,
    /// How long `timeout` waits for its second fork.
    pub patience: Duration,
    /// Hold the first fork and wait until every philosopher has reached for
    /// its own before reaching for the second (first meal only): makes the
    /// naive deadlock certain instead of a matter of luck.
    pub together: bool,
}

impl Waits {
    fn deadline(&self) -> Deadline {
        self.limit.map_or_else(Deadline::never, Deadline::after)
    }
}

/// Why a philosopher left the table early.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::philosophers::LeaveError;
/// # use shmlab::lock::FutexLock;
/// # use shmlab::philosophers::{LocalTable, NoPace, Strategy, Waits};
/// # use std::time::Duration;
/// # let local = LocalTable::<FutexLock>::new(3);
/// # let table = local.table();
///
/// let waits = Waits { limit: Some(Duration::from_millis(5)), patience: Duration::ZERO, together: false };
/// table.pick_up(1, Strategy::Naive, &waits, false, &mut NoPace)?; // holds forks 1 and 2
/// let stuck = table.pick_up(0, Strategy::Naive, &waits, false, &mut NoPace);
/// assert_eq!(stuck, Err(LeaveError::GaveUp { philosopher: 0, fork: 1 }));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaveError {
    /// A wait ran past [`Waits::limit`].
    #[error("philosopher {philosopher} gave up waiting for fork {fork}")]
    GaveUp {
        /// Who.
        philosopher: usize,
        /// For which fork.
        fork: usize,
    },
    /// The footman did not let it in before [`Waits::limit`].
    #[error("philosopher {philosopher} gave up waiting for the footman")]
    NoSeat {
        /// Who.
        philosopher: usize,
    },
    /// The start barrier did not settle before [`Waits::limit`].
    #[error("philosopher {philosopher} gave up at the start barrier")]
    Barrier {
        /// Who.
        philosopher: usize,
    },
    /// The OS refused a lock operation.
    #[error("a fork's lock failed: {0}")]
    Lock(String),
}

/// Which hand holds a fork: the first fork taken or the second.
#[derive(Debug, Clone, Copy)]
enum Hand {
    First = 0,
    Second = 1,
}

impl<L: ForkLock> Table<'_, L> {
    /// Philosopher `me` takes `fork` into `hand`, waiting until `deadline`;
    /// publishes the wait and then the holding for the watchdog.
    fn take_fork(
        &self,
        me: usize,
        fork: usize,
        hand: Hand,
        deadline: Deadline,
        announce: bool,
    ) -> Result<(), RawLockError> {
        let seat = &self.seats[me];
        seat.waits_for.store(fork as u32 + 1, Ordering::Release);
        seat.set_state(SeatState::Waiting);
        self.announce(announce);
        let taken = self.forks[fork].lock.take(deadline);
        seat.waits_for.store(0, Ordering::Release);
        match taken {
            Ok(how) => {
                if how == Acquired::OwnerDied {
                    seat.recovered.fetch_add(1, Ordering::Relaxed);
                }
                // With the lock held, nobody else may have this fork in hand
                // (a dead holder's mark is overwritten: it can no longer eat).
                let before = self.forks[fork]
                    .holder
                    .swap(me as u32 + 1, Ordering::AcqRel);
                if before != 0 && how == Acquired::Clean {
                    seat.violations.fetch_add(1, Ordering::Relaxed);
                }
                seat.holding[hand as usize].store(fork as u32 + 1, Ordering::Release);
                self.announce(announce);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Philosopher `me` puts `fork`, held in `hand`, back on the table.
    fn put_fork(&self, me: usize, fork: usize, hand: Hand) {
        let seat = &self.seats[me];
        seat.holding[hand as usize].store(0, Ordering::Release);
        if self.forks[fork].holder.swap(0, Ordering::AcqRel) != me as u32 + 1 {
            seat.violations.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `me` took this fork's lock in `take_fork` (it is in `hand`)
        // and has not put it down since.
        unsafe { self.forks[fork].lock.put() };
    }

    /// Wakes whoever sleeps at the start barrier, during the first meal.
    fn announce(&self, announce: bool) {
        if announce {
            self.ctl.changes.fetch_add(1, Ordering::AcqRel);
            sync::futex_wake(&self.ctl.changes, u32::MAX);
        }
    }

    /// Whether every philosopher has reached for its first fork and is
    /// either holding it, waiting for a fork someone holds, or waiting for
    /// the footman — after which no philosopher's first reach can change.
    fn settled(&self, strategy: Strategy) -> bool {
        let n = self.philosophers();
        self.seats.iter().enumerate().all(|(i, seat)| {
            let (first, _) = strategy.forks(i, n);
            let holds_first = seat.holding[0].load(Ordering::Acquire) == first as u32 + 1;
            let blocked = match seat.state() {
                SeatState::Hungry => self.ctl.footman.load(Ordering::Acquire) == 0,
                SeatState::Waiting => match seat.waits_for.load(Ordering::Acquire) {
                    0 => false,
                    f => self.forks[f as usize - 1].holder().is_some_and(|h| h != i),
                },
                SeatState::Done | SeatState::Aborted | SeatState::Failed => true,
                _ => false,
            };
            holds_first || blocked
        })
    }

    /// The start barrier of [`Waits::together`].
    fn wait_until_settled(
        &self,
        me: usize,
        strategy: Strategy,
        deadline: Deadline,
    ) -> Result<(), LeaveError> {
        loop {
            let seen = self.ctl.changes.load(Ordering::Acquire);
            if self.settled(strategy) {
                return Ok(());
            }
            if deadline.expired() {
                return Err(LeaveError::Barrier { philosopher: me });
            }
            // A nap bounds the wait even if a change slipped in between the
            // check and the sleep (the futex also returns at once then).
            sync::futex_wait(&self.ctl.changes, seen, Some(Duration::from_millis(1)));
        }
    }

    /// The footman's permit (strategy `waiter`): a counting semaphore.
    fn enter(&self, me: usize, deadline: Deadline, announce: bool) -> Result<(), LeaveError> {
        let seat = &self.seats[me];
        seat.set_state(SeatState::Hungry);
        self.announce(announce);
        let permits = &self.ctl.footman;
        let mut deadline = deadline;
        loop {
            let left = permits.load(Ordering::Acquire);
            if left > 0 {
                if permits
                    .compare_exchange(left, left - 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            if deadline.expired() {
                return Err(LeaveError::NoSeat { philosopher: me });
            }
            sync::futex_wait(permits, 0, deadline.remaining());
            deadline.waited();
        }
    }

    /// Gives the footman's permit back.
    fn leave(&self) {
        self.ctl.footman.fetch_add(1, Ordering::AcqRel);
        sync::futex_wake(&self.ctl.footman, 1);
    }

    /// Philosopher `me` picks up both forks with `strategy`.
    ///
    /// `first_meal` turns on the start barrier of [`Waits::together`].
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
    /// assert_eq!(table.forks()[1].holder(), Some(0));
    /// # Ok(()) }
    /// ```
    pub fn pick_up(
        &self,
        me: usize,
        strategy: Strategy,
        waits: &Waits,
        first_meal: bool,
        pace: &mut impl Pace,
    ) -> Result<(), LeaveError> {
        let n = self.philosophers();
        let (first, second) = strategy.forks(me, n);
        let together = waits.together && first_meal;
        let seat = &self.seats[me];
        let hungry_since = sync::now_ns();
        seat.wait_since_ns.store(hungry_since, Ordering::Release);
        if strategy == Strategy::Waiter {
            self.enter(me, waits.deadline(), together)?;
            // A philosopher who gives up must hand the footman's permit back,
            // or every failure leaves one seat fewer for the others.
            self.take_both(me, (first, second), strategy, waits, together, pace)
                .inspect_err(|_| self.leave())?;
        } else {
            self.take_both(me, (first, second), strategy, waits, together, pace)?;
        }
        seat.set_state(SeatState::Eating);
        let waited = sync::now_ns().saturating_sub(hungry_since);
        seat.max_wait_ns.fetch_max(waited, Ordering::Relaxed);
        seat.total_wait_ns.fetch_add(waited, Ordering::Relaxed);
        Ok(())
    }

    /// The fork-taking part of [`Table::pick_up`]: both forks in hand, or an
    /// error with neither.
    fn take_both(
        &self,
        me: usize,
        (first, second): (usize, usize),
        strategy: Strategy,
        waits: &Waits,
        together: bool,
        pace: &mut impl Pace,
    ) -> Result<(), LeaveError> {
        let seat = &self.seats[me];
        let mut attempt = 0u32;
        loop {
            let lost = |fork| move |e: RawLockError| lost_fork(me, fork, e);
            self.take_fork(me, first, Hand::First, waits.deadline(), together)
                .map_err(lost(first))?;
            if together && attempt == 0 {
                self.wait_until_settled(me, strategy, waits.deadline())
                    .inspect_err(|_| self.put_fork(me, first, Hand::First))?;
            }
            seat.wait_since_ns.store(sync::now_ns(), Ordering::Release);
            let second_deadline = match strategy {
                Strategy::Timeout => Deadline::after(waits.patience),
                _ => waits.deadline(),
            };
            match self.take_fork(me, second, Hand::Second, second_deadline, together) {
                Ok(()) => break,
                Err(RawLockError::Timeout) if strategy == Strategy::Timeout => {
                    // Let go of the first fork: no hold-and-wait, so no cycle
                    // can stay closed. Then pause a random while, so that the
                    // neighbours do not all retry in lock-step (livelock).
                    self.put_fork(me, first, Hand::First);
                    seat.set_state(SeatState::Thinking);
                    seat.backoffs.fetch_add(1, Ordering::Relaxed);
                    pace.back_off(attempt);
                    attempt = attempt.saturating_add(1);
                }
                Err(e) => {
                    self.put_fork(me, first, Hand::First);
                    return Err(lost_fork(me, second, e));
                }
            }
        }
        Ok(())
    }

    /// Philosopher `me` eats one meal with both forks in hand: counts it,
    /// and checks that both forks are really its own.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// table.pick_up(2, Strategy::Ordered, &waits, false, &mut NoPace)?;
    /// table.eat(2, Strategy::Ordered, &mut NoPace);
    /// assert_eq!(table.seats()[2].meals(), 1);
    /// assert_eq!(table.seats()[2].violations(), 0); // both forks were its own
    /// # Ok(()) }
    /// ```
    pub fn eat(&self, me: usize, strategy: Strategy, pace: &mut impl Pace) {
        let (first, second) = strategy.forks(me, self.philosophers());
        for fork in [first, second] {
            if self.forks[fork].holder() != Some(me) {
                self.seats[me].violations.fetch_add(1, Ordering::Relaxed);
            }
        }
        pace.eat();
        self.seats[me].meals.fetch_add(1, Ordering::Relaxed);
    }

    /// Philosopher `me` puts both forks down (second first) and, for
    /// `waiter`, gives the footman its permit back.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// table.pick_up(0, Strategy::Waiter, &waits, false, &mut NoPace)?;
    /// table.put_down(0, Strategy::Waiter); // forks down, footman's permit back
    /// assert!(table.forks().iter().all(|f| f.holder().is_none()));
    /// assert_eq!(table.seats()[0].state(), SeatState::Thinking);
    /// # Ok(()) }
    /// ```
    pub fn put_down(&self, me: usize, strategy: Strategy) {
        let (first, second) = strategy.forks(me, self.philosophers());
        self.put_fork(me, second, Hand::Second);
        self.put_fork(me, first, Hand::First);
        if strategy == Strategy::Waiter {
            self.leave();
        }
        self.seats[me].set_state(SeatState::Thinking);
    }

    /// Philosopher `me` (process or thread id `ident`) eats `meals` meals
    /// (`None`: until [`Table::stop`]), then leaves.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// // Three philosopher threads at one table, five meals each.
    /// std::thread::scope(|s| {
    ///     for me in 0..3 {
    ///         s.spawn(move || table.dine(me, me as u32, Strategy::Ordered, Some(5), &waits, &mut NoPace));
    ///     }
    /// });
    /// assert!(table.seats().iter().all(|seat| seat.meals() == 5));
    /// assert!(table.seats().iter().all(|seat| seat.state() == SeatState::Done));
    /// # Ok(()) }
    /// ```
    pub fn dine(
        &self,
        me: usize,
        ident: u32,
        strategy: Strategy,
        meals: Option<u64>,
        waits: &Waits,
        pace: &mut impl Pace,
    ) -> Result<(), LeaveError> {
        let seat = &self.seats[me];
        seat.pid.store(ident, Ordering::Release);
        let mut eaten = 0u64;
        while meals.is_none_or(|m| eaten < m) && !self.stopping() {
            pace.think();
            if let Err(e) = self.pick_up(me, strategy, waits, eaten == 0, pace) {
                seat.set_state(SeatState::Failed);
                return Err(e);
            }
            self.eat(me, strategy, pace);
            self.put_down(me, strategy);
            eaten += 1;
        }
        seat.set_state(SeatState::Done);
        self.announce(waits.together);
        Ok(())
    }
}

fn lost_fork(philosopher: usize, fork: usize, e: RawLockError) -> LeaveError {
    match e {
        RawLockError::Timeout => LeaveError::GaveUp { philosopher, fork },
        RawLockError::Os(e) => LeaveError::Lock(e.to_string()),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::{LeaveError, NoPace, Strategy, Waits};
    use crate::lock::FutexLock;
    use crate::philosophers::LocalTable;

    /// A `waiter` philosopher who gives up must hand the footman's permit
    /// back: before the fix, two failures of philosopher 0 took both of the
    /// table's permits for good, and philosopher 2 found no seat.
    #[test]
    fn a_waiter_who_gives_up_hands_the_permit_back() {
        let local = LocalTable::<FutexLock>::new(3);
        let table = local.table();
        let waits = Waits {
            limit: Some(Duration::from_millis(5)),
            patience: Duration::ZERO,
            together: false,
        };
        // Philosopher 1 eats with forks 1 and 2: one of the 2 permits left.
        table
            .pick_up(1, Strategy::Waiter, &waits, false, &mut NoPace)
            .expect("a free table");
        for _ in 0..2 {
            // Philosopher 0 gets the last permit and fork 0, then waits in
            // vain for fork 1.
            let gave_up = table.pick_up(0, Strategy::Waiter, &waits, false, &mut NoPace);
            assert!(
                matches!(
                    gave_up,
                    Err(LeaveError::GaveUp {
                        philosopher: 0,
                        fork: 1
                    })
                ),
                "{gave_up:?}"
            );
        }
        table.put_down(1, Strategy::Waiter);
        table
            .pick_up(2, Strategy::Waiter, &waits, false, &mut NoPace)
            .expect("both permits back, forks 2 and 0 free");
    }
}
