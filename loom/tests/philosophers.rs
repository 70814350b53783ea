//! Lab 09 (dining philosophers): model checks on the same `Table::pick_up` /
//! `eat` / `put_down` code that lab09 runs across processes (forks are
//! shmlab's `FutexLock`, whose futex loom models as a wait queue: a
//! philosopher blocked for a fork really blocks, so a cycle of blocked
//! philosophers is a deadlock loom reports).
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom --test philosophers
//!
//! Bounds: three philosophers, one meal each. The naive deadlock needs every
//! philosopher to take its left fork before any takes its right: two
//! preemptions (N − 1) suffice, so loom finds it with a preemption bound of
//! 2. The proofs for `ordered` and `waiter` use a bound of 3 — one more than
//! the deadlock needs — and check mutual exclusion of every fork on the way
//! (`eat` counts a fork found in another philosopher's hand).
//!
//! Not modelled: the `timeout` strategy. Its fix *is* time — a philosopher
//! gives up its first fork when a timed wait for the second runs out — and
//! loom has no clock: its waits end only when woken (loom 0.7's
//! `Condvar::wait_timeout` never times out). Under loom the timed wait for
//! the second fork would block like `naive`'s, so the model would report
//! naive's deadlock, a fact about the model and not the code. The process
//! tests (`tests/philosophers.rs`) run `timeout` under the forced deadlock
//! instead, and lab 09 reports its back-offs.
//!
//! The table is leaked to `&'static` instead of shared with
//! `loom::sync::Arc`: when loom reports the naive deadlock it panics, and a
//! panic unwinding through a loom `Arc` aborts the whole test binary
//! (SIGABRT) instead of failing the one test.
#![cfg(loom)]

mod common;

use common::bounded;
use loom::thread;
use shmlab::lock::FutexLock;
use shmlab::philosophers::{LocalTable, NoPace, Strategy, Table, Waits};

const PHILOSOPHERS: usize = 3;

/// Every philosopher picks up both forks, eats once and puts them down;
/// returns the table afterwards.
fn one_meal_each(strategy: Strategy) -> Table<'static, FutexLock> {
    let local: &'static LocalTable<FutexLock> = Box::leak(Box::new(LocalTable::new(PHILOSOPHERS)));
    let waits = Waits {
        limit: None,
        patience: std::time::Duration::ZERO,
        together: false,
    };
    let handles: Vec<_> = (0..PHILOSOPHERS)
        .map(|me| {
            thread::spawn(move || {
                let table = local.table();
                table
                    .pick_up(me, strategy, &waits, false, &mut NoPace)
                    .expect("no limit, so no giving up");
                table.eat(me, strategy, &mut NoPace);
                table.put_down(me, strategy);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a philosopher panicked");
    }
    local.table()
}

fn everyone_ate_alone(table: &Table<'_, FutexLock>) {
    for (i, seat) in table.seats().iter().enumerate() {
        assert_eq!(seat.meals(), 1, "philosopher {i} did not eat");
    }
    let violations: u64 = table.seats().iter().map(|s| s.violations()).sum();
    assert_eq!(violations, 0, "a fork was in two hands");
    assert!(
        table.forks().iter().all(|f| f.holder().is_none()),
        "a fork was not put back"
    );
}

/// The proof that naive deadlocks: loom finds the schedule in which each
/// philosopher holds its left fork and waits for its right one.
#[test]
#[should_panic(expected = "deadlock; threads =")]
fn naive_deadlocks() {
    bounded(2).check(|| {
        one_meal_each(Strategy::Naive);
    });
}

/// `ordered`: philosopher 2 reaches for fork 0 before fork 2, so no cycle of
/// waits can close, in any schedule.
#[test]
fn ordered_never_deadlocks() {
    bounded(3).check(|| everyone_ate_alone(&one_meal_each(Strategy::Ordered)));
}

/// `waiter`: the footman's two permits keep one philosopher away, so one of
/// the two at the table can always get both forks.
#[test]
fn waiter_never_deadlocks() {
    bounded(3).check(|| everyone_ate_alone(&one_meal_each(Strategy::Waiter)));
}
