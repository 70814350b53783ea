//! Lab 11: Monte Carlo π and the strided midpoint-rule π, serial vs
//! threads vs the process pool — and the tutorials' pitfall of workers
//! that all draw the same "random" numbers.
//!
//! **Monte Carlo.** Draw points uniformly in the unit square; the share
//! that falls inside the quarter circle `x² + y² < 1` tends to π/4. One
//! 64-bit random number gives one point: its two 31-bit halves are the
//! integer coordinates `x, y < 2³¹`, and the point is inside when
//! `x² + y² < 2⁶²` — an exact integer test with no overflow and no
//! floating point ([`in_quarter_circle`]).
//!
//! **The generator** is SplitMix64 ([`SplitMix64`]): a 64-bit counter that
//! advances by a fixed odd constant, passed through a mixing function. It
//! is written out here rather than taken from `fastrand` (which the crate
//! also depends on) for three reasons: its output is defined by these few
//! lines, so a seed means the same numbers in every version of the crate
//! and in the Python twin; its `n`-th output can be computed without the
//! ones before it ([`nth_output`]), which is how seeds are derived per
//! task; and for that same reason the hot loop has no dependency from one
//! sample to the next, so the compiler turns it into 8-wide AVX-512 code
//! (or 4-wide AVX2) — about 3× the speed of the scalar wyrand loop that
//! `fastrand` runs. The wide kernels are chosen at run time
//! ([`kernel`]); all of them count exactly the same hits.
//!
//! **The pitfall.** The tutorials seed a global generator (or not at all)
//! and start a `Pool`: every forked worker inherits a copy of the parent's
//! generator state, draws the same numbers, and returns the same estimate.
//! [`inherited_hits`] is that worker: it continues from the state it was
//! given, and every worker was given the same.
//!
//! **The fix.** Split the samples into fixed-size batches (tasks) and
//! derive each batch's seed from one master seed and the *batch* index,
//! never the worker: [`task_seed`]`(master, k)` is output `k` of
//! SplitMix64 seeded with `master`. Which worker runs a batch no longer
//! matters, so the total number of hits is bit-identical for any number of
//! workers and any engine ([`batch_hits`]).
//!
//! **Midpoint rule.** π = ∫₀¹ 4/(1+x²) dx ≈ h · Σ 4/(1+xᵢ²) with
//! `xᵢ = (i + ½)·h`; part `k` of `W` takes steps `k, k + W, k + 2W, …`
//! — the tutorials' strided split ([`pi_part`]).
//!
//! ```
//! use shmlab::lessons::montecarlo::{estimate, hits_serial, midpoint_serial};
//!
//! let hits = hits_serial(1_000_000, 100_000, 42);
//! assert!((estimate(hits, 1_000_000) - std::f64::consts::PI).abs() < 0.01);
//! assert!((midpoint_serial(1_000_000) - std::f64::consts::PI).abs() < 1e-9);
//! ```

use std::f64::consts::PI;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::pool::{Pool, PoolError};
use crate::report::{self, Outcome, Report};

/// The most samples (and midpoint steps) a run may ask for.
///
/// ```
/// use shmlab::lessons::montecarlo::{self, MAX_SAMPLES, MonteCarloConfig};
///
/// let config = MonteCarloConfig {
///     samples: MAX_SAMPLES + 1, batch: 10_000_000, steps: 1_000, master_seed: 42,
///     max_workers: 1, demo_workers: 1, repeats: 1,
/// };
/// let err = montecarlo::run(&config).unwrap_err(); // refused before any work
/// assert_eq!(err.to_string(), format!("at most {MAX_SAMPLES} samples and steps"));
/// ```
pub const MAX_SAMPLES: u64 = 1_000_000_000_000;
/// The most batches (tasks) one Monte Carlo run may be split into.
///
/// ```
/// use shmlab::lessons::montecarlo::{self, MAX_TASKS, MonteCarloConfig};
///
/// // A billion samples in batches of 999: 1 001 002 tasks, too many to send.
/// let config = MonteCarloConfig {
///     samples: 1_000_000_000, batch: 999, steps: 1_000, master_seed: 42,
///     max_workers: 1, demo_workers: 1, repeats: 1,
/// };
/// let err = montecarlo::run(&config).unwrap_err(); // refused before any work
/// assert!(err.to_string().ends_with(&format!("1001002 tasks; at most {MAX_TASKS} (raise --batch)")));
/// ```
pub const MAX_TASKS: u64 = 1_000_000;
/// SplitMix64's increment: 2⁶⁴ divided by the golden ratio, made odd.
///
/// ```
/// use shmlab::lessons::montecarlo::{GAMMA, SplitMix64, mix64, nth_output};
///
/// // A thousand numbers later the state has moved a thousand GAMMAs...
/// let mut rng = SplitMix64::new(42);
/// let thousandth = (0..1000).map(|_| rng.next_u64()).last();
/// assert_eq!(rng.state(), 42u64.wrapping_add(1000u64.wrapping_mul(GAMMA)));
/// // ...so any output is one multiplication away: how each batch gets its seed.
/// assert_eq!(thousandth, Some(mix64(rng.state())));
/// assert_eq!(nth_output(42, 999), mix64(rng.state()));
/// // Odd, so the state passes through all 2⁶⁴ values before it repeats.
/// assert_eq!(GAMMA % 2, 1);
/// ```
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// A Monte Carlo estimate further than this many standard errors from π
/// fails the lab (by chance: about once in 10⁹ runs).
///
/// ```
/// use shmlab::lessons::montecarlo::{SIGMAS, estimate, hits_serial, standard_error};
///
/// let samples = 100_000;
/// let pi = estimate(hits_serial(samples, 10_000, 42), samples);
/// // How many standard errors this estimate is from π: about one, typically.
/// let off = (pi - std::f64::consts::PI).abs() / standard_error(samples);
/// assert!(off < SIGMAS, "{off:.1} standard errors from π fails lab 11");
/// ```
pub const SIGMAS: f64 = 6.0;
/// A midpoint-rule π may be this far from π, plus the rule's own error
/// bound (see [`midpoint_tolerance`]).
///
/// ```
/// use shmlab::lessons::montecarlo::{ROUNDING_TOLERANCE, midpoint_serial, midpoint_threads};
///
/// // The same midpoints in one part or four: only the rounding of the sum differs,
/// // by far less than the tolerance.
/// let (one, four) = (midpoint_serial(1_000_000), midpoint_threads(1_000_000, 4)?);
/// assert!((one - four).abs() < ROUNDING_TOLERANCE / 100.0);
/// # Ok::<(), shmlab::lessons::montecarlo::MonteCarloError>(())
/// ```
pub const ROUNDING_TOLERANCE: f64 = 1e-9;
/// A speed-up below this from the most workers means the machine showed
/// none.
pub(crate) const SCALING_SHOWN: f64 = 1.3;
use super::background::Ticks;
pub use super::background::{BUSY_CPUS, Background};
/// Samples (and steps) of the untimed warm-up run of each engine.
pub(crate) const WARM_UP: u64 = 1_000_000;

