//! Lab 08 (map-reduce): each worker counts in a private variable and returns
//! it; the parent adds what the workers returned. Nothing is shared while
//! counting, so there is nothing to race on — loom confirms that the only
//! synchronisation needed is the join, through the same `Counting`
//! implementation the lab's worker processes run.
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom --test mapreduce
//!
//! Bounds: two threads exhaustively, three with a preemption bound of 3; a
//! map-reduce worker performs no shared operation at all, so the schedules
//! differ only in the order of thread starts and ends.
#![cfg(loom)]

mod common;

use common::{bounded, count};
use shmlab::counting::MapReduce;

/// Two workers, two increments each.
#[test]
fn map_reduce_two_workers_lose_nothing() {
    loom::model(|| assert_eq!(count(MapReduce, 2, 2), 4));
}

/// Three workers, the parent summing three results.
#[test]
fn map_reduce_three_workers_lose_nothing() {
    bounded(3).check(|| assert_eq!(count(MapReduce, 3, 2), 6));
}
