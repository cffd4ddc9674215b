//! The embedded backend: sled in the data directory, one node. The only
//! module that touches sled.
//!
//! # Trees (values JSON unless noted)
//! - `processes`: process id → [`ProcessRecord`].
//! - `modules`: module sha256 (hex) → component bytes (raw), so a replaced
//!   process's running jobs keep their version.
//! - `jobs`: job id (16 bytes) → [`JobRecord`].
//! - `job_index`: the `/jobs` indexes, keys only (see `index`).
//! - `results`: job id → `JobResults`.
//! - `meta`: `schema_version` → decimal text. Version 2 added `job_index`;
//!   a version-1 database (trees `jobs_by_created` and `active`) is
//!   re-indexed once at open.
//!
//! # Crash ordering
//! No sled transactions: sled 0.34 switches the whole database to a global
//! lock after the first transaction, and a background flush holding it
//! deadlocked concurrent submissions. Multi-tree writes are instead ordered
//! so that a crash between them leaves only index entries without a job,
//! which every reader skips: a job is written before its index entries and
//! removed before them.
//!
//! Writes the client is told about (an accepted async job before its 201,
//! deploys, dismissals, an async job's final state) wait for
//! `durability::Durability::flush`: group commit, one fsync at a time for
//! everybody waiting.
//!
//! # Overlays (in memory, for speed)
//! - A running *sync* job lives only in memory (`running_sync`) and is
//!   written once, when it finishes: its id reaches its client only with
//!   the response, after that write, so a crash mid-run loses nothing
//!   anybody was given. Every reader sees these jobs like stored ones.
//!   The final write runs outside the map's lock, under a lock of the
//!   job's own that a dismissal also takes (`sync_write_lock`); the job
//!   stays in the map, shown as running, until the write is done.
//! - An async job's final state is shown only once it is on disk: until
//!   its flush completes, readers are shown the state before it
//!   (`pending`), so a finish anybody saw survives a crash.
//! - The async queue is a list of ids in memory (`queue`), refilled from
//!   the `A` index at start-up; the jobs themselves are on disk before they
//!   enter it.

mod durability;
mod index;
mod jobs;
mod list;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use super::{JobRecord, ProcessRecord, ProcessWrite, StoreError, StoreEvent};
use durability::Durability;
use tokio_util::task::TaskTracker;

/// A sled failure (I/O, corruption).
#[derive(Debug, thiserror::Error)]
#[error("sled database error: {0}")]
pub struct SledError(#[from] pub(crate) sled::Error);

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Sled(SledError(error))
    }
}

/// The schema this build writes (see the `meta` tree in the module docs).
/// Bumped when the trees or their keys change shape, so that an older
/// binary refuses a database it would misread.
const SCHEMA_VERSION: i64 = 2;

/// sled's page cache (a soft bound on its share of the server's RSS).
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How many locks order sync jobs' final writes against dismissals. A
/// job waits only for a job whose id falls on the same stripe, finishing
/// at the same moment: with a few jobs finishing at once on two to a few
/// dozen cores, 64 makes that rare.
const SYNC_WRITE_STRIPES: usize = 64;

