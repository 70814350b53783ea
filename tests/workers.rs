//! Worker processes: results, faults (panic, signal, exit code), timeouts,
//! refusals (closures, unregistered functions), and that no worker outlives
//! its handle or its parent. Run: cargo test --release --test workers

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use common::wait_until;
use shmlab::SharedValue;
use shmlab::process::{self, WorkerError, pid_alive};

fn main() {
    common::run(&[
        ("join_returns_the_result", join_returns_the_result),
        (
            "big_arguments_and_results_cross",
            big_arguments_and_results_cross,
        ),
        (
            "a_panic_is_reported_with_its_message",
            a_panic_is_reported_with_its_message,
        ),
        ("a_signal_is_reported_by_name", a_signal_is_reported_by_name),
        (
            "an_exit_code_without_result_is_reported",
            an_exit_code_without_result_is_reported,
        ),
        (
            "join_timeout_gives_up_and_keeps_the_worker",
            join_timeout_gives_up_and_keeps_the_worker,
        ),
        ("closures_are_refused", closures_are_refused),
        (
            "unregistered_functions_are_refused",
            unregistered_functions_are_refused,
        ),
        ("globals_are_not_shared", globals_are_not_shared),
        ("dropping_a_worker_kills_it", dropping_a_worker_kills_it),
        (
            "workers_exit_when_their_parent_dies",
            workers_exit_when_their_parent_dies,
        ),
    ]);
}

fn double(x: u64) -> u64 {
    x * 2
}
shmlab::task!(double);

fn echo_len(data: Vec<u8>) -> Vec<u8> {
    let mut out = data;
    out.reverse();
    out
}
shmlab::task!(echo_len);

fn boom(message: String) -> u64 {
    panic!("{message}")
}
shmlab::task!(boom);

