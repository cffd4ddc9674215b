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
//! required`, and nothing runs. A step's output must be able to feed its
//! input: when both schemas declare types and none can match (a string
//! output for a number input, something other than an array to map over),
//! the tree is refused too. The rest of what a step gives (its value
//! against every rule of the input's schema) is checked when it arrives,
//! like a fetched `href`.
//!
//! # How a tree runs
//! A job whose inputs hold nested processes gives its worker back before
//! they run (`jobs/run.rs`), and takes one again once every input has its
//! value. Each nested process is a job of its own (`run_steps`): run on
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
//! # Fan-out: `map` (a wasmproc extension)
//! A nested call with `"map": {"input": <id>, "over": <array or nested
//! call>, "onError": "fail" | "skip", "parallelism": n}` runs its process
//! once per element of the array, the element given as that input, and
//! gives the parent input the array of the selected outputs in element
//! order: a merge step is simply the process that takes that array. The
//! elements run as jobs of their own, at most `parallelism` at once (and
//! never more than the workers), so a map spreads over the workers the way
//! the jobs a client would submit one by one do, without the round trips.
//! A literal array's elements are each checked at submission
//! (`…map.over[3]: …`), at most `execution.max_map_elements`; an array
//! that another step gives is checked when it arrives. A failed element
//! fails the map with its index, unless `onError` is `skip`: then it is
//! left out.
//!
//! While its steps run, a job's progress says how many of its nested
//! calls have ended (`1 of 2 steps done`, up to 90 %).
//!
//! The steps of one job run within `execution.workflow_timeout` in all;
//! past it the running ones are dismissed and the job fails saying so.
//!
//! What the jobs of one tree share (a fuel budget, calls written twice made
//! once) is in `jobs/tree.rs`; on a cluster, the leaves of a tree go to
//! any node (`jobs/spread.rs`); a `process` on another server, when
//! allowed, is called over HTTP (`jobs/remote.rs`); and a tree with
//! `$input` placeholders can be deployed as a process
//! ([`super::workflow`]).

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::registry::{ProcessRegistry, RegisteredProcess};
use super::remote::{remote_allowed, run_remote};
use super::scheduler::{Inner, JobOwner, Scheduler};
use super::tree::Tree;
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
    /// Most nested processes in all (a map counts once).
    pub max_steps: usize,
    /// Most elements one map runs over.
    pub max_map_elements: usize,
}

/// A nested process run once per element of an array (`"map"`).
#[derive(Debug, Clone, PartialEq)]
struct MapSpec {
    /// The input each element is given as.
    input: String,
    /// The array, or a nested process whose output is the array.
    over: Value,
    /// Leave out the elements whose run failed, instead of failing.
    skip_failures: bool,
    /// Most elements running at once (the workers bound it too).
    parallelism: usize,
}

/// The `map` of a nested call, if it has one. `Err` is the reason, for the
/// caller to prefix with the call's path: an unknown member, no `input`
/// string, no `over`, an `onError` other than `fail` or `skip`, a
/// `parallelism` that is not a whole number of at least 1. Without
/// `parallelism`, only what `run_call_once` allows at once bounds the
/// elements (the workers, or on a cluster a share of the queue). Whether
/// `input` names an input of the process, and what `over` holds, is
/// checked by the walk (`Walk::map`).
fn map_spec(call: &Map<String, Value>) -> Result<Option<MapSpec>, String> {
    let Some(map) = call.get("map") else {
        return Ok(None);
    };
    let Value::Object(map) = map else {
        return Err(
            "`map` must be an object: {\"input\": <id>, \"over\": <array or process>}".into(),
        );
    };
    for key in map.keys() {
        if !["input", "over", "onError", "parallelism"].contains(&key.as_str()) {
            return Err(format!(
                "map: unknown member '{key}' (input, over, onError, parallelism)"
            ));
        }
    }
    let input = map
        .get("input")
        .and_then(Value::as_str)
        .ok_or("map.input must name the input each element is given as")?
        .to_owned();
    let over = map
        .get("over")
        .cloned()
        .ok_or("map.over must be an array, or a nested process whose output is one")?;
    let skip_failures = match map.get("onError").and_then(Value::as_str) {
        None | Some("fail") => false,
        Some("skip") => true,
        Some(other) => {
            return Err(format!(
                "map.onError is \"fail\" or \"skip\", not '{other}'"
            ));
        }
    };
    let parallelism = match map.get("parallelism") {
        None => usize::MAX,
        Some(value) => value
            .as_u64()
            .filter(|n| *n >= 1)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("map.parallelism must be a whole number of at least 1")?,
    };
    Ok(Some(MapSpec {
        input,
        over,
        skip_failures,
        parallelism,
    }))
}

