//! `Pool`: a fixed set of worker processes that run tasks — the tutorials'
//! `multiprocessing.Pool` and `concurrent.futures.ProcessPoolExecutor`.
//!
//! ```
//! use shmlab::pool::Pool;
//!
//! fn cube(x: u64) -> u64 {
//!     x * x * x
//! }
//! shmlab::task!(cube);
//!
//! fn power_n(x: u64, n: u32) -> u64 {
//!     x.pow(n)
//! }
//! shmlab::task!(power_n);
//!
//! fn main() {
//!     shmlab::entry(); // a pool worker runs its loop here and never returns
//!     let pool = Pool::new(2).unwrap();
//!     let cubes = pool.map(cube, 0..256u64, None).unwrap();
//!     assert_eq!(cubes[10], 1000);
//!     let powers = pool.starmap(power_n, (0..=10u32).map(|n| (2u64, n)), None).unwrap();
//!     assert_eq!(powers[10], 1024);
//!     let later = pool.apply_async(cube, 7).unwrap();
//!     assert_eq!(later.get().unwrap(), 343);
//! }
//! ```
//!
//! # The calls
//!
//! | Python | shmlab | returns |
//! |---|---|---|
//! | `pool.map(f, xs, chunksize)` | [`Pool::map`] | `Vec<R>` in input order |
//! | `pool.starmap(f, pairs)` | [`Pool::starmap`] | `f(a, b)` for each `(a, b)` |
//! | `pool.imap(f, xs)` | [`Pool::imap`] | an iterator, in input order |
//! | — | [`Pool::istarmap`] | `starmap` as an iterator |
//! | `pool.imap_unordered(f, xs)` | [`Pool::imap_unordered`] | an iterator, in completion order |
//! | `pool.apply(f, (x,))` | [`Pool::apply`] | `R` |
//! | `pool.apply_async(f, (x,))` | [`Pool::apply_async`] | an [`AsyncResult`] |
//! | `pool.map_async(f, xs)` | [`Pool::map_async`] | an [`AsyncResult`] of `Vec<R>` |
//! | `executor.submit(f, x)` | [`Pool::submit`] | an [`AsyncResult`] (a future) |
//! | `close()`, `join()`, `terminate()` | [`Pool::close`], [`Pool::join`], [`Pool::terminate`] | |
//!
//! Tasks are plain `fn` items registered with [`task!`](crate::task), as for
//! [`process::spawn`](crate::process::spawn); arguments and results cross
//! to the workers as JSON.
//!
//! # Progress
//!
//! Every mapping call can say how far it is: [`Imap::progress`] (for
//! `imap`, `imap_unordered`, `istarmap`), [`AsyncResult::progress`] (for
//! `map_async`), and [`Pool::map_with_progress`] calls back as results
//! arrive — the labs draw an indicatif bar with it, which moves item by
//! item rather than jumping from 0 to 100 % as tqdm over `Pool.map` does.
//!
//! # Chunks
//!
//! Sending one item at a time to a worker costs a round trip per item;
//! `chunksize` items travel together instead. Every mapping call takes
//! `chunksize: Option<usize>`, and `None` means what it means in Python:
//! for `map`, `starmap` and `map_async`, `ceil(len / (4 × workers))` when
//! the input's length is known (an iterator with an exact `size_hint`, such
//! as a range or a `Vec`) and 1 when it is not; for `imap`,
//! `imap_unordered` and `istarmap`, 1. Results still come back one item at a time, so progress
//! moves item by item.
//!
//! # Lazy input
//!
//! Inputs are read as the workers need them: a call keeps a bounded
//! number of items submitted and not yet returned to the caller (see
//! [`Imap`]), so `pool.imap(f, 0..10_000_000u64, Some(100))` never holds ten
//! million arguments. (Python's `Pool` reads the whole input first.)
//!
//! # Faults never hang a caller
//!
//! - A task that panics fails its item with [`PoolError::TaskPanicked`]
//!   carrying the panic message; the worker carries on.
//! - A worker killed mid-task (SIGKILL, the OOM killer) fails the item it
//!   was running with [`PoolError::WorkerDied`] naming the signal; the pool
//!   starts a replacement and hands the items that worker had not started
//!   to the others. (CPython's `Pool` waits forever in this case.)
//! - [`Pool::terminate`], or dropping the pool, kills every worker and
//!   fails whatever was left with [`PoolError::Terminated`]. A dropped pool
//!   never leaves a worker running.

