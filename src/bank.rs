//! Transfers between accounts: the invariant lesson of lab 05.
//!
//! A transfer moves money from one cell to another. The total of all cells
//! is an invariant — *if* each transfer is one step for everyone else.
//! [`transfer_unlocked`] does it as four separate atomic steps and another
//! worker's transfer can interleave, so money appears or vanishes;
//! [`transfer_locked`] does the same four steps under the array's lock.
//! Like [`crate::counting`], these functions run unchanged under loom.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::SharedArray;
//! use shmlab::bank::transfer_locked;
//!
//! // Two accounts; one thread pays 0 → 1, the other 1 → 0, 500 times each.
//! let accounts = SharedArray::<i64>::create(2, 100)?;
//! let cells = accounts.cells();
//! std::thread::scope(|s| {
//!     let pay = |from, to| {
//!         s.spawn(move || (0..500).try_for_each(|_| transfer_locked(&cells, from, to, 1)))
//!     };
//!     let workers = [pay(0, 1), pay(1, 0)];
//!     workers.into_iter().try_for_each(|w| w.join().expect("no panic"))
//! })?;
//! // Each transfer was one step for the other thread: the payments cancel
//! // out exactly and no money appeared or vanished.
//! assert_eq!(accounts.to_vec(), [100, 100]);
//! # Ok(()) }
//! ```

use crate::cells::{Cells, OutOfBounds};
use crate::lock::{LockError, RawLock};

/// Why a transfer failed.
///
/// ```
/// use shmlab::SharedArray;
/// use shmlab::bank::{TransferError, transfer_locked};
///
/// # fn main() -> anyhow::Result<()> {
/// let accounts = SharedArray::<i64>::create(2, 100)?;
/// let to_nowhere = transfer_locked(&accounts.cells(), 0, 7, 10);
/// assert!(matches!(to_nowhere, Err(TransferError::OutOfBounds(_))));
/// assert_eq!(accounts.to_vec(), [100, 100]); // nothing moved
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// An account number past the end.
    #[error(transparent)]
    OutOfBounds(#[from] OutOfBounds),
    /// The lock failed (or its previous holder died).
    #[error(transparent)]
    Lock(#[from] LockError<()>),
}

/// Moves `amount` from `from` to `to` with four separate atomic steps.
/// Another transfer can run between them: the total is not kept.
///
/// Alone it moves the money right; lab 05 runs it in several processes.
///
/// ```
/// use shmlab::SharedArray;
/// use shmlab::bank::transfer_unlocked;
///
/// # fn main() -> anyhow::Result<()> {
/// let accounts = SharedArray::<i64>::create(2, 100)?;
/// transfer_unlocked(&accounts.cells(), 0, 1, 30)?;
/// assert_eq!(accounts.to_vec(), [70, 130]);
/// # Ok(()) }
/// ```
pub fn transfer_unlocked<L: RawLock>(
    accounts: &Cells<'_, i64, L>,
    from: usize,
    to: usize,
    amount: i64,
) -> Result<(), TransferError> {
    let source = accounts.load(from)?;
    let target = accounts.load(to)?;
    accounts.store(from, source - amount)?;
    accounts.store(to, target + amount)?;
    Ok(())
}

/// The same four steps under the lock: the total is kept.
///
/// Four threads pass money round a ring of four accounts at once:
///
/// ```
/// use shmlab::SharedArray;
/// use shmlab::bank::transfer_locked;
///
/// # fn main() -> anyhow::Result<()> {
/// let accounts = SharedArray::<i64>::create(4, 100)?;
/// let cells = accounts.cells();
/// std::thread::scope(|s| {
///     for from in 0..4 {
///         s.spawn(move || (0..100).try_for_each(|_| transfer_locked(&cells, from, (from + 1) % 4, 1)));
///     }
/// });
/// assert_eq!(accounts.to_vec().iter().sum::<i64>(), 400);
/// # Ok(()) }
/// ```
pub fn transfer_locked<L: RawLock>(
    accounts: &Cells<'_, i64, L>,
    from: usize,
    to: usize,
    amount: i64,
) -> Result<(), TransferError> {
    let guard = accounts.lock().map_err(LockError::discard_guard)?;
    let source = guard.get(from)?;
    let target = guard.get(to)?;
    guard.set(from, source - amount)?;
    guard.set(to, target + amount)?;
    Ok(())
}
