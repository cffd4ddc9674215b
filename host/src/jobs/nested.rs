//! Nested processes (OGC API - Processes Part 3, draft, conformance class
//! [`NESTED_PROCESSES`]): an input value may itself be the execution of a
//! process on this server,
//!
//! ```json
//! {"inputs": {"stringInput": {"process": "hello-world",
//!                             "inputs": {"name": "Joe"}}}}
//! ```
//!
//! and the job gets that process's output as the input's value. The
//! `process` is an id, or this server's URL of a process
//! (`…/processes/{id}`); `outputs` may select the one output to use (a
//! process with a single output needs no selection). Nesting goes to any
//! depth up to `execution.max_nesting_depth`, with at most
//! `execution.max_nested_steps` steps in one request.
//!
//! # Checked before anything runs
//! [`check_tree`] walks the whole request when it arrives: every nested
//! process must exist, its inputs must pass its own description (nested
//! values standing in for what they will produce), and its output must be
//! selectable. A refusal is a 400 whose detail is the path of the faulty
//! part, e.g. `inputs.stringInput.process.inputs: input 'name' is
//! required`, and nothing runs. What cannot be known before the steps run
//! — whether a step's output will satisfy the input's schema — is checked
//! when the value arrives, like a fetched `href`.
//!
//! # How a tree runs
//! A job whose inputs hold nested processes gives its worker back before
//! they run ([`super::run`]), and takes one again once every input has its
//! value. Each nested process is a job of its own ([`run_steps`]): run on
//! this node like a synchronous job (it takes a worker, has its own limits
//! and sandbox, is listed in `/jobs` and owned by the parent's owner), its
//! record pointing `up` to the parent and the parent's final record
//! listing its steps. The steps of one job run concurrently, so
//! independent branches proceed in parallel as far as the workers allow;
//! since a job waiting for its steps holds no worker, a tree never
//! deadlocks however many parents wait. Each step's own nested inputs are
//! resolved the same way when it runs, so deeper levels run before the
//! ones above them.
//!
//! A step that fails fails its parent, with a reason naming the step's
//! path and job. Dismissing a job dismisses its running steps (and theirs).
//!
//! Not done yet (see the README): deployable workflows, fan-out over
//! arrays, remote steps, a total fuel and time budget for a whole tree,
//! progress aggregated from the steps, and checking at submission that a
//! step's output schema can satisfy the input's.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::registry::ProcessRegistry;
use super::scheduler::{Inner, JobOwner, Scheduler};
use super::validate::{InputValidator, InvalidInput, Occurrence, classify};
use crate::failure::FailureKind;
use crate::ogc::ExecuteRequest;
use crate::runtime::OutputValue;
use crate::store::{JobRecord, Step};

/// The conformance class of nested processes (Part 3 draft).
pub const NESTED_PROCESSES: &str =
    "http://www.opengis.net/spec/ogcapi-processes-3/1.0/conf/nested-processes";

/// The bounds on one request's tree of nested processes.
#[derive(Debug, Clone, Copy)]
pub struct TreeBounds {
    /// Deepest nesting (the top process is depth 0).
    pub max_depth: usize,
    /// Most nested processes in all.
    pub max_steps: usize,
}

/// The id of the process a nested `process` names: a bare id, or this
/// server's URL of it (`{base_url}/processes/{id}`). `None` for any other
/// URL: remote processes are not run.
pub(crate) fn process_id_of<'a>(reference: &'a str, base_url: &str) -> Option<&'a str> {
    if !reference.contains('/') {
        return Some(reference);
    }
    let id = reference
        .strip_prefix(base_url)?
        .strip_prefix("/processes/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// Where a process's output goes in its parent's inputs: the input's id,
/// and which occurrence when the input occurs several times.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    input: String,
    occurrence: Option<usize>,
}

