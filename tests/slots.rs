//! Lab 06: the topology is read the way sysfs describes it, the slots are
//! laid out where the lab says, every slot count is exact, and the verdict
//! never names a false-sharing ratio when the workers share a core.
//! Run: cargo test --release --test slots

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use shmlab::counting::{PADDED_STRIDE, Strategy};
use shmlab::lessons::slots::{
    self, Background, Measured, ScalingProbe, SlotsConfig, Topology, layout, parse_cpu_list,
    shares_a_core, shares_l1,
};

fn main() {
    common::run(&[
        ("cpu_lists_parse", cpu_lists_parse),
        ("topology_from_a_fake_sysfs", topology_from_a_fake_sysfs),
        ("the_real_topology_is_sane", the_real_topology_is_sane),
        (
            "padding_puts_every_slot_on_its_own_line",
            padding_puts_every_slot_on_its_own_line,
        ),
        (
            "sharing_a_core_is_never_reported_as_false_sharing",
            sharing_a_core_is_never_reported_as_false_sharing,
        ),
        ("the_lab_is_exact_and_honest", the_lab_is_exact_and_honest),
    ]);
}

fn cpu_lists_parse() -> anyhow::Result<()> {
    ensure!(parse_cpu_list("0-3,8,10-11\n") == vec![0, 1, 2, 3, 8, 10, 11]);
    ensure!(parse_cpu_list("5") == vec![5]);
    ensure!(parse_cpu_list("") == Vec::<usize>::new());
    ensure!(parse_cpu_list("x,2") == vec![2]);
    Ok(())
}

/// A sysfs CPU directory for a 1-socket, 2-core, 4-thread CPU numbered as
/// Linux usually does: cores first (0, 1), then their siblings (2, 3).
fn fake_sysfs(root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(root)?;
    std::fs::write(root.join("online"), "0-3\n")?;
    for cpu in 0..4usize {
        let core = cpu % 2;
        let siblings = format!("{core},{}\n", core + 2);
        let topo = root.join(format!("cpu{cpu}/topology"));
        std::fs::create_dir_all(&topo)?;
        std::fs::write(topo.join("core_id"), format!("{core}\n"))?;
        std::fs::write(topo.join("physical_package_id"), "0\n")?;
        std::fs::write(topo.join("thread_siblings_list"), &siblings)?;
        for (index, level, kind) in [
            (0, "1", "Data"),
            (1, "1", "Instruction"),
            (2, "2", "Unified"),
        ] {
            let cache = root.join(format!("cpu{cpu}/cache/index{index}"));
            std::fs::create_dir_all(&cache)?;
            std::fs::write(cache.join("level"), format!("{level}\n"))?;
            std::fs::write(cache.join("type"), format!("{kind}\n"))?;
            std::fs::write(cache.join("shared_cpu_list"), &siblings)?;
            std::fs::write(cache.join("coherency_line_size"), "64\n")?;
        }
    }
    Ok(())
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn topology_from_a_fake_sysfs() -> anyhow::Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("shmlab-slots-{}", std::process::id())));
    fake_sysfs(&dir.0)?;
    let cpuinfo =
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 hypervisor avx\n";
    let all = Topology::read(&dir.0, cpuinfo, &[0, 1, 2, 3]);
    ensure!(all.from_sysfs);
    ensure!(all.logical_cpus == 4 && all.physical_cores == 2, "{all:?}");
    ensure!(all.smt_siblings == vec![vec![0, 2], vec![1, 3]], "{all:?}");
    ensure!(all.packages == 1 && all.cache_line_bytes == 64);
    ensure!(all.machine_logical_cpus == 4 && all.machine_physical_cores == 2);
    ensure!(all.cpu_model.as_deref() == Some("Test CPU 9000") && all.hypervisor);
    ensure!(all.cpus[2].l1d_shared_with == vec![0, 2]);
    ensure!(all.same_core(0, 2) && !all.same_core(0, 1));
    // Workers 0 and 1 land on CPUs 0 and 1: separate cores.
    ensure!((all.worker_cpu(0), all.worker_cpu(1), all.worker_cpu(5)) == (0, 1, 1));

    // `taskset -c 0,2`: two logical CPUs, one physical core.
    let pair = Topology::read(&dir.0, "", &[0, 2]);
    ensure!(
        pair.logical_cpus == 2 && pair.physical_cores == 1,
        "{pair:?}"
    );
    ensure!(pair.smt_siblings == vec![vec![0, 2]]);
    // cpu_count() still counts the whole machine.
    ensure!(pair.machine_logical_cpus == 4 && pair.machine_physical_cores == 2);
    ensure!(!pair.hypervisor && pair.cpu_model.is_none());
    ensure!(shares_a_core(&pair, 2.0), "siblings share a core");

    // No sysfs at all: every CPU counts as its own core.
    let none = Topology::read(&dir.0.join("missing"), "", &[0, 1, 2]);
    ensure!(!none.from_sysfs && none.physical_cores == 3 && none.smt_siblings.is_empty());
    ensure!(none.cache_line_bytes == 64);
    Ok(())
}

