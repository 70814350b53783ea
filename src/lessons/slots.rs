//! Lab 06: per-worker slots, adjacent or padded (false sharing), and logical
//! versus physical cores.
//!
//! Every worker adds 1 to a slot of its own in one shared array, so no
//! update is ever lost. With adjacent slots (`slots`, 8 bytes apart) the
//! workers' slots share one 64-byte cache line; with `padded-slots` each slot
//! is [`PADDED_STRIDE`] cells (crossbeam's `CachePadded`: 128 bytes on
//! x86-64) from the next. On two cores with private L1 caches the shared
//! line must move between the caches whenever the other worker has written
//! it — false sharing. On one core (SMT siblings) or one CPU there is one
//! L1 and nothing moves.
//!
//! So the lab first finds out which it is running on, because a virtual
//! machine's topology is whatever the hypervisor says:
//!
//! 1. the topology the kernel reports ([`Topology::detect`]: sysfs and
//!    `/proc/cpuinfo`, for the CPUs this process may use), and which CPU
//!    each worker is pinned to;
//! 2. a scaling probe: a private count (map-reduce, nothing shared) with
//!    1 and with 2 workers. Two free cores count about 2× as fast as one;
//!    below [`SCALING_THRESHOLD`]× the two workers got one core's worth of
//!    execution ([`shares_a_core`]) — SMT siblings, one CPU, or, most
//!    often, other processes taking a share ([`Background`]);
//! 3. a cache-line round trip between workers 0 and 1
//!    ([`line_round_trip`]): tens of nanoseconds or less within one core's
//!    L1, more between two cores' caches, milliseconds if the two take
//!    turns on one CPU ([`shares_l1`]);
//!
//! and then runs `slots`, `padded-slots` and `map-reduce` (the no-sharing
//! reference) at 1..=W workers, interleaved in rounds, and says what the
//! padded ÷ unpadded ratio means here, next to the 1-worker control — or
//! that false sharing cannot show here, and why.
//!
//! ```
//! use std::time::Duration;
//! use shmlab::lessons::slots::{self, SlotsConfig};
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // pool workers run their loop here
//!     // A quick run; the lab's defaults time each cell for longer.
//!     let config = SlotsConfig { max_workers: 2, run_time: Duration::from_millis(1), repeats: 1 };
//!     let report = slots::run(&config)?;
//!     assert!(report.outcome.ok, "{}", report.outcome.verdict);
//!     Ok(())
//! }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::counting::{CountError, PADDED_STRIDE, Strategy, count_in};
use crate::pool::Pool;
use crate::process::{self, StartGate};
use crate::report::{self, Outcome, Report};
use crate::shm::{DATA_OFFSET, SharedArray};

/// Two workers must count at least this many times as fast as one (with
/// nothing shared) before the lab treats them as running on two cores.
///
/// ```
/// use std::path::Path;
/// use shmlab::lessons::slots::{SCALING_THRESHOLD, Topology, shares_a_core};
///
/// let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// // Whatever sysfs says, the probe decides: just below the threshold is one core's worth.
/// assert!(!shares_a_core(&two, SCALING_THRESHOLD));
/// assert!(shares_a_core(&two, SCALING_THRESHOLD - 0.01));
/// ```
pub const SCALING_THRESHOLD: f64 = 1.3;

/// Where Linux describes the CPUs.
///
/// ```
/// use std::path::Path;
/// use shmlab::lessons::slots::{SYSFS_CPU, parse_cpu_list};
/// use shmlab::process::allowed_cpus;
///
/// // `online`: every CPU of the machine, among them those this process may use.
/// let online = parse_cpu_list(&std::fs::read_to_string(Path::new(SYSFS_CPU).join("online"))?);
/// assert!(allowed_cpus().iter().all(|cpu| online.contains(cpu)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const SYSFS_CPU: &str = "/sys/devices/system/cpu";

/// Options of lab 06.
///
/// ```
/// use std::time::Duration;
/// use shmlab::lessons::slots::{self, SlotsConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop here
///     let config = SlotsConfig { max_workers: 1, run_time: Duration::from_millis(1), repeats: 1 };
///     let report = slots::run(&config)?;
///     assert!(report.outcome.ok);
///     assert!(!report.false_sharing_can_show); // one worker shares nothing
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SlotsConfig {
    /// Workers from 1 up to this.
    pub max_workers: usize,
    /// About how long each timed run should take.
    pub run_time: Duration,
    /// Timed rounds (the median is reported).
    pub repeats: usize,
}

/// One logical CPU as sysfs describes it.
///
/// ```
/// use shmlab::lessons::slots::Topology;
///
/// let first = &Topology::detect().cpus[0];
/// assert!(first.thread_siblings.contains(&first.cpu)); // a core lists its own CPUs
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuPlace {
    /// The CPU number.
    pub cpu: usize,
    /// `topology/physical_package_id` (the socket).
    pub package: Option<u32>,
    /// `topology/core_id`.
    pub core_id: Option<u32>,
    /// `topology/thread_siblings_list`: the logical CPUs on the same
    /// physical core (itself included).
    pub thread_siblings: Vec<usize>,
    /// The CPUs that share this CPU's level-1 data cache
    /// (`cache/index*/shared_cpu_list`).
    pub l1d_shared_with: Vec<usize>,
}

