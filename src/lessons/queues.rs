//! Lab 03: queues and pipes — results that arrive out of order and are put
//! back in order by rank, then Pipe vs Queue throughput.
//!
//! ```
//! use shmlab::lessons::queues::{self, QueuesConfig};
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // the lab's workers run their tasks in here
//!     let config = QueuesConfig { workers: 2, tasks: 8, messages: 100, sizes: vec![64] };
//!     let report = queues::run(&config)?;
//!     // Every rank arrived once, in whatever order the workers finished...
//!     let mut ranks = report.arrival_order.clone();
//!     ranks.sort_unstable();
//!     assert_eq!(ranks, (0..8).collect::<Vec<_>>());
//!     // ...and the rank each result carries is what puts them back in order.
//!     assert!(report.in_order_after_sort);
//!     Ok(())
//! }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::channel::{ChannelError, Pipe, PipeToken, Queue};
use crate::process::{self, StartGate, WorkerError};
use crate::report::{self, Outcome, Report};
use crate::shm::ShmError;

const GATE_TIMEOUT: Duration = Duration::from_secs(30);

/// How messages travel.
///
/// ```
/// use shmlab::lessons::queues::Transport;
///
/// assert_eq!(serde_json::to_string(&Transport::Pipe)?, r#""pipe""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// [`Pipe`]: one writer, one reader, a ring per direction.
    Pipe,
    /// [`Queue`]: any number of writers and readers, slots under a lock.
    Queue,
}

impl Transport {
    /// `"pipe"` or `"queue"`.
    ///
    /// ```
    /// use shmlab::lessons::queues::Transport;
    ///
    /// assert_eq!(Transport::Queue.name(), "queue");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Transport::Pipe => "pipe",
            Transport::Queue => "queue",
        }
    }
}

/// Options of lab 03.
///
/// ```
/// use shmlab::lessons::queues::{self, QueuesConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config = QueuesConfig { workers: 2, tasks: 8, messages: 100, sizes: vec![64] };
///     let report = queues::run(&config)?;
///     assert!(report.ok(), "{}", report.verdict());
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct QueuesConfig {
    /// Workers in the out-of-order demo.
    pub workers: usize,
    /// Tasks (ranks) in the out-of-order demo.
    pub tasks: usize,
    /// Messages per throughput run.
    pub messages: u64,
    /// Message sizes to measure, in bytes.
    pub sizes: Vec<usize>,
}

/// One throughput run: one producer process, one consumer process.
///
/// ```
/// use shmlab::lessons::queues::{Transport, TransportResult};
///
/// let run = TransportResult {
///     transport: Transport::Queue,
///     message_bytes: 64,
///     messages: 1_000_000,
///     seconds: 0.5,
///     msgs_per_s: 2e6,
///     mb_per_s: 128.0, // 2e6 messages/s × 64 bytes
/// };
/// assert_eq!(serde_json::to_value(&run)?["transport"], "queue");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct TransportResult {
    /// `pipe` or `queue`.
    pub transport: Transport,
    /// Bytes per message.
    pub message_bytes: usize,
    /// Messages sent.
    pub messages: u64,
    /// From the start gate to the consumer's last message.
    pub seconds: f64,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Payload megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
}

/// The JSON of lab 03: `lab`, `ok`, `verdict`, `workers`, `tasks`,
/// `arrival_order` (ranks as they arrived), `in_order_after_sort`,
/// `out_of_order` (how many arrived after a higher rank), and `results:
/// [{transport, message_bytes, messages, seconds, msgs_per_s, mb_per_s}]`.
///
/// ```
/// use shmlab::lessons::queues::{self, QueuesConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config = QueuesConfig { workers: 2, tasks: 8, messages: 100, sizes: vec![64] };
///     let json = serde_json::to_value(queues::run(&config)?)?;
///     assert_eq!(json["lab"], "lab03-queues");
///     assert_eq!(json["arrival_order"].as_array().map(Vec::len), Some(8));
///     assert_eq!(json["results"][0]["transport"], "pipe");
///     Ok(())
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct QueuesReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Workers in the demo.
    pub workers: usize,
    /// Tasks in the demo.
    pub tasks: usize,
    /// Ranks in the order their results arrived.
    pub arrival_order: Vec<usize>,
    /// Results that arrived after a higher rank.
    pub out_of_order: usize,
    /// Whether sorting by rank restored 0..tasks with the right values.
    pub in_order_after_sort: bool,
    /// Throughput runs.
    pub results: Vec<TransportResult>,
}

/// Why lab 03 could not run.
///
/// ```
/// use shmlab::lessons::queues::QueuesError;
///
/// let err = QueuesError::Task("message 3 has 12 bytes".to_string());
/// assert_eq!(err.to_string(), "a worker failed: message 3 has 12 bytes");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum QueuesError {
    /// A channel.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A segment.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// A worker.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// A worker's task.
    #[error("a worker failed: {0}")]
    Task(String),
}

#[derive(Serialize, Deserialize)]
struct RankArgs {
    results: String,
    first: usize,
    step: usize,
    tasks: usize,
    seed: u64,
}