/// The id of the process a nested `process` names: a bare id, or this
/// server's URL of it (`{base_url}/processes/{id}`). `None` for any other
/// URL (a process on another server: see [`super::remote`]).
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
    /// The parent's input the value goes to.
    input: String,
    /// The index in the input's array when the input is given as several
    /// occurrences (see `InputValidator::is_repeated`); `None` when the
    /// call is the input's whole value.
    occurrence: Option<usize>,
}

impl Slot {
    /// The slot's path under `prefix`, as refusals and step records name
    /// it: `inputs.a`, or `inputs.a[1]` for the second occurrence.
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
    occurrences_where(validator, inputs, |occurrence| match occurrence {
        Occurrence::Process(call) => Some(call),
        _ => None,
    })
}

/// Every `{"$input": …}` placeholder in `inputs`, with its slot.
fn placeholder_slots<'a>(
    validator: &InputValidator,
    inputs: &'a Map<String, Value>,
) -> Vec<(Slot, &'a str)> {
    occurrences_where(validator, inputs, |occurrence| match occurrence {
        Occurrence::Placeholder(name) => Some(name),
        _ => None,
    })
}

/// What `pick` takes from each occurrence of each input, with its slot,
/// in input order. An input the process declares as repeated is split
/// into its occurrences (the validator's own split), and only those get an
/// index in their slot: a single value's slot names the input alone, as
/// the input is addressed when its result is put back.
fn occurrences_where<'a, T>(
    validator: &InputValidator,
    inputs: &'a Map<String, Value>,
    pick: impl Fn(Occurrence<'a>) -> Option<T>,
) -> Vec<(Slot, T)> {
    let mut found = Vec::new();
    for (id, value) in inputs {
        let repeated = validator.is_repeated(id, value);
        for (index, occurrence) in validator.occurrences(id, value).into_iter().enumerate() {
            if let Some(picked) = pick(classify(occurrence)) {
                let slot = Slot {
                    input: id.clone(),
                    occurrence: repeated.then_some(index),
                };
                found.push((slot, picked));
            }
        }
    }
    found
}

/// Where a deployable workflow uses one of its inputs (`{"$input":
/// name}`), and what that place asks of the value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlaceholderUse {
    /// The workflow input's name.
    pub(crate) name: String,
    /// The path of the place, e.g. `inputs.a.process.inputs.name`.
    pub(crate) at: String,
    /// The description a workflow input standing there would have: the
    /// step input's own (one occurrence of it when the placeholder is one
    /// element), or an array of it when the placeholder is a map's `over`.
    pub(crate) input: Value,
}

/// The description of `process`'s input `id` (title, schema, occurrences),
/// as one occurrence when `single`.
fn input_description(process: &RegisteredProcess, id: &str, single: bool) -> Value {
    let mut input = process
        .record
        .description
        .get("inputs")
        .and_then(|inputs| inputs.get(id))
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    if single && let Value::Object(fields) = &mut input {
        fields.remove("minOccurs");
        fields.remove("maxOccurs");
    }
    input
}

