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
//! # Cost per message
//!
//! Each side's counter and event count share one cache line that only that
//! side writes; who holds an end and whether it closed sit on another line
//! that hardly ever changes. Each side keeps the other's counter as it last
//! read it (`seen`, a lower bound, since counters only grow) and reads the
//! other side's line only when that bound says "no room" (writer) or "no
//! data" (reader). A message that fits is written once there is room for
//! all of it, in at most two runs of word stores (before and after the
//! ring's end, `words::store` in `src/channel/words.rs`) and one Release
//! store of `tail`; the reader copies it out the same way.
//!
//! Sleeping uses one event count (`src/channel/event.rs`) per direction:
//! the writer's `seq` wakes the reader, the reader's `seq` wakes the writer.
//! Before it sleeps, a waiter looks for a while (`event::spin`).
//!
//! ```
//! use shmlab::channel::ring::{Ring, RingCtl};
//! use shmlab::sync::{AtomicU64, Deadline};
//!
//! # fn main() -> anyhow::Result<()> {
//! let ctl = RingCtl::default();
//! let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
//! let ring = Ring::new(&ctl, &words);
//! ring.write(b"hello", Deadline::never())?;
//! assert_eq!(ring.read(Deadline::never())?, b"hello");
//! # Ok(()) }
//! ```

use std::time::Duration;

use super::{event, words};
use crate::sync::{self, AtomicU32, AtomicU64, Deadline, FutexWord, Ordering};

/// Why a ring operation did not complete.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
/// # use shmlab::sync::{AtomicU64, Deadline};
/// # let ctl = RingCtl::default();
/// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
/// # let ring = Ring::new(&ctl, &words);
/// use std::time::Duration;
///
/// let now = Deadline::after(Duration::ZERO);
/// assert_eq!(ring.read(now), Err(RingError::Timeout)); // nothing written yet
/// ring.close(RingEnd::Writer);
/// assert_eq!(ring.read(Deadline::never()), Err(RingError::Disconnected));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The other end closed (or its process died) and nothing is left.
    #[error("the other end is closed")]
    Disconnected,
    /// A length or a counter read from the ring is impossible (a peer broke
    /// the protocol).
    #[error("corrupt ring: impossible length or position {0}")]
    Corrupt(u64),
    /// A message longer than [`MAX_MESSAGE`]: refused before anything is
    /// written (the reader would refuse its length as corrupt).
    #[error("a message of {0} bytes is longer than the {MAX_MESSAGE} a ring carries")]
    TooLong(u64),
}

/// How long a sleeper naps before it checks whether its peer still exists.
const PEER_CHECK: Duration = Duration::from_millis(10);
/// The longest message accepted (1 GiB), so a corrupt length cannot make the
/// reader allocate the machine's memory.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::channel::ring::{MAX_MESSAGE, Ring, RingCtl, RingError};
/// use shmlab::sync::{AtomicU64, Deadline, Ordering};
///
/// let ctl = RingCtl::default();
/// let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
/// let ring = Ring::new(&ctl, &words);
/// ring.write(b"hi", Deadline::never())?;
/// // A peer that breaks the protocol: the length word now claims 2 GiB.
/// words[0].store(2 * MAX_MESSAGE, Ordering::Relaxed);
/// let read = ring.read(Deadline::never());
/// assert_eq!(read, Err(RingError::Corrupt(2 * MAX_MESSAGE))); // refused, nothing allocated
/// # Ok(()) }
/// ```
pub const MAX_MESSAGE: u64 = 1 << 30;

/// The hot half of a side: written by that side on every message, read by
/// the other side only when it runs out of room (writer) or data (reader).
#[derive(Debug)]
#[repr(C, align(64))]
struct Hot {
    /// `head` for the reader side, `tail` for the writer side.
    position: AtomicU64,
    /// Publications of this side, bit 0 = the *other* side sleeps on it.
    seq: FutexWord,
    /// The other side's position as this side last read it: a lower bound
    /// of the real one (positions only grow), so room or data computed from
    /// it is never more than there really is. Private to this side; it
    /// saves reading the other side's line for every message.
    seen: AtomicU64,
}

/// The cold half of a side: written when an end is opened, handed over or
/// closed, read by the other side on every write. On a line of its own, so
/// the hot counters do not keep pulling it away from the reader.
#[derive(Debug)]
#[repr(C, align(64))]
struct Cold {
    /// The pid that holds this end (0: none yet, or handed to another process).
    pid: AtomicU32,
    /// Non-zero once this end is closed.
    closed: AtomicU32,
}

/// One side's counter and state: a hot cache line and a cold one.
#[derive(Debug)]
#[repr(C, align(64))]
struct Side {
    hot: Hot,
    cold: Cold,
}