/// A result tagged with the rank of the task that produced it.
///
/// ```
/// use shmlab::lessons::queues::Ranked;
///
/// // What crosses the queue: a small JSON object.
/// let result: Ranked = serde_json::from_str(r#"{"rank": 3, "value": 9}"#)?;
/// assert_eq!((result.rank, result.value), (3, 9));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Ranked {
    /// The task's rank.
    pub rank: usize,
    /// Its result: rank squared.
    pub value: u64,
}

/// Works through ranks first, first+step, ...; each takes a random while, so
/// results reach the queue in no particular order.
fn ranked_worker(args: RankArgs) -> Result<(), String> {
    let results = Queue::open(&args.results).map_err(|e| e.to_string())?;
    let mut rng = fastrand::Rng::with_seed(args.seed);
    for rank in (args.first..args.tasks).step_by(args.step) {
        // Simulated work of 0-2 ms (a payload, not synchronisation).
        std::thread::sleep(Duration::from_micros(rng.u64(0..2000)));
        let value = (rank as u64) * (rank as u64);
        results
            .put(&Ranked { rank, value })
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
crate::task!(ranked_worker);

#[derive(Serialize, Deserialize)]
struct SinkArgs {
    transport: Transport,
    pipe: Option<PipeToken>,
    queue: Option<String>,
    gate: String,
    messages: u64,
    message_bytes: usize,
}

/// Receives `messages` messages of `message_bytes` bytes; returns when it
/// had the last one (monotonic ns).
fn sink(args: SinkArgs) -> Result<u64, String> {
    let err = |e: ChannelError| e.to_string();
    let pipe = args
        .pipe
        .as_ref()
        .map(Pipe::open)
        .transpose()
        .map_err(err)?;
    let queue = args
        .queue
        .as_deref()
        .map(Queue::open)
        .transpose()
        .map_err(err)?;
    let gate = StartGate::open(&args.gate).map_err(|e| e.to_string())?;
    process::pin_to_cpu(1);
    gate.arrive_and_wait(GATE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    for i in 0..args.messages {
        let message = match (&pipe, &queue) {
            (Some(p), _) => p.recv_bytes().map_err(err)?,
            (_, Some(q)) => q.get_bytes().map_err(err)?,
            _ => return Err("no transport".to_string()),
        };
        if message.len() != args.message_bytes {
            return Err(format!("message {i} has {} bytes", message.len()));
        }
    }
    Ok(process::monotonic_ns())
}
crate::task!(sink);

/// Sends `messages` messages of `message_bytes` bytes from this process to
/// a worker over `transport`, and times it.
///
/// ```
/// use shmlab::lessons::queues::{Transport, throughput};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the consumer process runs in here
///     let run = throughput(Transport::Pipe, 64, 200)?; // to one consumer process
///     assert_eq!((run.messages, run.message_bytes), (200, 64));
///     assert!(run.msgs_per_s > 0.0);
///     Ok(())
/// }
/// ```
pub fn throughput(
    transport: Transport,
    message_bytes: usize,
    messages: u64,
) -> Result<TransportResult, QueuesError> {
    let gate = StartGate::create()?;
    let (pipe, queue, args) = match transport {
        Transport::Pipe => {
            let (here, there) = Pipe::new()?;
            let args = SinkArgs {
                transport,
                pipe: Some(there.hand_over()),
                queue: None,
                gate: gate.name().to_string(),
                messages,
                message_bytes,
            };
            (Some(here), None, args)
        }
        Transport::Queue => {
            // Up to 1024 slots, but at most about 16 MiB of shared memory.
            let slots = ((16 << 20) / message_bytes.max(1)).clamp(16, 1024);
            let queue = Queue::with_slot_size(slots, message_bytes)?;
            let args = SinkArgs {
                transport,
                pipe: None,
                queue: Some(queue.name().to_string()),
                gate: gate.name().to_string(),
                messages,
                message_bytes,
            };
            (None, Some(queue), args)
        }
    };
    let mut consumer = [process::spawn(sink, &args)?];
    gate.wait_for(&mut consumer, GATE_TIMEOUT)?;
    let [consumer] = consumer;
    let payload = vec![0x5Au8; message_bytes];
    let started = gate.open_now();
    for _ in 0..messages {
        match (&pipe, &queue) {
            (Some(p), _) => p.send_bytes(&payload)?,
            (_, Some(q)) => q.put_bytes(&payload)?,
            _ => unreachable!("one transport is set"),
        }
    }
    let finished = consumer.join()?.map_err(QueuesError::Task)?;
    let seconds = finished.saturating_sub(started) as f64 / 1e9;
    let msgs_per_s = if seconds > 0.0 {
        messages as f64 / seconds
    } else {
        0.0
    };
    Ok(TransportResult {
        transport,
        message_bytes,
        messages,
        seconds,
        msgs_per_s,
        mb_per_s: msgs_per_s * message_bytes as f64 / 1e6,
    })
}

/// Runs the out-of-order demo: returns the ranks in arrival order and the
/// results sorted back by rank.
///
/// ```
/// use shmlab::lessons::queues::out_of_order;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the rank workers run in here
///     let (arrived, sorted) = out_of_order(2, 8)?;
///     assert_eq!(arrived.len(), 8); // ranks in whatever order they finished
///     let ranks: Vec<usize> = sorted.iter().map(|r| r.rank).collect();
///     assert_eq!(ranks, (0..8).collect::<Vec<_>>());
///     assert!(sorted.iter().all(|r| r.value == (r.rank * r.rank) as u64));
///     Ok(())
/// }
/// ```
pub fn out_of_order(
    workers: usize,
    tasks: usize,
) -> Result<(Vec<usize>, Vec<Ranked>), QueuesError> {
    let results = Queue::new(tasks.max(1))?;
    let crew = (0..workers)
        .map(|w| {
            let args = RankArgs {
                results: results.name().to_string(),
                first: w,
                step: workers,
                tasks,
                seed: 0xC0FFEE + w as u64,
            };
            process::spawn(ranked_worker, &args)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut arrived = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        arrived.push(results.get_timeout::<Ranked>(GATE_TIMEOUT)?);
    }
    for worker in crew {
        worker.join()?.map_err(QueuesError::Task)?;
    }
    let order = arrived.iter().map(|r| r.rank).collect();
    arrived.sort_by_key(|r| r.rank);
    Ok((order, arrived))
}

/// Runs lab 03.
///
/// ```
/// use shmlab::lessons::queues::{self, QueuesConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the lab's workers run their tasks in here
///     let config = QueuesConfig { workers: 2, tasks: 8, messages: 100, sizes: vec![64] };
///     let report = queues::run(&config)?;
///     assert!(report.in_order_after_sort); // the rank tags restore the order
///     assert_eq!(report.results.len(), 2); // pipe and queue, 64-byte messages
///     Ok(())
/// }
/// ```
pub fn run(config: &QueuesConfig) -> Result<QueuesReport, QueuesError> {
    let (arrival_order, sorted) = out_of_order(config.workers, config.tasks)?;
    let out_of_order = arrival_order
        .iter()
        .enumerate()
        .filter(|&(i, &rank)| arrival_order[..i].iter().any(|&earlier| earlier > rank))
        .count();
    let in_order_after_sort = sorted.len() == config.tasks
        && sorted
            .iter()
            .enumerate()
            .all(|(i, r)| r.rank == i && r.value == (i as u64) * (i as u64));
    let mut results = Vec::new();
    for &size in &config.sizes {
        for transport in [Transport::Pipe, Transport::Queue] {
            results.push(throughput(transport, size, config.messages)?);
        }
    }
    let best = |t: Transport, size: usize| {
        results
            .iter()
            .find(|r| r.transport == t && r.message_bytes == size)
            .map_or(0.0, |r| r.msgs_per_s)
    };
    let sizes_text: Vec<String> = config
        .sizes
        .iter()
        .map(|&s| {
            format!(
                "{s} B messages, pipe {}, queue {}",
                report::rate(best(Transport::Pipe, s)),
                report::rate(best(Transport::Queue, s))
            )
        })
        .collect();
    let sorted_text = if in_order_after_sort {
        format!(
            "sorting by the rank tag put all {} back in order",
            sorted.len()
        )
    } else {
        "BUT sorting by rank did not give every rank once with its value — a bug".to_string()
    };
    let verdict = format!(
        "{out_of_order} of {} results arrived after a higher rank; {sorted_text}. Throughput, one producer to one consumer: {}.",
        config.tasks,
        sizes_text.join("; ")
    );
    Ok(QueuesReport {
        outcome: Outcome {
            lab: "lab03-queues",
            ok: in_order_after_sort,
            verdict,
        },
        workers: config.workers,
        tasks: config.tasks,
        arrival_order,
        out_of_order,
        in_order_after_sort,
        results,
    })
}

impl Report for QueuesReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let shown: Vec<String> = self
            .arrival_order
            .iter()
            .take(24)
            .map(|r| r.to_string())
            .collect();
        let mut out = format!(
            "1. {} workers, {} tasks; results arrive through a Queue as they finish:\n   ranks in arrival order: {}{}\n   {} arrived after a higher rank; sorted by rank tag: {}\n\n",
            self.workers,
            self.tasks,
            shown.join(" "),
            if self.arrival_order.len() > 24 {
                " ..."
            } else {
                ""
            },
            self.out_of_order,
            if self.in_order_after_sort {
                "0, 1, 2, ... all present, values right"
            } else {
                "WRONG"
            }
        );
        out += &format!(
            "2. Throughput, one producer process to one consumer process\n{:<6} {:>8} {:>10} {:>9} {:>12} {:>10}\n",
            "", "bytes", "messages", "seconds", "msgs/s", "MB/s"
        );
        for r in &self.results {
            out += &format!(
                "{:<6} {:>8} {:>10} {:>9.3} {:>12} {:>10.0}\n",
                r.transport.name(),
                r.message_bytes,
                r.messages,
                r.seconds,
                report::rate(r.msgs_per_s),
                r.mb_per_s
            );
        }
        out + "\n"
    }
}