/// The embedded store.
#[derive(Debug)]
pub struct SledStore {
    /// The database: flushed as a whole (one log for every tree), so one
    /// flush makes the writes of every tree durable.
    db: sled::Db,
    /// `processes`: process id (UTF-8) → `ProcessRecord` JSON.
    processes: sled::Tree,
    /// `modules`: sha256 (hex) → component bytes.
    modules: sled::Tree,
    /// `jobs`: job id (16 bytes) → `JobRecord` JSON, request included.
    jobs: sled::Tree,
    /// `job_index`: keys only, see `index`.
    index: sled::Tree,
    /// `results`: job id (16 bytes) → `JobResults` JSON, for successful
    /// jobs only.
    results: sled::Tree,
    /// Group commit of the flushes that callers wait for.
    durability: Durability,
    /// Running sync jobs, never on disk while they run.
    running_sync: Mutex<HashMap<Uuid, JobRecord>>,
    /// Order a sync job's final write against its dismissal (see
    /// [`SledStore::sync_write_lock`]); striped by job id so that two
    /// jobs finishing at once rarely wait for each other.
    sync_writes: [Mutex<()>; SYNC_WRITE_STRIPES],
    /// Async jobs whose final state is written but not yet durable, with
    /// the state readers see meanwhile.
    pending: Mutex<HashMap<Uuid, JobRecord>>,
    /// Ids of accepted async jobs in submission order.
    queue: Mutex<VecDeque<Uuid>>,
    /// Places taken in the queue: ids in `queue` plus submissions between
    /// reserving a place and pushing their id (so a full queue refuses
    /// before anything is written).
    queued: AtomicUsize,
    /// Wakes the dispatcher when an id enters `queue`.
    queue_wake: Notify,
    /// Dismissals, for the scheduler to stop a job it runs; 256 deep. A
    /// receiver that lags further gets `Lagged`, which the scheduler
    /// treats as a `Resync`.
    events: broadcast::Sender<StoreEvent>,
    /// When each module was last stored, replaced away from or undeployed
    /// (see [`SledStore::collect_modules`]); a module not in it counts
    /// from `opened` (in memory only: after a restart every module waits
    /// one grace period again, which is merely late).
    module_touched: Mutex<HashMap<String, std::time::Instant>>,
    /// When this store was opened: the last touch of every module not in
    /// `module_touched`.
    opened: std::time::Instant,
    /// The store's work on tokio's blocking pool (flushes, long scans),
    /// each holding the database. A blocking task runs to its end even
    /// when the future awaiting it is dropped, so [`SledStore::close`]
    /// waits for these: until then sled's file lock is still held.
    blocking: TaskTracker,
}

/// Lock a mutex, ignoring poisoning: every critical section here leaves
/// the map consistent at each step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SledStore {
    /// The lock held while a sync job's final state is written and while
    /// a dismissal takes a running sync job away, so that neither slips
    /// in between the other's check of `running_sync` and its act.
    ///
    /// Not the `running_sync` map's own lock: that one is taken by every
    /// sync job's start, progress and finish and by every reader, and a
    /// job's final write (four sled inserts, tens of microseconds) held
    /// under it made the other HTTP threads sleep on it under load (6 % of
    /// the server's samples in `futex` system calls, and fewer requests in
    /// parallel: BENCHMARKS.md).
    fn sync_write_lock(&self, id: Uuid) -> MutexGuard<'_, ()> {
        // The low bits of a v7 (and of a v4) id are random.
        lock(&self.sync_writes[id.as_u128() as usize % SYNC_WRITE_STRIPES])
    }
}

