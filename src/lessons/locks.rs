//! Lab 05: locks — an invariant across array slots, shmlab's lock vs the OS
//! mutex, a timed lock that gives up, and a holder that dies.
//!
//! ```
//! use std::time::Duration;
//! use shmlab::lessons::locks::{self, LocksConfig};
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // the lab's workers run their tasks in here
//!     let config = LocksConfig {
//!         workers: 2, accounts: 4, transfers: 100, increments: 1000,
//!         timeout: Duration::from_millis(10),
//!     };
//!     let report = locks::run(&config)?;
//!     let locked = report.invariant.iter().find(|row| row.mode == "locked").expect("a locked run");
//!     assert!(locked.invariant_kept); // transfers under the lock keep the total
//!     assert!(report.timed.iter().all(|row| row.gave_up)); // a timed lock gives up
//!     // A holder killed with SIGKILL: the next locker is told, and gets the lock.
//!     assert!(report.owner_death.iter().all(|row| row.owner_died_reported));
//!     Ok(())
//! }
//! ```

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bank::{transfer_locked, transfer_unlocked};
use crate::counting::{self, CountError, Strategy};
use crate::lock::{FutexLock, LockError, LockKind, OsMutex, RawLock};
use crate::process::{self, StartGate, WorkerError};
use crate::report::{self, Outcome, Report};
use crate::shm::{SharedArray, SharedValue, ShmError};

const GATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Money in each account at the start.
///
/// ```
/// use shmlab::SharedArray;
/// use shmlab::bank::transfer_locked;
/// use shmlab::lessons::locks::INITIAL_BALANCE;
///
/// // Lab 05's bank: every account opens with INITIAL_BALANCE, so the total
/// // that transfers must keep is accounts × INITIAL_BALANCE.
/// let accounts = SharedArray::<i64>::create(4, INITIAL_BALANCE)?;
/// transfer_locked(&accounts.cells(), 0, 3, INITIAL_BALANCE / 2)?;
/// assert_eq!(accounts.to_vec(), [500, 1000, 1000, 1500]);
/// assert_eq!(accounts.to_vec().iter().sum::<i64>(), 4 * INITIAL_BALANCE);
/// # Ok::<(), anyhow::Error>(())
/// ```
pub const INITIAL_BALANCE: i64 = 1000;

/// Options of lab 05.
///
/// ```
/// use std::time::Duration;
/// use shmlab::lessons::locks::{self, LocksConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config = LocksConfig {
///         workers: 2,
///         accounts: 4,
///         transfers: 100,
///         increments: 1000,
///         timeout: Duration::from_millis(10),
///     };
///     let report = locks::run(&config)?;
///     assert!(report.ok(), "{}", report.verdict());
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct LocksConfig {
    /// Worker processes for the transfers and the contended throughput.
    pub workers: usize,
    /// Accounts in the shared array.
    pub accounts: usize,
    /// Transfers per worker.
    pub transfers: u64,
    /// Lock/unlock pairs per worker in the throughput test.
    pub increments: u64,
    /// The timed lock's timeout.
    pub timeout: Duration,
}

/// One run of the transfer workload.
///
/// ```
/// use shmlab::lessons::locks::{INITIAL_BALANCE, InvariantRow};
///
/// let total = 4 * INITIAL_BALANCE; // four accounts
/// let row = InvariantRow {
///     mode: "unlocked",
///     total_before: total,
///     total_after: total - 7, // updates lost between load and store
///     invariant_kept: false,
///     seconds: 0.01,
/// };
/// assert_eq!(row.invariant_kept, row.total_before == row.total_after);
/// assert_eq!(serde_json::to_value(&row)?["total_after"], 3993);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct InvariantRow {
    /// `unlocked` or `locked`.
    pub mode: &'static str,
    /// Sum of all accounts before.
    pub total_before: i64,
    /// Sum after.
    pub total_after: i64,
    /// Whether they are equal.
    pub invariant_kept: bool,
    /// Wall time.
    pub seconds: f64,
}

