//! The processes the server offers, loaded and ready to run.
//!
//! A `BTreeMap` behind a `std::sync::RwLock` maps process id →
//! [`RegisteredProcess`] (compiled module, effective description, input
//! rules, limits). The lock is only held to clone an `Arc` out, never across
//! an `.await`. Modules are also kept by sha256 so a job keeps running the
//! version it was accepted for even after its process is replaced.
//!
//! # Where a process comes from
//! - **Built-ins** (compiled into the binary) and the **processes
//!   directory** are installed at start-up as immutable processes.
//! - **Deployed** processes (Part 2) are stored with their module bytes
//!   and restored at start-up, or when another node announces a change.
//! - The effective description is the module's `describe()`, or the one in
//!   the deployer's application package; the effective `jobControlOptions`
//!   and limits add the server's per-process overrides on top.
//!
//! # Register: check everything, then let the store decide
//! [`ProcessRegistry::register`] loads the module (compile or artifact
//! cache, then `describe()`, on the job executor), checks the description
//! against the OGC schema and the server's own rules (id syntax, a
//! version, input schemas that compile), and only then writes. The store
//! decides atomically whether the id is free (deploy) or a mutable
//! process (replace), for every node sharing it, and the write is durable
//! before the client hears 201 or 204. Only after that is the process
//! offered here, so no request sees a version the store does not have.
//!
//! # What is kept in memory, and for how long
//! Registered processes until undeployed or replaced; compiled modules by
//! sha256 until a collection finds no offered process using them
//! ([`ProcessRegistry::collect_unused_modules`], which also deletes the
//! unused module bytes from the store after `execution.module_grace`);
//! input rules by (process, sha256) for the life of the server, because
//! a job accepted before a replace must be checked by the rules it was
//! accepted under, which a deployer's description may have set.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::Utc;
use serde_json::Value;

use super::inline::InlineHistory;
use super::nested::TreeBounds;
use super::validate::{DescriptionError, InputValidator};
use super::workflow::{Workflow, check_cycles, describe};
use crate::config::Config;
use crate::ogc::{
    ASYNC_EXECUTE, DISMISS, InvalidDescription, SYNC_EXECUTE, check_process_description,
};
use crate::runtime::{Limits, LoadError, ProcessModule, Runtime, module_sha256};
use crate::store::{ProcessRecord, ProcessWrite, Store, StoreError};

/// Why a module could not be registered as a process.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Deploy: a process with this id exists.
    #[error("a process with id '{0}' already exists")]
    Duplicate(String),
    /// Replace or undeploy of a built-in process.
    #[error("process '{0}' is built in and cannot be replaced or undeployed")]
    Immutable(String),
    /// Replace or undeploy of an unknown process.
    #[error("there is no process '{0}'")]
    NotFound(String),
    /// Replace with a module that describes another id.
    #[error("the new module describes process '{found}', not '{expected}'")]
    IdMismatch {
        /// The id in the path.
        expected: String,
        /// The id in the description.
        found: String,
    },
    /// The module is not a usable component.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Its description is unusable.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// Its description does not have the shape of OGC's `process.yaml`, or
    /// says what no request could use (an input's `minOccurs` above its
    /// `maxOccurs`, an output schema that does not compile). The deploying
    /// client gets a 400 `invalid-request` with this text, which begins
    /// `invalid process description: ` as [`DescriptionError`]'s does.
    #[error("invalid process description: {0}")]
    InvalidDescription(#[from] InvalidDescription),
    /// A workflow's document is unusable (or would make a cycle).
    #[error(transparent)]
    Workflow(#[from] super::workflow::WorkflowError),
    /// Storing it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a process runs.
#[derive(Debug, Clone)]
pub enum Executable {
    /// A component, compiled.
    Component(ProcessModule),
    /// A deployed workflow: its jobs run its top process
    /// (`jobs/workflow.rs`).
    Workflow(Arc<Workflow>),
}

/// What to do when the id is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Deploy: fail with [`RegisterError::Duplicate`] when taken.
    Deploy,
    /// Replace this mutable process; the new module must describe the same id.
    Replace(String),
    /// Built-ins and the processes directory: take the id.
    Install,
}

/// How to register a module.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Whether it can later be replaced or undeployed.
    pub mutable: bool,
    /// A description that overrides the module's `describe()`.
    pub description: Option<Value>,
    /// Job limits for this process (capped by the server).
    pub limits: Option<Limits>,
    /// `jobControlOptions` overriding the description's.
    pub job_control_options: Option<Vec<String>>,
    /// What to do when the id is taken.
    pub policy: Policy,
}