impl Side {
    /// A fresh side (zeroed shared memory is the same thing).
    fn new() -> Self {
        Side {
            hot: Hot {
                position: AtomicU64::new(0),
                seq: FutexWord::new(0),
                seen: AtomicU64::new(0),
            },
            cold: Cold {
                pid: AtomicU32::new(0),
                closed: AtomicU32::new(0),
            },
        }
    }
}

impl Default for Side {
    fn default() -> Self {
        Self::new()
    }
}

/// The control block of one ring: the reader's side and the writer's side.
///
/// All zeros is a fresh control block, so one in a new segment needs no
/// initialising; in one process, `RingCtl::default()` makes one:
///
/// ```
/// use shmlab::channel::ring::{Ring, RingCtl};
/// use shmlab::sync::AtomicU64;
///
/// let ctl = RingCtl::default();
/// let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
/// assert!(!Ring::new(&ctl, &words).has_data());
/// ```
#[derive(Debug, Default)]
#[repr(C)]
pub struct RingCtl {
    /// `head`, and the writer's wake-ups (its `seq`).
    reader: Side,
    /// `tail`, and the reader's wake-ups (its `seq`).
    writer: Side,
}

/// A view of a ring: its control block and its words (a power of two).
///
/// One writer thread, one reader thread, messages in order:
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
/// # use shmlab::sync::{AtomicU64, Deadline};
/// # let ctl = RingCtl::default();
/// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
/// # let ring = Ring::new(&ctl, &words);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         for n in 0..3u8 {
///             ring.write(&[n; 20], Deadline::never()).unwrap();
///         }
///     });
///     for n in 0..3u8 {
///         assert_eq!(ring.read(Deadline::never()), Ok(vec![n; 20]));
///     }
/// });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Ring<'a> {
    ctl: &'a RingCtl,
    words: &'a [AtomicU64],
}

