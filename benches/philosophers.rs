//! Meals per second of the three deadlock-free strategies, 5 greedy
//! philosophers (no thinking, no eating time: pure fork traffic), as
//! processes around a shared table of futex locks and as threads with
//! parking_lot mutexes.
//!
//! Run: cargo bench --bench philosophers
//!
//! Each iteration is a whole dinner of `MEALS` meals per philosopher, timed
//! as the lab times it: from the start gate opening to the last philosopher
//! leaving (starting the processes is not counted).

use std::time::Duration;

use criterion::{Criterion, Throughput};
use shmlab::philosophers::{DinnerConfig, Strategy, run_dinner};

const PHILOSOPHERS: usize = 5;
const MEALS: u64 = 400;

fn dinner(strategy: Strategy, threads: bool) -> Duration {
    let config = DinnerConfig {
        threads,
        together: false,
        meals: Some(MEALS),
        think: Duration::ZERO,
        eat: Duration::ZERO,
        ..DinnerConfig::new(strategy, PHILOSOPHERS)
    };
    let dinner = run_dinner(&config).expect("dinner");
    assert!(dinner.completed && !dinner.deadlock_detected, "{dinner:?}");
    assert_eq!(dinner.total_meals(), MEALS * PHILOSOPHERS as u64);
    Duration::from_secs_f64(dinner.seconds)
}

fn strategies(c: &mut Criterion, threads: bool) {
    let mut group = c.benchmark_group(if threads { "threads_5" } else { "processes_5" });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    // One criterion element = one meal.
    group.throughput(Throughput::Elements(MEALS * PHILOSOPHERS as u64));
    for strategy in [Strategy::Ordered, Strategy::Waiter, Strategy::Timeout] {
        group.bench_function(strategy.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| dinner(strategy, threads)).sum())
        });
    }
    group.finish();
}

fn main() {
    shmlab::entry(); // philosopher processes are this bench binary, started again
    let mut c = Criterion::default().configure_from_args();
    strategies(&mut c, false);
    strategies(&mut c, true);
    c.final_summary();
}