/// Options of lab 11.
///
/// ```
/// use shmlab::lessons::montecarlo::{self, MonteCarloConfig, MonteCarloError};
///
/// // Batches of one sample: two million tasks, more than MAX_TASKS.
/// let config = MonteCarloConfig {
///     samples: 2_000_000, batch: 1, steps: 1_000, master_seed: 42,
///     max_workers: 1, demo_workers: 1, repeats: 1,
/// };
/// let err = montecarlo::run(&config).unwrap_err(); // refused before any work
/// assert!(matches!(err, MonteCarloError::BadConfig(_)));
/// assert!(err.to_string().contains("raise --batch"));
/// ```
#[derive(Debug, Clone)]
pub struct MonteCarloConfig {
    /// Monte Carlo samples per run.
    pub samples: u64,
    /// Samples per batch (task): the unit that gets its own seed.
    pub batch: u64,
    /// Midpoint-rule steps per run.
    pub steps: u64,
    /// The master seed every batch's seed is derived from.
    pub master_seed: u64,
    /// Worker counts 1..=max_workers are timed on threads and the pool.
    pub max_workers: usize,
    /// Workers in the pitfall and fix demonstrations.
    pub demo_workers: usize,
    /// Timed runs per row (the report gives the median).
    pub repeats: usize,
}

impl MonteCarloConfig {
    /// Checks the options that no single flag can check alone.
    fn validate(&self) -> Result<(), MonteCarloError> {
        let bad = |what: String| Err(MonteCarloError::BadConfig(what));
        if self.samples == 0 || self.batch == 0 || self.steps == 0 || self.repeats == 0 {
            return bad("samples, batch, steps and repeats must be at least 1".into());
        }
        if self.samples > MAX_SAMPLES || self.steps > MAX_SAMPLES {
            return bad(format!("at most {MAX_SAMPLES} samples and steps"));
        }
        if self.max_workers == 0 || self.demo_workers == 0 {
            return bad("at least 1 worker is needed".into());
        }
        let tasks = self.samples.div_ceil(self.batch);
        if tasks > MAX_TASKS {
            return bad(format!(
                "{} samples in batches of {} make {tasks} tasks; at most {MAX_TASKS} (raise --batch)",
                self.samples, self.batch
            ));
        }
        if self.samples / (self.demo_workers as u64) == 0 {
            return bad(format!(
                "{} samples cannot be shared by {} demo workers",
                self.samples, self.demo_workers
            ));
        }
        Ok(())
    }
}

/// Why lab 11 could not run.
///
/// ```
/// use shmlab::lessons::montecarlo::{self, MonteCarloConfig, MonteCarloError};
///
/// let config = MonteCarloConfig {
///     samples: 1_000, batch: 100, steps: 1_000, master_seed: 42,
///     max_workers: 0, demo_workers: 1, repeats: 1,
/// };
/// let err = montecarlo::run(&config).unwrap_err();
/// assert!(matches!(err, MonteCarloError::BadConfig(_)));
/// assert_eq!(err.to_string(), "at least 1 worker is needed");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum MonteCarloError {
    /// The process pool failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// An OS thread could not be started.
    #[error("could not start a thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// A thread panicked.
    #[error("a worker thread panicked")]
    Panicked,
    /// Options that do not fit together.
    #[error("{0}")]
    BadConfig(String),
}

// ------------------------------------------------------------ generator

/// SplitMix64's output function: a bijection of 64-bit words that mixes
/// every input bit into every output bit.
///
/// ```
/// use shmlab::lessons::montecarlo::{GAMMA, SplitMix64, mix64};
///
/// // An output is the mixed state: the state after one step is seed + GAMMA.
/// assert_eq!(SplitMix64::new(42).next_u64(), mix64(42 + GAMMA));
/// // Neighbouring inputs give unrelated outputs.
/// assert!((mix64(1) ^ mix64(2)).count_ones() > 16);
/// ```
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The SplitMix64 generator (Steele, Lea and Flood, 2014): the state
/// advances by [`GAMMA`] and each output is [`mix64`] of the new state.
///
/// ```
/// use shmlab::lessons::montecarlo::{SplitMix64, nth_output};
///
/// let mut rng = SplitMix64::new(42);
/// let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
/// assert_eq!(first[2], nth_output(42, 2));
/// assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state is `seed`.
    ///
    /// ```
    /// use shmlab::lessons::montecarlo::SplitMix64;
    ///
    /// // The same seed, the same "random" numbers: the tutorials' pitfall.
    /// let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
    /// assert_eq!([a.next_u64(), a.next_u64()], [b.next_u64(), b.next_u64()]);
    /// ```
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The current state: a copy of it continues the same stream.
    ///
    /// ```
    /// use shmlab::lessons::montecarlo::SplitMix64;
    ///
    /// let mut parent = SplitMix64::new(42);
    /// parent.next_u64();
    /// // What a forked worker inherits: a copy of the state.
    /// let mut child = SplitMix64::new(parent.state());
    /// assert_eq!(child.next_u64(), parent.next_u64());
    /// ```
    pub fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    ///
    /// ```
    /// use shmlab::lessons::montecarlo::{GAMMA, SplitMix64};
    ///
    /// let mut rng = SplitMix64::new(42);
    /// let first = rng.next_u64();
    /// assert_eq!(rng.state(), 42 + GAMMA); // the state just counts up
    /// assert_ne!(rng.next_u64(), first);
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }
}

