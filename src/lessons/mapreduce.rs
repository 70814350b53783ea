//! Lab 08: the headline — every counting strategy, from a shared counter
//! under a lock to map-reduce that shares nothing, at 1..=W workers; a
//! table of increments per second, each strategy's ratio to `locked`, and
//! an SVG chart.
//!
//! ```
//! use std::time::Duration;
//! use shmlab::counting::Strategy;
//! use shmlab::lessons::mapreduce::{self, MapReduceConfig};
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // pool workers run their tasks here
//!     let config = MapReduceConfig {
//!         max_workers: 2, strategies: vec![Strategy::Locked, Strategy::MapReduce],
//!         run_time: Duration::from_millis(1), repeats: 1, chart: None,
//!     };
//!     let report = mapreduce::run(&config)?;
//!     // One shared counter under a lock, or private counts added at the end:
//!     // both exact, at 1 and 2 workers...
//!     assert!(report.results.iter().all(|cell| cell.exact));
//!     // ...and how much faster sharing nothing is, at 2 workers (about 100×).
//!     assert!(report.map_reduce_over_locked.is_some());
//!     Ok(())
//! }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::counting::{CountError, Strategy, count_in};
use crate::pool::Pool;
use crate::report::{self, Outcome, Report};

/// Options of lab 08.
///
/// ```
/// use std::time::Duration;
/// use shmlab::counting::Strategy;
/// use shmlab::lessons::mapreduce::{self, MapReduceConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let chart = std::env::temp_dir().join(format!("shmlab-doctest-{}.svg", std::process::id()));
///     let config = MapReduceConfig {
///         max_workers: 1, strategies: vec![Strategy::Locked, Strategy::MapReduce],
///         run_time: Duration::from_millis(1), repeats: 1, chart: Some(chart.clone()),
///     };
///     mapreduce::run(&config)?;
///     assert!(std::fs::read_to_string(&chart)?.starts_with("<svg"));
///     std::fs::remove_file(&chart)?;
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct MapReduceConfig {
    /// Workers from 1 up to this.
    pub max_workers: usize,
    /// Strategies to run.
    pub strategies: Vec<Strategy>,
    /// About how long each timed run should take.
    pub run_time: Duration,
    /// Timed runs per cell of the table (the median is reported).
    pub repeats: usize,
    /// Where to write the SVG chart (`None`: no chart).
    pub chart: Option<PathBuf>,
}

/// One cell of the table.
///
/// ```
/// # use std::time::Duration;
/// # use shmlab::counting::Strategy;
/// # use shmlab::lessons::mapreduce::{self, MapReduceConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = MapReduceConfig {
/// #     max_workers: 1, strategies: vec![Strategy::Locked, Strategy::MapReduce],
/// #     run_time: Duration::from_millis(1), repeats: 1, chart: None,
/// # };
/// let report = mapreduce::run(&config)?; // locked and map-reduce, 1 worker
/// let (locked, map_reduce) = (&report.results[0], &report.results[1]);
/// assert_eq!((locked.strategy, locked.ratio_to_locked), ("locked", Some(1.0)));
/// assert!(locked.exact && map_reduce.exact);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct StrategyResult {
    /// `racy`, `atomic`, `locked`, `locked-os`, `slots`, `padded-slots`,
    /// `map-reduce`.
    pub strategy: &'static str,
    /// Worker processes.
    pub workers: usize,
    /// Increments each worker made per run.
    pub increments_per_worker: u64,
    /// Median increments per second, all workers together.
    pub ops_per_s: f64,
    /// Whether every run ended with workers × increments (always false for
    /// `racy` under contention, and that is the lesson).
    pub exact: bool,
    /// `ops_per_s` / the `locked` row's at the same worker count.
    pub ratio_to_locked: Option<f64>,
}

