//! lab10's word counts: every counter and every variant (serial, pool over
//! chunks of a mapped file, one shared locked table) against a simple
//! serial count written here, on generated corpora and on hand-made edge
//! cases — words across chunk and block borders, an empty file, no trailing
//! newline, bytes that are not UTF-8 — with 1, 2 and 4 workers; the corpus
//! generator; clear errors; and the lab binary itself.
//! Run: cargo test --release --test wordcount

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, ensure};
use shmlab::lessons::wordcount::{
    self, Frequencies, Mapped, TARGETS, WordcountError, chunk_bounds, count_four,
    count_four_portable, count_words, generate, locked_words, parse_mb, pool_four, pool_words,
    reference_count,
};
use shmlab::pool::Pool;

const LAB: &str = env!("CARGO_BIN_EXE_lab10-wordcount");

const TESTS: &[(&str, common::TestFn)] = &[
    (
        "serial_counters_match_on_every_prefix",
        serial_counters_match_on_every_prefix,
    ),
    (
        "serial_counters_match_on_edge_cases",
        serial_counters_match_on_edge_cases,
    ),
    (
        "chunk_bounds_never_cut_a_word",
        chunk_bounds_never_cut_a_word,
    ),
    (
        "every_variant_on_edge_case_files",
        every_variant_on_edge_case_files,
    ),
    (
        "every_variant_on_generated_corpora",
        every_variant_on_generated_corpora,
    ),
    (
        "the_generator_is_deterministic",
        the_generator_is_deterministic,
    ),
    ("bad_inputs_are_clear_errors", bad_inputs_are_clear_errors),
    (
        "the_lab_reports_and_cleans_up",
        the_lab_reports_and_cleans_up,
    ),
    (
        "the_lab_rejects_absurd_options",
        the_lab_rejects_absurd_options,
    ),
];