mod calls;
mod dispatch;
mod frames;
mod serve;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use calls::{AsyncResult, Imap, Status};
pub use dispatch::MAX_QUEUED;

use crate::channel::{ChannelError, event};
use crate::element::ElementType;
use crate::lock::{FutexLock, LockKind};
use crate::process::{TaskFn, WorkerError};
use crate::shm::{ObjectKind, Segment, ShmError, Spec};
use crate::sync::FutexWord;

/// Chunks per worker a mapping call keeps submitted and not yet returned
/// to its caller.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use shmlab::lessons::pool::cube;
/// use shmlab::pool::{LOOKAHEAD, Pool};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop in here
///     let pool = Pool::new(2)?;
///     let pulled = AtomicUsize::new(0);
///     let input = (0u64..).inspect(|_| {
///         pulled.fetch_add(1, Ordering::Relaxed);
///     });
///     // An endless input in chunks of 100: the call reads LOOKAHEAD chunks
///     // per worker ahead of what it returned, and no further.
///     let first: Vec<u64> = pool.imap(cube, input, Some(100))?.take(3).collect::<Result<_, _>>()?;
///     assert_eq!(first, [0, 1, 8]);
///     assert!(pulled.load(Ordering::Relaxed) <= (LOOKAHEAD * pool.workers() + 1) * 100);
///     Ok(())
/// }
/// ```
pub const LOOKAHEAD: usize = 8;
/// A mapping call's look-ahead in bytes of encoded arguments, at most
/// (unless [`LOOKAHEAD`] chunks per worker need more).
pub(crate) const LOOKAHEAD_BYTES: usize = 16 << 20;

/// Why a pool call failed.
///
/// ```
/// use shmlab::pool::{Pool, PoolError};
///
/// let err = Pool::new(0).unwrap_err(); // found before any process starts
/// assert_eq!(err, PoolError::NoWorkersRequested);
/// assert_eq!(err.to_string(), "a pool needs at least one worker");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// A pool needs at least one worker.
    #[error("a pool needs at least one worker")]
    NoWorkersRequested,
    /// A chunk of zero items.
    #[error("chunksize must be at least 1")]
    ZeroChunksize,
    /// The function is not a registered task (or not a `fn` at all).
    #[error("{0}")]
    NotATask(String),
    /// A worker could not be started.
    #[error("could not start a pool worker: {0}")]
    Start(String),
    /// A worker started but never said it was ready.
    #[error("pool worker {pid} failed to start: {reason}")]
    WorkerFailedToStart {
        /// The worker.
        pid: u32,
        /// What happened to it.
        reason: String,
    },
    /// The shared memory behind the pool could not be set up.
    #[error("pool set-up failed: {0}")]
    Setup(String),
    /// The task panicked; the worker carries on.
    #[error("task {index} panicked in worker {pid}: {message}")]
    TaskPanicked {
        /// The item's position in its call's input.
        index: usize,
        /// The worker that ran it.
        pid: u32,
        /// The panic message.
        message: String,
    },
    /// The worker running this item died (e.g. killed by SIGKILL).
    #[error("task {index} failed: worker {pid} {reason}")]
    WorkerDied {
        /// The item's position in its call's input.
        index: usize,
        /// The worker.
        pid: u32,
        /// How it died, e.g. `killed by SIGKILL`.
        reason: String,
    },
    /// An argument or a result could not be encoded or decoded.
    #[error("task {index}: {message}")]
    Codec {
        /// The item's position in its call's input.
        index: usize,
        /// What went wrong.
        message: String,
    },
    /// Every worker died and none could be started again.
    #[error("task {index} was not run: the pool has no workers left ({reason})")]
    NoWorkers {
        /// The item's position in its call's input.
        index: usize,
        /// The last worker's death.
        reason: String,
    },
    /// The pool was closed: it takes no new work.
    #[error("the pool is closed and takes no new work")]
    Closed,
    /// `join` before `close` (Python raises the same error).
    #[error("join() needs close() first: the pool is still taking work")]
    NotClosed,
    /// The pool was terminated (or dropped) before the item ran.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// The task was cancelled before it started.
    #[error("the task was cancelled before it started")]
    Cancelled,
    /// No result within the timeout; the handle can be waited on again.
    #[error("no result after {0:?}")]
    Timeout(Duration),
    /// The result was already taken from this handle.
    #[error("the result was already taken")]
    AlreadyTaken,
}

