//! Locks across processes: exact locked counters, the racy counter's lost
//! count, timed locks that honour their timeout, and recovery from a holder
//! that dies. Run: cargo test --release --test locks

mod common;

use std::time::{Duration, Instant};

use anyhow::ensure;
use shmlab::SharedValue;
use shmlab::counting::{Strategy, count};
use shmlab::lock::{FutexLock, LockError, LockKind, OsMutex, RawLock};
use shmlab::process::{self, StartGate, WorkerError};

fn main() {
    common::run(&[
        ("locked_counter_is_exact_with_2_workers", || {
            exact(Strategy::Locked, 2)
        }),
        ("locked_counter_is_exact_with_4_workers", || {
            exact(Strategy::Locked, 4)
        }),
        ("os_locked_counter_is_exact_with_2_workers", || {
            exact(Strategy::LockedOs, 2)
        }),
        ("os_locked_counter_is_exact_with_4_workers", || {
            exact(Strategy::LockedOs, 4)
        }),
        ("atomic_counter_is_exact_with_4_workers", || {
            exact(Strategy::Atomic, 4)
        }),
        (
            "racy_counter_reports_its_lost_count",
            racy_counter_reports_its_lost_count,
        ),
        ("futex_timed_lock_honours_1ms_many_times", || {
            timeouts::<FutexLock>(1, 200)
        }),
        ("os_timed_lock_honours_1ms_many_times", || {
            timeouts::<OsMutex>(1, 200)
        }),
        ("futex_timed_lock_honours_999ms", || {
            timeouts::<FutexLock>(999, 1)
        }),
        ("os_timed_lock_honours_999ms", || {
            timeouts::<OsMutex>(999, 1)
        }),
        (
            "futex_timed_lock_across_processes",
            cross_process_timeout::<FutexLock>,
        ),
        (
            "os_timed_lock_across_processes",
            cross_process_timeout::<OsMutex>,
        ),
        ("futex_owner_death_is_recovered", || {
            owner_death::<FutexLock>(false)
        }),
        ("os_owner_death_is_recovered", || {
            owner_death::<OsMutex>(false)
        }),
        ("futex_owner_death_after_reaping_is_recovered", || {
            owner_death::<FutexLock>(true)
        }),
        ("os_owner_death_after_reaping_is_recovered", || {
            owner_death::<OsMutex>(true)
        }),
    ]);
}

fn exact(strategy: Strategy, workers: usize) -> anyhow::Result<()> {
    let run = count(strategy, workers, 25_000)?;
    ensure!(run.expected == workers as i64 * 25_000);
    ensure!(
        run.final_value == run.expected && run.lost == 0,
        "{} with {workers} workers: {} of {}",
        strategy.name(),
        run.final_value,
        run.expected
    );
    Ok(())
}

/// The racy counter never gains, and — with two CPUs to run both workers at
/// once — loses updates within a few tries (each try almost always does).
fn racy_counter_reports_its_lost_count() -> anyhow::Result<()> {
    let mut lost_any = false;
    for _ in 0..5 {
        let run = count(Strategy::Racy, 2, 5_000_000)?;
        ensure!(run.expected == 10_000_000);
        ensure!(
            run.final_value > 0 && run.final_value <= run.expected,
            "{run:?}"
        );
        ensure!(run.lost == run.expected - run.final_value, "{run:?}");
        lost_any |= run.lost > 0;
        if lost_any {
            break;
        }
    }
    if shmlab::cli::available_cpus() >= 2 {
        ensure!(
            lost_any,
            "5 racy runs on 2 CPUs lost nothing: is the racy increment still racy?"
        );
    }
    Ok(())
}

