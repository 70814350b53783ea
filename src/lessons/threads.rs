//! Lab 12: the same CPU-bound work on threads, on rayon and on worker
//! processes — the tutorials' GIL lesson, and why Rust threads scale.
//!
//! The work is strided pi integration: π = ∫₀¹ 4/(1+x²) dx by the midpoint
//! rule with `steps` steps, split into `workers` parts, where part `k` sums
//! steps `k`, `k + workers`, `k + 2·workers`, … ([`pi_part`]). A part is a
//! plain function of a small [`Part`] description, so the same function
//! runs on every engine:
//!
//! - `threads`: one `std::thread::scope` thread per part, spawned and
//!   joined on every run;
//! - `rayon`: a rayon `ThreadPool` of `workers` threads, built beforehand;
//!   `install` + `par_iter` over the parts;
//! - `processes`: a shmlab [`Pool`] of `workers` processes, started
//!   beforehand; `pool.map(pi_part, parts, Some(1))`.
//!
//! Every engine adds the parts' sums in part order, so all three give the
//! same π for the same split. The lab times each engine with 1, 2, …
//! workers, gives the speed-up over the same engine with one worker, and
//! measures each engine's start-up cost separately: from nothing to an
//! empty task run on every worker and its result back.
//!
//! ```
//! use shmlab::lessons::threads::{parts, pi_part};
//!
//! let pi: f64 = parts(1_000_000, 4).into_iter().map(pi_part).sum();
//! assert!((pi - std::f64::consts::PI).abs() < 1e-9);
//! ```

use std::f64::consts::PI;
use std::time::Instant;

use serde::Serialize;

// Lab 11 already splits the midpoint integral into strided parts and knows
// how close to π a result must be; lab 12 runs the same parts on threads,
// rayon and processes (its own `pi_part` keeps the plain loop it times).
pub use super::background::BUSY_CPUS;
use super::montecarlo::distance;
pub use super::montecarlo::midpoint_tolerance as tolerance;
pub use super::montecarlo::{Part, ROUNDING_TOLERANCE, parts};
use crate::pool::{Pool, PoolError};
use crate::report::{self, Outcome, Report};

/// The smallest `--steps`: fewer would measure nothing but overhead.
///
/// ```
/// use shmlab::lessons::threads::{MIN_STEPS, ROUNDING_TOLERANCE, parts, pi_part, tolerance};
///
/// // The shortest run still finds π within the midpoint rule's error bound...
/// let pi: f64 = parts(MIN_STEPS, 2).into_iter().map(pi_part).sum();
/// let error = (pi - std::f64::consts::PI).abs();
/// assert!(error <= tolerance(MIN_STEPS));
/// // ...an error of the rule itself (about 8e-8), not of rounding.
/// assert!(error > ROUNDING_TOLERANCE);
/// ```
pub const MIN_STEPS: u64 = 1_000;
/// The largest `--steps`: about 15 s per single-worker run on the course
/// machine, for each engine and repeat.
///
/// ```
/// use shmlab::lessons::threads::{MAX_STEPS, ROUNDING_TOLERANCE, tolerance};
///
/// // At this size the rule's own error (h²/3, about 3e-21) is gone in the
/// // rounding: the check of every π is ROUNDING_TOLERANCE alone.
/// assert!(tolerance(MAX_STEPS) - ROUNDING_TOLERANCE < 1e-20);
/// ```
pub const MAX_STEPS: u64 = 10_000_000_000;
/// A best speed-up below this means the machine did not show scaling.
///
/// ```
/// use shmlab::lessons::threads::{self, SCALING_SHOWN, ThreadsConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the process pool's workers run in here
///     let config = ThreadsConfig { steps: 10_000, max_workers: 2, repeats: 1, startup_runs: 1 };
///     let report = threads::run(&config)?;
///     // Scaling is shown by the best speed-up, unless the machine was busy.
///     let busy = report.background.is_some_and(|b| b.busy);
///     assert_eq!(report.scaling_shown, !busy && report.best.speedup >= SCALING_SHOWN);
///     Ok(())
/// }
/// ```
pub const SCALING_SHOWN: f64 = 1.3;

/// Other processes using at least [`BUSY_CPUS`] on average while the lab
/// ran, or the hypervisor stealing at least this percentage of the vCPUs'
/// time, make the machine "busy": its speed-ups say little.
///
/// ```
/// use shmlab::lessons::threads::{self, BUSY_CPUS, BUSY_STEAL_PERCENT, ThreadsConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the process pool's workers run in here
///     let config = ThreadsConfig { steps: 10_000, max_workers: 1, repeats: 1, startup_runs: 1 };
///     // Read from /proc/stat around the run (`None` if no clock tick passed).
///     let meanwhile = threads::run(&config)?.background;
///     assert!(meanwhile.is_none_or(|b| {
///         b.busy == (b.other_cpus >= BUSY_CPUS || b.steal_percent >= BUSY_STEAL_PERCENT)
///     }));
///     Ok(())
/// }
/// ```
pub const BUSY_STEAL_PERCENT: f64 = 10.0;