impl SledStore {
    /// Open (or create) the database in `dir`, re-indexing a database
    /// written by an older version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            // sled flushes its log every 500 ms by default; durability of
            // accepted jobs comes from explicit flushes, so keep the default.
            // Writes outnumber reads several to one on the job path: favour
            // write throughput over on-disk compactness.
            .mode(sled::Mode::HighThroughput)
            // sled caches up to 1 GiB of pages by default, so the server's
            // RSS grew with every job written; past this bound older records
            // are read back from the OS page cache. (64 MiB cost ~9% more
            // CPU per sync request in eviction work; 256 MiB costs nothing
            // measurable in a 10 s benchmark.)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let store = Self {
            processes: db.open_tree("processes")?,
            modules: db.open_tree("modules")?,
            jobs: db.open_tree("jobs")?,
            index: db.open_tree("job_index")?,
            results: db.open_tree("results")?,
            durability: Durability::default(),
            running_sync: Mutex::default(),
            sync_writes: [const { Mutex::new(()) }; SYNC_WRITE_STRIPES],
            pending: Mutex::default(),
            queue: Mutex::default(),
            queued: AtomicUsize::new(0),
            queue_wake: Notify::new(),
            events: broadcast::channel(256).0,
            module_touched: Mutex::default(),
            opened: std::time::Instant::now(),
            blocking: TaskTracker::new(),
            db,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Bring an older database to [`SCHEMA_VERSION`]; refuse a newer one.
    ///
    /// The version is written only after the re-index, and flushed: a
    /// crash during the re-index leaves the database without a version,
    /// and the next open re-indexes again. Index writes are idempotent (a
    /// key set twice is one key), so doing it twice is harmless.
    fn migrate(&self) -> Result<(), StoreError> {
        let meta = self.db.open_tree("meta")?;
        let found = match meta.get("schema_version")? {
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(0),
            // No version: a new database (nothing to index) or a version-1
            // one (jobs but no `job_index`).
            None => 1,
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < 2 {
            // Version 1 kept `jobs_by_created` and `active`; build
            // `job_index` from the records themselves.
            for entry in self.jobs.iter() {
                let (_, value) = entry?;
                let job: JobRecord = serde_json::from_slice(&value)?;
                self.write_index(&job)?;
            }
            self.db.drop_tree("jobs_by_created")?;
            self.db.drop_tree("active")?;
        }
        meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Events (only ever [`StoreEvent::JobDismissed`] here: one node).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Woken when a job enters the queue.
    pub(crate) fn queue_wake(&self) -> &Notify {
        &self.queue_wake
    }

    /// Wait until every write made so far is on disk (group commit, see
    /// `durability`). Only for writes a client is told about: the others
    /// reach the disk with sled's own periodic flush.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(self.durability.flush(&self.db, &self.blocking).await?)
    }

    // ---- processes and modules -------------------------------------------

    /// Note that a module was just used (before writing anything that
    /// refers to it, so a concurrent collection spares it).
    fn touch_module(&self, sha256: &str) {
        lock(&self.module_touched).insert(sha256.to_owned(), std::time::Instant::now());
    }

    /// Touch the module of process `id`, if any (it is being replaced or
    /// undeployed; jobs accepted meanwhile may still need it).
    fn touch_module_of(&self, id: &str) -> Result<(), StoreError> {
        if let Some(bytes) = self.processes.get(id.as_bytes())? {
            let old: ProcessRecord = serde_json::from_slice(&bytes)?;
            self.touch_module(&old.module_sha256);
        }
        Ok(())
    }

    /// Store the module bytes of `record` under their hash (storing them
    /// again is harmless), touched first so that a collection running
    /// meanwhile spares them.
    fn put_module(&self, record: &ProcessRecord, wasm: &[u8]) -> Result<(), StoreError> {
        self.touch_module(&record.module_sha256);
        self.modules.insert(record.module_sha256.as_bytes(), wasm)?;
        Ok(())
    }

    /// Whether the store can answer now: always, for sled. The database is
    /// in this process, and what can go wrong with it (a full disk, an I/O
    /// error) shows on a write, which answers its own request with the
    /// error; a ping has nothing to reach.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Wait until no blocking task of this store runs (at most 10 s): once
    /// the server's last handle on the store is then dropped, sled's
    /// directory lock is free for the next process, or for a server started
    /// again in this one. Closing the tracker only lets `wait` return once
    /// it is empty; the server calls this after its requests and jobs have
    /// stopped, so nothing spawns new blocking work meanwhile.
    pub(crate) async fn close(&self) {
        const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
        self.blocking.close();
        if tokio::time::timeout(LIMIT, self.blocking.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.blocking.len(),
                "sled: blocking tasks still running {LIMIT:?} after shutdown; \
                 the database stays locked until they end"
            );
        }
    }

