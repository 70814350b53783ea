//! The lab binaries as a learner runs them: `--json` reports, `--help`,
//! clear errors for absurd options, and Ctrl-C that leaves nothing behind.
//! Run: cargo test --release --test labs

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const LAB01: &str = env!("CARGO_BIN_EXE_lab01-processes");
const LAB02: &str = env!("CARGO_BIN_EXE_lab02-pool");
const LAB03: &str = env!("CARGO_BIN_EXE_lab03-queues");
const LAB06: &str = env!("CARGO_BIN_EXE_lab06-slots");
const LAB07: &str = env!("CARGO_BIN_EXE_lab07-interleavings");
const LAB08: &str = env!("CARGO_BIN_EXE_lab08-mapreduce");
const LAB10: &str = env!("CARGO_BIN_EXE_lab10-wordcount");
const LAB11: &str = env!("CARGO_BIN_EXE_lab11-montecarlo");
const LAB04: &str = env!("CARGO_BIN_EXE_lab04-race");
const LAB05: &str = env!("CARGO_BIN_EXE_lab05-locks");
const LAB12: &str = env!("CARGO_BIN_EXE_lab12-threads");
const LAB09: &str = env!("CARGO_BIN_EXE_lab09-philosophers");
const TOUR: &str = env!("CARGO_BIN_EXE_tour");

fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .output()
        .expect("start the lab")
}

/// Runs a lab with `--json`, checks it exited 0 and left no segment behind,
/// and returns its report.
fn json_report(exe: &str, args: &[&str]) -> Value {
    let child = Command::new(exe)
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the lab");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for the lab");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{exe} {args:?} failed: {text}");
    assert_eq!(
        shmlab::cleanup::segments_of(pid),
        Vec::<String>::new(),
        "segments leaked"
    );
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"));
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(report["verdict"].as_str().is_some_and(|v| !v.is_empty()));
    report
}

#[test]
fn lab01_reports_workers_globals_and_start_cost() {
    let r = json_report(LAB01, &["--workers", "3", "--runs", "5"]);
    assert_eq!(r["lab"], "lab01-processes");
    let workers = r["workers"].as_array().expect("workers");
    assert_eq!(
        workers.len(),
        3 + 2,
        "3 hello workers, one panicking, one killed"
    );
    assert!(
        workers
            .iter()
            .any(|w| w["exit"].as_str().is_some_and(|e| e.contains("SIGKILL")))
    );
    assert!(workers.iter().any(|w| {
        w["exit"]
            .as_str()
            .is_some_and(|e| e.starts_with("panicked"))
    }));
    // Each hello worker saw the lab as its parent; the failing ones say
    // nothing.
    let parents: Vec<&Value> = workers.iter().map(|w| &w["parent_pid"]).collect();
    assert!(
        parents[..3].iter().all(|&p| *p == r["parent_pid"]),
        "{parents:?}"
    );
    assert!(parents[3..].iter().all(|p| p.is_null()), "{parents:?}");
    assert_eq!(r["global_in_parent"], 0);
    assert_eq!(
        r["global_in_workers"],
        serde_json::json!([1000, 1000, 1000])
    );
    assert!(r["start_ms_median"].as_f64().is_some_and(|ms| ms > 0.0));
}

