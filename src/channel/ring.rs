//! A single-producer, single-consumer ring of 64-bit words carrying framed
//! messages: the engine of [`super::Pipe`] (one ring per direction).
//!
//! Like the lock, it is written against [`crate::sync`], so loom checks the
//! same code that runs across processes.
//!
//! # Protocol
//!
//! `head` (words consumed) belongs to the reader, `tail` (words produced) to
//! the writer; each only ever increases, and each side publishes its counter
//! with Release and reads the other's with Acquire. A message is one word
//! holding its length in bytes, then the bytes packed into words. A message
//! longer than the ring streams through it in pieces.
//!
//! Sleeping uses one [`super::event`] count per direction: the writer's
//! `seq` wakes the reader, the reader's `seq` wakes the writer.

use std::time::Duration;

use super::{event, words};
use crate::sync::{self, AtomicU32, AtomicU64, Deadline, FutexWord, Ordering};

/// Why a ring operation did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The other end closed (or its process died) and nothing is left.
    #[error("the other end is closed")]
    Disconnected,
    /// The words read are not a valid message (a peer broke the protocol).
    #[error("corrupt message length {0}")]
    Corrupt(u64),
}

/// How long a sleeper naps before it checks whether its peer still exists.
const PEER_CHECK: Duration = Duration::from_millis(10);
/// Spins before sleeping: a peer on the other CPU usually answers sooner
/// than a futex round trip.
#[cfg(not(loom))]
const SPINS: u32 = 4000;
/// The longest message accepted (1 GiB), so a corrupt length cannot make the
/// reader allocate the machine's memory.
pub const MAX_MESSAGE: u64 = 1 << 30;

/// One side's counter and state, on a cache line of its own.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Side {
    /// `head` for the reader side, `tail` for the writer side.
    position: AtomicU64,
    /// Publications of this side, bit 0 = the *other* side sleeps on it.
    seq: FutexWord,
    /// The pid that holds this end (0: none yet, or handed to another process).
    pid: AtomicU32,
    /// Non-zero once this end is closed.
    closed: AtomicU32,
}

impl Side {
    /// A fresh side (zeroed shared memory is the same thing).
    pub fn new() -> Self {
        Side {
            position: AtomicU64::new(0),
            seq: FutexWord::new(0),
            pid: AtomicU32::new(0),
            closed: AtomicU32::new(0),
        }
    }
}

impl Default for Side {
    fn default() -> Self {
        Self::new()
    }
}

/// The control block of one ring: the reader's side and the writer's side.
#[derive(Debug, Default)]
#[repr(C)]
pub struct RingCtl {
    /// `head`, and the writer's wake-ups (`space_seq`).
    pub reader: Side,
    /// `tail`, and the reader's wake-ups (`data_seq`).
    pub writer: Side,
}

/// A view of a ring: its control block and its words (a power of two).
#[derive(Debug, Clone, Copy)]
pub struct Ring<'a> {
    ctl: &'a RingCtl,
    words: &'a [AtomicU64],
}

/// Which end of a ring a process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingEnd {
    /// The one that reads.
    Reader,
    /// The one that writes.
    Writer,
}

impl<'a> Ring<'a> {
    /// A view of `words` (length a power of two, at least 2) controlled by
    /// `ctl`.
    pub fn new(ctl: &'a RingCtl, words: &'a [AtomicU64]) -> Self {
        debug_assert!(words.len().is_power_of_two() && words.len() >= 2);
        Ring { ctl, words }
    }

