"""Schemathesis hooks for wasmproc, loaded with SCHEMATHESIS_HOOKS=<this file>.

Deploy and replace take a WebAssembly component as `application/wasm`:
send generated binary bodies as they are (like application/octet-stream),
so the fuzzer uploads random bytes, which the server must refuse with 400.
"""

import schemathesis

schemathesis.serializer.alias("application/wasm", "application/octet-stream")
