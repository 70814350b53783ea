//! Holding a dinner: philosophers as processes (or threads), a watchdog in
//! the caller that reads the table, reports a deadlock's cycle and breaks it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::dine::{LeaveError, Pace, Strategy, Waits};
use super::graph::{Edge, Snapshot};
use super::table::{ForkLock, LocalTable, SeatState, SharedTable, Table};
use super::{DineError, check_philosophers};
use crate::lock::FutexLock;
use crate::process::{self, StartGate, Worker, WorkerError};
use crate::sync::{self, Ordering};

/// How long philosopher processes may take to reach the start gate.
const GATE_TIMEOUT: Duration = Duration::from_secs(20);

/// The options of one dinner.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::philosophers::{DinnerConfig, Strategy, run_dinner};
///
/// // Three philosopher threads, three meals each, forks in order.
/// let config = DinnerConfig {
///     threads: true,
///     meals: Some(3),
///     ..DinnerConfig::new(Strategy::Ordered, 3)
/// };
/// let dinner = run_dinner(&config)?;
/// assert!(dinner.completed && !dinner.deadlock_detected);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DinnerConfig {
    /// Philosophers (and forks): 2 to 64.
    pub philosophers: usize,
    /// How they take forks.
    pub strategy: Strategy,
    /// Threads with parking_lot forks instead of processes with futex forks.
    pub threads: bool,
    /// Everyone holds the first fork before anyone reaches for the second
    /// (first meal only): the naive deadlock then happens every time.
    pub together: bool,
    /// Meals per philosopher; `None` with `duration` = as many as fit.
    pub meals: Option<u64>,
    /// Dine for this long instead of a number of meals (fairness runs).
    pub duration: Option<Duration>,
    /// Longest think between meals (random, uniform from zero).
    pub think: Duration,
    /// Longest meal (random, uniform from half of it).
    pub eat: Duration,
    /// A wait in a cycle this old is a deadlock.
    pub deadlock_timeout: Duration,
    /// How long `timeout` waits for its second fork.
    pub patience: Duration,
    /// The whole dinner ends by then, whatever happens.
    pub time_limit: Duration,
}

impl DinnerConfig {
    /// Quick defaults: 20 short meals each, a 300 ms deadlock timeout.
    ///
    /// ```
    /// use shmlab::philosophers::{DinnerConfig, Strategy};
    ///
    /// let config = DinnerConfig::new(Strategy::Naive, 5);
    /// assert_eq!((config.philosophers, config.meals), (5, Some(20)));
    /// assert!(!config.threads); // processes unless asked
    /// ```
    pub fn new(strategy: Strategy, philosophers: usize) -> Self {
        DinnerConfig {
            philosophers,
            strategy,
            threads: false,
            together: true,
            meals: Some(20),
            duration: None,
            think: Duration::from_micros(500),
            eat: Duration::from_micros(500),
            deadlock_timeout: Duration::from_millis(300),
            patience: Duration::from_millis(2),
            time_limit: Duration::from_secs(30),
        }
    }

    /// Meals each philosopher is to eat: `None` for a timed dinner.
    ///
    /// ```
    /// use shmlab::philosophers::{DinnerConfig, Strategy};
    /// use std::time::Duration;
    ///
    /// let mut config = DinnerConfig::new(Strategy::Waiter, 3);
    /// assert_eq!(config.meals_each(), Some(20));
    /// config.duration = Some(Duration::from_secs(1)); // a timed dinner
    /// assert_eq!(config.meals_each(), None);
    /// ```
    pub fn meals_each(&self) -> Option<u64> {
        if self.duration.is_some() {
            None
        } else {
            self.meals
        }
    }
}

