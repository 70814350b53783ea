//! The process pool: every call of its surface, exact results, lazy input,
//! faults (a panicking task, a worker killed by SIGKILL) that never hang
//! the caller, futures, and shutdown that leaves no worker behind.
//! Run: cargo test --release --test pool

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use common::wait_until;
use shmlab::SharedValue;
use shmlab::pool::{Pool, PoolError, Status, default_chunksize};
use shmlab::process::pid_alive;

fn main() {
    common::run(&[
        ("map_is_exact_and_ordered", map_is_exact_and_ordered),
        ("starmap_passes_two_arguments", starmap_passes_two_arguments),
        ("imap_reads_its_input_lazily", imap_reads_its_input_lazily),
        (
            "imap_of_large_arguments_neither_hangs_nor_hoards",
            imap_of_large_arguments_neither_hangs_nor_hoards,
        ),
        (
            "imap_unordered_returns_every_result",
            imap_unordered_returns_every_result,
        ),
        ("apply_async_handle", apply_async_handle),
        ("futures_cancel_and_callbacks", futures_cancel_and_callbacks),
        ("map_async_reports_progress", map_async_reports_progress),
        (
            "a_new_task_is_not_queued_by_an_old_tasks_estimate",
            a_new_task_is_not_queued_by_an_old_tasks_estimate,
        ),
        (
            "progress_moves_as_results_arrive",
            progress_moves_as_results_arrive,
        ),
        (
            "a_panic_fails_its_task_with_the_message",
            a_panic_fails_its_task_with_the_message,
        ),
        (
            "a_worker_killed_mid_task_is_replaced",
            a_worker_killed_mid_task_is_replaced,
        ),
        (
            "a_worker_killed_from_outside_fails_only_its_task",
            a_worker_killed_from_outside_fails_only_its_task,
        ),
        (
            "close_then_join_finishes_work",
            close_then_join_finishes_work,
        ),
        (
            "terminate_fails_unfinished_work",
            terminate_fails_unfinished_work,
        ),
        (
            "dropping_the_pool_kills_its_workers",
            dropping_the_pool_kills_its_workers,
        ),
        (
            "bad_requests_are_typed_errors",
            bad_requests_are_typed_errors,
        ),
        ("the_default_chunksize_rule", the_default_chunksize_rule),
    ]);
}

fn cube(x: u64) -> u64 {
    x * x * x
}
shmlab::task!(cube);

fn power_n(x: u64, n: u32) -> u64 {
    x.pow(n)
}
shmlab::task!(power_n);

/// Panics on 3, so a test can check which item failed and why.
fn fragile(x: u64) -> u64 {
    assert!(x != 3, "boom on {x}");
    x + 1
}
shmlab::task!(fragile);

/// SIGKILLs its own worker on 5: a worker dying mid-task.
fn fatal_on_five(x: u64) -> u64 {
    if x == 5 {
        // SAFETY: kill with our own pid and a valid signal touches no memory.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x * 10
}
shmlab::task!(fatal_on_five);

/// Publishes its pid in the shared value `flag` (as `-pid`), then waits
/// (bounded, 20 s) until the parent stores 1 there. Returns its pid.
fn hold(flag: String) -> u32 {
    let flag = SharedValue::<i64>::open(&flag).expect("open the flag");
    let me = std::process::id();
    flag.store(-i64::from(me));
    let started = Instant::now();
    while flag.load() != 1 && started.elapsed() < Duration::from_secs(20) {
        std::thread::yield_now();
    }
    me
}
shmlab::task!(hold);

fn sum_to(n: u64) -> u64 {
    (0..=n).sum()
}
shmlab::task!(sum_to);

/// Busy for `us` microseconds (a workload with a known length), returns it.
fn busy_us(us: u64) -> u64 {
    let started = Instant::now();
    while started.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
    us
}
shmlab::task!(busy_us);

fn map_is_exact_and_ordered() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let expected: Vec<u64> = (0..256u64).map(|x| x * x * x).collect();
    for chunksize in [None, Some(1), Some(7), Some(100), Some(1000)] {
        let cubes = pool.map(cube, 0..256u64, chunksize)?;
        ensure!(cubes == expected, "chunksize {chunksize:?}");
    }
    // An input of unknown length (a filter) and an empty one.
    let odd = pool.map(cube, (0..100u64).filter(|x| x % 2 == 1), None)?;
    ensure!(
        odd == (0..100u64)
            .filter(|x| x % 2 == 1)
            .map(|x| x * x * x)
            .collect::<Vec<_>>()
    );
    ensure!(pool.map(cube, Vec::<u64>::new(), None)?.is_empty());
    ensure!(pool.apply(cube, 11)? == 1331);
    Ok(())
}

