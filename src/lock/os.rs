//! The OS baseline: a process-shared, robust `pthread_mutex_t`.
//!
//! Why not raw_sync? raw_sync 0.1.5 builds its mutex attributes with
//! `MaybeUninit::uninit().assume_init()` (undefined behaviour: rustc warns
//! that `pthread_mutexattr_t` "does not permit being left uninitialized"),
//! its mutex is not robust (a holder killed by SIGKILL blocks every later
//! locker forever), and its timed lock does not carry nanoseconds into
//! seconds, so some timeouts fail at once with `EINVAL`. The same OS lock is
//! a few lines of `libc`, done soundly here.

use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use super::{Acquired, LockKind, RawLock, RawLockError};
use crate::sync::Deadline;

/// glibc's process-shared, robust pthread mutex, placed in shared memory.
///
/// `PTHREAD_PROCESS_SHARED` lets processes that map the same page use it;
/// `PTHREAD_MUTEX_ROBUST` makes the kernel and glibc hand it to the next
/// locker with `EOWNERDEAD` when its holder dies, which this type reports as
/// [`Acquired::OwnerDied`] after marking the mutex consistent again.
/// Unlike [`super::FutexLock`] it needs [`RawLock::init_at`] before first use.
///
/// Choose it as a segment's lock type; the segment initialises it:
///
/// ```
/// use shmlab::SharedValue;
/// use shmlab::lock::OsMutex;
///
/// # fn main() -> anyhow::Result<()> {
/// let balance = SharedValue::<i64, OsMutex>::create(100)?;
/// {
///     let guard = balance.lock().map_err(|e| e.discard_guard())?;
///     guard.set(guard.get() - 30);
/// }
/// assert_eq!(balance.load(), 70);
/// assert_eq!(balance.segment().info().lock, "os");
/// # Ok(()) }
/// ```
#[repr(C)]
pub struct OsMutex {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a pthread mutex is made to be used concurrently through a pointer;
// every access goes through the pthread functions, never through Rust
// references to its bytes.
unsafe impl Sync for OsMutex {}
// SAFETY: as above; the mutex holds no thread-affine state outside itself.
unsafe impl Send for OsMutex {}

impl std::fmt::Debug for OsMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OsMutex { .. }")
    }
}

/// Turns a pthread return code into a result.
fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// `now + timeout` on CLOCK_REALTIME (the clock `pthread_mutex_timedlock`
/// uses), with nanoseconds carried into seconds — the step raw_sync misses.
fn realtime_deadline(timeout: Duration) -> libc::timespec {
    let mut now = MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: clock_gettime writes a whole timespec into the pointer it is
    // given; CLOCK_REALTIME always exists, so it cannot fail.
    let now = unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, now.as_mut_ptr());
        now.assume_init()
    };
    let mut sec = (now.tv_sec as i64).saturating_add(timeout.as_secs().min(i64::MAX as u64) as i64);
    let mut nsec = now.tv_nsec as i64 + i64::from(timeout.subsec_nanos());
    if nsec >= 1_000_000_000 {
        sec = sec.saturating_add(1);
        nsec -= 1_000_000_000;
    }
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as libc::c_long,
    }
}

impl RawLock for OsMutex {
    const KIND: LockKind = LockKind::Os;

    fn lock_until(&self, deadline: Deadline) -> Result<Acquired, RawLockError> {
        let code = match deadline.remaining() {
            // SAFETY: the mutex was initialised by `init_at` (segments of
            // this lock kind are only handed out after that).
            None => unsafe { libc::pthread_mutex_lock(self.mutex.get()) },
            Some(left) => {
                let at = realtime_deadline(left);
                // SAFETY: as above; `at` is a normalised timespec on the stack.
                unsafe { libc::pthread_mutex_timedlock(self.mutex.get(), &at) }
            }
        };
        match code {
            0 => Ok(Acquired::Clean),
            libc::ETIMEDOUT => Err(RawLockError::Timeout),
            libc::EOWNERDEAD => {
                // We hold the lock now; mark it usable again so later lockers
                // do not get ENOTRECOVERABLE, and tell the caller.
                // SAFETY: we hold the mutex (EOWNERDEAD means acquired).
                let consistent = check(unsafe { libc::pthread_mutex_consistent(self.mutex.get()) });
                if let Err(e) = consistent {
                    // Do not return holding it.
                    // SAFETY: we hold the mutex (see above).
                    unsafe { libc::pthread_mutex_unlock(self.mutex.get()) };
                    return Err(RawLockError::Os(e));
                }
                Ok(Acquired::OwnerDied)
            }
            other => Err(RawLockError::Os(io::Error::from_raw_os_error(other))),
        }
    }

    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock (this method's contract); guards
        // are !Send, so this is the thread that locked it, as pthread needs.
        let code = unsafe { libc::pthread_mutex_unlock(self.mutex.get()) };
        debug_assert_eq!(code, 0, "pthread_mutex_unlock failed");
    }

    unsafe fn init_at(ptr: *mut Self) -> io::Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: pthread_mutexattr_init initialises the attribute object we
        // pass; we only use it after it returned 0, and destroy it at the end.
        // `ptr` is valid and exclusively ours (this function's contract), and
        // `UnsafeCell<pthread_mutex_t>` has the layout of `pthread_mutex_t`.
        unsafe {
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let result = (|| {
                check(libc::pthread_mutexattr_setpshared(
                    attr.as_mut_ptr(),
                    libc::PTHREAD_PROCESS_SHARED,
                ))?;
                check(libc::pthread_mutexattr_setrobust(
                    attr.as_mut_ptr(),
                    libc::PTHREAD_MUTEX_ROBUST,
                ))?;
                check(libc::pthread_mutex_init(
                    UnsafeCell::raw_get(std::ptr::addr_of!((*ptr).mutex)),
                    attr.as_ptr(),
                ))
            })();
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
            result
        }
    }
}
