//! Starting, joining and killing worker processes.

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{TASK_ENV, signal_name, task};
use crate::sync::Deadline;

/// Result frame tags, worker to parent.
const TAG_OK: u8 = 0;
const TAG_PANICKED: u8 = 1;
const TAG_PROTOCOL: u8 = 2;
const TAG_UNKNOWN_TASK: u8 = 3;

/// Exit codes of a worker.
const EXIT_PANICKED: i32 = 101;
const EXIT_PROTOCOL: i32 = 3;
/// The parent went away: nobody is left to read the result.
const EXIT_ORPHANED: i32 = 4;

/// Refuse argument or result frames larger than this (1 GiB): a corrupt
/// length must not make us allocate the machine's memory.
const MAX_FRAME: u64 = 1 << 30;

/// Why a worker did not deliver its result.
///
/// Some are found before any process starts:
///
/// ```
/// use shmlab::process::{self, WorkerError};
///
/// fn forgotten(x: u64) -> u64 {
///     x
/// }
///
/// let closure = process::spawn(|x: u64| x + 1, &1);
/// assert!(matches!(closure, Err(WorkerError::NotAFunction { .. })));
/// let err = process::spawn(forgotten, &1).unwrap_err();
/// assert!(err.to_string().contains("add `shmlab::task!(forgotten);`"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A closure or function pointer was passed where a named `fn` is needed.
    #[error(
        "`{name}` is not a named function: a worker process is a fresh copy of the program and can only be told the *name* of a `fn` item (a closure's captured variables, or a function pointer, live in this process's memory). Use a named `fn` and register it with shmlab::task!"
    )]
    NotAFunction {
        /// The closure's type name.
        name: String,
    },
    /// The function was never registered with `shmlab::task!`.
    #[error(
        "`{name}` is not a registered task: add `shmlab::task!({short});` next to the function"
    )]
    Unregistered {
        /// The function's full name.
        name: String,
        /// Its last path segment.
        short: String,
    },
    /// The worker could not be started.
    #[error("could not start a worker process: {0}")]
    Spawn(#[source] io::Error),
    /// Talking to the worker failed.
    #[error("I/O error while talking to worker {pid}: {source}")]
    Io {
        /// The worker.
        pid: u32,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The task panicked.
    #[error("worker {pid} panicked: {message}")]
    Panicked {
        /// The worker.
        pid: u32,
        /// The panic message.
        message: String,
    },
    /// The worker was killed by a signal.
    #[error("worker {pid} was killed by {signal_name}")]
    Killed {
        /// The worker.
        pid: u32,
        /// The signal number.
        signal: i32,
        /// Its name, e.g. `SIGKILL`.
        signal_name: String,
    },
    /// The worker exited without a result.
    #[error(
        "worker {pid} exited with status {code} without a result (does the program's main call shmlab::entry() first?)"
    )]
    Exited {
        /// The worker.
        pid: u32,
        /// Its exit code.
        code: i32,
    },
    /// The arguments or the result could not be encoded or decoded.
    #[error("worker {pid}: {message}")]
    Protocol {
        /// The worker.
        pid: u32,
        /// What went wrong.
        message: String,
    },
    /// `join_timeout` gave up; the worker is still running and can be
    /// joined again or killed.
    #[error("worker {pid} was still running after {waited:?}")]
    Timeout {
        /// The worker.
        pid: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// `spawn` was called in a worker process that never went through
    /// [`entry`]: the program's `main` does not call `shmlab::entry()` first,
    /// and every worker would start another one.
    #[error(
        "this process is a worker, but its main did not call shmlab::entry() first; refusing to start workers recursively"
    )]
    EntryNotCalled,
    /// The worker was already joined.
    #[error("worker {pid} was already joined")]
    AlreadyJoined {
        /// The worker.
        pid: u32,
    },
}

impl From<task::ResolveError> for WorkerError {
    fn from(e: task::ResolveError) -> Self {
        match e {
            task::ResolveError::NotAFunction(name) => WorkerError::NotAFunction {
                name: name.to_string(),
            },
            task::ResolveError::Unregistered(name) => WorkerError::Unregistered {
                name: name.to_string(),
                short: short_name(name),
            },
        }
    }
}