/// The CPUs this process may use, as the kernel reports them.
///
/// ```
/// use shmlab::lessons::slots::Topology;
/// use shmlab::process::allowed_cpus;
///
/// let here = Topology::detect();
/// assert_eq!(here.logical_cpus, allowed_cpus().len().max(1));
/// assert!(here.physical_cores <= here.logical_cpus);
/// assert!(here.machine_logical_cpus >= here.logical_cpus);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// Logical CPUs this process may use (`sched_getaffinity`).
    pub logical_cpus: usize,
    /// Physical cores among them: distinct sets of thread siblings (equal to
    /// `logical_cpus` if sysfs could not be read).
    pub physical_cores: usize,
    /// Groups of allowed logical CPUs that sysfs says share one physical
    /// core (SMT siblings, "hyper-threads"); empty when it lists none.
    pub smt_siblings: Vec<Vec<usize>>,
    /// Physical packages (sockets) among the allowed CPUs.
    pub packages: usize,
    /// Logical CPUs online in the whole machine, whatever this process may
    /// use: Python's `os.cpu_count()` and `psutil.cpu_count()`.
    pub machine_logical_cpus: usize,
    /// Physical cores in the whole machine: `psutil.cpu_count(logical=False)`.
    pub machine_physical_cores: usize,
    /// Whether sysfs gave the topology (if not, every CPU counts as a core).
    pub from_sysfs: bool,
    /// `model name` in `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// Whether `/proc/cpuinfo` has the `hypervisor` flag: a virtual machine,
    /// whose topology is whatever the hypervisor chose to show.
    pub hypervisor: bool,
    /// The cache line size (`coherency_line_size`; 64 if unknown).
    pub cache_line_bytes: usize,
    /// Each allowed CPU.
    pub cpus: Vec<CpuPlace>,
}

/// Parses a Linux CPU list such as `0-3,8,10-11`.
///
/// ```
/// use shmlab::lessons::slots::parse_cpu_list;
///
/// assert_eq!(parse_cpu_list("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11]);
/// assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
/// ```
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.trim().parse::<usize>(), hi.trim().parse::<usize>()) {
            // A malformed huge range must not exhaust memory.
            cpus.extend(lo..=hi.min(lo.saturating_add(4096)));
        }
    }
    cpus
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

impl Topology {
    /// The topology of the CPUs this process may use, from
    /// `/sys/devices/system/cpu` and `/proc/cpuinfo`.
    ///
    /// ```
    /// use shmlab::lessons::slots::Topology;
    ///
    /// let here = Topology::detect();
    /// assert_eq!(here.cpus.len(), here.logical_cpus);
    /// assert!(here.cache_line_bytes > 0);
    /// ```
    pub fn detect() -> Topology {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Topology::read(
            Path::new(SYSFS_CPU),
            &cpuinfo,
            &crate::process::allowed_cpus(),
        )
    }

    /// The topology of `allowed` as described by a sysfs CPU directory
    /// (`root`, normally [`SYSFS_CPU`]) and the text of `/proc/cpuinfo`.
    ///
    /// ```
    /// use shmlab::lessons::slots::Topology;
    ///
    /// // A fake sysfs: CPUs 0 and 1 are two threads of one core.
    /// let root = std::env::temp_dir().join(format!("shmlab-doc-sysfs-{}", std::process::id()));
    /// for cpu in 0..2 {
    ///     let topology = root.join(format!("cpu{cpu}/topology"));
    ///     std::fs::create_dir_all(&topology)?;
    ///     std::fs::write(topology.join("thread_siblings_list"), "0-1\n")?;
    /// }
    /// let smt = Topology::read(&root, "model name\t: Test CPU\n", &[0, 1]);
    /// std::fs::remove_dir_all(&root)?;
    /// assert_eq!((smt.logical_cpus, smt.physical_cores), (2, 1));
    /// assert_eq!(smt.smt_siblings, [[0, 1]]);
    /// assert_eq!(smt.cpu_model.as_deref(), Some("Test CPU"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(root: &Path, cpuinfo: &str, allowed: &[usize]) -> Topology {
        let mut allowed = allowed.to_vec();
        if allowed.is_empty() {
            allowed.push(0); // affinity unknown: we run somewhere
        }
        let mut cpus = Vec::with_capacity(allowed.len());
        let mut line = None;
        let mut from_sysfs = true;
        for &cpu in &allowed {
            let dir = root.join(format!("cpu{cpu}"));
            let topo = dir.join("topology");
            let number = |name: &str| read_trimmed(&topo.join(name)).and_then(|s| s.parse().ok());
            let thread_siblings = read_trimmed(&topo.join("thread_siblings_list"))
                .map(|s| parse_cpu_list(&s))
                .filter(|s| s.contains(&cpu));
            from_sysfs &= thread_siblings.is_some();
            let mut l1d_shared_with = Vec::new();
            for index in 0..8 {
                let cache = dir.join("cache").join(format!("index{index}"));
                let level = read_trimmed(&cache.join("level"));
                let kind = read_trimmed(&cache.join("type"));
                if level.as_deref() == Some("1") && kind.as_deref() == Some("Data") {
                    l1d_shared_with = read_trimmed(&cache.join("shared_cpu_list"))
                        .map(|s| parse_cpu_list(&s))
                        .unwrap_or_default();
                    line = line.or_else(|| {
                        read_trimmed(&cache.join("coherency_line_size"))
                            .and_then(|s| s.parse().ok())
                    });
                }
            }
            cpus.push(CpuPlace {
                cpu,
                package: number("physical_package_id"),
                core_id: number("core_id"),
                thread_siblings: thread_siblings.unwrap_or_else(|| vec![cpu]),
                l1d_shared_with,
            });
        }
        // The whole machine, as the tutorials' cpu_count() sees it.
        let online = read_trimmed(&root.join("online"))
            .map(|s| parse_cpu_list(&s))
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| allowed.clone());
        let mut machine_cores: Vec<Vec<usize>> = online
            .iter()
            .map(|&cpu| {
                read_trimmed(&root.join(format!("cpu{cpu}/topology/thread_siblings_list")))
                    .map(|s| parse_cpu_list(&s))
                    .filter(|s| s.contains(&cpu))
                    .unwrap_or_else(|| vec![cpu])
            })
            .collect();
        machine_cores.sort();
        machine_cores.dedup();
        // A physical core is a set of thread siblings; keep only the
        // allowed CPUs of each.
        let mut cores: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for place in &cpus {
            cores
                .entry(place.thread_siblings.clone())
                .or_default()
                .push(place.cpu);
        }
        let mut packages: Vec<Option<u32>> = cpus.iter().map(|c| c.package).collect();
        packages.sort();
        packages.dedup();
        let field = |key: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        Topology {
            logical_cpus: cpus.len(),
            physical_cores: cores.len(),
            smt_siblings: cores.into_values().filter(|g| g.len() > 1).collect(),
            packages: packages.len(),
            machine_logical_cpus: online.len(),
            machine_physical_cores: machine_cores.len(),
            from_sysfs,
            cpu_model: field("model name"),
            hypervisor: field("flags")
                .is_some_and(|f| f.split_whitespace().any(|w| w == "hypervisor")),
            cache_line_bytes: line.filter(|&l| l > 0).unwrap_or(64),
            cpus,
        }
    }

    /// The CPU worker `index` is pinned to: the `index`-th allowed CPU, round
    /// robin (as [`crate::process::pin_to_cpu`] does).
    ///
    /// ```
    /// use std::path::Path;
    /// use shmlab::lessons::slots::Topology;
    ///
    /// let t = Topology::read(Path::new("/no/sysfs"), "", &[2, 3]); // `taskset -c 2,3`
    /// assert_eq!((t.worker_cpu(0), t.worker_cpu(1), t.worker_cpu(2)), (2, 3, 2));
    /// ```
    pub fn worker_cpu(&self, index: usize) -> usize {
        self.cpus[index % self.cpus.len()].cpu
    }

    /// Whether sysfs puts logical CPUs `a` and `b` on one physical core.
    ///
    /// ```
    /// use std::path::Path;
    /// use shmlab::lessons::slots::Topology;
    ///
    /// // Without sysfs every CPU counts as a core of its own.
    /// let t = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]);
    /// assert!(t.same_core(1, 1) && !t.same_core(0, 1));
    /// ```
    pub fn same_core(&self, a: usize, b: usize) -> bool {
        let siblings = |cpu| {
            self.cpus
                .iter()
                .find(|c| c.cpu == cpu)
                .map(|c| &c.thread_siblings)
        };
        a == b || siblings(a).is_some_and(|s| s.contains(&b))
    }
}

