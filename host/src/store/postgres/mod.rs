//! The shared backend: one PostgreSQL database, any number of nodes. The
//! only module that touches PostgreSQL.
//!
//! # Tables
//! `processes`, `modules` (bytes once per sha256), `jobs` (indexed columns
//! plus the record as jsonb; see `schema`), `results`, `nodes`, and
//! `wasmproc_schema` (the migration version).
//!
//! # What is committed before which answer
//! Every statement that changes state commits before the method returns,
//! and PostgreSQL's commit is durable (`synchronous_commit` is left on):
//! - an async job is inserted (`accepted`) before its 201;
//! - a sync job is inserted (`running`, leased) when it starts and updated
//!   with its results, in one statement, before its 200;
//! - a job's final state and its results are one statement, so they become
//!   visible together;
//! - a deploy, replace, undeploy or dismissal commits before its answer,
//!   and sends its notification in the same statement (PostgreSQL delivers
//!   it at commit).
//!
//! # Claims and leases
//! A node claims queued jobs with one `UPDATE … WHERE id IN (SELECT …
//! FOR UPDATE SKIP LOCKED)`: concurrent claimers skip each other's rows, so
//! every job goes to exactly one node. The claim writes `lease_owner` (the
//! node's incarnation id) and `lease_expires`; the node's heartbeat pushes
//! `lease_expires` forward for the jobs it still runs. Every write of a
//! running job's state is conditional on `lease_owner` being this node, so
//! a node that lost its lease (cut off, then back) cannot overwrite the
//! job's next run.
//!
//! # What a lost node leaves behind, and who cleans it up
//! A node killed mid-run leaves its jobs `running` under a lease nobody
//! renews. Every node's heartbeat also sweeps expired leases
//! (`PgStore::sweep_expired_leases`, row locks with `SKIP LOCKED`, so each
//! expired job is handled by one node): async jobs go back to `accepted`
//! (a guest has no network and no files, so running it again is safe) until
//! they were started `max_attempts` times, then fail with a reason naming
//! the lost node; sync jobs fail at once (their client was connected to the
//! dead node). A restarting node has a new incarnation id, so it never
//! mistakes its previous life's leases for live ones, and it leaves alone
//! every lease that has not expired.
//!
//! # Clocks
//! Every time the cluster compares (`lease_expires`, `nodes.last_seen`, a
//! module's `stored`) is the database's `now()`, written and compared by
//! SQL, never a node's clock: nodes whose clocks disagree still agree on
//! which leases have expired.
//!
//! # Notifications
//! One channel, `wasmproc`, with payloads `queued`, `dismiss:<job id>`,
//! `finished:<job id>` and `process:<id>`, heard by a dedicated connection
//! per node (`listener`) and turned into [`StoreEvent`]s and queue
//! wake-ups. A node that reconnects after missing notifications emits
//! [`StoreEvent::Resync`]. A claim loop also polls once a second, so a
//! lost `queued` notification delays a job by at most that.
//!
//! # Unavailability
//! Waiting for a connection and every statement are bounded by
//! `store.timeout`; a connection failure or a timeout is
//! [`StoreError::Unavailable`] (503 + `Retry-After` over HTTP), and the pool
//! replaces broken connections by itself once the database is back.
//!
//! A timeout is given up on by this side only: the statement was already
//! sent, and tokio-postgres does not cancel it on the server, so a write
//! answered with `Unavailable` may still commit (a submission refused with
//! a 503 can still be queued and run).

mod batch;
mod jobs;
mod list;
mod listener;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{Notify, broadcast};
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

use super::{JobRecord, NodeIdentity, ProcessRecord, ProcessWrite, StoreError, StoreEvent};
use crate::config::{StoreConfig, redacted_url};

/// The notification channel every node listens on. One channel for every
/// kind of message (the payload says which) keeps a node at one `LISTEN`
/// and one connection, whatever is added later.
const CHANNEL: &str = "wasmproc";