/// Steps of the short untimed run that warms each engine up.
pub(crate) const WARM_UP_STEPS: u64 = 1_000_000;

/// The three engines, in report order.
///
/// ```
/// use shmlab::lessons::threads::{self, ENGINES, Engine, ThreadsConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the process pool's workers run in here
///     let config = ThreadsConfig { steps: 10_000, max_workers: 1, repeats: 1, startup_runs: 1 };
///     let report = threads::run(&config)?;
///     // One worker: one row per engine, in this order, in both tables.
///     let timed: Vec<Engine> = report.results.iter().map(|r| r.engine).collect();
///     let started: Vec<Engine> = report.startup.iter().map(|s| s.engine).collect();
///     assert_eq!((timed, started), (ENGINES.to_vec(), ENGINES.to_vec()));
///     Ok(())
/// }
/// ```
pub const ENGINES: [Engine; 3] = [Engine::Threads, Engine::Rayon, Engine::Processes];

/// Options of lab 12.
///
/// ```
/// use shmlab::lessons::threads::{self, ThreadsConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the process pool's workers run in here
///     let config = ThreadsConfig { steps: 10_000, max_workers: 2, repeats: 1, startup_runs: 1 };
///     let report = threads::run(&config)?;
///     assert!(report.ok(), "{}", report.verdict()); // every engine got π right
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ThreadsConfig {
    /// Integration steps for the whole of π (split among the workers).
    pub steps: u64,
    /// Worker counts 1..=max_workers are timed.
    pub max_workers: usize,
    /// Timed runs per engine and worker count (the report gives the median).
    pub repeats: usize,
    /// Start-up measurements per engine and worker count (median).
    pub startup_runs: usize,
}

/// What runs the parts.
///
/// ```
/// use shmlab::lessons::threads::{ENGINES, Engine};
///
/// assert_eq!(ENGINES[1], Engine::Rayon);
/// assert_eq!(serde_json::to_string(&Engine::Processes)?, r#""processes""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// `std::thread::scope`: one new OS thread per part, every run.
    Threads,
    /// A rayon `ThreadPool` with `num_threads(workers)`.
    Rayon,
    /// A shmlab process [`Pool`] of `workers` processes.
    Processes,
}

impl Engine {
    /// The engine's name as in the JSON: `threads`, `rayon`, `processes`.
    ///
    /// ```
    /// use shmlab::lessons::threads::ENGINES;
    ///
    /// let names: Vec<&str> = ENGINES.iter().map(|e| e.name()).collect();
    /// assert_eq!(names, ["threads", "rayon", "processes"]);
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Engine::Threads => "threads",
            Engine::Rayon => "rayon",
            Engine::Processes => "processes",
        }
    }
}

/// This part's share of π: `h · Σ 4/(1 + x²)` over its steps, with
/// `x = (i + ½)·h` and `h = 1/steps`. The sum of all parts is π.
///
/// It touches no memory but its own registers: the parts share nothing, so
/// there is no lock, no atomic and no false sharing in this lab.
///
/// ```
/// use shmlab::lessons::threads::{parts, pi_part, tolerance};
///
/// // Each part runs on its own thread; their sum is π.
/// let sums: Vec<f64> = std::thread::scope(|s| {
///     let handles: Vec<_> =
///         parts(100_000, 4).into_iter().map(|p| s.spawn(move || pi_part(p))).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// let pi: f64 = sums.iter().sum();
/// assert!((pi - std::f64::consts::PI).abs() <= tolerance(100_000));
/// ```
pub fn pi_part(part: Part) -> f64 {
    if part.steps == 0 || part.parts == 0 {
        return 0.0;
    }
    let h = 1.0 / part.steps as f64;
    let mut sum = 0.0;
    let mut i = part.index;
    while i < part.steps {
        let x = (i as f64 + 0.5) * h;
        sum += 4.0 / (1.0 + x * x);
        i += part.parts;
    }
    sum * h
}
crate::task!(pi_part);

/// An empty task: what the process pool runs to measure its start-up.
fn nothing(x: u64) -> u64 {
    x
}
crate::task!(nothing);

