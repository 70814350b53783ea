//! Lab 11's Monte Carlo and midpoint π: per-batch seeds give the same hits
//! for 1, 2 and 4 workers on every engine; workers handed the same state
//! really return the same estimate; estimates land within their
//! tolerance of π; the wide kernels count exactly what the portable one
//! counts; the lab's JSON and its option errors.
//! Run: cargo test --release --test montecarlo

mod common;

use std::collections::BTreeSet;
use std::f64::consts::PI;
use std::process::{Command, Stdio};

use anyhow::{Context, ensure};
use common::shm_path;
use shmlab::lessons::montecarlo::{
    Part, SplitMix64, batch_hits, batches, count_hits, count_hits_portable, estimate, hits_pool,
    hits_serial, hits_threads, in_quarter_circle, mc_tolerance, midpoint_pool, midpoint_serial,
    midpoint_threads, nth_output, pi_part, pi_part_portable, pitfall_hits, task_seed,
};
use shmlab::pool::Pool;

const LAB11: &str = env!("CARGO_BIN_EXE_lab11-montecarlo");

fn main() {
    common::run(&[
        (
            "fixed_seeds_give_the_same_hits_for_1_2_4_workers",
            fixed_seeds_give_the_same_hits_for_1_2_4_workers,
        ),
        (
            "the_pitfall_gives_equal_estimates",
            the_pitfall_gives_equal_estimates,
        ),
        ("estimates_are_close_to_pi", estimates_are_close_to_pi),
        (
            "strided_midpoint_matches_pi_to_1e_9",
            strided_midpoint_matches_pi_to_1e_9,
        ),
        (
            "wide_kernels_count_what_the_portable_one_counts",
            wide_kernels_count_what_the_portable_one_counts,
        ),
        (
            "splitmix64_is_the_published_one",
            splitmix64_is_the_published_one,
        ),
        (
            "the_quarter_circle_test_is_exact",
            the_quarter_circle_test_is_exact,
        ),
        ("batches_cover_every_sample", batches_cover_every_sample),
        (
            "the_lab_reports_json_and_leaves_nothing",
            the_lab_reports_json_and_leaves_nothing,
        ),
        (
            "absurd_options_are_clear_errors",
            absurd_options_are_clear_errors,
        ),
    ]);
}

const SAMPLES: u64 = 20_000_000;
const BATCH: u64 = 500_000;
const SEED: u64 = 42;

fn fixed_seeds_give_the_same_hits_for_1_2_4_workers() -> anyhow::Result<()> {
    let serial = hits_serial(SAMPLES, BATCH, SEED);
    for workers in [1, 2, 4] {
        let threads = hits_threads(SAMPLES, BATCH, SEED, workers)?;
        ensure!(
            threads == serial,
            "threads ×{workers}: {threads} hits, serial {serial}"
        );
        let pool = Pool::new(workers)?;
        let names = pool.segment_names();
        let processes = hits_pool(&pool, SAMPLES, BATCH, SEED)?;
        ensure!(
            processes == serial,
            "pool ×{workers}: {processes} hits, serial {serial}"
        );
        drop(pool);
        for name in names {
            ensure!(!shm_path(&name).exists(), "{name} left in /dev/shm");
        }
    }
    // Another master seed is another (still reproducible) result.
    let other = hits_serial(SAMPLES, BATCH, SEED + 1);
    ensure!(
        other != serial,
        "seeds 42 and 43 gave the same {other} hits"
    );
    ensure!(other == hits_threads(SAMPLES, BATCH, SEED + 1, 3)?);
    Ok(())
}

fn the_pitfall_gives_equal_estimates() -> anyhow::Result<()> {
    let pool = Pool::new(4)?;
    let state = SplitMix64::new(SEED).state();
    let got = pitfall_hits(&pool, 4, 5_000_000, state)?;
    ensure!(got.len() == 4, "{} results for 4 workers", got.len());
    let hits: BTreeSet<u64> = got.iter().map(|w| w.hits).collect();
    ensure!(
        hits.len() == 1,
        "the same state gave different hits: {got:?}"
    );
    let pids: BTreeSet<u32> = got.iter().map(|w| w.pid).collect();
    ensure!(
        pids.iter().all(|&p| p != std::process::id()),
        "the pitfall ran in the parent: {got:?}"
    );
    // The fix on the same split: four batches, four seeds, four estimates.
    let fixed: BTreeSet<u64> = batches(20_000_000, 5_000_000, SEED)
        .into_iter()
        .map(batch_hits)
        .collect();
    ensure!(
        fixed.len() == 4,
        "per-batch seeds repeated a count: {fixed:?}"
    );
    Ok(())
}