fn the_real_topology_is_sane() -> anyhow::Result<()> {
    let t = Topology::detect();
    let allowed = shmlab::process::allowed_cpus();
    ensure!(t.logical_cpus == allowed.len().max(1), "{t:?}");
    ensure!(t.physical_cores >= 1 && t.physical_cores <= t.logical_cpus);
    ensure!(t.cache_line_bytes.is_power_of_two());
    Ok(())
}

fn padding_puts_every_slot_on_its_own_line() -> anyhow::Result<()> {
    let t = Topology::detect();
    let plain = layout(Strategy::Slots, 4, 64, &t);
    ensure!(plain.stride_bytes == 8);
    ensure!(
        plain.shared_lines == vec![vec![0, 1, 2, 3]],
        "4 adjacent i64 slots at offset 128 lie on one 64-byte line: {plain:?}"
    );
    let padded = layout(Strategy::PaddedSlots, 4, 64, &t);
    ensure!(padded.stride_bytes == PADDED_STRIDE * 8 && padded.stride_bytes >= 64);
    ensure!(padded.shared_lines.is_empty(), "{padded:?}");
    let lines: Vec<usize> = padded.slots.iter().map(|s| s.line).collect();
    ensure!(
        lines
            .windows(2)
            .all(|w| w[1] - w[0] == padded.stride_bytes / 64)
    );
    ensure!(padded.slots[0].offset_bytes == shmlab::shm::DATA_OFFSET);
    Ok(())
}

