//! The dispatcher: one thread in the parent that owns the worker processes.
//!
//! It hands chunks from the pool's pending queue to workers, reads each
//! worker's results as they arrive and delivers them to the call they
//! belong to, and replaces a worker that dies: the item it was running
//! fails with the reason, the items queued behind it go back to the front
//! of the pending queue.
//!
//! # Keeping workers busy without waking anyone per item
//!
//! Each worker has a queue of chunks in its pipe, about [`QUEUE_TIME`] of
//! work long (estimated per task function from the worker's own
//! timing of each item, which comes back with its result; between 2
//! chunks and [`MAX_QUEUED`] items, and 2 chunks of a task not timed yet): long enough that it never waits for
//! the dispatcher on tiny tasks, short enough that slow tasks stay evenly
//! spread. Every so many items a chunk is marked "ring on start": the
//! worker rings the dispatcher's bell when it gets there, so the dispatcher
//! refills the queue before it runs dry. Workers also ring when their queue
//! is empty and at least every `serve::RING_EVERY` while results are
//! waiting, so results (and progress bars) still flow.
//!
//! The dispatcher sleeps on that bell — a futex word in shared memory that
//! callers ring too when they submit — and wakes at least every [`CHECK`]
//! to see whether a worker died. Nobody spins or yields: on a machine with
//! as many CPUs as workers, a thread that spins takes the CPU that the
//! thread it waits for needs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::serve::{ServeArgs, serve};
use super::{Chunk, Inner, Outcome, PoolError, Sink, frames};
use crate::channel::{Pipe, event};
use crate::process::{self, Worker, WorkerError};
use crate::sync::Deadline;

/// How much work (estimated) to keep queued at each worker.
pub(crate) const QUEUE_TIME: Duration = Duration::from_millis(1);
/// The most items queued at one worker, however tiny its tasks.
///
/// A mapping call reads that many items ahead for every worker, when its
/// chunks are small (see [`Imap`](super::Imap)):
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use shmlab::lessons::pool::cube;
/// use shmlab::pool::{LOOKAHEAD, MAX_QUEUED, Pool};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their loop in here
///     let pool = Pool::new(1)?;
///     let read = AtomicUsize::new(0);
///     let endless = (0u64..).inspect(|_| {
///         read.fetch_add(1, Ordering::Relaxed);
///     });
///     // Chunks of one: LOOKAHEAD chunks would be 8 items, a worker's queue is more.
///     let mut cubes = pool.imap(cube, endless, Some(1))?;
///     assert_eq!(cubes.next().transpose()?, Some(0));
///     let n = read.load(Ordering::Relaxed);
///     assert!(n > LOOKAHEAD && n <= MAX_QUEUED + 1, "{n} items read for one result");
///     Ok(())
/// }
/// ```
pub const MAX_QUEUED: usize = 512;
/// Chunks queued at a worker whatever their estimated time: the one it
/// runs and the next.
const MIN_CHUNKS: usize = 2;
/// The estimate of a task's time before one has finished: slow, so that a
/// worker gets [`MIN_CHUNKS`] chunks of a task and no more until it has
/// timed that task (slow tasks must not pile up behind one worker; tiny
/// ones are timed within microseconds and the queue grows at once).
const FIRST_GUESS: Duration = QUEUE_TIME;
/// How often the dispatcher checks that its workers are alive.
const CHECK: Duration = Duration::from_millis(10);
/// How long a new worker has to say it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing pool waits for a worker to exit before killing it.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Results gathered in one pass over the workers, grouped by call, so that
/// each call's waiting caller is woken once per pass rather than per item.
#[derive(Default)]
struct Deliveries(Vec<(Arc<dyn Sink>, Batch)>);

/// Outcomes for one call, with each item's index.
type Batch = Vec<(usize, Outcome)>;

impl Deliveries {
    fn push(&mut self, sink: &Arc<dyn Sink>, index: usize, outcome: Outcome) {
        match self.0.iter_mut().find(|(s, _)| Arc::ptr_eq(s, sink)) {
            Some((_, results)) => results.push((index, outcome)),
            None => self.0.push((Arc::clone(sink), vec![(index, outcome)])),
        }
    }

    fn flush(&mut self) {
        for (sink, results) in self.0.drain(..) {
            sink.deliver_many(results);
        }
    }
}

/// A chunk handed to a worker, kept until all its results are back so that
/// its unfinished items can be handed to another worker if this one dies.
struct Sent {
    job: u64,
    chunk: Chunk,
    /// Results received so far (they come back in order).
    done: usize,
}