/// Whether workers 0 and 1 get only one core's worth of execution: this
/// process may use one CPU only, sysfs puts their CPUs on one core, or two
/// of them counting privately did less than [`SCALING_THRESHOLD`]× the work
/// of one (`probe_ratio`) — whatever sysfs says.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// # let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// use shmlab::lessons::slots::shares_a_core;
///
/// assert!(!shares_a_core(&two, 1.9)); // two workers did 1.9× the work of one
/// assert!(shares_a_core(&two, 1.0)); // only one core's worth, whatever sysfs says
/// ```
pub fn shares_a_core(topology: &Topology, probe_ratio: f64) -> bool {
    topology.logical_cpus < 2
        || topology.same_core(topology.worker_cpu(0), topology.worker_cpu(1))
        || probe_ratio < SCALING_THRESHOLD
}

/// A cache line that goes from one worker to the other and back faster than
/// this never left one core: the two are SMT siblings sharing one L1. A
/// rough line: published core-to-core figures are about 10–20 ns for a
/// round trip between SMT siblings, 30–50 ns between cores that share an L3
/// slice, 80 ns to several hundred across dies or sockets.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// # let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// use shmlab::lessons::slots::{SHARED_L1_BELOW_NS, shares_l1};
///
/// // Sysfs says two cores, but a round trip this fast never left one L1.
/// assert!(shares_l1(&two, Some(SHARED_L1_BELOW_NS - 1.0)));
/// assert!(!shares_l1(&two, Some(SHARED_L1_BELOW_NS)));
/// ```
pub const SHARED_L1_BELOW_NS: f64 = 25.0;

/// A round trip slower than this means the two workers take turns on one
/// CPU: the other side only answers once the scheduler lets it run.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// # let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// use shmlab::lessons::slots::{TAKING_TURNS_ABOVE_NS, shares_l1};
///
/// // Slower than this, the workers never ran at the same time: no false
/// // sharing can show, as with one L1.
/// assert!(!shares_l1(&two, Some(TAKING_TURNS_ABOVE_NS)));
/// assert!(shares_l1(&two, Some(TAKING_TURNS_ABOVE_NS + 1.0)));
/// ```
pub const TAKING_TURNS_ABOVE_NS: f64 = 20_000.0;

/// Whether a cache line written by worker 0 stays in the L1 cache that
/// worker 1 reads it from (so that false sharing cannot happen): one CPU,
/// sysfs puts both CPUs on one core, or the measured round trip
/// (`round_trip_ns`) is shorter than [`SHARED_L1_BELOW_NS`] (one core) or
/// longer than [`TAKING_TURNS_ABOVE_NS`] (the workers never run at the
/// same moment; `None`: not one block of round trips finished within a
/// second, see [`line_round_trip`]).
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// # let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// use shmlab::lessons::slots::shares_l1;
///
/// assert!(!shares_l1(&two, Some(80.0))); // a line between two cores' caches
/// assert!(shares_l1(&two, Some(12.0))); // too fast: SMT siblings, one L1
/// assert!(shares_l1(&two, None)); // no round trip finished: taking turns
/// ```
pub fn shares_l1(topology: &Topology, round_trip_ns: Option<f64>) -> bool {
    topology.logical_cpus < 2
        || topology.same_core(topology.worker_cpu(0), topology.worker_cpu(1))
        || round_trip_ns
            .is_none_or(|ns| !(SHARED_L1_BELOW_NS..=TAKING_TURNS_ABOVE_NS).contains(&ns))
}

/// Where one worker's slot lies in the segment.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// # let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// use shmlab::counting::Strategy;
/// use shmlab::lessons::slots::layout;
///
/// let adjacent = layout(Strategy::Slots, 2, 64, &two);
/// let (w0, w1) = (&adjacent.slots[0], &adjacent.slots[1]);
/// assert_eq!(w1.offset_bytes - w0.offset_bytes, 8); // one i64 apart
/// assert_eq!((w0.line, w0.cpu), (w0.offset_bytes / 64, 0));
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct SlotPlace {
    /// The worker.
    pub worker: usize,
    /// The CPU it is pinned to.
    pub cpu: usize,
    /// Bytes from the start of the segment (the mapping is page-aligned in
    /// every process, so the offset decides the cache line everywhere).
    pub offset_bytes: usize,
    /// `offset_bytes / cache line size`.
    pub line: usize,
}

