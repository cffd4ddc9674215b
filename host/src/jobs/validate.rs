//! Input validation against a process description, before anything runs,
//! and output checks after it ran.
//!
//! Each input of the description becomes an [`InputRule`]: how often it may
//! occur (`minOccurs`/`maxOccurs`), its compiled JSON Schema, and the media
//! types it accepts. Values arrive as plain JSON, as qualified values
//! (`{"value": …, "mediaType": …}`) or as references (`{"href": …}`, checked
//! again after the host fetched them).
//!
//! Each output becomes an [`OutputRule`]: its id, its compiled schema and
//! the media types its schema declares. [`InputValidator::check_outputs`]
//! holds a successful run to them (declared ids, each once, JSON values
//! valid against their schema, media types the description does not
//! contradict), so a guest cannot make the server store or serve an output
//! its description does not promise (e.g. `text/html` where it declares
//! `image/png`, or `null` where it declares a number).
//!
//! [`OutputChecks::Warn`] (`output_checks = "warn"`, for processes migrated
//! from servers that never checked) turns the two checks a client can live
//! without into warnings: a schema violation keeps the value, an undeclared
//! output is dropped (nothing describes it, so nothing may serve it). A
//! duplicate id or a contradicted media type still fails the job: those
//! decide what the server would send, and under which `Content-Type`.

use serde_json::{Map, Value};

use crate::config::OutputChecks;
use crate::runtime::{OutputProblem, OutputValue, ProcessOutput, RunOutcome};

/// Keys that make an object a qualified value rather than a plain one.
const QUALIFIED_KEYS: &[&str] = &["value", "mediaType", "encoding", "schema"];

/// Why a description's inputs cannot be used for validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid process description: {0}")]
pub struct DescriptionError(pub String);

/// Why an execute request's inputs are rejected; the text names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// What the description says of one input.
#[derive(Debug)]
struct InputRule {
    /// The input id, as requests name it.
    id: String,
    /// `minOccurs`, 1 when the description says nothing: 0 makes the
    /// input optional.
    min_occurs: u64,
    /// `None` means unbounded.
    max_occurs: Option<u64>,
    /// Held against each occurrence (the value inside a qualified value,
    /// whose `mediaType` it must accept).
    schema: DeclaredSchema,
}

/// What the description says of one output.
#[derive(Debug)]
struct OutputRule {
    /// The output id.
    id: String,
    /// Held against JSON values (binary values are bytes: their schema
    /// describes the encoding, not a JSON value) and the media type of
    /// every value.
    schema: DeclaredSchema,
}

/// The `schema` of one input or output, compiled once when the process is
/// registered: an input's occurrences and an output's values are checked
/// against it on every job.
#[derive(Debug)]
struct DeclaredSchema {
    /// The compiled schema. `format` is not asserted.
    validator: jsonschema::Validator,
    /// The `contentMediaType`s it names (see [`collect_media_types`]);
    /// empty when it names none, and then any media type is accepted.
    media_types: Vec<String>,
    /// Its own `type` is `array`: an array given for an input that may
    /// occur several times is then one value, never a list of
    /// occurrences.
    is_array: bool,
}

/// A run's outcome after the output checks, and what was let through under
/// [`OutputChecks::Warn`]: one line per problem, naming the output.
#[derive(Debug)]
pub struct CheckedOutcome {
    /// The outcome: unchanged, [`RunOutcome::InvalidOutput`], or (warn) a
    /// success without the undeclared outputs.
    pub outcome: RunOutcome,
    /// Problems relaxed to warnings; empty under [`OutputChecks::Strict`].
    pub warnings: Vec<String>,
}

/// The compiled input rules and the output rules of one process.
#[derive(Debug)]
pub struct InputValidator {
    /// One per declared input; a request may name no other.
    rules: Vec<InputRule>,
    /// One per declared output; a run may return no other (under
    /// `strict`), and a nested call may select only these.
    outputs: Vec<OutputRule>,
}

