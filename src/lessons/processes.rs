//! Lab 01: processes — start and join workers, pids and exit status, a
//! global that is not shared, and what starting a worker costs.
//!
//! ```
//! use shmlab::lessons::processes::{self, ProcessesConfig};
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // the lab's workers run their tasks in here
//!     let report = processes::run(&ProcessesConfig { workers: 2, runs: 1 })?;
//!     // Separate processes: a pid each, none of them ours...
//!     assert!(report.workers.iter().all(|row| row.pid != report.parent_pid));
//!     // ...and one that panicked or was killed is reported, not waited on forever.
//!     let ends: Vec<&str> = report.workers.iter().map(|row| row.exit.as_str()).collect();
//!     assert!(ends.contains(&"killed by SIGKILL"));
//!     assert!(ends.iter().any(|end| end.starts_with("panicked")));
//!     Ok(())
//! }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::process::{self, WorkerError};
use crate::report::{self, Outcome, Report};

/// Options of lab 01.
///
/// ```
/// use shmlab::lessons::processes::{self, ProcessesConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let report = processes::run(&ProcessesConfig { workers: 2, runs: 3 })?;
///     assert!(report.ok(), "{}", report.verdict());
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ProcessesConfig {
    /// Workers to start and show.
    pub workers: usize,
    /// Start+join runs to time.
    pub runs: usize,
}

/// What a worker says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hello {
    /// The worker's pid.
    pid: u32,
    /// Its parent's pid.
    parent_pid: u32,
}

/// One row of the workers table.
///
/// ```
/// use shmlab::lessons::processes::WorkerRow;
///
/// let row = WorkerRow {
///     task: "linger (killed)",
///     pid: 4242,
///     parent_pid: None,
///     exit: "killed by SIGKILL".to_string(),
///     as_expected: true,
/// };
/// let json = serde_json::to_value(&row)?;
/// assert_eq!(json["exit"], "killed by SIGKILL");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    /// What the worker was asked to do.
    pub task: &'static str,
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid as the worker itself saw it (`getppid()`), for the
    /// workers that report back (`None` for the ones that fail on purpose).
    pub parent_pid: Option<u32>,
    /// How it ended, e.g. `exit 0`, `panicked (exit 101): ...`,
    /// `killed by SIGKILL`.
    pub exit: String,
    /// Whether it ended as the lab expected.
    pub as_expected: bool,
}

/// The JSON of lab 01: `lab`, `ok`, `verdict`, `parent_pid`, `workers:
/// [{task, pid, parent_pid, exit, as_expected}]`, `global_in_workers`,
/// `global_in_parent`, `runs`, `start_ms_median`, `start_ms_p90`,
/// `start_ms_min`.
///
/// ```
/// use shmlab::lessons::processes::{self, ProcessesConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let report = processes::run(&ProcessesConfig { workers: 1, runs: 1 })?;
///     let json = serde_json::to_value(&report)?;
///     assert_eq!(json["lab"], "lab01-processes");
///     let tasks: Vec<&str> = report.workers.iter().map(|row| row.task).collect();
///     assert_eq!(tasks, ["hello", "fail", "linger (killed)"]);
///     Ok(())
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct ProcessesReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// This process.
    pub parent_pid: u32,
    /// The workers and how they ended.
    pub workers: Vec<WorkerRow>,
    /// `COUNTER` as each worker left it after adding 1000.
    pub global_in_workers: Vec<u64>,
    /// `COUNTER` in the parent afterwards.
    pub global_in_parent: u64,
    /// Start+join runs timed.
    pub runs: usize,
    /// Median milliseconds to start a worker and join it.
    pub start_ms_median: f64,
    /// 90th percentile of the same.
    pub start_ms_p90: f64,
    /// Fastest run.
    pub start_ms_min: f64,
}

/// A global in every process's own memory. Workers change their copy; the
/// parent's copy never sees it.
///
/// ```
/// use std::sync::atomic::Ordering;
/// use shmlab::lessons::processes::COUNTER;
/// use shmlab::process;
///
/// fn add(n: u64) -> u64 {
///     COUNTER.fetch_add(n, Ordering::Relaxed) + n
/// }
/// shmlab::task!(add);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // a worker runs `add` in here, on its own COUNTER
///     assert_eq!(process::spawn(add, &1000)?.join()?, 1000);
///     assert_eq!(process::spawn(add, &1000)?.join()?, 1000); // a new process starts from 0
///     assert_eq!(COUNTER.load(Ordering::Relaxed), 0); // and this one never saw either
///     Ok(())
/// }
/// ```
pub static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Reports who the worker is.
fn hello(_index: usize) -> Hello {
    Hello {
        pid: std::process::id(),
        parent_pid: std::os::unix::process::parent_id(),
    }
}
crate::task!(hello);

/// Adds to this process's `COUNTER` and returns what it became.
fn bump_global(times: u64) -> u64 {
    for _ in 0..times {
        COUNTER.fetch_add(1, Ordering::Relaxed);
    }
    COUNTER.load(Ordering::Relaxed)
}
crate::task!(bump_global);

/// Panics, to show how a failing worker is reported.
fn fail(message: String) {
    panic!("{message}");
}
crate::task!(fail);

