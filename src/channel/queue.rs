//! `Queue`: many producers, many consumers, across processes — the
//! tutorials' `multiprocessing.Queue`, as a ring of slots in shared memory.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ChannelError;
use super::slots::{SlotError, Slots, SlotsCtl};
use crate::element::ElementType;
use crate::lock::{FutexLock, LockKind};
use crate::shm::{ObjectKind, Segment, Spec};
use crate::sync::Deadline;

/// Words of the control block.
const CTL_WORDS: usize = std::mem::size_of::<SlotsCtl>() / 8;
const _: () =
    assert!(std::mem::size_of::<SlotsCtl>() % 8 == 0 && std::mem::align_of::<SlotsCtl>() <= 64);
/// The default slot: 248 bytes of message (one length word + 31 words).
///
/// [`Queue::new`]'s slots: a message of up to this many bytes (a JSON text,
/// for [`Queue::put`]) fits; a longer one is refused whole:
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::channel::{ChannelError, DEFAULT_SLOT_BYTES, Queue};
///
/// let queue = Queue::new(2)?;
/// queue.put_bytes(&[7; DEFAULT_SLOT_BYTES])?;
/// let longer = queue.put_bytes(&[7; DEFAULT_SLOT_BYTES + 1]);
/// assert!(matches!(longer, Err(ChannelError::MessageTooLarge { slot: DEFAULT_SLOT_BYTES, .. })));
/// assert_eq!(queue.len(), 1); // only the first went in
/// # Ok(()) }
/// ```
pub const DEFAULT_SLOT_BYTES: usize = 248;

/// A bounded queue in shared memory for any number of producer and
/// consumer processes (and threads: it is `Sync`).
///
/// `capacity` messages of at most `slot_bytes` bytes each. `put` waits
/// while it is full and `get` while it is empty, each with an optional
/// timeout. Values are serialised as JSON; `put_bytes`/`get_bytes` carry raw
/// bytes. Items live in the segment, not in a pipe, so a producer may exit
/// right after `put` and nothing is lost.
///
/// ```
/// use shmlab::channel::Queue;
///
/// let queue = Queue::new(16).unwrap();
/// // Other processes: Queue::open(queue.name())
/// queue.put(&(3, "three")).unwrap();
/// let item: (u32, String) = queue.get().unwrap();
/// assert_eq!(item, (3, "three".to_string()));
/// assert!(queue.get_timeout::<u32>(std::time::Duration::from_millis(1)).is_err());
/// ```
#[derive(Debug)]
pub struct Queue {
    segment: Segment,
    capacity: u64,
    slot_words: usize,
}

fn spec() -> Spec {
    Spec {
        kind: ObjectKind::Queue,
        element: ElementType::U64,
        lock: LockKind::Futex,
    }
}

impl Queue {
    /// A queue of `capacity` messages of up to 248 bytes.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::Queue;
    /// let queue = Queue::new(16)?;
    /// assert_eq!((queue.capacity(), queue.slot_bytes()), (16, 248));
    /// # Ok(()) }
    /// ```
    pub fn new(capacity: usize) -> Result<Queue, ChannelError> {
        Self::with_slot_size(capacity, DEFAULT_SLOT_BYTES)
    }

    /// A queue of `capacity` messages of up to `slot_bytes` bytes.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// let queue = Queue::with_slot_size(4, 8)?;
    /// queue.put_bytes(&[1; 8])?;
    /// let big = queue.put_bytes(&[1; 9]);
    /// assert!(matches!(big, Err(ChannelError::MessageTooLarge { len: 9, slot: 8 })));
    /// # Ok(()) }
    /// ```
    pub fn with_slot_size(capacity: usize, slot_bytes: usize) -> Result<Queue, ChannelError> {
        if capacity == 0 {
            return Err(ChannelError::ZeroCapacity);
        }
        let slot_words = slot_bytes.div_ceil(8).max(1) + 1;
        let total = capacity
            .checked_mul(slot_words)
            .and_then(|w| w.checked_add(CTL_WORDS))
            .ok_or(ChannelError::TooLarge)?;
        let segment = Segment::create::<u64, FutexLock>(ObjectKind::Queue, None, total, 0)?;
        let queue = Queue {
            segment,
            capacity: capacity as u64,
            slot_words,
        };
        queue.ctl().set_shape(capacity as u64, slot_words as u64);
        Ok(queue)
    }

