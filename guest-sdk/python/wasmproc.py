"""Write wasmproc processes in Python.

A process is a subclass of :class:`Process` with a ``description`` (the OGC
process description, as a dict) and an ``execute`` method; the module-level
name ``WitWorld`` is what componentize-py exports::

    import wasmproc
    from wasmproc import Inputs, Output, Process, ProcessError

    class Hello(Process):
        description = {
            "id": "hello", "version": "1.0.0", "title": "Hello",
            "inputs": {"name": {"schema": {"type": "string"}}},
            "outputs": {"greeting": {"schema": {"type": "string"}}},
        }

        def execute(self, inputs: Inputs):
            return [Output.json("greeting", f"Hello {inputs.required_str('name')}!")]

    WitWorld = wasmproc.export(Hello)

Build with ``componentize-py -d WIT_DIR -w process componentize app
-p . -p GUEST_SDK_PYTHON_DIR -o app.wasm`` (see README.md next to this file).

The module hides the WIT plumbing of the ``wasmproc:process`` world: the
JSON text of ``execute`` becomes :class:`Inputs`, outputs are built with
:class:`Output` (or returned as a dict of JSON values), a
:class:`ProcessError` raised anywhere becomes the WIT ``process-error``, and
:func:`progress` / :func:`log` talk to the host while the job runs.

Outside a component (plain CPython, e.g. in unit tests) the host functions
print to stderr and :func:`call` runs a process on a dict of inputs, so the
same file can be tested without building anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import traceback
from typing import Any, Iterable, Optional, Union

try:  # Inside a component built by componentize-py.
    from componentize_py_types import Err as _Err
    from wit_world.imports import host as _host
    from wit_world.imports import types as _types

    IN_COMPONENT = True
except ImportError:  # Plain CPython: unit tests, local runs.
    _Err = None
    _host = None
    _types = None
    IN_COMPONENT = False

__all__ = [
    "BinaryInput",
    "Inputs",
    "Output",
    "Process",
    "ProcessError",
    "call",
    "export",
    "log",
    "progress",
]

_LEVELS = ("trace", "debug", "info", "warn", "error")


class ProcessError(Exception):
    """A failure the process reports itself: a short machine-readable
    ``code`` (e.g. ``invalid-input``, ``no-result``) and a message for people.

    Raise it anywhere in ``execute``; the job fails with this code and
    message (a ``failed`` job whose exception names them).
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def invalid_input(cls, message: str) -> "ProcessError":
        """The inputs are well-formed but unusable (code ``invalid-input``)."""
        return cls("invalid-input", message)

    @classmethod
    def no_result(cls, message: str) -> "ProcessError":
        """The process could not produce a result (code ``no-result``)."""
        return cls("no-result", message)


class BinaryInput:
    """A binary input decoded from base64, with its media type if given."""

    __slots__ = ("data", "media_type")

    def __init__(self, data: bytes, media_type: Optional[str]):
        self.data = data
        self.media_type = media_type

    def __repr__(self) -> str:
        return f"BinaryInput({len(self.data)} bytes, media_type={self.media_type!r})"


