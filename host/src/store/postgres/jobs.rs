//! Job writes and reads of the PostgreSQL backend: the queue, claims and
//! leases, the lifecycle of a job, and retention.
//!
//! Timestamps written by SQL (`now()`) go into the record as
//! `to_jsonb(now())`, which chrono reads back, so the columns and the
//! record agree.
//!
//! # A job's rows, and who writes them
//! A job is one `jobs` row (plus a `results` row once it succeeded). Its
//! columns are what the queue, the leases and the `/jobs` filters need;
//! the rest of the record is `record` (jsonb), and the request is
//! `request` (written once). The row is written three times in a normal
//! life: inserted `accepted` (by the submission batcher, durable before
//! the 201), claimed `running` (by one node's dispatcher, with a lease),
//! and finished (by the outcome batcher, only while the same node still
//! holds the lease). Every update after the claim is conditional on
//! `status = 'running' AND lease_owner = <this node>`: a node that lost a
//! job (its lease expired, another node took it, a client dismissed it)
//! changes nothing, and learns so from the row count.
//!
//! # Two pools
//! Writes a client is told about (submissions, outcomes, dismissals) use
//! the pool with PostgreSQL's default durability. Claims, progress, lease
//! renewals and sweeps use the *relaxed* pool (`synchronous_commit =
//! off`): losing one in a database crash is harmless (the job is still
//! `accepted`, or its lease expires and it runs again), and not waiting
//! for the WAL flush is what lets one node's claim loop keep up.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::batch::Batcher;
use super::{CHANNEL, Db, PgStore, map_error};
use crate::store::{JobRecord, JobResults, LeaseSweep, Recovery, StoreError, StoredBytes};

/// How long a count of the queue is trusted while the queue is under half
/// its bound. Counting on every submission cost more PostgreSQL CPU than
/// the rest of a job together (the count walks every queued job). Far
/// from the bound an estimate is enough: the bound can only be passed if
/// the *other* nodes accept half of it within this time. Near the bound
/// every submission counts afresh.
pub(super) const QUEUE_COUNT_AGE: std::time::Duration = std::time::Duration::from_millis(100);

/// The last queue count of this node, and what this node did since.
///
/// The estimate is `queued + submitted - claimed`. It misses the other
/// nodes' submissions (too low, by at most what they accept within
/// [`QUEUE_COUNT_AGE`]) and their claims (too high, which only refuses
/// early); both errors last one count at most.
#[derive(Debug, Default)]
pub(super) struct QueueCount {
    /// When `queued` was counted (on this node's clock); `None` before
    /// the first count, which forces one.
    counted_at: Option<std::time::Instant>,
    /// Queued async jobs cluster-wide at `counted_at`, capped at the
    /// `max_queued` of that count (the count stops there).
    queued: usize,
    /// Jobs this node queued since the count.
    submitted: usize,
    /// Jobs this node claimed since the count.
    claimed: usize,
}

/// Advisory lock key of the retention sweep: one node at a time deletes.
/// Nodes sweeping together would walk the same oldest rows and wait on
/// each other's row locks; with the lock, the others skip the turn.
/// Distinct from the migration lock's key (`schema.rs`), since both live
/// in PostgreSQL's one advisory-lock key space.
const RETENTION_LOCK: i64 = 0x7761_736d_7265_7465; // "wasmrete"

/// The record as stored: everything but the request, which has its own
/// column (written once, never rewritten by progress or state updates).
pub(super) fn record_value(job: &JobRecord) -> Result<Value, StoreError> {
    let mut value = serde_json::to_value(job)?;
    if let Value::Object(fields) = &mut value {
        fields.remove("request");
    }
    Ok(value)
}

/// A job from its `record` and `request` columns.
pub(super) fn decode(row: &Row) -> Result<JobRecord, StoreError> {
    let mut record: Value = row.get("record");
    let request: &[u8] = row.get("request");
    if let Value::Object(fields) = &mut record {
        fields.insert("request".into(), serde_json::from_slice(request)?);
    }
    Ok(serde_json::from_value(record)?)
}