    /// Write a process as `how` says: touch the module the id used (a
    /// replace or an install; jobs accepted under it may still need it),
    /// store the new module's bytes (keyed by their hash, so storing them
    /// again is harmless), then write the record in one atomic sled step,
    /// and flush when it went in. The step per kind:
    ///
    /// - deploy: a compare-and-swap from nothing, which makes two
    ///   concurrent deploys of one id agree on a single winner (the
    ///   loser's module bytes, if new, wait for a collection);
    /// - replace: one `fetch_and_update` whose closure checks mutability
    ///   on the value being replaced, so a concurrent install that made
    ///   the process immutable cannot be overwritten (an immutable record
    ///   is written back unchanged);
    /// - install: an overwrite.
    pub(crate) async fn write_process(
        &self,
        record: &ProcessRecord,
        wasm: &[u8],
        how: ProcessWrite,
    ) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(record)?;
        let key = record.id.as_bytes();
        if how != ProcessWrite::Deploy {
            self.touch_module_of(&record.id)?;
        }
        self.put_module(record, wasm)?;
        let written = match how {
            ProcessWrite::Deploy => self
                .processes
                .compare_and_swap(key, None::<&[u8]>, Some(value))?
                .is_ok(),
            ProcessWrite::Replace => {
                let mut replaced = false;
                self.processes.fetch_and_update(key, |old| {
                    let old = old?;
                    let mutable =
                        serde_json::from_slice::<ProcessRecord>(old).is_ok_and(|p| p.mutable);
                    replaced = mutable;
                    Some(if mutable { value.clone() } else { old.to_vec() })
                })?;
                replaced
            }
            ProcessWrite::Install => {
                self.processes.insert(key, value)?;
                true
            }
        };
        if written {
            self.flush().await?;
        }
        Ok(written)
    }

    /// A process by id (one key lookup).
    pub(crate) async fn get_process(&self, id: &str) -> Result<Option<ProcessRecord>, StoreError> {
        match self.processes.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every process, in id order: sled iterates keys in byte order, so
    /// this is the byte order of the ids.
    pub(crate) async fn list_processes(&self) -> Result<Vec<ProcessRecord>, StoreError> {
        self.processes
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    /// Undeploy a mutable process: touch its module, then remove the record
    /// in one `fetch_and_update` that keeps an immutable one (the closure
    /// returns it unchanged) and removes a mutable one (it returns `None`).
    /// The module bytes stay until a collection finds them unused.
    pub(crate) async fn delete_process(&self, id: &str) -> Result<bool, StoreError> {
        self.touch_module_of(id)?;
        let mut deleted = false;
        self.processes.fetch_and_update(id.as_bytes(), |old| {
            let old = old?;
            let mutable = serde_json::from_slice::<ProcessRecord>(old).is_ok_and(|p| p.mutable);
            deleted = mutable;
            (!mutable).then(|| old.to_vec())
        })?;
        if deleted {
            self.flush().await?;
        }
        Ok(deleted)
    }

    /// Module bytes by sha256 (hex).
    pub(crate) async fn get_module(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.modules.get(sha256.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Delete the modules no process and no queued or running job uses
    /// and nobody touched for `grace`; returns their sha256s.
    ///
    /// The modules in use: every process's, every job's in the `A` index
    /// (accepted or running async jobs; a few, not the job table) and
    /// every running sync job's. A deploy or replace touches its module
    /// before writing it, so a collection running meanwhile spares it.
    pub(crate) async fn collect_modules(
        &self,
        grace: std::time::Duration,
    ) -> Result<Vec<String>, StoreError> {
        let mut used = std::collections::HashSet::new();
        for value in self.processes.iter().values() {
            let process: ProcessRecord = serde_json::from_slice(&value?)?;
            used.insert(process.module_sha256);
        }
        for key in self.index.scan_prefix([index::ACTIVE]).keys() {
            let Some(id) = index::id_of(&key?) else {
                continue;
            };
            if let Some(value) = self.jobs.get(id.as_bytes())? {
                let job: JobRecord = serde_json::from_slice(&value)?;
                used.insert(job.module_sha256);
            }
        }
        used.extend(
            lock(&self.running_sync)
                .values()
                .map(|job| job.module_sha256.clone()),
        );
        let mut collected = Vec::new();
        for key in self.modules.iter().keys() {
            let key = key?;
            let sha256 = String::from_utf8_lossy(&key).into_owned();
            if used.contains(&sha256) {
                continue;
            }
            let last = lock(&self.module_touched)
                .get(&sha256)
                .copied()
                .unwrap_or(self.opened);
            if last.elapsed() < grace {
                continue;
            }
            self.modules.remove(&key)?;
            lock(&self.module_touched).remove(&sha256);
            collected.push(sha256);
        }
        if !collected.is_empty() {
            self.flush().await?;
        }
        Ok(collected)
    }
}
