//! Named POSIX shared memory segments with a validated header.
//!
//! Layout of every shmlab segment (offsets in bytes):
//!
//! ```text
//! 0    header: magic, version, kind, element type, lock kind, element count,
//!      creator pid, total size, ready flag      (64 bytes, all atomics)
//! 64   the lock (FutexLock: 4 bytes; OsMutex: 40 bytes)   (64 bytes)
//! 128  the cells: `len` atomic elements
//! ```
//!
//! The creator writes the header and the cells, then sets `ready` with
//! Release; an opener reads `ready` with Acquire before it trusts anything
//! else. Offsets, never pointers, are stored: each process maps the segment
//! at a different address.

use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::time::Duration;

use shared_memory::{Shmem, ShmemConf, ShmemError};

use super::ShmError;
use crate::element::{Element, ElementType};
use crate::lock::{LockKind, RawLock};
use crate::sync::{AtomicU32, AtomicU64, Deadline, Ordering};

/// "SHMLAB" and two version-independent bytes, read as a little-endian u64.
///
/// A segment's file starts with it, so a shmlab segment is recognised by
/// its first 8 bytes (`xxd /dev/shm/shmlab_...` shows `SHMLAB`); a segment
/// with anything else there is refused:
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedValue;
/// use shmlab::shm::{MAGIC, ShmError};
/// use std::os::unix::fs::FileExt;
///
/// let value = SharedValue::<i64>::create(0)?;
/// let path = std::path::Path::new("/dev/shm").join(value.name());
/// let file = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
/// let mut first = [0u8; 8];
/// file.read_exact_at(&mut first, 0)?;
/// assert_eq!(first, MAGIC.to_le_bytes());
/// assert!(first.starts_with(b"SHMLAB"));
/// // Scribble over the magic, as a foreign program might:
/// file.write_all_at(b"NOTOURS!", 0)?;
/// let opened = SharedValue::<i64>::open(value.name());
/// assert!(matches!(opened, Err(ShmError::BadMagic { .. })));
/// # Ok(()) }
/// ```
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMLAB\x00\x01");
/// The header layout version; bump when the layout changes.
///
/// The creator writes it at offset 8 of the header; a segment made by a
/// shmlab with another layout is refused rather than misread:
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedValue;
/// use shmlab::shm::{LAYOUT_VERSION, ShmError};
/// use std::os::unix::fs::FileExt;
///
/// let value = SharedValue::<i64>::create(0)?;
/// let path = std::path::Path::new("/dev/shm").join(value.name());
/// let file = std::fs::OpenOptions::new().write(true).open(&path)?;
/// // Pretend a newer shmlab created it.
/// file.write_all_at(&(LAYOUT_VERSION + 1).to_le_bytes(), 8)?;
/// match SharedValue::<i64>::open(value.name()) {
///     Err(ShmError::VersionMismatch { expected, found, .. }) => {
///         assert_eq!((expected, found), (LAYOUT_VERSION, LAYOUT_VERSION + 1));
///     }
///     other => panic!("expected a version mismatch, got {other:?}"),
/// }
/// # Ok(()) }
/// ```
pub const LAYOUT_VERSION: u32 = 2;
/// Every segment name starts with this, so `clean` and `ls /dev/shm` find them.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedValue;
/// use shmlab::shm::NAME_PREFIX;
///
/// let value = SharedValue::<i64>::create(0)?; // a fresh, random name
/// assert!(value.name().starts_with(NAME_PREFIX));
/// // What `ls /dev/shm | grep shmlab` does:
/// let ours: Vec<String> = std::fs::read_dir("/dev/shm")?
///     .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
///     .filter(|name| name.starts_with(NAME_PREFIX))
///     .collect();
/// assert!(ours.iter().any(|name| name == value.name()));
/// # Ok(()) }
/// ```
pub const NAME_PREFIX: &str = "shmlab";
/// Where the lock sits.
///
/// The lock is bytes of the segment like any other: while this process
/// holds a value's [`crate::lock::FutexLock`], the lock's word, read from
/// the segment's file at this offset, is its pid.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedValue;
/// use shmlab::shm::LOCK_OFFSET;
/// use std::os::unix::fs::FileExt;
///
/// let value = SharedValue::<i64>::create(0)?;
/// let file = std::fs::File::open(std::path::Path::new("/dev/shm").join(value.name()))?;
/// let lock_word = || -> std::io::Result<u32> {
///     let mut word = [0u8; 4];
///     file.read_exact_at(&mut word, LOCK_OFFSET as u64)?;
///     Ok(u32::from_le_bytes(word))
/// };
/// assert_eq!(lock_word()?, 0); // free
/// let guard = value.lock().map_err(|e| e.discard_guard())?;
/// assert_eq!(lock_word()?, std::process::id()); // held by us
/// drop(guard);
/// assert_eq!(lock_word()?, 0);
/// # Ok(()) }
/// ```
pub const LOCK_OFFSET: usize = 64;
/// Where the cells start.
///
/// Element `i` of an array is at `DATA_OFFSET + i * size` in the segment,
/// in every process that maps it:
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedArray;
/// use shmlab::shm::DATA_OFFSET;
/// use std::os::unix::fs::FileExt;
///
/// let array = SharedArray::<u32>::create(4, 0)?;
/// array.set(2, 0xBEEF)?;
/// let file = std::fs::File::open(std::path::Path::new("/dev/shm").join(array.name()))?;
/// let mut cell = [0u8; 4];
/// file.read_exact_at(&mut cell, (DATA_OFFSET + 2 * 4) as u64)?;
/// assert_eq!(u32::from_le_bytes(cell), 0xBEEF);
/// # Ok(()) }
/// ```
pub const DATA_OFFSET: usize = 128;
/// The longest name accepted (the kernel allows 255 bytes in /dev/shm).
///
/// A longer name is refused before anything is created:
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedValue;
/// use shmlab::shm::{MAX_NAME_LEN, NAME_PREFIX, ShmError, full_name};
///
/// let longest = format!("{NAME_PREFIX}_{}", "x".repeat(MAX_NAME_LEN - NAME_PREFIX.len() - 1));
/// assert_eq!(full_name(&longest)?.len(), MAX_NAME_LEN); // accepted
/// let too_long = format!("{longest}x");
/// let refused = SharedValue::<i64>::create_named(&too_long, 0);
/// assert!(matches!(refused, Err(ShmError::InvalidName { .. })));
/// # Ok(()) }
/// ```
pub const MAX_NAME_LEN: usize = 200;
/// How long `open` waits for a creator that has not finished initialising.
pub(crate) const OPEN_WAIT: Duration = Duration::from_millis(500);
/// How often `open` looks again while it waits (a creator publishes within
/// microseconds; sleeping instead of spinning leaves the CPU to it).
const OPEN_POLL: Duration = Duration::from_micros(200);
const READY: u32 = 1;