/// Output `n` (counting from 0) of `SplitMix64::new(seed)`, without
/// computing the `n` before it.
///
/// ```
/// use shmlab::lessons::montecarlo::{SplitMix64, nth_output};
///
/// let mut rng = SplitMix64::new(42);
/// let thousandth = (0..1000).map(|_| rng.next_u64()).last();
/// assert_eq!(thousandth, Some(nth_output(42, 999)));
/// ```
#[inline(always)]
pub fn nth_output(seed: u64, n: u64) -> u64 {
    mix64(seed.wrapping_add(n.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// The seed of batch `task`: output `task` of SplitMix64 seeded with
/// `master`. It depends on the batch, never on the worker that runs it.
///
/// Two batches' streams are stretches of SplitMix64's single cycle of 2⁶⁴
/// states starting at these pseudo-random seeds; with `T` batches of `n`
/// samples they overlap with probability about `T²·n / 2⁶⁴` (10⁻⁹ for 200
/// batches of a million).
///
/// ```
/// use shmlab::lessons::montecarlo::{nth_output, task_seed};
///
/// assert_eq!(task_seed(42, 3), nth_output(42, 3));
/// // Every batch has a seed of its own.
/// let seeds: std::collections::HashSet<u64> = (0..100).map(|k| task_seed(42, k)).collect();
/// assert_eq!(seeds.len(), 100);
/// ```
pub fn task_seed(master: u64, task: u64) -> u64 {
    nth_output(master, task)
}

/// Whether the point made of `r`'s two 31-bit halves lies in the quarter
/// circle: `x² + y² < 2⁶²` with `x = r >> 33`, `y = (low 32 bits) >> 1`.
/// Exact: both squares are below 2⁶², their sum below 2⁶³.
///
/// ```
/// use shmlab::lessons::montecarlo::in_quarter_circle;
///
/// assert!(in_quarter_circle(0)); // x = y = 0: the centre
/// assert!(!in_quarter_circle(u64::MAX)); // x = y = 2³¹ − 1: the far corner
/// assert!(in_quarter_circle(u64::MAX << 33)); // x = 2³¹ − 1, y = 0: just inside
/// ```
#[inline(always)]
pub fn in_quarter_circle(r: u64) -> bool {
    let x = r >> 33;
    let y = u64::from(r as u32 >> 1);
    x * x + y * y < 1 << 62
}

/// The same loop in every kernel: the counter form of SplitMix64 has no
/// dependency between samples, so it vectorises.
#[inline(always)]
fn hits_body(seed: u64, samples: u64) -> u64 {
    let mut hits = 0u64;
    for i in 0..samples {
        hits += u64::from(in_quarter_circle(nth_output(seed, i)));
    }
    hits
}

/// Lanes of the midpoint kernel: steps `8m + j` of a part go to
/// accumulator `j`, summed in lane order at the end.
const LANES: usize = 8;

#[inline(always)]
fn pi_part_body(steps: u64, parts: u64, index: u64) -> f64 {
    if steps == 0 || parts == 0 || index >= steps {
        return 0.0;
    }
    let h = 1.0 / steps as f64;
    let count = (steps - 1 - index) / parts + 1;
    let blocks = count / LANES as u64;
    let stride = LANES as u64 * parts;
    let mut lanes = [0.0f64; LANES];
    let mut base = index;
    for _ in 0..blocks {
        for (j, lane) in lanes.iter_mut().enumerate() {
            let x = ((base + j as u64 * parts) as f64 + 0.5) * h;
            *lane += 4.0 / (1.0 + x * x);
        }
        base += stride;
    }
    let mut tail = 0.0;
    for k in blocks * LANES as u64..count {
        let x = ((index + k * parts) as f64 + 0.5) * h;
        tail += 4.0 / (1.0 + x * x);
    }
    let mut sum = 0.0;
    for lane in lanes {
        sum += lane;
    }
    (sum + tail) * h
}

#[cfg(target_arch = "x86_64")]
mod wide {
    //! The same bodies compiled for wider vectors, called only after the
    //! CPU was seen to have the features.

    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    pub(super) unsafe fn hits_avx512(seed: u64, samples: u64) -> u64 {
        super::hits_body(seed, samples)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn hits_avx2(seed: u64, samples: u64) -> u64 {
        super::hits_body(seed, samples)
    }

    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    pub(super) unsafe fn pi_part_avx512(steps: u64, parts: u64, index: u64) -> f64 {
        super::pi_part_body(steps, parts, index)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn pi_part_avx2(steps: u64, parts: u64, index: u64) -> f64 {
        super::pi_part_body(steps, parts, index)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Avx512,
    Avx2,
    Portable,
}

fn detect() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Kernel::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
    }
    Kernel::Portable
}

/// The kernel this CPU runs: `avx512`, `avx2` or `portable`. Every kernel
/// gives exactly the same results.
///
/// ```
/// use shmlab::lessons::montecarlo::kernel;
///
/// assert!(["avx512", "avx2", "portable"].contains(&kernel()));
/// ```
pub fn kernel() -> &'static str {
    match detect() {
        Kernel::Avx512 => "avx512",
        Kernel::Avx2 => "avx2",
        Kernel::Portable => "portable",
    }
}

/// How many of the first `samples` outputs of `SplitMix64::new(seed)` fall
/// in the quarter circle ([`in_quarter_circle`]), on the widest kernel
/// this CPU has.
///
/// ```
/// use shmlab::lessons::montecarlo::{count_hits, in_quarter_circle, nth_output};
///
/// let one_by_one = (0..1000).filter(|&i| in_quarter_circle(nth_output(42, i))).count();
/// assert_eq!(count_hits(42, 1000), one_by_one as u64);
/// ```
pub fn count_hits(seed: u64, samples: u64) -> u64 {
    match detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` saw AVX-512 F, DQ and VL on this CPU.
        Kernel::Avx512 => unsafe { wide::hits_avx512(seed, samples) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` saw AVX2 on this CPU.
        Kernel::Avx2 => unsafe { wide::hits_avx2(seed, samples) },
        _ => hits_body(seed, samples),
    }
}

/// [`count_hits`] on the portable kernel only (for checking the others).
///
/// ```
/// use shmlab::lessons::montecarlo::{count_hits, count_hits_portable};
///
/// assert_eq!(count_hits_portable(7, 10_003), count_hits(7, 10_003));
/// ```
pub fn count_hits_portable(seed: u64, samples: u64) -> u64 {
    hits_body(seed, samples)
}

/// `4 · hits / samples`.
///
/// ```
/// use shmlab::lessons::montecarlo::estimate;
///
/// assert_eq!(estimate(785, 1000), 3.14);
/// assert_eq!(estimate(0, 0), 0.0); // no samples, no division by zero
/// ```
pub fn estimate(hits: u64, samples: u64) -> f64 {
    4.0 * hits as f64 / samples.max(1) as f64
}

/// The standard error of a Monte Carlo estimate from `samples` samples:
/// `4·√(p(1−p)/n)` with `p = π/4` (about `1.64/√n`).
///
/// ```
/// use shmlab::lessons::montecarlo::standard_error;
///
/// assert!((standard_error(1_000_000) - 0.00164).abs() < 1e-5);
/// // Four times the samples, half the error.
/// assert!((standard_error(4_000_000) * 2.0 - standard_error(1_000_000)).abs() < 1e-12);
/// ```
pub fn standard_error(samples: u64) -> f64 {
    let p = PI / 4.0;
    4.0 * (p * (1.0 - p) / samples.max(1) as f64).sqrt()
}

/// How far a Monte Carlo estimate may be from π: [`SIGMAS`] standard
/// errors.
///
/// ```
/// use shmlab::lessons::montecarlo::{estimate, hits_serial, mc_tolerance};
///
/// let pi = estimate(hits_serial(100_000, 10_000, 42), 100_000);
/// assert!((pi - std::f64::consts::PI).abs() <= mc_tolerance(100_000));
/// ```
pub fn mc_tolerance(samples: u64) -> f64 {
    SIGMAS * standard_error(samples)
}

/// How far a midpoint-rule π may be from π: [`ROUNDING_TOLERANCE`] plus
/// the rule's error bound `h²/24 · max|f''| = h²/3` for `f = 4/(1+x²)`.
///
/// ```
/// use shmlab::lessons::montecarlo::{midpoint_serial, midpoint_tolerance};
///
/// let pi = midpoint_serial(100);
/// assert!((pi - std::f64::consts::PI).abs() <= midpoint_tolerance(100));
/// assert!(midpoint_tolerance(100) < 4e-5);
/// ```
pub fn midpoint_tolerance(steps: u64) -> f64 {
    let h = 1.0 / steps.max(1) as f64;
    ROUNDING_TOLERANCE + h * h / 3.0
}

/// `|x − π|`, infinite for a NaN (so a NaN is never "close").
pub(crate) fn distance(x: f64) -> f64 {
    if x.is_nan() {
        f64::INFINITY
    } else {
        (x - PI).abs()
    }
}

// ------------------------------------------------------------ tasks

/// One batch of samples: a task, with its own seed derived from the master
/// seed and its index.
///
/// ```
/// use shmlab::lessons::montecarlo::Batch;
///
/// // What crosses to the worker: three numbers, as JSON.
/// let batch = Batch { master_seed: 42, index: 3, samples: 1000 };
/// let json = serde_json::to_string(&batch)?;
/// assert_eq!(json, r#"{"master_seed":42,"index":3,"samples":1000}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The master seed of the whole run.
    pub master_seed: u64,
    /// The batch's index, `0..tasks`.
    pub index: u64,
    /// Samples in this batch.
    pub samples: u64,
}

/// `samples` split into batches of `batch` (the last one may be smaller).
///
/// ```
/// use shmlab::lessons::montecarlo::batches;
///
/// let b = batches(10, 4, 7);
/// assert_eq!(b.iter().map(|b| b.samples).collect::<Vec<_>>(), [4, 4, 2]);
/// assert_eq!((b[2].index, b[2].master_seed), (2, 7));
/// ```
pub fn batches(samples: u64, batch: u64, master_seed: u64) -> Vec<Batch> {
    let batch = batch.max(1);
    (0..samples.div_ceil(batch))
        .map(|index| Batch {
            master_seed,
            index,
            samples: batch.min(samples - index * batch),
        })
        .collect()
}

/// The hits of one batch, drawn from its own seed.
///
/// ```
/// use shmlab::lessons::montecarlo::{batch_hits, batches, count_hits, task_seed};
///
/// let all = batches(10_000, 1_000, 42);
/// assert_eq!(batch_hits(all[3]), count_hits(task_seed(42, 3), 1_000));
/// // Whoever runs the batches, in whatever order, the total is the same.
/// let forward: u64 = all.iter().map(|&b| batch_hits(b)).sum();
/// assert_eq!(all.iter().rev().map(|&b| batch_hits(b)).sum::<u64>(), forward);
/// ```
pub fn batch_hits(batch: Batch) -> u64 {
    count_hits(task_seed(batch.master_seed, batch.index), batch.samples)
}
crate::task!(batch_hits);

/// Hits counted by one worker process, and which process it was.
///
/// ```
/// use shmlab::lessons::montecarlo::inherited_hits;
///
/// // Called here rather than in a pool worker, it names this process.
/// let got = inherited_hits(42, 1000);
/// assert_eq!(got.pid, std::process::id());
/// assert!(got.hits > 700 && got.hits < 860); // about π/4 of 1000
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerHits {
    /// The process that counted them.
    pub pid: u32,
    /// Hits.
    pub hits: u64,
}

/// [`batch_hits`], saying which worker ran it.
fn batch_hits_in_worker(batch: Batch) -> WorkerHits {
    WorkerHits {
        pid: std::process::id(),
        hits: batch_hits(batch),
    }
}
crate::task!(batch_hits_in_worker);

/// The pitfall: a worker that carries on from a copy of its parent's
/// generator state — what a forked worker does with numpy's or `random`'s
/// global generator. Every worker handed the same state counts the same
/// hits.
///
/// ```
/// use shmlab::lessons::montecarlo::{SplitMix64, inherited_hits};
///
/// let state = SplitMix64::new(42).state(); // the parent's generator
/// let (first, second) = (inherited_hits(state, 10_000), inherited_hits(state, 10_000));
/// assert_eq!(first.hits, second.hits); // two "workers", one estimate
/// ```
pub fn inherited_hits(state: u64, samples: u64) -> WorkerHits {
    WorkerHits {
        pid: std::process::id(),
        hits: count_hits(state, samples),
    }
}
crate::task!(inherited_hits);

/// One part of the midpoint-rule integral: steps `index`, `index + parts`,
/// `index + 2·parts`, … below `steps`.
///
/// ```
/// use shmlab::lessons::montecarlo::{Part, midpoint_serial, pi_part};
///
/// // The even steps and the odd steps of a 1000-step integral.
/// let even = pi_part(Part { steps: 1000, parts: 2, index: 0 });
/// let odd = pi_part(Part { steps: 1000, parts: 2, index: 1 });
/// assert!((even + odd - midpoint_serial(1000)).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Steps of the whole integral.
    pub steps: u64,
    /// Parts the steps are split into (the stride).
    pub parts: u64,
    /// This part's first step, `0..parts`.
    pub index: u64,
}

