#!/usr/bin/env python3
"""Lab 02, Python twin: the tutorials' Pool examples, two faults, and what
chunksize buys on 10 000 tiny tasks.

The same lesson as `cargo run --release --bin lab02-pool`, in plain
Python 3 `multiprocessing` (standard library only). Handout:
docs/labs/02-pool.md

    python3 labs/python/lab02_pool.py [--json] [--workers N] [--tasks N]
                                      [--chunksizes 1,100] [--repeats N]

With --json it prints one JSON object with the Rust lab's keys (lab, ok,
verdict, workers, start_ms, examples: {cube_first, cube_sum, power_n,
apply_async, imap, imap_unordered, map_async_sum, all_correct}, faults:
{panic, killed, others_completed, workers_replaced, seconds, as_expected},
repeats, results: [{call, chunksize, tasks, seconds, us_per_task}]). The
results have one more row than the Rust lab's: `executor.map`, the same
tiny tasks through concurrent.futures.ProcessPoolExecutor.

Where CPython behaves differently, the keys say what CPython did:

- faults.killed: a worker killed by SIGKILL in the middle of a task makes
  CPython's Pool wait for that task forever. The twin waits
  KILLED_TIMEOUT seconds with map_async(...).get(timeout=...), reports the
  TimeoutError, and terminates that pool.
- faults.others_completed: results of the other 9 tasks that reached the
  caller. map_async hands over all the results or none, so it is 0.
- faults.as_expected: each fault did what CPython does (map raises the
  task's exception in the caller; the killed worker is replaced, and the
  call never finishes).

It exits with status 0 when every example was right and both faults went
as expected, 1 otherwise, 2 on an error. Like shmlab, it starts workers
with the "spawn" method (a fresh interpreter).
"""

import argparse
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor

LAB = "lab02-pool-python"
MAX_WORKERS = 256
START_TIMEOUT = 30.0  # seconds for a new pool's workers to say hello
KILLED_TIMEOUT = 3.0  # seconds to wait for the call whose worker was killed


# ---------------------------------------------------------------- tasks
# Module-level functions: a spawned worker imports this file and finds
# them by name (shmlab's task! registry does the same job).


def cube(x):
    """x³: the tutorials' first pool example."""
    return x * x * x


def power_n(x, n):
    """xⁿ: a task of two arguments, for starmap."""
    return x**n


def countdown(x):
    """Returns x after (8 - x) × 4 ms of simulated work, so that later
    items finish first."""
    time.sleep(max(0, 8 - x) * 4 / 1000)
    return x


def fragile(x):
    """x + 1, but raises on 3."""
    if x == 3:
        raise ValueError(f"refusing to handle {x}")
    return x + 1


def doomed(x):
    """x + 1, but on 5 its worker process kills itself with SIGKILL, as the
    OOM killer would."""
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 1


def say_hello(hello):
    """Pool initializer: every worker, replacements included, sends its pid
    when it is ready. (Pool() itself returns before its workers have
    started.)"""
    hello.put(os.getpid())


# ---------------------------------------------------------------- the lab


def start_pool(ctx, workers):
    """Starts a pool and waits until every worker has said hello. Returns
    the pool, the hello queue, the workers' pids and the milliseconds it
    took."""
    hello = ctx.Queue()
    started = time.perf_counter()
    pool = ctx.Pool(workers, initializer=say_hello, initargs=(hello,))
    try:
        pids = [hello.get(timeout=START_TIMEOUT) for _ in range(workers)]
    except queue.Empty:
        pool.terminate()
        raise RuntimeError(f"the pool's workers did not start within {START_TIMEOUT:.0f} s")
    return pool, hello, pids, (time.perf_counter() - started) * 1e3


def examples(pool):
    """The tutorials' examples and their results."""
    cubes = pool.map(cube, range(256))
    powers = pool.starmap(power_n, [(2, n) for n in range(11)])
    applied = pool.apply_async(cube, (10,)).get(timeout=5)
    imapped = list(pool.imap(cube, range(8)))
    unordered = list(pool.imap_unordered(countdown, range(8)))  # chunksize 1
    map_async_sum = sum(pool.map_async(cube, range(1000)).get())
    all_correct = (
        cubes == [cube(x) for x in range(256)]
        and powers == [2**n for n in range(11)]
        and applied == 1000
        and imapped == [cube(x) for x in range(8)]
        and sorted(unordered) == list(range(8))
        and map_async_sum == sum(cube(x) for x in range(1000))
    )
    return {
        "cube_first": cubes[:8],
        "cube_sum": sum(cubes),
        "power_n": powers,
        "apply_async": applied,
        "imap": imapped,
        "imap_unordered": unordered,
        "map_async_sum": map_async_sum,
        "all_correct": all_correct,
    }


