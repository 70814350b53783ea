//! Pool dispatch: 10 000 tiny tasks through `Pool::map` with chunksize 1
//! and 100, and through 10 000 `apply_async` calls — the chunksize lesson
//! of lab02, measured by criterion.
//!
//! Run: cargo bench --bench pool
//!
//! Throughput is tasks per second; the time per iteration divided by
//! 10 000 is the cost per task that lab02 reports as `us_per_task`.

use std::time::Duration;

use criterion::{Criterion, Throughput};
use shmlab::pool::Pool;

const TASKS: u64 = 10_000;

/// The tiny task: `x³`.
fn cube(x: u64) -> u64 {
    x * x * x
}
shmlab::task!(cube);

fn dispatch(c: &mut Criterion) {
    let workers = shmlab::cli::available_cpus();
    let pool = Pool::new(workers).expect("start the pool");
    let mut group = c.benchmark_group(format!("pool_{workers}_workers"));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(TASKS));
    for chunksize in [1usize, 100] {
        group.bench_function(format!("map_10000_chunksize_{chunksize}"), |b| {
            b.iter(|| {
                let cubes = pool.map(cube, 0..TASKS, Some(chunksize)).expect("map");
                assert_eq!(cubes.len(), TASKS as usize);
            })
        });
    }
    group.bench_function("apply_async_10000", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..TASKS)
                .map(|x| pool.apply_async(cube, x).expect("submit"))
                .collect();
            for handle in handles {
                handle.get().expect("result");
            }
        })
    });
    group.finish();
}

fn main() {
    shmlab::entry(); // pool workers are this bench binary, started again
    let mut criterion = Criterion::default().configure_from_args();
    dispatch(&mut criterion);
    criterion.final_summary();
}
