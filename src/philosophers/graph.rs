//! The watchdog's view: a snapshot of the table, the wait-for graph built
//! from it, and the cycle that is a deadlock.
//!
//! A philosopher that waits for a fork has one edge, to the philosopher
//! holding that fork. Each philosopher waits for at most one fork, so every
//! node has at most one outgoing edge: following edges from a waiter either
//! reaches someone who is not waiting (slow, not stuck) or comes back to a
//! philosopher already visited — a cycle, which no one in it can leave.
//!
//! A philosopher waiting for a fork that an eating one holds: an edge, but
//! no cycle — slow, not stuck:
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::philosophers::graph::Snapshot;
//! use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
//! use shmlab::sync::now_ns;
//! use std::time::Duration;
//!
//! let local = LocalTable::<parking_lot::RawMutex>::new(3); // the thread variant's forks
//! let table = local.table();
//! let waits = Waits { limit: Some(Duration::from_secs(5)), patience: Duration::ZERO, together: false };
//! table.pick_up(1, Strategy::Naive, &waits, false, &mut NoPace)?; // 1 eats with forks 1 and 2
//! std::thread::scope(|s| {
//!     let hungry = s.spawn(|| table.pick_up(0, Strategy::Naive, &waits, false, &mut NoPace));
//!     // Watch until 0 holds fork 0 and waits for fork 1.
//!     let snapshot = loop {
//!         let snapshot = Snapshot::take(&table);
//!         if snapshot.seats[0].holds == [0] && snapshot.seats[0].waits_for == Some(1) {
//!             break snapshot;
//!         }
//!         std::thread::yield_now();
//!     };
//!     // Its edge leads to 1, who holds fork 1 and is eating, not waiting:
//!     // the path ends there.
//!     assert_eq!(snapshot.holders[1], Some(1));
//!     assert_eq!(snapshot.seats[1].state, SeatState::Eating);
//!     assert!(snapshot.cycle(now_ns(), 0).is_none());
//!     table.put_down(1, Strategy::Naive); // 1 finishes; 0 gets fork 1
//!     hungry.join().expect("no panic")
//! })?;
//! assert_eq!(table.seats()[0].state(), SeatState::Eating);
//! # Ok(()) }
//! ```

use serde::Serialize;

use super::table::{ForkLock, SeatState, Table};
use crate::sync::Ordering;

/// One seat as the watchdog read it.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::lock::FutexLock;
/// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
/// # use std::time::Duration;
/// # let local = LocalTable::<FutexLock>::new(3);
/// # let table = local.table();
/// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
/// use shmlab::philosophers::graph::Snapshot;
///
/// table.pick_up(0, Strategy::Ordered, &waits, false, &mut NoPace)?;
/// let seat = &Snapshot::take(&table).seats[0];
/// assert_eq!((seat.state, &seat.holds, seat.waits_for), (SeatState::Eating, &vec![0, 1], None));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatView {
    /// Process (or thread) id.
    pub pid: u32,
    /// What it was doing.
    pub state: SeatState,
    /// Forks in hand.
    pub holds: Vec<usize>,
    /// The fork it waits for.
    pub waits_for: Option<usize>,
    /// When that wait began ([`crate::sync::now_ns`]).
    pub wait_since_ns: u64,
}

/// Everything the watchdog reads, at one moment (each word atomically;
/// the whole not atomically — see [`Snapshot::same_waits`]).
///
/// ```
/// use shmlab::philosophers::SeatState;
/// use shmlab::philosophers::graph::{SeatView, Snapshot};
///
/// fn waiting(me: usize, holds: usize, waits_for: usize) -> SeatView {
///     let (pid, holds, waits_for) = (100 + me as u32, vec![holds], Some(waits_for));
///     SeatView { pid, state: SeatState::Waiting, holds, waits_for, wait_since_ns: 1_000 }
/// }
/// // 0 holds fork 0 and waits for fork 1; 1 holds fork 1 and waits for fork 0.
/// let snapshot = Snapshot {
///     seats: vec![waiting(0, 0, 1), waiting(1, 1, 0)],
///     holders: vec![Some(0), Some(1)],
///     lock_pids: vec![Some(100), Some(101)],
/// };
/// let cycle = snapshot.cycle(10_000, 5_000).expect("a deadlock");
/// assert_eq!(cycle.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Per philosopher.
    pub seats: Vec<SeatView>,
    /// Per fork: the philosopher holding it, as the fork says.
    pub holders: Vec<Option<usize>>,
    /// Per fork: the pid the lock word records, if the lock records one.
    pub lock_pids: Vec<Option<u32>>,
}

