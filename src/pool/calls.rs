//! The caller's side of a pool call: [`Imap`] (the iterator behind `map`,
//! `starmap`, `imap` and `imap_unordered`) and [`AsyncResult`] (the handle
//! of `apply_async`, `submit` and `map_async`).

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Chunk, Inner, LOOKAHEAD, LOOKAHEAD_BYTES, MAX_QUEUED, Outcome, PoolError, Progress, Sink,
    encode,
};

/// How often a waiting caller looks whether the pool itself has ended.
const RECHECK: Duration = Duration::from_millis(50);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below is a few assignments that leave the
    // state consistent, even if a panic interrupted the holder.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode<R: DeserializeOwned>(index: usize, outcome: Outcome) -> Result<R, PoolError> {
    serde_json::from_slice(&outcome?).map_err(|e| PoolError::Codec {
        index,
        message: format!("could not decode the result: {e}"),
    })
}

/// Where the results of one mapping call gather until its caller takes them.
#[derive(Default)]
struct Stream {
    state: Mutex<StreamState>,
    arrived: Condvar,
}

#[derive(Default)]
struct StreamState {
    arrived: Vec<(usize, Outcome)>,
    /// Results delivered so far.
    done: usize,
    /// The caller sleeps on `arrived`: notify it.
    waiting: bool,
    /// The caller went away: drop unstarted chunks, ignore results.
    cancelled: bool,
}

impl Sink for Stream {
    fn start(&self) -> bool {
        !lock(&self.state).cancelled
    }

    fn deliver(&self, index: usize, outcome: Outcome) {
        self.deliver_many(vec![(index, outcome)]);
    }

    fn deliver_many(&self, outcomes: Vec<(usize, Outcome)>) {
        let mut state = lock(&self.state);
        if state.cancelled {
            return;
        }
        state.done += outcomes.len();
        state.arrived.extend(outcomes);
        // Notifying costs a system call; only pay it when someone sleeps.
        if state.waiting {
            state.waiting = false;
            self.arrived.notify_one();
        }
    }
}

/// The results of a mapping call, as an iterator of `Result<R, PoolError>`:
/// in input order ([`Pool::imap`](super::Pool::imap)) or in completion order
/// ([`Pool::imap_unordered`](super::Pool::imap_unordered)).
///
/// It reads its input as the workers need it. The items read and not yet
/// returned are at most the larger of [`LOOKAHEAD`] chunks per worker and
/// enough to fill every worker's queue ([`MAX_QUEUED`] items each) — the
/// latter only while the arguments average less than `LOOKAHEAD_BYTES`
/// (16 MiB) / that many bytes. Dropping it cancels the items not yet
/// started.
///
/// ```
/// use shmlab::lessons::pool::cube;
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop in here
///     let pool = Pool::new(2)?;
///     let mut cubes = pool.imap(cube, 0..100u64, Some(5))?;
///     assert_eq!(cubes.next().transpose()?, Some(0));
///     assert_eq!(cubes.nth(9).transpose()?, Some(1000));
///     drop(cubes); // the items not yet started are cancelled
///     Ok(())
/// }
/// ```
pub struct Imap<R, I> {
    inner: Arc<Inner>,
    task: u32,
    /// `None` once the input has run out.
    input: Option<I>,
    chunksize: usize,
    ordered: bool,
    stream: Arc<Stream>,
    /// Items read from the input so far (the next item's index).
    read: usize,
    /// Items read and not yet returned to the caller.
    outstanding: usize,
    /// Ordered: results waiting for the ones before them.
    waiting: BTreeMap<usize, Outcome>,
    /// Unordered: results ready to return.
    ready: VecDeque<(usize, Outcome)>,
    /// Ordered: the index to return next.
    next_out: usize,
    /// Bytes of arguments encoded so far (for the look-ahead).
    encoded_bytes: usize,
    /// Items that failed before reaching a worker (their arguments could
    /// not be encoded, or the pool refused them).
    failed_here: usize,
    total: Option<usize>,
    _result: PhantomData<fn() -> R>,
}

impl<R, I> std::fmt::Debug for Imap<R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("chunksize", &self.chunksize)
            .field("ordered", &self.ordered)
            .field("read", &self.read)
            .field("outstanding", &self.outstanding)
            .finish()
    }
}

