//! Lab 04: lost updates on a shared counter — racy vs atomic vs locked.
//!
//! ```
//! use shmlab::lessons::race::{self, RaceConfig};
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // worker processes run their tasks here
//!     let report = race::run(&RaceConfig { workers: 2, increments: 10_000 })?;
//!     let [racy, atomic, locked] = &report.results[..] else { panic!("three strategies") };
//!     // `store(load() + 1)` can lose updates, never invent them...
//!     assert!(racy.final_value <= report.expected);
//!     // ...while one atomic step, or the two steps under a lock, lose none.
//!     assert_eq!((atomic.lost, locked.lost), (0, 0));
//!     Ok(())
//! }
//! ```

use serde::Serialize;

use crate::counting::{self, CountError, CountResult, Strategy};
use crate::report::{self, Outcome, Report};

/// Options of lab 04.
///
/// ```
/// use shmlab::lessons::race::{self, RaceConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // worker processes run their tasks here
///     // One worker has nobody to race: even the racy counter is exact.
///     let report = race::run(&RaceConfig { workers: 1, increments: 1_000 })?;
///     assert!(report.results.iter().all(|r| r.lost == 0));
///     assert!(report.verdict().contains("nobody to race"));
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RaceConfig {
    /// Worker processes.
    pub workers: usize,
    /// Increments per worker.
    pub increments: u64,
}

/// The JSON of lab 04: `lab`, `ok`, `verdict`, `workers`,
/// `increments_per_worker`, `expected`, `cpus`, and `results: [{strategy,
/// final, lost, seconds, ops_per_s, ...}]` for `racy`, `atomic`, `locked`.
///
/// ```
/// use shmlab::lessons::race::{self, RaceConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // worker processes run their tasks here
///     let report = race::run(&RaceConfig { workers: 2, increments: 1_000 })?;
///     let names: Vec<&str> = report.results.iter().map(|r| r.strategy.name()).collect();
///     assert_eq!(names, ["racy", "atomic", "locked"]);
///     assert_eq!(report.expected, 2_000);
///     Ok(())
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct RaceReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Worker processes.
    pub workers: usize,
    /// Increments per worker.
    pub increments_per_worker: u64,
    /// workers × increments.
    pub expected: i64,
    /// CPUs available to this process.
    pub cpus: usize,
    /// One row per strategy.
    pub results: Vec<CountResult>,
}

/// Runs the three strategies one after another.
///
/// ```
/// use shmlab::lessons::race::{self, RaceConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // worker processes run their tasks here
///     let report = race::run(&RaceConfig { workers: 2, increments: 10_000 })?;
///     assert!(report.ok(), "{}", report.verdict()); // atomic and locked lost nothing
///     assert_eq!(report.results[2].final_value, 20_000); // locked
///     Ok(())
/// }
/// ```
pub fn run(config: &RaceConfig) -> Result<RaceReport, CountError> {
    let results = [Strategy::Racy, Strategy::Atomic, Strategy::Locked]
        .into_iter()
        .map(|s| counting::count(s, config.workers, config.increments))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = results[0].expected;
    let exact_ok = results
        .iter()
        .filter(|r| r.strategy.is_exact())
        .all(|r| r.lost == 0);
    let racy = &results[0];
    let lost_pct = 100.0 * racy.lost as f64 / expected.max(1) as f64;
    let cpus = crate::cli::available_cpus();
    let racy_story = if racy.lost > 0 {
        format!(
            "racy lost {} of {} updates ({lost_pct:.1}%): load and store are two steps, so two workers that load the same value both store value+1",
            racy.lost, expected
        )
    } else if config.workers == 1 {
        "racy lost nothing: with one worker there is nobody to race".to_string()
    } else if cpus == 1 {
        "racy lost nothing: on 1 CPU the workers only take turns at context switches, which rarely (with an optimising compiler that turns load+1+store into one instruction: never) fall between the load and the store".to_string()
    } else {
        format!(
            "racy lost nothing this time (a lucky schedule; {cpus} CPUs) — run again or raise --increments"
        )
    };
    let verdict = if exact_ok {
        format!("{racy_story}; atomic and locked were exact ({expected}).")
    } else {
        format!("{racy_story}; BUT an exact strategy lost updates — a bug in shmlab.")
    };
    Ok(RaceReport {
        outcome: Outcome {
            lab: "lab04-race",
            ok: exact_ok,
            verdict,
        },
        workers: config.workers,
        increments_per_worker: config.increments,
        expected,
        cpus,
        results,
    })
}

impl Report for RaceReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let mut out = format!(
            "{} workers x {} increments on one SharedValue<i64> (expected {}), {} CPU(s)\n\n",
            self.workers, self.increments_per_worker, self.expected, self.cpus
        );
        out += &format!(
            "{:<10} {:>14} {:>12} {:>8} {:>10} {:>12}\n",
            "strategy", "final", "lost", "lost %", "seconds", "ops/s"
        );
        for r in &self.results {
            out += &format!(
                "{:<10} {:>14} {:>12} {:>7.1}% {:>10.3} {:>12}\n",
                r.strategy.name(),
                r.final_value,
                r.lost,
                100.0 * r.lost as f64 / r.expected.max(1) as f64,
                r.seconds,
                report::rate(r.ops_per_s)
            );
        }
        out + "\n"
    }
}