impl Registration {
    /// A built-in or processes-directory module: immutable, as described.
    pub fn builtin() -> Self {
        Self {
            mutable: false,
            description: None,
            limits: None,
            job_control_options: None,
            policy: Policy::Install,
        }
    }
}

/// A process ready to run.
#[derive(Debug)]
pub struct RegisteredProcess {
    /// The stored record.
    pub record: ProcessRecord,
    /// What it runs: a compiled component, or a workflow.
    pub executable: Executable,
    /// `jobControlOptions` after the server's per-process overrides.
    pub job_control_options: Vec<String>,
    /// Compiled input rules.
    pub validator: Arc<InputValidator>,
    /// Limits of this process's jobs.
    pub limits: Limits,
    /// How its sync jobs' first slices went: whether the next may start
    /// on the HTTP thread ([`InlineHistory`]).
    pub inline: Arc<InlineHistory>,
}

impl RegisteredProcess {
    /// The process id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Whether `option` (e.g. `async-execute`) is in the effective
    /// `jobControlOptions`.
    pub fn supports(&self, option: &str) -> bool {
        self.job_control_options.iter().any(|o| o == option)
    }

    /// The description as served: the module's, with the effective
    /// `jobControlOptions`.
    pub fn description(&self) -> Value {
        let mut description = self.record.description.clone();
        if let Value::Object(fields) = &mut description {
            fields.insert(
                "jobControlOptions".into(),
                Value::from(self.job_control_options.clone()),
            );
        }
        description
    }
}

/// Every registered process.
pub struct ProcessRegistry {
    /// The processes offered now, by id: what listings, descriptions and
    /// new jobs see.
    processes: RwLock<BTreeMap<String, Arc<RegisteredProcess>>>,
    /// Compiled components by module sha256: those of the offered
    /// processes, and older versions loaded again for queued jobs until
    /// the next collection forgets them.
    modules: RwLock<HashMap<String, ProcessModule>>,
    /// Input rules of every (process id, module sha256) registered since
    /// start-up, for jobs accepted before a replace or undeploy.
    validators: RwLock<HashMap<(String, String), Arc<InputValidator>>>,
    runtime: Runtime,
    /// The job executor, where modules are loaded: loading runs the
    /// guest's `describe()`, and guest code never runs on the HTTP
    /// runtime's threads (a slow or hostile `describe()` would hold up
    /// status reads, as a slow job would).
    executor: tokio::runtime::Handle,
    /// Where deployed processes and module bytes are kept; it decides
    /// deploys and replaces atomically for every node sharing it.
    store: Store,
    /// Per-process overrides (`jobControlOptions`, limits), the server's
    /// caps on limits, and the bounds of trees of nested processes.
    config: Arc<Config>,
}

/// Check the parts of a description the server relies on.
fn check_description(description: &Value) -> Result<String, DescriptionError> {
    let id = description
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| DescriptionError("missing string `id`".into()))?;
    let valid_id = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if !valid_id {
        return Err(DescriptionError(format!(
            "id '{id}' must be 1–128 characters of A–Z, a–z, 0–9, '-', '_', '.'"
        )));
    }
    if description.get("version").and_then(Value::as_str).is_none() {
        return Err(DescriptionError("missing string `version`".into()));
    }
    Ok(id.to_owned())
}

impl ProcessRegistry {
    /// An empty registry.
    pub fn new(
        runtime: Runtime,
        executor: tokio::runtime::Handle,
        store: Store,
        config: Arc<Config>,
    ) -> Self {
        Self {
            processes: RwLock::new(BTreeMap::new()),
            modules: RwLock::new(HashMap::new()),
            validators: RwLock::new(HashMap::new()),
            runtime,
            executor,
            store,
            config,
        }
    }

