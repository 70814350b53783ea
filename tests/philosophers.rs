//! Dining philosophers across real processes (and threads): the naive
//! deadlock is detected and its cycle reported edge by edge; the fixes
//! serve every meal; nothing is left running or in /dev/shm.

mod common;

use std::time::Duration;

use anyhow::{Context, ensure};
use shmlab::philosophers::{
    DineError, Dinner, DinnerConfig, Resolution, SharedTable, Strategy, run_dinner,
};
use shmlab::{SharedValue, process};

/// The watchdog polls every timeout/10 and confirms with a second reading;
/// on a loaded 2-CPU machine a philosopher process can also be descheduled
/// for a while. Generous, but bounded.
const SLACK: Duration = Duration::from_secs(3);
const TIMEOUT: Duration = Duration::from_millis(200);

fn config(strategy: Strategy, philosophers: usize) -> DinnerConfig {
    DinnerConfig {
        meals: Some(5),
        deadlock_timeout: TIMEOUT,
        time_limit: Duration::from_secs(60),
        ..DinnerConfig::new(strategy, philosophers)
    }
}

/// No philosopher process is left, and no segment of this process.
fn nothing_left(dinner: &Dinner) -> anyhow::Result<()> {
    for edge in &dinner.cycle {
        ensure!(
            dinner.variant == "threads" || !process::pid_alive(edge.pid),
            "philosopher {} (pid {}) is still running",
            edge.philosopher,
            edge.pid
        );
    }
    for name in &dinner.segments {
        ensure!(
            !common::shm_path(name).exists(),
            "segment {name} left behind"
        );
    }
    ensure!(dinner.variant == "threads" || dinner.segments.len() == 2);
    Ok(())
}

/// The cycle has one edge per philosopher, and each waits for the fork the
/// next one holds: philosopher i holds fork i and waits for fork i+1.
fn check_cycle(dinner: &Dinner, n: usize) -> anyhow::Result<()> {
    let cycle = &dinner.cycle;
    ensure!(
        cycle.len() == n,
        "cycle of {} edges, expected {n}: {cycle:?}",
        cycle.len()
    );
    for (k, edge) in cycle.iter().enumerate() {
        let next = &cycle[(k + 1) % n];
        ensure!(
            edge.philosopher == k,
            "edge {k} starts at {}",
            edge.philosopher
        );
        ensure!(
            edge.holds == vec![k],
            "philosopher {k} holds {:?}",
            edge.holds
        );
        ensure!(
            edge.waits_for == (k + 1) % n,
            "philosopher {k} waits for {}",
            edge.waits_for
        );
        ensure!(
            edge.held_by == next.philosopher,
            "edge {k} is held by {}, next is {}",
            edge.held_by,
            next.philosopher
        );
        ensure!(
            next.holds.contains(&edge.waits_for),
            "the holder does not hold fork {}",
            edge.waits_for
        );
        ensure!(
            edge.held_by_pid == next.pid && edge.pid != 0,
            "pids do not chain: {edge:?} -> {next:?}"
        );
        ensure!(
            edge.waited_ms >= TIMEOUT.as_secs_f64() * 1e3,
            "reported a wait of {} ms",
            edge.waited_ms
        );
    }
    ensure!(dinner.report.len() == n && dinner.report[0].starts_with("philosopher 0 ("));
    Ok(())
}

fn naive_is_detected(n: usize) -> anyhow::Result<()> {
    let dinner = run_dinner(&config(Strategy::Naive, n))?;
    ensure!(dinner.deadlock_detected, "no deadlock reported: {dinner:?}");
    check_cycle(&dinner, n)?;
    let after = dinner.detected_after_ms.context("no detection time")?;
    ensure!(
        after >= TIMEOUT.as_secs_f64() * 1e3 && after <= (TIMEOUT + SLACK).as_secs_f64() * 1e3,
        "reported {after} ms after the cycle closed (timeout {TIMEOUT:?})"
    );
    // The victim was killed; its neighbour recovered the fork it held, and
    // every other philosopher ate every meal.
    let Resolution::VictimKilled { victim } = dinner.resolution else {
        anyhow::bail!("resolution {:?}", dinner.resolution);
    };
    ensure!(
        dinner.recovered_forks >= 1,
        "no fork recovered from the victim"
    );
    for (i, &meals) in dinner.meals.iter().enumerate() {
        ensure!(
            i == victim || meals == 5,
            "philosopher {i} ate {meals} of 5"
        );
    }
    ensure!(
        dinner.meals[victim] == 0,
        "the victim ate before the deadlock"
    );
    ensure!(
        dinner.completed && dinner.exclusion_violations == 0,
        "{dinner:?}"
    );
    nothing_left(&dinner)
}

