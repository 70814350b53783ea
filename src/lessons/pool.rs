//! Lab 02: the process pool — the tutorials' examples (`cube` with `map`,
//! `power_n` with `starmap`, `apply_async` + `get`, `imap`,
//! `imap_unordered`, `map_async`), two faults that never hang the caller,
//! and the chunksize lesson: 10 000 tiny tasks sent one at a time and 100
//! at a time.
//!
//! ```
//! use shmlab::lessons::pool::{cube, doomed, fragile};
//! use shmlab::pool::{Pool, PoolError};
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // pool workers run their loop in here
//!     let pool = Pool::new(2)?;
//!     assert_eq!(pool.map(cube, 0..5u64, None)?, [0, 1, 8, 27, 64]);
//!     // A task that panics fails its call with the message...
//!     let err = pool.map(fragile, 0..5u64, Some(1)).unwrap_err();
//!     assert!(matches!(err, PoolError::TaskPanicked { index: 3, .. }));
//!     // ...a worker killed mid-task fails its item only, and is replaced.
//!     assert!(matches!(pool.apply(doomed, 5), Err(PoolError::WorkerDied { .. })));
//!     assert_eq!(pool.map(cube, [4u64], Some(100))?, [64]);
//!     Ok(())
//! }
//! ```

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pool::{Pool, PoolError};
use crate::report::{self, Bar, Outcome, Report};

/// Options of lab 02.
///
/// ```
/// use shmlab::lessons::pool::{self, PoolConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config =
///         PoolConfig { workers: 2, tasks: 100, chunksizes: vec![10], repeats: 1, quiet: true };
///     let report = pool::run(&config)?;
///     assert!(report.ok(), "{}", report.verdict());
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Worker processes in the pool.
    pub workers: usize,
    /// Tiny tasks per timed run of the chunksize lesson.
    pub tasks: usize,
    /// Chunk sizes to time.
    pub chunksizes: Vec<usize>,
    /// Timed runs per row (the report gives the median).
    pub repeats: usize,
    /// No progress bars (for `--json`).
    pub quiet: bool,
}

/// `x³`: the tutorials' first pool example.
///
/// ```
/// use shmlab::lessons::pool::cube;
///
/// assert_eq!(cube(3), 27);
/// assert_eq!((0..5).map(cube).collect::<Vec<_>>(), [0, 1, 8, 27, 64]);
/// ```
pub fn cube(x: u64) -> u64 {
    x * x * x
}
crate::task!(cube);

/// `xⁿ`: a task of two arguments, for `starmap`.
///
/// ```
/// use shmlab::lessons::pool::power_n;
///
/// assert_eq!(power_n(2, 10), 1024);
/// assert_eq!(power_n(7, 0), 1);
/// ```
pub fn power_n(x: u64, n: u32) -> u64 {
    x.pow(n)
}
crate::task!(power_n);

/// Returns `x` after `(8 - x) × 4` ms of simulated work, so that later
/// items finish first.
///
/// ```
/// use std::time::{Duration, Instant};
/// use shmlab::lessons::pool::countdown;
///
/// let started = Instant::now();
/// assert_eq!(countdown(7), 7); // 4 ms of "work"
/// assert!(started.elapsed() >= Duration::from_millis(4));
/// assert_eq!(countdown(8), 8); // none at all
/// ```
pub fn countdown(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(8u64.saturating_sub(x) * 4));
    x
}
crate::task!(countdown);

/// `x + 1`, but panics on 3.
///
/// ```
/// use shmlab::lessons::pool::fragile;
///
/// assert_eq!(fragile(2), 3);
/// assert!(std::panic::catch_unwind(|| fragile(3)).is_err());
/// ```
pub fn fragile(x: u64) -> u64 {
    assert!(x != 3, "refusing to handle {x}");
    x + 1
}
crate::task!(fragile);