/// Connections for the writes that need no durability (claims, progress,
/// heartbeats): the dispatcher, the heartbeat and a few progress writers
/// use them at once.
const RELAXED_POOL_SIZE: usize = 4;

/// How long to tell a client to wait when the database is unavailable. A
/// PostgreSQL restart or failover typically takes seconds, and the pool
/// opens fresh connections on the first request after it, so a short wait
/// is enough, and clients retrying at this pace add little load to a
/// database that is coming back.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// PostgreSQL errors that are not about reaching the database.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// A statement failed.
    #[error("PostgreSQL: {0}")]
    Statement(#[source] tokio_postgres::Error),
    /// A migration failed.
    #[error("PostgreSQL migration to schema version {version} failed: {source}")]
    Migration {
        /// The version it would have reached.
        version: i64,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid store.url ({url}): {source}")]
    InvalidUrl {
        /// The URL without its password.
        url: String,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The connection pool could not be built.
    #[error("PostgreSQL connection pool: {0}")]
    Pool(#[source] deadpool_postgres::BuildError),
    /// The batched statement this write was part of failed.
    #[error("a batched write failed: {0}")]
    Batch(#[source] Arc<StoreError>),
}

/// Whether an error means "the database cannot be reached" rather than "a
/// statement is wrong": closed connections, I/O errors, and the SQLSTATE
/// classes of connection failures and server shutdowns.
fn is_connection_error(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") // connection exception
                || code.starts_with("57P") // admin/crash shutdown, cannot connect now
                || code == "53300" // too many connections
        }
        // No SQLSTATE: the error came from the socket, not the server.
        None => true,
    }
}

/// Classify a driver error: a connection problem becomes
/// [`StoreError::Unavailable`] (503 and `Retry-After`, since trying again
/// later can succeed), anything else a statement error (500: a bug or a
/// database changed by hand, which retrying will not fix).
pub(super) fn map_error(error: tokio_postgres::Error) -> StoreError {
    if is_connection_error(&error) {
        StoreError::Unavailable {
            reason: error.to_string(),
            retry_after: RETRY_AFTER,
        }
    } else {
        StoreError::Postgres(PgError::Statement(error))
    }
}

/// The pool and the time bound every use of it gets; cheap to clone into
/// the batching tasks.
#[derive(Clone)]
pub(super) struct Db {
    /// Either the durable pool or the relaxed one (see `PgStore::relaxed`).
    pool: Pool,
    /// `store.timeout`: the bound on waiting for a connection and on each
    /// use of it.
    timeout: Duration,
}

impl Db {
    /// A pooled connection, or [`StoreError::Unavailable`] within the bound.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        match tokio::time::timeout(self.timeout, self.pool.get()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(deadpool_postgres::PoolError::Backend(e))) => Err(map_error(e)),
            Ok(Err(e)) => Err(StoreError::Unavailable {
                reason: e.to_string(),
                retry_after: RETRY_AFTER,
            }),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// The time bound of one use.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The error of a use that ran past the bound: `Unavailable`, since a
    /// database too slow to answer is, for a client, one that is down
    /// (and the statement may still commit, see the module docs).
    pub(super) fn timed_out(&self) -> StoreError {
        StoreError::Unavailable {
            reason: format!(
                "no answer from PostgreSQL within {}",
                humantime::format_duration(self.timeout)
            ),
            retry_after: RETRY_AFTER,
        }
    }

    /// Run `work` bounded by `store.timeout`. When the bound fires, `work`
    /// is dropped where it stands and its connection goes back to the
    /// pool; that is safe for single statements (the next user's statement
    /// queues behind the abandoned one) and for a `Transaction`, whose drop
    /// sends a `ROLLBACK`, but not for a transaction opened with a bare
    /// `BEGIN` (see the outcome batcher).
    pub(super) async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out()))
    }
}

