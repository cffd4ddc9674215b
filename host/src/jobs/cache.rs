//! The result cache: a process marked deterministic (`[processes.ID]
//! cache = true`) reuses the results of an earlier successful job with the
//! same module, inputs and requested outputs instead of running again, as
//! fastprocesses does for identical requests.
//!
//! # The key
//! SHA-256 of the process's registration (its id, module SHA-256 and when
//! it was deployed or last replaced), the inputs, the requested `outputs`
//! and the `response` form, as canonical JSON (object members sorted at
//! every depth, so two requests that differ only in member order share a
//! key). The key is computed when a job is accepted and kept in its record
//! (`cache_key`), so a job's results go under the registration it was
//! accepted for: replacing a process makes its old entries unreachable at
//! once, even with the same module bytes (they leave memory as they age
//! out).
//!
//! A request with an `href` input or a nested process has no key when it
//! is accepted: what a URL or another step gives can change while the
//! request stays the same. Its key is computed when it runs, once the
//! URLs are fetched and the steps have given their values, from those
//! values ([`key_once_known`], with the registration kept in the job's
//! `cache_pending`): the same content under the same URL, or the same
//! values from the steps, hit; changed content misses. The fetches and
//! steps still happen; what a hit saves is the run.
//!
//! # What a hit does
//! The new job is recorded as it would have ended: `successful` at once,
//! with the reused results, `cached_from` naming (and linking, `via`) the
//! job that computed them. A client sees a job like any other; it only
//! costs a store write instead of a sandbox. `Cache-Control: no-cache` on
//! the execute request runs the job anyway (and its results replace the
//! entry).
//!
//! # Bounds
//! Entries live in this node's memory: at most `execution.cache_ttl` (1 h),
//! and `execution.cache_max_bytes` (256 MiB) of results in all, the least
//! recently used going first. In a cluster each node has its own cache, so
//! a result computed on one node is reused on that node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lru::LruCache;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::validate::{Occurrence, classify};
use crate::ogc::ExecuteRequest;
use crate::store::{JobRecord, JobResults, ProcessRecord};

/// A cache key (see the module documentation).
pub(super) type CacheKey = [u8; 32];

/// Reused results and where they came from.
#[derive(Debug, Clone)]
pub(super) struct Reusable {
    /// The job that computed them.
    pub(super) job_id: Uuid,
    /// The results.
    pub(super) results: Arc<JobResults>,
}

struct Entry {
    reusable: Reusable,
    bytes: u64,
    stored: Instant,
}

struct Entries {
    lru: LruCache<CacheKey, Entry>,
    bytes: u64,
}

/// This node's result cache.
pub(super) struct ResultCache {
    entries: Mutex<Entries>,
    ttl: Duration,
    max_bytes: u64,
}