/// `x + 1`, but on 5 its worker process kills itself with SIGKILL, as the
/// OOM killer would.
///
/// ```
/// use shmlab::lessons::pool::doomed;
///
/// assert_eq!(doomed(4), 5);
/// // doomed(5) would SIGKILL this very process: only ever run it in a pool
/// // (see `Pool::stats`).
/// ```
pub fn doomed(x: u64) -> u64 {
    if x == 5 {
        // SAFETY: kill with our own pid and a valid signal number touches no
        // memory of ours.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x + 1
}
crate::task!(doomed);

/// The tutorials' examples and their results.
///
/// ```
/// use shmlab::lessons::pool::{Examples, cube, power_n};
///
/// // What each example must give, computed without a pool.
/// let cubes: Vec<u64> = (0..256).map(cube).collect();
/// let expected = Examples {
///     cube_first: cubes[..8].to_vec(),
///     cube_sum: cubes.iter().sum(),
///     power_n: (0..=10).map(|n| power_n(2, n)).collect(),
///     apply_async: cube(10),
///     imap: (0..8).map(cube).collect(),
///     imap_unordered: (0..8).collect(), // in some order
///     map_async_sum: (0..1000).map(cube).sum(),
///     all_correct: true,
/// };
/// assert_eq!(expected.cube_sum, 1_065_369_600);
/// assert_eq!(expected.power_n[10], 1024);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Examples {
    /// `map(cube, 0..256)`: the first eight.
    pub cube_first: Vec<u64>,
    /// … and the sum of all 256 (`(255 × 256 / 2)²` = 1 065 369 600).
    pub cube_sum: u64,
    /// `starmap(power_n, [(2, 0), (2, 1), …, (2, 10)])`.
    pub power_n: Vec<u64>,
    /// `apply_async(cube, 10).get(timeout = 5 s)`.
    pub apply_async: u64,
    /// `imap(cube, 0..8)`, in input order.
    pub imap: Vec<u64>,
    /// `imap_unordered(countdown, 0..8)`, in the order they finished.
    pub imap_unordered: Vec<u64>,
    /// `map_async(cube, 0..1000)`: the sum of the results.
    pub map_async_sum: u64,
    /// Whether every result was right.
    pub all_correct: bool,
}

/// What the two faults did.
///
/// ```
/// use shmlab::lessons::pool::Faults;
///
/// let faults = Faults {
///     panic: "task 3 panicked in worker 4242: refusing to handle 3".to_string(),
///     killed: "task 5 failed: worker 4243 killed by SIGKILL".to_string(),
///     others_completed: 9,
///     workers_replaced: 1,
///     seconds: 0.02,
///     as_expected: true,
/// };
/// assert_eq!(serde_json::to_value(&faults)?["workers_replaced"], 1);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Faults {
    /// `map(fragile, 0..10)`: the error (a panic in task 3).
    pub panic: String,
    /// `imap(doomed, 0..10)`: the error of task 5 (its worker was killed).
    pub killed: String,
    /// Tasks of `imap(doomed, 0..10)` that still returned their result.
    pub others_completed: usize,
    /// Workers started to replace dead ones.
    pub workers_replaced: usize,
    /// Seconds both faults took, start to finish.
    pub seconds: f64,
    /// Whether each fault was reported as it should be.
    pub as_expected: bool,
}

/// One timed row of the chunksize lesson.
///
/// ```
/// use shmlab::lessons::pool::CallResult;
///
/// let row =
///     CallResult { call: "map", chunksize: 100, tasks: 10_000, seconds: 0.02, us_per_task: 2.0 };
/// assert_eq!(row.seconds / row.tasks as f64 * 1e6, row.us_per_task);
/// assert_eq!(serde_json::to_value(&row)?["call"], "map");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct CallResult {
    /// `map`, `imap_unordered` or `apply_async`.
    pub call: &'static str,
    /// Items per chunk (1 for `apply_async`: each task travels alone).
    pub chunksize: usize,
    /// Tasks run.
    pub tasks: usize,
    /// Median seconds of the timed runs.
    pub seconds: f64,
    /// `seconds / tasks`, in microseconds.
    pub us_per_task: f64,
}

/// The JSON of lab 02: `lab`, `ok`, `verdict`, `workers`, `start_ms` (to
/// start the pool and hear from every worker), `examples: {cube_first,
/// cube_sum, power_n, apply_async, imap, imap_unordered, map_async_sum,
/// all_correct}`, `faults: {panic, killed, others_completed,
/// workers_replaced, seconds, as_expected}`, `repeats`, and `results:
/// [{call, chunksize, tasks, seconds, us_per_task}]`.
///
/// ```
/// use shmlab::lessons::pool::{self, PoolConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config =
///         PoolConfig { workers: 2, tasks: 100, chunksizes: vec![10], repeats: 1, quiet: true };
///     let json = serde_json::to_value(pool::run(&config)?)?;
///     assert_eq!(json["lab"], "lab02-pool");
///     assert_eq!(json["examples"]["power_n"][10], 1024);
///     assert_eq!(json["results"][0]["chunksize"], 10);
///     Ok(())
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct PoolReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Worker processes.
    pub workers: usize,
    /// Milliseconds to start the pool.
    pub start_ms: f64,
    /// The tutorials' examples.
    pub examples: Examples,
    /// The faults.
    pub faults: Faults,
    /// Timed runs per row.
    pub repeats: usize,
    /// The chunksize lesson.
    pub results: Vec<CallResult>,
}

