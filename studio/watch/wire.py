"""The wire format between a :class:`~studio.watch.Watcher` and its clients.

A message is a ZeroMQ multipart message::

    frame 0: header, a UTF-8 JSON object with at least "type" and "token"
    frame 1..n: one ``.npy`` file per name listed in header["arrays"] (in order)

Arrays are written with ``numpy.save(allow_pickle=False)`` and read with
``numpy.load(allow_pickle=False)``, so an object array (which numpy can only
store as a pickle) is refused. Nothing on either side is ever unpickled or
evaluated: a pickle sent in place of a header fails the JSON check and is
refused with :class:`WireError`. The shape follows Jupyter's kernel protocol
(typed JSON messages with binary buffers beside them, over ZeroMQ).
"""

from __future__ import annotations

import io
import json
import math

import numpy as np

SCHEMA = "studio.watch/1"
MAX_HEADER = 1 * 2**20
"""Largest JSON header accepted (bytes)."""
MAX_FRAMES = 64
"""Most array frames accepted in one message."""


class WireError(Exception):
    """A message that is not in the watch format (a pickle, bad JSON, an object array, a missing field)."""


def _clean(value):
    """JSON-safe copy: numpy scalars to Python numbers, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode(header: dict, arrays: dict | None = None) -> list[bytes]:
    """Frames of one message.

    Parameters
    ----------
    header : dict
        JSON-serialisable fields; ``"type"`` names the message.
    arrays : dict of str to ndarray, optional
        Numeric or string arrays, sent as ``.npy`` frames.

    Returns
    -------
    list of bytes
        ``[header, npy, ...]``.

    Raises
    ------
    WireError
        For an array numpy could only store as a pickle (object dtype).
    """
    names, frames = [], []
    for name, value in (arrays or {}).items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise WireError(f"array {name!r} has object dtype, which cannot cross without pickle")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        names.append(name)
        frames.append(buf.getvalue())
    head = dict(_clean(header), arrays=names)
    return [json.dumps(head, allow_nan=False).encode()] + frames


def decode(frames: list[bytes]) -> tuple[dict, dict]:
    """Header and arrays of one message.

    Parameters
    ----------
    frames : list of bytes
        As received (without any ROUTER identity frame).

    Returns
    -------
    header : dict
    arrays : dict of str to ndarray

    Raises
    ------
    WireError
        If the header is not a JSON object (a pickle, for one), lacks a string
        ``"type"``, names arrays that are not there, or an array frame is not a
        pickle-free ``.npy`` file.
    """
    if not frames:
        raise WireError("empty message")
    if len(frames[0]) > MAX_HEADER:
        raise WireError("header too large")
    try:
        header = json.loads(bytes(frames[0]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"header is not UTF-8 JSON ({type(exc).__name__}); pickles are never read") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise WireError("header must be a JSON object with a string 'type'")
    names = header.get("arrays", [])
    if not isinstance(names, list) or len(names) != len(frames) - 1 or len(names) > MAX_FRAMES:
        raise WireError("header 'arrays' does not match the frames sent")
    arrays = {}
    for name, frame in zip(names, frames[1:]):
        try:
            arrays[str(name)] = np.load(io.BytesIO(bytes(frame)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise WireError(f"array {name!r} is not a pickle-free .npy file ({type(exc).__name__})") from None
    return header, arrays
