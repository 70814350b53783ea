//! The experiments behind the labs. Each lab's `main` parses its options,
//! calls one `run` here and prints the report it returns.

pub mod background;
pub mod interleavings;
pub mod locks;
pub mod mapreduce;
pub mod montecarlo;
pub mod philosophers;
pub mod pool;
pub mod processes;
pub mod queues;
pub mod race;
pub mod slots;
pub mod threads;
pub mod tour;
pub mod wordcount;
