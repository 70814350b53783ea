//! Shared by the integration tests that start worker processes.
//!
//! Such a test binary has `harness = false` and calls [`run`] from `main`:
//! it first calls `shmlab::entry()` — a worker process (this same test
//! binary, started again) becomes its task there — and then runs the tests
//! with libtest-mimic, which keeps cargo test's usual output and filters.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

/// A test body: any error fails the test with its message.
pub type TestFn = fn() -> anyhow::Result<()>;

/// Becomes a worker if this process is one, else runs `tests`.
pub fn run(tests: &[(&'static str, TestFn)]) {
    shmlab::entry();
    let args = Arguments::from_args();
    let trials = tests
        .iter()
        .map(|&(name, body)| {
            Trial::test(name, move || {
                body().map_err(|e| Failed::from(format!("{e:#}")))
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// The file behind a segment name.
pub fn shm_path(name: &str) -> PathBuf {
    PathBuf::from(shmlab::cleanup::SHM_DIR).join(name)
}

/// Waits (bounded) until `condition` holds; errors after `limit`.
pub fn wait_until(
    what: &str,
    limit: Duration,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !condition() {
        anyhow::ensure!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