/// Clock ticks of the CPUs this process may run on and of this process,
/// from `/proc`.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    /// Ticks those CPUs spent running anything (user, nice, system, irq,
    /// softirq).
    busy: u64,
    /// Ticks the hypervisor gave those vCPUs to someone else.
    steal: u64,
    /// All ticks of those CPUs (busy, idle, iowait and steal).
    total: u64,
    /// Ticks this process and its reaped children (the pool's workers,
    /// once dropped) ran.
    own: u64,
    /// The CPUs counted: those in this process's affinity mask.
    cpus: usize,
}

/// Whether `cpu` is in a list such as `0-3,6,8-9` (`Cpus_allowed_list`).
fn in_cpu_list(list: &str, cpu: usize) -> bool {
    list.split(',')
        .any(|range| match range.trim().split_once('-') {
            Some((low, high)) => {
                low.parse().is_ok_and(|low: usize| low <= cpu)
                    && high.parse().is_ok_and(|high: usize| cpu <= high)
            }
            None => range.trim().parse() == Ok(cpu),
        })
}

impl Ticks {
    /// Reads `/proc/stat`, `/proc/self/status` and `/proc/self/stat`;
    /// `None` if they cannot be read or parsed (not Linux, no /proc).
    fn now() -> Option<Ticks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
            .trim()
            .to_string();
        let (mut busy, mut steal, mut total, mut cpus) = (0, 0, 0, 0);
        for line in stat.lines() {
            // `cpu3 user nice system idle iowait irq softirq steal guest
            // guest_nice` (guest time is already in user); the first line,
            // `cpu  ...`, is the sum of all and is skipped.
            let Some((id, values)) = line
                .strip_prefix("cpu")
                .and_then(|rest| rest.split_once(' '))
            else {
                continue;
            };
            let Ok(id) = id.parse::<usize>() else {
                continue;
            };
            if !in_cpu_list(&allowed, id) {
                continue;
            }
            let values: Vec<u64> = values
                .split_whitespace()
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            let [user, nice, system, idle, iowait, irq, softirq, stolen] = *values.get(..8)? else {
                return None;
            };
            let running = user + nice + system + irq + softirq;
            busy += running;
            steal += stolen;
            total += running + idle + iowait + stolen;
            cpus += 1;
        }
        if cpus == 0 {
            return None;
        }
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces and ')'):
        // state is field 3, utime/stime/cutime/cstime are fields 14..=17.
        let after = me.rsplit_once(')')?.1;
        let own = after
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|f| f.parse::<u64>().ok())
            .sum::<Option<u64>>()?;
        Some(Ticks {
            busy,
            steal,
            total,
            own,
            cpus,
        })
    }
}

/// What else the machine did, on the CPUs this process may use, while the
/// lab ran.
///
/// ```
/// use shmlab::lessons::threads::{BUSY_CPUS, Background};
///
/// let meanwhile = Background { cpus: 2, other_cpus: 0.6, steal_percent: 0.0, busy: true };
/// assert_eq!(meanwhile.busy, meanwhile.other_cpus >= BUSY_CPUS);
/// assert_eq!(serde_json::to_value(meanwhile)?["other_cpus"], 0.6);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Background {
    /// The CPUs watched: those this process may run on.
    pub cpus: usize,
    /// CPUs' worth of time that other processes used on them, on average.
    pub other_cpus: f64,
    /// Percent of the CPUs' time the hypervisor gave to other guests.
    pub steal_percent: f64,
    /// Whether that was enough to spoil the speed-ups ([`BUSY_CPUS`],
    /// [`BUSY_STEAL_PERCENT`]).
    pub busy: bool,
}

impl Background {
    /// The load between two readings.
    fn between(before: Ticks, after: Ticks) -> Option<Background> {
        let total = after.total.checked_sub(before.total)?;
        if total == 0 {
            return None;
        }
        let busy = after.busy.saturating_sub(before.busy);
        let own = after.own.saturating_sub(before.own);
        let steal = after.steal.saturating_sub(before.steal);
        let share = |ticks: u64| ticks as f64 / total as f64;
        let other_cpus = (share(busy.saturating_sub(own)) * after.cpus as f64).max(0.0);
        let steal_percent = share(steal) * 100.0;
        Some(Background {
            cpus: after.cpus,
            other_cpus,
            steal_percent,
            busy: other_cpus >= BUSY_CPUS || steal_percent >= BUSY_STEAL_PERCENT,
        })
    }
}

