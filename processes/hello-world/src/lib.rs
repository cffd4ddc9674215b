//! The `hello-world` process: the same contract as pygeoapi's HelloWorld.
//!
//! Build with `cargo build -p hello-world --target wasm32-wasip2 --release`.

use wasmproc_guest::{Inputs, Output, Process, ProcessError, Value, export_process, json};

struct HelloWorld;

impl Process for HelloWorld {
    fn describe() -> Value {
        json!({
            "id": "hello-world",
            "version": "0.2.0",
            "title": "Hello World",
            "description": "Echoes a greeting for the given name, with an optional message.",
            "keywords": ["hello world", "example"],
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "outputTransmission": ["value", "reference"],
            "inputs": {
                "name": { "title": "Name", "description": "The name of the person or entity that you wish to be echoed back as an output", "minOccurs": 1, "maxOccurs": 1, "schema": { "type": "string" } },
                "message": { "title": "Message", "description": "An optional message to echo as well", "minOccurs": 0, "maxOccurs": 1, "schema": { "type": "string" } }
            },
            "outputs": {
                "echo": { "title": "Hello, world", "description": "A \"hello world\" echo with the name and (optional) message submitted for processing", "schema": { "type": "string", "contentMediaType": "application/json" } }
            }
        })
    }

    fn execute(inputs: Inputs) -> Result<Vec<Output>, ProcessError> {
        let name = inputs.required_str("name")?;
        let message = inputs.optional_str("message")?.unwrap_or_default();
        let echo = format!("Hello {name}! {message}").trim_end().to_owned();
        Ok(vec![Output::json("echo", &echo)])
    }
}

export_process!(HelloWorld);
