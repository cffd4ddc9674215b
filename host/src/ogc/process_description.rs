//! Checking a process description against the shape of the official
//! `process.yaml` (OGC API - Processes Part 1 1.0).
//!
//! The official schema is spread over YAML files with relative `$ref`s
//! (`process.yaml` → `processSummary.yaml` → `descriptionType.yaml`,
//! `inputDescription.yaml`, `outputDescription.yaml`, `schema.yaml`, …);
//! this is the same set of constraints as one JSON Schema, so the binary
//! needs no files at run time. The end-to-end tests check that every
//! description we serve also passes the official YAML schemas.

use std::sync::OnceLock;

use serde_json::{Value, json};

fn schema() -> Value {
    let link = json!({
        "type": "object",
        "required": ["href"],
        "properties": {
            "href": { "type": "string" }, "rel": { "type": "string" }, "type": { "type": "string" },
            "hreflang": { "type": "string" }, "title": { "type": "string" }
        }
    });
    let metadata = json!({
        "type": "object",
        "properties": { "title": { "type": "string" }, "role": { "type": "string" }, "href": { "type": "string" } }
    });
    let description_type = json!({
        "title": { "type": "string" },
        "description": { "type": "string" },
        "keywords": { "type": "array", "items": { "type": "string" } },
        "metadata": { "type": "array", "items": metadata },
    });
    let mut input = description_type.as_object().cloned().unwrap_or_default();
    input.insert(
        "minOccurs".into(),
        json!({ "type": "integer", "minimum": 0 }),
    );
    input.insert("maxOccurs".into(), json!({ "oneOf": [ { "type": "integer", "minimum": 0 }, { "type": "string", "enum": ["unbounded"] } ] }));
    input.insert("schema".into(), json!({ "type": "object" }));
    let mut output = description_type.as_object().cloned().unwrap_or_default();
    output.insert("schema".into(), json!({ "type": "object" }));
    let mut process = description_type.as_object().cloned().unwrap_or_default();
    process.insert("id".into(), json!({ "type": "string" }));
    process.insert("version".into(), json!({ "type": "string" }));
    process.insert("jobControlOptions".into(), json!({ "type": "array", "items": { "enum": ["sync-execute", "async-execute", "dismiss"] } }));
    process.insert(
        "outputTransmission".into(),
        json!({ "type": "array", "items": { "enum": ["value", "reference"] } }),
    );
    process.insert("links".into(), json!({ "type": "array", "items": link }));
    process.insert("inputs".into(), json!({ "type": "object", "additionalProperties": { "type": "object", "required": ["schema"], "properties": input } }));
    process.insert("outputs".into(), json!({ "type": "object", "additionalProperties": { "type": "object", "required": ["schema"], "properties": output } }));
    json!({ "type": "object", "required": ["id", "version"], "properties": process })
}

/// Why a process description is refused: it does not have the shape of
/// `process.yaml`, or it says something the shape allows but no request
/// could use.
///
/// Happens when a process is registered (deploy, replace, a built-in or a
/// processes-directory module at start-up) and its description, the
/// module's `describe()` or the one given with it, fails
/// [`check_process_description`]. A deploying client gets a 400
/// `invalid-request` whose `detail` is `invalid process description: `
/// followed by this error's text, which names what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum InvalidDescription {
    /// The description does not have the shape of `process.yaml`: up to
    /// three of the schema's complaints, each after the JSON pointer of
    /// the part at fault (none for the top), joined by `; `.
    #[error("not a valid OGC process description: {}", shape_problems(.0))]
    Shape(Vec<jsonschema::ValidationError<'static>>),
    /// An input's `minOccurs` is above its `maxOccurs`: no request could
    /// ever satisfy it.
    #[error("input '{input}': minOccurs {min} is greater than maxOccurs {max}")]
    Occurrences {
        /// The input id.
        input: String,
        /// Its `minOccurs`.
        min: u64,
        /// Its `maxOccurs` (a number: `unbounded` is never too small).
        max: u64,
    },
    /// An output's `schema` is not a JSON Schema that compiles.
    #[error("output '{output}': invalid schema: {source}")]
    OutputSchema {
        /// The output id.
        output: String,
        /// Why the schema does not compile.
        #[source]
        source: jsonschema::ValidationError<'static>,
    },
    /// The server's own schema of `process.yaml` (built by `schema`) did not
    /// compile: a bug of this server, never of the description. Every
    /// description is refused with the compiler's text until it is fixed.
    #[error("{0}")]
    OwnSchema(&'static jsonschema::ValidationError<'static>),
}

