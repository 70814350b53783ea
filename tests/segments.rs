//! Named segments: creating, opening, every typed open error, ownership and
//! cleanup. Run: cargo test --release --test segments

mod common;

use std::io::Write;
use std::time::Duration;

use anyhow::ensure;
use common::shm_path;
use shmlab::cleanup;
use shmlab::lock::{FutexLock, OsMutex};
use shmlab::process::{self, StartGate};
use shmlab::shm::ShmError;
use shmlab::{SharedArray, SharedValue};

fn main() {
    common::run(&[
        ("create_open_and_drop_unlinks", create_open_and_drop_unlinks),
        (
            "names_get_the_prefix_and_are_checked",
            names_get_the_prefix_and_are_checked,
        ),
        ("open_missing_is_not_found", open_missing_is_not_found),
        (
            "open_wrong_kind_is_kind_mismatch",
            open_wrong_kind_is_kind_mismatch,
        ),
        (
            "open_wrong_element_type_is_type_mismatch",
            open_wrong_element_type_is_type_mismatch,
        ),
        (
            "open_wrong_lock_is_lock_mismatch",
            open_wrong_lock_is_lock_mismatch,
        ),
        ("open_truncated_is_truncated", open_truncated_is_truncated),
        ("open_foreign_is_bad_magic", open_foreign_is_bad_magic),
        (
            "open_tiny_or_empty_is_too_small",
            open_tiny_or_empty_is_too_small,
        ),
        ("open_zeroed_is_uninitialised", open_zeroed_is_uninitialised),
        ("absurd_sizes_are_errors", absurd_sizes_are_errors),
        (
            "array_index_out_of_bounds_is_an_error",
            array_index_out_of_bounds_is_an_error,
        ),
        ("unwinding_panic_unlinks", unwinding_panic_unlinks),
        (
            "another_process_sees_the_values",
            another_process_sees_the_values,
        ),
        (
            "clean_removes_segments_of_killed_creators",
            clean_removes_segments_of_killed_creators,
        ),
    ]);
}

/// A segment file written by hand, removed when dropped.
struct HandMade(std::path::PathBuf);

impl HandMade {
    fn new(tag: &str, bytes: &[u8]) -> anyhow::Result<(Self, String)> {
        let name = format!("shmlab_test_{tag}_{}", std::process::id());
        let path = shm_path(&name);
        std::fs::File::create(&path)?.write_all(bytes)?;
        Ok((HandMade(path), name))
    }
}

impl Drop for HandMade {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn create_open_and_drop_unlinks() -> anyhow::Result<()> {
    let value = SharedValue::<i64>::create(41)?;
    let name = value.name().to_string();
    ensure!(
        name.starts_with(&format!("shmlab_{}_", std::process::id())),
        "default name {name}"
    );
    ensure!(shm_path(&name).exists(), "no file for {name}");
    let other = SharedValue::<i64>::open(&name)?;
    ensure!(!other.segment().is_owner() && value.segment().is_owner());
    other.store(other.load() + 1);
    ensure!(value.load() == 42);
    drop(other);
    ensure!(shm_path(&name).exists(), "an opener must not unlink");
    drop(value);
    ensure!(!shm_path(&name).exists(), "the owner must unlink on drop");
    Ok(())
}

fn names_get_the_prefix_and_are_checked() -> anyhow::Result<()> {
    let tag = format!("named_{}", std::process::id());
    let value = SharedValue::<u32>::create_named(&tag, 7)?;
    ensure!(value.name() == format!("shmlab_{tag}"));
    ensure!(
        SharedValue::<u32>::open(&tag)?.load() == 7,
        "open accepts the short name"
    );
    let again = SharedValue::<u32>::create_named(&tag, 0);
    ensure!(matches!(again, Err(ShmError::Exists { .. })), "{again:?}");
    for bad in ["", "a/b", "has space", &"x".repeat(300)] {
        let r = SharedValue::<u32>::create_named(bad, 0);
        ensure!(
            matches!(r, Err(ShmError::InvalidName { .. })),
            "{bad:?}: {r:?}"
        );
    }
    Ok(())
}

fn open_missing_is_not_found() -> anyhow::Result<()> {
    let r = SharedValue::<i64>::open("shmlab_does_not_exist_anywhere");
    ensure!(matches!(r, Err(ShmError::NotFound { .. })), "{r:?}");
    Ok(())
}

fn open_wrong_kind_is_kind_mismatch() -> anyhow::Result<()> {
    let value = SharedValue::<i64>::create(0)?;
    let r = SharedArray::<i64>::open(value.name());
    ensure!(
        matches!(&r, Err(ShmError::KindMismatch { expected: "an array", found, .. }) if found == "a value"),
        "{r:?}"
    );
    let array = SharedArray::<i64>::create(3, 0)?;
    let r = SharedValue::<i64>::open(array.name());
    ensure!(matches!(r, Err(ShmError::KindMismatch { .. })), "{r:?}");
    Ok(())
}

fn open_wrong_element_type_is_type_mismatch() -> anyhow::Result<()> {
    let value = SharedValue::<i64>::create(0)?;
    let r = SharedValue::<u32>::open(value.name());
    ensure!(
        matches!(&r, Err(ShmError::TypeMismatch { expected: "u32", found, .. }) if found == "i64"),
        "{r:?}"
    );
    let message = r.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        message.contains("i64") && message.contains("u32"),
        "message: {message}"
    );
    let r = SharedValue::<f64>::open(value.name());
    ensure!(matches!(r, Err(ShmError::TypeMismatch { .. })), "{r:?}");
    Ok(())
}

