//! Pipe and Queue across processes: order, completeness, big messages,
//! timeouts, a peer that closes or dies, producers that exit before their
//! items are consumed. Run: cargo test --release --test channels

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::ensure;
use shmlab::channel::{ChannelError, Pipe, PipeToken, Queue};
use shmlab::process::{self, WorkerError};

fn main() {
    common::run(&[
        ("pipe_round_trips_in_order", pipe_round_trips_in_order),
        (
            "pipe_streams_messages_larger_than_itself",
            pipe_streams_messages_larger_than_itself,
        ),
        (
            "pipe_messages_at_the_ring_edges",
            pipe_messages_at_the_ring_edges,
        ),
        ("pipe_recv_timeout_is_bounded", pipe_recv_timeout_is_bounded),
        (
            "pipe_close_is_seen_after_the_last_message",
            pipe_close_is_seen_after_the_last_message,
        ),
        ("pipe_peer_death_is_seen", pipe_peer_death_is_seen),
        (
            "queue_many_producers_many_consumers_lose_nothing",
            queue_many_producers_many_consumers_lose_nothing,
        ),
        (
            "queue_producers_may_exit_before_consumption",
            queue_producers_may_exit_before_consumption,
        ),
        (
            "queue_one_producer_one_consumer_in_order",
            queue_one_producer_one_consumer_in_order,
        ),
        ("queue_timeouts_and_limits", queue_timeouts_and_limits),
        ("queue_survives_a_killed_user", queue_survives_a_killed_user),
    ]);
}

/// In a worker: echoes every message back, doubled, until "stop".
fn echo(token: PipeToken) -> Result<u64, String> {
    let pipe = Pipe::open(&token).map_err(|e| e.to_string())?;
    let mut count = 0;
    loop {
        let message: String = pipe.recv().map_err(|e| e.to_string())?;
        if message == "stop" {
            return Ok(count);
        }
        pipe.send(&format!("{message}{message}"))
            .map_err(|e| e.to_string())?;
        count += 1;
    }
}
shmlab::task!(echo);

fn pipe_round_trips_in_order() -> anyhow::Result<()> {
    // Small, so the ring wraps around many times.
    let (here, there) = Pipe::with_capacity(4096)?;
    let worker = process::spawn(echo, &there.hand_over())?;
    for i in 0..2000 {
        here.send(&i.to_string())?;
        let back: String = here.recv_timeout(Duration::from_secs(20))?;
        ensure!(back == format!("{i}{i}"), "message {i} came back as {back}");
    }
    // Pipelined: many in flight at once, still in order. (Not more than fit:
    // if both directions fill up, both ends wait for each other forever —
    // the classic pipe deadlock, here as in Python.)
    for i in 0..100 {
        here.send(&format!("p{i}"))?;
    }
    for i in 0..100 {
        let back: String = here.recv_timeout(Duration::from_secs(20))?;
        ensure!(back == format!("p{i}p{i}"));
    }
    here.send("stop")?;
    ensure!(worker.join()?.map_err(anyhow::Error::msg)? == 2100);
    Ok(())
}

/// In a worker: sends back the length and a checksum of one big message.
fn checksum(token: PipeToken) -> Result<(usize, u64), String> {
    let pipe = Pipe::open(&token).map_err(|e| e.to_string())?;
    let data = pipe.recv_bytes().map_err(|e| e.to_string())?;
    let sum = data.iter().map(|&b| u64::from(b)).sum();
    pipe.send_bytes(&data).map_err(|e| e.to_string())?;
    Ok((data.len(), sum))
}
shmlab::task!(checksum);

fn pipe_streams_messages_larger_than_itself() -> anyhow::Result<()> {
    let (here, there) = Pipe::with_capacity(4096)?;
    let worker = process::spawn(checksum, &there.hand_over())?;
    let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
    here.send_bytes(&data)?;
    let back = here.recv_bytes_timeout(Duration::from_secs(30))?;
    ensure!(back == data, "the echo differs");
    let (len, sum) = worker.join()?.map_err(anyhow::Error::msg)?;
    ensure!(len == data.len() && sum == data.iter().map(|&b| u64::from(b)).sum::<u64>());
    Ok(())
}

/// In a worker: echoes `n` raw messages back as they are.
fn echo_bytes(args: (PipeToken, u32)) -> Result<u32, String> {
    let pipe = Pipe::open(&args.0).map_err(|e| e.to_string())?;
    for _ in 0..args.1 {
        let message = pipe.recv_bytes().map_err(|e| e.to_string())?;
        pipe.send_bytes(&message).map_err(|e| e.to_string())?;
    }
    Ok(args.1)
}
shmlab::task!(echo_bytes);

/// Bytes of message `i` of `len` bytes: no two neighbours alike.
fn pattern(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (j * 31 + i * 7 + 1) as u8).collect()
}