/// One occurrence of an input, classified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Occurrence<'a> {
    /// A reference to fetch.
    Reference(&'a str),
    /// A qualified value: the value and its media type.
    Qualified(&'a Value, Option<&'a str>),
    /// A nested process (OGC API - Processes Part 3): `{"process": …,
    /// "inputs": {…}, "outputs": {…}}`, whose output becomes the value
    /// ([`super::nested`]).
    Process(&'a Map<String, Value>),
    /// `{"$input": "<name>"}`: in a deployable workflow, the value of the
    /// workflow's input `<name>` ([`super::workflow`]). Anywhere else it is
    /// refused with the rest of a tree ([`super::nested::check_tree`]).
    Placeholder(&'a str),
    /// A plain value.
    Plain(&'a Value),
}

/// The members a nested process call may have.
const NESTED_KEYS: &[&str] = &["process", "inputs", "outputs", "map"];

/// Classify an input value. The forms are tried in this order, so an
/// object with a string `href` is a reference whatever else it holds; a
/// qualified value needs `value` and no member outside
/// [`QUALIFIED_KEYS`]; a placeholder is an object with `$input` alone; a
/// nested call names its `process` and has no member outside
/// `NESTED_KEYS`. Anything else, objects included, is a plain value.
pub(crate) fn classify(value: &Value) -> Occurrence<'_> {
    if let Value::Object(fields) = value {
        if let Some(Value::String(href)) = fields.get("href") {
            return Occurrence::Reference(href);
        }
        if let Some(inner) = fields.get("value")
            && fields.keys().all(|k| QUALIFIED_KEYS.contains(&k.as_str()))
        {
            return Occurrence::Qualified(inner, fields.get("mediaType").and_then(Value::as_str));
        }
        if let (Some(Value::String(name)), 1) = (fields.get("$input"), fields.len()) {
            return Occurrence::Placeholder(name);
        }
        if matches!(fields.get("process"), Some(Value::String(_)))
            && fields.keys().all(|k| NESTED_KEYS.contains(&k.as_str()))
        {
            return Occurrence::Process(fields);
        }
    }
    Occurrence::Plain(value)
}

impl InputValidator {
    /// Compile the rules of a process description. An input without
    /// `minOccurs` is required once, without `maxOccurs` it occurs at most
    /// once, and without a `schema` it accepts any value; an output
    /// without a schema accepts any value too. Fails on `inputs` that is
    /// not an object, a `maxOccurs` that is neither a number nor
    /// `"unbounded"`, or a schema that does not compile.
    pub fn new(description: &Value) -> Result<Self, DescriptionError> {
        let mut rules = Vec::new();
        let empty = Map::new();
        let inputs = match description.get("inputs") {
            None => &empty,
            Some(Value::Object(inputs)) => inputs,
            Some(_) => return Err(DescriptionError("`inputs` must be an object".into())),
        };
        for (id, input) in inputs {
            let min_occurs = input.get("minOccurs").and_then(Value::as_u64).unwrap_or(1);
            let max_occurs = match input.get("maxOccurs") {
                None => Some(1),
                Some(Value::String(s)) if s == "unbounded" => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    DescriptionError(format!(
                        "input '{id}': maxOccurs must be a number or \"unbounded\""
                    ))
                })?),
            };
            rules.push(InputRule {
                id: id.clone(),
                min_occurs,
                max_occurs,
                schema: DeclaredSchema::of(input, "input", id)?,
            });
        }
        let mut outputs = Vec::new();
        if let Some(Value::Object(declared)) = description.get("outputs") {
            for (id, output) in declared {
                outputs.push(OutputRule {
                    id: id.clone(),
                    schema: DeclaredSchema::of(output, "output", id)?,
                });
            }
        }
        Ok(Self { rules, outputs })
    }

    /// Whether the process has an input with this id.
    pub fn has_input(&self, id: &str) -> bool {
        self.rules.iter().any(|r| r.id == id)
    }

    /// Whether the process has an output with this id.
    pub fn has_output(&self, id: &str) -> bool {
        self.outputs.iter().any(|o| o.id == id)
    }

    /// Hold a successful run's outputs to the description: every id
    /// declared and returned once, every JSON value valid against its
    /// schema, every media type one the output's schema allows (when it
    /// names any). A breach turns the run into [`RunOutcome::InvalidOutput`]
    /// naming the output; any other outcome passes through unchanged.
    pub fn check_outputs(&self, outcome: RunOutcome) -> RunOutcome {
        self.check_outputs_as(outcome, OutputChecks::Strict).outcome
    }

    /// [`InputValidator::check_outputs`] under the process's
    /// [`OutputChecks`]: with `Warn`, schema violations and undeclared ids
    /// are reported in [`CheckedOutcome::warnings`] instead of failing the
    /// run (see the module documentation).
    pub fn check_outputs_as(&self, outcome: RunOutcome, checks: OutputChecks) -> CheckedOutcome {
        let mut warnings = Vec::new();
        let RunOutcome::Success { outputs } = outcome else {
            return CheckedOutcome { outcome, warnings };
        };
        let mut kept = Vec::with_capacity(outputs.len());
        for (index, output) in outputs.iter().enumerate() {
            let problem = match self.output_problem(&outputs[..index], output) {
                None => {
                    kept.push(index);
                    continue;
                }
                Some(problem) => problem,
            };
            let relaxable = matches!(
                problem,
                OutputProblem::Undeclared { .. } | OutputProblem::SchemaViolated { .. }
            );
            if checks == OutputChecks::Warn && relaxable {
                let undeclared = matches!(problem, OutputProblem::Undeclared { .. });
                let invalid = RunOutcome::InvalidOutput {
                    output: output.id.clone(),
                    problem,
                };
                let reason = invalid.failure_reason().unwrap_or_default();
                if undeclared {
                    warnings.push(format!("{reason} (output_checks = \"warn\": dropped)"));
                } else {
                    warnings.push(format!("{reason} (output_checks = \"warn\": kept)"));
                    kept.push(index);
                }
                continue;
            }
            return CheckedOutcome {
                outcome: RunOutcome::InvalidOutput {
                    output: output.id.clone(),
                    problem,
                },
                warnings,
            };
        }
        let outputs = if kept.len() == outputs.len() {
            outputs
        } else {
            outputs
                .into_iter()
                .enumerate()
                .filter(|(index, _)| kept.contains(index))
                .map(|(_, output)| output)
                .collect()
        };
        CheckedOutcome {
            outcome: RunOutcome::Success { outputs },
            warnings,
        }
    }

    /// What is wrong with `output`, returned after `before`, if anything.
    fn output_problem(
        &self,
        before: &[ProcessOutput],
        output: &ProcessOutput,
    ) -> Option<OutputProblem> {
        let Some(rule) = self.outputs.iter().find(|r| r.id == output.id) else {
            return Some(OutputProblem::Undeclared {
                declared: self.outputs.iter().map(|r| r.id.clone()).collect(),
            });
        };
        if before.iter().any(|o| o.id == output.id) {
            return Some(OutputProblem::Duplicate);
        }
        if !rule.schema.accepts_media_type(&output.media_type) {
            return Some(OutputProblem::MediaTypeContradicted {
                media_type: output.media_type.clone(),
                declared: rule.schema.media_types.clone(),
            });
        }
        if let OutputValue::Json(value) = &output.value
            && let Err(error) = rule.schema.validator.validate(value)
        {
            let reason = schema_reason(&error);
            return Some(OutputProblem::SchemaViolated {
                reason: reason.trim_start_matches(':').trim_start().to_owned(),
            });
        }
        None
    }

    /// The occurrences of an input value: the elements of an array for
    /// inputs that may occur several times (unless the schema itself is an
    /// array), else the value itself.
    pub fn occurrences<'a>(&self, id: &str, value: &'a Value) -> Vec<&'a Value> {
        match value {
            Value::Array(items) if self.is_repeated(id, value) => items.iter().collect(),
            _ => vec![value],
        }
    }

    /// Whether `value` is an array whose items are separate occurrences.
    pub fn is_repeated(&self, id: &str, value: &Value) -> bool {
        let rule = self.rules.iter().find(|r| r.id == id);
        matches!(value, Value::Array(_))
            && rule.is_some_and(|r| r.max_occurs != Some(1) && !r.schema.is_array)
    }

    /// Check every input: known ids, required ones present, occurrence
    /// counts, schemas and media types. References are only checked for
    /// their form here; their content is checked after fetching.
    pub fn validate(&self, inputs: &Map<String, Value>) -> Result<(), InvalidInput> {
        self.validate_as(inputs, false)
    }

    /// [`Self::validate`], except that a nested process stands for the
    /// value it will produce: its form is checked here, the process it
    /// names and its own inputs by [`super::nested::check_tree`], and the
    /// value it produced once it ran (by [`Self::validate`]).
    pub fn validate_with_nested(&self, inputs: &Map<String, Value>) -> Result<(), InvalidInput> {
        self.validate_as(inputs, true)
    }

    /// The output ids of the description.
    pub fn output_ids(&self) -> Vec<&str> {
        self.outputs.iter().map(|o| o.id.as_str()).collect()
    }

    /// [`Self::validate`] and [`Self::validate_with_nested`]: unknown ids
    /// first (naming the ones the process takes), then presence, the
    /// number of occurrences and each occurrence, rule by rule; the first
    /// refusal is the one reported.
    fn validate_as(&self, inputs: &Map<String, Value>, nested: bool) -> Result<(), InvalidInput> {
        for id in inputs.keys() {
            if !self.rules.iter().any(|r| &r.id == id) {
                let known: Vec<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
                return Err(InvalidInput(format!(
                    "unknown input '{id}'; this process takes: {}",
                    known.join(", ")
                )));
            }
        }
        for rule in &self.rules {
            let Some(value) = inputs.get(&rule.id) else {
                if rule.min_occurs > 0 {
                    return Err(InvalidInput(format!("input '{}' is required", rule.id)));
                }
                continue;
            };
            let occurrences = self.occurrences(&rule.id, value);
            let count = occurrences.len() as u64;
            if count < rule.min_occurs {
                return Err(InvalidInput(format!(
                    "input '{}' occurs {count} times, at least {} required",
                    rule.id, rule.min_occurs
                )));
            }
            if let Some(max) = rule.max_occurs
                && count > max
            {
                return Err(InvalidInput(format!(
                    "input '{}' occurs {count} times, at most {max} allowed",
                    rule.id
                )));
            }
            for occurrence in occurrences {
                rule.check(occurrence, nested)?;
            }
        }
        Ok(())
    }
}