/// What a segment holds: one value or an array.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedArray;
/// use shmlab::shm::ObjectKind;
///
/// let array = SharedArray::<u32>::create(4, 0)?;
/// assert_eq!(array.segment().info().kind, ObjectKind::Array);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ObjectKind {
    /// A [`crate::SharedValue`].
    Value = 1,
    /// A [`crate::SharedArray`].
    Array = 2,
    /// A [`crate::channel::Pipe`].
    Pipe = 3,
    /// A [`crate::channel::Queue`].
    Queue = 4,
    /// The control block of a [`crate::pool::Pool`] (its doorbell).
    Pool = 5,
    /// A dining philosophers' table ([`crate::philosophers::SharedTable`]).
    Table = 6,
}

impl ObjectKind {
    fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            1 => Some(ObjectKind::Value),
            2 => Some(ObjectKind::Array),
            3 => Some(ObjectKind::Pipe),
            4 => Some(ObjectKind::Queue),
            5 => Some(ObjectKind::Pool),
            6 => Some(ObjectKind::Table),
            _ => None,
        }
    }

    /// `"value"` or `"array"`.
    ///
    /// ```
    /// use shmlab::shm::ObjectKind;
    ///
    /// assert_eq!(ObjectKind::Value.name(), "value");
    /// assert_eq!(ObjectKind::Queue.name(), "queue");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Value => "value",
            ObjectKind::Array => "array",
            ObjectKind::Pipe => "pipe",
            ObjectKind::Queue => "queue",
            ObjectKind::Pool => "pool",
            ObjectKind::Table => "table",
        }
    }

    /// With its article, for messages: `"a value"`, `"an array"`.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::shm::ObjectKind;
    /// use shmlab::{SharedArray, SharedValue};
    ///
    /// assert_eq!(ObjectKind::Array.described(), "an array");
    /// // Error messages use it:
    /// let value = SharedValue::<i64>::create(0)?;
    /// let err = SharedArray::<i64>::open(value.name()).unwrap_err();
    /// assert!(err.to_string().ends_with("holds a value, not an array"));
    /// # Ok(()) }
    /// ```
    pub fn described(self) -> &'static str {
        match self {
            ObjectKind::Value => "a value",
            ObjectKind::Array => "an array",
            ObjectKind::Pipe => "a pipe",
            ObjectKind::Queue => "a queue",
            ObjectKind::Pool => "a pool's control block",
            ObjectKind::Table => "a philosophers' table",
        }
    }
}

