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
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedArray;
    ///
    /// let hits = SharedArray::<u64>::create(3, 0)?;
    /// assert_eq!(hits.to_vec(), [0, 0, 0]);
    /// # Ok(()) }
    /// ```
    pub fn create(len: usize, initial: T) -> Result<Self, ShmError> {
        Ok(Self::from_segment(Segment::create::<T, L>(
            ObjectKind::Array,
            None,
            len,
            initial,
        )?))
    }

    /// Creates a new array under `name` (prefixed with `shmlab_` if it does
    /// not start with `shmlab`). Fails with [`ShmError::Exists`] if taken.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedArray;
    ///
    /// let name = format!("doc_table_{}", std::process::id());
    /// let table = SharedArray::<i32>::create_named(&name, 2, -1)?;
    /// assert_eq!(table.name(), format!("shmlab_{name}"));
    /// assert_eq!(table.to_vec(), [-1, -1]);
    /// # Ok(()) }
    /// ```
    pub fn create_named(name: &str, len: usize, initial: T) -> Result<Self, ShmError> {
        Ok(Self::from_segment(Segment::create::<T, L>(
            ObjectKind::Array,
            Some(name),
            len,
            initial,
        )?))
    }

    /// Opens an array another process created, checking that it really is
    /// an array of `T` with lock `L`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// // Here in one process; normally in a worker, given the name.
    /// let seen = SharedArray::<i64>::open(array.name())?;
    /// array.set(2, 8)?;
    /// assert_eq!(seen.to_vec(), [0, 0, 8]);
    /// # Ok(()) }
    /// ```
    pub fn open(name: &str) -> Result<Self, ShmError> {
        Ok(Self::from_segment(Segment::open(
            name,
            Spec::of::<T, L>(ObjectKind::Array),
        )?))
    }

    fn from_segment(segment: Segment) -> Self {
        SharedArray {
            segment,
            _types: PhantomData,
        }
    }

    /// The segment's name, to pass to other processes.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// assert!(array.name().starts_with("shmlab_")); // /dev/shm/<name>
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.segment.name()
    }

    /// The segment (name, owner, header information).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// assert_eq!(array.segment().info().len, 3);
    /// # Ok(()) }
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The number of elements.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// assert_eq!(array.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.segment.len()
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// assert!(!array.is_empty());
    /// assert!(SharedArray::<i64>::create(0, 0)?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.segment.is_empty()
    }

    /// The lock and cells, for the algorithms in [`crate::cells`] and
    /// [`crate::counting`].
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// use shmlab::counting::slot_increment;
    ///
    /// slot_increment(&array.cells(), 1);
    /// assert_eq!(array.to_vec(), [0, 1, 0]);
    /// # Ok(()) }
    /// ```
    pub fn cells(&self) -> Cells<'_, T, L> {
        Cells::new(self.segment.lock::<L>(), self.segment.cells::<T>())
    }

    /// Atomically reads element `index`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// assert_eq!(array.get(0)?, 0);
    /// assert!(array.get(3).is_err()); // an error, not a panic
    /// # Ok(()) }
    /// ```
    pub fn get(&self, index: usize) -> Result<T, OutOfBounds> {
        self.cells().load(index)
    }

    /// Atomically writes element `index`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// array.set(1, -5)?;
    /// assert_eq!(array.to_vec(), [0, -5, 0]);
    /// # Ok(()) }
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<(), OutOfBounds> {
        self.cells().store(index, value)
    }

    /// Atomically adds `delta` to element `index`; returns the old value.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// assert_eq!(array.fetch_add(2, 10)?, 0); // the value before
    /// assert_eq!(array.get(2)?, 10);
    /// # Ok(()) }
    /// ```
    pub fn fetch_add(&self, index: usize, delta: T) -> Result<T, OutOfBounds>
    where
        T: Integer,
    {
        self.cells().fetch_add(index, delta)
    }

    /// Every element, each read atomically (not a consistent snapshot unless
    /// taken under the lock).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// array.set(0, 1)?;
    /// assert_eq!(array.to_vec(), [1, 0, 0]);
    /// // A consistent snapshot: read it under the lock.
    /// let guard = array.lock().map_err(|e| e.discard_guard())?;
    /// let snapshot: Vec<i64> = (0..guard.len()).map(|i| guard.get(i)).collect::<Result<_, _>>()?;
    /// assert_eq!(snapshot, [1, 0, 0]);
    /// # Ok(()) }
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len()).filter_map(|i| self.get(i).ok()).collect()
    }

    /// Waits for the array's lock.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// {
    ///     let guard = array.lock().map_err(|e| e.discard_guard())?;
    ///     // Move 5 from element 0 to element 1 as one step for lock users.
    ///     guard.set(0, guard.get(0)? - 5)?;
    ///     guard.set(1, guard.get(1)? + 5)?;
    /// }
    /// assert_eq!(array.to_vec(), [-5, 5, 0]);
    /// # Ok(()) }
    /// ```
    pub fn lock(&self) -> Result<ArrayGuard<'_, T, L>, LockError<ArrayGuard<'_, T, L>>> {
        self.cells().lock()
    }

    /// Waits for the lock for at most `timeout`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// use shmlab::lock::LockError;
    /// use std::time::Duration;
    ///
    /// let _held = array.lock().map_err(|e| e.discard_guard())?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let attempt = array.try_lock_for(Duration::from_millis(5));
    ///         assert!(matches!(attempt, Err(LockError::Timeout(_))));
    ///     });
    /// });
    /// # Ok(()) }
    /// ```
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T, L>, LockError<ArrayGuard<'_, T, L>>> {
        self.cells().try_lock_for(timeout)
    }
}
