//! The processes the server offers, loaded and ready to run.
//!
//! A `BTreeMap` behind a `std::sync::RwLock` maps process id →
//! [`RegisteredProcess`] (compiled module, effective description, input
//! rules, limits). The lock is only held to clone an `Arc` out, never across
//! an `.await`. Modules are also kept by sha256 so a job keeps running the
//! version it was accepted for even after its process is replaced.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::Utc;
use serde_json::Value;

use super::validate::{DescriptionError, InputValidator};
use crate::config::Config;
use crate::ogc::{ASYNC_EXECUTE, SYNC_EXECUTE};
use crate::runtime::{Limits, LoadError, ProcessModule, Runtime, module_sha256};
use crate::store::{ProcessRecord, Store, StoreError};

/// Why a module could not be registered as a process.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The module is not a usable component.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Its description is unusable.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// Storing it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A process ready to run.
#[derive(Debug)]
pub struct RegisteredProcess {
    /// The stored record.
    pub record: ProcessRecord,
    /// The compiled module.
    pub module: ProcessModule,
    /// `jobControlOptions` after the server's per-process overrides.
    pub job_control_options: Vec<String>,
    /// Compiled input rules.
    pub validator: Arc<InputValidator>,
    /// Limits of this process's jobs.
    pub limits: Limits,
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
    processes: RwLock<BTreeMap<String, Arc<RegisteredProcess>>>,
    modules: RwLock<HashMap<String, ProcessModule>>,
    runtime: Runtime,
    store: Store,
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
    pub fn new(runtime: Runtime, store: Store, config: Arc<Config>) -> Self {
        Self {
            processes: RwLock::new(BTreeMap::new()),
            modules: RwLock::new(HashMap::new()),
            runtime,
            store,
            config,
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

    /// Compile, describe, check and store a module, then offer it.
    /// Replaces a process with the same id.
    pub async fn register(
        &self,
        wasm: Vec<u8>,
        mutable: bool,
    ) -> Result<Arc<RegisteredProcess>, RegisterError> {
        let sha256 = module_sha256(&wasm);
        let module = self.runtime.load(wasm.clone()).await?;
        let description = module.description().clone();
        let id = check_description(&description)?;
        let validator = Arc::new(InputValidator::new(&description)?);
        self.store.put_module(&sha256, &wasm)?;
        let record = ProcessRecord {
            id: id.clone(),
            description,
            module_sha256: sha256.clone(),
            mutable,
            deployed: Utc::now(),
        };
        self.store.put_process(&record)?;
        let process = Arc::new(self.build(record, module.clone(), validator));
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sha256, module);
        self.processes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, process.clone());
        Ok(process)
    }

    fn build(
        &self,
        record: ProcessRecord,
        module: ProcessModule,
        validator: Arc<InputValidator>,
    ) -> RegisteredProcess {
        let overrides = self.config.processes.get(&record.id);
        let job_control_options = overrides
            .and_then(|o| o.job_control_options.clone())
            .or_else(|| {
                record
                    .description
                    .get("jobControlOptions")
                    .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            })
            .unwrap_or_else(|| vec![SYNC_EXECUTE.into(), ASYNC_EXECUTE.into()]);
        let limits = self.config.limits_for(&record.id);
        RegisteredProcess {
            record,
            module,
            job_control_options,
            validator,
            limits,
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
        let Some(wasm) = self.store.get_module(sha256)? else {
            return Ok(None);
        };
        let module = self.runtime.load(wasm).await?;
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sha256.to_owned(), module.clone());
        Ok(Some(module))
    }
}