/// The schema's complaints as [`InvalidDescription::Shape`] shows them:
/// each after the JSON pointer of the part at fault (none for the top),
/// joined by `; `.
fn shape_problems(errors: &[jsonschema::ValidationError<'static>]) -> String {
    errors
        .iter()
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Check a description; the error names what is wrong and where: first its
/// shape against `process.yaml`, then what the shape cannot say (see
/// `check_meaning`).
pub fn check_process_description(description: &Value) -> Result<(), InvalidDescription> {
    check_shape(description)?;
    check_meaning(description)
}

/// What a description may not say although `process.yaml` allows it: an
/// input whose `minOccurs` is above its `maxOccurs` (no request could ever
/// satisfy it), and an output `schema` that is not a JSON Schema (inputs'
/// schemas are compiled by the input validator, which refuses them too).
fn check_meaning(description: &Value) -> Result<(), InvalidDescription> {
    let entries = |key: &str| {
        description
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
    };
    for (id, input) in entries("inputs") {
        let min = input.get("minOccurs").and_then(Value::as_u64).unwrap_or(1);
        if let Some(max) = input.get("maxOccurs").and_then(Value::as_u64)
            && min > max
        {
            return Err(InvalidDescription::Occurrences {
                input: id.clone(),
                min,
                max,
            });
        }
    }
    for (id, output) in entries("outputs") {
        if let Some(schema) = output.get("schema") {
            jsonschema::options()
                .should_validate_formats(false)
                .build(schema)
                .map_err(|source| InvalidDescription::OutputSchema {
                    output: id.clone(),
                    source,
                })?;
        }
    }
    Ok(())
}

/// The description against the shape of `process.yaml`.
fn check_shape(description: &Value) -> Result<(), InvalidDescription> {
    static VALIDATOR: OnceLock<
        Result<jsonschema::Validator, jsonschema::ValidationError<'static>>,
    > = OnceLock::new();
    let validator = VALIDATOR
        .get_or_init(|| jsonschema::validator_for(&schema()))
        .as_ref()
        .map_err(InvalidDescription::OwnSchema)?;
    let errors: Vec<_> = validator
        .iter_errors(description)
        .take(3)
        .map(jsonschema::ValidationError::to_owned)
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidDescription::Shape(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_minimal_description_and_names_what_is_wrong() {
        check_process_description(
            &json!({"id": "a", "version": "1", "inputs": {"x": {"schema": {"type": "string"}}}}),
        )
        .unwrap();
        let err = check_process_description(&json!({"id": "a"}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "not a valid OGC process description: \"version\" is a required property"
        );
        let err = check_process_description(
            &json!({"id": "a", "version": "1", "inputs": {"x": {"title": "no schema"}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/inputs/x"), "{err}");
        let err = check_process_description(
            &json!({"id": "a", "version": "1", "jobControlOptions": ["sometimes"]}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("jobControlOptions"), "{err}");
    }

    #[test]
    fn refuses_what_the_shape_allows_but_nothing_could_use() {
        let err = check_process_description(&json!({"id": "a", "version": "1",
            "inputs": {"x": {"minOccurs": 3, "maxOccurs": 1, "schema": {}}}}))
        .unwrap_err()
        .to_string();
        assert_eq!(err, "input 'x': minOccurs 3 is greater than maxOccurs 1");
        check_process_description(&json!({"id": "a", "version": "1",
            "inputs": {"x": {"minOccurs": 3, "maxOccurs": "unbounded", "schema": {}}}}))
        .unwrap();
        let err = check_process_description(&json!({"id": "a", "version": "1",
            "outputs": {"r": {"schema": {"type": "banana"}}}}))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("output 'r': invalid schema"), "{err}");
    }
}
