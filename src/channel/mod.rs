//! Channels between processes: [`Pipe`] (two connected ends) and
//! [`Queue`] (many producers, many consumers), both in shared memory.
//!
//! Python's `multiprocessing.Queue` is a pipe plus a feeder thread, which is
//! why a process that put items and then exits can hang until they are
//! consumed ("joining processes that use queues"). Here the items live in
//! the shared segment itself: `put` returns once the item is in shared
//! memory, a producer can exit at once, and nothing it put is lost.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::channel::{Pipe, Queue};
//!
//! let queue = Queue::new(8)?;
//! {
//!     // A producer (another process, given the name) puts and is gone.
//!     let producer = Queue::open(queue.name())?;
//!     (1..=3).try_for_each(|job| producer.put(&job))?;
//! }
//! let jobs: Vec<u32> = (0..3).map(|_| queue.get()).collect::<Result<_, _>>()?;
//! assert_eq!(jobs, [1, 2, 3]); // all still there
//!
//! let (parent, child) = Pipe::new()?; // `child.hand_over()` goes to a worker
//! child.send(&"ready")?;
//! assert_eq!(parent.recv::<String>()?, "ready");
//! # Ok(()) }
//! ```

pub(crate) mod event;
pub mod ring;
pub mod slots;
pub(crate) mod words;

#[cfg(not(loom))]
mod pipe;
#[cfg(not(loom))]
mod queue;

#[cfg(not(loom))]
pub use errors::ChannelError;
#[cfg(not(loom))]
pub use pipe::{DEFAULT_PIPE_BYTES, Pipe, PipeSide, PipeToken};
#[cfg(not(loom))]
pub use queue::{DEFAULT_SLOT_BYTES, Queue};

#[cfg(not(loom))]
mod errors {
    use super::ring::RingError;
    use crate::shm::ShmError;

    /// Why a channel operation failed.
    ///
    /// ```
    /// use shmlab::channel::{ChannelError, Pipe, Queue};
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// assert!(matches!(Queue::new(0), Err(ChannelError::ZeroCapacity)));
    ///
    /// // Longer than a pipe carries: refused before a byte is sent. (The
    /// // zeroed buffer is never touched, so it costs no memory.)
    /// let (a, _b) = Pipe::new()?;
    /// let huge = vec![0u8; (1 << 30) + 1];
    /// let refused = a.send_bytes(&huge);
    /// assert!(matches!(refused, Err(ChannelError::MessageTooLong { len, .. }) if len == huge.len() as u64));
    /// # Ok(()) }
    /// ```
    #[derive(Debug, thiserror::Error)]
    pub enum ChannelError {
        /// The segment could not be created or opened.
        #[error(transparent)]
        Shm(#[from] ShmError),
        /// Nothing arrived (or no room freed) before the timeout.
        #[error("timed out")]
        Timeout,
        /// The other end is closed or its process died, and nothing is left.
        #[error("the other end of the channel is closed (or its process died)")]
        Disconnected,
        /// A message could not be encoded or decoded.
        #[error("could not encode or decode a message: {0}")]
        Codec(#[from] serde_json::Error),
        /// A message is larger than a queue slot.
        #[error("a message of {len} bytes does not fit a queue slot of {slot} bytes")]
        MessageTooLarge {
            /// The message's size.
            len: usize,
            /// The slot's size.
            slot: usize,
        },
        /// A message longer than a pipe carries ([`MAX_MESSAGE`](super::ring::MAX_MESSAGE),
        /// 1 GiB): refused before anything is sent.
        #[error("a message of {len} bytes is longer than the {limit} bytes a pipe carries")]
        MessageTooLong {
            /// The message's size.
            len: u64,
            /// The limit.
            limit: u64,
        },
        /// The requested capacity does not fit in memory.
        #[error("the requested capacity is too large")]
        TooLarge,
        /// The segment is a channel of an impossible shape (another version, or
        /// a peer that broke the protocol).
        #[error("the channel's segment is malformed")]
        Malformed,
        /// A queue of zero messages.
        #[error("a queue needs room for at least one message")]
        ZeroCapacity,
    }

    impl From<RingError> for ChannelError {
        fn from(e: RingError) -> Self {
            match e {
                RingError::Timeout => ChannelError::Timeout,
                RingError::Disconnected => ChannelError::Disconnected,
                RingError::Corrupt(_) => ChannelError::Malformed,
                RingError::TooLong(len) => ChannelError::MessageTooLong {
                    len,
                    limit: super::ring::MAX_MESSAGE,
                },
            }
        }
    }
}
