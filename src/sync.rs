//! The loom facade: the atomics, the futex and the process identity that
//! shmlab's algorithms are written against.
//!
//! Normally these are `std`'s atomics, the Linux `futex(2)` system call and
//! `getpid()`. Built with `RUSTFLAGS="--cfg loom"`, the same names resolve to
//! [loom](https://docs.rs/loom)'s model-checked atomics, and the futex to a
//! model of the kernel's wait queue built from loom's `Mutex` and `Condvar`
//! (a waiter blocks until a wake, so loom reports a lost wake-up as a
//! deadlock). The lock in
//! [`crate::lock`] and the cell operations in [`crate::cells`] therefore
//! run unchanged under the model checker: loom checks the shipped code, not a
//! stand-in.
//!
//! What loom cannot see — the real futex system call, real processes, real
//! time, a holder that dies — is kept as small as possible and lives in the
//! `not(loom)` half of this file.
//!
//! Code written against these names: one thread publishes a result and
//! wakes the other, which sleeps on the word with a deadline — the waiting
//! loop of the lock, the channels and the philosophers' table:
//!
//! ```
//! use shmlab::sync::{AtomicU64, Deadline, FutexWord, Ordering, futex_wait, futex_wake};
//! use std::time::Duration;
//!
//! // Outside loom the facade is std itself: these are std's atomics.
//! let result: std::sync::atomic::AtomicU64 = AtomicU64::new(0);
//! let done = FutexWord::new(0);
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         result.store(42, Ordering::Relaxed);
//!         done.store(1, Ordering::Release);
//!         futex_wake(&done, 1);
//!     });
//!     let mut deadline = Deadline::after(Duration::from_secs(5));
//!     while done.load(Ordering::Acquire) == 0 && !deadline.expired() {
//!         futex_wait(&done, 0, deadline.remaining()); // sleeps only while it reads 0
//!         deadline.waited(); // under loom, a bounded wait ends here
//!     }
//!     assert_eq!(done.load(Ordering::Acquire), 1);
//!     assert_eq!(result.load(Ordering::Relaxed), 42); // published before `done`
//! });
//! ```

use std::time::Duration;

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// A point in time after which a timed wait gives up.
///
/// Under loom there is no clock; a bounded deadline instead expires once its
/// holder has waited one time ([`Deadline::waited`]). That keeps every
/// execution deterministic while loom still explores both a timed waiter
/// that sleeps and one that then gives up.
///
/// ```
/// use shmlab::sync::Deadline;
/// use std::time::Duration;
///
/// let deadline = Deadline::after(Duration::from_millis(1));
/// std::thread::sleep(Duration::from_millis(2));
/// assert!(deadline.expired());
/// assert!(!Deadline::never().expired());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    #[cfg(not(loom))]
    at: Option<std::time::Instant>,
    #[cfg(loom)]
    bounded: bool,
    #[cfg(loom)]
    has_waited: bool,
}

impl Deadline {
    /// A deadline that never expires.
    ///
    /// ```
    /// use shmlab::sync::Deadline;
    ///
    /// assert_eq!(Deadline::never().remaining(), None);
    /// ```
    pub fn never() -> Self {
        #[cfg(not(loom))]
        return Deadline { at: None };
        #[cfg(loom)]
        return Deadline {
            bounded: false,
            has_waited: false,
        };
    }

    /// A deadline `timeout` from now.
    ///
    /// ```
    /// use shmlab::sync::Deadline;
    /// use std::time::Duration;
    ///
    /// let deadline = Deadline::after(Duration::from_secs(60));
    /// let left = deadline.remaining().unwrap();
    /// assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(59));
    /// ```
    pub fn after(timeout: Duration) -> Self {
        #[cfg(not(loom))]
        return Deadline {
            // A timeout too large to represent is the same as no deadline.
            at: std::time::Instant::now().checked_add(timeout),
        };
        #[cfg(loom)]
        {
            let _ = timeout;
            Deadline {
                bounded: true,
                has_waited: false,
            }
        }
    }

    /// Records that its holder has slept once (only loom's model uses it).
    ///
    /// A wait loop calls it after every sleep, so that the same loop ends
    /// both on the real clock and in loom's clockless model:
    ///
    /// ```
    /// use shmlab::sync::Deadline;
    /// use std::time::Duration;
    ///
    /// let mut deadline = Deadline::after(Duration::from_millis(3));
    /// let mut naps = 0;
    /// while !deadline.expired() {
    ///     std::thread::sleep(Duration::from_millis(1));
    ///     deadline.waited();
    ///     naps += 1;
    /// }
    /// assert!(naps >= 1);
    /// ```
    pub fn waited(&mut self) {
        #[cfg(loom)]
        {
            self.has_waited = true;
        }
    }