#[test]
fn lab02_runs_the_examples_survives_faults_and_times_chunks() {
    let r = json_report(
        LAB02,
        &[
            "--workers",
            "2",
            "--tasks",
            "2000",
            "--chunksizes",
            "1,100",
            "--repeats",
            "2",
        ],
    );
    assert_eq!(r["lab"], "lab02-pool");
    let e = &r["examples"];
    assert_eq!(e["all_correct"], true, "{e}");
    assert_eq!(e["cube_sum"], 1_065_369_600u64);
    assert_eq!(e["power_n"][10], 1024);
    assert_eq!(e["apply_async"], 1000);
    let f = &r["faults"];
    assert_eq!(f["as_expected"], true, "{f}");
    assert!(f["killed"].as_str().is_some_and(|k| k.contains("SIGKILL")));
    assert!(f["panic"].as_str().is_some_and(|p| p.contains("refusing")));
    assert_eq!(f["workers_replaced"], 1);
    let results = r["results"].as_array().expect("results");
    let rows: Vec<(&str, u64)> = results
        .iter()
        .map(|x| {
            (
                x["call"].as_str().unwrap(),
                x["chunksize"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("map", 1),
            ("map", 100),
            ("imap_unordered", 1),
            ("apply_async", 1)
        ]
    );
    for x in results {
        assert_eq!(x["tasks"], 2000);
        let (seconds, us) = (
            x["seconds"].as_f64().unwrap(),
            x["us_per_task"].as_f64().unwrap(),
        );
        assert!(
            seconds > 0.0 && (us - seconds / 2000.0 * 1e6).abs() < 1e-6,
            "{x}"
        );
    }
}

#[test]
fn lab12_computes_pi_on_every_engine() {
    let r = json_report(
        LAB12,
        &[
            "--steps",
            "2_000_000",
            "--max-workers",
            "2",
            "--repeats",
            "1",
            "--startup-runs",
            "2",
        ],
    );
    assert_eq!(r["lab"], "lab12-threads");
    let results = r["results"].as_array().expect("results");
    // Whether this machine shows a speed-up is for the verdict to judge;
    // every estimate of pi must be right.
    for x in results {
        assert_eq!(x["correct"], true, "{x}");
        assert!((x["pi"].as_f64().unwrap() - std::f64::consts::PI).abs() < 1e-6);
    }
    let engines: std::collections::BTreeSet<&str> = results
        .iter()
        .filter_map(|x| x["engine"].as_str())
        .collect();
    assert_eq!(
        engines.len(),
        3,
        "threads, rayon and processes: {engines:?}"
    );
    assert!(!r["startup"].as_array().expect("startup").is_empty());
}

#[test]
fn lab03_puts_results_back_in_order_and_measures_both_transports() {
    let r = json_report(
        LAB03,
        &[
            "--workers",
            "3",
            "--tasks",
            "30",
            "--messages",
            "2000",
            "--sizes",
            "64,4096",
        ],
    );
    assert_eq!(r["lab"], "lab03-queues");
    assert_eq!(r["in_order_after_sort"], true);
    let mut order: Vec<u64> = r["arrival_order"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    order.sort_unstable();
    assert_eq!(
        order,
        (0..30).collect::<Vec<u64>>(),
        "every rank arrives once"
    );
    let results = r["results"].as_array().expect("results");
    assert_eq!(results.len(), 4);
    for x in results {
        assert!(x["transport"] == "pipe" || x["transport"] == "queue", "{x}");
        assert_eq!(x["messages"], 2000);
        assert!(
            x["msgs_per_s"].as_f64().unwrap() > 0.0 && x["mb_per_s"].as_f64().unwrap() > 0.0,
            "{x}"
        );
    }
}

#[test]
fn lab07_counts_every_interleaving_and_replays_one() {
    let r = json_report(LAB07, &["--workers", "2", "--schedule", "ABBBAA"]);
    assert_eq!(r["lab"], "lab07-interleavings");
    assert_eq!(r["workers"], 2);
    assert_eq!(r["increments"], 1);
    assert_eq!(r["interleavings"], 20, "C(6, 3)");
    assert_eq!(r["lost_update_interleavings"], 18);
    assert_eq!(
        r["final_values"],
        serde_json::json!([
            {"final": 1, "lost": 1, "interleavings": 18, "example": "AABABB"},
            {"final": 2, "lost": 0, "interleavings": 2, "example": "AAABBB"}
        ])
    );
    let schedules = r["schedules"].as_array().expect("schedules");
    assert_eq!(schedules.len(), 20, "few enough to list them all");
    assert_eq!(r["schedules_truncated"], false);
    assert_eq!(
        schedules[0],
        serde_json::json!({"schedule": "AAABBB", "final": 2, "lost": 0})
    );
    let replay = &r["replay"];
    assert_eq!(replay["schedule"], "ABBBAA");
    assert_eq!(
        (replay["final"].as_i64(), replay["lost"].as_i64()),
        (Some(1), Some(1))
    );
    let trace = replay["trace"].as_array().expect("trace");
    assert_eq!(trace.len(), 6);
    // B loaded 0 and stored 1 while A held 0 in its register; A's store
    // writes 1 over B's 1.
    assert_eq!(
        trace[5],
        serde_json::json!({"step": 6, "worker": "A", "op": "store", "counter": 1,
            "registers": [1, 1], "overwritten": 1})
    );
    assert_eq!(r["loom"]["test"], "racy_increment_loses_an_update");
    assert!(
        r["loom"]["command"]
            .as_str()
            .is_some_and(|c| c.contains("--test race racy"))
    );

    // Sizes not given are read off the schedule's letters.
    let r = json_report(LAB07, &["--schedule", "AAAAABBBBBBA"]);
    assert_eq!(
        (r["workers"].as_u64(), r["increments"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(r["interleavings"], 924, "C(12, 6)");
    assert_eq!(
        (r["replay"]["final"].as_i64(), r["replay"]["lost"].as_i64()),
        (Some(2), Some(2))
    );

    let r = json_report(LAB07, &["--workers", "3"]);
    assert_eq!(r["interleavings"], 1680, "9! / (3!)^3");
    assert_eq!(r["lost_update_interleavings"], 1674);
    let histogram: Vec<(i64, u64)> = r["final_values"]
        .as_array()
        .expect("final_values")
        .iter()
        .map(|f| {
            (
                f["final"].as_i64().unwrap(),
                f["interleavings"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(histogram, [(1, 1404), (2, 270), (3, 6)]);
    assert_eq!(r["schedules_truncated"], true);
    assert!(r.get("replay").is_none());

    let r = json_report(LAB07, &["--increments", "2"]);
    assert_eq!(r["interleavings"], 924, "C(12, 6)");
    assert_eq!(r["lost_update_interleavings"], 918);
}

#[test]
fn lab08_runs_every_strategy_and_writes_a_chart() {
    let chart = std::env::temp_dir().join(format!("shmlab-lab08-{}.svg", std::process::id()));
    let chart_arg = chart.to_string_lossy().to_string();
    let r = json_report(
        LAB08,
        &[
            "--max-workers",
            "2",
            "--run-ms",
            "10",
            "--repeats",
            "1",
            "--chart",
            &chart_arg,
        ],
    );
    assert_eq!(r["lab"], "lab08-mapreduce");
    let results = r["results"].as_array().expect("results");
    assert_eq!(results.len(), 7 * 2, "seven strategies at 1 and 2 workers");
    for x in results {
        assert!(x["ops_per_s"].as_f64().unwrap() > 0.0, "{x}");
        if x["strategy"] != "racy" {
            assert_eq!(x["exact"], true, "{x}");
        }
        if x["strategy"] == "locked" {
            assert_eq!(x["ratio_to_locked"], 1.0, "{x}");
        }
    }
    assert!(r["map_reduce_over_locked"].as_f64().is_some());
    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    let _ = std::fs::remove_file(&chart);
    assert!(svg.starts_with("<svg") && svg.contains("map-reduce"));
}

#[test]
fn lab04_reports_every_strategy_with_exact_arithmetic() {
    let r = json_report(LAB04, &["--workers", "2", "--increments", "300000"]);
    assert_eq!(r["lab"], "lab04-race");
    assert_eq!(r["workers"], 2);
    assert_eq!(r["increments_per_worker"], 300_000);
    assert_eq!(r["expected"], 600_000);
    let results = r["results"].as_array().expect("results");
    let names: Vec<&str> = results
        .iter()
        .filter_map(|x| x["strategy"].as_str())
        .collect();
    assert_eq!(names, ["racy", "atomic", "locked"]);
    for x in results {
        let (fin, lost) = (x["final"].as_i64().unwrap(), x["lost"].as_i64().unwrap());
        assert_eq!(fin + lost, 600_000, "{x}");
        assert!(x["seconds"].as_f64().is_some());
        if x["strategy"] != "racy" {
            assert_eq!(lost, 0, "{x}");
        }
    }
}

#[test]
fn lab05_keeps_the_invariant_and_recovers_a_dead_holder() {
    let r = json_report(
        LAB05,
        &[
            "--transfers",
            "50000",
            "--increments",
            "50000",
            "--timeout-ms",
            "20",
        ],
    );
    assert_eq!(r["lab"], "lab05-locks");
    let locked = &r["invariant"][1];
    assert_eq!(locked["mode"], "locked");
    assert_eq!(locked["invariant_kept"], true);
    assert_eq!(locked["total_after"], 8 * 1000);
    for row in r["throughput"].as_array().expect("throughput") {
        assert_eq!(row["exact"], true, "{row}");
    }
    for row in r["timed"].as_array().expect("timed") {
        assert_eq!(row["gave_up"], true, "{row}");
        assert!(row["waited_ms"].as_f64().unwrap() >= 20.0 * 0.99, "{row}");
    }
    for row in r["owner_death"].as_array().expect("owner_death") {
        assert_eq!(row["owner_died_reported"], true, "{row}");
        assert_eq!(row["holder_exit"], "killed by SIGKILL", "{row}");
    }
}

#[test]
fn lab09_detects_the_naive_deadlock_then_the_fix_serves_every_meal() {
    let r = json_report(
        LAB09,
        &[
            "--philosophers",
            "3",
            "--meals",
            "4",
            "--deadlock-timeout",
            "200",
        ],
    );
    assert_eq!(r["lab"], "lab09-philosophers");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["strategy"], "naive");
    assert_eq!(r["philosophers"], 3);
    assert_eq!(r["deadlock_detected"], true, "{r}");
    let cycle = r["cycle"].as_array().expect("cycle");
    assert_eq!(cycle.len(), 3, "{r}");
    for (k, edge) in cycle.iter().enumerate() {
        // Philosopher k holds fork k and waits for the next one's fork.
        assert_eq!(edge["philosopher"], k);
        assert_eq!(edge["holds"], serde_json::json!([k]));
        assert_eq!(edge["waits_for"], (k + 1) % 3);
        assert_eq!(edge["held_by"], cycle[(k + 1) % 3]["philosopher"]);
        assert_eq!(edge["held_by_pid"], cycle[(k + 1) % 3]["pid"]);
        let pid = edge["pid"].as_u64().expect("pid") as u32;
        assert!(
            !shmlab::process::pid_alive(pid),
            "philosopher {k} still runs"
        );
    }
    assert_eq!(r["resolution"]["kind"], "victim-killed");
    assert!(r["max_wait_ms"].as_f64().expect("max_wait_ms") >= 200.0);
    assert!(r["seconds"].as_f64().is_some());
    assert_eq!(r["meals"].as_array().expect("meals").len(), 3);
    let fix = &r["fix"];
    assert_eq!(fix["strategy"], "ordered");
    assert_eq!(fix["deadlock_detected"], false);
    assert_eq!(fix["meals"], serde_json::json!([4, 4, 4]));
    for name in r["segments"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(fix["segments"].as_array().into_iter().flatten())
    {
        let path = std::path::Path::new("/dev/shm").join(name.as_str().expect("name"));
        assert!(!path.exists(), "{} left behind", path.display());
    }
}

#[test]
fn every_lab_has_help() {
    for exe in [
        LAB01, LAB02, LAB03, LAB04, LAB05, LAB06, LAB07, LAB08, LAB09, LAB10, LAB11, LAB12, TOUR,
    ] {
        let out = run(exe, &["--help"]);
        assert!(out.status.success(), "{exe} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--json"),
            "{exe} --help"
        );
    }
}

#[test]
fn absurd_options_are_clear_errors() {
    let cases: &[(&str, &[&str], &str)] = &[
        (LAB04, &["--workers", "0"], "at least 1 worker"),
        (LAB04, &["--workers", "100000"], "at most 256 workers"),
        (LAB04, &["--increments", "0"], "at least 1"),
        (LAB04, &["--increments", "lots"], "not a whole number"),
        (LAB01, &["--runs", "0"], "at least 1"),
        (LAB05, &["--accounts", "1"], "at least 2"),
        (LAB03, &["--sizes", "64,0"], "at least 1"),
        (LAB03, &["--sizes", "99999999"], "at most"),
        (LAB05, &["--timeout-ms", "999999999"], "at most"),
        (LAB02, &["--workers", "0"], "at least 1 worker"),
        (LAB02, &["--chunksizes", "1,0"], "at least 1"),
        (LAB02, &["--tasks", "100000000000"], "at most"),
        (LAB12, &["--max-workers", "0"], "at least 1 worker"),
        (LAB08, &["--max-workers", "0"], "at least 1 worker"),
        (LAB08, &["--strategies", "telepathy"], "invalid value"),
        (LAB12, &["--steps", "0"], "at least"),
        (LAB09, &["--philosophers", "1"], "a table seats 2 to 64"),
        (LAB09, &["--philosophers", "1000"], "a table seats 2 to 64"),
        (LAB09, &["--deadlock-timeout", "0"], "at least 1"),
        (LAB09, &["--duration", "0"], "above 0"),
        (LAB09, &["--meals", "0"], "at least 1"),
        (LAB09, &["--strategy", "hope"], "invalid value"),
        (LAB09, &["--time-limit", "99999"], "at most"),
        (LAB07, &["--workers", "0"], "1 to 4 workers"),
        (LAB07, &["--workers", "9"], "1 to 4 workers"),
        (LAB07, &["--increments", "0"], "at least 1"),
        (
            LAB07,
            &["--workers", "3", "--increments", "2"],
            "17153136 interleavings",
        ),
        (
            LAB07,
            &["--workers", "2", "--schedule", "AABABC"],
            "`C` is not a worker",
        ),
        (LAB07, &["--schedule", "AABABE"], "`E` is not a worker"),
        (LAB07, &["--schedule", "AABAB"], "worker B appears 2 times"),
        (LAB07, &["--schedule", ""], "--schedule is empty"),
    ];
    for (exe, args, expected) in cases {
        let out = run(exe, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{exe} {args:?} should fail");
        assert!(stderr.contains(expected), "{exe} {args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked"),
            "{exe} {args:?} panicked: {stderr}"
        );
    }
}

#[test]
fn a_fake_worker_environment_is_a_clear_error() {
    let out = Command::new(LAB04)
        .env(shmlab::process::TASK_ENV, "no::such::task")
        .stdin(Stdio::null())
        .output()
        .expect("start");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not started by shmlab"));
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Interrupts `exe` once it runs `workers` workers and has `segments`
/// segments, then checks it exits 130 and leaves neither behind.
fn interrupt_and_check(exe: &str, args: &[&str], workers: usize, segments: usize) {
    let mut lab = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the lab");
    let pid = lab.id();
    let started = Instant::now();
    let (mut running, mut named) = (Vec::new(), Vec::new());
    while running.len() < workers || named.len() < segments {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{exe} never started its workers"
        );
        std::thread::sleep(Duration::from_millis(5));
        running = children_of(pid);
        named = shmlab::cleanup::segments_of(pid);
    }
    // SAFETY: sends SIGINT to the lab we started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = lab.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "{exe} did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    let mut stderr = String::new();
    for line in BufReader::new(lab.stderr.take().expect("stderr")).lines() {
        stderr += &line.unwrap_or_default();
    }
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        shmlab::cleanup::segments_of(pid),
        Vec::<String>::new(),
        "segments left after Ctrl-C"
    );
    // The workers follow their parent: their control socket has closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    for w in running {
        while shmlab::process::pid_alive(w) {
            assert!(
                Instant::now() < deadline,
                "worker {w} still running after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn ctrl_c_removes_segments_and_stops_workers() {
    // Long enough that it is still counting when interrupted.
    interrupt_and_check(
        LAB04,
        &["--workers", "2", "--increments", "100_000_000_000"],
        2,
        2,
    );
}

#[test]
fn ctrl_c_during_a_dinner_removes_the_table_and_the_philosophers() {
    // Five philosopher processes; the table and the start gate.
    interrupt_and_check(
        LAB09,
        &["--strategy", "ordered", "--meals", "1000000", "--no-fix"],
        5,
        2,
    );
}

#[test]
fn ctrl_c_during_a_pool_map_removes_its_pipes_and_workers() {
    // A pool of 2: its control block and one pipe per worker.
    interrupt_and_check(
        LAB02,
        &[
            "--workers",
            "2",
            "--tasks",
            "10_000_000",
            "--repeats",
            "1000",
        ],
        2,
        3,
    );
}
