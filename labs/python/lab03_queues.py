#!/usr/bin/env python3
"""Lab 03, Python twin: results arrive out of order and are put back in
order by rank; then Pipe vs Queue throughput.

The same lesson as `cargo run --release --bin lab03-queues`, in plain
Python 3 `multiprocessing` (standard library only). Handout:
docs/labs/03-queues.md

    python3 labs/python/lab03_queues.py [--json] [--workers N] [--tasks N]
                                        [--messages N] [--sizes 64,4096]

With --json it prints one JSON object with the Rust lab's keys (lab, ok,
verdict, workers, tasks, arrival_order, out_of_order, in_order_after_sort,
results: [{transport, message_bytes, messages, seconds, msgs_per_s,
mb_per_s}]). It exits with status 0 when sorting by rank restored every
result, 1 otherwise.

Like shmlab, it starts workers with the "spawn" method (a fresh
interpreter). Starting one takes tens of milliseconds, much longer than a
task, so part 1 lines the workers up at a Barrier before they begin;
otherwise the first worker would be done before the last had started.
"""

import argparse
import json
import multiprocessing as mp
import queue
import random
import sys
import time

LAB = "lab03-queues-python"
MAX_WORKERS = 256
GATE_TIMEOUT = 30.0  # seconds to wait at a barrier or for a result


# ---------------------------------------------------------------- part 1


def ranked_worker(results, go, first, step, tasks, seed):
    """Works through ranks first, first+step, ...; each takes a random
    0-2 ms, so results reach the queue in no particular order."""
    rng = random.Random(seed)
    go.wait(GATE_TIMEOUT)
    for rank in range(first, tasks, step):
        time.sleep(rng.randrange(0, 2000) / 1e6)  # simulated work
        results.put((rank, rank * rank))


def out_of_order(ctx, workers, tasks):
    """Returns the ranks in arrival order and the (rank, value) results
    sorted back by rank."""
    results = ctx.Queue()
    go = ctx.Barrier(workers + 1)
    crew = [
        ctx.Process(
            target=ranked_worker,
            args=(results, go, w, workers, tasks, 0xC0FFEE + w),
            daemon=True,
        )
        for w in range(workers)
    ]
    try:
        for p in crew:
            p.start()
        go.wait(GATE_TIMEOUT)
        # Get every result *before* joining: a process that put items on a
        # multiprocessing.Queue does not exit until they have been flushed
        # into the queue's pipe (see the handout).
        arrived = []
        for _ in range(tasks):
            try:
                arrived.append(results.get(timeout=GATE_TIMEOUT))
            except queue.Empty:
                codes = [p.exitcode for p in crew]
                raise RuntimeError(
                    f"no result for {GATE_TIMEOUT:.0f} s after {len(arrived)} of {tasks} "
                    f"(worker exit codes: {codes})"
                ) from None
        for p in crew:
            p.join(GATE_TIMEOUT)
            if p.exitcode != 0:
                raise RuntimeError(f"worker {p.pid} ended with exit code {p.exitcode}")
    finally:
        stop(crew)
    order = [rank for rank, _ in arrived]
    arrived.sort(key=lambda r: r[0])
    return order, arrived


# ---------------------------------------------------------------- part 2


def sink(transport, inbox, go, report, messages, message_bytes):
    """Receives `messages` messages of `message_bytes` bytes; reports the
    monotonic time (ns) at which it had the last one."""
    try:
        go.wait(GATE_TIMEOUT)
        if transport == "pipe":
            receive = inbox.recv_bytes
        else:
            receive = inbox.get
        for i in range(messages):
            message = receive()
            if len(message) != message_bytes:
                raise ValueError(f"message {i} has {len(message)} bytes")
        report.send(("ok", time.monotonic_ns()))
    except Exception as e:  # reported to the parent, which fails the run
        report.send(("error", f"{type(e).__name__}: {e}"))


def throughput(ctx, transport, message_bytes, messages):
    """Sends `messages` messages of `message_bytes` bytes from this process
    to a consumer process over `transport` and times it, from the start
    barrier to the consumer's last message."""
    go = ctx.Barrier(2)
    report_in, report_out = ctx.Pipe(duplex=False)
    if transport == "pipe":
        here, there = ctx.Pipe()  # duplex (a socket pair), like shmlab's Pipe
        send = here.send_bytes
    else:
        # Unbounded, as in the tutorials. shmlab's Queue holds 1024 messages;
        # Queue(1024) here adds a semaphore to every put and get.
        here = there = ctx.Queue()
        send = here.put
    done = False
    consumer = ctx.Process(
        target=sink,
        args=(transport, there, go, report_out, messages, message_bytes),
        daemon=True,
    )
    try:
        consumer.start()
        report_out.close()
        if transport == "pipe":
            there.close()  # the consumer has its own copy now
        payload = b"\x5a" * message_bytes
        go.wait(GATE_TIMEOUT)
        started = time.monotonic_ns()
        try:
            for _ in range(messages):
                send(payload)
            if not report_in.poll(GATE_TIMEOUT + messages * message_bytes / 1e7):
                raise RuntimeError(f"the {transport} consumer did not finish")
            status, value = report_in.recv()
        except (OSError, EOFError) as e:  # a broken pipe, or no report at all
            consumer.join(1)
            raise RuntimeError(
                f"the {transport} consumer (pid {consumer.pid}) died "
                f"(exit code {consumer.exitcode}): {type(e).__name__} {e}"
            ) from None
        if status != "ok":
            raise RuntimeError(f"the {transport} consumer failed: {value}")
        finished = value
        consumer.join(GATE_TIMEOUT)
        done = True
    finally:
        stop([consumer])
        if transport == "queue" and not done:
            # Items may still sit in this process's buffer with nobody left
            # to read them: do not wait for the feeder thread to flush them
            # (the hang described in the handout).
            here.cancel_join_thread()
        here.close()
        report_in.close()
    seconds = max(finished - started, 0) / 1e9
    msgs_per_s = messages / seconds if seconds > 0 else 0.0
    return {
        "transport": transport,
        "message_bytes": message_bytes,
        "messages": messages,
        "seconds": seconds,
        "msgs_per_s": msgs_per_s,
        "mb_per_s": msgs_per_s * message_bytes / 1e6,
    }


