//! Lab 03 (queues and pipes): the engines of shmlab's `Pipe` and `Queue`
//! — the pipe's single-producer ring and the queue's slot ring under its
//! two locks — with the same code the labs (and the pool, which talks to
//! its workers through pipes) run across processes.
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom --test queues
//!
//! Bounds: the rings are made as small as possible (2 words, 1 slot) so that
//! every message makes the other side wait, which is where lost wake-ups
//! hide; a lost wake-up shows as a loom deadlock, because the futex model
//! blocks until woken. Every model uses a preemption bound of 2: a lost
//! wake-up needs one preemption (between a waiter's check and its sleep),
//! and the ring's loops make unbounded exploration take hours.
#![cfg(loom)]

mod common;

use common::bounded;
use loom::sync::Arc;
use loom::thread;
use shmlab::channel::ring::{Ring, RingCtl, RingEnd, RingError};
use shmlab::channel::slots::{Slots, SlotsCtl};
use shmlab::lock::FutexLock;
use shmlab::sync::{AtomicU64, Deadline};

struct RingParts {
    ctl: RingCtl,
    words: Vec<AtomicU64>,
}

fn ring_parts(words: usize) -> Arc<RingParts> {
    Arc::new(RingParts {
        ctl: RingCtl::default(),
        words: (0..words).map(|_| AtomicU64::new(0)).collect(),
    })
}

/// Two one-byte messages through a two-word ring: the writer must wait for
/// the reader before the second. Both arrive, in order, and the close after
/// them is seen.
#[test]
fn ring_delivers_in_order_through_a_full_ring() {
    bounded(2).check(|| {
        let parts = ring_parts(2);
        let writer = parts.clone();
        let producer = thread::spawn(move || {
            let ring = Ring::new(&writer.ctl, &writer.words);
            ring.write(&[1], Deadline::never()).expect("write 1");
            ring.write(&[2], Deadline::never()).expect("write 2");
            ring.close(RingEnd::Writer);
        });
        let ring = Ring::new(&parts.ctl, &parts.words);
        assert_eq!(ring.read(Deadline::never()), Ok(vec![1]));
        assert_eq!(ring.read(Deadline::never()), Ok(vec![2]));
        assert_eq!(ring.read(Deadline::never()), Err(RingError::Disconnected));
        producer.join().expect("producer");
    });
}

/// A message longer than the ring streams through it.
#[test]
fn ring_streams_a_message_longer_than_itself() {
    bounded(2).check(|| {
        let parts = ring_parts(2);
        let writer = parts.clone();
        let producer = thread::spawn(move || {
            let ring = Ring::new(&writer.ctl, &writer.words);
            ring.write(&[7; 17], Deadline::never()).expect("write");
        });
        let ring = Ring::new(&parts.ctl, &parts.words);
        assert_eq!(ring.read(Deadline::never()), Ok(vec![7; 17]));
        producer.join().expect("producer");
    });
}

/// A message that fills a four-word ring exactly, written after a two-word
/// one: the writer must wait for the ring to be empty, then its body wraps
/// around the ring's end in two runs, and the reader copies both back.
#[test]
fn ring_wraps_a_message_exactly_its_size() {
    bounded(2).check(|| {
        let parts = ring_parts(4);
        let writer = parts.clone();
        let producer = thread::spawn(move || {
            let ring = Ring::new(&writer.ctl, &writer.words);
            ring.write(&[1; 8], Deadline::never()).expect("write 1");
            ring.write(&[2; 20], Deadline::never()).expect("write 2");
        });
        let ring = Ring::new(&parts.ctl, &parts.words);
        assert_eq!(ring.read(Deadline::never()), Ok(vec![1; 8]));
        assert_eq!(ring.read(Deadline::never()), Ok(vec![2; 20]));
        producer.join().expect("producer");
    });
}

struct QueueParts {
    ctl: SlotsCtl,
    lock: FutexLock,
    words: Vec<AtomicU64>,
}

fn queue_parts(slots: usize, slot_words: usize) -> Arc<QueueParts> {
    Arc::new(QueueParts {
        ctl: SlotsCtl::new(),
        lock: FutexLock::new(),
        words: (0..slots * slot_words).map(|_| AtomicU64::new(0)).collect(),
    })
}

/// Two producers, one consumer, a one-slot queue: both items arrive, once
/// each, whatever the interleaving.
#[test]
fn queue_two_producers_one_slot_lose_nothing() {
    bounded(2).check(|| {
        let parts = queue_parts(1, 2);
        let producers: Vec<_> = [10u8, 20]
            .into_iter()
            .map(|item| {
                let parts = parts.clone();
                thread::spawn(move || {
                    let slots = Slots::new(&parts.ctl, &parts.lock, &parts.words, 2);
                    slots.put(&[item], Deadline::never()).expect("put");
                })
            })
            .collect();
        let slots = Slots::new(&parts.ctl, &parts.lock, &parts.words, 2);
        let mut got = vec![
            slots.get(Deadline::never()).expect("get")[0],
            slots.get(Deadline::never()).expect("get")[0],
        ];
        got.sort();
        assert_eq!(got, vec![10, 20]);
        for p in producers {
            p.join().expect("producer");
        }
    });
}

/// One producer, two consumers, a one-slot queue: the consumers share their
/// lock, and each item is taken exactly once.
#[test]
fn queue_two_consumers_one_slot_take_each_item_once() {
    bounded(2).check(|| {
        let parts = queue_parts(1, 2);
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let parts = parts.clone();
                thread::spawn(move || {
                    let slots = Slots::new(&parts.ctl, &parts.lock, &parts.words, 2);
                    slots.get(Deadline::never()).expect("get")[0]
                })
            })
            .collect();
        let slots = Slots::new(&parts.ctl, &parts.lock, &parts.words, 2);
        slots.put(&[10], Deadline::never()).expect("put");
        slots.put(&[20], Deadline::never()).expect("put");
        let mut got: Vec<u8> = consumers
            .into_iter()
            .map(|c| c.join().expect("consumer"))
            .collect();
        got.sort();
        assert_eq!(got, vec![10, 20]);
    });
}

/// One producer, one consumer, two slots, three items: both sides work
/// from their last look at the other's index and look again only when the
/// queue seems full (or empty). Everything arrives, in order.
#[test]
fn queue_one_producer_one_consumer_in_order() {
    bounded(2).check(|| {
        let parts = queue_parts(2, 2);
        let producer_parts = parts.clone();
        let producer = thread::spawn(move || {
            let p = &producer_parts;
            let slots = Slots::new(&p.ctl, &p.lock, &p.words, 2);
            for item in [1u8, 2, 3] {
                slots.put(&[item], Deadline::never()).expect("put");
            }
        });
        let slots = Slots::new(&parts.ctl, &parts.lock, &parts.words, 2);
        for item in [1u8, 2, 3] {
            assert_eq!(slots.get(Deadline::never()), Ok(vec![item]));
        }
        producer.join().expect("producer");
        assert!(slots.is_empty());
    });
}
