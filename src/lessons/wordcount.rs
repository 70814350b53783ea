//! Lab 10: map-reduce word count over a large file — the tutorials'
//! Gutenberg exercise. A deterministic corpus generator, then the same
//! counts four ways: the four tutorial words (`dog`, `cat`, `boy`, `girl`)
//! and the frequency of every word, serially and with a pool over chunks
//! of a memory-mapped file, and all words again through the anti-pattern —
//! every worker updating one shared table under one lock.
//!
//! # What a word is
//!
//! A word is a maximal run of ASCII letters (`A`–`Z`, `a`–`z`), lowercased.
//! Every other byte separates words: spaces, punctuation, digits, `_`, an
//! apostrophe (`dog's` is `dog` and `s`), and every byte ≥ 0x80, so UTF-8
//! letters such as `é` separate too (`café` is `caf`) and bytes that are not
//! UTF-8 at all need no special case. [`reference_count`] is that rule
//! written the simplest way; every fast counter is checked against it.
//!
//! # The variants
//!
//! | variant | who counts | how |
//! |---|---|---|
//! | `reference` | the parent | `fs::read`, split on non-letters, lowercase, `HashMap` |
//! | `serial-four` | the parent | [`count_four`] over the mapped file |
//! | `pool-four` | the pool's workers | `four_task` per chunk, the parent adds four numbers per chunk |
//! | `serial-words` | the parent | [`count_words`] over the mapped file |
//! | `pool-words` | the pool's workers | `words_task` per chunk (map), the parent merges the tables (reduce) |
//! | `locked-table` | the pool's workers | `locked_task`: every word locks one shared table in shared memory |
//!
//! Chunks are byte ranges of one file. The parent computes them
//! ([`chunk_bounds`]): `n` equal ranges whose ends are moved forward to the
//! next separator, so no word is cut or counted twice. A worker gets
//! `(path, start, end)` and maps that range itself: nothing but the path
//! and two numbers crosses to it, and only the counts come back.
//!
//! ```
//! use shmlab::lessons::wordcount::{Frequencies, chunk_bounds, count_chunk, generate, reference_count};
//!
//! // Map-reduce in one process: count each chunk on its own (map), then
//! // merge the tables (reduce). No word is cut at a chunk's edge.
//! let text = generate(50_000, 10);
//! let mut merged = Frequencies::default();
//! for (start, end) in chunk_bounds(&text, 4) {
//!     merged.merge(&count_chunk(&text[start as usize..end as usize]));
//! }
//! assert_eq!(merged, reference_count(&text));
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::SharedArray;
use crate::cells::CellsGuard;
use crate::pool::{Pool, PoolError, Progress};
use crate::report::{self, Bar, Outcome, Report};

/// The four words of the tutorials' exercise, in the order of every
/// `[u64; 4]` in this module.
///
/// ```
/// use shmlab::lessons::wordcount::{TARGETS, count_four};
///
/// let four = count_four(b"The girl's dog saw a cat. A dog!");
/// let named: Vec<(&str, u64)> = TARGETS.into_iter().zip(four).collect();
/// assert_eq!(named, [("dog", 2), ("cat", 1), ("boy", 0), ("girl", 1)]);
/// ```
pub const TARGETS: [&str; 4] = ["dog", "cat", "boy", "girl"];

/// The default seed of the corpus generator.
///
/// ```
/// use shmlab::lessons::wordcount::{DEFAULT_SEED, count_four, generate};
///
/// // Lab 10 without `--seed` counts the same corpus on every run (the Python
/// // twin generates it too), so its counts can be compared run to run.
/// let corpus = generate(100_000, DEFAULT_SEED);
/// assert_eq!(count_four(&corpus), count_four(&generate(100_000, DEFAULT_SEED)));
/// assert_ne!(corpus, generate(100_000, DEFAULT_SEED + 1)); // `--seed 11`: another text
/// ```
pub const DEFAULT_SEED: u64 = 10;

/// Whether `b` is part of a word: an ASCII letter.
///
/// ```
/// use shmlab::lessons::wordcount::is_letter;
///
/// assert!(is_letter(b'd') && is_letter(b'G'));
/// assert!(!is_letter(b'\'') && !is_letter(b'7') && !is_letter(0xC3));
/// ```
#[inline(always)]
pub fn is_letter(b: u8) -> bool {
    // `| 0x20` maps A-Z onto a-z and leaves a-z alone; every other byte
    // lands outside a..=z (0x40 → 0x60, 0x5B → 0x7B, ≥ 0x80 stays ≥ 0xA0).
    (b | 0x20).wrapping_sub(b'a') < 26
}

/// Why word counting failed.
///
/// ```
/// use shmlab::lessons::wordcount::{Mapped, WordcountError};
///
/// let err = Mapped::open("/no/such/corpus.txt".as_ref()).unwrap_err();
/// assert!(matches!(err, WordcountError::Io { action: "open", .. }));
/// let err = Mapped::open(&std::env::temp_dir()).unwrap_err();
/// assert!(matches!(err, WordcountError::NotAFile(_)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum WordcountError {
    /// A file operation failed.
    #[error("could not {action} {path}: {error}")]
    Io {
        /// What was being done: `open`, `map`, `create`, `write`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error (part of the message, so that it
        /// also survives the trip back from a worker as text).
        error: io::Error,
    },
    /// The corpus is a directory, a pipe, a device: not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    /// The file is shorter than the range asked for: it changed while it
    /// was being counted.
    #[error("{path} has {len} bytes, but bytes {start}..{end} were asked for (did it change?)")]
    Shorter {
        /// The file.
        path: PathBuf,
        /// Its size now.
        len: u64,
        /// The range's start.
        start: u64,
        /// The range's end.
        end: u64,
    },
    /// A corpus of no bytes was asked for.
    #[error("a corpus needs at least 1 byte")]
    EmptyCorpus,
    /// Not enough free disk for the corpus.
    #[error(
        "a corpus of {need} bytes does not fit in {dir}: {free} bytes free (ask for fewer --mb)"
    )]
    NoSpace {
        /// The directory the corpus would go to.
        dir: PathBuf,
        /// Bytes asked for.
        need: u64,
        /// Bytes free there.
        free: u64,
    },
    /// The pool failed.
    #[error("pool: {0}")]
    Pool(#[from] PoolError),
    /// A worker's task reported an error.
    #[error("worker: {0}")]
    Worker(String),
    /// The shared table of the locked variant failed (full, lock lost).
    #[error("shared table: {0}")]
    Table(String),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WordcountError {
    let path = path.to_path_buf();
    move |error| WordcountError::Io {
        action,
        path,
        error,
    }
}

// ------------------------------------------------------------------ reference

/// Every word's count: the result of a frequency count, and the table the
/// parent merges the workers' counts into (the reduce step).
///
/// ```
/// use shmlab::lessons::wordcount::{Frequencies, count_words};
///
/// let mut expected = Frequencies::default();
/// expected.add("the", 2);
/// expected.add("dog", 2);
/// // Equal: the same words with the same counts.
/// assert_eq!(count_words(b"The dog; THE dog."), expected);
/// ```
#[derive(Debug, Clone)]
pub struct Frequencies {
    table: WordTable,
}

impl Default for Frequencies {
    fn default() -> Self {
        Frequencies {
            table: WordTable::for_merging(),
        }
    }
}

/// One row of a top-k list.
///
/// ```
/// use shmlab::lessons::wordcount::{WordCount, count_words};
///
/// let top = count_words(b"b a b").top(1);
/// assert_eq!(top, [WordCount { word: "b".to_string(), count: 2 }]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordCount {
    /// The word (lowercase ASCII letters).
    pub word: String,
    /// How often it occurs.
    pub count: u64,
}

impl Frequencies {
    /// Adds `n` occurrences of `word`, taken as it is (an empty word is
    /// ignored).
    ///
    /// ```
    /// use shmlab::lessons::wordcount::Frequencies;
    ///
    /// let mut f = Frequencies::default();
    /// f.add("dog", 2);
    /// f.add("dog", 1);
    /// f.add("", 5); // ignored
    /// assert_eq!((f.get("dog"), f.words(), f.distinct()), (3, 3, 1));
    /// ```
    pub fn add(&mut self, word: &str, n: u64) {
        let word = word.as_bytes();
        if !word.is_empty() {
            let (k0, k1) = word_keys(word);
            self.table
                .add(k0, k1, word.len(), word.get(16..).unwrap_or(&[]), n);
        }
    }

    /// Adds a worker's counts: the reduce step.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::{Frequencies, count_chunk, count_words};
    ///
    /// let text = b"the cat saw the dog";
    /// let mut total = Frequencies::default();
    /// total.merge(&count_chunk(&text[..8])); // "the cat "
    /// total.merge(&count_chunk(&text[8..])); // "saw the dog"
    /// assert_eq!(total, count_words(text));
    /// ```
    pub fn merge(&mut self, chunk: &ChunkCounts) {
        // Grow first, rather than several times on the way.
        self.table
            .reserve(chunk.counts.len().saturating_sub(self.table.distinct()));
        for (word, &n) in chunk.words.split(' ').zip(&chunk.counts) {
            self.add(word, n);
        }
    }

    /// How often `word` occurs (0 if never).
    ///
    /// ```
    /// use shmlab::lessons::wordcount::count_words;
    ///
    /// let f = count_words(b"Dog dog DOG!");
    /// assert_eq!((f.get("dog"), f.get("cat")), (3, 0));
    /// ```
    pub fn get(&self, word: &str) -> u64 {
        let word = word.as_bytes();
        if word.is_empty() {
            return 0;
        }
        let (k0, k1) = word_keys(word);
        self.table
            .get(k0, k1, word.len(), word.get(16..).unwrap_or(&[]))
    }

    /// The counts of [`TARGETS`].
    ///
    /// ```
    /// use shmlab::lessons::wordcount::count_words;
    ///
    /// // dog, cat, boy, girl
    /// assert_eq!(count_words(b"dog cat dog girl").four(), [2, 1, 0, 1]);
    /// ```
    pub fn four(&self) -> [u64; 4] {
        TARGETS.map(|w| self.get(w))
    }