/// Why lab 12 could not run.
///
/// ```
/// use shmlab::lessons::threads::ThreadsError;
///
/// assert_eq!(ThreadsError::Panicked.to_string(), "a thread panicked");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ThreadsError {
    /// An OS thread could not be started.
    #[error("could not start a thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// A thread panicked.
    #[error("a thread panicked")]
    Panicked,
    /// The rayon pool could not be built.
    #[error("could not build the rayon pool: {0}")]
    Rayon(#[from] rayon::ThreadPoolBuildError),
    /// The process pool failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// One engine with a given number of workers, ready to run parts.
enum Ready {
    Threads,
    Rayon(rayon::ThreadPool),
    Processes(Pool),
}

impl Ready {
    /// Builds `engine` with `workers` workers (threads: nothing to build).
    fn build(engine: Engine, workers: usize) -> Result<Ready, ThreadsError> {
        Ok(match engine {
            Engine::Threads => Ready::Threads,
            Engine::Rayon => Ready::Rayon(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(workers)
                    .thread_name(|i| format!("lab12-rayon-{i}"))
                    .build()?,
            ),
            Engine::Processes => Ready::Processes(Pool::new(workers)?),
        })
    }

    /// Each part's sum, in part order.
    fn run(&self, parts: &[Part]) -> Result<Vec<f64>, ThreadsError> {
        match self {
            Ready::Threads => std::thread::scope(|s| {
                let handles = parts
                    .iter()
                    .map(|&p| std::thread::Builder::new().spawn_scoped(s, move || pi_part(p)))
                    .collect::<Result<Vec<_>, _>>()?;
                handles
                    .into_iter()
                    .map(|h| h.join().map_err(|_| ThreadsError::Panicked))
                    .collect()
            }),
            Ready::Rayon(pool) => {
                use rayon::prelude::*;
                Ok(pool.install(|| parts.par_iter().map(|&p| pi_part(p)).collect()))
            }
            Ready::Processes(pool) => Ok(pool.map(pi_part, parts.iter().copied(), Some(1))?),
        }
    }
}

/// Time from nothing to an empty task run on each of `workers` workers of
/// `engine` and back, in seconds. The engine is torn down after the clock
/// stops.
fn startup_once(engine: Engine, workers: usize) -> Result<f64, ThreadsError> {
    let started = Instant::now();
    match engine {
        Engine::Threads => {
            std::thread::scope(|s| {
                let handles = (0..workers)
                    .map(|_| std::thread::Builder::new().spawn_scoped(s, || ()))
                    .collect::<Result<Vec<_>, _>>()?;
                for h in handles {
                    h.join().map_err(|_| ThreadsError::Panicked)?;
                }
                Ok::<_, ThreadsError>(())
            })?;
            Ok(started.elapsed().as_secs_f64())
        }
        Engine::Rayon => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .build()?;
            pool.broadcast(|_| ());
            let seconds = started.elapsed().as_secs_f64();
            drop(pool);
            Ok(seconds)
        }
        Engine::Processes => {
            let pool = Pool::new(workers)?;
            let back = pool.map(nothing, 0..workers as u64, Some(1))?;
            let seconds = started.elapsed().as_secs_f64();
            drop(pool);
            if back.len() != workers {
                return Err(ThreadsError::Pool(PoolError::Codec {
                    index: 0,
                    message: format!("{} results for {workers} empty tasks", back.len()),
                }));
            }
            Ok(seconds)
        }
    }
}

/// One timed row: an engine with some workers.
///
/// ```
/// use shmlab::lessons::threads::{Engine, RunResult};
///
/// let row = RunResult {
///     engine: Engine::Rayon,
///     workers: 2,
///     seconds: 0.26,
///     speedup: 1.92, // 0.5 s with one worker
///     efficiency: 0.96,
///     pi: std::f64::consts::PI,
///     error: 0.0,
///     correct: true,
/// };
/// assert_eq!(row.efficiency, row.speedup / row.workers as f64);
/// assert_eq!(serde_json::to_value(&row)?["engine"], "rayon");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// `threads`, `rayon` or `processes`.
    pub engine: Engine,
    /// Workers (and parts).
    pub workers: usize,
    /// Median seconds of the timed runs (start-up not included, except
    /// for `threads`, which start their threads on every run).
    pub seconds: f64,
    /// The same engine's 1-worker seconds divided by these.
    pub speedup: f64,
    /// `speedup / workers`: 1.0 is perfect scaling.
    pub efficiency: f64,
    /// The π this engine computed (the same for every run).
    pub pi: f64,
    /// `pi - π`.
    pub error: f64,
    /// Whether `|error|` is within the tolerance.
    pub correct: bool,
}

/// One start-up row.
///
/// ```
/// use shmlab::lessons::threads::{Engine, StartupResult};
///
/// let row = StartupResult { engine: Engine::Processes, workers: 2, ms: 3.1 };
/// assert_eq!(serde_json::to_string(&row)?, r#"{"engine":"processes","workers":2,"ms":3.1}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct StartupResult {
    /// `threads`, `rayon` or `processes`.
    pub engine: Engine,
    /// Workers started.
    pub workers: usize,
    /// Median milliseconds from nothing to an empty task run on every
    /// worker and back.
    pub ms: f64,
}

