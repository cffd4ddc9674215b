//! The schema validator itself: valid documents pass, broken ones fail.
//! No server needed.

use serde_json::{Value, json};
use wasmproc_tests::{assert_invalid, assert_valid, schema_dir, schema_errors};

/// One way to break a valid document: what it breaks (named in the
/// panic), and the change that breaks it.
type Breakage = (&'static str, fn(&mut Value));

/// Panic unless `valid` passes `schema_file` and each of `breakages`, made
/// to a fresh copy of it, makes it fail: so that every broken document
/// differs from a valid one in just the one place its case names.
fn assert_each_breaks(schema_file: &str, valid: &Value, breakages: &[Breakage]) {
    assert_valid(schema_file, valid);
    for (what, break_it) in breakages {
        let mut broken = valid.clone();
        break_it(&mut broken);
        assert!(
            !schema_errors(schema_file, &broken).is_empty(),
            "{what}: unexpectedly valid against {schema_file}: {broken}"
        );
    }
}

fn status_info() -> serde_json::Value {
    json!({
        "jobID": "0b3a7c1e-1f0a-4b7e-9d52-0c6f4d1f2a10",
        "processID": "echo",
        "type": "process",
        "status": "running",
        "message": "pausing",
        "created": "2026-01-02T03:04:05Z",
        "started": "2026-01-02T03:04:05.123+00:00",
        "updated": "2026-01-02T03:04:06Z",
        "progress": 10,
        "links": [{ "href": "http://127.0.0.1:5000/jobs/0b3a7c1e-1f0a-4b7e-9d52-0c6f4d1f2a10", "rel": "self", "type": "application/json" }]
    })
}

#[test]
fn schema_folder_is_found() {
    assert!(
        schema_dir().join("statusInfo.yaml").is_file(),
        "{}",
        schema_dir().display()
    );
}

#[test]
fn valid_status_info_passes() {
    assert_valid("statusInfo.yaml", &status_info());
    assert_valid("statusInfo", &status_info());
}

#[test]
fn status_info_violations_fail() {
    let breakages: [Breakage; 6] = [
        ("no jobID", |info| {
            info.as_object_mut().unwrap().remove("jobID");
        }),
        ("unknown status", |info| info["status"] = json!("done")),
        ("progress over 100", |info| info["progress"] = json!(150)),
        ("unknown type", |info| info["type"] = json!("workflow")),
        ("created not a date-time", |info| {
            info["created"] = json!("yesterday at noon");
        }),
        ("link without href", |info| {
            info["links"] = json!([{ "rel": "self" }]);
        }),
    ];
    assert_each_breaks("statusInfo.yaml", &status_info(), &breakages);
}

#[test]
fn errors_name_the_offending_place() {
    let mut bad = status_info();
    bad["status"] = json!("done");
    let errors = schema_errors("statusInfo.yaml", &bad);
    assert!(
        errors.iter().any(|e| e.contains("/status")),
        "errors: {errors:?}"
    );
}

#[test]
fn results_accept_plain_qualified_and_reference_values() {
    assert_valid("results.yaml", &json!({ "echo": "Hello Joe! hi" }));
    assert_valid("results.yaml", &json!({ "n": 5, "x": 2.5, "flag": true }));
    assert_valid("results.yaml", &json!({ "arr": [1, 2, 3] }));
    assert_valid(
        "results.yaml",
        &json!({ "box": { "bbox": [1, 2, 3, 4], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84" } }),
    );
    assert_valid(
        "results.yaml",
        &json!({ "obj": { "value": { "a": 1 }, "mediaType": "application/json" } }),
    );
    assert_valid(
        "results.yaml",
        &json!({ "bin": { "value": "iVBORw0KGgo=", "mediaType": "image/png" } }),
    );
    assert_valid(
        "results.yaml",
        &json!({ "ref": { "href": "http://127.0.0.1:5000/jobs/x/results/ref", "type": "application/json" } }),
    );
}

#[test]
fn results_reject_unqualified_objects() {
    assert_invalid("results.yaml", &json!({ "obj": { "a": 1 } }));
    assert_invalid(
        "results.yaml",
        &json!({ "obj": { "value": 1, "mediaType": 5 } }),
    );
}

#[test]
fn exception_requires_type() {
    assert_valid(
        "exception.yaml",
        &json!({ "type": "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job", "title": "No such job", "status": 404, "detail": "no job x" }),
    );
    assert_invalid(
        "exception.yaml",
        &json!({ "title": "No such job", "status": 404 }),
    );
    assert_invalid("exception.yaml", &json!({ "type": "x", "status": "404" }));
}

#[test]
fn job_list_requires_jobs_and_links() {
    assert_valid(
        "jobList.yaml",
        &json!({ "jobs": [status_info()], "links": [] }),
    );
    assert_invalid("jobList.yaml", &json!({ "jobs": [status_info()] }));
    assert_invalid(
        "jobList.yaml",
        &json!({ "jobs": [{ "jobID": "x" }], "links": [] }),
    );
}

fn echo_description() -> serde_json::Value {
    json!({
        "id": "echo",
        "version": "1.0.0",
        "title": "Echo",
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "outputTransmission": ["value", "reference"],
        "links": [{ "href": "http://127.0.0.1:5000/processes/echo/execution", "rel": "http://www.opengis.net/def/rel/ogc/1.0/execute" }],
        "inputs": {
            "stringInput": { "title": "String input", "minOccurs": 1, "maxOccurs": 1, "schema": { "type": "string" } },
            "pause": { "minOccurs": 0, "schema": { "type": "number", "minimum": 0, "maximum": 60 } },
            "arrayInput": { "minOccurs": 0, "maxOccurs": "unbounded", "schema": { "type": "array", "minItems": 1, "maxItems": 10, "items": { "type": "integer" } } },
            "boundingBoxInput": { "schema": {
                "type": "object",
                "required": ["bbox"],
                "properties": {
                    "bbox": { "type": "array", "oneOf": [ { "minItems": 4, "maxItems": 4 }, { "minItems": 6, "maxItems": 6 } ], "items": { "type": "number" } },
                    "crs": { "type": "string", "format": "uri", "default": "http://www.opengis.net/def/crs/OGC/1.3/CRS84" }
                },
                "format": "ogc-bbox"
            } },
            "binaryInput": { "schema": { "type": "string", "contentEncoding": "base64", "contentMediaType": "application/octet-stream" } }
        },
        "outputs": {
            "stringInput": { "schema": { "type": "string" } }
        }
    })
}

#[test]
fn process_description_passes_including_json_schema_keywords() {
    assert_valid("process.yaml", &echo_description());
}

#[test]
fn process_description_violations_fail() {
    let breakages: [Breakage; 4] = [
        ("no version", |description| {
            description.as_object_mut().unwrap().remove("version");
        }),
        ("unknown job control option", |description| {
            description["jobControlOptions"] = json!(["sometimes"]);
        }),
        ("input without schema", |description| {
            description["inputs"]["pause"]
                .as_object_mut()
                .unwrap()
                .remove("schema");
        }),
        ("misspelt JSON Schema keyword", |description| {
            description["inputs"]["pause"]["schema"]["minimun"] = json!(0);
        }),
    ];
    assert_each_breaks("process.yaml", &echo_description(), &breakages);
}

#[test]
fn process_list_and_summaries() {
    let mut summary = echo_description();
    let object = summary.as_object_mut().unwrap();
    object.remove("inputs");
    object.remove("outputs");
    assert_valid(
        "processList.yaml",
        &json!({ "processes": [summary], "links": [{ "href": "http://127.0.0.1:5000/processes", "rel": "self" }] }),
    );
    assert_invalid(
        "processList.yaml",
        &json!({ "processes": [{ "id": "echo" }], "links": [] }),
    );
}

#[test]
fn landing_page_and_conformance() {
    assert_valid(
        "landingPage.yaml",
        &json!({ "title": "wasmproc", "links": [{ "href": "http://127.0.0.1:5000/", "rel": "self" }] }),
    );
    assert_invalid("landingPage.yaml", &json!({ "title": "wasmproc" }));
    assert_valid(
        "confClasses.yaml",
        &json!({ "conformsTo": ["http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core"] }),
    );
    assert_invalid("confClasses.yaml", &json!({ "conformsTo": [5] }));
}

#[test]
fn subscriber_quirk_accepts_success_uri() {
    let subscriber = json!({ "successUri": "http://127.0.0.1:9/success", "failedUri": "http://127.0.0.1:9/failed" });
    assert_valid("subscriber.yaml", &subscriber);
    assert_valid(
        "execute.yaml",
        &json!({ "inputs": { "name": "Joe" }, "response": "document", "subscriber": subscriber }),
    );
    assert_invalid(
        "subscriber.yaml",
        &json!({ "failedUri": "http://127.0.0.1:9/failed" }),
    );
}