impl Slot {
    fn path(&self, prefix: &str) -> String {
        match self.occurrence {
            Some(i) => format!("{prefix}.{}[{i}]", self.input),
            None => format!("{prefix}.{}", self.input),
        }
    }
}

/// Every nested process in `inputs`, with its slot.
fn nested_calls<'a>(
    validator: &InputValidator,
    inputs: &'a Map<String, Value>,
) -> Vec<(Slot, &'a Map<String, Value>)> {
    let mut calls = Vec::new();
    for (id, value) in inputs {
        let repeated = validator.is_repeated(id, value);
        for (index, occurrence) in validator.occurrences(id, value).into_iter().enumerate() {
            if let Occurrence::Process(call) = classify(occurrence) {
                let slot = Slot {
                    input: id.clone(),
                    occurrence: repeated.then_some(index),
                };
                calls.push((slot, call));
            }
        }
    }
    calls
}

/// Whether any input of `inputs` is a nested process.
pub(crate) fn has_nested(validator: &InputValidator, inputs: &Map<String, Value>) -> bool {
    !nested_calls(validator, inputs).is_empty()
}

/// The inputs of a nested call (none when it gives none).
fn call_inputs(call: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    match call.get("inputs") {
        None => Ok(Map::new()),
        Some(Value::Object(inputs)) => Ok(inputs.clone()),
        Some(_) => Err("`inputs` must be an object".into()),
    }
}

/// The output of a nested call's process that becomes the input's value:
/// the one `outputs` selects, or the process's only output.
fn selected_output(
    call: &Map<String, Value>,
    validator: &InputValidator,
) -> Result<String, String> {
    let declared = validator.output_ids();
    match call.get("outputs") {
        Some(Value::Object(selected)) => {
            let mut ids = selected.keys();
            match (ids.next(), ids.next()) {
                (Some(id), None) if declared.contains(&id.as_str()) => Ok(id.clone()),
                (Some(id), None) => Err(format!(
                    "outputs: the process has no output '{id}'; it has: {}",
                    declared.join(", ")
                )),
                _ => {
                    Err("outputs: select exactly one output, whose value becomes the input".into())
                }
            }
        }
        Some(_) => Err("`outputs` must be an object naming one output".into()),
        None => match declared.as_slice() {
            [only] => Ok((*only).to_owned()),
            _ => Err(format!(
                "the process has {} outputs ({}): select one with \"outputs\": {{\"<id>\": {{}}}}",
                declared.len(),
                declared.join(", ")
            )),
        },
    }
}

/// Check a request's whole tree of nested processes before anything runs
/// (see the module documentation). `inputs` are those of a process whose
/// `validator` already accepted them with nested values standing in;
/// `path` is where they are (`inputs` at the top).
pub fn check_tree(
    registry: &ProcessRegistry,
    base_url: &str,
    validator: &InputValidator,
    inputs: &Map<String, Value>,
    bounds: TreeBounds,
) -> Result<(), InvalidInput> {
    let mut steps = 0;
    check_level(
        registry, base_url, validator, inputs, bounds, "inputs", 0, &mut steps,
    )
}

#[allow(clippy::too_many_arguments)] // One level of a recursive walk.
fn check_level(
    registry: &ProcessRegistry,
    base_url: &str,
    validator: &InputValidator,
    inputs: &Map<String, Value>,
    bounds: TreeBounds,
    path: &str,
    depth: usize,
    steps: &mut usize,
) -> Result<(), InvalidInput> {
    for (slot, call) in nested_calls(validator, inputs) {
        let at = format!("{}.process", slot.path(path));
        let refuse = |reason: String| InvalidInput(format!("{at}: {reason}"));
        if depth + 1 > bounds.max_depth {
            return Err(refuse(format!(
                "processes are nested deeper than execution.max_nesting_depth = {}",
                bounds.max_depth
            )));
        }
        *steps += 1;
        if *steps > bounds.max_steps {
            return Err(refuse(format!(
                "the request nests more than execution.max_nested_steps = {} processes",
                bounds.max_steps
            )));
        }
        let reference = call
            .get("process")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id = process_id_of(reference, base_url).ok_or_else(|| {
            refuse(format!(
                "'{reference}' is not a process of this server ({base_url}/processes/…); remote processes are not run"
            ))
        })?;
        let process = registry
            .get(id)
            .ok_or_else(|| refuse(format!("no process '{id}' on this server")))?;
        selected_output(call, &process.validator).map_err(&refuse)?;
        let child_inputs = call_inputs(call).map_err(&refuse)?;
        process
            .validator
            .validate_with_nested(&child_inputs)
            .map_err(|e| InvalidInput(format!("{at}.inputs: {e}")))?;
        check_level(
            registry,
            base_url,
            &process.validator,
            &child_inputs,
            bounds,
            &format!("{at}.inputs"),
            depth + 1,
            steps,
        )?;
    }
    Ok(())
}

