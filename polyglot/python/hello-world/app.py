"""The `hello-world-py` process: the Rust `hello-world`'s contract, in Python.

Build: `./build.sh` (writes polyglot/out/hello-world-py.wasm).
"""

import wasmproc
from wasmproc import Inputs, Output, Process


class HelloWorld(Process):
    description = {
        "id": "hello-world-py",
        "version": "0.2.0",
        "title": "Hello World (Python)",
        "description": "Echoes a greeting for the given name, with an optional message.",
        "keywords": ["hello world", "example", "python"],
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "outputTransmission": ["value", "reference"],
        "inputs": {
            "name": {
                "title": "Name",
                "description": "The name of the person or entity that you wish to be echoed back as an output",
                "minOccurs": 1,
                "maxOccurs": 1,
                "schema": {"type": "string"},
            },
            "message": {
                "title": "Message",
                "description": "An optional message to echo as well",
                "minOccurs": 0,
                "maxOccurs": 1,
                "schema": {"type": "string"},
            },
        },
        "outputs": {
            "echo": {
                "title": "Hello, world",
                "description": 'A "hello world" echo with the name and (optional) message submitted for processing',
                "schema": {"type": "string", "contentMediaType": "application/json"},
            }
        },
    }

    def execute(self, inputs: Inputs):
        name = inputs.required_str("name")
        message = inputs.optional_str("message", "")
        return [Output.json("echo", f"Hello {name}! {message}".rstrip())]


WitWorld = wasmproc.export(HelloWorld)