/// A worker that finished normally.
///
/// ```
/// use shmlab::process;
///
/// fn answer(_: ()) -> u32 {
///     42
/// }
/// shmlab::task!(answer);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry();
///     let worker = process::spawn(answer, &())?;
///     let pid = worker.pid();
///     let exited = worker.join_exited()?;
///     assert_eq!((exited.pid, exited.value), (pid, 42));
///     assert!(exited.status.success());
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Exited<R> {
    /// Its process id.
    pub pid: u32,
    /// Its exit status (success).
    pub status: ExitStatus,
    /// What the task returned.
    pub value: R,
    /// Time from spawn to the end of the join.
    pub elapsed: Duration,
}

/// A running worker process whose task returns `R`.
///
/// Join it to get the result. Dropping a worker that was not joined kills and
/// reaps it, so no worker outlives its handle.
///
/// ```
/// use std::time::Duration;
/// use shmlab::process::{self, pid_alive};
///
/// fn nap(ms: u64) {
///     std::thread::sleep(Duration::from_millis(ms));
/// }
/// shmlab::task!(nap);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry();
///     let worker = process::spawn(nap, &60_000)?;
///     let pid = worker.pid();
///     drop(worker); // killed and reaped, not left running for a minute
///     assert!(!pid_alive(pid));
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Worker<R> {
    child: Child,
    pid: u32,
    task: &'static str,
    channel: UnixStream,
    pidfd: Option<OwnedFd>,
    received: Vec<u8>,
    channel_closed: bool,
    finished: bool,
    started: Instant,
    _result: PhantomData<fn() -> R>,
}

fn short_name(name: &str) -> String {
    name.rsplit("::").next().unwrap_or(name).to_string()
}

fn write_frame(out: &mut impl Write, tag: Option<u8>, payload: &[u8]) -> io::Result<()> {
    if let Some(tag) = tag {
        out.write_all(&[tag])?;
    }
    out.write_all(&(payload.len() as u64).to_le_bytes())?;
    out.write_all(payload)?;
    out.flush()
}

/// Starts a worker process that runs `task(args)`.
///
/// `task` must be a plain `fn` registered with [`task!`](crate::task): a
/// closure or a function pointer is refused with
/// [`WorkerError::NotAFunction`] (a closure that captures non-`Copy` data
/// does not even compile here), and an unregistered function with
/// [`WorkerError::Unregistered`].
///
/// ```
/// use shmlab::process;
///
/// fn sum(numbers: Vec<u64>) -> u64 {
///     numbers.iter().sum()
/// }
/// shmlab::task!(sum);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // a worker runs `sum` here and exits
///     let worker = process::spawn(sum, &vec![1, 2, 3])?;
///     assert_eq!(worker.join()?, 6);
///     Ok(())
/// }
/// ```
pub fn spawn<F, A, R>(task: F, args: &A) -> Result<Worker<R>, WorkerError>
where
    F: Fn(A) -> R + Copy + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    if std::env::var_os(TASK_ENV).is_some() {
        // `entry()` removes the variable in a real worker; still set means
        // main skipped it, and spawning would recurse without end.
        return Err(WorkerError::EntryNotCalled);
    }
    let name = match task::resolve(&task) {
        Ok((_, name)) => name,
        Err(e) => return Err(e.into()),
    };
    let payload = serde_json::to_vec(args).map_err(|e| WorkerError::Protocol {
        pid: 0,
        message: format!("could not encode the task's arguments: {e}"),
    })?;
    let exe = std::env::current_exe().map_err(WorkerError::Spawn)?;
    let (parent_end, child_end) = UnixStream::pair().map_err(WorkerError::Spawn)?;
    let child = Command::new(exe)
        .env(TASK_ENV, name)
        .stdin(Stdio::from(OwnedFd::from(child_end)))
        .spawn()
        .map_err(WorkerError::Spawn)?;
    let pid = child.id();
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // it touches no memory of ours.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative return is a fresh fd that nothing else owns.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) });
    let mut worker = Worker {
        child,
        pid,
        task: name,
        channel: parent_end,
        pidfd,
        received: Vec::new(),
        channel_closed: false,
        finished: false,
        started: Instant::now(),
        _result: PhantomData,
    };
    // If the worker died before reading its arguments this fails with
    // EPIPE; `join` then reports how it died, which is the useful error.
    let _ = write_frame(&mut worker.channel, None, &payload);
    worker
        .channel
        .set_nonblocking(true)
        .map_err(|source| WorkerError::Io { pid, source })?;
    Ok(worker)
}