fn estimates_are_close_to_pi() -> anyhow::Result<()> {
    // The seeds are fixed, so these are exact facts about these seeds, not
    // flaky draws; each bound is 6 standard errors.
    let samples = 100_000_000;
    let hits = hits_threads(samples, 1_000_000, SEED, 2)?;
    let e = estimate(hits, samples);
    ensure!(
        (e - PI).abs() <= mc_tolerance(samples),
        "{e} is {:.2e} from π (tolerance {:.2e})",
        (e - PI).abs(),
        mc_tolerance(samples)
    );
    for seed in [0, 1, 7, 12345, u64::MAX] {
        let e = estimate(hits_serial(5_000_000, 1_000_000, seed), 5_000_000);
        ensure!(
            (e - PI).abs() <= mc_tolerance(5_000_000),
            "seed {seed}: {e}"
        );
    }
    Ok(())
}

fn strided_midpoint_matches_pi_to_1e_9() -> anyhow::Result<()> {
    let steps = 10_000_000;
    let serial = midpoint_serial(steps);
    ensure!((serial - PI).abs() < 1e-9, "serial: {serial}");
    for workers in [1, 2, 3, 4] {
        let threads = midpoint_threads(steps, workers)?;
        ensure!((threads - PI).abs() < 1e-9, "threads ×{workers}: {threads}");
        let pool = Pool::new(workers)?;
        let processes = midpoint_pool(&pool, steps)?;
        // Same parts, same order, f64 through JSON and back unchanged.
        ensure!(
            processes.to_bits() == threads.to_bits(),
            "pool ×{workers}: {processes} vs threads {threads}"
        );
    }
    // Odd sizes: fewer steps than lanes, than parts, a remainder.
    for (steps, workers) in [(1, 1), (3, 4), (1_001, 3), (999_999, 7)] {
        let pi = midpoint_threads(steps, workers)?;
        let h = 1.0 / steps as f64;
        ensure!(
            (pi - PI).abs() <= h * h / 3.0 + 1e-12,
            "{steps} steps in {workers} parts: {pi}"
        );
    }
    Ok(())
}

fn wide_kernels_count_what_the_portable_one_counts() -> anyhow::Result<()> {
    for seed in [0, 1, 42, 0xDEAD_BEEF, u64::MAX] {
        for samples in [0, 1, 7, 8, 9, 63, 1000, 100_003] {
            let wide = count_hits(seed, samples);
            let portable = count_hits_portable(seed, samples);
            ensure!(
                wide == portable,
                "seed {seed}, {samples} samples: {wide} vs {portable}"
            );
        }
    }
    for (steps, parts, index) in [(10, 1, 0), (1_000_003, 3, 2), (17, 5, 4), (8, 9, 8)] {
        let part = Part {
            steps,
            parts,
            index,
        };
        ensure!(
            pi_part(part).to_bits() == pi_part_portable(part).to_bits(),
            "{part:?}"
        );
    }
    Ok(())
}

fn splitmix64_is_the_published_one() -> anyhow::Result<()> {
    // The first outputs for seed 0 of the reference splitmix64.c.
    let mut rng = SplitMix64::new(0);
    let first = [rng.next_u64(), rng.next_u64(), rng.next_u64()];
    ensure!(
        first
            == [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ],
        "{first:x?}"
    );
    let mut rng = SplitMix64::new(SEED);
    for n in 0..100 {
        ensure!(rng.next_u64() == nth_output(SEED, n), "output {n}");
    }
    ensure!(task_seed(SEED, 5) == nth_output(SEED, 5));
    // count_hits draws exactly the stream of SplitMix64::new(seed).
    let mut rng = SplitMix64::new(9);
    let by_hand = (0..10_000)
        .filter(|_| in_quarter_circle(rng.next_u64()))
        .count() as u64;
    ensure!(by_hand == count_hits(9, 10_000));
    Ok(())
}

fn the_quarter_circle_test_is_exact() -> anyhow::Result<()> {
    let point = |x: u64, y: u64| (x << 33) | (y << 1);
    ensure!(in_quarter_circle(point(0, 0)));
    ensure!(in_quarter_circle(point((1 << 31) - 1, 0)));
    ensure!(!in_quarter_circle(point((1 << 31) - 1, (1 << 31) - 1)));
    // 2^31 · cos 45° ≈ 1518500249.99: 1518500249² · 2 < 2^62 < 1518500250² · 2.
    ensure!(in_quarter_circle(point(1_518_500_249, 1_518_500_249)));
    ensure!(!in_quarter_circle(point(1_518_500_250, 1_518_500_250)));
    let mut rng = SplitMix64::new(3);
    for _ in 0..100_000 {
        let r = rng.next_u64();
        let (x, y) = (u128::from(r >> 33), u128::from((r as u32) >> 1));
        ensure!(
            in_quarter_circle(r) == (x * x + y * y < 1u128 << 62),
            "{r:#x}"
        );
    }
    Ok(())
}