/// Whether any input of `inputs` is a nested process.
pub(crate) fn has_nested(validator: &InputValidator, inputs: &Map<String, Value>) -> bool {
    !nested_calls(validator, inputs).is_empty()
}

/// A nested call (or a workflow's top call) whose `inputs` is not a JSON
/// object.
///
/// Happens when a request or a workflow is checked, or when a nested
/// call runs: the text, after the path of the call, becomes the 400
/// `invalid-request` detail, the `invalid workflow: …` of a refused
/// deploy, or the message of a job failed as `invalid-input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`inputs` must be an object")]
pub(super) struct InputsNotAnObject;

/// The inputs of a nested call (none when it gives none).
pub(super) fn call_inputs(
    call: &Map<String, Value>,
) -> Result<Map<String, Value>, InputsNotAnObject> {
    match call.get("inputs") {
        None => Ok(Map::new()),
        Some(Value::Object(inputs)) => Ok(inputs.clone()),
        Some(_) => Err(InputsNotAnObject),
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
    process: &RegisteredProcess,
    inputs: &Map<String, Value>,
    bounds: TreeBounds,
) -> Result<(), InvalidInput> {
    Walk {
        registry,
        base_url,
        bounds,
        steps: 0,
        placeholders: None,
    }
    .level(process, inputs, "inputs", 0)
}

/// [`check_tree`] for the template of a deployable workflow, whose
/// `{"$input": …}` placeholders stand for values not known until a job
/// runs it: each is checked as a nested process's value would be, and
/// returned with what its place asks of the value. `path` is where the
/// inputs are (e.g. `executionUnit.inputs`).
pub(crate) fn check_template(
    registry: &ProcessRegistry,
    base_url: &str,
    process: &RegisteredProcess,
    inputs: &Map<String, Value>,
    path: &str,
    bounds: TreeBounds,
) -> Result<Vec<PlaceholderUse>, InvalidInput> {
    let mut walk = Walk {
        registry,
        base_url,
        bounds,
        steps: 0,
        placeholders: Some(Vec::new()),
    };
    walk.level(process, inputs, path, 0)?;
    Ok(walk.placeholders.unwrap_or_default())
}

/// The JSON types a schema admits, when it says (`type`, a name or a list).
fn schema_types(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(one) => Some(vec![one.as_str()]),
        Value::Array(many) => Some(many.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// Whether a value of schema `produced` may satisfy schema `wanted`, as
/// far as their declared types tell: refused only when both declare types
/// and none can match (an integer is a number). Everything else about
/// the value is checked when it arrives.
pub(super) fn may_satisfy(produced: &Value, wanted: &Value) -> bool {
    match (schema_types(produced), schema_types(wanted)) {
        (Some(produced), Some(wanted)) => produced.iter().any(|p| {
            wanted
                .iter()
                .any(|w| p == w || (*p == "integer" && *w == "number"))
        }),
        _ => true,
    }
}

/// The schema of `process`'s input or output `id` in its description.
fn declared_schema<'a>(process: &'a RegisteredProcess, kind: &str, id: &str) -> Option<&'a Value> {
    process.record.description.get(kind)?.get(id)?.get("schema")
}

/// What one walk of a tree needs besides the level it is at.
struct Walk<'a> {
    /// Where the processes the calls name are looked up (as offered now).
    registry: &'a ProcessRegistry,
    /// This server's URL, to tell its processes' URLs from other servers'.
    base_url: &'a str,
    /// The bounds the whole tree is held to.
    bounds: TreeBounds,
    /// Nested calls met so far in the whole walk, against `max_steps` (a
    /// map counts once, however many elements it has).
    steps: usize,
    /// Checking a deployable workflow's template: the placeholders found
    /// so far. `None` in a job's request, where a placeholder is refused.
    placeholders: Option<Vec<PlaceholderUse>>,
}

