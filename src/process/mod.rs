//! Worker processes: the "spawn" start method of Python's `multiprocessing`.
//!
//! A worker is this same executable started again with an environment
//! variable naming its task. The program's `main` begins with
//! [`crate::entry()`]: in a worker that call runs the task and exits, in the
//! parent it returns at once. Tasks are plain functions registered with
//! [`task!`](crate::task); arguments and results cross the process boundary
//! as JSON over a Unix socket that is the worker's standard input.
//!
//! ```
//! use shmlab::process;
//!
//! fn greet(name: String) -> String {
//!     format!("hello {name} from pid {}", std::process::id())
//! }
//! shmlab::task!(greet);
//!
//! fn main() {
//!     shmlab::entry();
//!     let worker = process::spawn(greet, &"lab".to_string()).unwrap();
//!     let pid = worker.pid();
//!     assert_eq!(worker.join().unwrap(), format!("hello lab from pid {pid}"));
//! }
//! ```
//!
//! # Faults
//!
//! A task that panics, a worker killed by a signal, a worker that exits
//! without answering: each is a [`WorkerError`] naming what happened (the
//! panic message, the signal), never a hang. If the parent dies, its
//! workers notice that their socket closed and exit; a dropped [`Worker`]
//! is killed and reaped.
//!
//! # Workers in integration tests
//!
//! libtest's generated `main` does not call [`crate::entry()`], so a test
//! binary that starts workers uses `harness = false` and a `main` of its own
//! (shmlab's tests use libtest-mimic, which keeps the usual test output):
//!
//! ```toml
//! [[test]]
//! name = "workers"
//! harness = false
//! ```
//!
//! ```ignore
//! fn main() {
//!     shmlab::entry(); // workers become their task here
//!     let args = libtest_mimic::Arguments::from_args();
//!     libtest_mimic::run(&args, tests()).exit();
//! }
//! ```

mod gate;
mod task;
mod worker;

pub use gate::{GateError, StartGate};
pub(crate) use task::resolve;
pub use task::{TASKS, TaskEntry, TaskFn, run_task};
pub(crate) use worker::panic_message;
pub use worker::{Exited, Worker, WorkerError, entry, spawn};

/// The environment variable that makes a process a worker; its value names
/// the task.
///
/// ```
/// use shmlab::process::{self, TASK_ENV};
///
/// /// The task this process was started for (from `/proc/self/environ`, the
/// /// environment it started with), and whether TASK_ENV is still set.
/// fn started_for(_: ()) -> (Option<String>, bool) {
///     let environ = std::fs::read("/proc/self/environ").expect("Linux has /proc");
///     let prefix = format!("{TASK_ENV}=");
///     let task = environ.split(|&b| b == 0).find_map(|var| var.strip_prefix(prefix.as_bytes()));
///     let task = task.map(|name| String::from_utf8_lossy(name).into_owned());
///     (task, std::env::var_os(TASK_ENV).is_some())
/// }
/// shmlab::task!(started_for);
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // a worker reads TASK_ENV here, removes it and runs that task
///     assert!(std::env::var_os(TASK_ENV).is_none()); // this process is no worker
///     let worker = process::spawn(started_for, &())?;
///     let task = worker.task().to_string();
///     // Started with TASK_ENV=<the task>; gone by the time the task runs, so
///     // programs the worker starts are no workers.
///     assert_eq!(worker.join()?, (Some(task), false));
///     Ok(())
/// }
/// ```
pub const TASK_ENV: &str = "SHMLAB_WORKER_TASK";