    /// Opens a queue another process created.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// let other = Queue::open(queue.name())?; // as another process would
    /// queue.put(&"job")?;
    /// assert_eq!(other.get::<String>()?, "job");
    /// # Ok(()) }
    /// ```
    pub fn open(name: &str) -> Result<Queue, ChannelError> {
        let segment = Segment::open(name, spec())?;
        if segment.len() < CTL_WORDS {
            return Err(ChannelError::Malformed);
        }
        let mut queue = Queue {
            segment,
            capacity: 0,
            slot_words: 0,
        };
        let (capacity, slot_words) = queue.ctl().shape();
        let fits = usize::try_from(capacity)
            .ok()
            .zip(usize::try_from(slot_words).ok())
            .and_then(|(c, w)| c.checked_mul(w))
            .and_then(|w| w.checked_add(CTL_WORDS))
            .is_some_and(|needed| needed <= queue.segment.len());
        if capacity == 0 || slot_words < 2 || !fits {
            return Err(ChannelError::Malformed);
        }
        queue.capacity = capacity;
        queue.slot_words = slot_words as usize;
        Ok(queue)
    }

    fn ctl(&self) -> &SlotsCtl {
        // SAFETY: the segment holds at least CTL_WORDS words (created so;
        // checked first thing on open). SlotsCtl is a repr(C) struct of
        // atomics and a FutexLock (one atomic word), with alignment 64 and
        // valid when zeroed, and the cells start 64-byte aligned in a
        // page-aligned mapping. These words are only used as this SlotsCtl.
        // It lives as long as `self`.
        unsafe { &*self.segment.cells::<u64>().as_ptr().cast::<SlotsCtl>() }
    }

