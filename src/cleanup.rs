//! Nothing leaks: the segments a process owns are tracked, so that Ctrl-C
//! (SIGINT) or SIGTERM during a lab removes them, and [`clean`] removes
//! segments left behind by processes that were killed outright. Workers need
//! no list: each one exits by itself as soon as its parent is gone (its
//! control socket closes; see [`crate::process`]).
//!
//! A creator that is SIGKILLed cannot run any code, so its segment stays in
//! `/dev/shm`. Every shmlab segment records its creator's pid (in its header,
//! and in the default name `shmlab_<pid>_<random>`), so a later [`clean`]
//! can tell a stale segment from one still in use.
//!
//! ```
//! use std::path::Path;
//! use shmlab::SharedValue;
//! use shmlab::cleanup::{SHM_DIR, clean};
//! use shmlab::pool::Pool;
//!
//! /// Creates a segment that outlives this call, as one still in use would.
//! fn create(_: ()) -> String {
//!     let value = SharedValue::<i64>::create(0).expect("a segment");
//!     let name = value.name().to_string();
//!     std::mem::forget(value); // not unlinked when this call returns
//!     name
//! }
//! shmlab::task!(create);
//!
//! fn main() -> anyhow::Result<()> {
//!     shmlab::entry(); // pool workers run their loop in here
//!     let pool = Pool::new(1)?;
//!     let name = pool.apply(create, ())?;
//!     assert!(clean()?.in_use.contains(&name)); // its creator, the worker, runs
//!     drop(pool); // SIGKILLs the worker: it runs no more code, its segment stays...
//!     clean()?; // ...until the next clean (each lab starts with one)
//!     assert!(!Path::new(SHM_DIR).join(&name).exists());
//!     Ok(())
//! }
//! ```

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// Where Linux shows POSIX shared memory segments as files.
///
/// ```
/// use std::path::Path;
/// use shmlab::SharedValue;
/// use shmlab::cleanup::SHM_DIR;
///
/// let value = SharedValue::<i64>::create(42)?;
/// let file = Path::new(SHM_DIR).join(value.name());
/// assert!(file.exists()); // `ls /dev/shm` shows it while it lives
/// assert!(std::fs::metadata(&file)?.len() >= 8); // a header and the i64
/// drop(value); // unlinked
/// assert!(!file.exists());
/// # Ok::<(), anyhow::Error>(())
/// ```
pub const SHM_DIR: &str = "/dev/shm";

static OWNED_SEGMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) fn register_segment(name: &str) {
    OWNED_SEGMENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(name.to_string());
}

pub(crate) fn deregister_segment(name: &str) {
    OWNED_SEGMENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|n| n != name);
}

/// Installs the Ctrl-C / SIGTERM handler (once per process; called by
/// [`crate::entry`]). On the signal it unlinks the segments this process
/// created and exits at once with status 130. Its workers see their control
/// socket close and exit too.
///
/// The handler does not kill the workers itself: the main thread, waiting
/// for a worker, would see it die and might report that and exit first with
/// another status. Exiting first and letting the workers follow has no such
/// race.
pub(crate) fn install_interrupt_handler() {
    // An error means a handler is already installed (by us or by the
    // program); either way there is nothing more to do.
    let _ = ctrlc::set_handler(|| {
        let segments = remove_owned_segments();
        // Not eprintln!: it panics when stderr is a closed pipe, and then
        // the process would never reach _exit.
        let _ = writeln!(
            std::io::stderr(),
            "\ninterrupted: removed {segments} shared memory segment(s); workers exit with this process"
        );
        // SAFETY: _exit ends the process at once, without running atexit
        // handlers that could race with the main thread.
        unsafe { libc::_exit(130) }
    });
}