/// The `workers` strided parts of an integration with `steps` steps.
///
/// ```
/// use shmlab::lessons::montecarlo::{Part, parts};
///
/// let three = parts(1000, 3);
/// assert_eq!(three[2], Part { steps: 1000, parts: 3, index: 2 });
/// assert_eq!(parts(1000, 0).len(), 1); // at least one part
/// ```
pub fn parts(steps: u64, workers: usize) -> Vec<Part> {
    let parts = workers.max(1) as u64;
    (0..parts)
        .map(|index| Part {
            steps,
            parts,
            index,
        })
        .collect()
}

/// This part's share of π: `h · Σ 4/(1 + x²)` over its steps, with
/// `x = (i + ½)·h` and `h = 1/steps`, summed in 8 lanes (so that the
/// divisions run side by side). The parts' sum is π.
///
/// ```
/// use shmlab::lessons::montecarlo::{midpoint_tolerance, parts, pi_part};
///
/// let pi: f64 = parts(10_000, 4).into_iter().map(pi_part).sum();
/// assert!((pi - std::f64::consts::PI).abs() <= midpoint_tolerance(10_000));
/// ```
pub fn pi_part(part: Part) -> f64 {
    let Part {
        steps,
        parts,
        index,
    } = part;
    match detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` saw AVX-512 F, DQ and VL on this CPU.
        Kernel::Avx512 => unsafe { wide::pi_part_avx512(steps, parts, index) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` saw AVX2 on this CPU.
        Kernel::Avx2 => unsafe { wide::pi_part_avx2(steps, parts, index) },
        _ => pi_part_body(steps, parts, index),
    }
}
crate::task!(pi_part);

/// [`pi_part`] on the portable kernel only (for checking the others).
///
/// ```
/// use shmlab::lessons::montecarlo::{Part, pi_part, pi_part_portable};
///
/// let part = Part { steps: 10_003, parts: 3, index: 1 };
/// assert_eq!(pi_part_portable(part).to_bits(), pi_part(part).to_bits()); // bit for bit
/// ```
pub fn pi_part_portable(part: Part) -> f64 {
    pi_part_body(part.steps, part.parts, part.index)
}

// ------------------------------------------------------------ engines

/// What runs the work.
///
/// ```
/// use shmlab::lessons::montecarlo::Engine;
///
/// // As it appears in the lab's JSON.
/// assert_eq!(serde_json::to_string(&Engine::Threads)?, "\"threads\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// One thread, this one.
    Serial,
    /// `std::thread::scope`: `workers` OS threads started on every run.
    Threads,
    /// A shmlab process [`Pool`] of `workers` processes, started beforehand.
    Pool,
}

impl Engine {
    /// `serial`, `threads` or `pool`.
    fn name(self) -> &'static str {
        match self {
            Engine::Serial => "serial",
            Engine::Threads => "threads",
            Engine::Pool => "pool",
        }
    }
}

/// The two ways to compute π.
///
/// ```
/// use shmlab::lessons::montecarlo::Method;
///
/// // As it appears in the lab's JSON.
/// assert_eq!(serde_json::to_string(&Method::MonteCarlo)?, "\"monte_carlo\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Random points in the unit square.
    MonteCarlo,
    /// The strided midpoint rule.
    Midpoint,
}

impl Method {
    /// `monte_carlo` or `midpoint`.
    fn name(self) -> &'static str {
        match self {
            Method::MonteCarlo => "monte_carlo",
            Method::Midpoint => "midpoint",
        }
    }
}