/// The shared store.
pub struct PgStore {
    /// The durable pool itself, for the notifier task, which sends its
    /// `NOTIFY` without the time bound of `db`.
    pool: Pool,
    /// The durable pool with its time bound: every read, and every write
    /// that is not on the relaxed pool.
    db: Db,
    /// The same database with `synchronous_commit = off`, for writes whose
    /// loss in a database crash is harmless (see `connect`).
    relaxed: Db,
    /// This node's incarnation id (the `lease_owner` of its claims), lease
    /// length and attempt limit.
    node: NodeIdentity,
    /// New async jobs, inserted in batches (group commit).
    submissions: batch::Batcher<JobRecord, ()>,
    /// Final states and results, written in batches (group commit).
    outcomes: batch::Batcher<jobs::Outcome, bool>,
    /// Where the listener task publishes what other nodes announced (and
    /// `Resync` after each reconnection); 1024 deep. A receiver that lags
    /// further gets `Lagged`, which the scheduler treats as a `Resync`.
    events: broadcast::Sender<StoreEvent>,
    /// Wakes this node's dispatcher: a local submission, a `queued`
    /// notification from another node, a sweep that re-queued jobs.
    queue_wake: Arc<Notify>,
    /// Asks the notifier task to tell the other nodes that jobs are
    /// queued (coalesced, see [`listener::spawn_notifier`]).
    announce_queued: Arc<Notify>,
    /// Whether this node's dispatcher will claim soon (it has an idle
    /// worker): then a local submission wakes only it, and the other nodes
    /// are told only when it is busy (see [`PgStore::set_claimer_ready`]).
    claimer_ready: std::sync::atomic::AtomicBool,
    /// The cluster-wide queue length as last counted, and this node's
    /// submissions since (see [`jobs::QUEUE_COUNT_AGE`]).
    queue_count: std::sync::Mutex<jobs::QueueCount>,
    /// Stops the listener and notifier tasks when the store is dropped.
    stop: CancellationToken,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("node", &self.node.id)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl PgStore {
    /// Connect, migrate, register the node and start listening. Fails with
    /// a message naming the URL (without its password) when the database
    /// cannot be reached or refuses the credentials.
    pub async fn connect(config: &StoreConfig, node: NodeIdentity) -> Result<Self, StoreError> {
        let url = config
            .url
            .as_ref()
            .map(|u| u.expose().to_owned())
            .unwrap_or_default();
        let shown = redacted_url(&url);
        let mut pg_config: tokio_postgres::Config =
            url.parse().map_err(|source| PgError::InvalidUrl {
                url: shown.clone(),
                source,
            })?;
        pg_config
            .connect_timeout(config.timeout)
            .application_name(format!("wasmproc {}", node.id))
            // A database that vanishes without closing the socket is
            // noticed by the kernel within about a minute.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                // Statements time out on our side; a connection that broke
                // fails its next statement and the pool drops it.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let build = |manager: Manager, size: usize| {
            Pool::builder(manager)
                .max_size(size)
                .wait_timeout(Some(config.timeout))
                .create_timeout(Some(config.timeout))
                .recycle_timeout(Some(config.timeout))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(PgError::Pool)
        };
        let pool = build(manager, config.pool_size)?;
        // Claims, progress, lease renewals and sweeps: writes whose loss in
        // a PostgreSQL crash harms nothing (a lost claim or sweep leaves the
        // job where it was, to be claimed or swept again; a lost progress
        // report is superseded by the next one). They commit without
        // waiting for the WAL flush, which is most of a claim's latency,
        // and the claim loop's turn-around is what one node's async
        // throughput waits on. Everything a client is told about keeps
        // `synchronous_commit` on.
        let mut relaxed_config = pg_config.clone();
        relaxed_config.options("-c synchronous_commit=off");
        let relaxed_pool = build(
            Manager::from_config(
                relaxed_config,
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            ),
            RELAXED_POOL_SIZE,
        )?;

        let unreachable = |reason: String| StoreError::Unavailable {
            reason: format!("cannot connect to PostgreSQL at {shown}: {reason}"),
            retry_after: RETRY_AFTER,
        };
        let mut client = tokio::time::timeout(config.timeout, pool.get())
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        schema::migrate(&mut client).await?;
        client
            .execute(
                "INSERT INTO nodes (id, started, last_seen) VALUES ($1, now(), now()) \
                 ON CONFLICT (id) DO UPDATE SET last_seen = now()",
                &[&node.id],
            )
            .await
            .map_err(map_error)?;
        drop(client);

        let db = Db {
            pool: pool.clone(),
            timeout: config.timeout,
        };
        let relaxed = Db {
            pool: relaxed_pool,
            timeout: config.timeout,
        };
        let store = Self {
            submissions: jobs::submission_batcher(db.clone()),
            outcomes: jobs::outcome_batcher(db.clone(), node.id.clone()),
            db,
            relaxed,
            pool,
            node,
            events: broadcast::channel(1024).0,
            queue_wake: Arc::new(Notify::new()),
            announce_queued: Arc::new(Notify::new()),
            claimer_ready: std::sync::atomic::AtomicBool::new(false),
            queue_count: std::sync::Mutex::default(),
            stop: CancellationToken::new(),
        };
        let first_listen = listener::spawn_listener(
            pg_config,
            store.events.clone(),
            store.queue_wake.clone(),
            store.stop.clone(),
        );
        // The pool just connected, so the listener normally follows within
        // milliseconds; if it cannot, it keeps retrying in the background
        // and its first connection resynchronises this node.
        if tokio::time::timeout(config.timeout, first_listen)
            .await
            .is_err()
        {
            tracing::warn!(
                "the PostgreSQL listener is not connected yet; dismissals and deployments \
                 from other nodes reach this node once it is"
            );
        }
        listener::spawn_notifier(
            store.pool.clone(),
            store.announce_queued.clone(),
            store.stop.clone(),
        );
        Ok(store)
    }

