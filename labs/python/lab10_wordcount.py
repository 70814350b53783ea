#!/usr/bin/env python3
"""Lab 10, Python twin: word count over a large file, the tutorials'
Gutenberg exercise -- the four words dog, cat, boy, girl and every word's
frequency, serially, with a multiprocessing.Pool over chunks of the file
plus collections.Counter (map-reduce), and with every worker updating one
shared dict under one lock.

The same lesson as `cargo run --release --bin lab10-wordcount`, in plain
Python 3 (standard library only). Handout: docs/labs/10-wordcount.md

    python3 labs/python/lab10_wordcount.py [--json] [--corpus PATH]
        [--make-corpus PATH] [--mb N] [--seed N] [--workers N] [--chunks N]
        [--top N] [--repeats N] [--locked-mb N]

A word is a maximal run of ASCII letters, lowercased; every other byte
separates words (as in the Rust lab). With --json it prints one JSON
object with the Rust lab's keys (lab, ok, verdict, corpus, generated,
seed, bytes, workers, chunks, start_ms, words, distinct, counts: {dog, cat,
boy, girl}, top: [{word, count}], repeats, locked_bytes, results:
[{variant, workers, bytes, seconds, mb_per_s, agrees, counts}]). It exits with
status 0 when every variant's counts equal the reference's, 1 otherwise.

The corpus generator is the Rust lab's, step for step (SplitMix64, the same
vocabulary and Zipf weights, the same sentences): the same --seed and --mb
give a byte-identical file. It is about 60 times slower than Rust's, so
the default corpus here is 2 MB (the Rust lab's is 32 MB); to compare with the Rust lab, let it make
the corpus (`lab10-wordcount --make-corpus /tmp/corpus.txt --mb 200`) and
give both `--corpus /tmp/corpus.txt`.
"""

import argparse
import bisect
import collections
import json
import multiprocessing as mp
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

LAB = "lab10-wordcount-python"
TARGETS = (b"dog", b"cat", b"boy", b"girl")
MAX_WORKERS = 256
DEFAULT_SEED = 10

# Letters to lowercase, every other byte to a space: after this, bytes.split()
# gives exactly the words.
WORDS_ONLY = bytes(b | 0x20 if 97 <= (b | 0x20) <= 122 else 32 for b in range(256))
LETTER = re.compile(rb"[A-Za-z]+")
# After WORDS_ONLY and a space on both ends, a target word is " dog" followed
# by a space; the lookahead leaves that space for the next match.
FOUR = [re.compile(b" " + w + b"(?= )") for w in TARGETS]


# ---------------------------------------------------------------- generator


class SplitMix:
    """SplitMix64, exactly as in the Rust lab."""

    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.state = seed & self.MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n


COMMON = (
    "the of and to a in is it you that he was for on are with as i his they be at one "
    "have this from or had by hot word but what some we can out other were all there when "
    "up use your how said an each she which do their time if will way boy about many then "
    "them write would like girl so these her long make thing see him two has look dog more "
    "day could go come did number sound no most people cat my over know water than call "
    "first who may down side been now find"
).split()
ONSETS = [""] + (
    "b c d f g h j k l m n p r s t v w y z bl br ch cl cr dr fl fr gl gr pl pr sc sh sk "
    "sl sm sn sp st str sw th tr tw wh wr"
).split()
VOWELS = "a e i o u y ai au ea ee ei ie io oa oi oo ou".split()
CODAS = ["", "", "", ""] + "b ck d ft g l ld ll m mp n nd ng nk nt p r rd rk rn s sh ss st t th x".split()
VOCABULARY = 30_000
LINE = 72


