//! Model checks of lab05's invariant: transfers between accounts keep the
//! total only when each transfer is one step for everyone else. The same
//! `transfer_locked` / `transfer_unlocked` functions the lab runs across
//! processes on a `SharedArray`, here on a lock and cells on the heap.
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom --test bank
//!
//! Bounds: two threads, one transfer each, explored exhaustively (no
//! preemption bound): a transfer is four atomic steps, so the whole state
//! space is a few hundred schedules. Two transfers that touch a common
//! account are the smallest case in which money can appear or vanish.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shmlab::bank::{transfer_locked, transfer_unlocked};
use shmlab::cells::Cells;
use shmlab::element::Element;
use shmlab::lock::FutexLock;

type Transfer = fn(&Cells<'_, i64>, usize, usize, i64) -> Result<(), shmlab::bank::TransferError>;

/// Three accounts of 100; thread 0 moves 10 from account 0 to 1, thread 1
/// moves 20 from account 1 to 2. Returns the balances afterwards.
fn two_transfers(transfer: Transfer) -> [i64; 3] {
    struct Bank {
        lock: FutexLock,
        accounts: [<i64 as Element>::Atomic; 3],
    }
    let bank = Arc::new(Bank {
        lock: FutexLock::new(),
        accounts: [i64::new_cell(100), i64::new_cell(100), i64::new_cell(100)],
    });
    let moves = [(0, 1, 10), (1, 2, 20)];
    let handles: Vec<_> = moves
        .into_iter()
        .map(|(from, to, amount)| {
            let bank = bank.clone();
            thread::spawn(move || {
                let cells = Cells::new(&bank.lock, &bank.accounts);
                transfer(&cells, from, to, amount).expect("the lock never fails under loom");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a model thread panicked");
    }
    let cells = Cells::new(&bank.lock, &bank.accounts);
    [0, 1, 2].map(|i| cells.load(i).expect("account"))
}

/// Under the lock every schedule ends with the same balances, and the total
/// is kept.
#[test]
fn locked_transfers_keep_the_total() {
    loom::model(|| {
        let balances = two_transfers(transfer_locked);
        assert_eq!(balances, [90, 90, 120], "a transfer was torn");
    });
}

/// The proof that the unlocked version breaks the invariant: loom finds a
/// schedule in which account 1 is read by both transfers and one write
/// overwrites the other, so money appears or vanishes.
#[test]
#[should_panic(expected = "money appeared or vanished")]
fn unlocked_transfers_break_the_total() {
    loom::model(|| {
        let balances = two_transfers(transfer_unlocked);
        let total: i64 = balances.iter().sum();
        assert_eq!(total, 300, "money appeared or vanished: {balances:?}");
    });
}