impl<R, I, T> Imap<R, I>
where
    I: Iterator<Item = T>,
    T: Serialize,
    R: DeserializeOwned,
{
    pub(super) fn new(
        inner: Arc<Inner>,
        task: u32,
        input: I,
        chunksize: usize,
        ordered: bool,
        total: Option<usize>,
    ) -> Self {
        Imap {
            inner,
            task,
            input: Some(input),
            chunksize,
            ordered,
            stream: Arc::default(),
            read: 0,
            outstanding: 0,
            waiting: BTreeMap::new(),
            ready: VecDeque::new(),
            next_out: 0,
            failed_here: 0,
            encoded_bytes: 0,
            total,
            _result: PhantomData,
        }
    }

    /// The chunk size this call uses.
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     assert_eq!(pool.imap(cube, 0..1000u64, None)?.chunksize(), 1); // imap's default
    ///     assert_eq!(pool.imap(cube, 0..1000u64, Some(50))?.chunksize(), 50);
    ///     Ok(())
    /// }
    /// ```
    pub fn chunksize(&self) -> usize {
        self.chunksize
    }

    /// How many items have a result, of how many (once known).
    ///
    /// ```
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::{Pool, Progress};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let mut cubes = pool.imap(cube, 0..10u64, None)?;
    ///     // Lazy: nothing is sent before the first `next`.
    ///     assert_eq!(cubes.progress(), Progress { done: 0, total: Some(10) });
    ///     let all: Vec<u64> = cubes.by_ref().collect::<Result<_, _>>()?;
    ///     assert_eq!(cubes.progress(), Progress { done: all.len(), total: Some(10) });
    ///     Ok(())
    /// }
    /// ```
    pub fn progress(&self) -> Progress {
        Progress {
            done: lock(&self.stream.state).done + self.failed_here,
            total: self.total,
        }
    }

    fn keep(&mut self, index: usize, outcome: Outcome) {
        if self.ordered {
            self.waiting.insert(index, outcome);
        } else {
            self.ready.push_back((index, outcome));
        }
    }

    fn take_ready(&mut self) -> Option<(usize, Outcome)> {
        if self.ordered {
            let outcome = self.waiting.remove(&self.next_out)?;
            self.next_out += 1;
            Some((self.next_out - 1, outcome))
        } else {
            self.ready.pop_front()
        }
    }

    /// How many items may be read and not yet returned: [`LOOKAHEAD`] chunks
    /// per worker, or a full queue at every worker if the arguments seen so
    /// far are small enough for that to stay within `LOOKAHEAD_BYTES`.
    /// Recomputed after every chunk: before the first item there is no
    /// average size, and a first read of `workers × MAX_QUEUED` large items
    /// took hundreds of megabytes.
    fn lookahead(&self) -> usize {
        let workers = self.inner.workers;
        let by_chunks = LOOKAHEAD * workers * self.chunksize;
        if self.read == 0 {
            return by_chunks;
        }
        let average = self.encoded_bytes / self.read;
        let by_queues = (workers * MAX_QUEUED).min(LOOKAHEAD_BYTES / average.max(1));
        by_chunks.max(by_queues)
    }

    /// Reads input and submits chunks until the look-ahead is full.
    fn feed(&mut self) {
        let mut chunks = Vec::new();
        let mut local_failures = Vec::new();
        while self.outstanding < self.lookahead() {
            let Some(input) = self.input.as_mut() else {
                break;
            };
            let first = self.read;
            let mut items = Vec::with_capacity(self.chunksize);
            while items.len() < self.chunksize {
                let Some(item) = input.next() else {
                    self.input = None;
                    self.total = Some(self.read);
                    break;
                };
                let index = self.read;
                self.read += 1;
                self.outstanding += 1;
                match encode(index, &item) {
                    Ok(json) => {
                        self.encoded_bytes += json.len();
                        items.push(json)
                    }
                    Err(e) => {
                        local_failures.push((index, e));
                        break; // the chunk ends before the item that failed
                    }
                }
            }
            if !items.is_empty() {
                chunks.push(Chunk {
                    task: self.task,
                    first,
                    items,
                    sink: Arc::clone(&self.stream) as Arc<dyn Sink>,
                });
            }
        }
        let ranges: Vec<(usize, usize)> = chunks.iter().map(|c| (c.first, c.items.len())).collect();
        if !chunks.is_empty() {
            if let Err(refused) = self.inner.submit(chunks) {
                for (first, len) in ranges {
                    for index in first..first + len {
                        local_failures.push((index, refused.clone()));
                    }
                }
            }
        }
        for (index, error) in local_failures {
            self.failed_here += 1;
            self.keep(index, Err(error));
        }
    }

    /// Waits until results arrive and moves them into this iterator.
    fn collect_arrivals(&mut self) {
        let mut state = lock(&self.stream.state);
        loop {
            if !state.arrived.is_empty() {
                let arrived = std::mem::take(&mut state.arrived);
                drop(state);
                for (index, outcome) in arrived {
                    self.keep(index, outcome);
                }
                return;
            }
            state.waiting = true;
            let (next, timed_out) = self
                .stream
                .arrived
                .wait_timeout(state, RECHECK)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            if timed_out.timed_out() && state.arrived.is_empty() {
                // Ask the pool with this stream's lock released: the
                // dispatcher takes the pool's lock and then a stream's (to
                // deliver), so holding ours while asking for the pool's
                // would be the opposite order — a deadlock (it was, with
                // large arguments streaming through a pipe).
                drop(state);
                if self.inner.settled() {
                    // Cannot happen (the dispatcher fails every chunk it
                    // holds before it settles), but a caller must never
                    // wait forever.
                    self.fail_missing();
                    return;
                }
                state = lock(&self.stream.state);
            }
        }
    }

    /// Fails every item that was submitted and never came back.
    fn fail_missing(&mut self) {
        if self.ordered {
            let missing: Vec<usize> = (self.next_out..self.read)
                .filter(|i| !self.waiting.contains_key(i))
                .collect();
            for index in missing {
                self.keep(index, Err(PoolError::Terminated));
            }
        } else {
            // Which ones are missing is not recorded in completion order;
            // how many is.
            for _ in self.ready.len()..self.outstanding {
                self.keep(usize::MAX, Err(PoolError::Terminated));
            }
        }
    }
}

