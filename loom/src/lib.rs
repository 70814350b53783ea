//! Model checks of shmlab's lock and counting code with loom; the checks
//! are in `tests/`. Run:
//! `RUSTFLAGS="--cfg loom" cargo test --release -p shmlab-loom --target-dir target/loom`