    /// All words, counted with repetition.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::count_words;
    ///
    /// assert_eq!(count_words(b"a rose is a rose").words(), 5);
    /// ```
    pub fn words(&self) -> u64 {
        self.table.words
    }

    /// Different words.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::count_words;
    ///
    /// assert_eq!(count_words(b"a rose is a rose").distinct(), 3);
    /// ```
    pub fn distinct(&self) -> usize {
        self.table.distinct()
    }

    /// Every word and its count, in no particular order.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::{WordCount, count_words};
    ///
    /// let mut all = count_words(b"b a b").to_vec();
    /// all.sort_by(|x, y| x.word.cmp(&y.word));
    /// let row = |word: &str, count| WordCount { word: word.to_string(), count };
    /// assert_eq!(all, [row("a", 1), row("b", 2)]);
    /// ```
    pub fn to_vec(&self) -> Vec<WordCount> {
        let mut all = Vec::with_capacity(self.table.distinct());
        self.table.for_each(|word, count| {
            all.push(WordCount {
                word: word.to_string(),
                count,
            })
        });
        all
    }

    /// The `k` most frequent words, by count (highest first) and then by
    /// word.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::count_words;
    ///
    /// let top = count_words(b"c b a b c").top(2);
    /// let words: Vec<(&str, u64)> = top.iter().map(|w| (w.word.as_str(), w.count)).collect();
    /// assert_eq!(words, [("b", 2), ("c", 2)]); // a tie goes alphabetically
    /// ```
    pub fn top(&self, k: usize) -> Vec<WordCount> {
        let mut all = self.to_vec();
        all.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
        all.truncate(k);
        all
    }

    /// The counts as a map.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use shmlab::lessons::wordcount::count_words;
    ///
    /// let expected = HashMap::from([("dog".to_string(), 2), ("cat".to_string(), 1)]);
    /// assert_eq!(count_words(b"dog cat dog").to_map(), expected);
    /// ```
    pub fn to_map(&self) -> HashMap<String, u64> {
        self.to_vec()
            .into_iter()
            .map(|w| (w.word, w.count))
            .collect()
    }
}

impl PartialEq for Frequencies {
    /// The same words with the same counts.
    fn eq(&self, other: &Self) -> bool {
        if self.distinct() != other.distinct() || self.words() != other.words() {
            return false;
        }
        let mut same = true;
        self.table
            .for_each(|word, count| same &= other.get(word) == count);
        same
    }
}

impl Eq for Frequencies {}

/// The reference: the word rule written the simplest way — split on every
/// byte that is not a letter, lowercase what is left, count it in a
/// `HashMap`.
///
/// ```
/// use shmlab::lessons::wordcount::reference_count;
///
/// let f = reference_count(b"The dog's DOG, dog2cat\xff\n");
/// assert_eq!(f.four(), [3, 1, 0, 0]);
/// assert_eq!((f.get("the"), f.get("s"), f.words()), (1, 1, 6));
/// ```
pub fn reference_count(bytes: &[u8]) -> Frequencies {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for word in bytes.split(|&b| !is_letter(b)).filter(|w| !w.is_empty()) {
        let word = String::from_utf8_lossy(word).to_ascii_lowercase();
        *counts.entry(word).or_insert(0) += 1;
    }
    let mut f = Frequencies::default();
    for (word, n) in &counts {
        f.add(word, *n);
    }
    f
}

// ------------------------------------------------------------ letter masks

/// `LO * b` puts byte `b` in every lane of a `u64`.
const LO: u64 = 0x0101_0101_0101_0101;
const LOWERCASE: u64 = 0x2020_2020_2020_2020;

/// The high bit of each byte lane of `y` whose value is in `lo..=hi`
/// (both below 0x80); exact for every byte value.
#[inline(always)]
fn lanes_between(y: u64, lo: u8, hi: u8) -> u64 {
    let low7 = y & (LO * 0x7F);
    let at_least_lo = low7.wrapping_add(LO * (0x80 - lo as u64));
    let above_hi = low7.wrapping_add(LO * (0x7F - hi as u64));
    at_least_lo & !above_hi & !y & (LO * 0x80)
}

/// The high bits of the 8 lanes, as the 8 low bits (lane 0 → bit 0).
#[inline(always)]
fn gather_lanes(high_bits: u64) -> u64 {
    (high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Portable masks of a 64-byte block, 8 bytes at a time in `u64`s
/// ("SIMD within a register"): bit `i` of the first is set when `block[i]`
/// is a letter, of the second when it is one of `b`..=`g` in either case
/// (the first letters of the four words).
#[inline(always)]
fn masks_portable(block: &[u8; 64]) -> (u64, u64) {
    let mut letters = 0;
    let mut firsts = 0;
    for (k, lane) in block.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(lane);
        let y = u64::from_le_bytes(word) | LOWERCASE;
        letters |= gather_lanes(lanes_between(y, b'a', b'z')) << (8 * k);
        firsts |= gather_lanes(lanes_between(y, b'b', b'g')) << (8 * k);
    }
    (letters, firsts)
}

/// [`masks_portable`] with SSE2: 16 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masks_sse2(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_sub_epi8, _mm_xor_si128,
    };
    let mut letters = 0u64;
    let mut firsts = 0u64;
    for k in 0..4 {
        // SAFETY: SSE2 is part of the x86_64 baseline, which every x86_64
        // CPU has and rustc's x86_64 targets enable, so the intrinsics can
        // run; the unaligned load reads bytes 16k..16k+16 of the 64-byte
        // array `block` (k < 4), all in bounds.
        let (is_letter, is_first) = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
            // t = lower - 'a', compared unsigned by flipping the sign bit.
            let t = _mm_xor_si128(
                _mm_sub_epi8(lower, _mm_set1_epi8(b'a' as i8)),
                _mm_set1_epi8(i8::MIN),
            );
            let is_letter = _mm_cmplt_epi8(t, _mm_set1_epi8((26u8 ^ 0x80) as i8));
            // 'b'..='g' is t in 1..=6, i.e. t - 1 < 6 unsigned.
            let is_first = _mm_cmplt_epi8(
                _mm_sub_epi8(t, _mm_set1_epi8(1)),
                _mm_set1_epi8((6u8 ^ 0x80) as i8),
            );
            (
                _mm_movemask_epi8(is_letter) as u32 as u64,
                _mm_movemask_epi8(is_first) as u32 as u64,
            )
        };
        letters |= is_letter << (16 * k);
        firsts |= is_first << (16 * k);
    }
    (letters, firsts)
}

#[inline(always)]
fn masks_best(block: &[u8; 64]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        masks_sse2(block)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        masks_portable(block)
    }
}

/// A byte slice read in 64-byte blocks; the last, partial block is a
/// zero-padded copy (zero is a separator), with 16 more zero bytes so that
/// a word's first 16 bytes can always be loaded.
struct Blocks<'a> {
    bytes: &'a [u8],
    full: usize,
    tail: [u8; 64 + 16],
}

impl<'a> Blocks<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let full = bytes.len() / 64;
        let mut tail = [0u8; 64 + 16];
        let rest = &bytes[full * 64..];
        tail[..rest.len()].copy_from_slice(rest);
        Blocks { bytes, full, tail }
    }

    fn count(&self) -> usize {
        self.full + usize::from(self.bytes.len() % 64 != 0)
    }

    #[inline(always)]
    fn block(&self, i: usize) -> &[u8; 64] {
        let slice = if i < self.full {
            &self.bytes[i * 64..i * 64 + 64]
        } else {
            &self.tail[..64]
        };
        slice.try_into().unwrap_or(&[0; 64])
    }

    /// `N` bytes from `at`, zero past the end.
    #[inline(always)]
    fn load<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.bytes.get(at..at + N) {
            out.copy_from_slice(s);
        } else if at >= self.full * 64 {
            let at = at - self.full * 64;
            out.copy_from_slice(&self.tail[at..at + N]);
        } else {
            let n = self.bytes.len() - at;
            out[..n].copy_from_slice(&self.bytes[at..]);
        }
        out
    }
}

// -------------------------------------------------------- the four words

const DOG: u32 = u32::from_le_bytes(*b"dog\0");
const CAT: u32 = u32::from_le_bytes(*b"cat\0");
const BOY: u32 = u32::from_le_bytes(*b"boy\0");
const GIRL: u32 = u32::from_le_bytes(*b"girl");

#[inline(always)]
fn four_with(bytes: &[u8], masks: impl Fn(&[u8; 64]) -> (u64, u64)) -> [u64; 4] {
    let blocks = Blocks::new(bytes);
    let n = blocks.count();
    let mut counts = [0u64; 4];
    let (mut letters, mut firsts) = if n > 0 {
        masks(blocks.block(0))
    } else {
        (0, 0)
    };
    let mut carry = 0; // was the last byte of the previous block a letter?
    for i in 0..n {
        let (next, next_firsts) = if i + 1 < n {
            masks(blocks.block(i + 1))
        } else {
            (0, 0)
        };
        // Bit j of `ahead(k)`: is byte j + k a letter?
        let ahead = |k: u32| (letters >> k) | (next << (64 - k));
        let starts = letters & !((letters << 1) | carry);
        let len4 = ahead(3);
        // Words of 3 or 4 letters starting with b..g.
        let mut candidates = starts & firsts & ahead(1) & ahead(2) & (!len4 | !ahead(4));
        while candidates != 0 {
            let bit = candidates.trailing_zeros();
            candidates &= candidates - 1;
            let word = u32::from_le_bytes(blocks.load::<4>(i * 64 + bit as usize)) | 0x2020_2020;
            if (len4 >> bit) & 1 == 1 {
                counts[3] += u64::from(word == GIRL);
            } else {
                let word = word & 0x00FF_FFFF;
                counts[0] += u64::from(word == DOG);
                counts[1] += u64::from(word == CAT);
                counts[2] += u64::from(word == BOY);
            }
        }
        carry = letters >> 63;
        letters = next;
        firsts = next_firsts;
    }
    counts
}

