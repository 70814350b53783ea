//! The queue's engine: a ring of fixed-size slots guarded by shmlab's
//! locks, usable by any number of producers and consumers.
//!
//! Written against [`crate::sync`] (loom checks it) and placed in a segment
//! by [`super::Queue`].
//!
//! # Two locks
//!
//! Producers take one lock (the segment's) and consumers another (in the
//! control block). `tail` is changed only by the holder of the producers'
//! lock and `head` only by the holder of the consumers' lock, so between
//! the two lock holders the ring is the same single-producer,
//! single-consumer protocol as the pipe's: a producer writes the slot at
//! `tail` and then publishes `tail + 1` with Release; a consumer reads
//! `tail` with Acquire before it reads that slot, and publishes `head + 1`
//! with Release after it; a producer reads `head` with Acquire before it
//! reuses a slot. With one producer and one consumer, neither lock is ever
//! contended and each stays in its owner's cache.
//!
//! The producers' side (`tail`, the `not_empty` count, and the producers'
//! last look at `head`) and the consumers' side (the mirror image) are on
//! cache lines of their own; each side reads the other's line only when the
//! ring looked full (producer) or empty (consumer) at its last look.
//!
//! Each index is changed by one store after the slot is written (or read),
//! so a process killed at any point leaves the ring consistent: the next
//! locker gets `OwnerDied` and simply carries on. An item whose consumer
//! died after taking it is lost with that consumer, as with any queue.
//!
//! ```
//! use shmlab::channel::slots::{Slots, SlotsCtl};
//! use shmlab::lock::FutexLock;
//! use shmlab::sync::{AtomicU64, Deadline};
//!
//! let (ctl, producers_lock) = (SlotsCtl::new(), FutexLock::new());
//! let words: Vec<AtomicU64> = (0..4 * 2).map(|_| AtomicU64::new(0)).collect();
//! let queue = Slots::new(&ctl, &producers_lock, &words, 2); // 4 slots of 8 bytes
//! assert_eq!(queue.put(b"job", Deadline::never()), Ok(()));
//! assert_eq!(queue.get(Deadline::never()), Ok(b"job".to_vec()));
//! ```

use std::time::Duration;

use super::{event, words};
use crate::lock::{Acquired, FutexLock, RawLock, RawLockError};
use crate::sync::{AtomicU64, Deadline, FutexWord, Ordering};

/// How long a sleeper naps before it looks again (bounds any wait on a
/// peer that died between its change and its wake-up).
const NAP: Duration = Duration::from_millis(10);

/// Why a slot operation did not complete.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
/// # use shmlab::lock::FutexLock;
/// # use shmlab::sync::{AtomicU64, Deadline};
/// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
/// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
/// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
/// use std::time::Duration;
///
/// assert_eq!(slots.put(&[0; 17], Deadline::never()), Err(SlotError::TooLarge));
/// let now = Deadline::after(Duration::ZERO);
/// assert_eq!(slots.get(now), Err(SlotError::Timeout)); // empty
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The deadline passed (queue full for `put`, empty for `get`).
    #[error("the deadline passed (the queue stayed full for a put, empty for a get)")]
    Timeout,
    /// The message is larger than a slot.
    #[error("the message is larger than a slot")]
    TooLarge,
    /// The ring's indices are impossible (a peer broke the protocol).
    #[error("the queue's indices are impossible: a peer broke the protocol")]
    Corrupt,
}

/// The producers' line: written by the producer that holds the segment's
/// lock, read by consumers when they run out of items.
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct ProducerLine {
    /// Next slot to write.
    tail: AtomicU64,
    /// Counts puts; consumers sleep on it.
    not_empty: FutexWord,
    /// `head` as a producer last read it: a lower bound of the real one.
    seen_head: AtomicU64,
}

/// The consumers' line: written by the consumer that holds the consumers'
/// lock, read by producers when the queue looks full.
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct ConsumerLine {
    /// Next slot to read.
    head: AtomicU64,
    /// Counts gets; producers sleep on it.
    not_full: FutexWord,
    /// `tail` as a consumer last read it: a lower bound of the real one.
    seen_tail: AtomicU64,
}

/// The consumers' lock, on a line of its own.
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct LockLine {
    lock: FutexLock,
}

/// What is written once (the shape) or almost never (`owner_died`).
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct ColdLine {
    /// Whether a previous lock holder died (reported once).
    owner_died: AtomicU64,
    /// Slots.
    capacity: AtomicU64,
    /// Words per slot.
    slot_words: AtomicU64,
}