    /// This node's identity.
    pub fn node(&self) -> &NodeIdentity {
        &self.node
    }

    /// Events from every node, this one included: a dismissal made here
    /// also comes back through NOTIFY, which is how the worker running the
    /// job hears of it whichever node received the `DELETE`.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Woken when a job may have become claimable here (see `queue_wake`
    /// the field); a wake-up is a hint, the claim statement decides.
    pub(crate) fn queue_wake(&self) -> &Notify {
        &self.queue_wake
    }

    /// Whether PostgreSQL answers now: a pooled connection and one
    /// `SELECT 1` on it, within `store.timeout`. A connection taken from
    /// the pool may be one the server closed since (a restart), which only
    /// a round trip shows; the pool then drops it, and the next request
    /// connects afresh.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(map_error)?;
            Ok(())
        })
        .await
    }

    /// A pooled connection, or [`StoreError::Unavailable`] within
    /// `store.timeout`.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.db.client().await
    }

    /// Run `work` bounded by `store.timeout`.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.db.bounded(work).await
    }

    /// One statement on a pooled connection, bounded by `store.timeout`:
    /// the row it returned, or `None`. Lookups by primary key and
    /// `DELETE … RETURNING` are this.
    async fn query_opt(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client.query_opt(statement, params).await.map_err(map_error)
        })
        .await
    }

    // ---- processes and modules -------------------------------------------

    /// Store module bytes unless they are there already (a 19 MB Python
    /// component is sent once, not on every replace); either way the
    /// module's `stored` time becomes now, which keeps
    /// [`Self::collect_modules`] away from it for the grace period (its
    /// `stored < cutoff` is checked again on the locked row, so a module
    /// touched while being collected stays).
    async fn put_module(
        &self,
        client: &deadpool_postgres::Object,
        sha256: &str,
        wasm: &[u8],
    ) -> Result<(), StoreError> {
        let present = client
            .execute(
                "UPDATE modules SET stored = now() WHERE sha256 = $1",
                &[&sha256],
            )
            .await
            .map_err(map_error)?
            == 1;
        if !present {
            client
                .execute(
                    "INSERT INTO modules (sha256, wasm) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&sha256, &wasm],
                )
                .await
                .map_err(map_error)?;
        }
        Ok(())
    }

    /// Write a process as `how` says. A deploy or a replace goes through
    /// [`Self::change_process`] (module bytes, then the statement, each
    /// autocommitted), with a statement that returns a row, and sends its
    /// `pg_notify`, exactly when it changed the process:
    ///
    /// - deploy: `INSERT ... ON CONFLICT DO NOTHING`, so two nodes
    ///   deploying the same id at once cannot both succeed: the primary key
    ///   decides, and the loser gets no row back. A crash between the two
    ///   statements leaves module bytes no process uses, which
    ///   `collect_modules` removes after the grace period.
    /// - replace: touch the old module first (jobs accepted under the old
    ///   registration may still need it), then `UPDATE ... AND mutable`,
    ///   which makes built-ins immutable in the database itself, whatever
    ///   a caller checked before. Concurrent replaces of one id serialise
    ///   on its row lock, and the last to commit wins.
    ///
    /// An install is [`Self::install_process`].
    pub(crate) async fn write_process(
        &self,
        record: &ProcessRecord,
        wasm: &[u8],
        how: ProcessWrite,
    ) -> Result<bool, StoreError> {
        let value = serde_json::to_value(record)?;
        match how {
            ProcessWrite::Deploy => {
                self.change_process(
                    Some((record, wasm)),
                    None,
                    "WITH p AS (INSERT INTO processes (id, mutable, record) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING RETURNING id) \
                     SELECT pg_notify($4, 'process:' || id) FROM p",
                    &[&record.id, &record.mutable, &value, &CHANNEL],
                )
                .await
            }
            ProcessWrite::Replace => {
                self.change_process(
                    Some((record, wasm)),
                    Some(&record.id),
                    "UPDATE processes SET record = $2, changed = now() WHERE id = $1 AND mutable \
                     RETURNING pg_notify($3, 'process:' || id)",
                    &[&record.id, &value, &CHANNEL],
                )
                .await
            }
            ProcessWrite::Install => self
                .install_process(record, wasm, &value)
                .await
                .map(|()| true),
        }
    }

    /// Install a built-in or a process from the processes directory at
    /// start-up: an upsert whose `DO UPDATE ... WHERE` rewrites the row only
    /// when its module or mutability differ, so the nodes of a cluster
    /// starting together do not rewrite (and bump `changed` on) the same
    /// rows over and over. Unlike deploy, replace and undeploy, this
    /// statement sends no notification.
    async fn install_process(
        &self,
        record: &ProcessRecord,
        wasm: &[u8],
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            self.put_module(&client, &record.module_sha256, wasm).await?;
            // Every node installs the same built-ins at start-up: only a
            // real change is written. Nothing is announced: each node
            // installs its own immutable processes, and other nodes reload
            // only deployed (mutable) ones.
            client
                .execute(
                    "INSERT INTO processes AS p (id, mutable, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET mutable = excluded.mutable, \
                     record = excluded.record, changed = now() \
                     WHERE p.record->>'module_sha256' IS DISTINCT FROM excluded.record->>'module_sha256' \
                        OR p.mutable IS DISTINCT FROM excluded.mutable",
                    &[&record.id, &record.mutable, value],
                )
                .await
                .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    /// A process by id: a primary-key lookup, the record from its jsonb.
    pub(crate) async fn get_process(&self, id: &str) -> Result<Option<ProcessRecord>, StoreError> {
        let row = self
            .query_opt("SELECT record FROM processes WHERE id = $1", &[&id])
            .await?;
        Ok(row
            .map(|row| serde_json::from_value(row.get(0)))
            .transpose()?)
    }

    /// Every process, in id order (`ORDER BY id`, in the database's
    /// collation; the primary key's index can serve it).
    pub(crate) async fn list_processes(&self) -> Result<Vec<ProcessRecord>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let rows = client
                .query("SELECT record FROM processes ORDER BY id", &[])
                .await
                .map_err(map_error)?;
            rows.into_iter()
                .map(|row| Ok(serde_json::from_value(row.get(0))?))
                .collect()
        })
        .await
    }

    /// Undeploy: touch the process's module first (a job accepted just
    /// before may still be queued with it), then delete the row if it is
    /// mutable, notifying in the same statement. The module bytes stay; a
    /// later `collect_modules` removes them once nothing uses them.
    pub(crate) async fn delete_process(&self, id: &str) -> Result<bool, StoreError> {
        self.change_process(
            None,
            Some(id),
            "DELETE FROM processes WHERE id = $1 AND mutable \
             RETURNING pg_notify($2, 'process:' || id)",
            &[&id, &CHANNEL],
        )
        .await
    }

    /// The steps deploy, replace and undeploy share, in one time-bounded
    /// call on one pooled connection, each its own autocommitted statement
    /// and in this order: store `module`'s bytes (`put_module`), when the
    /// change brings a new one; touch the module of process `touch_of`
    /// (`touch_module_of`), when the change moves a process off its
    /// module; then `statement`, written to return a row exactly when it
    /// changed the process (its `pg_notify` rides on that row). Whether
    /// it did.
    async fn change_process(
        &self,
        module: Option<(&ProcessRecord, &[u8])>,
        touch_of: Option<&str>,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            if let Some((record, wasm)) = module {
                self.put_module(&client, &record.module_sha256, wasm)
                    .await?;
            }
            if let Some(id) = touch_of {
                touch_module_of(&client, id).await?;
            }
            let row = client
                .query_opt(statement, params)
                .await
                .map_err(map_error)?;
            Ok(row.is_some())
        })
        .await
    }

    /// Module bytes by sha256, for a node that has not compiled the module
    /// yet (each node compiles and caches its own artifact).
    pub(crate) async fn get_module(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .query_opt("SELECT wasm FROM modules WHERE sha256 = $1", &[&sha256])
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Delete the modules no process and no queued or running job uses,
    /// last touched (stored, replaced away from, undeployed) more than
    /// `grace` ago by the database's clock; returns their sha256s. One
    /// statement: several nodes may run it at once, each module goes once.
    ///
    /// The `DELETE` locks each row it removes. A row that `put_module` or
    /// `touch_module_of` updated meanwhile is re-read after that update
    /// commits, and its new `stored` no longer passes the cutoff, so it
    /// stays. The `NOT EXISTS` checks look up the module inside the
    /// process and job records (`record->>'module_sha256'`, no index):
    /// fine for a statement that runs now and then, not per request.
    pub(crate) async fn collect_modules(
        &self,
        grace: std::time::Duration,
    ) -> Result<Vec<String>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "DELETE FROM modules m \
                     WHERE m.stored < now() - $1::float8 * interval '1 millisecond' \
                       AND NOT EXISTS (SELECT 1 FROM processes p \
                                       WHERE p.record->>'module_sha256' = m.sha256) \
                       AND NOT EXISTS (SELECT 1 FROM jobs j \
                                       WHERE j.status IN ('accepted', 'running') \
                                         AND j.record->>'module_sha256' = m.sha256) \
                     RETURNING m.sha256",
                    &[&jobs::millis(grace)],
                )
                .await
                .map_err(map_error)?;
            Ok(rows.into_iter().map(|row| row.get(0)).collect())
        })
        .await
    }
}

/// Mark the module of process `id` (if any) as just used: it is being
/// replaced or undeployed, and a job accepted meanwhile may still need it
/// (see `execution.module_grace`).
async fn touch_module_of(client: &deadpool_postgres::Object, id: &str) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE modules SET stored = now() WHERE sha256 = \
               (SELECT record->>'module_sha256' FROM processes WHERE id = $1)",
            &[&id],
        )
        .await
        .map_err(map_error)?;
    Ok(())
}
