//! Named shared memory and the types that live in it.
//!
//! - [`Segment`]: one named POSIX segment (`/dev/shm/shmlab_...`) with a
//!   validated header;
//! - [`SharedValue`]: one element, the tutorials' `multiprocessing.Value`;
//! - [`SharedArray`]: a fixed-length array, `multiprocessing.Array`.
//!
//! The creator of a segment owns it: dropping the value (also during an
//! unwinding panic) unlinks the name, and a lab interrupted with Ctrl-C
//! removes it too (see [`crate::cleanup`]). Another process opens it by name;
//! every open checks the header and fails with a typed [`ShmError`] rather
//! than trusting bytes another process wrote.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::SharedArray;
//! use std::path::Path;
//!
//! let array = SharedArray::<i64>::create(3, 0)?;
//! // What another process does with the name: open it, and write.
//! let other = SharedArray::<i64>::open(array.name())?;
//! other.set(1, 42)?;
//! assert_eq!(array.to_vec(), [0, 42, 0]); // the same memory
//! let file = Path::new("/dev/shm").join(array.name());
//! drop(other);
//! assert!(file.exists()); // an opener only unmaps
//! drop(array);
//! assert!(!file.exists()); // the creator unlinks the name
//! # Ok(()) }
//! ```
//!
//! # Trust
//!
//! Every byte a peer can write is read through an atomic, so a misbehaving
//! peer can make values wrong but cannot make this process's Rust code
//! undefined. Two things are outside any library's control and assume
//! cooperating processes: a peer that truncates the segment's file makes the
//! next access beyond the new end fault with SIGBUS, and a peer that
//! scribbles over an [`crate::lock::OsMutex`] corrupts glibc's own state.

mod array;
mod segment;
mod value;

pub use array::SharedArray;
pub use segment::{
    DATA_OFFSET, LAYOUT_VERSION, LOCK_OFFSET, MAGIC, MAX_NAME_LEN, NAME_PREFIX, ObjectKind,
    Segment, SegmentInfo, full_name,
};
pub(crate) use segment::{Spec, read_creator};
pub use value::{SharedValue, ValueGuard};

/// Why a segment could not be created or opened.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedValue;
/// use shmlab::shm::ShmError;
///
/// let counter = SharedValue::<i64>::create(0)?;
/// // Opened with the wrong element type: refused, not misread.
/// let wrong = SharedValue::<u32>::open(counter.name());
/// assert!(matches!(wrong, Err(ShmError::TypeMismatch { .. })));
/// let gone = SharedValue::<i64>::open("shmlab_no_such_segment");
/// assert!(matches!(gone, Err(ShmError::NotFound { .. })));
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// No segment has that name.
    #[error(
        "no shared memory segment named {name:?} (was it created, and is its creator still running?)"
    )]
    NotFound {
        /// The full name.
        name: String,
    },
    /// `create` with a name that is taken.
    #[error("a shared memory segment named {name:?} already exists")]
    Exists {
        /// The full name.
        name: String,
    },
    /// A name with characters that cannot be used.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Smaller than a shmlab header: not a shmlab segment.
    #[error("segment {name:?} is {size} bytes, smaller than a shmlab header ({needed} bytes)")]
    TooSmall {
        /// The full name.
        name: String,
        /// Its size.
        size: usize,
        /// The smallest valid size.
        needed: usize,
    },
    /// The first bytes are not shmlab's magic: a foreign segment.
    #[error("segment {name:?} is not a shmlab segment (magic {found:#018x})")]
    BadMagic {
        /// The full name.
        name: String,
        /// The magic found.
        found: u64,
    },
    /// The header was never published.
    #[error(
        "segment {name:?} was never initialised: its creator died while creating it, or it is not shmlab's"
    )]
    Uninitialised {
        /// The full name.
        name: String,
    },
    /// Made by another version of shmlab.
    #[error("segment {name:?} has layout version {found}, this shmlab reads version {expected}")]
    VersionMismatch {
        /// The full name.
        name: String,
        /// Ours.
        expected: u32,
        /// Its.
        found: u32,
    },
    /// A value opened as an array, or the other way round.
    #[error("segment {name:?} holds {found}, not {expected}")]
    KindMismatch {
        /// The full name.
        name: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the header says.
        found: String,
    },
    /// Opened with another element type than it was created with.
    #[error("segment {name:?} holds {found} elements, not {expected}")]
    TypeMismatch {
        /// The full name.
        name: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the header says.
        found: String,
    },
    /// Opened with another lock type than it was created with.
    #[error("segment {name:?} uses the {found} lock, not the {expected} lock")]
    LockMismatch {
        /// The full name.
        name: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the header says.
        found: String,
    },
    /// The header promises more elements than the segment has bytes for.
    #[error("segment {name:?} is truncated: {len} elements need {needed} bytes, it has {size}")]
    Truncated {
        /// The full name.
        name: String,
        /// The element count in the header.
        len: u64,
        /// Bytes needed for them.
        needed: u64,
        /// Bytes present.
        size: u64,
    },
    /// The size does not fit in memory at all.
    #[error("{len} elements of {element} do not fit in the address space")]
    TooLarge {
        /// Elements asked for.
        len: usize,
        /// Their type.
        element: &'static str,
    },
    /// More than /dev/shm has free (writing it would crash with SIGBUS).
    #[error(
        "{requested} bytes of shared memory requested, but /dev/shm has only {available} bytes free"
    )]
    NoSpace {
        /// Bytes asked for.
        requested: u64,
        /// Bytes free.
        available: u64,
    },
    /// The operating system refused.
    #[error("could not {op} segment {name:?}: {message}")]
    Os {
        /// The full name.
        name: String,
        /// What we were doing.
        op: &'static str,
        /// The OS's words.
        message: String,
    },
}