impl<R, I, T> Iterator for Imap<R, I>
where
    I: Iterator<Item = T>,
    T: Serialize,
    R: DeserializeOwned,
{
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.feed();
            if let Some((index, outcome)) = self.take_ready() {
                self.outstanding -= 1;
                return Some(decode(index, outcome));
            }
            if self.outstanding == 0 && self.input.is_none() {
                return None;
            }
            self.collect_arrivals();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.total {
            Some(total) => {
                let left = total - (self.read - self.outstanding);
                (left, Some(left))
            }
            None => (self.outstanding, None),
        }
    }
}

impl<R, I> Drop for Imap<R, I> {
    /// Cancels the items not yet started: nobody will read their results.
    fn drop(&mut self) {
        lock(&self.stream.state).cancelled = true;
    }
}

/// Where an [`AsyncResult`] is.
///
/// ```
/// use shmlab::pool::{Pool, Status};
///
/// fn nap(ms: u64) {
///     std::thread::sleep(std::time::Duration::from_millis(ms));
/// }
/// shmlab::task!(nap);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop in here
///     let pool = Pool::new(1)?;
///     // Its one worker is busy with minute-long naps (killed when the pool is dropped).
///     let _naps = (0..3).map(|_| pool.submit(nap, 60_000)).collect::<Result<Vec<_>, _>>()?;
///     let waiting = pool.submit(nap, 0)?; // behind the naps: still in the pool's queue
///     assert_eq!(waiting.status(), Status::Pending);
///     waiting.cancel();
///     assert_eq!(waiting.status(), Status::Cancelled);
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Waiting in the pool's queue; can still be cancelled.
    Pending,
    /// Handed to a worker (it may still wait behind other work in that
    /// worker's pipe: as in `concurrent.futures`, "running" means "too late
    /// to cancel").
    Running,
    /// Finished, successfully or not.
    Done,
    /// Cancelled before it started.
    Cancelled,
}

type Callback<T> = Box<dyn FnOnce(&Result<T, PoolError>) + Send>;

struct Slot<T> {
    state: Mutex<SlotState<T>>,
    changed: Condvar,
    /// For `map_async`: the call's results as they arrive, for a live
    /// progress count (the background thread only sees them in order).
    arrivals: Option<Arc<Stream>>,
}

struct SlotState<T> {
    status: Status,
    result: Option<Result<T, PoolError>>,
    /// Whether it finished without an error (kept after the result is taken).
    ok: bool,
    callbacks: Vec<Callback<T>>,
    /// Callbacks are running; the result is published after them.
    delivering: bool,
    progress: Progress,
}

impl<T> Slot<T> {
    fn is_settled(state: &SlotState<T>) -> bool {
        matches!(state.status, Status::Done | Status::Cancelled) && !state.delivering
    }