/// One edge of a deadlock cycle, in the words of PostgreSQL's report.
///
/// ```
/// use shmlab::philosophers::graph::Edge;
///
/// let edge = Edge {
///     philosopher: 0,
///     pid: 4242,
///     holds: vec![0],
///     waits_for: 1,
///     held_by: 1,
///     held_by_pid: 4243,
///     waited_ms: 300.0,
/// };
/// assert_eq!(serde_json::to_value(&edge).unwrap()["held_by"], 1); // as in JSON reports
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    /// The waiting philosopher.
    pub philosopher: usize,
    /// Its process id (thread id in the thread variant).
    pub pid: u32,
    /// The forks it holds.
    pub holds: Vec<usize>,
    /// The fork it waits for.
    pub waits_for: usize,
    /// The philosopher holding that fork: the next edge's philosopher.
    pub held_by: usize,
    /// That philosopher's process (or thread) id.
    pub held_by_pid: u32,
    /// How long it had waited when the watchdog reported.
    pub waited_ms: f64,
}

impl Edge {
    /// `philosopher 0 (pid 4242) holds fork 0 and waits for fork 1, held by
    /// philosopher 1 (pid 4243)`.
    ///
    /// ```
    /// use shmlab::philosophers::graph::Edge;
    ///
    /// let edge = Edge {
    ///     philosopher: 0,
    ///     pid: 4242,
    ///     holds: vec![0],
    ///     waits_for: 1,
    ///     held_by: 1,
    ///     held_by_pid: 4243,
    ///     waited_ms: 300.0,
    /// };
    /// assert_eq!(
    ///     edge.sentence("pid"),
    ///     "philosopher 0 (pid 4242) holds fork 0 and waits for fork 1, held by philosopher 1 (pid 4243)"
    /// );
    /// ```
    pub fn sentence(&self, id: &str) -> String {
        let holds = match self.holds.as_slice() {
            [] => "holds no fork".to_string(),
            [f] => format!("holds fork {f}"),
            forks => format!(
                "holds forks {}",
                forks
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        };
        format!(
            "philosopher {} ({id} {}) {holds} and waits for fork {}, held by philosopher {} ({id} {})",
            self.philosopher, self.pid, self.waits_for, self.held_by, self.held_by_pid
        )
    }
}

impl Snapshot {
    /// Reads every seat and fork of `table`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::philosophers::{LocalTable, NoPace, SeatState, Strategy, Waits};
    /// # use std::time::Duration;
    /// # let local = LocalTable::<FutexLock>::new(3);
    /// # let table = local.table();
    /// # let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
    /// use shmlab::philosophers::graph::Snapshot;
    ///
    /// table.pick_up(1, Strategy::Ordered, &waits, false, &mut NoPace)?;
    /// let snapshot = Snapshot::take(&table);
    /// assert_eq!(snapshot.holders, [None, Some(1), Some(1)]);
    /// // The futex forks also record the holder's pid.
    /// assert_eq!(snapshot.lock_pids[1], Some(std::process::id()));
    /// # Ok(()) }
    /// ```
    pub fn take<L: ForkLock>(table: &Table<'_, L>) -> Snapshot {
        let seats = table
            .seats
            .iter()
            .map(|seat| {
                let fork = |word: u32| word.checked_sub(1).map(|f| f as usize);
                SeatView {
                    pid: seat.pid.load(Ordering::Acquire),
                    state: seat.state(),
                    holds: seat
                        .holding
                        .iter()
                        .filter_map(|h| fork(h.load(Ordering::Acquire)))
                        .collect(),
                    waits_for: fork(seat.waits_for.load(Ordering::Acquire)),
                    wait_since_ns: seat.wait_since_ns.load(Ordering::Acquire),
                }
            })
            .collect();
        Snapshot {
            seats,
            holders: table.forks.iter().map(|f| f.holder()).collect(),
            lock_pids: table.forks.iter().map(|f| f.lock.holder_pid()).collect(),
        }
    }

