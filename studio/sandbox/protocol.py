"""The data-only wire format between the studio and a model worker.

A message is a JSON header and zero or more binary parts, framed as::

    b"STW1" | u32 header length | header (UTF-8 JSON object) | for each part: u64 length | bytes

The header names its parts in ``"parts"``: ``{"name": ..., "kind": "npy" | "bytes"}``.
``npy`` parts are read with ``numpy.load(allow_pickle=False)``, so an object
array (which numpy can only store as a pickle) is refused; ``bytes`` parts
are opaque (model files, ``Explanation.to_bytes`` blobs, decoded by their own
pickle-free readers). Nothing is ever unpickled on either side: a pickle sent
in place of a message fails the magic, the JSON or the ``.npy`` check and is
refused with :class:`ProtocolError`.

The shape follows Jupyter's kernel protocol (typed messages, a JSON header,
binary buffers beside it), over a pair of pipes instead of ZeroMQ.
"""

from __future__ import annotations

import io
import json
import os
import struct

import numpy as np

MAGIC = b"STW1"
MAX_HEADER = 64 * 2**20
"""Largest JSON header accepted (bytes)."""
MAX_PART = 8 * 2**30
"""Largest binary part accepted (bytes): a model file or a batch of images."""
MAX_PARTS = 4096


class ProtocolError(Exception):
    """A message that is not in the studio's format (or a pipe that closed mid-message)."""


def encode(header: dict, parts: dict | None = None) -> bytes:
    """One framed message.

    Parameters
    ----------
    header : dict
        JSON-serialisable fields; ``"type"`` names the message.
    parts : dict of str to ndarray or bytes, optional
        Arrays travel as ``.npy`` (numeric dtypes only), bytes as they are.

    Returns
    -------
    bytes

    Raises
    ------
    ProtocolError
        For an array numpy could only store as a pickle (object dtype).
    """
    blobs = []
    names = []
    for name, value in (parts or {}).items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            names.append({"name": name, "kind": "bytes"})
            blobs.append(bytes(value))
            continue
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ProtocolError(f"part {name!r} is an object array, which cannot cross without pickle")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        names.append({"name": name, "kind": "npy"})
        blobs.append(buf.getvalue())
    head = json.dumps(dict(header, parts=names), allow_nan=True).encode()
    out = [MAGIC, struct.pack("<I", len(head)), head]
    for blob in blobs:
        out.append(struct.pack("<Q", len(blob)))
        out.append(blob)
    return b"".join(out)


def write(fd: int, header: dict, parts: dict | None = None) -> None:
    """Write one message to the file descriptor ``fd`` (blocking, whole)."""
    data = memoryview(encode(header, parts))
    while data:
        n = os.write(fd, data[: 1 << 20])
        data = data[n:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the pipe closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read(fd: int) -> tuple[dict, dict]:
    """Read one message from ``fd``.

    Returns
    -------
    header : dict
    parts : dict of str to ndarray or bytes

    Raises
    ------
    EOFError
        The other end closed the pipe before a message began.
    ProtocolError
        Anything that is not a well-formed message: wrong magic (a pickle, say),
        bad JSON, sizes over the limits, an ``.npy`` part holding objects.
    """
    first = os.read(fd, 4)
    if not first:
        raise EOFError("the pipe closed")
    if len(first) < 4:
        first += _read_exact(fd, 4 - len(first))
    if first != MAGIC:
        raise ProtocolError(f"not a studio message (starts with {first!r}); pickles and other formats are refused")
    (size,) = struct.unpack("<I", _read_exact(fd, 4))
    if size > MAX_HEADER:
        raise ProtocolError(f"message header of {size} bytes is over the limit")
    try:
        header = json.loads(_read_exact(fd, size))
    except ValueError as exc:
        raise ProtocolError(f"message header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("message header is not an object with a type")
    names = header.pop("parts", [])
    if not isinstance(names, list) or len(names) > MAX_PARTS:
        raise ProtocolError("message parts are not a list")
    parts = {}
    for entry in names:
        (length,) = struct.unpack("<Q", _read_exact(fd, 8))
        if length > MAX_PART:
            raise ProtocolError(f"message part of {length} bytes is over the limit")
        blob = _read_exact(fd, length)
        if not isinstance(entry, dict) or entry.get("kind") not in ("npy", "bytes"):
            raise ProtocolError("message part has no kind")
        if entry["kind"] == "bytes":
            parts[str(entry.get("name"))] = blob
            continue
        try:
            arr = np.load(io.BytesIO(blob), allow_pickle=False)
        except Exception as exc:  # object arrays need pickle, and a pickle is no .npy: refused
            raise ProtocolError(f"part {entry.get('name')!r} is not a plain array: {exc}") from None
        if not isinstance(arr, np.ndarray):  # an .npz archive
            raise ProtocolError(f"part {entry.get('name')!r} is not a single array")
        parts[str(entry.get("name"))] = arr
    return header, parts
