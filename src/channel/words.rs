//! Bytes to words and back, for the rings: messages travel as little-endian
//! 64-bit words, the last one padded with zeros.

/// The words of `bytes`, in order.
pub fn pack(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let exact = bytes.chunks_exact(8);
    let rest = exact.remainder();
    let tail = (!rest.is_empty()).then(|| {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        u64::from_le_bytes(word)
    });
    // Fixed-size conversions compile to one load each; a variable-length
    // copy per word would call memcpy every 8 bytes.
    exact
        .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])))
        .chain(tail)
}

/// Fills `out` from the words `next` yields, in order.
pub fn unpack<E>(out: &mut [u8], mut next: impl FnMut() -> Result<u64, E>) -> Result<(), E> {
    let mut exact = out.chunks_exact_mut(8);
    for chunk in &mut exact {
        chunk.copy_from_slice(&next()?.to_le_bytes());
    }
    let rest = exact.into_remainder();
    if !rest.is_empty() {
        let len = rest.len();
        rest.copy_from_slice(&next()?.to_le_bytes()[..len]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_length() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let words: Vec<u64> = pack(&bytes).collect();
            assert_eq!(words.len(), len.div_ceil(8));
            let mut back = vec![0u8; len];
            let mut it = words.into_iter();
            unpack::<()>(&mut back, || it.next().ok_or(())).unwrap();
            assert_eq!(back, bytes);
        }
    }
}