impl Walk<'_> {
    /// Note a placeholder at `at` whose value would be `input` (see
    /// [`PlaceholderUse`]), or refuse it outside a workflow's template.
    fn placeholder(&mut self, name: &str, at: String, input: Value) -> Result<(), InvalidInput> {
        let Some(uses) = self.placeholders.as_mut() else {
            return Err(InvalidInput(format!(
                "{at}: {{\"$input\": \"{name}\"}} stands for an input of a deployed workflow; a request to execute gives values"
            )));
        };
        uses.push(PlaceholderUse {
            name: name.to_owned(),
            at,
            input,
        });
        Ok(())
    }

    /// Every nested call among the `inputs` of `process` (at `path`,
    /// `depth` deep), each checked and its value's schema held against the
    /// input's.
    fn level(
        &mut self,
        process: &RegisteredProcess,
        inputs: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), InvalidInput> {
        for (slot, name) in placeholder_slots(&process.validator, inputs) {
            let input = input_description(process, &slot.input, slot.occurrence.is_some());
            self.placeholder(name, slot.path(path), input)?;
        }
        for (slot, call) in nested_calls(&process.validator, inputs) {
            let at = format!("{}.process", slot.path(path));
            let produced = self.call(call, &at, depth + 1)?;
            if let (Some(produced), Some(wanted)) =
                (produced, declared_schema(process, "inputs", &slot.input))
                && !may_satisfy(&produced, wanted)
            {
                return Err(InvalidInput(format!(
                    "{at}: its output ({}) cannot be a value of input '{}' ({}) of process '{}'",
                    produced,
                    slot.input,
                    wanted,
                    process.id()
                )));
            }
        }
        Ok(())
    }

    /// One nested call, at `at` (its path), `depth` deep; the schema of
    /// the value it gives (its selected output's, or an array for a map),
    /// when known.
    fn call(
        &mut self,
        call: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<Option<Value>, InvalidInput> {
        let refuse = |reason: String| InvalidInput(format!("{at}: {reason}"));
        if depth > self.bounds.max_depth {
            return Err(refuse(format!(
                "processes are nested deeper than execution.max_nesting_depth = {}",
                self.bounds.max_depth
            )));
        }
        self.steps += 1;
        if self.steps > self.bounds.max_steps {
            return Err(refuse(format!(
                "the request nests more than execution.max_nested_steps = {} processes",
                self.bounds.max_steps
            )));
        }
        let reference = call
            .get("process")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(id) = process_id_of(reference, self.base_url) else {
            return self.remote_call(call, reference, at).map(|()| None);
        };
        let process = self
            .registry
            .get(id)
            .ok_or_else(|| refuse(format!("no process '{id}' on this server")))?;
        let output = selected_output(call, &process.validator).map_err(&refuse)?;
        let mut produced = declared_schema(&process, "outputs", &output).cloned();
        let child_inputs = call_inputs(call).map_err(|e| refuse(e.to_string()))?;
        let mut complete = child_inputs.clone();
        if let Some(map) = map_spec(call).map_err(&refuse)? {
            self.map(&map, &process, &child_inputs, at, depth)?;
            produced = Some(serde_json::json!({ "type": "array" }));
            // Each element stands in the mapped input (checked above); a
            // nested process does for the check of the others.
            complete.insert(map.input.clone(), json_call_placeholder());
        }
        process
            .validator
            .validate_with_nested(&complete)
            .map_err(|e| InvalidInput(format!("{at}.inputs: {e}")))?;
        self.level(&process, &child_inputs, &format!("{at}.inputs"), depth)?;
        Ok(produced)
    }

    /// A nested call naming a process on another server: refused unless
    /// `execution.remote_processes` allows it (see [`super::remote`]);
    /// then only its form is checked here (that server checks its inputs).
    fn remote_call(
        &mut self,
        call: &Map<String, Value>,
        reference: &str,
        at: &str,
    ) -> Result<(), InvalidInput> {
        let refuse = |reason: String| InvalidInput(format!("{at}: {reason}"));
        let allowed = &self.registry.config().execution.remote_processes;
        if !remote_allowed(reference, allowed) {
            return Err(refuse(format!(
                "'{reference}' is not a process of this server ({}/processes/…), and execution.remote_processes does not allow it",
                self.base_url
            )));
        }
        if call.contains_key("map") {
            return Err(refuse(
                "a process on another server cannot be mapped; map a process of this server".into(),
            ));
        }
        let selected = call.get("outputs").and_then(Value::as_object);
        if selected.is_none_or(|outputs| outputs.len() != 1) {
            return Err(refuse(
                "a process on another server must select the one output to use: \"outputs\": {\"<id>\": {}}".into(),
            ));
        }
        let inputs = call_inputs(call).map_err(|e| refuse(e.to_string()))?;
        for (id, value) in &inputs {
            match classify(value) {
                Occurrence::Process(_) => {
                    return Err(refuse(format!(
                        "inputs.{id}: the inputs of a process on another server are values, not nested processes"
                    )));
                }
                Occurrence::Placeholder(name) => {
                    let input = serde_json::json!({ "title": format!("{name} (for {reference})") });
                    self.placeholder(name, format!("{at}.inputs.{id}"), input)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A map: the input it names, and what it runs over (each element
    /// checked against the process's inputs, or the nested process that
    /// will give the array).
    fn map(
        &mut self,
        map: &MapSpec,
        process: &RegisteredProcess,
        inputs: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<(), InvalidInput> {
        let validator = &process.validator;
        let refuse = |reason: String| InvalidInput(format!("{at}.map: {reason}"));
        if !validator.has_input(&map.input) {
            return Err(refuse(format!("the process has no input '{}'", map.input)));
        }
        if inputs.contains_key(&map.input) {
            return Err(refuse(format!(
                "'{}' is given in inputs too; the map gives it",
                map.input
            )));
        }
        match &map.over {
            Value::Array(elements) => {
                if elements.len() > self.bounds.max_map_elements {
                    return Err(refuse(format!(
                        "{} elements, more than execution.max_map_elements = {}",
                        elements.len(),
                        self.bounds.max_map_elements
                    )));
                }
                for (index, element) in elements.iter().enumerate() {
                    if let Occurrence::Placeholder(name) = classify(element) {
                        let input = input_description(process, &map.input, true);
                        self.placeholder(name, format!("{at}.map.over[{index}]"), input)?;
                        continue;
                    }
                    let mut one = inputs.clone();
                    one.insert(map.input.clone(), element.clone());
                    validator
                        .validate_with_nested(&one)
                        .map_err(|e| InvalidInput(format!("{at}.map.over[{index}]: {e}")))?;
                }
                Ok(())
            }
            over => match classify(over) {
                Occurrence::Placeholder(name) => {
                    let element = input_description(process, &map.input, true);
                    let mut input = serde_json::json!({
                        "title": format!("The elements '{}' is given, one per run", map.input),
                        "schema": {"type": "array"},
                    });
                    if let Some(schema) = element.get("schema") {
                        input["schema"]["items"] = schema.clone();
                    }
                    self.placeholder(name, format!("{at}.map.over"), input)
                }
                Occurrence::Process(call) => {
                    let over_at = format!("{at}.map.over");
                    let produced = self.call(call, &over_at, depth + 1)?;
                    match produced {
                        Some(schema)
                            if !may_satisfy(&schema, &serde_json::json!({"type": "array"})) =>
                        {
                            Err(InvalidInput(format!(
                                "{over_at}: its output ({schema}) is not an array to map over"
                            )))
                        }
                        _ => Ok(()),
                    }
                }
                _ => Err(refuse(
                    "map.over must be an array, or a nested process whose output is one".into(),
                )),
            },
        }
    }
}

/// A value that passes [`InputValidator::validate_with_nested`] for any
/// input: a nested process standing for a value not known yet.
fn json_call_placeholder() -> Value {
    serde_json::json!({ "process": "(the map's element)" })
}

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