fn open_wrong_lock_is_lock_mismatch() -> anyhow::Result<()> {
    let value = SharedValue::<i64, FutexLock>::create(0)?;
    let r = SharedValue::<i64, OsMutex>::open(value.name());
    ensure!(
        matches!(r, Err(ShmError::LockMismatch { expected: "os", .. })),
        "{r:?}"
    );
    Ok(())
}

fn open_truncated_is_truncated() -> anyhow::Result<()> {
    // A real header promising 1000 elements, in a file with room for far fewer.
    let array = SharedArray::<i64>::create(1000, 0)?;
    let bytes = std::fs::read(shm_path(array.name()))?;
    let (_file, name) = HandMade::new("truncated", &bytes[..4096])?;
    let r = SharedArray::<i64>::open(&name);
    ensure!(
        matches!(
            r,
            Err(ShmError::Truncated {
                len: 1000,
                needed: 8128,
                size: 4096,
                ..
            })
        ),
        "{r:?}"
    );
    Ok(())
}

fn open_foreign_is_bad_magic() -> anyhow::Result<()> {
    let (_file, name) = HandMade::new("foreign", &[0xAB; 4096])?;
    let r = SharedValue::<i64>::open(&name);
    ensure!(matches!(r, Err(ShmError::BadMagic { .. })), "{r:?}");
    Ok(())
}

fn open_tiny_or_empty_is_too_small() -> anyhow::Result<()> {
    let (_tiny, name) = HandMade::new("tiny", b"SHMLAB")?;
    let r = SharedValue::<i64>::open(&name);
    ensure!(
        matches!(r, Err(ShmError::TooSmall { size: 6, .. })),
        "{r:?}"
    );
    let (_empty, name) = HandMade::new("empty", b"")?;
    let r = SharedValue::<i64>::open(&name);
    ensure!(
        matches!(r, Err(ShmError::TooSmall { size: 0, .. })),
        "{r:?}"
    );
    Ok(())
}

fn open_zeroed_is_uninitialised() -> anyhow::Result<()> {
    // What an opener sees if the creator died between creating and publishing.
    let (_file, name) = HandMade::new("zeroed", &[0; 4096])?;
    let started = std::time::Instant::now();
    let r = SharedValue::<i64>::open(&name);
    ensure!(matches!(r, Err(ShmError::Uninitialised { .. })), "{r:?}");
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "open must give up in bounded time"
    );
    Ok(())
}

