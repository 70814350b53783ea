//! The messages between the pool's dispatcher and its workers, as bytes on
//! each worker's [`Pipe`](crate::channel::Pipe).
//!
//! Parent to worker, one message per chunk:
//! `[JOB][flags: u8][task: u32][job: u64][items: u32]` then, per item,
//! `[len: u32][JSON]`. Flag [`RING_ON_START`] asks the worker to ring the
//! dispatcher's bell when it starts the chunk: its queue is running low.
//!
//! Worker to parent: `[READY][pid: u32]` once, when it is listening, then one
//! message per item, in order: `[RESULT][job: u64][item: u32][ns: u64]
//! [status][JSON or message]`, where `ns` is how long the worker spent on
//! the item (running it and sending the previous result), which is what
//! the dispatcher sizes the worker's queue by. One result per item (not per chunk) is what lets the progress
//! bar move as results arrive, and lets the parent tell exactly which item a
//! killed worker was running.
//!
//! All integers are little-endian.

/// Parent to worker: a chunk of items to run.
pub const JOB: u8 = 1;
/// Worker to parent: listening.
pub const READY: u8 = 2;
/// Worker to parent: one item's outcome.
pub const RESULT: u8 = 3;

/// Job flag: ring the dispatcher when this chunk starts.
pub const RING_ON_START: u8 = 1;

/// The item's result, as JSON.
pub const OK: u8 = 0;
/// The task panicked; the payload is its message.
pub const PANICKED: u8 = 1;
/// The arguments or the result could not be (de)coded; the payload says why.
pub const CODEC: u8 = 2;

/// Appends a job frame for `items` to `out`.
pub fn encode_job<'a>(
    out: &mut Vec<u8>,
    flags: u8,
    task: u32,
    job: u64,
    items: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    out.clear();
    out.push(JOB);
    out.push(flags);
    out.extend_from_slice(&task.to_le_bytes());
    out.extend_from_slice(&job.to_le_bytes());
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
    }
}

/// A decoded job frame.
#[derive(Debug)]
pub struct Job<'a> {
    /// [`RING_ON_START`] or 0.
    pub flags: u8,
    /// The task's index in [`crate::process::TASKS`].
    pub task: u32,
    /// The job's id, echoed in every result.
    pub job: u64,
    /// Each item's JSON arguments.
    pub items: Vec<&'a [u8]>,
}

/// Reads `len` bytes at `*at`, advancing it.
fn take<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Option<&'a [u8]> {
    let piece = bytes.get(*at..at.checked_add(len)?)?;
    *at += len;
    Some(piece)
}

fn u32_at(bytes: &[u8], at: &mut usize) -> Option<u32> {
    Some(u32::from_le_bytes(take(bytes, at, 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: &mut usize) -> Option<u64> {
    Some(u64::from_le_bytes(take(bytes, at, 8)?.try_into().ok()?))
}

/// Decodes a job frame; `None` if it is not one.
pub fn decode_job(bytes: &[u8]) -> Option<Job<'_>> {
    if bytes.first() != Some(&JOB) {
        return None;
    }
    let mut at = 1;
    let flags = *take(bytes, &mut at, 1)?.first()?;
    let task = u32_at(bytes, &mut at)?;
    let job = u64_at(bytes, &mut at)?;
    let count = u32_at(bytes, &mut at)? as usize;
    // Each item takes at least its 4-byte length: a count larger than the
    // frame allows is corrupt, and must not size an allocation.
    if count > (bytes.len() - at) / 4 {
        return None;
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u32_at(bytes, &mut at)? as usize;
        items.push(take(bytes, &mut at, len)?);
    }
    (at == bytes.len()).then_some(Job {
        flags,
        task,
        job,
        items,
    })
}

/// Writes a ready frame.
pub fn encode_ready(pid: u32) -> [u8; 5] {
    let mut frame = [READY, 0, 0, 0, 0];
    frame[1..].copy_from_slice(&pid.to_le_bytes());
    frame
}

/// Writes a result frame into `out`.
pub fn encode_result(out: &mut Vec<u8>, job: u64, item: u32, ns: u64, status: u8, payload: &[u8]) {
    out.clear();
    out.push(RESULT);
    out.extend_from_slice(&job.to_le_bytes());
    out.extend_from_slice(&item.to_le_bytes());
    out.extend_from_slice(&ns.to_le_bytes());
    out.push(status);
    out.extend_from_slice(payload);
}

/// What a worker said.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// It is listening.
    Ready {
        /// Its pid.
        pid: u32,
    },
    /// One item's outcome.
    Result {
        /// The job it belongs to.
        job: u64,
        /// The item's position in the job.
        item: u32,
        /// Nanoseconds the worker spent on it.
        ns: u64,
        /// [`OK`], [`PANICKED`] or [`CODEC`].
        status: u8,
        /// The JSON result or the message.
        payload: &'a [u8],
    },
}

/// Decodes a worker's message; `None` if it is malformed.
pub fn decode_reply(bytes: &[u8]) -> Option<Reply<'_>> {
    let mut at = 1;
    match *bytes.first()? {
        READY if bytes.len() == 5 => Some(Reply::Ready {
            pid: u32_at(bytes, &mut at)?,
        }),
        RESULT => {
            let job = u64_at(bytes, &mut at)?;
            let item = u32_at(bytes, &mut at)?;
            let ns = u64_at(bytes, &mut at)?;
            let status = *take(bytes, &mut at, 1)?.first()?;
            (status <= CODEC).then(|| Reply::Result {
                job,
                item,
                ns,
                status,
                payload: &bytes[at..],
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_frames_round_trip() {
        let items: [&[u8]; 3] = [b"1", b"", b"[2,3]"];
        let mut frame = Vec::new();
        encode_job(&mut frame, RING_ON_START, 7, 99, items.iter().copied());
        let job = decode_job(&frame).unwrap();
        assert_eq!((job.flags, job.task, job.job), (RING_ON_START, 7, 99));
        assert_eq!(job.items, items);
    }

    #[test]
    fn truncated_or_padded_job_frames_are_rejected() {
        let mut frame = Vec::new();
        encode_job(&mut frame, 0, 1, 2, [b"123".as_slice()].into_iter());
        for cut in 0..frame.len() {
            assert!(decode_job(&frame[..cut]).is_none(), "cut at {cut}");
        }
        frame.push(0);
        assert!(decode_job(&frame).is_none());
    }

    #[test]
    fn a_huge_item_count_is_rejected_without_allocating() {
        let mut frame = vec![JOB, 0];
        frame.extend_from_slice(&0u32.to_le_bytes());
        frame.extend_from_slice(&0u64.to_le_bytes());
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_job(&frame).is_none());
    }

    #[test]
    fn replies_round_trip() {
        assert_eq!(
            decode_reply(&encode_ready(42)),
            Some(Reply::Ready { pid: 42 })
        );
        let mut frame = Vec::new();
        encode_result(&mut frame, 5, 6, 7, PANICKED, b"boom");
        assert_eq!(
            decode_reply(&frame),
            Some(Reply::Result {
                job: 5,
                item: 6,
                ns: 7,
                status: PANICKED,
                payload: b"boom"
            })
        );
        assert_eq!(decode_reply(&[RESULT, 1, 2]), None);
        assert_eq!(decode_reply(&[9]), None);
    }
}