    fn slots(&self) -> Slots<'_> {
        let words = self.segment.cells::<u64>();
        let end = CTL_WORDS + self.capacity as usize * self.slot_words;
        Slots::new(
            self.ctl(),
            self.segment.lock::<FutexLock>(),
            &words[CTL_WORDS..end],
            self.slot_words,
        )
    }

    /// The segment's name, for other processes.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// assert!(queue.name().starts_with("shmlab_"));
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.segment.name()
    }

    /// How many messages fit.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// assert_eq!(queue.capacity(), 2);
    /// # Ok(()) }
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The largest message, in bytes.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// // Rounded up to whole 8-byte words.
    /// assert_eq!(Queue::with_slot_size(2, 100)?.slot_bytes(), 104);
    /// # Ok(()) }
    /// ```
    pub fn slot_bytes(&self) -> usize {
        self.slots().slot_bytes()
    }

    /// Messages waiting right now (a snapshot, like Python's `qsize()`).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// queue.put(&1)?;
    /// queue.put(&2)?;
    /// assert_eq!(queue.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.slots().len() as usize
    }

    /// Whether no message is waiting right now.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// assert!(queue.is_empty());
    /// queue.put(&1)?;
    /// assert!(!queue.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self, e: SlotError, len: usize) -> ChannelError {
        match e {
            SlotError::Timeout => ChannelError::Timeout,
            SlotError::TooLarge => ChannelError::MessageTooLarge {
                len,
                slot: self.slot_bytes(),
            },
            SlotError::Corrupt => ChannelError::Malformed,
        }
    }

    /// Puts raw bytes, waiting while the queue is full.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// queue.put_bytes(b"raw")?;
    /// assert_eq!(queue.get_bytes()?, b"raw");
    /// # Ok(()) }
    /// ```
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.slots()
            .put(bytes, Deadline::never())
            .map_err(|e| self.map(e, bytes.len()))
    }

    /// Puts raw bytes, giving up after `timeout` if the queue stays full.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// queue.put_bytes(b"1")?;
    /// queue.put_bytes(b"2")?;
    /// let full = queue.put_bytes_timeout(b"3", Duration::from_millis(1));
    /// assert!(matches!(full, Err(ChannelError::Timeout)));
    /// # Ok(()) }
    /// ```
    pub fn put_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), ChannelError> {
        self.slots()
            .put(bytes, Deadline::after(timeout))
            .map_err(|e| self.map(e, bytes.len()))
    }

    /// Takes raw bytes, waiting while the queue is empty.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| queue.put_bytes(b"later"));
    ///     assert_eq!(queue.get_bytes().unwrap(), b"later"); // waits for it
    /// });
    /// # Ok(()) }
    /// ```
    pub fn get_bytes(&self) -> Result<Vec<u8>, ChannelError> {
        self.slots()
            .get(Deadline::never())
            .map_err(|e| self.map(e, 0))
    }

    /// Takes raw bytes, giving up after `timeout` if the queue stays empty.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// let empty = queue.get_bytes_timeout(Duration::from_millis(1));
    /// assert!(matches!(empty, Err(ChannelError::Timeout)));
    /// # Ok(()) }
    /// ```
    pub fn get_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
        self.slots()
            .get(Deadline::after(timeout))
            .map_err(|e| self.map(e, 0))
    }

    /// Puts a value (as JSON), waiting while the queue is full.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// queue.put(&(1, "one"))?;
    /// assert_eq!(queue.get::<(u8, String)>()?, (1, "one".to_string()));
    /// # Ok(()) }
    /// ```
    pub fn put<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), ChannelError> {
        self.put_bytes(&serde_json::to_vec(value)?)
    }

    /// Puts a value, giving up after `timeout`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// queue.put_timeout(&[1, 2], Duration::from_millis(1))?;
    /// assert_eq!(queue.get::<Vec<i32>>()?, [1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn put_timeout<T: Serialize + ?Sized>(
        &self,
        value: &T,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        self.put_bytes_timeout(&serde_json::to_vec(value)?, timeout)
    }

    /// Takes a value, waiting while the queue is empty.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// for n in 1..=2 {
    ///     queue.put(&n)?;
    /// }
    /// assert_eq!(queue.get::<i32>()?, 1); // first in, first out
    /// assert_eq!(queue.get::<i32>()?, 2);
    /// # Ok(()) }
    /// ```
    pub fn get<T: DeserializeOwned>(&self) -> Result<T, ChannelError> {
        Ok(serde_json::from_slice(&self.get_bytes()?)?)
    }

    /// Takes a value, giving up after `timeout`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// queue.put(&1.5)?;
    /// assert_eq!(queue.get_timeout::<f64>(Duration::from_millis(1))?, 1.5);
    /// assert!(queue.get_timeout::<f64>(Duration::from_millis(1)).is_err());
    /// # Ok(()) }
    /// ```
    pub fn get_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, ChannelError> {
        Ok(serde_json::from_slice(&self.get_bytes_timeout(timeout)?)?)
    }

    /// Whether a process died while holding one of the queue's locks (the
    /// producers' or the consumers') since the last call (the queue stays
    /// usable; an item that process was taking may be lost with it).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Queue};
    /// # use std::time::Duration;
    /// # let queue = Queue::new(2)?;
    /// queue.put(&1)?;
    /// assert!(!queue.take_owner_died()); // every lock holder so far unlocked
    /// # Ok(()) }
    /// ```
    pub fn take_owner_died(&self) -> bool {
        self.slots().take_owner_died()
    }
}