/// How a detected deadlock was ended.
///
/// ```
/// use shmlab::philosophers::Resolution;
///
/// let json = serde_json::to_value(Resolution::VictimKilled { victim: 2 }).unwrap();
/// assert_eq!(json, serde_json::json!({ "kind": "victim-killed", "victim": 2 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Resolution {
    /// No deadlock to end.
    None,
    /// Processes: the victim was killed (SIGKILL). The fork it held was
    /// taken over by its neighbour through the lock's owner-death check,
    /// and everyone else finished — PostgreSQL's way: abort one so the rest
    /// can go on.
    VictimKilled {
        /// The philosopher killed.
        victim: usize,
    },
    /// Threads: a thread cannot be killed and parking_lot's `lock()` cannot
    /// be interrupted, so the deadlocked threads are left parked until the
    /// process exits; everyone else finished.
    ThreadsAbandoned {
        /// The philosophers left behind.
        philosophers: Vec<usize>,
    },
    /// The time limit passed: everyone was stopped (processes killed).
    TimeLimit,
}

/// What parking_lot's own deadlock detector saw (thread variant).
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::philosophers::{DinnerConfig, Strategy, run_dinner};
///
/// let config = DinnerConfig { threads: true, meals: Some(2), ..DinnerConfig::new(Strategy::Waiter, 3) };
/// let view = run_dinner(&config)?.parking_lot.expect("a thread dinner asks parking_lot");
/// assert!(!view.found); // no deadlock, and parking_lot agrees
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct ParkingLotView {
    /// Whether `parking_lot::deadlock::check_deadlock` reported a cycle.
    pub found: bool,
    /// The philosophers in it.
    pub philosophers: Vec<usize>,
    /// From the moment the cycle closed to parking_lot's report.
    pub after_ms: Option<f64>,
}

/// The outcome of one dinner. Keys of its JSON: `strategy`, `variant`,
/// `philosophers`, `together`, `meals_each`, `duration_s`,
/// `deadlock_detected`, `deadlock_timeout_ms`, `detected_after_ms`, `cycle:
/// [{philosopher, pid, holds, waits_for, held_by, held_by_pid, waited_ms}]`,
/// `report` (the cycle in words), `resolution`, `parking_lot`, `meals`,
/// `max_wait_ms`, `max_wait_ms_each`, `mean_wait_ms_each`, `backoffs`,
/// `recovered_forks`, `exclusion_violations`, `completed`, `failures`,
/// `seconds`, `segments`.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::philosophers::{DinnerConfig, Resolution, Strategy, run_dinner};
///
/// let config = DinnerConfig { threads: true, meals: Some(2), ..DinnerConfig::new(Strategy::Timeout, 3) };
/// let dinner = run_dinner(&config)?;
/// assert_eq!((dinner.variant, dinner.meals.clone()), ("threads", vec![2, 2, 2]));
/// assert_eq!((dinner.resolution, dinner.exclusion_violations), (Resolution::None, 0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Dinner {
    /// How forks were taken.
    pub strategy: Strategy,
    /// `processes` or `threads`.
    pub variant: &'static str,
    /// How many dined.
    pub philosophers: usize,
    /// Whether the first reach was synchronised (a certain naive deadlock).
    pub together: bool,
    /// Meals each philosopher was to eat (`None`: a timed dinner).
    pub meals_each: Option<u64>,
    /// The timed dinner's length.
    pub duration_s: Option<f64>,
    /// Whether the watchdog found a wait-for cycle.
    pub deadlock_detected: bool,
    /// How old a cycle's waits had to be.
    pub deadlock_timeout_ms: f64,
    /// From the moment the cycle closed (its last wait began) to the report.
    pub detected_after_ms: Option<f64>,
    /// The cycle, one edge per philosopher in it.
    pub cycle: Vec<Edge>,
    /// The cycle in words, PostgreSQL style, one line per edge.
    pub report: Vec<String>,
    /// How it ended.
    pub resolution: Resolution,
    /// parking_lot's detector, for comparison (thread variant only).
    pub parking_lot: Option<ParkingLotView>,
    /// Meals eaten, per philosopher.
    pub meals: Vec<u64>,
    /// The longest any philosopher waited from hungry to eating.
    pub max_wait_ms: f64,
    /// Per philosopher: its longest wait.
    pub max_wait_ms_each: Vec<f64>,
    /// Per philosopher: its mean wait per meal.
    pub mean_wait_ms_each: Vec<f64>,
    /// Per philosopher: first forks put back (`timeout`).
    pub backoffs: Vec<u64>,
    /// Forks taken over from a philosopher that died holding them.
    pub recovered_forks: u64,
    /// Forks found in two hands at once (must be 0).
    pub exclusion_violations: u64,
    /// Whether every philosopher not removed to break a deadlock finished.
    pub completed: bool,
    /// Philosophers that failed, and why.
    pub failures: Vec<String>,
    /// From the start to the last philosopher leaving.
    pub seconds: f64,
    /// The shared segments the dinner used (table and start gate), all
    /// removed by the time the dinner returns.
    pub segments: Vec<String>,
}

