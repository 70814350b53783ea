//! Lab 07: every interleaving of W workers' `load; add; store` on one
//! counter, simulated on registers — the predict-then-verify exercise of
//! OSTEP's `x86.py` — and the loom test that checks shmlab's real code.
//!
//! Each worker runs the racy increment of [`crate::counting::racy_increment`],
//! `store(load() + 1)`, split into the three steps a CPU takes: `load` copies
//! the counter into the worker's private register, `add` adds 1 to the
//! register, `store` writes the register back. A schedule says which worker
//! takes the next step; this module enumerates every schedule, runs each one
//! and counts the final values. Everything here is pure and deterministic.
//!
//! The model is sequentially consistent: each step acts on the one counter
//! at once, in schedule order. Real hardware and Rust's memory model allow
//! more (a load may read an older value), which is why loom finds the lost
//! update even in a schedule this model calls safe (see the handout).
//!
//! ```
//! use shmlab::lessons::interleavings::{self, InterleavingsConfig};
//!
//! let report = interleavings::run(&InterleavingsConfig {
//!     workers: 2,
//!     increments: 1,
//!     schedule: Some("AABABB".to_string()),
//! })
//! .unwrap();
//! assert_eq!(report.interleavings, 20);
//! assert_eq!(report.lost_update_interleavings, 18);
//! assert_eq!(report.replay.unwrap().outcome.final_value, 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::report::{Outcome, Report};

/// At most this many workers, named `A` to `D`. Five workers with one
/// increment each already have 168 168 000 interleavings.
///
/// ```
/// use shmlab::cli::parse_interleaving_workers;
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, InterleavingsError, MAX_WORKERS};
///
/// assert_eq!(parse_interleaving_workers("4"), Ok(MAX_WORKERS)); // `--workers 4`: A to D
/// let config = InterleavingsConfig { workers: MAX_WORKERS + 1, increments: 1, schedule: None };
/// let err = interleavings::run(&config).unwrap_err(); // refused before any work
/// assert_eq!(err, InterleavingsError::Workers(MAX_WORKERS + 1));
/// ```
pub const MAX_WORKERS: usize = 4;

/// Refuse option combinations with more interleavings than this: each one is
/// simulated, and beyond a million nobody reads the histogram's examples.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, InterleavingsError};
/// use shmlab::lessons::interleavings::{MAX_INTERLEAVINGS, interleaving_count};
///
/// // Two workers with three increments each: 48 620 interleavings, all simulated.
/// let three = InterleavingsConfig { workers: 2, increments: 3, schedule: None };
/// assert_eq!(interleavings::run(&three)?.interleavings, 48_620);
/// // With four each there would be more than MAX_INTERLEAVINGS: refused.
/// assert!(interleaving_count(2, 4).is_some_and(|n| n > u128::from(MAX_INTERLEAVINGS)));
/// let four = InterleavingsConfig { increments: 4, ..three };
/// let err = interleavings::run(&four).unwrap_err();
/// assert!(matches!(err, InterleavingsError::TooMany { increments: 4, .. }));
/// # Ok::<(), InterleavingsError>(())
/// ```
pub const MAX_INTERLEAVINGS: u64 = 1_000_000;

/// List every schedule when there are at most this many…
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, LIST_ALL_UP_TO};
///
/// // Two workers, one increment each: 20 schedules, few enough to list them all.
/// let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
/// let report = interleavings::run(&config)?;
/// assert!(report.interleavings <= LIST_ALL_UP_TO as u64);
/// assert_eq!((report.schedules.len(), report.schedules_truncated), (20, false));
/// assert_eq!(report.schedules[0].schedule.letters(), "AAABBB"); // alphabetical
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
pub const LIST_ALL_UP_TO: usize = 30;

/// …and otherwise only the first this many (the histogram has an example of
/// every final value).
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, LISTED_WHEN_MANY};
///
/// // Two workers, two increments each: 924 schedules, only the first few listed...
/// let config = InterleavingsConfig { workers: 2, increments: 2, schedule: None };
/// let report = interleavings::run(&config)?;
/// assert_eq!(report.schedules.len(), LISTED_WHEN_MANY);
/// // ...but every final value, 2 to 4, keeps an example schedule.
/// let finals: Vec<i64> = report.final_values.iter().map(|f| f.value).collect();
/// assert_eq!(finals, [2, 3, 4]);
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
pub const LISTED_WHEN_MANY: usize = 10;

/// The steps of one increment, in the order each worker takes them.
///
/// ```
/// use shmlab::lessons::interleavings::{Op, STEPS, Schedule};
///
/// // Whatever the interleaving, each worker takes its own steps in this order.
/// let trace = Schedule::parse("ABBABA", 2, 1)?.trace();
/// let b: Vec<Op> = trace.iter().filter(|s| s.worker == 'B').map(|s| s.op).collect();
/// assert_eq!(b, STEPS);
/// # Ok::<(), shmlab::lessons::interleavings::InterleavingsError>(())
/// ```
pub const STEPS: [Op; 3] = [Op::Load, Op::Add, Op::Store];

/// The loom command that checks the racy increment on shmlab's real code.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, LOOM_COMMAND, LOOM_TEST};
/// use shmlab::report::Report;
///
/// // Its test-name filter, the last word before ` -- `, selects the test that
/// // finds the lost update.
/// let (cargo, _) = LOOM_COMMAND.split_once(" -- ").expect("libtest options follow");
/// let filter = cargo.rsplit(' ').next().expect("a filter");
/// assert!(LOOM_TEST.contains(filter));
/// // Lab 07's report ends by showing it.
/// let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
/// assert!(interleavings::run(&config)?.render().contains(LOOM_COMMAND));
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
pub const LOOM_COMMAND: &str = "RUSTFLAGS=\"--cfg loom\" cargo test --release -p shmlab-loom --target-dir target/loom --test race racy -- --nocapture";

