//! Running a job's nested processes: each one a job of its own, called a
//! *step*, and its output put where the call stood in the parent's inputs.
//! What a nested process is, and how a request holding them is checked
//! before anything runs, is in [`super::nested`].
//!
//! # How a tree runs
//! A job whose inputs hold nested processes gives its worker back before
//! they run (`jobs/run.rs`), and takes one again once every input has its
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
//! While its steps run, a job's progress says how many of its nested
//! calls have ended (`1 of 2 steps done`, up to 90 %).
//!
//! The steps of one job run within `execution.workflow_timeout` in all
//! (`jobs/run.rs` holds the deadline); past it the running ones are
//! dismissed and the job fails saying so.
//!
//! # One call, made once
//! A call written twice in one tree runs once ([`super::tree`]): the first
//! place to need it runs it, the others wait for its value and list the
//! same jobs among their steps. A `map` runs its process once per element,
//! at most `parallelism` at once and never more than the workers (on a
//! cluster, a quarter of the queue: [`super::spread`]); a `process` on
//! another server is called over HTTP ([`super::remote`]).

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::nested::{Slot, call_inputs, map_spec, nested_calls, process_id_of, selected_output};
use super::remote::{remote_allowed, run_remote};
use super::scheduler::{Inner, JobOwner, Scheduler};
use super::tree::Tree;
use super::validate::{InputValidator, Occurrence, classify};
use crate::failure::FailureKind;
use crate::ogc::ExecuteRequest;
use crate::runtime::OutputValue;
use crate::store::{JobRecord, Step};

/// Why a job's nested processes did not give it its inputs.
#[derive(Debug, Clone)]
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
    match value {
        OutputValue::Json(Value::Object(fields)) => serde_json::json!({
            "value": Value::Object(fields.clone()),
            "mediaType": media_type,
        }),
        other => as_element(other, media_type),
    }
}

/// An output as an element of a map's array: JSON as it is, bytes as a
/// base64 qualified value.
fn as_element(value: &OutputValue, media_type: &str) -> Value {
    use base64::Engine as _;
    match value {
        OutputValue::Json(json) => json.clone(),
        OutputValue::Bytes(bytes) => serde_json::json!({
            "value": base64::engine::general_purpose::STANDARD.encode(bytes),
            "mediaType": media_type,
        }),
    }
}

