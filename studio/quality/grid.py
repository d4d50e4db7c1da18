"""The resumable scenario grid of :func:`studio.assess`: every finished unit of work kept in the studio's cache.

An assessment is cut into units, each stored in :class:`studio.cache.Cache` as soon as it is finished:

- ``clean``: one method's explanation of the clean rows (its signed attributions, seconds and peak memory);
- ``faithfulness``: one method's deletion / insertion curves, infidelity and max-sensitivity (``random``: the
  random-order baseline);
- ``perturbation``: one attack at one severity, the perturbed rows and the model's output on them;
- ``scenario``: one method under one perturbation, the attributions of the rows whose prediction held.

Each key is the sha256 (:func:`studio.cache.cache_key`) of the model's ``cache_id``, the data's fingerprint, the
rows, the seed, the library versions and the unit's own parameters (method, its version and parameters, attack,
severity and its parameters, tolerance, faithfulness settings), so an assessment interrupted part way (a closed
app, a killed CLI, a cancelled API job) and run again with the same arguments computes only the units it lacks,
as a batch run resumes its partitions. Entries are the cache's HMAC-tagged files; the payload is an ``.npz``
with a JSON header, read with ``allow_pickle=False`` after :func:`studio.explanation.check_npz` bounds it (the
same form as ``Explanation.to_bytes``).
"""

from __future__ import annotations

import io
import json

import numpy as np

UNIT_SCHEMA = "studio.assess.unit/1"


def encode(header: dict, arrays: dict) -> bytes:
    """An ``.npz`` of ``arrays`` with ``header`` as JSON (NaN allowed) under ``__header__``."""
    buf = io.BytesIO()
    np.savez(buf, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
             **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def decode(blob: bytes) -> tuple[dict, dict]:
    """Inverse of :func:`encode`; ``ValueError`` on a corrupt or oversized blob (never unpickles)."""
    from studio.explanation import check_npz, max_result_bytes

    check_npz(blob, max_result_bytes())
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            header = json.loads(npz["__header__"].tobytes().decode())
            arrays = {k: npz[k] for k in npz.files if k != "__header__"}
    except Exception as exc:  # zipfile, json, KeyError: all mean corrupt
        raise ValueError(f"corrupt assessment unit: {exc}") from exc
    if not isinstance(header, dict):
        raise ValueError("corrupt assessment unit: the header is not an object")
    return header, arrays


class UnitStore:
    """Get or compute the units of one assessment, counting what was reused.

    Parameters
    ----------
    cache : bool or Cache
        True: the default disk cache (``$STUDIO_CACHE_DIR``); False: compute every unit, store nothing.
    base : dict
        What every key of this assessment shares (model, data, rows, seed, versions).
    """

    def __init__(self, cache, base: dict):
        from studio.cache import Cache

        self.cache = (cache if isinstance(cache, Cache) else Cache()) if cache else None
        self.base = base
        self.reused = {"scenario": 0}
        self.computed = {"scenario": 0}

    def key(self, parts: dict) -> str:
        from studio.cache import cache_key

        return cache_key({"schema": UNIT_SCHEMA, **self.base, **parts})

    def unit(self, parts: dict, compute) -> tuple[dict, dict]:
        """The stored ``(header, arrays)`` of the unit ``parts``, or ``compute()``'s, stored before it is returned.

        ``compute`` returns ``(header, arrays)``: a JSON-able dict and a dict of numeric arrays.
        """
        kind = parts["unit"]
        if self.cache is not None:
            key = self.key(parts)
            try:
                got = self.cache.get_decoded(key, decode)
            except ValueError:  # corrupt: recompute
                self.cache.discard(key)
                got = None
            if got is not None:
                self.reused[kind] = self.reused.get(kind, 0) + 1
                return got
        header, arrays = compute()
        if self.cache is not None:
            self.cache.put_decoded(self.key(parts), (header, arrays), lambda v: encode(*v))
        self.computed[kind] = self.computed.get(kind, 0) + 1
        return header, arrays
