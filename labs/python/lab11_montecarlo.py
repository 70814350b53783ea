#!/usr/bin/env python3
"""Lab 11, Python twin: Monte Carlo pi and the strided midpoint-rule pi,
serial vs threads vs a process Pool; every worker drawing the same random
numbers, and per-task seeds that make the result the same for any worker
count.

The same lesson as `cargo run --release --bin lab11-montecarlo`, in plain
Python 3 `multiprocessing`. Handout: docs/labs/11-montecarlo.md

    python3 labs/python/lab11_montecarlo.py [--json] [--samples N] [--batch N]
        [--steps N] [--seed N] [--workers N] [--demo-workers N]
        [--repeats N] [--no-numpy]

It uses numpy when it is installed (unless --no-numpy), the standard
library's `random` otherwise; the report says which (`kernel`: "numpy" or
"random"). With --json it prints one JSON object with the Rust lab's keys
(lab, ok, verdict, samples, master_seed, batch, tasks, steps, cpus,
max_workers, repeats, kernel, background, pitfall: {workers,
samples_per_worker, state, pids, per_worker_estimates, all_equal, estimate,
error, standard_error_if_independent}, fixed: {workers, tasks, pids,
tasks_per_worker, per_worker_estimates, hits, estimate, error,
standard_error, worker_counts, reproducible_across_worker_counts},
results: [{method, engine, workers, samples, seconds, samples_per_s,
estimate, error}]). It exits with status 0 when the pitfall showed, the fix
was reproducible and every pi was within its tolerance, 1 otherwise.

Workers are started with the "fork" method, as in the tutorials (the
default on Linux up to Python 3.13): a forked worker is a copy of the
parent, generator state included. That copy is the pitfall. Note that
Python reseeds the *global* `random` generator in every forked child (since
3.7, `os.register_at_fork`), so `random.random()` is safe there; a
`random.Random(seed)` object made before the fork is not, and neither is
numpy's global generator (`np.random.seed`, `np.random.random`), which is
what the tutorials use.
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import random

try:
    import numpy as np
except ImportError:  # numpy is optional
    np = None

LAB = "lab11-montecarlo-python"
MAX_WORKERS = 256
MAX_SAMPLES = 10**12
MAX_TASKS = 1_000_000
SIGMAS = 6.0
ROUNDING_TOLERANCE = 1e-9
SCALING_SHOWN = 1.3
CHUNK = 1 << 20  # numpy: at most this many points in memory at once

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15

USE_NUMPY = np is not None  # set by main(); inherited by forked workers
INHERITED = None  # the parent's generator, copied into every forked worker


# ---------------------------------------------------------------- seeds


def mix64(z):
    """SplitMix64's output function, as in the Rust lab."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def task_seed(master, task):
    """Output `task` of SplitMix64 seeded with `master`: the seed of batch
    `task`, the same whichever worker runs it (the Rust lab's task_seed)."""
    return mix64((master + (task + 1) * GAMMA) & MASK)


# ---------------------------------------------------------------- kernels


def hits_random(rng, n):
    """Points (random(), random()) in the quarter circle, the tutorials'
    loop."""
    r = rng.random
    hits = 0
    for _ in range(n):
        x = r()
        y = r()
        if x * x + y * y < 1.0:
            hits += 1
    return hits


def hits_numpy(gen, n):
    """The same with numpy arrays, drawn from the Generator `gen`, or from
    numpy's global generator if `gen` is None. The arrays are reused: in a
    process's main thread, fresh 8 MB arrays for every chunk cost about a
    third of the speed (glibc hands freed large blocks back to the OS, and
    the next chunk page-faults them in again)."""
    size = min(n, CHUNK)
    x, y, inside = np.empty(size), np.empty(size), np.empty(size, dtype=bool)
    hits = 0
    while n > 0:
        m = min(n, CHUNK)
        xs, ys, ins = x[:m], y[:m], inside[:m]
        if gen is None:
            xs[:] = np.random.random(m)  # the legacy global generator has no out=
            ys[:] = np.random.random(m)
        else:
            gen.random(out=xs)
            gen.random(out=ys)
        np.multiply(xs, xs, out=xs)
        np.multiply(ys, ys, out=ys)
        np.add(xs, ys, out=xs)
        np.less(xs, 1.0, out=ins)
        hits += int(np.count_nonzero(ins))
        n -= m
    return hits