impl Dinner {
    /// Total meals eaten.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::philosophers::{DinnerConfig, Strategy, run_dinner};
    ///
    /// let config = DinnerConfig { threads: true, meals: Some(2), ..DinnerConfig::new(Strategy::Ordered, 4) };
    /// assert_eq!(run_dinner(&config)?.total_meals(), 8);
    /// # Ok(()) }
    /// ```
    pub fn total_meals(&self) -> u64 {
        self.meals.iter().sum()
    }
}

/// Holds one dinner as `config` says and returns what happened.
///
/// ```
/// use shmlab::philosophers::{DinnerConfig, Resolution, Strategy, run_dinner};
/// use std::time::Duration;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // philosopher processes dine here
///     // Two naive philosopher processes: each takes its left fork, then waits.
///     let config = DinnerConfig {
///         meals: Some(1),
///         deadlock_timeout: Duration::from_millis(50),
///         ..DinnerConfig::new(Strategy::Naive, 2)
///     };
///     let dinner = run_dinner(&config)?;
///     assert!(dinner.deadlock_detected);
///     assert_eq!(dinner.cycle.len(), 2); // 0 waits for 1, 1 waits for 0
///     assert!(matches!(dinner.resolution, Resolution::VictimKilled { .. }));
///     Ok(())
/// }
/// ```
pub fn run_dinner(config: &DinnerConfig) -> Result<Dinner, DineError> {
    check_philosophers(config.philosophers)?;
    if config.threads {
        dine_in_threads(config)
    } else {
        dine_in_processes(config)
    }
}

/// Random thinking, eating and backing off, with a sleep: philosophers on
/// two CPUs must not spin.
struct Sleepy {
    think: Duration,
    eat: Duration,
    patience: Duration,
    rng: fastrand::Rng,
}

impl Sleepy {
    fn nap(&mut self, from: Duration, to: Duration) {
        let ns = self
            .rng
            .u64(from.as_nanos() as u64..=to.as_nanos().max(from.as_nanos()) as u64);
        if ns > 0 {
            std::thread::sleep(Duration::from_nanos(ns));
        }
    }
}

impl Pace for Sleepy {
    fn think(&mut self) {
        self.nap(Duration::ZERO, self.think);
    }
    fn eat(&mut self) {
        self.nap(self.eat / 2, self.eat);
    }
    fn back_off(&mut self, attempt: u32) {
        // Random, and growing with each failed attempt (exponential backoff
        // with jitter): identical pauses would retry in lock-step forever.
        self.nap(Duration::ZERO, self.patience * (1 << attempt.min(4)));
    }
}

/// What a philosopher needs to dine, in whichever process it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    strategy: Strategy,
    meals: Option<u64>,
    limit_ms: Option<u64>,
    patience_us: u64,
    together: bool,
    think_us: u64,
    eat_us: u64,
}

impl Plan {
    fn new(config: &DinnerConfig, limit: Option<Duration>) -> Plan {
        Plan {
            strategy: config.strategy,
            meals: config.meals_each(),
            limit_ms: limit.map(|l| l.as_millis() as u64),
            patience_us: config.patience.as_micros() as u64,
            together: config.together,
            think_us: config.think.as_micros() as u64,
            eat_us: config.eat.as_micros() as u64,
        }
    }

