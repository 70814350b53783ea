//! The plain element types allowed in shared memory.
//!
//! Only types with no pointers and no invalid bit patterns may live in a
//! segment that another process can write: `i32`, `i64`, `u32`, `u64` and
//! `f64`. Each is stored as an atomic cell of the same size (`f64` as the
//! bits of an `AtomicU64`), so that every access — even the "racy" ones —
//! is a well-defined atomic access and never undefined behaviour.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use shmlab::SharedArray;
//!
//! // Plain numbers only: a `SharedArray<String>` does not compile.
//! let hits = SharedArray::<u32>::create(3, 0)?;
//! let means = SharedArray::<f64>::create(3, 0.0)?;
//! hits.fetch_add(1, 5)?; // integers have an atomic add
//! means.set(1, 2.5)?; // an f64 is stored as its bits (it has no add)
//! assert_eq!(hits.to_vec(), [0, 5, 0]);
//! assert_eq!(means.to_vec(), [0.0, 2.5, 0.0]);
//! # Ok(()) }
//! ```

use crate::sync::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// The tag of an element type, stored in every segment header.
///
/// ```
/// use shmlab::element::{Element, ElementType};
///
/// assert_eq!(<i64 as Element>::TYPE, ElementType::I64);
/// assert_eq!(<f64 as Element>::TYPE, ElementType::F64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElementType {
    /// `i32`
    I32 = 1,
    /// `i64`
    I64 = 2,
    /// `u32`
    U32 = 3,
    /// `u64`
    U64 = 4,
    /// `f64`
    F64 = 5,
}

impl ElementType {
    /// Decodes a header tag.
    ///
    /// ```
    /// use shmlab::element::ElementType;
    ///
    /// assert_eq!(ElementType::from_tag(ElementType::U32 as u32), Some(ElementType::U32));
    /// assert_eq!(ElementType::from_tag(0), None); // not a shmlab header
    /// ```
    pub fn from_tag(tag: u32) -> Option<Self> {
        Some(match tag {
            1 => ElementType::I32,
            2 => ElementType::I64,
            3 => ElementType::U32,
            4 => ElementType::U64,
            5 => ElementType::F64,
            _ => return None,
        })
    }

    /// The Rust name of the type, e.g. `"i64"`.
    ///
    /// ```
    /// use shmlab::element::ElementType;
    ///
    /// assert_eq!(ElementType::I64.name(), "i64");
    /// assert_eq!(ElementType::F64.name(), "f64");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ElementType::I32 => "i32",
            ElementType::I64 => "i64",
            ElementType::U32 => "u32",
            ElementType::U64 => "u64",
            ElementType::F64 => "f64",
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A type that can be an element of a [`crate::SharedValue`] or
/// [`crate::SharedArray`]. Sealed: the list above is the whole list.
///
/// Code generic over `Element` works for every element type:
///
/// ```
/// use shmlab::element::Element;
///
/// fn header_name<T: Element>() -> &'static str {
///     T::TYPE.name()
/// }
/// assert_eq!(header_name::<u32>(), "u32");
/// assert_eq!(header_name::<f64>(), "f64");
/// ```
pub trait Element:
    sealed::Sealed + Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// Its header tag.
    ///
    /// The creator of a segment records it; an opener that expects another
    /// element type is refused instead of reading the bytes as its own type:
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedArray;
    /// use shmlab::element::Element;
    /// use shmlab::shm::ShmError;
    ///
    /// let array = SharedArray::<u32>::create(3, 0)?;
    /// assert_eq!(array.segment().info().element, <u32 as Element>::TYPE.name());
    /// let as_i32 = SharedArray::<i32>::open(array.name());
    /// assert!(matches!(as_i32, Err(ShmError::TypeMismatch { expected: "i32", .. })));
    /// # Ok(()) }
    /// ```
    const TYPE: ElementType;
    /// The atomic cell that stores it (valid when all bytes are zero).
    ///
    /// A segment is a row of these cells; in one process (or under loom)
    /// the same cells are an ordinary array of them:
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedArray;
    /// use shmlab::cells::Cells;
    /// use shmlab::element::Element;
    /// use shmlab::lock::FutexLock;
    /// use shmlab::shm::DATA_OFFSET;
    /// use std::mem::size_of;
    ///
    /// let storage: [<f64 as Element>::Atomic; 2] = [f64::new_cell(0.0), f64::new_cell(0.0)];
    /// let lock = FutexLock::new();
    /// let cells = Cells::<f64>::new(&lock, &storage);
    /// cells.store(1, 2.5)?;
    /// assert_eq!(cells.load(1)?, 2.5);
    /// // In a segment: the header and the lock, then 10 such cells.
    /// let array = SharedArray::<f64>::create(10, 0.0)?;
    /// let cell = size_of::<<f64 as Element>::Atomic>(); // an AtomicU64
    /// assert_eq!(array.segment().info().size, DATA_OFFSET + 10 * cell);
    /// # Ok(()) }
    /// ```
    type Atomic: Send + Sync + std::fmt::Debug;
    /// A new cell holding `value` (in-process and loom use).
    ///
    /// ```
    /// use shmlab::element::Element;
    /// use shmlab::sync::Ordering;
    ///
    /// // An f64 lives in an AtomicU64, as its bits.
    /// let cell = f64::new_cell(0.5);
    /// assert_eq!(cell.load(Ordering::Relaxed), 0.5f64.to_bits());
    /// ```
    fn new_cell(value: Self) -> Self::Atomic;
    /// An atomic load.
    ///
    /// ```
    /// use shmlab::element::Element;
    /// use shmlab::sync::Ordering;
    ///
    /// let cell = i32::new_cell(-7);
    /// assert_eq!(i32::load(&cell, Ordering::Acquire), -7);
    /// ```
    fn load(cell: &Self::Atomic, order: Ordering) -> Self;
    /// An atomic store.
    ///
    /// ```
    /// use shmlab::element::Element;
    /// use shmlab::sync::Ordering;
    ///
    /// let cell = f64::new_cell(0.0);
    /// f64::store(&cell, 2.5, Ordering::Release);
    /// assert_eq!(f64::load(&cell, Ordering::Acquire), 2.5);
    /// ```
    fn store(cell: &Self::Atomic, value: Self, order: Ordering);
}