/// One worker process and its pipe.
pub(super) struct Member {
    /// Its slot, which names its bell; a replacement takes the slot over.
    slot: usize,
    worker: Worker<()>,
    pipe: Pipe,
    pid: u32,
    ready: bool,
    started: Instant,
    sent: VecDeque<Sent>,
    /// Items sent and not yet answered.
    queued: usize,
    /// Items sent since the last chunk marked "ring on start".
    since_mark: usize,
    /// Estimated nanoseconds per item (a moving average).
    item_ns: f64,
    /// The task `item_ns` was measured on (`None`: not measured yet). A
    /// chunk of another task is treated as untimed: a pool that has just
    /// run tiny tasks must not queue 512 slow ones behind one worker.
    timed_task: Option<u32>,
    /// Set when its pipe broke or it misbehaved: bury it on the next check.
    broken: bool,
}

impl Member {
    /// Starts a worker and its pipe (it is not ready until it says so).
    pub(super) fn start(inner: &Inner, slot: usize) -> Result<Member, PoolError> {
        let (pipe, far_end) = Pipe::new()?;
        let args = ServeArgs {
            pipe: far_end.hand_over(),
            control: inner.control_name().to_string(),
            slot,
        };
        let worker = process::spawn(serve, &args)?;
        Ok(Member {
            slot,
            pid: worker.pid(),
            worker,
            pipe,
            ready: false,
            started: Instant::now(),
            sent: VecDeque::new(),
            queued: 0,
            since_mark: 0,
            item_ns: FIRST_GUESS.as_nanos() as f64,
            timed_task: None,
            broken: false,
        })
    }

    /// Its pid and the name of its pipe's segment.
    pub(super) fn describe(&self) -> (u32, String) {
        (self.pid, self.pipe.name().to_string())
    }

    pub(super) fn is_ready(&self) -> bool {
        self.ready
    }

    /// Items of `task` to keep queued at this worker: about [`QUEUE_TIME`]
    /// of work, by its estimate for that task (the first guess for another).
    fn window(&self, task: u32) -> usize {
        let item_ns = if self.timed_task == Some(task) {
            self.item_ns
        } else {
            FIRST_GUESS.as_nanos() as f64
        };
        let items = QUEUE_TIME.as_nanos() as f64 / item_ns.max(1.0);
        (items as usize).clamp(1, MAX_QUEUED)
    }

    /// Whether it should be sent another chunk of `task`.
    fn has_room(&self, task: u32) -> bool {
        self.ready
            && !self.broken
            && (self.sent.len() < MIN_CHUNKS || self.queued < self.window(task))
    }

    /// Reads whatever the worker has sent; true if anything arrived.
    fn poll(&mut self, deliveries: &mut Deliveries) -> bool {
        let mut results = 0;
        while !self.broken {
            match self.pipe.try_recv_bytes() {
                Ok(Some(message)) => {
                    results += 1;
                    self.handle(&message, deliveries);
                }
                Ok(None) => break,
                Err(_) => self.broken = true,
            }
        }
        results > 0
    }

    fn handle(&mut self, message: &[u8], deliveries: &mut Deliveries) {
        match frames::decode_reply(message) {
            Some(frames::Reply::Ready { pid }) if pid == self.pid && !self.ready => {
                self.ready = true;
            }
            Some(frames::Reply::Result {
                job,
                item,
                ns,
                status,
                payload,
            }) => {
                let Some(front) = self.sent.front_mut() else {
                    self.broken = true;
                    return;
                };
                if front.job != job || front.done != item as usize {
                    self.broken = true;
                    return;
                }
                let index = front.chunk.first + front.done;
                // The worker's own timing of the item: what its queue is
                // sized by (a moving average per task; the first sample of
                // a task replaces the guess).
                let task = Some(front.chunk.task);
                if self.timed_task == task {
                    self.item_ns += (ns as f64 - self.item_ns) / 8.0;
                } else {
                    self.item_ns = ns as f64;
                    self.timed_task = task;
                }
                let outcome = match status {
                    frames::OK => Ok(payload.to_vec()),
                    frames::PANICKED => Err(PoolError::TaskPanicked {
                        index,
                        pid: self.pid,
                        message: String::from_utf8_lossy(payload).into_owned(),
                    }),
                    _ => Err(PoolError::Codec {
                        index,
                        message: String::from_utf8_lossy(payload).into_owned(),
                    }),
                };
                front.done += 1;
                self.queued -= 1;
                deliveries.push(&front.chunk.sink, index, outcome);
                if front.done == front.chunk.items.len() {
                    self.sent.pop_front();
                }
            }
            _ => self.broken = true,
        }
    }