    /// The philosopher `who` waits for, if it waits for a fork that a live
    /// philosopher holds — and, where the lock records its holder's pid,
    /// the lock agrees.
    fn waits_on(&self, who: usize) -> Option<(usize, usize)> {
        let seat = self.seats.get(who)?;
        if seat.state != SeatState::Waiting {
            return None;
        }
        let fork = seat.waits_for?;
        let holder = (*self.holders.get(fork)?)?;
        let holder_seat = self.seats.get(holder)?;
        let alive = !matches!(
            holder_seat.state,
            SeatState::Aborted | SeatState::Done | SeatState::Failed
        );
        let lock_agrees = match self.lock_pids.get(fork).copied().flatten() {
            // A futex fork records the holder's *process*: when that is the
            // watchdog's own process, the philosophers are its threads and
            // the pid cannot tell them apart — trust the table's record.
            Some(pid) => pid == holder_seat.pid || pid == crate::sync::owner_id(),
            None => true,
        };
        (holder != who && alive && lock_agrees && holder_seat.holds.contains(&fork))
            .then_some((fork, holder))
    }

    /// A cycle in the wait-for graph whose every member has waited at least
    /// `min_wait_ns` at `now_ns`, as edges starting from its lowest-numbered
    /// philosopher.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::philosophers::SeatState;
    /// # use shmlab::philosophers::graph::{SeatView, Snapshot};
    /// # fn waiting(me: usize, holds: usize, waits_for: usize) -> SeatView {
    /// #     let (pid, holds, waits_for) = (100 + me as u32, vec![holds], Some(waits_for));
    /// #     SeatView { pid, state: SeatState::Waiting, holds, waits_for, wait_since_ns: 1_000 }
    /// # }
    /// # // 0 holds fork 0 and waits for fork 1; 1 holds fork 1 and waits for fork 0.
    /// # let snapshot = Snapshot {
    /// #     seats: vec![waiting(0, 0, 1), waiting(1, 1, 0)],
    /// #     holders: vec![Some(0), Some(1)],
    /// #     lock_pids: vec![Some(100), Some(101)],
    /// # };
    /// // Both have waited since 1_000 ns: at 10_000 that is 9_000 ns.
    /// let cycle = snapshot.cycle(10_000, 5_000).expect("old enough: a deadlock");
    /// assert_eq!((cycle[0].philosopher, cycle[0].waits_for, cycle[0].held_by), (0, 1, 1));
    /// assert_eq!((cycle[1].philosopher, cycle[1].waits_for, cycle[1].held_by), (1, 0, 0));
    /// assert!(snapshot.cycle(10_000, 9_500).is_none()); // too young to call
    /// # Ok(()) }
    /// ```
    pub fn cycle(&self, now_ns: u64, min_wait_ns: u64) -> Option<Vec<Edge>> {
        let n = self.seats.len();
        for start in 0..n {
            // Follow the single outgoing edge until a repeat or a dead end.
            let mut path = vec![start];
            let mut at = start;
            while let Some((_, next)) = self.waits_on(at) {
                if let Some(pos) = path.iter().position(|&p| p == next) {
                    match self.edges(&path[pos..], now_ns, min_wait_ns) {
                        Some(edges) => return Some(edges),
                        None => break, // a cycle, but too young to call
                    }
                }
                path.push(next);
                at = next;
                if path.len() > n {
                    break;
                }
            }
        }
        None
    }

