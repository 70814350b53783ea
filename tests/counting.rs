//! Every counting strategy but `racy` is exact with 1, 2 and 4 worker
//! processes; the strategies that share nothing really share nothing.
//! Run: cargo test --release --test counting

mod common;

use anyhow::ensure;
use shmlab::counting::{PADDED_STRIDE, Strategy, count};

fn main() {
    common::run(&[
        ("exact_strategies_are_exact", exact_strategies_are_exact),
        (
            "strategies_use_the_cells_they_say",
            strategies_use_the_cells_they_say,
        ),
    ]);
}

fn exact_strategies_are_exact() -> anyhow::Result<()> {
    for strategy in Strategy::ALL.into_iter().filter(|s| s.is_exact()) {
        for workers in [1, 2, 4] {
            let run = count(strategy, workers, 200_000)?;
            ensure!(
                run.final_value == run.expected && run.expected == workers as i64 * 200_000,
                "{} with {workers} workers: {} of {}",
                strategy.name(),
                run.final_value,
                run.expected
            );
            ensure!(run.ops_per_s > 0.0);
        }
    }
    Ok(())
}

fn strategies_use_the_cells_they_say() -> anyhow::Result<()> {
    // 128 bytes apart on x86-64: crossbeam's CachePadded.
    ensure!(PADDED_STRIDE * 8 >= 64, "stride {PADDED_STRIDE}");
    ensure!(Strategy::Slots.cells(4) == 4);
    ensure!(Strategy::PaddedSlots.cells(4) == 4 * PADDED_STRIDE);
    ensure!(Strategy::MapReduce.cells(4) == 0);
    ensure!(Strategy::Locked.cells(4) == 1);
    Ok(())
}
