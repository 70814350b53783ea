//! Lab 09: dining philosophers — the naive deadlock, detected and named by a
//! watchdog, then a fix that serves every meal.
//!
//! ```
//! use std::time::Duration;
//! use shmlab::lessons::philosophers::{self, PhilosophersConfig};
//! use shmlab::philosophers::{DinnerConfig, Strategy};
//!
//! // Three philosophers (threads), each holding the left fork before anyone
//! // reaches for the right one: the naive dinner deadlocks every time.
//! let dinner = DinnerConfig {
//!     threads: true,
//!     meals: Some(3),
//!     deadlock_timeout: Duration::from_millis(50),
//!     ..DinnerConfig::new(Strategy::Naive, 3)
//! };
//! let report = philosophers::run(&PhilosophersConfig { dinner, fix: Some(Strategy::Ordered) })?;
//! assert!(report.dinner.deadlock_detected);
//! assert_eq!(report.dinner.cycle.len(), 3); // each waits for a fork its neighbour holds
//! // Then the fix: the lower-numbered fork first, and every meal is served.
//! assert_eq!(report.fix.map(|fix| fix.meals), Some(vec![3, 3, 3]));
//! # Ok::<(), shmlab::philosophers::DineError>(())
//! ```

use serde::Serialize;

use crate::philosophers::{DineError, Dinner, DinnerConfig, Resolution, Strategy, run_dinner};
use crate::report::{Outcome, Report};

/// Options of lab 09.
///
/// ```
/// use shmlab::lessons::philosophers::{self, PhilosophersConfig};
/// use shmlab::philosophers::{DinnerConfig, Strategy};
///
/// let dinner = DinnerConfig {
///     threads: true,
///     meals: Some(3),
///     ..DinnerConfig::new(Strategy::Ordered, 3)
/// };
/// let config = PhilosophersConfig { dinner, fix: Some(Strategy::Waiter) };
/// let report = philosophers::run(&config)?;
/// assert!(report.fix.is_none()); // a fix follows only a naive dinner
/// # Ok::<(), shmlab::philosophers::DineError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PhilosophersConfig {
    /// The first dinner.
    pub dinner: DinnerConfig,
    /// After a naive dinner, a second one with this strategy.
    pub fix: Option<Strategy>,
}

/// The JSON of lab 09: `lab`, `ok`, `verdict`, `cpus`, then the first
/// dinner's keys at the top level (see [`Dinner`]: `strategy`,
/// `philosophers`, `deadlock_detected`, `cycle: [{philosopher, pid, holds,
/// waits_for, held_by, ...}]`, `meals`, `max_wait_ms`, `seconds`, ...), and
/// `fix`: the second dinner with the same keys, or null.
///
/// ```
/// use shmlab::lessons::philosophers::{self, PhilosophersConfig};
/// use shmlab::philosophers::{DinnerConfig, Strategy};
///
/// # fn main() -> anyhow::Result<()> {
/// let dinner = DinnerConfig {
///     threads: true,
///     meals: Some(3),
///     ..DinnerConfig::new(Strategy::Ordered, 3)
/// };
/// let report = philosophers::run(&PhilosophersConfig { dinner, fix: None })?;
/// let json = serde_json::to_value(&report)?;
/// // The dinner's keys sit at the top level, next to `lab`.
/// assert_eq!(json["lab"], "lab09-philosophers");
/// assert_eq!(json["strategy"], "ordered");
/// assert!(json["fix"].is_null());
/// # Ok(()) }
/// ```
#[derive(Debug, Serialize)]
pub struct PhilosophersReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// CPUs available to this process.
    pub cpus: usize,
    /// The first dinner.
    #[serde(flatten)]
    pub dinner: Dinner,
    /// The fix, after a naive dinner.
    pub fix: Option<Dinner>,
}