def write_corpus(out, size, seed):
    """Writes `size` bytes of generated text to the binary file `out`."""
    rng = SplitMix(seed)
    vocab = list(COMMON)
    seen = set(vocab)
    while len(vocab) < VOCABULARY:
        syllables = 1 + rng.below(3) + rng.below(2)
        word = ""
        for _ in range(syllables):
            word += ONSETS[rng.below(len(ONSETS))]
            word += VOWELS[rng.below(len(VOWELS))]
            word += CODAS[rng.below(len(CODAS))]
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    cumulative, total = [], 0
    for r in range(len(vocab)):
        total += (1 << 32) // (r + 1)
        cumulative.append(total)
    sentence_len = 4 + rng.below(17)
    sentences_left = 3 + rng.below(6)
    first, paragraph_break, line, sentence_pos = True, False, 0, 0
    written, parts, pending = 0, [], 0
    while True:
        if rng.below(200) == 0:
            body = str(rng.below(10_000))
        else:
            word = vocab[bisect.bisect_right(cumulative, rng.below(total))]
            if rng.below(400) == 0:
                word = word.upper()
            elif sentence_pos == 0:
                word = word[0].upper() + word[1:]
            if rng.below(100) == 0:
                word += "'s"
            body = word
        ends_sentence = sentence_pos + 1 == sentence_len
        if ends_sentence:
            p = rng.below(20)
            body += "?" if p == 0 else "!" if p == 1 else "."
        elif rng.below(12) == 0:
            body += ","
        if first:
            sep = ""
        elif paragraph_break:
            sep = "\n\n"
        elif line + 1 + len(body) > LINE:
            sep = "\n"
        else:
            sep = " "
        token = sep + body
        if written + pending + len(token) + 1 > size:
            break
        parts.append(token)
        pending += len(token)
        if pending >= 1 << 20:
            out.write("".join(parts).encode("ascii"))
            written += pending
            parts, pending = [], 0
        line = line + 1 + len(body) if sep == " " else len(body)
        first = paragraph_break = False
        sentence_pos += 1
        if ends_sentence:
            sentence_pos = 0
            sentence_len = 4 + rng.below(17)
            sentences_left -= 1
            if sentences_left == 0:
                paragraph_break = True
                sentences_left = 3 + rng.below(6)
    out.write("".join(parts).encode("ascii"))
    written += pending
    out.write(b"\n" * (size - written))


def make_corpus(path, size, seed):
    if size < 1:
        raise ValueError("a corpus needs at least 1 byte")
    directory = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(directory).free
    if size + (64 << 20) > free:
        raise ValueError(f"a corpus of {size} bytes does not fit in {directory}: {free} bytes free")
    try:
        with open(path, "wb") as out:
            write_corpus(out, size, seed)
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise


# ---------------------------------------------------------------- counting


def reference_count(data):
    """The word rule written the simplest way."""
    return collections.Counter(w.lower() for w in LETTER.findall(data))


def count_four(data):
    padded = b" " + data.translate(WORDS_ONLY) + b" "
    return [len(p.findall(padded)) for p in FOUR]


def count_words(data):
    return collections.Counter(data.translate(WORDS_ONLY).split())


def read_range(path, start, end):
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    if len(data) != end - start:
        raise ValueError(f"{path} is shorter than expected (did it change?)")
    return data


def four_task(job):
    return count_four(read_range(*job))


def words_task(job):
    return count_words(read_range(*job))


# The anti-pattern: one dict shared through a Manager, one lock.
SHARED = None


def init_shared(table, lock):
    global SHARED
    SHARED = (table, lock)


def locked_task(job):
    table, lock = SHARED
    added = 0
    for word in read_range(*job).translate(WORDS_ONLY).split():
        with lock:
            table[word] = table.get(word, 0) + 1
        added += 1
    return added