/// The loom test that finds the lost update (`loom/tests/race.rs`).
///
/// ```
/// use shmlab::lessons::interleavings::LOOM_TEST;
///
/// let suite = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/loom/tests/race.rs"))?;
/// let test = suite.find(&format!("fn {LOOM_TEST}()")).expect("the test is in the suite");
/// // A test that passes when loom finds the bug.
/// assert!(suite[..test].trim_end().ends_with("#[should_panic(expected = \"lost update\")]"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const LOOM_TEST: &str = "racy_increment_loses_an_update";

/// What that test's panic says when loom finds the lost update; the test is
/// `#[should_panic]`, so it then passes.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, LOOM_PANIC};
/// use shmlab::report::Report;
///
/// let suite = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/loom/tests/race.rs"))?;
/// let (_, rest) = suite.split_once("#[should_panic(expected = \"").expect("a should_panic test");
/// let expected = &rest[..rest.find('"').expect("the closing quote")];
/// assert!(LOOM_PANIC.starts_with(expected)); // so the test passes on this panic
/// // Lab 07 tells the learner what to look for.
/// let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
/// let text = interleavings::run(&config)?.render();
/// assert!(text.contains(&format!("expect the panic \"{LOOM_PANIC}\"")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const LOOM_PANIC: &str = "lost update: two increments made 1";

/// The loom test that proves the locked increment loses nothing.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, LOOM_LOCKED_TEST};
///
/// let suite = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/loom/tests/race.rs"))?;
/// assert!(suite.contains(&format!("fn {LOOM_LOCKED_TEST}()")));
/// // Lab 07's JSON points to it.
/// let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
/// let json = serde_json::to_value(interleavings::run(&config)?)?;
/// assert_eq!(json["loom"]["locked_test"], LOOM_LOCKED_TEST);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const LOOM_LOCKED_TEST: &str = "locked_increment_two_threads_loses_nothing";

/// The command that runs it.
///
/// ```
/// use shmlab::lessons::interleavings::{LOOM_LOCKED_COMMAND, LOOM_LOCKED_TEST, LOOM_TEST};
///
/// // Its last word filters the tests: the two-thread locked proof, not the racy one.
/// let filter = LOOM_LOCKED_COMMAND.rsplit(' ').next().expect("a filter");
/// assert!(LOOM_LOCKED_TEST.starts_with(filter) && !LOOM_TEST.contains(filter));
/// assert!(LOOM_LOCKED_COMMAND.starts_with("RUSTFLAGS=\"--cfg loom\" cargo test --release"));
/// ```
pub const LOOM_LOCKED_COMMAND: &str = "RUSTFLAGS=\"--cfg loom\" cargo test --release -p shmlab-loom --target-dir target/loom --test race locked_increment_two_threads";

/// One step of the racy increment.
///
/// ```
/// use shmlab::lessons::interleavings::{Op, Schedule};
///
/// // A worker's third step is always its store.
/// let trace = Schedule::parse("AAABBB", 2, 1)?.trace();
/// assert_eq!(trace[2].op, Op::Store);
/// assert_eq!(serde_json::to_string(&trace[2].op)?, "\"store\"");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Copy the counter into the worker's register.
    Load,
    /// Add 1 to the register.
    Add,
    /// Write the register back to the counter.
    Store,
}

impl Op {
    /// `load`, `add` or `store`.
    ///
    /// ```
    /// use shmlab::lessons::interleavings::STEPS;
    ///
    /// let names: Vec<&str> = STEPS.iter().map(|op| op.name()).collect();
    /// assert_eq!(names, ["load", "add", "store"]);
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Op::Load => "load",
            Op::Add => "add",
            Op::Store => "store",
        }
    }
}

/// Why a configuration or a `--schedule` was refused.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, InterleavingsError};
///
/// // Three workers with two increments each: 17 153 136 interleavings.
/// let config = InterleavingsConfig { workers: 3, increments: 2, schedule: None };
/// let err = interleavings::run(&config).unwrap_err();
/// assert!(matches!(&err, InterleavingsError::TooMany { count, .. } if count == "17153136"));
/// assert!(err.to_string().contains("lower --workers or --increments"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterleavingsError {
    /// Not 1 to [`MAX_WORKERS`] workers.
    #[error("1 to {MAX_WORKERS} workers, named A to D (got {0})")]
    Workers(usize),
    /// More than [`MAX_INTERLEAVINGS`] interleavings.
    #[error(
        "{workers} workers x {increments} increments have {count} interleavings, more than the {MAX_INTERLEAVINGS} this lab enumerates: lower --workers or --increments"
    )]
    TooMany {
        /// Workers asked for.
        workers: usize,
        /// Increments per worker asked for.
        increments: u64,
        /// How many interleavings that is, in words if it overflows.
        count: String,
    },
    /// The schedule has no steps.
    #[error("--schedule is empty: give one letter per step, e.g. AABABB")]
    EmptySchedule,
    /// A letter that names no worker.
    #[error(
        "--schedule: `{letter}` is not a worker; with {workers} workers the letters are {letters}"
    )]
    UnknownWorker {
        /// The offending character.
        letter: char,
        /// Workers asked for.
        workers: usize,
        /// The valid letters, e.g. `A, B`.
        letters: String,
    },
    /// A worker that takes the wrong number of steps.
    #[error(
        "--schedule: worker {worker} appears {appears} times, but each worker takes exactly {expected} steps (load, add, store for each of its {increments} increment(s))"
    )]
    WrongStepCount {
        /// The worker's letter.
        worker: char,
        /// How often it appears.
        appears: usize,
        /// 3 × increments.
        expected: u64,
        /// Increments per worker.
        increments: u64,
    },
}

