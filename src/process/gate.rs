//! A start gate: workers wait at it until all have arrived, then run
//! together. Without it the first worker could finish its loop before the
//! second has even started, and no race would ever show.

use std::time::Duration;

use super::{Worker, WorkerError};
use crate::shm::{SharedArray, ShmError};
use crate::sync::{self, Deadline, Ordering};

const ARRIVED: usize = 0;
const OPEN: usize = 1;
/// How often a sleeper re-checks its condition (a futex wake can be missed
/// only if the word changed in between, which the loop re-reads anyway).
const NAP: Duration = Duration::from_millis(10);
/// How long a worker at the gate spins before it sleeps.
const SPIN: Duration = Duration::from_millis(200);

/// Why a worker did not get through the gate.
///
/// ```
/// use std::time::Duration;
/// use shmlab::process::{GateError, StartGate};
///
/// let gate = StartGate::create()?; // nobody opens it
/// let waited = gate.arrive_and_wait(Duration::from_millis(5));
/// assert!(matches!(waited, Err(GateError::Timeout(_))));
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The gate segment could not be opened.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// The parent did not open the gate in time.
    #[error("the start gate did not open within {0:?}")]
    Timeout(Duration),
}

/// Two `u32` cells in shared memory: how many workers arrived, and whether
/// the gate is open.
///
/// ```
/// use shmlab::process::StartGate;
/// let gate = StartGate::create().unwrap();
/// // Workers: StartGate::open(name)?.arrive_and_wait(timeout)?
/// // Parent:  gate.wait_for(&mut workers, timeout)?; gate.open_now();
/// assert_eq!(gate.arrived(), 0);
/// ```
#[derive(Debug)]
pub struct StartGate {
    cells: SharedArray<u32>,
}

impl StartGate {
    /// Creates a closed gate.
    ///
    /// ```
    /// let gate = shmlab::process::StartGate::create()?;
    /// assert_eq!(gate.arrived(), 0);
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn create() -> Result<Self, ShmError> {
        Ok(StartGate {
            cells: SharedArray::create(2, 0)?,
        })
    }

    /// Opens the gate segment another process created.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::StartGate;
    ///
    /// let gate = StartGate::create()?;
    /// let same = StartGate::open(gate.name())?; // what a worker does with the name
    /// gate.open_now();
    /// same.arrive_and_wait(Duration::from_secs(5))?;
    /// assert_eq!(gate.arrived(), 1); // one gate, seen through two mappings
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, ShmError> {
        let cells = SharedArray::<u32>::open(name)?;
        if cells.len() != 2 {
            return Err(ShmError::KindMismatch {
                name: cells.name().to_string(),
                expected: "a start gate (an array of 2 u32)",
                found: format!("an array of {} u32", cells.len()),
            });
        }
        Ok(StartGate { cells })
    }

