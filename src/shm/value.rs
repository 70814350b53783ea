//! `SharedValue<T>`: the tutorials' `multiprocessing.Value`.

use std::marker::PhantomData;
use std::time::Duration;

use super::{ObjectKind, Segment, ShmError};
use crate::cells::{Cells, CellsGuard};
use crate::element::{Element, Integer};
use crate::lock::{FutexLock, LockError, RawLock};
use crate::shm::segment::Spec;

/// One `T` in a named shared memory segment, with a process-shared lock `L`
/// (shmlab's [`FutexLock`] unless you choose [`crate::lock::OsMutex`]).
///
/// Which operations are atomic:
///
/// - [`load`](Self::load) and [`store`](Self::store): each is one atomic
///   access. **`v.store(v.load() + 1)` is not atomic**: it is Python's
///   `v.value += 1`, two steps between which another process can store, and
///   its update is then lost. This is a logic race on atomics, not undefined
///   behaviour.
/// - [`fetch_add`](Self::fetch_add): one atomic read-modify-write; exact.
/// - [`lock`](Self::lock): a guard through which `get`/`set` act as one step
///   for every other lock user; exact, like `with v.get_lock():`.
///
/// ```
/// use shmlab::SharedValue;
///
/// # fn main() -> anyhow::Result<()> {
/// let counter = SharedValue::<i64>::create(0)?;
/// // Another process would do: SharedValue::<i64>::open(counter.name())?
/// counter.store(counter.load() + 1); // racy with other writers
/// counter.fetch_add(1);                // atomic
/// {
///     let guard = counter.lock().map_err(|e| e.discard_guard())?;
///     guard.set(guard.get() + 1);      // exact under the lock
/// }
/// assert_eq!(counter.load(), 3);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SharedValue<T: Element, L: RawLock = FutexLock> {
    segment: Segment,
    _types: PhantomData<fn() -> (T, L)>,
}

impl<T: Element, L: RawLock> SharedValue<T, L> {
    /// Creates a new value holding `initial` under a fresh
    /// `shmlab_<pid>_<random>` name.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedValue;
    ///
    /// let ratio = SharedValue::<f64>::create(0.5)?;
    /// assert_eq!(ratio.load(), 0.5);
    /// # Ok(()) }
    /// ```
    pub fn create(initial: T) -> Result<Self, ShmError> {
        Ok(Self::from_segment(Segment::create::<T, L>(
            ObjectKind::Value,
            None,
            1,
            initial,
        )?))
    }

    /// Creates a new value under `name` (prefixed with `shmlab_` if it does
    /// not start with `shmlab`).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedValue;
    /// use shmlab::shm::ShmError;
    ///
    /// let name = format!("doc_counter_{}", std::process::id());
    /// let counter = SharedValue::<i64>::create_named(&name, 7)?;
    /// assert_eq!(counter.name(), format!("shmlab_{name}"));
    /// let again = SharedValue::<i64>::create_named(&name, 0);
    /// assert!(matches!(again, Err(ShmError::Exists { .. })));
    /// # Ok(()) }
    /// ```
    pub fn create_named(name: &str, initial: T) -> Result<Self, ShmError> {
        Ok(Self::from_segment(Segment::create::<T, L>(
            ObjectKind::Value,
            Some(name),
            1,
            initial,
        )?))
    }

    /// Opens a value another process created, checking that it is a value
    /// of `T` with lock `L`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// // Here in one process; normally in a worker, given the name.
    /// let seen = SharedValue::<i64>::open(value.name())?;
    /// value.store(5);
    /// assert_eq!(seen.load(), 5);
    /// # Ok(()) }
    /// ```
    pub fn open(name: &str) -> Result<Self, ShmError> {
        Ok(Self::from_segment(Segment::open(
            name,
            Spec::of::<T, L>(ObjectKind::Value),
        )?))
    }

    fn from_segment(segment: Segment) -> Self {
        SharedValue {
            segment,
            _types: PhantomData,
        }
    }