fn examples(pool: &Pool) -> Result<Examples, PoolError> {
    let cubes = pool.map(cube, 0..256u64, None)?;
    let power_n = pool.starmap(power_n, (0..=10u32).map(|n| (2u64, n)), None)?;
    let apply_async = pool
        .apply_async(cube, 10)?
        .get_timeout(Duration::from_secs(5))?;
    let imap = pool.imap(cube, 0..8u64, None)?.collect::<Result<_, _>>()?;
    let imap_unordered: Vec<u64> = pool
        .imap_unordered(countdown, 0..8u64, Some(1))?
        .collect::<Result<_, _>>()?;
    let map_async_sum = pool.map_async(cube, 0..1000u64, None)?.get()?.iter().sum();
    let mut sorted = imap_unordered.clone();
    sorted.sort_unstable();
    let all_correct = cubes == (0..256u64).map(cube).collect::<Vec<_>>()
        && power_n == (0..=10).map(|n| 1u64 << n).collect::<Vec<_>>()
        && apply_async == 1000
        && imap == (0..8u64).map(cube).collect::<Vec<_>>()
        && sorted == (0..8).collect::<Vec<_>>()
        && map_async_sum == (0..1000u64).map(cube).sum::<u64>();
    Ok(Examples {
        cube_first: cubes[..8].to_vec(),
        cube_sum: cubes.iter().sum(),
        power_n,
        apply_async,
        imap,
        imap_unordered,
        map_async_sum,
        all_correct,
    })
}

fn faults(pool: &Pool) -> Result<Faults, PoolError> {
    let started = Instant::now();
    let panic = match pool.map(fragile, 0..10u64, Some(1)) {
        Err(e @ PoolError::TaskPanicked { index: 3, .. }) => Ok(e.to_string()),
        Err(e) => Err(e.to_string()),
        Ok(_) => Err("no error".to_string()),
    };
    let mut killed = Err("no error".to_string());
    let mut others_completed = 0;
    for (x, result) in pool.imap(doomed, 0..10u64, Some(2))?.enumerate() {
        match result {
            Ok(v) if v == x as u64 + 1 => others_completed += 1,
            Err(e @ PoolError::WorkerDied { index: 5, .. })
                if e.to_string().contains("SIGKILL") =>
            {
                killed = Ok(e.to_string());
            }
            other => killed = Err(format!("task {x}: {other:?}")),
        }
    }
    let workers_replaced = pool.stats().replaced;
    let as_expected =
        panic.is_ok() && killed.is_ok() && others_completed == 9 && workers_replaced == 1;
    Ok(Faults {
        panic: panic.unwrap_or_else(|e| format!("unexpected: {e}")),
        killed: killed.unwrap_or_else(|e| format!("unexpected: {e}")),
        others_completed,
        workers_replaced,
        seconds: started.elapsed().as_secs_f64(),
        as_expected,
    })
}

/// Times `repeats` runs of one call over `tasks` tiny tasks; the median.
fn time_call(
    pool: &Pool,
    call: &'static str,
    chunksize: usize,
    config: &PoolConfig,
) -> Result<CallResult, PoolError> {
    let tasks = config.tasks;
    let expected: u64 = (0..tasks as u64).map(cube).sum();
    let mut seconds = Vec::with_capacity(config.repeats);
    for _ in 0..config.repeats {
        // Only `map` reports progress as it goes; the other rows would show
        // a bar that never moves.
        let bar = Bar::new(
            &format!("{call} chunksize {chunksize}"),
            config.quiet || call != "map",
        );
        let started = Instant::now();
        let sum: u64 = match call {
            "map" => pool
                .map_with_progress(cube, 0..tasks as u64, Some(chunksize), |p| bar.update(p))?
                .iter()
                .sum(),
            "imap_unordered" => pool
                .imap_unordered(cube, 0..tasks as u64, Some(chunksize))?
                .sum::<Result<u64, _>>()?,
            _ => {
                let handles = (0..tasks as u64)
                    .map(|x| pool.apply_async(cube, x))
                    .collect::<Result<Vec<_>, _>>()?;
                handles
                    .into_iter()
                    .map(|h| h.get())
                    .sum::<Result<u64, _>>()?
            }
        };
        seconds.push(started.elapsed().as_secs_f64());
        bar.finish();
        if sum != expected {
            return Err(PoolError::Codec {
                index: 0,
                message: format!("{call}: sum {sum}, expected {expected}"),
            });
        }
    }
    let median = report::median(&seconds);
    Ok(CallResult {
        call,
        chunksize,
        tasks,
        seconds: median,
        us_per_task: median / tasks as f64 * 1e6,
    })
}

