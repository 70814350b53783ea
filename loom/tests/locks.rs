//! Lab 05 (locks): shmlab's futex lock — the one every `SharedValue`,
//! `SharedArray`, queue and philosopher's fork uses — proved on the shipped
//! code: mutual exclusion and memory ordering, the timed lock, a holder that
//! dies, and the lab's invariant (transfers keep the bank's total).
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom --test locks
//!
//! Bounds, and why they are enough:
//! - Two threads are explored exhaustively (no preemption bound): a broken
//!   lock lets both threads in, which needs one preemption inside the
//!   lock's compare-and-swap loop; a torn transfer needs one preemption
//!   inside its four steps. Two threads are the smallest case of either.
//! - The lost wake-up of a timed waiter that gives up needs three threads
//!   (a holder that locks twice, a sleeper, and the timed waiter), and at
//!   most two preemptions; it runs with a bound of 3.
//! - A dead holder: the holder dies before the others arrive (loom has no
//!   clock, so a waiter already asleep could never see its nap run out —
//!   see `shmlab::sync::model`); then two live threads race for the dead
//!   holder's lock, exhaustively.
#![cfg(loom)]

mod common;

use common::{Table, bounded};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use shmlab::bank::{transfer_locked, transfer_unlocked};
use shmlab::cells::Cells;
use shmlab::counting::locked_increment;
use shmlab::element::Element;
use shmlab::lock::{FutexLock, LockError};
use shmlab::sync::model;

fn locked(cells: &Cells<'_, i64>) {
    locked_increment(cells).expect("the lock never fails under loom");
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
        let counter = Table::new();
        let successes = Arc::new(AtomicUsize::new(0));
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
                            successes.fetch_add(1, Ordering::Relaxed);
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
        assert_eq!(total as usize, successes.load(Ordering::Relaxed));
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
        let counter = Table::new();
        let successes = Arc::new(AtomicUsize::new(0));
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
                    timed_successes.fetch_add(1, Ordering::Relaxed);
                }
            }),
        ];
        for h in handles {
            h.join().expect("thread");
        }
        let total = counter.cells().load(0).expect("cell") as usize;
        assert_eq!(total, 3 + successes.load(Ordering::Relaxed));
    });
}

/// A process dies holding the lock (lab 05's `--kill-holder`), then two
/// others want it. Exactly one takes the lock over and learns that its
/// holder died (`LockError::OwnerDied`, with the guard); the other waits for
/// it and gets the lock cleanly. Nobody is let in twice, and every increment
/// — the dead holder's too — is kept. The takeover is a compare-and-swap
/// that names the dead holder, so two waiters cannot both win it.
#[test]
fn a_dead_holders_lock_is_taken_over_once() {
    loom::model(|| {
        let table = Table::new();
        let doomed = table.clone();
        thread::spawn(move || {
            model::act_as_process(2);
            let cells = doomed.cells();
            let guard = cells.lock().expect("a free lock");
            guard.set(0, guard.get(0).expect("cell") + 1).expect("cell");
            model::die();
            // Killed here: the guard is never dropped, the lock stays held.
            std::mem::forget(guard);
        })
        .join()
        .expect("the doomed thread");
        let took_over = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = [3, 4]
            .into_iter()
            .map(|pid| {
                let (table, took_over) = (table.clone(), took_over.clone());
                thread::spawn(move || {
                    model::act_as_process(pid);
                    let cells = table.cells();
                    let guard = match cells.lock() {
                        Ok(guard) => guard,
                        Err(LockError::OwnerDied(guard)) => {
                            took_over.fetch_add(1, Ordering::Relaxed);
                            guard
                        }
                        Err(e) => panic!("unexpected {e}"),
                    };
                    guard.set(0, guard.get(0).expect("cell") + 1).expect("cell");
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a model thread panicked");
        }
        assert_eq!(took_over.load(Ordering::Relaxed), 1, "one takeover");
        assert_eq!(table.cells().load(0).expect("cell"), 3);
        assert_eq!(table.lock.holder(), None, "the lock was released");
    });
}

/// Lab 05's invariant: transfers between accounts keep the total only when
/// each transfer is one step for everyone else. The same `transfer_locked` /
/// `transfer_unlocked` functions the lab runs across processes on a
/// `SharedArray` — several cells updated under one lock.
type Transfer = fn(&Cells<'_, i64>, usize, usize, i64) -> Result<(), shmlab::bank::TransferError>;

/// Three accounts of 100; thread 0 moves 10 from account 0 to 1, thread 1
/// moves 20 from account 1 to 2. Returns the balances afterwards.
fn two_transfers(transfer: Transfer) -> [i64; 3] {
    struct Bank {
        lock: FutexLock,
        accounts: [<i64 as Element>::Atomic; 3],
    }
    let bank = Arc::new(Bank {
        lock: FutexLock::new(),
        accounts: [i64::new_cell(100), i64::new_cell(100), i64::new_cell(100)],
    });
    let moves = [(0, 1, 10), (1, 2, 20)];
    let handles: Vec<_> = moves
        .into_iter()
        .map(|(from, to, amount)| {
            let bank = bank.clone();
            thread::spawn(move || {
                let cells = Cells::new(&bank.lock, &bank.accounts);
                transfer(&cells, from, to, amount).expect("the lock never fails under loom");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a model thread panicked");
    }
    let cells = Cells::new(&bank.lock, &bank.accounts);
    [0, 1, 2].map(|i| cells.load(i).expect("account"))
}

/// Under the lock every schedule ends with the same balances, and the total
/// is kept.
#[test]
fn locked_transfers_keep_the_total() {
    loom::model(|| {
        let balances = two_transfers(transfer_locked);
        assert_eq!(balances, [90, 90, 120], "a transfer was torn");
    });
}

/// The proof that the unlocked version breaks the invariant: loom finds a
/// schedule in which account 1 is read by both transfers and one write
/// overwrites the other, so money appears or vanishes.
#[test]
#[should_panic(expected = "money appeared or vanished")]
fn unlocked_transfers_break_the_total() {
    loom::model(|| {
        let balances = two_transfers(transfer_unlocked);
        let total: i64 = balances.iter().sum();
        assert_eq!(total, 300, "money appeared or vanished: {balances:?}");
    });
}