/// Counts [`TARGETS`] in `bytes`: the fast path of the four-word count.
///
/// It looks at 64 bytes at a time: one mask says which bytes are letters,
/// another which are `b`..`g`; shifting and combining them gives, in a few
/// instructions, the starts of every 3- or 4-letter word that begins with
/// `b`, `c`, `d` or `g` — the only words that can be a target. Only those
/// few are compared with the targets. On x86_64 the masks come from SSE2,
/// elsewhere from [`count_four_portable`]'s arithmetic on `u64`s.
///
/// ```
/// use shmlab::lessons::wordcount::count_four;
///
/// assert_eq!(count_four(b"Dog, cat; BOY girl? dogs catgirl girl\xffdog"), [2, 1, 1, 2]);
/// ```
pub fn count_four(bytes: &[u8]) -> [u64; 4] {
    four_with(bytes, masks_best)
}

/// [`count_four`] with the portable masks (no SIMD instructions): what
/// runs on other CPUs, kept callable so that tests and benches can compare.
///
/// ```
/// use shmlab::lessons::wordcount::{count_four, count_four_portable, generate};
///
/// let text = generate(10_000, 1);
/// assert_eq!(count_four_portable(&text), count_four(&text));
/// ```
pub fn count_four_portable(bytes: &[u8]) -> [u64; 4] {
    four_with(bytes, masks_portable)
}

/// Calls `word(start, end)` for every word of `bytes`, in order.
#[inline(always)]
fn for_each_word(blocks: &Blocks<'_>, mut word: impl FnMut(usize, usize)) {
    let mut carry = 0;
    let mut start = 0;
    let mut inside = false;
    for i in 0..blocks.count() {
        let (letters, _) = masks_best(blocks.block(i));
        // A bit where letter-ness changes: a word starts, or one ended
        // just before.
        let mut edges = letters ^ ((letters << 1) | carry);
        while edges != 0 {
            let at = i * 64 + edges.trailing_zeros() as usize;
            edges &= edges - 1;
            if inside {
                word(start, at);
            } else {
                start = at;
            }
            inside = !inside;
        }
        carry = letters >> 63;
    }
    if inside {
        word(start, blocks.bytes.len());
    }
}

// ------------------------------------------------------ all the words

/// An FxHash-style hasher (rustc's): one multiply and rotate per 8 bytes.
/// Words are short and the table is private to one count, so speed matters
/// and resistance to chosen collisions does not; a hostile file could make
/// the count slower, never wrong.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

const FX: u64 = 0x517C_C1B7_2722_0A95;

impl FxHasher {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX);
    }
}

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut lanes = bytes.chunks_exact(8);
        for lane in &mut lanes {
            let mut w = [0u8; 8];
            w.copy_from_slice(lane);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = lanes.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
}

/// The hash of a lowercase word: its first 16 bytes and length, then the
/// rest 8 bytes at a time. Used by [`WordTable`] and the shared table.
#[inline(always)]
fn word_hash(k0: u64, k1: u64, len: usize, rest: &[u8]) -> u64 {
    let mut h = FxHasher(len as u64);
    h.mix(k0);
    h.mix(k1);
    if !rest.is_empty() {
        std::hash::Hasher::write(&mut h, rest);
    }
    // Spread the high bits (the table index) over all input bits.
    h.0 ^ (h.0 >> 29)
}

/// The first 16 bytes of a lowercase word as two little-endian `u64`s,
/// zero past its end.
fn word_keys(word: &[u8]) -> (u64, u64) {
    let mut b = [0u8; 16];
    let n = word.len().min(16);
    b[..n].copy_from_slice(&word[..n]);
    let (lo, hi) = b.split_at(8);
    (
        u64::from_le_bytes(lo.try_into().unwrap_or([0; 8])),
        u64::from_le_bytes(hi.try_into().unwrap_or([0; 8])),
    )
}

/// `BYTE_MASKS[n]`: the low `n` bytes of a `u64` set (`n` ≤ 8).
const BYTE_MASKS: [u64; 9] = {
    let mut masks = [0u64; 9];
    let mut n = 1;
    while n <= 8 {
        masks[n] = u64::MAX >> (64 - 8 * n);
        n += 1;
    }
    masks
};

/// 32 bytes, aligned to 32 so that no slot straddles two cache lines
/// (the allocator aligns to 16 only: every other slot would).
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct Slot {
    /// The word's first 16 bytes, lowercase, zero-padded.
    k0: u64,
    k1: u64,
    count: u64,
    /// 0 marks an empty slot (words have at least one letter).
    len: u32,
    /// Where bytes 16.. of a longer word start in `spill`.
    spill: u32,
}

/// The per-chunk frequency table: open addressing over 32-byte slots that
/// hold a word's first 16 bytes inline, so most words (≤ 16 letters) are
/// found with two compares and no pointer chasing; longer words keep the
/// rest of their bytes in one shared buffer.
#[derive(Debug, Clone)]
struct WordTable {
    slots: Vec<Slot>,
    bits: u32,
    /// An odd multiplier applied to the hash before its top `bits` pick
    /// the slot (see [`WordTable::for_merging`]).
    spread: u64,
    used: usize,
    spill: Vec<u8>,
    scratch: Vec<u8>,
    words: u64,
    /// Words the slots cannot describe (longer than 4 GiB, or whose bytes
    /// would start past 4 GiB of `spill`): only in inputs of several GiB.
    overflow: HashMap<Vec<u8>, u64>,
}

impl Default for WordTable {
    fn default() -> Self {
        Self::new()
    }
}

impl WordTable {
    fn new() -> Self {
        Self::for_bytes(0)
    }

    /// A table sized for a text of `bytes` bytes: one slot per 64 bytes, at
    /// least 4096 and at most 65 536 to start with (English has some tens
    /// of thousands of different words), so that it seldom grows.
    fn for_bytes(bytes: usize) -> Self {
        let bits = (bytes / 64).clamp(1 << 12, 1 << 16).ilog2();
        WordTable {
            slots: vec![Slot::default(); 1 << bits],
            bits,
            spread: 1,
            used: 0,
            spill: Vec::new(),
            scratch: Vec::new(),
            words: 0,
            overflow: HashMap::new(),
        }
    }

    /// A table for merging other tables into: it places words by other
    /// bits of their hash than the tables it merges. (A worker sends its
    /// words in slot order, that is sorted by the top bits of the hash;
    /// inserted in that order into a table that used the same bits, they
    /// would land in a few long runs of full slots: 30 ms instead of 2 ms
    /// for one chunk of 28 000 words.)
    fn for_merging() -> Self {
        WordTable {
            spread: 0x9E37_79B9_7F4A_7C15,
            ..Self::new()
        }
    }