impl From<WorkerError> for PoolError {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::NotAFunction { .. } | WorkerError::Unregistered { .. } => {
                PoolError::NotATask(e.to_string())
            }
            other => PoolError::Start(other.to_string()),
        }
    }
}

impl From<ChannelError> for PoolError {
    fn from(e: ChannelError) -> Self {
        PoolError::Setup(e.to_string())
    }
}

impl From<ShmError> for PoolError {
    fn from(e: ShmError) -> Self {
        PoolError::Setup(e.to_string())
    }
}

/// How far a call has come: `done` of `total` items have a result.
/// `total` is `None` while the input's length is unknown (it becomes known
/// when the input runs out).
///
/// ```
/// use shmlab::pool::Progress;
///
/// let halfway = Progress { done: 5, total: Some(10) };
/// assert_eq!(serde_json::to_string(&halfway)?, r#"{"done":5,"total":10}"#);
/// assert_eq!(Progress::default(), Progress { done: 0, total: None });
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Progress {
    /// Items with a result (or an error).
    pub done: usize,
    /// All items, once known.
    pub total: Option<usize>,
}

/// Counts over the pool's life.
///
/// ```
/// use shmlab::pool::PoolStats;
///
/// let stats = PoolStats { workers: 4, replaced: 1 };
/// assert_eq!(serde_json::to_string(&stats)?, r#"{"workers":4,"replaced":1}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PoolStats {
    /// Workers asked for.
    pub workers: usize,
    /// Workers started to replace ones that died.
    pub replaced: usize,
}

/// A run of consecutive items of one call, for one worker.
pub(crate) struct Chunk {
    /// The task's index in the task table.
    task: u32,
    /// The position of `items[0]` in the call's input.
    first: usize,
    /// Each item's JSON arguments.
    items: Vec<Vec<u8>>,
    /// Where the results go.
    sink: Arc<dyn Sink>,
}

/// Where a call's results go: the dispatcher's side of a call.
pub(crate) trait Sink: Send + Sync {
    /// The call's chunk is about to go to a worker; `false` means the call
    /// was cancelled and the chunk is dropped instead.
    fn start(&self) -> bool;
    /// Item `index`'s outcome.
    fn deliver(&self, index: usize, outcome: Outcome);
    /// Several outcomes at once (one wake-up for the caller, not one each).
    fn deliver_many(&self, outcomes: Vec<(usize, Outcome)>) {
        for (index, outcome) in outcomes {
            self.deliver(index, outcome);
        }
    }
}

/// An item's JSON result, or why there is none.
pub(crate) type Outcome = Result<Vec<u8>, PoolError>;

/// What the callers and the dispatcher share.
struct State {
    /// Chunks not yet handed to a worker, oldest first.
    pending: VecDeque<Chunk>,
    /// `close` was called.
    closed: bool,
    /// `terminate` was called.
    terminated: bool,
    /// The dispatcher has ended; nothing more will run.
    finished: bool,
    /// ... and it has failed every chunk it held.
    settled: bool,
    /// Why the pool lost all its workers, if it did.
    broken: Option<String>,
    /// The live workers: pid, and the segment of the pipe to it.
    members: Vec<(u32, String)>,
    /// Replacements started.
    replaced: usize,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    /// Holds the doorbell.
    control: Segment,
    workers: usize,
}

fn control_spec() -> Spec {
    Spec {
        kind: ObjectKind::Pool,
        element: ElementType::U32,
        lock: LockKind::Futex,
    }
}

/// Futex words per bell: each bell on a cache line of its own, so ringing
/// one never slows a process that polls another.
const BELL_STRIDE: usize = 16;

/// Bell 0 wakes the dispatcher; bell `1 + i` wakes worker slot `i`.
fn bell(control: &Segment, index: usize) -> &FutexWord {
    &control.cells::<u32>()[index * BELL_STRIDE]
}

