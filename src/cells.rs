//! The operations on shared cells, separate from where the cells live.
//!
//! A [`Cells`] is a lock plus a slice of atomic cells. In a real run both sit
//! in a shared memory segment (see [`crate::SharedValue`] and
//! [`crate::SharedArray`], which hand out a `Cells` view of their mapping);
//! under loom they are ordinary heap objects built from [`crate::sync`]'s
//! model-checked types. Either way the code below is the code that runs, so
//! what loom proves about it holds across processes.
//!
//! Which operations are atomic:
//!
//! | operation | atomic? | ordering |
//! |---|---|---|
//! | [`Cells::load`] | yes, alone | Acquire |
//! | [`Cells::store`] | yes, alone | Release |
//! | `store(i, load(i) + 1)` | **no**: two atomic steps, another writer can come between them | — |
//! | [`Cells::fetch_add`] | yes, one read-modify-write | AcqRel |
//! | anything done through a [`CellsGuard`] | yes, as a whole, against other lock users | the lock's Acquire/Release |
//!
//! Two threads count in two cells, one with `fetch_add`, one with a load and
//! a store made one step by the lock; neither loses an update:
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::cells::Cells;
//! use shmlab::element::Element;
//! use shmlab::lock::FutexLock;
//!
//! // A lock and two cells in this process; `SharedArray::cells` gives the
//! // same view of a segment's.
//! let lock = FutexLock::new();
//! let storage = [i64::new_cell(0), i64::new_cell(0)];
//! let cells = Cells::<i64>::new(&lock, &storage);
//! std::thread::scope(|s| {
//!     let count = move || -> anyhow::Result<()> {
//!         for _ in 0..1000 {
//!             cells.fetch_add(0, 1)?; // one atomic step
//!             let guard = cells.lock().map_err(|e| e.discard_guard())?;
//!             guard.set(1, guard.get(1)? + 1)?; // two steps, one for other lock users
//!         }
//!         Ok(())
//!     };
//!     let workers = [s.spawn(count), s.spawn(count)];
//!     workers.into_iter().try_for_each(|w| w.join().expect("no panic"))
//! })?;
//! assert_eq!((cells.load(0)?, cells.load(1)?), (2000, 2000));
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::time::Duration;

use crate::element::{Element, Integer};
use crate::lock::{Acquired, FutexLock, LockError, RawLock};
use crate::sync::{Deadline, Ordering};

/// An index past the end of an array.
///
/// ```
/// use shmlab::cells::{Cells, OutOfBounds};
/// # use shmlab::element::Element;
/// # use shmlab::lock::FutexLock;
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(0), i64::new_cell(0)];
/// # let cells = Cells::<i64>::new(&lock, &storage);
/// let err = cells.store(2, 1).unwrap_err();
/// assert_eq!(err, OutOfBounds { index: 2, len: 2 });
/// assert_eq!(err.to_string(), "index 2 is out of bounds for an array of 2 elements");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("index {index} is out of bounds for an array of {len} elements")]
pub struct OutOfBounds {
    /// The index asked for.
    pub index: usize,
    /// The array's length.
    pub len: usize,
}

/// A lock and the atomic cells it protects.
///
/// ```
/// use shmlab::cells::Cells;
/// use shmlab::element::Element;
/// use shmlab::lock::FutexLock;
///
/// let lock = FutexLock::new();
/// let storage = [i64::new_cell(0), i64::new_cell(10)];
/// let cells = Cells::<i64>::new(&lock, &storage);
/// cells.fetch_add(0, 5).unwrap();
/// {
///     let guard = cells.lock().unwrap();
///     // Move 3 from cell 1 to cell 0 as one step for other lock users.
///     guard.set(1, guard.get(1).unwrap() - 3).unwrap();
///     guard.set(0, guard.get(0).unwrap() + 3).unwrap();
/// }
/// assert_eq!((cells.load(0).unwrap(), cells.load(1).unwrap()), (8, 7));
/// assert!(cells.load(2).is_err()); // out of bounds is an error, not a panic
/// ```
#[derive(Debug)]
pub struct Cells<'a, T: Element, L: RawLock = FutexLock> {
    lock: &'a L,
    cells: &'a [T::Atomic],
}