    /// The slot where a word of hash `h` starts looking.
    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        (h.wrapping_mul(self.spread) >> (64 - self.bits)) as usize
    }

    /// Different words.
    fn distinct(&self) -> usize {
        self.used + self.overflow.len()
    }

    fn spelled(k0: u64, k1: u64, len: usize, rest: &[u8]) -> Vec<u8> {
        let head = [k0.to_le_bytes(), k1.to_le_bytes()];
        let head = head.iter().flatten().take(len.min(16));
        head.chain(rest).copied().collect()
    }

    fn rest_of(&self, slot: &Slot) -> &[u8] {
        let len = slot.len as usize;
        if len <= 16 {
            &[]
        } else {
            &self.spill[slot.spill as usize..slot.spill as usize + len - 16]
        }
    }

    /// The count of a word given as in [`WordTable::add`].
    fn get(&self, k0: u64, k1: u64, len: usize, rest: &[u8]) -> u64 {
        let h = word_hash(k0, k1, len, rest);
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let slot = &self.slots[i];
            if slot.len == 0 {
                break;
            }
            if slot.len as usize == len
                && slot.k0 == k0
                && slot.k1 == k1
                && (len <= 16 || self.rest_of(slot) == rest)
            {
                return slot.count;
            }
            i = (i + 1) & mask;
        }
        if self.overflow.is_empty() {
            return 0;
        }
        let word = Self::spelled(k0, k1, len, rest);
        self.overflow.get(&word).copied().unwrap_or(0)
    }

    /// Adds `n` occurrences of a word given as its first 16 bytes
    /// (zero-padded), its length (at least 1) and its bytes from 16 on.
    #[inline(always)]
    fn add(&mut self, k0: u64, k1: u64, len: usize, rest: &[u8], n: u64) {
        self.words += n;
        let h = word_hash(k0, k1, len, rest);
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let slot = self.slots[i];
            if slot.len as usize == len
                && slot.k0 == k0
                && slot.k1 == k1
                && (len <= 16 || self.rest_of(&slot) == rest)
            {
                self.slots[i].count += n;
                return;
            }
            if slot.len == 0 {
                let (Ok(len32), Ok(spill)) = (u32::try_from(len), u32::try_from(self.spill.len()))
                else {
                    let word = Self::spelled(k0, k1, len, rest);
                    *self.overflow.entry(word).or_insert(0) += n;
                    return;
                };
                self.spill.extend_from_slice(rest);
                self.slots[i] = Slot {
                    k0,
                    k1,
                    count: n,
                    len: len32,
                    spill,
                };
                self.used += 1;
                if self.used * 2 > self.slots.len() {
                    self.grow();
                }
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Grows until `extra` more words fit without growing.
    fn reserve(&mut self, extra: usize) {
        while (self.used + extra) * 2 > self.slots.len() {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.bits += 1;
        self.slots = vec![Slot::default(); 1 << self.bits];
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| s.len != 0) {
            let h = word_hash(slot.k0, slot.k1, slot.len as usize, self.rest_of(&slot));
            let mut i = self.home(h);
            while self.slots[i].len != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Counts every word of `bytes`.
    fn count(&mut self, bytes: &[u8]) {
        let blocks = Blocks::new(bytes);
        for_each_word(&blocks, |start, end| {
            let len = end - start;
            if len <= 16 {
                let b = blocks.load::<16>(start);
                let (lo, hi) = b.split_at(8);
                let lo = u64::from_le_bytes(lo.try_into().unwrap_or([0; 8])) | LOWERCASE;
                let hi = u64::from_le_bytes(hi.try_into().unwrap_or([0; 8])) | LOWERCASE;
                // Keep the word's own bytes only (letters | 0x20 is
                // lowercase), with masks from a table rather than a branch
                // on the length, which would be mispredicted at random.
                let k0 = lo & BYTE_MASKS[len.min(8)];
                let k1 = hi & BYTE_MASKS[len.saturating_sub(8)];
                self.add(k0, k1, len, &[], 1);
            } else {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                scratch.extend(bytes[start..end].iter().map(|b| b | 0x20));
                let (k0, k1) = word_keys(&scratch);
                self.add(k0, k1, len, &scratch[16..], 1);
                self.scratch = scratch;
            }
        });
    }

    /// Calls `f(word, count)` for every word.
    fn for_each(&self, mut f: impl FnMut(&str, u64)) {
        let mut word = Vec::new();
        for slot in self.slots.iter().filter(|s| s.len != 0) {
            word.clear();
            let head = [slot.k0.to_le_bytes(), slot.k1.to_le_bytes()];
            let head = head.iter().flatten().take(slot.len as usize);
            word.extend(head.chain(self.rest_of(slot)));
            // Always UTF-8: the counters store ASCII letters, and
            // `Frequencies::add` the bytes of a `&str`.
            f(&String::from_utf8_lossy(&word), slot.count);
        }
        for (word, &count) in &self.overflow {
            f(&String::from_utf8_lossy(word), count);
        }
    }
}

/// One chunk's counts as a worker sends them back: the words, separated by
/// single spaces, and their counts in the same order. (Two JSON values
/// instead of one `[word, count]` pair per word: the parent decodes them
/// several times faster.)
///
/// ```
/// use std::collections::BTreeMap;
/// use shmlab::lessons::wordcount::count_chunk;
///
/// let chunk = count_chunk(b"b a b");
/// let counts: BTreeMap<&str, u64> = chunk.words.split(' ').zip(chunk.counts).collect();
/// assert_eq!(counts, BTreeMap::from([("a", 1), ("b", 2)]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkCounts {
    /// The words, separated by spaces.
    pub words: String,
    /// `counts[i]` is the count of the `i`-th word.
    pub counts: Vec<u64>,
}

/// Counts every word of `bytes`: the map step of the frequency count.
///
/// ```
/// use shmlab::lessons::wordcount::count_chunk;
///
/// // Each different word once, with its count: what a worker sends back.
/// let chunk = count_chunk(b"to be or not to be");
/// assert_eq!(chunk.counts.len(), 4);
/// assert_eq!(chunk.counts.iter().sum::<u64>(), 6);
/// ```
pub fn count_chunk(bytes: &[u8]) -> ChunkCounts {
    let mut table = WordTable::for_bytes(bytes.len());
    table.count(bytes);
    let mut out = ChunkCounts {
        words: String::with_capacity(8 * table.distinct()),
        counts: Vec::with_capacity(table.distinct()),
    };
    table.for_each(|word, count| {
        if !out.counts.is_empty() {
            out.words.push(' ');
        }
        out.words.push_str(word);
        out.counts.push(count);
    });
    out
}

/// Counts every word of `bytes`: the fast serial frequency count.
///
/// ```
/// use shmlab::lessons::wordcount::{count_words, reference_count};
///
/// let text = b"It was the best of times, it was the worst of times.";
/// assert_eq!(count_words(text), reference_count(text));
/// assert_eq!(count_words(text).get("times"), 2);
/// ```
pub fn count_words(bytes: &[u8]) -> Frequencies {
    let mut table = WordTable::for_bytes(bytes.len());
    table.count(bytes);
    Frequencies { table }
}

// --------------------------------------------------------- mapped files

/// A file (or a byte range of one) mapped read-only into memory.
///
/// ```
/// use shmlab::lessons::wordcount::{Mapped, count_four};
///
/// # fn main() -> anyhow::Result<()> {
/// let path = std::env::temp_dir().join(format!("shmlab-doctest-{}.txt", std::process::id()));
/// std::fs::write(&path, "the dog and the cat")?;
/// let map = Mapped::open(&path)?;
/// assert_eq!(count_four(map.bytes()), [1, 1, 0, 0]);
/// std::fs::remove_file(&path)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Mapped {
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    /// Maps all of the regular file at `path`.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::Mapped;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let path = std::env::temp_dir().join(format!("shmlab-doctest-{}.txt", std::process::id()));
    /// std::fs::write(&path, "the dog and the cat")?;
    /// let map = Mapped::open(&path)?;
    /// assert_eq!(map.bytes().len(), 19);
    /// std::fs::remove_file(&path)?;
    /// # Ok(()) }
    /// ```
    pub fn open(path: &Path) -> Result<Mapped, WordcountError> {
        Self::open_range(path, 0, None)
    }

    /// Maps bytes `start..end` of the regular file at `path` (`end = None`:
    /// to the end of the file).
    ///
    /// ```
    /// use shmlab::lessons::wordcount::{Mapped, WordcountError};
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let path = std::env::temp_dir().join(format!("shmlab-doctest-{}.txt", std::process::id()));
    /// std::fs::write(&path, "the dog and the cat")?;
    /// assert_eq!(Mapped::open_range(&path, 4, Some(7))?.bytes(), b"dog");
    /// let past_the_end = Mapped::open_range(&path, 4, Some(100));
    /// assert!(matches!(past_the_end, Err(WordcountError::Shorter { len: 19, .. })));
    /// std::fs::remove_file(&path)?;
    /// # Ok(()) }
    /// ```
    pub fn open_range(path: &Path, start: u64, end: Option<u64>) -> Result<Mapped, WordcountError> {
        let file = File::open(path).map_err(io_error("open", path))?;
        let meta = file.metadata().map_err(io_error("inspect", path))?;
        if !meta.is_file() {
            return Err(WordcountError::NotAFile(path.to_path_buf()));
        }
        let len = meta.len();
        let end = end.unwrap_or(len);
        if start > end || end > len {
            return Err(WordcountError::Shorter {
                path: path.to_path_buf(),
                len,
                start,
                end,
            });
        }
        if start == end {
            return Ok(Mapped { map: None });
        }
        let size = usize::try_from(end - start).map_err(|_| WordcountError::Shorter {
            path: path.to_path_buf(),
            len,
            start,
            end,
        })?;
        // SAFETY: the mapping is only read, through `&[u8]`, for as long as
        // `Mapped` lives. What memmap2 cannot promise is that nobody changes
        // the file meanwhile, so this relies on the invariant that the
        // corpus is not written or truncated while it is counted (the lab's
        // own corpus is a file in the temp directory that only it knows;
        // the handout asks the same of a `--corpus` file). If the file is
        // truncated anyway, reading a page past its new end raises SIGBUS
        // and the process dies — a pool worker's death comes back as
        // `PoolError::WorkerDied` "killed by SIGBUS", the parent's ends the
        // lab — it never reads garbage silently. A concurrent write would
        // change bytes under the shared slice, which can only make counts
        // wrong (the reference check would show it).
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len(size)
                .map(&file)
        }
        .map_err(io_error("map", path))?;
        // Read front to back: the kernel may read ahead further. A hint;
        // its failure changes nothing.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Mapped { map: Some(map) })
    }

    /// The mapped bytes.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::Mapped;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let path = std::env::temp_dir().join(format!("shmlab-doctest-{}.txt", std::process::id()));
    /// std::fs::write(&path, "the dog and the cat")?;
    /// assert_eq!(Mapped::open_range(&path, 8, None)?.bytes(), b"and the cat");
    /// assert!(Mapped::open_range(&path, 3, Some(3))?.bytes().is_empty());
    /// std::fs::remove_file(&path)?;
    /// # Ok(()) }
    /// ```
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Splits `bytes` into at most `chunks` consecutive ranges that cover it,
/// none empty. Each boundary starts at `i × len / chunks` and moves forward
/// past any letters, so it falls on a separator (or the end) and no word is
/// cut in two.
///
/// ```
/// use shmlab::lessons::wordcount::chunk_bounds;
///
/// let text = b"alpha beta gamma delta";
/// // 22 / 2 = 11 is the `g` of `gamma`: the boundary moves on to the space.
/// assert_eq!(chunk_bounds(text, 2), vec![(0, 16), (16, 22)]);
/// assert_eq!(chunk_bounds(b"oneveryverylongword", 4), vec![(0, 19)]);
/// assert!(chunk_bounds(b"", 4).is_empty());
/// ```
pub fn chunk_bounds(bytes: &[u8], chunks: usize) -> Vec<(u64, u64)> {
    let len = bytes.len();
    let chunks = chunks.max(1);
    let mut bounds = Vec::with_capacity(chunks);
    let mut start = 0;
    for i in 1..=chunks {
        let mut end = if i == chunks {
            len
        } else {
            (len as u128 * i as u128 / chunks as u128) as usize
        };
        end = end.max(start);
        while end < len && is_letter(bytes[end]) {
            end += 1;
        }
        if end > start {
            bounds.push((start as u64, end as u64));
            start = end;
        }
    }
    bounds
}

// ------------------------------------------------------------ pool tasks

/// One chunk of a file for a worker: the file's path and a byte range that
/// starts and ends between words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ChunkJob {
    /// The corpus.
    path: PathBuf,
    /// First byte.
    start: u64,
    /// One past the last byte.
    end: u64,
}

fn jobs(path: &Path, bounds: &[(u64, u64)]) -> Vec<ChunkJob> {
    bounds
        .iter()
        .map(|&(start, end)| ChunkJob {
            path: path.to_path_buf(),
            start,
            end,
        })
        .collect()
}

/// A worker's task: maps its chunk and counts the four words in it.
fn four_task(job: ChunkJob) -> Result<[u64; 4], String> {
    let map = Mapped::open_range(&job.path, job.start, Some(job.end)).map_err(|e| e.to_string())?;
    Ok(count_four(map.bytes()))
}
crate::task!(four_task);

