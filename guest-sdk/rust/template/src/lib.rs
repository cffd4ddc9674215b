//! A wasmproc process in Rust: copy this folder and edit.
//!
//! Build: ./build.sh   (writes FOLDER.wasm here, FOLDER being this folder's name)

use wasmproc_guest::{
    Inputs, Level, Output, Process, ProcessError, Value, export_process, json, log, progress,
};

struct MyProcess;

impl Process for MyProcess {
    /// The OGC process description: the host validates every request's
    /// inputs against these JSON Schemas before `execute` runs.
    fn describe() -> Value {
        json!({
            "id": "my-process",
            "version": "0.1.0",
            "title": "My process",
            "description": "Counts the words of a text.",
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "inputs": {
                "text": { "title": "Text", "schema": { "type": "string" } },
                "minLength": {
                    "title": "Shortest word counted",
                    "minOccurs": 0,
                    "schema": { "type": "integer", "minimum": 1, "default": 1 }
                }
            },
            "outputs": {
                "words": { "title": "Number of words", "schema": { "type": "integer" } }
            }
        })
    }

    fn execute(inputs: Inputs) -> Result<Vec<Output>, ProcessError> {
        let text = inputs.required_str("text")?;
        let min_length = inputs.optional_f64("minLength")?.unwrap_or(1.0);
        progress(10, Some("splitting"));
        let words = text
            .split_whitespace()
            .filter(|word| word.chars().count() as f64 >= min_length)
            .count();
        if words == 0 {
            // A process error: the job fails with this code and message.
            return Err(ProcessError::new("no-result", "no word is that long"));
        }
        log(Level::Info, &format!("{words} words"));
        Ok(vec![Output::json("words", &words)])
    }
}

export_process!(MyProcess);
