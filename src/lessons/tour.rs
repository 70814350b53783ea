//! The tour: every lab with quick defaults, one verdict each.
//!
//! Each stop is one lab's report cut down to its verdict. [`run`] makes all
//! twelve stops (in a few seconds); the report shows them as a table:
//!
//! ```
//! use shmlab::lessons::interleavings::{self, InterleavingsConfig};
//! use shmlab::lessons::tour::{TourReport, TourStop};
//! use shmlab::report::{Outcome, Report};
//!
//! let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
//! let lab07 = interleavings::run(&config)?;
//! let stop = TourStop {
//!     lab: lab07.outcome().lab, ok: lab07.ok(), verdict: lab07.verdict().to_string(), seconds: 0.01,
//! };
//! let verdict = "1 of 1 labs showed what they should, in 0.0 s.".to_string();
//! let tour = TourReport {
//!     outcome: Outcome { lab: "tour", ok: stop.ok, verdict },
//!     stale_segments_removed: Vec::new(),
//!     stops: vec![stop],
//! };
//! assert_eq!(tour.render().lines().nth(1), Some("lab07-interleavings   yes     0.01"));
//! # Ok::<(), interleavings::InterleavingsError>(())
//! ```

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    interleavings, locks, mapreduce, montecarlo, philosophers, pool, processes, queues, race,
    slots, threads, wordcount,
};
use crate::report::{Outcome, Report};

/// One lab's line in the tour.
///
/// ```
/// # use shmlab::lessons::tour::{TourReport, TourStop};
/// # use shmlab::report::{Outcome, Report};
/// #
/// # let stop = |lab, ok| TourStop { lab, ok, verdict: String::new(), seconds: 0.5 };
/// # let tour = TourReport {
/// #     outcome: Outcome { lab: "tour", ok: false, verdict: "1 of 2 labs...".to_string() },
/// #     stale_segments_removed: Vec::new(),
/// #     stops: vec![stop("lab01-processes", true), stop("lab04-race", false)],
/// # };
/// let failed: Vec<&str> = tour.stops.iter().filter(|s| !s.ok).map(|s| s.lab).collect();
/// assert_eq!(failed, ["lab04-race"]);
/// ```
#[derive(Debug, Serialize)]
pub struct TourStop {
    /// The lab's binary name.
    pub lab: &'static str,
    /// Whether it showed what it should.
    pub ok: bool,
    /// Its verdict (or the error that stopped it).
    pub verdict: String,
    /// How long it took.
    pub seconds: f64,
}

/// The JSON of the tour: `lab` (`"tour"`), `ok`, `verdict`,
/// `stale_segments_removed`, `stops: [{lab, ok, verdict, seconds}]`.
///
/// ```
/// use shmlab::lessons::tour::{TourReport, TourStop};
/// use shmlab::report::{Outcome, Report};
///
/// let stop = |lab, ok| TourStop { lab, ok, verdict: String::new(), seconds: 0.5 };
/// let tour = TourReport {
///     outcome: Outcome { lab: "tour", ok: false, verdict: "1 of 2 labs...".to_string() },
///     stale_segments_removed: Vec::new(),
///     stops: vec![stop("lab01-processes", true), stop("lab04-race", false)],
/// };
/// assert!(!tour.ok());
/// let table: Vec<String> = tour.render().lines().map(str::to_string).collect();
/// assert!(table[2].starts_with("lab04-race") && table[2].contains("NO"));
/// ```
#[derive(Debug, Serialize)]
pub struct TourReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Segments of dead processes removed before starting.
    pub stale_segments_removed: Vec<String>,
    /// One entry per lab, in lesson order.
    pub stops: Vec<TourStop>,
}

fn stop<R: Report, E: std::fmt::Display>(
    lab: &'static str,
    live: bool,
    run: impl FnOnce() -> Result<R, E>,
) -> TourStop {
    if live {
        println!("== {lab} ...");
    }
    let started = Instant::now();
    let (ok, verdict) = match run() {
        Ok(report) => (report.ok(), report.verdict().to_string()),
        Err(e) => (false, format!("error: {e}")),
    };
    let seconds = started.elapsed().as_secs_f64();
    if live {
        println!("   {}: {verdict}\n", if ok { "ok" } else { "NOT OK" });
    }
    TourStop {
        lab,
        ok,
        verdict,
        seconds,
    }
}