def wait_for_all(barrier):
    """Pool initializer: start drawing only when every worker is up, so
    that each takes one of the pitfall's tasks (a worker that took two
    would continue its own stream in the second)."""
    barrier.wait(30)


def inherited_hits(n):
    """The pitfall: draw from the generator this worker inherited from its
    parent at fork. Returns (pid, hits)."""
    if USE_NUMPY:
        hits = hits_numpy(None, n)  # numpy's global generator
    else:
        hits = hits_random(INHERITED, n)
    return os.getpid(), hits


def batch_hits(batch):
    """The fix: batch (master, index, samples) draws from its own seed."""
    master, index, samples = batch
    seed = task_seed(master, index)
    if USE_NUMPY:
        return hits_numpy(np.random.default_rng(seed), samples)
    return hits_random(random.Random(seed), samples)


def batch_hits_in_worker(batch):
    return os.getpid(), batch_hits(batch)


def pi_part(part):
    """Steps index, index + parts, ... of the midpoint rule: this part's
    share of pi."""
    steps, parts, index = part
    h = 1.0 / steps
    if USE_NUMPY:
        count = len(range(index, steps, parts))
        size = min(count, CHUNK)
        k = np.arange(size, dtype=np.float64)  # 0, 1, 2, ... reused
        x = np.empty(size)
        total = 0.0
        for done in range(0, count, CHUNK):
            m = min(CHUNK, count - done)
            xs = x[:m]
            np.multiply(k[:m], float(parts), out=xs)  # step (done + k)·parts + index
            xs += index + done * parts + 0.5
            xs *= h
            np.multiply(xs, xs, out=xs)
            xs += 1.0
            np.divide(4.0, xs, out=xs)
            total += float(np.sum(xs))
        return total * h
    total = 0.0
    for i in range(index, steps, parts):
        x = (i + 0.5) * h
        total += 4.0 / (1.0 + x * x)
    return total * h


# ---------------------------------------------------------------- engines