/// Why a job's nested processes did not give it its inputs.
#[derive(Debug)]
pub(super) struct StepFailed {
    /// How the parent fails: the failed step's own kind (so that a step
    /// refused for its inputs blames the client, as it would alone).
    pub(super) kind: FailureKind,
    /// Which step (path and job) failed, and why.
    pub(super) reason: String,
}

/// An output as an input value: JSON as it is (an object as a qualified
/// value with its media type, so that it is not mistaken for a reference
/// or another nested process), bytes as a base64 qualified value.
fn as_input(value: &OutputValue, media_type: &str) -> Value {
    use base64::Engine as _;
    match value {
        OutputValue::Json(Value::Object(fields)) => serde_json::json!({
            "value": Value::Object(fields.clone()),
            "mediaType": media_type,
        }),
        OutputValue::Json(plain) => plain.clone(),
        OutputValue::Bytes(bytes) => serde_json::json!({
            "value": base64::engine::general_purpose::STANDARD.encode(bytes),
            "mediaType": media_type,
        }),
    }
}

/// Run the nested processes of `parent`'s `inputs`, each as a job of its
/// own and all at once, and put each one's selected output in its slot.
/// Returns the steps that ran (for the parent's record), and the first
/// failure in input order if any failed. `token` is the parent's: when it
/// is cancelled (the parent dismissed), every step still running is
/// dismissed too.
pub(super) async fn run_steps(
    inner: &Arc<Inner>,
    parent: &JobRecord,
    validator: &InputValidator,
    inputs: &mut Map<String, Value>,
    token: &CancellationToken,
) -> (Vec<Step>, Result<(), StepFailed>) {
    let calls: Vec<(Slot, Map<String, Value>)> = nested_calls(validator, inputs)
        .into_iter()
        .map(|(slot, call)| (slot, call.clone()))
        .collect();
    let runs = calls
        .iter()
        .map(|(slot, call)| run_step(inner, parent, slot, call, token));
    let outcomes = futures_util::future::join_all(runs).await;
    let mut steps = Vec::new();
    let mut first_failure = None;
    for ((slot, _), outcome) in calls.iter().zip(outcomes) {
        match outcome {
            Ok((job_id, value)) => {
                steps.push(Step {
                    path: slot.path("inputs"),
                    job_id,
                });
                place(inputs, slot, value);
            }
            Err((job_id, failure)) => {
                if let Some(job_id) = job_id {
                    steps.push(Step {
                        path: slot.path("inputs"),
                        job_id,
                    });
                }
                first_failure.get_or_insert(failure);
            }
        }
    }
    let outcome = match first_failure {
        Some(failure) => Err(failure),
        None => Ok(()),
    };
    (steps, outcome)
}

/// Put a step's value where its call was.
fn place(inputs: &mut Map<String, Value>, slot: &Slot, value: Value) {
    let Some(target) = inputs.get_mut(&slot.input) else {
        return;
    };
    match (slot.occurrence, target) {
        (Some(i), Value::Array(items)) => {
            if let Some(item) = items.get_mut(i) {
                *item = value;
            }
        }
        (_, target) => *target = value,
    }
}