    fn edges(&self, members: &[usize], now_ns: u64, min_wait_ns: u64) -> Option<Vec<Edge>> {
        let min = *members.iter().min()?;
        let lowest = members.iter().position(|&m| m == min)?;
        let mut edges = Vec::with_capacity(members.len());
        for k in 0..members.len() {
            let who = members[(lowest + k) % members.len()];
            let (fork, holder) = self.waits_on(who)?;
            let seat = &self.seats[who];
            let waited = now_ns.saturating_sub(seat.wait_since_ns);
            if waited < min_wait_ns {
                return None;
            }
            edges.push(Edge {
                philosopher: who,
                pid: seat.pid,
                holds: seat.holds.clone(),
                waits_for: fork,
                held_by: holder,
                held_by_pid: self.seats[holder].pid,
                waited_ms: waited as f64 / 1e6,
            });
        }
        Some(edges)
    }

    /// Whether every member of `cycle` is still in the same wait (same fork,
    /// same start time) in `self`: a second reading that confirms the first
    /// was not a torn view of philosophers on the move.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::philosophers::SeatState;
    /// # use shmlab::philosophers::graph::{SeatView, Snapshot};
    /// # fn waiting(me: usize, holds: usize, waits_for: usize) -> SeatView {
    /// #     let (pid, holds, waits_for) = (100 + me as u32, vec![holds], Some(waits_for));
    /// #     SeatView { pid, state: SeatState::Waiting, holds, waits_for, wait_since_ns: 1_000 }
    /// # }
    /// # // 0 holds fork 0 and waits for fork 1; 1 holds fork 1 and waits for fork 0.
    /// # let snapshot = Snapshot {
    /// #     seats: vec![waiting(0, 0, 1), waiting(1, 1, 0)],
    /// #     holders: vec![Some(0), Some(1)],
    /// #     lock_pids: vec![Some(100), Some(101)],
    /// # };
    /// let cycle = snapshot.cycle(10_000, 0).expect("a cycle");
    /// let mut second = snapshot.clone();
    /// assert!(second.same_waits(&snapshot, &cycle)); // confirmed
    /// second.seats[1].wait_since_ns = 2_000; // 1 moved on and waits anew
    /// assert!(!second.same_waits(&snapshot, &cycle));
    /// # Ok(()) }
    /// ```
    pub fn same_waits(&self, earlier: &Snapshot, cycle: &[Edge]) -> bool {
        self.holders == earlier.holders
            && cycle.iter().all(|e| {
                let (now, then) = (&self.seats[e.philosopher], &earlier.seats[e.philosopher]);
                now.state == SeatState::Waiting
                    && now.waits_for == then.waits_for
                    && now.wait_since_ns == then.wait_since_ns
            })
    }

