//! The loop a pool worker process runs: take a chunk from its pipe, run each
//! item, send each item's outcome back, ring the pool's doorbell.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::frames;
use crate::channel::{Pipe, PipeToken, event};
use crate::process::TASKS;
use crate::shm::Segment;
use crate::sync::FutexWord;

/// What a pool worker is started with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeArgs {
    /// Its end of the pipe to the dispatcher.
    pub pipe: PipeToken,
    /// The name of the pool's control segment (the bells).
    pub control: String,
    /// This worker's slot: its bell is `1 + slot`.
    pub slot: usize,
}

/// While results wait unannounced, ring the dispatcher at least this
/// often (tiny tasks are announced in batches, slow ones one by one).
pub const RING_EVERY: Duration = Duration::from_micros(500);
/// A sleeping worker wakes this often anyway (its lifeline thread ends it
/// if the parent dies).
const NAP: Duration = Duration::from_millis(50);

/// The dispatcher's bell, rung only when there is news.
struct Announcer<'a> {
    doorbell: &'a FutexWord,
    unannounced: bool,
    last: Instant,
}

impl Announcer<'_> {
    fn ring(&mut self) {
        event::announce(self.doorbell);
        self.unannounced = false;
        self.last = Instant::now();
    }

    /// A result was sent: ring if the last ring is old.
    fn sent(&mut self) {
        self.unannounced = true;
        if self.last.elapsed() >= RING_EVERY {
            self.ring();
        }
    }

    /// Ring if results are waiting unannounced.
    fn flush(&mut self) {
        if self.unannounced {
            self.ring();
        }
    }
}

/// The body of every pool worker (a registered task, started with
/// [`crate::process::spawn`]). Returns when the dispatcher closes the pipe.
pub fn serve(args: ServeArgs) {
    // A task's panic is caught below and its message sent to the parent,
    // which reports it as `TaskPanicked`; printing it here too would only
    // repeat it on the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let pipe = Pipe::open(&args.pipe).expect("pool worker: open its pipe");
    let control = Segment::open(&args.control, super::control_spec())
        .expect("pool worker: open the pool's control segment");
    let my_bell = super::bell(&control, 1 + args.slot);
    let mut bell = Announcer {
        doorbell: super::doorbell(&control),
        unannounced: false,
        last: Instant::now(),
    };
    let _ = pipe.send_bytes(&frames::encode_ready(std::process::id()));
    bell.ring();
    let mut reply = Vec::new();
    loop {
        // Observe the bell before looking, so a job sent after the look
        // cannot slip past the sleep (see `channel::event`).
        let seen = event::observe(my_bell);
        let frame = match pipe.try_recv_bytes() {
            Ok(Some(frame)) => frame,
            Ok(None) if bell.unannounced => {
                // Out of work: tell the dispatcher (results, and room).
                bell.flush();
                continue;
            }
            Ok(None) => {
                event::sleep(my_bell, seen, NAP);
                continue;
            }
            // The pool closed our pipe (join or terminate).
            Err(_) => return,
        };
        let job = frames::decode_job(&frame).expect("pool worker: a malformed job frame");
        if job.flags & frames::RING_ON_START != 0 {
            bell.ring(); // our queue is running low
        }
        let task = TASKS
            .get(job.task as usize)
            .expect("pool worker: a task index outside this program's task table");
        let mut started = Instant::now();
        for (item, input) in job.items.iter().enumerate() {
            let (status, payload) = match catch_unwind(AssertUnwindSafe(|| (task.run)(input))) {
                Ok(Ok(json)) => (frames::OK, json),
                Ok(Err(message)) => (frames::CODEC, message.into_bytes()),
                Err(panic) => (
                    frames::PANICKED,
                    crate::process::panic_message(&*panic).into_bytes(),
                ),
            };
            let now = Instant::now();
            let ns = now.duration_since(started).as_nanos() as u64;
            started = now;
            frames::encode_result(&mut reply, job.job, item as u32, ns, status, &payload);
            if pipe.send_bytes(&reply).is_err() {
                return;
            }
            bell.sent();
        }
    }
}
crate::task!(serve);