fn absurd_sizes_are_errors() -> anyhow::Result<()> {
    let r = SharedArray::<i64>::create(usize::MAX / 4, 0);
    ensure!(matches!(r, Err(ShmError::TooLarge { .. })), "{r:?}");
    let r = SharedArray::<i64>::create(1 << 50, 0);
    ensure!(matches!(r, Err(ShmError::NoSpace { .. })), "{r:?}");
    Ok(())
}

fn array_index_out_of_bounds_is_an_error() -> anyhow::Result<()> {
    let array = SharedArray::<u64>::create(4, 1)?;
    ensure!(array.get(3)? == 1);
    ensure!(array.get(4).is_err() && array.set(4, 0).is_err() && array.fetch_add(99, 1).is_err());
    let guard = array.lock().map_err(|e| e.discard_guard())?;
    ensure!(guard.get(4).is_err() && guard.set(4, 0).is_err());
    Ok(())
}

fn unwinding_panic_unlinks() -> anyhow::Result<()> {
    let name = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let value = SharedValue::<i64>::create(0).expect("create");
        *name.lock().expect("lock") = value.name().to_string();
        panic!("a bug while the segment is alive");
    });
    ensure!(result.is_err());
    let name = name.into_inner()?;
    ensure!(
        !name.is_empty() && !shm_path(&name).exists(),
        "{name} was left behind"
    );
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct WriteArgs {
    value: String,
    array: String,
}

/// In a worker: writes to a value and an array the parent created.
fn write_shared(args: WriteArgs) -> Result<(), String> {
    let value = SharedValue::<f64>::open(&args.value).map_err(|e| e.to_string())?;
    let array = SharedArray::<i32>::open(&args.array).map_err(|e| e.to_string())?;
    value.store(2.5);
    for i in 0..array.len() {
        array.set(i, -(i as i32)).map_err(|e| e.to_string())?;
    }
    Ok(())
}
shmlab::task!(write_shared);

fn another_process_sees_the_values() -> anyhow::Result<()> {
    let value = SharedValue::<f64>::create(0.0)?;
    let array = SharedArray::<i32>::create(5, 9)?;
    let args = WriteArgs {
        value: value.name().into(),
        array: array.name().into(),
    };
    process::spawn(write_shared, &args)?
        .join()?
        .map_err(anyhow::Error::msg)?;
    ensure!(value.load() == 2.5);
    ensure!(array.to_vec() == vec![0, -1, -2, -3, -4]);
    Ok(())
}

/// In a worker: creates a segment, says so at the gate, then waits to be
/// killed (the gate never opens).
fn create_then_wait(gate: String) -> Result<(), String> {
    let _value = SharedValue::<i64>::create(1).map_err(|e| e.to_string())?;
    let gate = StartGate::open(&gate).map_err(|e| e.to_string())?;
    gate.arrive_and_wait(Duration::from_secs(60))
        .map_err(|e| e.to_string())
}
shmlab::task!(create_then_wait);

fn clean_removes_segments_of_killed_creators() -> anyhow::Result<()> {
    let live = SharedValue::<i64>::create(0)?;
    let gate = StartGate::create()?;
    let mut creator = [process::spawn(create_then_wait, &gate.name().to_string())?];
    gate.wait_for(&mut creator, Duration::from_secs(20))?;
    let [mut creator] = creator;
    let pid = creator.pid();
    let stale = cleanup::segments_of(pid);
    ensure!(stale.len() == 1, "the worker's segment: {stale:?}");
    creator.kill()?;
    let r = creator.join();
    ensure!(
        matches!(r, Err(process::WorkerError::Killed { .. })),
        "{r:?}"
    );
    ensure!(
        shm_path(&stale[0]).exists(),
        "SIGKILL leaves the segment behind"
    );
    let report = cleanup::clean()?;
    ensure!(report.removed.contains(&stale[0]), "{report:?}");
    ensure!(!shm_path(&stale[0]).exists());
    ensure!(
        shm_path(live.name()).exists(),
        "a live creator's segment must stay"
    );
    ensure!(
        shm_path(gate.name()).exists(),
        "clean removed a live segment"
    );
    Ok(())
}
