//! Validation of response bodies against the official OGC API - Processes
//! Part 1 Core 1.0 schemas (`shared/ogc-schemas/part1-core-1.0/*.yaml`).
//!
//! The schemas are OpenAPI 3.0 Schema Objects, not JSON Schema. Every file
//! of the folder is loaded, converted to JSON Schema 2020-12 and put under
//! `$defs` of one root schema, with each `$ref` (`link.yaml`,
//! `../../schemas/link.yaml`, ...) rewritten by file name to
//! `#/$defs/<name>`. The conversion:
//!
//! - `nullable: true` adds `"null"` to `type`;
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` (OpenAPI 3.0 / draft 4)
//!   become the numeric form of 2020-12;
//! - `oneOf` becomes `anyOf`: the 1.0 value schemas list overlapping
//!   alternatives (`number` and `integer`; `string` and the `format: byte`
//!   string of `binaryInputValue.yaml`), so with `oneOf` no plain string or
//!   integer would ever be a valid result value. The alternatives are meant
//!   as "one of these kinds", which `anyOf` says;
//! - the known 1.0 quirk of `subscriber.yaml` (it requires `successUrl`
//!   while the property is `successUri`) is fixed to `successUri`.
//!
//! Formats are checked (`date-time` is RFC 3339); unknown formats such as
//! `byte` or `double` are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The folder of the Part 1 Core 1.0 schemas: `shared/` lies beside the
/// repository, as on developer machines and in CI.
pub fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ogc-schemas/part1-core-1.0")
}

/// Every schema of the folder, converted, keyed by file stem.
fn definitions() -> &'static Map<String, Value> {
    static DEFS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let dir = schema_dir();
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read the OGC schemas in {}: {e}", dir.display()));
        let mut files = BTreeMap::new();
        for entry in entries {
            let path = entry.expect("readable schema folder").path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 file name")
                .to_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let mut schema: Value = serde_norway::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
            convert_schema(&mut schema);
            if stem == "subscriber" {
                fix_subscriber_quirk(&mut schema);
            }
            files.insert(stem, schema);
        }
        assert!(
            files.contains_key("statusInfo"),
            "no statusInfo.yaml in {}",
            dir.display()
        );
        files.into_iter().collect()
    })
}

/// `subscriber.yaml` of 1.0 requires `successUrl`; the property is `successUri`.
fn fix_subscriber_quirk(schema: &mut Value) {
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        for name in required.iter_mut() {
            if name == "successUrl" {
                *name = json!("successUri");
            }
        }
    }
}

/// `#/$defs/<stem>` for a `$ref` to a YAML file of the folder.
fn rewrite_ref(reference: &str) -> String {
    let file = reference.rsplit('/').next().unwrap_or(reference);
    let stem = file
        .strip_suffix(".yaml")
        .unwrap_or_else(|| panic!("unexpected $ref {reference:?} in the OGC schemas"));
    format!("#/$defs/{stem}")
}

/// Convert an OpenAPI 3.0 Schema Object (in place) to JSON Schema 2020-12.
/// Only schema positions are visited, so a property *named* `oneOf` (as in
/// `schema.yaml`) keeps its name.
fn convert_schema(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if let Some(Value::String(reference)) = object.get("$ref") {
        let target = rewrite_ref(reference);
        object.insert("$ref".into(), Value::String(target));
    }
    if object.get("nullable") == Some(&Value::Bool(true)) {
        match object.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                object.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) => types.push(json!("null")),
            _ => {}
        }
    }
    object.remove("nullable");
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(flag)) = object.get(exclusive).cloned() {
            object.remove(exclusive);
            if flag && let Some(limit) = object.remove(bound) {
                object.insert(exclusive.into(), limit);
            }
        }
    }
    if let Some(alternatives) = object.remove("oneOf") {
        object.insert("anyOf".into(), alternatives);
    }
    for keyword in ["allOf", "anyOf", "prefixItems"] {
        if let Some(Value::Array(items)) = object.get_mut(keyword) {
            items.iter_mut().for_each(convert_schema);
        }
    }
    for keyword in [
        "not",
        "items",
        "additionalProperties",
        "contains",
        "if",
        "then",
        "else",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    ] {
        if let Some(sub) = object.get_mut(keyword) {
            convert_schema(sub);
        }
    }
    for keyword in ["properties", "patternProperties", "$defs", "definitions"] {
        if let Some(Value::Object(map)) = object.get_mut(keyword) {
            map.values_mut().for_each(convert_schema);
        }
    }
}

/// The root schema validating against `<name>.yaml` of the folder.
fn root_schema(name: &str) -> Value {
    let name = name.strip_suffix(".yaml").unwrap_or(name);
    let defs = definitions();
    assert!(
        defs.contains_key(name),
        "no schema {name}.yaml in {}; there are {:?}",
        schema_dir().display(),
        defs.keys().collect::<Vec<_>>()
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "$ref": format!("#/$defs/{name}"),
    })
}

/// Every way `value` violates the official schema `schema_file` (e.g.
/// `"statusInfo.yaml"` or `"statusInfo"`); empty when it is valid.
pub fn schema_errors(schema_file: &str, value: &Value) -> Vec<String> {
    let schema = root_schema(schema_file);
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the converted schema {schema_file} does not compile: {e}"));
    validator
        .iter_errors(value)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect()
}

/// Panic unless `value` is valid against the official schema `schema_file`.
pub fn assert_valid(schema_file: &str, value: &Value) {
    let errors = schema_errors(schema_file, value);
    assert!(
        errors.is_empty(),
        "body is not valid against {schema_file}:\n  {}\nbody: {}",
        errors.join("\n  "),
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Panic if `value` is valid against `schema_file` (for testing the harness).
pub fn assert_invalid(schema_file: &str, value: &Value) {
    assert!(
        !schema_errors(schema_file, value).is_empty(),
        "body unexpectedly valid against {schema_file}: {value}"
    );
}
