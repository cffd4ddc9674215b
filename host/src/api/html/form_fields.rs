//! The execute form as a process's page shows it: one field per input,
//! generated from the input schemas, and the modes the form offers.
//! What a submitted form becomes is `forms.rs`.
//!
//! # From schema to field
//! Each input becomes one field, chosen from its JSON Schema
//! ([`field_kind`]): an `enum` → a select of its values; `string` → a
//! text box, or a file upload when the schema says the string is binary
//! (`contentEncoding: base64`/`binary`, `format: binary`/`byte`);
//! `number`/`integer` → a number box with the schema's bounds;
//! `boolean` → a select (unset, true, false: a checkbox cannot say
//! "unset"); anything else (objects such as GeoJSON, arrays, inputs that
//! may occur several times) → a JSON text area. Required inputs come
//! first.

use std::collections::HashMap;

use serde_json::Value;

use super::super::AppState;
use crate::jobs::RegisteredProcess;
use crate::ogc::{ASYNC_EXECUTE, SYNC_EXECUTE};

/// The prefix of an input's field name (`input.name`), keeping input ids
/// apart from the form's own fields (`mode`, `token`).
pub(super) const INPUT_PREFIX: &str = "input.";

/// One option of a select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelectOption {
    /// The submitted value (JSON text of an enum value).
    pub(crate) value: String,
    /// What the user sees.
    pub(crate) label: String,
    /// Whether it is the current choice.
    pub(crate) selected: bool,
}

impl SelectOption {
    /// One option per value, each shown as it is sent (label and value
    /// alike), the one equal to `current` selected: the choices of a
    /// boolean input, and the filters of the job list.
    pub(crate) fn plain<S: Into<String>>(
        values: impl IntoIterator<Item = S>,
        current: &str,
    ) -> Vec<Self> {
        values
            .into_iter()
            .map(|value| {
                let value = value.into();
                Self {
                    selected: value == current,
                    label: value.clone(),
                    value,
                }
            })
            .collect()
    }
}

/// One field of the execute form.
#[derive(Debug, Clone)]
pub(crate) struct FormField {
    /// The input id.
    pub(crate) id: String,
    /// The form field name (`input.<id>`).
    pub(crate) name: String,
    /// A unique element id for `<label for>`.
    pub(crate) dom_id: String,
    /// The input's title (or id).
    pub(crate) label: String,
    /// Description, expected type and occurrences.
    pub(crate) hint: String,
    /// Whether the input is required (`minOccurs` ≥ 1).
    pub(crate) required: bool,
    /// `text`, `number`, `select`, `boolean`, `file` or `json`.
    pub(crate) kind: &'static str,
    /// `step` of a number field (`any` or `1`).
    pub(crate) step: &'static str,
    /// `min` of a number field, or empty.
    pub(crate) min: String,
    /// `max` of a number field, or empty.
    pub(crate) max: String,
    /// The choices of a select.
    pub(crate) options: Vec<SelectOption>,
    /// What the user typed (kept across a refused submission).
    pub(crate) value: String,
    /// The exception that names this input, shown beside it.
    pub(crate) error: Option<crate::ogc::Exception>,
}

/// The kind of field an input schema asks for (see the module doc).
///
/// An input that may occur several times is always a JSON text area: one
/// HTML control cannot hold a list. Schemas the rules do not recognise
/// (`oneOf`, objects, arrays) fall back to JSON too, which can express
/// any value the validator will then judge.
pub(crate) fn field_kind(schema: &Value, repeated: bool) -> &'static str {
    if repeated {
        return "json";
    }
    if schema
        .get("enum")
        .and_then(Value::as_array)
        .is_some_and(|values| !values.is_empty() && values.iter().all(is_scalar))
    {
        return "select";
    }
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let encoding = schema
        .get("contentEncoding")
        .and_then(Value::as_str)
        .unwrap_or("");
    match schema.get("type").and_then(Value::as_str) {
        Some("string")
            if matches!(encoding, "base64" | "binary") || matches!(format, "binary" | "byte") =>
        {
            "file"
        }
        Some("string") => "text",
        Some("number" | "integer") => "number",
        Some("boolean") => "boolean",
        _ => "json",
    }
}

/// Whether an `enum` value can be an `<option>`: a string, number,
/// boolean or null (its JSON text is the option's value); an enum of
/// objects or arrays gets a JSON text area instead.
fn is_scalar(value: &Value) -> bool {
    matches!(
        value,
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null
    )
}