def faults(ctx, workers):
    """A task that raises, then a worker killed mid-task, on a pool of their
    own: the second fault leaves its pool stuck, so it is terminated."""
    pool, hello, pids, _ = start_pool(ctx, workers)
    crew = [p for p in mp.active_children() if p.pid in pids]  # its workers
    started = time.perf_counter()
    try:
        # 1. A task raises: map waits for all ten, then raises the first
        #    exception in the caller; the other 9 results are thrown away.
        try:
            pool.map(fragile, range(10), chunksize=1)
            panic, panic_ok = "unexpected: no error", False
        except Exception as e:
            panic = f"{type(e).__name__}: {e}"
            panic_ok = isinstance(e, ValueError) and "refusing to handle 3" in str(e)

        # 2. A worker is killed while it runs task 5. The pool starts a new
        #    worker, but nothing ever fails task 5: get() without a timeout
        #    would wait forever.
        pending = pool.map_async(doomed, range(10), chunksize=2)
        try:
            pending.get(timeout=KILLED_TIMEOUT)
            timed_out = False
        except mp.TimeoutError:
            timed_out = True
        dead = [p for p in crew if p.exitcode is not None]
        how = ", ".join(f"worker {p.pid} {ended(p.exitcode)}" for p in dead) or "no worker died"
        if timed_out:
            killed = f"TimeoutError: no result after {KILLED_TIMEOUT:g} s ({how}; nothing fails the lost task)"
        else:
            killed = f"unexpected: map_async returned ({how})"
        killed_ok = timed_out and [p.exitcode for p in dead] == [-signal.SIGKILL]
    finally:
        pool.terminate()  # kills the workers; a stuck call is abandoned
        pool.join()
    seconds = time.perf_counter() - started
    replaced = 0  # the replacement said hello too
    while True:
        try:
            hello.get(timeout=0.2)
            replaced += 1
        except queue.Empty:
            break
    hello.close()
    return {
        "panic": panic,
        "killed": killed,
        "others_completed": 0,  # map_async gave the caller no results at all
        "workers_replaced": replaced,
        "seconds": seconds,
        "as_expected": panic_ok and killed_ok and replaced == 1,
    }


def ended(exitcode):
    """`killed by SIGKILL` for exit code -9, as shmlab words it."""
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


def median(values):
    """The median as the Rust lab takes it: the upper middle value of an
    even count."""
    ordered = sorted(values)
    return ordered[int((len(ordered) - 1) / 2 + 0.5)]


def time_call(pool, executor, call, chunksize, tasks, repeats):
    """Times `repeats` runs of one call over `tasks` tiny tasks; the median."""
    expected = sum(cube(x) for x in range(tasks))
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        if call == "map":
            total = sum(pool.map(cube, range(tasks), chunksize))
        elif call == "imap_unordered":
            total = sum(pool.imap_unordered(cube, range(tasks), chunksize))
        elif call == "apply_async":
            handles = [pool.apply_async(cube, (x,)) for x in range(tasks)]
            total = sum(h.get() for h in handles)
        else:  # "executor.map"
            total = sum(executor.map(cube, range(tasks), chunksize=chunksize))
        seconds.append(time.perf_counter() - started)
        if total != expected:
            raise RuntimeError(f"{call}: sum {total}, expected {expected}")
    middle = median(seconds)
    return {
        "call": call,
        "chunksize": chunksize,
        "tasks": tasks,
        "seconds": middle,
        "us_per_task": middle / tasks * 1e6,
    }


def run(workers, tasks, chunksizes, repeats):
    ctx = mp.get_context("spawn")
    pool, hello, _, start_ms = start_pool(ctx, workers)
    try:
        found = examples(pool)
        broken = faults(ctx, workers)
        results = [time_call(pool, None, "map", c, tasks, repeats) for c in chunksizes]
        results.append(time_call(pool, None, "imap_unordered", 1, tasks, repeats))
        results.append(time_call(pool, None, "apply_async", 1, tasks, repeats))
        pool.close()
        pool.join()
    finally:
        pool.terminate()  # matters only if something above failed
        hello.close()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as executor:
        # It starts its workers as work arrives: get them all going first.
        list(executor.map(cube, range(4 * workers)))
        results.append(time_call(None, executor, "executor.map", 1, tasks, repeats))
    ok = found["all_correct"] and broken["as_expected"]
    return {
        "lab": LAB,
        "ok": ok,
        "verdict": verdict(ok, results),
        "workers": workers,
        "start_ms": start_ms,
        "examples": found,
        "faults": broken,
        "repeats": repeats,
        "results": results,
    }