/// An integer element: adds `fetch_add`, one atomic read-modify-write.
///
/// A counter that works for every integer element type:
///
/// ```
/// use shmlab::element::{Element, Integer};
/// use shmlab::sync::Ordering;
///
/// fn tick<T: Integer>(counter: &T::Atomic) -> T {
///     T::fetch_add(counter, T::ONE, Ordering::AcqRel)
/// }
/// let counter = u64::new_cell(0);
/// tick::<u64>(&counter);
/// assert_eq!(tick::<u64>(&counter), 1); // the value before this tick
/// assert_eq!(u64::load(&counter, Ordering::Acquire), 2);
/// ```
pub trait Integer: Element {
    /// One, the step of a counter.
    ///
    /// Generic counting code adds it, whatever the integer type:
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// use shmlab::SharedValue;
    /// use shmlab::element::Integer;
    ///
    /// fn count_to<T: Integer>(counter: &SharedValue<T>, times: usize) {
    ///     (0..times).for_each(|_| {
    ///         counter.fetch_add(T::ONE);
    ///     });
    /// }
    /// let small = SharedValue::<u32>::create(0)?;
    /// let signed = SharedValue::<i64>::create(-3)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| count_to(&small, 100));
    ///     s.spawn(|| count_to(&small, 100));
    ///     s.spawn(|| count_to(&signed, 3));
    /// });
    /// assert_eq!((small.load(), signed.load()), (200, 0));
    /// # Ok(()) }
    /// ```
    const ONE: Self;
    /// Atomically adds `delta` and returns the previous value (wrapping).
    ///
    /// ```
    /// use shmlab::element::{Element, Integer};
    /// use shmlab::sync::Ordering;
    ///
    /// let cell = u32::new_cell(u32::MAX);
    /// assert_eq!(u32::fetch_add(&cell, 1, Ordering::AcqRel), u32::MAX);
    /// assert_eq!(u32::load(&cell, Ordering::Acquire), 0); // wrapped, no panic
    /// ```
    fn fetch_add(cell: &Self::Atomic, delta: Self, order: Ordering) -> Self;
    /// `self + other`, wrapping on overflow as the atomic add does.
    ///
    /// ```
    /// use shmlab::element::Integer;
    ///
    /// assert_eq!(Integer::wrapping_add(i32::MAX, 1), i32::MIN);
    /// ```
    fn wrapping_add(self, other: Self) -> Self;
    /// `self - other`, wrapping on overflow.
    ///
    /// ```
    /// use shmlab::element::Integer;
    ///
    /// assert_eq!(Integer::wrapping_sub(0u64, 1), u64::MAX);
    /// ```
    fn wrapping_sub(self, other: Self) -> Self;
}

macro_rules! integer_element {
    ($t:ty, $atomic:ty, $tag:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const TYPE: ElementType = ElementType::$tag;
            type Atomic = $atomic;
            fn new_cell(value: Self) -> Self::Atomic {
                <$atomic>::new(value)
            }
            fn load(cell: &Self::Atomic, order: Ordering) -> Self {
                cell.load(order)
            }
            fn store(cell: &Self::Atomic, value: Self, order: Ordering) {
                cell.store(value, order)
            }
        }
        impl Integer for $t {
            const ONE: Self = 1;
            fn fetch_add(cell: &Self::Atomic, delta: Self, order: Ordering) -> Self {
                cell.fetch_add(delta, order)
            }
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
            fn wrapping_sub(self, other: Self) -> Self {
                <$t>::wrapping_sub(self, other)
            }
        }
    };
}

integer_element!(i32, AtomicI32, I32);
integer_element!(i64, AtomicI64, I64);
integer_element!(u32, AtomicU32, U32);
integer_element!(u64, AtomicU64, U64);

impl sealed::Sealed for f64 {}
impl Element for f64 {
    const TYPE: ElementType = ElementType::F64;
    type Atomic = AtomicU64;
    fn new_cell(value: Self) -> Self::Atomic {
        AtomicU64::new(value.to_bits())
    }
    fn load(cell: &Self::Atomic, order: Ordering) -> Self {
        f64::from_bits(cell.load(order))
    }
    fn store(cell: &Self::Atomic, value: Self, order: Ordering) {
        cell.store(value.to_bits(), order)
    }
}
