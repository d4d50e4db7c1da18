"""The wire format carries data only: JSON, .npy arrays, opaque bytes; a pickle is refused either way."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from studio.sandbox import protocol
from studio.sandbox.client import WorkerProcess


def _through_pipe(blob: bytes):
    r, w = os.pipe()
    os.write(w, blob)
    os.close(w)
    try:
        return protocol.read(r)
    finally:
        os.close(r)


def test_arrays_and_bytes_round_trip_exactly():
    x = np.random.default_rng(0).normal(size=(5, 3))
    header, parts = _through_pipe(protocol.encode({"type": "output", "n": 3}, {"x": x, "blob": b"\x00\x01"}))
    assert header == {"type": "output", "n": 3}
    np.testing.assert_array_equal(parts["x"], x)
    assert parts["x"].dtype == x.dtype and parts["blob"] == b"\x00\x01"


def test_a_pickle_in_place_of_a_message_is_refused():
    with pytest.raises(protocol.ProtocolError, match="pickles"):
        _through_pipe(pickle.dumps({"type": "output"}))


def test_an_object_array_cannot_be_sent_and_a_pickled_npy_part_is_refused():
    with pytest.raises(protocol.ProtocolError):
        protocol.encode({"type": "output"}, {"x": np.array([object()], dtype=object)})
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # an .npy that holds a pickle
    frame = protocol.encode({"type": "output"}, {"x": b""}).replace(b'"bytes"', b'"npy"  ')
    head_len = int.from_bytes(frame[4:8], "little")
    forged = frame[: 8 + head_len] + len(buf.getvalue()).to_bytes(8, "little") + buf.getvalue()
    with pytest.raises(protocol.ProtocolError, match="not a plain array"):
        _through_pipe(forged)


def test_a_live_worker_refuses_a_pickle_and_says_so():
    worker = WorkerProcess("none")
    try:
        worker.wait_ready(60)
        os.write(worker.fd_out, pickle.dumps({"type": "load"}))
        with pytest.raises(Exception, match="not a studio message|pickles"):
            worker._receive(None, "a pickled request", None, None)
    finally:
        worker.kill()


def test_an_extra_file_cannot_shadow_the_model_bytes():
    from studio.sandbox.client import _load_parts

    header, parts = _through_pipe(protocol.encode({"type": "load"}, _load_parts(b"MODEL", {"model": b"DATA"})))
    assert parts["model"] == b"MODEL" and parts["extra/model"] == b"DATA"