def verdict(ok, results):
    if not ok:
        return "a pool call gave a wrong result or a fault went otherwise than expected (see above)"
    maps = [r for r in results if r["call"] == "map"]
    smallest = min(maps, key=lambda r: r["chunksize"])
    largest = max(maps, key=lambda r: r["chunksize"])
    faults_text = (
        "a task's exception failed the whole map; a SIGKILLed worker left map_async "
        f"waiting (given up after {KILLED_TIMEOUT:g} s)"
    )
    if smallest is largest:
        return (
            f"every example was right; {faults_text}; map costs "
            f"{smallest['us_per_task']:.2f} µs per task with chunksize {smallest['chunksize']}"
        )
    return (
        f"every example was right; {faults_text}; map costs {smallest['us_per_task']:.2f} µs "
        f"per tiny task with chunksize {smallest['chunksize']} and {largest['us_per_task']:.2f} µs "
        f"with chunksize {largest['chunksize']} "
        f"({smallest['us_per_task'] / largest['us_per_task']:.1f}× cheaper): send tiny tasks in chunks"
    )


def render(report):
    e, f = report["examples"], report["faults"]
    out = f"A pool of {report['workers']} worker processes started in {report['start_ms']:.1f} ms.\n\n"
    out += "The tutorials' examples:\n"
    out += f"  map(cube, range(256))                first {e['cube_first']}, sum {e['cube_sum']}\n"
    out += f"  starmap(power_n, [(2, 0)..(2, 10)])  {e['power_n']}\n"
    out += f"  apply_async(cube, (10,)).get(5)      {e['apply_async']}\n"
    out += f"  imap(cube, range(8))                 {e['imap']}\n"
    out += f"  imap_unordered(countdown, range(8))  {e['imap_unordered']}  (the order they finished)\n"
    out += f"  map_async(cube, range(1000)).get()   sum {e['map_async_sum']}\n\n"
    out += "Faults (a pool of their own, terminated afterwards):\n"
    out += f"  a task raises:          {f['panic']}\n"
    out += f"  a worker is SIGKILLed:  {f['killed']}\n"
    out += (
        f"                          {f['others_completed']} other results reached the caller, "
        f"{f['workers_replaced']} worker replaced, {f['seconds'] * 1e3:.0f} ms in all\n\n"
    )
    tasks = report["results"][0]["tasks"] if report["results"] else 0
    out += f"{tasks} tiny tasks (cube), median of {report['repeats']} runs:\n"
    out += "  call            chunksize    seconds   µs/task\n"
    for r in report["results"]:
        out += f"  {r['call']:<15} {r['chunksize']:>9} {r['seconds']:>10.4f} {r['us_per_task']:>9.2f}\n"
    return out + f"verdict: {report['verdict']}"


# ---------------------------------------------------------------- options


def count(maximum):
    def parse(text):
        try:
            n = int(text)  # int() accepts 10_000, like the Rust lab
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a whole number")
        if n < 1:
            raise argparse.ArgumentTypeError("must be at least 1")
        if n > maximum:
            raise argparse.ArgumentTypeError(f"at most {maximum} (got {n})")
        return n

    return parse


def chunksizes(text):
    return [count(1_000_000)(part) for part in text.split(",")]


def main():
    parser = argparse.ArgumentParser(
        prog="lab02_pool.py",
        description="Run the tutorials' Pool examples on worker processes, then time "
        "chunks (the Python twin of lab02-pool).",
    )
    parser.add_argument("--workers", type=count(MAX_WORKERS),
                        default=len(os.sched_getaffinity(0)),
                        help="worker processes in the pool (default: one per CPU)")
    parser.add_argument("--tasks", type=count(10_000_000), default=10_000,
                        help="tiny tasks per timed run (default: 10_000)")
    parser.add_argument("--chunksizes", type=chunksizes, default=[1, 100],
                        help="chunk sizes to time with map, comma-separated (default: 1,100)")
    parser.add_argument("--repeats", type=count(1000), default=9,
                        help="timed runs per row; the report gives the median (default: 9)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the human report")
    args = parser.parse_args()
    try:
        report = run(args.workers, args.tasks, args.chunksizes, args.repeats)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