def batches(samples, batch, master):
    return [
        (master, i, min(batch, samples - i * batch)) for i in range(-(-samples // batch))
    ]


def parts(steps, workers):
    return [(steps, workers, k) for k in range(workers)]


def run_once(method, engine, workers, pools, args, n):
    """One run: hits (Monte Carlo) or pi (midpoint)."""
    if method == "monte_carlo":
        work, f = batches(n, args.batch, args.seed), batch_hits
    else:
        work, f = parts(n, workers if engine != "serial" else 1), pi_part
    if engine == "serial":
        values = [f(w) for w in work]
    elif engine == "threads":
        with ThreadPoolExecutor(max_workers=workers) as ex:
            values = list(ex.map(f, work))
    else:
        values = pools[workers].map(f, work, chunksize=1)
    if method == "monte_carlo":
        return sum(values)
    total = 0.0
    for v in values:  # in part order, as the Rust lab
        total += v
    return total


def estimate(hits, samples):
    return 4.0 * hits / max(samples, 1)


def standard_error(samples):
    p = math.pi / 4.0
    return 4.0 * math.sqrt(p * (1.0 - p) / max(samples, 1))


def midpoint_tolerance(steps):
    h = 1.0 / steps
    return ROUNDING_TOLERANCE + h * h / 3.0


def rate(per_second):
    """Formats a rate such as `12.3 M/s` (as shmlab does)."""
    if per_second >= 1e9:
        return f"{per_second / 1e9:.2f} G/s"
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f} k/s"
    return f"{per_second:.0f} /s"


def run(args):
    global INHERITED
    ctx = mp.get_context("fork")
    d = args.demo_workers

    # 1. The pitfall: the parent seeds its generator, then forks the pool.
    per_worker = args.samples // d
    if USE_NUMPY:
        np.random.seed(args.seed % 2**32)
    INHERITED = random.Random(args.seed)
    with ctx.Pool(d, initializer=wait_for_all, initargs=(ctx.Barrier(d),)) as demo:
        got = demo.map(inherited_hits, [per_worker] * d, chunksize=1)
        # 2. The fix, on the same pool.
        all_batches = batches(args.samples, args.batch, args.seed)
        fixed_got = demo.map(batch_hits_in_worker, all_batches, chunksize=1)
    p_hits = [h for _, h in got]
    p_est = estimate(sum(p_hits), per_worker * d)
    pitfall = {
        "workers": d,
        "samples_per_worker": per_worker,
        "state": args.seed,
        "pids": [pid for pid, _ in got],
        "per_worker_estimates": [estimate(h, per_worker) for h in p_hits],
        "all_equal": len(set(p_hits)) == 1,
        "estimate": p_est,
        "error": abs(p_est - math.pi),
        "standard_error_if_independent": standard_error(per_worker * d),
    }
    pids, per = [], {}
    for (pid, h), (_, _, n) in zip(fixed_got, all_batches):
        if pid not in per:
            pids.append(pid)
            per[pid] = [0, 0, 0]
        per[pid][0] += 1
        per[pid][1] += h
        per[pid][2] += n
    f_hits = sum(h for _, h in fixed_got)
    f_est = estimate(f_hits, args.samples)
    fixed = {
        "workers": d,
        "tasks": len(all_batches),
        "pids": pids,
        "tasks_per_worker": [per[p][0] for p in pids],
        "per_worker_estimates": [estimate(per[p][1], per[p][2]) for p in pids],
        "hits": f_hits,
        "estimate": f_est,
        "error": abs(f_est - math.pi),
        "standard_error": standard_error(args.samples),
        "worker_counts": sorted(set(range(1, args.workers + 1)) | {d}),
        "reproducible_across_worker_counts": True,
    }

    # 3. Timings, one worker count at a time (only its pool exists); within
    # it, round-robin over the rows. Each pool is forked before that
    # block's threads run.
    setups = []
    for method in ("monte_carlo", "midpoint"):
        setups.append((method, "serial", 1))
        for engine in ("threads", "pool"):
            for w in range(1, args.workers + 1):
                setups.append((method, engine, w))
    size = {"monte_carlo": args.samples, "midpoint": args.steps}
    seconds = {s: [] for s in setups}
    values = {}
    consistent = True
    for w in range(1, args.workers + 1):
        pools = {w: ctx.Pool(w)}
        try:
            block = [s for s in setups if s[2] == w]
            for method, engine, _ in block:  # warm up: fault in, import, start
                run_once(method, engine, w, pools, args, min(size[method], 10_000))
            for _ in range(args.repeats):
                for s in block:
                    started = time.perf_counter()
                    v = run_once(*s, pools, args, size[s[0]])
                    seconds[s].append(time.perf_counter() - started)
                    if s in values:
                        consistent &= values[s] == v
                    else:
                        values[s] = v
        finally:
            pools[w].terminate()
            pools[w].join()

    results = []
    for s in setups:
        method, engine, w = s
        n = size[method]
        med = statistics.median(seconds[s])
        est = estimate(values[s], n) if method == "monte_carlo" else values[s]
        results.append({
            "method": method,
            "engine": engine,
            "workers": w,
            "samples": n,
            "seconds": med,
            "samples_per_s": n / med if med > 0 else 0.0,
            "estimate": est,
            "error": abs(est - math.pi),
        })
    mc_hits = [values[s] for s in setups if s[0] == "monte_carlo"]
    fixed["reproducible_across_worker_counts"] = consistent and all(h == f_hits for h in mc_hits)

    mc_tol = SIGMAS * standard_error(args.samples)
    checks = {
        "workers given the same state did NOT return the same estimate": pitfall["all_equal"],
        "workers with per-batch seeds returned identical estimates":
            len(set(fixed["per_worker_estimates"])) > 1 or len(pids) < 2,
        "the hits differed between engines or worker counts":
            fixed["reproducible_across_worker_counts"],
        "a Monte Carlo estimate was more than 6 standard errors from pi":
            all(r["error"] <= mc_tol for r in results if r["method"] == "monte_carlo")
            and fixed["error"] <= mc_tol,
        "a midpoint-rule pi was off by more than its error bound":
            all(r["error"] <= midpoint_tolerance(args.steps)
                for r in results if r["method"] == "midpoint"),
    }
    ok = all(checks.values())
    report = {
        "lab": LAB,
        "ok": ok,
        "verdict": verdict(args, checks, pitfall, fixed, results),
        "samples": args.samples,
        "master_seed": args.seed,
        "batch": args.batch,
        "tasks": len(all_batches),
        "steps": args.steps,
        "cpus": len(os.sched_getaffinity(0)),
        "max_workers": args.workers,
        "repeats": args.repeats,
        "kernel": "numpy" if USE_NUMPY else "random",
        "background": None,
        "pitfall": pitfall,
        "fixed": fixed,
        "results": results,
    }
    return report


def find(results, method, engine, workers):
    for r in results:
        if (r["method"], r["engine"], r["workers"]) == (method, engine, workers):
            return r
    return None


def verdict(args, checks, pitfall, fixed, results):
    wrong = [what for what, held in checks.items() if not held]
    if wrong:
        return "FAILED: " + "; ".join(wrong) + " (see above)"
    counts = fixed["worker_counts"]
    counts_text = ", ".join(map(str, counts[:-1])) + f" and {counts[-1]}" if len(counts) > 1 else str(counts[0])
    out = (
        f"same state in every worker: all {pitfall['workers']} estimates were "
        f"{pitfall['per_worker_estimates'][0]:.6f} (identical); per-batch seeds from master seed "
        f"{args.seed}: the same {fixed['hits']} hits on every engine with {counts_text} workers "
        f"(pi ~ {fixed['estimate']:.6f}, error {fixed['error']:.1e}). "
    )
    w = args.workers
    serial = find(results, "monte_carlo", "serial", 1)
    pool_w = find(results, "monte_carlo", "pool", w)
    out += f"Monte Carlo ({'numpy' if USE_NUMPY else 'random'}): serial {rate(serial['samples_per_s'])}, pool with {w} workers {rate(pool_w['samples_per_s'])}. "
    if w > 1:
        text = []
        for engine in ("threads", "pool"):
            one = find(results, "monte_carlo", engine, 1)
            many = find(results, "monte_carlo", engine, w)
            text.append(f"{engine} x{many['samples_per_s'] / one['samples_per_s']:.2f}")
        out += f"{w} workers vs 1: " + ", ".join(text) + "."
    return out


def render(report):
    p, f = report["pitfall"], report["fixed"]
    out = (
        f"Monte Carlo pi: {report['samples']} samples in {report['tasks']} batches of "
        f"{report['batch']}, master seed {report['master_seed']}; midpoint rule: "
        f"{report['steps']} steps. Generator: {report['kernel']}; {report['cpus']} CPUs.\n\n"
    )
    source = "numpy global generator" if report["kernel"] == "numpy" else "random.Random"
    out += (
        f"1. The pitfall: {p['workers']} forked workers, each with a copy of the parent's\n"
        f"   {source} seeded with {p['state']}. {p['samples_per_worker']} samples each:\n"
    )
    for pid, e in zip(p["pids"], p["per_worker_estimates"]):
        out += f"     worker {pid:>7}: {e:.10f}\n"
    same = "all identical: every worker drew the same numbers" if p["all_equal"] else "NOT all identical"
    out += f"   {same}; together {p['estimate']:.10f}, error {p['error']:.2e}.\n\n"
    out += (
        f"2. The fix: batch k draws from its own generator seeded with task_seed({report['master_seed']}, k).\n"
        f"   {f['workers']} workers ran the {f['tasks']} batches:\n"
    )
    for pid, n, e in zip(f["pids"], f["tasks_per_worker"], f["per_worker_estimates"]):
        out += f"     worker {pid:>7}: {n:>6} batches, {e:.10f}\n"
    counts = ", ".join(map(str, f["worker_counts"]))
    rep = "reproducible" if f["reproducible_across_worker_counts"] else "NOT reproducible"
    out += (
        f"   total {f['hits']} hits: pi ~ {f['estimate']:.10f}, error {f['error']:.2e} "
        f"(standard error {f['standard_error']:.1e});\n"
        f"   the same hits with {counts} workers on every engine: {rep}.\n\n"
    )
    out += f"3. Timed, median of {report['repeats']} runs (pools started beforehand):\n"
    out += "   method       engine   workers      samples    seconds    samples/s       estimate      error\n"
    for r in report["results"]:
        out += (
            f"   {r['method']:<12} {r['engine']:<8} {r['workers']:>7} {r['samples']:>12} "
            f"{r['seconds']:>10.4f} {rate(r['samples_per_s']):>12} {r['estimate']:>14.10f} "
            f"{r['error']:>10.2e}\n"
        )
    return out + f"verdict: {report['verdict']}"


# ---------------------------------------------------------------- options


def count(maximum, what="must be at least 1"):
    def parse(text):
        try:
            n = int(text)  # int() accepts 200_000, like the Rust lab
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a whole number")
        if n < 1:
            raise argparse.ArgumentTypeError(what)
        if n > maximum:
            raise argparse.ArgumentTypeError(f"at most {maximum} (got {n})")
        return n

    return parse


def seed(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number")
    if not 0 <= n <= MASK:
        raise argparse.ArgumentTypeError("a seed is 0 to 2^64 - 1")
    return n


def main():
    global USE_NUMPY
    parser = argparse.ArgumentParser(
        prog="lab11_montecarlo.py",
        description="Monte Carlo and midpoint-rule pi on threads and a process Pool, "
        "and seeding the workers right (the Python twin of lab11-montecarlo).",
    )
    parser.add_argument("--samples", type=count(MAX_SAMPLES), default=None,
                        help="Monte Carlo samples per run (default: 40_000_000 with numpy, "
                        "2_000_000 without)")
    parser.add_argument("--batch", type=count(MAX_SAMPLES), default=None,
                        help="samples per batch (task) (default: 1_000_000 with numpy, "
                        "100_000 without)")
    parser.add_argument("--steps", type=count(MAX_SAMPLES), default=None,
                        help="midpoint-rule steps per run (default: 40_000_000 with numpy, "
                        "2_000_000 without)")
    parser.add_argument("--seed", type=seed, default=42, help="the master seed (default: 42)")
    parser.add_argument("--workers", type=count(MAX_WORKERS, "at least 1 worker is needed"),
                        default=len(os.sched_getaffinity(0)),
                        help="time 1..WORKERS threads and processes (default: one per CPU)")
    parser.add_argument("--demo-workers", type=count(MAX_WORKERS, "at least 1 worker is needed"),
                        default=4, help="workers in the pitfall and fix demos (default: 4)")
    parser.add_argument("--repeats", type=count(1000), default=3,
                        help="timed runs per row; the report gives the median (default: 3)")
    parser.add_argument("--no-numpy", action="store_true",
                        help="use the standard library's random even if numpy is installed")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the human report")
    args = parser.parse_args()
    USE_NUMPY = np is not None and not args.no_numpy
    big = USE_NUMPY  # numpy draws ~20x faster: give it more work
    if args.samples is None:
        args.samples = 40_000_000 if big else 2_000_000
    if args.batch is None:
        args.batch = 1_000_000 if big else 100_000
    if args.steps is None:
        args.steps = 40_000_000 if big else 2_000_000
    if -(-args.samples // args.batch) > MAX_TASKS:
        parser.error(f"--samples {args.samples} in --batch {args.batch} makes more than "
                     f"{MAX_TASKS} tasks: raise --batch")
    if args.samples < args.demo_workers:
        parser.error("--samples must be at least --demo-workers")
    try:
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