/// Whether process `pid` exists and is not a zombie.
///
/// A zombie (exited or killed, not yet reaped by its parent) is dead for
/// every purpose that matters here: it will never release a lock again.
/// When in doubt — `/proc` hidden or unreadable — the answer is "alive":
/// declaring a live lock holder dead would break mutual exclusion.
///
/// ```
/// use std::time::{Duration, Instant};
/// use shmlab::process::pid_alive;
///
/// assert!(pid_alive(std::process::id()));
/// let mut child = std::process::Command::new("true").spawn()?;
/// let pid = child.id();
/// // Exited but not yet reaped by `wait`: a zombie, which counts as dead.
/// let give_up = Instant::now() + Duration::from_secs(5);
/// while pid_alive(pid) && Instant::now() < give_up {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// assert!(!pid_alive(pid));
/// child.wait()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z') | Some('X')
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Gone between the two checks — or /proc is not mounted.
            // SAFETY: as above.
            let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
            exists || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
        }
        Err(_) => true,
    }
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`); `None` if it does not exist or `/proc` says nothing.
///
/// A pid names a process only until it is reused (here `pid_max` is 32768,
/// so pids wrap within minutes under a test suite); the pair (pid, start)
/// names one process for good. Segments record both, so that cleanup does
/// not take a stale segment for a live one when its creator's pid came back.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from the last ')'. Field 3 (the state) comes first.
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The CPUs this process may run on (from `sched_getaffinity`).
///
/// ```
/// let cpus = shmlab::process::allowed_cpus();
/// assert!(!cpus.is_empty());
/// assert!(cpus.windows(2).all(|pair| pair[0] < pair[1])); // ascending CPU numbers
/// ```
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data (all-zero is an empty set);
    // sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Pins the calling thread to the `index`-th allowed CPU (round robin).
///
/// Labs pin worker `i` to CPU `i`, so that two workers really run at the same
/// time: left alone, the scheduler may queue both on one CPU and run them
/// one after the other, and a short race never shows. Returns the CPU, or
/// `None` if pinning is not possible here.
///
/// ```
/// use shmlab::process::{allowed_cpus, pin_to_cpu};
///
/// let cpus = allowed_cpus();
/// let n = cpus.len(); // index n wraps round to the first allowed CPU
/// // Pin a new thread, so that the caller stays free to run anywhere.
/// let pinned = std::thread::spawn(move || (pin_to_cpu(n), allowed_cpus()));
/// let (cpu, now_allowed) = pinned.join().unwrap();
/// assert_eq!(cpu, Some(cpus[0]));
/// assert_eq!(now_allowed, [cpus[0]]); // a pinned thread may use that CPU only
///
/// // A pinned thread can be moved on: the choice is always among the CPUs
/// // the process could use when it first pinned a thread (a pool worker
/// // reused for another run may get another index).
/// let moved = std::thread::spawn(move || (pin_to_cpu(0), pin_to_cpu(1))).join().unwrap();
/// assert_eq!(moved, (Some(cpus[0]), Some(cpus[1 % n])));
/// ```
pub fn pin_to_cpu(index: usize) -> Option<usize> {
    // Not `allowed_cpus()` at the time of the call: once this thread is
    // pinned that is a single CPU, and every later index would map to it.
    static CPUS_AT_FIRST_PIN: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    let cpus = CPUS_AT_FIRST_PIN.get_or_init(allowed_cpus);
    let cpu = *cpus.get(index % cpus.len().max(1))?;
    // SAFETY: as above; the set holds one valid CPU number below CPU_SETSIZE.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    ok.then_some(cpu)
}

/// Nanoseconds on the system-wide monotonic clock: comparable between
/// processes on the same machine (unlike `Instant`, whose value is opaque).
///
/// ```
/// use shmlab::process::monotonic_ns;
///
/// let before = monotonic_ns();
/// std::thread::sleep(std::time::Duration::from_millis(2));
/// assert!(monotonic_ns() - before >= 2_000_000);
/// ```
pub fn monotonic_ns() -> u64 {
    let mut ts = std::mem::MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: clock_gettime fills the whole timespec; CLOCK_MONOTONIC always
    // exists on Linux, so it cannot fail.
    let ts = unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, ts.as_mut_ptr());
        ts.assume_init()
    };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// The usual name of a signal number, e.g. `SIGKILL` for 9.
///
/// ```
/// use shmlab::process::signal_name;
///
/// assert_eq!(signal_name(9), "SIGKILL");
/// assert_eq!(signal_name(15), "SIGTERM");
/// assert_eq!(signal_name(64), "signal 64");
/// ```
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}