impl<R: DeserializeOwned> Worker<R> {
    /// The worker's process id.
    ///
    /// ```
    /// use shmlab::process;
    ///
    /// fn my_pid(_: ()) -> u32 {
    ///     std::process::id()
    /// }
    /// shmlab::task!(my_pid);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let worker = process::spawn(my_pid, &())?;
    ///     let pid = worker.pid();
    ///     assert_ne!(pid, std::process::id());
    ///     assert_eq!(worker.join()?, pid); // the worker agrees
    ///     Ok(())
    /// }
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The task's full name.
    ///
    /// ```
    /// use shmlab::process;
    ///
    /// fn noop(_: ()) {}
    /// shmlab::task!(noop);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let worker = process::spawn(noop, &())?;
    ///     assert_eq!(worker.task(), std::any::type_name_of_val(&noop));
    ///     worker.join()?;
    ///     Ok(())
    /// }
    /// ```
    pub fn task(&self) -> &'static str {
        self.task
    }

    /// Sends SIGKILL. A later join reports [`WorkerError::Killed`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::{self, WorkerError};
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let mut worker = process::spawn(nap, &60_000)?;
    ///     worker.kill()?;
    ///     let err = worker.join().unwrap_err();
    ///     assert!(matches!(err, WorkerError::Killed { signal: 9, .. }));
    ///     assert!(err.to_string().ends_with("was killed by SIGKILL"));
    ///     Ok(())
    /// }
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.child.kill()
    }

    /// Whether the process has ended (it is then reaped, and a join returns
    /// at once).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shmlab::process;
    ///
    /// fn noop(_: ()) {}
    /// shmlab::task!(noop);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let mut worker = process::spawn(noop, &())?;
    ///     let give_up = Instant::now() + Duration::from_secs(5);
    ///     while !worker.has_exited() && Instant::now() < give_up {
    ///         std::thread::sleep(Duration::from_millis(1));
    ///     }
    ///     assert!(worker.has_exited());
    ///     worker.join_timeout(Duration::ZERO)?; // ended: no waiting
    ///     Ok(())
    /// }
    /// ```
    pub fn has_exited(&mut self) -> bool {
        self.finished || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the worker to finish and returns the task's result.
    ///
    /// ```
    /// use shmlab::process::{self, WorkerError};
    ///
    /// fn checked_half(x: u64) -> u64 {
    ///     assert!(x % 2 == 0, "{x} is odd");
    ///     x / 2
    /// }
    /// shmlab::task!(checked_half);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     assert_eq!(process::spawn(checked_half, &10)?.join()?, 5);
    ///     let odd = process::spawn(checked_half, &7)?.join();
    ///     let Err(WorkerError::Panicked { message, .. }) = odd else { panic!("{odd:?}") };
    ///     assert_eq!(message, "7 is odd");
    ///     Ok(())
    /// }
    /// ```
    pub fn join(mut self) -> Result<R, WorkerError> {
        self.wait(Deadline::never()).map(|exited| exited.value)
    }

    /// Waits for the worker and returns its pid, exit status and result.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process;
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let exited = process::spawn(nap, &5)?.join_exited()?;
    ///     assert_eq!(exited.status.code(), Some(0));
    ///     assert!(exited.elapsed >= Duration::from_millis(5)); // start-up included
    ///     Ok(())
    /// }
    /// ```
    pub fn join_exited(mut self) -> Result<Exited<R>, WorkerError> {
        self.wait(Deadline::never())
    }

    /// Waits at most `timeout`. On [`WorkerError::Timeout`] the worker keeps
    /// running and this handle stays usable (join again, or kill it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmlab::process::{self, WorkerError};
    ///
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms));
    /// }
    /// shmlab::task!(nap);
    ///
    /// fn main() -> anyhow::Result<()> {
    ///     shmlab::entry();
    ///     let mut worker = process::spawn(nap, &60_000)?;
    ///     let early = worker.join_timeout(Duration::from_millis(10));
    ///     assert!(matches!(early, Err(WorkerError::Timeout { .. })));
    ///     assert!(!worker.has_exited()); // still napping; dropping it kills it
    ///     Ok(())
    /// }
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Exited<R>, WorkerError> {
        match self.wait(Deadline::after(timeout)) {
            Err(WorkerError::Timeout { pid, .. }) => Err(WorkerError::Timeout {
                pid,
                waited: timeout,
            }),
            other => other,
        }
    }

    fn wait(&mut self, deadline: Deadline) -> Result<Exited<R>, WorkerError> {
        let pid = self.pid;
        if self.finished {
            return Err(WorkerError::AlreadyJoined { pid });
        }
        let io_err = |source| WorkerError::Io { pid, source };
        loop {
            self.read_available().map_err(io_err)?;
            if let Some(status) = self.child.try_wait().map_err(io_err)? {
                // Dead: whatever it wrote is in the socket; read to the end.
                while !self.channel_closed {
                    self.read_available().map_err(io_err)?;
                    if !self.channel_closed {
                        self.poll(None, Some(Duration::from_millis(10)))
                            .map_err(io_err)?;
                    }
                }
                self.finished = true;
                return self.decode(status);
            }
            let remaining = deadline.remaining();
            if remaining == Some(Duration::ZERO) {
                return Err(WorkerError::Timeout {
                    pid,
                    waited: Duration::ZERO,
                });
            }
            let pidfd = self.pidfd.as_ref().map(|fd| fd.as_raw_fd());
            // Without a pidfd (old kernels), poll the socket with a short
            // timeout and re-check the process.
            let cap = if pidfd.is_some() {
                remaining
            } else {
                Some(
                    remaining
                        .unwrap_or(Duration::from_millis(5))
                        .min(Duration::from_millis(5)),
                )
            };
            self.poll(pidfd, cap).map_err(io_err)?;
        }
    }

    /// Sleeps until the socket is readable, the process exits, or `timeout`.
    fn poll(&self, pidfd: Option<RawFd>, timeout: Option<Duration>) -> io::Result<()> {
        let mut fds = Vec::with_capacity(2);
        if !self.channel_closed {
            fds.push(libc::pollfd {
                fd: self.channel.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(fd) = pidfd {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ms = timeout.map_or(-1, |t| {
            t.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
        });
        // SAFETY: `fds` is a live, correctly sized array of pollfd for the
        // duration of the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Reads whatever the worker has written so far, without blocking.
    fn read_available(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 64 * 1024];
        while !self.channel_closed {
            match self.channel.read(&mut buf) {
                Ok(0) => self.channel_closed = true,
                Ok(n) => {
                    if self.received.len() as u64 + n as u64 > MAX_FRAME + 9 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "result larger than 1 GiB",
                        ));
                    }
                    self.received.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The worker died mid-write: treat as the end of its output.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.channel_closed = true,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Turns the exit status and the received frame into the outcome.
    fn decode(&mut self, status: ExitStatus) -> Result<Exited<R>, WorkerError> {
        let pid = self.pid;
        if let Some(signal) = status.signal() {
            return Err(WorkerError::Killed {
                pid,
                signal,
                signal_name: signal_name(signal),
            });
        }
        let frame = parse_frame(&self.received);
        match frame {
            Some((TAG_OK, payload)) if status.success() => {
                let value = serde_json::from_slice(payload).map_err(|e| WorkerError::Protocol {
                    pid,
                    message: format!("could not decode the task's result: {e}"),
                })?;
                Ok(Exited {
                    pid,
                    status,
                    value,
                    elapsed: self.started.elapsed(),
                })
            }
            Some((TAG_PANICKED, payload)) => Err(WorkerError::Panicked {
                pid,
                message: String::from_utf8_lossy(payload).into_owned(),
            }),
            Some((TAG_PROTOCOL, payload)) => Err(WorkerError::Protocol {
                pid,
                message: String::from_utf8_lossy(payload).into_owned(),
            }),
            Some((TAG_UNKNOWN_TASK, _)) => Err(WorkerError::Unregistered {
                name: self.task.to_string(),
                short: short_name(self.task),
            }),
            _ => Err(WorkerError::Exited {
                pid,
                code: status.code().unwrap_or(-1),
            }),
        }
    }
}

/// Splits `[tag][len: u64 LE][payload]`; `None` if incomplete.
fn parse_frame(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let payload = rest.get(8..)?.get(..usize::try_from(len).ok()?)?;
    Some((tag, payload))
}

impl<R> Drop for Worker<R> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The first call in every shmlab program's `main`.
///
/// In a worker process (started by [`spawn`]) it runs the task and exits the
/// process; it never returns there. In any other process it installs the
/// Ctrl-C handler that removes this process's segments and workers, and
/// returns.
///
/// ```
/// use shmlab::process;
///
/// fn parent(_: ()) -> u32 {
///     std::os::unix::process::parent_id()
/// }
/// shmlab::task!(parent);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // the worker runs `parent` in here; this process goes on
///     let worker = process::spawn(parent, &())?;
///     assert_eq!(worker.join()?, std::process::id());
///     Ok(())
/// }
/// ```
pub fn entry() {
    match std::env::var(TASK_ENV) {
        Ok(name) => {
            // SAFETY: `entry` is the first call in `main`, before the program
            // starts any thread, so nothing reads the environment concurrently.
            // Removing the variable keeps programs this worker starts (its
            // own workers included) from believing they are this worker.
            unsafe { std::env::remove_var(TASK_ENV) };
            worker_main(&name)
        }
        Err(_) => crate::cleanup::install_interrupt_handler(),
    }
}

/// Takes over the control socket on fd 0: moves it to a close-on-exec fd and
/// puts /dev/null in its place, so programs this worker starts do not
/// inherit it.
fn take_control_socket() -> io::Result<UnixStream> {
    // SAFETY: fstat on fd 0 writes into our stat buffer only.
    let is_socket = unsafe {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        libc::fstat(0, st.as_mut_ptr()) == 0
            && (st.assume_init().st_mode & libc::S_IFMT) == libc::S_IFSOCK
    };
    if !is_socket {
        return Err(io::Error::other(format!(
            "{TASK_ENV} is set, but this process was not started by shmlab (its standard input is not a control socket)"
        )));
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd (>= 3) that we then own; the
    // open/dup2 pair replaces fd 0 with /dev/null and closes the temporary.
    unsafe {
        let fd = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
        Ok(UnixStream::from_raw_fd(fd))
    }
}

fn read_args(channel: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 8];
    channel.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "arguments larger than 1 GiB",
        ));
    }
    let mut payload = vec![0u8; len as usize];
    channel.read_exact(&mut payload)?;
    Ok(payload)
}

/// Exits as soon as the parent's end of the socket closes: a worker never
/// outlives its parent, even one killed with SIGKILL.
fn watch_parent(mut channel: UnixStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            match channel.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // Segments this worker created would outlive it: remove them first.
        crate::cleanup::remove_owned_segments();
        // SAFETY: _exit ends the process at once; no Rust state is used after.
        unsafe { libc::_exit(EXIT_ORPHANED) }
    });
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

