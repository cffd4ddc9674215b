"""The peer of `statistics-py` for pygeoapi: the same inputs, the same
summary computed with the same calls of Python's `statistics` module, as a
pygeoapi processor plugin (`bench/pygeoapi-config.yml` names it by module
path; bench.py puts this folder on gunicorn's PYTHONPATH).
"""

import math
import statistics

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

PROCESS_METADATA = {
    "version": "0.1.0",
    "id": "statistics",
    "title": "Descriptive statistics",
    "description": "Count, sum, min, max, mean, median, standard deviation, "
    "variance and quantiles of a list of numbers; with weights, also the weighted mean.",
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["statistics"],
    "inputs": {
        "values": {"title": "Values", "minOccurs": 1,
                   "schema": {"type": "array", "items": {"type": "number"}, "minItems": 1}},
        "weights": {"title": "Weights", "minOccurs": 0,
                    "schema": {"type": "array", "items": {"type": "number", "minimum": 0}}},
        "quantiles": {"title": "Number of quantile intervals", "minOccurs": 0,
                      "schema": {"type": "integer", "minimum": 2, "maximum": 100}},
    },
    "outputs": {
        "summary": {"title": "Summary statistics",
                    "schema": {"type": "object", "contentMediaType": "application/json"}},
    },
}


class StatisticsProcessor(BaseProcessor):
    """What `polyglot/python/statistics/app.py` computes, for pygeoapi."""

    def __init__(self, processor_def):
        super().__init__(processor_def, PROCESS_METADATA)

    def execute(self, data, outputs=None):
        values = data.get("values")
        if not isinstance(values, list) or not values:
            raise ProcessorExecuteError("'values' must be a non-empty list of numbers")
        weights = data.get("weights")
        n = int(data.get("quantiles", 4))
        if weights is not None and len(weights) != len(values):
            raise ProcessorExecuteError("'weights' and 'values' differ in length")
        count = len(values)
        summary = {
            "count": count,
            "sum": math.fsum(values),
            "min": min(values),
            "max": max(values),
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "stdev": statistics.stdev(values) if count > 1 else None,
            "variance": statistics.variance(values) if count > 1 else None,
            "quantiles": statistics.quantiles(values, n=n, method="inclusive") if count > 1 else None,
        }
        if weights is not None:
            total = math.fsum(weights)
            if total == 0:
                raise ProcessorExecuteError("'weights' sum to zero")
            summary["weightedMean"] = math.fsum(v * w for v, w in zip(values, weights)) / total
        return "application/json", {"id": "summary", "value": summary}
