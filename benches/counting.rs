//! Every counting strategy, with 2 threads in one process and with 2
//! worker processes: the numbers behind lab08's table.
//!
//! Run: cargo bench --bench counting
//!
//! Throughput is increments per second (all workers together). The threads
//! run the very `Counting` implementations the processes run, on the same
//! kind of shared segment, so the two groups differ only in what a process
//! boundary costs (nothing, once the workers are running).

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use shmlab::SharedArray;
use shmlab::counting::{
    Atomic, Counting, Locked, MapReduce, PADDED_STRIDE, Racy, Slots, Strategy, count_in,
};
use shmlab::lock::FutexLock;
use shmlab::pool::Pool;

const WORKERS: usize = 2;

/// `WORKERS` threads each run `strategy.work` for `per_worker` increments;
/// returns the elapsed time and the total.
fn on_threads<C: Counting + Sync>(strategy: &C, per_worker: u64) -> (Duration, i64) {
    let counts =
        SharedArray::<i64, FutexLock>::create(strategy.cells(WORKERS).max(1), 0).expect("segment");
    let cells = counts.cells();
    let started = Instant::now();
    let kept: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|index| {
                let cells = &cells;
                s.spawn(move || strategy.work(cells, index, per_worker).expect("lock"))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    (started.elapsed(), strategy.total(&cells, &kept))
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads_2");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    macro_rules! bench {
        ($name:expr, $strategy:expr, $exact:expr) => {
            group.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    let per_worker = (iters / WORKERS as u64).max(1);
                    let (elapsed, total) = on_threads(&$strategy, per_worker);
                    if $exact {
                        assert_eq!(total, (per_worker * WORKERS as u64) as i64);
                    }
                    elapsed.mul_f64(iters as f64 / (per_worker * WORKERS as u64) as f64)
                })
            });
        };
    }
    bench!("racy", Racy, false);
    bench!("atomic", Atomic, true);
    bench!("locked", Locked, true);
    bench!("slots", Slots { stride: 1 }, true);
    bench!(
        "padded-slots",
        Slots {
            stride: PADDED_STRIDE
        },
        true
    );
    bench!("map-reduce", MapReduce, true);
    group.finish();
}

fn processes(c: &mut Criterion) {
    let pool = Pool::new(WORKERS).expect("pool");
    let mut group = c.benchmark_group("processes_2");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for strategy in Strategy::ALL {
        group.bench_function(strategy.name(), |b| {
            b.iter_custom(|iters| {
                // `iters` increments in all, split over the workers; the
                // time is from the start gate to the last worker's finish.
                let per_worker = (iters / WORKERS as u64).max(1);
                let run = count_in(&pool, strategy, WORKERS, per_worker).expect("count");
                assert!(run.exact() || strategy == Strategy::Racy);
                Duration::from_secs_f64(
                    run.seconds * iters as f64 / (per_worker * WORKERS as u64) as f64,
                )
            })
        });
    }
    group.finish();
}

fn main() {
    shmlab::entry(); // pool workers are this bench binary, started again
    let mut criterion = Criterion::default().configure_from_args();
    threads(&mut criterion);
    processes(&mut criterion);
    criterion.final_summary();
}