impl<T: Element, L: RawLock> Clone for Cells<'_, T, L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Element, L: RawLock> Copy for Cells<'_, T, L> {}

impl<'a, T: Element, L: RawLock> Cells<'a, T, L> {
    /// A view of `cells` protected by `lock`.
    ///
    /// ```
    /// use shmlab::cells::Cells;
    /// use shmlab::element::Element;
    /// use shmlab::lock::FutexLock;
    ///
    /// let lock = FutexLock::new();
    /// let storage = [u32::new_cell(1), u32::new_cell(2), u32::new_cell(3)];
    /// let cells = Cells::<u32>::new(&lock, &storage);
    /// assert_eq!(cells.load(2)?, 3);
    /// # Ok::<(), shmlab::cells::OutOfBounds>(())
    /// ```
    pub fn new(lock: &'a L, cells: &'a [T::Atomic]) -> Self {
        Cells { lock, cells }
    }

    /// The number of cells.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// assert_eq!(cells.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are no cells.
    ///
    /// ```
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// let none: [<i64 as Element>::Atomic; 0] = [];
    /// assert!(Cells::<i64>::new(&lock, &none).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The lock.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// let _guard = cells.lock().map_err(|e| e.discard_guard())?;
    /// // A futex lock's word records the holder's pid.
    /// assert_eq!(cells.raw_lock().holder(), Some(std::process::id()));
    /// # Ok(()) }
    /// ```
    pub fn raw_lock(&self) -> &'a L {
        self.lock
    }

    fn cell(&self, index: usize) -> Result<&'a T::Atomic, OutOfBounds> {
        self.cells.get(index).ok_or(OutOfBounds {
            index,
            len: self.cells.len(),
        })
    }

    /// Atomically reads cell `index`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// cells.store(1, 42)?;
    /// assert_eq!(cells.load(1)?, 42);
    /// assert!(cells.load(2).is_err());
    /// # Ok(()) }
    /// ```
    pub fn load(&self, index: usize) -> Result<T, OutOfBounds> {
        Ok(T::load(self.cell(index)?, Ordering::Acquire))
    }

    /// Atomically writes cell `index`. A `load` followed by a `store` is
    /// *not* atomic as a whole: that is the lost-update race.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// // Correct alone; with other writers, one may store in between.
    /// let seen = cells.load(0)?;
    /// cells.store(0, seen + 1)?;
    /// assert_eq!(cells.load(0)?, 1);
    /// # Ok(()) }
    /// ```
    pub fn store(&self, index: usize, value: T) -> Result<(), OutOfBounds> {
        T::store(self.cell(index)?, value, Ordering::Release);
        Ok(())
    }

    /// Atomically adds `delta` to cell `index` and returns the old value.
    ///
    /// Four threads adding 100 each never lose an update:
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| {
    ///             for _ in 0..100 {
    ///                 cells.fetch_add(0, 1).unwrap();
    ///             }
    ///         });
    ///     }
    /// });
    /// assert_eq!(cells.load(0)?, 400);
    /// # Ok(()) }
    /// ```
    pub fn fetch_add(&self, index: usize, delta: T) -> Result<T, OutOfBounds>
    where
        T: Integer,
    {
        Ok(T::fetch_add(self.cell(index)?, delta, Ordering::AcqRel))
    }

    fn guard(&self) -> CellsGuard<'a, T, L> {
        CellsGuard {
            cells: *self,
            _not_send: PhantomData,
        }
    }

    fn acquire(
        &self,
        deadline: Deadline,
        timeout: Option<Duration>,
    ) -> Result<CellsGuard<'a, T, L>, LockError<CellsGuard<'a, T, L>>> {
        match self.lock.lock_until(deadline) {
            Ok(Acquired::Clean) => Ok(self.guard()),
            Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(self.guard())),
            Err(e) => Err(LockError::from_raw(e, timeout)),
        }
    }

    /// Waits for the lock. While the guard lives, no other lock user (thread
    /// or process) runs, so several reads and writes through it act as one
    /// step. If the previous holder died holding the lock, the guard comes in
    /// [`LockError::OwnerDied`].
    ///
    /// A load and a store under the lock are one step: four threads adding
    /// 100 each this way lose nothing.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| {
    ///             for _ in 0..100 {
    ///                 let guard = cells.lock().map_err(|e| e.discard_guard()).unwrap();
    ///                 guard.set(0, guard.get(0).unwrap() + 1).unwrap();
    ///             }
    ///         });
    ///     }
    /// });
    /// assert_eq!(cells.load(0)?, 400);
    /// # Ok(()) }
    /// ```
    pub fn lock(&self) -> Result<CellsGuard<'a, T, L>, LockError<CellsGuard<'a, T, L>>> {
        self.acquire(Deadline::never(), None)
    }

    /// Like [`Cells::lock`], but gives up with [`LockError::Timeout`] after
    /// `timeout`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// use shmlab::lock::LockError;
    /// use std::time::Duration;
    ///
    /// let held = cells.lock().map_err(|e| e.discard_guard())?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         // Another thread gives up after 5 ms: the lock is taken.
    ///         let attempt = cells.try_lock_for(Duration::from_millis(5));
    ///         assert!(matches!(attempt, Err(LockError::Timeout(_))));
    ///     });
    /// });
    /// drop(held);
    /// assert!(cells.try_lock_for(Duration::from_millis(5)).is_ok());
    /// # Ok(()) }
    /// ```
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<CellsGuard<'a, T, L>, LockError<CellsGuard<'a, T, L>>> {
        self.acquire(Deadline::after(timeout), Some(timeout))
    }
}