/// One step: its process run now as a job of its own; its job id and the
/// selected output as an input value.
async fn run_step(
    inner: &Arc<Inner>,
    parent: &JobRecord,
    slot: &Slot,
    call: &Map<String, Value>,
    token: &CancellationToken,
) -> Result<(uuid::Uuid, Value), (Option<uuid::Uuid>, StepFailed)> {
    let path = format!("{}.process", slot.path("inputs"));
    let fail = |kind: FailureKind, reason: String| StepFailed {
        kind,
        reason: format!("step {path}: {reason}"),
    };
    let reference = call
        .get("process")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let process = process_id_of(reference, &inner.base_url)
        .and_then(|id| inner.registry.get(id))
        .ok_or_else(|| {
            (
                None,
                fail(
                    FailureKind::InvalidInput,
                    format!("process '{reference}' is no longer offered"),
                ),
            )
        })?;
    let output = selected_output(call, &process.validator)
        .map_err(|e| (None, fail(FailureKind::InvalidInput, e)))?;
    let request = ExecuteRequest {
        inputs: call_inputs(call).map_err(|e| (None, fail(FailureKind::InvalidInput, e)))?,
        ..ExecuteRequest::default()
    };
    let owner = parent.owner.as_ref().map(|name| JobOwner {
        name: name.clone(),
        max_stored_bytes: None,
    });
    let scheduler = Scheduler {
        inner: inner.clone(),
    };
    let (job, results) = scheduler
        .run_step(&process, request, owner.as_ref(), parent.id, token)
        .await
        .map_err(|e| (None, fail(FailureKind::Trap, e.to_string())))?;
    let Some(results) = results else {
        let kind = job
            .failure
            .as_ref()
            .map_or(FailureKind::Trap, |failure| failure.kind);
        let why = job
            .message
            .clone()
            .unwrap_or_else(|| job.status.as_str().into());
        return Err((
            Some(job.id),
            fail(
                kind,
                format!(
                    "process '{}' (job {}) {}: {why}",
                    job.process_id,
                    job.id,
                    job.status.as_str()
                ),
            ),
        ));
    };
    let value = results
        .outputs
        .iter()
        .find(|o| o.id == output)
        .map(|o| as_input(&o.value, &o.media_type))
        .ok_or_else(|| {
            (
                Some(job.id),
                fail(
                    FailureKind::InvalidOutput,
                    format!(
                        "process '{}' (job {}) gave no output '{output}'",
                        job.process_id, job.id
                    ),
                ),
            )
        })?;
    Ok((job.id, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_named_by_id_or_by_this_servers_url() {
        let base = "http://127.0.0.1:5000";
        assert_eq!(process_id_of("echo", base), Some("echo"));
        assert_eq!(
            process_id_of("http://127.0.0.1:5000/processes/echo", base),
            Some("echo")
        );
        assert_eq!(
            process_id_of("http://127.0.0.2:5000/processes/echo", base),
            None
        );
        assert_eq!(
            process_id_of("http://127.0.0.1:5000/processes/", base),
            None
        );
        assert_eq!(
            process_id_of("http://127.0.0.1:5000/processes/a/b", base),
            None
        );
    }

    #[test]
    fn outputs_become_input_values_that_cannot_be_mistaken_for_calls() {
        let object = OutputValue::Json(serde_json::json!({"process": "x"}));
        let value = as_input(&object, "application/json");
        assert!(matches!(classify(&value), Occurrence::Qualified(..)));
        assert_eq!(
            as_input(&OutputValue::Json(serde_json::json!("text")), "text/plain"),
            serde_json::json!("text")
        );
        assert_eq!(
            as_input(&OutputValue::Bytes(vec![1, 2]), "image/png"),
            serde_json::json!({"value": "AQI=", "mediaType": "image/png"})
        );
    }
}