/// The header at offset 0. Every field is atomic: another process may write
/// the segment at any time, and a racing plain read would be undefined
/// behaviour, while a racing atomic read is only a wrong value that the
/// validation below rejects.
#[repr(C)]
pub(crate) struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    kind: AtomicU32,
    element: AtomicU32,
    lock: AtomicU32,
    len: AtomicU64,
    creator_pid: AtomicU32,
    ready: AtomicU32,
    total_size: AtomicU64,
    /// When the creator started (`process::start_ticks`), 0 if unknown: with
    /// the pid, tells the creator from a later process given the same pid.
    creator_start: AtomicU64,
}

const _: () = assert!(size_of::<Header>() <= LOCK_OFFSET);
// `read_creator_pid` reads the pid at this offset straight from the file.
const _: () = assert!(std::mem::offset_of!(Header, creator_pid) == 32);
const _: () = assert!(std::mem::offset_of!(Header, ready) == 36);
const _: () = assert!(std::mem::offset_of!(Header, creator_start) == 48);

/// The expected contents of a segment, checked on open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub kind: ObjectKind,
    pub element: ElementType,
    pub lock: LockKind,
}

impl Spec {
    pub fn of<T: Element, L: RawLock>(kind: ObjectKind) -> Self {
        Spec {
            kind,
            element: T::TYPE,
            lock: L::KIND,
        }
    }
}

/// What the header of a segment says about it.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedArray;
///
/// let array = SharedArray::<u32>::create(10, 0)?;
/// let info = array.segment().info();
/// assert_eq!((info.element, info.lock, info.len), ("u32", "futex", 10));
/// assert_eq!(info.creator_pid, std::process::id());
/// assert_eq!(info.size, 128 + 10 * 4); // header and lock, then the cells
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct SegmentInfo {
    /// The name (a file of that name is in /dev/shm).
    pub name: String,
    /// Value or array.
    pub kind: ObjectKind,
    /// The element type's name.
    pub element: &'static str,
    /// The lock's name.
    pub lock: &'static str,
    /// The number of elements.
    pub len: usize,
    /// The pid of the process that created it.
    pub creator_pid: u32,
    /// The size in bytes.
    pub size: usize,
}