/// Options of lab 07.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig};
///
/// let config = InterleavingsConfig { workers: 3, increments: 1, schedule: None };
/// let report = interleavings::run(&config)?;
/// // 9! / (3!)^3 orders of the nine steps; 3! of them run whole increments.
/// assert_eq!((report.interleavings, report.exact_interleavings), (1680, 6));
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct InterleavingsConfig {
    /// Workers, 1 to [`MAX_WORKERS`].
    pub workers: usize,
    /// Increments per worker (three steps each).
    pub increments: u64,
    /// One interleaving to replay step by step, as worker letters.
    pub schedule: Option<String>,
}

impl InterleavingsConfig {
    /// A replay of `schedule`, with the workers and increments that were not
    /// given read off its letters: as many workers as the last letter names
    /// (`C` → 3), and a third as many increments as worker `A` has steps.
    /// A schedule that fits no size is left for [`run`] to reject with a
    /// precise error.
    ///
    /// ```
    /// use shmlab::lessons::interleavings::{self, InterleavingsConfig};
    ///
    /// let config = InterleavingsConfig::replay("AAAAABBBBBBA".into(), None, None);
    /// assert_eq!((config.workers, config.increments), (2, 2));
    /// let report = interleavings::run(&config)?;
    /// let replay = report.replay.expect("a replay");
    /// // A's last store writes back the 2 it computed before B ran: B's two
    /// // updates are lost.
    /// assert_eq!((replay.outcome.final_value, replay.outcome.lost), (2, 2));
    /// # Ok::<(), interleavings::InterleavingsError>(())
    /// ```
    pub fn replay(schedule: String, workers: Option<usize>, increments: Option<u64>) -> Self {
        // Letters as `run` reads them: case does not matter, other
        // characters are left for it to accept or reject.
        let letters = || {
            schedule
                .chars()
                .map(|c| c.to_ascii_uppercase())
                .filter(char::is_ascii_uppercase)
        };
        let named = letters()
            .map(|c| usize::from(c as u8 - b'A') + 1)
            .max()
            .filter(|&w| w <= MAX_WORKERS);
        let a_steps = letters().filter(|&c| c == 'A').count() as u64;
        let read_off = (a_steps > 0 && a_steps % 3 == 0).then_some(a_steps / 3);
        InterleavingsConfig {
            workers: workers.or(named).unwrap_or(2),
            increments: increments.or(read_off).unwrap_or(1),
            schedule: Some(schedule),
        }
    }
}

/// The letter of worker `index` (< [`MAX_WORKERS`]): 0 is `A`.
fn letter(index: usize) -> char {
    char::from(b'A' + index as u8)
}

/// Checks a worker count: 1 to [`MAX_WORKERS`].
pub(crate) fn check_workers(workers: usize) -> Result<(), InterleavingsError> {
    if (1..=MAX_WORKERS).contains(&workers) {
        Ok(())
    } else {
        Err(InterleavingsError::Workers(workers))
    }
}

/// C(n, k), or `None` if it does not fit in a `u128`.
fn binomial(n: u128, k: u128) -> Option<u128> {
    // After step i, `c` is C(n - k + i, i): a whole number at every step.
    (1..=k).try_fold(1u128, |c, i| Some(c.checked_mul(n - k + i)? / i))
}

/// The ways to arrange `groups` kinds of item, `size` of each, in one row:
/// (groups × size)! / (size!)^groups, or `None` beyond `u128`.
fn arrangements(groups: usize, size: u64) -> Option<u128> {
    (1..=groups as u128).try_fold(1u128, |ways, g| {
        // Place the g-th kind's items among the first g × size positions.
        ways.checked_mul(binomial(g * size as u128, size as u128)?)
    })
}

/// How many interleavings `workers` workers of `increments` increments have:
/// (3WK)! / ((3K)!)^W, or `None` if that does not fit in a `u128`.
///
/// ```
/// use shmlab::lessons::interleavings::interleaving_count;
///
/// assert_eq!(interleaving_count(2, 1), Some(20)); // 6! / (3! 3!)
/// assert_eq!(interleaving_count(3, 2), Some(17_153_136));
/// assert_eq!(interleaving_count(4, 100), None); // far beyond 2^128
/// ```
pub fn interleaving_count(workers: usize, increments: u64) -> Option<u128> {
    arrangements(workers, STEPS.len() as u64 * increments)
}

/// How many interleavings lose nothing: those that run every increment's
/// load-add-store as one block, so (WK)! / (K!)^W orders of whole blocks.
///
/// Why only those: if two increments' load..store windows overlap, one of
/// them stores inside the other's window, and the other's store then writes
/// back a value that misses it.
///
/// ```
/// use shmlab::lessons::interleavings::{exact_count, interleaving_count};
///
/// assert_eq!(exact_count(2, 1), Some(2)); // A's increment first, or B's
/// assert_eq!(exact_count(3, 1), Some(6));
/// // Two workers, two increments each: 6 of 924 interleavings lose nothing.
/// assert_eq!((exact_count(2, 2), interleaving_count(2, 2)), (Some(6), Some(924)));
/// ```
pub fn exact_count(workers: usize, increments: u64) -> Option<u128> {
    arrangements(workers, increments)
}

/// Checks that `workers` × `increments` is small enough to enumerate and
/// returns the number of interleavings.
fn check_size(workers: usize, increments: u64) -> Result<u64, InterleavingsError> {
    check_workers(workers)?;
    match interleaving_count(workers, increments) {
        Some(n) if n <= u128::from(MAX_INTERLEAVINGS) => Ok(n as u64),
        count => Err(InterleavingsError::TooMany {
            workers,
            increments,
            count: count.map_or_else(|| "more than 10^38".to_string(), |n| n.to_string()),
        }),
    }
}