    fn waits(&self) -> Waits {
        Waits {
            limit: self.limit_ms.map(Duration::from_millis),
            patience: Duration::from_micros(self.patience_us),
            together: self.together,
        }
    }

    fn pace(&self, me: usize) -> Sleepy {
        Sleepy {
            think: Duration::from_micros(self.think_us),
            eat: Duration::from_micros(self.eat_us),
            patience: Duration::from_micros(self.patience_us),
            rng: fastrand::Rng::with_seed(0x9e37_79b9 ^ me as u64 ^ u64::from(std::process::id())),
        }
    }

    fn dine<L: ForkLock>(
        &self,
        table: &Table<'_, L>,
        me: usize,
        ident: u32,
    ) -> Result<(), LeaveError> {
        table.dine(
            me,
            ident,
            self.strategy,
            self.meals,
            &self.waits(),
            &mut self.pace(me),
        )
    }
}

/// The arguments of a philosopher process.
#[derive(Debug, Serialize, Deserialize)]
struct SeatArgs {
    table: String,
    gate: String,
    me: usize,
    plan: Plan,
}

/// A philosopher process: opens the table, waits at the gate, dines.
fn philosopher(args: SeatArgs) -> Result<(), String> {
    let shared = SharedTable::open(&args.table).map_err(|e| e.to_string())?;
    let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
    gate.arrive_and_wait(GATE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    args.plan
        .dine(&shared.table(), args.me, std::process::id())
        .map_err(|e| e.to_string())
}
crate::task!(philosopher);

/// The philosophers as the watchdog sees them: how to wait for them, end a
/// deadlock, stop them all.
trait Company {
    /// How many are still dining (not finished, not removed).
    fn running(&self) -> usize;
    /// Waits up to `timeout` for someone to leave, and collects who left.
    fn wait(&mut self, timeout: Duration);
    /// Ends the deadlock `cycle` (read in `snapshot`); `victim` closed it.
    fn resolve(&mut self, victim: usize, snapshot: &Snapshot, cycle: &[Edge]) -> Resolution;
    /// Stops everyone still dining (the time limit passed).
    fn stop_all(&mut self);
    /// What parking_lot's detector says, if this company has one.
    fn parking_lot_cycle(&mut self) -> Option<Vec<usize>> {
        None
    }
    /// Failures collected so far.
    fn failures(&mut self) -> Vec<String>;
}

/// What the watchdog saw.
struct Watch {
    cycle: Vec<Edge>,
    detected_after_ms: Option<f64>,
    resolution: Resolution,
    parking_lot: Option<ParkingLotView>,
    seconds: f64,
}

/// The watchdog: until everyone has left, reads the table every `poll`,
/// looks for a wait-for cycle whose waits are all older than the deadlock
/// timeout, confirms it with a second reading, reports and resolves it.
fn watch<L: ForkLock>(
    table: Table<'_, L>,
    company: &mut impl Company,
    config: &DinnerConfig,
    has_parking_lot: bool,
) -> Watch {
    let timeout_ns = config.deadlock_timeout.as_nanos() as u64;
    let poll =
        (config.deadlock_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(50));
    let started = Instant::now();
    let mut watch = Watch {
        cycle: Vec::new(),
        detected_after_ms: None,
        resolution: Resolution::None,
        parking_lot: has_parking_lot.then(|| ParkingLotView {
            found: false,
            philosophers: Vec::new(),
            after_ms: None,
        }),
        seconds: 0.0,
    };
    let mut stop_sent = false;
    while company.running() > 0 {
        let elapsed = started.elapsed();
        if elapsed >= config.time_limit {
            company.stop_all();
            watch.resolution = Resolution::TimeLimit;
            break;
        }
        if config.duration.is_some_and(|d| elapsed >= d) && !stop_sent {
            table.stop();
            stop_sent = true;
        }
        if let Some(view) = watch.parking_lot.as_mut().filter(|v| !v.found) {
            let asked = sync::now_ns();
            if let Some(members) = company.parking_lot_cycle() {
                // From the cycle closing to the check that found it (the
                // check itself then also captures each thread's backtrace).
                let closed = latest_wait(&Snapshot::take(&table), &members);
                view.found = true;
                view.after_ms = Some(asked.saturating_sub(closed) as f64 / 1e6);
                view.philosophers = members;
            }
        }
        if watch.cycle.is_empty()
            || !matches!(watch.resolution, Resolution::ThreadsAbandoned { .. })
        {
            let now = sync::now_ns();
            let first = Snapshot::take(&table);
            if let Some(cycle) = first.cycle(now, timeout_ns) {
                let second = Snapshot::take(&table);
                if second.same_waits(&first, &cycle) {
                    let members: Vec<usize> = cycle.iter().map(|e| e.philosopher).collect();
                    let closed = latest_wait(&second, &members);
                    // The victim is the philosopher whose wait closed the
                    // cycle (the youngest wait): its request made the deadlock.
                    let victim = members
                        .iter()
                        .copied()
                        .max_by_key(|&m| second.seats[m].wait_since_ns)
                        .unwrap_or(members[0]);
                    let resolution = company.resolve(victim, &second, &cycle);
                    if watch.cycle.is_empty() {
                        watch.detected_after_ms = Some(now.saturating_sub(closed) as f64 / 1e6);
                        watch.cycle = cycle;
                        watch.resolution = resolution;
                    }
                    continue;
                }
            }
        }
        company.wait(poll);
    }
    watch.seconds = started.elapsed().as_secs_f64();
    watch
}

/// When the last of `members`' current waits began.
fn latest_wait(snapshot: &Snapshot, members: &[usize]) -> u64 {
    members
        .iter()
        .filter_map(|&m| snapshot.seats.get(m))
        .map(|s| s.wait_since_ns)
        .max()
        .unwrap_or(0)
}

/// The report of a dinner, from the watchdog's findings and the seats.
fn tally<L: ForkLock>(
    config: &DinnerConfig,
    table: Table<'_, L>,
    watch: Watch,
    mut failures: Vec<String>,
    id: &str,
    segments: Vec<String>,
) -> Dinner {
    let seats = table.seats();
    let ms = |ns: u64| ns as f64 / 1e6;
    let meals: Vec<u64> = seats.iter().map(|s| s.meals()).collect();
    let removed: Vec<usize> = match &watch.resolution {
        Resolution::VictimKilled { victim } => vec![*victim],
        Resolution::ThreadsAbandoned { philosophers } => philosophers.clone(),
        _ => Vec::new(),
    };
    let meals_each = config.meals_each();
    for (i, seat) in seats.iter().enumerate() {
        let short = meals_each.is_some_and(|m| meals[i] < m);
        if short && !removed.contains(&i) && seat.state() != SeatState::Failed {
            failures.push(format!(
                "philosopher {i} ate {} of {:?} meals",
                meals[i], meals_each
            ));
        }
    }
    let max_wait_ms_each: Vec<f64> = seats
        .iter()
        .map(|s| ms(s.max_wait_ns.load(Ordering::Relaxed)))
        .collect();
    let completed = failures.is_empty() && watch.resolution != Resolution::TimeLimit;
    Dinner {
        strategy: config.strategy,
        variant: if config.threads {
            "threads"
        } else {
            "processes"
        },
        philosophers: config.philosophers,
        together: config.together,
        meals_each,
        duration_s: config.duration.map(|d| d.as_secs_f64()),
        deadlock_detected: !watch.cycle.is_empty(),
        deadlock_timeout_ms: config.deadlock_timeout.as_secs_f64() * 1e3,
        detected_after_ms: watch.detected_after_ms,
        report: watch.cycle.iter().map(|e| e.sentence(id)).collect(),
        cycle: watch.cycle,
        resolution: watch.resolution,
        parking_lot: watch.parking_lot,
        max_wait_ms: max_wait_ms_each.iter().copied().fold(0.0, f64::max),
        max_wait_ms_each,
        mean_wait_ms_each: seats
            .iter()
            .zip(&meals)
            .map(|(s, &m)| ms(s.total_wait_ns.load(Ordering::Relaxed)) / m.max(1) as f64)
            .collect(),
        backoffs: seats
            .iter()
            .map(|s| s.backoffs.load(Ordering::Relaxed))
            .collect(),
        recovered_forks: seats
            .iter()
            .map(|s| s.recovered.load(Ordering::Relaxed))
            .sum(),
        exclusion_violations: seats
            .iter()
            .map(|s| s.violations.load(Ordering::Relaxed))
            .sum(),
        meals,
        completed,
        failures,
        seconds: watch.seconds,
        segments,
    }
}

// ---------------------------------------------------------------- processes

/// Philosopher processes and what became of them.
struct Processes<'t> {
    table: Table<'t, FutexLock>,
    workers: Vec<Option<Worker<Result<(), String>>>>,
    failures: Vec<String>,
}

