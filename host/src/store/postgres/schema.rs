//! The PostgreSQL schema and its versioned migrations.
//!
//! `wasmproc_schema` holds one row: the version of the newest migration
//! applied. At start-up every node takes the same advisory lock, applies
//! the migrations it finds missing, each in its own transaction together
//! with the version bump, and releases the lock — so nodes starting
//! together migrate once, and a crash mid-migration leaves the previous
//! version. A database whose version is newer than this build's is
//! refused: an older binary must not write rows it does not understand.

use tokio_postgres::Client;

use super::{PgError, map_error};
use crate::store::StoreError;

/// Advisory lock key held while migrating (an arbitrary constant that no
/// other application on the database is likely to use).
const MIGRATION_LOCK: i64 = 0x7761_736d_7072_6f63; // "wasmproc"

/// Migrations in order; the version after applying `MIGRATIONS[i]` is
/// `i + 1`. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    // 1: processes, modules, jobs with an index per `/jobs` filter, results,
    // nodes.
    r#"
    CREATE TABLE modules (
        sha256  text PRIMARY KEY,
        wasm    bytea NOT NULL,
        stored  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE processes (
        id       text PRIMARY KEY,
        mutable  boolean NOT NULL,
        record   jsonb NOT NULL,
        changed  timestamptz NOT NULL DEFAULT now()
    );
    -- A job: the columns every filter, the queue and the leases need; the
    -- rest of the record in `record` (jsonb, without the request, which is
    -- written once and kept apart in `request`).
    CREATE TABLE jobs (
        id             uuid PRIMARY KEY,
        process_id     text NOT NULL,
        status         text NOT NULL,
        asynchronous   boolean NOT NULL,
        created        timestamptz NOT NULL,
        started        timestamptz,
        finished       timestamptz,
        duration_ms    bigint,
        lease_owner    text,
        lease_expires  timestamptz,
        attempts       integer NOT NULL DEFAULT 0,
        record         jsonb NOT NULL,
        request        bytea NOT NULL
    );
    -- `/jobs` newest first: one ordered walk per state asked for (every
    -- state for an unfiltered list), merged; the keyset cursor (created, id)
    -- continues any of them. A job's state changes twice (claimed,
    -- finished) and each change adds an entry to every index over its row,
    -- so there is no index over all rows but the primary key: finished
    -- jobs are found through the status indexes below (written once, with
    -- the final state), queued and running ones through the two small
    -- partial indexes that the queue and the leases need anyway.
    CREATE INDEX jobs_by_status ON jobs (status, created DESC, id DESC)
        WHERE status IN ('successful', 'failed', 'dismissed');
    CREATE INDEX jobs_by_process_status ON jobs (process_id, status, created DESC, id DESC)
        WHERE status IN ('successful', 'failed', 'dismissed');
    CREATE INDEX jobs_by_duration ON jobs (duration_ms) WHERE duration_ms IS NOT NULL;
    -- The queue, oldest first, and `status=accepted` (small: queued jobs).
    CREATE INDEX jobs_queue ON jobs (created, id) WHERE status = 'accepted';
    -- Expired leases, and `status=running` (small: running jobs).
    CREATE INDEX jobs_leases ON jobs (lease_expires) WHERE status = 'running';
    CREATE TABLE results (
        job_id   uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        outputs  bytea NOT NULL
    );
    CREATE TABLE nodes (
        id         text PRIMARY KEY,
        started    timestamptz NOT NULL,
        last_seen  timestamptz NOT NULL
    );
    "#,
    // 2: job ownership (API keys). `GET /jobs` of an `execute` key walks
    // its own finished jobs per state, like `jobs_by_process_status` for
    // a process; rows without an owner (no keys configured) are left out
    // of the index and cost it nothing.
    r#"
    ALTER TABLE jobs ADD COLUMN owner text;
    CREATE INDEX jobs_by_owner_status ON jobs (owner, status, created DESC, id DESC)
        WHERE owner IS NOT NULL AND status IN ('successful', 'failed', 'dismissed');
    "#,
];

/// The schema version this build writes: the number of migrations it
/// carries, since version `n` is the state after the first `n`.
pub(super) fn supported_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Apply the missing migrations (see the module documentation).
///
/// The lock is session-level (`pg_advisory_lock`), taken on the pooled
/// connection that then runs every migration, and waited for: a node that
/// starts while another migrates blocks here until it is done, then finds
/// nothing left to apply. It is released explicitly, whatever the
/// migrations did, because the connection goes back to the pool and a
/// session lock would otherwise outlive this call; if the connection
/// broke instead, PostgreSQL releases the lock with the session.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_error)?;
    let migrated = apply(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_error);
    migrated?;
    unlocked.map(|_| ())
}

/// Create the version table if needed, refuse a newer schema, and apply
/// each missing migration in a transaction of its own with its version
/// bump. Called with the migration lock held. PostgreSQL's DDL is
/// transactional, so a migration that fails halfway leaves no table or
/// index of it behind, and the version says exactly what exists.
async fn apply(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS wasmproc_schema (version bigint NOT NULL)")
        .await
        .map_err(map_error)?;
    let found: i64 = client
        .query_opt("SELECT version FROM wasmproc_schema", &[])
        .await
        .map_err(map_error)?
        .map_or(0, |row| row.get(0));
    let supported = supported_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = client.transaction().await.map_err(map_error)?;
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Postgres(PgError::Migration { version, source: e }))?;
        tx.execute("DELETE FROM wasmproc_schema", &[])
            .await
            .map_err(map_error)?;
        tx.execute(
            "INSERT INTO wasmproc_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}