    /// The segment name, to hand to workers.
    ///
    /// ```
    /// use std::path::Path;
    ///
    /// let gate = shmlab::process::StartGate::create()?;
    /// assert!(Path::new("/dev/shm").join(gate.name()).exists());
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.cells.name()
    }

    /// How many workers have arrived.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::StartGate;
    ///
    /// let gate = StartGate::create()?;
    /// gate.open_now(); // arrivals at an open gate pass at once
    /// for _ in 0..3 {
    ///     gate.arrive_and_wait(Duration::from_secs(5))?;
    /// }
    /// assert_eq!(gate.arrived(), 3);
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn arrived(&self) -> u32 {
        self.cell(ARRIVED).load(Ordering::Acquire)
    }

    fn cell(&self, index: usize) -> &sync::AtomicU32 {
        &self.cells.segment().cells::<u32>()[index]
    }

    /// Worker side: counts this worker in, then sleeps until the gate opens.
    ///
    /// Threads share the gate as processes do:
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::StartGate;
    ///
    /// let gate = StartGate::create()?;
    /// std::thread::scope(|s| {
    ///     let worker = s.spawn(|| gate.arrive_and_wait(Duration::from_secs(5)));
    ///     assert!(gate.wait_until(1, Duration::from_secs(5), || false));
    ///     gate.open_now();
    ///     worker.join().unwrap()
    /// })?;
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn arrive_and_wait(&self, timeout: Duration) -> Result<(), GateError> {
        let arrived = self.cell(ARRIVED);
        arrived.fetch_add(1, Ordering::AcqRel);
        sync::futex_wake(arrived, u32::MAX);
        let open = self.cell(OPEN);
        let deadline = Deadline::after(timeout);
        // Spin (yielding the CPU) for the first moments: a sleeper woken by
        // the futex starts tens of microseconds after a spinner, long enough
        // for a short racy loop in another worker to finish unraced. Then
        // sleep, so a long wait costs nothing.
        let spin_until = Deadline::after(SPIN);
        while open.load(Ordering::Acquire) == 0 {
            if deadline.expired() {
                return Err(GateError::Timeout(timeout));
            }
            if spin_until.expired() {
                sync::futex_wait(open, 0, Some(NAP));
            } else {
                std::thread::yield_now();
            }
        }
        Ok(())
    }

    /// Parent side: waits until every worker in `workers` has arrived. A
    /// worker that dies first is reported instead of waited for.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::{self, StartGate};
    ///
    /// fn racer(gate: String) -> u64 {
    ///     let gate = StartGate::open(&gate).unwrap();
    ///     gate.arrive_and_wait(Duration::from_secs(5)).unwrap();
    ///     shmlab::process::monotonic_ns() // when it got through
    /// }
    /// shmlab::task!(racer);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let gate = StartGate::create()?;
    ///     let mut workers = [process::spawn(racer, &gate.name().to_string())?];
    ///     gate.wait_for(&mut workers, Duration::from_secs(5))?;
    ///     let opened = gate.open_now();
    ///     let [worker] = workers;
    ///     assert!(worker.join()? >= opened);
    ///     Ok(())
    /// }
    /// ```
    pub fn wait_for<R: serde::de::DeserializeOwned>(
        &self,
        workers: &mut [Worker<R>],
        timeout: Duration,
    ) -> Result<(), WorkerError> {
        let arrived = self.cell(ARRIVED);
        let deadline = Deadline::after(timeout);
        loop {
            let now = arrived.load(Ordering::Acquire);
            if now as usize >= workers.len() {
                return Ok(());
            }
            if let Some(dead) = workers.iter_mut().position(|w| w.has_exited()) {
                let pid = workers[dead].pid();
                // Joining a finished worker returns at once and says why.
                return match workers[dead].join_timeout(Duration::ZERO) {
                    Err(e) => Err(e),
                    Ok(_) => Err(WorkerError::Exited { pid, code: 0 }),
                };
            }
            if deadline.expired() {
                return Err(WorkerError::Timeout {
                    pid: workers.first().map_or(0, |w| w.pid()),
                    waited: timeout,
                });
            }
            sync::futex_wait(arrived, now, Some(NAP));
        }
    }

    /// Parent side, for workers it holds no handle to (pool tasks): waits
    /// until `expected` workers have arrived; gives up (false) after
    /// `timeout` or as soon as `gave_up()` says the workers failed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::StartGate;
    ///
    /// let gate = StartGate::create()?;
    /// // Nobody comes, and `gave_up` says so at once: no need to wait 5 s.
    /// assert!(!gate.wait_until(2, Duration::from_secs(5), || true));
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn wait_until(
        &self,
        expected: usize,
        timeout: Duration,
        mut gave_up: impl FnMut() -> bool,
    ) -> bool {
        let arrived = self.cell(ARRIVED);
        let deadline = Deadline::after(timeout);
        loop {
            let now = arrived.load(Ordering::Acquire);
            if now as usize >= expected {
                return true;
            }
            if gave_up() || deadline.expired() {
                return false;
            }
            sync::futex_wait(arrived, now, Some(NAP));
        }
    }

    /// Opens the gate and wakes every waiting worker. Returns the time it
    /// opened, in [`super::monotonic_ns`] nanoseconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::{StartGate, monotonic_ns};
    ///
    /// let gate = StartGate::create()?;
    /// let before = monotonic_ns();
    /// assert!(gate.open_now() >= before);
    /// gate.arrive_and_wait(Duration::ZERO)?; // open: no wait at all
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn open_now(&self) -> u64 {
        let at = super::monotonic_ns();
        let open = self.cell(OPEN);
        open.store(1, Ordering::Release);
        sync::futex_wake(open, u32::MAX);
        at
    }
}
