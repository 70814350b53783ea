//! Command-line pieces shared by the labs: limits that turn absurd values
//! into clear errors before anything starts.
//!
//! ```
//! use clap::Parser;
//! use shmlab::cli::{Common, parse_workers};
//!
//! /// A lab's options: its own, then those every lab has.
//! #[derive(Parser)]
//! struct Args {
//!     #[arg(long, default_value = "2", value_parser = parse_workers)]
//!     workers: usize,
//!     #[command(flatten)]
//!     common: Common,
//! }
//!
//! let err = Args::try_parse_from(["lab04-race", "--workers", "0"]).err().expect("refused");
//! assert_eq!(err.exit_code(), 2); // a usage error, before any process starts
//! assert!(err.to_string().contains("at least 1 worker is needed"));
//! assert_eq!(Args::try_parse_from(["lab04-race", "--json"])?.workers, 2);
//! # Ok::<(), clap::Error>(())
//! ```

use clap::Args;

/// At most this many workers: more would only measure the scheduler, and
/// each is a whole process.
///
/// ```
/// use shmlab::cli::{MAX_WORKERS, parse_workers};
///
/// assert_eq!(parse_workers(&MAX_WORKERS.to_string()), Ok(MAX_WORKERS));
/// let err = parse_workers(&(MAX_WORKERS + 1).to_string()).unwrap_err();
/// assert_eq!(err, format!("at most {MAX_WORKERS} workers (got {})", MAX_WORKERS + 1));
/// ```
pub const MAX_WORKERS: usize = 256;

/// Options every lab has.
///
/// ```
/// use clap::Parser;
/// use shmlab::cli::Common;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     common: Common,
/// }
///
/// let cli = Cli::try_parse_from(["lab01-processes", "--json"])?;
/// assert!(cli.common.json);
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
}

/// Parses a worker count: 1..=MAX_WORKERS.
///
/// ```
/// use shmlab::cli::parse_workers;
///
/// assert_eq!(parse_workers("4"), Ok(4));
/// assert_eq!(parse_workers("0"), Err("at least 1 worker is needed".to_string()));
/// assert!(parse_workers("100000").is_err());
/// ```
pub fn parse_workers(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    match n {
        0 => Err("at least 1 worker is needed".to_string()),
        n if n > MAX_WORKERS => Err(format!("at most {MAX_WORKERS} workers (got {n})")),
        n => Ok(n),
    }
}

/// Parses a positive count no larger than `max`, for a flag named in errors.
///
/// ```
/// use shmlab::cli::parse_count;
///
/// assert_eq!(parse_count("1_000_000", u64::MAX), Ok(1_000_000));
/// assert_eq!(parse_count("0", 10), Err("must be at least 1".to_string()));
/// assert_eq!(parse_count("11", 10), Err("at most 10 (got 11)".to_string()));
/// ```
pub fn parse_count(s: &str, max: u64) -> Result<u64, String> {
    let s = s.replace('_', "");
    let n: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    match n {
        0 => Err("must be at least 1".to_string()),
        n if n > max => Err(format!("at most {max} (got {n})")),
        n => Ok(n),
    }
}

/// Parses a count from 0 to `max` (zero allowed, as in "think 0 µs").
///
/// ```
/// use shmlab::cli::parse_up_to;
///
/// assert_eq!(parse_up_to("0", 5), Ok(0));
/// assert_eq!(parse_up_to("6", 5), Err("at most 5 (got 6)".to_string()));
/// ```
pub fn parse_up_to(s: &str, max: u64) -> Result<u64, String> {
    let s = s.replace('_', "");
    let n: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if n > max {
        return Err(format!("at most {max} (got {n})"));
    }
    Ok(n)
}