/// One interleaving: which worker (0 = `A`) takes each step, in order.
/// Shown and serialized as letters, e.g. `AABABB`.
///
/// ```
/// use shmlab::lessons::interleavings::Schedule;
///
/// let schedule = Schedule::parse("aab abb", 2, 1)?;
/// assert_eq!(schedule.to_string(), "AABABB");
/// assert_eq!(serde_json::to_string(&schedule)?, "\"AABABB\"");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(Vec<u8>);

impl Schedule {
    /// Parses worker letters (either case; spaces and `_` are ignored) and
    /// checks that each of `workers` workers takes exactly 3 × `increments`
    /// steps.
    ///
    /// ```
    /// use shmlab::lessons::interleavings::{InterleavingsError, Schedule};
    ///
    /// assert!(Schedule::parse("AABABB", 2, 1).is_ok());
    /// assert!(matches!(
    ///     Schedule::parse("AABABC", 2, 1),
    ///     Err(InterleavingsError::UnknownWorker { letter: 'C', .. })
    /// ));
    /// assert!(matches!(
    ///     Schedule::parse("AABAB", 2, 1),
    ///     Err(InterleavingsError::WrongStepCount { worker: 'B', appears: 2, .. })
    /// ));
    /// ```
    pub fn parse(spec: &str, workers: usize, increments: u64) -> Result<Self, InterleavingsError> {
        check_workers(workers)?;
        let letters = || {
            (0..workers)
                .map(|w| letter(w).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut steps = Vec::new();
        for c in spec.chars().filter(|c| !c.is_whitespace() && *c != '_') {
            let index = (c.to_ascii_uppercase() as usize).wrapping_sub('A' as usize);
            if index >= workers {
                return Err(InterleavingsError::UnknownWorker {
                    letter: c,
                    workers,
                    letters: letters(),
                });
            }
            steps.push(index as u8);
        }
        if steps.is_empty() {
            return Err(InterleavingsError::EmptySchedule);
        }
        let expected = STEPS.len() as u64 * increments;
        for w in 0..workers {
            let appears = steps.iter().filter(|&&s| usize::from(s) == w).count();
            if appears as u64 != expected {
                return Err(InterleavingsError::WrongStepCount {
                    worker: letter(w),
                    appears,
                    expected,
                    increments,
                });
            }
        }
        Ok(Schedule(steps))
    }

    /// The workers' letters, one per step: `AABABB`.
    ///
    /// ```
    /// use shmlab::lessons::interleavings::Schedule;
    ///
    /// let schedule = Schedule::parse("a_a b_a b_b", 2, 1)?;
    /// assert_eq!(schedule.letters(), "AABABB");
    /// # Ok::<(), shmlab::lessons::interleavings::InterleavingsError>(())
    /// ```
    pub fn letters(&self) -> String {
        self.0.iter().map(|&w| letter(w.into())).collect()
    }

    /// Every step spelled out: `A.load A.add B.load A.store B.add B.store`.
    ///
    /// ```
    /// use shmlab::lessons::interleavings::Schedule;
    ///
    /// let schedule = Schedule::parse("ABABAB", 2, 1)?;
    /// assert_eq!(schedule.steps(), "A.load B.load A.add B.add A.store B.store");
    /// # Ok::<(), shmlab::lessons::interleavings::InterleavingsError>(())
    /// ```
    pub fn steps(&self) -> String {
        let named: Vec<String> = self
            .trace()
            .iter()
            .map(|s| format!("{}.{}", s.worker, s.op.name()))
            .collect();
        named.join(" ")
    }

    /// Runs the schedule from a counter of 0 and returns every step.
    ///
    /// ```
    /// use shmlab::lessons::interleavings::Schedule;
    ///
    /// // Both workers load 0, so both store 1: one update is lost.
    /// let trace = Schedule::parse("ABABAB", 2, 1)?.trace();
    /// let counters: Vec<i64> = trace.iter().map(|step| step.counter).collect();
    /// assert_eq!(counters, [0, 0, 0, 0, 1, 1]);
    /// assert_eq!(trace[5].overwritten, 1); // B's store wrote over A's
    /// # Ok::<(), shmlab::lessons::interleavings::InterleavingsError>(())
    /// ```
    pub fn trace(&self) -> Vec<TraceStep> {
        // Every worker appears in a valid schedule, so the highest letter
        // says how many there are.
        let workers = self.0.iter().max().map_or(0, |&w| usize::from(w) + 1);
        let mut machine = Machine::default();
        self.0
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let done = machine.step(w.into());
                TraceStep {
                    step: i + 1,
                    worker: letter(w.into()),
                    op: done.op,
                    counter: machine.counter,
                    registers: machine.registers[..workers].to_vec(),
                    overwritten: done.overwritten,
                }
            })
            .collect()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.letters())
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.letters())
    }
}

/// The counter and every worker's register and progress: small and `Copy`,
/// so the enumeration branches by copying it.
#[derive(Debug, Clone, Copy, Default)]
struct Machine {
    counter: i64,
    /// `None` until the worker's first load.
    registers: [Option<i64>; MAX_WORKERS],
    /// Steps each worker has taken.
    taken: [u64; MAX_WORKERS],
}

/// What one step did.
struct Done {
    op: Op,
    /// See [`TraceStep::overwritten`].
    overwritten: i64,
}

impl Machine {
    /// Worker `w` takes its next step.
    fn step(&mut self, w: usize) -> Done {
        let op = STEPS[(self.taken[w] % STEPS.len() as u64) as usize];
        self.taken[w] += 1;
        let register = &mut self.registers[w];
        let mut overwritten = 0;
        match op {
            Op::Load => *register = Some(self.counter),
            Op::Add => *register = register.map(|r| r + 1),
            Op::Store => {
                let value = register.unwrap_or_default();
                // The register holds what this worker loaded, plus 1; every
                // store since that load is about to be written over.
                overwritten = self.counter - (value - 1);
                self.counter = value;
            }
        }
        Done { op, overwritten }
    }
}