    /// Moves from Pending to Running; false if it was cancelled.
    fn start(&self) -> bool {
        let mut state = lock(&self.state);
        match state.status {
            Status::Pending => {
                state.status = Status::Running;
                self.changed.notify_all();
                true
            }
            Status::Running => true,
            Status::Done | Status::Cancelled => false,
        }
    }

    /// Records the outcome (once), runs the callbacks, then publishes it.
    /// With `only_if_pending`, only a call that has not started is
    /// settled (a cancellation). True if this call settled it.
    fn settle(&self, result: Result<T, PoolError>, status: Status, only_if_pending: bool) -> bool {
        let callbacks = {
            let mut state = lock(&self.state);
            let open = match state.status {
                Status::Pending => true,
                Status::Running => !only_if_pending,
                Status::Done | Status::Cancelled => false,
            };
            if !open {
                return false;
            }
            state.status = status;
            state.delivering = true;
            std::mem::take(&mut state.callbacks)
        };
        for callback in callbacks {
            // A callback that panics must not take the dispatcher with it;
            // Python's executor logs and ignores such an exception too.
            let _ = catch_unwind(AssertUnwindSafe(|| callback(&result)));
        }
        let mut state = lock(&self.state);
        state.ok = result.is_ok();
        if let Some(total) = state.progress.total {
            state.progress.done = total;
        }
        state.result = Some(result);
        state.delivering = false;
        self.changed.notify_all();
        true
    }
}

/// The dispatcher's side of an `apply_async`/`submit` handle.
struct SlotSink<T>(Arc<Slot<T>>);

impl<T: DeserializeOwned + Send> Sink for SlotSink<T> {
    fn start(&self) -> bool {
        self.0.start()
    }

    fn deliver(&self, index: usize, outcome: Outcome) {
        self.0.settle(decode(index, outcome), Status::Done, false);
    }
}

/// The handle of a call running in the background: Python's `AsyncResult`
/// (`ready`, `successful`, `get(timeout)`) and `concurrent.futures.Future`
/// (`done`, `running`, `cancel`, `result(timeout)`, `add_done_callback`) in
/// one type.
///
/// Dropping the handle does not cancel the call.
///
/// ```
/// use std::sync::mpsc;
/// use shmlab::lessons::pool::cube;
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop in here
///     let pool = Pool::new(1)?;
///     let (tx, rx) = mpsc::channel();
///     let handle = pool.apply_async(cube, 4)?;
///     handle.add_done_callback(move |result| tx.send(result.clone()).unwrap());
///     drop(handle); // the call still runs, and its callback still fires
///     assert_eq!(rx.recv()?, Ok(64));
///     Ok(())
/// }
/// ```
pub struct AsyncResult<T> {
    slot: Arc<Slot<T>>,
}

impl<T> std::fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("status", &self.status())
            .finish()
    }
}

impl<T: Send + 'static> AsyncResult<T> {
    pub(super) fn new(total: Option<usize>) -> Self {
        Self::with_arrivals(total, None)
    }

    fn with_arrivals(total: Option<usize>, arrivals: Option<Arc<Stream>>) -> Self {
        AsyncResult {
            slot: Arc::new(Slot {
                state: Mutex::new(SlotState {
                    status: Status::Pending,
                    result: None,
                    ok: false,
                    callbacks: Vec::new(),
                    delivering: false,
                    progress: Progress { done: 0, total },
                }),
                changed: Condvar::new(),
                arrivals,
            }),
        }
    }

    pub(super) fn sink(&self) -> Arc<dyn Sink>
    where
        T: DeserializeOwned,
    {
        Arc::new(SlotSink(Arc::clone(&self.slot)))
    }

    /// Runs a mapping call on a thread of its own, collecting into this
    /// handle (`map_async`).
    pub(super) fn run_in_background<R, I, A>(
        mut imap: Imap<R, I>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        R: DeserializeOwned + Send + 'static,
        I: Iterator<Item = A> + Send + 'static,
        A: Serialize,
    {
        let handle =
            AsyncResult::<Vec<R>>::with_arrivals(imap.total, Some(Arc::clone(&imap.stream)));
        let slot = Arc::clone(&handle.slot);
        std::thread::Builder::new()
            .name("shmlab-map-async".into())
            .spawn(move || {
                if !slot.start() {
                    return; // cancelled before it started
                }
                let mut results = Vec::new();
                let outcome = loop {
                    match imap.next() {
                        Some(Ok(value)) => results.push(value),
                        Some(Err(e)) => break Err(e),
                        None => break Ok(std::mem::take(&mut results)),
                    }
                    lock(&slot.state).progress = imap.progress();
                };
                slot.settle(outcome, Status::Done, false);
            })
            .map_err(|e| PoolError::Start(format!("could not start a thread: {e}")))?;
        Ok(handle)
    }
}

