//! Lab reports: a human text ending in a one-line verdict, or with `--json`
//! one JSON object whose keys are documented on each report type.

use std::process::ExitCode;

use serde::Serialize;

/// The three keys every lab's JSON starts with (flattened into the report).
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
pub trait Report: Serialize {
    /// The lab, whether it was ok, and its verdict.
    fn outcome(&self) -> &Outcome;
    /// The human-readable body, without the verdict.
    fn render(&self) -> String;
    /// Whether the lab showed what it should.
    fn ok(&self) -> bool {
        self.outcome().ok
    }
    /// One line: what happened and why.
    fn verdict(&self) -> &str {
        &self.outcome().verdict
    }
}

/// Prints `report` (as JSON if `json`) and returns the exit code: success if
/// the report is ok.
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
pub fn rate(per_second: f64) -> String {
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
pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    /// A bar labelled `label`; hidden if `quiet` or stderr is not a terminal.
    pub fn new(label: &str, quiet: bool) -> Bar {
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
    pub fn update(&self, progress: crate::pool::Progress) {
        if let Some(bar) = &self.0 {
            if let Some(total) = progress.total {
                bar.set_length(total as u64);
            }
            bar.set_position(progress.done as u64);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

/// The `q`-quantile (0.0..=1.0, nearest rank) of `values` (0 when empty).
pub fn percentile(values: &[f64], q: f64) -> f64 {
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