/// Which end of a ring a process holds.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
/// # use shmlab::sync::{AtomicU64, Deadline};
/// # let ctl = RingCtl::default();
/// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
/// # let ring = Ring::new(&ctl, &words);
/// ring.close(RingEnd::Reader);
/// assert!(ring.peer_closed(RingEnd::Writer)); // the writer's peer is gone
/// assert_eq!(ring.write(b"x", Deadline::never()), Err(RingError::Disconnected));
/// # Ok(()) }
/// ```
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
    ///
    /// ```
    /// use shmlab::channel::ring::{Ring, RingCtl};
    /// use shmlab::sync::{AtomicU64, Deadline};
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let ctl = RingCtl::default();
    /// let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
    /// let ring = Ring::new(&ctl, &words);
    /// ring.write(&[9; 16], Deadline::never())?; // a length word + 2 words
    /// assert_eq!(ring.read(Deadline::never())?, [9; 16]);
    /// # Ok(()) }
    /// ```
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

    fn peer(&self, end: RingEnd) -> &'a Side {
        match end {
            RingEnd::Reader => &self.ctl.writer,
            RingEnd::Writer => &self.ctl.reader,
        }
    }

    fn capacity(&self) -> u64 {
        self.words.len() as u64
    }

    /// Records that process `pid` (0 = nobody) holds `end`.
    ///
    /// A reader notices a writer whose process has died:
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let ctl = RingCtl::default();
    /// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    /// # let ring = Ring::new(&ctl, &words);
    /// use std::time::Duration;
    ///
    /// let mut writer = std::process::Command::new("true").spawn()?;
    /// ring.set_holder(RingEnd::Writer, writer.id());
    /// writer.wait()?; // exited without closing its end
    /// let read = ring.read(Deadline::after(Duration::from_secs(5)));
    /// assert_eq!(read, Err(RingError::Disconnected)); // after ~10 ms, not 5 s
    /// # Ok(()) }
    /// ```
    pub fn set_holder(&self, end: RingEnd, pid: u32) {
        self.side(end).cold.pid.store(pid, Ordering::Release);
    }

    /// Closes `end` and wakes the other end, so it sees the close.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let ctl = RingCtl::default();
    /// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    /// # let ring = Ring::new(&ctl, &words);
    /// ring.write(b"last words", Deadline::never())?;
    /// ring.close(RingEnd::Writer);
    /// // What was written before the close is still read, then the end.
    /// assert_eq!(ring.read(Deadline::never())?, b"last words");
    /// assert_eq!(ring.read(Deadline::never()), Err(RingError::Disconnected));
    /// # Ok(()) }
    /// ```
    pub fn close(&self, end: RingEnd) {
        let side = self.side(end);
        side.cold.closed.store(1, Ordering::Release);
        Self::announce(side);
    }

    /// Whether the other end of `end` is gone: closed, or its process died.
    fn peer_gone(&self, end: RingEnd, watch: &mut sync::OwnerWatch) -> bool {
        let peer = self.peer(end);
        if peer.cold.closed.load(Ordering::Acquire) != 0 {
            return true;
        }
        match peer.cold.pid.load(Ordering::Acquire) {
            0 => false,
            pid => watch.holder_is_dead(pid),
        }
    }

    /// Counts one publication of `side` and wakes a sleeper if there is one.
    fn announce(side: &Side) {
        event::announce(&side.hot.seq);
    }

    /// Waits until `ready()` holds, sleeping on `side`'s event count (the
    /// other end's publications).
    fn wait(
        &self,
        end: RingEnd,
        side: &Side,
        deadline: &mut Deadline,
        watch: &mut sync::OwnerWatch,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), RingError> {
        let seq = &side.hot.seq;
        // A caller that asked not to wait (a zero timeout) wants one look,
        // not a spin.
        #[cfg(not(loom))]
        if !deadline.expired() && event::spin(&mut ready) {
            return Ok(());
        }
        loop {
            let seen = event::observe(seq);
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
            event::sleep(seq, seen, nap);
            deadline.waited();
        }
    }

    /// The reader's `head`, read by the writer (Acquire: the reader read
    /// those words before it published it), checked to be possible.
    fn load_head(&self, tail: u64) -> Result<u64, RingError> {
        let head = self.ctl.reader.hot.position.load(Ordering::Acquire);
        if head > tail || tail - head > self.capacity() {
            return Err(RingError::Corrupt(head));
        }
        Ok(head)
    }

    /// The writer's `tail`, read by the reader (Acquire: the writer wrote
    /// those words before it published it), checked to be possible.
    fn load_tail(&self, head: u64) -> Result<u64, RingError> {
        let tail = self.ctl.writer.hot.position.load(Ordering::Acquire);
        if tail < head || tail - head > self.capacity() {
            return Err(RingError::Corrupt(tail));
        }
        Ok(tail)
    }

    /// Whether a message (or the start of one) is waiting to be read. Only
    /// the reader may rely on the answer: the writer can only add to it.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let ctl = RingCtl::default();
    /// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    /// # let ring = Ring::new(&ctl, &words);
    /// assert!(!ring.has_data());
    /// ring.write(b"x", Deadline::never())?;
    /// assert!(ring.has_data());
    /// # Ok(()) }
    /// ```
    pub fn has_data(&self) -> bool {
        self.ctl.writer.hot.position.load(Ordering::Acquire)
            != self.ctl.reader.hot.position.load(Ordering::Relaxed)
    }

    /// Whether the other end of `end` has closed (a peer that *died* is
    /// noticed by waits, after `PEER_CHECK`, 10 ms).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let ctl = RingCtl::default();
    /// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    /// # let ring = Ring::new(&ctl, &words);
    /// assert!(!ring.peer_closed(RingEnd::Reader));
    /// ring.close(RingEnd::Writer);
    /// assert!(ring.peer_closed(RingEnd::Reader));
    /// # Ok(()) }
    /// ```
    pub fn peer_closed(&self, end: RingEnd) -> bool {
        self.peer(end).cold.closed.load(Ordering::Acquire) != 0
    }

    /// Writes one message, waiting up to `deadline` for room.
    ///
    /// A message that fits in the ring is written only once there is room
    /// for all of it, so a `Timeout` leaves nothing half-written; it is then
    /// copied in at most two runs (before and after the ring's end) and
    /// published with one Release store. A longer message streams through
    /// the ring; once it has started, it waits for the reader without a
    /// deadline (a reader that dies or closes still ends the wait).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let ctl = RingCtl::default();
    /// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    /// # let ring = Ring::new(&ctl, &words);
    /// use std::time::Duration;
    ///
    /// ring.write(&[7; 40], Deadline::never())?; // 6 of the 8 words
    /// let full = ring.write(&[8; 40], Deadline::after(Duration::ZERO));
    /// assert_eq!(full, Err(RingError::Timeout)); // no room: nothing written
    /// assert_eq!(ring.read(Deadline::never())?, [7; 40]);
    /// assert!(!ring.has_data());
    /// # Ok(()) }
    /// ```
    pub fn write(&self, payload: &[u8], mut deadline: Deadline) -> Result<(), RingError> {
        if payload.len() as u64 > MAX_MESSAGE {
            return Err(RingError::TooLong(payload.len() as u64));
        }
        let writer = &self.ctl.writer;
        let reader = &self.ctl.reader;
        if reader.cold.closed.load(Ordering::Acquire) != 0 {
            return Err(RingError::Disconnected);
        }
        let capacity = self.capacity();
        let mask = capacity - 1;
        let needed = 1 + words::words_for(payload.len()) as u64;
        // The header, and all of a message that fits.
        let first = needed.min(capacity);
        let mut watch = sync::OwnerWatch::new(PEER_CHECK);
        let mut tail = writer.hot.position.load(Ordering::Relaxed);
        // Room as last seen; the reader's line is read only when that is
        // not enough.
        let mut head = writer.hot.seen.load(Ordering::Relaxed);
        if head > tail || tail - head > capacity - first {
            head = self.load_head(tail)?;
            if tail - head > capacity - first {
                // Nothing is written yet and `tail` is already published.
                let mut fresh = Ok(head);
                self.wait(RingEnd::Writer, reader, &mut deadline, &mut watch, || {
                    fresh = self.load_head(tail);
                    fresh.map_or(true, |h| tail - h <= capacity - first)
                })?;
                head = fresh?;
            }
        }
        self.words[(tail & mask) as usize].store(payload.len() as u64, Ordering::Relaxed);
        tail += 1;
        let mut rest = payload;
        while !rest.is_empty() {
            if tail - head == capacity {
                // A message longer than the ring: publish what we have, wait
                // for the reader to make room.
                writer.hot.position.store(tail, Ordering::Release);
                Self::announce(writer);
                let mut never = Deadline::never();
                let mut fresh = Ok(head);
                self.wait(RingEnd::Writer, reader, &mut never, &mut watch, || {
                    fresh = self.load_head(tail);
                    fresh.map_or(true, |h| tail - h < capacity)
                })?;
                head = fresh?;
            }
            let start = (tail & mask) as usize;
            let run = ((capacity - (tail - head)) as usize)
                .min(self.words.len() - start)
                .min(words::words_for(rest.len()));
            let (now, later) = rest.split_at(rest.len().min(run * 8));
            words::store(&self.words[start..start + run], now);
            rest = later;
            tail += run as u64;
        }
        writer.hot.seen.store(head, Ordering::Relaxed);
        writer.hot.position.store(tail, Ordering::Release);
        Self::announce(writer);
        Ok(())
    }

    /// Reads one message, waiting for it up to `deadline`.
    ///
    /// A message longer than the whole ring streams through it while the
    /// reader reads:
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let ctl = RingCtl::default();
    /// # let words: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    /// # let ring = Ring::new(&ctl, &words);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| ring.write(&[1; 200], Deadline::never()));
    ///     assert_eq!(ring.read(Deadline::never()), Ok(vec![1; 200]));
    /// });
    /// # Ok(()) }
    /// ```
    pub fn read(&self, mut deadline: Deadline) -> Result<Vec<u8>, RingError> {
        let writer = &self.ctl.writer;
        let reader = &self.ctl.reader;
        let capacity = self.capacity();
        let mask = capacity - 1;
        let mut watch = sync::OwnerWatch::new(PEER_CHECK);
        let mut head = reader.hot.position.load(Ordering::Relaxed);
        // Data as last seen; the writer's line is read only when that is
        // used up.
        let mut tail = reader.hot.seen.load(Ordering::Relaxed);
        if tail <= head || tail - head > capacity {
            tail = self.load_tail(head)?;
            if tail == head {
                // Empty (and `head` is already published): wait for data.
                let mut fresh = Ok(tail);
                self.wait(RingEnd::Reader, writer, &mut deadline, &mut watch, || {
                    fresh = self.load_tail(head);
                    fresh != Ok(head)
                })?;
                tail = fresh?;
            }
        }
        let len = self.words[(head & mask) as usize].load(Ordering::Relaxed);
        head += 1;
        if len > MAX_MESSAGE {
            return Err(RingError::Corrupt(len));
        }
        let mut payload = vec![0u8; len as usize];
        let mut filled = 0;
        while filled < payload.len() {
            if tail == head {
                // The rest of a message longer than the ring is on its way:
                // hand back the space, wait for it without the caller's
                // deadline.
                reader.hot.position.store(head, Ordering::Release);
                Self::announce(reader);
                let mut never = Deadline::never();
                let mut fresh = Ok(tail);
                self.wait(RingEnd::Reader, writer, &mut never, &mut watch, || {
                    fresh = self.load_tail(head);
                    fresh != Ok(head)
                })?;
                tail = fresh?;
            }
            let start = (head & mask) as usize;
            let left = payload.len() - filled;
            let run = ((tail - head) as usize)
                .min(self.words.len() - start)
                .min(words::words_for(left));
            let bytes = left.min(run * 8);
            words::load(
                &mut payload[filled..filled + bytes],
                &self.words[start..start + run],
            );
            filled += bytes;
            head += run as u64;
        }
        reader.hot.seen.store(tail, Ordering::Relaxed);
        reader.hot.position.store(head, Ordering::Release);
        Self::announce(reader);
        Ok(payload)
    }
}