/// A worker's task: maps its chunk and counts every word in it (the map
/// step).
fn words_task(job: ChunkJob) -> Result<ChunkCounts, String> {
    let map = Mapped::open_range(&job.path, job.start, Some(job.end)).map_err(|e| e.to_string())?;
    Ok(count_chunk(map.bytes()))
}
crate::task!(words_task);

/// The four-word count of the chunks `bounds` of the file at `path`, on
/// `pool`: one task per chunk; the parent adds the results.
///
/// ```
/// use shmlab::lessons::wordcount::{Mapped, TempCorpus, chunk_bounds, count_four, pool_four};
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let corpus = TempCorpus::create(50_000, 10, true)?;
///     let map = Mapped::open(corpus.path())?;
///     let bounds = chunk_bounds(map.bytes(), 4);
///     let pool = Pool::new(2)?;
///     assert_eq!(pool_four(&pool, corpus.path(), &bounds)?, count_four(map.bytes()));
///     Ok(())
/// }
/// ```
pub fn pool_four(
    pool: &Pool,
    path: &Path,
    bounds: &[(u64, u64)],
) -> Result<[u64; 4], WordcountError> {
    let mut total = [0u64; 4];
    for result in pool.imap_unordered(four_task, jobs(path, bounds), Some(1))? {
        let counts = result?.map_err(WordcountError::Worker)?;
        for (t, c) in total.iter_mut().zip(counts) {
            *t += c;
        }
    }
    Ok(total)
}

/// The frequency count of the chunks `bounds` of the file at `path`, on
/// `pool`: map-reduce. Each worker counts its chunk in a table of its own;
/// the parent merges the tables as they arrive.
///
/// ```
/// use shmlab::lessons::wordcount::{Mapped, TempCorpus, chunk_bounds, count_words, pool_words};
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let corpus = TempCorpus::create(50_000, 10, true)?;
///     let map = Mapped::open(corpus.path())?;
///     let bounds = chunk_bounds(map.bytes(), 4);
///     let pool = Pool::new(2)?;
///     assert_eq!(pool_words(&pool, corpus.path(), &bounds)?, count_words(map.bytes()));
///     Ok(())
/// }
/// ```
pub fn pool_words(
    pool: &Pool,
    path: &Path,
    bounds: &[(u64, u64)],
) -> Result<Frequencies, WordcountError> {
    let mut total = Frequencies::default();
    for result in pool.imap_unordered(words_task, jobs(path, bounds), Some(1))? {
        total.merge(&result?.map_err(WordcountError::Worker)?);
    }
    Ok(total)
}

// ------------------------------------------------ the shared locked table

/// The cells of the locked variant's table, all in one `SharedArray<i64>`
/// under its one lock:
///
/// - cell 0: arena cells used; cell 1: distinct words;
/// - then `slots` slots of 4 cells: `[hash, arena cell + 1 (0 = empty),
///   length, count]`;
/// - then the arena: each word's lowercase bytes, 8 per cell, from a cell
///   boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct TableLayout {
    /// Slots (a power of two).
    slots: usize,
    /// Distinct words it accepts (at most half the slots).
    max_distinct: usize,
    /// Cells of word bytes.
    arena_cells: usize,
}

const SLOT_CELLS: usize = 4;
const TABLE_HEADER: usize = 2;

/// The most distinct words the locked variant's table holds.
const MAX_SHARED_DISTINCT: usize = 1 << 18;

impl TableLayout {
    /// A table big enough for every word of a text of `bytes` bytes, or
    /// [`MAX_SHARED_DISTINCT`] distinct words if that is fewer. A word has
    /// at least one letter and a separator after it, except the last, so
    /// there are at most `bytes / 2 + 1` distinct words, and their bytes
    /// take at most `bytes / 8 + distinct` cells.
    fn for_bytes(bytes: u64) -> TableLayout {
        let max_distinct = (bytes / 2 + 1).min(MAX_SHARED_DISTINCT as u64) as usize;
        TableLayout {
            slots: (2 * max_distinct).next_power_of_two().max(16),
            max_distinct,
            arena_cells: (bytes / 8) as usize + max_distinct + 1,
        }
    }

    /// Cells in all.
    fn cells(&self) -> usize {
        TABLE_HEADER + SLOT_CELLS * self.slots + self.arena_cells
    }

    fn slot(&self, i: usize) -> usize {
        TABLE_HEADER + SLOT_CELLS * i
    }

    fn arena(&self, cell: usize) -> usize {
        TABLE_HEADER + SLOT_CELLS * self.slots + cell
    }
}

fn lane_cell(word: &[u8], j: usize) -> i64 {
    let mut b = [0u8; 8];
    let lane = &word[8 * j..word.len().min(8 * j + 8)];
    b[..lane.len()].copy_from_slice(lane);
    i64::from_le_bytes(b)
}

fn oob(e: crate::cells::OutOfBounds) -> String {
    e.to_string()
}

/// Adds one occurrence of the lowercase `word` (hash `h`) to the table,
/// under the lock held through `guard`.
fn locked_add(
    guard: &CellsGuard<'_, i64>,
    layout: &TableLayout,
    word: &[u8],
    h: u64,
) -> Result<(), String> {
    let lanes = word.len().div_ceil(8);
    let mask = layout.slots - 1;
    let mut i = (h >> 32) as usize & mask;
    for _ in 0..layout.slots {
        let base = layout.slot(i);
        let at = guard.get(base + 1).map_err(oob)?;
        if at == 0 {
            let used = guard.get(0).map_err(oob)? as usize;
            let distinct = guard.get(1).map_err(oob)? as usize;
            if distinct >= layout.max_distinct || used + lanes > layout.arena_cells {
                return Err(format!(
                    "full after {distinct} distinct words (it holds {}); count a smaller prefix",
                    layout.max_distinct
                ));
            }
            for j in 0..lanes {
                guard
                    .set(layout.arena(used + j), lane_cell(word, j))
                    .map_err(oob)?;
            }
            guard.set(base, h as i64).map_err(oob)?;
            guard.set(base + 1, used as i64 + 1).map_err(oob)?;
            guard.set(base + 2, word.len() as i64).map_err(oob)?;
            guard.set(base + 3, 1).map_err(oob)?;
            guard.set(0, (used + lanes) as i64).map_err(oob)?;
            guard.set(1, distinct as i64 + 1).map_err(oob)?;
            return Ok(());
        }
        if guard.get(base).map_err(oob)? == h as i64
            && guard.get(base + 2).map_err(oob)? == word.len() as i64
        {
            let first = at as usize - 1;
            let mut same = true;
            for j in 0..lanes {
                if guard.get(layout.arena(first + j)).map_err(oob)? != lane_cell(word, j) {
                    same = false;
                    break;
                }
            }
            if same {
                let count = guard.get(base + 3).map_err(oob)?;
                guard.set(base + 3, count + 1).map_err(oob)?;
                return Ok(());
            }
        }
        i = (i + 1) & mask;
    }
    Err("no free slot".to_string())
}

/// A job of the locked variant: a chunk, and the shared table to count
/// its words in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LockedJob {
    /// The chunk.
    chunk: ChunkJob,
    /// The shared table's segment name.
    table: String,
    /// Its layout.
    layout: TableLayout,
}