/// The JSON of lab 12: `lab`, `ok` (every π within `tolerance`),
/// `verdict`, `available_cpus`, `max_workers`, `steps`, `repeats`,
/// `startup_runs`, `tolerance`, `best: {engine, workers, speedup}`,
/// `scaling_shown` (the best speed-up was at least 1.3× and the machine was
/// not busy), `background:
/// {cpus, other_cpus, steal_percent, busy}` (what other processes did
/// meanwhile on the CPUs this process may use, from `/proc/stat`; `null`
/// if unreadable), `results:
/// [{engine, workers, seconds, speedup, efficiency, pi, error, correct}]`
/// and `startup: [{engine, workers, ms}]`; `engine` is `threads`, `rayon`
/// or `processes`.
///
/// ```
/// use shmlab::lessons::threads::{self, ThreadsConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the process pool's workers run in here
///     let config = ThreadsConfig { steps: 10_000, max_workers: 2, repeats: 1, startup_runs: 1 };
///     let json = serde_json::to_value(threads::run(&config)?)?;
///     assert_eq!(json["lab"], "lab12-threads");
///     assert_eq!(json["results"].as_array().map(Vec::len), Some(6)); // 3 engines × 1, 2 workers
///     assert_eq!(json["startup"][0]["engine"], "threads");
///     Ok(())
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct ThreadsReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// CPUs this process may use.
    pub available_cpus: usize,
    /// Worker counts 1..=max_workers were timed.
    pub max_workers: usize,
    /// Integration steps.
    pub steps: u64,
    /// Timed runs per row.
    pub repeats: usize,
    /// Start-up measurements per row.
    pub startup_runs: usize,
    /// How far from π a result may be.
    pub tolerance: f64,
    /// The row with the largest speed-up (the first row if none beat 1×).
    pub best: Best,
    /// Whether the best speed-up reached [`SCALING_SHOWN`] on a machine
    /// that was not busy (see [`Background`]).
    pub scaling_shown: bool,
    /// What other processes did meanwhile (`null` without `/proc`, or when the run was too short for a clock tick to pass).
    pub background: Option<Background>,
    /// One row per engine and worker count, engine by engine.
    pub results: Vec<RunResult>,
    /// One row per engine and worker count.
    pub startup: Vec<StartupResult>,
}

/// The largest speed-up seen.
///
/// ```
/// use shmlab::lessons::threads::{Best, Engine, SCALING_SHOWN};
///
/// let best = Best { engine: Engine::Threads, workers: 2, speedup: 1.95 };
/// assert!(best.speedup >= SCALING_SHOWN); // scaling shown, unless the machine was busy
/// assert_eq!(serde_json::to_value(&best)?["workers"], 2);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Best {
    /// Its engine.
    pub engine: Engine,
    /// Its workers.
    pub workers: usize,
    /// The speed-up.
    pub speedup: f64,
}