    /// Time left before the deadline: `None` for "no deadline",
    /// `Some(Duration::ZERO)` once it has passed.
    ///
    /// ```
    /// use shmlab::sync::Deadline;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Deadline::never().remaining(), None);
    /// assert_eq!(Deadline::after(Duration::ZERO).remaining(), Some(Duration::ZERO));
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        #[cfg(not(loom))]
        return self
            .at
            .map(|at| at.saturating_duration_since(std::time::Instant::now()));
        #[cfg(loom)]
        return self.bounded.then(|| {
            if self.has_waited {
                Duration::ZERO
            } else {
                Duration::from_millis(1)
            }
        });
    }

    /// Whether the deadline has passed.
    ///
    /// ```
    /// use shmlab::sync::Deadline;
    /// use std::time::Duration;
    ///
    /// assert!(Deadline::after(Duration::ZERO).expired());
    /// assert!(!Deadline::after(Duration::from_secs(60)).expired());
    /// ```
    pub fn expired(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }
}

/// The word a futex sleeps on.
///
/// Normally just an `AtomicU32` (so it can sit in shared memory). Under loom
/// it also carries a model of the kernel's wait queue — a loom `Mutex` and
/// `Condvar` — so that a waiter really blocks until woken: loom then reports
/// a lost wake-up as a deadlock, instead of hiding it behind a retry loop.
///
/// ```
/// use shmlab::sync::{FutexWord, Ordering, futex_wait, futex_wake};
/// use std::time::Duration;
///
/// let flag = FutexWord::new(0);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         flag.store(1, Ordering::Release);
///         futex_wake(&flag, 1);
///     });
///     // Sleep only while the word still reads 0; re-check after any wake.
///     while flag.load(Ordering::Acquire) == 0 {
///         futex_wait(&flag, 0, Some(Duration::from_millis(10)));
///     }
/// });
/// assert_eq!(flag.load(Ordering::Acquire), 1);
/// ```
#[cfg(not(loom))]
pub type FutexWord = AtomicU32;

/// The word a futex sleeps on, with loom's model of the kernel wait queue.
#[cfg(loom)]
#[derive(Debug)]
pub struct FutexWord {
    value: AtomicU32,
    queue: loom::sync::Mutex<()>,
    wakeup: loom::sync::Condvar,
}

#[cfg(loom)]
impl FutexWord {
    /// A word holding `value`.
    pub fn new(value: u32) -> Self {
        FutexWord {
            value: AtomicU32::new(value),
            queue: loom::sync::Mutex::new(()),
            wakeup: loom::sync::Condvar::new(),
        }
    }
}

#[cfg(loom)]
impl Default for FutexWord {
    fn default() -> Self {
        FutexWord::new(0)
    }
}

#[cfg(loom)]
impl std::ops::Deref for FutexWord {
    type Target = AtomicU32;
    fn deref(&self) -> &AtomicU32 {
        &self.value
    }
}

