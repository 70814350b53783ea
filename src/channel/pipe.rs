//! `Pipe`: two connected ends, each able to send and receive — the
//! tutorials' `multiprocessing.Pipe()`, in shared memory.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ChannelError;
use super::ring::{Ring, RingCtl, RingEnd, RingError};
use crate::element::ElementType;
use crate::lock::{FutexLock, LockKind};
use crate::shm::{ObjectKind, Segment, Spec};
use crate::sync::{AtomicU64, Deadline};

/// Words of one ring's control block.
const CTL_WORDS: usize = std::mem::size_of::<RingCtl>() / 8;
const _: () =
    assert!(std::mem::size_of::<RingCtl>() % 8 == 0 && std::mem::align_of::<RingCtl>() <= 64);
/// The default capacity of each direction: 256 KiB.
///
/// A sender can get that far ahead of its reader, counting the 8-byte
/// length word of each message; then it has to wait:
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::channel::{DEFAULT_PIPE_BYTES, Pipe};
///
/// let (parent, child) = Pipe::new()?;
/// assert!(parent.try_send_bytes(&vec![0; DEFAULT_PIPE_BYTES - 8])?); // fills it
/// assert!(!parent.try_send_bytes(b"one more")?); // no room: nothing sent
/// child.recv_bytes()?;
/// assert!(parent.try_send_bytes(b"one more")?); // room again
/// # Ok(()) }
/// ```
pub const DEFAULT_PIPE_BYTES: usize = 256 * 1024;

/// Which end of a pipe.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::channel::{Pipe, PipeSide};
///
/// let (_parent, child) = Pipe::new()?;
/// assert_eq!(child.hand_over().side, PipeSide::B);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PipeSide {
    /// Writes ring 0, reads ring 1.
    A,
    /// Writes ring 1, reads ring 0.
    B,
}

/// What another process needs to open a pipe end: the segment name and the
/// side. Get one with [`Pipe::hand_over`] and send it as (part of) a task's
/// arguments.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::channel::{Pipe, PipeToken};
///
/// let (parent, child) = Pipe::new()?;
/// let token: PipeToken = child.hand_over();
/// // It travels as JSON, e.g. inside a task's arguments.
/// let json = serde_json::to_string(&token)?;
/// let child = Pipe::open(&serde_json::from_str(&json)?)?;
/// parent.send(&"hi")?;
/// assert_eq!(child.recv::<String>()?, "hi");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeToken {
    /// The segment's name.
    pub name: String,
    /// Which end.
    pub side: PipeSide,
}

/// One end of a duplex pipe. Messages are delivered whole and in order;
/// each direction is a ring buffer in shared memory, so nothing goes
/// through the kernel unless a side has to wait.
///
/// One end is for one thread at a time (it is `Send` but not `Sync`), like
/// a `multiprocessing` connection.
///
/// ```
/// use shmlab::channel::Pipe;
///
/// let (parent, child) = Pipe::new().unwrap();
/// // In a real program `child.hand_over()` goes to a worker, which calls
/// // `Pipe::open(&token)`; here both ends stay in one process.
/// parent.send(&("hello", 42)).unwrap();
/// let (word, n): (String, u32) = child.recv().unwrap();
/// assert_eq!((word.as_str(), n), ("hello", 42));
/// child.send_bytes(b"raw bytes too").unwrap();
/// assert_eq!(parent.recv_bytes().unwrap(), b"raw bytes too");
/// ```
#[derive(Debug)]
pub struct Pipe {
    segment: Arc<Segment>,
    side: PipeSide,
    capacity_words: usize,
    /// Handed over to another process: do not close on drop.
    handed_over: bool,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

fn spec() -> Spec {
    Spec {
        kind: ObjectKind::Pipe,
        element: ElementType::U64,
        lock: LockKind::Futex,
    }
}

impl Pipe {
    /// A new pipe with the default capacity (256 KiB each way).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send(&[1, 2, 3])?;
    /// assert_eq!(b.recv::<Vec<u8>>()?, [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn new() -> Result<(Pipe, Pipe), ChannelError> {
        Self::with_capacity(DEFAULT_PIPE_BYTES)
    }