fn linger(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
shmlab::task!(linger);

fn exit_with(code: i32) {
    std::process::exit(code)
}
shmlab::task!(exit_with);

fn abort_self(_: ()) {
    std::process::abort();
}
shmlab::task!(abort_self);

static GLOBAL: AtomicU64 = AtomicU64::new(0);

fn bump(by: u64) -> u64 {
    GLOBAL.fetch_add(by, Ordering::Relaxed) + by
}
shmlab::task!(bump);

fn not_registered(x: u64) -> u64 {
    x
}

fn join_returns_the_result() -> anyhow::Result<()> {
    let workers = (0..4u64)
        .map(|i| process::spawn(double, &i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut pids: Vec<u32> = workers.iter().map(|w| w.pid()).collect();
    let results = workers
        .into_iter()
        .map(|w| w.join())
        .collect::<Result<Vec<_>, _>>()?;
    ensure!(results == vec![0, 2, 4, 6]);
    pids.sort_unstable();
    pids.dedup();
    ensure!(pids.len() == 4 && !pids.contains(&std::process::id()));
    let exited = process::spawn(double, &21)?.join_exited()?;
    ensure!(exited.value == 42 && exited.status.success());
    Ok(())
}

fn big_arguments_and_results_cross() -> anyhow::Result<()> {
    // Larger than any socket buffer: both sides must keep draining.
    let data: Vec<u8> = (0..2_000_000u32).map(|i| i as u8).collect();
    let back = process::spawn(echo_len, &data)?.join()?;
    ensure!(back.len() == data.len() && back.iter().rev().eq(data.iter()));
    Ok(())
}

fn a_panic_is_reported_with_its_message() -> anyhow::Result<()> {
    let r = process::spawn(boom, &"the task failed on purpose".to_string())?.join();
    ensure!(
        matches!(&r, Err(WorkerError::Panicked { message, .. }) if message == "the task failed on purpose"),
        "{r:?}"
    );
    Ok(())
}

fn a_signal_is_reported_by_name() -> anyhow::Result<()> {
    let mut worker = process::spawn(linger, &60_000)?;
    worker.kill()?;
    let r = worker.join();
    ensure!(
        matches!(&r, Err(WorkerError::Killed { signal: libc::SIGKILL, signal_name, .. }) if signal_name == "SIGKILL"),
        "{r:?}"
    );
    let r = process::spawn(abort_self, &())?.join();
    ensure!(
        matches!(
            &r,
            Err(WorkerError::Killed {
                signal: libc::SIGABRT,
                ..
            })
        ),
        "{r:?}"
    );
    ensure!(
        r.err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("SIGABRT")
    );
    Ok(())
}

fn an_exit_code_without_result_is_reported() -> anyhow::Result<()> {
    let r = process::spawn(exit_with, &7)?.join();
    ensure!(
        matches!(r, Err(WorkerError::Exited { code: 7, .. })),
        "{r:?}"
    );
    Ok(())
}

fn join_timeout_gives_up_and_keeps_the_worker() -> anyhow::Result<()> {
    let mut worker = process::spawn(linger, &60_000)?;
    let started = Instant::now();
    let r = worker.join_timeout(Duration::from_millis(50));
    let waited = started.elapsed();
    ensure!(matches!(r, Err(WorkerError::Timeout { .. })), "{r:?}");
    ensure!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    ensure!(
        pid_alive(worker.pid()),
        "a timeout must not kill the worker"
    );
    worker.kill()?;
    let r = worker.join_timeout(Duration::from_secs(10));
    ensure!(matches!(r, Err(WorkerError::Killed { .. })), "{r:?}");
    let again = worker.join_timeout(Duration::from_secs(1));
    ensure!(
        matches!(again, Err(WorkerError::AlreadyJoined { .. })),
        "{again:?}"
    );
    Ok(())
}

fn closures_are_refused() -> anyhow::Result<()> {
    let r = process::spawn(|x: u64| x + 1, &1);
    ensure!(
        matches!(r, Err(WorkerError::NotAFunction { .. })),
        "{:?}",
        r.err()
    );
    let message = r.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        message.contains("closure") && message.contains("shmlab::task!"),
        "{message}"
    );
    Ok(())
}

fn unregistered_functions_are_refused() -> anyhow::Result<()> {
    let r = process::spawn(not_registered, &1);
    let message = r.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        matches!(r, Err(WorkerError::Unregistered { .. })),
        "{message}"
    );
    ensure!(
        message.contains("shmlab::task!(not_registered)"),
        "{message}"
    );
    Ok(())
}

fn globals_are_not_shared() -> anyhow::Result<()> {
    let in_worker = process::spawn(bump, &1000)?.join()?;
    ensure!(
        in_worker == 1000,
        "a worker starts from its own fresh copy: {in_worker}"
    );
    ensure!(
        GLOBAL.load(Ordering::Relaxed) == 0,
        "the parent's copy must not change"
    );
    Ok(())
}

fn dropping_a_worker_kills_it() -> anyhow::Result<()> {
    let worker = process::spawn(linger, &60_000)?;
    let pid = worker.pid();
    ensure!(pid_alive(pid));
    drop(worker);
    ensure!(!pid_alive(pid), "worker {pid} outlived its handle");
    Ok(())
}

/// In a worker: starts a grandchild that lingers, publishes its pid, and
/// lingers too (until killed).
fn parent_of_lingerer(pid_cell: String) -> Result<(), String> {
    let cell = SharedValue::<u32>::open(&pid_cell).map_err(|e| e.to_string())?;
    let grandchild = process::spawn(linger, &60_000u64).map_err(|e| e.to_string())?;
    cell.store(grandchild.pid());
    std::thread::sleep(Duration::from_secs(60));
    drop(grandchild);
    Ok(())
}
shmlab::task!(parent_of_lingerer);

fn workers_exit_when_their_parent_dies() -> anyhow::Result<()> {
    let cell = SharedValue::<u32>::create(0)?;
    let mut parent = process::spawn(parent_of_lingerer, &cell.name().to_string())?;
    wait_until("the grandchild is started", Duration::from_secs(20), || {
        cell.load() != 0
    })?;
    let grandchild = cell.load();
    ensure!(pid_alive(grandchild));
    parent.kill()?;
    let r = parent.join();
    ensure!(matches!(r, Err(WorkerError::Killed { .. })), "{r:?}");
    // Its control socket closed with its parent: it must exit by itself.
    wait_until(
        "the orphaned grandchild exits",
        Duration::from_secs(10),
        || !pid_alive(grandchild),
    )
}