impl ResultCache {
    pub(super) fn new(ttl: Duration, max_bytes: u64) -> Self {
        Self {
            entries: Mutex::new(Entries {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            ttl,
            max_bytes,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding it left a consistent map: entries are
        // inserted and removed whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The results stored under `key`, unless they are older than the TTL
    /// (then they are dropped).
    pub(super) fn get(&self, key: &CacheKey) -> Option<Reusable> {
        let mut entries = self.entries();
        let expired = entries
            .lru
            .get(key)
            .map(|entry| entry.stored.elapsed() > self.ttl)?;
        if expired {
            if let Some(entry) = entries.lru.pop(key) {
                entries.bytes -= entry.bytes;
            }
            return None;
        }
        entries.lru.get(key).map(|entry| entry.reusable.clone())
    }

    /// Keep `results` of job `job_id` under `key`, replacing what was
    /// there, then drop the least recently used entries past the byte
    /// bound. Results bigger than the whole bound are not kept.
    pub(super) fn put(&self, key: CacheKey, job_id: Uuid, results: JobResults) {
        let bytes = results.outputs.iter().map(|o| o.size_bytes()).sum::<u64>() + 64;
        if bytes > self.max_bytes {
            return;
        }
        let mut entries = self.entries();
        let entry = Entry {
            reusable: Reusable {
                job_id,
                results: Arc::new(results),
            },
            bytes,
            stored: Instant::now(),
        };
        if let Some(old) = entries.lru.put(key, entry) {
            entries.bytes -= old.bytes;
        }
        entries.bytes += bytes;
        while entries.bytes > self.max_bytes {
            match entries.lru.pop_lru() {
                Some((_, dropped)) => entries.bytes -= dropped.bytes,
                None => break,
            }
        }
    }
}

/// The key of `request` to `process`, or `None` while its inputs are not
/// known (an `href` to fetch, a nested process to run: see
/// [`key_once_known`]).
pub(super) fn key(process: &ProcessRecord, request: &ExecuteRequest) -> Option<CacheKey> {
    key_of(
        &process.id,
        &process.module_sha256,
        process.deployed,
        request,
    )
}

/// The key of a job whose inputs became known when it ran: `job`'s
/// registration with `inputs` (fetched, or given by its steps) in place of
/// what it was given.
pub(super) fn key_once_known(
    job: &JobRecord,
    deployed: DateTime<Utc>,
    inputs: &Map<String, Value>,
) -> Option<CacheKey> {
    let request = ExecuteRequest {
        inputs: inputs.clone(),
        outputs: job.request.outputs.clone(),
        response: job.request.response,
        subscriber: None,
    };
    key_of(&job.process_id, &job.module_sha256, deployed, &request)
}

/// The key of `request` to the registration (`id`, `module`, `deployed`).
fn key_of(
    id: &str,
    module: &str,
    deployed: DateTime<Utc>,
    request: &ExecuteRequest,
) -> Option<CacheKey> {
    for value in request.inputs.values() {
        let occurrences: Vec<&Value> = match value {
            Value::Array(items) => std::iter::once(value).chain(items).collect(),
            other => vec![other],
        };
        for occurrence in occurrences {
            if matches!(
                classify(occurrence),
                Occurrence::Reference(_) | Occurrence::Process(_)
            ) {
                return None;
            }
        }
    }
    let keyed = serde_json::json!([
        id,
        module,
        deployed.to_rfc3339(),
        canonical(&Value::Object(request.inputs.clone())),
        canonical(&serde_json::to_value(&request.outputs).unwrap_or(Value::Null)),
        canonical(&serde_json::to_value(request.response).unwrap_or(Value::Null)),
    ]);
    Some(Sha256::digest(keyed.to_string().as_bytes()).into())
}

/// Make `job` a job that ended at once with `reused`'s results (see "What
/// a hit does" above): successful, `cached_from` the job that computed
/// them, its message saying why they matched (`because`). Returns the
/// results to store with it.
pub(super) fn mark_reused(job: &mut JobRecord, reused: &Reusable, because: &str) -> JobResults {
    let now = Utc::now();
    job.status = crate::ogc::JobStatus::Successful;
    job.started.get_or_insert(now);
    job.finished = Some(now);
    job.updated = now;
    job.progress = Some(100);
    job.message = Some(format!(
        "completed: the results of job {} reused ({because})",
        reused.job_id
    ));
    job.cached_from = Some(reused.job_id);
    JobResults::clone(&reused.results)
}

/// A key as kept in a job record (hex), back to bytes.
pub(super) fn parse_key(hex_key: &str) -> Option<CacheKey> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut key).ok()?;
    Some(key)
}

/// `value` with the members of every object in sorted order.
pub(super) fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let sorted: BTreeMap<&String, Value> =
                fields.iter().map(|(k, v)| (k, canonical(v))).collect();
            serde_json::to_value(sorted).unwrap_or(Value::Null)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{OutputValue, ProcessOutput};

    fn process(module: &str) -> ProcessRecord {
        ProcessRecord {
            id: "p".into(),
            description: serde_json::json!({}),
            module_sha256: module.into(),
            mutable: true,
            deployed: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            description_overridden: false,
            limits: None,
            job_control_options: None,
            workflow: None,
        }
    }

    fn request(inputs: Value) -> ExecuteRequest {
        ExecuteRequest {
            inputs: inputs.as_object().unwrap().clone(),
            ..ExecuteRequest::default()
        }
    }

    fn results(text: &str) -> JobResults {
        JobResults {
            outputs: vec![ProcessOutput {
                id: "out".into(),
                media_type: "text/plain".into(),
                value: OutputValue::Json(Value::String(text.into())),
            }],
        }
    }

    #[test]
    fn keys_follow_module_and_inputs_not_member_order() {
        let a = key(
            &process("m1"),
            &request(serde_json::json!({"x": 1, "y": {"b": 2, "a": 1}})),
        );
        let b = key(
            &process("m1"),
            &request(serde_json::json!({"y": {"a": 1, "b": 2}, "x": 1})),
        );
        assert_eq!(a, b);
        assert!(a.is_some());
        assert_ne!(
            a,
            key(
                &process("m2"),
                &request(serde_json::json!({"x": 1, "y": {"a": 1, "b": 2}}))
            )
        );
        assert_ne!(
            a,
            key(
                &process("m1"),
                &request(serde_json::json!({"x": 2, "y": {"a": 1, "b": 2}}))
            )
        );
        assert_eq!(
            key(
                &process("m1"),
                &request(serde_json::json!({"x": {"href": "http://127.0.0.1/a"}}))
            ),
            None
        );
        assert_eq!(
            key(
                &process("m1"),
                &request(serde_json::json!({"x": {"process": "echo"}}))
            ),
            None
        );
        let mut replaced = process("m1");
        replaced.deployed += chrono::Duration::seconds(1);
        assert_ne!(
            a,
            key(
                &replaced,
                &request(serde_json::json!({"x": 1, "y": {"a": 1, "b": 2}}))
            ),
            "a replace, even with the same module, starts afresh"
        );
    }

    #[test]
    fn entries_expire_and_the_byte_bound_drops_the_least_recently_used() {
        let cache = ResultCache::new(Duration::from_secs(60), 200);
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        cache.put([1; 32], first, results("a"));
        cache.put([2; 32], second, results("b"));
        assert_eq!(cache.get(&[1; 32]).unwrap().job_id, first);
        // A third entry passes 200 bytes: the least recently used (2) goes.
        cache.put([3; 32], Uuid::new_v4(), results("c"));
        assert!(cache.get(&[2; 32]).is_none());
        assert!(cache.get(&[1; 32]).is_some());
        let expired = ResultCache::new(Duration::ZERO, 1000);
        expired.put([1; 32], first, results("a"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(expired.get(&[1; 32]).is_none());
    }
}