fn starmap_passes_two_arguments() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let powers = pool.starmap(power_n, (0..=10u32).map(|n| (2u64, n)), Some(3))?;
    ensure!(powers == (0..=10).map(|n| 1u64 << n).collect::<Vec<_>>());
    // The lazy form reports its progress.
    let mut lazy = pool.istarmap(power_n, (0..=10u32).map(|n| (3u64, n)), Some(2))?;
    ensure!(lazy.progress().total == Some(11));
    let first = lazy.next().context("no result")??;
    ensure!(first == 1);
    let rest: Vec<u64> = lazy.by_ref().collect::<Result<_, _>>()?;
    ensure!(rest.last() == Some(&3u64.pow(10)));
    ensure!(lazy.progress().done == 11);
    Ok(())
}

fn imap_reads_its_input_lazily() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let pulled = AtomicUsize::new(0);
    let input = (0..10_000_000u64).inspect(|_| {
        pulled.fetch_add(1, Ordering::Relaxed);
    });
    let mut results = pool.imap(cube, input, Some(10))?;
    for x in 0..100u64 {
        let got = results.next().context("ended early")??;
        ensure!(got == x * x * x, "item {x}: {got}");
    }
    drop(results);
    let pulled = pulled.load(Ordering::Relaxed);
    // The look-ahead: the larger of LOOKAHEAD chunks per worker and a full
    // queue at every worker, plus the chunk being read.
    let lookahead = (shmlab::pool::LOOKAHEAD * pool.workers() * 10)
        .max(pool.workers() * shmlab::pool::MAX_QUEUED);
    let bound = 100 + lookahead + 10;
    ensure!(
        pulled <= bound,
        "read {pulled} items to return 100 (bound {bound})"
    );
    // The cancelled rest does not block the next call.
    ensure!(pool.map(cube, 0..10u64, None)?[9] == 729);
    Ok(())
}

fn byte_len(text: String) -> usize {
    text.len()
}
shmlab::task!(byte_len);

/// 512 KiB arguments, one per chunk, on one worker. Two bugs met here: the
/// caller, its wait for results timed out, asked the pool whether it had
/// settled while holding the stream's lock, as the dispatcher (holding the
/// pool's lock while a large frame streamed) wanted the stream's — a
/// deadlock; and the first read took workers × MAX_QUEUED items whatever
/// their size (272 MB for this input).
fn imap_of_large_arguments_neither_hangs_nor_hoards() -> anyhow::Result<()> {
    const ITEM: usize = 512 << 10;
    let pulled = std::sync::Arc::new(AtomicUsize::new(0));
    let (done, finished) = std::sync::mpsc::channel();
    // A thread of its own, not scoped: if the deadlock came back, the test
    // must fail after its timeout instead of waiting to join a stuck thread.
    let counter = pulled.clone();
    std::thread::spawn(move || {
        let run = || -> anyhow::Result<(Option<usize>, usize, Vec<usize>)> {
            let pool = Pool::new(1)?;
            let input = (0..80).map(|i| {
                counter.fetch_add(1, Ordering::Relaxed);
                char::from(b'a' + (i % 26) as u8).to_string().repeat(ITEM)
            });
            let mut results = pool.imap(byte_len, input, Some(1))?;
            let first = results.next().transpose()?;
            let read_for_first = counter.load(Ordering::Relaxed);
            let rest = results.collect::<Result<Vec<usize>, _>>()?;
            Ok((first, read_for_first, rest))
        };
        let _ = done.send(run().map_err(|e| e.to_string()));
    });
    let (first, read_for_first, rest) = finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .context("imap hung (the lock-order deadlock)")?
        .map_err(anyhow::Error::msg)?;
    ensure!(first == Some(ITEM), "first result {first:?}");
    // 16 MiB of look-ahead is 32 items of 512 KiB; far from 512.
    ensure!(
        read_for_first <= 64,
        "read {read_for_first} items of 512 KiB to return the first"
    );
    ensure!(rest.len() == 79 && rest.iter().all(|&n| n == ITEM));
    Ok(())
}