impl InputRule {
    /// Check one occurrence. A reference only for its scheme (its content
    /// is checked once fetched); a nested call or placeholder not at all
    /// when `nested` (it stands for a value to come), else as the plain
    /// object it is; a qualified value for its media type, then its
    /// `value` against the schema; a plain value against the schema.
    fn check(&self, value: &Value, nested: bool) -> Result<(), InvalidInput> {
        let inner = match classify(value) {
            Occurrence::Process(_) | Occurrence::Placeholder(_) if nested => return Ok(()),
            // Where nested processes are not run, it is just an object.
            Occurrence::Process(_) | Occurrence::Placeholder(_) => value,
            Occurrence::Reference(href) => {
                return if href.starts_with("http://") || href.starts_with("https://") {
                    Ok(())
                } else {
                    Err(InvalidInput(format!(
                        "input '{}': only http and https references are supported, got '{href}'",
                        self.id
                    )))
                };
            }
            Occurrence::Qualified(inner, media_type) => {
                if let Some(media_type) = media_type
                    && !self.schema.accepts_media_type(media_type)
                {
                    return Err(InvalidInput(format!(
                        "input '{}': media type '{media_type}' is not accepted; expected one of: {}",
                        self.id,
                        self.schema.media_types.join(", ")
                    )));
                }
                inner
            }
            Occurrence::Plain(value) => value,
        };
        self.schema
            .validator
            .validate(inner)
            .map_err(|e| InvalidInput(format!("input '{}'{}", self.id, schema_reason(&e))))
    }
}