/// The queue's control block: one cache line for the producers' side, one
/// for the consumers' side, the consumers' lock, and the shape.
///
/// ```
/// use shmlab::channel::slots::{Slots, SlotsCtl};
/// use shmlab::lock::FutexLock;
/// use shmlab::sync::AtomicU64;
///
/// let ctl = SlotsCtl::new();
/// let producers_lock = FutexLock::new();
/// let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
/// let slots = Slots::new(&ctl, &producers_lock, &words, 3);
/// assert!(slots.is_empty());
/// ```
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct SlotsCtl {
    producers: ProducerLine,
    consumers: ConsumerLine,
    consumer_lock: LockLine,
    cold: ColdLine,
}

impl SlotsCtl {
    /// A fresh control block (zeroed shared memory is the same thing).
    ///
    /// ```
    /// use shmlab::channel::slots::SlotsCtl;
    ///
    /// assert_eq!(SlotsCtl::new().shape(), (0, 0)); // no shape recorded yet
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the shape, for processes that open the queue later.
    ///
    /// ```
    /// use shmlab::channel::slots::SlotsCtl;
    ///
    /// let ctl = SlotsCtl::new();
    /// ctl.set_shape(16, 32);
    /// assert_eq!(ctl.shape(), (16, 32));
    /// ```
    pub fn set_shape(&self, capacity: u64, slot_words: u64) {
        self.cold.capacity.store(capacity, Ordering::Relaxed);
        self.cold.slot_words.store(slot_words, Ordering::Relaxed);
    }

    /// The recorded shape: (slots, words per slot).
    ///
    /// An opener sizes its view of the slots from it:
    ///
    /// ```
    /// use shmlab::channel::slots::SlotsCtl;
    ///
    /// let ctl = SlotsCtl::new();
    /// ctl.set_shape(4, 2); // by the creator
    /// let (slots, words_per_slot) = ctl.shape();
    /// assert_eq!(slots * words_per_slot, 8); // words of slots to map
    /// ```
    pub fn shape(&self) -> (u64, u64) {
        (
            self.cold.capacity.load(Ordering::Relaxed),
            self.cold.slot_words.load(Ordering::Relaxed),
        )
    }
}

/// A view of a slot ring: control block, the producers' lock, `capacity`
/// slots of `slot_words` words each (the first word of a slot is the
/// length).
///
/// Two producer threads, one consumer: each item arrives exactly once.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
/// # use shmlab::lock::FutexLock;
/// # use shmlab::sync::{AtomicU64, Deadline};
/// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
/// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
/// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
/// std::thread::scope(|s| {
///     for item in [10u8, 20] {
///         s.spawn(move || slots.put(&[item], Deadline::never()));
///     }
///     let mut got = [0u8; 2].map(|_| slots.get(Deadline::never()).unwrap()[0]);
///     got.sort();
///     assert_eq!(got, [10, 20]);
/// });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Slots<'a> {
    ctl: &'a SlotsCtl,
    lock: &'a FutexLock,
    words: &'a [AtomicU64],
    capacity: u64,
    slot_words: usize,
}

/// Unlocks on drop.
struct Held<'a>(&'a FutexLock);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: a Held exists only after a successful lock_until.
        unsafe { self.0.unlock() };
    }
}

impl<'a> Slots<'a> {
    /// A view of `words` as `words.len() / slot_words` slots; `lock` is the
    /// producers' lock (the consumers' lock is in `ctl`).
    ///
    /// ```
    /// use shmlab::channel::slots::{Slots, SlotsCtl};
    /// use shmlab::lock::FutexLock;
    /// use shmlab::sync::AtomicU64;
    ///
    /// let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// let words: Vec<AtomicU64> = (0..12).map(|_| AtomicU64::new(0)).collect();
    /// let slots = Slots::new(&ctl, &lock, &words, 4); // 12 words, 4 a slot
    /// assert_eq!((slots.capacity(), slots.slot_bytes()), (3, 24));
    /// ```
    pub fn new(
        ctl: &'a SlotsCtl,
        lock: &'a FutexLock,
        words: &'a [AtomicU64],
        slot_words: usize,
    ) -> Self {
        debug_assert!(slot_words >= 2 && words.len() % slot_words == 0);
        Slots {
            ctl,
            lock,
            words,
            capacity: (words.len() / slot_words) as u64,
            slot_words,
        }
    }