impl<T> AsyncResult<T> {
    /// Pending, running, done or cancelled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::{Pool, Status};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     let handle = pool.submit(cube, 2)?;
    ///     assert!(handle.wait(Duration::from_secs(5)));
    ///     assert_eq!(handle.status(), Status::Done);
    ///     Ok(())
    /// }
    /// ```
    pub fn status(&self) -> Status {
        let state = lock(&self.slot.state);
        match state.status {
            Status::Done | Status::Cancelled if state.delivering => Status::Running,
            status => status,
        }
    }

    /// Whether the result is there (Python's `ready()`; also true once
    /// cancelled).
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     let handle = pool.apply_async(cube, 3)?;
    ///     while !handle.ready() {
    ///         std::thread::sleep(Duration::from_millis(1)); // or do some work of our own
    ///     }
    ///     assert_eq!(handle.get()?, 27); // ready: returns at once
    ///     Ok(())
    /// }
    /// ```
    pub fn ready(&self) -> bool {
        Slot::is_settled(&lock(&self.slot.state))
    }

    /// `concurrent.futures` spelling of [`AsyncResult::ready`].
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
    ///     future.wait(Duration::from_secs(5));
    ///     assert!(future.is_done() && future.ready());
    ///     Ok(())
    /// }
    /// ```
    pub fn is_done(&self) -> bool {
        self.ready()
    }

    /// Whether a worker has it and it has not finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::pool::{Pool, Status};
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     let napping = pool.submit(nap, 60_000)?;
    ///     while napping.status() == Status::Pending {
    ///         std::thread::sleep(Duration::from_millis(1)); // until the dispatcher hands it over
    ///     }
    ///     assert!(napping.is_running()); // and too late to cancel:
    ///     assert!(!napping.cancel());
    ///     Ok(())
    /// }
    /// ```
    pub fn is_running(&self) -> bool {
        self.status() == Status::Running
    }

