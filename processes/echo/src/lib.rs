//! The `echo` process, shaped for the OGC API - Processes test suite: every
//! input is echoed back as the output with the same id.
//!
//! Inputs: `stringInput` (required string), `doubleInput` (number),
//! `pause` (seconds to really sleep before answering, 0–60),
//! `objectInput` (object), `arrayInput` (array of integers),
//! `boundingBoxInput` (OGC bounding box), `binaryInput` (base64 bytes).
//!
//! Build with `cargo build -p echo --target wasm32-wasip2 --release`.

use std::time::Duration;

use wasmproc_guest::{
    Inputs, Output, Process, ProcessError, Value, export_process, json, progress,
};

/// The longest `pause` accepted, in seconds.
const MAX_PAUSE_SECONDS: f64 = 60.0;

struct Echo;

impl Process for Echo {
    fn describe() -> Value {
        let bbox_schema = json!({
            "type": "object",
            "required": ["bbox"],
            "properties": {
                "bbox": { "type": "array", "oneOf": [ { "minItems": 4, "maxItems": 4 }, { "minItems": 6, "maxItems": 6 } ], "items": { "type": "number" } },
                "crs": { "type": "string", "format": "uri", "default": "http://www.opengis.net/def/crs/OGC/1.3/CRS84" }
            },
            "format": "ogc-bbox"
        });
        let binary_schema = json!({ "type": "string", "contentEncoding": "base64", "contentMediaType": "application/octet-stream" });
        let object_schema = json!({ "type": "object", "additionalProperties": true });
        let array_schema = json!({ "type": "array", "minItems": 1, "maxItems": 10, "items": { "type": "integer" } });
        json!({
            "id": "echo",
            "version": "1.0.0",
            "title": "Echo",
            "description": "Echoes every input back as the output of the same id. `pause` makes the job sleep that many seconds first.",
            "keywords": ["echo", "test"],
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "outputTransmission": ["value", "reference"],
            "inputs": {
                "stringInput": { "title": "String input", "minOccurs": 1, "maxOccurs": 1, "schema": { "type": "string" } },
                "doubleInput": { "title": "Double input", "minOccurs": 0, "schema": { "type": "number", "format": "double" } },
                "pause": { "title": "Pause (seconds)", "description": "Sleep this long before answering.", "minOccurs": 0, "schema": { "type": "number", "minimum": 0, "maximum": MAX_PAUSE_SECONDS } },
                "objectInput": { "title": "Object input", "minOccurs": 0, "schema": object_schema },
                "arrayInput": { "title": "Array input", "minOccurs": 0, "schema": array_schema },
                "boundingBoxInput": { "title": "Bounding box input", "minOccurs": 0, "schema": bbox_schema },
                "binaryInput": { "title": "Binary input", "minOccurs": 0, "schema": binary_schema }
            },
            "outputs": {
                "stringInput": { "title": "String output", "schema": { "type": "string" } },
                "doubleInput": { "title": "Double output", "schema": { "type": "number", "format": "double" } },
                "pause": { "title": "Pause output", "schema": { "type": "number" } },
                "objectInput": { "title": "Object output", "schema": object_schema },
                "arrayInput": { "title": "Array output", "schema": array_schema },
                "boundingBoxInput": { "title": "Bounding box output", "schema": bbox_schema },
                "binaryInput": { "title": "Binary output", "schema": binary_schema }
            }
        })
    }

    fn execute(inputs: Inputs) -> Result<Vec<Output>, ProcessError> {
        inputs.required_str("stringInput")?;
        if let Some(seconds) = inputs.optional_f64("pause")? {
            if !(0.0..=MAX_PAUSE_SECONDS).contains(&seconds) {
                return Err(ProcessError::invalid_input(format!(
                    "pause must be between 0 and {MAX_PAUSE_SECONDS} seconds"
                )));
            }
            progress(10, Some("pausing"));
            std::thread::sleep(Duration::from_secs_f64(seconds));
            progress(90, Some("pause over"));
        }
        let mut outputs = Vec::new();
        for id in inputs.ids() {
            if id == "binaryInput" {
                if let Some(binary) = inputs.binary(id)? {
                    let media_type = binary
                        .media_type
                        .unwrap_or_else(|| "application/octet-stream".into());
                    outputs.push(Output::bytes(id, media_type, binary.bytes));
                }
            } else if let Some(value) = inputs.value(id) {
                outputs.push(Output::json(id, value));
            }
        }
        Ok(outputs)
    }
}

export_process!(Echo);