/// How one strategy lays out the workers' slots.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// # let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// use shmlab::counting::{PADDED_STRIDE, Strategy};
/// use shmlab::lessons::slots::layout;
///
/// let padded = layout(Strategy::PaddedSlots, 2, 64, &two);
/// assert_eq!(padded.stride_bytes, PADDED_STRIDE * 8);
/// assert_eq!(serde_json::to_value(&padded)?["strategy"], "padded-slots");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct SlotLayout {
    /// `slots` or `padded-slots`.
    pub strategy: &'static str,
    /// Bytes from one worker's slot to the next.
    pub stride_bytes: usize,
    /// Each worker's slot.
    pub slots: Vec<SlotPlace>,
    /// Groups of workers whose slots share a cache line.
    pub shared_lines: Vec<Vec<usize>>,
}

/// The layout of `strategy`'s slots for `workers` workers, with lines of
/// `line_bytes`.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// # let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// use shmlab::counting::Strategy;
/// use shmlab::lessons::slots::layout;
///
/// // Four adjacent slots share one 64-byte line; padded ones share none.
/// assert_eq!(layout(Strategy::Slots, 4, 64, &two).shared_lines, [[0, 1, 2, 3]]);
/// assert!(layout(Strategy::PaddedSlots, 4, 64, &two).shared_lines.is_empty());
/// ```
pub fn layout(
    strategy: Strategy,
    workers: usize,
    line_bytes: usize,
    topology: &Topology,
) -> SlotLayout {
    let cell = std::mem::size_of::<i64>();
    let stride_bytes = stride_cells(strategy) * cell;
    let line_bytes = line_bytes.max(1);
    let slots: Vec<SlotPlace> = (0..workers)
        .map(|worker| {
            let offset_bytes = DATA_OFFSET + worker * stride_bytes;
            SlotPlace {
                worker,
                cpu: topology.worker_cpu(worker),
                offset_bytes,
                line: offset_bytes / line_bytes,
            }
        })
        .collect();
    let mut by_line: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for s in &slots {
        by_line.entry(s.line).or_default().push(s.worker);
    }
    SlotLayout {
        strategy: strategy.name(),
        stride_bytes,
        slots,
        shared_lines: by_line.into_values().filter(|g| g.len() > 1).collect(),
    }
}

fn stride_cells(strategy: Strategy) -> usize {
    match strategy {
        Strategy::PaddedSlots => PADDED_STRIDE,
        _ => 1,
    }
}

/// The scaling probe: a private count (map-reduce, nothing shared) with 1
/// and with 2 workers, in the same rounds as the table.
///
/// ```
/// use shmlab::lessons::slots::{SCALING_THRESHOLD, ScalingProbe};
///
/// let probe =
///     ScalingProbe { one_worker_ops_per_s: 4e8, two_workers_ops_per_s: 7.8e8, ratio: 1.95 };
/// assert!(probe.ratio >= SCALING_THRESHOLD); // two cores' worth
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct ScalingProbe {
    /// Median increments per second of one worker.
    pub one_worker_ops_per_s: f64,
    /// Median increments per second of two workers together.
    pub two_workers_ops_per_s: f64,
    /// Median over the rounds of (two workers ÷ one worker in the same
    /// round): about 2 on two free cores, about 1 on one core's worth.
    pub ratio: f64,
}

/// Slot strides in bytes.
///
/// ```
/// use shmlab::counting::PADDED_STRIDE;
/// use shmlab::lessons::slots::Strides;
///
/// let strides = Strides { slots: 8, padded: PADDED_STRIDE * 8 };
/// assert!(strides.padded >= 64); // at least a cache line apart
/// assert_eq!(serde_json::to_value(&strides)?["slots"], 8);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Strides {
    /// Adjacent slots: one `i64`.
    pub slots: usize,
    /// Padded slots: crossbeam's `CachePadded`.
    pub padded: usize,
}

/// One cell of the table.
///
/// ```
/// use shmlab::lessons::slots::SlotsResult;
///
/// let cell = SlotsResult {
///     strategy: "padded-slots",
///     workers: 2,
///     increments_per_worker: 1_000_000,
///     ops_per_s: 6e8,
///     exact: true,
/// };
/// assert_eq!(serde_json::to_value(&cell)?["strategy"], "padded-slots");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct SlotsResult {
    /// `slots`, `padded-slots` or `map-reduce`.
    pub strategy: &'static str,
    /// Worker processes.
    pub workers: usize,
    /// Increments each worker made per run.
    pub increments_per_worker: u64,
    /// Median increments per second, all workers together.
    pub ops_per_s: f64,
    /// Whether every run ended with workers × increments.
    pub exact: bool,
}

/// padded ÷ unpadded at one worker count.
///
/// ```
/// use shmlab::lessons::slots::Ratio;
///
/// let ratio = Ratio { workers: 2, padded_over_unpadded: 2.4 };
/// assert_eq!(serde_json::to_string(&ratio)?, r#"{"workers":2,"padded_over_unpadded":2.4}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Worker processes.
    pub workers: usize,
    /// Median over the rounds of (padded ops/s ÷ unpadded ops/s in the same
    /// round).
    pub padded_over_unpadded: f64,
}