/// Runs lab 12. Repeats are interleaved across engines (run 1 of every
/// engine, then run 2, …) so that a slow moment of the machine falls on
/// all of them alike.
///
/// ```
/// use shmlab::lessons::threads::{self, ThreadsConfig};
/// use shmlab::lessons::threads::Engine;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the process pool's workers run in here
///     let config = ThreadsConfig { steps: 10_000, max_workers: 2, repeats: 1, startup_runs: 1 };
///     let report = threads::run(&config)?;
///     // The same split gives the same π on threads, rayon and processes.
///     let two = report.results.iter().filter(|r| r.workers == 2);
///     let pis: Vec<f64> = two.map(|r| r.pi).collect();
///     assert!(pis.iter().all(|&pi| pi == pis[0]));
///     assert!(report.startup.iter().any(|s| s.engine == Engine::Processes));
///     Ok(())
/// }
/// ```
pub fn run(config: &ThreadsConfig) -> Result<ThreadsReport, ThreadsError> {
    let max_workers = config.max_workers.max(1);
    let repeats = config.repeats.max(1);
    let startup_runs = config.startup_runs.max(1);
    let tolerance = tolerance(config.steps);
    let before = Ticks::now();
    let mut results = Vec::new();
    for workers in 1..=max_workers {
        let parts = parts(config.steps, workers);
        let ready = ENGINES
            .iter()
            .map(|&e| Ready::build(e, workers))
            .collect::<Result<Vec<_>, _>>()?;
        // One short untimed run each: first-touch page faults, lazy starts.
        let warm_up = self::parts(WARM_UP_STEPS.min(config.steps), workers);
        for engine in &ready {
            engine.run(&warm_up)?;
        }
        let mut pis: Vec<Option<f64>> = vec![None; ENGINES.len()];
        let mut seconds = vec![Vec::with_capacity(repeats); ENGINES.len()];
        for _ in 0..repeats {
            for (e, engine) in ready.iter().enumerate() {
                let started = Instant::now();
                let sums = engine.run(&parts)?;
                seconds[e].push(started.elapsed().as_secs_f64());
                let pi: f64 = sums.iter().sum();
                // Keep the worst π seen, so that `correct` covers every run.
                if pis[e].is_none_or(|seen| distance(pi) >= distance(seen)) {
                    pis[e] = Some(pi);
                }
            }
        }
        drop(ready);
        for (e, &engine) in ENGINES.iter().enumerate() {
            let pi = pis[e].unwrap_or(f64::NAN);
            let error = pi - PI;
            results.push(RunResult {
                engine,
                workers,
                seconds: report::median(&seconds[e]),
                speedup: 1.0,
                efficiency: 1.0,
                pi,
                error,
                correct: distance(pi) <= tolerance,
            });
        }
    }
    for engine in ENGINES {
        let one = results
            .iter()
            .find(|r| r.engine == engine && r.workers == 1)
            .map_or(0.0, |r| r.seconds);
        for r in results.iter_mut().filter(|r| r.engine == engine) {
            r.speedup = if r.seconds > 0.0 {
                one / r.seconds
            } else {
                0.0
            };
            r.efficiency = r.speedup / r.workers as f64;
        }
    }
    results.sort_by_key(|r| (ENGINES.iter().position(|&e| e == r.engine), r.workers));

    let mut startup = Vec::new();
    for engine in ENGINES {
        for workers in 1..=max_workers {
            let samples = (0..startup_runs)
                .map(|_| startup_once(engine, workers))
                .collect::<Result<Vec<_>, _>>()?;
            startup.push(StartupResult {
                engine,
                workers,
                ms: report::median(&samples) * 1e3,
            });
        }
    }

    let background = before
        .zip(Ticks::now())
        .and_then(|(before, after)| Background::between(before, after));
    let best = results
        .iter()
        .filter(|r| r.workers > 1)
        .max_by(|a, b| a.speedup.total_cmp(&b.speedup))
        .or(results.first())
        .map_or(
            Best {
                engine: Engine::Threads,
                workers: 1,
                speedup: 1.0,
            },
            |r| Best {
                engine: r.engine,
                workers: r.workers,
                speedup: r.speedup,
            },
        );
    let ok = results.iter().all(|r| r.correct);
    let busy = background.is_some_and(|b| b.busy);
    let scaling_shown = max_workers > 1 && !busy && best.speedup >= SCALING_SHOWN;
    let available_cpus = crate::cli::available_cpus();
    let verdict = verdict(&Facts {
        cpus: available_cpus,
        max_workers,
        tolerance,
        best: &best,
        background,
        results: &results,
        startup: &startup,
    });
    Ok(ThreadsReport {
        outcome: Outcome {
            lab: "lab12-threads",
            ok,
            verdict,
        },
        available_cpus,
        max_workers,
        steps: config.steps,
        repeats,
        startup_runs,
        tolerance,
        best,
        scaling_shown,
        background,
        results,
        startup,
    })
}