/// A duration as float milliseconds, the parameter form of every SQL
/// interval here (`$n::float8 * interval '1 millisecond'`): one `float8`
/// parameter type for every statement, sub-millisecond leases kept.
pub(super) fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A job's final state and its serialised results, to be written. The
/// results are serialised by the caller before it queues them, so the
/// batching task, which writes one batch at a time, does not.
pub(super) type Outcome = (JobRecord, Option<Vec<u8>>);

/// The batcher of new async jobs: every job of a batch inserted by one
/// statement, committed once, durable before any of their 201s.
///
/// The rows go in as parallel arrays through `unnest`, so the statement
/// text is the same for any batch size and is prepared once per
/// connection. One statement is all or nothing: if any row fails (a
/// duplicate id, say), no job of the batch is queued and every caller
/// gets the error.
pub(super) fn submission_batcher(db: Db) -> Batcher<JobRecord, ()> {
    Batcher::start(move |jobs: Vec<JobRecord>| {
        let db = db.clone();
        async move {
            let (mut ids, mut processes, mut created, mut records, mut requests) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut owners = Vec::new();
            for job in &jobs {
                ids.push(job.id);
                owners.push(job.owner.clone());
                processes.push(job.process_id.clone());
                created.push(job.created);
                records.push(record_value(job)?);
                requests.push(serde_json::to_vec(&job.request)?);
            }
            db.bounded(async {
                let client = db.client().await?;
                let statement = client
                    .prepare_cached(
                        "INSERT INTO jobs (id, process_id, status, asynchronous, created, record, request, owner) \
                         SELECT id, process_id, 'accepted', true, created, record, request, owner \
                         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::bytea[], $6::text[]) \
                           AS t(id, process_id, created, record, request, owner)",
                    )
                    .await
                    .map_err(map_error)?;
                client
                    .execute(
                        &statement,
                        &[&ids, &processes, &created, &records, &requests, &owners],
                    )
                    .await
                    .map_err(map_error)?;
                Ok(vec![(); jobs.len()])
            })
            .await
        }
    })
}

/// The batcher of job outcomes: the final states and results of a batch
/// in one statement (so each job's state and results still commit
/// together), each only if this node still holds the job; answers whether
/// each was written.
pub(super) fn outcome_batcher(db: Db, node: String) -> Batcher<Outcome, bool> {
    Batcher::start(move |outcomes: Vec<Outcome>| {
        let (db, node) = (db.clone(), node.clone());
        async move {
            let (mut ids, mut statuses, mut finished, mut durations, mut records, mut outputs) = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
            for (job, results) in &outcomes {
                ids.push(job.id);
                statuses.push(job.status.as_str());
                finished.push(job.finished);
                durations.push(job.duration_millis());
                records.push(record_value(job)?);
                outputs.push(results.clone());
            }
            let client = db.client().await?;
            // Not `db.bounded`: a batch cut off by the time bound inside its
            // transaction must not return its connection to the pool (the
            // next user would run inside the open transaction); on timeout
            // the connection is taken out of the pool and closed.
            let work = async {
                // One statement per job (each a primary-key lookup whatever
                // the table's statistics say), sent together in one round
                // trip and committed together.
                let statement = client
                    .prepare_cached(
                        "WITH f AS ( \
                           UPDATE jobs SET status = $2, finished = $3, duration_ms = $4, \
                             lease_expires = NULL, record = $5 \
                           WHERE id = $1 AND status = 'running' AND lease_owner = $6 RETURNING id), \
                         r AS (INSERT INTO results (job_id, outputs) \
                           SELECT id, $7 FROM f WHERE $7::bytea IS NOT NULL RETURNING 1) \
                         SELECT count(*) FROM f",
                    )
                    .await
                    .map_err(map_error)?;
                let params: Vec<[&(dyn ToSql + Sync); 7]> = (0..ids.len())
                    .map(|i| {
                        [
                            &ids[i] as &(dyn ToSql + Sync),
                            &statuses[i],
                            &finished[i],
                            &durations[i],
                            &records[i],
                            &node,
                            &outputs[i],
                        ]
                    })
                    .collect();
                let together = ids.len() > 1;
                if together {
                    client.batch_execute("BEGIN").await.map_err(map_error)?;
                }
                let writes = params
                    .iter()
                    .map(|p| client.query_one(&statement, p.as_slice()));
                let written = match futures_util::future::try_join_all(writes).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        if together {
                            let _ = client.batch_execute("ROLLBACK").await;
                        }
                        return Err(map_error(error));
                    }
                };
                if together {
                    client.batch_execute("COMMIT").await.map_err(map_error)?;
                }
                Ok(written
                    .iter()
                    .map(|row| row.get::<_, i64>(0) == 1)
                    .collect())
            };
            match tokio::time::timeout(db.timeout(), work).await {
                Ok(result) => result,
                Err(_) => {
                    drop(deadpool_postgres::Object::take(client));
                    Err(db.timed_out())
                }
            }
        }
    })
}