/// `minOccurs` of an input (default 1, as OGC says). A value that is not
/// a non-negative integer also reads as 1: the field is then marked
/// required, and the validator has the final say.
fn min_occurs(input: &Value) -> u64 {
    input.get("minOccurs").and_then(Value::as_u64).unwrap_or(1)
}

/// Whether an input may occur more than once (`maxOccurs` > 1 or
/// `"unbounded"`).
pub(super) fn repeated(input: &Value) -> bool {
    match input.get("maxOccurs") {
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n > 1),
        Some(Value::String(s)) => s == "unbounded",
        _ => false,
    }
}

/// An element id from an input id: letters, digits, `-` and `_` kept,
/// anything else replaced. The index keeps ids unique when two input ids
/// clean to the same text, and the `in-` prefix keeps them from starting
/// with a digit.
fn dom_id(index: usize, id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("in-{index}-{clean}")
}

/// The inputs of a description, required ones first, then by id. The
/// form and [`super::forms::convert`] both go through this, so fields and inputs are
/// matched by the same list.
pub(super) fn sorted_inputs(description: &Value) -> Vec<(&String, &Value)> {
    let mut inputs: Vec<(&String, &Value)> = description
        .get("inputs")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    inputs.sort_by(|(a_id, a), (b_id, b)| {
        (min_occurs(b) > 0)
            .cmp(&(min_occurs(a) > 0))
            .then(a_id.cmp(b_id))
    });
    inputs
}

/// What a refused submission keeps: the values typed (by field name) and
/// the exception, placed beside the input it names or atop the form.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormState {
    /// Field name → text typed.
    pub(crate) values: HashMap<String, String>,
    /// The mode chosen (`sync`, `async`).
    pub(crate) mode: Option<String>,
    /// The input the error names, if any.
    pub(crate) error_input: Option<String>,
    /// The exception of the refusal.
    pub(crate) error: Option<crate::ogc::Exception>,
}

/// The form fields of a process, filled from `state`: on a first visit
/// everything is empty; after a refusal each field shows what was typed,
/// and the one the error names shows the error. A boolean gets
/// `(not set)` as its first choice when the input is optional, as an
/// optional `enum` does.
pub(crate) fn fields(description: &Value, state: &FormState) -> Vec<FormField> {
    sorted_inputs(description)
        .into_iter()
        .enumerate()
        .map(|(index, (id, input))| {
            let schema = input.get("schema").cloned().unwrap_or(Value::Null);
            let repeated = repeated(input);
            let kind = field_kind(&schema, repeated);
            let name = format!("{INPUT_PREFIX}{id}");
            let value = state.values.get(&name).cloned().unwrap_or_default();
            let required = min_occurs(input) > 0;
            let options = match kind {
                "select" => select_options(&schema, &value, required),
                "boolean" => SelectOption::plain(["true", "false"], &value),
                _ => Vec::new(),
            };
            let options = match kind {
                "boolean" if !required => {
                    let mut all = vec![SelectOption {
                        value: String::new(),
                        label: "(not set)".into(),
                        selected: value.is_empty(),
                    }];
                    all.extend(options);
                    all
                }
                _ => options,
            };
            let bound = |key: &str| {
                schema
                    .get(key)
                    .filter(|v| v.is_number())
                    .map(Value::to_string)
                    .unwrap_or_default()
            };
            FormField {
                id: id.clone(),
                dom_id: dom_id(index, id),
                label: input
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or(id)
                    .to_owned(),
                hint: hint(input, &schema, kind, repeated),
                required,
                kind,
                step: if schema.get("type").and_then(Value::as_str) == Some("integer") {
                    "1"
                } else {
                    "any"
                },
                min: bound("minimum"),
                max: bound("maximum"),
                options,
                value,
                error: match (&state.error_input, &state.error) {
                    (Some(named), Some(error)) if named == id => Some(error.clone()),
                    _ => None,
                },
                name,
            }
        })
        .collect()
}

/// The options of an `enum` select: `(not set)` first for an optional
/// input, then each value. An option's value is the JSON text of the enum
/// value (`"red"`, `2`), so [`convert`] parses it back to exactly that
/// value, whatever its type; its label is the string itself, or the JSON
/// text for other types.
fn select_options(schema: &Value, current: &str, required: bool) -> Vec<SelectOption> {
    let mut options = Vec::new();
    if !required {
        options.push(SelectOption {
            value: String::new(),
            label: "(not set)".into(),
            selected: current.is_empty(),
        });
    }
    for value in schema
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let encoded = value.to_string();
        options.push(SelectOption {
            label: value
                .as_str()
                .map_or_else(|| encoded.clone(), str::to_owned),
            selected: encoded == current,
            value: encoded,
        });
    }
    options
}

