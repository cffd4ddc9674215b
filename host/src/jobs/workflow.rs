//! Deployable workflows (OGC API - Processes Part 3, draft): a tree of
//! nested processes deployed as a process of its own, whose inputs fill
//! `{"$input": "<name>"}` placeholders in the tree.
//!
//! ```json
//! {"processDescription": {"id": "greet-twice", "version": "1.0.0"},
//!  "executionUnit": {"mediaType": "application/ogcexec+json", "value":
//!    {"process": "hello-world",
//!     "inputs": {"name": {"process": "hello-world",
//!                         "inputs": {"name": {"$input": "who"}}}}}}}
//! ```
//!
//! # Deploy: checked once, described from its steps
//! [`Workflow::parse`] takes the top call (`process`, `inputs`,
//! `outputs`; a `map` belongs inside, where a merge step takes its array).
//! `describe` checks the whole template like a request's tree
//! (`nested::check_template`: every step exists, its inputs pass,
//! outputs fit inputs), with each placeholder standing for a value of the
//! input it fills, and derives what the deployer did not give: each
//! placeholder becomes an input described as the step input it fills (an
//! array of it when it is a map's `over`), and the outputs are those of
//! the top call (the ones it selects, or all). A given description must
//! declare exactly the inputs the placeholders name and only outputs the
//! top call has. `check_cycles` refuses a workflow that would reach
//! itself through the workflows it uses (directly or not), naming the
//! cycle; nested JSON cannot make one, references between deployed
//! workflows can.
//!
//! The document is stored as the process's "module" (its SHA-256 is the
//! version, as a component's is), so a deployed workflow survives a
//! restart, is replaced and undeployed, and comes back as its package,
//! like any deployed process.
//!
//! # A job of a workflow
//! `expand` turns a request to the workflow into a request to its top
//! process: the job's inputs replace the placeholders (an optional input
//! not given takes its placeholder out), the request's `outputs` (or else
//! the top call's) select the outputs, and the resulting tree is checked
//! as a request's would be (400 naming the path). The job keeps the
//! workflow's id and `jobControlOptions` but runs the top process's
//! module, limits and rules; its nested calls are its steps, each a job of
//! its own (see [`super::nested`]). A top process that is itself a
//! workflow is expanded in turn, at most `execution.max_nesting_depth`
//! times.
//!
//! The tree is expanded when the job is accepted: a queued job runs the
//! steps it was accepted with, though the processes they name are looked
//! up when they run (as for any nested request).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::nested::{TreeBounds, call_inputs, check_template, check_tree, process_id_of};
use super::registry::{Executable, ProcessRegistry, RegisteredProcess};
use super::validate::{InvalidInput, Occurrence, classify};
use crate::ogc::ExecuteRequest;
use crate::store::ProcessRecord;

/// Media type of a workflow given as an application package's
/// `executionUnit` (an OGC execute request naming its `process`).
pub const WORKFLOW_MEDIA_TYPE: &str = "application/ogcexec+json";

/// Why a workflow cannot be deployed: the path of the faulty part (in
/// the package: `executionUnit…`, `processDescription…`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid workflow: {0}")]
pub struct WorkflowError(pub String);

/// The members the top call of a workflow may have.
const TOP_KEYS: &[&str] = &["process", "inputs", "outputs"];

/// A deployed workflow: its top call, placeholders and all.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The top call as deployed, `{"$input"}` placeholders in place.
    call: Map<String, Value>,
}