/// Monte Carlo hits of `samples` in batches of `batch`, in this thread.
///
/// ```
/// use shmlab::lessons::montecarlo::{batch_hits, batches, hits_serial};
///
/// let by_batch: u64 = batches(10_000, 1_000, 42).into_iter().map(batch_hits).sum();
/// assert_eq!(hits_serial(10_000, 1_000, 42), by_batch);
/// ```
pub fn hits_serial(samples: u64, batch: u64, master_seed: u64) -> u64 {
    batches(samples, batch, master_seed)
        .into_iter()
        .map(batch_hits)
        .sum()
}

/// The same hits on `workers` scoped threads, each taking the next batch
/// not yet taken.
///
/// ```
/// use shmlab::lessons::montecarlo::{hits_serial, hits_threads};
///
/// // Per-batch seeds: the same hits on any number of threads.
/// let serial = hits_serial(100_000, 1_000, 42);
/// for threads in 1..=3 {
///     assert_eq!(hits_threads(100_000, 1_000, 42, threads)?, serial);
/// }
/// # Ok::<(), shmlab::lessons::montecarlo::MonteCarloError>(())
/// ```
pub fn hits_threads(
    samples: u64,
    batch: u64,
    master_seed: u64,
    workers: usize,
) -> Result<u64, MonteCarloError> {
    let all = batches(samples, batch, master_seed);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles = (0..workers.max(1))
            .map(|_| {
                std::thread::Builder::new().spawn_scoped(s, || {
                    let mut hits = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&b) = all.get(i) else { break hits };
                        hits += batch_hits(b);
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| MonteCarloError::Panicked))
            .sum()
    })
}

/// The same hits on the process pool: `pool.map(batch_hits, batches)`.
///
/// ```
/// use shmlab::lessons::montecarlo::{hits_pool, hits_serial};
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let pool = Pool::new(2)?;
///     assert_eq!(hits_pool(&pool, 100_000, 1_000, 42)?, hits_serial(100_000, 1_000, 42));
///     Ok(())
/// }
/// ```
pub fn hits_pool(
    pool: &Pool,
    samples: u64,
    batch: u64,
    master_seed: u64,
) -> Result<u64, PoolError> {
    Ok(pool
        .map(batch_hits, batches(samples, batch, master_seed), Some(1))?
        .into_iter()
        .sum())
}

/// The pitfall on the pool: `workers` tasks of `samples` samples, each
/// handed the same generator state. One result per task, in task order.
///
/// ```
/// use shmlab::lessons::montecarlo::{SplitMix64, pitfall_hits};
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let pool = Pool::new(2)?;
///     let state = SplitMix64::new(42).state();
///     let got = pitfall_hits(&pool, 2, 10_000, state)?;
///     assert_eq!(got[0].hits, got[1].hits); // two workers, the same numbers
///     Ok(())
/// }
/// ```
pub fn pitfall_hits(
    pool: &Pool,
    workers: usize,
    samples: u64,
    state: u64,
) -> Result<Vec<WorkerHits>, PoolError> {
    pool.starmap(
        inherited_hits,
        (0..workers).map(|_| (state, samples)),
        Some(1),
    )
}

/// The midpoint rule in one part, in this thread.
///
/// ```
/// use shmlab::lessons::montecarlo::midpoint_serial;
///
/// // Ten steps already come within 0.001 of π.
/// assert!((midpoint_serial(10) - std::f64::consts::PI).abs() < 1e-3);
/// ```
pub fn midpoint_serial(steps: u64) -> f64 {
    pi_part(Part {
        steps,
        parts: 1,
        index: 0,
    })
}

/// The midpoint rule in `workers` strided parts on scoped threads, summed
/// in part order.
///
/// ```
/// use shmlab::lessons::montecarlo::{midpoint_threads, parts, pi_part};
///
/// let in_order: f64 = parts(10_000, 3).into_iter().map(pi_part).fold(0.0, |a, b| a + b);
/// assert_eq!(midpoint_threads(10_000, 3)?, in_order); // exactly: the same sum order
/// # Ok::<(), shmlab::lessons::montecarlo::MonteCarloError>(())
/// ```
pub fn midpoint_threads(steps: u64, workers: usize) -> Result<f64, MonteCarloError> {
    std::thread::scope(|s| {
        let handles = parts(steps, workers)
            .into_iter()
            .map(|p| std::thread::Builder::new().spawn_scoped(s, move || pi_part(p)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut pi = 0.0;
        for h in handles {
            pi += h.join().map_err(|_| MonteCarloError::Panicked)?;
        }
        Ok(pi)
    })
}

/// The midpoint rule in one strided part per pool worker, summed in part
/// order.
///
/// ```
/// use shmlab::lessons::montecarlo::{midpoint_pool, midpoint_threads};
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let pool = Pool::new(2)?;
///     // Two parts either way, summed in the same order: the same bits.
///     assert_eq!(midpoint_pool(&pool, 10_000)?, midpoint_threads(10_000, 2)?);
///     Ok(())
/// }
/// ```
pub fn midpoint_pool(pool: &Pool, steps: u64) -> Result<f64, PoolError> {
    let mut pi = 0.0;
    for part in pool.map(pi_part, parts(steps, pool.workers()), Some(1))? {
        pi += part;
    }
    Ok(pi)
}

// ------------------------------------------------------------ report

/// The pitfall: every worker handed the same generator state.
///
/// ```
/// # use shmlab::lessons::montecarlo::{self, MonteCarloConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = MonteCarloConfig {
/// #     samples: 20_000, batch: 1_000, steps: 10_000, master_seed: 42,
/// #     max_workers: 1, demo_workers: 2, repeats: 1,
/// # };
/// let report = montecarlo::run(&config)?; // a tiny config: 20 000 samples
/// let pitfall = &report.pitfall;
/// assert_eq!(pitfall.per_worker_estimates.len(), 2); // two tasks...
/// assert!(pitfall.all_equal); // ...one estimate
/// assert_eq!(pitfall.per_worker_estimates[0], pitfall.per_worker_estimates[1]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Pitfall {
    /// Worker processes (one task each).
    pub workers: usize,
    /// Samples each worker drew.
    pub samples_per_worker: u64,
    /// The generator state every worker started from (the parent's,
    /// seeded with the master seed).
    pub state: u64,
    /// The process that ran each task.
    pub pids: Vec<u32>,
    /// Each worker's estimate of π.
    pub per_worker_estimates: Vec<f64>,
    /// Whether they were all the same.
    pub all_equal: bool,
    /// The average of the workers' estimates.
    pub estimate: f64,
    /// `|estimate − π|`.
    pub error: f64,
    /// The standard error the combined samples would have had if the
    /// workers' numbers had been independent.
    pub standard_error_if_independent: f64,
}

/// The fix: per-batch seeds.
///
/// ```
/// # use shmlab::lessons::montecarlo::hits_serial;
/// # use shmlab::lessons::montecarlo::{self, MonteCarloConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = MonteCarloConfig {
/// #     samples: 20_000, batch: 1_000, steps: 10_000, master_seed: 42,
/// #     max_workers: 1, demo_workers: 2, repeats: 1,
/// # };
/// let report = montecarlo::run(&config)?; // a tiny config: 20 000 samples
/// let fixed = &report.fixed;
/// assert_eq!(fixed.tasks, 20); // 20 000 samples in batches of 1000
/// assert!(fixed.reproducible_across_worker_counts);
/// assert_eq!(fixed.hits, hits_serial(20_000, 1_000, 42)); // as in one thread
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Fixed {
    /// Worker processes of the demonstration pool.
    pub workers: usize,
    /// Batches (tasks).
    pub tasks: u64,
    /// The workers that ran batches, in the order they first answered.
    pub pids: Vec<u32>,
    /// Batches each of them ran.
    pub tasks_per_worker: Vec<u64>,
    /// The estimate from each worker's own batches.
    pub per_worker_estimates: Vec<f64>,
    /// Total hits.
    pub hits: u64,
    /// The estimate from all the batches.
    pub estimate: f64,
    /// `|estimate − π|`.
    pub error: f64,
    /// The standard error for this many samples (`1.64/√samples`).
    pub standard_error: f64,
    /// The worker counts whose total was compared (every engine's timed
    /// rows and this pool).
    pub worker_counts: Vec<usize>,
    /// Whether every engine and worker count gave exactly these hits.
    pub reproducible_across_worker_counts: bool,
}

/// One timed row.
///
/// ```
/// # use shmlab::lessons::montecarlo::{Engine, Method};
/// # use shmlab::lessons::montecarlo::{self, MonteCarloConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = MonteCarloConfig {
/// #     samples: 20_000, batch: 1_000, steps: 10_000, master_seed: 42,
/// #     max_workers: 1, demo_workers: 2, repeats: 1,
/// # };
/// let report = montecarlo::run(&config)?; // a tiny config: 20 000 samples
/// // With max_workers 1: serial, 1 thread and a pool of 1, for each method.
/// assert_eq!(report.results.len(), 6);
/// let mc: Vec<_> = report.results.iter().filter(|r| r.method == Method::MonteCarlo).collect();
/// assert_eq!(mc[0].engine, Engine::Serial);
/// assert!(mc.iter().all(|r| r.estimate == mc[0].estimate)); // the same hits everywhere
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `monte_carlo` or `midpoint`.
    pub method: Method,
    /// `serial`, `threads` or `pool`.
    pub engine: Engine,
    /// Threads or processes.
    pub workers: usize,
    /// Samples (Monte Carlo) or steps (midpoint) per run.
    pub samples: u64,
    /// Median seconds of the timed runs.
    pub seconds: f64,
    /// `samples / seconds`.
    pub samples_per_s: f64,
    /// The π computed (the same in every run).
    pub estimate: f64,
    /// `|estimate − π|`.
    pub error: f64,
}

