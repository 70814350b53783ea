//! Lab 06 (slots): one counter per worker. Each worker does the racy-looking
//! `store(load() + 1)` of lab 04, but on a cell no other worker writes, and
//! the parent sums the slots after joining. Run through the same
//! `Counting` implementation the lab's worker processes run.
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom --test slots
//!
//! Bounds: two threads, two increments each, explored exhaustively. Slots
//! side by side (stride 1) and padded (stride 2 here; 16 cells in the lab)
//! differ in speed, not in correctness — loom has no cache lines — and both
//! are checked. Two increments each make the second load of a worker see
//! its own first store, the only ordering a slot relies on; the sum relies
//! on `join`, which loom models as happens-before.
#![cfg(loom)]

mod common;

use common::count;
use shmlab::counting::Slots;

/// Slots side by side, as lab 06's `slots` strategy (false sharing is a
/// speed problem, not a correctness one).
#[test]
fn adjacent_slots_lose_nothing() {
    loom::model(|| assert_eq!(count(Slots { stride: 1 }, 2, 2), 4));
}

/// Slots a stride apart, as lab 06's `padded-slots` strategy.
#[test]
fn padded_slots_lose_nothing() {
    loom::model(|| assert_eq!(count(Slots { stride: 2 }, 2, 2), 4));
}

/// What makes a slot exact is that nobody else writes it: with a stride of
/// 0 every worker's "own" slot is cell 0, and the same load and store lose
/// updates again (the check that these models can fail).
#[test]
#[should_panic(expected = "lost update")]
fn overlapping_slots_lose_an_update() {
    loom::model(|| {
        // The sum reads cell 0 once per worker: twice the shared count.
        let shared = count(Slots { stride: 0 }, 2, 1) / 2;
        assert_eq!(shared, 2, "lost update: two increments made {shared}");
    });
}
