//! Dining philosophers: deadlock across processes, detected, explained and
//! broken (lab09).
//!
//! N philosophers sit at a round table with N forks; philosopher `i` needs
//! fork `i` (left) and fork `i + 1 mod N` (right) to eat. The forks are
//! locks in a shared segment ([`SharedTable`]) and the philosophers are
//! worker processes — or, in the thread variant, threads with parking_lot
//! mutexes as forks ([`LocalTable`]).
//!
//! - [`dine`]: the four [`Strategy`]s — `naive` (deadlocks), `ordered`,
//!   `waiter` and `timeout` (each breaks one of Coffman's conditions) — and
//!   the meal loop. The same code runs in processes, in threads and under
//!   loom.
//! - [`graph`]: the watchdog's snapshot of the table, the wait-for graph and
//!   its cycle, reported edge by edge as PostgreSQL reports a deadlock.
//! - [`run_dinner`]: starts the philosophers, watches the table, resolves a
//!   deadlock and returns a [`Dinner`] with meals, waits and the cycle.
//!
//! ```
//! use shmlab::philosophers::{LocalTable, NoPace, Strategy, Waits};
//! use std::time::Duration;
//!
//! // One philosopher thread after another at a table of 3: no contention.
//! let local = LocalTable::<shmlab::lock::FutexLock>::new(3);
//! let table = local.table();
//! let waits = Waits { limit: Some(Duration::from_secs(1)), patience: Duration::from_millis(1), together: false };
//! for me in 0..3 {
//!     table.dine(me, 0, Strategy::Ordered, Some(2), &waits, &mut NoPace).unwrap();
//! }
//! assert!(table.seats().iter().all(|s| s.meals() == 2));
//! ```

pub mod dine;
pub mod graph;
#[cfg(not(loom))]
mod run;
pub mod table;

pub use dine::{LeaveError, NoPace, Pace, Strategy, Waits};
#[cfg(not(loom))]
pub use run::{Dinner, DinnerConfig, ParkingLotView, Resolution, run_dinner};
#[cfg(not(loom))]
pub use table::SharedTable;
pub use table::{
    Fork, ForkLock, LocalTable, MAX_PHILOSOPHERS, MIN_PHILOSOPHERS, Seat, SeatState, Table,
};

/// Why a dinner could not be held.
///
/// ```
/// use shmlab::philosophers::{DineError, SharedTable};
///
/// let err = SharedTable::create(1).unwrap_err();
/// assert!(matches!(err, DineError::Philosophers(1)));
/// assert!(err.to_string().contains("one philosopher has one fork and can never eat"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum DineError {
    /// Fewer than 2 or more than 64 philosophers.
    #[error(
        "{0} philosophers: a table seats {MIN_PHILOSOPHERS} to {MAX_PHILOSOPHERS} (one philosopher has one fork and can never eat)"
    )]
    Philosophers(usize),
    /// The table's segment could not be created or opened.
    #[cfg(not(loom))]
    #[error(transparent)]
    Shm(#[from] crate::shm::ShmError),
    /// The segment is not a table of a possible shape.
    #[error("the table's segment is malformed (wrong size or philosopher count)")]
    Malformed,
    /// A philosopher process could not be started or joined.
    #[cfg(not(loom))]
    #[error(transparent)]
    Worker(#[from] crate::process::WorkerError),
    /// A philosopher thread could not be started.
    #[error("could not start a philosopher thread: {0}")]
    Thread(String),
}

/// Checks a philosopher count.
///
/// ```
/// use shmlab::philosophers::check_philosophers;
///
/// assert!(check_philosophers(5).is_ok());
/// assert!(check_philosophers(1).is_err());
/// assert!(check_philosophers(65).is_err());
/// ```
pub fn check_philosophers(n: usize) -> Result<(), DineError> {
    if (MIN_PHILOSOPHERS..=MAX_PHILOSOPHERS).contains(&n) {
        Ok(())
    } else {
        Err(DineError::Philosophers(n))
    }
}