fn imap_unordered_returns_every_result() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let mut sums: Vec<u64> = pool
        .imap_unordered(sum_to, (0..300u64).rev().map(|x| x * 1000), Some(1))?
        .collect::<Result<_, _>>()?;
    sums.sort_unstable();
    let mut expected: Vec<u64> = (0..300u64).map(|x| sum_to(x * 1000)).collect();
    expected.sort_unstable();
    ensure!(sums == expected);
    Ok(())
}

fn apply_async_handle() -> anyhow::Result<()> {
    let pool = Pool::new(1)?;
    let flag = SharedValue::<i64>::create(0)?;
    let mut held = pool.apply_async(hold, flag.name().to_string())?;
    wait_until("the task is running", Duration::from_secs(10), || {
        flag.load() < 0
    })?;
    ensure!(!held.ready() && held.successful().is_none());
    match held.get_timeout(Duration::from_millis(20)) {
        Err(PoolError::Timeout(_)) => {}
        other => anyhow::bail!("expected a timeout, got {other:?}"),
    }
    flag.store(1);
    let pid = held.get_timeout(Duration::from_secs(10))?;
    ensure!(pool.pids() == vec![pid]);
    ensure!(held.ready() && held.successful() == Some(true));
    ensure!(held.get_timeout(Duration::ZERO) == Err(PoolError::AlreadyTaken));
    Ok(())
}

fn futures_cancel_and_callbacks() -> anyhow::Result<()> {
    let pool = Pool::new(1)?;
    let flag = SharedValue::<i64>::create(0)?;
    let first = pool.submit(hold, flag.name().to_string())?;
    let (tx, rx) = mpsc::channel();
    first.add_done_callback(move |result| {
        let _ = tx.send(result.clone());
    });
    wait_until("the first task is running", Duration::from_secs(10), || {
        flag.load() < 0
    })?;
    ensure!(first.is_running() && !first.is_done());
    // One worker, busy: at most MAX_QUEUED items (or 2 chunks) queue at it,
    // so the one after those stays in the pool's own queue.
    let queued: Vec<_> = (0..shmlab::pool::MAX_QUEUED as u64 + 2)
        .map(|x| pool.submit(cube, x))
        .collect::<Result<_, _>>()?;
    let waiting = pool.submit(cube, 99)?;
    ensure!(
        waiting.status() == Status::Pending,
        "{:?}",
        waiting.status()
    );
    ensure!(waiting.cancel() && waiting.is_cancelled() && waiting.is_done());
    ensure!(!first.cancel(), "a running task cannot be cancelled");
    ensure!(!first.wait(Duration::from_millis(10)));
    flag.store(1);
    ensure!(first.wait(Duration::from_secs(10)));
    let from_callback = rx.recv_timeout(Duration::from_secs(10))?;
    ensure!(from_callback.is_ok(), "{from_callback:?}");
    ensure!(first.get()? == from_callback?);
    for (x, handle) in queued.into_iter().enumerate() {
        ensure!(handle.get()? == (x as u64).pow(3), "queued task {x}");
    }
    ensure!(waiting.get() == Err(PoolError::Cancelled));
    // A callback added after the end runs at once, on this thread.
    let late = pool.submit(cube, 2)?;
    ensure!(late.wait(Duration::from_secs(10)));
    let seen = Arc::new(AtomicUsize::new(0));
    let seen_in_callback = Arc::clone(&seen);
    late.add_done_callback(move |r| {
        if r == &Ok(8) {
            seen_in_callback.fetch_add(1, Ordering::Relaxed);
        }
    });
    ensure!(seen.load(Ordering::Relaxed) == 1);
    ensure!(!late.cancel());
    Ok(())
}

fn a_new_task_is_not_queued_by_an_old_tasks_estimate() -> anyhow::Result<()> {
    let pool = Pool::new(1)?;
    // Tiny tasks: the worker's queue grows to hundreds of items.
    ensure!(pool.map(cube, 0..5000u64, Some(1))?.len() == 5000);
    let flag = SharedValue::<i64>::create(0)?;
    let held = pool.submit(hold, flag.name().to_string())?;
    wait_until("the task is running", Duration::from_secs(10), || {
        flag.load() < 0
    })?;
    // A task the worker has never timed gets the cautious first guess:
    // behind the running one, one more chunk, not hundreds.
    let slow: Vec<_> = (0..10)
        .map(|_| pool.submit(busy_us, 100))
        .collect::<Result<_, _>>()?;
    // The first one goes to the worker (2 chunks at most: the running task
    // and one more). Wait for that, then take the pool's state lock (the
    // dispatcher holds it for a whole hand-out pass) before counting.
    wait_until(
        "one slow task is handed over",
        Duration::from_secs(10),
        || slow.iter().any(|h| h.is_running()),
    )?;
    let _ = pool.pids();
    let handed_over = slow.iter().filter(|h| h.is_running()).count();
    ensure!(
        handed_over <= 1,
        "{handed_over} of 10 untimed tasks queued at one worker"
    );
    flag.store(1);
    ensure!(held.get().is_ok());
    for handle in slow {
        ensure!(handle.get()? == 100);
    }
    Ok(())
}

