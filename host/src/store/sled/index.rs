//! The job indexes: one sled tree (`job_index`) of empty values whose keys
//! order jobs for every `/jobs` filter. All keys end in
//! `created (µs, big-endian) ‖ job id (16 bytes)` (the *job key*), so every
//! range is walked newest-first by iterating it backwards, and a keyset
//! cursor is a job key.
//!
//! | prefix | rest of the key | which jobs | written |
//! |---|---|---|---|
//! | `A` | job key | accepted or running (async) | at enqueue; removed once the final state is durable |
//! | `Q` | process id ‖ `0x00` ‖ status byte ‖ job key | finished | once, at finish |
//! | `D` | status byte ‖ duration ms (8 bytes BE) ‖ job key | finished | once, at finish |
//! | `O` | owner ‖ `0x00` ‖ status byte ‖ job key | finished, with an owner | once, at finish |
//!
//! Finished states never change, so `Q` and `D` entries are written once
//! and removed only with the job; the small `A` set covers jobs whose state
//! still moves. A filter without a process (or no filter) merges the `Q`
//! ranges of every process stored ([`SledStore::indexed_processes`] finds
//! them with one seek each): an index by status alone would cost every
//! finished job one more write (about 6 µs on the sync path, measured)
//! to save a merge over a few dozen ranges when a page is read. `D` is split by status so that "failed jobs that ran
//! over a minute" is one small range, not a slice of every job's duration.
//! Process ids never contain `0x00` (they are
//! `[A-Za-z0-9._-]`), so `Q` prefixes of two processes never overlap; nor
//! do owners (key names, checked to the same alphabet), so `O` prefixes do
//! not either. `O` lets an `execute` key list its own jobs without walking
//! everybody's: written only for jobs that have an owner (API keys
//! configured), it costs nothing otherwise.

use uuid::Uuid;

use super::super::{JobCursor, JobRecord};
#[cfg(doc)]
use super::SledStore;
use crate::ogc::JobStatus;

/// Length of a job key: created µs (8) ‖ id (16).
pub(super) const JOB_KEY_LEN: usize = 24;

/// First byte of the `A` keys: jobs still accepted or running. Small (the
/// queue plus what runs), so recovery and module collection read all of it.
pub(super) const ACTIVE: u8 = b'A';
/// First byte of the `Q` keys: finished jobs by process and state, the
/// main source of every `/jobs` page and of the retention sweep.
pub(super) const BY_PROCESS_STATUS: u8 = b'Q';
/// First byte of the `D` keys: finished jobs by state and duration, which
/// can drive a page when a duration filter is selective.
pub(super) const BY_DURATION: u8 = b'D';
/// First byte of the `O` keys: finished jobs by owner and state.
pub(super) const BY_OWNER_STATUS: u8 = b'O';

/// The finished states, each with its byte in `Q`, `D` and `O` keys. The
/// bytes are part of the stored keys: changing one needs a migration.
pub(super) const FINISHED: [(JobStatus, u8); 3] = [
    (JobStatus::Successful, 2),
    (JobStatus::Failed, 3),
    (JobStatus::Dismissed, 4),
];

/// The byte of a finished status.
pub(super) fn status_byte(status: JobStatus) -> Option<u8> {
    FINISHED
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, byte)| *byte)
}

/// Microseconds since the epoch as an order-preserving key part (times
/// before 1970 clamp to 0). Big-endian, so byte order is numeric order;
/// microseconds, so a key round-trips through a cursor, which both
/// backends keep to the microsecond.
pub(super) fn micros_key(micros: i64) -> [u8; 8] {
    (micros.max(0) as u64).to_be_bytes()
}

/// created ‖ id of a job.
pub(super) fn job_key(job: &JobRecord) -> [u8; JOB_KEY_LEN] {
    cursor_key(&JobCursor::after(job))
}

/// created ‖ id of a cursor position.
pub(super) fn cursor_key(cursor: &JobCursor) -> [u8; JOB_KEY_LEN] {
    let mut key = [0u8; JOB_KEY_LEN];
    key[..8].copy_from_slice(&micros_key(cursor.created_micros));
    key[8..].copy_from_slice(cursor.id.as_bytes());
    key
}

/// The job id at the end of an index key. Every key ends with it, so this
/// needs no knowledge of the prefix; `None` only for a key too short.
pub(super) fn id_of(key: &[u8]) -> Option<Uuid> {
    key.len()
        .checked_sub(16)
        .and_then(|start| Uuid::from_slice(&key[start..]).ok())
}

/// The job key (last 24 bytes) of an index key.
pub(super) fn job_key_of(key: &[u8]) -> Option<[u8; JOB_KEY_LEN]> {
    let start = key.len().checked_sub(JOB_KEY_LEN)?;
    key[start..].try_into().ok()
}

/// `A` ‖ job key.
pub(super) fn active_key(job: &JobRecord) -> Vec<u8> {
    concat(&[&[ACTIVE], &job_key(job)])
}

/// The index keys of a finished job (`Q`, `D`, and `O` when it has an
/// owner); none for a job that is not finished.
///
/// They are a function of the record alone, so removing a job recomputes
/// them from its stored record instead of looking them up. A job that
/// never started has no duration and so no `D` key.
pub(super) fn finished_keys(job: &JobRecord) -> Vec<Vec<u8>> {
    let Some(status) = status_byte(job.status) else {
        return Vec::new();
    };
    let key = job_key(job);
    let mut keys = vec![concat(&[
        &[BY_PROCESS_STATUS],
        job.process_id.as_bytes(),
        &[0, status],
        &key,
    ])];
    if let Some(ms) = job.duration_millis() {
        keys.push(concat(&[
            &[BY_DURATION, status],
            &(ms as u64).to_be_bytes(),
            &key,
        ]));
    }
    if let Some(owner) = &job.owner {
        keys.push(concat(&[&owner_status_prefix(owner, status), &key]));
    }
    keys
}

/// The prefix of the `O` range of `owner`'s jobs in `status`.
pub(super) fn owner_status_prefix(owner: &str, status: u8) -> Vec<u8> {
    concat(&[&[BY_OWNER_STATUS], owner.as_bytes(), &[0, status]])
}

/// The prefix of the `Q` range of `process` in `status`.
pub(super) fn process_status_prefix(process: &str, status: u8) -> Vec<u8> {
    concat(&[&[BY_PROCESS_STATUS], process.as_bytes(), &[0, status]])
}

/// The parts joined into one key, allocated once at its final size.
pub(super) fn concat(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ogc::ExecuteRequest;

    #[test]
    fn keys_order_by_creation_then_id_and_end_in_the_job_key() {
        let mut a = JobRecord::new("p", "sha", ExecuteRequest::default(), true);
        let mut b = a.clone();
        b.id = Uuid::new_v4();
        b.created = a.created + chrono::Duration::microseconds(1);
        assert!(job_key(&a) < job_key(&b));
        a.mark_running();
        a.status = JobStatus::Successful;
        a.finished = a.started;
        let keys = finished_keys(&a);
        assert_eq!(keys.len(), 2);
        for key in &keys {
            assert_eq!(id_of(key), Some(a.id));
            assert_eq!(job_key_of(key), Some(job_key(&a)));
        }
        assert!(keys[0].starts_with(&process_status_prefix("p", 2)));
        assert!(finished_keys(&b).is_empty(), "accepted: no finished keys");
    }
}
