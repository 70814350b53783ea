//! `SharedArray<T>`: the tutorials' `multiprocessing.Array`.

use std::marker::PhantomData;
use std::time::Duration;

use super::{ObjectKind, Segment, ShmError};
use crate::cells::{Cells, CellsGuard, OutOfBounds};
use crate::element::{Element, Integer};
use crate::lock::{FutexLock, LockError, RawLock};
use crate::shm::segment::Spec;

/// A fixed-length array of `T` in a named shared memory segment, with one
/// process-shared lock `L` (shmlab's [`FutexLock`] unless you choose
/// [`crate::lock::OsMutex`]).
///
/// Which operations are atomic:
///
/// - [`get`](Self::get), [`set`](Self::set): each one atomic access to one
///   element. Nothing makes two of them one step.
/// - [`fetch_add`](Self::fetch_add): one atomic read-modify-write of one
///   element (integers only).
/// - [`lock`](Self::lock): everything done through the guard is one step for
///   every other lock user — the way to keep an invariant across elements,
///   such as "the total of all accounts never changes".
///
/// Every index is checked: out of range is an [`OutOfBounds`] error, never a
/// panic.
///
/// ```
/// use shmlab::SharedArray;
///
/// # fn main() -> anyhow::Result<()> {
/// let accounts = SharedArray::<i64>::create(4, 100)?;
/// // Another process would do: SharedArray::<i64>::open(accounts.name())?
/// {
///     let guard = accounts.lock().map_err(|e| e.discard_guard())?;
///     // A transfer: both writes become visible together to lock users.
///     guard.set(0, guard.get(0)? - 30)?;
///     guard.set(3, guard.get(3)? + 30)?;
/// }
/// assert_eq!(accounts.to_vec(), vec![70, 100, 100, 130]);
/// assert!(accounts.get(4).is_err());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SharedArray<T: Element, L: RawLock = FutexLock> {
    segment: Segment,
    _types: PhantomData<fn() -> (T, L)>,
}

/// The guard of a locked [`SharedArray`].
pub type ArrayGuard<'a, T, L = FutexLock> = CellsGuard<'a, T, L>;

impl<T: Element, L: RawLock> SharedArray<T, L> {
    /// Creates a new array of `len` elements, all `initial`, under a fresh
    /// `shmlab_<pid>_<random>` name.
    pub fn create(len: usize, initial: T) -> Result<Self, ShmError> {
        Self::from_segment(Segment::create::<T, L>(
            ObjectKind::Array,
            None,
            len,
            initial,
        )?)
    }

    /// Creates a new array under `name` (prefixed with `shmlab_` if it does
    /// not start with `shmlab`). Fails with [`ShmError::Exists`] if taken.
    pub fn create_named(name: &str, len: usize, initial: T) -> Result<Self, ShmError> {
        Self::from_segment(Segment::create::<T, L>(
            ObjectKind::Array,
            Some(name),
            len,
            initial,
        )?)
    }

    /// Opens an array another process created, checking that it really is
    /// an array of `T` with lock `L`.
    pub fn open(name: &str) -> Result<Self, ShmError> {
        Self::from_segment(Segment::open(name, Spec::of::<T, L>(ObjectKind::Array))?)
    }

    fn from_segment(segment: Segment) -> Result<Self, ShmError> {
        Ok(SharedArray {
            segment,
            _types: PhantomData,
        })
    }

    /// The segment's name, to pass to other processes.
    pub fn name(&self) -> &str {
        self.segment.name()
    }

    /// The segment (name, owner, header information).
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.segment.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.segment.is_empty()
    }

    /// The lock and cells, for the algorithms in [`crate::cells`] and
    /// [`crate::counting`].
    pub fn cells(&self) -> Cells<'_, T, L> {
        Cells::new(self.segment.lock::<L>(), self.segment.cells::<T>())
    }

    /// Atomically reads element `index`.
    pub fn get(&self, index: usize) -> Result<T, OutOfBounds> {
        self.cells().load(index)
    }

    /// Atomically writes element `index`.
    pub fn set(&self, index: usize, value: T) -> Result<(), OutOfBounds> {
        self.cells().store(index, value)
    }

    /// Atomically adds `delta` to element `index`; returns the old value.
    pub fn fetch_add(&self, index: usize, delta: T) -> Result<T, OutOfBounds>
    where
        T: Integer,
    {
        self.cells().fetch_add(index, delta)
    }

    /// Every element, each read atomically (not a consistent snapshot unless
    /// taken under the lock).
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len()).filter_map(|i| self.get(i).ok()).collect()
    }

    /// Waits for the array's lock.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T, L>, LockError<ArrayGuard<'_, T, L>>> {
        self.cells().lock()
    }

    /// Waits for the lock for at most `timeout`.
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T, L>, LockError<ArrayGuard<'_, T, L>>> {
        self.cells().try_lock_for(timeout)
    }
}
