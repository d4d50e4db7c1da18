"""The cache under faults: damaged entries, racing processes, unwritable or full disks."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import studio
from studio import cache as cache_module
from studio.cache import Cache, cache_key
from tests.conftest import ROOT

PARAMS = {"n_repeats": 1, "max_rows": 30}


@pytest.fixture
def pair(mlp, table):
    return mlp, table


def _npz_blob(header: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["truncated", "empty", "wrong_schema", "directory"])
def test_damaged_entry_is_recomputed(pair, isolated_cache, damage):
    model, data = pair
    first = studio.explain(model, data, "permutation_importance", params=PARAMS)
    (path, _, _), = Cache(isolated_cache).entries()
    blob = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong_schema":  # a readable npz + JSON header, but not an explanation
        path.write_bytes(_npz_blob({"schema": "something/else"}))
    else:  # a directory where the entry should be: unreadable and unreplaceable
        path.unlink()
        path.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        again = studio.explain(model, data, "permutation_importance", params=PARAMS)
    assert again.cache == "miss"
    assert [i.mean for i in again.importances] == [i.mean for i in first.importances]
    if damage != "directory":
        assert studio.explain(model, data, "permutation_importance", params=PARAMS).cache == "hit"


WRITER = """
import sys
from studio.cache import Cache
cache = Cache(sys.argv[1])
blob = sys.argv[2].encode() * 20000
for _ in range(60):
    assert cache.put("ab" * 32, blob)
"""


def test_two_processes_writing_one_key_leave_one_valid_entry(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), tag], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for tag in ("A", "B")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    cache = Cache(tmp_path)
    blob = cache.get("ab" * 32)
    assert blob in (b"A" * 20000, b"B" * 20000)  # one whole write, never a mix or a torn file
    assert len(cache.entries()) == 1
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_full_disk_degrades_to_no_caching_with_one_warning(pair, monkeypatch):
    model, data = pair
    real_replace = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith(cache_module.SUFFIX):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(cache_module.os, "replace", full)
    monkeypatch.setattr(cache_module, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [studio.explain(model, data, "permutation_importance", params=PARAMS) for _ in range(3)]
    assert [r.cache for r in results] == ["miss", "miss", "miss"]
    assert results[0].importances == results[2].importances
    messages = [str(w.message) for w in caught if "cache disabled" in str(w.message)]
    assert len(messages) == 1 and "No space left" in messages[0]
    assert Cache().entries() == []
    assert [p for p in Cache().directory.rglob("*") if p.name.startswith(".tmp-")] == []


def test_file_where_the_cache_dir_should_be(pair, tmp_path, monkeypatch):
    model, data = pair
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(blocker))
    monkeypatch.setattr(cache_module, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            assert studio.explain(model, data, "permutation_importance", params=PARAMS).cache == "miss"
    assert sum("cache disabled" in str(w.message) for w in caught) == 1
    assert blocker.read_text() == "a file, not a folder"


def test_read_only_cache_dir(pair, tmp_path, monkeypatch):
    """Read-only as a mount would make it (root ignores chmod): every write raises EROFS."""
    model, data = pair
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache_module, "_WARNED", set())

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(cache_module.tempfile, "mkstemp", read_only)
    with pytest.warns(RuntimeWarning, match="Read-only file system"):
        exp = studio.explain(model, data, "permutation_importance", params=PARAMS)
    assert exp.cache == "miss" and exp.importances


def test_bad_size_setting_does_not_crash(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_CACHE_MAX_BYTES", "lots")
    with pytest.warns(RuntimeWarning, match="not an integer"):
        cache = Cache(tmp_path)
    assert cache.max_bytes == cache_module.DEFAULT_MAX_BYTES
    assert cache.put(cache_key({"a": 1}), b"x")