/// Holds the lock on this thread while another thread tries `tries` timed
/// locks of `ms` each: every one must give up with Timeout, none earlier
/// than asked, none with an OS error (raw_sync's bug).
fn timeouts<L: RawLock>(ms: u64, tries: usize) -> anyhow::Result<()> {
    let value = SharedValue::<i64, L>::create(0)?;
    let guard = value.lock().map_err(|e| e.discard_guard())?;
    let timeout = Duration::from_millis(ms);
    std::thread::scope(|s| {
        s.spawn(|| -> anyhow::Result<()> {
            for attempt in 0..tries {
                let started = Instant::now();
                let r = value.try_lock_for(timeout);
                let waited = started.elapsed();
                ensure!(
                    matches!(r, Err(LockError::Timeout(_))),
                    "attempt {attempt}: {r:?}"
                );
                ensure!(
                    waited >= timeout,
                    "attempt {attempt} gave up after {waited:?} < {timeout:?}"
                );
                ensure!(
                    waited < timeout + Duration::from_secs(2),
                    "attempt {attempt} took {waited:?}"
                );
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the timing thread panicked"))?
    })?;
    drop(guard);
    // And once free, a timed lock succeeds at once.
    ensure!(value.try_lock_for(timeout).is_ok());
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HoldArgs {
    value: String,
    gate: String,
    lock: LockKind,
}

/// In a worker: takes the lock, arrives at the gate, holds the lock until
/// the gate opens (or the worker is killed).
fn hold(args: HoldArgs) -> Result<(), String> {
    fn on<L: RawLock>(args: &HoldArgs) -> Result<(), String> {
        let value = SharedValue::<i64, L>::open(&args.value).map_err(|e| e.to_string())?;
        let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
        let guard = value.lock().map_err(|e| e.to_string())?;
        guard.set(guard.get() + 1);
        gate.arrive_and_wait(Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
    match args.lock {
        LockKind::Futex => on::<FutexLock>(&args),
        LockKind::Os => on::<OsMutex>(&args),
    }
}
shmlab::task!(hold);

fn start_holder<L: RawLock>(
    value: &SharedValue<i64, L>,
    gate: &StartGate,
) -> anyhow::Result<process::Worker<Result<(), String>>> {
    let args = HoldArgs {
        value: value.name().into(),
        gate: gate.name().into(),
        lock: L::KIND,
    };
    let mut holder = [process::spawn(hold, &args)?];
    gate.wait_for(&mut holder, Duration::from_secs(20))?;
    let [holder] = holder;
    Ok(holder)
}

fn cross_process_timeout<L: RawLock>() -> anyhow::Result<()> {
    let value = SharedValue::<i64, L>::create(0)?;
    let gate = StartGate::create()?;
    let holder = start_holder(&value, &gate)?;
    let started = Instant::now();
    let r = value.try_lock_for(Duration::from_millis(50));
    ensure!(matches!(r, Err(LockError::Timeout(_))), "{r:?}");
    ensure!(started.elapsed() >= Duration::from_millis(50));
    drop(r);
    gate.open_now();
    holder.join()?.map_err(anyhow::Error::msg)?;
    let guard = value
        .try_lock_for(Duration::from_secs(10))
        .map_err(|e| e.discard_guard())?;
    ensure!(
        guard.get() == 1,
        "the holder's update is visible after its unlock"
    );
    Ok(())
}

/// The holder is SIGKILLed while holding the lock; the next locker must get
/// the lock with OwnerDied in bounded time, and the lock must then work
/// normally. With `reap_first`, the holder is reaped before we lock (no
/// zombie left); otherwise we lock while it is still a zombie.
fn owner_death<L: RawLock>(reap_first: bool) -> anyhow::Result<()> {
    let value = SharedValue::<i64, L>::create(0)?;
    let gate = StartGate::create()?;
    let mut holder = start_holder(&value, &gate)?;
    holder.kill()?;
    if reap_first {
        let r = holder.join_timeout(Duration::from_secs(10));
        ensure!(matches!(r, Err(WorkerError::Killed { .. })), "{r:?}");
    }
    let started = Instant::now();
    match value.try_lock_for(Duration::from_secs(10)) {
        Err(LockError::OwnerDied(guard)) => {
            ensure!(
                guard.get() == 1,
                "the holder's write before it died is visible"
            );
            guard.set(100);
        }
        other => anyhow::bail!("expected OwnerDied, got {other:?}"),
    }
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "recovery took {:?}",
        started.elapsed()
    );
    // The lock is healthy again: a clean lock, and the repaired value.
    let guard = value
        .try_lock_for(Duration::from_secs(1))
        .map_err(|e| e.discard_guard())?;
    ensure!(guard.get() == 100);
    drop(guard);
    if !reap_first {
        let r = holder.join_timeout(Duration::from_secs(10));
        ensure!(matches!(r, Err(WorkerError::Killed { .. })), "{r:?}");
    }
    Ok(())
}
