//! An event count: one futex word that counts publications, with bit 0
//! meaning "someone sleeps on me". Both the pipe's rings and the queue wait
//! with it.
//!
//! A publisher adds 2 after making its change visible; if bit 0 was set it
//! clears it and wakes the sleepers. A waiter reads the word *before* it
//! checks its condition, and sleeps only if the word still holds that value
//! (setting bit 0 with a compare-and-swap first). Every step is on one
//! word, so a publication can never slip between a waiter's check and its
//! sleep: no lost wake-up, and no SeqCst needed.

use std::time::Duration;

use crate::sync::{self, FutexWord, Ordering};

/// Reads the count before checking a condition.
pub fn observe(word: &FutexWord) -> u32 {
    word.load(Ordering::Acquire)
}

/// Counts one publication and wakes every sleeper, if there are any.
pub fn announce(word: &FutexWord) {
    let before = word.fetch_add(2, Ordering::AcqRel);
    if before & 1 != 0 {
        word.fetch_and(!1, Ordering::AcqRel);
        sync::futex_wake(word, u32::MAX);
    }
}

/// Sleeps for at most `nap` unless something was published since `seen`
/// was observed. Returns at once (to let the caller look again) if so.
pub fn sleep(word: &FutexWord, seen: u32, nap: Duration) {
    if seen & 1 == 0
        && word
            .compare_exchange(seen, seen | 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return;
    }
    sync::futex_wait(word, seen | 1, Some(nap));
}

/// Pause-spins before [`spin`] starts to yield: about 3 µs here, enough
/// for a peer running on the other CPU that is about to publish.
#[cfg(not(loom))]
const PAUSES: u32 = 100;
/// How long [`spin`] keeps looking before its caller sleeps (the old
/// 4000 pause-spins took about as long).
#[cfg(not(loom))]
const SPIN_BUDGET: Duration = Duration::from_micros(100);

/// Looks at `ready` for a while before the caller sleeps on the futex;
/// true as soon as it holds.
///
/// First a short pause-spin, then `sched_yield` between looks until
/// `SPIN_BUDGET` (100 µs) has passed. Yielding matters when the peer needs
/// *this* CPU to make `ready` true (both processes on one CPU): a pure spin
/// keeps it off until the time slice ends (lab03 on one CPU: 1.5–5.8×
/// faster with the yield than with 4000 pause-spins). With nothing else
/// runnable, `sched_yield` returns at once (about 0.6 µs here), so with
/// the peer on the other CPU this is still a spin.
#[cfg(not(loom))]
pub fn spin(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..PAUSES {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
    }
    let start = std::time::Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() > SPIN_BUDGET {
            return false;
        }
        std::thread::yield_now();
    }
}