def chunk_bounds(data, chunks):
    """At most `chunks` ranges covering `data`, each end moved forward past
    letters so that no word is cut (the Rust lab's rule)."""
    n, bounds, start = len(data), [], 0
    chunks = max(chunks, 1)
    for i in range(1, chunks + 1):
        end = n if i == chunks else max(n * i // chunks, start)
        while end < n and 97 <= (data[end] | 0x20) <= 122:
            end += 1
        if end > start:
            bounds.append((start, end))
            start = end
    return bounds


# ---------------------------------------------------------------- the lab


def four_of(result):
    """The four words' counts of a variant's result (a list or a Counter)."""
    if isinstance(result, list):
        return result
    return [result.get(w, 0) for w in TARGETS]


def timed(repeats, f, ok):
    """The median seconds of `repeats` runs of f, whether ok held for every
    result, and the four words' counts of the first that failed (or the
    last)."""
    seconds, agrees, counts = [], True, [0, 0, 0, 0]
    for _ in range(repeats):
        started = time.perf_counter()
        result = f()
        seconds.append(time.perf_counter() - started)
        if agrees:
            counts, agrees = four_of(result), ok(result)
    return statistics.median(seconds), agrees, counts


def row(variant, workers, size, timing):
    seconds, agrees, counts = timing
    return {
        "variant": variant,
        "workers": workers,
        "bytes": size,
        "seconds": seconds,
        "mb_per_s": size / seconds / 1e6 if seconds > 0 else 0.0,
        "agrees": agrees,
        "counts": {w.decode(): c for w, c in zip(TARGETS, counts)},
    }


def run(args):
    temp = None
    if args.corpus is None:
        fd, temp = tempfile.mkstemp(prefix="shmlab-wordcount-python-", suffix=".txt")
        os.close(fd)
        make_corpus(temp, args.mb, args.seed)
    path = args.corpus or temp
    try:
        return run_on(args, path)
    finally:
        if temp is not None:
            os.remove(temp)


def run_on(args, path):
    if not os.path.isfile(path):
        raise ValueError(f"{path} is not a regular file")
    workers, repeats = args.workers, args.repeats
    reference = None

    def read_and_count():
        nonlocal reference
        with open(path, "rb") as f:
            reference = reference_count(f.read())
        return reference

    results = [row("reference", 1, os.path.getsize(path), timed(1, read_and_count, lambda _: True))]
    with open(path, "rb") as f:
        data = f.read()
    size = len(data)
    four = [reference.get(w, 0) for w in TARGETS]
    chunks = args.chunks or 2 * workers
    jobs = [(path, s, e) for s, e in chunk_bounds(data, chunks)]
    prefix = min(args.locked_mb, size)
    while prefix < size and 97 <= (data[prefix] | 0x20) <= 122:
        prefix += 1
    locked_jobs = [(path, s, e) for s, e in chunk_bounds(data[:prefix], workers)]
    prefix_reference = reference if prefix == size else reference_count(data[:prefix])
    del data

    def serial(count):
        def f():
            with open(path, "rb") as fh:
                return count(fh.read())
        return f

    results.append(row("serial-four", 1, size, timed(repeats, serial(count_four), lambda c: c == four)))
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    table, lock = manager.dict(), ctx.Lock()
    started = time.perf_counter()
    pool = ctx.Pool(workers, initializer=init_shared, initargs=(table, lock))
    pool.map(abs, range(workers), chunksize=1)  # every worker has started
    start_ms = (time.perf_counter() - started) * 1e3
    try:

        def pool_four():
            total = [0, 0, 0, 0]
            for counts in pool.imap_unordered(four_task, jobs, chunksize=1):
                total = [t + c for t, c in zip(total, counts)]
            return total

        def pool_words():
            total = collections.Counter()
            for counts in pool.imap_unordered(words_task, jobs, chunksize=1):
                total.update(counts)
            return total

        def locked():
            table.clear()
            added = sum(pool.imap_unordered(locked_task, locked_jobs, chunksize=1))
            counts = collections.Counter(table.copy())
            if sum(counts.values()) != added:
                raise RuntimeError("the workers added more words than the table holds")
            return counts

        results.append(row("pool-four", workers, size, timed(repeats, pool_four, lambda c: c == four)))
        results.append(row("serial-words", 1, size, timed(repeats, serial(count_words), lambda c: c == reference)))
        results.append(row("pool-words", workers, size, timed(repeats, pool_words, lambda c: c == reference)))
        results.append(row("locked-table", workers, prefix, timed(repeats, locked, lambda c: c == prefix_reference)))
    finally:
        pool.terminate()
        pool.join()
        manager.shutdown()

    ok = all(r["agrees"] for r in results)
    by = {r["variant"]: r for r in results}

    def ratio(a, b):
        return a / b if b > 0 else 0.0

    if ok and size == 0:
        verdict = f"all {len(results)} variants agree with the reference on an empty file: no words, nothing to time"
    elif ok:
        s4, p4, sw, pw, lt = (by[v] for v in ("serial-four", "pool-four", "serial-words", "pool-words", "locked-table"))
        verdict = (
            f"all {len(results)} variants agree with the reference on {size / 1e6:.1f} MB "
            f"(dog {four[0]}, cat {four[1]}, boy {four[2]}, girl {four[3]}). Four words: pool of "
            f"{workers} {p4['mb_per_s'] / 1e3:.2f} GB/s vs serial {s4['mb_per_s'] / 1e3:.2f} GB/s "
            f"({ratio(p4['mb_per_s'], s4['mb_per_s']):.2f}x). Every word: map-reduce "
            f"{pw['mb_per_s']:.1f} MB/s ({ratio(pw['mb_per_s'], sw['mb_per_s']):.2f}x serial), one "
            f"shared locked dict {lt['mb_per_s']:.3f} MB/s -- map-reduce is "
            f"{ratio(pw['mb_per_s'], lt['mb_per_s']):.0f}x faster"
        )
    else:
        wrong = ", ".join(r["variant"] for r in results if not r["agrees"])
        verdict = f"WRONG COUNTS: {wrong} disagreed with the reference count"
    return {
        "lab": LAB,
        "ok": ok,
        "verdict": verdict,
        "corpus": path,
        "generated": args.corpus is None,
        "seed": args.seed if args.corpus is None else None,
        "bytes": size,
        "workers": workers,
        "chunks": len(jobs),
        "start_ms": start_ms,
        "words": sum(reference.values()),
        "distinct": len(reference),
        "counts": {w.decode(): c for w, c in zip(TARGETS, four)},
        "top": [
            {"word": w.decode(), "count": c}
            for w, c in sorted(reference.items(), key=lambda wc: (-wc[1], wc[0]))[: args.top]
        ],
        "repeats": repeats,
        "locked_bytes": prefix,
        "results": results,
    }


def render(r):
    c = r["counts"]
    out = f"Corpus: {r['corpus']} ({r['bytes'] / 1e6:.1f} MB"
    out += f", generated with seed {r['seed']}, deleted afterwards)\n" if r["generated"] else ")\n"
    out += f"        {r['words']} words, {r['distinct']} different\n"
    out += (
        f"Pool: {r['workers']} worker processes, started in {r['start_ms']:.1f} ms; "
        f"{r['chunks']} chunks, cut at separators\n\n"
    )
    out += f"The four words: dog {c['dog']}, cat {c['cat']}, boy {c['boy']}, girl {c['girl']}\n"
    out += f"Top {len(r['top'])}: " + ", ".join(f"{t['word']} {t['count']}" for t in r["top"]) + "\n\n"
    out += f"Median of {r['repeats']} runs each:\n"
    out += "  variant        workers        MB    seconds       MB/s  counts\n"
    for x in r["results"]:
        out += (
            f"  {x['variant']:<14} {x['workers']:>7} {x['bytes'] / 1e6:>9.2f} {x['seconds']:>10.4f} "
            f"{x['mb_per_s']:>10.{1 if x['mb_per_s'] >= 1 else 3}f}  "
            f"{'= reference' if x['agrees'] else 'WRONG'}\n"
        )
    return out + f"verdict: {r['verdict']}"


# ---------------------------------------------------------------- options


def count(maximum):
    def parse(text):
        try:
            n = int(text)  # int() accepts 1_000, like the Rust lab
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a whole number")
        if n < 1:
            raise argparse.ArgumentTypeError("must be at least 1")
        if n > maximum:
            raise argparse.ArgumentTypeError(f"at most {maximum} (got {n})")
        return n

    return parse


def megabytes(text):
    """MB (10^6 bytes, decimals allowed) -> bytes, as the Rust lab's --mb."""
    try:
        mb = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number of megabytes")
    if not mb > 0 or mb == float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0")
    if mb > 1e6:
        raise argparse.ArgumentTypeError(f"at most 1000000 MB (got {text})")
    size = round(mb * 1e6)
    if size < 1:
        raise argparse.ArgumentTypeError("must be at least 1 byte (0.000001 MB)")
    return size


def main():
    parser = argparse.ArgumentParser(
        prog="lab10_wordcount.py",
        description="Count words in a file with multiprocessing: serial, map-reduce with "
        "Counter, and one shared locked dict (the Python twin of lab10-wordcount).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--corpus", metavar="PATH", help="count this file (default: generate "
                        "a corpus of --mb MB in the temp directory and delete it afterwards)")
    source.add_argument("--make-corpus", metavar="PATH", help="write a generated corpus of "
                        "--mb MB to PATH and exit")
    parser.add_argument("--mb", type=megabytes, default=2_000_000,
                        help="size of a generated corpus in MB (default: 2)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the corpus generator (default: {DEFAULT_SEED})")
    parser.add_argument("--workers", type=count(MAX_WORKERS), default=os.cpu_count() or 1,
                        help="worker processes in the pool (default: one per CPU)")
    parser.add_argument("--chunks", type=count(1_000_000),
                        help="chunks the file is cut into (default: 2 per worker)")
    parser.add_argument("--top", type=count(1_000_000), default=10,
                        help="words in the top list (default: 10)")
    parser.add_argument("--repeats", type=count(1000), default=5,
                        help="timed runs per variant (default: 5)")
    parser.add_argument("--locked-mb", type=megabytes, default=20_000,
                        help="MB from the start of the corpus that the shared locked dict "
                        "counts (default: 0.02; it is very slow)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the human report")
    args = parser.parse_args()
    try:
        if args.make_corpus:
            make_corpus(args.make_corpus, args.mb, args.seed)
            print(f"wrote {args.mb} bytes to {args.make_corpus}", file=sys.stderr)
            return 0
        report = run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