fn map_async_reports_progress() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let handle = pool.map_async(cube, 0..2000u64, Some(10))?;
    ensure!(handle.progress().total == Some(2000));
    ensure!(
        handle.wait(Duration::from_secs(30)),
        "map_async did not finish"
    );
    ensure!(handle.successful() == Some(true));
    ensure!(handle.progress().done == 2000);
    let cubes = handle.get()?;
    ensure!(cubes.len() == 2000 && cubes[1999] == 1999u64.pow(3));
    Ok(())
}

fn progress_moves_as_results_arrive() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let mut seen = Vec::new();
    // 400 tasks of 300 µs: about 60 ms on two workers.
    let done = pool.map_with_progress(busy_us, vec![300u64; 400], Some(4), |p| seen.push(p))?;
    ensure!(done.len() == 400);
    let last = seen.last().context("no progress reported")?;
    ensure!(last.done == 400 && last.total == Some(400), "{last:?}");
    ensure!(seen.windows(2).all(|w| w[0].done <= w[1].done));
    let distinct = {
        let mut d: Vec<usize> = seen.iter().map(|p| p.done).collect();
        d.dedup();
        d.len()
    };
    // Not a jump from 0 to 100 %: many steps in between (how many depends
    // on how results batch up on a busy machine).
    let between = seen.iter().filter(|p| p.done > 0 && p.done < 400).count();
    ensure!(
        distinct >= 10 && between > 0,
        "progress took only {distinct} distinct values"
    );
    Ok(())
}

fn a_panic_fails_its_task_with_the_message() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    match pool.map(fragile, 0..10u64, Some(2)) {
        Err(PoolError::TaskPanicked { index, message, .. }) => {
            ensure!(index == 3, "index {index}");
            ensure!(message.contains("boom on 3"), "message {message:?}");
        }
        other => anyhow::bail!("expected TaskPanicked, got {other:?}"),
    }
    // imap reports the failure in place and carries on.
    let all: Vec<_> = pool.imap(fragile, 0..10u64, Some(4))?.collect();
    for (x, result) in all.iter().enumerate() {
        match (x, result) {
            (3, Err(PoolError::TaskPanicked { index: 3, .. })) => {}
            (x, Ok(v)) if *v == x as u64 + 1 => {}
            (x, other) => anyhow::bail!("item {x}: {other:?}"),
        }
    }
    ensure!(
        pool.stats().replaced == 0,
        "a panic must not kill the worker"
    );
    Ok(())
}

fn a_worker_killed_mid_task_is_replaced() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let before = pool.pids();
    let started = Instant::now();
    let all: Vec<_> = pool.imap(fatal_on_five, 0..40u64, Some(3))?.collect();
    ensure!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    for (x, result) in all.iter().enumerate() {
        match (x, result) {
            (
                5,
                Err(PoolError::WorkerDied {
                    index: 5, reason, ..
                }),
            ) => {
                ensure!(reason.contains("SIGKILL"), "reason {reason:?}");
            }
            (x, Ok(v)) if *v == x as u64 * 10 => {}
            (x, other) => anyhow::bail!("item {x}: {other:?}"),
        }
    }
    ensure!(pool.stats().replaced == 1);
    let after = pool.pids();
    ensure!(
        after.len() == 2 && after != before,
        "{before:?} -> {after:?}"
    );
    ensure!(pool.map(cube, 0..100u64, Some(1))?[99] == 99u64.pow(3));
    Ok(())
}