    /// Sends `chunk` if the worker's pipe has room now; gives it back if not.
    fn send(
        &mut self,
        inner: &Inner,
        job: u64,
        chunk: Chunk,
        frame: &mut Vec<u8>,
    ) -> Result<(), Chunk> {
        // Mark a chunk every half window: when the worker starts it, about
        // half its queue is left, and its bell brings more.
        let mark = self.since_mark + chunk.items.len() >= self.window(chunk.task).div_ceil(2);
        frames::encode_job(
            frame,
            if mark { frames::RING_ON_START } else { 0 },
            chunk.task,
            job,
            chunk.items.iter().map(|item| item.as_slice()),
        );
        // A frame larger than the pipe streams through it, and only an idle
        // worker is sure to be reading: wait until this one is.
        if frame.len() > crate::channel::DEFAULT_PIPE_BYTES / 2 && !self.sent.is_empty() {
            return Err(chunk);
        }
        match self.pipe.try_send_bytes(frame) {
            Ok(true) => {
                self.since_mark = if mark {
                    0
                } else {
                    self.since_mark + chunk.items.len()
                };
                self.queued += chunk.items.len();
                self.sent.push_back(Sent {
                    job,
                    chunk,
                    done: 0,
                });
                event::announce(inner.worker_bell(self.slot));
                Ok(())
            }
            Ok(false) => Err(chunk),
            Err(_) => {
                self.broken = true;
                Err(chunk)
            }
        }
    }

    /// Whether the worker process has ended (or must be treated so).
    fn is_gone(&mut self) -> bool {
        self.broken || self.worker.has_exited()
    }

    /// Takes a dead worker apart: delivers what it sent before it died, and
    /// returns the chunks it had not started (to be run by another worker),
    /// the failure of the item it was running (to deliver once a
    /// replacement is on its way), and how it died.
    fn bury(mut self) -> Burial {
        self.broken = false;
        let mut deliveries = Deliveries::default();
        self.poll(&mut deliveries);
        deliveries.flush();
        let pid = self.pid;
        let _ = self.worker.kill();
        let reason = match self.worker.join_exited() {
            Err(WorkerError::Killed { signal_name, .. }) => format!("killed by {signal_name}"),
            Err(WorkerError::Exited { code, .. }) => format!("exited with status {code}"),
            Err(WorkerError::Panicked { message, .. }) => format!("panicked: {message}"),
            Err(other) => other.to_string(),
            Ok(_) => "exited".to_string(),
        };
        let died = |index| PoolError::WorkerDied {
            index,
            pid,
            reason: reason.clone(),
        };
        let mut requeue = VecDeque::new();
        let mut failed = None;
        if let Some(mut running) = self.sent.pop_front() {
            let index = running.chunk.first + running.done;
            failed = Some((Arc::clone(&running.chunk.sink), index, died(index)));
            let rest = running.chunk.items.split_off(running.done + 1);
            if !rest.is_empty() {
                requeue.push_back(Chunk {
                    first: index + 1,
                    items: rest,
                    ..running.chunk
                });
            }
        }
        requeue.extend(self.sent.drain(..).map(|sent| sent.chunk));
        Burial {
            requeue,
            failed,
            reason: format!("worker {pid} {reason}"),
        }
    }

    /// Asks the worker to exit (by closing its pipe) and waits a while.
    fn stop(mut self) {
        drop(self.pipe);
        if self.worker.join_timeout(EXIT_TIMEOUT).is_err() {
            let _ = self.worker.kill();
        }
    }
}

/// What is left of a worker that died.
struct Burial {
    /// Chunks it had not started.
    requeue: VecDeque<Chunk>,
    /// The item it was running: where its failure goes, its index, and the
    /// error.
    failed: Option<(Arc<dyn Sink>, usize, PoolError)>,
    /// `worker <pid> killed by SIGKILL`, ...
    reason: String,
}

/// Fails every call with work left when the dispatcher ends, however it
/// ends, so that no caller waits for results that will never come.
struct FailOnExit<'a> {
    inner: &'a Inner,
    members: Vec<Member>,
}

impl Drop for FailOnExit<'_> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.finished = true;
        let pending: Vec<Chunk> = state.pending.drain(..).collect();
        let terminated = state.terminated;
        let broken = state.broken.clone();
        let error = |index| match (terminated, &broken) {
            (true, _) => PoolError::Terminated,
            (false, Some(reason)) => PoolError::NoWorkers {
                index,
                reason: reason.clone(),
            },
            (false, None) => PoolError::Terminated,
        };
        let in_flight = self
            .members
            .drain(..)
            .flat_map(|mut m| m.sent.drain(..).collect::<Vec<_>>())
            .map(|sent| {
                let Sent { chunk, done, .. } = sent;
                Chunk {
                    first: chunk.first + done,
                    items: chunk.items.into_iter().skip(done).collect(),
                    ..chunk
                }
            });
        drop(state);
        for chunk in pending.into_iter().chain(in_flight) {
            for index in chunk.first..chunk.first + chunk.items.len() {
                chunk.sink.deliver(index, Err(error(index)));
            }
        }
        self.inner.lock().settled = true;
    }
}

