//! The queue's engine: a ring of fixed-size slots guarded by shmlab's lock,
//! usable by any number of producers and consumers.
//!
//! Written against [`crate::sync`] (loom checks it) and placed in a segment
//! by [`super::Queue`].
//!
//! Every change of the ring happens under the lock, and each index is
//! changed by one store after the slot is written (or read), so a process
//! killed at any point leaves the ring consistent: the next locker gets
//! `OwnerDied` and simply carries on. An item whose consumer died after
//! taking it is lost with that consumer, as with any queue.

use std::time::Duration;

use super::{event, words};
use crate::lock::{Acquired, FutexLock, RawLock, RawLockError};
use crate::sync::{AtomicU64, Deadline, FutexWord, Ordering};

/// How long a sleeper naps before it looks again (bounds any wait on a
/// peer that died between its change and its wake-up).
const NAP: Duration = Duration::from_millis(10);
/// Looks at the ring without the lock before sleeping.
#[cfg(not(loom))]
const SPINS: u32 = 4000;

/// Why a slot operation did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The deadline passed (queue full for `put`, empty for `get`).
    Timeout,
    /// The message is larger than a slot.
    TooLarge,
    /// The ring's indices are impossible (a peer broke the protocol).
    Corrupt,
}

/// The queue's control block.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct SlotsCtl {
    /// Next slot to read (changed under the lock).
    head: AtomicU64,
    /// Next slot to write (changed under the lock).
    tail: AtomicU64,
    /// Counts puts; consumers sleep on it.
    not_empty: FutexWord,
    /// Counts gets; producers sleep on it.
    not_full: FutexWord,
    /// Whether the previous lock holder died (reported once).
    owner_died: AtomicU64,
    /// The shape, written by the creator: slots, and words per slot.
    capacity: AtomicU64,
    slot_words: AtomicU64,
}

impl SlotsCtl {
    /// A fresh control block (zeroed shared memory is the same thing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the shape, for processes that open the queue later.
    pub fn set_shape(&self, capacity: u64, slot_words: u64) {
        self.capacity.store(capacity, Ordering::Relaxed);
        self.slot_words.store(slot_words, Ordering::Relaxed);
    }

    /// The recorded shape: (slots, words per slot).
    pub fn shape(&self) -> (u64, u64) {
        (
            self.capacity.load(Ordering::Relaxed),
            self.slot_words.load(Ordering::Relaxed),
        )
    }
}

/// A view of a slot ring: control block, lock, `capacity` slots of
/// `slot_words` words each (the first word of a slot is the length).
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
    /// A view of `words` as `words.len() / slot_words` slots.
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
    pub fn slot_bytes(&self) -> usize {
        (self.slot_words - 1) * 8
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Items in the queue right now (a snapshot: others may change it).
    pub fn len(&self) -> u64 {
        let tail = self.ctl.tail.load(Ordering::Acquire);
        let head = self.ctl.head.load(Ordering::Acquire);
        tail.saturating_sub(head)
    }

    /// Whether the queue looks empty right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self, deadline: Deadline) -> Result<Held<'a>, SlotError> {
        match self.lock.lock_until(deadline) {
            Ok(Acquired::Clean) => Ok(Held(self.lock)),
            Ok(Acquired::OwnerDied) => {
                // Consistent by construction (see the module docs); note it.
                self.ctl.owner_died.store(1, Ordering::Relaxed);
                Ok(Held(self.lock))
            }
            Err(RawLockError::Timeout) => Err(SlotError::Timeout),
            // The futex lock has no OS errors.
            Err(RawLockError::Os(_)) => Err(SlotError::Corrupt),
        }
    }

    /// Whether some holder of the lock died since the last call.
    pub fn take_owner_died(&self) -> bool {
        self.ctl.owner_died.swap(0, Ordering::Relaxed) != 0
    }

    /// Waits for `ready` (checked without the lock), sleeping on `word`.
    fn wait(
        &self,
        word: &FutexWord,
        seen: u32,
        deadline: &mut Deadline,
        ready: impl Fn() -> bool,
    ) -> Result<(), SlotError> {
        #[cfg(not(loom))]
        for _ in 0..SPINS {
            if ready() {
                return Ok(());
            }
            std::hint::spin_loop();
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

    /// `head` and `tail`, read under the lock and checked to be possible.
    fn indices(&self) -> Result<(u64, u64), SlotError> {
        let head = self.ctl.head.load(Ordering::Relaxed);
        let tail = self.ctl.tail.load(Ordering::Relaxed);
        if tail < head || tail - head > self.capacity {
            return Err(SlotError::Corrupt);
        }
        Ok((head, tail))
    }

    /// Puts one message, waiting while the queue is full, up to `deadline`.
    pub fn put(&self, payload: &[u8], mut deadline: Deadline) -> Result<(), SlotError> {
        if payload.len() > self.slot_bytes() {
            return Err(SlotError::TooLarge);
        }
        loop {
            let seen = event::observe(&self.ctl.not_full);
            {
                let _held = self.lock(deadline)?;
                let (head, tail) = self.indices()?;
                if tail - head < self.capacity {
                    let slot = self.slot(tail);
                    slot[0].store(payload.len() as u64, Ordering::Relaxed);
                    for (cell, word) in slot[1..].iter().zip(words::pack(payload)) {
                        cell.store(word, Ordering::Relaxed);
                    }
                    // The slot is complete before the index says so.
                    self.ctl.tail.store(tail + 1, Ordering::Release);
                    drop(_held);
                    event::announce(&self.ctl.not_empty);
                    return Ok(());
                }
            }
            let ctl = self.ctl;
            let capacity = self.capacity;
            self.wait(&ctl.not_full, seen, &mut deadline, || {
                ctl.tail
                    .load(Ordering::Relaxed)
                    .saturating_sub(ctl.head.load(Ordering::Relaxed))
                    < capacity
            })?;
        }
    }

    /// Takes one message, waiting while the queue is empty, up to
    /// `deadline`.
    pub fn get(&self, mut deadline: Deadline) -> Result<Vec<u8>, SlotError> {
        loop {
            let seen = event::observe(&self.ctl.not_empty);
            {
                let _held = self.lock(deadline)?;
                let (head, tail) = self.indices()?;
                if tail > head {
                    let slot = self.slot(head);
                    let len = slot[0].load(Ordering::Relaxed);
                    if len > self.slot_bytes() as u64 {
                        return Err(SlotError::Corrupt);
                    }
                    let mut payload = vec![0u8; len as usize];
                    let mut cells = slot[1..].iter();
                    words::unpack(&mut payload, || {
                        cells
                            .next()
                            .map(|c| c.load(Ordering::Relaxed))
                            .ok_or(SlotError::Corrupt)
                    })?;
                    // Read before the index frees the slot.
                    self.ctl.head.store(head + 1, Ordering::Release);
                    drop(_held);
                    event::announce(&self.ctl.not_full);
                    return Ok(payload);
                }
            }
            let ctl = self.ctl;
            self.wait(&ctl.not_empty, seen, &mut deadline, || {
                ctl.tail.load(Ordering::Relaxed) != ctl.head.load(Ordering::Relaxed)
            })?;
        }
    }
}
