//! Word count (lab10) under criterion: the four-word count and the
//! frequency count over a generated 16 MB corpus, serially (SSE2 and
//! portable masks) and with a pool over chunks of the mapped file, plus
//! the shared locked table on a 1 MB prefix.
//!
//! Run: cargo bench --bench wordcount
//!
//! Throughput is in bytes, so criterion prints MB/s (MiB/s, in fact) next
//! to the times; lab10 reports the same variants in 10^6 bytes per second.

use std::time::Duration;

use criterion::{Criterion, Throughput};
use shmlab::lessons::wordcount::{
    DEFAULT_SEED, Mapped, TempCorpus, chunk_bounds, count_four, count_four_portable, count_words,
    locked_words, pool_four, pool_words,
};
use shmlab::pool::Pool;

const BYTES: u64 = 16_000_000;
const LOCKED_BYTES: usize = 1_000_000;

fn wordcount(c: &mut Criterion) {
    let corpus = TempCorpus::create(BYTES, DEFAULT_SEED, true).expect("generate the corpus");
    let path = corpus.path().to_path_buf();
    let map = Mapped::open(&path).expect("map the corpus");
    let bytes = map.bytes();
    let workers = shmlab::cli::available_cpus();
    let pool = Pool::new(workers).expect("start the pool");
    let bounds = chunk_bounds(bytes, 2 * workers);
    let prefix = bytes[LOCKED_BYTES..]
        .iter()
        .position(|&b| !b.is_ascii_alphabetic())
        .map_or(bytes.len(), |i| LOCKED_BYTES + i);
    let locked_bounds = chunk_bounds(&bytes[..prefix], workers);

    let mut group = c.benchmark_group("wordcount_16MB");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("serial_four_sse2", |b| b.iter(|| count_four(bytes)));
    group.bench_function("serial_four_portable", |b| {
        b.iter(|| count_four_portable(bytes))
    });
    group.bench_function(format!("pool_four_{workers}_workers"), |b| {
        b.iter(|| pool_four(&pool, &path, &bounds).expect("pool_four"))
    });
    group.bench_function("serial_words", |b| b.iter(|| count_words(bytes)));
    group.bench_function(format!("pool_words_{workers}_workers"), |b| {
        b.iter(|| pool_words(&pool, &path, &bounds).expect("pool_words"))
    });
    group.finish();

    let mut group = c.benchmark_group("wordcount_1MB_prefix");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Bytes(prefix as u64));
    group.bench_function(format!("locked_table_{workers}_workers"), |b| {
        b.iter(|| locked_words(&pool, &path, &locked_bounds).expect("locked_words"))
    });
    group.finish();
}

fn main() {
    shmlab::entry(); // pool workers are this bench binary, started again
    let mut criterion = Criterion::default().configure_from_args();
    wordcount(&mut criterion);
    criterion.final_summary();
}