/// The JSON of lab 06: `lab`, `ok`, `verdict`; the topology (`logical_cpus`,
/// `physical_cores`, `smt_siblings`, `packages`, `machine_logical_cpus`,
/// `machine_physical_cores`, `from_sysfs`, `cpu_model`,
/// `hypervisor`, `cache_line_bytes`, `cpus: [{cpu, package, core_id,
/// thread_siblings, l1d_shared_with}]`); `worker_cpus` (the CPU of worker
/// 0, 1, …); `scaling_probe: {one_worker_ops_per_s, two_workers_ops_per_s,
/// ratio}`; `shares_a_core`; `line_round_trip_ns` (null if not measured);
/// `shares_l1`; `false_sharing_can_show`; `stride_bytes: {slots, padded}`;
/// `layout: [{strategy, stride_bytes, slots: [{worker, cpu, offset_bytes,
/// line}], shared_lines}]`; `max_workers`, `repeats`; `results: [{strategy,
/// workers, increments_per_worker, ops_per_s, exact}]`; `ratios: [{workers,
/// padded_over_unpadded}]`; `padded_over_unpadded` (at `max_workers`); and
/// `background: {other_cpus, busy}` (`null` without `/proc`, or when the run was too short for a clock tick to pass).
///
/// ```
/// use std::time::Duration;
/// use shmlab::lessons::slots::{self, SlotsConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop here
///     let config = SlotsConfig { max_workers: 2, run_time: Duration::from_millis(1), repeats: 1 };
///     let json = serde_json::to_value(slots::run(&config)?)?;
///     assert_eq!(json["lab"], "lab06-slots");
///     assert!(json["logical_cpus"].as_u64() >= Some(1)); // the topology, flattened in
///     assert_eq!(json["layout"][1]["strategy"], "padded-slots");
///     Ok(())
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct SlotsReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What the kernel says about the CPUs.
    #[serde(flatten)]
    pub topology: Topology,
    /// The CPU each worker (0, 1, …, max_workers − 1) is pinned to.
    pub worker_cpus: Vec<usize>,
    /// 1 vs 2 workers counting privately.
    pub scaling_probe: ScalingProbe,
    /// Whether workers 0 and 1 get only one core's worth of execution
    /// ([`shares_a_core`]).
    pub shares_a_core: bool,
    /// Median time for a cache line to go from worker 0 to worker 1 and
    /// back, in nanoseconds.
    pub line_round_trip_ns: Option<f64>,
    /// Whether workers 0 and 1 share one L1 cache, or take turns
    /// ([`shares_l1`]).
    pub shares_l1: bool,
    /// Whether two workers write their slots from two caches at the same
    /// time, which false sharing needs.
    pub false_sharing_can_show: bool,
    /// Slot strides.
    pub stride_bytes: Strides,
    /// Where the slots lie for `max_workers` workers.
    pub layout: Vec<SlotLayout>,
    /// The largest worker count run.
    pub max_workers: usize,
    /// Timed rounds.
    pub repeats: usize,
    /// The table.
    pub results: Vec<SlotsResult>,
    /// padded ÷ unpadded per worker count.
    pub ratios: Vec<Ratio>,
    /// padded ÷ unpadded at `max_workers`.
    pub padded_over_unpadded: Option<f64>,
    /// What the rest of the machine did meanwhile (`null` without `/proc`, or when the run was too short for a clock tick to pass).
    pub background: Option<Background>,
}

use super::background::Ticks;
pub use super::background::{BUSY_CPUS, Background};