    /// A new pipe holding up to `bytes` in each direction (rounded up to a
    /// power of two, at least 64). Longer messages still pass: they stream.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::Pipe;
    /// // 64 bytes each way; a 1000-byte message streams through.
    /// let (a, b) = Pipe::with_capacity(64)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(move || a.send_bytes(&[5; 1000]));
    ///     assert_eq!(b.recv_bytes().unwrap(), [5; 1000]);
    /// });
    /// # Ok(()) }
    /// ```
    pub fn with_capacity(bytes: usize) -> Result<(Pipe, Pipe), ChannelError> {
        let capacity_words = bytes
            .div_ceil(8)
            .max(8)
            .checked_next_power_of_two()
            .ok_or(ChannelError::TooLarge)?;
        let total = capacity_words
            .checked_mul(2)
            .and_then(|w| w.checked_add(2 * CTL_WORDS))
            .ok_or(ChannelError::TooLarge)?;
        let segment = Arc::new(Segment::create::<u64, FutexLock>(
            ObjectKind::Pipe,
            None,
            total,
            0,
        )?);
        let end = |side| Pipe {
            segment: Arc::clone(&segment),
            side,
            capacity_words,
            handed_over: false,
            _not_sync: PhantomData,
        };
        let (a, b) = (end(PipeSide::A), end(PipeSide::B));
        let me = std::process::id();
        for pipe in [&a, &b] {
            pipe.outgoing().set_holder(RingEnd::Writer, me);
            pipe.incoming().set_holder(RingEnd::Reader, me);
        }
        Ok((a, b))
    }

    /// Opens the end described by `token` (in the process it was sent to).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// let token = b.hand_over(); // sent to a worker, which does:
    /// let b = Pipe::open(&token)?;
    /// a.send(&"ready?")?;
    /// assert_eq!(b.recv::<String>()?, "ready?");
    /// # Ok(()) }
    /// ```
    pub fn open(token: &PipeToken) -> Result<Pipe, ChannelError> {
        let segment = Segment::open(&token.name, spec())?;
        let data_words = segment
            .len()
            .checked_sub(2 * CTL_WORDS)
            .ok_or(ChannelError::Malformed)?;
        let capacity_words = data_words / 2;
        if data_words % 2 != 0 || !capacity_words.is_power_of_two() || capacity_words < 8 {
            return Err(ChannelError::Malformed);
        }
        let pipe = Pipe {
            segment: Arc::new(segment),
            side: token.side,
            capacity_words,
            handed_over: false,
            _not_sync: PhantomData,
        };
        let me = std::process::id();
        pipe.outgoing().set_holder(RingEnd::Writer, me);
        pipe.incoming().set_holder(RingEnd::Reader, me);
        Ok(pipe)
    }

    /// Gives this end away: returns the token another process opens it
    /// with. Until it does, the peer sees the end as "in transit", not
    /// closed.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// let token = b.hand_over();
    /// // In transit, not closed: the other end waits instead of failing.
    /// let waited = a.recv_bytes_timeout(Duration::from_millis(1));
    /// assert!(matches!(waited, Err(ChannelError::Timeout)));
    /// let b = Pipe::open(&token)?;
    /// b.send(&42)?;
    /// assert_eq!(a.recv::<i32>()?, 42);
    /// # Ok(()) }
    /// ```
    pub fn hand_over(mut self) -> PipeToken {
        self.outgoing().set_holder(RingEnd::Writer, 0);
        self.incoming().set_holder(RingEnd::Reader, 0);
        self.handed_over = true;
        PipeToken {
            name: self.segment.name().to_string(),
            side: self.side,
        }
    }