/// The JSON of lab 08: `lab`, `ok`, `verdict`, `available_cpus`,
/// `max_workers`, `repeats`, `chart` (the SVG's path, or null),
/// `map_reduce_over_locked` (at the largest worker count), and `results:
/// [{strategy, workers, increments_per_worker, ops_per_s, exact,
/// ratio_to_locked}]`.
///
/// ```
/// # use std::time::Duration;
/// # use shmlab::counting::Strategy;
/// # use shmlab::lessons::mapreduce::{self, MapReduceConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = MapReduceConfig {
/// #     max_workers: 1, strategies: vec![Strategy::Locked, Strategy::MapReduce],
/// #     run_time: Duration::from_millis(1), repeats: 1, chart: None,
/// # };
/// let report = mapreduce::run(&config)?; // locked and map-reduce, 1 worker
/// let json = serde_json::to_value(&report)?;
/// assert_eq!(json["lab"], "lab08-mapreduce");
/// assert_eq!(json["results"].as_array().map(Vec::len), Some(2)); // 2 strategies x 1 worker
/// assert!(report.map_reduce_over_locked.is_some());
/// # Ok(()) }
/// ```
#[derive(Debug, Serialize)]
pub struct MapReduceReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// CPUs this process may use.
    pub available_cpus: usize,
    /// The largest worker count run.
    pub max_workers: usize,
    /// Timed runs per cell.
    pub repeats: usize,
    /// Where the chart was written.
    pub chart: Option<String>,
    /// map-reduce ops/s ÷ locked ops/s at `max_workers`.
    pub map_reduce_over_locked: Option<f64>,
    /// The table.
    pub results: Vec<StrategyResult>,
}