impl Workflow {
    /// Read a workflow document (the `executionUnit`'s value): an object
    /// naming its top `process`, with optional `inputs` and `outputs`.
    pub fn parse(document: &Value) -> Result<Self, WorkflowError> {
        let refuse = |why: &str| WorkflowError(format!("executionUnit: {why}"));
        let Value::Object(call) = document else {
            return Err(refuse(
                "a workflow is an object {\"process\": <id>, \"inputs\": {…}, \"outputs\": {…}}",
            ));
        };
        if !matches!(call.get("process"), Some(Value::String(_))) {
            return Err(refuse(
                "a workflow names its top process: \"process\": <id>",
            ));
        }
        if let Some(key) = call.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
            let why = if key == "map" {
                "the top process of a workflow cannot be a map; nest the map in an input of the process that merges its array".to_owned()
            } else {
                format!("unknown member '{key}' (process, inputs, outputs)")
            };
            return Err(refuse(&why));
        }
        if !matches!(call.get("inputs"), None | Some(Value::Object(_))) {
            return Err(refuse("`inputs` must be an object"));
        }
        if !matches!(call.get("outputs"), None | Some(Value::Object(_))) {
            return Err(refuse("`outputs` must be an object"));
        }
        Ok(Self { call: call.clone() })
    }

    /// The document as deployed (the value stored as the module and
    /// served in the package): what `expand` substitutes a job's inputs
    /// into, and `references` searches.
    pub fn document(&self) -> Value {
        Value::Object(self.call.clone())
    }

    /// The reference of the top process (an id or this server's URL).
    fn top_reference(&self) -> &str {
        self.call
            .get("process")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The top call's `outputs` selection, if it makes one.
    fn selected_outputs(&self) -> Option<&Map<String, Value>> {
        self.call.get("outputs").and_then(Value::as_object)
    }

    /// The ids of this server's processes the workflow names anywhere
    /// (other servers' URLs are left out: they are refused anyway).
    fn references(&self, base_url: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        collect_references(&self.document(), base_url, &mut found);
        found
    }
}

/// Every process id named by a nested call in `value`, at any depth: the
/// top call's own, those in inputs and in a map's `over`. URLs of other
/// servers are skipped.
fn collect_references(value: &Value, base_url: &str, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            if let Occurrence::Process(call) = classify(value)
                && let Some(id) = call
                    .get("process")
                    .and_then(Value::as_str)
                    .and_then(|reference| process_id_of(reference, base_url))
            {
                found.insert(id.to_owned());
            }
            for child in fields.values() {
                collect_references(child, base_url, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_references(item, base_url, found);
            }
        }
        _ => {}
    }
}