/// A schema violation as text: where in the value (when not at its top),
/// then the rule it breaks, e.g. `" at /area: null is not of type
/// \"number\""`.
fn schema_reason(error: &jsonschema::ValidationError<'_>) -> String {
    let at = error.instance_path().to_string();
    let location = if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    };
    // The message quotes the offending value: keep it short when the value
    // is big (a 1 MB input must not make a 1 MB error).
    let mut reason = error.to_string();
    if reason.len() > MAX_QUOTED_REASON {
        reason = error.masked_with("the value").to_string();
    }
    format!("{location}: {reason}")
}

/// Longest schema-violation reason quoted with its value; longer ones name
/// the rule without the value.
const MAX_QUOTED_REASON: usize = 512;

impl DeclaredSchema {
    /// The `schema` of an input or output description (`declared`),
    /// compiled; a description without one accepts any value. `kind` and
    /// `id` name it in the error of a schema that does not compile.
    fn of(declared: &Value, kind: &str, id: &str) -> Result<Self, DescriptionError> {
        let schema = declared.get("schema").unwrap_or(&Value::Bool(true));
        let validator = jsonschema::options()
            .should_validate_formats(false)
            .build(schema)
            .map_err(|e| DescriptionError(format!("{kind} '{id}': invalid schema: {e}")))?;
        let mut media_types = Vec::new();
        collect_media_types(schema, &mut media_types);
        Ok(Self {
            validator,
            media_types,
            is_array: schema.get("type").and_then(Value::as_str) == Some("array"),
        })
    }