fn a_worker_killed_from_outside_fails_only_its_task() -> anyhow::Result<()> {
    let pool = Pool::new(2)?;
    let flag = SharedValue::<i64>::create(0)?;
    let held = pool.submit(hold, flag.name().to_string())?;
    wait_until("the task is running", Duration::from_secs(10), || {
        flag.load() < 0
    })?;
    let victim = (-flag.load()) as u32;
    let others = pool.map_async(cube, 0..500u64, Some(5))?;
    // SAFETY: kill with a pid and a valid signal touches no memory.
    unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
    match held.get() {
        Err(PoolError::WorkerDied { pid, reason, .. }) => {
            ensure!(
                pid == victim && reason.contains("SIGKILL"),
                "{pid} {reason}"
            );
        }
        other => anyhow::bail!("expected WorkerDied, got {other:?}"),
    }
    let cubes = others.get()?;
    ensure!(cubes == (0..500u64).map(|x| x.pow(3)).collect::<Vec<_>>());
    ensure!(!pool.pids().contains(&victim) && pool.pids().len() == 2);
    Ok(())
}

fn close_then_join_finishes_work() -> anyhow::Result<()> {
    let mut pool = Pool::new(2)?;
    let handles: Vec<_> = (0..20u64)
        .map(|x| pool.apply_async(cube, x))
        .collect::<Result<_, _>>()?;
    ensure!(pool.join() == Err(PoolError::NotClosed));
    let pids = pool.pids();
    pool.close();
    ensure!(matches!(pool.apply_async(cube, 1), Err(PoolError::Closed)));
    pool.join()?;
    for (x, handle) in handles.into_iter().enumerate() {
        ensure!(handle.get()? == (x as u64).pow(3));
    }
    for pid in pids {
        ensure!(!pid_alive(pid), "worker {pid} outlived join");
    }
    Ok(())
}

fn terminate_fails_unfinished_work() -> anyhow::Result<()> {
    let mut pool = Pool::new(1)?;
    let flag = SharedValue::<i64>::create(0)?;
    let held = pool.submit(hold, flag.name().to_string())?;
    let queued = pool.submit(cube, 3)?;
    wait_until("the task is running", Duration::from_secs(10), || {
        flag.load() < 0
    })?;
    let pids = pool.pids();
    pool.terminate();
    ensure!(held.get() == Err(PoolError::Terminated));
    ensure!(queued.get() == Err(PoolError::Terminated));
    ensure!(matches!(pool.apply(cube, 1), Err(PoolError::Terminated)));
    for pid in pids {
        ensure!(!pid_alive(pid), "worker {pid} outlived terminate");
    }
    Ok(())
}

fn dropping_the_pool_kills_its_workers() -> anyhow::Result<()> {
    let pool = Pool::new(3)?;
    let pids = pool.pids();
    let segments = pool.segment_names();
    ensure!(
        pids.len() == 3 && segments.len() == 4,
        "{pids:?} {segments:?}"
    );
    for name in &segments {
        ensure!(common::shm_path(name).exists(), "{name} is not in /dev/shm");
    }
    let flag = SharedValue::<i64>::create(0)?;
    let _running = pool.submit(hold, flag.name().to_string())?;
    drop(pool);
    for pid in pids {
        ensure!(!pid_alive(pid), "worker {pid} outlived its pool");
    }
    for name in &segments {
        ensure!(!common::shm_path(name).exists(), "{name} left in /dev/shm");
    }
    Ok(())
}

fn bad_requests_are_typed_errors() -> anyhow::Result<()> {
    ensure!(matches!(Pool::new(0), Err(PoolError::NoWorkersRequested)));
    let pool = Pool::new(1)?;
    ensure!(matches!(
        pool.map(cube, 0..10u64, Some(0)),
        Err(PoolError::ZeroChunksize)
    ));
    let closure = |x: u64| x + 1;
    match pool.map(closure, 0..3u64, None) {
        Err(PoolError::NotATask(message)) => {
            ensure!(message.contains("not a named function"), "{message}")
        }
        other => anyhow::bail!("expected NotATask, got {other:?}"),
    }
    fn unregistered(x: u64) -> u64 {
        x
    }
    match pool.apply_async(unregistered, 1) {
        Err(PoolError::NotATask(message)) => {
            ensure!(message.contains("shmlab::task!(unregistered)"), "{message}")
        }
        other => anyhow::bail!("expected NotATask, got {other:?}"),
    }
    Ok(())
}

fn the_default_chunksize_rule() -> anyhow::Result<()> {
    // Python: chunksize, extra = divmod(len, 4 * workers); if extra: += 1
    ensure!(default_chunksize(Some(10_000), 2) == 1250);
    ensure!(default_chunksize(Some(10_001), 2) == 1251);
    ensure!(default_chunksize(Some(3), 4) == 1);
    ensure!(default_chunksize(Some(0), 4) == 1);
    ensure!(default_chunksize(None, 4) == 1);
    Ok(())
}
