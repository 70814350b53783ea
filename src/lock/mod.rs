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
//!
//! Two threads add to a shared value under its lock (a [`FutexLock`] unless
//! chosen otherwise); no increment is lost:
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::SharedValue;
//!
//! let counter = SharedValue::<i64>::create(0)?;
//! std::thread::scope(|s| {
//!     let add = || -> anyhow::Result<()> {
//!         for _ in 0..1000 {
//!             let guard = counter.lock().map_err(|e| e.discard_guard())?;
//!             guard.set(guard.get() + 1); // no other lock user runs in between
//!         }
//!         Ok(())
//!     };
//!     let workers = [s.spawn(add), s.spawn(add)];
//!     workers.into_iter().try_for_each(|w| w.join().expect("no panic"))
//! })?;
//! assert_eq!(counter.load(), 2000);
//! # Ok(()) }
//! ```

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
///
/// ```
/// use shmlab::lock::{FutexLock, LockKind, OsMutex, RawLock};
///
/// assert_eq!(FutexLock::KIND, LockKind::Futex);
/// assert_eq!(OsMutex::KIND, LockKind::Os);
/// ```
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
    ///
    /// ```
    /// use shmlab::lock::LockKind;
    ///
    /// assert_eq!(LockKind::from_tag(LockKind::Os as u32), Some(LockKind::Os));
    /// assert_eq!(LockKind::from_tag(0), None);
    /// ```
    pub fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            1 => Some(LockKind::Futex),
            2 => Some(LockKind::Os),
            _ => None,
        }
    }

    /// A short name for reports: `futex` or `os`.
    ///
    /// ```
    /// use shmlab::lock::LockKind;
    ///
    /// assert_eq!(LockKind::Futex.name(), "futex");
    /// assert_eq!(LockKind::Os.name(), "os");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Futex => "futex",
            LockKind::Os => "os",
        }
    }
}

/// How a lock was acquired.
///
/// ```
/// use shmlab::lock::{Acquired, FutexLock, RawLock};
/// use shmlab::sync::Deadline;
///
/// # fn main() -> anyhow::Result<()> {
/// let lock = FutexLock::new();
/// assert_eq!(lock.lock_until(Deadline::never())?, Acquired::Clean);
/// // SAFETY: this thread took the lock on the line above.
/// unsafe { lock.unlock() };
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The previous holder released it normally.
    Clean,
    /// The previous holder died while holding it; the data it protects may be
    /// inconsistent.
    OwnerDied,
}

/// Why a raw lock call did not acquire the lock.
///
/// ```
/// use shmlab::lock::{FutexLock, RawLock, RawLockError};
/// use shmlab::sync::Deadline;
/// use std::time::Duration;
///
/// # fn main() -> anyhow::Result<()> {
/// let lock = FutexLock::new();
/// lock.lock_until(Deadline::never())?;
/// let again = lock.lock_until(Deadline::after(Duration::from_millis(1)));
/// assert!(matches!(again, Err(RawLockError::Timeout))); // held: gave up
/// // SAFETY: this thread took the lock above and has not released it.
/// unsafe { lock.unlock() };
/// # Ok(()) }
/// ```
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
///
/// A shared value or array takes its lock as a type parameter, so the same
/// code runs with either lock:
///
/// ```
/// use shmlab::SharedValue;
/// use shmlab::lock::{FutexLock, OsMutex, RawLock};
///
/// fn locked_add<L: RawLock>(value: &SharedValue<i64, L>) -> anyhow::Result<()> {
///     let guard = value.lock().map_err(|e| e.discard_guard())?;
///     guard.set(guard.get() + 1);
///     Ok(())
/// }
/// # fn main() -> anyhow::Result<()> {
/// let futex = SharedValue::<i64, FutexLock>::create(0)?;
/// let os = SharedValue::<i64, OsMutex>::create(0)?;
/// locked_add(&futex)?;
/// locked_add(&os)?;
/// assert_eq!((futex.load(), os.load()), (1, 1));
/// # Ok(()) }
/// ```
pub trait RawLock: sealed::Sealed + Send + Sync + std::fmt::Debug + 'static {
    /// The tag stored in segment headers.
    ///
    /// A segment made with one lock cannot be opened with the other, whose
    /// bytes mean something else:
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedValue;
    /// use shmlab::lock::{FutexLock, OsMutex, RawLock};
    /// use shmlab::shm::ShmError;
    ///
    /// let balance = SharedValue::<i64, OsMutex>::create(100)?;
    /// assert_eq!(balance.segment().info().lock, OsMutex::KIND.name());
    /// let with_futex = SharedValue::<i64, FutexLock>::open(balance.name());
    /// assert!(matches!(with_futex, Err(ShmError::LockMismatch { expected: "futex", .. })));
    /// # Ok(()) }
    /// ```
    const KIND: LockKind;

    /// Acquires the lock, giving up when `deadline` passes.
    ///
    /// ```
    /// use shmlab::lock::{Acquired, FutexLock, RawLock, RawLockError};
    /// use shmlab::sync::Deadline;
    /// use std::time::Duration;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let lock = FutexLock::new();
    /// assert_eq!(lock.lock_until(Deadline::never())?, Acquired::Clean);
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| lock.lock_until(Deadline::after(Duration::from_millis(5))));
    ///     assert!(matches!(other.join().unwrap(), Err(RawLockError::Timeout)));
    /// });
    /// // SAFETY: this thread took the lock above and has not released it.
    /// unsafe { lock.unlock() };
    /// # Ok(()) }
    /// ```
    fn lock_until(&self, deadline: Deadline) -> Result<Acquired, RawLockError>;

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller must hold the lock (a successful `lock_until` not yet
    /// matched by an `unlock`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmlab::lock::{FutexLock, RawLock};
    /// use shmlab::sync::Deadline;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let lock = FutexLock::new();
    /// lock.lock_until(Deadline::never())?;
    /// assert_eq!(lock.holder(), Some(std::process::id()));
    /// // SAFETY: this thread took the lock above and has not released it.
    /// unsafe { lock.unlock() };
    /// assert_eq!(lock.holder(), None);
    /// # Ok(()) }
    /// ```
    unsafe fn unlock(&self);

    /// Prepares a lock in place in freshly zeroed shared memory.
    ///
    /// # Safety
    /// `ptr` must be valid for writes of `size_of::<Self>()` bytes, suitably
    /// aligned, and no other thread or process may use it until this returns.
    ///
    /// # Examples
    ///
    /// Segments call it for you; here an [`OsMutex`] is prepared in place:
    ///
    /// ```
    /// use shmlab::lock::{Acquired, OsMutex, RawLock};
    /// use shmlab::sync::Deadline;
    /// use std::mem::MaybeUninit;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let mut place = MaybeUninit::<OsMutex>::zeroed();
    /// // SAFETY: `place` is writable, aligned for an OsMutex, and ours alone.
    /// unsafe { OsMutex::init_at(place.as_mut_ptr())? };
    /// // SAFETY: init_at succeeded, so the mutex is initialised; it stays put.
    /// let mutex = unsafe { place.assume_init_ref() };
    /// assert_eq!(mutex.lock_until(Deadline::never())?, Acquired::Clean);
    /// // SAFETY: this thread took the lock on the line above.
    /// unsafe { mutex.unlock() };
    /// # Ok(()) }
    /// ```
    #[cfg(not(loom))]
    unsafe fn init_at(ptr: *mut Self) -> std::io::Result<()>;
}