    /// The segment's name, to pass to other processes.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// assert!(value.name().starts_with("shmlab_")); // /dev/shm/<name>
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.segment.name()
    }

    /// The segment (name, owner, header information).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// assert_eq!(value.segment().info().element, "i64");
    /// # Ok(()) }
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The lock and the one cell, for the algorithms in [`crate::counting`].
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// use shmlab::counting::atomic_increment;
    ///
    /// atomic_increment(&value.cells());
    /// assert_eq!(value.load(), 1);
    /// # Ok(()) }
    /// ```
    pub fn cells(&self) -> Cells<'_, T, L> {
        Cells::new(self.segment.lock::<L>(), self.segment.cells::<T>())
    }

    /// Atomically reads the value.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// assert_eq!(value.load(), 0);
    /// # Ok(()) }
    /// ```
    pub fn load(&self) -> T {
        // A value always has exactly one cell (checked on open).
        self.cells()
            .load(0)
            .unwrap_or_else(|_| unreachable!("a SharedValue has one cell"))
    }

    /// Atomically writes the value.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// value.store(42);
    /// assert_eq!(value.load(), 42);
    /// # Ok(()) }
    /// ```
    pub fn store(&self, value: T) {
        let _ = self.cells().store(0, value);
    }

    /// Atomically adds `delta`; returns the previous value.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| {
    ///             for _ in 0..100 {
    ///                 value.fetch_add(1);
    ///             }
    ///         });
    ///     }
    /// });
    /// assert_eq!(value.load(), 400); // no update lost
    /// # Ok(()) }
    /// ```
    pub fn fetch_add(&self, delta: T) -> T
    where
        T: Integer,
    {
        self.cells()
            .fetch_add(0, delta)
            .unwrap_or_else(|_| unreachable!("a SharedValue has one cell"))
    }

    /// Waits for the lock. See [`LockError::OwnerDied`] for a holder that
    /// died.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// {
    ///     let guard = value.lock().map_err(|e| e.discard_guard())?;
    ///     guard.set(guard.get() + 1); // one step for every other lock user
    /// } // unlocked here
    /// assert_eq!(value.load(), 1);
    /// # Ok(()) }
    /// ```
    pub fn lock(&self) -> Result<ValueGuard<'_, T, L>, LockError<ValueGuard<'_, T, L>>> {
        wrap(self.cells().lock())
    }

    /// Waits for the lock for at most `timeout`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// use std::time::Duration;
    ///
    /// let guard = value.try_lock_for(Duration::from_millis(10)).map_err(|e| e.discard_guard())?;
    /// guard.set(9);
    /// drop(guard);
    /// assert_eq!(value.load(), 9);
    /// # Ok(()) }
    /// ```
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T, L>, LockError<ValueGuard<'_, T, L>>> {
        wrap(self.cells().try_lock_for(timeout))
    }
}

fn wrap<'a, T: Element, L: RawLock>(
    r: Result<CellsGuard<'a, T, L>, LockError<CellsGuard<'a, T, L>>>,
) -> Result<ValueGuard<'a, T, L>, LockError<ValueGuard<'a, T, L>>> {
    match r {
        Ok(inner) => Ok(ValueGuard { inner }),
        Err(LockError::OwnerDied(inner)) => Err(LockError::OwnerDied(ValueGuard { inner })),
        Err(LockError::Timeout(d)) => Err(LockError::Timeout(d)),
        Err(LockError::Os(e)) => Err(LockError::Os(e)),
    }
}

/// Exclusive access to a [`SharedValue`]; unlocks when dropped.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::SharedValue;
/// # let value = SharedValue::<i64>::create(0)?;
/// let guard = value.lock().map_err(|e| e.discard_guard())?;
/// guard.set(guard.get() + 10);
/// drop(guard); // unlocks
/// assert_eq!(value.load(), 10);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ValueGuard<'a, T: Element, L: RawLock = FutexLock> {
    inner: CellsGuard<'a, T, L>,
}

impl<T: Element, L: RawLock> ValueGuard<'_, T, L> {
    /// Reads the value.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// let guard = value.lock().map_err(|e| e.discard_guard())?;
    /// assert_eq!(guard.get(), 0);
    /// # Ok(()) }
    /// ```
    pub fn get(&self) -> T {
        self.inner
            .get(0)
            .unwrap_or_else(|_| unreachable!("a SharedValue has one cell"))
    }

    /// Writes the value.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// let guard = value.lock().map_err(|e| e.discard_guard())?;
    /// guard.set(3);
    /// assert_eq!(guard.get(), 3);
    /// # Ok(()) }
    /// ```
    pub fn set(&self, value: T) {
        let _ = self.inner.set(0, value);
    }
}