class Inputs:
    """The inputs of a job: a JSON object keyed by input id.

    The host has already validated them against the process description
    and fetched inputs given by reference, so a value is either plain JSON
    or an OGC qualified value (``{"value": ..., "mediaType": ...}``), which
    :meth:`value` and the typed getters unwrap.
    """

    def __init__(self, values: dict):
        if not isinstance(values, dict):
            raise ProcessError.invalid_input(
                f"inputs must be a JSON object, got {type(values).__name__}"
            )
        self.raw = values

    @classmethod
    def from_json(cls, text: str) -> "Inputs":
        """Parse the JSON text the host passes to ``execute``."""
        try:
            values = json.loads(text)
        except ValueError as e:
            raise ProcessError.invalid_input(f"inputs are not valid JSON: {e}") from None
        return cls(values)

    def __contains__(self, input_id: str) -> bool:
        return input_id in self.raw

    def ids(self) -> list:
        """Ids of the inputs that were given."""
        return list(self.raw)

    def get(self, input_id: str, default: Any = None) -> Any:
        """The raw value of an input (qualified values not unwrapped)."""
        return self.raw.get(input_id, default)

    def value(self, input_id: str, default: Any = None) -> Any:
        """The value of an input, unwrapping a qualified value to its ``value``."""
        raw = self.raw.get(input_id)
        if raw is None:
            return default
        if isinstance(raw, dict) and "value" in raw:
            return raw["value"]
        return raw

    def required(self, input_id: str) -> Any:
        """The (unwrapped) value of an input that must be present."""
        return _present(input_id, self.value(input_id))

    def optional_str(self, input_id: str, default: Optional[str] = None) -> Optional[str]:
        """A string input, or ``default``; an error if it is not a string."""
        return _of_kind(input_id, self.value(input_id), default, _is_str, "a string")

    def required_str(self, input_id: str) -> str:
        """A string input that must be present."""
        return _present(input_id, self.optional_str(input_id))

    def optional_number(
        self, input_id: str, default: Optional[float] = None
    ) -> Optional[Union[int, float]]:
        """A numeric input, or ``default``; an error if it is not a number."""
        return _of_kind(input_id, self.value(input_id), default, _is_number, "a number")

    def required_number(self, input_id: str) -> Union[int, float]:
        """A numeric input that must be present."""
        return _present(input_id, self.optional_number(input_id))

    def binary(self, input_id: str) -> Optional[BinaryInput]:
        """A binary input decoded from base64: a plain base64 string or a
        qualified value ``{"value": "<base64>", "mediaType": ...}``."""
        raw = self.raw.get(input_id)
        media_type = raw.get("mediaType") if isinstance(raw, dict) else None
        encoded = self.optional_str(input_id)
        if encoded is None:
            return None
        try:
            data = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ProcessError.invalid_input(f"input '{input_id}' is not base64: {e}") from None
        return BinaryInput(data, media_type)


def _present(input_id: str, value: Any) -> Any:
    """``value``, or a :class:`ProcessError` saying input ``input_id`` is
    required when it is absent (``None``): what every ``required*`` method
    of :class:`Inputs` ends in."""
    if value is None:
        raise ProcessError.invalid_input(f"input '{input_id}' is required")
    return value


def _of_kind(input_id: str, value: Any, default: Any, is_kind, noun: str) -> Any:
    """``value`` if ``is_kind(value)``, ``default`` when it is absent
    (``None``), else a :class:`ProcessError` saying input ``input_id``
    must be ``noun``: what every typed ``optional*`` method of
    :class:`Inputs` ends in."""
    if value is None:
        return default
    if not is_kind(value):
        raise ProcessError.invalid_input(
            f"input '{input_id}' must be {noun}, got {json.dumps(value)}"
        )
    return value


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    # JSON true/false arrive as bool, which Python counts as an int.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Output:
    """One output of a job, named by its id in the process description."""

    __slots__ = ("id", "media_type", "text", "data")

    def __init__(
        self,
        output_id: str,
        *,
        json_text: Optional[str] = None,
        data: Optional[bytes] = None,
        media_type: Optional[str] = None,
    ):
        if (json_text is None) == (data is None):
            raise ValueError("an output is either JSON text or bytes")
        self.id = output_id
        self.media_type = media_type
        self.text = json_text
        self.data = data

    @classmethod
    def json(cls, output_id: str, value: Any, media_type: Optional[str] = None) -> "Output":
        """A JSON output from any JSON-serialisable value (a str becomes a
        JSON string). ``media_type`` defaults to ``application/json`` on the
        host; give e.g. ``application/geo+json``."""
        return cls(output_id, json_text=json.dumps(value, allow_nan=False), media_type=media_type)

    @classmethod
    def bytes(cls, output_id: str, data: bytes, media_type: Optional[str] = None) -> "Output":
        """A raw-bytes output (e.g. a PNG). ``media_type`` defaults to
        ``application/octet-stream`` on the host."""
        return cls(output_id, data=bytes(data), media_type=media_type)

    def value(self) -> Any:
        """The output as a Python value (JSON decoded, or the bytes)."""
        return json.loads(self.text) if self.text is not None else self.data

    def __repr__(self) -> str:
        what = self.text if self.text is not None else f"{len(self.data)} bytes"
        return f"Output({self.id!r}, {what}, media_type={self.media_type!r})"

    def _lower(self):
        value = (
            _types.Value_Json(self.text) if self.text is not None else _types.Value_Bytes(self.data)
        )
        return _types.Output(id=self.id, media_type=self.media_type, value=value)