/// The JSON of lab 11: `lab`, `ok`, `verdict`, `samples`, `master_seed`,
/// `batch`, `tasks`, `steps`, `cpus`, `max_workers`, `repeats`, `kernel`
/// (`avx512`, `avx2` or `portable`), `background: {other_cpus, busy}`
/// (`null` without `/proc`, or when the run was too short for a clock tick to pass), `pitfall: {workers, samples_per_worker,
/// state, pids, per_worker_estimates, all_equal, estimate, error,
/// standard_error_if_independent}`, `fixed: {workers, tasks, pids,
/// tasks_per_worker, per_worker_estimates, hits, estimate, error,
/// standard_error, worker_counts, reproducible_across_worker_counts}`, and
/// `results: [{method, engine, workers, samples, seconds, samples_per_s,
/// estimate, error}]` with `method` `monte_carlo` or `midpoint` and
/// `engine` `serial`, `threads` or `pool`; `error` is `|estimate − π|`.
///
/// ```
/// # use shmlab::lessons::montecarlo::{self, MonteCarloConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = MonteCarloConfig {
/// #     samples: 20_000, batch: 1_000, steps: 10_000, master_seed: 42,
/// #     max_workers: 1, demo_workers: 2, repeats: 1,
/// # };
/// let report = montecarlo::run(&config)?; // a tiny config: 20 000 samples
/// let json = serde_json::to_value(&report)?;
/// assert_eq!(json["lab"], "lab11-montecarlo");
/// assert_eq!(json["tasks"], 20);
/// assert_eq!(json["results"][0]["engine"], "serial");
/// # Ok(()) }
/// ```
#[derive(Debug, Serialize)]
pub struct MonteCarloReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Monte Carlo samples per run.
    pub samples: u64,
    /// The master seed.
    pub master_seed: u64,
    /// Samples per batch.
    pub batch: u64,
    /// Batches per run.
    pub tasks: u64,
    /// Midpoint steps per run.
    pub steps: u64,
    /// CPUs this process may use.
    pub cpus: usize,
    /// The most workers timed.
    pub max_workers: usize,
    /// Timed runs per row.
    pub repeats: usize,
    /// The vector kernel used.
    pub kernel: &'static str,
    /// The rest of the machine meanwhile.
    pub background: Option<Background>,
    /// The pitfall.
    pub pitfall: Pitfall,
    /// The fix.
    pub fixed: Fixed,
    /// The timed rows.
    pub results: Vec<Row>,
}

/// One configuration to time.
#[derive(Debug, Clone, Copy)]
struct Setup {
    method: Method,
    engine: Engine,
    workers: usize,
}

/// What one run computed: hits or a π.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Hits(u64),
    Pi(f64),
}

/// Runs `setup` once on `samples` (or steps); `pool` has `setup.workers`
/// workers.
fn run_once(
    setup: Setup,
    pool: &Pool,
    config: &MonteCarloConfig,
    samples: u64,
) -> Result<Value, MonteCarloError> {
    let (batch, seed) = (config.batch, config.master_seed);
    Ok(match (setup.method, setup.engine) {
        (Method::MonteCarlo, Engine::Serial) => Value::Hits(hits_serial(samples, batch, seed)),
        (Method::MonteCarlo, Engine::Threads) => {
            Value::Hits(hits_threads(samples, batch, seed, setup.workers)?)
        }
        (Method::MonteCarlo, Engine::Pool) => Value::Hits(hits_pool(pool, samples, batch, seed)?),
        (Method::Midpoint, Engine::Serial) => Value::Pi(midpoint_serial(samples)),
        (Method::Midpoint, Engine::Threads) => Value::Pi(midpoint_threads(samples, setup.workers)?),
        (Method::Midpoint, Engine::Pool) => Value::Pi(midpoint_pool(pool, samples)?),
    })
}

fn pitfall(pool: &Pool, config: &MonteCarloConfig) -> Result<Pitfall, PoolError> {
    let workers = config.demo_workers;
    let samples = config.samples / workers as u64;
    // The parent "seeds its global generator" and the workers get a copy.
    let state = SplitMix64::new(config.master_seed).state();
    let got = pitfall_hits(pool, workers, samples, state)?;
    let per_worker_estimates: Vec<f64> = got.iter().map(|w| estimate(w.hits, samples)).collect();
    let all_equal = got.windows(2).all(|w| w[0].hits == w[1].hits);
    let total: u64 = got.iter().map(|w| w.hits).sum();
    let combined = estimate(total, samples * workers as u64);
    Ok(Pitfall {
        workers,
        samples_per_worker: samples,
        state,
        pids: got.iter().map(|w| w.pid).collect(),
        per_worker_estimates,
        all_equal,
        estimate: combined,
        error: distance(combined),
        standard_error_if_independent: standard_error(samples * workers as u64),
    })
}