    /// Compile (or take from the artifact cache), link and describe a
    /// module on the job executor (see [`ProcessRegistry::executor`]).
    async fn load(&self, wasm: Vec<u8>) -> Result<ProcessModule, LoadError> {
        let runtime = self.runtime.clone();
        match self
            .executor
            .spawn(async move { runtime.load(wasm).await })
            .await
        {
            Ok(loaded) => loaded,
            // Only when the executor shuts down under the load.
            Err(join) => Err(LoadError::Compile(format!(
                "the loading task ended early: {join}"
            ))),
        }
    }

    /// A process by id.
    pub fn get(&self, id: &str) -> Option<Arc<RegisteredProcess>> {
        self.processes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Every process, ordered by id.
    pub fn list(&self) -> Vec<Arc<RegisteredProcess>> {
        self.processes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Fail early (before compiling) when `id` cannot be replaced or
    /// undeployed.
    pub fn check_mutable(&self, id: &str) -> Result<Arc<RegisteredProcess>, RegisterError> {
        let process = self
            .get(id)
            .ok_or_else(|| RegisterError::NotFound(id.to_owned()))?;
        if !process.record.mutable {
            return Err(RegisterError::Immutable(id.to_owned()));
        }
        Ok(process)
    }

    /// Compile, describe, check and store a module, then offer it.
    ///
    /// The module is loaded first (on the executor: its `describe()` is
    /// guest code); the description used is the deployer's when given,
    /// else the module's own, and must pass the OGC schema, the id and
    /// version rules, and compile into input rules. Only then is anything
    /// written ([`Policy`] says how), and only once the write is durable
    /// is the process offered here; other nodes load a deployed one when
    /// they hear the store's event. Nothing is written when a check fails.
    pub async fn register(
        &self,
        wasm: Vec<u8>,
        registration: Registration,
    ) -> Result<Arc<RegisteredProcess>, RegisterError> {
        let sha256 = module_sha256(&wasm);
        let module = self.load(wasm.clone()).await?;
        let overridden = registration.description.is_some();
        let description = registration
            .description
            .unwrap_or_else(|| module.description().clone());
        check_process_description(&description)?;
        let id = check_description(&description)?;
        let validator = Arc::new(InputValidator::new(&description)?);
        let record = ProcessRecord {
            id: id.clone(),
            description,
            module_sha256: sha256.clone(),
            mutable: registration.mutable,
            deployed: Utc::now(),
            description_overridden: overridden,
            limits: registration.limits,
            job_control_options: registration.job_control_options,
            workflow: None,
        };
        let process =
            Arc::new(self.build(record.clone(), Executable::Component(module), validator));
        let offered = self
            .store_and_offer(&record, &wasm, &registration.policy, process)
            .await;
        // The module's bytes, and the store's copies of them, are freed here.
        drop(wasm);
        crate::runtime::release_freed_memory();
        offered
    }

    /// Check, describe and store a deployable workflow (see
    /// [`super::workflow`]), then offer it. Its document is stored as its
    /// module; `base_url` is how this server's URLs of processes begin.
    pub async fn register_workflow(
        &self,
        document: Value,
        registration: Registration,
        base_url: &str,
    ) -> Result<Arc<RegisteredProcess>, RegisterError> {
        let workflow = Workflow::parse(&document)?;
        let id = registration
            .description
            .as_ref()
            .and_then(|d| d.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        check_cycles(self, base_url, &id, &workflow)?;
        let description = describe(
            self,
            base_url,
            self.tree_bounds(),
            &workflow,
            registration.description,
        )?;
        check_process_description(&description)?;
        let id = check_description(&description)?;
        let validator = Arc::new(InputValidator::new(&description)?);
        let bytes = serde_json::to_vec(&document).unwrap_or_default();
        let record = ProcessRecord {
            id,
            description,
            module_sha256: module_sha256(&bytes),
            mutable: registration.mutable,
            deployed: Utc::now(),
            description_overridden: true,
            limits: registration.limits,
            job_control_options: registration.job_control_options,
            workflow: Some(document),
        };
        let executable = Executable::Workflow(Arc::new(workflow));
        let process = Arc::new(self.build(record.clone(), executable, validator));
        self.store_and_offer(&record, &bytes, &registration.policy, process)
            .await
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The bounds of a tree of nested processes, from the configuration.
    pub fn tree_bounds(&self) -> TreeBounds {
        let execution = &self.config.execution;
        TreeBounds {
            max_depth: execution.max_nesting_depth,
            max_steps: execution.max_nested_steps,
            max_map_elements: execution.max_map_elements,
        }
    }

    /// Store `record` (with its module `bytes`) as `policy` says, then
    /// offer `process`.
    ///
    /// The store decides atomically whether the id is free (deploy) or a
    /// mutable process (replace), for every node sharing it; the write
    /// is durable before the client hears 201/204, so a kill -9 right
    /// after cannot bring back the old version (or nothing).
    async fn store_and_offer(
        &self,
        record: &ProcessRecord,
        bytes: &[u8],
        policy: &Policy,
        process: Arc<RegisteredProcess>,
    ) -> Result<Arc<RegisteredProcess>, RegisterError> {
        let id = record.id.clone();
        match policy {
            Policy::Deploy => {
                if !self
                    .store
                    .write_process(record, bytes, ProcessWrite::Deploy)
                    .await?
                {
                    return Err(RegisterError::Duplicate(id));
                }
            }
            Policy::Replace(expected) => {
                if expected != &id {
                    return Err(RegisterError::IdMismatch {
                        expected: expected.clone(),
                        found: id,
                    });
                }
                if !self
                    .store
                    .write_process(record, bytes, ProcessWrite::Replace)
                    .await?
                {
                    return Err(match self.store.get_process(&id).await? {
                        Some(_) => RegisterError::Immutable(id),
                        None => RegisterError::NotFound(id),
                    });
                }
            }
            Policy::Install => {
                // A built-in or a file of the processes directory takes its
                // id over whatever the store holds; a process an admin
                // deployed under that id is replaced, and says so.
                if let Some(deployed) = self.store.get_process(&id).await?
                    && deployed.mutable
                {
                    tracing::warn!(
                        process = %id,
                        "a built-in or processes-directory module takes the id of a deployed process, which it replaces"
                    );
                }
                self.store
                    .write_process(record, bytes, ProcessWrite::Install)
                    .await?;
            }
        }
        self.offer(process.clone());
        if matches!(policy, Policy::Replace(_)) {
            self.collect_after_change().await;
        }
        Ok(process)
    }

    /// The process a job of `workflow` runs when its top process is the
    /// component `top` (see [`super::workflow::expand`]); the top
    /// process's rules are kept under the job's (workflow id, module), so
    /// that the job is checked by them when it runs.
    pub(super) fn runner(
        &self,
        workflow: &RegisteredProcess,
        top: &RegisteredProcess,
        deployed: chrono::DateTime<Utc>,
    ) -> Arc<RegisteredProcess> {
        let record = super::workflow::runner_record(workflow, top, deployed);
        self.validators
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (record.id.clone(), record.module_sha256.clone()),
                top.validator.clone(),
            );
        Arc::new(RegisteredProcess {
            record,
            executable: top.executable.clone(),
            job_control_options: workflow.job_control_options.clone(),
            validator: top.validator.clone(),
            limits: top.limits,
            // The top process runs: its history, not a fresh one per job.
            inline: top.inline.clone(),
        })
    }

    /// The input rules of the process offered now whose module is
    /// `sha256`, if any (for a queued job of a workflow after a restart).
    pub fn validator_of_module(&self, sha256: &str) -> Option<Arc<InputValidator>> {
        self.processes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .find(|p| p.record.module_sha256 == sha256)
            .map(|p| p.validator.clone())
    }

    /// After a replace or undeploy: collect what became unused (once its
    /// grace has passed). A failure is logged, not the caller's: the
    /// change itself is durable, and the retention sweep tries again.
    async fn collect_after_change(&self) {
        if let Err(error) = self.collect_unused_modules().await {
            tracing::warn!(%error, "module collection failed; the retention sweep retries");
        }
    }

    /// Make a process available here (a component's module kept by
    /// sha256).
    fn offer(&self, process: Arc<RegisteredProcess>) {
        // Its rules are kept for its jobs only now that the store took it:
        // a refused registration of the same module must not replace the
        // rules of the live process's queued jobs.
        self.validators
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (
                    process.record.id.clone(),
                    process.record.module_sha256.clone(),
                ),
                process.validator.clone(),
            );
        if let Executable::Component(module) = &process.executable {
            self.modules
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(process.record.module_sha256.clone(), module.clone());
        }
        self.processes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(process.record.id.clone(), process);
    }

    /// Remove a mutable process, durably. Its module stays stored, so jobs
    /// already accepted still run; its finished jobs stay readable.
    pub async fn undeploy(&self, id: &str) -> Result<(), RegisterError> {
        if let Some(p) = self.get(id)
            && !p.record.mutable
        {
            return Err(RegisterError::Immutable(id.to_owned()));
        }
        if !self.store.delete_process(id).await? {
            return Err(match self.store.get_process(id).await? {
                Some(_) => RegisterError::Immutable(id.to_owned()),
                None => RegisterError::NotFound(id.to_owned()),
            });
        }
        self.processes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        self.collect_after_change().await;
        Ok(())
    }

    /// Delete from the store the module bytes nothing uses any more (see
    /// [`Store::collect_modules`], `execution.module_grace`), and forget
    /// here the compiled modules of versions no process offers now (the
    /// big part: a compiled Python component holds tens of MiB). A queued
    /// job of a forgotten version loads it again from the store (it is
    /// still there: the job uses it); a running one holds its own
    /// reference. The input rules of old versions stay (they are small,
    /// and a deployer's description may have set them). Returns how many
    /// modules left the store.
    pub async fn collect_unused_modules(&self) -> Result<usize, RegisterError> {
        let collected = self
            .store
            .collect_modules(self.config.execution.module_grace)
            .await?;
        let offered: std::collections::HashSet<String> = self
            .list()
            .iter()
            .map(|p| p.record.module_sha256.clone())
            .collect();
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|sha256, _| offered.contains(sha256));
        if !collected.is_empty() {
            tracing::info!(modules = ?collected, "deleted module bytes no process or live job uses");
        }
        Ok(collected.len())
    }

    /// Offer again the deployed (mutable) processes in the store: those of
    /// an earlier run, or deployed on another node. Their modules load from
    /// the artifact cache when this node compiled them before. A process
    /// that no longer loads is logged and skipped; an id taken by a
    /// built-in stays the built-in's.
    pub async fn restore_deployed(&self) -> Result<usize, RegisterError> {
        let mut restored = 0;
        for record in self.store.list_processes().await? {
            if !record.mutable || self.get(&record.id).is_some() {
                continue;
            }
            if self.load_record(record).await {
                restored += 1;
            }
        }
        Ok(restored)
    }

    /// Bring one process in step with the store (another node deployed,
    /// replaced or undeployed it). Errors are logged: the next event or
    /// resynchronisation tries again.
    pub async fn reload(&self, id: &str) {
        match self.store.get_process(id).await {
            Ok(Some(record)) => {
                let current = self.get(id);
                let unchanged = current.as_ref().is_some_and(|p| {
                    p.record.module_sha256 == record.module_sha256
                        && p.record.deployed == record.deployed
                });
                if !unchanged && record.mutable {
                    self.load_record(record).await;
                }
            }
            Ok(None) => {
                let mut processes = self
                    .processes
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if processes.get(id).is_some_and(|p| p.record.mutable) {
                    processes.remove(id);
                }
            }
            Err(error) => tracing::warn!(process = id, %error, "cannot reload process"),
        }
    }

    /// Bring every process in step with the store (after notifications may
    /// have been missed).
    pub async fn reload_all(&self) {
        let records = match self.store.list_processes().await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "cannot reload processes");
                return;
            }
        };
        let stored: std::collections::HashSet<String> =
            records.iter().map(|r| r.id.clone()).collect();
        for record in records {
            self.reload(&record.id).await;
        }
        self.processes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|id, p| !p.record.mutable || stored.contains(id));
    }

    /// Load a stored record's module and rules and offer it; `false` (and
    /// logged) when it does not load.
    async fn load_record(&self, record: ProcessRecord) -> bool {
        let executable = match &record.workflow {
            Some(document) => Workflow::parse(document)
                .map(|w| Executable::Workflow(Arc::new(w)))
                .map_err(RegisterError::from),
            None => match self.module_for(&record.module_sha256).await {
                Ok(Some(module)) => Ok(Executable::Component(module)),
                Ok(None) => Err(RegisterError::NotFound(record.module_sha256.clone())),
                Err(e) => Err(e),
            },
        };
        let loaded = executable.and_then(|executable| {
            InputValidator::new(&record.description)
                .map(|v| (executable, Arc::new(v)))
                .map_err(RegisterError::from)
        });
        match loaded {
            Ok((executable, validator)) => {
                let id = record.id.clone();
                let process = Arc::new(self.build(record, executable, validator));
                self.offer(process);
                tracing::debug!(process = %id, "process loaded from the store");
                true
            }
            Err(e) => {
                tracing::error!(process = %record.id, error = %e, "cannot load deployed process");
                false
            }
        }
    }

    /// The input rules a job of `id` running module `sha256` was accepted
    /// under, if that version was registered since start-up.
    pub fn validator_for(&self, id: &str, sha256: &str) -> Option<Arc<InputValidator>> {
        self.validators
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(id.to_owned(), sha256.to_owned()))
            .cloned()
    }

    /// A process from its record: the effective `jobControlOptions` (the
    /// server's override, else the deployer's, else the description's,
    /// else every mode and dismissal) and limits (a deployer's, capped by
    /// `limits.max`, unless the server overrides them; else the server's
    /// for this id). Its rules are remembered for the jobs of this version
    /// only when it is offered (`offer`), after the store accepted it.
    fn build(
        &self,
        record: ProcessRecord,
        executable: Executable,
        validator: Arc<InputValidator>,
    ) -> RegisteredProcess {
        let overrides = self.config.processes.get(&record.id);
        let job_control_options = overrides
            .and_then(|o| o.job_control_options.clone())
            .or_else(|| record.job_control_options.clone())
            .or_else(|| {
                record
                    .description
                    .get("jobControlOptions")
                    .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            })
            // Said nothing: every mode, and dismissable (a sandboxed job
            // can always be stopped).
            .unwrap_or_else(|| vec![SYNC_EXECUTE.into(), ASYNC_EXECUTE.into(), DISMISS.into()]);
        let limits = match (overrides.and_then(|o| o.limits), record.limits) {
            (None, Some(deployed)) => deployed.capped_by(&self.config.limits.max),
            _ => self.config.limits_for(&record.id),
        };
        RegisteredProcess {
            record,
            executable,
            job_control_options,
            validator,
            limits,
            inline: Arc::default(),
        }
    }

    /// The module with this sha256: loaded already, or compiled (from the
    /// artifact cache) from the stored bytes.
    pub async fn module_for(&self, sha256: &str) -> Result<Option<ProcessModule>, RegisterError> {
        if let Some(module) = self
            .modules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sha256)
        {
            return Ok(Some(module.clone()));
        }
        let Some(wasm) = self.store.get_module(sha256).await? else {
            return Ok(None);
        };
        let module = self.load(wasm).await?;
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sha256.to_owned(), module.clone());
        Ok(Some(module))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::runtime::RuntimeConfig;
    use crate::store::NodeIdentity;

    /// A registry on a sled store in `dir`, loading on `executor`.
    async fn registry(dir: &std::path::Path, executor: tokio::runtime::Handle) -> ProcessRegistry {
        let node = NodeIdentity::new("test", std::time::Duration::from_secs(10), 3);
        let store = Store::open(&StoreConfig::default(), dir, node)
            .await
            .expect("sled store");
        let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
        ProcessRegistry::new(runtime, executor, store, Arc::new(Config::default()))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn modules_are_loaded_and_described_on_the_job_executor() {
        let hello = crate::builtin::BUILTIN_PROCESSES[0].wasm.to_vec();
        let dir = tempfile::tempdir().expect("temporary directory");
        let executor = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("executor");
        let registry = registry(dir.path(), executor.handle().clone()).await;
        let module = registry.load(hello.clone()).await.expect("loaded");
        assert_eq!(module.description()["id"], "hello-world");
        // With the executor stopped, nothing loads: `describe()` does not
        // fall back to the caller's (the HTTP) runtime.
        executor.shutdown_background();
        let refused = registry.load(hello).await;
        assert!(
            matches!(&refused, Err(LoadError::Compile(reason)) if reason.contains("ended early")),
            "{refused:?}"
        );
    }
}