impl Processes<'_> {
    fn collect(&mut self, i: usize, timeout: Duration) {
        let Some(worker) = self.workers[i].as_mut() else {
            return;
        };
        match worker.join_timeout(timeout) {
            Err(WorkerError::Timeout { .. }) => return,
            Ok(exited) => {
                if let Err(why) = exited.value {
                    self.failures.push(why);
                }
            }
            Err(e) => self.failures.push(format!("philosopher {i}: {e}")),
        }
        self.workers[i] = None;
    }
}

impl Company for Processes<'_> {
    fn running(&self) -> usize {
        self.workers.iter().flatten().count()
    }

    fn wait(&mut self, timeout: Duration) {
        // Wait on the first one still dining; then collect any others that
        // left meanwhile without waiting.
        if let Some(first) = self.workers.iter().position(Option::is_some) {
            self.collect(first, timeout);
        }
        for i in 0..self.workers.len() {
            if self.workers[i].as_mut().is_some_and(|w| w.has_exited()) {
                self.collect(i, Duration::ZERO);
            }
        }
    }

    fn resolve(&mut self, victim: usize, _snapshot: &Snapshot, _cycle: &[Edge]) -> Resolution {
        if let Some(mut worker) = self.workers[victim].take() {
            let _ = worker.kill();
            // Reaped here, so its pid is gone (not a zombie) when the
            // neighbour's lock asks whether the fork's holder still lives.
            let _ = worker.join_timeout(Duration::from_secs(5));
        }
        let seat = &self.table.seats()[victim];
        seat.set_state(SeatState::Aborted);
        seat.waits_for.store(0, Ordering::Release);
        Resolution::VictimKilled { victim }
    }

    fn stop_all(&mut self) {
        self.table.stop();
        for worker in self.workers.iter_mut().filter_map(Option::take) {
            drop(worker); // kills and reaps
        }
    }

    fn failures(&mut self) -> Vec<String> {
        std::mem::take(&mut self.failures)
    }
}