/// Runs every lab with quick settings; prints progress when `live`.
///
/// The whole course in a few seconds — the same run as `cargo run
/// --release`, quietly:
///
/// ```
/// use shmlab::lessons::tour;
///
/// fn main() {
///     shmlab::entry(); // the labs start worker processes
///     let tour = tour::run(false);
///     assert_eq!(tour.stops.len(), 12);
///     assert!(tour.stops.iter().all(|stop| stop.ok), "{:#?}", tour.stops);
/// }
/// ```
pub fn run(live: bool) -> TourReport {
    let stale = crate::cleanup::clean()
        .map(|r| r.removed)
        .unwrap_or_default();
    if live && !stale.is_empty() {
        println!(
            "removed {} stale segment(s) left by killed processes\n",
            stale.len()
        );
    }
    let stops = vec![
        stop("lab01-processes", live, || {
            processes::run(&processes::ProcessesConfig {
                workers: 4,
                runs: 20,
            })
        }),
        stop("lab02-pool", live, || {
            pool::run(&pool::PoolConfig {
                workers: crate::cli::available_cpus(),
                tasks: 10_000,
                chunksizes: vec![1, 100],
                repeats: 3,
                quiet: !live,
            })
        }),
        stop("lab03-queues", live, || {
            queues::run(&queues::QueuesConfig {
                workers: 4,
                tasks: 20,
                messages: 50_000,
                sizes: vec![64, 4096],
            })
        }),
        stop("lab04-race", live, || {
            race::run(&race::RaceConfig {
                workers: 2,
                increments: 10_000_000,
            })
        }),
        stop("lab05-locks", live, || {
            locks::run(&locks::LocksConfig {
                workers: 2,
                accounts: 8,
                transfers: 500_000,
                increments: 1_000_000,
                timeout: Duration::from_millis(100),
            })
        }),
        stop("lab06-slots", live, || {
            slots::run(&slots::SlotsConfig {
                max_workers: crate::cli::available_cpus().clamp(2, 4),
                run_time: Duration::from_millis(10),
                repeats: 2,
            })
        }),
        stop("lab07-interleavings", live, || {
            interleavings::run(&interleavings::InterleavingsConfig {
                workers: 2,
                increments: 1,
                schedule: None,
            })
        }),
        stop("lab08-mapreduce", live, || {
            mapreduce::run(&mapreduce::MapReduceConfig {
                max_workers: crate::cli::available_cpus(),
                strategies: crate::counting::Strategy::ALL.to_vec(),
                run_time: Duration::from_millis(20),
                repeats: 1,
                chart: None,
            })
        }),
        stop("lab09-philosophers", live, || {
            philosophers::run(&philosophers::PhilosophersConfig {
                dinner: crate::philosophers::DinnerConfig {
                    meals: Some(10),
                    deadlock_timeout: Duration::from_millis(200),
                    ..crate::philosophers::DinnerConfig::new(
                        crate::philosophers::Strategy::Naive,
                        5,
                    )
                },
                fix: Some(crate::philosophers::Strategy::Ordered),
            })
        }),
        stop("lab10-wordcount", live, || {
            let workers = crate::cli::available_cpus();
            wordcount::run(&wordcount::WordcountConfig {
                corpus: None,
                bytes: 8_000_000,
                seed: 1,
                workers,
                chunks: 2 * workers,
                top: 10,
                repeats: 1,
                locked_bytes: 1_000_000,
                quiet: true,
            })
        }),
        stop("lab11-montecarlo", live, || {
            montecarlo::run(&montecarlo::MonteCarloConfig {
                samples: 20_000_000,
                batch: 1_000_000,
                steps: 10_000_000,
                master_seed: 42,
                max_workers: crate::cli::available_cpus(),
                demo_workers: 4,
                repeats: 1,
            })
        }),
        stop("lab12-threads", live, || {
            threads::run(&threads::ThreadsConfig {
                steps: 20_000_000,
                max_workers: crate::cli::available_cpus(),
                repeats: 1,
                startup_runs: 3,
            })
        }),
    ];
    let passed = stops.iter().filter(|s| s.ok).count();
    let ok = passed == stops.len();
    let total: f64 = stops.iter().map(|s| s.seconds).sum();
    TourReport {
        outcome: Outcome {
            lab: "tour",
            ok,
            verdict: format!(
                "{passed} of {} labs showed what they should, in {total:.1} s.",
                stops.len()
            ),
        },
        stale_segments_removed: stale,
        stops,
    }
}

impl Report for TourReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let mut out = format!("{:<20} {:>4} {:>8}\n", "lab", "ok", "seconds");
        for s in &self.stops {
            out += &format!(
                "{:<20} {:>4} {:>8.2}\n",
                s.lab,
                if s.ok { "yes" } else { "NO" },
                s.seconds
            );
        }
        out + "\n"
    }
}