/// Calls `visit` with every interleaving (in alphabetical order) and the
/// counter it ends with. Recursion depth is the schedule length (≤ 3WK).
fn explore(
    machine: Machine,
    steps_each: u64,
    workers: usize,
    path: &mut Vec<u8>,
    visit: &mut impl FnMut(&[u8], i64),
) {
    let mut anyone_left = false;
    for w in 0..workers {
        if machine.taken[w] < steps_each {
            anyone_left = true;
            let mut next = machine;
            next.step(w);
            path.push(w as u8);
            explore(next, steps_each, workers, path, visit);
            path.pop();
        }
    }
    if !anyone_left {
        visit(path, machine.counter);
    }
}

/// One interleaving and how it ended.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig};
///
/// let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
/// let report = interleavings::run(&config)?;
/// // Alphabetically first: A runs its whole increment, then B does.
/// let first = &report.schedules[0];
/// assert_eq!(first.schedule.letters(), "AAABBB");
/// assert_eq!((first.final_value, first.lost), (2, 0));
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleOutcome {
    /// The interleaving, as worker letters.
    pub schedule: Schedule,
    /// The counter at the end.
    #[serde(rename = "final")]
    pub final_value: i64,
    /// workers × increments − final.
    pub lost: i64,
}

impl ScheduleOutcome {
    fn new(schedule: Schedule, final_value: i64, expected: i64) -> Self {
        ScheduleOutcome {
            schedule,
            final_value,
            lost: expected - final_value,
        }
    }
}

/// One bar of the histogram of final values.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig};
///
/// let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
/// let report = interleavings::run(&config)?;
/// let bars: Vec<(i64, u64, String)> = report
///     .final_values
///     .iter()
///     .map(|bar| (bar.value, bar.interleavings, bar.example.letters()))
///     .collect();
/// assert_eq!(bars, [(1, 18, "AABABB".to_string()), (2, 2, "AAABBB".to_string())]);
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct FinalValue {
    /// The counter at the end.
    #[serde(rename = "final")]
    pub value: i64,
    /// workers × increments − final.
    pub lost: i64,
    /// How many interleavings end with it.
    pub interleavings: u64,
    /// The first of them, alphabetically.
    pub example: Schedule,
}

/// One step of a replayed schedule, and the state after it.
///
/// ```
/// use shmlab::lessons::interleavings::{Op, Schedule};
///
/// let trace = Schedule::parse("AABABB", 2, 1)?.trace();
/// let step = &trace[2]; // B loads 0 while A holds 1 in its register
/// assert_eq!((step.step, step.worker, step.op), (3, 'B', Op::Load));
/// assert_eq!((step.counter, step.registers.clone()), (0, vec![Some(1), Some(0)]));
/// # Ok::<(), shmlab::lessons::interleavings::InterleavingsError>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct TraceStep {
    /// 1, 2, …
    pub step: usize,
    /// The worker that took it.
    pub worker: char,
    /// What it did.
    pub op: Op,
    /// The counter after the step.
    pub counter: i64,
    /// Every worker's register after the step (`null` before its first load).
    pub registers: Vec<Option<i64>>,
    /// For a store: how many increments it wrote over (the other workers'
    /// stores since this worker's load). Negative if it brought back ones a
    /// staler store had written over. 0 for load and add.
    pub overwritten: i64,
}

/// `--schedule`, replayed.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig};
///
/// let schedule = Some("AABABB".to_string());
/// let report = interleavings::run(&InterleavingsConfig { workers: 2, increments: 1, schedule })?;
/// let replay = report.replay.expect("a schedule was given");
/// assert_eq!((replay.outcome.final_value, replay.outcome.lost), (1, 1));
/// assert_eq!(replay.trace.len(), 6);
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// `schedule`, `final` and `lost`, as in the list of schedules.
    #[serde(flatten)]
    pub outcome: ScheduleOutcome,
    /// Every step and the state after it.
    pub trace: Vec<TraceStep>,
}

/// Where loom checks the same race on shmlab's real code.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, LOOM_TEST};
///
/// let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
/// let loom = interleavings::run(&config)?.loom;
/// assert_eq!(loom.test, LOOM_TEST);
/// assert!(loom.command.contains("--cfg loom") && loom.command.contains("--test race"));
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct LoomPointer {
    /// The command that runs the test, showing its panic.
    pub command: &'static str,
    /// The test: loom finds a schedule that loses an update.
    pub test: &'static str,
    /// The panic message the test expects (it is `#[should_panic]`).
    pub panic: &'static str,
    /// The test that proves the locked increment loses nothing.
    pub locked_test: &'static str,
    /// The command that runs it.
    pub locked_command: &'static str,
}

impl LoomPointer {
    /// The pointer to `loom/tests/race.rs`.
    fn counter_tests() -> Self {
        LoomPointer {
            command: LOOM_COMMAND,
            test: LOOM_TEST,
            panic: LOOM_PANIC,
            locked_test: LOOM_LOCKED_TEST,
            locked_command: LOOM_LOCKED_COMMAND,
        }
    }
}