fn pipe_messages_at_the_ring_edges() -> anyhow::Result<()> {
    // 4096 bytes = 512 words each way. A message takes one length word
    // plus its bytes in words: 4088 bytes fill the ring exactly, 4089 are
    // one word too many and stream.
    let (here, there) = Pipe::with_capacity(4096)?;
    let mut lengths = vec![0, 1, 7, 8, 9, 4088, 4089, 4080, 4095, 4096, 4088];
    lengths.extend([12_345, 4088, 1, 100_003]);
    // Odd sizes, so that messages start at every offset and wrap the end.
    lengths.extend((0..3000).map(|i| (i * 37) % 1500));
    let count = u32::try_from(lengths.len())?;
    let worker = process::spawn(echo_bytes, &(there.hand_over(), count))?;
    for (i, &len) in lengths.iter().enumerate() {
        let data = pattern(i, len);
        here.send_bytes(&data)?;
        let back = here.recv_bytes_timeout(Duration::from_secs(20))?;
        ensure!(
            back == data,
            "message {i} of {len} bytes came back different"
        );
    }
    ensure!(worker.join()?.map_err(anyhow::Error::msg)? == count);
    Ok(())
}

fn pipe_recv_timeout_is_bounded() -> anyhow::Result<()> {
    let (here, _there) = Pipe::new()?;
    let started = Instant::now();
    let r = here.recv_bytes_timeout(Duration::from_millis(30));
    ensure!(matches!(r, Err(ChannelError::Timeout)), "{r:?}");
    ensure!(
        started.elapsed() >= Duration::from_millis(30)
            && started.elapsed() < Duration::from_secs(5)
    );
    Ok(())
}

/// In a worker: sends `n` numbers and exits (closing its end).
fn send_and_leave(args: (PipeToken, u32)) -> Result<(), String> {
    let pipe = Pipe::open(&args.0).map_err(|e| e.to_string())?;
    for i in 0..args.1 {
        pipe.send(&i).map_err(|e| e.to_string())?;
    }
    Ok(())
}
shmlab::task!(send_and_leave);

fn pipe_close_is_seen_after_the_last_message() -> anyhow::Result<()> {
    let (here, there) = Pipe::new()?;
    process::spawn(send_and_leave, &(there.hand_over(), 3))?
        .join()?
        .map_err(anyhow::Error::msg)?;
    // The sender is gone, but what it sent is still there, then the close.
    for i in 0..3u32 {
        ensure!(here.recv_timeout::<u32>(Duration::from_secs(5))? == i);
    }
    let r = here.recv_bytes_timeout(Duration::from_secs(5));
    ensure!(matches!(r, Err(ChannelError::Disconnected)), "{r:?}");
    ensure!(matches!(here.send(&1), Err(ChannelError::Disconnected)));
    Ok(())
}

/// In a worker: opens its end, then waits forever (to be killed).
fn hold_end(token: PipeToken) -> Result<(), String> {
    let pipe = Pipe::open(&token).map_err(|e| e.to_string())?;
    pipe.send(&"ready").map_err(|e| e.to_string())?;
    let _ = pipe.recv_bytes_timeout(Duration::from_secs(120));
    Ok(())
}
shmlab::task!(hold_end);

fn pipe_peer_death_is_seen() -> anyhow::Result<()> {
    let (here, there) = Pipe::new()?;
    let mut worker = process::spawn(hold_end, &there.hand_over())?;
    ensure!(here.recv_timeout::<String>(Duration::from_secs(20))? == "ready");
    worker.kill()?;
    let started = Instant::now();
    let r = here.recv_bytes_timeout(Duration::from_secs(20));
    ensure!(matches!(r, Err(ChannelError::Disconnected)), "{r:?}");
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    ensure!(matches!(worker.join(), Err(WorkerError::Killed { .. })));
    Ok(())
}

/// In a worker: puts `count` numbers `first..first+count`.
fn produce(args: (String, u64, u64)) -> Result<(), String> {
    let queue = Queue::open(&args.0).map_err(|e| e.to_string())?;
    for i in args.1..args.1 + args.2 {
        queue.put(&i).map_err(|e| e.to_string())?;
    }
    Ok(())
}
shmlab::task!(produce);

