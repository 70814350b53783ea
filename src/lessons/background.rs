//! What the rest of the machine did while a lab ran, from `/proc/stat`:
//! labs that time workers against each other (06, 11) report it, because a
//! busy machine, not the code, is the usual reason two workers do not run
//! twice as fast as one.
//!
//! ```
//! use std::path::Path;
//! use shmlab::lessons::background::{BUSY_CPUS, Background};
//! use shmlab::lessons::slots::{Measured, ScalingProbe, Topology, verdict};
//!
//! // Lab 06 on two cores: two workers did only 1.1× the work of one...
//! let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]);
//! let probe = ScalingProbe { one_worker_ops_per_s: 4e8, two_workers_ops_per_s: 4.4e8, ratio: 1.1 };
//! // ...while other processes kept 0.9 CPUs busy: the verdict names them.
//! let meanwhile = Background { other_cpus: 0.9, busy: 0.9 >= BUSY_CPUS };
//! let measured = Measured {
//!     probe: &probe, round_trip_ns: Some(80.0), max_workers: 2,
//!     padded_over_unpadded: Some(2.0), one_worker_ratio: Some(1.0), background: Some(meanwhile),
//! };
//! assert!(verdict(true, &two, &measured).contains("(other processes used 0.90 CPUs meanwhile)"));
//! ```

use serde::Serialize;

/// Other processes' CPU use during the lab, from `/proc/stat`: a busy
/// machine, not the topology, is the usual reason why two workers do not
/// count twice as fast as one.
///
/// ```
/// use shmlab::lessons::background::{BUSY_CPUS, Background};
///
/// let quiet = Background { other_cpus: 0.1, busy: 0.1 >= BUSY_CPUS };
/// assert!(!quiet.busy);
/// // In a lab's JSON: `background: {other_cpus, busy}`.
/// assert_eq!(serde_json::to_string(&quiet)?, r#"{"other_cpus":0.1,"busy":false}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Background {
    /// CPUs' worth of time other processes used, on average.
    pub other_cpus: f64,
    /// Whether that reached [`BUSY_CPUS`].
    pub busy: bool,
}

/// Other processes using this many CPUs' worth of time make the machine
/// "busy": they take a share that a pinned worker would otherwise have.
///
/// ```
/// use shmlab::lessons::background::BUSY_CPUS;
/// use shmlab::lessons::montecarlo::{self, MonteCarloConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let config = MonteCarloConfig {
///         samples: 10_000, batch: 1_000, steps: 1_000, master_seed: 42,
///         max_workers: 1, demo_workers: 1, repeats: 1,
///     };
///     // Read from /proc/stat around lab 11's runs (`None` if no clock tick passed).
///     let meanwhile = montecarlo::run(&config)?.background;
///     assert!(meanwhile.is_none_or(|b| b.busy == (b.other_cpus >= BUSY_CPUS)));
///     Ok(())
/// }
/// ```
pub const BUSY_CPUS: f64 = 0.25;

/// Clock ticks: the machine's busy and total time (`/proc/stat`), and this
/// process's own with its reaped children (`/proc/self/stat`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticks {
    busy: u64,
    total: u64,
    own: u64,
    cpus: usize,
}

impl Ticks {
    /// Reads the counters now (`None` without `/proc`).
    pub(crate) fn now() -> Option<Ticks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal
        let [user, nice, system, idle, iowait, irq, softirq, steal] = *fields.get(..8)? else {
            return None;
        };
        let cpus = stat
            .lines()
            .filter(|l| {
                l.strip_prefix("cpu")
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
            })
            .count();
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        // utime stime cutime cstime: the 12th to 15th fields after the ')'.
        let own = me
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|f| f.parse::<u64>().ok())
            .sum::<Option<u64>>()?;
        let busy = user + nice + system + irq + softirq;
        Some(Ticks {
            busy,
            total: busy + idle + iowait + steal,
            own,
            cpus: cpus.max(1),
        })
    }

    /// Other processes' share since `before` (this process's children must
    /// have been reaped by now to be counted as its own).
    pub(crate) fn since(self, before: Ticks) -> Option<Background> {
        let total = self.total.checked_sub(before.total).filter(|&t| t > 0)?;
        let others = self
            .busy
            .saturating_sub(before.busy)
            .saturating_sub(self.own.saturating_sub(before.own));
        let other_cpus = others as f64 / total as f64 * self.cpus as f64;
        Some(Background {
            other_cpus,
            busy: other_cpus >= BUSY_CPUS,
        })
    }
}
