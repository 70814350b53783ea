//! shmlab's own process-shared lock: one `AtomicU32` and a Linux futex.

use std::time::Duration;

use super::{Acquired, LockKind, RawLock, RawLockError};
use crate::sync::{self, Deadline, FutexWord, Ordering};

/// Set in the lock word while some thread or process may be asleep waiting.
const WAITERS: u32 = 1 << 31;
/// The rest of the word: the holder's pid (0 = unlocked). Linux pids are at
/// most 2^22, so they always fit.
const OWNER: u32 = !WAITERS;
/// How long a waiter sleeps before it checks whether the holder still exists.
/// This bounds the time to recover a lock whose holder was killed.
const OWNER_CHECK: Duration = Duration::from_millis(10);
/// Attempts to grab a just-released lock before going to sleep.
#[cfg(not(loom))]
const SPINS: u32 = 100;

/// A mutual-exclusion lock that works across processes and survives the death
/// of its holder.
///
/// The whole lock is one 32-bit word: `0` when free, otherwise the holder's
/// pid, with the top bit set once someone may be sleeping on it (Drepper's
/// "futexes are tricky" mutex with the owner written into the word). Waiters
/// sleep in the kernel with `FUTEX_WAIT` — without the private flag, so
/// processes that map the same page at different addresses meet on the same
/// wait queue — and check every 10 ms whether the recorded holder still
/// exists. When it does not, the waiter takes the lock over and reports
/// [`Acquired::OwnerDied`].
///
/// All-zero bytes are an unlocked lock, so a freshly created segment needs no
/// initialisation. The lock is not reentrant: a thread that locks it twice
/// waits for itself forever (as with `std::sync::Mutex`).
///
/// ```
/// use shmlab::lock::{FutexLock, RawLock, Acquired};
/// use shmlab::sync::Deadline;
///
/// let lock = FutexLock::new();
/// assert_eq!(lock.lock_until(Deadline::never()).unwrap(), Acquired::Clean);
/// // SAFETY: we hold the lock, taken on the line above.
/// unsafe { lock.unlock() };
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct FutexLock {
    word: FutexWord,
}

impl Default for FutexLock {
    fn default() -> Self {
        Self::new()
    }
}

impl FutexLock {
    /// A new, unlocked lock (for use inside one process, or under loom).
    ///
    /// ```
    /// use shmlab::lock::FutexLock;
    ///
    /// let lock = FutexLock::new();
    /// assert_eq!(lock.holder(), None);
    /// ```
    pub fn new() -> Self {
        FutexLock {
            word: FutexWord::new(0),
        }
    }

    /// The pid recorded as holder, or `None` when the lock is free.
    ///
    /// ```
    /// use shmlab::SharedValue;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let value = SharedValue::<i64>::create(0)?;
    /// let _guard = value.lock().map_err(|e| e.discard_guard())?;
    /// // What a waiter in another process checks to see if the holder died:
    /// assert_eq!(value.cells().raw_lock().holder(), Some(std::process::id()));
    /// # Ok(()) }
    /// ```
    pub fn holder(&self) -> Option<u32> {
        match self.word.load(Ordering::Relaxed) & OWNER {
            0 => None,
            pid => Some(pid),
        }
    }

    /// One attempt to take the lock when it looks free.
    fn try_take(&self, current: u32, new: u32) -> bool {
        self.word
            .compare_exchange(current, new, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

impl RawLock for FutexLock {
    const KIND: LockKind = LockKind::Futex;

    fn lock_until(&self, mut deadline: Deadline) -> Result<Acquired, RawLockError> {
        let me = sync::owner_id() & OWNER;
        // Fast path: free and uncontended.
        if self.try_take(0, me) {
            return Ok(Acquired::Clean);
        }
        // Short spin: on a busy lock the holder is usually about to release
        // it, and a futex sleep costs two system calls.
        #[cfg(not(loom))]
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.word.load(Ordering::Relaxed) == 0 && self.try_take(0, me) {
                return Ok(Acquired::Clean);
            }
        }
        let mut watch = sync::OwnerWatch::new(OWNER_CHECK);
        let mut slept = false;
        loop {
            let current = self.word.load(Ordering::Relaxed);
            if current == 0 {
                // We cannot know whether others are asleep, so take it with
                // WAITERS set: the unlock will then wake one of them.
                if self.try_take(0, me | WAITERS) {
                    return Ok(Acquired::Clean);
                }
                continue;
            }
            let holder = current & OWNER;
            if watch.holder_is_dead(holder) {
                // The holder cannot unlock any more: take the lock over, but
                // only if the word still names that same dead holder.
                if self.try_take(current, me | WAITERS) {
                    return Ok(Acquired::OwnerDied);
                }
                continue;
            }
            if deadline.expired() {
                if slept {
                    // We may have been woken by an unlock and be giving up
                    // instead of taking the lock: pass the wake-up on, or
                    // another sleeper could wait for an unlock that already
                    // happened (loom finds exactly that without this line).
                    sync::futex_wake(&self.word, 1);
                }
                return Err(RawLockError::Timeout);
            }
            if current & WAITERS == 0
                && self
                    .word
                    .compare_exchange(
                        current,
                        current | WAITERS,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            let nap = deadline
                .remaining()
                .map_or(OWNER_CHECK, |r| r.min(OWNER_CHECK));
            sync::futex_wait(&self.word, current | WAITERS, Some(nap));
            slept = true;
            deadline.waited();
        }
    }

    unsafe fn unlock(&self) {
        let previous = self.word.swap(0, Ordering::Release);
        if previous & WAITERS != 0 {
            sync::futex_wake(&self.word, 1);
        }
    }

    #[cfg(not(loom))]
    unsafe fn init_at(_ptr: *mut Self) -> std::io::Result<()> {
        // Zeroed memory is already an unlocked FutexLock.
        Ok(())
    }
}