/// Run the nested processes of `parent`'s `inputs`, all at once, and put
/// each one's value in its slot. Returns the steps that ran (for the
/// parent's record), and the first failure in input order if any failed.
/// `token` is the parent's: when it is cancelled (the parent dismissed),
/// every step still running is dismissed too. `tree` is what all the
/// jobs of the parent's tree share (its fuel budget, the calls made).
pub(super) async fn run_steps(
    inner: &Arc<Inner>,
    parent: &JobRecord,
    validator: &InputValidator,
    inputs: &mut Map<String, Value>,
    token: &CancellationToken,
    tree: &Arc<Tree>,
) -> (Vec<Step>, Result<(), StepFailed>) {
    let calls: Vec<(Slot, Map<String, Value>)> = nested_calls(validator, inputs)
        .into_iter()
        .map(|(slot, call)| (slot, call.clone()))
        .collect();
    let paths: Vec<String> = calls
        .iter()
        .map(|(slot, _)| format!("{}.process", slot.path("inputs")))
        .collect();
    // The parent's progress follows its steps: each call that ends moves
    // it (to 90 % when all have; the parent's own run does the rest).
    let total = calls.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let runs = calls.iter().zip(&paths).map(|((_, call), path)| {
        let done = &done;
        async move {
            let outcome = run_call(inner, parent, path, call, token, tree).await;
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            report_progress(inner, parent, finished, total).await;
            outcome
        }
    });
    let outcomes = futures_util::future::join_all(runs).await;
    let mut steps = Vec::new();
    let mut first_failure = None;
    for ((slot, _), (ran, outcome)) in calls.iter().zip(outcomes) {
        steps.extend(ran);
        match outcome {
            Ok(value) => {
                // A map's array given to an input that occurs several
                // times: each element becomes an occurrence, and an output
                // shaped like a reference or a call must stay a value.
                let value = if validator.is_repeated(&slot.input, &value) {
                    occurrences_as_values(value)
                } else {
                    value
                };
                place(inputs, slot, value)
            }
            Err(failure) => {
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

/// Write the parent's progress: `finished` of its `total` nested calls have
/// ended. A failed write is logged and counted, not fatal: progress is
/// advice to a client polling.
async fn report_progress(inner: &Arc<Inner>, parent: &JobRecord, finished: usize, total: usize) {
    let mut shown = parent.clone();
    shown.progress = Some(u8::try_from(finished * 90 / total.max(1)).unwrap_or(90));
    shown.message = Some(format!("{finished} of {total} steps done"));
    shown.updated = chrono::Utc::now();
    if let Err(error) = inner.store.update_progress(&shown).await {
        inner.write_failures.record(parent.id, "progress", &error);
    }
}

/// The elements of an array that become occurrences of an input, each
/// one that would be taken for a reference (`{"href"}`) or a nested call
/// (`{"process"}`) wrapped as a qualified JSON value: what a guest gave is
/// never fetched or run by the host.
fn occurrences_as_values(value: Value) -> Value {
    let Value::Array(elements) = value else {
        return value;
    };
    Value::Array(
        elements
            .into_iter()
            .map(|element| match classify(&element) {
                Occurrence::Reference(_) | Occurrence::Process(_) | Occurrence::Placeholder(_) => {
                    serde_json::json!({ "value": element, "mediaType": "application/json" })
                }
                _ => element,
            })
            .collect(),
    )
}

/// Put a step's value where its call was: the whole input, or the one
/// occurrence of a repeated input. A slot that is not there leaves the
/// inputs as they are (the slots were found in these same inputs, so
/// this does not happen).
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

/// The steps a call ran, and the value it gives its input.
type CallOutcome = (Vec<Step>, Result<Value, StepFailed>);

/// One nested call at `path`, made once per tree: the first place of the
/// tree to need it runs it ([`run_call_once`]), every identical call
/// elsewhere in the tree waits for that and takes its value, listing the
/// same job(s) among its steps (see [`super::tree`]). Boxed: a map's
/// `over` may be a call itself.
fn run_call<'a>(
    inner: &'a Arc<Inner>,
    parent: &'a JobRecord,
    path: &'a str,
    call: &'a Map<String, Value>,
    token: &'a CancellationToken,
    tree: &'a Arc<Tree>,
) -> std::pin::Pin<Box<dyn Future<Output = CallOutcome> + Send + 'a>> {
    Box::pin(async move {
        let key = super::cache::canonical(&Value::Object(call.clone())).to_string();
        let slot = tree.call_slot(key);
        let (first_path, steps, value) = slot
            .get_or_init(|| async {
                let (steps, value) = run_call_once(inner, parent, path, call, token, tree).await;
                (path.to_owned(), steps, value)
            })
            .await
            .clone();
        if first_path == path {
            return (steps, value);
        }
        // Made at another place: the same jobs, listed under this path.
        let steps = steps
            .into_iter()
            .map(|step| Step {
                path: step.path.replacen(&first_path, path, 1),
                ..step
            })
            .collect();
        (steps, value)
    })
}

/// [`run_call`] itself: the call's process run as a job of its own, or,
/// with a `map`, once per element.
async fn run_call_once(
    inner: &Arc<Inner>,
    parent: &JobRecord,
    path: &str,
    call: &Map<String, Value>,
    token: &CancellationToken,
    tree: &Arc<Tree>,
) -> CallOutcome {
    let fail = |kind: FailureKind, reason: String| StepFailed {
        kind,
        reason: format!("step {path}: {reason}"),
    };
    let reference = call
        .get("process")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if process_id_of(reference, &inner.base_url).is_none()
        && remote_allowed(reference, &inner.config.execution.remote_processes)
    {
        // On another server (`super::remote`): the output named, since
        // its description is not known here.
        let output = call
            .get("outputs")
            .and_then(Value::as_object)
            .and_then(|selected| selected.keys().next().cloned())
            .unwrap_or_default();
        let inputs = match call_inputs(call) {
            Ok(inputs) => inputs,
            Err(e) => {
                return (
                    Vec::new(),
                    Err(fail(FailureKind::InvalidInput, e.to_string())),
                );
            }
        };
        let (step, value) = run_remote(inner, path, reference, inputs, &output, token).await;
        return (
            step.into_iter().collect(),
            value.map_err(|r| fail(r.0, r.1)),
        );
    }
    let Some(process) =
        process_id_of(reference, &inner.base_url).and_then(|id| inner.registry.get(id))
    else {
        let reason = format!("process '{reference}' is no longer offered");
        return (Vec::new(), Err(fail(FailureKind::InvalidInput, reason)));
    };
    let prepared = selected_output(call, &process.validator).and_then(|output| {
        let inputs = call_inputs(call).map_err(|e| e.to_string())?;
        Ok((output, inputs, map_spec(call)?))
    });
    let (output, inputs, map) = match prepared {
        Ok(prepared) => prepared,
        Err(reason) => return (Vec::new(), Err(fail(FailureKind::InvalidInput, reason))),
    };
    let Some(map) = map else {
        let (step, ran) =
            run_job(inner, parent, path, &process, inputs, &output, token, tree).await;
        let value = ran.map(|(value, media_type)| as_input(&value, &media_type));
        return (
            step.into_iter().collect(),
            value.map_err(|r| fail(r.0, r.1)),
        );
    };
    // The array: given, or the output of the call in `over`.
    let mut steps = Vec::new();
    let elements = match &map.over {
        Value::Array(elements) => elements.clone(),
        over => {
            let Occurrence::Process(over_call) = classify(over) else {
                let reason = "map.over is neither an array nor a nested process".into();
                return (steps, Err(fail(FailureKind::InvalidInput, reason)));
            };
            let over_path = format!("{path}.map.over");
            let (ran, value) = run_call(inner, parent, &over_path, over_call, token, tree).await;
            steps.extend(ran);
            match value {
                Ok(Value::Array(elements)) => elements,
                Ok(_) => {
                    let reason = "map.over gave a value that is not an array".into();
                    return (steps, Err(fail(FailureKind::InvalidInput, reason)));
                }
                Err(failure) => return (steps, Err(failure)),
            }
        }
    };
    let limit = inner.config.execution.max_map_elements;
    if elements.len() > limit {
        let reason = format!(
            "map.over has {} elements, more than execution.max_map_elements = {limit}",
            elements.len()
        );
        return (steps, Err(fail(FailureKind::InvalidInput, reason)));
    }
    // Every element in order, at most `parallelism` at once.
    use futures_util::StreamExt as _;
    let mut runs = Vec::with_capacity(elements.len());
    for (index, element) in elements.into_iter().enumerate() {
        let mut one = inputs.clone();
        one.insert(map.input.clone(), element);
        let (process, output) = (process.clone(), output.clone());
        runs.push(async move {
            let element_path = format!("{path}.map[{index}]");
            run_job(
                inner,
                parent,
                &element_path,
                &process,
                one,
                &output,
                token,
                tree,
            )
            .await
        });
    }
    // Here, never more than the workers: more would only wait for one,
    // and count against `max_waiting_sync` while they do. Queued for the
    // whole cluster (`super::spread`), up to a quarter of the queue's
    // bound, so that a map leaves room for other jobs.
    let workers = inner.config.execution.max_concurrent_jobs.max(1);
    let spread = Scheduler {
        inner: inner.clone(),
    }
    .spreads_steps();
    let at_once = if spread {
        (inner.config.execution.max_queued_jobs / 4).max(workers)
    } else {
        workers
    };
    let results: Vec<_> = futures_util::stream::iter(runs)
        .buffered(map.parallelism.min(at_once))
        .collect()
        .await;
    let mut values = Vec::new();
    for (index, (step, ran)) in results.into_iter().enumerate() {
        steps.extend(step);
        match ran {
            Ok((value, media_type)) => values.push(as_element(&value, &media_type)),
            Err(_) if map.skip_failures => {}
            Err((kind, reason)) => {
                let reason = format!("element {index}: {reason}");
                return (steps, Err(fail(kind, reason)));
            }
        }
    }
    (steps, Ok(Value::Array(values)))
}

/// One job of a step: `process` with `inputs`, run now as a job of its
/// own in `tree`; the step, and the selected `output` with its media
/// type, or why there is none.
///
/// The step belongs to the parent's owner, and is held to the server's
/// bound on stored data but not to the owner's own (the parent was, when
/// it was accepted). A step refused before it became a job (no room,
/// `max_waiting_sync` requests already waiting for a worker, a workflow
/// whose inputs make no sound tree) has no step record; one that
/// ran and failed fails with its own failure kind, so that bad inputs
/// still blame the client; a step dismissed with its parent ends as
/// `dismissed`, and the parent, stopped too, ignores it.
#[allow(clippy::too_many_arguments)]
async fn run_job(
    inner: &Arc<Inner>,
    parent: &JobRecord,
    path: &str,
    process: &super::registry::RegisteredProcess,
    inputs: Map<String, Value>,
    output: &str,
    token: &CancellationToken,
    tree: &Arc<Tree>,
) -> (
    Option<Step>,
    Result<(OutputValue, String), (FailureKind, String)>,
) {
    let request = ExecuteRequest {
        inputs,
        ..ExecuteRequest::default()
    };
    let owner = parent.owner.as_ref().map(|name| JobOwner {
        name: name.clone(),
        max_stored_bytes: None,
    });
    let scheduler = Scheduler {
        inner: inner.clone(),
    };
    let ran = scheduler
        .run_step(
            process,
            request,
            owner.as_ref(),
            parent.id,
            token,
            tree.clone(),
        )
        .await;
    let (job, results) = match ran {
        Ok(ran) => ran,
        Err(error) => {
            let kind = match error {
                // A workflow step whose inputs make no sound tree.
                super::JobError::Workflow(_) => FailureKind::InvalidInput,
                _ => FailureKind::Trap,
            };
            return (None, Err((kind, error.to_string())));
        }
    };
    let step = Some(Step {
        path: path.to_owned(),
        job_id: job.id,
        url: None,
    });
    let Some(results) = results else {
        let kind = job
            .failure
            .as_ref()
            .map_or(FailureKind::Trap, |failure| failure.kind);
        let why = job
            .message
            .clone()
            .unwrap_or_else(|| job.status.as_str().into());
        let reason = format!(
            "process '{}' (job {}) {}: {why}",
            job.process_id,
            job.id,
            job.status.as_str()
        );
        return (step, Err((kind, reason)));
    };
    match results.outputs.into_iter().find(|o| o.id == output) {
        Some(found) => (step, Ok((found.value, found.media_type))),
        None => {
            let reason = format!(
                "process '{}' (job {}) gave no output '{output}'",
                job.process_id, job.id
            );
            (step, Err((FailureKind::InvalidOutput, reason)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_elements_that_look_like_references_or_calls_stay_values() {
        let elements = serde_json::json!([
            {"href": "http://127.0.0.1/secret"},
            {"process": "x"},
            {"value": "AQI=", "mediaType": "image/png"},
            {"plain": true},
            3
        ]);
        let guarded = occurrences_as_values(elements);
        assert_eq!(
            guarded,
            serde_json::json!([
                {"value": {"href": "http://127.0.0.1/secret"}, "mediaType": "application/json"},
                {"value": {"process": "x"}, "mediaType": "application/json"},
                {"value": "AQI=", "mediaType": "image/png"},
                {"plain": true},
                3
            ])
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