/// Sleeps while `word` still holds `expected`, for at most `timeout`.
///
/// Returns when woken, when the value differs, on a signal or on timeout;
/// callers always re-check the word, so a spurious return is harmless.
/// Under loom the wait has no timeout: every waiter must be woken by a
/// [`futex_wake`], or loom reports the lost wake-up.
///
/// A thread sleeps until another sets a flag; because the kernel compares
/// the word before sleeping, a wake that comes first is never lost:
///
/// ```
/// use shmlab::sync::{FutexWord, Ordering, futex_wait, futex_wake};
/// use std::time::Duration;
///
/// let flag = FutexWord::new(0);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         while flag.load(Ordering::Acquire) == 0 {
///             futex_wait(&flag, 0, Some(Duration::from_millis(100)));
///         }
///     });
///     flag.store(1, Ordering::Release);
///     futex_wake(&flag, 1);
/// });
/// assert_eq!(flag.load(Ordering::Acquire), 1);
/// ```
pub fn futex_wait(word: &FutexWord, expected: u32, timeout: Option<Duration>) {
    #[cfg(loom)]
    {
        let _ = timeout;
        // The kernel compares the value and queues the waiter under one
        // hash-bucket lock; the model does the same under its mutex.
        let queue = word.queue.lock().unwrap_or_else(|e| e.into_inner());
        if word.value.load(Ordering::Relaxed) == expected {
            drop(word.wakeup.wait(queue));
        }
    }
    #[cfg(not(loom))]
    {
        let ts = timeout.map(|t| libc::timespec {
            // Clamp absurd timeouts instead of overflowing time_t.
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `word` is a live, 4-byte aligned AtomicU32 for the whole
        // call (it is borrowed); FUTEX_WAIT without FUTEX_PRIVATE_FLAG keys
        // the wait on the physical page, so it works for a word in a shared
        // mapping seen at different addresses in different processes. The
        // timespec pointer is null or points at `ts`, alive until return.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
}

/// Wakes up to `waiters` threads or processes sleeping in [`futex_wait`] on
/// `word`.
///
/// `u32::MAX` wakes them all, like a start signal:
///
/// ```
/// use shmlab::sync::{FutexWord, Ordering, futex_wait, futex_wake};
/// use std::sync::atomic::AtomicUsize;
///
/// let go = FutexWord::new(0);
/// let started = AtomicUsize::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| {
///             while go.load(Ordering::Acquire) == 0 {
///                 futex_wait(&go, 0, None);
///             }
///             started.fetch_add(1, Ordering::Relaxed);
///         });
///     }
///     go.store(1, Ordering::Release);
///     futex_wake(&go, u32::MAX);
/// });
/// assert_eq!(started.load(Ordering::Relaxed), 3);
/// ```
pub fn futex_wake(word: &FutexWord, waiters: u32) {
    #[cfg(loom)]
    {
        let _queue = word.queue.lock().unwrap_or_else(|e| e.into_inner());
        if waiters == 1 {
            word.wakeup.notify_one();
        } else {
            word.wakeup.notify_all();
        }
    }
    #[cfg(not(loom))]
    {
        // SAFETY: `word` is a live AtomicU32 (borrowed for the call); waking
        // never reads or writes memory, it only releases kernel wait queues.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                waiters.min(i32::MAX as u32),
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
}

/// Nanoseconds on the machine-wide monotonic clock, comparable between
/// processes (for published timestamps such as a wait's start). Under loom,
/// which has no clock, always 0.
///
/// ```
/// use shmlab::sync::now_ns;
/// use std::time::Duration;
///
/// let before = now_ns();
/// std::thread::sleep(Duration::from_millis(1));
/// assert!(now_ns() - before >= 1_000_000);
/// ```
pub fn now_ns() -> u64 {
    #[cfg(loom)]
    return 0;
    #[cfg(not(loom))]
    return crate::process::monotonic_ns();
}

/// The identity a lock records as its owner: this process's pid.
///
/// Under loom every thread reports `1` unless it called
/// `model::act_as_process` (loom only): mutual exclusion only needs the
/// owner word to be non-zero, and only the owner-death model needs distinct
/// owners.
///
/// ```
/// assert_eq!(shmlab::sync::owner_id(), std::process::id());
/// ```
pub fn owner_id() -> u32 {
    #[cfg(loom)]
    return model::current_process();
    #[cfg(not(loom))]
    return cached_pid();
}

/// `getpid()` is a system call (glibc stopped caching it), far too slow for a
/// lock's fast path, so the pid is cached here. A `fork()`ed child would
/// inherit a wrong cache, so a fork handler clears it.
#[cfg(not(loom))]
fn cached_pid() -> u32 {
    use std::sync::atomic::{AtomicU32 as StdAtomicU32, Ordering as StdOrdering};
    static PID: StdAtomicU32 = StdAtomicU32::new(0);
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget_pid_in_child() {
        PID.store(0, StdOrdering::Relaxed);
    }
    let pid = PID.load(StdOrdering::Relaxed);
    if pid != 0 {
        return pid;
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic, which is
        // async-signal-safe as a fork child handler must be.
        unsafe { libc::pthread_atfork(None, None, Some(forget_pid_in_child)) };
    });
    let pid = std::process::id();
    PID.store(pid, StdOrdering::Relaxed);
    pid
}

/// Whether the process that recorded `owner` is still running.
///
/// A zombie (killed but not yet reaped by its parent) counts as dead: it
/// will never release a lock again.
///
/// ```
/// use shmlab::sync::owner_alive;
///
/// # fn main() -> std::io::Result<()> {
/// assert!(owner_alive(std::process::id()));
/// let mut child = std::process::Command::new("true").spawn()?;
/// let pid = child.id();
/// child.wait()?; // exited and reaped: gone for good
/// assert!(!owner_alive(pid));
/// # Ok(()) }
/// ```
pub fn owner_alive(owner: u32) -> bool {
    #[cfg(loom)]
    return !model::has_died(owner);
    #[cfg(not(loom))]
    return crate::process::pid_alive(owner);
}

/// Decides when a waiter should check whether a lock's holder still exists.
///
/// Checking costs system calls, so a waiter only asks once the same holder
/// has been seen for `interval`. Under loom there is no clock: the watch
/// asks every time, and the answer comes from `model::die` (loom only).
///
/// ```
/// use shmlab::sync::OwnerWatch;
/// use std::time::Duration;
///
/// # fn main() -> std::io::Result<()> {
/// let mut child = std::process::Command::new("true").spawn()?;
/// let holder = child.id();
/// child.wait()?; // the holder is gone
/// let mut watch = OwnerWatch::new(Duration::ZERO);
/// assert!(!watch.holder_is_dead(holder)); // first sighting: not asked yet
/// assert!(watch.holder_is_dead(holder)); // seen long enough, and gone
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OwnerWatch {
    #[cfg(not(loom))]
    interval: Duration,
    #[cfg(not(loom))]
    seen: Option<(u32, std::time::Instant)>,
}

impl OwnerWatch {
    /// A watch that checks a holder after seeing it for `interval`.
    ///
    /// ```
    /// use shmlab::sync::OwnerWatch;
    /// use std::time::Duration;
    ///
    /// let mut watch = OwnerWatch::new(Duration::from_secs(3600));
    /// // Within the interval it never asks the system, even about pid 0.
    /// assert!(!watch.holder_is_dead(0));
    /// assert!(!watch.holder_is_dead(0));
    /// ```
    pub fn new(interval: Duration) -> Self {
        #[cfg(not(loom))]
        return OwnerWatch {
            interval,
            seen: None,
        };
        #[cfg(loom)]
        {
            let _ = interval;
            OwnerWatch {}
        }
    }

    /// Records that `holder` holds the lock now; true only if it has held it
    /// for at least the interval and its process no longer exists.
    ///
    /// ```
    /// use shmlab::sync::OwnerWatch;
    /// use std::time::Duration;
    ///
    /// let me = std::process::id();
    /// let mut watch = OwnerWatch::new(Duration::ZERO);
    /// assert!(!watch.holder_is_dead(me)); // first sighting
    /// assert!(!watch.holder_is_dead(me)); // asked: alive
    /// ```
    pub fn holder_is_dead(&mut self, holder: u32) -> bool {
        #[cfg(loom)]
        return !owner_alive(holder);
        #[cfg(not(loom))]
        {
            let now = std::time::Instant::now();
            match self.seen {
                Some((h, since)) if h == holder => {
                    if now.duration_since(since) < self.interval {
                        return false;
                    }
                    self.seen = Some((holder, now));
                    !owner_alive(holder)
                }
                _ => {
                    self.seen = Some((holder, now));
                    false
                }
            }
        }
    }
}

/// Loom only: lets a model's threads play separate processes, and one of them
/// die while it holds a lock.
///
/// A real holder's death is seen through the operating system (`/proc`),
/// which loom does not model; here it is a per-execution record that
/// [`owner_alive`] reads. Reading it is not a loom operation, like the real
/// check is not a memory access: it adds no schedule of its own. What loom
/// still cannot model is *time*: a waiter already asleep on the futex notices
/// a death only when its nap runs out, and loom's waits never time out. So
/// a model lets the holder die before the other threads start waiting (they
/// may race each other, and a live thread, for the dead holder's lock).
#[cfg(loom)]
pub mod model {
    use std::cell::Cell;

    loom::thread_local! {
        static PROCESS: Cell<u32> = Cell::new(1);
    }

    loom::lazy_static! {
        static ref DEAD: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
    }

    /// From now on this model thread records `pid` (1..2^31) as the owner of
    /// the locks it takes, as a separate process would.
    pub fn act_as_process(pid: u32) {
        assert!(pid != 0 && pid < 1 << 31, "a pid the lock word can hold");
        PROCESS.with(|p| p.set(pid));
    }

    /// The owner id this model thread records.
    pub fn current_process() -> u32 {
        PROCESS.with(Cell::get)
    }

    /// This thread's process dies: from now on [`super::owner_alive`] says
    /// so, and every lock it holds stays held, as after a `SIGKILL`. The
    /// caller must not unlock anything afterwards (forget its guards).
    pub fn die() {
        let pid = current_process();
        DEAD.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    }

    /// Whether `pid` has died in this execution.
    pub fn has_died(pid: u32) -> bool {
        DEAD.lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&pid)
    }
}