/// Exclusive access to a [`Cells`]; unlocks when dropped.
///
/// Reads and writes through the guard are relaxed atomics: the lock's own
/// acquire and release order them, so they need nothing stronger.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// # use shmlab::cells::Cells;
/// # use shmlab::element::Element;
/// # use shmlab::lock::FutexLock;
/// # let lock = FutexLock::new();
/// # let storage = [i64::new_cell(10), i64::new_cell(0)];
/// # let cells = Cells::<i64>::new(&lock, &storage);
/// let guard = cells.lock().map_err(|e| e.discard_guard())?;
/// guard.set(1, guard.get(0)?)?; // nobody else sees cell 1 before this
/// guard.set(0, 0)?;
/// drop(guard); // unlocks
/// assert_eq!((cells.load(0)?, cells.load(1)?), (0, 10));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CellsGuard<'a, T: Element, L: RawLock = FutexLock> {
    cells: Cells<'a, T, L>,
    // Not Send, like std's MutexGuard: a pthread mutex must be unlocked by
    // the thread that locked it.
    _not_send: PhantomData<*const ()>,
}

impl<T: Element, L: RawLock> CellsGuard<'_, T, L> {
    /// The number of cells.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// let guard = cells.lock().map_err(|e| e.discard_guard())?;
    /// assert_eq!(guard.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are no cells.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// let guard = cells.lock().map_err(|e| e.discard_guard())?;
    /// assert!(!guard.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Reads cell `index`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// let guard = cells.lock().map_err(|e| e.discard_guard())?;
    /// assert_eq!(guard.get(1)?, 0);
    /// assert!(guard.get(2).is_err());
    /// # Ok(()) }
    /// ```
    pub fn get(&self, index: usize) -> Result<T, OutOfBounds> {
        Ok(T::load(self.cells.cell(index)?, Ordering::Relaxed))
    }

    /// Writes cell `index`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::cells::Cells;
    /// # use shmlab::element::Element;
    /// # use shmlab::lock::FutexLock;
    /// # let lock = FutexLock::new();
    /// # let storage = [i64::new_cell(0), i64::new_cell(0)];
    /// # let cells = Cells::<i64>::new(&lock, &storage);
    /// let guard = cells.lock().map_err(|e| e.discard_guard())?;
    /// guard.set(0, 5)?;
    /// assert_eq!(guard.get(0)?, 5);
    /// # Ok(()) }
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<(), OutOfBounds> {
        T::store(self.cells.cell(index)?, value, Ordering::Relaxed);
        Ok(())
    }
}

impl<T: Element, L: RawLock> Drop for CellsGuard<'_, T, L> {
    fn drop(&mut self) {
        // SAFETY: a CellsGuard exists only after a successful lock_until on
        // this lock, and is dropped once.
        unsafe { self.cells.lock.unlock() };
    }
}