/// `"threads 1.96×, rayon 1.95×, processes 1.93×"` for `workers`.
fn speedups_at(results: &[RunResult], workers: usize) -> String {
    results
        .iter()
        .filter(|r| r.workers == workers)
        .map(|r| format!("{} {:.2}×", r.engine.name(), r.speedup))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Milliseconds as `0.04 ms` or `3.1 ms`.
fn ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// `"threads 0.05 ms, rayon 0.12 ms, processes 3.1 ms"` for `workers`.
fn startup_at(startup: &[StartupResult], workers: usize) -> String {
    startup
        .iter()
        .filter(|s| s.workers == workers)
        .map(|s| format!("{} {}", s.engine.name(), ms(s.ms)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the verdict is drawn from.
struct Facts<'a> {
    cpus: usize,
    max_workers: usize,
    tolerance: f64,
    best: &'a Best,
    background: Option<Background>,
    results: &'a [RunResult],
    startup: &'a [StartupResult],
}

/// `"1 worker"`, `"2 workers"`.
fn workers_text(n: usize) -> String {
    if n == 1 {
        "1 worker".to_string()
    } else {
        format!("{n} workers")
    }
}

fn verdict(f: &Facts<'_>) -> String {
    if let Some(wrong) = f.results.iter().find(|r| !r.correct) {
        return format!(
            "WRONG: {} with {} computed pi = {:.15}, off by {:.1e} (tolerance {:.1e}) — a bug in shmlab",
            wrong.engine.name(),
            workers_text(wrong.workers),
            wrong.pi,
            wrong.error,
            f.tolerance
        );
    }
    let top = f.max_workers;
    let cpus = f.cpus;
    let start = format!(
        "start-up with {}: {}",
        workers_text(top),
        startup_at(f.startup, top)
    );
    if top == 1 {
        return format!(
            "every pi was right, but only 1 worker was tried ({cpus} CPU(s) available): nothing can scale; {start}"
        );
    }
    let best = f.best;
    let at_top = speedups_at(f.results, top);
    if let Some(b) = f.background.filter(|b| b.busy) {
        return format!(
            "this run cannot judge the scaling: other processes used {:.2} of its {} CPU(s) on average while it ran (steal {:.0}%), so the workers did not have them to themselves (with {top} workers: {at_top}); run it again on a quiet machine; {start}",
            b.other_cpus, b.cpus, b.steal_percent
        );
    }
    if best.speedup >= SCALING_SHOWN {
        return format!(
            "with {top} workers: {at_top} faster than with 1 — Rust threads have no GIL, so threads scale like processes; what differs is {start}"
        );
    }
    let best_row = format!(
        "best speed-up {:.2}× ({} with {}; with {top}: {at_top})",
        best.speedup,
        best.engine.name(),
        workers_text(best.workers)
    );
    if cpus == 1 {
        return format!(
            "this machine cannot show the scaling: {best_row} — only 1 CPU is available, so the workers take turns on it; {start}"
        );
    }
    format!(
        "this machine cannot show the scaling: {best_row} — it was quiet, so its {cpus} vCPUs most likely share one physical core (they behave like SMT siblings for tight loops) and the workers split that core's floating-point units; on separate cores all three engines scale near-linearly, since Rust threads have no GIL; {start}"
    )
}

impl Report for ThreadsReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let mut out = format!(
            "pi = ∫₀¹ 4/(1+x²) dx by {} midpoint steps, split into W strided parts; {} CPU(s) available\n",
            self.steps, self.available_cpus
        );
        out += &format!(
            "median of {} runs; start-up not included (threads start theirs on every run)\n\n",
            self.repeats
        );
        out += &format!(
            "{:<10} {:>7} {:>9} {:>9} {:>11} {:>19} {:>9}\n",
            "engine", "workers", "seconds", "speed-up", "efficiency", "pi", "error"
        );
        for r in &self.results {
            out += &format!(
                "{:<10} {:>7} {:>9.4} {:>8.2}× {:>10.0}% {:>19.15} {:>9.1e}{}\n",
                r.engine.name(),
                r.workers,
                r.seconds,
                r.speedup,
                r.efficiency * 100.0,
                r.pi,
                r.error,
                if r.correct { "" } else { "  WRONG" }
            );
        }
        if self.max_workers > self.available_cpus {
            out += &format!(
                "(more workers than the {} CPU(s) can only take turns)\n",
                self.available_cpus
            );
        }
        out += &format!(
            "\nStart-up: from nothing to an empty task run on every worker and back, median of {}:\n",
            self.startup_runs
        );
        out += &format!("{:<10} {:>7} {:>10}\n", "engine", "workers", "ms");
        for s in &self.startup {
            out += &format!("{:<10} {:>7} {:>10.3}\n", s.engine.name(), s.workers, s.ms);
        }
        if let Some(b) = &self.background {
            out += &format!(
                "\nMeanwhile other processes used {:.2} of this process's {} CPU(s) on average and the hypervisor stole {:.1}% of their time{}.\n",
                b.other_cpus,
                b.cpus,
                b.steal_percent,
                if b.busy {
                    ": the machine was busy"
                } else {
                    ": quiet enough"
                }
            );
        }
        out += "\nCPython threads would show about 1.0× here whatever the CPUs: the GIL lets one thread run Python bytecode at a time. Rust has no GIL.\n\n";
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_to_pi_for_any_split() {
        let one = pi_part(parts(100_000, 1)[0]);
        assert!((one - PI).abs() < tolerance(100_000));
        for workers in [2, 3, 7, 64] {
            let pi: f64 = parts(100_000, workers).into_iter().map(pi_part).sum();
            assert!((pi - one).abs() < 1e-12, "{workers}: {pi} vs {one}");
        }
    }

    #[test]
    fn more_parts_than_steps_leaves_some_empty() {
        let p = parts(1_000, 2_000);
        assert_eq!(pi_part(p[1_500]), 0.0);
        let pi: f64 = p.into_iter().map(pi_part).sum();
        assert!((pi - PI).abs() < tolerance(1_000));
    }

    #[test]
    fn threads_and_rayon_agree_with_a_plain_loop() {
        let p = parts(200_000, 3);
        let plain: Vec<f64> = p.iter().copied().map(pi_part).collect();
        for engine in [Engine::Threads, Engine::Rayon] {
            let ready = Ready::build(engine, 3).unwrap();
            assert_eq!(ready.run(&p).unwrap(), plain);
        }
    }

    fn row(engine: Engine, workers: usize, speedup: f64) -> RunResult {
        RunResult {
            engine,
            workers,
            seconds: 0.1 / speedup,
            speedup,
            efficiency: speedup / workers as f64,
            pi: PI,
            error: 0.0,
            correct: true,
        }
    }

    fn verdict_for(speedup: f64, other_cpus: Option<f64>, cpus: usize) -> String {
        let results: Vec<RunResult> = ENGINES
            .iter()
            .flat_map(|&e| [row(e, 1, 1.0), row(e, 2, speedup)])
            .collect();
        let startup: Vec<StartupResult> = ENGINES
            .iter()
            .map(|&engine| StartupResult {
                engine,
                workers: 2,
                ms: 1.0,
            })
            .collect();
        let best = Best {
            engine: Engine::Threads,
            workers: 2,
            speedup,
        };
        verdict(&Facts {
            cpus,
            max_workers: 2,
            tolerance: tolerance(1_000_000),
            best: &best,
            background: other_cpus.map(|other_cpus| Background {
                cpus,
                other_cpus,
                steal_percent: 0.0,
                busy: other_cpus >= BUSY_CPUS,
            }),
            results: &results,
            startup: &startup,
        })
    }

    #[test]
    fn the_verdict_claims_scaling_only_on_a_quiet_machine() {
        assert!(verdict_for(1.9, Some(0.0), 2).contains("faster than with 1"));
        assert!(verdict_for(1.9, None, 2).contains("faster than with 1"));
        assert!(verdict_for(1.9, Some(1.5), 2).starts_with("this run cannot judge"));
        assert!(verdict_for(1.0, Some(1.5), 2).starts_with("this run cannot judge"));
        let smt = verdict_for(1.05, Some(0.0), 2);
        assert!(
            smt.starts_with("this machine cannot show the scaling"),
            "{smt}"
        );
        assert!(smt.contains("SMT siblings"), "{smt}");
        assert!(verdict_for(1.0, Some(0.0), 1).contains("only 1 CPU"));
    }

    #[test]
    fn a_wrong_pi_is_named_in_the_verdict() {
        let mut results = vec![row(Engine::Processes, 1, 1.0)];
        results[0].pi = 3.0;
        results[0].error = 3.0 - PI;
        results[0].correct = false;
        let best = Best {
            engine: Engine::Processes,
            workers: 1,
            speedup: 1.0,
        };
        let v = verdict(&Facts {
            cpus: 2,
            max_workers: 1,
            tolerance: 1e-9,
            best: &best,
            background: None,
            results: &results,
            startup: &[],
        });
        assert!(v.starts_with("WRONG: processes with 1 worker"), "{v}");
    }

    #[test]
    fn background_load_subtracts_our_own_ticks() {
        let at = |busy, own, total| Ticks {
            busy,
            steal: 0,
            total,
            own,
            cpus: 2,
        };
        // 1000 ticks of 2 CPUs pass; 900 busy, 400 of them ours.
        let b = Background::between(at(0, 0, 0), at(900, 400, 1000)).unwrap();
        assert!((b.other_cpus - 1.0).abs() < 1e-12);
        assert!(b.busy);
        let quiet = Background::between(at(0, 0, 0), at(500, 500, 1000)).unwrap();
        assert_eq!(quiet.other_cpus, 0.0);
        assert!(!quiet.busy);
        assert!(
            Ticks::now().is_some(),
            "/proc/stat and /proc/self/stat parse"
        );
    }

    #[test]
    fn cpu_lists_parse() {
        assert!(in_cpu_list("0-1", 0) && in_cpu_list("0-1", 1) && !in_cpu_list("0-1", 2));
        assert!(in_cpu_list("0,2-3,7", 7) && in_cpu_list("0,2-3,7", 2));
        assert!(!in_cpu_list("0,2-3,7", 1));
        assert!(in_cpu_list("5", 5) && !in_cpu_list("", 0));
    }

    #[test]
    fn tolerance_grows_for_coarse_integrals() {
        assert!(tolerance(1_000) > 1e-7);
        assert!(tolerance(100_000_000) < 1.1e-9);
    }
}