fn batches_cover_every_sample() -> anyhow::Result<()> {
    for (samples, batch) in [
        (1, 1),
        (10, 3),
        (1_000_000, 1_000_000),
        (1_000_001, 1_000_000),
    ] {
        let b = batches(samples, batch, 1);
        ensure!(b.iter().map(|b| b.samples).sum::<u64>() == samples);
        ensure!(b.iter().all(|b| b.samples >= 1 && b.samples <= batch));
        ensure!(b.iter().enumerate().all(|(i, b)| b.index == i as u64));
    }
    Ok(())
}

fn lab(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new(LAB11)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("start lab11-montecarlo")
}

fn our_segments(pid: u32) -> Vec<String> {
    let prefix = format!("shmlab_{pid}_");
    std::fs::read_dir(shmlab::cleanup::SHM_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn the_lab_reports_json_and_leaves_nothing() -> anyhow::Result<()> {
    let child = Command::new(LAB11)
        .args([
            "--json",
            "--samples",
            "8_000_000",
            "--batch",
            "250_000",
            "--steps",
            "2_000_000",
            "--workers",
            "2",
            "--repeats",
            "2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).context("JSON")?;
    ensure!(r["lab"] == "lab11-montecarlo" && r["ok"] == true, "{r}");
    ensure!(r["verdict"].as_str().is_some_and(|v| !v.is_empty()));
    ensure!(r["samples"] == 8_000_000 && r["master_seed"] == 42, "{r}");
    let pitfall = &r["pitfall"];
    ensure!(pitfall["all_equal"] == true, "{pitfall}");
    let same = pitfall["per_worker_estimates"]
        .as_array()
        .context("pitfall.per_worker_estimates")?;
    ensure!(
        same.len() == 4 && same.iter().all(|e| *e == same[0]),
        "{pitfall}"
    );
    let fixed = &r["fixed"];
    ensure!(
        fixed["reproducible_across_worker_counts"] == true,
        "{fixed}"
    );
    ensure!(
        fixed["worker_counts"] == serde_json::json!([1, 2, 4]),
        "{fixed}"
    );
    ensure!(fixed["per_worker_estimates"].is_array(), "{fixed}");
    let rows = r["results"].as_array().context("results")?;
    // serial + threads ×2 + pool ×2, for each of the two methods.
    ensure!(rows.len() == 10, "{} rows", rows.len());
    for row in rows {
        for key in [
            "method",
            "engine",
            "workers",
            "samples",
            "seconds",
            "samples_per_s",
            "estimate",
            "error",
        ] {
            ensure!(!row[key].is_null(), "row without {key}: {row}");
        }
    }
    let mc: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["method"] == "monte_carlo")
        .map(|r| r["estimate"].to_string())
        .collect();
    ensure!(mc.len() == 1, "Monte Carlo estimates differ: {mc:?}");
    ensure!(
        our_segments(pid).is_empty(),
        "left in /dev/shm: {:?}",
        our_segments(pid)
    );
    Ok(())
}

fn absurd_options_are_clear_errors() -> anyhow::Result<()> {
    let cases: &[(&[&str], &str)] = &[
        (&["--workers", "0"], "at least 1 worker"),
        (&["--demo-workers", "0"], "at least 1 worker"),
        (&["--samples", "0"], "at least 1"),
        (&["--samples", "1_000_000_000_001"], "at most 1000000000000"),
        (&["--steps", "0"], "at least 1"),
        (&["--steps", "10000000000000"], "at most"),
        (&["--batch", "0"], "at least 1"),
        (&["--repeats", "0"], "at least 1"),
        (&["--samples", "lots"], "not a whole number"),
        (
            &["--samples", "1_000_000_000", "--batch", "1"],
            "raise --batch",
        ),
        (&["--samples", "3"], "at least --demo-workers"),
        (&["--seed=-1"], "invalid value"),
    ];
    for (args, expected) in cases {
        let out = lab(args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "{args:?} should fail");
        ensure!(
            out.status.code() == Some(2),
            "{args:?}: exit {:?}",
            out.status
        );
        ensure!(stderr.contains(expected), "{args:?}: {stderr}");
        ensure!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    }
    Ok(())
}