fn fixed(pool: &Pool, config: &MonteCarloConfig) -> Result<Fixed, PoolError> {
    let all = batches(config.samples, config.batch, config.master_seed);
    let got = pool.map(batch_hits_in_worker, all.iter().copied(), Some(1))?;
    let mut pids: Vec<u32> = Vec::new();
    let mut tasks_per_worker: Vec<u64> = Vec::new();
    let mut hits_per_worker: Vec<(u64, u64)> = Vec::new();
    for (b, w) in all.iter().zip(&got) {
        let slot = match pids.iter().position(|&p| p == w.pid) {
            Some(slot) => slot,
            None => {
                pids.push(w.pid);
                tasks_per_worker.push(0);
                hits_per_worker.push((0, 0));
                pids.len() - 1
            }
        };
        tasks_per_worker[slot] += 1;
        hits_per_worker[slot].0 += w.hits;
        hits_per_worker[slot].1 += b.samples;
    }
    let hits: u64 = got.iter().map(|w| w.hits).sum();
    let combined = estimate(hits, config.samples);
    Ok(Fixed {
        workers: pool.workers(),
        tasks: all.len() as u64,
        pids,
        tasks_per_worker,
        per_worker_estimates: hits_per_worker
            .iter()
            .map(|&(h, n)| estimate(h, n))
            .collect(),
        hits,
        estimate: combined,
        error: distance(combined),
        standard_error: standard_error(config.samples),
        worker_counts: vec![pool.workers()],
        reproducible_across_worker_counts: true,
    })
}

/// Runs lab 11: the pitfall and the fix on a pool of `demo_workers`, then
/// every method on every engine with 1..=`max_workers` workers. Each
/// worker count is timed in turn, with its own pool started beforehand:
/// one untimed warm-up of each of its rows, then `repeats` rounds that run
/// each of its rows once.
///
/// ```
/// use shmlab::lessons::montecarlo::{self, MonteCarloConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let config = MonteCarloConfig {
///         samples: 20_000, batch: 1_000, steps: 10_000, master_seed: 42,
///         max_workers: 1, demo_workers: 2, repeats: 1,
///     };
///     let report = montecarlo::run(&config)?;
///     assert!(report.ok(), "{}", report.verdict());
///     Ok(())
/// }
/// ```
pub fn run(config: &MonteCarloConfig) -> Result<MonteCarloReport, MonteCarloError> {
    config.validate()?;
    let before = Ticks::now();
    let kernel = kernel();

    let demo = Pool::new(config.demo_workers)?;
    let pitfall = pitfall(&demo, config)?;
    let mut fixed = fixed(&demo, config)?;
    drop(demo);

    let mut setups = Vec::new();
    for method in [Method::MonteCarlo, Method::Midpoint] {
        setups.push(Setup {
            method,
            engine: Engine::Serial,
            workers: 1,
        });
        for engine in [Engine::Threads, Engine::Pool] {
            for workers in 1..=config.max_workers {
                setups.push(Setup {
                    method,
                    engine,
                    workers,
                });
            }
        }
    }
    let work = |s: &Setup| match s.method {
        Method::MonteCarlo => config.samples,
        Method::Midpoint => config.steps,
    };
    let mut seconds = vec![Vec::with_capacity(config.repeats); setups.len()];
    let mut values: Vec<Option<Value>> = vec![None; setups.len()];
    let mut consistent = true;
    // One worker count at a time, so that only its pool's processes exist;
    // within it, round-robin over the rows, so that a burst of load from
    // elsewhere spreads over all of them.
    for workers in 1..=config.max_workers {
        let pool = Pool::new(workers)?;
        let block: Vec<usize> = (0..setups.len())
            .filter(|&i| setups[i].workers == workers)
            .collect();
        for &i in &block {
            run_once(setups[i], &pool, config, WARM_UP.min(work(&setups[i])))?;
        }
        for _ in 0..config.repeats {
            for &i in &block {
                let started = Instant::now();
                let value = run_once(setups[i], &pool, config, work(&setups[i]))?;
                seconds[i].push(started.elapsed().as_secs_f64());
                match values[i] {
                    None => values[i] = Some(value),
                    Some(v) => consistent &= v == value,
                }
            }
        }
    }
    let background = before.zip(Ticks::now()).and_then(|(b, a)| a.since(b));

    let mut results = Vec::new();
    for (i, setup) in setups.iter().enumerate() {
        let samples = work(setup);
        let median = report::median(&seconds[i]);
        let estimate = match values[i] {
            Some(Value::Hits(h)) => estimate(h, samples),
            Some(Value::Pi(pi)) => pi,
            None => f64::NAN,
        };
        results.push(Row {
            method: setup.method,
            engine: setup.engine,
            workers: setup.workers,
            samples,
            seconds: median,
            samples_per_s: samples as f64 / median.max(1e-12),
            estimate,
            error: distance(estimate),
        });
    }

    // Reproducible: every Monte Carlo row (and the demo pool) counted the
    // same hits, in every run.
    let mc_hits: Vec<u64> = setups
        .iter()
        .zip(&values)
        .filter_map(|(s, v)| match (s.method, v) {
            (Method::MonteCarlo, Some(Value::Hits(h))) => Some(*h),
            _ => None,
        })
        .collect();
    let mut worker_counts: Vec<usize> = (1..=config.max_workers)
        .chain([config.demo_workers])
        .collect();
    worker_counts.sort_unstable();
    worker_counts.dedup();
    fixed.worker_counts = worker_counts;
    fixed.reproducible_across_worker_counts =
        consistent && mc_hits.iter().all(|&h| h == fixed.hits);

    let checks = Checks::new(config, &pitfall, &fixed, &results);
    let ok = checks.ok();
    let verdict = verdict(config, &checks, &pitfall, &fixed, &results, background);
    Ok(MonteCarloReport {
        outcome: Outcome {
            lab: "lab11-montecarlo",
            ok,
            verdict,
        },
        samples: config.samples,
        master_seed: config.master_seed,
        batch: config.batch,
        tasks: fixed.tasks,
        steps: config.steps,
        cpus: crate::cli::available_cpus(),
        max_workers: config.max_workers,
        repeats: config.repeats,
        kernel,
        background,
        pitfall,
        fixed,
        results,
    })
}

/// What must hold for the lab to be ok.
struct Checks {
    /// The pitfall's workers all returned the same estimate.
    pitfall_equal: bool,
    /// With per-batch seeds the workers' estimates differ (if there are at
    /// least two workers that ran batches).
    fixed_differ: bool,
    /// Every engine and worker count counted the same hits.
    reproducible: bool,
    /// Every Monte Carlo estimate within [`mc_tolerance`].
    mc_close: bool,
    /// Every midpoint π within [`midpoint_tolerance`].
    midpoint_close: bool,
}

impl Checks {
    fn new(config: &MonteCarloConfig, pitfall: &Pitfall, fixed: &Fixed, rows: &[Row]) -> Checks {
        let fixed_differ = fixed.per_worker_estimates.len() < 2
            || fixed.per_worker_estimates.windows(2).any(|w| w[0] != w[1]);
        let close = |method: Method, tolerance: f64| {
            rows.iter()
                .filter(|r| r.method == method)
                .all(|r| r.error <= tolerance)
        };
        Checks {
            pitfall_equal: pitfall.all_equal,
            fixed_differ,
            reproducible: fixed.reproducible_across_worker_counts,
            mc_close: close(Method::MonteCarlo, mc_tolerance(config.samples))
                && fixed.error <= mc_tolerance(config.samples),
            midpoint_close: close(Method::Midpoint, midpoint_tolerance(config.steps)),
        }
    }

    fn ok(&self) -> bool {
        self.pitfall_equal
            && self.fixed_differ
            && self.reproducible
            && self.mc_close
            && self.midpoint_close
    }
}