/// Why lab 06 failed.
///
/// ```
/// use shmlab::lessons::slots::SlotsError;
///
/// let err = SlotsError::RoundTrip("worker 1 never arrived".to_string());
/// assert_eq!(err.to_string(), "the cache-line round trip failed: worker 1 never arrived");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum SlotsError {
    /// A counting run.
    #[error(transparent)]
    Count(#[from] CountError),
    /// The pool.
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
    /// A segment.
    #[error(transparent)]
    Shm(#[from] crate::shm::ShmError),
    /// The round-trip workers failed.
    #[error("the cache-line round trip failed: {0}")]
    RoundTrip(String),
}

/// How long workers and parent wait for each other at the start gate.
const GATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Round trips timed together (one clock reading per block).
const BLOCK: u64 = 64;
/// The round-trip measurement stops after this, however far it got.
const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct RoundTripArgs {
    index: usize,
    cell: String,
    gate: String,
    rounds: u64,
}

/// Worker 0 writes an odd number into one shared cell and spins until
/// worker 1 has answered with the next even number; `rounds` times. Each
/// round trip moves the cell's cache line to worker 1 and back. Worker 0
/// returns the nanoseconds per round trip of each block of [`BLOCK`].
fn round_trip_worker(args: RoundTripArgs) -> Result<Vec<f64>, String> {
    let cell = SharedArray::<i64>::open(&args.cell).map_err(|e| e.to_string())?;
    let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
    process::pin_to_cpu(args.index);
    gate.arrive_and_wait(GATE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let cells = cell.cells();
    let started = Instant::now();
    let mut spins = 0u32;
    // Spins until the cell holds `want`; false once the time is up.
    let mut wait_for = |want: i64| loop {
        if cells.load(0) == Ok(want) {
            return true;
        }
        spins = spins.wrapping_add(1);
        if spins % 1024 == 0 && started.elapsed() > ROUND_TRIP_LIMIT {
            return false;
        }
    };
    let mut blocks = Vec::new();
    let mut block_start = process::monotonic_ns();
    for i in 0..args.rounds as i64 {
        if args.index == 0 {
            let _ = cells.store(0, 2 * i + 1);
            if !wait_for(2 * i + 2) {
                break;
            }
            if (i as u64 + 1) % BLOCK == 0 {
                let now = process::monotonic_ns();
                blocks.push(now.saturating_sub(block_start) as f64 / BLOCK as f64);
                block_start = now;
            }
        } else {
            if !wait_for(2 * i + 1) {
                break;
            }
            let _ = cells.store(0, 2 * i + 2);
        }
    }
    Ok(blocks)
}
crate::task!(round_trip_worker);

/// The median time for one cache line to go from worker 0 (on its CPU) to
/// worker 1 and back, measured with `rounds` round trips on the pool's
/// first two workers. `None` if not one block of round trips finished
/// within a second (the workers take turns on one CPU).
///
/// ```
/// use shmlab::lessons::slots::line_round_trip;
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop here
///     let pool = Pool::new(2)?;
///     let trip = line_round_trip(&pool, 64)?; // one block of 64 round trips
///     // Tens of ns within one L1, more between cores, ms when taking turns.
///     assert!(trip.is_none_or(|ns| ns > 0.0));
///     Ok(())
/// }
/// ```
pub fn line_round_trip(pool: &Pool, rounds: u64) -> Result<Option<f64>, SlotsError> {
    let cell = SharedArray::<i64>::create(1, 0)?;
    let gate = StartGate::create()?;
    let args: Vec<RoundTripArgs> = (0..2)
        .map(|index| RoundTripArgs {
            index,
            cell: cell.name().to_string(),
            gate: gate.name().to_string(),
            rounds,
        })
        .collect();
    let running = pool.map_async(round_trip_worker, args, Some(1))?;
    let arrived = gate.wait_until(2, GATE_TIMEOUT, || running.progress().done > 0);
    gate.open_now();
    let outcomes = running.get()?;
    if !arrived {
        return Err(SlotsError::RoundTrip(
            "the two workers did not both reach the start gate".to_string(),
        ));
    }
    let mut blocks = Vec::new();
    for outcome in outcomes {
        blocks.extend(outcome.map_err(SlotsError::RoundTrip)?);
    }
    Ok((!blocks.is_empty()).then(|| report::median(&blocks)))
}

const TABLE: [Strategy; 3] = [Strategy::Slots, Strategy::PaddedSlots, Strategy::MapReduce];

/// One (strategy, workers) cell being measured.
struct Cell {
    strategy: Strategy,
    workers: usize,
    increments: u64,
    rates: Vec<f64>,
    exact: bool,
}

/// Runs lab 06.
///
/// ```
/// use std::time::Duration;
/// use shmlab::lessons::slots::{self, SlotsConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop here
///     let config = SlotsConfig { max_workers: 2, run_time: Duration::from_millis(1), repeats: 1 };
///     let report = slots::run(&config)?;
///     // slots, padded-slots and map-reduce at 1 and 2 workers, all exact.
///     assert_eq!(report.results.len(), 6);
///     assert!(report.results.iter().all(|cell| cell.exact));
///     Ok(())
/// }
/// ```
pub fn run(config: &SlotsConfig) -> Result<SlotsReport, SlotsError> {
    let max_workers = config.max_workers.max(1);
    let repeats = config.repeats.max(1);
    let topology = Topology::detect();
    let before = Ticks::now();
    let pool = Pool::new(max_workers.max(2))?;
    let round_trip = line_round_trip(&pool, 20_000)?;
    // The table, plus map-reduce with 2 workers for the probe if the table
    // stops at 1.
    let mut cells = Vec::new();
    for workers in 1..=max_workers.max(2) {
        for strategy in TABLE {
            if workers <= max_workers || strategy == Strategy::MapReduce {
                cells.push(Cell {
                    strategy,
                    workers,
                    increments: crate::counting::calibrate(
                        &pool,
                        strategy,
                        workers,
                        config.run_time,
                    )?,
                    rates: Vec::with_capacity(repeats),
                    exact: true,
                });
            }
        }
    }
    // Every round runs every cell, so a slow moment of a busy machine hits
    // them all, and ratios are taken within a round. Each round starts one
    // cell further on: whichever cell runs first in a round tends to be
    // slower (even padded vs unpadded with one worker, where nothing is
    // shared, differed by 1.3× with a fixed order), so no cell may always
    // be first.
    let find = |cells: &[Cell], strategy, workers| {
        cells
            .iter()
            .position(|c| c.strategy == strategy && c.workers == workers)
    };
    let mut padded_ratios = vec![Vec::new(); max_workers];
    let mut probe_ratios = Vec::new();
    for round in 0..repeats {
        let start = round % cells.len();
        for i in (start..cells.len()).chain(0..start) {
            let cell = &mut cells[i];
            let run = count_in(&pool, cell.strategy, cell.workers, cell.increments)?;
            cell.exact &= run.exact();
            cell.rates.push(run.ops_per_s);
        }
        let last = |i: Option<usize>| i.and_then(|i| cells[i].rates.last().copied());
        for (w, ratios) in padded_ratios.iter_mut().enumerate() {
            let slots = last(find(&cells, Strategy::Slots, w + 1));
            let padded = last(find(&cells, Strategy::PaddedSlots, w + 1));
            if let (Some(s), Some(p)) = (slots, padded) {
                if s > 0.0 {
                    ratios.push(p / s);
                }
            }
        }
        let one = last(find(&cells, Strategy::MapReduce, 1));
        let two = last(find(&cells, Strategy::MapReduce, 2));
        if let (Some(one), Some(two)) = (one, two) {
            if one > 0.0 {
                probe_ratios.push(two / one);
            }
        }
    }
    // Reap the workers, so that their CPU time counts as this process's.
    drop(pool);
    let background = before.zip(Ticks::now()).and_then(|(b, a)| a.since(b));
    let ok = cells.iter().all(|c| c.exact);
    let median_of = |workers| {
        find(&cells, Strategy::MapReduce, workers).map_or(0.0, |i| report::median(&cells[i].rates))
    };
    let probe = ScalingProbe {
        one_worker_ops_per_s: median_of(1),
        two_workers_ops_per_s: median_of(2),
        ratio: report::median(&probe_ratios),
    };
    let results: Vec<SlotsResult> = cells
        .iter()
        .filter(|c| c.workers <= max_workers)
        .map(|c| SlotsResult {
            strategy: c.strategy.name(),
            workers: c.workers,
            increments_per_worker: c.increments,
            ops_per_s: report::median(&c.rates),
            exact: c.exact,
        })
        .collect();
    let ratios: Vec<Ratio> = padded_ratios
        .iter()
        .enumerate()
        .map(|(w, r)| Ratio {
            workers: w + 1,
            padded_over_unpadded: report::median(r),
        })
        .collect();
    let padded_over_unpadded = ratios
        .last()
        .map(|r| r.padded_over_unpadded)
        .filter(|r| *r > 0.0);
    let line = topology.cache_line_bytes;
    let layout = vec![
        layout(Strategy::Slots, max_workers, line, &topology),
        layout(Strategy::PaddedSlots, max_workers, line, &topology),
    ];
    let shares = shares_a_core(&topology, probe.ratio);
    let l1 = shares_l1(&topology, round_trip);
    let measured = Measured {
        probe: &probe,
        round_trip_ns: round_trip,
        max_workers,
        padded_over_unpadded,
        one_worker_ratio: ratios
            .first()
            .map(|r| r.padded_over_unpadded)
            .filter(|r| *r > 0.0),
        background,
    };
    let verdict = verdict(ok, &topology, &measured);
    Ok(SlotsReport {
        outcome: Outcome {
            lab: "lab06-slots",
            ok,
            verdict,
        },
        worker_cpus: (0..max_workers).map(|w| topology.worker_cpu(w)).collect(),
        scaling_probe: probe,
        shares_a_core: shares,
        line_round_trip_ns: round_trip,
        shares_l1: l1,
        false_sharing_can_show: !l1 && max_workers >= 2,
        topology,
        stride_bytes: Strides {
            slots: stride_cells(Strategy::Slots) * 8,
            padded: stride_cells(Strategy::PaddedSlots) * 8,
        },
        layout,
        max_workers,
        repeats,
        results,
        ratios,
        padded_over_unpadded,
        background,
    })
}

/// What the verdict is judged on.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// use shmlab::lessons::slots::{Measured, ScalingProbe, verdict};
///
/// let two = Topology::read(Path::new("/no/sysfs"), "", &[0, 1]); // two CPUs, two cores
/// let probe =
///     ScalingProbe { one_worker_ops_per_s: 4e8, two_workers_ops_per_s: 7.6e8, ratio: 1.9 };
/// let measured = Measured {
///     probe: &probe,
///     round_trip_ns: Some(80.0), // two caches
///     max_workers: 2,
///     padded_over_unpadded: Some(2.5),
///     one_worker_ratio: Some(1.0),
///     background: None,
/// };
/// assert!(verdict(true, &two, &measured).contains("False sharing can show here"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// 1 vs 2 workers counting privately.
    pub probe: &'a ScalingProbe,
    /// The cache line's round trip between workers 0 and 1.
    pub round_trip_ns: Option<f64>,
    /// The largest worker count run.
    pub max_workers: usize,
    /// padded ÷ unpadded at `max_workers`.
    pub padded_over_unpadded: Option<f64>,
    /// padded ÷ unpadded with one worker, where nothing is shared: what the
    /// ratio is without false sharing (the control).
    pub one_worker_ratio: Option<f64>,
    /// Other processes' CPU use meanwhile.
    pub background: Option<Background>,
}

/// The one-line verdict: what the padded ÷ unpadded ratio means on this
/// machine, or why false sharing cannot show here.
///
/// ```
/// # use std::path::Path;
/// # use shmlab::lessons::slots::Topology;
/// use shmlab::lessons::slots::{Measured, ScalingProbe, verdict};
///
/// let one_cpu = Topology::read(Path::new("/no/sysfs"), "", &[0]); // `taskset -c 0`
/// # let probe =
/// #     ScalingProbe { one_worker_ops_per_s: 4e8, two_workers_ops_per_s: 4e8, ratio: 1.0 };
/// # let measured = Measured {
/// #     probe: &probe, round_trip_ns: None, max_workers: 2,
/// #     padded_over_unpadded: Some(1.0), one_worker_ratio: Some(1.0), background: None,
/// # };
/// let text = verdict(true, &one_cpu, &measured);
/// assert!(text.contains("false sharing cannot show here"));
/// assert!(verdict(false, &one_cpu, &measured).contains("lost updates"));
/// ```
pub fn verdict(ok: bool, topology: &Topology, m: &Measured<'_>) -> String {
    if !ok {
        return "a slot count lost updates: that is a bug (see the table)".to_string();
    }
    let ratio = m
        .padded_over_unpadded
        .map_or("-".to_string(), |r| format!("{r:.2}×"));
    let workers = m.max_workers;
    if workers < 2 {
        return format!(
            "every count was exact; with one worker nothing is shared, so padding cannot matter (padded ÷ unpadded {ratio}); run with --max-workers 2 or more"
        );
    }
    if topology.logical_cpus < 2 {
        return format!(
            "every count was exact, but this process may use only one CPU: the workers take turns on it and share its one L1 cache, so no cache line ever moves between caches and false sharing cannot show here (padded ÷ unpadded = {ratio} is not false sharing)"
        );
    }
    let (a, b) = (topology.worker_cpu(0), topology.worker_cpu(1));
    let probe = m.probe.ratio;
    let trip = m.round_trip_ns;
    let trip_text = trip.map_or("more than a second per 64".to_string(), nanos);
    if topology.same_core(a, b) {
        return format!(
            "every count was exact. False sharing cannot show here: sysfs puts CPUs {a} and {b} on one physical core (SMT siblings), which share one L1 cache, so the slots' common line never moves between caches (2 workers did {probe:.2}× the work of 1; padded ÷ unpadded = {ratio} at {workers} workers is this core, not false sharing). Run on ≥ 2 physical cores to see it"
        );
    }
    if trip.is_none_or(|ns| ns > TAKING_TURNS_ABOVE_NS) {
        return format!(
            "every count was exact. False sharing cannot show here: a cache line took {trip_text} to go from worker 0 to worker 1 and back, so the two workers take turns on one CPU instead of running at the same moment (2 workers did {probe:.2}× the work of 1); padded ÷ unpadded = {ratio} at {workers} workers is not false sharing"
        );
    }
    if trip.is_some_and(|ns| ns < SHARED_L1_BELOW_NS) {
        return format!(
            "every count was exact. False sharing cannot show here: sysfs lists CPUs {a} and {b} as separate cores, but a cache line went from worker 0 to worker 1 and back in {trip_text}, which only one shared L1 cache allows (SMT siblings; 2 workers did {probe:.2}× the work of 1); padded ÷ unpadded = {ratio} at {workers} workers is not false sharing"
        );
    }
    let control = m.one_worker_ratio.unwrap_or(1.0);
    let effect = match m.padded_over_unpadded {
        Some(r) if r >= 1.2 * control => format!(
            "against {control:.2}× with one worker, where nothing is shared: the line the adjacent slots share costs them"
        ),
        Some(_) => format!(
            "about what one worker, sharing nothing, gives ({control:.2}×): false sharing cost little here"
        ),
        None => "no ratio".to_string(),
    };
    let cores = if probe < SCALING_THRESHOLD {
        let why = match m.background {
            Some(b) if b.busy => format!("other processes used {:.2} CPUs meanwhile", b.other_cpus),
            Some(b) => format!(
                "other processes used only {:.2} CPUs, so the hypervisor gave these vCPUs less than two cores",
                b.other_cpus
            ),
            None => "other load or the hypervisor took a share".to_string(),
        };
        format!(
            "2 workers counting privately did only {probe:.2}× the work of 1 ({why}), but a cache line went from worker 0 to worker 1 and back in {trip_text}: two L1 caches, not one"
        )
    } else {
        let busy = match m.background {
            Some(b) if b.busy => format!(
                "; other processes used {:.2} CPUs meanwhile, so the figures are noisy",
                b.other_cpus
            ),
            _ => String::new(),
        };
        format!(
            "workers 0 and 1 run on separate cores (CPUs {a} and {b}; 2 workers did {probe:.2}× the work of 1; a cache line's round trip between them took {trip_text}{busy})"
        )
    };
    format!(
        "every count was exact. False sharing can show here: {cores}. Padded slots counted {ratio} as fast as adjacent ones at {workers} workers, {effect}"
    )
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("?".to_string(), |v| v.to_string())
}

/// `85 ns`, `12.3 µs`, `7.2 ms`.
fn nanos(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

impl Report for SlotsReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let t = &self.topology;
        let mut out = format!(
            "1. Topology ({}; /proc/cpuinfo): {}{}, cache line {} bytes\n",
            if t.from_sysfs {
                "sysfs"
            } else {
                "sysfs unreadable: every CPU counted as a core"
            },
            t.cpu_model.as_deref().unwrap_or("unknown CPU"),
            if t.hypervisor {
                ", under a hypervisor"
            } else {
                ""
            },
            t.cache_line_bytes
        );
        out += "   cpu  package  core  thread siblings  L1d shared with\n";
        for c in &t.cpus {
            out += &format!(
                "   {:>3} {:>8} {:>5}  {:<15}  {}\n",
                c.cpu,
                opt(&c.package),
                opt(&c.core_id),
                list(&c.thread_siblings),
                if c.l1d_shared_with.is_empty() {
                    "?".to_string()
                } else {
                    list(&c.l1d_shared_with)
                }
            );
        }
        let siblings = if t.smt_siblings.is_empty() {
            "no SMT siblings listed".to_string()
        } else {
            let groups: Vec<String> = t.smt_siblings.iter().map(|g| list(g)).collect();
            format!("SMT siblings {}", groups.join(" "))
        };
        out += &format!(
            "   this process may use {} logical CPU{} on {} physical core{} ({})\n   the whole machine: psutil.cpu_count() = {}, psutil.cpu_count(logical=False) = {}\n",
            t.logical_cpus,
            if t.logical_cpus == 1 { "" } else { "s" },
            t.physical_cores,
            if t.physical_cores == 1 { "" } else { "s" },
            siblings,
            t.machine_logical_cpus,
            t.machine_physical_cores
        );
        let pins: Vec<String> = self
            .worker_cpus
            .iter()
            .enumerate()
            .map(|(w, c)| format!("worker {w} → CPU {c}"))
            .collect();
        out += &format!("   pinned: {}\n\n", pins.join(", "));

        let p = &self.scaling_probe;
        out += &format!(
            "2. Do workers 0 and 1 get two cores?\n   a private count, nothing shared (median of {} rounds): 1 worker {}, 2 workers {} = {:.2}× (two free cores: about 2×; below {SCALING_THRESHOLD}×: one core's worth)\n   a cache line from worker 0 to worker 1 and back: {} (one L1: under {SHARED_L1_BELOW_NS:.0} ns; two cores' caches: about 30 ns to several hundred; taking turns: microseconds to milliseconds)\n   one core's worth of execution: {}; one L1 (or taking turns): {}; false sharing can show: {}\n   other processes meanwhile: {}\n\n",
            self.repeats,
            report::rate(p.one_worker_ops_per_s),
            report::rate(p.two_workers_ops_per_s),
            p.ratio,
            self.line_round_trip_ns
                .map_or("did not finish in 1 s".to_string(), nanos),
            yes(self.shares_a_core),
            yes(self.shares_l1),
            yes(self.false_sharing_can_show),
            self.background
                .map_or("unknown (no /proc/stat)".to_string(), |b| format!(
                    "{:.2} CPUs' worth{}",
                    b.other_cpus,
                    if b.busy {
                        " (busy: expect noisy figures)"
                    } else {
                        ""
                    }
                ))
        );

        out += &format!(
            "3. Where the slots lie for {} worker{} (cells start {} bytes into the page-aligned segment; {}-byte lines):\n",
            self.max_workers,
            if self.max_workers == 1 { "" } else { "s" },
            DATA_OFFSET,
            t.cache_line_bytes
        );
        for l in &self.layout {
            let places: Vec<String> = l
                .slots
                .iter()
                .map(|s| format!("w{} +{} (line {})", s.worker, s.offset_bytes, s.line))
                .collect();
            let shared = if l.shared_lines.is_empty() {
                "no line shared".to_string()
            } else {
                let groups: Vec<String> = l
                    .shared_lines
                    .iter()
                    .map(|g| {
                        let ws: Vec<String> = g.iter().map(|w| format!("w{w}")).collect();
                        ws.join("+")
                    })
                    .collect();
                format!("one line shared by {}", groups.join(", "))
            };
            out += &format!(
                "   {:<13} stride {:>3} B: {} → {}\n",
                l.strategy,
                l.stride_bytes,
                places.join(", "),
                shared
            );
        }

        out += &format!(
            "\n4. Counting; every round runs every row (median of {} rounds):\n",
            self.repeats
        );
        out += "   strategy       workers      increments/s   exact\n";
        for r in &self.results {
            out += &format!(
                "   {:<14} {:>7} {:>17} {:>7}\n",
                r.strategy,
                r.workers,
                report::rate(r.ops_per_s),
                if r.exact { "yes" } else { "NO" }
            );
        }
        let ratios: Vec<String> = self
            .ratios
            .iter()
            .map(|r| {
                format!(
                    "{} worker{} {:.2}×",
                    r.workers,
                    if r.workers == 1 { "" } else { "s" },
                    r.padded_over_unpadded
                )
            })
            .collect();
        out += &format!(
            "   padded ÷ unpadded (median of the rounds' ratios): {}\n\n",
            ratios.join(", ")
        );
        out
    }
}