impl PgStore {
    /// A job was queued here: wake this node's dispatcher and, unless it
    /// has an idle worker and will claim it, the other nodes (one
    /// coalesced notification).
    ///
    /// Why not always every node: a `queued` notification wakes every
    /// idle dispatcher of the cluster, each of them claims, and all but
    /// one find the job taken — measured on 3 nodes, 11,246 claim
    /// statements for 6,200 jobs, at least 5,046 of them empty. A node
    /// with an idle worker takes its own submissions; the others hear of
    /// them only when it cannot ([`Self::announce_backlog`] covers the
    /// jobs left over by a busy node's last claim).
    fn announce_queued(&self) {
        self.queue_wake.notify_one();
        if !self.claimer_ready.load(std::sync::atomic::Ordering::SeqCst) {
            self.announce_queued.notify_one();
        }
    }

    /// Tell the other nodes (coalesced) that queued jobs are waiting:
    /// this node's last claim took as many as it could and more may be
    /// left, or it re-queued jobs.
    pub(crate) fn announce_backlog(&self) {
        self.announce_queued.notify_one();
    }

    /// Say whether this node's dispatcher has an idle worker and will
    /// claim what is queued next (set by the dispatcher as it goes from
    /// waiting for the queue to waiting for a worker and back).
    pub(crate) fn set_claimer_ready(&self, ready: bool) {
        self.claimer_ready
            .store(ready, std::sync::atomic::Ordering::SeqCst);
    }

    /// Accept an async job: refuse it if the cluster-wide queue is full
    /// (estimated, see [`QUEUE_COUNT_AGE`]), else insert it through the
    /// submission batcher (durable before this returns, so before the
    /// 201) and wake a dispatcher.
    pub(crate) async fn enqueue_job(
        &self,
        job: &JobRecord,
        max_queued: usize,
    ) -> Result<(), StoreError> {
        if self.queue_length_estimate(max_queued).await? >= max_queued {
            return Err(StoreError::QueueFull(max_queued));
        }
        self.submissions.call(job.clone()).await?;
        self.lock_queue_count().submitted += 1;
        self.announce_queued();
        Ok(())
    }

    /// The queue count, ignoring poisoning: its fields are plain counters
    /// that a panic cannot leave half-updated in a harmful way (the next
    /// count replaces them all).
    fn lock_queue_count(&self) -> std::sync::MutexGuard<'_, QueueCount> {
        self.queue_count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cluster-wide queue length, as exact as the bound needs: while
    /// the last count (at most [`QUEUE_COUNT_AGE`] old), plus this node's
    /// submissions and minus its claims since, is under half the bound,
    /// that estimate; nearer the bound, a fresh count (of at most
    /// `max_queued` index entries).
    ///
    /// The count's `LIMIT` inside the sub-select stops the walk of the
    /// `jobs_queue` index at the bound: knowing that the queue is full
    /// never costs more than `max_queued` entries, however long it is.
    /// The mutex is not held across the query; two submissions that count
    /// at once both count, and the one that finishes last overwrites the
    /// other's count.
    async fn queue_length_estimate(&self, max_queued: usize) -> Result<usize, StoreError> {
        {
            let count = self.lock_queue_count();
            let estimate = (count.queued + count.submitted).saturating_sub(count.claimed);
            if count
                .counted_at
                .is_some_and(|at| at.elapsed() < QUEUE_COUNT_AGE)
                && estimate < max_queued / 2
            {
                return Ok(estimate);
            }
        }
        let queued = self
            .bounded(async {
                let client = self.client().await?;
                let statement = client
                    .prepare_cached(
                        "SELECT count(*) FROM (SELECT 1 FROM jobs \
                         WHERE status = 'accepted' AND asynchronous LIMIT $1) queued",
                    )
                    .await
                    .map_err(map_error)?;
                let row = client
                    .query_one(&statement, &[&(max_queued as i64)])
                    .await
                    .map_err(map_error)?;
                Ok(row.get::<_, i64>(0) as usize)
            })
            .await?;
        *self.lock_queue_count() = QueueCount {
            counted_at: Some(std::time::Instant::now()),
            queued,
            submitted: 0,
            claimed: 0,
        };
        Ok(queued)
    }