/// `common::run`, plus one check once every test has finished (tests run
/// in parallel threads of this process, so only then is it exact): this
/// process left nothing in /dev/shm — no pool segment, no shared table.
fn main() {
    shmlab::entry(); // pool workers are this test binary, started again
    let args = libtest_mimic::Arguments::from_args();
    let trials = TESTS
        .iter()
        .map(|&(name, body)| {
            libtest_mimic::Trial::test(name, move || {
                body().map_err(|e| libtest_mimic::Failed::from(format!("{e:#}")))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let left = shmlab::cleanup::segments_of(std::process::id());
    if !left.is_empty() {
        eprintln!("segments left in /dev/shm after the tests: {left:?}");
        std::process::exit(101);
    }
    conclusion.exit();
}

/// The independent reference: one byte at a time, `is_ascii_alphabetic`
/// from std, a `String` per word.
fn simple_count(bytes: &[u8]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    let mut word = String::new();
    for &b in bytes.iter().chain(std::iter::once(&b' ')) {
        if b.is_ascii_alphabetic() {
            word.push(char::from(b.to_ascii_lowercase()));
        } else if !word.is_empty() {
            *counts.entry(std::mem::take(&mut word)).or_insert(0) += 1;
        }
    }
    counts
}

fn four_of(counts: &HashMap<String, u64>) -> [u64; 4] {
    TARGETS.map(|w| counts.get(w).copied().unwrap_or(0))
}

fn same(f: &Frequencies, expected: &HashMap<String, u64>) -> bool {
    f.distinct() == expected.len()
        && f.to_map() == *expected
        && expected.iter().all(|(w, &c)| f.get(w) == c)
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(bytes: &[u8]) -> anyhow::Result<TempFile> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "shmlab-wordcount-test-{}-{}.txt",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes)?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The four words at every offset around 64-byte block borders, in every
/// case, next to near misses (`dogs`, `hotdog`, `gir`), with separators of
/// every kind.
fn border_text() -> Vec<u8> {
    let seps: [&[u8]; 6] = [b" ", b"\n", b",", b"\xff", b"7", b"\xc3\xa9"];
    let words: [&[u8]; 10] = [
        b"dog", b"Cat", b"BOY", b"gIrL", b"dogs", b"hotdog", b"gir", b"ca", b"boyy", b"girls",
    ];
    let mut out = Vec::new();
    for k in 0..150 {
        out.extend(std::iter::repeat_n(b' ', k % 67));
        out.extend_from_slice(words[k % words.len()]);
        out.extend_from_slice(seps[k % seps.len()]);
        out.extend_from_slice(words[(3 * k + 1) % words.len()]);
    }
    out
}

fn edge_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut long_words = Vec::new();
    for len in 1..=200 {
        long_words.extend((0..len).map(|i| b"DogCatBoyGirl"[i % 13]));
        long_words.push(if len % 2 == 0 { b' ' } else { b'\n' });
    }
    vec![
        ("empty", Vec::new()),
        ("no trailing newline", b"the dog saw a cat".to_vec()),
        ("one word", b"girl".to_vec()),
        (
            "only separators",
            b" \n\t.,;:!?0123456789_'\"\xff\x80\x00".to_vec(),
        ),
        (
            "case",
            b"DOG Dog dOg dog CAT Cat BOY boY GIRL Girl gIRL".to_vec(),
        ),
        (
            "near misses",
            b"dogs catalog boys girls doge hotdog adog cats- -dog- dog's girl'".to_vec(),
        ),
        ("digits and underscores", b"dog1cat_boy-girl2dog".to_vec()),
        (
            "not UTF-8",
            b"dog\xffcat\xc3\xa9boy\x00girl\x80\xfe\xfddog caf\xc3\xa9 na\xefve \xe2\x80\x94girl\xff"
                .to_vec(),
        ),
        ("CR LF and tabs", b"dog\r\ncat\tboy\x0bgirl\x0c\r\n".to_vec()),
        ("one huge word", b"dog".repeat(10_000)),
        ("words of 1 to 200 letters", long_words),
        ("block borders", border_text()),
        ("girl girl girl", b"girl ".repeat(997).to_vec()),
    ]
}

fn serial_counters_match_on_every_prefix() -> anyhow::Result<()> {
    let text = border_text();
    for end in 0..=text.len().min(2000) {
        let bytes = &text[..end];
        let expected = simple_count(bytes);
        let four = four_of(&expected);
        ensure!(count_four(bytes) == four, "count_four, prefix {end}");
        ensure!(
            count_four_portable(bytes) == four,
            "count_four_portable, prefix {end}"
        );
        ensure!(
            same(&count_words(bytes), &expected),
            "count_words, prefix {end}"
        );
        ensure!(
            same(&reference_count(bytes), &expected),
            "reference_count, prefix {end}"
        );
    }
    Ok(())
}

fn serial_counters_match_on_edge_cases() -> anyhow::Result<()> {
    let mut cases = edge_cases();
    cases.push(("generated", generate(1_000_000, 3)));
    for (name, bytes) in &cases {
        let expected = simple_count(bytes);
        let four = four_of(&expected);
        ensure!(count_four(bytes) == four, "{name}: count_four");
        ensure!(count_four_portable(bytes) == four, "{name}: portable");
        ensure!(same(&count_words(bytes), &expected), "{name}: count_words");
        ensure!(
            same(&reference_count(bytes), &expected),
            "{name}: reference"
        );
        // Every 64-byte alignment of the same bytes.
        for shift in 1..64 {
            let mut shifted = vec![b' '; shift];
            shifted.extend_from_slice(&bytes[..bytes.len().min(5000)]);
            let expected = simple_count(&shifted);
            ensure!(
                count_four(&shifted) == four_of(&expected),
                "{name}: shifted by {shift}"
            );
            ensure!(
                same(&count_words(&shifted), &expected),
                "{name}: words shifted by {shift}"
            );
        }
    }
    Ok(())
}

fn chunk_bounds_never_cut_a_word() -> anyhow::Result<()> {
    let mut cases = edge_cases();
    cases.push(("generated", generate(100_000, 4)));
    for (name, bytes) in &cases {
        for chunks in [1, 2, 3, 4, 7, 16, 37, 1000] {
            let bounds = chunk_bounds(bytes, chunks);
            ensure!(bounds.len() <= chunks, "{name}: {chunks}: too many");
            let mut at = 0;
            for &(start, end) in &bounds {
                ensure!(start == at && end > start, "{name}/{chunks}: {bounds:?}");
                let end = end as usize;
                ensure!(
                    end == bytes.len() || !bytes[end].is_ascii_alphabetic(),
                    "{name}/{chunks}: boundary {end} is inside a word"
                );
                at = end as u64;
            }
            ensure!(at == bytes.len() as u64, "{name}/{chunks}: does not cover");
            // Counting the chunks separately gives the whole count.
            let mut sum = [0u64; 4];
            for &(s, e) in &bounds {
                for (t, c) in sum
                    .iter_mut()
                    .zip(count_four(&bytes[s as usize..e as usize]))
                {
                    *t += c;
                }
            }
            ensure!(
                sum == four_of(&simple_count(bytes)),
                "{name}/{chunks}: sums"
            );
        }
    }
    Ok(())
}

/// Every pool variant on the file `bytes`, with `pools` and several chunk
/// counts, against the simple count.
fn check_file(pools: &[Pool], name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let file = TempFile::new(bytes)?;
    let expected = simple_count(bytes);
    let four = four_of(&expected);
    let mapped = Mapped::open(&file.0)?;
    ensure!(mapped.bytes() == bytes, "{name}: mapped bytes differ");
    for pool in pools {
        let w = pool.workers();
        for chunks in [1, w, 4 * w, 37] {
            let bounds = chunk_bounds(bytes, chunks);
            let what = format!("{name}, {w} workers, {chunks} chunks");
            ensure!(
                pool_four(pool, &file.0, &bounds)? == four,
                "{what}: pool_four"
            );
            ensure!(
                same(&pool_words(pool, &file.0, &bounds)?, &expected),
                "{what}: pool_words"
            );
            ensure!(
                same(&locked_words(pool, &file.0, &bounds)?, &expected),
                "{what}: locked_words"
            );
        }
    }
    Ok(())
}

/// Runs `body` with pools of 1, 2 and 4 workers, then checks that their
/// segments are gone from /dev/shm.
fn with_pools(body: impl FnOnce(&[Pool]) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let pools = vec![Pool::new(1)?, Pool::new(2)?, Pool::new(4)?];
    let names: Vec<String> = pools.iter().flat_map(|p| p.segment_names()).collect();
    let outcome = body(&pools);
    drop(pools);
    let left: Vec<&String> = names
        .iter()
        .filter(|n| common::shm_path(n).exists())
        .collect();
    ensure!(left.is_empty(), "pool segments left: {left:?}");
    outcome
}

fn every_variant_on_edge_case_files() -> anyhow::Result<()> {
    with_pools(|pools| {
        for (name, bytes) in edge_cases() {
            check_file(pools, name, &bytes)?;
        }
        Ok(())
    })
}

fn every_variant_on_generated_corpora() -> anyhow::Result<()> {
    with_pools(|pools| {
        check_file(pools, "generated 200 kB", &generate(200_001, 2))?;
        check_file(pools, "generated 3 MB", &generate(3_000_000, 1))
    })
}

fn the_generator_is_deterministic() -> anyhow::Result<()> {
    let a = generate(1_000_000, 7);
    ensure!(a.len() == 1_000_000, "size {}", a.len());
    ensure!(a == generate(1_000_000, 7), "same seed, different bytes");
    ensure!(a != generate(1_000_000, 8), "different seeds, same bytes");
    ensure!(a.ends_with(b"\n"), "no final newline");
    // A prefix of a longer corpus, up to the last token that fit.
    let b = generate(2_000_000, 7);
    let cut = a.iter().rposition(|&c| c != b'\n').map_or(0, |i| i + 1);
    ensure!(a[..cut] == b[..cut], "not a prefix of the longer corpus");
    ensure!(
        a.split(|&c| c == b'\n').all(|line| line.len() <= 72),
        "a line is longer than 72 bytes"
    );
    let counts = simple_count(&a);
    let four = four_of(&counts);
    ensure!(
        four.iter().all(|&c| c > 100),
        "the four words are rare: {four:?}"
    );
    ensure!(
        counts.get("the").copied().unwrap_or(0) > 10_000,
        "no Zipf head"
    );
    ensure!(
        counts.len() > 10_000,
        "only {} different words",
        counts.len()
    );
    // make_corpus writes the same bytes.
    let path = std::env::temp_dir().join(format!(
        "shmlab-wordcount-test-{}-made.txt",
        std::process::id()
    ));
    wordcount::make_corpus(&path, 1_000_000, 7, true)?;
    let written = std::fs::read(&path);
    let _ = std::fs::remove_file(&path);
    ensure!(written? == a, "make_corpus wrote other bytes than generate");
    ensure!(generate(1, 7) == b"\n", "a 1-byte corpus is one newline");
    Ok(())
}

fn bad_inputs_are_clear_errors() -> anyhow::Result<()> {
    let missing = Path::new("/nonexistent/shmlab/corpus.txt");
    let e = Mapped::open(missing)
        .err()
        .context("opened a missing file")?;
    ensure!(
        matches!(e, WordcountError::Io { action: "open", .. })
            && e.to_string().contains("/nonexistent/shmlab/corpus.txt"),
        "{e}"
    );
    let e = Mapped::open(&std::env::temp_dir())
        .err()
        .context("mapped a directory")?;
    ensure!(matches!(e, WordcountError::NotAFile(_)), "{e}");
    let small = TempFile::new(b"dog cat")?;
    let e = Mapped::open_range(&small.0, 2, Some(100))
        .err()
        .context("mapped past the end")?;
    ensure!(matches!(e, WordcountError::Shorter { len: 7, .. }), "{e}");
    // A worker that cannot open its chunk reports it; nothing panics or hangs.
    let pool = Pool::new(1)?;
    let e = pool_four(&pool, missing, &[(0, 10)])
        .err()
        .context("counted a missing file")?;
    ensure!(
        matches!(&e, WordcountError::Worker(m) if m.contains("could not open")),
        "{e}"
    );
    let e = pool_words(&pool, &small.0, &[(0, 100)])
        .err()
        .context("counted past the end")?;
    ensure!(
        matches!(&e, WordcountError::Worker(m) if m.contains("change")),
        "{e}"
    );
    drop(pool);
    let target = std::env::temp_dir().join("shmlab-wordcount-never-written.txt");
    let e = wordcount::make_corpus(&target, 0, 1, true)
        .err()
        .context("made an empty corpus")?;
    ensure!(matches!(e, WordcountError::EmptyCorpus), "{e}");
    let e = wordcount::make_corpus(&target, 1 << 60, 1, true)
        .err()
        .context("made a corpus larger than the disk")?;
    ensure!(matches!(e, WordcountError::NoSpace { .. }), "{e}");
    ensure!(!target.exists(), "a refused corpus left a file");
    for bad in ["0", "-1", "nan", "inf", "lots", "1e7", "0.0000001"] {
        ensure!(parse_mb(bad).is_err(), "parse_mb accepted {bad}");
    }
    ensure!(parse_mb("1_000") == Ok(1_000_000_000), "parse_mb 1_000");
    Ok(())
}

fn lab(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(LAB).args(args).output()?)
}

/// The lab's JSON report on an existing corpus, one repeat; it must succeed.
fn corpus_report(corpus: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let out = lab(&[
        "--corpus",
        &corpus.to_string_lossy(),
        "--repeats",
        "1",
        "--json",
    ])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn the_lab_reports_and_cleans_up() -> anyhow::Result<()> {
    let child = Command::new(LAB)
        .args([
            "--mb",
            "2",
            "--repeats",
            "1",
            "--locked-mb",
            "0.5",
            "--workers",
            "2",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "lab failed: {text}");
    let r: serde_json::Value = serde_json::from_str(&text)?;
    ensure!(r["lab"] == "lab10-wordcount" && r["ok"] == true, "{r:#}");
    ensure!(r["bytes"] == 2_000_000 && r["generated"] == true, "{r:#}");
    let expected = simple_count(&generate(2_000_000, wordcount::DEFAULT_SEED));
    for (i, word) in TARGETS.iter().enumerate() {
        ensure!(
            r["counts"][word] == four_of(&expected)[i],
            "{word}: {} vs {}",
            r["counts"][word],
            four_of(&expected)[i]
        );
    }
    ensure!(r["words"] == expected.values().sum::<u64>(), "words");
    let variants: Vec<&str> = r["results"]
        .as_array()
        .context("results")?
        .iter()
        .filter_map(|v| v["variant"].as_str())
        .collect();
    ensure!(
        variants
            == [
                "reference",
                "serial-four",
                "pool-four",
                "serial-words",
                "pool-words",
                "locked-table"
            ],
        "{variants:?}"
    );
    for v in r["results"].as_array().context("results")? {
        ensure!(v["agrees"] == true, "{v}");
        ensure!(v["mb_per_s"].as_f64().is_some_and(|x| x > 0.0), "{v}");
        // Every row counted the four words itself; all but the locked
        // table (a prefix) saw the whole corpus.
        if v["variant"] != "locked-table" {
            ensure!(v["counts"] == r["counts"], "{v}");
        }
    }
    ensure!(r["top"][0]["word"] == "the", "{}", r["top"]);
    ensure!(
        shmlab::cleanup::segments_of(pid).is_empty(),
        "the lab left segments"
    );
    let corpus = r["corpus"].as_str().context("corpus")?;
    ensure!(
        !Path::new(corpus).exists(),
        "the temporary corpus is still there"
    );

    // --make-corpus writes the generator's bytes and exits; --corpus counts
    // a given file.
    let made = TempFile::new(b"")?;
    let path = made.0.to_string_lossy().to_string();
    let out = lab(&["--make-corpus", &path, "--mb", "0.1", "--seed", "5"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        std::fs::read(&made.0)? == generate(100_000, 5),
        "made corpus"
    );
    let edge = TempFile::new(b"Dog\xffcat dog's GIRL")?;
    let r = corpus_report(&edge.0)?;
    ensure!(
        r["counts"] == serde_json::json!({"dog": 2, "cat": 1, "boy": 0, "girl": 1}),
        "{r:#}"
    );
    ensure!(r["generated"] == false && edge.0.exists(), "{r:#}");
    let empty = TempFile::new(b"")?;
    let r = corpus_report(&empty.0)?;
    ensure!(
        r["bytes"] == 0 && r["words"] == 0 && r["ok"] == true,
        "{r:#}"
    );
    Ok(())
}

fn the_lab_rejects_absurd_options() -> anyhow::Result<()> {
    for (args, says) in [
        (&["--workers", "0"][..], "at least 1 worker"),
        (&["--mb", "0"][..], "more than 0"),
        (&["--mb=-5"][..], "more than 0"),
        (&["--locked-mb", "0"][..], "more than 0"),
        (&["--repeats", "0"][..], "at least 1"),
        (&["--corpus", "/nonexistent/x.txt"][..], "could not open"),
        (&["--corpus", "/tmp"][..], "not a regular file"),
        (
            &["--make-corpus", "/nonexistent/dir/x.txt", "--mb", "1"][..],
            "could not",
        ),
        (
            &["--make-corpus", "/tmp/shmlab-never.txt", "--mb", "1000000"][..],
            "does not fit",
        ),
    ] {
        let out = lab(args)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "{args:?} succeeded");
        ensure!(err.contains(says), "{args:?}: {err}");
        ensure!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    ensure!(!Path::new("/tmp/shmlab-never.txt").exists(), "file left");
    Ok(())
}
