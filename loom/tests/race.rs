//! Lab 04 (the race) and lab 07 (interleavings): the counting strategies
//! that share one cell, run through the same `Counting` implementations the
//! lab's worker processes run (`shmlab::counting`), on shmlab's own lock.
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom --test race
//!
//! Bounds, and why they are enough:
//! - Two threads, one increment each, explored exhaustively (no preemption
//!   bound). A lost update needs only that both loads come before either
//!   store — one preemption inside a two-step read-modify-write — so two
//!   threads and one increment each are the smallest case that can show it.
//!   Exhaustive exploration here is a proof for this size.
//! - Three threads with a preemption bound of 3: every lost-update or
//!   mutual-exclusion bug of a two-step critical section shows with at most
//!   two preemptions, so a bound of 3 leaves one to spare while the run
//!   stays within seconds (three threads unbounded take hours).
//! - The lock's own proofs (exclusion, timeouts, a dead holder) are in
//!   `locks.rs`; the per-worker strategies in `slots.rs` and `mapreduce.rs`.
#![cfg(loom)]

mod common;

use common::{bounded, count};
use shmlab::counting::{Atomic, Locked, Racy};

/// `with counter.get_lock(): counter.value += 1` — `SharedValue::lock()`'s
/// guard, a read and a write under the lock — never loses an update.
#[test]
fn locked_increment_two_threads_loses_nothing() {
    loom::model(|| assert_eq!(count(Locked, 2, 1), 2));
}

/// The same with three workers, each waiting for the others.
#[test]
fn locked_increment_three_threads_loses_nothing() {
    bounded(3).check(|| assert_eq!(count(Locked, 3, 1), 3));
}

/// Two increments each: a worker that takes the lock, releases it and takes
/// it again, with the other waiting in between. Exhaustive exploration of
/// this takes minutes; a bound of 3 covers every schedule with up to three
/// preemptions, one more than a lost update needs.
#[test]
fn locked_increment_twice_each_loses_nothing() {
    bounded(3).check(|| assert_eq!(count(Locked, 2, 2), 4));
}

/// `fetch_add(1)`: one indivisible read-modify-write, no lock.
#[test]
fn atomic_increment_two_threads_loses_nothing() {
    loom::model(|| assert_eq!(count(Atomic, 2, 1), 2));
}

/// The proof that the bug exists: loom finds the schedule in which both
/// threads load 0 and both store 1 (lab 07 enumerates the same schedules on
/// paper).
#[test]
#[should_panic(expected = "lost update")]
fn racy_increment_loses_an_update() {
    loom::model(|| {
        let total = count(Racy, 2, 1);
        assert_eq!(total, 2, "lost update: two increments made {total}");
    });
}