/// In a worker: takes numbers until it gets `u64::MAX`; returns them.
fn consume(name: String) -> Result<Vec<u64>, String> {
    let queue = Queue::open(&name).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    loop {
        let item: u64 = queue
            .get_timeout(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        if item == u64::MAX {
            return Ok(got);
        }
        got.push(item);
    }
}
shmlab::task!(consume);

fn queue_many_producers_many_consumers_lose_nothing() -> anyhow::Result<()> {
    // A small queue, so producers and consumers both have to wait.
    let queue = Queue::new(8)?;
    let per_producer = 5_000u64;
    let consumers = (0..3)
        .map(|_| process::spawn(consume, &queue.name().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let producers = (0..3u64)
        .map(|p| {
            process::spawn(
                produce,
                &(queue.name().to_string(), p * per_producer, per_producer),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    for p in producers {
        p.join()?.map_err(anyhow::Error::msg)?;
    }
    for _ in 0..3 {
        queue.put(&u64::MAX)?;
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for c in consumers {
        let got = c.join()?.map_err(anyhow::Error::msg)?;
        total += got.len();
        // Each producer's items reach any one consumer in the order put.
        for p in 0..3 {
            let mine: Vec<u64> = got
                .iter()
                .copied()
                .filter(|&i| i / per_producer == p)
                .collect();
            ensure!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "producer {p}'s items out of order"
            );
        }
        seen.extend(got);
    }
    ensure!(
        total == 15_000 && seen.len() == 15_000,
        "{total} items, {} distinct",
        seen.len()
    );
    ensure!(queue.is_empty());
    Ok(())
}

fn queue_producers_may_exit_before_consumption() -> anyhow::Result<()> {
    // Python's "joining processes that use queues" deadlock: here the items
    // are in shared memory, so the producer exits at once.
    let queue = Queue::new(1000)?;
    let producer = process::spawn(produce, &(queue.name().to_string(), 0, 1000))?;
    producer.join()?.map_err(anyhow::Error::msg)?;
    ensure!(queue.len() == 1000);
    for i in 0..1000u64 {
        ensure!(queue.get::<u64>()? == i);
    }
    Ok(())
}

/// In a worker: puts `count` raw messages, message `i` being
/// `pattern(i, i % 65)`.
fn produce_bytes(args: (String, usize)) -> Result<(), String> {
    let queue = Queue::open(&args.0).map_err(|e| e.to_string())?;
    for i in 0..args.1 {
        queue
            .put_bytes(&pattern(i, i % 65))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
shmlab::task!(produce_bytes);

fn queue_one_producer_one_consumer_in_order() -> anyhow::Result<()> {
    // Three slots (not a power of two), so both sides keep waiting for
    // each other and the indices wrap thousands of times.
    let queue = Queue::with_slot_size(3, 64)?;
    let count = 20_000;
    let producer = process::spawn(produce_bytes, &(queue.name().to_string(), count))?;
    for i in 0..count {
        let got = queue.get_bytes_timeout(Duration::from_secs(20))?;
        ensure!(got == pattern(i, i % 65), "item {i} differs: {got:?}");
    }
    producer.join()?.map_err(anyhow::Error::msg)?;
    ensure!(queue.is_empty() && !queue.take_owner_died());
    Ok(())
}

fn queue_timeouts_and_limits() -> anyhow::Result<()> {
    let queue = Queue::with_slot_size(2, 16)?;
    let started = Instant::now();
    ensure!(matches!(
        queue.get_bytes_timeout(Duration::from_millis(20)),
        Err(ChannelError::Timeout)
    ));
    ensure!(started.elapsed() >= Duration::from_millis(20));
    queue.put_bytes(b"one")?;
    queue.put_bytes(b"two")?;
    let started = Instant::now();
    ensure!(matches!(
        queue.put_bytes_timeout(b"three", Duration::from_millis(20)),
        Err(ChannelError::Timeout)
    ));
    ensure!(started.elapsed() >= Duration::from_millis(20));
    let r = queue.put_bytes(&[0; 17]);
    ensure!(
        matches!(r, Err(ChannelError::MessageTooLarge { len: 17, slot: 16 })),
        "{r:?}"
    );
    ensure!(matches!(Queue::new(0), Err(ChannelError::ZeroCapacity)));
    ensure!(queue.get_bytes()? == b"one" && queue.get_bytes()? == b"two");
    // A pipe is not a queue.
    let (pipe, _other) = Pipe::new()?;
    ensure!(matches!(
        Queue::open(pipe.name()),
        Err(ChannelError::Shm(_))
    ));
    Ok(())
}

/// In a worker: puts forever into a full queue (blocks), until killed.
fn put_forever(name: String) -> Result<(), String> {
    let queue = Queue::open(&name).map_err(|e| e.to_string())?;
    loop {
        queue.put(&7u64).map_err(|e| e.to_string())?;
    }
}
shmlab::task!(put_forever);

fn queue_survives_a_killed_user() -> anyhow::Result<()> {
    let queue = Queue::new(4)?;
    let mut worker = process::spawn(put_forever, &queue.name().to_string())?;
    common::wait_until("the queue is full", Duration::from_secs(20), || {
        queue.len() == 4
    })?;
    worker.kill()?;
    ensure!(matches!(worker.join(), Err(WorkerError::Killed { .. })));
    for _ in 0..4 {
        ensure!(queue.get_timeout::<u64>(Duration::from_secs(5))? == 7);
    }
    queue.put(&8u64)?;
    ensure!(queue.get_timeout::<u64>(Duration::from_secs(5))? == 8);
    Ok(())
}
