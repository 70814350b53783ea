//! Tasks: the plain `fn` items a worker process can run, found by name.
//!
//! A worker is a fresh copy of the program, so it cannot be handed a closure
//! or a pointer from its parent: it is told the *name* of a function and
//! looks it up in a table built at link time. [`task!`](crate::task) adds a
//! function to that table.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One registered task: its name and a type-erased runner.
#[derive(Debug)]
pub struct TaskEntry {
    /// The function's full path, e.g. `lab04_race::count` (as given by
    /// `std::any::type_name`).
    pub name: fn() -> &'static str,
    /// Decodes the arguments, calls the function and encodes its result.
    pub run: fn(&[u8]) -> Result<Vec<u8>, String>,
}

/// Every task registered with [`task!`](crate::task), in this program.
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

/// Finds a registered task by name.
pub(crate) fn find(name: &str) -> Option<&'static TaskEntry> {
    TASKS.iter().find(|t| (t.name)() == name)
}

/// Runs `f` on JSON-encoded arguments and JSON-encodes its result. Used by
/// [`task!`](crate::task); not meant to be called directly.
pub fn run_task<F, A, R>(f: F, input: &[u8]) -> Result<Vec<u8>, String>
where
    F: Fn(A) -> R,
    A: DeserializeOwned,
    R: Serialize,
{
    let args: A = serde_json::from_slice(input)
        .map_err(|e| format!("could not decode the task's arguments: {e}"))?;
    let result = f(args);
    serde_json::to_vec(&result).map_err(|e| format!("could not encode the task's result: {e}"))
}

/// Registers a plain function `fn(A) -> R` as a task that
/// [`spawn`](crate::process::spawn) can start in a worker process. `A` and
/// `R` must implement serde's `Serialize` and `Deserialize`: they cross the
/// process boundary as JSON.
///
/// ```
/// use shmlab::process;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// shmlab::task!(square);
///
/// fn main() {
///     shmlab::entry(); // a worker runs its task here and exits
///     let worker = process::spawn(square, &12).unwrap();
///     assert_eq!(worker.join().unwrap(), 144);
/// }
/// ```
#[macro_export]
macro_rules! task {
    ($function:path) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::process::TASKS)]
            #[linkme(crate = $crate::__private::linkme)]
            static TASK: $crate::process::TaskEntry = $crate::process::TaskEntry {
                name: || ::std::any::type_name_of_val(&$function),
                run: |input| $crate::process::run_task($function, input),
            };
        };
    };
}