/// Runs lab 02.
///
/// ```
/// use shmlab::lessons::pool::{self, PoolConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config =
///         PoolConfig { workers: 2, tasks: 100, chunksizes: vec![10], repeats: 1, quiet: true };
///     let report = pool::run(&config)?;
///     assert!(report.examples.all_correct);
///     // A task that panicked and a worker that was SIGKILLed failed only
///     // their own items; the dead worker was replaced.
///     assert_eq!(report.faults.others_completed, 9);
///     assert_eq!(report.faults.workers_replaced, 1);
///     Ok(())
/// }
/// ```
pub fn run(config: &PoolConfig) -> Result<PoolReport, PoolError> {
    let started = Instant::now();
    let pool = Pool::new(config.workers)?;
    let start_ms = started.elapsed().as_secs_f64() * 1e3;
    let examples = examples(&pool)?;
    let faults = faults(&pool)?;
    let mut results = Vec::new();
    for &chunksize in &config.chunksizes {
        results.push(time_call(&pool, "map", chunksize, config)?);
    }
    results.push(time_call(&pool, "imap_unordered", 1, config)?);
    results.push(time_call(&pool, "apply_async", 1, config)?);
    let ok = examples.all_correct && faults.as_expected;
    let verdict = verdict(ok, &results);
    Ok(PoolReport {
        outcome: Outcome {
            lab: "lab02-pool",
            ok,
            verdict,
        },
        workers: config.workers,
        start_ms,
        examples,
        faults,
        repeats: config.repeats,
        results,
    })
}

fn verdict(ok: bool, results: &[CallResult]) -> String {
    if !ok {
        return "a pool call gave a wrong result or mishandled a fault (see above)".to_string();
    }
    let base = "every example was right and each fault failed only its own task";
    let maps: Vec<&CallResult> = results.iter().filter(|r| r.call == "map").collect();
    let (Some(smallest), Some(largest)) = (
        maps.iter().min_by_key(|r| r.chunksize),
        maps.iter().max_by_key(|r| r.chunksize),
    ) else {
        return base.to_string();
    };
    if smallest.chunksize == largest.chunksize {
        return format!(
            "{base}; map costs {:.2} µs per tiny task with chunksize {}",
            smallest.us_per_task, smallest.chunksize
        );
    }
    let gain = smallest.us_per_task / largest.us_per_task;
    let costs = format!(
        "map costs {:.2} µs per tiny task with chunksize {} and {:.2} µs with chunksize {}",
        smallest.us_per_task, smallest.chunksize, largest.us_per_task, largest.chunksize
    );
    if gain >= 1.5 {
        format!("{base}; {costs} ({gain:.1}× cheaper): send tiny tasks in chunks")
    } else {
        format!(
            "{base}; {costs}: chunks barely matter here, because a message through shared memory costs well under a microsecond (in CPython it costs about 30 µs)"
        )
    }
}

impl Report for PoolReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let e = &self.examples;
        let f = &self.faults;
        let mut out = format!(
            "A pool of {} worker process{} started in {:.1} ms.\n\n",
            self.workers,
            if self.workers == 1 { "" } else { "es" },
            self.start_ms
        );
        out += "The tutorials' examples:\n";
        out += &format!(
            "  map(cube, 0..256)                  first {:?}, sum {}\n",
            e.cube_first, e.cube_sum
        );
        out += &format!("  starmap(power_n, (2, 0..=10))      {:?}\n", e.power_n);
        out += &format!("  apply_async(cube, 10).get(5 s)     {}\n", e.apply_async);
        out += &format!("  imap(cube, 0..8)                   {:?}\n", e.imap);
        out += &format!(
            "  imap_unordered(countdown, 0..8)    {:?}  (the order they finished)\n",
            e.imap_unordered
        );
        out += &format!(
            "  map_async(cube, 0..1000).get()     sum {}\n\n",
            e.map_async_sum
        );
        out += "Faults (CPython's Pool would hang forever on the second):\n";
        out += &format!("  a task panics:          {}\n", f.panic);
        out += &format!("  a worker is SIGKILLed:  {}\n", f.killed);
        out += &format!(
            "                          {} other tasks completed, {} worker replaced, {:.0} ms in all\n\n",
            f.others_completed,
            f.workers_replaced,
            f.seconds * 1e3
        );
        out += &format!(
            "{} tiny tasks (cube), median of {} runs:\n",
            self.results.first().map_or(0, |r| r.tasks),
            self.repeats
        );
        out += "  call            chunksize    seconds   µs/task\n";
        for r in &self.results {
            out += &format!(
                "  {:<15} {:>9} {:>10.4} {:>9.2}\n",
                r.call, r.chunksize, r.seconds, r.us_per_task
            );
        }
        out
    }
}