fn dine_in_processes(config: &DinnerConfig) -> Result<Dinner, DineError> {
    let shared = SharedTable::create(config.philosophers)?;
    let gate = StartGate::create()?;
    // A philosopher gives up on any one wait after the time limit, so even a
    // watchdog that failed could not leave it blocked for ever.
    let plan = Plan::new(config, Some(config.time_limit));
    let mut workers = Vec::with_capacity(config.philosophers);
    for me in 0..config.philosophers {
        let args = SeatArgs {
            table: shared.name().to_string(),
            gate: gate.name().to_string(),
            me,
            plan: plan.clone(),
        };
        workers.push(process::spawn(philosopher, &args)?);
    }
    gate.wait_for(&mut workers, GATE_TIMEOUT)?;
    gate.open_now();
    let table = shared.table();
    let mut company = Processes {
        table,
        workers: workers.into_iter().map(Some).collect(),
        failures: Vec::new(),
    };
    let watch = watch(table, &mut company, config, false);
    let failures = company.failures();
    let segments = vec![shared.name().to_string(), gate.name().to_string()];
    Ok(tally(config, table, watch, failures, "pid", segments))
}

// ------------------------------------------------------------------ threads

/// parking_lot's deadlock detector is global to the process: one thread
/// dinner at a time, so that one dinner's check never reports another's.
static THREAD_DINNERS: Mutex<()> = Mutex::new(());