fn worker_main(name: &str) -> ! {
    let mut channel = match take_control_socket() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shmlab worker: {e}");
            std::process::exit(EXIT_PROTOCOL);
        }
    };
    crate::cleanup::install_interrupt_handler();
    // One short line instead of the default report (and its backtrace): the
    // parent receives the message and reports the failure itself.
    let task_name = name.to_string();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("shmlab worker {} ({task_name}): {info}", std::process::id());
    }));
    let args = match read_args(&mut channel) {
        Ok(a) => a,
        // The parent went away before sending the arguments.
        Err(_) => std::process::exit(EXIT_ORPHANED),
    };
    if let Ok(clone) = channel.try_clone() {
        watch_parent(clone);
    }
    let (tag, payload, code) = match task::find(name) {
        None => (TAG_UNKNOWN_TASK, name.as_bytes().to_vec(), EXIT_PROTOCOL),
        Some(entry) => match std::panic::catch_unwind(|| (entry.run)(&args)) {
            Ok(Ok(result)) => (TAG_OK, result, 0),
            Ok(Err(message)) => (TAG_PROTOCOL, message.into_bytes(), EXIT_PROTOCOL),
            Err(panic) => (
                TAG_PANICKED,
                panic_message(&*panic).into_bytes(),
                EXIT_PANICKED,
            ),
        },
    };
    let _ = channel.set_nonblocking(false);
    if write_frame(&mut channel, Some(tag), &payload).is_err() {
        std::process::exit(EXIT_ORPHANED);
    }
    std::process::exit(code)
}