/// The best row of `method` on `engine` with `workers`.
fn row(rows: &[Row], method: Method, engine: Engine, workers: usize) -> Option<&Row> {
    rows.iter()
        .find(|r| r.method == method && r.engine == engine && r.workers == workers)
}

fn verdict(
    config: &MonteCarloConfig,
    checks: &Checks,
    pitfall: &Pitfall,
    fixed: &Fixed,
    rows: &[Row],
    background: Option<Background>,
) -> String {
    let mut wrong = Vec::new();
    if !checks.pitfall_equal {
        wrong.push(String::from(
            "workers given the same state did NOT return the same estimate",
        ));
    }
    if !checks.fixed_differ {
        wrong.push(String::from(
            "workers with per-batch seeds returned identical estimates",
        ));
    }
    if !checks.reproducible {
        wrong.push(String::from(
            "the hits differed between engines or worker counts",
        ));
    }
    if !checks.mc_close {
        wrong.push(format!(
            "a Monte Carlo estimate was more than {SIGMAS} standard errors from π"
        ));
    }
    if !checks.midpoint_close {
        wrong.push(String::from(
            "a midpoint-rule π was off by more than its error bound",
        ));
    }
    if !wrong.is_empty() {
        return format!("FAILED: {} (see above)", wrong.join("; "));
    }
    let w = config.max_workers;
    let mc = |engine, workers| row(rows, Method::MonteCarlo, engine, workers);
    let best = rows
        .iter()
        .filter(|r| r.method == Method::MonteCarlo)
        .max_by(|a, b| a.samples_per_s.total_cmp(&b.samples_per_s));
    let mut out = format!(
        "same state in every worker: all {} estimates were {:.6} (identical); per-batch seeds from master seed {}: the same {} hits on every engine with {} workers (π ≈ {:.6}, error {:.1e}). ",
        pitfall.workers,
        pitfall
            .per_worker_estimates
            .first()
            .copied()
            .unwrap_or(f64::NAN),
        config.master_seed,
        fixed.hits,
        list(&fixed.worker_counts),
        fixed.estimate,
        fixed.error,
    );
    if let (Some(serial), Some(pool_w)) = (mc(Engine::Serial, 1), mc(Engine::Pool, w)) {
        out += &format!(
            "Monte Carlo: serial {}, pool with {w} workers {}",
            report::rate(serial.samples_per_s),
            report::rate(pool_w.samples_per_s)
        );
        if let Some(best) = best {
            let by = match (best.engine, best.workers) {
                (Engine::Serial, _) => "serial".to_string(),
                (engine, 1) => format!("{} with 1 worker", engine.name()),
                (engine, n) => format!("{} with {n} workers", engine.name()),
            };
            out += &format!(", best {} ({by})", report::rate(best.samples_per_s));
        }
        out += ". ";
    }
    if w > 1 {
        let speedups: Vec<(Engine, f64)> = [Engine::Threads, Engine::Pool]
            .into_iter()
            .filter_map(|e| {
                let one = mc(e, 1)?;
                let many = mc(e, w)?;
                Some((e, many.samples_per_s / one.samples_per_s))
            })
            .collect();
        // Judged on the speed-up as printed (two decimals).
        let shown = speedups
            .iter()
            .any(|&(_, s)| (s * 100.0).round() / 100.0 >= SCALING_SHOWN);
        let text = speedups
            .iter()
            .map(|(e, s)| format!("{} ×{s:.2}", e.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let busy = background.filter(|b| b.busy);
        if shown {
            out += &format!("{w} workers vs 1: {text}");
            if let Some(b) = busy {
                out += &format!(
                    " — but other processes used {:.2} CPUs meanwhile: competing with them, more workers simply win a larger share of the CPUs, so this says little about the vCPUs",
                    b.other_cpus
                );
            }
            out += ".";
        } else if let Some(b) = busy {
            out += &format!(
                "{w} workers vs 1: {text} — no speed-up, but other processes used {:.2} CPUs meanwhile: run again on a quieter machine.",
                b.other_cpus
            );
        } else {
            out += &format!(
                "{w} workers vs 1: {text} — no speed-up, on a quiet machine: these {} vCPUs gave this loop no more throughput than one, as two SMT siblings sharing one core's vector units would.",
                crate::cli::available_cpus()
            );
        }
    }
    out
}

fn list(counts: &[usize]) -> String {
    match counts {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!(
            "{} and {last}",
            init.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Report for MonteCarloReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let p = &self.pitfall;
        let f = &self.fixed;
        let mut out = format!(
            "Monte Carlo π: {} samples in {} batches of {}, master seed {}; midpoint rule: {} steps. Kernel: {}; {} CPUs.\n\n",
            self.samples,
            self.tasks,
            self.batch,
            self.master_seed,
            self.steps,
            self.kernel,
            self.cpus
        );
        out += &format!(
            "1. The pitfall: {} workers, each handed a copy of the parent's generator state ({:#018x}),\n   as forked workers inherit numpy's or random's global state. {} samples each:\n",
            p.workers, p.state, p.samples_per_worker
        );
        for (pid, e) in p.pids.iter().zip(&p.per_worker_estimates) {
            out += &format!("     worker {pid:>7}: {e:.10}\n");
        }
        out += &format!(
            "   {}; together {:.10}, error {:.2e} — {} × {} samples bought the accuracy of {} (independent numbers: ±{:.1e}).\n\n",
            if p.all_equal {
                "all identical: every worker drew the same numbers"
            } else {
                "NOT all identical"
            },
            p.estimate,
            p.error,
            p.workers,
            p.samples_per_worker,
            p.samples_per_worker,
            p.standard_error_if_independent
        );
        out += &format!(
            "2. The fix: batch k draws from SplitMix64 seeded with task_seed({}, k), whichever worker runs it.\n   {} workers ran the {} batches:\n",
            self.master_seed, f.workers, f.tasks
        );
        for ((pid, n), e) in f
            .pids
            .iter()
            .zip(&f.tasks_per_worker)
            .zip(&f.per_worker_estimates)
        {
            out += &format!("     worker {pid:>7}: {n:>6} batches, {e:.10}\n");
        }
        out += &format!(
            "   total {} hits: π ≈ {:.10}, error {:.2e} (standard error {:.1e});\n   the same hits with {} workers on every engine: {}.\n\n",
            f.hits,
            f.estimate,
            f.error,
            f.standard_error,
            list(&f.worker_counts),
            if f.reproducible_across_worker_counts {
                "reproducible"
            } else {
                "NOT reproducible"
            }
        );
        out += &format!(
            "3. Timed, median of {} runs (pools started beforehand; threads started every run):\n",
            self.repeats
        );
        out += "   method       engine   workers      samples    seconds    samples/s       estimate      error\n";
        for r in &self.results {
            out += &format!(
                "   {:<12} {:<8} {:>7} {:>12} {:>10.4} {:>12} {:>14.10} {:>10.2e}\n",
                r.method.name(),
                r.engine.name(),
                r.workers,
                r.samples,
                r.seconds,
                report::rate(r.samples_per_s),
                r.estimate,
                r.error
            );
        }
        if let Some(b) = self.background {
            out += &format!(
                "   other processes used {:.2} CPUs on average meanwhile{}\n",
                b.other_cpus,
                if b.busy {
                    " (busy: timings are noisy)"
                } else {
                    ""
                }
            );
        }
        out
    }
}
