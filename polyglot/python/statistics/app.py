"""The `statistics-py` process: descriptive statistics of a list of numbers,
with Python's `statistics` module (optionally weighted).

Build: `./build.sh` (writes polyglot/out/statistics-py.wasm).
"""

import math
import statistics

import wasmproc
from wasmproc import Inputs, Output, Process, ProcessError, progress


class Statistics(Process):
    description = {
        "id": "statistics-py",
        "version": "0.1.0",
        "title": "Descriptive statistics (Python)",
        "description": "Count, sum, min, max, mean, median, standard deviation, "
        "variance and quantiles of a list of numbers; with weights, also the weighted mean.",
        "keywords": ["statistics", "python"],
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "inputs": {
            "values": {
                "title": "Values",
                "minOccurs": 1,
                "schema": {"type": "array", "items": {"type": "number"}, "minItems": 1},
            },
            "weights": {
                "title": "Weights",
                "description": "One non-negative weight per value, for the weighted mean.",
                "minOccurs": 0,
                "schema": {"type": "array", "items": {"type": "number", "minimum": 0}},
            },
            "quantiles": {
                "title": "Number of quantile intervals",
                "description": "4 gives quartiles, 10 deciles, 100 percentiles. Default 4.",
                "minOccurs": 0,
                "schema": {"type": "integer", "minimum": 2, "maximum": 100},
            },
        },
        "outputs": {
            "summary": {
                "title": "Summary statistics",
                "schema": {"type": "object", "contentMediaType": "application/json"},
            }
        },
    }

    def execute(self, inputs: Inputs):
        values = inputs.required("values")
        weights = inputs.value("weights")
        n = int(inputs.optional_number("quantiles", 4))
        if weights is not None and len(weights) != len(values):
            raise ProcessError.invalid_input(
                f"'weights' has {len(weights)} entries but 'values' has {len(values)}"
            )
        progress(10, "read %d values" % len(values))
        count = len(values)
        summary = {
            "count": count,
            "sum": math.fsum(values),
            "min": min(values),
            "max": max(values),
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            # Sample statistics need two values.
            "stdev": statistics.stdev(values) if count > 1 else None,
            "variance": statistics.variance(values) if count > 1 else None,
            "quantiles": statistics.quantiles(values, n=n, method="inclusive") if count > 1 else None,
        }
        progress(80, "summary computed")
        if weights is not None:
            total = math.fsum(weights)
            if total == 0:
                raise ProcessError.invalid_input("'weights' sum to zero")
            summary["weightedMean"] = math.fsum(v * w for v, w in zip(values, weights)) / total
        return [Output.json("summary", summary)]


WitWorld = wasmproc.export(Statistics)