/// Does nothing for up to `ms` milliseconds; the lab kills it first.
fn linger(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
crate::task!(linger);

/// Does nothing: the cost of a worker is all start-up and shutdown.
fn nothing(_: ()) {}
crate::task!(nothing);

/// How a join ended, in words.
fn describe<R>(result: &Result<R, WorkerError>) -> String {
    match result {
        Ok(_) => "exit 0".to_string(),
        Err(WorkerError::Panicked { message, .. }) => format!("panicked (exit 101): {message}"),
        Err(WorkerError::Killed { signal_name, .. }) => format!("killed by {signal_name}"),
        Err(e) => e.to_string(),
    }
}

/// Runs lab 01.
///
/// ```
/// use shmlab::lessons::processes::{self, ProcessesConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let report = processes::run(&ProcessesConfig { workers: 2, runs: 1 })?;
///     // Each worker raised its own copy of COUNTER; the parent's never moved.
///     assert_eq!(report.global_in_workers, [1000, 1000]);
///     assert_eq!(report.global_in_parent, 0);
///     Ok(())
/// }
/// ```
pub fn run(config: &ProcessesConfig) -> Result<ProcessesReport, WorkerError> {
    let parent_pid = std::process::id();
    let mut rows = Vec::new();

    // 1. Start N workers at once, then join them.
    let crew = (0..config.workers)
        .map(|i| process::spawn(hello, &i))
        .collect::<Result<Vec<_>, _>>()?;
    for worker in crew {
        let pid = worker.pid();
        let result = worker.join();
        let as_expected = matches!(&result, Ok(h) if h.pid == pid && h.parent_pid == parent_pid);
        rows.push(WorkerRow {
            task: "hello",
            pid,
            parent_pid: result.as_ref().ok().map(|h| h.parent_pid),
            exit: describe(&result),
            as_expected,
        });
    }

    // 2. Two workers that fail: one panics, one is killed.
    let failing = process::spawn(fail, &"something went wrong in the worker".to_string())?;
    let pid = failing.pid();
    let result = failing.join();
    rows.push(WorkerRow {
        task: "fail",
        pid,
        parent_pid: None,
        as_expected: matches!(result, Err(WorkerError::Panicked { .. })),
        exit: describe(&result),
    });
    let mut doomed = process::spawn(linger, &60_000u64)?;
    let pid = doomed.pid();
    doomed
        .kill()
        .map_err(|source| WorkerError::Io { pid, source })?;
    let result = doomed.join();
    rows.push(WorkerRow {
        task: "linger (killed)",
        pid,
        parent_pid: None,
        as_expected: matches!(
            result,
            Err(WorkerError::Killed {
                signal: libc::SIGKILL,
                ..
            })
        ),
        exit: describe(&result),
    });

    // 3. A global changed in a worker is not changed in the parent.
    let bumpers = (0..config.workers)
        .map(|_| process::spawn(bump_global, &1000u64))
        .collect::<Result<Vec<_>, _>>()?;
    let global_in_workers = bumpers
        .into_iter()
        .map(|w| w.join())
        .collect::<Result<Vec<_>, _>>()?;
    let global_in_parent = COUNTER.load(Ordering::Relaxed);

    // 4. What one worker costs: start it, let it do nothing, join it.
    let mut times_ms = Vec::with_capacity(config.runs);
    for _ in 0..config.runs {
        let started = Instant::now();
        process::spawn(nothing, &())?.join()?;
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let start_ms_median = report::median(&times_ms);

    let pids_distinct = {
        let mut pids: Vec<u32> = rows.iter().map(|r| r.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        pids.len() == rows.len() && !pids.contains(&parent_pid)
    };
    let globals_private = global_in_parent == 0 && global_in_workers.iter().all(|&g| g == 1000);
    let ok = rows.iter().all(|r| r.as_expected) && pids_distinct && globals_private;
    let verdict = if ok {
        format!(
            "{} workers ran as separate processes with their own pids; each raised its own COUNTER to 1000 while the parent's stayed {}; a panic and a SIGKILL were reported, not hung on; start+join of one worker takes {:.2} ms (median of {}).",
            config.workers, global_in_parent, start_ms_median, config.runs
        )
    } else {
        "something unexpected happened: see the table (as_expected = false)".to_string()
    };
    Ok(ProcessesReport {
        outcome: Outcome {
            lab: "lab01-processes",
            ok,
            verdict,
        },
        parent_pid,
        workers: rows,
        global_in_workers,
        global_in_parent,
        runs: config.runs,
        start_ms_median,
        start_ms_p90: report::percentile(&times_ms, 0.9),
        start_ms_min: times_ms
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .min(f64::MAX),
    })
}

impl Report for ProcessesReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let mut out = format!(
            "parent pid {}\n\n{:<16} {:>8} {:>11}  {}\n",
            self.parent_pid, "task", "pid", "its parent", "how it ended"
        );
        for r in &self.workers {
            let parent = r.parent_pid.map_or("-".to_string(), |p| p.to_string());
            out += &format!("{:<16} {:>8} {:>11}  {}\n", r.task, r.pid, parent, r.exit);
        }
        out += &format!(
            "\nCOUNTER after each worker added 1000 to it: {:?}\nCOUNTER in the parent: {}\n",
            self.global_in_workers, self.global_in_parent
        );
        out += &format!(
            "\nstart+join of a worker that does nothing, {} runs: median {:.2} ms, p90 {:.2} ms, fastest {:.2} ms\n\n",
            self.runs, self.start_ms_median, self.start_ms_p90, self.start_ms_min
        );
        out
    }
}
