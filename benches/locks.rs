//! Lock and counter costs, in one process and across processes.
//!
//! Run: cargo bench --bench locks
//!
//! - `uncontended/*`: one lock+unlock (or one increment) by one thread, no
//!   other user: the fast path of each lock.
//! - `processes/*`: a counter incremented by 2 worker processes, reported
//!   per increment, so criterion's throughput is ops/s across processes.

use std::time::Duration;

use criterion::{Criterion, Throughput};
use shmlab::SharedValue;
use shmlab::counting::{Strategy, count};
use shmlab::lock::{FutexLock, OsMutex, RawLock};

fn lock_unlock<L: RawLock>(value: &SharedValue<i64, L>) {
    let guard = value.lock().map_err(|e| e.discard_guard()).expect("lock");
    guard.set(guard.get() + 1);
}

fn uncontended(c: &mut Criterion) {
    let futex = SharedValue::<i64, FutexLock>::create(0).expect("segment");
    let os = SharedValue::<i64, OsMutex>::create(0).expect("segment");
    let mut group = c.benchmark_group("uncontended");
    group.throughput(Throughput::Elements(1));
    group.bench_function("futex_lock", |b| b.iter(|| lock_unlock(&futex)));
    group.bench_function("os_mutex", |b| b.iter(|| lock_unlock(&os)));
    group.bench_function("fetch_add", |b| b.iter(|| futex.fetch_add(1)));
    group.bench_function("racy_load_store", |b| {
        b.iter(|| futex.store(futex.load() + 1))
    });
    group.finish();
}

fn across_processes(c: &mut Criterion) {
    let workers = 2;
    let mut group = c.benchmark_group("processes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    for strategy in [Strategy::Locked, Strategy::LockedOs, Strategy::Atomic] {
        group.bench_function(format!("{}_2_workers", strategy.name()), |b| {
            b.iter_custom(|iters| {
                // `iters` increments in all, split over the workers; the
                // time is from the start gate to the last worker's finish.
                let per_worker = (iters / workers as u64).max(1);
                let run = count(strategy, workers, per_worker).expect("count");
                assert_eq!(run.lost, 0);
                Duration::from_secs_f64(
                    run.seconds * iters as f64 / (per_worker * workers as u64) as f64,
                )
            })
        });
    }
    group.finish();
}

fn main() {
    shmlab::entry(); // the counting workers are this bench binary, started again
    let mut criterion = Criterion::default().configure_from_args();
    uncontended(&mut criterion);
    across_processes(&mut criterion);
    criterion.final_summary();
}