def stop(processes):
    """Makes sure none of `processes` outlives the lab."""
    for p in processes:
        if p.pid is None:
            continue  # never started
        if p.is_alive():
            p.terminate()
            p.join(2)
        if p.is_alive():
            p.kill()
            p.join()


# ---------------------------------------------------------------- report


def rate(per_second):
    """Formats a rate such as `12.3 M/s` (as shmlab does)."""
    if per_second >= 1e9:
        return f"{per_second / 1e9:.2f} G/s"
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f} k/s"
    return f"{per_second:.0f} /s"


def run(workers, tasks, messages, sizes):
    ctx = mp.get_context("spawn")
    order, ordered = out_of_order(ctx, workers, tasks)
    late, highest = 0, -1  # results that arrived after some higher rank
    for rank in order:
        if rank < highest:
            late += 1
        highest = max(highest, rank)
    in_order = len(ordered) == tasks and all(
        rank == i and value == i * i for i, (rank, value) in enumerate(ordered)
    )
    results = []
    for size in sizes:
        for transport in ("pipe", "queue"):
            results.append(throughput(ctx, transport, size, messages))

    def best(transport, size):
        for r in results:
            if r["transport"] == transport and r["message_bytes"] == size:
                return r["msgs_per_s"]
        return 0.0

    sizes_text = "; ".join(
        f"{s} B: pipe {rate(best('pipe', s))} vs queue {rate(best('queue', s))} msgs"
        for s in sizes
    )
    if in_order:
        sorted_text = f"sorting by the rank tag put all {len(ordered)} back in order"
    else:
        sorted_text = f"sorting by the rank tag did NOT give back 0..{tasks} with the right values"
    verdict = (
        f"{late} of {tasks} results arrived after a higher rank; {sorted_text}. "
        f"Throughput, one producer to one consumer: {sizes_text}."
    )
    return {
        "lab": LAB,
        "ok": in_order,
        "verdict": verdict,
        "workers": workers,
        "tasks": tasks,
        "arrival_order": order,
        "out_of_order": late,
        "in_order_after_sort": in_order,
        "results": results,
    }


def render(report):
    shown = " ".join(str(r) for r in report["arrival_order"][:24])
    more = " ..." if len(report["arrival_order"]) > 24 else ""
    sorted_text = (
        "0, 1, 2, ... all present, values right" if report["in_order_after_sort"] else "WRONG"
    )
    out = (
        f"1. {report['workers']} workers, {report['tasks']} tasks; results arrive "
        f"through a Queue as they finish:\n"
        f"   ranks in arrival order: {shown}{more}\n"
        f"   {report['out_of_order']} arrived after a higher rank; sorted by rank tag: "
        f"{sorted_text}\n\n"
    )
    out += "2. Throughput, one producer process to one consumer process\n"
    out += f"{'':<6} {'bytes':>8} {'messages':>10} {'seconds':>9} {'msgs/s':>12} {'MB/s':>10}\n"
    for r in report["results"]:
        out += (
            f"{r['transport']:<6} {r['message_bytes']:>8} {r['messages']:>10} "
            f"{r['seconds']:>9.3f} {rate(r['msgs_per_s']):>12} {r['mb_per_s']:>10.0f}\n"
        )
    return out + "\n" + f"verdict: {report['verdict']}"


# ---------------------------------------------------------------- options


def count(maximum):
    def parse(text):
        try:
            n = int(text)  # int() accepts 200_000, like the Rust lab
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a whole number")
        if n < 1:
            raise argparse.ArgumentTypeError("must be at least 1")
        if n > maximum:
            raise argparse.ArgumentTypeError(f"at most {maximum} (got {n})")
        return n

    return parse


def sizes(text):
    return [count(1 << 20)(part) for part in text.split(",")]


def main():
    parser = argparse.ArgumentParser(
        prog="lab03_queues.py",
        description="Send results and messages between processes with multiprocessing "
        "(the Python twin of lab03-queues).",
    )
    parser.add_argument("--workers", type=count(MAX_WORKERS), default=4,
                        help="workers in the out-of-order demo (default: 4)")
    parser.add_argument("--tasks", type=count(100_000), default=40,
                        help="tasks in the out-of-order demo (default: 40)")
    parser.add_argument("--messages", type=count(1 << 32), default=200_000,
                        help="messages per throughput run (default: 200_000)")
    parser.add_argument("--sizes", type=sizes, default=[64, 4096],
                        help="message sizes in bytes, comma-separated, at most 1 MiB "
                        "each (default: 64,4096)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the human report")
    args = parser.parse_args()
    try:
        report = run(args.workers, args.tasks, args.messages, args.sizes)
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