    /// Bytes a slot can carry.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
    /// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
    /// assert_eq!(slots.slot_bytes(), 16); // 3 words, one of them the length
    /// # Ok(()) }
    /// ```
    pub fn slot_bytes(&self) -> usize {
        (self.slot_words - 1) * 8
    }

    /// Slots in the ring.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
    /// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
    /// assert_eq!(slots.capacity(), 2);
    /// # Ok(()) }
    /// ```
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Items in the queue right now (a snapshot: others may change it).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
    /// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
    /// assert_eq!(slots.put(b"a", Deadline::never()), Ok(()));
    /// assert_eq!(slots.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> u64 {
        let tail = self.ctl.producers.tail.load(Ordering::Acquire);
        let head = self.ctl.consumers.head.load(Ordering::Acquire);
        tail.saturating_sub(head)
    }

    /// Whether the queue looks empty right now.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
    /// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
    /// assert!(slots.is_empty());
    /// assert_eq!(slots.put(b"a", Deadline::never()), Ok(()));
    /// assert!(!slots.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self, lock: &'a FutexLock, deadline: Deadline) -> Result<Held<'a>, SlotError> {
        match lock.lock_until(deadline) {
            Ok(Acquired::Clean) => Ok(Held(lock)),
            Ok(Acquired::OwnerDied) => {
                // Consistent by construction (see the module docs); note it.
                self.ctl.cold.owner_died.store(1, Ordering::Relaxed);
                Ok(Held(lock))
            }
            Err(RawLockError::Timeout) => Err(SlotError::Timeout),
            // The futex lock has no OS errors.
            Err(RawLockError::Os(_)) => Err(SlotError::Corrupt),
        }
    }

    /// Whether some holder of a lock died since the last call.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
    /// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
    /// assert_eq!(slots.put(b"a", Deadline::never()), Ok(()));
    /// assert!(!slots.take_owner_died()); // every holder so far unlocked
    /// # Ok(()) }
    /// ```
    pub fn take_owner_died(&self) -> bool {
        self.ctl.cold.owner_died.swap(0, Ordering::Relaxed) != 0
    }

    /// Waits for `ready` (checked without the lock), sleeping on `word`.
    fn wait(
        &self,
        word: &FutexWord,
        seen: u32,
        deadline: &mut Deadline,
        ready: impl Fn() -> bool,
    ) -> Result<(), SlotError> {
        // A caller that asked not to wait (a zero timeout) wants one look,
        // not a spin.
        #[cfg(not(loom))]
        if !deadline.expired() && event::spin(&ready) {
            return Ok(());
        }
        if ready() {
            return Ok(());
        }
        if deadline.expired() {
            return Err(SlotError::Timeout);
        }
        let nap = deadline.remaining().map_or(NAP, |r| r.min(NAP));
        event::sleep(word, seen, nap);
        deadline.waited();
        Ok(())
    }

    fn slot(&self, index: u64) -> &'a [AtomicU64] {
        let start = (index % self.capacity) as usize * self.slot_words;
        &self.words[start..start + self.slot_words]
    }

    /// Under the producers' lock: `tail`, if the slot at `tail` is free.
    /// Reads `head` (the consumers' line) only when the queue looked full
    /// the last time.
    fn free_slot(&self) -> Result<Option<u64>, SlotError> {
        let producers = &self.ctl.producers;
        let tail = producers.tail.load(Ordering::Relaxed);
        let head = producers.seen_head.load(Ordering::Relaxed);
        if head <= tail && tail - head < self.capacity {
            return Ok(Some(tail));
        }
        // Acquire: the consumer read the slot before it moved `head`.
        let head = self.ctl.consumers.head.load(Ordering::Acquire);
        if head > tail || tail - head > self.capacity {
            return Err(SlotError::Corrupt);
        }
        producers.seen_head.store(head, Ordering::Relaxed);
        Ok((tail - head < self.capacity).then_some(tail))
    }

    /// Under the consumers' lock: `head`, if the slot at `head` holds an
    /// item. Reads `tail` (the producers' line) only when the queue looked
    /// empty the last time.
    fn full_slot(&self) -> Result<Option<u64>, SlotError> {
        let consumers = &self.ctl.consumers;
        let head = consumers.head.load(Ordering::Relaxed);
        let tail = consumers.seen_tail.load(Ordering::Relaxed);
        if head < tail && tail - head <= self.capacity {
            return Ok(Some(head));
        }
        // Acquire: the producer wrote the slot before it moved `tail`.
        let tail = self.ctl.producers.tail.load(Ordering::Acquire);
        if tail < head || tail - head > self.capacity {
            return Err(SlotError::Corrupt);
        }
        consumers.seen_tail.store(tail, Ordering::Relaxed);
        Ok((tail > head).then_some(head))
    }

    /// Puts one message, waiting while the queue is full, up to `deadline`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
    /// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
    /// use std::time::Duration;
    ///
    /// assert_eq!(slots.put(b"a", Deadline::never()), Ok(()));
    /// assert_eq!(slots.put(b"b", Deadline::never()), Ok(()));
    /// let now = Deadline::after(Duration::ZERO);
    /// assert_eq!(slots.put(b"c", now), Err(SlotError::Timeout)); // full
    /// # Ok(()) }
    /// ```
    pub fn put(&self, payload: &[u8], mut deadline: Deadline) -> Result<(), SlotError> {
        if payload.len() > self.slot_bytes() {
            return Err(SlotError::TooLarge);
        }
        let ctl = self.ctl;
        let mut seen = None;
        loop {
            {
                let held = self.lock(self.lock, deadline)?;
                if let Some(tail) = self.free_slot()? {
                    let slot = self.slot(tail);
                    slot[0].store(payload.len() as u64, Ordering::Relaxed);
                    words::store(&slot[1..], payload);
                    // The slot is complete before the index says so.
                    ctl.producers.tail.store(tail + 1, Ordering::Release);
                    drop(held);
                    event::announce(&ctl.producers.not_empty);
                    return Ok(());
                }
            }
            // Full. The count is read before the check that it guards; the
            // first time, look once more right after reading it.
            if let Some(seen) = seen {
                let capacity = self.capacity;
                self.wait(&ctl.consumers.not_full, seen, &mut deadline, || {
                    ctl.producers
                        .tail
                        .load(Ordering::Relaxed)
                        .saturating_sub(ctl.consumers.head.load(Ordering::Relaxed))
                        < capacity
                })?;
            }
            seen = Some(event::observe(&ctl.consumers.not_full));
        }
    }

    /// Takes one message, waiting while the queue is empty, up to
    /// `deadline`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::slots::{SlotError, Slots, SlotsCtl};
    /// # use shmlab::lock::FutexLock;
    /// # use shmlab::sync::{AtomicU64, Deadline};
    /// # let (ctl, lock) = (SlotsCtl::new(), FutexLock::new());
    /// # let words: Vec<AtomicU64> = (0..2 * 3).map(|_| AtomicU64::new(0)).collect();
    /// # let slots = Slots::new(&ctl, &lock, &words, 3); // 2 slots of 16 bytes
    /// std::thread::scope(|s| {
    ///     s.spawn(|| slots.put(b"job", Deadline::never()));
    ///     // Waits until the producer thread has put it.
    ///     assert_eq!(slots.get(Deadline::never()), Ok(b"job".to_vec()));
    /// });
    /// # Ok(()) }
    /// ```
    pub fn get(&self, mut deadline: Deadline) -> Result<Vec<u8>, SlotError> {
        let ctl = self.ctl;
        let mut seen = None;
        loop {
            {
                let held = self.lock(&ctl.consumer_lock.lock, deadline)?;
                if let Some(head) = self.full_slot()? {
                    let slot = self.slot(head);
                    let len = slot[0].load(Ordering::Relaxed);
                    if len > self.slot_bytes() as u64 {
                        return Err(SlotError::Corrupt);
                    }
                    let mut payload = vec![0u8; len as usize];
                    words::load(&mut payload, &slot[1..]);
                    // Read before the index frees the slot.
                    ctl.consumers.head.store(head + 1, Ordering::Release);
                    drop(held);
                    event::announce(&ctl.consumers.not_full);
                    return Ok(payload);
                }
            }
            // Empty: as in `put`.
            if let Some(seen) = seen {
                self.wait(&ctl.producers.not_empty, seen, &mut deadline, || {
                    ctl.producers.tail.load(Ordering::Relaxed)
                        != ctl.consumers.head.load(Ordering::Relaxed)
                })?;
            }
            seen = Some(event::observe(&ctl.producers.not_empty));
        }
    }
}
