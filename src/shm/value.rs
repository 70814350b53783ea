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
    pub fn name(&self) -> &str {
        self.segment.name()
    }

    /// The segment (name, owner, header information).
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The lock and the one cell, for the algorithms in [`crate::counting`].
    pub fn cells(&self) -> Cells<'_, T, L> {
        Cells::new(self.segment.lock::<L>(), self.segment.cells::<T>())
    }

    /// Atomically reads the value.
    pub fn load(&self) -> T {
        // A value always has exactly one cell (checked on open).
        self.cells()
            .load(0)
            .unwrap_or_else(|_| unreachable!("a SharedValue has one cell"))
    }

    /// Atomically writes the value.
    pub fn store(&self, value: T) {
        let _ = self.cells().store(0, value);
    }

    /// Atomically adds `delta`; returns the previous value.
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
    pub fn lock(&self) -> Result<ValueGuard<'_, T, L>, LockError<ValueGuard<'_, T, L>>> {
        wrap(self.cells().lock())
    }

    /// Waits for the lock for at most `timeout`.
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
#[derive(Debug)]
pub struct ValueGuard<'a, T: Element, L: RawLock = FutexLock> {
    inner: CellsGuard<'a, T, L>,
}

impl<T: Element, L: RawLock> ValueGuard<'_, T, L> {
    /// Reads the value.
    pub fn get(&self) -> T {
        self.inner
            .get(0)
            .unwrap_or_else(|_| unreachable!("a SharedValue has one cell"))
    }

    /// Writes the value.
    pub fn set(&self, value: T) {
        let _ = self.inner.set(0, value);
    }
}