/// A worker's task in the anti-pattern: maps its chunk and, for every
/// word, takes the shared table's lock, adds 1 to the word's count and
/// unlocks. Returns the number of words it added.
fn locked_task(job: LockedJob) -> Result<u64, String> {
    let table = SharedArray::<i64>::open(&job.table).map_err(|e| e.to_string())?;
    if table.len() != job.layout.cells() {
        return Err(format!(
            "table {} has {} cells, expected {}",
            job.table,
            table.len(),
            job.layout.cells()
        ));
    }
    let chunk = &job.chunk;
    let map =
        Mapped::open_range(&chunk.path, chunk.start, Some(chunk.end)).map_err(|e| e.to_string())?;
    let bytes = map.bytes();
    let blocks = Blocks::new(bytes);
    let cells = table.cells();
    let mut word = Vec::new();
    let mut added = 0u64;
    let mut failed = None;
    for_each_word(&blocks, |start, end| {
        if failed.is_some() {
            return;
        }
        word.clear();
        word.extend(bytes[start..end].iter().map(|b| b | 0x20));
        let (k0, k1) = word_keys(&word);
        let h = word_hash(k0, k1, word.len(), word.get(16..).unwrap_or(&[]));
        let outcome = match cells.lock() {
            Ok(guard) => locked_add(&guard, &job.layout, &word, h),
            Err(e) => Err(format!("lock: {}", e.discard_guard())),
        };
        match outcome {
            Ok(()) => added += 1,
            Err(e) => failed = Some(e),
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(added),
    }
}
crate::task!(locked_task);

/// Reads the whole table back (in the parent, after the workers are done).
fn read_table(table: &SharedArray<i64>, layout: &TableLayout) -> Result<Frequencies, String> {
    let guard = table.lock().map_err(|e| e.discard_guard().to_string())?;
    let mut f = Frequencies::default();
    for i in 0..layout.slots {
        let base = layout.slot(i);
        let at = guard.get(base + 1).map_err(oob)?;
        if at == 0 {
            continue;
        }
        let len = guard.get(base + 2).map_err(oob)? as usize;
        let count = guard.get(base + 3).map_err(oob)? as u64;
        let mut word = String::with_capacity(len);
        for j in 0..len.div_ceil(8) {
            let lane = guard
                .get(layout.arena(at as usize - 1 + j))
                .map_err(oob)?
                .to_le_bytes();
            word.extend(lane.iter().take(len - 8 * j).map(|&b| char::from(b)));
        }
        f.add(&word, count);
    }
    Ok(f)
}

/// The anti-pattern: the frequency count of the chunks `bounds` of the
/// file at `path`, with every worker adding every word to one table in
/// shared memory under one lock. The table is sized for the bytes in
/// `bounds`; it is created here and removed when this returns.
///
/// ```
/// use shmlab::lessons::wordcount::{Mapped, TempCorpus, chunk_bounds, count_words, locked_words};
/// use shmlab::pool::Pool;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let corpus = TempCorpus::create(50_000, 10, true)?;
///     let map = Mapped::open(corpus.path())?;
///     let bounds = chunk_bounds(map.bytes(), 4);
///     let pool = Pool::new(2)?;
///     assert_eq!(locked_words(&pool, corpus.path(), &bounds)?, count_words(map.bytes()));
///     Ok(())
/// }
/// ```
pub fn locked_words(
    pool: &Pool,
    path: &Path,
    bounds: &[(u64, u64)],
) -> Result<Frequencies, WordcountError> {
    let bytes = bounds.iter().map(|&(s, e)| e - s).sum();
    let layout = TableLayout::for_bytes(bytes);
    let table = SharedArray::<i64>::create(layout.cells(), 0)
        .map_err(|e| WordcountError::Table(e.to_string()))?;
    let jobs: Vec<LockedJob> = jobs(path, bounds)
        .into_iter()
        .map(|chunk| LockedJob {
            chunk,
            table: table.name().to_string(),
            layout,
        })
        .collect();
    let mut added = 0;
    for result in pool.imap_unordered(locked_task, jobs, Some(1))? {
        added += result?.map_err(WordcountError::Table)?;
    }
    let f = read_table(&table, &layout).map_err(WordcountError::Table)?;
    if f.words() != added {
        return Err(WordcountError::Table(format!(
            "the workers added {added} words but the table holds {}",
            f.words()
        )));
    }
    Ok(f)
}

// ------------------------------------------------------ corpus generator

/// SplitMix64: a tiny, well-mixed generator that is easy to write in any
/// language, so the Python twin makes the very same corpus.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the modulo bias is below 1e-9 here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// The most common English words, most frequent first, with the four
/// tutorial words placed among them; rank r is drawn with probability
/// ∝ 1 / (r + 1) (Zipf's law).
const COMMON: [&str; 104] = [
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "i", "his", "they", "be", "at", "one", "have", "this", "from", "or",
    "had", "by", "hot", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
    "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
    "their", "time", "if", "will", "way", "boy", "about", "many", "then", "them", "write", "would",
    "like", "girl", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has",
    "look", "dog", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most",
    "people", "cat", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down",
    "side", "been", "now", "find",
];
const ONSETS: [&str; 47] = [
    "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "y",
    "z", "bl", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl", "pr", "sc", "sh", "sk",
    "sl", "sm", "sn", "sp", "st", "str", "sw", "th", "tr", "tw", "wh", "wr",
];
const VOWELS: [&str; 17] = [
    "a", "e", "i", "o", "u", "y", "ai", "au", "ea", "ee", "ei", "ie", "io", "oa", "oi", "oo", "ou",
];
const CODAS: [&str; 31] = [
    "", "", "", "", "b", "ck", "d", "ft", "g", "l", "ld", "ll", "m", "mp", "n", "nd", "ng", "nk",
    "nt", "p", "r", "rd", "rk", "rn", "s", "sh", "ss", "st", "t", "th", "x",
];
/// Different words in the generator's vocabulary.
///
/// ```
/// use shmlab::lessons::wordcount::{VOCABULARY, count_words, generate};
///
/// // Zipf-like: a few words are everywhere and most are rare, so a megabyte
/// // of text meets only part of the vocabulary (17 417 words of it here).
/// let distinct = count_words(&generate(1_000_000, 1)).distinct();
/// assert!((VOCABULARY / 2..VOCABULARY).contains(&distinct));
/// ```
pub const VOCABULARY: usize = 30_000;
/// Lines are wrapped before this many bytes.
const LINE: usize = 72;

/// The text generator behind [`make_corpus`]: English-like words with a
/// Zipf-like distribution, in sentences (capital first letter, commas, a
/// full stop, now and then a question or an exclamation), wrapped lines,
/// paragraphs; now and then a number, a word in capitals or with `'s`.
struct Generator {
    rng: SplitMix,
    vocab: Vec<String>,
    cumulative: Vec<u64>,
    first: bool,
    paragraph_break: bool,
    line: usize,
    sentence_pos: u64,
    sentence_len: u64,
    sentences_left: u64,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        let mut rng = SplitMix(seed);
        let mut vocab: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
        let mut seen: std::collections::HashSet<String> = vocab.iter().cloned().collect();
        while vocab.len() < VOCABULARY {
            let syllables = 1 + rng.below(3) + rng.below(2);
            let mut word = String::new();
            for _ in 0..syllables {
                word += rng.pick(&ONSETS);
                word += rng.pick(&VOWELS);
                word += rng.pick(&CODAS);
            }
            if seen.insert(word.clone()) {
                vocab.push(word);
            }
        }
        let mut total = 0u64;
        let cumulative = (0..vocab.len() as u64)
            .map(|r| {
                total += (1u64 << 32) / (r + 1);
                total
            })
            .collect();
        let sentence_len = 4 + rng.below(17);
        let sentences_left = 3 + rng.below(6);
        Generator {
            rng,
            vocab,
            cumulative,
            first: true,
            paragraph_break: false,
            line: 0,
            sentence_pos: 0,
            sentence_len,
            sentences_left,
        }
    }

    /// The next token (separator, word, punctuation) into `out`; false if
    /// it would not leave room for one newline within `room` bytes.
    fn token(&mut self, out: &mut Vec<u8>, room: usize) -> bool {
        let rng = &mut self.rng;
        let mut body = if rng.below(200) == 0 {
            rng.below(10_000).to_string()
        } else {
            let total = self.cumulative.last().copied().unwrap_or(1);
            let x = rng.below(total);
            let rank = self.cumulative.partition_point(|&c| c <= x);
            let mut word = self.vocab[rank].clone();
            if rng.below(400) == 0 {
                word.make_ascii_uppercase();
            } else if self.sentence_pos == 0 {
                word[..1].make_ascii_uppercase();
            }
            if rng.below(100) == 0 {
                word += "'s";
            }
            word
        };
        let ends_sentence = self.sentence_pos + 1 == self.sentence_len;
        if ends_sentence {
            body += match rng.below(20) {
                0 => "?",
                1 => "!",
                _ => ".",
            };
        } else if rng.below(12) == 0 {
            body += ",";
        }
        let sep = if self.first {
            ""
        } else if self.paragraph_break {
            "\n\n"
        } else if self.line + 1 + body.len() > LINE {
            "\n"
        } else {
            " "
        };
        if sep.len() + body.len() + 1 > room {
            return false;
        }
        out.extend_from_slice(sep.as_bytes());
        out.extend_from_slice(body.as_bytes());
        self.line = if sep == " " {
            self.line + 1 + body.len()
        } else {
            body.len()
        };
        self.first = false;
        self.paragraph_break = false;
        self.sentence_pos += 1;
        if ends_sentence {
            self.sentence_pos = 0;
            self.sentence_len = 4 + self.rng.below(17);
            self.sentences_left -= 1;
            if self.sentences_left == 0 {
                self.paragraph_break = true;
                self.sentences_left = 3 + self.rng.below(6);
            }
        }
        true
    }
}

/// Writes a corpus of exactly `bytes` bytes made from `seed` to `out`,
/// calling `progress(bytes written)` now and then. The same seed and size
/// give the same bytes, here and in the Python twin. The text stops at the
/// last token that fits and is padded with newlines (at least one).
fn write_corpus(
    out: &mut impl Write,
    bytes: u64,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> io::Result<()> {
    let mut generator = Generator::new(seed);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut written = 0u64;
    loop {
        let room = (bytes - written - buf.len() as u64).min(usize::MAX as u64) as usize;
        if !generator.token(&mut buf, room) {
            break;
        }
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            written += buf.len() as u64;
            buf.clear();
            progress(written);
        }
    }
    out.write_all(&buf)?;
    written += buf.len() as u64;
    let newlines = [b'\n'; 256];
    while written < bytes {
        let n = (bytes - written).min(256) as usize;
        out.write_all(&newlines[..n])?;
        written += n as u64;
    }
    progress(written);
    Ok(())
}

/// The corpus of `bytes` bytes made from `seed`, in memory.
///
/// ```
/// use shmlab::lessons::wordcount::generate;
///
/// let text = generate(2000, 10);
/// assert_eq!(text.len(), 2000);
/// assert_eq!(text, generate(2000, 10));
/// assert!(text.ends_with(b"\n"));
/// ```
pub fn generate(bytes: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes);
    // Writing to a Vec cannot fail.
    let _ = write_corpus(&mut out, bytes as u64, seed, |_| {});
    out
}

/// Free bytes for an unprivileged user in the file system holding `dir`.
fn free_space(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string that outlives the call and
    // `stat` points to writable memory of the type statvfs fills.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat` (and zeroes are a
    // valid statvfs anyway: it is integers only).
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // narrower than u64 on some targets
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Writes a corpus of `bytes` bytes made from `seed` to the file `path`
/// (replacing it), after checking that it fits on the disk; a progress bar
/// unless `quiet`. On failure no partial file is left.
///
/// ```
/// use shmlab::lessons::wordcount::{WordcountError, generate, make_corpus};
///
/// # fn main() -> anyhow::Result<()> {
/// let path = std::env::temp_dir().join(format!("shmlab-doctest-{}.txt", std::process::id()));
/// make_corpus(&path, 5_000, 10, true)?;
/// assert_eq!(std::fs::read(&path)?, generate(5_000, 10));
/// std::fs::remove_file(&path)?;
/// assert!(matches!(make_corpus(&path, 0, 10, true), Err(WordcountError::EmptyCorpus)));
/// # Ok(()) }
/// ```
pub fn make_corpus(path: &Path, bytes: u64, seed: u64, quiet: bool) -> Result<(), WordcountError> {
    if bytes == 0 {
        return Err(WordcountError::EmptyCorpus);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let free = free_space(&dir).map_err(io_error("inspect", &dir))?;
    let replaced = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len());
    // Keep 64 MiB spare: a full disk hurts everyone on the machine.
    if bytes.saturating_add(64 << 20) > free.saturating_add(replaced) {
        return Err(WordcountError::NoSpace {
            dir,
            need: bytes,
            free,
        });
    }
    let file = File::create(path).map_err(io_error("create", path))?;
    let bar = Bar::new("writing the corpus (MB)", quiet);
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let written = write_corpus(&mut out, bytes, seed, |n| {
        bar.update(Progress {
            done: (n / 1_000_000) as usize,
            total: Some(bytes.div_ceil(1_000_000) as usize),
        })
    })
    .and_then(|()| out.flush());
    bar.finish();
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(io_error("write", path)(e));
    }
    Ok(())
}