/// The dispatcher thread's body.
pub(super) fn run(inner: Arc<Inner>, members: Vec<Member>) {
    let mut this = FailOnExit {
        inner: &inner,
        members,
    };
    let members = &mut this.members;
    let doorbell = inner.doorbell();
    let mut frame = Vec::new();
    let mut next_job: u64 = 0;
    let mut last_check = Instant::now();
    let mut failed_starts = 0;
    let mut deliveries = Deliveries::default();
    loop {
        let seen = event::observe(doorbell);
        let mut busy = false;
        for member in members.iter_mut() {
            busy |= member.poll(&mut deliveries);
        }
        deliveries.flush();

        // Bury dead workers, hand their unstarted chunks back, replace them.
        if last_check.elapsed() >= CHECK || members.iter().any(|m| m.broken) {
            last_check = Instant::now();
            let mut index = 0;
            while index < members.len() {
                let member = &mut members[index];
                let late = !member.ready && member.started.elapsed() > START_TIMEOUT;
                if !member.is_gone() && !late {
                    index += 1;
                    continue;
                }
                let dead = members.swap_remove(index);
                let was_ready = dead.ready;
                let slot = dead.slot;
                let Burial {
                    requeue,
                    failed,
                    reason,
                } = dead.bury();
                // The caller hears of the failure only once the pool has
                // moved on: the item's chunk-mates requeued, a replacement
                // started.
                let deliver_failure = move || {
                    if let Some((sink, index, error)) = failed {
                        sink.deliver(index, Err(error));
                    }
                };
                {
                    let mut state = inner.lock();
                    for chunk in requeue.into_iter().rev() {
                        state.pending.push_front(chunk);
                    }
                    state
                        .members
                        .retain(|(pid, _)| members.iter().any(|m| m.pid == *pid));
                }
                if inner.lock().terminated {
                    deliver_failure();
                    continue;
                }
                // A worker that dies before it is even ready will not do
                // better the second time: stop replacing after a few.
                failed_starts = if was_ready { 0 } else { failed_starts + 1 };
                if failed_starts <= 2 {
                    if let Ok(member) = Member::start(&inner, slot) {
                        let mut state = inner.lock();
                        state.members.push(member.describe());
                        state.replaced += 1;
                        members.push(member);
                    }
                }
                deliver_failure();
                if members.is_empty() {
                    inner.lock().broken = Some(reason);
                    return; // FailOnExit fails everything left
                }
                busy = true;
            }
        }

        let mut state = inner.lock();
        if state.terminated {
            drop(state);
            for member in members.iter_mut() {
                let _ = member.worker.kill();
            }
            return;
        }
        // Hand out chunks: each to the least loaded ready worker with room.
        while let Some(task) = state.pending.front().map(|c| c.task) {
            let Some(member) = members
                .iter_mut()
                .filter(|m| m.has_room(task))
                .min_by_key(|m| m.queued)
            else {
                break;
            };
            let chunk = state.pending.pop_front().expect("not empty");
            if !chunk.sink.start() {
                continue; // cancelled before it started
            }
            next_job += 1;
            if let Err(chunk) = member.send(&inner, next_job, chunk, &mut frame) {
                state.pending.push_front(chunk);
                break;
            }
            busy = true;
        }
        let idle = members.iter().all(|m| m.sent.is_empty());
        if state.closed && state.pending.is_empty() && idle {
            drop(state);
            for member in members.drain(..) {
                member.stop();
            }
            return;
        }
        drop(state);

        if !busy {
            event::sleep(doorbell, seen, CHECK);
        }
    }
}

/// Waits until every member has said it is ready (or died trying).
pub(super) fn wait_ready(inner: &Inner, members: &mut [Member]) -> Result<(), PoolError> {
    let doorbell = inner.doorbell();
    let deadline = Deadline::after(START_TIMEOUT);
    loop {
        let seen = event::observe(doorbell);
        for member in members.iter_mut() {
            member.poll(&mut Deliveries::default());
            if !member.ready && member.is_gone() {
                let pid = member.pid;
                let reason = match member.worker.join_timeout(CHECK) {
                    Err(e) => e.to_string(),
                    Ok(_) => "it exited".to_string(),
                };
                return Err(PoolError::WorkerFailedToStart { pid, reason });
            }
        }
        if members.iter().all(|m| m.ready) {
            return Ok(());
        }
        if deadline.expired() {
            return Err(PoolError::WorkerFailedToStart {
                pid: members.iter().find(|m| !m.ready).map_or(0, |m| m.pid),
                reason: format!("not ready after {START_TIMEOUT:?}"),
            });
        }
        event::sleep(doorbell, seen, CHECK);
    }
}