/// Lock throughput: a locked counter.
///
/// ```
/// use shmlab::lessons::locks::ThroughputRow;
///
/// let row = ThroughputRow { lock: "futex", processes: 2, ops_per_s: 2.5e7, exact: true };
/// let json = serde_json::to_value(&row)?;
/// assert_eq!((json["lock"].as_str(), json["exact"].as_bool()), (Some("futex"), Some(true)));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    /// `futex` (shmlab's) or `os` (pthread).
    pub lock: &'static str,
    /// Processes contending.
    pub processes: usize,
    /// Lock+increment+unlock per second, all processes together.
    pub ops_per_s: f64,
    /// Whether the count was exact.
    pub exact: bool,
}

/// A timed lock against a holder that does not let go.
///
/// ```
/// use shmlab::lessons::locks::TimedRow;
///
/// let row = TimedRow { lock: "os", timeout_ms: 100.0, gave_up: true, waited_ms: 100.2 };
/// // What lab 05 checks: it gave up, and not before the timeout.
/// assert!(row.gave_up && row.waited_ms >= row.timeout_ms * 0.99);
/// assert_eq!(serde_json::to_value(&row)?["lock"], "os");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct TimedRow {
    /// Which lock.
    pub lock: &'static str,
    /// The timeout asked for.
    pub timeout_ms: f64,
    /// Whether `try_lock_for` returned `Timeout`.
    pub gave_up: bool,
    /// How long it actually waited.
    pub waited_ms: f64,
}

/// A holder killed with SIGKILL while holding the lock.
///
/// ```
/// use shmlab::lessons::locks::OwnerDeathRow;
///
/// let row = OwnerDeathRow {
///     lock: "futex",
///     holder_pid: 4242,
///     holder_exit: "killed by SIGKILL".to_string(),
///     owner_died_reported: true,
///     recover_ms: 0.4,
/// };
/// assert_eq!(serde_json::to_value(&row)?["owner_died_reported"], true);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct OwnerDeathRow {
    /// Which lock.
    pub lock: &'static str,
    /// The holder's pid.
    pub holder_pid: u32,
    /// How the holder ended, e.g. `killed by SIGKILL`.
    pub holder_exit: String,
    /// Whether the next `lock()` returned `OwnerDied` with the guard.
    pub owner_died_reported: bool,
    /// Time from the kill to holding the lock.
    pub recover_ms: f64,
}

/// The JSON of lab 05: `lab`, `ok`, `verdict`, `workers`, `accounts`,
/// `invariant: [{mode, total_before, total_after, invariant_kept,
/// seconds}]`, `throughput: [{lock, processes, ops_per_s, exact}]`,
/// `timed: [{lock, timeout_ms, gave_up, waited_ms}]`, `owner_death:
/// [{lock, holder_pid, holder_exit, owner_died_reported, recover_ms}]`.
///
/// ```
/// use std::time::Duration;
/// use shmlab::lessons::locks::{self, LocksConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config = LocksConfig {
///         workers: 2,
///         accounts: 4,
///         transfers: 100,
///         increments: 1000,
///         timeout: Duration::from_millis(10),
///     };
///     let json = serde_json::to_value(locks::run(&config)?)?;
///     assert_eq!(json["lab"], "lab05-locks");
///     assert_eq!(json["invariant"][1]["mode"], "locked");
///     assert_eq!(json["owner_death"].as_array().map(Vec::len), Some(2)); // futex and OS
///     Ok(())
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct LocksReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Worker processes.
    pub workers: usize,
    /// Accounts.
    pub accounts: usize,
    /// Unlocked vs locked transfers.
    pub invariant: Vec<InvariantRow>,
    /// Lock throughput.
    pub throughput: Vec<ThroughputRow>,
    /// Timed lock.
    pub timed: Vec<TimedRow>,
    /// Owner death.
    pub owner_death: Vec<OwnerDeathRow>,
}