/// Parses a size in megabytes (10^6 bytes; decimals allowed, `_` ignored),
/// more than 0 and at most 10^6 (a terabyte). Returns bytes.
///
/// ```
/// use shmlab::lessons::wordcount::parse_mb;
///
/// assert_eq!(parse_mb("200"), Ok(200_000_000));
/// assert_eq!(parse_mb("0.5"), Ok(500_000));
/// assert!(parse_mb("0").is_err() && parse_mb("-3").is_err() && parse_mb("lots").is_err());
/// ```
pub fn parse_mb(s: &str) -> Result<u64, String> {
    let mb: f64 = s
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{s}` is not a number of megabytes"))?;
    if !mb.is_finite() || mb <= 0.0 {
        return Err("must be more than 0".to_string());
    }
    if mb > 1e6 {
        return Err(format!("at most 1000000 MB (got {s})"));
    }
    let bytes = (mb * 1e6).round() as u64;
    if bytes == 0 {
        return Err("must be at least 1 byte (0.000001 MB)".to_string());
    }
    Ok(bytes)
}

/// The name prefix of the lab's temporary corpora in the temp directory;
/// the creator's pid follows.
const TEMP_PREFIX: &str = "shmlab-wordcount-";

/// A generated corpus in the temp directory, removed when dropped.
///
/// ```
/// use shmlab::lessons::wordcount::TempCorpus;
///
/// # fn main() -> anyhow::Result<()> {
/// let corpus = TempCorpus::create(5_000, 10, true)?;
/// let path = corpus.path().to_path_buf();
/// assert!(path.exists());
/// drop(corpus);
/// assert!(!path.exists());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TempCorpus {
    path: PathBuf,
}

impl TempCorpus {
    /// Generates a corpus of `bytes` bytes from `seed` in the temp
    /// directory, named after this process.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::{TempCorpus, generate};
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let corpus = TempCorpus::create(5_000, 7, true)?;
    /// assert_eq!(std::fs::read(corpus.path())?, generate(5_000, 7));
    /// # Ok(()) }
    /// ```
    pub fn create(bytes: u64, seed: u64, quiet: bool) -> Result<TempCorpus, WordcountError> {
        // The pid lets a later run remove the file if this process is
        // killed; the sequence number keeps two corpora of one process apart.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{TEMP_PREFIX}{}-{seq}.txt", std::process::id());
        let path = std::env::temp_dir().join(name);
        make_corpus(&path, bytes, seed, quiet)?;
        Ok(TempCorpus { path })
    }

    /// Where it is.
    ///
    /// ```
    /// use shmlab::lessons::wordcount::TempCorpus;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let corpus = TempCorpus::create(1_000, 10, true)?;
    /// assert!(corpus.path().starts_with(std::env::temp_dir()));
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempCorpus {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes temporary corpora whose creator is gone (a lab interrupted
/// with Ctrl-C exits at once, without dropping its [`TempCorpus`]).
/// Returns how many were removed.
fn clean_stale_corpora() -> usize {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|n| n.strip_suffix(".txt"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _seq)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !crate::process::pid_alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

// ------------------------------------------------------------------- lab

/// Options of lab 10.
///
/// ```
/// use shmlab::lessons::wordcount::{self, FourCounts, WordcountConfig};
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     // Count a file of your own instead of a generated corpus.
///     let path = std::env::temp_dir().join(format!("shmlab-doctest-{}.txt", std::process::id()));
///     std::fs::write(&path, "The dog saw a cat. A boy, a girl and a DOG.\n".repeat(100))?;
///     let config = WordcountConfig {
///         corpus: Some(path.clone()), bytes: 0, seed: 0, workers: 2, chunks: 4,
///         top: 3, repeats: 1, locked_bytes: 1_000, quiet: true,
///     };
///     let report = wordcount::run(&config)?;
///     assert_eq!(report.counts, FourCounts { dog: 200, cat: 100, boy: 100, girl: 100 });
///     std::fs::remove_file(&path)?;
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct WordcountConfig {
    /// Count this file; `None`: generate a temporary corpus and delete it
    /// afterwards.
    pub corpus: Option<PathBuf>,
    /// Size of the generated corpus, in bytes.
    pub bytes: u64,
    /// The generator's seed.
    pub seed: u64,
    /// Worker processes in the pool.
    pub workers: usize,
    /// Chunks the file is cut into for the pool (the lab: 2 per worker).
    pub chunks: usize,
    /// Words in the top list.
    pub top: usize,
    /// Timed runs per variant (the report gives the median).
    pub repeats: usize,
    /// Bytes from the start of the corpus that the locked table counts.
    pub locked_bytes: u64,
    /// No progress bars (for `--json`).
    pub quiet: bool,
}

/// The four words' counts.
///
/// ```
/// use shmlab::lessons::wordcount::{FourCounts, count_four};
///
/// let counts = FourCounts::from(count_four(b"dog cat dog girl"));
/// assert_eq!(counts, FourCounts { dog: 2, cat: 1, boy: 0, girl: 1 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FourCounts {
    /// `dog`.
    pub dog: u64,
    /// `cat`.
    pub cat: u64,
    /// `boy`.
    pub boy: u64,
    /// `girl`.
    pub girl: u64,
}

impl From<[u64; 4]> for FourCounts {
    fn from([dog, cat, boy, girl]: [u64; 4]) -> Self {
        FourCounts {
            dog,
            cat,
            boy,
            girl,
        }
    }
}

/// One timed variant.
///
/// ```
/// # use shmlab::lessons::wordcount::{self, WordcountConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = WordcountConfig {
/// #     corpus: None, bytes: 20_000, seed: 10, workers: 2, chunks: 4,
/// #     top: 3, repeats: 1, locked_bytes: 5_000, quiet: true,
/// # };
/// let report = wordcount::run(&config)?; // a tiny config: a 20 kB corpus
/// let variants: Vec<&str> = report.results.iter().map(|r| r.variant).collect();
/// assert_eq!(variants, ["reference", "serial-four", "pool-four",
///                       "serial-words", "pool-words", "locked-table"]);
/// assert!(report.results.iter().all(|r| r.agrees));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct VariantResult {
    /// `reference`, `serial-four`, `pool-four`, `serial-words`,
    /// `pool-words` or `locked-table`.
    pub variant: &'static str,
    /// Processes counting (1: the parent alone).
    pub workers: usize,
    /// Bytes counted (the locked table counts a prefix).
    pub bytes: u64,
    /// Median seconds of the timed runs.
    pub seconds: f64,
    /// `bytes / seconds`, in 10^6 bytes per second.
    pub mb_per_s: f64,
    /// Whether every run's counts equal the reference's on the same bytes
    /// (the four words, or every word's count).
    pub agrees: bool,
    /// The four words as this variant counted them (in the first run that
    /// disagreed, if one did).
    pub counts: FourCounts,
}

/// The JSON of lab 10: `lab`, `ok`, `verdict`; `corpus` (the file, or
/// where the generated one was), `generated`, `seed`, `bytes`; `workers`,
/// `chunks`, `start_ms` (to start the pool); `words`, `distinct`,
/// `counts: {dog, cat, boy, girl}`, `top: [{word, count}]`; `repeats`,
/// `locked_bytes`; and `results: [{variant, workers, bytes, seconds,
/// mb_per_s, agrees, counts: {dog, cat, boy, girl}}]`.
///
/// ```
/// # use shmlab::lessons::wordcount::{self, WordcountConfig};
/// # fn main() -> anyhow::Result<()> {
/// # shmlab::entry(); // pool workers run their tasks here
/// # let config = WordcountConfig {
/// #     corpus: None, bytes: 20_000, seed: 10, workers: 2, chunks: 4,
/// #     top: 3, repeats: 1, locked_bytes: 5_000, quiet: true,
/// # };
/// let report = wordcount::run(&config)?; // a tiny config: a 20 kB corpus
/// let json = serde_json::to_value(&report)?;
/// assert_eq!(json["lab"], "lab10-wordcount");
/// assert_eq!(json["generated"], true);
/// assert_eq!(json["top"][0]["word"], "the"); // Zipf's most frequent word
/// # Ok(()) }
/// ```
#[derive(Debug, Serialize)]
pub struct WordcountReport {
    /// `lab`, `ok` and `verdict`.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The corpus file.
    pub corpus: String,
    /// Whether the lab generated it (and deleted it afterwards).
    pub generated: bool,
    /// The generator's seed (when generated).
    pub seed: Option<u64>,
    /// Bytes in the corpus.
    pub bytes: u64,
    /// Worker processes in the pool.
    pub workers: usize,
    /// Chunks the pool variants used.
    pub chunks: usize,
    /// Milliseconds to start the pool.
    pub start_ms: f64,
    /// Words in the corpus (with repetition).
    pub words: u64,
    /// Different words.
    pub distinct: usize,
    /// The four tutorial words.
    pub counts: FourCounts,
    /// The most frequent words.
    pub top: Vec<WordCount>,
    /// Timed runs per variant.
    pub repeats: usize,
    /// Bytes the locked table counted (a prefix of the corpus).
    pub locked_bytes: u64,
    /// One row per variant.
    pub results: Vec<VariantResult>,
}

/// What [`timed`] measured.
struct Timing {
    seconds: f64,
    agrees: bool,
    counts: [u64; 4],
}

/// Runs `f` `repeats` times: the median seconds, whether `ok` held for
/// every result, and the four words' counts of the first result for which
/// it did not (else of the last).
fn timed<T>(
    repeats: usize,
    mut f: impl FnMut() -> Result<T, WordcountError>,
    ok: impl Fn(&T) -> bool,
    four: impl Fn(&T) -> [u64; 4],
) -> Result<Timing, WordcountError> {
    let mut seconds = Vec::with_capacity(repeats);
    let mut agrees = true;
    let mut counts = [0; 4];
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let result = f()?;
        seconds.push(started.elapsed().as_secs_f64());
        if agrees {
            counts = four(&result);
            agrees = ok(&result);
        }
    }
    Ok(Timing {
        seconds: report::median(&seconds),
        agrees,
        counts,
    })
}

fn row(variant: &'static str, workers: usize, bytes: u64, timing: Timing) -> VariantResult {
    let Timing {
        seconds,
        agrees,
        counts,
    } = timing;
    VariantResult {
        variant,
        workers,
        bytes,
        seconds,
        mb_per_s: if seconds > 0.0 {
            bytes as f64 / seconds / 1e6
        } else {
            0.0
        },
        agrees,
        counts: counts.into(),
    }
}

/// Runs lab 10.
///
/// ```
/// use shmlab::lessons::wordcount::{self, WordcountConfig};
/// use shmlab::report::Report;
///
/// fn main() -> anyhow::Result<()> {
///     shmlab::entry(); // pool workers run their tasks here
///     let config = WordcountConfig {
///         corpus: None, bytes: 20_000, seed: 10, workers: 2, chunks: 4,
///         top: 3, repeats: 1, locked_bytes: 5_000, quiet: true,
///     };
///     let report = wordcount::run(&config)?;
///     assert!(report.ok(), "{}", report.verdict()); // every variant agreed
///     assert_eq!(report.bytes, 20_000);
///     Ok(())
/// }
/// ```
pub fn run(config: &WordcountConfig) -> Result<WordcountReport, WordcountError> {
    clean_stale_corpora();
    let temp = match &config.corpus {
        Some(_) => None,
        None => Some(TempCorpus::create(config.bytes, config.seed, config.quiet)?),
    };
    let path: PathBuf = match (&config.corpus, &temp) {
        (Some(p), _) => p.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => return Err(WordcountError::EmptyCorpus),
    };
    let r = config.repeats;
    let workers = config.workers;
    // A missing file, a directory: a clear error before anything starts.
    drop(Mapped::open(&path)?);

    // The reference (timed once: it is the check, not a contender) reads
    // the whole file, which also warms the page cache.
    let started = Instant::now();
    let reference = reference_count(&std::fs::read(&path).map_err(io_error("read", &path))?);
    let timing = Timing {
        seconds: started.elapsed().as_secs_f64(),
        agrees: true,
        counts: reference.four(),
    };
    let (bytes, locked_bounds, bounds) = {
        let map = Mapped::open(&path)?;
        let all = map.bytes();
        let prefix = locked_prefix(all, config.locked_bytes);
        (
            all.len() as u64,
            chunk_bounds(&all[..prefix], workers),
            chunk_bounds(all, config.chunks),
        )
    };
    let four = reference.four();
    let mut results = vec![row("reference", 1, bytes, timing)];

    let serial_four = timed(
        r,
        || Ok(count_four(Mapped::open(&path)?.bytes())),
        |c| *c == four,
        |c| *c,
    )?;
    results.push(row("serial-four", 1, bytes, serial_four));

    let started = Instant::now();
    let pool = Pool::new(workers)?;
    let start_ms = started.elapsed().as_secs_f64() * 1e3;

    let pool_four_timing = timed(
        r,
        || pool_four(&pool, &path, &bounds),
        |c| *c == four,
        |c| *c,
    )?;
    results.push(row("pool-four", workers, bytes, pool_four_timing));

    let serial_words = timed(
        r,
        || Ok(count_words(Mapped::open(&path)?.bytes())),
        |f| *f == reference,
        Frequencies::four,
    )?;
    results.push(row("serial-words", 1, bytes, serial_words));

    let pool_words_timing = timed(
        r,
        || pool_words(&pool, &path, &bounds),
        |f| *f == reference,
        Frequencies::four,
    )?;
    results.push(row("pool-words", workers, bytes, pool_words_timing));

    let locked_bytes = locked_bounds.last().map_or(0, |b| b.1);
    let prefix_reference = if locked_bytes == bytes {
        reference.clone()
    } else {
        reference_count(Mapped::open_range(&path, 0, Some(locked_bytes))?.bytes())
    };
    let locked = timed(
        r,
        || locked_words(&pool, &path, &locked_bounds),
        |f| *f == prefix_reference,
        Frequencies::four,
    )?;
    results.push(row("locked-table", workers, locked_bytes, locked));
    drop(pool);
    drop(temp);

    let ok = results.iter().all(|r| r.agrees);
    let verdict = verdict(ok, &results, four, bytes);
    Ok(WordcountReport {
        outcome: Outcome {
            lab: "lab10-wordcount",
            ok,
            verdict,
        },
        corpus: path.display().to_string(),
        generated: config.corpus.is_none(),
        seed: config.corpus.is_none().then_some(config.seed),
        bytes,
        workers,
        chunks: bounds.len(),
        start_ms,
        words: reference.words(),
        distinct: reference.distinct(),
        counts: four.into(),
        top: reference.top(config.top),
        repeats: r,
        locked_bytes,
        results,
    })
}

/// The end of the prefix the locked table counts: `want` bytes, moved
/// forward to a separator.
fn locked_prefix(bytes: &[u8], want: u64) -> usize {
    let mut end = (want.min(bytes.len() as u64)) as usize;
    while end < bytes.len() && is_letter(bytes[end]) {
        end += 1;
    }
    end
}

fn find<'a>(results: &'a [VariantResult], variant: &str) -> Option<&'a VariantResult> {
    results.iter().find(|r| r.variant == variant)
}