/// Parses whole milliseconds, 1 to `max_ms`, into a duration.
///
/// ```
/// use std::time::Duration;
/// use shmlab::cli::parse_millis;
///
/// assert_eq!(parse_millis("250", 1_000), Ok(Duration::from_millis(250)));
/// assert!(parse_millis("0", 1_000).is_err());
/// ```
pub fn parse_millis(s: &str, max_ms: u64) -> Result<std::time::Duration, String> {
    parse_count(s, max_ms).map(std::time::Duration::from_millis)
}

/// Parses seconds (a decimal such as `0.5`), above 0 and at most `max`.
///
/// ```
/// use std::time::Duration;
/// use shmlab::cli::parse_seconds;
///
/// assert_eq!(parse_seconds("0.5", 10.0), Ok(Duration::from_millis(500)));
/// assert!(parse_seconds("0", 10.0).is_err());
/// assert!(parse_seconds("nan", 10.0).is_err());
/// ```
pub fn parse_seconds(s: &str, max: f64) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= max) {
        return Err(format!(
            "must be above 0 and at most {max} seconds (got {s})"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Parses a philosopher count: 2 to 64 (one philosopher has one fork).
///
/// ```
/// use shmlab::cli::parse_philosophers;
///
/// assert_eq!(parse_philosophers("5"), Ok(5));
/// assert!(parse_philosophers("1").is_err());
/// assert!(parse_philosophers("65").is_err());
/// ```
#[cfg(not(loom))]
pub fn parse_philosophers(s: &str) -> Result<usize, String> {
    let n = parse_up_to(s, u64::MAX)? as usize;
    crate::philosophers::check_philosophers(n)
        .map(|()| n)
        .map_err(|e| e.to_string())
}

/// Parses lab 07's worker count: 1 to 4, named A to D.
///
/// ```
/// use shmlab::cli::parse_interleaving_workers;
///
/// assert_eq!(parse_interleaving_workers("3"), Ok(3));
/// assert!(parse_interleaving_workers("5").is_err());
/// ```
pub fn parse_interleaving_workers(s: &str) -> Result<usize, String> {
    let n = parse_up_to(s, u64::MAX)? as usize;
    crate::lessons::interleavings::check_workers(n)
        .map(|()| n)
        .map_err(|e| e.to_string())
}

/// The number of CPUs this process may use (at least 1).
///
/// ```
/// use shmlab::cli::available_cpus;
/// use shmlab::process::allowed_cpus;
///
/// let cpus = available_cpus();
/// // The affinity mask caps it (and a cgroup CPU quota may lower it further).
/// assert!(cpus >= 1 && cpus <= allowed_cpus().len().max(1));
/// ```
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_worker_counts_are_errors() {
        assert!(parse_workers("0").is_err());
        assert!(parse_workers("100000").is_err());
        assert!(parse_workers("-1").is_err());
        assert_eq!(parse_workers("4"), Ok(4));
    }

    #[test]
    fn absurd_philosophers_and_times_are_errors() {
        assert!(parse_philosophers("1").is_err());
        assert!(parse_philosophers("65").is_err());
        assert_eq!(parse_philosophers("5"), Ok(5));
        assert!(parse_seconds("0", 10.0).is_err());
        assert!(parse_seconds("nan", 10.0).is_err());
        assert!(parse_seconds("11", 10.0).is_err());
        assert!(parse_millis("0", 10).is_err());
        assert_eq!(parse_up_to("0", 5), Ok(0));
        assert!(parse_up_to("6", 5).is_err());
    }

    #[test]
    fn interleaving_workers_are_letters_a_to_d() {
        assert!(parse_interleaving_workers("0").is_err());
        assert!(parse_interleaving_workers("5").is_err());
        assert_eq!(parse_interleaving_workers("3"), Ok(3));
    }

    #[test]
    fn counts_accept_underscores_and_reject_zero() {
        assert_eq!(parse_count("1_000_000", u64::MAX), Ok(1_000_000));
        assert!(parse_count("0", 10).is_err());
        assert!(parse_count("11", 10).is_err());
    }
}
