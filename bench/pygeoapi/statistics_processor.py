"""The peer of `statistics-py` for pygeoapi: the very same Python code.

This pygeoapi processor plugin runs `polyglot/python/statistics/app.py`
(the source statistics-py is built from) with the guest SDK's plain-CPython
runner, `wasmproc.call`, so both servers execute identical Python on
identical inputs; only the server around it differs.
`bench/pygeoapi/pygeoapi-config.yml` names it by module path, and bench.py
puts this folder on gunicorn's PYTHONPATH.
"""

import sys
from pathlib import Path

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT / "guest-sdk/python"), str(_ROOT / "polyglot/python/statistics")]

import app  # noqa: E402  (the statistics-py source)
import wasmproc  # noqa: E402

# Outside a component the SDK prints progress reports to stderr; pygeoapi
# has no progress channel for a sync job, so they are dropped, not written
# to its log on every request.
app.progress = lambda percent, message=None: None

PROCESS_METADATA = dict(app.Statistics.description, id="statistics")


class StatisticsProcessor(BaseProcessor):
    """`app.Statistics`, served by pygeoapi."""

    def __init__(self, processor_def):
        super().__init__(processor_def, PROCESS_METADATA)

    def execute(self, data, outputs=None):
        try:
            (summary,) = wasmproc.call(app.Statistics, data)
        except wasmproc.ProcessError as e:
            raise ProcessorExecuteError(e.message) from e
        return "application/json", {"id": "summary", "value": summary.value()}
