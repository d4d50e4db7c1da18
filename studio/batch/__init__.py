"""Batch explanation of whole datasets on Ray Data, into partitioned Parquet (issue 18).

>>> import studio
>>> result = studio.batch("model.txt", "scores.parquet", "shap", out="results/")      # local Ray
>>> studio.batch("model.txt", "s3-mounted/parts/", "shap", out="results/", address="ray://head:10001")
>>> from studio.batch import results
>>> results.importance("results/")                        # mean |attribution| per feature, by DuckDB scans

``studio.batch`` is this package and its verb: ``studio.batch(...)`` is
``studio.batch.batch(...)``. Results: schema ``studio.batch/1``
(docs/result-schema.md); how it runs on a cluster: docs/scale.md.
"""

import sys
import types

from studio.batch.run import DEFAULT_PARTITION_ROWS, SCHEMA, BatchResult, batch, parse_rows

__all__ = ["DEFAULT_PARTITION_ROWS", "SCHEMA", "BatchResult", "batch", "parse_rows"]


class _CallableModule(types.ModuleType):
    """This package, callable as its verb: ``studio.batch(model, data, method, ...)``."""

    def __call__(self, *args, **kwargs):
        return batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
