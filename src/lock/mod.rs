//! Process-shared locks.
//!
//! Two locks implement one trait, [`RawLock`], so that [`crate::SharedValue`]
//! and [`crate::SharedArray`] can use either:
//!
//! - [`FutexLock`] — shmlab's own lock and the default: one `AtomicU32` in the
//!   segment, a Linux futex for sleeping, a timed lock, and owner-death
//!   recovery. It is written against [`crate::sync`], so the loom suite checks
//!   this very code.
//! - [`OsMutex`] — the operating system's process-shared, robust
//!   `pthread_mutex_t`: the baseline to compare against.
//!
//! Both report a holder that died with the lock held as
//! [`LockError::OwnerDied`], which still hands over the guard: the caller owns
//! the lock, but the data it protects may be half-updated (the lock's
//! equivalent of `EOWNERDEAD`).

mod futex;
#[cfg(not(loom))]
mod os;

// Both locks fit the 64-byte, 64-aligned lock area of a segment.
const _: () =
    assert!(std::mem::size_of::<FutexLock>() <= 64 && std::mem::align_of::<FutexLock>() <= 64);
#[cfg(not(loom))]
const _: () =
    assert!(std::mem::size_of::<OsMutex>() <= 64 && std::mem::align_of::<OsMutex>() <= 64);

pub use futex::FutexLock;
#[cfg(not(loom))]
pub use os::OsMutex;

use std::fmt;
use std::time::Duration;

use crate::sync::Deadline;

/// Which lock a segment was created with; stored in its header so that an
/// opener that expects the other lock gets an error instead of misreading
/// the lock's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockKind {
    /// [`FutexLock`].
    Futex = 1,
    /// [`OsMutex`].
    Os = 2,
}

impl LockKind {
    /// Decodes a header tag.
    pub fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            1 => Some(LockKind::Futex),
            2 => Some(LockKind::Os),
            _ => None,
        }
    }

    /// A short name for reports: `futex` or `os`.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Futex => "futex",
            LockKind::Os => "os",
        }
    }
}

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The previous holder released it normally.
    Clean,
    /// The previous holder died while holding it; the data it protects may be
    /// inconsistent.
    OwnerDied,
}

/// Why a raw lock call did not acquire the lock.
#[derive(Debug, thiserror::Error)]
pub enum RawLockError {
    /// The deadline passed first.
    #[error("timed out waiting for the lock")]
    Timeout,
    /// The operating system refused (only [`OsMutex`] can report this).
    #[error("the OS lock failed: {0}")]
    Os(#[from] std::io::Error),
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::FutexLock {}
    #[cfg(not(loom))]
    impl Sealed for super::OsMutex {}
}

/// A lock that can live in memory shared between processes.
///
/// Sealed: a segment hands out `&L` over bytes another process wrote, which
/// is only sound for types built for it — no pointers, valid after
/// [`RawLock::init_at`], at most 64 bytes with alignment at most 64 (the
/// lock area of a segment), and acquire/release ordering so that everything
/// written before `unlock` is visible to the next holder. [`FutexLock`] and
/// [`OsMutex`] are those types.
pub trait RawLock: sealed::Sealed + Send + Sync + std::fmt::Debug + 'static {
    /// The tag stored in segment headers.
    const KIND: LockKind;

    /// Acquires the lock, giving up when `deadline` passes.
    fn lock_until(&self, deadline: Deadline) -> Result<Acquired, RawLockError>;

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller must hold the lock (a successful `lock_until` not yet
    /// matched by an `unlock`).
    unsafe fn unlock(&self);

    /// Prepares a lock in place in freshly zeroed shared memory.
    ///
    /// # Safety
    /// `ptr` must be valid for writes of `size_of::<Self>()` bytes, suitably
    /// aligned, and no other thread or process may use it until this returns.
    #[cfg(not(loom))]
    unsafe fn init_at(ptr: *mut Self) -> std::io::Result<()>;
}

/// The error of a `lock`/`try_lock_for` call on a shared value or array.
///
/// Like `std::sync::PoisonError`, [`LockError::OwnerDied`] still carries the
/// guard: the caller holds the lock and decides how to repair the data.
pub enum LockError<G> {
    /// The lock was acquired, but the process that held it before died
    /// without releasing it; what it protects may be half-updated.
    OwnerDied(G),
    /// `try_lock_for` gave up after waiting this long.
    Timeout(Duration),
    /// The operating system refused.
    Os(std::io::Error),
}

impl<G> LockError<G> {
    /// The guard if the lock was acquired (after an owner died), else `None`.
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Drops the guard (releasing the lock) and keeps only what happened, so
    /// the error can travel with `?` into `anyhow` or `Box<dyn Error>`.
    pub fn discard_guard(self) -> LockError<()> {
        match self {
            LockError::OwnerDied(_) => LockError::OwnerDied(()),
            LockError::Timeout(d) => LockError::Timeout(d),
            LockError::Os(e) => LockError::Os(e),
        }
    }

    /// Whether the previous owner died holding the lock.
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }

    pub(crate) fn from_raw(err: RawLockError, timeout: Option<Duration>) -> Self {
        match err {
            RawLockError::Timeout => LockError::Timeout(timeout.unwrap_or_default()),
            RawLockError::Os(e) => LockError::Os(e),
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::Timeout(d) => f.debug_tuple("Timeout").field(d).finish(),
            LockError::Os(e) => f.debug_tuple("Os").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(
                "the previous lock holder died while holding the lock; the protected data may be half-updated",
            ),
            LockError::Timeout(d) => write!(f, "gave up waiting for the lock after {d:?}"),
            LockError::Os(e) => write!(f, "the OS lock failed: {e}"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}
