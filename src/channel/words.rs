//! Bytes to words and back, for the rings: messages travel as little-endian
//! 64-bit words, the last one padded with zeros.
//!
//! [`store`] and [`load`] copy a contiguous run of words in one tight loop
//! of atomic accesses: no room check, no index wrap, no iterator state per
//! word. A Relaxed atomic store or load of a `u64` is one plain `mov` on
//! x86-64, so the loop runs at the speed of the caches; loom sees every
//! word as the atomic access it is.

use crate::sync::{AtomicU64, Ordering};

/// Words needed for `len` bytes.
pub const fn words_for(len: usize) -> usize {
    len.div_ceil(8)
}

/// One word from at most 8 bytes, zero-padded.
fn tail_word(rest: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..rest.len()].copy_from_slice(rest);
    u64::from_le_bytes(word)
}

/// Stores `bytes` into the first `words_for(bytes.len())` of `cells`
/// (Relaxed: the caller publishes them with a Release store afterwards).
/// Stores no more than `cells` holds.
pub fn store(cells: &[AtomicU64], bytes: &[u8]) {
    let exact = bytes.chunks_exact(8);
    let rest = exact.remainder();
    let full = exact.len();
    // Fixed-size conversions compile to one load each; a variable-length
    // copy per word would call memcpy every 8 bytes.
    for (cell, chunk) in cells.iter().zip(exact) {
        cell.store(
            u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])),
            Ordering::Relaxed,
        );
    }
    if let Some(cell) = cells.get(full).filter(|_| !rest.is_empty()) {
        cell.store(tail_word(rest), Ordering::Relaxed);
    }
}

/// Fills `out` from the first `words_for(out.len())` of `cells` (Relaxed:
/// the caller has read the writer's Release store with Acquire before).
/// Leaves bytes that `cells` does not cover untouched.
pub fn load(out: &mut [u8], cells: &[AtomicU64]) {
    let mut exact = out.chunks_exact_mut(8);
    let full = exact.len();
    for (chunk, cell) in (&mut exact).zip(cells) {
        chunk.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
    }
    let rest = exact.into_remainder();
    if let Some(cell) = cells.get(full).filter(|_| !rest.is_empty()) {
        let len = rest.len();
        rest.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes()[..len]);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_length() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (1..=len as u8).collect();
            let cells: Vec<AtomicU64> = (0..words_for(len) + 1)
                .map(|_| AtomicU64::new(u64::MAX))
                .collect();
            store(&cells, &bytes);
            // The word after the message is not touched; the last word of
            // the message is padded with zeros.
            assert_eq!(cells[words_for(len)].load(Ordering::Relaxed), u64::MAX);
            if len % 8 != 0 {
                let last = cells[len / 8].load(Ordering::Relaxed);
                assert_eq!(last >> (8 * (len % 8)), 0);
            }
            let mut back = vec![0u8; len];
            load(&mut back, &cells);
            assert_eq!(back, bytes);
        }
    }

    #[test]
    fn short_runs_copy_what_fits() {
        let cells: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
        store(&cells, &[7; 20]);
        let mut back = [0u8; 20];
        load(&mut back, &cells);
        assert_eq!(back[..16], [7; 16]);
        assert_eq!(back[16..], [0; 4]);
    }
}