/// Holds the dinner, then the fix if the first was naive.
///
/// ```
/// use shmlab::lessons::philosophers::{self, PhilosophersConfig};
/// use shmlab::philosophers::{DinnerConfig, Strategy};
/// use shmlab::report::Report;
///
/// // Three philosopher threads, lower-numbered fork first: no deadlock.
/// let dinner = DinnerConfig {
///     threads: true,
///     meals: Some(3),
///     ..DinnerConfig::new(Strategy::Ordered, 3)
/// };
/// let report = philosophers::run(&PhilosophersConfig { dinner, fix: None })?;
/// assert!(report.ok(), "{}", report.verdict());
/// assert_eq!(report.dinner.meals, [3, 3, 3]);
/// # Ok::<(), shmlab::philosophers::DineError>(())
/// ```
pub fn run(config: &PhilosophersConfig) -> Result<PhilosophersReport, DineError> {
    let dinner = run_dinner(&config.dinner)?;
    let fix = match config.fix {
        Some(fix) if config.dinner.strategy == Strategy::Naive && fix != Strategy::Naive => {
            Some(run_dinner(&DinnerConfig {
                strategy: fix,
                ..config.dinner.clone()
            })?)
        }
        _ => None,
    };
    let (ok, verdict) = judge(&dinner, fix.as_ref());
    Ok(PhilosophersReport {
        outcome: Outcome {
            lab: "lab09-philosophers",
            ok,
            verdict,
        },
        cpus: crate::cli::available_cpus(),
        dinner,
        fix,
    })
}

/// Whether a dinner went as its strategy promises, and in one sentence.
fn story(d: &Dinner) -> (bool, String) {
    let n = d.philosophers;
    let meals = format!(
        "meals per philosopher {}..{}, longest wait {:.1} ms",
        d.meals.iter().min().unwrap_or(&0),
        d.meals.iter().max().unwrap_or(&0),
        d.max_wait_ms
    );
    if d.exclusion_violations > 0 {
        return (
            false,
            format!(
                "{}: a fork was in two hands at once {} time(s) — a bug in shmlab",
                d.strategy.name(),
                d.exclusion_violations
            ),
        );
    }
    if d.resolution == Resolution::TimeLimit {
        return (
            false,
            format!(
                "{} did not finish within the time limit ({meals})",
                d.strategy.name()
            ),
        );
    }
    if d.deadlock_detected {
        let after = d.detected_after_ms.unwrap_or(0.0);
        let how = match &d.resolution {
            Resolution::VictimKilled { victim } => format!(
                "philosopher {victim} was killed, its neighbour took its fork over (owner death) and the other {} finished",
                n - 1
            ),
            Resolution::ThreadsAbandoned { philosophers } => {
                let agreed = match &d.parking_lot {
                    Some(p) if p.found => format!(
                        "; parking_lot's detector found the same cycle after {:.0} ms",
                        p.after_ms.unwrap_or(0.0)
                    ),
                    _ => "; parking_lot's detector did not report it".to_string(),
                };
                format!(
                    "{} thread(s) stay parked (a thread cannot be killed){agreed}",
                    philosophers.len()
                )
            }
            _ => String::new(),
        };
        let expected = d.strategy == Strategy::Naive;
        let text = format!(
            "{} deadlocked: a cycle of {} philosophers, each holding a fork the next one waits for, reported {after:.0} ms after it closed (deadlock timeout {:.0} ms); {how}",
            d.strategy.name(),
            d.cycle.len(),
            d.deadlock_timeout_ms
        );
        return if expected {
            (true, text)
        } else {
            (false, format!("BUG: {text}"))
        };
    }
    if !d.completed {
        return (
            false,
            format!("{} failed: {}", d.strategy.name(), d.failures.join("; ")),
        );
    }
    let served = match d.meals_each {
        Some(m) => format!("served all {n}×{m} meals"),
        None => {
            let (lo, hi) = (
                *d.meals.iter().min().unwrap_or(&0),
                *d.meals.iter().max().unwrap_or(&0),
            );
            format!(
                "served {} meals in {:.1} s, {lo} for the hungriest philosopher and {hi} for the best fed{}",
                d.total_meals(),
                d.seconds,
                if hi > 2 * lo.max(1) {
                    " — deadlock-free, yet not fair"
                } else {
                    ""
                }
            )
        }
    };
    let luck = if d.strategy == Strategy::Naive {
        if d.together {
            " (no deadlock although everyone reached together?)"
        } else {
            " without deadlocking — a lucky schedule, not a correct one"
        }
    } else {
        ""
    };
    (
        true,
        format!(
            "{} {served}{luck} ({meals}); it {}",
            d.strategy.name(),
            d.strategy.breaks()
        ),
    )
}