    /// Whether a value in `media_type` may be given (an input's qualified
    /// value) or returned (an output): any when the schema names no media
    /// type, else one that matches a named one.
    fn accepts_media_type(&self, media_type: &str) -> bool {
        self.media_types.is_empty()
            || self
                .media_types
                .iter()
                .any(|m| media_type_matches(m, media_type))
    }
}

/// Media types named by `contentMediaType` anywhere in a schema's
/// `oneOf`/`anyOf` branches (or at its top).
fn collect_media_types(schema: &Value, out: &mut Vec<String>) {
    if let Some(media) = schema.get("contentMediaType").and_then(Value::as_str) {
        out.push(media.to_owned());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            for branch in branches {
                collect_media_types(branch, out);
            }
        }
    }
}

/// `application/octet-stream` and `*/*` accept anything; `image/*` accepts
/// any image; parameters (`; charset=…`) are ignored.
fn media_type_matches(accepted: &str, given: &str) -> bool {
    let essence = |m: &str| {
        m.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let (accepted, given) = (essence(accepted), essence(given));
    accepted == given
        || accepted == "*/*"
        || accepted == "application/octet-stream"
        || accepted
            .strip_suffix("/*")
            .is_some_and(|top| given.split('/').next() == Some(top))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runtime::{OutputValue, ProcessOutput};

    fn validator() -> InputValidator {
        InputValidator::new(&json!({
            "inputs": {
                "name": { "schema": { "type": "string" } },
                "count": { "minOccurs": 0, "schema": { "type": "integer", "maximum": 5 } },
                "tags": { "minOccurs": 0, "maxOccurs": 3, "schema": { "type": "string" } },
                "image": { "minOccurs": 0, "schema": { "type": "string", "contentEncoding": "base64", "contentMediaType": "image/png" } }
            },
            "outputs": { "out": { "schema": {} } }
        }))
        .unwrap()
    }

    fn check(inputs: serde_json::Value) -> Result<(), InvalidInput> {
        validator().validate(inputs.as_object().unwrap())
    }

    #[test]
    fn accepts_valid_inputs_in_every_form() {
        check(json!({"name": "a"})).unwrap();
        check(json!({"name": {"value": "a", "mediaType": "text/plain"}, "count": 5})).unwrap();
        check(json!({"name": "a", "tags": ["x", "y"]})).unwrap();
        check(json!({"name": {"href": "https://example.org/name.txt"}})).unwrap();
        check(json!({"name": "a", "image": {"value": "AAAA", "mediaType": "image/png"}})).unwrap();
    }

    #[test]
    fn a_huge_invalid_value_is_not_quoted_back() {
        let huge = "x".repeat(100_000);
        let error = check(json!({"name": "a", "count": huge}))
            .unwrap_err()
            .to_string();
        assert!(error.len() < 1024, "{} bytes", error.len());
        assert!(error.contains("input 'count'"), "{error}");
        assert!(
            error.contains("integer"),
            "the rule is still named: {error}"
        );
        let small = check(json!({"name": "a", "count": "seven"}))
            .unwrap_err()
            .to_string();
        assert!(
            small.contains("\"seven\""),
            "small values are quoted: {small}"
        );
    }

    #[test]
    fn rejections_name_the_input() {
        let cases = [
            (json!({}), "input 'name' is required"),
            (json!({"name": "a", "bogus": 1}), "unknown input 'bogus'"),
            (json!({"name": 5}), "input 'name'"),
            (json!({"name": "a", "count": 6}), "input 'count'"),
            (
                json!({"name": "a", "tags": ["1", "2", "3", "4"]}),
                "at most 3",
            ),
            (
                json!({"name": {"href": "file:///etc/passwd"}}),
                "only http and https",
            ),
            (
                json!({"name": "a", "image": {"value": "AAAA", "mediaType": "image/tiff"}}),
                "media type 'image/tiff'",
            ),
        ];
        for (inputs, expected) in cases {
            let err = check(inputs.clone()).unwrap_err().0;
            assert!(err.contains(expected), "{inputs}: {err}");
        }
    }

    #[test]
    fn knows_its_outputs() {
        assert!(validator().has_output("out"));
        assert!(!validator().has_output("nope"));
    }

    /// A JSON output with this id and media type.
    fn output(id: &str, media_type: &str) -> ProcessOutput {
        ProcessOutput {
            id: id.into(),
            media_type: media_type.into(),
            value: OutputValue::Json(json!("x")),
        }
    }

    #[test]
    fn outputs_are_held_to_the_description() {
        let validator = InputValidator::new(&json!({
            "outputs": {
                "any": { "schema": { "type": "string" } },
                "png": { "schema": { "type": "string", "contentEncoding": "binary", "contentMediaType": "image/png" } },
                "geo": { "schema": { "oneOf": [
                    { "type": "object", "contentMediaType": "application/geo+json" },
                    { "type": "string", "contentMediaType": "image/*" }
                ] } }
            }
        }))
        .unwrap();
        let check =
            |outputs: Vec<ProcessOutput>| validator.check_outputs(RunOutcome::Success { outputs });
        let fine = vec![
            output("any", "text/plain"),
            output("png", "image/png"),
            output("geo", "application/geo+json; charset=utf-8"),
        ];
        assert!(check(fine).is_success());
        assert!(check(vec![output("geo", "image/tiff")]).is_success());
        let cases = [
            (
                vec![output("any", "text/plain"), output("extra", "text/plain")],
                "the process returned an invalid output 'extra': the process description does not declare it (declared: ",
            ),
            (
                vec![output("any", "text/plain"), output("any", "text/plain")],
                "the process returned an invalid output 'any': it was returned more than once",
            ),
            (
                vec![output("png", "text/html")],
                "the process returned an invalid output 'png': media type 'text/html' contradicts the description, which declares image/png",
            ),
            (
                vec![output("geo", "text/html")],
                "media type 'text/html' contradicts the description, which declares application/geo+json, image/*",
            ),
        ];
        for (outputs, expected) in cases {
            let outcome = check(outputs);
            assert_eq!(outcome.kind(), "invalid-output");
            let reason = outcome.failure_reason().unwrap();
            assert!(reason.contains(expected), "{reason}");
        }
        // Failures pass through untouched.
        let failed = RunOutcome::Trap {
            message: "boom".into(),
        };
        assert_eq!(validator.check_outputs(failed.clone()), failed);
    }

    fn json_output(id: &str, value: serde_json::Value) -> ProcessOutput {
        ProcessOutput {
            id: id.into(),
            media_type: "application/json".into(),
            value: OutputValue::Json(value),
        }
    }

    fn area_and_shape() -> InputValidator {
        InputValidator::new(&json!({
            "outputs": {
                "area": { "schema": { "type": "number" } },
                "shape": { "schema": { "type": "object", "required": ["kind"] } },
                "unit": { "schema": { "type": "string", "enum": ["m2", "ha"] } }
            }
        }))
        .unwrap()
    }

    /// The three contradictions of issue 17: null for a number, a string
    /// for an object, an undeclared id; each names the output.
    #[test]
    fn values_their_output_schema_refuses_fail_the_run_naming_the_output() {
        let validator = area_and_shape();
        let good = vec![
            json_output("area", json!(12.5)),
            json_output("shape", json!({"kind": "square"})),
            json_output("unit", json!("m2")),
        ];
        assert!(
            validator
                .check_outputs(RunOutcome::Success { outputs: good })
                .is_success()
        );
        let cases = [
            (
                json_output("area", json!(null)),
                "invalid output 'area': null is not of type \"number\"",
            ),
            (
                json_output("shape", json!("square")),
                "invalid output 'shape': \"square\" is not of type \"object\"",
            ),
            (
                json_output("shape", json!({"sides": 4})),
                "invalid output 'shape': \"kind\" is a required property",
            ),
            (
                json_output("unit", json!("acres")),
                "invalid output 'unit': \"acres\" is not one of",
            ),
            (
                json_output("perimeter", json!(4)),
                "invalid output 'perimeter': the process description does not declare it (declared: area, shape, unit)",
            ),
        ];
        for (output, expected) in cases {
            let outcome = validator.check_outputs(RunOutcome::Success {
                outputs: vec![output],
            });
            assert_eq!(outcome.kind(), "invalid-output");
            let reason = outcome.failure_reason().unwrap();
            assert!(reason.contains(expected), "{reason}");
        }
        // Binary values are bytes: the schema describes their encoding.
        let bytes = ProcessOutput {
            id: "area".into(),
            media_type: "application/octet-stream".into(),
            value: OutputValue::Bytes(vec![1, 2]),
        };
        assert!(
            validator
                .check_outputs(RunOutcome::Success {
                    outputs: vec![bytes]
                })
                .is_success()
        );
    }

    #[test]
    fn warn_keeps_refused_values_drops_undeclared_outputs_and_says_so() {
        let validator = area_and_shape();
        let checked = validator.check_outputs_as(
            RunOutcome::Success {
                outputs: vec![
                    json_output("area", json!(null)),
                    json_output("perimeter", json!(4)),
                    json_output("unit", json!("m2")),
                ],
            },
            OutputChecks::Warn,
        );
        let RunOutcome::Success { outputs } = &checked.outcome else {
            panic!("{:?}", checked.outcome);
        };
        let ids: Vec<&str> = outputs.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["area", "unit"]);
        assert_eq!(checked.warnings.len(), 2, "{:?}", checked.warnings);
        assert!(
            checked.warnings[0].contains("invalid output 'area'")
                && checked.warnings[0].ends_with("kept)")
        );
        assert!(
            checked.warnings[1].contains("invalid output 'perimeter'")
                && checked.warnings[1].ends_with("dropped)")
        );
        // A duplicate still fails under warn.
        let duplicate = validator.check_outputs_as(
            RunOutcome::Success {
                outputs: vec![json_output("area", json!(1)), json_output("area", json!(2))],
            },
            OutputChecks::Warn,
        );
        assert_eq!(duplicate.outcome.kind(), "invalid-output");
    }
}