    /// The exact number of queued async jobs in the cluster (a walk of the
    /// small `jobs_queue` index).
    pub(crate) async fn queued_jobs(&self) -> Result<usize, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT count(*) FROM jobs WHERE status = 'accepted' AND asynchronous",
                    &[],
                )
                .await
                .map_err(map_error)?;
            Ok(row.get::<_, i64>(0) as usize)
        })
        .await
    }

    /// Claim up to `max` queued jobs, oldest first, for this node: one
    /// `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` that marks
    /// them `running` with a lease and an attempt more, on the relaxed
    /// pool. `SKIP LOCKED` lets several nodes claim at once without
    /// waiting for each other or taking a job twice.
    ///
    /// The sub-select walks `jobs_queue` oldest first and locks each row
    /// it keeps; a row another claimer has locked is skipped, not waited
    /// for, so a claim can return fewer than `max` jobs while more are
    /// queued (they are someone else's). A row that another claim changed
    /// and committed meanwhile is re-checked on its new version and
    /// dropped (no longer `accepted`). In the `SET` list `attempts` still
    /// means the old value, so the column and the record both get
    /// `attempts + 1`. `RETURNING` comes back in no promised order, hence
    /// the sort. The lease is `now()` on the database plus the node's
    /// lease length. Lost in a database crash (relaxed commit), the claim
    /// leaves the job `accepted`, and the node's first progress or outcome
    /// write matches no row, telling it so.
    pub(crate) async fn claim_jobs(&self, max: usize) -> Result<Vec<JobRecord>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.bounded(async {
            let client = self.relaxed.client().await?;
            let statement = client
                .prepare_cached(
                    "UPDATE jobs SET status = 'running', started = now(), lease_owner = $1, \
                       lease_expires = now() + $2::float8 * interval '1 millisecond', \
                       attempts = attempts + 1, \
                       record = record || jsonb_build_object('status', 'running', \
                         'started', to_jsonb(now()), 'updated', to_jsonb(now()), 'progress', 0, \
                         'node', $1::text, 'attempts', attempts + 1) \
                     WHERE id IN (SELECT id FROM jobs WHERE status = 'accepted' AND asynchronous \
                                  ORDER BY created, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING record, request",
                )
                .await
                .map_err(map_error)?;
            let rows = client
                .query(
                    &statement,
                    &[&self.node.id, &millis(self.node.lease), &(max as i64)],
                )
                .await
                .map_err(map_error)?;
            let mut jobs = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            jobs.sort_by_key(|job| (job.created, job.id));
            self.lock_queue_count().claimed += jobs.len();
            Ok(jobs)
        })
        .await
    }

    /// Record a sync job as `running` on this node, with a lease, when it
    /// gets its worker: every node lists it while it runs, and if this
    /// node dies the sweep of another one fails it as `node-lost` (a sync
    /// job is never run again: its client is gone).
    ///
    /// Inserted straight as `running` with `attempts = 1`: it never passes
    /// through the queue, so no claim could count its attempt. It is not
    /// announced: no other node can do anything with it.
    pub(crate) async fn start_sync_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "INSERT INTO jobs (id, process_id, status, asynchronous, created, started, \
                       lease_owner, lease_expires, attempts, record, request, owner) \
                     VALUES ($1, $2, 'running', false, $3, $4, $5, \
                       now() + $6::float8 * interval '1 millisecond', 1, $7, $8, $9)",
                )
                .await
                .map_err(map_error)?;
            client
                .execute(
                    &statement,
                    &[
                        &job.id,
                        &job.process_id,
                        &job.created,
                        &job.started,
                        &self.node.id,
                        &millis(self.node.lease),
                        &record_value(job)?,
                        &serde_json::to_vec(&job.request)?,
                        &job.owner,
                    ],
                )
                .await
                .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    /// Record a job that is finished when it is created (a result reused
    /// from the cache), with its results: the row and the results in one
    /// statement, so both or neither are there.
    pub(crate) async fn insert_finished_job(
        &self,
        job: &JobRecord,
        results: &JobResults,
    ) -> Result<(), StoreError> {
        self.insert_final(job, Some(serde_json::to_vec(results)?))
            .await
    }

    /// Record a job that failed before it could start (a sync request
    /// that found no worker within its deadline): one insert of the final
    /// row, so it is listed and readable like any failed job.
    pub(crate) async fn insert_failed_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.insert_final(job, None).await
    }

    /// Insert a job's final row, and its results (serialised) when given,
    /// in one statement: both or neither are there.
    async fn insert_final(
        &self,
        job: &JobRecord,
        outputs: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "WITH j AS (INSERT INTO jobs (id, process_id, status, asynchronous, created, \
                       started, finished, duration_ms, record, request, owner) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id) \
                     INSERT INTO results (job_id, outputs) \
                     SELECT id, $12 FROM j WHERE $12::bytea IS NOT NULL",
                    &[
                        &job.id,
                        &job.process_id,
                        &job.status.as_str(),
                        &job.asynchronous,
                        &job.created,
                        &job.started,
                        &job.finished,
                        &job.duration_millis(),
                        &record_value(job)?,
                        &serde_json::to_vec(&job.request)?,
                        &job.owner,
                        &outputs,
                    ],
                )
                .await
                .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    /// Write a running job's progress (at most every 250 ms per job, see
    /// `jobs/progress.rs`) on the relaxed pool; `false` when this node no
    /// longer holds the job.
    ///
    /// It rewrites `record` only: the request, often the bulk of a job,
    /// sits in its own column and is neither serialised nor sent again,
    /// and no indexed column changes, so PostgreSQL can make it a
    /// heap-only update that touches no index. The `lease_owner`
    /// condition keeps a node that lost the job from writing over its
    /// next run's progress.
    pub(crate) async fn update_progress(&self, job: &JobRecord) -> Result<bool, StoreError> {
        self.bounded(async {
            let client = self.relaxed.client().await?;
            let statement = client
                .prepare_cached(
                    "UPDATE jobs SET record = $2 \
                     WHERE id = $1 AND status = 'running' AND lease_owner = $3",
                )
                .await
                .map_err(map_error)?;
            let updated = client
                .execute(&statement, &[&job.id, &record_value(job)?, &self.node.id])
                .await
                .map_err(map_error)?;
            Ok(updated == 1)
        })
        .await
    }

    /// Store a job's final state and results through the outcome batcher
    /// (group commit, each job's state and results in one statement);
    /// `false` when this node no longer holds the job. `shown` is for
    /// sled, whose readers need the state before the final one until it
    /// is durable; here a row is only ever seen committed.
    pub(crate) async fn finish_job(
        &self,
        _shown: &JobRecord,
        job: &JobRecord,
        results: Option<&JobResults>,
    ) -> Result<bool, StoreError> {
        let outputs = results.map(serde_json::to_vec).transpose()?;
        let written = self.outcomes.call((job.clone(), outputs)).await?;
        if written && job.parent.is_some() {
            // A step: its parent may wait for it on another node
            // (`jobs/spread.rs`), and looks again every second anyway, so
            // a notification that fails is only logged.
            if let Err(error) = self.announce_finished(job.id).await {
                tracing::debug!(job = %job.id, %error, "step's end not announced");
            }
        }
        Ok(written)
    }

    /// Tell every node that step `id` ended. Sent only after the outcome
    /// committed, so a parent never hears of a step's end before it can
    /// read it; if it is lost, the parent's once-a-second look finds the
    /// step anyway.
    async fn announce_finished(&self, id: Uuid) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "SELECT pg_notify($1, 'finished:' || $2)",
                    &[&CHANNEL, &id.to_string()],
                )
                .await
                .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    /// Put a job this node holds back in the queue (`accepted`, no lease):
    /// it was stopped by a shutdown, or claimed ahead and never started.
    ///
    /// The record and `attempts` come from the caller, which gives back
    /// the attempt its claim counted (a run that never happened, or was
    /// cut short by a shutdown, is not a lost node's attempt). Conditional
    /// on this node's lease like every other write of a running job, and
    /// on the durable pool.
    pub(crate) async fn requeue_job(&self, job: &JobRecord) -> Result<bool, StoreError> {
        let requeued = self
            .bounded(async {
                let client = self.client().await?;
                let updated = client
                    .execute(
                        "UPDATE jobs SET status = 'accepted', started = NULL, lease_owner = NULL, \
                           lease_expires = NULL, attempts = $3, record = $2 \
                         WHERE id = $1 AND status = 'running' AND lease_owner = $4",
                        &[
                            &job.id,
                            &record_value(job)?,
                            &(job.attempts as i32),
                            &self.node.id,
                        ],
                    )
                    .await
                    .map_err(map_error)?;
                Ok(updated == 1)
            })
            .await?;
        if requeued {
            // Re-queued because this node stops or gave a job up: the other
            // nodes must hear of it whatever this dispatcher says.
            self.queue_wake.notify_one();
            self.announce_backlog();
        }
        Ok(requeued)
    }

    /// Dismiss: delete the row (its results go with it, `ON DELETE
    /// CASCADE`) and, in the same statement, notify every node, so the one
    /// running it stops it within a notification's delay.
    ///
    /// Deleting the row is what makes every later write of the job a no-op:
    /// claims, progress and outcomes are all `UPDATE`s that need the row,
    /// so a run that ends after the dismissal finds nothing to write.
    pub(crate) async fn delete_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        // The notification goes out when the delete commits; the node
        // running the job stops it when it hears it.
        let row = self
            .query_opt(
                "WITH d AS (DELETE FROM jobs WHERE id = $1 RETURNING record, request) \
                 SELECT record, request, pg_notify($2, 'dismiss:' || $3) FROM d",
                &[&id, &CHANNEL, &id.to_string()],
            )
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// A job by id: its record with the request put back in. The
    /// statement is prepared once per connection: polling `GET /jobs/{id}`
    /// is the most frequent read of all.
    pub(crate) async fn get_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached("SELECT record, request FROM jobs WHERE id = $1")
                .await
                .map_err(map_error)?;
            let row = client
                .query_opt(&statement, &[&id])
                .await
                .map_err(map_error)?;
            row.as_ref().map(decode).transpose()
        })
        .await
    }

    /// A successful job's results (`None` for any other job).
    pub(crate) async fn get_results(&self, id: Uuid) -> Result<Option<JobResults>, StoreError> {
        let row = self
            .query_opt("SELECT outputs FROM results WHERE job_id = $1", &[&id])
            .await?;
        Ok(row
            .map(|row| serde_json::from_slice(row.get(0)))
            .transpose()?)
    }

    /// Nothing to recover at start-up: this node's previous life (if any)
    /// had another incarnation id, and its leases expire like any lost
    /// node's.
    pub(crate) async fn recover(&self) -> Result<Recovery, StoreError> {
        Ok(Recovery::default())
    }

    /// Renew this node's leases on the jobs it runs and say it is alive
    /// (`nodes.last_seen`); returns the jobs among `running` whose lease
    /// this node no longer holds (taken over after an expiry, or deleted),
    /// which the caller stops.
    ///
    /// A sweep on another node that got to a job first holds its row lock
    /// until it commits; this `UPDATE` then waits, re-checks the row,
    /// finds it no longer `running` under this node, and leaves it out of
    /// `RETURNING`, so the job is reported lost rather than renewed.
    /// Conversely a row this heartbeat has locked is skipped by a sweep
    /// (`SKIP LOCKED`), so a renewal under way is never swept.
    pub(crate) async fn heartbeat(&self, running: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        self.bounded(async {
            let client = self.relaxed.client().await?;
            client
                .execute(
                    "INSERT INTO nodes (id, started, last_seen) VALUES ($1, now(), now()) \
                     ON CONFLICT (id) DO UPDATE SET last_seen = now()",
                    &[&self.node.id],
                )
                .await
                .map_err(map_error)?;
            let rows = client
                .query(
                    // Only the jobs that really run here: a job whose run
                    // ended without its outcome being stored (the database
                    // was down) must not be kept alive by its old node; its
                    // lease expires and another run records it.
                    "UPDATE jobs SET lease_expires = now() + $2::float8 * interval '1 millisecond' \
                     WHERE lease_owner = $1 AND status = 'running' AND id = ANY($3) RETURNING id",
                    &[&self.node.id, &millis(self.node.lease), &running],
                )
                .await
                .map_err(map_error)?;
            let held: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
            Ok(running
                .iter()
                .filter(|id| !held.contains(id))
                .copied()
                .collect())
        })
        .await
    }

    /// The jobs of lost nodes (leases expired): an async job started fewer
    /// than `cluster.max_attempts` times goes back to the queue, saying
    /// which node was lost; the others, and every sync job, fail as
    /// `node-lost` with that node's name. One statement with `SKIP LOCKED`,
    /// so several nodes sweeping at once take each job once.
    ///
    /// The `expired` CTE locks the rows once; the two data-modifying CTEs
    /// take disjoint parts of it (`asynchronous AND attempts < limit`
    /// versus the rest), since CTEs of one statement do not see each
    /// other's updates. A failed job keeps its `lease_owner`, naming the
    /// lost node. The small partial index `jobs_leases` can serve the
    /// search for expired rows. The requeued jobs are announced like new
    /// submissions.
    pub(crate) async fn sweep_expired_leases(&self) -> Result<LeaseSweep, StoreError> {
        let sweep = self
            .bounded(async {
                let client = self.relaxed.client().await?;
                let statement = client
                    .prepare_cached(
                        "WITH expired AS ( \
                           SELECT id FROM jobs WHERE status = 'running' AND lease_expires < now() \
                           FOR UPDATE SKIP LOCKED), \
                         requeued AS ( \
                           UPDATE jobs j SET status = 'accepted', started = NULL, lease_owner = NULL, \
                             lease_expires = NULL, \
                             record = j.record || jsonb_build_object('status', 'accepted', \
                               'started', NULL, 'progress', NULL, 'node', NULL, \
                               'updated', to_jsonb(now()), \
                               'message', format('re-queued: node %s was lost while running it \
                                 (lease expired; attempt %s of %s)', j.lease_owner, j.attempts, $1::int)) \
                           FROM expired e WHERE j.id = e.id AND j.asynchronous AND j.attempts < $1 \
                           RETURNING j.id), \
                         failed AS ( \
                           UPDATE jobs j SET status = 'failed', finished = now(), lease_expires = NULL, \
                             duration_ms = (extract(epoch FROM now() - j.started) * 1000)::bigint, \
                             record = j.record || jsonb_build_object('status', 'failed', \
                               'finished', to_jsonb(now()), 'updated', to_jsonb(now()), \
                               'message', r.reason, \
                               'failure', jsonb_build_object('kind', 'node-lost', 'code', NULL, \
                                 'reason', r.reason)) \
                           FROM (SELECT x.id, CASE WHEN x.asynchronous \
                               THEN format('node %s was lost while running it (lease expired); \
                                 it was started %s times, the limit is %s', x.lease_owner, x.attempts, $1::int) \
                               ELSE format('node %s was lost while running this synchronous job \
                                 (lease expired)', x.lease_owner) END AS reason \
                             FROM expired e JOIN jobs x ON x.id = e.id) r \
                           WHERE j.id = r.id AND (NOT j.asynchronous OR j.attempts >= $1) \
                           RETURNING j.id) \
                         SELECT (SELECT count(*) FROM requeued), (SELECT count(*) FROM failed)",
                    )
                    .await
                    .map_err(map_error)?;
                let row = client
                    .query_one(&statement, &[&(self.node.max_attempts as i32)])
                    .await
                    .map_err(map_error)?;
                Ok(LeaseSweep {
                    requeued: row.get::<_, i64>(0) as usize,
                    failed: row.get::<_, i64>(1) as usize,
                })
            })
            .await?;
        if sweep.requeued > 0 {
            self.announce_queued();
        }
        Ok(sweep)
    }

    /// Retention: delete up to `max` jobs per finished state that finished
    /// before `cutoff`, oldest first, under a transaction-level advisory
    /// lock (a node that does not get it returns 0: another node is
    /// sweeping). Nodes not seen for a day leave the `nodes` table here too.
    ///
    /// Each state's branch deletes up to `max`, so one call may delete up
    /// to three times `max`. The lock is transaction-level: it goes with
    /// the commit, or with the `ROLLBACK` sent when the time bound drops
    /// the transaction, so a node that dies mid-sweep never keeps the
    /// others from sweeping.
    pub(crate) async fn delete_finished_before(
        &self,
        cutoff: DateTime<Utc>,
        max: usize,
    ) -> Result<usize, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(map_error)?;
            let locked: bool = tx
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&RETENTION_LOCK])
                .await
                .map_err(map_error)?
                .get(0);
            if !locked {
                return Ok(0); // another node is sweeping
            }
            // Through the status indexes, bounded by creation: a job
            // created after the cutoff cannot have finished before it.
            let deleted = tx
                .execute(
                    "DELETE FROM jobs WHERE id IN ( \
                       (SELECT id FROM jobs WHERE status = 'successful' AND created < $1 \
                          AND finished < $1 ORDER BY created, id LIMIT $2) \
                       UNION ALL (SELECT id FROM jobs WHERE status = 'failed' AND created < $1 \
                          AND finished < $1 ORDER BY created, id LIMIT $2) \
                       UNION ALL (SELECT id FROM jobs WHERE status = 'dismissed' AND created < $1 \
                          AND finished < $1 ORDER BY created, id LIMIT $2))",
                    &[&cutoff, &(max as i64)],
                )
                .await
                .map_err(map_error)?;
            tx.execute(
                "DELETE FROM nodes WHERE last_seen < now() - interval '1 day'",
                &[],
            )
            .await
            .map_err(map_error)?;
            tx.commit().await.map_err(map_error)?;
            Ok(deleted as usize)
        })
        .await
    }

    /// The bytes of every stored job's request and results as the client
    /// and the guest gave them (`octet_length`, before PostgreSQL's
    /// compression: a bound on what users store should not depend on how
    /// well it compresses; PostgreSQL reads it from the TOAST pointer
    /// without decompressing), plus each record as stored. A sequential
    /// scan: called now and then, never per request.
    ///
    /// Per owner, one pass over the jobs joined to their results, grouped
    /// by owner (the group of jobs without one counts in the total only).
    pub(crate) async fn stored_job_bytes(&self, by_owner: bool) -> Result<StoredBytes, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let mut stored = StoredBytes::default();
            if !by_owner {
                let row = client
                    .query_one(
                        "SELECT (SELECT coalesce(sum(pg_column_size(record) + octet_length(request)), 0) \
                                 FROM jobs)::bigint \
                              + (SELECT coalesce(sum(octet_length(outputs)), 0) FROM results)::bigint",
                        &[],
                    )
                    .await
                    .map_err(map_error)?;
                stored.total = row.get::<_, i64>(0).max(0) as u64;
                return Ok(stored);
            }
            let rows = client
                .query(
                    "SELECT j.owner, coalesce(sum(pg_column_size(j.record) + octet_length(j.request) \
                              + coalesce(octet_length(r.outputs), 0)), 0)::bigint \
                     FROM jobs j LEFT JOIN results r ON r.job_id = j.id GROUP BY j.owner",
                    &[],
                )
                .await
                .map_err(map_error)?;
            for row in rows {
                let bytes = row.get::<_, i64>(1).max(0) as u64;
                stored.total += bytes;
                if let Some(owner) = row.get::<_, Option<String>>(0) {
                    stored.by_owner.insert(owner, bytes);
                }
            }
            Ok(stored)
        })
        .await
    }

    /// Every job stored (an exact count: it walks the table, so only for
    /// tests and tools, never on a request's path).
    pub(crate) async fn job_count(&self) -> Result<u64, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT count(*) FROM jobs", &[])
                .await
                .map_err(map_error)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
        .await
    }
}