    /// Whether it was cancelled.
    ///
    /// ```
    /// use shmlab::pool::Pool;
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     // Its one worker is busy with minute-long naps (killed when the pool is dropped).
    ///     let _naps = (0..3).map(|_| pool.submit(nap, 60_000)).collect::<Result<Vec<_>, _>>()?;
    ///     let waiting = pool.submit(nap, 0)?;
    ///     assert!(!waiting.is_cancelled());
    ///     waiting.cancel();
    ///     assert!(waiting.is_cancelled() && waiting.ready());
    ///     Ok(())
    /// }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.status() == Status::Cancelled
    }

    /// `Some(true)` if it finished without an error, `None` if it has not
    /// finished (Python raises `ValueError` there).
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::lessons::pool::fragile;
    /// use shmlab::pool::Pool;
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     let (fine, broken) = (pool.apply_async(fragile, 2)?, pool.apply_async(fragile, 3)?);
    ///     assert!(fine.wait(Duration::from_secs(5)) && broken.wait(Duration::from_secs(5)));
    ///     assert_eq!(fine.successful(), Some(true));
    ///     assert_eq!(broken.successful(), Some(false)); // fragile panics on 3
    ///     Ok(())
    /// }
    /// ```
    pub fn successful(&self) -> Option<bool> {
        let state = lock(&self.slot.state);
        Slot::is_settled(&state).then_some(state.ok)
    }

    /// How many items have a result (for `map_async`; 0 or 1 otherwise).
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::{Pool, Progress};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(2)?;
    ///     let all = pool.map_async(cube, 0..300u64, None)?;
    ///     assert!(all.progress().done <= 300);
    ///     assert!(all.wait(Duration::from_secs(5)));
    ///     assert_eq!(all.progress(), Progress { done: 300, total: Some(300) });
    ///     Ok(())
    /// }
    /// ```
    pub fn progress(&self) -> Progress {
        let state = lock(&self.slot.state);
        let mut progress = state.progress;
        let settled = Slot::is_settled(&state);
        drop(state);
        if settled && progress.total.is_none() {
            progress.done = progress.done.max(1);
        }
        if let (false, Some(arrivals)) = (settled, &self.slot.arrivals) {
            progress.done = progress.done.max(lock(&arrivals.state).done);
        }
        progress
    }

    /// Cancels it if it has not started: true if it was cancelled (now or
    /// before), false if it is already running or done.
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
    ///     let pool = Pool::new(1)?;
    ///     // Its one worker is busy with minute-long naps (killed when the pool is dropped).
    ///     let _naps = (0..3).map(|_| pool.submit(nap, 60_000)).collect::<Result<Vec<_>, _>>()?;
    ///     let waiting = pool.submit(nap, 0)?;
    ///     assert!(waiting.cancel());
    ///     assert_eq!(waiting.get(), Err(PoolError::Cancelled));
    ///     Ok(())
    /// }
    /// ```
    pub fn cancel(&self) -> bool {
        self.slot
            .settle(Err(PoolError::Cancelled), Status::Cancelled, true)
            || self.is_cancelled()
    }

    /// Waits until it is ready, at most `timeout`; true if it is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::lessons::pool::cube;
    /// use shmlab::pool::Pool;
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     assert!(pool.submit(cube, 2)?.wait(Duration::from_secs(5)));
    ///     let napping = pool.submit(nap, 60_000)?;
    ///     assert!(!napping.wait(Duration::from_millis(5))); // gave up; the nap goes on
    ///     Ok(())
    /// }
    /// ```
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = lock(&self.slot.state);
        while !Slot::is_settled(&state) {
            let left = match deadline {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            state = self
                .slot
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Waits for the result (Python's `get()` without a timeout).
    ///
    /// ```
    /// use shmlab::lessons::pool::fragile;
    /// use shmlab::pool::{Pool, PoolError};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     assert_eq!(pool.apply_async(fragile, 2)?.get()?, 3);
    ///     let err = pool.apply_async(fragile, 3)?.get().unwrap_err();
    ///     let PoolError::TaskPanicked { message, .. } = err else { panic!("{err}") };
    ///     assert_eq!(message, "refusing to handle 3");
    ///     Ok(())
    /// }
    /// ```
    pub fn get(self) -> Result<T, PoolError> {
        while !self.wait(Duration::from_secs(3600)) {}
        lock(&self.slot.state)
            .result
            .take()
            .unwrap_or(Err(PoolError::AlreadyTaken))
    }

    /// Waits at most `timeout` for the result (Python's `get(timeout)`,
    /// `Future.result(timeout)`). On [`PoolError::Timeout`] the handle
    /// stays usable; once taken, the result is gone
    /// ([`PoolError::AlreadyTaken`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::pool::{Pool, PoolError};
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     let mut napping = pool.submit(nap, 20)?;
    ///     let short = Duration::from_millis(1);
    ///     assert_eq!(napping.get_timeout(short), Err(PoolError::Timeout(short)));
    ///     napping.get_timeout(Duration::from_secs(5))?; // the same handle, waited on again
    ///     assert_eq!(napping.get_timeout(short), Err(PoolError::AlreadyTaken));
    ///     Ok(())
    /// }
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<T, PoolError> {
        if !self.wait(timeout) {
            return Err(PoolError::Timeout(timeout));
        }
        lock(&self.slot.state)
            .result
            .take()
            .unwrap_or(Err(PoolError::AlreadyTaken))
    }

    /// Calls `callback` with the outcome once it is known: on the pool's
    /// dispatcher thread, before the result is published to `get` (keep
    /// it short, and do not wait on the pool from it), or at once on this
    /// thread if it is already done. A callback added after the result was
    /// taken sees [`PoolError::AlreadyTaken`].
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmlab::lessons::pool::fragile;
    /// use shmlab::pool::{Pool, PoolError};
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry(); // pool workers run their loop in here
    ///     let pool = Pool::new(1)?;
    ///     let (tx, rx) = mpsc::channel();
    ///     let future = pool.submit(fragile, 3)?;
    ///     future.add_done_callback(move |outcome| tx.send(outcome.is_err()).unwrap());
    ///     assert!(rx.recv()?); // fragile panicked on 3
    ///     assert!(matches!(future.get(), Err(PoolError::TaskPanicked { .. })));
    ///     Ok(())
    /// }
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&Result<T, PoolError>) + Send + 'static) {
        let mut state = lock(&self.slot.state);
        while state.delivering {
            state = self
                .slot
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        if !Slot::is_settled(&state) {
            state.callbacks.push(Box::new(callback));
            return;
        }
        match &state.result {
            Some(result) => callback(result),
            None => callback(&Err(PoolError::AlreadyTaken)),
        }
    }
}