/// Unlinks every segment this process created and still owns.
pub(crate) fn remove_owned_segments() -> usize {
    let segments: Vec<String> = std::mem::take(
        &mut *OWNED_SEGMENTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    for name in &segments {
        let _ = std::fs::remove_file(Path::new(SHM_DIR).join(name));
    }
    segments.len()
}

/// What [`clean`] did.
///
/// ```
/// use shmlab::SharedValue;
///
/// let mine = SharedValue::<i64>::create(0)?;
/// let report = shmlab::cleanup::clean()?;
/// // Its creator (this process) is alive, so it is kept.
/// assert!(report.in_use.contains(&mine.name().to_string()));
/// assert!(!report.removed.contains(&mine.name().to_string()));
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CleanReport {
    /// Stale segments removed (their creator no longer runs).
    pub removed: Vec<String>,
    /// Segments kept because their creator is still running.
    pub in_use: Vec<String>,
    /// `shmlab*` files whose creator could not be determined; left alone.
    pub unknown: Vec<String>,
}

/// The pid in a default name `shmlab_<pid>_<random>`.
fn pid_from_name(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(crate::shm::NAME_PREFIX)?
        .strip_prefix('_')?;
    let (pid, random) = rest.split_once('_')?;
    if random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit()) {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether the process that created a segment still runs: its pid is alive
/// *and*, when the segment recorded its creator's start time, the process
/// now holding that pid started at that time. Otherwise the pid has been
/// reused — with `pid_max` 32768 that happens within minutes — and a stale
/// segment would look like a live process's segment (even like this very
/// process's own) for as long as the new process runs.
fn creator_running(pid: u32, started: u64) -> bool {
    crate::process::pid_alive(pid)
        && (started == 0 || crate::process::start_ticks(pid).is_none_or(|now| now == started))
}

/// Removes `shmlab` segments in `/dev/shm` whose creator process is dead.
///
/// The creator is read from the segment's header — its pid and start time,
/// so that a pid reused by a later process does not keep a stale segment
/// alive — or, for a segment whose header was never written, from its
/// default name. Segments of running
/// processes and files that are not shmlab's are left alone.
///
/// ```
/// use std::path::Path;
/// use shmlab::cleanup::{SHM_DIR, clean};
///
/// // A default name whose creator pid cannot exist: a leftover of a dead process.
/// let stale = Path::new(SHM_DIR).join("shmlab_4000000000_0badf00d");
/// std::fs::write(&stale, b"")?;
/// let report = clean()?;
/// assert!(!stale.exists());
/// assert!(report.removed.iter().all(|name| name.starts_with("shmlab")));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn clean() -> std::io::Result<CleanReport> {
    let mut report = CleanReport::default();
    let entries = match std::fs::read_dir(SHM_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(crate::shm::NAME_PREFIX) {
            continue;
        }
        let creator = crate::shm::read_creator(&entry.path())
            .ok()
            .flatten()
            .or_else(|| pid_from_name(&name).map(|pid| (pid, 0)));
        match creator {
            Some((pid, started)) if !creator_running(pid, started) => {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => report.removed.push(name),
                    // Someone else removed it first: fine.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // Another user's segment: not ours to remove.
                    Err(_) => report.unknown.push(name),
                }
            }
            Some(_) => report.in_use.push(name),
            None => report.unknown.push(name),
        }
    }
    Ok(report)
}

/// [`clean`], telling the user on stderr what it removed. Labs call this at
/// start, so segments leaked by an earlier lab killed with SIGKILL do not
/// pile up.
///
/// ```
/// use std::path::Path;
/// use shmlab::cleanup::{SHM_DIR, clean_and_report};
///
/// let stale = Path::new(SHM_DIR).join("shmlab_4000000001_0badcafe");
/// std::fs::write(&stale, b"")?;
/// clean_and_report(); // "removed 1 stale shared memory segment(s) ..." on stderr
/// assert!(!stale.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn clean_and_report() {
    match clean() {
        Ok(report) if !report.removed.is_empty() => eprintln!(
            "removed {} stale shared memory segment(s) left by processes that were killed: {}",
            report.removed.len(),
            report.removed.join(", ")
        ),
        Ok(_) => {}
        Err(e) => eprintln!("could not check /dev/shm for stale segments: {e}"),
    }
}

/// Names of the `shmlab` files in `/dev/shm` whose name shows creator `pid`
/// (default names only). Tests use it to check that nothing leaked.
///
/// ```
/// use shmlab::SharedValue;
/// use shmlab::cleanup::segments_of;
///
/// let me = std::process::id();
/// let value = SharedValue::<i64>::create(0)?;
/// let name = value.name().to_string();
/// assert!(segments_of(me).contains(&name));
/// drop(value); // unlinks it
/// assert!(!segments_of(me).contains(&name));
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn segments_of(pid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(SHM_DIR) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| pid_from_name(name) == Some(pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{SHM_DIR, clean, pid_from_name};

    /// The flaky-test case: a segment left by an earlier process that had
    /// this very pid. Its header records a different start time, so it is
    /// stale although its pid is alive (it is ours).
    #[test]
    fn a_segment_whose_creator_pid_came_back_is_stale() {
        use std::os::unix::fs::FileExt;
        let value = crate::SharedValue::<i64>::create(7).expect("create");
        let name = value.name().to_string();
        let path = std::path::Path::new(SHM_DIR).join(&name);
        let report = clean().expect("clean");
        assert!(
            report.in_use.contains(&name),
            "ours, and we run: {report:?}"
        );

        // Header offset 48: the creator's start time.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the segment file");
        file.write_all_at(&1u64.to_le_bytes(), 48).expect("write");
        let report = clean().expect("clean");
        assert!(report.removed.contains(&name), "{report:?}");
        assert!(!path.exists());
    }

    #[test]
    fn default_names_carry_the_creator_pid() {
        assert_eq!(pid_from_name("shmlab_4242_0badf00d"), Some(4242));
        assert_eq!(pid_from_name("shmlab_counter"), None);
        assert_eq!(pid_from_name("shmlab_4242_zzzzzzzz"), None);
        assert_eq!(pid_from_name("other_4242_0badf00d"), None);
    }
}