/// An open, mapped segment. The creator owns it and unlinks its name when
/// dropped (also during an unwinding panic); openers only unmap.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::SharedValue;
///
/// let value = SharedValue::<i64>::create(0)?;
/// let segment = value.segment();
/// assert!(segment.is_owner()); // we created it: dropping it unlinks the name
/// assert!(std::path::Path::new("/dev/shm").join(segment.name()).exists());
/// # Ok(()) }
/// ```
pub struct Segment {
    shmem: Shmem,
    name: String,
    len: usize,
    spec: Spec,
    // Shmem holds raw pointers; keep this type !Send/!Sync by default and
    // opt in below with the reason.
    _not_auto: PhantomData<*mut u8>,
}

// SAFETY: the mapping stays valid until `Segment` is dropped, whichever
// thread drops it, and all access to its bytes goes through atomics or the
// process-shared lock, which are made for concurrent use.
unsafe impl Send for Segment {}
// SAFETY: as above: `&Segment` only gives out references to atomics and locks.
unsafe impl Sync for Segment {}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("len", &self.len)
            .field("owner", &self.shmem.is_owner())
            .finish()
    }
}

/// Bytes needed for `len` cells of `cell_size` bytes, or `None` on overflow.
pub(crate) fn segment_size(len: usize, cell_size: usize) -> Option<usize> {
    len.checked_mul(cell_size)?.checked_add(DATA_OFFSET)
}

/// Checks a user-chosen name and adds the `shmlab` prefix if it is missing.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use shmlab::shm::full_name;
///
/// assert_eq!(full_name("counter")?, "shmlab_counter");
/// assert_eq!(full_name("shmlab_counter")?, "shmlab_counter");
/// assert!(full_name("../etc/passwd").is_err());
/// # Ok(()) }
/// ```
pub fn full_name(name: &str) -> Result<String, ShmError> {
    let invalid = |reason: &str| ShmError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(invalid("use only letters, digits, '_', '-' and '.'"));
    }
    let full = if name.starts_with(NAME_PREFIX) {
        name.to_string()
    } else {
        format!("{NAME_PREFIX}_{name}")
    };
    if full.len() > MAX_NAME_LEN {
        return Err(invalid("it is too long"));
    }
    Ok(full)
}

/// A fresh default name: prefix, creator pid, random part.
fn random_name() -> String {
    format!(
        "{NAME_PREFIX}_{}_{:08x}",
        std::process::id(),
        fastrand::u32(..)
    )
}