/// The JSON of lab 07: `lab`, `ok`, `verdict`, `workers`, `increments`,
/// `expected`, `interleavings`, `exact_interleavings`,
/// `lost_update_interleavings`, `final_values: [{final, lost,
/// interleavings, example}]`, `schedules: [{schedule, final, lost}]` (all of
/// them up to [`LIST_ALL_UP_TO`], else the first [`LISTED_WHEN_MANY`]),
/// `schedules_truncated`, `replay` (with `--schedule`: `{schedule, final,
/// lost, trace: [{step, worker, op, counter, registers, overwritten}]}`) and
/// `loom: {command, test, panic, locked_test, locked_command}`.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig, LISTED_WHEN_MANY};
///
/// let config = InterleavingsConfig { workers: 3, increments: 1, schedule: None };
/// let report = interleavings::run(&config)?;
/// // 1680 interleavings: only the first few are listed.
/// assert!(report.schedules_truncated);
/// assert_eq!(report.schedules.len(), LISTED_WHEN_MANY);
/// let json = serde_json::to_value(&report)?;
/// assert_eq!(json["lost_update_interleavings"], 1674);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Serialize)]
pub struct InterleavingsReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Workers.
    pub workers: usize,
    /// Increments per worker.
    pub increments: u64,
    /// workers × increments: the final value when nothing is lost.
    pub expected: i64,
    /// Every interleaving of the workers' steps.
    pub interleavings: u64,
    /// Those that end at `expected`.
    pub exact_interleavings: u64,
    /// Those that end below it.
    pub lost_update_interleavings: u64,
    /// How many interleavings end at each final value, lowest first.
    pub final_values: Vec<FinalValue>,
    /// The listed interleavings, alphabetically.
    pub schedules: Vec<ScheduleOutcome>,
    /// Whether `schedules` leaves some out.
    pub schedules_truncated: bool,
    /// The `--schedule` replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
    /// The loom test that does the same on shmlab's real code.
    pub loom: LoomPointer,
}

/// Enumerates and simulates every interleaving, and replays
/// `config.schedule` if given. Fails only on options out of range.
///
/// ```
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig};
/// use shmlab::report::Report;
///
/// let config = InterleavingsConfig { workers: 2, increments: 2, schedule: None };
/// let report = interleavings::run(&config)?;
/// assert!(report.ok()); // the enumeration matched both formulas
/// assert_eq!(report.expected, 4);
/// assert_eq!(report.lost_update_interleavings, 918);
/// # Ok::<(), interleavings::InterleavingsError>(())
/// ```
pub fn run(config: &InterleavingsConfig) -> Result<InterleavingsReport, InterleavingsError> {
    let (workers, increments) = (config.workers, config.increments);
    let total = check_size(workers, increments)?;
    let replay = match &config.schedule {
        Some(spec) => Some(Schedule::parse(spec, workers, increments)?),
        None => None,
    };
    let expected = (workers as u64 * increments) as i64;
    let listed = if total as usize <= LIST_ALL_UP_TO {
        LIST_ALL_UP_TO
    } else {
        LISTED_WHEN_MANY
    };

    let mut schedules = Vec::new();
    let mut histogram: BTreeMap<i64, (u64, Schedule)> = BTreeMap::new();
    let mut path = Vec::with_capacity(workers * STEPS.len() * increments as usize);
    explore(
        Machine::default(),
        STEPS.len() as u64 * increments,
        workers,
        &mut path,
        &mut |steps, final_value| {
            if schedules.len() < listed {
                schedules.push(ScheduleOutcome::new(
                    Schedule(steps.to_vec()),
                    final_value,
                    expected,
                ));
            }
            histogram
                .entry(final_value)
                .or_insert_with(|| (0, Schedule(steps.to_vec())))
                .0 += 1;
        },
    );

    let final_values: Vec<FinalValue> = histogram
        .into_iter()
        .map(|(value, (interleavings, example))| FinalValue {
            value,
            lost: expected - value,
            interleavings,
            example,
        })
        .collect();
    let enumerated: u64 = final_values.iter().map(|f| f.interleavings).sum();
    let exact = final_values
        .iter()
        .filter(|f| f.lost == 0)
        .map(|f| f.interleavings)
        .sum();
    let replay = replay.map(|schedule| {
        let trace = schedule.trace();
        let final_value = trace.last().map_or(0, |s| s.counter);
        Replay {
            outcome: ScheduleOutcome::new(schedule, final_value, expected),
            trace,
        }
    });

    // The enumeration checks itself against the two formulas: a mismatch is
    // a bug in this module, not a lesson.
    let ok = enumerated == total && exact_count(workers, increments) == Some(u128::from(exact));
    let mut report = InterleavingsReport {
        outcome: Outcome {
            lab: "lab07-interleavings",
            ok,
            verdict: String::new(),
        },
        workers,
        increments,
        expected,
        interleavings: enumerated,
        exact_interleavings: exact,
        lost_update_interleavings: enumerated - exact,
        schedules_truncated: (schedules.len() as u64) < enumerated,
        final_values,
        schedules,
        replay,
        loom: LoomPointer::counter_tests(),
    };
    report.outcome.verdict = verdict(&report);
    Ok(report)
}

/// `n thing` or `n things`.
fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// `final 1`, `final 1 or 2`, `final 2 to 5`.
fn final_range(values: &[i64]) -> String {
    match (values.first(), values.last()) {
        (Some(lo), Some(hi)) if lo == hi => format!("final {lo}"),
        (Some(lo), Some(hi)) if hi - lo == 1 => format!("final {lo} or {hi}"),
        (Some(lo), Some(hi)) => format!("final {lo} to {hi}"),
        _ => String::new(),
    }
}