class Process:
    """Base class of a process: set ``description`` and implement ``execute``.

    ``execute`` returns a list of :class:`Output`, or a dict mapping output
    ids to JSON-serialisable values (each becomes ``Output.json``).
    """

    #: The OGC process description (``id``, ``version``, ``title``,
    #: ``inputs``, ``outputs`` with JSON Schemas; optionally
    #: ``jobControlOptions``, ``description``, ``keywords``).
    description: dict = {}

    def execute(self, inputs: Inputs) -> Union[list, dict]:
        raise NotImplementedError


def _outputs(result: Union[Iterable[Output], dict]) -> list:
    if isinstance(result, dict):
        return [Output.json(key, value) for key, value in result.items()]
    outputs = list(result)
    for output in outputs:
        if not isinstance(output, Output):
            raise TypeError(f"execute must return Output objects or a dict, got {output!r}")
    return outputs


def call(process: type, inputs: dict) -> list:
    """Run a process class on a dict of inputs, outside any component: for
    unit tests. Returns the list of :class:`Output`; raises
    :class:`ProcessError` like the real thing would report it."""
    return _outputs(process().execute(Inputs(json.loads(json.dumps(inputs)))))


def export(process: type) -> type:
    """The class componentize-py exports for a :class:`Process` subclass.

    Assign it to ``WitWorld`` at module level: ``WitWorld = export(MyProcess)``.
    An exception other than :class:`ProcessError` fails the job with code
    ``internal-error`` and its message; the traceback goes to the job log.
    """
    described = json.dumps(process.description)
    instance = process()

    class WitWorld:
        def describe(self) -> str:
            return described

        def execute(self, inputs: str) -> list:
            try:
                outputs = _outputs(instance.execute(Inputs.from_json(inputs)))
                if _types is None:  # outside a component: the Output objects
                    return outputs
                return [output._lower() for output in outputs]
            except ProcessError as e:
                error = e
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                log("error", traceback.format_exc())
                error = ProcessError("internal-error", f"{type(e).__name__}: {e}")
            if _Err is None:
                raise error
            raise _Err(_types.ProcessError(code=error.code, message=error.message))

    WitWorld.__name__ = WitWorld.__qualname__ = f"WitWorld[{process.__name__}]"
    return WitWorld


def log(level: str, message: str) -> None:
    """Append a line to the job's log: ``level`` is one of ``trace``,
    ``debug``, ``info``, ``warn``, ``error`` (the host bounds the log)."""
    if level not in _LEVELS:
        raise ValueError(f"log level must be one of {_LEVELS}, got {level!r}")
    if _host is None:
        print(f"[{level}] {message}", file=sys.stderr)
        return
    _host.log(_host.Level[level.upper()], message)


def progress(percent: Union[int, float], message: Optional[str] = None) -> None:
    """Report progress of the running job; ``percent`` is clamped to 0..100."""
    percent = max(0, min(100, int(percent)))
    if _host is None:
        print(f"[progress {percent}%] {message or ''}".rstrip(), file=sys.stderr)
        return
    _host.progress(percent, message)
