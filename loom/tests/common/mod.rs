//! What the loom models share: the preemption bound, and a table of counter
//! cells under shmlab's lock on which the counting strategies run.
#![allow(dead_code)] // each test file uses part of it

use loom::sync::Arc;
use loom::thread;
use shmlab::cells::Cells;
use shmlab::counting::Counting;
use shmlab::element::Element;
use shmlab::lock::FutexLock;

/// A model that explores every schedule with at most `preemptions`
/// preemptions (switches away from a thread that could have gone on).
pub fn bounded(preemptions: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder
}

/// A lock and four `i64` cells: the layout of a `SharedArray<i64>` segment
/// (its lock, then its cells), on the heap instead of in `/dev/shm`.
pub struct Table {
    pub lock: FutexLock,
    pub cells: [<i64 as Element>::Atomic; 4],
}

impl Table {
    pub fn new() -> Arc<Self> {
        Arc::new(Table {
            lock: FutexLock::new(),
            cells: std::array::from_fn(|_| i64::new_cell(0)),
        })
    }

    /// The view every counting strategy works through, as in the labs.
    pub fn cells(&self) -> Cells<'_, i64> {
        Cells::new(&self.lock, &self.cells)
    }
}

/// `threads` model threads each run worker `index`'s part of `strategy`
/// (`increments` times 1), exactly as lab 04's worker processes do; returns
/// the strategy's total.
///
/// The strategy is copied into each thread rather than shared through an
/// `Arc`: every loom `Arc` drop is one more point where loom may switch
/// threads, and would triple the schedules without testing anything.
pub fn count<C: Counting + Copy + Send + 'static>(
    strategy: C,
    threads: usize,
    increments: u64,
) -> i64 {
    let table = Table::new();
    let handles: Vec<_> = (0..threads)
        .map(|index| {
            let table = table.clone();
            thread::spawn(move || {
                strategy
                    .work(&table.cells(), index, increments)
                    .expect("the lock never fails under loom")
            })
        })
        .collect();
    let kept: Vec<i64> = handles
        .into_iter()
        .map(|h| h.join().expect("a model thread panicked"))
        .collect();
    strategy.total(&table.cells(), &kept)
}