fn every_fix_serves_every_meal() -> anyhow::Result<()> {
    for n in [2, 3, 5] {
        for strategy in [Strategy::Ordered, Strategy::Waiter, Strategy::Timeout] {
            let dinner = run_dinner(&config(strategy, n))?;
            let what = format!("{} with {n}", strategy.name());
            ensure!(
                !dinner.deadlock_detected,
                "{what}: deadlock {:?}",
                dinner.report
            );
            ensure!(
                dinner.meals == vec![5; n],
                "{what}: meals {:?}",
                dinner.meals
            );
            ensure!(dinner.completed, "{what}: {:?}", dinner.failures);
            ensure!(dinner.exclusion_violations == 0, "{what}: forks shared");
            nothing_left(&dinner)?;
        }
    }
    Ok(())
}

fn timeout_backs_off_when_everyone_reaches_together() -> anyhow::Result<()> {
    // Everyone holds the left fork before anyone reaches right: every
    // philosopher's second fork is taken, so someone must put one back.
    let dinner = run_dinner(&config(Strategy::Timeout, 5))?;
    ensure!(
        dinner.backoffs.iter().sum::<u64>() >= 1,
        "no back-off: {:?}",
        dinner.backoffs
    );
    ensure!(dinner.meals == vec![5; 5]);
    Ok(())
}

fn threads_deadlock_is_seen_by_both_detectors() -> anyhow::Result<()> {
    let dinner = run_dinner(&DinnerConfig {
        threads: true,
        ..config(Strategy::Naive, 3)
    })?;
    ensure!(dinner.deadlock_detected, "{dinner:?}");
    check_cycle(&dinner, 3)?;
    let parking_lot = dinner.parking_lot.as_ref().context("no parking_lot view")?;
    ensure!(
        parking_lot.found && parking_lot.philosophers == vec![0, 1, 2],
        "{parking_lot:?}"
    );
    ensure!(
        dinner.resolution
            == Resolution::ThreadsAbandoned {
                philosophers: vec![0, 1, 2]
            },
        "{:?}",
        dinner.resolution
    );
    // The same strategies, fixed, finish on threads too.
    for strategy in [Strategy::Ordered, Strategy::Waiter, Strategy::Timeout] {
        let dinner = run_dinner(&DinnerConfig {
            threads: true,
            ..config(strategy, 3)
        })?;
        ensure!(
            dinner.meals == vec![5; 3] && !dinner.deadlock_detected,
            "{dinner:?}"
        );
        ensure!(
            dinner.parking_lot.is_some_and(|p| !p.found),
            "parking_lot saw a deadlock"
        );
    }
    Ok(())
}

fn a_timed_dinner_counts_meals_per_philosopher() -> anyhow::Result<()> {
    let dinner = run_dinner(&DinnerConfig {
        meals: None,
        duration: Some(Duration::from_millis(300)),
        together: false,
        ..config(Strategy::Waiter, 3)
    })?;
    ensure!(
        dinner.meals_each.is_none() && dinner.completed,
        "{dinner:?}"
    );
    ensure!(
        dinner.meals.iter().all(|&m| m >= 1),
        "someone never ate: {:?}",
        dinner.meals
    );
    ensure!(dinner.seconds >= 0.3, "stopped early: {} s", dinner.seconds);
    nothing_left(&dinner)
}

fn bad_tables_are_typed_errors() -> anyhow::Result<()> {
    for n in [0, 1, 65] {
        ensure!(
            matches!(run_dinner(&config(Strategy::Ordered, n)), Err(DineError::Philosophers(m)) if m == n),
            "{n} philosophers accepted"
        );
    }
    let value = SharedValue::<u64>::create(0)?;
    let err = SharedTable::open(value.name()).expect_err("a value is not a table");
    ensure!(
        err.to_string().contains("not a philosophers' table"),
        "{err}"
    );
    let err = SharedTable::open("shmlab_no_such_table").expect_err("missing");
    ensure!(
        err.to_string().contains("no shared memory segment"),
        "{err}"
    );
    Ok(())
}

fn main() {
    common::run(&[
        ("naive_deadlock_is_detected_with_2", || naive_is_detected(2)),
        ("naive_deadlock_is_detected_with_3", || naive_is_detected(3)),
        ("naive_deadlock_is_detected_with_5", || naive_is_detected(5)),
        ("every_fix_serves_every_meal", every_fix_serves_every_meal),
        (
            "timeout_backs_off_when_everyone_reaches_together",
            timeout_backs_off_when_everyone_reaches_together,
        ),
        (
            "threads_deadlock_is_seen_by_both_detectors",
            threads_deadlock_is_seen_by_both_detectors,
        ),
        (
            "a_timed_dinner_counts_meals_per_philosopher",
            a_timed_dinner_counts_meals_per_philosopher,
        ),
        ("bad_tables_are_typed_errors", bad_tables_are_typed_errors),
    ]);
}