/// One line: the replay's result, if any, then what the enumeration found.
fn verdict(r: &InterleavingsReport) -> String {
    let mut out = String::new();
    if let Some(replay) = &r.replay {
        let o = &replay.outcome;
        out += &format!(
            "{} ends at {} of {} ({}). ",
            o.schedule,
            o.final_value,
            r.expected,
            if o.lost == 0 {
                "nothing lost".to_string()
            } else {
                format!("lost {}", o.lost)
            }
        );
    }
    out += &format!(
        "{} x {}: {}",
        plural(r.workers as u64, "worker"),
        plural(r.increments, "increment"),
        plural(r.interleavings, "interleaving"),
    );
    let lossy: Vec<i64> = r
        .final_values
        .iter()
        .filter(|f| f.lost > 0)
        .map(|f| f.value)
        .collect();
    out += &if r.workers == 1 {
        format!(
            ", none loses an update (final {}): with one worker there is nobody to race",
            r.expected
        )
    } else {
        let other = if r.workers == 2 {
            "the other worker's"
        } else {
            "another worker's"
        };
        format!(
            ", {} lose an update ({}); only the {} that run each load-add-store without {other} steps in between give {}",
            r.lost_update_interleavings,
            final_range(&lossy),
            r.exact_interleavings,
            r.expected
        )
    };
    if r.ok() {
        out + "."
    } else {
        out + " — BUT the enumeration disagrees with the formulas (3WK)!/((3K)!)^W and (WK)!/(K!)^W: a bug in shmlab."
    }
}

impl Report for InterleavingsReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let names: Vec<String> = (0..self.workers).map(|w| letter(w).to_string()).collect();
        let mut out = format!(
            "{} ({}) x {} on one counter from 0 (expected {})\n\
             each increment is racy_increment's store(load() + 1) in 3 steps on the worker's register:\n\
             load (register = counter), add (register + 1), store (counter = register)\n\n",
            plural(self.workers as u64, "worker"),
            names.join(", "),
            plural(self.increments, "increment"),
            self.expected
        );
        out += &if self.schedules_truncated {
            format!(
                "{} interleavings; the first {} (replay any with --schedule):\n",
                self.interleavings,
                self.schedules.len()
            )
        } else {
            format!("all {}:\n", plural(self.interleavings, "interleaving"))
        };
        for s in &self.schedules {
            out += &format!(
                "  {}  {} -> {}{}\n",
                s.schedule,
                s.schedule.steps(),
                s.final_value,
                if s.lost > 0 {
                    format!(" (lost {})", s.lost)
                } else {
                    String::new()
                }
            );
        }
        if self.schedules_truncated {
            out += "  ...\n";
        }

        out += &format!(
            "\n{:>7} {:>6} {:>14}  example\n",
            "final", "lost", "interleavings"
        );
        for f in &self.final_values {
            out += &format!(
                "{:>7} {:>6} {:>14}  {}\n",
                f.value, f.lost, f.interleavings, f.example
            );
        }

        if let Some(replay) = &self.replay {
            out += &render_replay(replay, &names, self.expected);
        }

        out += &format!(
            "\nloom runs shmlab's real racy_increment in every interleaving of its load and store\n(and, unlike this model, lets a load read an older value):\n  {}\n  expect the panic \"{}\", then `test {} - should panic ... ok`\n  and the lock's proof: {}\n\n",
            self.loom.command, self.loom.panic, self.loom.test, self.loom.locked_command
        );
        out
    }
}