    /// The philosophers who can never move again while `cycle` stands: its
    /// members and everyone waiting, directly or through others, on them.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::philosophers::SeatState;
    /// # use shmlab::philosophers::graph::{SeatView, Snapshot};
    /// # fn waiting(me: usize, holds: usize, waits_for: usize) -> SeatView {
    /// #     let (pid, holds, waits_for) = (100 + me as u32, vec![holds], Some(waits_for));
    /// #     SeatView { pid, state: SeatState::Waiting, holds, waits_for, wait_since_ns: 1_000 }
    /// # }
    /// # // 0 holds fork 0 and waits for fork 1; 1 holds fork 1 and waits for fork 0.
    /// # let snapshot = Snapshot {
    /// #     seats: vec![waiting(0, 0, 1), waiting(1, 1, 0)],
    /// #     holders: vec![Some(0), Some(1)],
    /// #     lock_pids: vec![Some(100), Some(101)],
    /// # };
    /// # let mut snapshot = snapshot;
    /// // A third philosopher waits for fork 1 too: it is stuck behind the cycle.
    /// snapshot.seats.push(waiting(2, 2, 1));
    /// snapshot.holders.push(Some(2));
    /// snapshot.lock_pids.push(Some(102));
    /// let cycle = snapshot.cycle(10_000, 0).expect("0 and 1 wait for each other");
    /// assert_eq!(snapshot.stuck_behind(&cycle), [0, 1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn stuck_behind(&self, cycle: &[Edge]) -> Vec<usize> {
        let members: Vec<usize> = cycle.iter().map(|e| e.philosopher).collect();
        (0..self.seats.len())
            .filter(|&start| {
                let mut at = start;
                for _ in 0..=self.seats.len() {
                    if members.contains(&at) {
                        return true;
                    }
                    match self.waits_on(at) {
                        Some((_, next)) => at = next,
                        None => return false,
                    }
                }
                false
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(pid: u32, holds: usize, waits_for: usize) -> SeatView {
        SeatView {
            pid,
            state: SeatState::Waiting,
            holds: vec![holds],
            waits_for: Some(waits_for),
            wait_since_ns: 1_000,
        }
    }

    /// Five philosophers, each holding its left fork and waiting for its
    /// right one.
    fn ring(n: usize) -> Snapshot {
        Snapshot {
            seats: (0..n)
                .map(|i| waiting(100 + i as u32, i, (i + 1) % n))
                .collect(),
            holders: (0..n).map(Some).collect(),
            lock_pids: (0..n).map(|i| Some(100 + i as u32)).collect(),
        }
    }

    #[test]
    fn a_full_ring_is_one_cycle_from_philosopher_0() {
        let cycle = ring(5).cycle(10_000, 5_000).expect("a cycle");
        assert_eq!(cycle.len(), 5);
        for (k, e) in cycle.iter().enumerate() {
            assert_eq!(e.philosopher, k);
            assert_eq!(e.held_by, (k + 1) % 5);
            assert_eq!(e.waits_for, (k + 1) % 5);
        }
        assert_eq!(
            cycle[0].sentence("pid"),
            "philosopher 0 (pid 100) holds fork 0 and waits for fork 1, held by philosopher 1 (pid 101)"
        );
    }

    #[test]
    fn a_young_wait_is_not_yet_a_deadlock() {
        assert!(ring(3).cycle(10_000, 9_500).is_none());
    }

    #[test]
    fn a_chain_that_ends_in_an_eater_is_no_cycle() {
        let mut s = ring(4);
        s.seats[3].state = SeatState::Eating;
        s.seats[3].waits_for = None;
        assert!(s.cycle(10_000, 0).is_none());
    }

    /// Threads of one process sharing futex forks: every lock names this
    /// process, while the seats name the threads' own identities. The
    /// deadlock is still found (it was not, before).
    #[test]
    fn futex_forks_held_by_threads_of_this_process_still_make_edges() {
        let mut s = ring(3);
        s.lock_pids = vec![Some(crate::sync::owner_id()); 3];
        assert_eq!(s.cycle(10_000, 5_000).map(|c| c.len()), Some(3));
    }

    #[test]
    fn a_lock_word_naming_another_pid_breaks_the_edge() {
        let mut s = ring(3);
        s.lock_pids[1] = Some(999);
        assert!(s.cycle(10_000, 0).is_none());
    }

    #[test]
    fn waiters_behind_a_cycle_are_stuck_too() {
        // 0 <-> 1 deadlocked; 2 waits for fork 1 (held by 1); 3 eats.
        let mut s = ring(4);
        s.seats[0] = waiting(100, 0, 1);
        s.seats[1] = waiting(101, 1, 0);
        s.seats[2] = waiting(102, 2, 1);
        s.seats[3].state = SeatState::Eating;
        s.seats[3].waits_for = None;
        let cycle = s.cycle(10_000, 0).expect("0 and 1 wait for each other");
        assert_eq!(cycle.len(), 2);
        assert_eq!(s.stuck_behind(&cycle), vec![0, 1, 2]);
    }
}
