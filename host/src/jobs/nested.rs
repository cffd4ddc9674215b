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
//! Each nested process runs as a job of its own, its record pointing `up`
//! to the parent, all the steps of one job at once: `jobs/steps.rs` says
//! how, and what a failed, dismissed or late step does to its parent. This
//! file is the syntax and the check; that one is the run.
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
//! What the jobs of one tree share (a fuel budget, calls written twice made
//! once) is in `jobs/tree.rs`; on a cluster, the leaves of a tree go to
//! any node (`jobs/spread.rs`); a `process` on another server, when
//! allowed, is called over HTTP (`jobs/remote.rs`); and a tree with
//! `$input` placeholders can be deployed as a process
//! ([`super::workflow`]).

use serde_json::{Map, Value};

use super::registry::{ProcessRegistry, RegisteredProcess};
use super::remote::remote_allowed;
use super::validate::{InputValidator, InvalidInput, Occurrence, classify};

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
pub(super) struct MapSpec {
    /// The input each element is given as.
    pub(super) input: String,
    /// The array, or a nested process whose output is the array.
    pub(super) over: Value,
    /// Leave out the elements whose run failed, instead of failing.
    pub(super) skip_failures: bool,
    /// Most elements running at once (the workers bound it too).
    pub(super) parallelism: usize,
}

/// The `map` of a nested call, if it has one. `Err` is the reason, for the
/// caller to prefix with the call's path: an unknown member, no `input`
/// string, no `over`, an `onError` other than `fail` or `skip`, a
/// `parallelism` that is not a whole number of at least 1. Without
/// `parallelism`, only what `run_call_once` allows at once bounds the
/// elements (the workers, or on a cluster a share of the queue). Whether
/// `input` names an input of the process, and what `over` holds, is
/// checked by the walk (`Walk::map`).
pub(super) fn map_spec(call: &Map<String, Value>) -> Result<Option<MapSpec>, String> {
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
pub(super) struct Slot {
    /// The parent's input the value goes to.
    pub(super) input: String,
    /// The index in the input's array when the input is given as several
    /// occurrences (see `InputValidator::is_repeated`); `None` when the
    /// call is the input's whole value.
    pub(super) occurrence: Option<usize>,
}

impl Slot {
    /// The slot's path under `prefix`, as refusals and step records name
    /// it: `inputs.a`, or `inputs.a[1]` for the second occurrence.
    pub(super) fn path(&self, prefix: &str) -> String {
        match self.occurrence {
            Some(i) => format!("{prefix}.{}[{i}]", self.input),
            None => format!("{prefix}.{}", self.input),
        }
    }
}

/// Every nested process in `inputs`, with its slot.
pub(super) fn nested_calls<'a>(
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
pub(super) fn selected_output(
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
}