/// The line under a field's label: the input's description, what to type
/// and whether it is needed.
fn hint(input: &Value, schema: &Value, kind: &str, repeated: bool) -> String {
    let mut parts = Vec::new();
    if let Some(description) = input.get("description").and_then(Value::as_str) {
        parts.push(description.trim_end_matches('.').to_owned());
    }
    let media = schema
        .get("contentMediaType")
        .and_then(Value::as_str)
        .unwrap_or("");
    parts.push(match kind {
        "text" => "text".to_owned(),
        "number" => schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("number")
            .to_owned(),
        "select" => "one of the listed values".to_owned(),
        "boolean" => "true or false".to_owned(),
        "file" if media.is_empty() => "a file (sent base64-encoded)".to_owned(),
        "file" => format!("a file ({media}; sent base64-encoded)"),
        _ if repeated => "JSON: one value, or an array of values".to_owned(),
        _ if media.contains("geo+json") => "GeoJSON".to_owned(),
        _ => "JSON".to_owned(),
    });
    if min_occurs(input) == 0 {
        parts.push("optional".into());
    }
    parts.join(" · ")
}

/// The modes this server offers for a process: `(sync, async)`. The same
/// three conditions as the API's negotiation: the mode is enabled in the
/// settings, the process lists it, and, for sync, this node runs jobs
/// itself (an API-only node of a cluster does not). The process page
/// offers exactly these, so the form never proposes a mode it refuses.
pub(crate) fn modes(state: &AppState, process: &RegisteredProcess) -> (bool, bool) {
    let execution = &state.config.execution;
    (
        execution.enable_sync && state.scheduler.runs_sync_jobs() && process.supports(SYNC_EXECUTE),
        execution.enable_async && process.supports(ASYNC_EXECUTE),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::api::ApiError;
    use serde_json::json;

    #[test]
    fn schemas_choose_the_field() {
        let cases = [
            (json!({"type": "string"}), false, "text"),
            (
                json!({"type": "string", "enum": ["a", "b"]}),
                false,
                "select",
            ),
            (
                json!({"type": "string", "contentEncoding": "base64"}),
                false,
                "file",
            ),
            (json!({"type": "string", "format": "binary"}), false, "file"),
            (json!({"type": "number", "minimum": 0}), false, "number"),
            (json!({"type": "integer"}), false, "number"),
            (json!({"type": "boolean"}), false, "boolean"),
            (json!({"type": "object"}), false, "json"),
            (
                json!({"type": "array", "items": {"type": "integer"}}),
                false,
                "json",
            ),
            (
                json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
                false,
                "json",
            ),
            (json!({"type": "string"}), true, "json"),
        ];
        for (schema, repeated, kind) in cases {
            assert_eq!(field_kind(&schema, repeated), kind, "{schema}");
        }
    }

    /// A description with an input of each kind, for these tests and
    /// `forms.rs`'s.
    pub(in super::super) fn echo_like() -> Value {
        json!({"inputs": {
            "name": {"minOccurs": 1, "schema": {"type": "string"}},
            "count": {"minOccurs": 0, "schema": {"type": "integer", "minimum": 1}},
            "ratio": {"minOccurs": 0, "schema": {"type": "number"}},
            "flag": {"minOccurs": 0, "schema": {"type": "boolean"}},
            "shape": {"minOccurs": 0, "schema": {"type": "object"}},
            "colour": {"minOccurs": 0, "schema": {"enum": ["red", 2]}},
            "blob": {"minOccurs": 0, "schema": {"type": "string", "contentEncoding": "base64"}}
        }})
    }

    #[test]
    fn required_inputs_come_first_and_values_are_kept() {
        let state = FormState {
            values: [("input.count".to_owned(), "x".to_owned())].into(),
            error_input: Some("count".into()),
            error: Some(ApiError::invalid_request("input 'count': bad").exception()),
            ..FormState::default()
        };
        let fields = fields(&echo_like(), &state);
        assert_eq!(fields[0].id, "name");
        assert!(fields[0].required);
        let count = fields.iter().find(|f| f.id == "count").unwrap();
        assert_eq!(count.value, "x");
        assert_eq!(count.step, "1");
        assert_eq!(count.min, "1");
        assert!(count.error.is_some());
        assert!(
            fields
                .iter()
                .filter(|f| f.id != "count")
                .all(|f| f.error.is_none())
        );
        let colour = fields.iter().find(|f| f.id == "colour").unwrap();
        let labels: Vec<&str> = colour.options.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(labels, ["(not set)", "red", "2"]);
    }
}