/// Why lab 08 failed.
///
/// ```
/// use std::time::Duration;
/// use shmlab::lessons::mapreduce::{self, MapReduceConfig, MapReduceError};
/// use shmlab::pool::PoolError;
///
/// let config = MapReduceConfig {
///     max_workers: 0, // no processes to count with
///     strategies: Vec::new(), run_time: Duration::from_millis(1), repeats: 1, chart: None,
/// };
/// let err = mapreduce::run(&config).unwrap_err();
/// assert!(matches!(err, MapReduceError::Pool(PoolError::NoWorkersRequested)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum MapReduceError {
    /// A counting run.
    #[error(transparent)]
    Count(#[from] CountError),
    /// The pool.
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
    /// The chart could not be written.
    #[error("could not write the chart to {path}: {source}")]
    Chart {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Runs lab 08.
///
/// ```
/// use std::time::Duration;
/// use shmlab::counting::Strategy;
/// use shmlab::lessons::mapreduce::{self, MapReduceConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let config = MapReduceConfig {
///         max_workers: 2, strategies: vec![Strategy::Atomic, Strategy::Locked],
///         run_time: Duration::from_millis(1), repeats: 1, chart: None,
///     };
///     let report = mapreduce::run(&config)?;
///     assert!(report.ok(), "{}", report.verdict()); // atomic and locked were exact
///     assert_eq!(report.results.len(), 4); // 2 strategies x 1..=2 workers
///     Ok(())
/// }
/// ```
pub fn run(config: &MapReduceConfig) -> Result<MapReduceReport, MapReduceError> {
    let pool = Pool::new(config.max_workers)?;
    let mut results = Vec::new();
    for workers in 1..=config.max_workers {
        let mut row = Vec::new();
        for &strategy in &config.strategies {
            let n = crate::counting::calibrate(&pool, strategy, workers, config.run_time)?;
            let mut rates = Vec::with_capacity(config.repeats);
            let mut exact = true;
            for _ in 0..config.repeats {
                let run = count_in(&pool, strategy, workers, n)?;
                rates.push(run.ops_per_s);
                exact &= run.exact();
            }
            row.push(StrategyResult {
                strategy: strategy.name(),
                workers,
                increments_per_worker: n,
                ops_per_s: report::median(&rates),
                exact,
                ratio_to_locked: None,
            });
        }
        let locked = row
            .iter()
            .find(|r| r.strategy == "locked")
            .map(|r| r.ops_per_s);
        for r in &mut row {
            r.ratio_to_locked = locked.filter(|l| *l > 0.0).map(|l| r.ops_per_s / l);
        }
        results.extend(row);
    }
    let chart = match &config.chart {
        Some(path) => {
            write_chart(path, &results).map_err(|source| MapReduceError::Chart {
                path: path.display().to_string(),
                source,
            })?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let at_max = |name: &str| {
        results
            .iter()
            .find(|r| r.strategy == name && r.workers == config.max_workers)
    };
    let map_reduce_over_locked = at_max("map-reduce").and_then(|r| r.ratio_to_locked);
    // Every strategy but racy must be exact; racy is allowed either way.
    let ok = results.iter().all(|r| r.exact || r.strategy == "racy");
    let cpus = crate::cli::available_cpus();
    let verdict = verdict(ok, config.max_workers, cpus, map_reduce_over_locked);
    Ok(MapReduceReport {
        outcome: Outcome {
            lab: "lab08-mapreduce",
            ok,
            verdict,
        },
        available_cpus: cpus,
        max_workers: config.max_workers,
        repeats: config.repeats,
        chart,
        map_reduce_over_locked,
        results,
    })
}

fn verdict(ok: bool, workers: usize, cpus: usize, ratio: Option<f64>) -> String {
    if !ok {
        return "an exact strategy lost updates: that is a bug (see the table)".to_string();
    }
    let Some(ratio) = ratio else {
        return "every exact strategy was exact".to_string();
    };
    let plural = if workers == 1 { "" } else { "s" };
    let mut v = format!(
        "map-reduce counted {ratio:.0}× faster than the locked shared counter with {workers} worker{plural}: share nothing, combine once"
    );
    if cpus < 2 {
        v += " (one CPU: the workers take turns, so only the cost per increment differs)";
    }
    v
}

/// A log-scale grouped bar chart: one group per strategy, one bar per
/// worker count. Plain SVG text: no fonts or drawing crate needed.
fn write_chart(path: &Path, results: &[StrategyResult]) -> std::io::Result<()> {
    let mut strategies: Vec<&str> = Vec::new();
    for r in results {
        if !strategies.contains(&r.strategy) {
            strategies.push(r.strategy);
        }
    }
    let max_workers = results.iter().map(|r| r.workers).max().unwrap_or(1);
    let (lo, hi) = results
        .iter()
        .map(|r| r.ops_per_s.max(1.0))
        .fold((f64::MAX, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo_exp, hi_exp) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let span = f64::from((hi_exp - lo_exp).max(1));
    let (left, top, width, height) = (90.0, 40.0, 760.0, 320.0);
    let y = |v: f64| top + height - (v.max(1.0).log10() - f64::from(lo_exp)) / span * height;
    let group = width / strategies.len().max(1) as f64;
    let bar = group * 0.8 / max_workers as f64;
    let colours = [
        "#4878d0", "#ee854a", "#6acc64", "#d65f5f", "#956cb4", "#8c613c",
    ];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        left + width + 20.0,
        top + height + 70.0
    );
    svg += &format!(
        "<text x=\"{}\" y=\"22\" font-size=\"15\">Increments per second, all workers together (log scale; shmlab lab08)</text>\n",
        left
    );
    for e in lo_exp..=hi_exp {
        let yy = y(10f64.powi(e));
        svg += &format!(
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">1e{e}</text>\n",
            left + width,
            left - 6.0,
            yy + 4.0
        );
    }
    for (g, strategy) in strategies.iter().enumerate() {
        let x0 = left + g as f64 * group + group * 0.1;
        for r in results.iter().filter(|r| r.strategy == *strategy) {
            let x = x0 + (r.workers - 1) as f64 * bar;
            let top_y = y(r.ops_per_s);
            svg += &format!(
                "<rect x=\"{x:.1}\" y=\"{top_y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} × {}: {}</title></rect>\n",
                bar * 0.9,
                top + height - top_y,
                colours[(r.workers - 1) % colours.len()],
                strategy,
                r.workers,
                report::rate(r.ops_per_s)
            );
        }
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{strategy}</text>\n",
            x0 + group * 0.4,
            top + height + 18.0
        );
    }
    for w in 1..=max_workers {
        let x = left + (w - 1) as f64 * 110.0;
        svg += &format!(
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{w} worker{}</text>\n",
            top + height + 36.0,
            colours[(w - 1) % colours.len()],
            x + 16.0,
            top + height + 46.0,
            if w == 1 { "" } else { "s" }
        );
    }
    svg += "</svg>\n";
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, svg)
}

impl Report for MapReduceReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let mut out = format!(
            "Every strategy counts workers × N increments (median of {} runs, {} CPUs available):\n\n",
            self.repeats, self.available_cpus
        );
        out += "  strategy       workers      increments/s   × locked   exact\n";
        for r in &self.results {
            out += &format!(
                "  {:<14} {:>7} {:>17} {:>10} {:>7}\n",
                r.strategy,
                r.workers,
                report::rate(r.ops_per_s),
                r.ratio_to_locked
                    .map_or("-".to_string(), |x| format!("{x:.2}")),
                if r.exact { "yes" } else { "NO" }
            );
        }
        if let Some(chart) = &self.chart {
            out += &format!("\nchart: {chart}\n");
        }
        out
    }
}
