//! Tasks: the plain `fn` items a worker process can run, found by name.
//!
//! A worker is a fresh copy of the program, so it cannot be handed a closure
//! or a pointer from its parent: it is told the *name* of a function and
//! looks it up in a table built at link time. [`task!`](crate::task) adds a
//! function to that table.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One registered task: its name and a type-erased runner.
///
/// A worker finds its entry by name and calls `run` on the argument bytes:
///
/// ```
/// use shmlab::process::TASKS;
///
/// fn double(x: u64) -> u64 {
///     2 * x
/// }
/// shmlab::task!(double);
///
/// # fn main() {
/// let name = std::any::type_name_of_val(&double);
/// let entry = TASKS.iter().find(|t| (t.name)() == name).expect("registered");
/// assert_eq!((entry.run)(b"21"), Ok(b"42".to_vec()));
/// # }
/// ```
#[derive(Debug)]
pub struct TaskEntry {
    /// The function's full path, e.g. `lab04_race::count` (as given by
    /// `std::any::type_name`).
    pub name: fn() -> &'static str,
    /// Decodes the arguments, calls the function and encodes its result.
    pub run: fn(&[u8]) -> Result<Vec<u8>, String>,
}

/// Every task registered with [`task!`](crate::task), in this program.
///
/// The table is built at link time, so it is the same, in the same order,
/// in every process started from this executable.
///
/// ```
/// use shmlab::process::TASKS;
///
/// fn shout(s: String) -> String {
///     s.to_uppercase()
/// }
/// shmlab::task!(shout);
///
/// # fn main() {
/// let name = std::any::type_name_of_val(&shout); // e.g. `my_lab::shout`
/// assert_eq!(TASKS.iter().filter(|t| (t.name)() == name).count(), 1);
/// # }
/// ```
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

/// Finds a registered task by name.
pub(crate) fn find(name: &str) -> Option<&'static TaskEntry> {
    TASKS.iter().find(|t| (t.name)() == name)
}

/// A plain function that can run as a task: `fn(A) -> R` or `fn(A, B) -> R`.
///
/// `Args` is the arguments as a tuple (`(A,)` or `(A, B)`); the compiler
/// infers it from the function, so it never has to be written. One argument
/// travels as its own JSON; two travel as a JSON array `[a, b]` — the
/// tuples that [`Pool::starmap`](crate::pool::Pool::starmap) sends.
///
/// ```
/// use shmlab::process::TaskFn;
///
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// assert_eq!(add.call_json(b"[2, 3]"), Ok(b"5".to_vec()));
/// assert!(add.call_json(b"[2]").is_err()); // the error names the decoding failure
/// ```
pub trait TaskFn<Args>: Copy + 'static {
    /// Decodes the arguments, calls the function and encodes its result.
    ///
    /// ```
    /// use shmlab::process::TaskFn;
    ///
    /// fn shout(word: String) -> String {
    ///     word.to_uppercase()
    /// }
    /// assert_eq!(shout.call_json(br#""hi""#), Ok(br#""HI""#.to_vec()));
    /// ```
    fn call_json(self, input: &[u8]) -> Result<Vec<u8>, String>;
}

fn decode<T: DeserializeOwned>(input: &[u8]) -> Result<T, String> {
    serde_json::from_slice(input).map_err(|e| format!("could not decode the task's arguments: {e}"))
}

fn encode<R: Serialize>(result: &R) -> Result<Vec<u8>, String> {
    serde_json::to_vec(result).map_err(|e| format!("could not encode the task's result: {e}"))
}

impl<F, A, R> TaskFn<(A,)> for F
where
    F: Fn(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    fn call_json(self, input: &[u8]) -> Result<Vec<u8>, String> {
        encode(&self(decode(input)?))
    }
}

impl<F, A, B, R> TaskFn<(A, B)> for F
where
    F: Fn(A, B) -> R + Copy + 'static,
    A: DeserializeOwned,
    B: DeserializeOwned,
    R: Serialize,
{
    fn call_json(self, input: &[u8]) -> Result<Vec<u8>, String> {
        let (a, b) = decode(input)?;
        encode(&self(a, b))
    }
}

/// Runs `f` on JSON-encoded arguments and JSON-encodes its result. Used by
/// [`task!`](crate::task); not meant to be called directly.
///
/// ```
/// use shmlab::process::run_task;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// // What a worker does with the argument bytes it is sent.
/// assert_eq!(run_task(square, b"12"), Ok(b"144".to_vec()));
/// ```
pub fn run_task<F: TaskFn<Args>, Args>(f: F, input: &[u8]) -> Result<Vec<u8>, String> {
    f.call_json(input)
}

/// The registered task that `f` is, by name: its index in [`TASKS`] (the
/// same in every process of this executable) and its full name.
pub(crate) fn resolve<F: Copy + 'static>(f: &F) -> Result<(usize, &'static str), ResolveError> {
    let name = std::any::type_name_of_val(f);
    if name.contains("{{closure}}") || std::mem::size_of::<F>() != 0 {
        return Err(ResolveError::NotAFunction(name));
    }
    TASKS
        .iter()
        .position(|t| (t.name)() == name)
        .map(|index| (index, name))
        .ok_or(ResolveError::Unregistered(name))
}

/// Why a value is not a registered task.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ResolveError {
    /// A closure or a function pointer (its type name).
    NotAFunction(&'static str),
    /// A function never registered with `task!` (its full name).
    Unregistered(&'static str),
}

/// Registers a plain function `fn(A) -> R` (or `fn(A, B) -> R`) as a task
/// that [`spawn`](crate::process::spawn) and [`Pool`](crate::pool::Pool)
/// can run in a worker process. Arguments and result must implement serde's
/// `Serialize` and `Deserialize`: they cross the process boundary as JSON.
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
