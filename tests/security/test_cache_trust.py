"""The cache under attack: forged entries, links, special files, inflating blobs, open permissions.

Someone who can write the cache folder but not read its key must not be able
to get a result served, make the reader hang or exhaust memory, or make
eviction delete anything outside the cache. Every case ends in a silent
recompute (or a refused read), and the tests watch a folder outside the
cache to prove nothing there changed. Modes are checked with ``os.stat``, so
these tests mean the same as root (CI) and as a user.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import threading
import warnings
import zipfile

import numpy as np
import pytest

import studio
from studio import cache as cache_module
from studio.cache import HEADER_BYTES, KEY_FILE, MAGIC, Cache, cache_key
from studio.explanation import Explanation, check_npz

PARAMS = {"n_repeats": 1, "max_rows": 30}


@pytest.fixture
def model(table):
    from sklearn.tree import DecisionTreeClassifier

    return studio.wrap_model(DecisionTreeClassifier(max_depth=3, random_state=0).fit(table.x, table.y))


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(cache_module, "_WARNED", set())
    monkeypatch.setattr(cache_module, "_RECENT", cache_module.OrderedDict())


def snapshot(folder) -> dict:
    """Every path under ``folder`` (links not followed) -> (type, size, mtime, sha256 of content)."""
    out = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            out[os.path.relpath(path, folder)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def outside(tmp_path):
    """A folder outside the cache holding files named like cache entries; unchanged at the end of every test."""
    folder = tmp_path / "outside"
    folder.mkdir()
    for i in range(3):
        (folder / f"{cache_key({'outside': i})}.explanation").write_bytes(b"precious " * 200)
    (folder / "notes.txt").write_text("precious")
    before = snapshot(folder)
    yield folder
    assert snapshot(folder) == before


def _run(model, table):
    return studio.explain(model, table, "permutation_importance", params=PARAMS)


def _the_entry(cache_dir):
    (path, _, _), = Cache(cache_dir).entries()
    return path, path.name[: -len(".explanation")]


def _forged_result(model, table, cache_dir):
    """A true result, then a valid ``Explanation.to_bytes`` blob with planted numbers."""
    first = _run(model, table)
    path, key = _the_entry(cache_dir)
    forged = Explanation.from_bytes(Cache(cache_dir).get(key))
    for imp in forged.importances:
        imp.mean = 1e6
    forged.checks["planted"] = 1.0
    return first, path, key, forged.to_bytes()


def _assert_recomputed(model, table, first):
    again = _run(model, table)
    assert again.cache == "miss" and "planted" not in again.checks
    assert [i.mean for i in again.importances] == [i.mean for i in first.importances]
    assert _run(model, table).cache == "hit"  # the recomputed entry is stored and verifies


# ---- permissions ---------------------------------------------------------------------------------
def test_folder_key_and_entries_are_private(tmp_path):
    cache = Cache(tmp_path / "cache")
    key = cache_key({"a": 1})
    assert cache.put(key, b"payload")
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "cache") == 0o700
    assert mode(tmp_path / "cache" / key[:2]) == 0o700
    assert mode(tmp_path / "cache" / KEY_FILE) == 0o600
    assert mode(cache._path(key)) == 0o600
    assert os.stat(tmp_path / "cache" / KEY_FILE).st_size == 32
    assert cache.get(key) == b"payload"


def test_an_open_folder_of_ours_is_tightened_with_one_warning(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o777)
    cache = Cache(folder)
    with pytest.warns(RuntimeWarning, match="made it private"):
        assert cache.put(cache_key({"a": 1}), b"x")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Cache(folder).put(cache_key({"a": 2}), b"y")  # no second warning


# ---- forgery -------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["untagged", "random_tag", "other_secret", "other_key_name"])
def test_a_forged_entry_is_recomputed_never_served(model, table, isolated_cache, outside, how):
    first, path, key, forged = _forged_result(model, table, isolated_cache)
    if how == "untagged":  # a plain Explanation.to_bytes blob, as the cache once stored them
        planted = forged
    elif how == "random_tag":
        planted = MAGIC + os.urandom(32) + forged
    elif how == "other_secret":  # tagged correctly, under a secret the attacker made up
        other = Cache(outside.parent / "attacker")
        other._secret = b"k" * 32
        planted = MAGIC + other._tag(other._secret, key, forged) + forged
    else:  # a genuine entry of another key, copied under this key's name
        donor = cache_key({"donor": 1})
        Cache(isolated_cache).put(donor, forged)
        planted = Cache(isolated_cache)._path(donor).read_bytes()
    tmp = path.with_name("planted")
    tmp.write_bytes(planted)
    os.replace(tmp, path)
    assert Cache(isolated_cache).get(key) is None
    _assert_recomputed(model, table, first)


def test_a_replaced_key_file_is_not_trusted(model, table, isolated_cache, outside):
    """The attacker swaps the key for one they know (a link, or a file open to all) and tags a forgery with it."""
    first, path, key, forged = _forged_result(model, table, isolated_cache)
    known = b"a" * 32
    attacker_key = outside.parent / "attacker.key"
    attacker_key.write_bytes(known)
    key_path = isolated_cache / KEY_FILE
    key_path.unlink()
    key_path.symlink_to(attacker_key)
    tagger = Cache(isolated_cache)
    path.write_bytes(MAGIC + tagger._tag(known, key, forged) + forged)
    assert Cache(isolated_cache).get(key) is None  # a linked key is not read
    key_path.unlink()
    key_path.write_bytes(known)
    key_path.chmod(0o644)
    assert Cache(isolated_cache).get(key) is None  # nor one others can read
    with pytest.warns(RuntimeWarning, match="not a private file"):
        _assert_recomputed(model, table, first)
    assert not key_path.is_symlink() and stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert key_path.read_bytes() != known
    assert attacker_key.read_bytes() == known


# ---- links and special files ---------------------------------------------------------------------
def _finishes(fn, seconds=20.0):
    """fn() in a thread; its result, failing (not hanging) if it does not return in time."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the cache read blocked"
    return box["value"]


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "link_to_valid_entry", "directory"])
def test_special_files_are_never_read(model, table, isolated_cache, outside, kind):
    first = _run(model, table)
    path, key = _the_entry(isolated_cache)
    if kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.unlink()
        path.symlink_to("/dev/zero")
    elif kind == "link_to_valid_entry":  # even a genuine, verifying entry is not read through a link
        moved = outside.parent / "moved.explanation"
        os.replace(path, moved)
        path.symlink_to(moved)
    else:
        path.unlink()
        path.mkdir()
    assert _finishes(lambda: Cache(isolated_cache).get(key)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a directory in the entry's place cannot be replaced
        again = _finishes(lambda: _run(model, table))
    assert again.cache == "miss"
    assert [i.mean for i in again.importances] == [i.mean for i in first.importances]
    if kind == "link_to_valid_entry":
        assert not path.is_symlink()  # the new entry replaced the link, not the file it pointed to


def test_an_oversized_entry_is_not_read(tmp_path, monkeypatch):
    cache = Cache(tmp_path, max_entry_bytes=1000)
    key = cache_key({"big": 1})
    assert cache.put(key, b"x" * 2000)
    assert cache._read_secret() is not None  # the key is read once per Cache; count only the entry's reads
    reads = []
    real_read = os.read
    monkeypatch.setattr(cache_module.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    assert cache.get(key) is None
    assert reads == []  # refused from fstat's size, before a byte was read
    assert Cache(tmp_path).get(key) == b"x" * 2000


# ---- inflating blobs -----------------------------------------------------------------------------
def _lying_npz(declared_shape=(10**9,)) -> bytes:
    """An npz of a few hundred bytes whose array header declares ``declared_shape`` float64 (8 GB)."""
    from numpy.lib import format as npformat

    npy = io.BytesIO()
    npformat.write_array_header_1_0(npy, {"descr": "<f8", "fortran_order": False, "shape": declared_shape})
    npy.write(b"\0" * 64)
    header = io.BytesIO()
    np.save(header, np.frombuffer(b'{"method": "x"}', dtype=np.uint8))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__header__.npy", header.getvalue())
        zf.writestr("a0.npy", npy.getvalue())
    return buf.getvalue()


def _deflated_zeros(n_bytes: int) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, a0=np.zeros(n_bytes, dtype=np.uint8))
    return buf.getvalue()


def test_npz_bombs_are_refused_from_headers():
    lying = _lying_npz()
    assert len(lying) < 2000
    with pytest.raises(ValueError, match="over the limit"):
        Explanation.from_bytes(lying)
    zeros = _deflated_zeros(64 * 2**20)  # 64 MiB of zeros in about 64 kB
    assert len(zeros) < 2**20
    with pytest.raises(ValueError, match="inflates to"):
        check_npz(zeros, 16 * 2**20)
    check_npz(zeros, 128 * 2**20)  # the same blob under a larger bound passes


@pytest.mark.parametrize("bomb", ["lying_header", "deflated_zeros"])
def test_a_tagged_npz_bomb_is_recomputed(model, table, isolated_cache, monkeypatch, bomb):
    """Even an entry that verifies (written by a buggy or compromised writer) cannot inflate past the bound."""
    monkeypatch.setenv("STUDIO_RESULT_MAX_BYTES", str(16 * 2**20))
    first = _run(model, table)
    path, key = _the_entry(isolated_cache)
    blob = _lying_npz() if bomb == "lying_header" else _deflated_zeros(64 * 2**20)
    cache = Cache(isolated_cache)
    assert cache.put(key, blob) and cache.get(key) == blob  # a genuine, verifying entry
    cache_module._RECENT.clear()
    again = _run(model, table)
    assert again.cache == "miss"
    assert [i.mean for i in again.importances] == [i.mean for i in first.importances]


# ---- eviction ------------------------------------------------------------------------------------
def test_eviction_never_follows_links(tmp_path, outside):
    folder = tmp_path / "cache"
    cache = Cache(folder, max_bytes=3000)
    assert cache.put(cache_key({"seed": 0}), b"s" * 100)
    (folder / "zz").symlink_to(outside, target_is_directory=True)  # a linked sub-folder
    real_sub = folder / cache_key({"seed": 0})[:2]
    victim = outside / f"{cache_key({'outside': 0})}.explanation"
    (real_sub / victim.name).symlink_to(victim)  # a linked entry inside a real sub-folder
    listed = {p for p, _, _ in cache.entries()}
    assert all(not p.is_symlink() and outside not in p.parents for p in listed)
    for i in range(20):
        assert cache.put(cache_key({"i": i}), b"x" * 1000)
    assert cache.size() <= 3000
    assert (real_sub / victim.name).is_symlink()  # listed nowhere, deleted never
    cache.clear()
    assert cache.entries() == []


def test_a_linked_sub_folder_is_not_written_through(tmp_path, outside):
    folder = tmp_path / "cache"
    key = cache_key({"k": 1})
    cache = Cache(folder)
    assert cache.put(cache_key({"first": 1}), b"x")
    (folder / key[:2]).symlink_to(outside, target_is_directory=True)
    assert cache.put(key, b"payload")
    assert not (folder / key[:2]).is_symlink() and (folder / key[:2]).is_dir()
    assert cache.get(key) == b"payload"


def test_entry_format_is_magic_tag_blob(tmp_path):
    cache = Cache(tmp_path)
    key = cache_key({"f": 1})
    cache.put(key, b"blob")
    raw = cache._path(key).read_bytes()
    assert raw[:8] == MAGIC and raw[HEADER_BYTES:] == b"blob" and len(raw) == HEADER_BYTES + 4
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    cache._path(key).write_bytes(flipped)
    assert cache.get(key) is None
