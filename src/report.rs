//! Lab reports: a human text ending in a one-line verdict, or with `--json`
//! one JSON object whose keys are documented on each report type.
//!
//! ```
//! use std::process::ExitCode;
//! use shmlab::lessons::interleavings::{self, InterleavingsConfig};
//! use shmlab::report::{self, Report};
//!
//! let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
//! let lab07 = interleavings::run(&config)?; // a lab that runs no processes
//! // With `--json`: one object, whose `lab`, `ok` and `verdict` every lab has.
//! let json = serde_json::to_value(&lab07)?;
//! assert_eq!(json["lab"], "lab07-interleavings");
//! assert_eq!(json["ok"], true);
//! assert_eq!(json["verdict"], lab07.verdict());
//! // Without: the rendered body, then `verdict: …`; the exit code says ok.
//! assert_eq!(report::emit(&lab07, false)?, ExitCode::SUCCESS);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::process::ExitCode;

use serde::Serialize;

/// The three keys every lab's JSON starts with (flattened into the report).
///
/// ```
/// use shmlab::report::Outcome;
///
/// let outcome = Outcome { lab: "lab04-race", ok: true, verdict: "no update was lost".into() };
/// let json = serde_json::to_value(&outcome)?;
/// let expected = serde_json::json!({
///     "lab": "lab04-race", "ok": true, "verdict": "no update was lost"
/// });
/// assert_eq!(json, expected);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The lab's binary name, e.g. `"lab04-race"`.
    pub lab: &'static str,
    /// Whether the lab showed what it should (exact counts were exact, ...).
    pub ok: bool,
    /// One line: what happened and why.
    pub verdict: String,
}

/// What every lab report provides. Its JSON form always has the keys `lab`,
/// `ok` and `verdict` (from its [`Outcome`]).
///
/// A report of your own needs its outcome and a text body:
///
/// ```
/// use shmlab::report::{Outcome, Report};
///
/// #[derive(serde::Serialize)]
/// struct Tally {
///     #[serde(flatten)]
///     outcome: Outcome,
///     count: u64,
/// }
///
/// impl Report for Tally {
///     fn outcome(&self) -> &Outcome {
///         &self.outcome
///     }
///     fn render(&self) -> String {
///         format!("counted {}\n", self.count)
///     }
/// }
///
/// let tally = Tally {
///     outcome: Outcome { lab: "my-lab", ok: true, verdict: "exact".into() },
///     count: 4000,
/// };
/// assert_eq!(tally.render(), "counted 4000\n");
/// assert!(tally.ok());
/// assert_eq!(serde_json::to_value(&tally)?["count"], 4000);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub trait Report: Serialize {
    /// The lab, whether it was ok, and its verdict.
    ///
    /// ```
    /// # use shmlab::lessons::interleavings::{self, InterleavingsConfig};
    /// use shmlab::report::Report;
    ///
    /// # let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
    /// let report = interleavings::run(&config)?; // lab 07 runs no processes
    /// assert_eq!(report.outcome().lab, "lab07-interleavings");
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    fn outcome(&self) -> &Outcome;
    /// The human-readable body, without the verdict.
    ///
    /// ```
    /// # use shmlab::lessons::interleavings::{self, InterleavingsConfig};
    /// use shmlab::report::Report;
    ///
    /// # let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
    /// let report = interleavings::run(&config)?; // lab 07 runs no processes
    /// let text = report.render();
    /// assert!(text.starts_with("2 workers (A, B) x 1 increment on one counter"));
    /// assert!(!text.contains(report.verdict())); // `emit` prints the verdict after it
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    fn render(&self) -> String;
    /// Whether the lab showed what it should.
    ///
    /// ```
    /// # use shmlab::lessons::interleavings::{self, InterleavingsConfig};
    /// use shmlab::report::Report;
    ///
    /// # let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
    /// let report = interleavings::run(&config)?; // lab 07 runs no processes
    /// assert!(report.ok()); // the enumeration matched both formulas
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    fn ok(&self) -> bool {
        self.outcome().ok
    }
    /// One line: what happened and why.
    ///
    /// ```
    /// # use shmlab::lessons::interleavings::{self, InterleavingsConfig};
    /// use shmlab::report::Report;
    ///
    /// # let config = InterleavingsConfig { workers: 2, increments: 1, schedule: None };
    /// let report = interleavings::run(&config)?; // lab 07 runs no processes
    /// assert!(report.verdict().contains("20 interleavings"));
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    fn verdict(&self) -> &str {
        &self.outcome().verdict
    }
}

/// Prints `report` (as JSON if `json`) and returns the exit code: success if
/// the report is ok.
///
/// ```
/// use std::process::ExitCode;
/// use shmlab::lessons::interleavings::{self, InterleavingsConfig};
/// use shmlab::report;
///
/// let config = InterleavingsConfig { workers: 1, increments: 1, schedule: None };
/// let code = report::emit(&interleavings::run(&config)?, true)?; // one JSON object
/// assert_eq!(code, ExitCode::SUCCESS);
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn emit<R: Report>(report: &R, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.render());
        println!("verdict: {}", report.verdict());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Formats a rate such as `12.3 M/s`.
pub(crate) fn rate(per_second: f64) -> String {
    if per_second >= 1e9 {
        format!("{:.2} G/s", per_second / 1e9)
    } else if per_second >= 1e6 {
        format!("{:.1} M/s", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.1} k/s", per_second / 1e3)
    } else {
        format!("{per_second:.0} /s")
    }
}

/// A progress bar on standard error for long lab steps: drawn only on a
/// terminal and never with `--json`, so piped output stays clean.
#[derive(Debug)]
pub(crate) struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    /// A bar labelled `label`; hidden if `quiet` or stderr is not a terminal.
    pub(crate) fn new(label: &str, quiet: bool) -> Bar {
        use std::io::IsTerminal;
        if quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {pos}/{len} ({per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        Bar(Some(bar))
    }

    /// Moves the bar to `progress` (`done` of `total`, once known).
    pub(crate) fn update(&self, progress: crate::pool::Progress) {
        if let Some(bar) = &self.0 {
            if let Some(total) = progress.total {
                bar.set_length(total as u64);
            }
            bar.set_position(progress.done as u64);
        }
    }

    /// Removes the bar from the terminal.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The median of `values` (0 when empty; the mean of the two middle values
/// of an even count).
///
/// ```
/// use shmlab::report::median;
///
/// assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median(&[1.0, 4.0]), 2.5);
/// assert_eq!(median(&[]), 0.0);
/// ```
pub fn median(values: &[f64]) -> f64 {
    if values.len() % 2 == 1 || values.is_empty() {
        return percentile(values, 0.5);
    }
    // An even count has two middle values: their mean (nearest rank would
    // pick the upper one, so two repeats would report the slower run).
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let upper = sorted.len() / 2;
    (sorted[upper - 1] + sorted[upper]) / 2.0
}

/// The `q`-quantile (0.0..=1.0, nearest rank) of `values` (0 when empty).
pub(crate) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[rank]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5, "two middle values: their mean");
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 1.0), 5.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0), 1.0);
    }

    #[test]
    fn rates_pick_a_unit() {
        assert_eq!(rate(2.5e9), "2.50 G/s");
        assert_eq!(rate(12.34e6), "12.3 M/s");
        assert_eq!(rate(999.0), "999 /s");
    }
}
