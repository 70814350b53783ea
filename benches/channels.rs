//! Pipe and Queue throughput between two processes (one producer, one
//! consumer), for 64-byte and 4 KiB messages.
//!
//! Run: cargo bench --bench channels
//!
//! Each sample sends `iters` messages from this process to a worker and
//! times from the start gate to the consumer's last message (the same
//! measurement lab03 reports), so criterion's throughput is messages/s.

use std::time::Duration;

use criterion::{Criterion, Throughput};
use shmlab::lessons::queues::{Transport, throughput};

fn channels(c: &mut Criterion) {
    let mut group = c.benchmark_group("channels");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    for size in [64usize, 4096] {
        for transport in [Transport::Pipe, Transport::Queue] {
            group.bench_function(format!("{}_{size}B", transport.name()), |b| {
                b.iter_custom(|iters| {
                    let run = throughput(transport, size, iters.max(1)).expect("throughput run");
                    Duration::from_secs_f64(run.seconds)
                })
            });
        }
    }
    group.finish();
}

fn main() {
    shmlab::entry(); // the consumer is this bench binary, started again
    let mut criterion = Criterion::default().configure_from_args();
    channels(&mut criterion);
    criterion.final_summary();
}