    /// The segment's name.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// assert_eq!(a.name(), b.name()); // one segment, two ends
    /// assert!(std::path::Path::new("/dev/shm").join(a.name()).exists());
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.segment.name()
    }

    fn ring(&self, index: usize) -> Ring<'_> {
        let words = self.segment.cells::<u64>();
        // SAFETY: the segment holds 2 * CTL_WORDS + 2 * capacity_words
        // words (checked on open, sized so on create). A RingCtl is a
        // repr(C) struct of atomics with alignment 64, valid when zeroed;
        // the cells start at a 64-byte aligned offset of a page-aligned
        // mapping and CTL_WORDS * 8 is a multiple of 64, so both control
        // blocks are aligned. The words are only ever used as this RingCtl
        // after creation (the creator's initial zeroing happens-before any
        // use through the header's ready flag). It lives as long as `self`.
        let ctl = unsafe { &*words.as_ptr().add(index * CTL_WORDS).cast::<RingCtl>() };
        let start = 2 * CTL_WORDS + index * self.capacity_words;
        let data: &[AtomicU64] = &words[start..start + self.capacity_words];
        Ring::new(ctl, data)
    }

    fn outgoing(&self) -> Ring<'_> {
        self.ring(match self.side {
            PipeSide::A => 0,
            PipeSide::B => 1,
        })
    }

    fn incoming(&self) -> Ring<'_> {
        self.ring(match self.side {
            PipeSide::A => 1,
            PipeSide::B => 0,
        })
    }

    /// Sends raw bytes as one message, waiting while the pipe is full.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// a.send_bytes(b"ping")?;
    /// assert_eq!(b.recv_bytes()?, b"ping");
    /// # Ok(()) }
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), ChannelError> {
        Ok(self.outgoing().write(bytes, Deadline::never())?)
    }

    /// Sends raw bytes, giving up after `timeout` if there is no room.
    ///
    /// The timeout covers waiting for room for the whole message. A message
    /// larger than the pipe's capacity streams through it, and once it has
    /// started it waits for the reader without a timeout (a reader that
    /// closes or dies still ends the wait) — so two ends that both send such
    /// messages without receiving deadlock, as with any pipe.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// let (a, _b) = Pipe::with_capacity(64)?; // 8 words each way
    /// a.send_bytes_timeout(&[0; 40], Duration::from_millis(1))?; // 6 words
    /// let full = a.send_bytes_timeout(&[0; 40], Duration::from_millis(1));
    /// assert!(matches!(full, Err(ChannelError::Timeout)));
    /// # Ok(()) }
    /// ```
    pub fn send_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), ChannelError> {
        Ok(self.outgoing().write(bytes, Deadline::after(timeout))?)
    }

    /// Receives one message of raw bytes, waiting for it.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// b.send_bytes(&[])?; // an empty message is a message
    /// assert_eq!(a.recv_bytes()?, b"");
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.incoming().read(Deadline::never())?)
    }

    /// Receives raw bytes, giving up after `timeout`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// let nothing = a.recv_bytes_timeout(Duration::from_millis(1));
    /// assert!(matches!(nothing, Err(ChannelError::Timeout)));
    /// drop(b);
    /// let closed = a.recv_bytes_timeout(Duration::from_millis(1));
    /// assert!(matches!(closed, Err(ChannelError::Disconnected)));
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
        Ok(self.incoming().read(Deadline::after(timeout))?)
    }

    /// Sends raw bytes only if there is room for the whole message now:
    /// `Ok(false)` means "full, nothing written". Never waits, never spins
    /// (a message larger than the pipe's capacity is written, streaming,
    /// only when the pipe is empty).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::Pipe;
    /// let (a, _b) = Pipe::with_capacity(64)?; // 8 words each way
    /// assert!(a.try_send_bytes(&[0; 40])?); // 6 words: sent
    /// assert!(!a.try_send_bytes(&[0; 40])?); // no room: nothing sent
    /// # Ok(()) }
    /// ```
    pub fn try_send_bytes(&self, bytes: &[u8]) -> Result<bool, ChannelError> {
        match self
            .outgoing()
            .write(bytes, Deadline::after(Duration::ZERO))
        {
            Ok(()) => Ok(true),
            Err(RingError::Timeout) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Receives one message of raw bytes if one has arrived: `Ok(None)`
    /// means "nothing yet". Never sleeps; a message that has started to
    /// arrive is read to its end (its writer is busy sending the rest).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// assert_eq!(a.try_recv_bytes()?, None);
    /// b.send_bytes(b"x")?;
    /// assert_eq!(a.try_recv_bytes()?, Some(b"x".to_vec()));
    /// # Ok(()) }
    /// ```
    pub fn try_recv_bytes(&self) -> Result<Option<Vec<u8>>, ChannelError> {
        let incoming = self.incoming();
        if incoming.has_data() {
            return Ok(Some(incoming.read(Deadline::never())?));
        }
        if incoming.peer_closed(RingEnd::Reader) {
            // Closed, but it may have written just before closing.
            if incoming.has_data() {
                return Ok(Some(incoming.read(Deadline::never())?));
            }
            return Err(ChannelError::Disconnected);
        }
        Ok(None)
    }

    /// Sends a value (serialised as JSON).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// a.send(&("move", 3, [1.5, 2.5]))?;
    /// let (word, n, xs): (String, u32, Vec<f64>) = b.recv()?;
    /// assert_eq!((word.as_str(), n, xs), ("move", 3, vec![1.5, 2.5]));
    /// # Ok(()) }
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), ChannelError> {
        self.send_bytes(&serde_json::to_vec(value)?)
    }

    /// Receives a value (serialised as JSON), waiting for it.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// a.send(&Some(7))?;
    /// assert_eq!(b.recv::<Option<i32>>()?, Some(7));
    /// a.send(&"text")?;
    /// assert!(matches!(b.recv::<i32>(), Err(ChannelError::Codec(_)))); // wrong type
    /// # Ok(()) }
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ChannelError> {
        Ok(serde_json::from_slice(&self.recv_bytes()?)?)
    }

    /// Receives a value, giving up after `timeout`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::channel::{ChannelError, Pipe};
    /// # use std::time::Duration;
    /// # let (a, b) = Pipe::new()?;
    /// a.send(&1)?;
    /// assert_eq!(b.recv_timeout::<i32>(Duration::from_millis(1))?, 1);
    /// let nothing = b.recv_timeout::<i32>(Duration::from_millis(1));
    /// assert!(matches!(nothing, Err(ChannelError::Timeout)));
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, ChannelError> {
        Ok(serde_json::from_slice(&self.recv_bytes_timeout(timeout)?)?)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if !self.handed_over {
            // The peer's reads end with Disconnected once it has read
            // everything we sent; its writes fail at once.
            self.outgoing().close(RingEnd::Writer);
            self.incoming().close(RingEnd::Reader);
        }
    }
}