/// Why lab 05 could not run.
///
/// ```
/// use shmlab::lessons::locks::LocksError;
///
/// let err = LocksError::Task("the accounts segment is gone".to_string());
/// assert_eq!(err.to_string(), "a worker failed: the accounts segment is gone");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum LocksError {
    /// Shared memory.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// A worker.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The counting runs.
    #[error(transparent)]
    Count(#[from] CountError),
    /// A worker's task failed.
    #[error("a worker failed: {0}")]
    Task(String),
    /// The parent's own lock call failed unexpectedly.
    #[error("lock failed: {0}")]
    Lock(String),
}

#[derive(Serialize, Deserialize)]
struct TransferArgs {
    index: usize,
    accounts: String,
    gate: String,
    transfers: u64,
    seed: u64,
    locked: bool,
}

/// Makes `transfers` random transfers between the accounts.
fn transfer_worker(args: TransferArgs) -> Result<(), String> {
    let accounts = SharedArray::<i64>::open(&args.accounts).map_err(|e| e.to_string())?;
    let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
    // One worker per CPU where possible, so the transfers truly overlap.
    process::pin_to_cpu(args.index);
    gate.arrive_and_wait(GATE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let cells = accounts.cells();
    let n = accounts.len();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    for _ in 0..args.transfers {
        let from = rng.usize(..n);
        let to = (from + 1 + rng.usize(..n - 1)) % n;
        let amount = rng.i64(1..=10);
        let moved = if args.locked {
            transfer_locked(&cells, from, to, amount)
        } else {
            transfer_unlocked(&cells, from, to, amount)
        };
        moved.map_err(|e| e.to_string())?;
    }
    Ok(())
}
crate::task!(transfer_worker);

#[derive(Serialize, Deserialize)]
struct HoldArgs {
    value: String,
    gate: String,
    lock: LockKind,
}

/// Takes the lock, says so at the gate, and keeps it until the gate opens
/// (or until it is killed).
fn hold_lock(args: HoldArgs) -> Result<(), String> {
    match args.lock {
        LockKind::Futex => hold::<FutexLock>(&args),
        LockKind::Os => hold::<OsMutex>(&args),
    }
}
crate::task!(hold_lock);

fn hold<L: RawLock>(args: &HoldArgs) -> Result<(), String> {
    let value = SharedValue::<i64, L>::open(&args.value).map_err(|e| e.to_string())?;
    let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
    let guard = value.lock().map_err(|e| e.to_string())?;
    guard.set(guard.get() + 1);
    gate.arrive_and_wait(GATE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    drop(guard);
    Ok(())
}

fn transfers(config: &LocksConfig, locked: bool) -> Result<InvariantRow, LocksError> {
    let accounts = SharedArray::<i64>::create(config.accounts, INITIAL_BALANCE)?;
    let total_before: i64 = accounts.to_vec().iter().sum();
    let gate = StartGate::create()?;
    let mut crew = (0..config.workers)
        .map(|i| {
            let args = TransferArgs {
                index: i,
                accounts: accounts.name().to_string(),
                gate: gate.name().to_string(),
                transfers: config.transfers,
                seed: 0x5EED + i as u64,
                locked,
            };
            process::spawn(transfer_worker, &args)
        })
        .collect::<Result<Vec<_>, _>>()?;
    gate.wait_for(&mut crew, GATE_TIMEOUT)?;
    let started = Instant::now();
    gate.open_now();
    for worker in crew {
        worker.join()?.map_err(LocksError::Task)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let total_after: i64 = accounts.to_vec().iter().sum();
    Ok(InvariantRow {
        mode: if locked { "locked" } else { "unlocked" },
        total_before,
        total_after,
        invariant_kept: total_before == total_after,
        seconds,
    })
}

/// Starts a holder of `value`'s lock and waits until it holds it.
fn start_holder<L: RawLock>(
    value: &SharedValue<i64, L>,
    gate: &StartGate,
) -> Result<process::Worker<Result<(), String>>, LocksError> {
    let args = HoldArgs {
        value: value.name().to_string(),
        gate: gate.name().to_string(),
        lock: L::KIND,
    };
    let mut holder = [process::spawn(hold_lock, &args)?];
    gate.wait_for(&mut holder, GATE_TIMEOUT)?;
    let [holder] = holder;
    Ok(holder)
}

fn timed<L: RawLock>(timeout: Duration) -> Result<TimedRow, LocksError> {
    let value = SharedValue::<i64, L>::create(0)?;
    let gate = StartGate::create()?;
    let holder = start_holder(&value, &gate)?;
    let started = Instant::now();
    let attempt = value.try_lock_for(timeout);
    let waited = started.elapsed();
    let gave_up = matches!(attempt, Err(LockError::Timeout(_)));
    drop(attempt);
    // Let the holder go, and check the lock is usable afterwards.
    gate.open_now();
    holder.join()?.map_err(LocksError::Task)?;
    drop(value.lock().map_err(|e| LocksError::Lock(e.to_string()))?);
    Ok(TimedRow {
        lock: L::KIND.name(),
        timeout_ms: timeout.as_secs_f64() * 1e3,
        gave_up,
        waited_ms: waited.as_secs_f64() * 1e3,
    })
}

fn owner_death<L: RawLock>() -> Result<OwnerDeathRow, LocksError> {
    let value = SharedValue::<i64, L>::create(0)?;
    let gate = StartGate::create()?;
    let mut holder = start_holder(&value, &gate)?;
    let holder_pid = holder.pid();
    let killed_at = Instant::now();
    holder.kill().map_err(|source| WorkerError::Io {
        pid: holder_pid,
        source,
    })?;
    // Not reaped yet: the holder is a zombie while we wait for its lock.
    let attempt = value.try_lock_for(Duration::from_secs(10));
    let recover_ms = killed_at.elapsed().as_secs_f64() * 1e3;
    let owner_died_reported = match attempt {
        Err(LockError::OwnerDied(guard)) => {
            // Repair: here the data is one counter, and the holder had
            // already finished its update, so it is consistent as it is.
            drop(guard);
            true
        }
        _ => false,
    };
    let holder_exit = match holder.join() {
        Err(WorkerError::Killed { signal_name, .. }) => format!("killed by {signal_name}"),
        Err(e) => e.to_string(),
        Ok(_) => "exit 0".to_string(),
    };
    Ok(OwnerDeathRow {
        lock: L::KIND.name(),
        holder_pid,
        holder_exit,
        owner_died_reported,
        recover_ms,
    })
}

fn throughput(
    strategy: Strategy,
    processes: usize,
    increments: u64,
) -> Result<ThroughputRow, LocksError> {
    let run = counting::count(strategy, processes, increments)?;
    Ok(ThroughputRow {
        lock: if strategy == Strategy::LockedOs {
            "os"
        } else {
            "futex"
        },
        processes,
        ops_per_s: run.ops_per_s,
        exact: run.lost == 0,
    })
}

/// Runs lab 05.
///
/// ```
/// use std::time::Duration;
/// use shmlab::lessons::locks::{self, LocksConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config = LocksConfig {
///         workers: 2,
///         accounts: 4,
///         transfers: 100,
///         increments: 1000,
///         timeout: Duration::from_millis(10),
///     };
///     let report = locks::run(&config)?;
///     assert!(report.invariant[1].invariant_kept); // locked transfers keep the total
///     assert!(report.timed.iter().all(|row| row.gave_up));
///     assert!(report.owner_death.iter().all(|row| row.owner_died_reported));
///     Ok(())
/// }
/// ```
pub fn run(config: &LocksConfig) -> Result<LocksReport, LocksError> {
    let invariant = vec![transfers(config, false)?, transfers(config, true)?];
    let mut process_counts = vec![1];
    if config.workers > 1 {
        process_counts.push(config.workers);
    }
    let mut throughput_rows = Vec::new();
    for strategy in [Strategy::Locked, Strategy::LockedOs] {
        for &p in &process_counts {
            throughput_rows.push(throughput(strategy, p, config.increments)?);
        }
    }
    let timed_rows = vec![
        timed::<FutexLock>(config.timeout)?,
        timed::<OsMutex>(config.timeout)?,
    ];
    let death_rows = vec![owner_death::<FutexLock>()?, owner_death::<OsMutex>()?];

    let locked_kept = invariant[1].invariant_kept;
    let drift = invariant[0].total_after - invariant[0].total_before;
    let ok = locked_kept
        && throughput_rows.iter().all(|r| r.exact)
        && timed_rows
            .iter()
            .all(|r| r.gave_up && r.waited_ms >= r.timeout_ms * 0.99)
        && death_rows.iter().all(|r| r.owner_died_reported);
    let find = |lock: &str, p: usize| {
        throughput_rows
            .iter()
            .find(|r| r.lock == lock && r.processes == p)
            .map_or(0.0, |r| r.ops_per_s)
    };
    let contended = *process_counts.last().unwrap_or(&1);
    let contended_text = |rate: f64| {
        if contended > 1 {
            format!(", {} with {contended} processes", report::rate(rate))
        } else {
            String::new()
        }
    };
    let verdict = if ok {
        format!(
            "without the lock the total {} ({drift:+}); with it the total stayed {}. Locked counter: futex {} alone{}; OS mutex {} alone{}. A timed lock gave up after {:.0} ms; a holder killed with SIGKILL was detected and the lock recovered with OwnerDied in {:.1} ms (futex) and {:.1} ms (OS).",
            match (config.workers, drift) {
                (1, _) => "stayed put: with one worker nobody can interleave",
                (_, 0) => "happened to stay put this run (raise --transfers)",
                _ => "drifted",
            },
            invariant[1].total_after,
            report::rate(find("futex", 1)),
            contended_text(find("futex", contended)),
            report::rate(find("os", 1)),
            contended_text(find("os", contended)),
            config.timeout.as_secs_f64() * 1e3,
            death_rows[0].recover_ms,
            death_rows[1].recover_ms,
        )
    } else {
        "a lock did not behave as it must: see the rows above".to_string()
    };
    Ok(LocksReport {
        outcome: Outcome {
            lab: "lab05-locks",
            ok,
            verdict,
        },
        workers: config.workers,
        accounts: config.accounts,
        invariant,
        throughput: throughput_rows,
        timed: timed_rows,
        owner_death: death_rows,
    })
}

impl Report for LocksReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let mut out = format!(
            "1. Transfers between {} accounts by {} workers: is the total kept?\n{:<10} {:>12} {:>12} {:>6} {:>9}\n",
            self.accounts, self.workers, "mode", "total before", "total after", "kept", "seconds"
        );
        for r in &self.invariant {
            out += &format!(
                "{:<10} {:>12} {:>12} {:>6} {:>9.3}\n",
                r.mode, r.total_before, r.total_after, r.invariant_kept, r.seconds
            );
        }
        out += &format!(
            "\n2. Locked counter throughput\n{:<6} {:>9} {:>12} {:>6}\n",
            "lock", "processes", "ops/s", "exact"
        );
        for r in &self.throughput {
            out += &format!(
                "{:<6} {:>9} {:>12} {:>6}\n",
                r.lock,
                r.processes,
                report::rate(r.ops_per_s),
                r.exact
            );
        }
        out += &format!(
            "\n3. A timed lock against a holder that keeps it\n{:<6} {:>10} {:>8} {:>10}\n",
            "lock", "timeout ms", "gave up", "waited ms"
        );
        for r in &self.timed {
            out += &format!(
                "{:<6} {:>10.0} {:>8} {:>10.1}\n",
                r.lock, r.timeout_ms, r.gave_up, r.waited_ms
            );
        }
        out += &format!(
            "\n4. The holder is killed (SIGKILL) while holding the lock\n{:<6} {:>8} {:<18} {:>11} {:>11}\n",
            "lock", "pid", "holder", "OwnerDied", "recover ms"
        );
        for r in &self.owner_death {
            out += &format!(
                "{:<6} {:>8} {:<18} {:>11} {:>11.1}\n",
                r.lock, r.holder_pid, r.holder_exit, r.owner_died_reported, r.recover_ms
            );
        }
        out + "\n"
    }
}