type Forks = LocalTable<parking_lot::RawMutex>;

/// Philosopher threads and what became of them.
struct Threads {
    table: Arc<Forks>,
    handles: Vec<Option<JoinHandle<Result<(), LeaveError>>>>,
    ids: Vec<ThreadId>,
    left: mpsc::Receiver<usize>,
    failures: Vec<String>,
}

impl Threads {
    fn collect(&mut self, i: usize) {
        if let Some(handle) = self.handles[i].take() {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.failures.push(e.to_string()),
                Err(panic) => self.failures.push(format!(
                    "philosopher {i} panicked: {}",
                    process::panic_message(&*panic)
                )),
            }
        }
    }
}

impl Company for Threads {
    fn running(&self) -> usize {
        self.handles.iter().flatten().count()
    }

    fn wait(&mut self, timeout: Duration) {
        if let Ok(i) = self.left.recv_timeout(timeout) {
            self.collect(i);
        }
        while let Ok(i) = self.left.try_recv() {
            self.collect(i);
        }
    }

    fn resolve(&mut self, _victim: usize, snapshot: &Snapshot, cycle: &[Edge]) -> Resolution {
        // No thread can be killed, and a thread blocked in lock() cannot be
        // told to stop: leave the stuck ones parked (their JoinHandles are
        // dropped, which detaches them) and let everyone else finish.
        let stuck = snapshot.stuck_behind(cycle);
        for &i in &stuck {
            self.handles[i] = None;
        }
        self.table.table().stop();
        Resolution::ThreadsAbandoned {
            philosophers: stuck,
        }
    }

    fn stop_all(&mut self) {
        self.table.table().stop();
        self.handles.iter_mut().for_each(|h| drop(h.take()));
    }

    fn parking_lot_cycle(&mut self) -> Option<Vec<usize>> {
        let cycles = parking_lot::deadlock::check_deadlock();
        let mut members: Vec<usize> = cycles
            .iter()
            .flatten()
            .filter_map(|t| self.ids.iter().position(|id| *id == t.thread_id()))
            .collect();
        members.sort_unstable();
        (!members.is_empty()).then_some(members)
    }

    fn failures(&mut self) -> Vec<String> {
        std::mem::take(&mut self.failures)
    }
}

fn dine_in_threads(config: &DinnerConfig) -> Result<Dinner, DineError> {
    let _one_at_a_time = THREAD_DINNERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let table = Arc::new(Forks::new(config.philosophers));
    // No limit on a fork wait: parking_lot's detector only looks at threads
    // in an untimed lock().
    let plan = Plan::new(config, None);
    let (tx, left) = mpsc::channel();
    let mut handles = Vec::with_capacity(config.philosophers);
    let mut ids = Vec::with_capacity(config.philosophers);
    for me in 0..config.philosophers {
        let (table, plan, tx) = (table.clone(), plan.clone(), tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("philosopher-{me}"))
            .spawn(move || {
                // SAFETY: gettid has no preconditions and cannot fail.
                let tid = unsafe { libc::gettid() } as u32;
                let result = plan.dine(&table.table(), me, tid);
                let _ = tx.send(me);
                result
            })
            .map_err(|e| DineError::Thread(e.to_string()))?;
        ids.push(handle.thread().id());
        handles.push(Some(handle));
    }
    let mut company = Threads {
        table: table.clone(),
        handles: handles.into_iter().collect(),
        ids,
        left,
        failures: Vec::new(),
    };
    let watch = watch(table.table(), &mut company, config, true);
    let failures = company.failures();
    Ok(tally(
        config,
        table.table(),
        watch,
        failures,
        "tid",
        Vec::new(),
    ))
}
