#!/usr/bin/env python3
"""Lab 08 in Python's multiprocessing: the Python twin of lab08-mapreduce.

The tutorials' counting programs, timed the same way: W processes each add
1 to a count N times, with a shared Value under its lock, a shared Value
without one, one Array slot per process (adjacent or padded), and
map-reduce (a private count per process, summed by the parent).

    python3 labs/python/lab08_mapreduce.py [--json] [--max-workers N]
                                           [--run-ms MS] [--repeats N]

It prints the same JSON shape as `lab08-mapreduce --json` (with "lab":
"lab08-mapreduce-python"). Python has no atomic fetch_add on a shared
Value, so the `atomic` row is missing; `locked-os` is missing too, because
`Value.get_lock()` already is the operating system's lock (a POSIX
semaphore).
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

PADDED_STRIDE = 16  # 16 × 8 bytes = 128 bytes, as shmlab's padded slots


def racy(counter, n, _index):
    for _ in range(n):
        counter.value += 1  # load and store: another process may store between


def locked(counter, n, _index):
    for _ in range(n):
        with counter.get_lock():
            counter.value += 1


def slots(array, n, index, stride):
    slot = index * stride
    for _ in range(n):
        array[slot] += 1  # this process is the only writer of its slot


def local_count(n):
    count = 0
    for _ in range(n):
        count += 1
    return count


def worker(kind, shared, n, index, gate, finished):
    gate.wait()
    began = time.perf_counter()
    if kind == "racy":
        racy(shared, n, index)
    elif kind == "locked":
        locked(shared, n, index)
    elif kind == "slots":
        slots(shared, n, index, 1)
    elif kind == "padded-slots":
        slots(shared, n, index, PADDED_STRIDE)
    # Each worker times itself from the gate: the parent may not run again
    # until a worker has finished, so a clock started there can be late.
    finished.put((began, time.perf_counter()))


def run_shared(kind, workers, n):
    """One timed run of a sharing strategy; returns (ops_per_s, total)."""
    if kind in ("racy", "locked"):
        shared = mp.Value("q", 0, lock=(kind == "locked"))
    else:
        stride = PADDED_STRIDE if kind == "padded-slots" else 1
        shared = mp.Array("q", workers * stride, lock=False)
    gate = mp.Barrier(workers + 1)
    finished = mp.Queue()
    procs = [mp.Process(target=worker, args=(kind, shared, n, i, gate, finished))
             for i in range(workers)]
    for p in procs:
        p.start()
    gate.wait()
    spans = [finished.get() for _ in procs]
    for p in procs:
        p.join()
    seconds = max(end for _, end in spans) - min(begin for begin, _ in spans)
    if kind in ("racy", "locked"):
        total = shared.value
    else:
        stride = PADDED_STRIDE if kind == "padded-slots" else 1
        total = sum(shared[i * stride] for i in range(workers))
    return workers * n / seconds, total


def run_map_reduce(pool, workers, n):
    started = time.perf_counter()
    total = sum(pool.map(local_count, [n] * workers, chunksize=1))
    seconds = time.perf_counter() - started
    return workers * n / seconds, total


STRATEGIES = ["racy", "locked", "slots", "padded-slots", "map-reduce"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--run-ms", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.max_workers <= 256 or args.run_ms < 1 or args.repeats < 1:
        parser.error("--max-workers must be 1..256, --run-ms and --repeats at least 1")
    mp.set_start_method("spawn")
    results = []
    with mp.Pool(args.max_workers) as pool:
        for workers in range(1, args.max_workers + 1):
            row = []
            for kind in STRATEGIES:
                def once(n):
                    if kind == "map-reduce":
                        return run_map_reduce(pool, workers, n)
                    return run_shared(kind, workers, n)
                probe = 20_000
                rate, _ = once(probe)
                n = max(probe, int(rate / workers * args.run_ms / 1000))
                rates, exact = [], True
                for _ in range(args.repeats):
                    rate, total = once(n)
                    rates.append(rate)
                    exact &= total == workers * n
                row.append({"strategy": kind, "workers": workers,
                            "increments_per_worker": n,
                            "ops_per_s": statistics.median(rates), "exact": exact})
            base = next(r["ops_per_s"] for r in row if r["strategy"] == "locked")
            for r in row:
                r["ratio_to_locked"] = r["ops_per_s"] / base
            results.extend(row)
    at_max = [r for r in results if r["workers"] == args.max_workers]
    ratio = next(r["ratio_to_locked"] for r in at_max if r["strategy"] == "map-reduce")
    ok = all(r["exact"] or r["strategy"] == "racy" for r in results)
    verdict = (f"map-reduce counted {ratio:.0f}x faster than the locked shared Value "
               f"with {args.max_workers} worker(s): share nothing, combine once")
    report = {"lab": "lab08-mapreduce-python", "ok": ok, "verdict": verdict,
              "available_cpus": os.cpu_count(), "max_workers": args.max_workers,
              "repeats": args.repeats, "chart": None,
              "map_reduce_over_locked": ratio, "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"Every strategy counts workers x N increments (median of {args.repeats} runs):\n")
        print("  strategy       workers   increments/s   x locked   exact")
        for r in results:
            print(f"  {r['strategy']:<14} {r['workers']:>7} {r['ops_per_s'] / 1e6:>11.2f} M/s"
                  f" {r['ratio_to_locked']:>10.2f} {'yes' if r['exact'] else 'NO':>7}")
        print(f"verdict: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