fn doorbell(control: &Segment) -> &FutexWord {
    bell(control, 0)
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock (in our own code) leaves the state
        // consistent: every update is a single push, pop or flag.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn doorbell(&self) -> &FutexWord {
        doorbell(&self.control)
    }

    /// The bell of worker slot `slot`.
    fn worker_bell(&self, slot: usize) -> &FutexWord {
        bell(&self.control, 1 + slot)
    }

    fn control_name(&self) -> &str {
        self.control.name()
    }

    /// Wakes the dispatcher.
    fn wake_dispatcher(&self) {
        event::announce(self.doorbell());
    }

    /// Queues chunks for the dispatcher.
    fn submit(&self, chunks: impl IntoIterator<Item = Chunk>) -> Result<(), PoolError> {
        let mut state = self.lock();
        if state.terminated || state.finished {
            return Err(PoolError::Terminated);
        }
        if state.closed {
            return Err(PoolError::Closed);
        }
        state.pending.extend(chunks);
        drop(state);
        self.wake_dispatcher();
        Ok(())
    }

    /// Whether the dispatcher has ended.
    fn finished(&self) -> bool {
        self.lock().finished
    }

    /// Whether the dispatcher has ended and failed everything it held.
    fn settled(&self) -> bool {
        self.lock().settled
    }
}

/// A pool of worker processes. See the [module documentation](self).
///
/// ```
/// use shmlab::lessons::pool::cube;
/// use shmlab::pool::Pool;
/// use shmlab::process::pid_alive;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop in here
///     let pool = Pool::new(2)?;
///     assert_eq!(pool.map(cube, 1..=3u64, None)?, [1, 8, 27]);
///     let pids = pool.pids();
///     drop(pool); // kills and reaps every worker
///     assert!(pids.iter().all(|&pid| !pid_alive(pid)));
///     Ok(())
/// }
/// ```
pub struct Pool {
    inner: Arc<Inner>,
    dispatcher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.inner.workers)
            .field("pids", &self.pids())
            .finish()
    }
}

/// What `chunksize: None` means for a call: Python's `map`, `starmap` and
/// `map_async` use the length rule, its `imap` and `imap_unordered` use 1.
#[derive(Debug, Clone, Copy)]
enum DefaultChunks {
    ByLength,
    One,
}

/// The task table index of `f`, or why it is not a task.
fn task_index<F: Copy + 'static>(f: &F) -> Result<u32, PoolError> {
    let (index, _) = crate::process::resolve(f).map_err(WorkerError::from)?;
    Ok(index as u32)
}

fn encode<T: Serialize>(index: usize, value: &T) -> Result<Vec<u8>, PoolError> {
    serde_json::to_vec(value).map_err(|e| PoolError::Codec {
        index,
        message: format!("could not encode the arguments: {e}"),
    })
}

/// Python's default chunk size: `ceil(len / (4 × workers))`, or 1 when the
/// length is unknown.
///
/// ```
/// use shmlab::pool::default_chunksize;
///
/// assert_eq!(default_chunksize(Some(1000), 4), 63); // 1000 / 16, rounded up
/// assert_eq!(default_chunksize(Some(3), 4), 1);
/// assert_eq!(default_chunksize(None, 4), 1);
/// ```
pub fn default_chunksize(len: Option<usize>, workers: usize) -> usize {
    match len {
        Some(len) => len.div_ceil(4 * workers.max(1)).max(1),
        None => 1,
    }
}

