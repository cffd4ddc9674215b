"""A wasmproc process in Python: copy this folder and edit.

Build:  ./build.sh            (writes my-process.wasm here)
Test:   python3 -c "import app, wasmproc; print(wasmproc.call(app.MyProcess, {'text': 'hi'}))"
        (with this folder and guest-sdk/python on PYTHONPATH)
"""

import wasmproc
from wasmproc import Inputs, Output, Process, ProcessError, log, progress


class MyProcess(Process):
    # The OGC process description: the host validates every request's
    # inputs against these JSON Schemas before `execute` runs.
    description = {
        "id": "my-process",
        "version": "0.1.0",
        "title": "My process",
        "description": "Counts the words of a text.",
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "inputs": {
            "text": {"title": "Text", "schema": {"type": "string"}},
            "minLength": {
                "title": "Shortest word counted",
                "minOccurs": 0,
                "schema": {"type": "integer", "minimum": 1, "default": 1},
            },
        },
        "outputs": {
            "words": {"title": "Number of words", "schema": {"type": "integer"}},
        },
    }

    def execute(self, inputs: Inputs):
        text = inputs.required_str("text")
        min_length = int(inputs.optional_number("minLength", 1))
        progress(10, "splitting")
        words = [w for w in text.split() if len(w) >= min_length]
        if not words:
            # A process error: the job fails with this code and message.
            raise ProcessError.no_result("no word is that long")
        log("info", f"{len(words)} words")
        return [Output.json("words", len(words))]


# componentize-py exports the class named WitWorld of the app module.
WitWorld = wasmproc.export(MyProcess)