fn verdict(ok: bool, results: &[VariantResult], four: [u64; 4], bytes: u64) -> String {
    if !ok {
        let wrong: Vec<&str> = results
            .iter()
            .filter(|r| !r.agrees)
            .map(|r| r.variant)
            .collect();
        return format!(
            "WRONG COUNTS: {} disagreed with the reference count (see above)",
            wrong.join(", ")
        );
    }
    if bytes == 0 {
        return format!(
            "all {} variants agree with the reference on an empty file: no words, nothing to time",
            results.len()
        );
    }
    let counts = format!(
        "dog {}, cat {}, boy {}, girl {}",
        four[0], four[1], four[2], four[3]
    );
    let (Some(s4), Some(p4), Some(sw), Some(pw), Some(lt)) = (
        find(results, "serial-four"),
        find(results, "pool-four"),
        find(results, "serial-words"),
        find(results, "pool-words"),
        find(results, "locked-table"),
    ) else {
        return format!("every variant agreed with the reference: {counts}");
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let cpus = crate::cli::available_cpus();
    // The pool cannot beat the number of CPUs it runs on; lab 06 measured
    // what the two vCPUs of the course machine give (about 2× when quiet).
    let cpu_note = format!(
        "{} workers on {cpus} CPUs: at most {}×",
        p4.workers,
        p4.workers.min(cpus)
    );
    format!(
        "all {} variants agree with the reference on {:.1} MB ({counts}). Four words: pool of {} {:.2} GB/s vs serial {:.2} GB/s ({:.2}×; {cpu_note}). Every word: map-reduce {:.0} MB/s ({:.2}× serial), one shared locked table {:.1} MB/s — map-reduce is {:.0}× faster: share results, not a table",
        results.len(),
        bytes as f64 / 1e6,
        p4.workers,
        p4.mb_per_s / 1e3,
        s4.mb_per_s / 1e3,
        ratio(p4.mb_per_s, s4.mb_per_s),
        pw.mb_per_s,
        ratio(pw.mb_per_s, sw.mb_per_s),
        lt.mb_per_s,
        ratio(pw.mb_per_s, lt.mb_per_s),
    )
}

impl Report for WordcountReport {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn render(&self) -> String {
        let c = &self.counts;
        let mut out = if self.generated {
            format!(
                "Corpus: {:.1} MB generated with seed {} in {} (deleted afterwards)\n",
                self.bytes as f64 / 1e6,
                self.seed.unwrap_or(DEFAULT_SEED),
                self.corpus
            )
        } else {
            format!(
                "Corpus: {} ({:.1} MB)\n",
                self.corpus,
                self.bytes as f64 / 1e6
            )
        };
        out += &format!(
            "        {} words, {} different (a word: a run of ASCII letters, lowercased)\n",
            self.words, self.distinct
        );
        out += &format!(
            "Pool: {} worker processes, started in {:.1} ms; {} chunks, cut at separators\n\n",
            self.workers, self.start_ms, self.chunks
        );
        out += &format!(
            "The four words: dog {}, cat {}, boy {}, girl {}\n",
            c.dog, c.cat, c.boy, c.girl
        );
        let top: Vec<String> = self
            .top
            .iter()
            .map(|w| format!("{} {}", w.word, w.count))
            .collect();
        out += &format!("Top {}: {}\n\n", self.top.len(), top.join(", "));
        out += &format!("Median of {} runs each:\n", self.repeats);
        out += "  variant        workers        MB    seconds       MB/s  counts\n";
        for r in &self.results {
            let verdict = if r.agrees {
                "= reference".to_string()
            } else {
                let c = &r.counts;
                format!(
                    "WRONG (dog {}, cat {}, boy {}, girl {}, or other words)",
                    c.dog, c.cat, c.boy, c.girl
                )
            };
            out += &format!(
                "  {:<14} {:>7} {:>9.1} {:>10.4} {:>10.1}  {verdict}\n",
                r.variant,
                r.workers,
                r.bytes as f64 / 1e6,
                r.seconds,
                r.mb_per_s,
            );
        }
        out
    }
}
