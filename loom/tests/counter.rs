//! Model checks with loom, on the same lock and counter code the labs run
//! across processes (see `shmlab::sync`).
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom
//!
//! Bounds: two threads are explored exhaustively (no preemption bound).
//! Three threads use a preemption bound of 3: every lost-update and
//! mutual-exclusion bug of a two-step critical section needs at most two
//! preemptions to show, so a bound of 3 leaves one to spare while keeping
//! the run to seconds.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shmlab::cells::Cells;
use shmlab::counting::{atomic_increment, locked_increment, racy_increment};
use shmlab::element::Element;
use shmlab::lock::{FutexLock, LockError};

/// A lock and one counter cell, shared by the model's threads.
struct Counter {
    lock: FutexLock,
    cell: [<i64 as Element>::Atomic; 1],
}

impl Counter {
    fn new() -> Arc<Self> {
        Arc::new(Counter {
            lock: FutexLock::new(),
            cell: [i64::new_cell(0)],
        })
    }

    fn cells(&self) -> Cells<'_, i64> {
        Cells::new(&self.lock, &self.cell)
    }
}

/// Runs `threads` threads that each call `increment` once, and returns the
/// final count.
fn run_threads(threads: usize, increment: fn(&Cells<'_, i64>)) -> i64 {
    let counter = Counter::new();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || increment(&counter.cells()))
        })
        .collect();
    for h in handles {
        h.join().expect("a model thread panicked");
    }
    counter.cells().load(0).expect("cell 0")
}

fn locked(cells: &Cells<'_, i64>) {
    locked_increment(cells).expect("the lock never fails under loom");
}

fn bounded(preemptions: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder
}

#[test]
fn locked_increment_two_threads_loses_nothing() {
    loom::model(|| assert_eq!(run_threads(2, locked), 2));
}

#[test]
fn locked_increment_three_threads_loses_nothing() {
    bounded(3).check(|| assert_eq!(run_threads(3, locked), 3));
}

#[test]
fn atomic_increment_two_threads_loses_nothing() {
    loom::model(|| assert_eq!(run_threads(2, atomic_increment), 2));
}

/// The proof that the bug exists: loom finds the schedule in which both
/// threads load 0 and both store 1.
#[test]
#[should_panic(expected = "lost update")]
fn racy_increment_loses_an_update() {
    loom::model(|| {
        let total = run_threads(2, racy_increment);
        assert_eq!(total, 2, "lost update: two increments made {total}");
    });
}

/// Mutual exclusion itself: loom's UnsafeCell reports any two accesses not
/// ordered by happens-before, so a lock that let two threads in at once —
/// or released without Release ordering — fails here.
#[test]
fn futex_lock_excludes_and_orders() {
    use loom::cell::UnsafeCell;
    use shmlab::lock::RawLock;
    use shmlab::sync::Deadline;

    loom::model(|| {
        let shared = Arc::new((FutexLock::new(), UnsafeCell::new(0u32)));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    shared.0.lock_until(Deadline::never()).expect("lock");
                    // SAFETY: inside the lock; loom checks that claim.
                    shared.1.with_mut(|v| unsafe { *v += 1 });
                    // SAFETY: we hold the lock taken above.
                    unsafe { shared.0.unlock() };
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        // SAFETY: both threads have been joined.
        assert_eq!(shared.1.with(|v| unsafe { *v }), 2);
    });
}

/// The timed lock: under loom a deadline expires after one wait, so each
/// thread either gets the lock (at once or after one sleep) or gives up
/// with Timeout — and the count of successful increments is exact.
#[test]
fn timed_lock_is_exact_or_gives_up() {
    loom::model(|| {
        let counter = Counter::new();
        let successes = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (counter, successes) = (counter.clone(), successes.clone());
                thread::spawn(move || {
                    match counter
                        .cells()
                        .try_lock_for(std::time::Duration::from_millis(1))
                    {
                        Ok(guard) => {
                            guard.set(0, guard.get(0).expect("cell") + 1).expect("cell");
                            successes.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                        }
                        Err(LockError::Timeout(_)) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let total = counter.cells().load(0).expect("cell");
        assert_eq!(
            total as usize,
            successes.load(loom::sync::atomic::Ordering::Relaxed)
        );
        assert!(total >= 1, "at least one thread gets a free lock");
    });
}

/// A timed waiter among untimed ones. The bad schedule: the holder unlocks
/// and wakes the timed waiter, then takes the lock again on the fast path
/// (without the waiters bit); the timed waiter, its deadline passed, gives
/// up. Unless it passes the wake-up on, the other sleeper waits for an
/// unlock that already happened, and the holder's next unlock wakes nobody —
/// loom reports that as a deadlock.
#[test]
fn a_timed_waiter_that_gives_up_loses_no_wakeup() {
    bounded(3).check(|| {
        let counter = Counter::new();
        let successes = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let twice = counter.clone();
        let once = counter.clone();
        let (timed_counter, timed_successes) = (counter.clone(), successes.clone());
        let handles = vec![
            thread::spawn(move || {
                locked(&twice.cells());
                locked(&twice.cells());
            }),
            thread::spawn(move || locked(&once.cells())),
            thread::spawn(move || {
                if let Ok(guard) = timed_counter
                    .cells()
                    .try_lock_for(std::time::Duration::from_millis(1))
                {
                    guard.set(0, guard.get(0).expect("cell") + 1).expect("cell");
                    timed_successes.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                }
            }),
        ];
        for h in handles {
            h.join().expect("thread");
        }
        let total = counter.cells().load(0).expect("cell") as usize;
        assert_eq!(
            total,
            3 + successes.load(loom::sync::atomic::Ordering::Relaxed)
        );
    });
}

/// Two threads, each adding 2 to its own slot with the racy-looking load
/// and store, through the `Counting` implementations the labs run: slots
/// and padded slots are exact because no cell has two writers; map-reduce
/// because nothing is shared until the parent sums.
#[test]
fn slots_and_map_reduce_lose_nothing() {
    use shmlab::counting::{Counting, MapReduce, Slots};

    fn run<C: Counting + Send + Sync + 'static>(strategy: C) -> i64 {
        struct Table {
            lock: FutexLock,
            cells: [<i64 as Element>::Atomic; 4],
        }
        let table = Arc::new(Table {
            lock: FutexLock::new(),
            cells: std::array::from_fn(|_| i64::new_cell(0)),
        });
        let strategy = Arc::new(strategy);
        let handles: Vec<_> = (0..2)
            .map(|index| {
                let (table, strategy) = (table.clone(), strategy.clone());
                thread::spawn(move || {
                    let cells = Cells::new(&table.lock, &table.cells);
                    strategy.work(&cells, index, 2).expect("no lock involved")
                })
            })
            .collect();
        let kept: Vec<i64> = handles
            .into_iter()
            .map(|h| h.join().expect("a model thread panicked"))
            .collect();
        strategy.total(&Cells::new(&table.lock, &table.cells), &kept)
    }
    loom::model(|| assert_eq!(run(Slots { stride: 1 }), 4));
    loom::model(|| assert_eq!(run(Slots { stride: 2 }), 4));
    loom::model(|| assert_eq!(run(MapReduce), 4));
}