impl Pool {
    /// Starts `workers` worker processes and waits until each is ready.
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     assert_eq!(pool.pids().len(), 2); // both ready
    ///     assert_eq!(pool.apply(cube, 4)?, 64);
    ///     Ok(())
    /// }
    /// ```
    pub fn new(workers: usize) -> Result<Pool, PoolError> {
        if workers == 0 {
            return Err(PoolError::NoWorkersRequested);
        }
        let bells = (1 + workers)
            .checked_mul(BELL_STRIDE)
            .ok_or(PoolError::NoWorkersRequested)?;
        let control = Segment::create::<u32, FutexLock>(ObjectKind::Pool, None, bells, 0)?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                closed: false,
                terminated: false,
                finished: false,
                settled: false,
                broken: None,
                members: Vec::new(),
                replaced: 0,
            }),
            control,
            workers,
        });
        let mut members = Vec::with_capacity(workers);
        for slot in 0..workers {
            members.push(dispatch::Member::start(&inner, slot)?);
        }
        dispatch::wait_ready(&inner, &mut members)?;
        inner.lock().members = members.iter().map(|m| m.describe()).collect();
        debug_assert!(members.iter().all(|m| m.is_ready()));
        let for_thread = Arc::clone(&inner);
        let dispatcher = std::thread::Builder::new()
            .name("shmlab-pool".into())
            .spawn(move || dispatch::run(for_thread, members))
            .map_err(|e| PoolError::Start(e.to_string()))?;
        Ok(Pool {
            inner,
            dispatcher: Some(dispatcher),
        })
    }

    /// The number of workers.
    ///
    /// ```
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     assert_eq!(pool.workers(), 1);
    ///     Ok(())
    /// }
    /// ```
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// The live workers' process ids.
    ///
    /// ```
    /// use shmlab::pool::Pool;
    /// use shmlab::process::pid_alive;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let pids = pool.pids();
    ///     assert!(pids[0] != pids[1] && !pids.contains(&std::process::id()));
    ///     assert!(pids.iter().all(|&pid| pid_alive(pid)));
    ///     Ok(())
    /// }
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.inner.lock().members.iter().map(|m| m.0).collect()
    }

    /// The shared-memory segments behind the pool (in `/dev/shm`): its
    /// control block, then one pipe per worker. The pool removes them all
    /// when it ends.
    ///
    /// ```
    /// use std::path::Path;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let names = pool.segment_names();
    ///     let files: Vec<_> = names.iter().map(|n| Path::new("/dev/shm").join(n)).collect();
    ///     assert_eq!(files.len(), 3); // the control block and two pipes
    ///     assert!(files.iter().all(|f| f.exists()));
    ///     drop(pool);
    ///     assert!(files.iter().all(|f| !f.exists()));
    ///     Ok(())
    /// }
    /// ```
    pub fn segment_names(&self) -> Vec<String> {
        let state = self.inner.lock();
        std::iter::once(self.inner.control_name().to_string())
            .chain(state.members.iter().map(|m| m.1.clone()))
            .collect()
    }

    /// Counts over the pool's life.
    ///
    /// ```
    /// use shmlab::lessons::pool::doomed;
    /// use shmlab::pool::{Pool, PoolError, PoolStats};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     // `doomed(5)` SIGKILLs its own worker; the pool starts another.
    ///     assert!(matches!(pool.apply(doomed, 5), Err(PoolError::WorkerDied { .. })));
    ///     assert_eq!(pool.apply(doomed, 1)?, 2);
    ///     assert_eq!(pool.stats(), PoolStats { workers: 1, replaced: 1 });
    ///     Ok(())
    /// }
    /// ```
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            workers: self.inner.workers,
            replaced: self.inner.lock().replaced,
        }
    }

    fn chunksize(&self, chunksize: Option<usize>, len: Option<usize>) -> Result<usize, PoolError> {
        match chunksize {
            Some(0) => Err(PoolError::ZeroChunksize),
            Some(n) => Ok(n),
            None => Ok(default_chunksize(len, self.inner.workers)),
        }
    }

    fn imap_of<F, T, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
        ordered: bool,
        default: DefaultChunks,
    ) -> Result<Imap<R, I::IntoIter>, PoolError>
    where
        F: Copy + 'static,
        T: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = T>,
    {
        let task = task_index(&f)?;
        let inputs = inputs.into_iter();
        let len = match inputs.size_hint() {
            (low, Some(high)) if low == high => Some(low),
            _ => None,
        };
        let chunksize = match default {
            DefaultChunks::ByLength => self.chunksize(chunksize, len)?,
            DefaultChunks::One => self.chunksize(chunksize.or(Some(1)), len)?,
        };
        if self.inner.finished() {
            return Err(PoolError::Terminated);
        }
        Ok(Imap::new(
            Arc::clone(&self.inner),
            task,
            inputs,
            chunksize,
            ordered,
            len,
        ))
    }

    /// `f(x)` for every `x`, in input order (Python's `Pool.map`). The first
    /// failure ends the call; the items not yet started are dropped.
    ///
    /// ```
    /// use shmlab::lessons::pool::{cube, fragile};
    /// use shmlab::pool::{Pool, PoolError};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     assert_eq!(pool.map(cube, 0..5u64, None)?, [0, 1, 8, 27, 64]);
    ///     // `fragile` panics on 3: the call fails with that item's panic.
    ///     let err = pool.map(fragile, 0..5u64, None).unwrap_err();
    ///     assert!(matches!(err, PoolError::TaskPanicked { index: 3, .. }));
    ///     Ok(())
    /// }
    /// ```
    pub fn map<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<Vec<R>, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.imap_of(f, inputs, chunksize, true, DefaultChunks::ByLength)?
            .collect()
    }

    /// [`Pool::map`], calling `on_progress` each time results arrive (for a
    /// progress bar that moves as they do).
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let mut seen = Vec::new();
    ///     let cubes = pool.map_with_progress(cube, 0..200u64, Some(10), |p| seen.push(p.done))?;
    ///     assert_eq!(cubes.len(), 200);
    ///     assert_eq!((seen[0], *seen.last().unwrap()), (0, 200));
    ///     assert!(seen.is_sorted());
    ///     Ok(())
    /// }
    /// ```
    pub fn map_with_progress<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<Vec<R>, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let mut imap = self.imap_of(f, inputs, chunksize, true, DefaultChunks::ByLength)?;
        let mut results = Vec::new();
        on_progress(imap.progress());
        while let Some(result) = imap.next() {
            results.push(result?);
            on_progress(imap.progress());
        }
        Ok(results)
    }

    /// `f(a, b)` for every pair, in input order (Python's `Pool.starmap`).
    ///
    /// ```
    /// use shmlab::lessons::pool::power_n;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let powers = pool.starmap(power_n, [(2, 10), (3, 2), (10, 0)], None)?;
    ///     assert_eq!(powers, [1024, 9, 1]);
    ///     Ok(())
    /// }
    /// ```
    pub fn starmap<F, A, B, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<Vec<R>, PoolError>
    where
        F: Fn(A, B) -> R + TaskFn<(A, B)>,
        A: Serialize,
        B: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = (A, B)>,
    {
        self.imap_of(f, inputs, chunksize, true, DefaultChunks::ByLength)?
            .collect()
    }

    /// A lazy, ordered `starmap`: [`Pool::starmap`] as an iterator, with
    /// [`Imap::progress`] (Python has no `istarmap`; this is `imap` for
    /// two-argument tasks).
    ///
    /// ```
    /// use shmlab::lessons::pool::power_n;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let mut powers = pool.istarmap(power_n, (0..=10).map(|n| (2u64, n)), None)?;
    ///     assert_eq!(powers.next().transpose()?, Some(1));
    ///     let rest: Vec<u64> = powers.collect::<Result<_, _>>()?;
    ///     assert_eq!(rest.last(), Some(&1024));
    ///     Ok(())
    /// }
    /// ```
    pub fn istarmap<F, A, B, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<Imap<R, I::IntoIter>, PoolError>
    where
        F: Fn(A, B) -> R + TaskFn<(A, B)>,
        A: Serialize,
        B: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = (A, B)>,
    {
        self.imap_of(f, inputs, chunksize, true, DefaultChunks::One)
    }

    /// A lazy, ordered `map` (Python's `Pool.imap`): results come out in
    /// input order as soon as each is ready and all before it were.
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     // An endless input: only what the workers need is read.
    ///     let first: Vec<u64> = pool.imap(cube, 1u64.., None)?.take(4).collect::<Result<_, _>>()?;
    ///     assert_eq!(first, [1, 8, 27, 64]);
    ///     Ok(())
    /// }
    /// ```
    pub fn imap<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<Imap<R, I::IntoIter>, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.imap_of(f, inputs, chunksize, true, DefaultChunks::One)
    }

    /// A lazy `map` whose results come out in the order they finish
    /// (Python's `Pool.imap_unordered`).
    ///
    /// ```
    /// use shmlab::lessons::pool::countdown;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     // countdown(x) takes (8 - x) × 4 ms: later items tend to finish first.
    ///     let finished = pool.imap_unordered(countdown, 4..8u64, Some(1))?;
    ///     let mut done: Vec<u64> = finished.collect::<Result<_, _>>()?;
    ///     done.sort_unstable(); // whatever order they came in, each came once
    ///     assert_eq!(done, [4, 5, 6, 7]);
    ///     Ok(())
    /// }
    /// ```
    pub fn imap_unordered<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<Imap<R, I::IntoIter>, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.imap_of(f, inputs, chunksize, false, DefaultChunks::One)
    }

    /// Runs `f(args)` in a worker and returns a handle at once (Python's
    /// `Pool.apply_async`).
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let handles = [pool.apply_async(cube, 2)?, pool.apply_async(cube, 3)?];
    ///     let [a, b] = handles; // both run while we hold the handles
    ///     assert_eq!(a.get()? + b.get()?, 8 + 27);
    ///     Ok(())
    /// }
    /// ```
    pub fn apply_async<F, A, R>(&self, f: F, args: A) -> Result<AsyncResult<R>, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let task = task_index(&f)?;
        let handle = AsyncResult::new(Some(1));
        let chunk = Chunk {
            task,
            first: 0,
            items: vec![encode(0, &args)?],
            sink: handle.sink(),
        };
        self.inner.submit([chunk])?;
        Ok(handle)
    }

    /// Runs `f(args)` in a worker and waits for the result (Python's
    /// `Pool.apply`).
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     assert_eq!(pool.apply(cube, 5)?, 125);
    ///     Ok(())
    /// }
    /// ```
    pub fn apply<F, A, R>(&self, f: F, args: A) -> Result<R, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args)?.get()
    }

    /// The `concurrent.futures` spelling of [`Pool::apply_async`]: the
    /// handle is a future that can be polled ([`AsyncResult::is_done`],
    /// [`AsyncResult::is_running`]), cancelled before it starts, waited on
    /// with a timeout, and given done callbacks.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     let future = pool.submit(cube, 3)?;
    ///     assert!(future.wait(Duration::from_secs(5)));
    ///     assert!(future.is_done());
    ///     assert_eq!(future.get()?, 27); // `Future.result()`
    ///     Ok(())
    /// }
    /// ```
    pub fn submit<F, A, R>(&self, f: F, args: A) -> Result<AsyncResult<R>, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args)
    }

    /// [`Pool::map`] in the background (Python's `Pool.map_async`): returns
    /// a handle at once. The input is still read lazily, by a thread of the
    /// call's own; [`AsyncResult::progress`] says how far it has come.
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let all = pool.map_async(cube, 0..1000u64, None)?;
    ///     // ... free to do other work here ...
    ///     let cubes = all.get()?;
    ///     assert_eq!(cubes.iter().sum::<u64>(), (999 * 1000 / 2u64).pow(2));
    ///     Ok(())
    /// }
    /// ```
    pub fn map_async<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        F: Fn(A) -> R + TaskFn<(A,)>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let imap = self.imap_of(f, inputs, chunksize, true, DefaultChunks::ByLength)?;
        AsyncResult::<Vec<R>>::run_in_background(imap)
    }

    /// Takes no more work; what was submitted still runs. Then call
    /// [`Pool::join`].
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::{Pool, PoolError};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let mut pool = Pool::new(1)?;
    ///     let submitted = pool.apply_async(cube, 3)?;
    ///     pool.close();
    ///     assert_eq!(pool.apply(cube, 4), Err(PoolError::Closed));
    ///     assert_eq!(submitted.get()?, 27);
    ///     pool.join()?;
    ///     Ok(())
    /// }
    /// ```
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.wake_dispatcher();
    }

    /// Waits until everything submitted has run and the workers have exited.
    /// Needs [`Pool::close`] first.
    ///
    /// ```
    /// use shmlab::pool::{Pool, PoolError};
    /// use shmlab::process::pid_alive;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let mut pool = Pool::new(2)?;
    ///     assert_eq!(pool.join(), Err(PoolError::NotClosed));
    ///     let pids = pool.pids();
    ///     pool.close();
    ///     pool.join()?;
    ///     assert!(pids.iter().all(|&pid| !pid_alive(pid)));
    ///     Ok(())
    /// }
    /// ```
    pub fn join(&mut self) -> Result<(), PoolError> {
        if !self.inner.lock().closed {
            return Err(PoolError::NotClosed);
        }
        self.wait_dispatcher();
        Ok(())
    }

    /// Kills every worker now; whatever had not finished fails with
    /// [`PoolError::Terminated`].
    ///
    /// ```
    /// use shmlab::pool::{Pool, PoolError};
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let mut pool = Pool::new(1)?;
    ///     let napping = pool.submit(nap, 60_000)?;
    ///     pool.terminate(); // no minute-long wait
    ///     assert_eq!(napping.get(), Err(PoolError::Terminated));
    ///     Ok(())
    /// }
    /// ```
    pub fn terminate(&mut self) {
        {
            let mut state = self.inner.lock();
            state.terminated = true;
            state.closed = true;
        }
        self.inner.wake_dispatcher();
        self.wait_dispatcher();
    }

    fn wait_dispatcher(&mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            // A panic in the dispatcher has already failed every call (its
            // exit guard runs while unwinding); nothing is left to report.
            let _ = dispatcher.join();
        }
    }
}

impl Drop for Pool {
    /// Terminates: no worker outlives its pool.
    fn drop(&mut self) {
        self.terminate();
    }
}