fn sharing_a_core_is_never_reported_as_false_sharing() -> anyhow::Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("shmlab-slots-v-{}", std::process::id())));
    fake_sysfs(&dir.0)?;
    let two_cores = Topology::read(&dir.0, "", &[0, 1]);
    let siblings = Topology::read(&dir.0, "", &[0, 2]);
    let one = Topology::read(&dir.0, "", &[3]);
    let probe = |ratio| ScalingProbe {
        one_worker_ops_per_s: 1e9,
        two_workers_ops_per_s: ratio * 1e9,
        ratio,
    };
    let verdict = |t: &Topology, p: &ScalingProbe, trip: Option<f64>, r: f64| {
        slots::verdict(
            true,
            t,
            &Measured {
                probe: p,
                round_trip_ns: trip,
                max_workers: 2,
                padded_over_unpadded: Some(r),
                one_worker_ratio: Some(1.05),
                background: None,
            },
        )
    };
    // Two cores that scale, a line that moves between caches: the ratio is
    // named, against the one-worker control.
    let (p19, p102) = (probe(1.9), probe(1.02));
    ensure!(!shares_a_core(&two_cores, 1.9) && !shares_l1(&two_cores, Some(90.0)));
    let v = verdict(&two_cores, &p19, Some(90.0), 2.5);
    ensure!(
        v.contains("can show") && v.contains("2.50×") && v.contains("1.05×"),
        "{v}"
    );
    // Two cores on paper, one core's worth of work, but the line still
    // crosses between two caches: false sharing can show, and the verdict
    // says why the scaling is low.
    ensure!(shares_a_core(&two_cores, 1.02) && !shares_l1(&two_cores, Some(300.0)));
    let v = verdict(&two_cores, &p102, Some(300.0), 1.6);
    ensure!(
        v.contains("can show") && v.contains("1.02×") && v.contains("two L1"),
        "{v}"
    );
    // The verdict says whether other processes took the missing share.
    let busy = slots::verdict(
        true,
        &two_cores,
        &Measured {
            probe: &p102,
            round_trip_ns: Some(300.0),
            max_workers: 2,
            padded_over_unpadded: Some(1.6),
            one_worker_ratio: Some(1.0),
            background: Some(Background {
                other_cpus: 0.9,
                busy: true,
            }),
        },
    );
    ensure!(busy.contains("other processes used 0.90 CPUs"), "{busy}");
    // A round trip only one L1 allows, or one so slow the workers take turns.
    ensure!(shares_l1(&two_cores, Some(15.0)) && shares_l1(&two_cores, Some(4e6)));
    ensure!(shares_l1(&two_cores, None));
    for trip in [Some(15.0), Some(4e6), None] {
        let v = verdict(&two_cores, &p102, trip, 1.6);
        ensure!(v.contains("cannot show") && !v.contains("can show:"), "{v}");
    }
    // SMT siblings by sysfs, and one CPU: cannot show, whatever was measured.
    ensure!(shares_a_core(&siblings, 2.0) && shares_l1(&siblings, Some(90.0)));
    ensure!(verdict(&siblings, &p19, Some(90.0), 2.5).contains("cannot show"));
    ensure!(shares_a_core(&one, 2.0) && shares_l1(&one, Some(90.0)));
    let v = verdict(&one, &p19, Some(90.0), 2.5);
    ensure!(
        v.contains("only one CPU") && v.contains("cannot show"),
        "{v}"
    );
    // A lost update is a bug, whatever else.
    let m = Measured {
        probe: &p19,
        round_trip_ns: Some(90.0),
        max_workers: 2,
        padded_over_unpadded: None,
        one_worker_ratio: None,
        background: None,
    };
    ensure!(slots::verdict(false, &two_cores, &m).contains("bug"));
    Ok(())
}

fn the_lab_is_exact_and_honest() -> anyhow::Result<()> {
    let config = SlotsConfig {
        max_workers: 2,
        run_time: Duration::from_millis(10),
        repeats: 3,
    };
    let report = slots::run(&config)?;
    ensure!(report.outcome.ok, "{}", report.outcome.verdict);
    ensure!(report.results.len() == 2 * 3);
    for workers in 1..=2 {
        for name in ["slots", "padded-slots", "map-reduce"] {
            let r = report
                .results
                .iter()
                .find(|r| r.workers == workers && r.strategy == name)
                .with_context(|| format!("{name} × {workers} missing"))?;
            ensure!(r.exact && r.ops_per_s > 0.0, "{r:?}");
        }
    }
    ensure!(report.worker_cpus.len() == 2);
    ensure!(report.scaling_probe.ratio > 0.0);
    let verdict = &report.outcome.verdict;
    if report.false_sharing_can_show {
        ensure!(
            !report.shares_l1 && verdict.contains("can show"),
            "{verdict}"
        );
    } else {
        ensure!(verdict.contains("cannot show"), "{verdict}");
    }
    let json = serde_json::to_value(&report)?;
    for key in [
        "lab",
        "ok",
        "verdict",
        "logical_cpus",
        "physical_cores",
        "smt_siblings",
        "scaling_probe",
        "shares_a_core",
        "line_round_trip_ns",
        "shares_l1",
        "false_sharing_can_show",
        "stride_bytes",
        "results",
        "padded_over_unpadded",
    ] {
        ensure!(json.get(key).is_some(), "no `{key}` in {json:#}");
    }
    ensure!(json["lab"] == "lab06-slots");
    ensure!(json["stride_bytes"]["slots"] == 8);
    ensure!(json["scaling_probe"]["two_workers_ops_per_s"].is_number());
    ensure!(json["padded_over_unpadded"].is_number());
    let leaked = shmlab::cleanup::segments_of(std::process::id());
    ensure!(leaked.is_empty(), "segments left behind: {leaked:?}");
    Ok(())
}