/// The step-by-step table of a replay.
fn render_replay(replay: &Replay, names: &[String], expected: i64) -> String {
    let mut out = format!("\nreplay of {}:\n", replay.outcome.schedule);
    out += &format!("{:>6}  {:<8} {:>7}", "step", "op", "counter");
    for name in names {
        out += &format!(" {:>5}", format!("{name}.reg"));
    }
    out += "\n";
    for s in &replay.trace {
        out += &format!(
            "{:>6}  {:<8} {:>7}",
            s.step,
            format!("{}.{}", s.worker, s.op.name()),
            s.counter
        );
        for r in &s.registers {
            out += &format!(" {:>5}", r.map_or("-".to_string(), |v| v.to_string()));
        }
        if s.overwritten > 0 {
            out += &format!(
                "   overwrites {} (stored since {} loaded)",
                plural(s.overwritten as u64, "increment"),
                s.worker
            );
        } else if s.overwritten < 0 {
            out += &format!(
                "   brings back {} a staler store had overwritten",
                plural(s.overwritten.unsigned_abs(), "increment")
            );
        }
        out += "\n";
    }
    out + &format!(
        "  -> final {} of {expected} (lost {})\n",
        replay.outcome.final_value, replay.outcome.lost
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enumerates `workers` x `increments` and checks the report against
    /// `histogram`: (final value, interleavings) pairs, lowest first. The
    /// histograms below were also counted by an independent brute force over
    /// every distinct permutation of the step letters (Python `itertools`).
    fn enumerate(workers: usize, increments: u64, histogram: &[(i64, u64)]) -> InterleavingsReport {
        let r = run(&InterleavingsConfig {
            workers,
            increments,
            schedule: None,
        })
        .expect("a small configuration");
        assert!(r.ok(), "{}", r.verdict());
        let bars: Vec<(i64, u64)> = r
            .final_values
            .iter()
            .map(|f| (f.value, f.interleavings))
            .collect();
        assert_eq!(bars, histogram);
        let total: u64 = histogram.iter().map(|&(_, n)| n).sum();
        let exact = histogram.last().map_or(0, |&(_, n)| n);
        assert_eq!(
            (
                r.interleavings,
                r.exact_interleavings,
                r.lost_update_interleavings
            ),
            (total, exact, total - exact)
        );
        r
    }

    #[test]
    fn two_workers_one_increment_have_20_interleavings_and_2_exact() {
        // C(6, 3) = 20; only AAABBB and BBBAAA keep both updates.
        let r = enumerate(2, 1, &[(1, 18), (2, 2)]);
        // Few enough to list them all, in alphabetical order.
        assert!(!r.schedules_truncated);
        assert_eq!(r.schedules.len(), 20);
        let exact: Vec<String> = r
            .schedules
            .iter()
            .filter(|s| s.lost == 0)
            .map(|s| s.schedule.letters())
            .collect();
        assert_eq!(exact, ["AAABBB", "BBBAAA"]);
        assert_eq!(r.schedules[19].schedule.letters(), "BBBAAA");
        assert!(
            r.verdict()
                .starts_with("2 workers x 1 increment: 20 interleavings, 18 lose an update (final 1); only the 2 "),
            "{}",
            r.verdict()
        );
    }

    #[test]
    fn three_workers_one_increment() {
        // 9! / (3!)^3 = 1680; 3! orders of whole increments are exact.
        let r = enumerate(3, 1, &[(1, 1404), (2, 270), (3, 6)]);
        assert!(r.schedules_truncated);
        assert_eq!(r.schedules.len(), LISTED_WHEN_MANY);
    }

    #[test]
    fn two_workers_two_increments_can_end_at_2() {
        // C(12, 6) = 924; 4! / (2! 2!) = 6 orders of whole increments.
        let r = enumerate(2, 2, &[(2, 702), (3, 216), (4, 6)]);
        // A loads 1 and adds; B counts 1 to 3; A's store writes back 2.
        assert_eq!(r.final_values[0].example.letters(), "AAAAABBBBBBA");
    }

    #[test]
    fn one_worker_has_one_interleaving_and_loses_nothing() {
        let r = enumerate(1, 3, &[(3, 1)]);
        assert!(r.verdict().contains("nobody to race"), "{}", r.verdict());
    }

    #[test]
    fn counts_match_the_formulas() {
        assert_eq!(interleaving_count(2, 1), Some(20));
        assert_eq!(interleaving_count(3, 1), Some(1680));
        assert_eq!(interleaving_count(4, 1), Some(369_600));
        assert_eq!(interleaving_count(2, 3), Some(48_620));
        assert_eq!(interleaving_count(2, 4), Some(2_704_156));
        assert_eq!(exact_count(2, 2), Some(6));
        assert_eq!(interleaving_count(4, 1000), None, "beyond u128");
    }

    #[test]
    fn too_many_interleavings_are_refused() {
        assert!(check_size(4, 1).is_ok());
        assert!(matches!(
            check_size(2, 4),
            Err(InterleavingsError::TooMany { ref count, .. }) if count == "2704156"
        ));
        assert!(matches!(
            check_size(3, 1000),
            Err(InterleavingsError::TooMany { ref count, .. }) if count == "more than 10^38"
        ));
        assert_eq!(check_size(0, 1), Err(InterleavingsError::Workers(0)));
        assert_eq!(check_size(9, 1), Err(InterleavingsError::Workers(9)));
    }

    #[test]
    fn replay_traces_counter_and_registers() {
        let r = run(&InterleavingsConfig {
            workers: 2,
            increments: 1,
            schedule: Some("aab abb".to_string()),
        })
        .expect("a valid schedule");
        let replay = r.replay.expect("replayed");
        let outcome = &replay.outcome;
        assert_eq!(outcome.schedule.letters(), "AABABB");
        assert_eq!(
            outcome.schedule.steps(),
            "A.load A.add B.load A.store B.add B.store"
        );
        assert_eq!((outcome.final_value, outcome.lost), (1, 1));
        let states: Vec<_> = replay
            .trace
            .iter()
            .map(|s| {
                (
                    s.worker,
                    s.op,
                    s.counter,
                    s.registers.clone(),
                    s.overwritten,
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ('A', Op::Load, 0, vec![Some(0), None], 0),
                ('A', Op::Add, 0, vec![Some(1), None], 0),
                ('B', Op::Load, 0, vec![Some(1), Some(0)], 0),
                ('A', Op::Store, 1, vec![Some(1), Some(0)], 0),
                ('B', Op::Add, 1, vec![Some(1), Some(1)], 0),
                ('B', Op::Store, 1, vec![Some(1), Some(1)], 1),
            ]
        );
        assert!(
            r.outcome
                .verdict
                .starts_with("AABABB ends at 1 of 2 (lost 1). ")
        );
    }

    #[test]
    fn a_stale_store_can_bring_back_what_a_staler_one_lost() {
        // B loads 0; A counts to 2, loads 2 and adds; B stores 1 (writing
        // over A's two); A stores 3 (bringing one back); B counts on to 5.
        let schedule = Schedule::parse("B AAAAAAAA BB A BBBBBB", 2, 3).expect("valid");
        let trace = schedule.trace();
        let overwritten: Vec<i64> = trace.iter().map(|s| s.overwritten).collect();
        assert_eq!((overwritten[10], trace[10].counter), (2, 1));
        assert_eq!((overwritten[11], trace[11].counter), (-1, 3));
        let final_value = trace.last().map_or(0, |s| s.counter);
        assert_eq!(final_value, 5);
        assert_eq!(
            overwritten.iter().sum::<i64>(),
            6 - final_value,
            "the stores' overwrites add up to what was lost"
        );
    }

    #[test]
    fn invalid_schedules_are_typed_errors() {
        assert_eq!(
            Schedule::parse("", 2, 1),
            Err(InterleavingsError::EmptySchedule)
        );
        assert_eq!(
            Schedule::parse("AABABC", 2, 1),
            Err(InterleavingsError::UnknownWorker {
                letter: 'C',
                workers: 2,
                letters: "A, B".to_string()
            })
        );
        assert!(matches!(
            Schedule::parse("AAB1BB", 2, 1),
            Err(InterleavingsError::UnknownWorker { letter: '1', .. })
        ));
        assert_eq!(
            Schedule::parse("AABAB", 2, 1),
            Err(InterleavingsError::WrongStepCount {
                worker: 'B',
                appears: 2,
                expected: 3,
                increments: 1
            })
        );
        assert!(matches!(
            Schedule::parse("AAABBB", 2, 2),
            Err(InterleavingsError::WrongStepCount {
                worker: 'A',
                appears: 3,
                expected: 6,
                ..
            })
        ));
        let message = Schedule::parse("AABAB", 2, 1).unwrap_err().to_string();
        assert!(message.contains("worker B appears 2 times"), "{message}");
    }
}