/// Free bytes on the tmpfs behind /dev/shm. Writing past them would kill the
/// writer with SIGBUS, so creation refuses sizes that do not fit.
fn shm_free_bytes() -> Option<u64> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: the path is a NUL-terminated literal and statvfs writes a whole
    // struct into `st`, which we read only when it returned 0.
    unsafe {
        if libc::statvfs(c"/dev/shm".as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        let st = st.assume_init();
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

fn os_error(name: &str, op: &'static str, e: ShmemError) -> ShmError {
    ShmError::Os {
        name: name.to_string(),
        op,
        message: e.to_string(),
    }
}

impl Segment {
    /// Creates and maps a new segment for `len` cells of `T`, with lock `L`
    /// initialised and every cell holding `initial`, then publishes it.
    /// `name` `None` picks `shmlab_<pid>_<random>`.
    pub(crate) fn create<T: Element, L: RawLock>(
        kind: ObjectKind,
        name: Option<&str>,
        len: usize,
        initial: T,
    ) -> Result<Segment, ShmError> {
        let spec = Spec::of::<T, L>(kind);
        let size = segment_size(len, size_of::<T::Atomic>()).ok_or(ShmError::TooLarge {
            len,
            element: T::TYPE.name(),
        })?;
        if let Some(free) = shm_free_bytes() {
            if size as u64 > free {
                return Err(ShmError::NoSpace {
                    requested: size as u64,
                    available: free,
                });
            }
        }
        let fixed = name.map(full_name).transpose()?;
        let mut attempts = 0;
        let (shmem, name) = loop {
            let candidate = fixed.clone().unwrap_or_else(random_name);
            match ShmemConf::new().os_id(&candidate).size(size).create() {
                Ok(shmem) => break (shmem, candidate),
                Err(ShmemError::MappingIdExists) if fixed.is_none() && attempts < 16 => {
                    attempts += 1;
                }
                Err(ShmemError::MappingIdExists) => {
                    return Err(ShmError::Exists { name: candidate });
                }
                Err(e) => return Err(os_error(&candidate, "create", e)),
            }
        };
        // From here on the name exists: register it so Ctrl-C removes it, and
        // let `Drop` unlink it on any early return.
        crate::cleanup::register_segment(&name);
        let segment = Segment {
            shmem,
            name,
            len,
            spec,
            _not_auto: PhantomData,
        };
        let header = segment.header();
        header.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        header.kind.store(kind as u32, Ordering::Relaxed);
        header.element.store(T::TYPE as u32, Ordering::Relaxed);
        header.lock.store(L::KIND as u32, Ordering::Relaxed);
        header.len.store(len as u64, Ordering::Relaxed);
        header
            .creator_pid
            .store(std::process::id(), Ordering::Relaxed);
        header.total_size.store(size as u64, Ordering::Relaxed);
        header
            .creator_start
            .store(own_start_ticks(), Ordering::Relaxed);
        // SAFETY: the lock area is inside the mapping (size >= DATA_OFFSET),
        // aligned (page-aligned base + 64), and nobody else can use it yet:
        // openers wait for `ready`.
        unsafe { L::init_at(segment.base().add(LOCK_OFFSET).cast::<L>()) }.map_err(|e| {
            ShmError::Os {
                name: segment.name.clone(),
                op: "initialise lock",
                message: e.to_string(),
            }
        })?;
        for cell in segment.cells::<T>() {
            T::store(cell, initial, Ordering::Relaxed);
        }
        // Publish: everything written above happens-before any opener's
        // Acquire load that sees READY. The magic goes last but one, so a
        // concurrent `clean` never sees magic with a creator pid of 0.
        header.magic.store(MAGIC, Ordering::Release);
        header.ready.store(READY, Ordering::Release);
        Ok(segment)
    }

    /// Opens and validates an existing segment.
    pub(crate) fn open(name: &str, spec: Spec) -> Result<Segment, ShmError> {
        let name = full_name(name)?;
        let deadline = Deadline::after(OPEN_WAIT);
        let shmem = loop {
            match ShmemConf::new().os_id(&name).open() {
                Ok(shmem) => break shmem,
                Err(ShmemError::MapOpenFailed(code)) if code == libc::ENOENT as u32 => {
                    return Err(ShmError::NotFound { name });
                }
                // Size 0: either the creator is between shm_open and
                // ftruncate, or the file really is empty. Wait, bounded.
                Err(ShmemError::MapOpenFailed(code)) if code == libc::EINVAL as u32 => {
                    if deadline.expired() {
                        return Err(ShmError::TooSmall {
                            name,
                            size: 0,
                            needed: DATA_OFFSET,
                        });
                    }
                    std::thread::sleep(OPEN_POLL);
                }
                Err(e) => return Err(os_error(&name, "open", e)),
            }
        };
        let size = shmem.len();
        if size < DATA_OFFSET {
            return Err(ShmError::TooSmall {
                name,
                size,
                needed: DATA_OFFSET,
            });
        }
        let mut segment = Segment {
            shmem,
            name,
            len: 0,
            spec,
            _not_auto: PhantomData,
        };
        segment.shmem.set_owner(false);
        segment.len = segment.validate(spec, size, deadline)?;
        Ok(segment)
    }

    /// Checks the header against `spec` and the mapping size; returns `len`.
    fn validate(&self, spec: Spec, size: usize, deadline: Deadline) -> Result<usize, ShmError> {
        let header = self.header();
        let name = || self.name.clone();
        loop {
            let ready = header.ready.load(Ordering::Acquire);
            let magic = header.magic.load(Ordering::Relaxed);
            if magic != MAGIC && magic != 0 {
                return Err(ShmError::BadMagic {
                    name: name(),
                    found: magic,
                });
            }
            if ready == READY && magic == MAGIC {
                break;
            }
            if ready != 0 && ready != READY {
                return Err(ShmError::BadMagic {
                    name: name(),
                    found: magic,
                });
            }
            if deadline.expired() {
                return Err(ShmError::Uninitialised { name: name() });
            }
            std::thread::sleep(OPEN_POLL);
        }
        let version = header.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(ShmError::VersionMismatch {
                name: name(),
                expected: LAYOUT_VERSION,
                found: version,
            });
        }
        let kind = header.kind.load(Ordering::Relaxed);
        if kind != spec.kind as u32 {
            return Err(ShmError::KindMismatch {
                name: name(),
                expected: spec.kind.described(),
                found: ObjectKind::from_tag(kind).map_or_else(
                    || format!("an unknown kind {kind}"),
                    |k| k.described().to_string(),
                ),
            });
        }
        let element = header.element.load(Ordering::Relaxed);
        if element != spec.element as u32 {
            return Err(ShmError::TypeMismatch {
                name: name(),
                expected: spec.element.name(),
                found: ElementType::from_tag(element).map_or_else(
                    || format!("unknown type {element}"),
                    |t| t.name().to_string(),
                ),
            });
        }
        let lock = header.lock.load(Ordering::Relaxed);
        if lock != spec.lock as u32 {
            return Err(ShmError::LockMismatch {
                name: name(),
                expected: spec.lock.name(),
                found: LockKind::from_tag(lock)
                    .map_or_else(|| format!("unknown lock {lock}"), |l| l.name().to_string()),
            });
        }
        let len = header.len.load(Ordering::Relaxed);
        let cell_size = match spec.element {
            ElementType::I32 | ElementType::U32 => 4,
            ElementType::I64 | ElementType::U64 | ElementType::F64 => 8,
        };
        let needed = usize::try_from(len)
            .ok()
            .and_then(|len| segment_size(len, cell_size));
        match needed {
            Some(needed) if needed <= size => {}
            _ => {
                return Err(ShmError::Truncated {
                    name: name(),
                    len,
                    needed: needed.map_or(u64::MAX, |n| n as u64),
                    size: size as u64,
                });
            }
        }
        if spec.kind == ObjectKind::Value && len != 1 {
            return Err(ShmError::KindMismatch {
                name: name(),
                expected: "a value (1 element)",
                found: format!("a value with {len} elements"),
            });
        }
        Ok(len as usize)
    }

    fn base(&self) -> *mut u8 {
        self.shmem.as_ptr()
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: every mapping is at least DATA_OFFSET bytes (checked on open,
        // guaranteed on create), page-aligned, and Header is all atomics,
        // valid for any bit pattern; it lives as long as `self`.
        unsafe { &*self.base().cast::<Header>() }
    }

    /// The lock at LOCK_OFFSET.
    pub(crate) fn lock<L: RawLock>(&self) -> &L {
        debug_assert_eq!(L::KIND, self.spec.lock);
        // SAFETY: the header's lock tag matched `L` on open (or we created it
        // with `L`), so the bytes at LOCK_OFFSET were initialised as an `L`;
        // they are inside the mapping, 64-byte aligned, and live as long as
        // `self`. `L` is designed for shared use through `&L`.
        unsafe { &*self.base().add(LOCK_OFFSET).cast::<L>() }
    }

    /// The cells at DATA_OFFSET.
    pub(crate) fn cells<T: Element>(&self) -> &[T::Atomic] {
        debug_assert_eq!(T::TYPE, self.spec.element);
        // SAFETY: the element tag matched `T` and the mapping holds at least
        // DATA_OFFSET + len * size_of::<T::Atomic>() bytes (checked on open,
        // sized so on create); DATA_OFFSET is a multiple of 8 on a
        // page-aligned base, so cells are aligned; T::Atomic is an atomic
        // integer, valid for every bit pattern; the slice lives as long as
        // `self`.
        unsafe {
            std::slice::from_raw_parts(self.base().add(DATA_OFFSET).cast::<T::Atomic>(), self.len)
        }
    }

    /// The segment's name (the file `/dev/shm/<name>`).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// assert!(value.segment().name().starts_with("shmlab_"));
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of elements.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// assert_eq!(array.segment().len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedArray;
    /// # let array = SharedArray::<i64>::create(3, 0)?;
    /// let nothing = SharedArray::<i64>::create(0, 0)?;
    /// assert!(nothing.segment().is_empty());
    /// assert!(!array.segment().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this process created the segment (and will unlink it on drop).
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// let opened = SharedValue::<i64>::open(value.name())?;
    /// assert!(value.segment().is_owner());
    /// assert!(!opened.segment().is_owner()); // dropping it only unmaps
    /// # Ok(()) }
    /// ```
    pub fn is_owner(&self) -> bool {
        self.shmem.is_owner()
    }

    /// What the header says.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// # use shmlab::SharedValue;
    /// # let value = SharedValue::<i64>::create(0)?;
    /// let info = value.segment().info();
    /// assert_eq!((info.element, info.len), ("i64", 1));
    /// assert_eq!(info.name, value.name());
    /// # Ok(()) }
    /// ```
    pub fn info(&self) -> SegmentInfo {
        let h = self.header();
        SegmentInfo {
            name: self.name.clone(),
            kind: self.spec.kind,
            element: self.spec.element.name(),
            lock: self.spec.lock.name(),
            len: self.len,
            creator_pid: h.creator_pid.load(Ordering::Relaxed),
            size: self.shmem.len(),
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.shmem.is_owner() {
            crate::cleanup::deregister_segment(&self.name);
        }
        // Shmem's own Drop unmaps, and unlinks the name if we own it.
    }
}

/// This process's start time for segment headers, read from `/proc` once
/// (per pid: a forked child has its own).
fn own_start_ticks() -> u64 {
    static OWN: std::sync::Mutex<Option<(u32, u64)>> = std::sync::Mutex::new(None);
    let pid = std::process::id();
    let mut own = OWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match *own {
        Some((cached, ticks)) if cached == pid => ticks,
        _ => {
            let ticks = crate::process::start_ticks(pid).unwrap_or(0);
            *own = Some((pid, ticks));
            ticks
        }
    }
}

/// Reads the creator's pid and start time (0: not recorded) from a segment
/// file's header without mapping it, if the file starts with a shmlab header.
pub(crate) fn read_creator(path: &std::path::Path) -> io::Result<Option<(u32, u64)>> {
    use std::io::Read;
    let mut header = [0u8; 64];
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..])? {
            0 => return Ok(None),
            n => filled += n,
        }
    }
    let magic = u64::from_le_bytes(header[0..8].try_into().unwrap_or_default());
    if magic != MAGIC {
        return Ok(None);
    }
    // Field offsets follow `Header`'s repr(C) layout.
    let pid = u32::from_le_bytes(header[32..36].try_into().unwrap_or_default());
    let ready = u32::from_le_bytes(header[36..40].try_into().unwrap_or_default());
    let start = u64::from_le_bytes(header[48..56].try_into().unwrap_or_default());
    // Not yet published: the creator may still be writing; say nothing.
    Ok((ready == READY && pid != 0).then_some((pid, start)))
}