/// The error of a `lock`/`try_lock_for` call on a shared value or array.
///
/// Like `std::sync::PoisonError`, [`LockError::OwnerDied`] still carries the
/// guard: the caller holds the lock and decides how to repair the data.
///
/// A worker process takes the lock, half-updates the value and dies with
/// the lock held; the next locker gets the lock *and* the news:
///
/// ```
/// use shmlab::lock::LockError;
/// use shmlab::{SharedValue, process};
///
/// fn die_holding_the_lock(name: String) {
///     let value = SharedValue::<i64>::open(&name).expect("open");
///     let guard = value.lock().map_err(|e| e.discard_guard()).expect("lock");
///     guard.set(-1); // half-way through an update...
///     std::mem::forget(guard); // ...and gone without unlocking
/// }
/// shmlab::task!(die_holding_the_lock);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry();
///     let value = SharedValue::<i64>::create(10)?;
///     process::spawn(die_holding_the_lock, &value.name().to_string())?.join()?;
///     match value.lock() {
///         Err(LockError::OwnerDied(guard)) => guard.set(10), // repair
///         other => panic!("expected OwnerDied, got {:?}", other.err()),
///     }
///     assert_eq!(value.load(), 10);
///     Ok(())
/// }
/// ```
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
    ///
    /// ```
    /// use shmlab::SharedValue;
    /// use std::time::Duration;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let value = SharedValue::<i64>::create(0)?;
    /// let _held = value.lock().map_err(|e| e.discard_guard())?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let err = value.try_lock_for(Duration::from_millis(1)).unwrap_err();
    ///         assert!(err.into_guard().is_none()); // a timeout holds no lock
    ///     });
    /// });
    /// # Ok(()) }
    /// ```
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Drops the guard (releasing the lock) and keeps only what happened, so
    /// the error can travel with `?` into `anyhow` or `Box<dyn Error>`.
    ///
    /// ```
    /// use shmlab::SharedValue;
    ///
    /// fn bump(value: &SharedValue<i64>) -> anyhow::Result<i64> {
    ///     let guard = value.lock().map_err(|e| e.discard_guard())?;
    ///     guard.set(guard.get() + 1);
    ///     Ok(guard.get())
    /// }
    /// # fn main() -> anyhow::Result<()> {
    /// let value = SharedValue::<i64>::create(41)?;
    /// assert_eq!(bump(&value)?, 42);
    /// # Ok(()) }
    /// ```
    pub fn discard_guard(self) -> LockError<()> {
        match self {
            LockError::OwnerDied(_) => LockError::OwnerDied(()),
            LockError::Timeout(d) => LockError::Timeout(d),
            LockError::Os(e) => LockError::Os(e),
        }
    }

    /// Whether the previous owner died holding the lock.
    ///
    /// ```
    /// use shmlab::SharedValue;
    /// use shmlab::lock::LockError;
    /// use std::time::Duration;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let value = SharedValue::<i64>::create(0)?;
    /// let _held = value.lock().map_err(|e| e.discard_guard())?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let err = value.try_lock_for(Duration::from_millis(1)).unwrap_err();
    ///         assert!(!err.is_owner_died());
    ///         assert!(matches!(err, LockError::Timeout(_)));
    ///     });
    /// });
    /// # Ok(()) }
    /// ```
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
