"""Graph and activation results in the studio's disk cache (:mod:`studio.cache`).

Keys are :func:`studio.cache.cache_key` over what decides a result:

- activations: the model's ``cache_id``, the data's fingerprint, the layer,
  a sha256 of the rows (int64), the groups, the reduction and
  :data:`~studio.activations.capture.CAPTURE_VERSION`;
- graph: the model's ``cache_id``, the data's fingerprint (its first row
  gives the example input when the card has no input size) and the graph
  code's version.

An activations entry is two files: the tagged entry (JSON: the result in
schema ``studio.activations/1`` without ``values``, plus the sha256, shape
and dtype of the matrix) and the per-row matrix as a plain ``.npy`` file
(:meth:`studio.cache.Cache.put_array`), mapped read-only on a hit
(:meth:`studio.cache.Cache.get_array`): a 50,000-row capture is not read into
memory until its rows are used. A hit reads no model: it makes no call to
the model or its worker.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

GRAPH_VERSION = 1


def _store(cache):
    from studio.cache import Cache

    return cache if isinstance(cache, Cache) else Cache()


def activations_key(model, data, layer: str, rows: np.ndarray, groups, reduce: str) -> str:
    from studio.activations.capture import CAPTURE_VERSION
    from studio.cache import cache_key

    return cache_key({"kind": "activations", "version": CAPTURE_VERSION, "model": model.cache_id,
                      "data": data.fingerprint, "layer": str(layer),
                      "rows": hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest(),
                      "n_rows": int(len(rows)), "groups": groups, "reduce": reduce})


def graph_key(model, data) -> str:
    from studio.cache import cache_key

    return cache_key({"kind": "graph", "version": GRAPH_VERSION, "model": model.cache_id,
                      "data": None if data is None else data.fingerprint})


def get_activations(cache, key: str):
    """The cached :class:`Activations` for ``key`` (matrix memory-mapped), or None."""
    from studio.activations.capture import Activations

    store = _store(cache)

    def decode(blob: bytes):
        meta = json.loads(blob)
        info = meta["matrix"]
        matrix = store.get_array(key, info["sha256"], dtype=np.float32)
        if matrix is None or list(matrix.shape) != info["shape"]:
            raise ValueError("the matrix file is missing or changed")
        act = Activations.from_wire(meta, {"values": matrix, "peak": np.asarray(meta["peak"], dtype=np.float32)})
        act.matrix = matrix  # the mapping itself (from_wire's asarray would hide that it is one)
        return act

    try:
        act = store.get_decoded(key, decode)
    except Exception:  # noqa: BLE001 -- corrupt, truncated, evicted matrix or another schema: recompute
        store.discard(key)
        return None
    if act is None:
        return None
    return _copy(act, "hit")


def put_activations(cache, key: str, act, model, data) -> bool:
    """Store ``act`` (matrix as ``.npy``, the rest as a tagged JSON entry); False when the disk refuses."""
    store = _store(cache)
    digest = store.put_array(key, np.asarray(act.matrix, dtype=np.float32))
    if digest is None:
        return False
    meta = act.to_dict(model, data)
    del meta["values"]
    meta["matrix"] = {"sha256": digest, "shape": list(act.matrix.shape), "dtype": "float32"}
    mapped = store.get_array(key, digest, dtype=np.float32)  # what this process remembers: the mapping, not a copy
    remembered = _copy(act, "hit")
    if mapped is not None:
        remembered.matrix = mapped
    return store.put_decoded(key, remembered, lambda _: json.dumps(meta).encode())


def _copy(act, cache: str):
    """A new result sharing the (read-only or copied) arrays; lists copied so callers may change them."""
    from dataclasses import replace

    return replace(act, labels=None if act.labels is None else list(act.labels),
                   predictions=None if act.predictions is None else list(act.predictions),
                   notes=list(act.notes), groups=None if act.groups is None else dict(act.groups), cache=cache)


def get_graph(cache, key: str):
    from studio.activations.graph import Graph

    store = _store(cache)
    try:
        return store.get_decoded(key, lambda blob: Graph.from_dict(json.loads(blob)))
    except Exception:  # noqa: BLE001 -- recompute
        store.discard(key)
        return None


def put_graph(cache, key: str, g, model) -> bool:
    return _store(cache).put_decoded(key, g, lambda value: value.to_json(model).encode())