/// `value` with every `{"$input": name}` replaced by `inputs[name]`; a
/// placeholder whose input is not given is taken out (from its object, or
/// its array). Values put in are not searched again.
fn substitute(value: &Value, inputs: &Map<String, Value>) -> Option<Value> {
    if let Occurrence::Placeholder(name) = classify(value) {
        return inputs.get(name).cloned();
    }
    match value {
        Value::Object(fields) => Some(Value::Object(
            fields
                .iter()
                .filter_map(|(k, v)| substitute(v, inputs).map(|v| (k.clone(), v)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|v| substitute(v, inputs)).collect(),
        )),
        other => Some(other.clone()),
    }
}

/// Refuse a workflow `id` that would reach itself through the workflows
/// it names: `a → b → a`.
pub(crate) fn check_cycles(
    registry: &ProcessRegistry,
    base_url: &str,
    id: &str,
    workflow: &Workflow,
) -> Result<(), WorkflowError> {
    /// Depth-first through the workflows named, `path` the way taken.
    fn visit(
        registry: &ProcessRegistry,
        base_url: &str,
        id: &str,
        named: BTreeSet<String>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), WorkflowError> {
        for next in named {
            if next == id {
                path.push(next);
                return Err(WorkflowError(format!(
                    "the workflow would run itself: {}",
                    path.join(" → ")
                )));
            }
            if !seen.insert(next.clone()) {
                continue;
            }
            let Some(process) = registry.get(&next) else {
                continue;
            };
            if let Executable::Workflow(inner) = &process.executable {
                path.push(next);
                visit(
                    registry,
                    base_url,
                    id,
                    inner.references(base_url),
                    path,
                    seen,
                )?;
                path.pop();
            }
        }
        Ok(())
    }
    let mut path = vec![id.to_owned()];
    visit(
        registry,
        base_url,
        id,
        workflow.references(base_url),
        &mut path,
        &mut BTreeSet::new(),
    )
}

/// The description of a workflow (see the module documentation): the
/// deployer's `given` one, completed from the steps, after the whole
/// template is checked.
pub(crate) fn describe(
    registry: &ProcessRegistry,
    base_url: &str,
    bounds: TreeBounds,
    workflow: &Workflow,
    given: Option<Value>,
) -> Result<Value, WorkflowError> {
    let reference = workflow.top_reference();
    let top = process_id_of(reference, base_url)
        .and_then(|id| registry.get(id))
        .ok_or_else(|| {
            WorkflowError(format!(
                "executionUnit.process: '{reference}' is not a process of this server"
            ))
        })?;
    let inputs = call_inputs(&workflow.call).map_err(|e| WorkflowError(e.to_string()))?;
    top.validator
        .validate_with_nested(&inputs)
        .map_err(|e| WorkflowError(format!("executionUnit.inputs: {e}")))?;
    let uses = check_template(
        registry,
        base_url,
        &top,
        &inputs,
        "executionUnit.inputs",
        bounds,
    )
    .map_err(|InvalidInput(why)| WorkflowError(why))?;

    // The inputs the placeholders stand for, each described by its first
    // use; every later use must accept a value of that first one.
    let mut derived_inputs: BTreeMap<String, Value> = BTreeMap::new();
    for used in &uses {
        match derived_inputs.get(&used.name) {
            None => {
                derived_inputs.insert(used.name.clone(), used.input.clone());
            }
            Some(first) => {
                if let (Some(first), Some(here)) = (first.get("schema"), used.input.get("schema"))
                    && !super::nested::may_satisfy(first, here)
                {
                    return Err(WorkflowError(format!(
                        "{}: {{\"$input\": \"{}\"}} is used where its first use's values ({first}) cannot go ({here})",
                        used.at, used.name
                    )));
                }
            }
        }
    }
    let top_outputs = top
        .record
        .description
        .get("outputs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let derived_outputs: Map<String, Value> = match workflow.selected_outputs() {
        Some(selected) => {
            let mut outputs = Map::new();
            for id in selected.keys() {
                let output = top_outputs.get(id).ok_or_else(|| {
                    WorkflowError(format!(
                        "executionUnit.outputs: process '{}' has no output '{id}'",
                        top.id()
                    ))
                })?;
                outputs.insert(id.clone(), output.clone());
            }
            outputs
        }
        None => top_outputs,
    };

    let mut description = match given {
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(WorkflowError("processDescription must be an object".into())),
        None => Map::new(),
    };
    if !description.contains_key("id") {
        return Err(WorkflowError(
            "a workflow has no description of its own to take an id from: give processDescription with at least \"id\"".into(),
        ));
    }
    description
        .entry("version")
        .or_insert_with(|| json!("1.0.0"));
    description.entry("inputs").or_insert_with(|| {
        Value::Object(derived_inputs.clone().into_iter().collect::<Map<_, _>>())
    });
    description
        .entry("outputs")
        .or_insert_with(|| Value::Object(derived_outputs.clone()));

    let declared_inputs = description
        .get("inputs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for used in &uses {
        if !declared_inputs.contains_key(&used.name) {
            return Err(WorkflowError(format!(
                "{}: {{\"$input\": \"{}\"}} names no input of the workflow's description (it declares: {})",
                used.at,
                used.name,
                declared_inputs
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if let Some(unused) = declared_inputs
        .keys()
        .find(|id| !derived_inputs.contains_key(*id))
    {
        return Err(WorkflowError(format!(
            "processDescription.inputs.{unused}: the workflow never uses it (no {{\"$input\": \"{unused}\"}} in executionUnit)"
        )));
    }
    let declared_outputs = description
        .get("outputs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(unknown) = declared_outputs
        .keys()
        .find(|id| !derived_outputs.contains_key(*id))
    {
        return Err(WorkflowError(format!(
            "processDescription.outputs.{unknown}: the workflow's top process '{}' gives no output '{unknown}' (it gives: {})",
            top.id(),
            derived_outputs
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Value::Object(description))
}

/// A request to the workflow `process`, as the process that runs and the
/// request it runs (see the module documentation). `process` must be a
/// workflow; the returned process never is.
pub(crate) fn expand(
    registry: &ProcessRegistry,
    base_url: &str,
    bounds: TreeBounds,
    process: &RegisteredProcess,
    mut request: ExecuteRequest,
) -> Result<(Arc<RegisteredProcess>, ExecuteRequest), InvalidInput> {
    let id = process.id();
    let refuse = |why: String| InvalidInput(format!("workflow '{id}': {why}"));
    let Executable::Workflow(workflow) = &process.executable else {
        return Err(refuse("is not a workflow".into()));
    };
    let mut workflow = workflow.clone();
    let mut deployed = process.record.deployed;
    for _ in 0..=bounds.max_depth {
        let Some(Value::Object(call)) = substitute(&workflow.document(), &request.inputs) else {
            return Err(refuse("its document is not an object".into()));
        };
        let reference = workflow.top_reference();
        let top = process_id_of(reference, base_url)
            .and_then(|id| registry.get(id))
            .ok_or_else(|| refuse(format!("its process '{reference}' is no longer offered")))?;
        let inputs = call_inputs(&call).map_err(|e| refuse(e.to_string()))?;
        let outputs = request
            .outputs
            .take()
            .or_else(|| call.get("outputs").and_then(Value::as_object).cloned());
        request = ExecuteRequest {
            inputs,
            outputs,
            ..request
        };
        top.validator
            .validate_with_nested(&request.inputs)
            .map_err(|e| refuse(format!("with these inputs, executionUnit.inputs: {e}")))?;
        deployed = deployed.max(top.record.deployed);
        match &top.executable {
            Executable::Workflow(inner) => workflow = inner.clone(),
            Executable::Component(_) => {
                check_tree(registry, base_url, &top, &request.inputs, bounds).map_err(
                    |InvalidInput(why)| refuse(format!("with these inputs, executionUnit.{why}")),
                )?;
                let runner = registry.runner(process, &top, deployed);
                return Ok((runner, request));
            }
        }
    }
    Err(refuse(format!(
        "its top processes are workflows nested deeper than execution.max_nesting_depth = {}",
        bounds.max_depth
    )))
}

/// What runs a job of workflow `workflow` whose top process is the
/// component `top`: the workflow's id, options and version, the top
/// process's module, rules, description and limits.
///
/// `deployed` is the latest registration along the chain from the
/// workflow to the component (see `expand`), so that the cache key of
/// such a job changes when any of them is replaced. `limits` and
/// `job_control_options` stay empty here: the registry's `runner` takes
/// them from `top` and from the workflow.
pub(super) fn runner_record(
    workflow: &RegisteredProcess,
    top: &RegisteredProcess,
    deployed: chrono::DateTime<chrono::Utc>,
) -> ProcessRecord {
    ProcessRecord {
        id: workflow.record.id.clone(),
        description: top.record.description.clone(),
        module_sha256: top.record.module_sha256.clone(),
        mutable: workflow.record.mutable,
        deployed,
        description_overridden: top.record.description_overridden,
        limits: None,
        job_control_options: None,
        workflow: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_missing_ones_taken_out() {
        let template = json!({
            "process": "a",
            "inputs": {
                "x": {"$input": "x"},
                "y": {"$input": "absent"},
                "list": [{"$input": "x"}, {"$input": "absent"}, 3],
                "nested": {"process": "b", "inputs": {"z": {"$input": "x"}}}
            }
        });
        let inputs: Map<String, Value> =
            serde_json::from_value(json!({"x": {"$input": "not again"}})).unwrap();
        let done = substitute(&template, &inputs).unwrap();
        assert_eq!(
            done,
            json!({
                "process": "a",
                "inputs": {
                    "x": {"$input": "not again"},
                    "list": [{"$input": "not again"}, 3],
                    "nested": {"process": "b", "inputs": {"z": {"$input": "not again"}}}
                }
            })
        );
    }

    #[test]
    fn a_workflow_names_its_top_process_and_no_map() {
        assert!(Workflow::parse(&json!({"process": "a", "inputs": {}})).is_ok());
        for bad in [
            json!([]),
            json!({"inputs": {}}),
            json!({"process": "a", "map": {}}),
            json!({"process": "a", "extra": 1}),
            json!({"process": "a", "inputs": []}),
        ] {
            assert!(Workflow::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_are_found_at_any_depth() {
        let workflow = Workflow::parse(&json!({
            "process": "top",
            "inputs": {
                "a": {"process": "http://127.0.0.1:5000/processes/one"},
                "b": [{"process": "two", "map": {"input": "x", "over": {"process": "three"}}}],
                "c": {"process": "http://127.0.0.2/processes/remote"}
            }
        }))
        .unwrap();
        let found: Vec<String> = workflow
            .references("http://127.0.0.1:5000")
            .into_iter()
            .collect();
        assert_eq!(found, ["one", "three", "top", "two"]);
    }
}