fn judge(dinner: &Dinner, fix: Option<&Dinner>) -> (bool, String) {
    let (mut ok, mut verdict) = story(dinner);
    // With everyone reaching together, naive must deadlock: if it did not,
    // the demonstration (or the watchdog) failed.
    if dinner.strategy == Strategy::Naive && dinner.together && !dinner.deadlock_detected {
        ok = false;
    }
    if let Some(fix) = fix {
        let (fix_ok, fix_story) = story(fix);
        ok &= fix_ok;
        verdict = format!("{verdict}. Then {fix_story}.");
    } else {
        verdict.push('.');
    }
    (ok, verdict)
}

fn render_dinner(d: &Dinner) -> String {
    let meals = match (d.meals_each, d.duration_s) {
        (Some(m), _) => format!("{m} meals each"),
        (None, Some(s)) => format!("as many meals as fit in {s} s"),
        _ => String::new(),
    };
    let mut out = format!(
        "== {}: {} philosophers as {}, {meals}, {} ==\n   ({} {})\n",
        d.strategy.name(),
        d.philosophers,
        d.variant,
        if d.together {
            "first forks taken together"
        } else {
            "natural start"
        },
        d.strategy.name(),
        d.strategy.breaks()
    );
    if d.deadlock_detected {
        out += "ERROR:  deadlock detected\n";
        for (k, line) in d.report.iter().enumerate() {
            let lead = if k == 0 { "DETAIL:" } else { "       " };
            out += &format!("{lead} {line}.\n");
        }
        out += &format!(
            "HINT:   every wait in the cycle was older than the deadlock timeout ({:.0} ms); reported {:.0} ms after the cycle closed.\n",
            d.deadlock_timeout_ms,
            d.detected_after_ms.unwrap_or(0.0)
        );
        match &d.resolution {
            Resolution::VictimKilled { victim } => {
                out += &format!(
                    "        resolved: philosopher {victim} (its wait closed the cycle) was killed; {} fork(s) recovered from the dead.\n",
                    d.recovered_forks
                )
            }
            Resolution::ThreadsAbandoned { philosophers } => {
                out += &format!(
                    "        threads {philosophers:?} cannot be killed: left parked until the process exits.\n"
                )
            }
            _ => {}
        }
        if let Some(p) = &d.parking_lot {
            out += &if p.found {
                format!(
                    "        parking_lot::deadlock::check_deadlock found philosophers {:?}, {:.1} ms after the cycle closed (it sees inside the locks, so it needs no timeout).\n",
                    p.philosophers,
                    p.after_ms.unwrap_or(0.0)
                )
            } else {
                "        parking_lot::deadlock::check_deadlock found nothing.\n".to_string()
            };
        }
    }
    out += &format!(
        "{:>11} {:>7} {:>14} {:>14} {:>9}\n",
        "philosopher", "meals", "longest wait", "mean wait", "backoffs"
    );
    for i in 0..d.philosophers {
        out += &format!(
            "{:>11} {:>7} {:>11.2} ms {:>11.3} ms {:>9}\n",
            i, d.meals[i], d.max_wait_ms_each[i], d.mean_wait_ms_each[i], d.backoffs[i]
        );
    }
    out += &format!("{:.2} s\n\n", d.seconds);
    out
}

impl Report for PhilosophersReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let mut out = render_dinner(&self.dinner);
        if let Some(fix) = &self.fix {
            out += &render_dinner(fix);
        }
        out
    }
}