    fn side(&self, end: RingEnd) -> &'a Side {
        match end {
            RingEnd::Reader => &self.ctl.reader,
            RingEnd::Writer => &self.ctl.writer,
        }
    }

    fn mask(&self) -> u64 {
        self.words.len() as u64 - 1
    }

    /// Records that process `pid` (0 = nobody) holds `end`.
    pub fn set_holder(&self, end: RingEnd, pid: u32) {
        self.side(end).pid.store(pid, Ordering::Release);
    }

    /// Closes `end` and wakes the other end, so it sees the close.
    pub fn close(&self, end: RingEnd) {
        let side = self.side(end);
        side.closed.store(1, Ordering::Release);
        Self::announce(side);
    }

    /// Whether the other end of `end` is gone: closed, or its process died.
    fn peer_gone(&self, end: RingEnd, watch: &mut sync::OwnerWatch) -> bool {
        let peer = match end {
            RingEnd::Reader => &self.ctl.writer,
            RingEnd::Writer => &self.ctl.reader,
        };
        if peer.closed.load(Ordering::Acquire) != 0 {
            return true;
        }
        match peer.pid.load(Ordering::Acquire) {
            0 => false,
            pid => watch.holder_is_dead(pid),
        }
    }

    /// Counts one publication of `side` and wakes a sleeper if there is one.
    fn announce(side: &Side) {
        event::announce(&side.seq);
    }

    /// Waits until `ready()` holds, sleeping on `side.seq` (the other end's
    /// publications). `seen` must be a value of `side.seq` read before the
    /// last failed `ready()` check.
    fn wait(
        &self,
        end: RingEnd,
        side: &Side,
        deadline: &mut Deadline,
        watch: &mut sync::OwnerWatch,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), RingError> {
        // A caller that asked not to wait (a zero timeout) wants one look,
        // not a spin.
        #[cfg(not(loom))]
        if !deadline.expired() {
            for _ in 0..SPINS {
                if ready() {
                    return Ok(());
                }
                std::hint::spin_loop();
            }
        }
        loop {
            let seen = event::observe(&side.seq);
            if ready() {
                return Ok(());
            }
            if self.peer_gone(end, watch) {
                // One last look: the peer may have written before it closed.
                return if ready() {
                    Ok(())
                } else {
                    Err(RingError::Disconnected)
                };
            }
            if deadline.expired() {
                return Err(RingError::Timeout);
            }
            let nap = deadline
                .remaining()
                .map_or(PEER_CHECK, |r| r.min(PEER_CHECK));
            event::sleep(&side.seq, seen, nap);
            deadline.waited();
        }
    }

    /// Whether a message (or the start of one) is waiting to be read. Only
    /// the reader may rely on the answer: the writer can only add to it.
    pub fn has_data(&self) -> bool {
        self.ctl.writer.position.load(Ordering::Acquire)
            != self.ctl.reader.position.load(Ordering::Relaxed)
    }

    /// Whether the other end of `end` has closed (a peer that *died* is
    /// noticed by waits, after [`PEER_CHECK`]).
    pub fn peer_closed(&self, end: RingEnd) -> bool {
        let peer = match end {
            RingEnd::Reader => &self.ctl.writer,
            RingEnd::Writer => &self.ctl.reader,
        };
        peer.closed.load(Ordering::Acquire) != 0
    }

    /// Writes one message, waiting up to `deadline` for room.
    ///
    /// A message that fits in the ring is written only once there is room
    /// for all of it, so a `Timeout` leaves nothing half-written. A longer
    /// message streams through the ring; once it has started, it waits for
    /// the reader without a deadline (a reader that dies or closes still
    /// ends the wait).
    pub fn write(&self, payload: &[u8], mut deadline: Deadline) -> Result<(), RingError> {
        let writer = &self.ctl.writer;
        let reader = &self.ctl.reader;
        let capacity = self.words.len() as u64;
        let needed = 1 + (payload.len() as u64).div_ceil(8);
        if reader.closed.load(Ordering::Acquire) != 0 {
            return Err(RingError::Disconnected);
        }
        let mut watch = sync::OwnerWatch::new(PEER_CHECK);
        let mut tail = writer.position.load(Ordering::Relaxed);
        let mut head = reader.position.load(Ordering::Acquire);
        let header = std::iter::once(payload.len() as u64);
        for (i, word) in header.chain(words::pack(payload)).enumerate() {
            let want = if i == 0 { needed.min(capacity) } else { 1 };
            if capacity - (tail - head) < want {
                // Not enough room: publish what we have, wait for the reader.
                writer.position.store(tail, Ordering::Release);
                Self::announce(writer);
                let mut never = Deadline::never();
                let limit = if i == 0 { &mut deadline } else { &mut never };
                self.wait(RingEnd::Writer, reader, limit, &mut watch, || {
                    head = reader.position.load(Ordering::Acquire);
                    capacity - (tail - head) >= want
                })?;
            }
            self.words[(tail & self.mask()) as usize].store(word, Ordering::Relaxed);
            tail += 1;
        }
        writer.position.store(tail, Ordering::Release);
        Self::announce(writer);
        Ok(())
    }

    /// Reads one message, waiting for it up to `deadline`.
    pub fn read(&self, mut deadline: Deadline) -> Result<Vec<u8>, RingError> {
        let writer = &self.ctl.writer;
        let reader = &self.ctl.reader;
        let mut watch = sync::OwnerWatch::new(PEER_CHECK);
        let mut head = reader.position.load(Ordering::Relaxed);
        let mut tail = writer.position.load(Ordering::Acquire);
        let mut next_word = |deadline: &mut Deadline| -> Result<u64, RingError> {
            if head == tail {
                // Empty: hand back the space we used, then wait for data.
                reader.position.store(head, Ordering::Release);
                Self::announce(reader);
                self.wait(RingEnd::Reader, writer, deadline, &mut watch, || {
                    tail = writer.position.load(Ordering::Acquire);
                    head != tail
                })?;
            }
            let word = self.words[(head & self.mask()) as usize].load(Ordering::Relaxed);
            head += 1;
            Ok(word)
        };
        let len = next_word(&mut deadline)?;
        if len > MAX_MESSAGE {
            return Err(RingError::Corrupt(len));
        }
        let mut payload = vec![0u8; len as usize];
        // Once a message has started, its rest is already on its way: wait
        // for it without the caller's deadline.
        let mut never = Deadline::never();
        words::unpack(&mut payload, || next_word(&mut never))?;
        reader.position.store(head, Ordering::Release);
        Self::announce(reader);
        Ok(payload)
    }
}
