//! The plain element types allowed in shared memory.
//!
//! Only types with no pointers and no invalid bit patterns may live in a
//! segment that another process can write: `i32`, `i64`, `u32`, `u64` and
//! `f64`. Each is stored as an atomic cell of the same size (`f64` as the
//! bits of an `AtomicU64`), so that every access — even the "racy" ones —
//! is a well-defined atomic access and never undefined behaviour.

use crate::sync::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// The tag of an element type, stored in every segment header.
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
pub trait Element:
    sealed::Sealed + Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// Its header tag.
    const TYPE: ElementType;
    /// The atomic cell that stores it (valid when all bytes are zero).
    type Atomic: Send + Sync + std::fmt::Debug;
    /// A new cell holding `value` (in-process and loom use).
    fn new_cell(value: Self) -> Self::Atomic;
    /// An atomic load.
    fn load(cell: &Self::Atomic, order: Ordering) -> Self;
    /// An atomic store.
    fn store(cell: &Self::Atomic, value: Self, order: Ordering);
}

/// An integer element: adds `fetch_add`, one atomic read-modify-write.
pub trait Integer: Element {
    /// One, the step of a counter.
    const ONE: Self;
    /// Atomically adds `delta` and returns the previous value (wrapping).
    fn fetch_add(cell: &Self::Atomic, delta: Self, order: Ordering) -> Self;
    /// `self + other`, wrapping on overflow as the atomic add does.
    fn wrapping_add(self, other: Self) -> Self;
    /// `self - other`, wrapping on overflow.
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
