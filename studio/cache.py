"""Content-addressed persistent cache of explanations.

Key: sha256 over the canonical JSON of everything that decides a result.
Entries are written atomically (temp file + ``os.replace``), the directory
is kept under a size bound by least-recently-used eviction, a corrupt entry
is treated as a miss and recomputed, and a directory that cannot be written
degrades to no caching with one warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from collections import OrderedDict
from pathlib import Path

DEFAULT_MAX_BYTES = 2 * 2**30
SUFFIX = ".explanation"
# Directories already warned about in this process: a server that cannot write its
# cache says so once, not on every explanation.
_WARNED: set = set()
# Decoded entries read or written by this process, so a repeated call skips the read
# and the decode: path -> (file signature, decoded value). An entry is used only while
# the file on disk still has the signature it had then (replaced, truncated, corrupted
# or evicted files are read afresh).
_RECENT: OrderedDict = OrderedDict()
_RECENT_ITEMS = 256
_RECENT_BYTES = 256 * 2**20  # bound on the summed file sizes of the remembered entries


def default_dir() -> Path:
    """``$STUDIO_CACHE_DIR`` or ``~/.cache/studio``."""
    return Path(os.environ.get("STUDIO_CACHE_DIR") or Path.home() / ".cache" / "studio")


def _env_max_bytes() -> int:
    raw = os.environ.get("STUDIO_CACHE_MAX_BYTES")
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        return max(int(raw), 0)
    except ValueError:
        warnings.warn(f"STUDIO_CACHE_MAX_BYTES={raw!r} is not an integer; using {DEFAULT_MAX_BYTES}", RuntimeWarning, stacklevel=3)
        return DEFAULT_MAX_BYTES


def cache_key(parts: dict) -> str:
    """sha256 of the canonical JSON of ``parts`` (sorted keys, no spaces)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    """A directory of ``<key>.explanation`` files.

    Parameters
    ----------
    directory : path, optional
        Defaults to :func:`default_dir`.
    max_bytes : int, optional
        Size bound; ``$STUDIO_CACHE_MAX_BYTES`` or 2 GiB.
    """

    def __init__(self, directory=None, max_bytes: int | None = None):
        self.directory = Path(directory) if directory is not None else default_dir()
        self.max_bytes = max_bytes if max_bytes is not None else _env_max_bytes()
        self.disabled_reason: str | None = None

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{SUFFIX}"

    def get(self, key: str) -> bytes | None:
        """The stored bytes for ``key``, or None. Touches the entry (LRU)."""
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        _touch(path)
        return blob

    def get_decoded(self, key: str, decode):
        """The entry for ``key`` decoded by ``decode(bytes)``, or None when absent.

        Repeated calls in one process reuse the decoded value while the file
        is unchanged, so a warm hit costs a ``stat``; ``decode`` errors
        propagate (the caller discards the entry). Returns the cached object
        itself: callers copy it before changing it.
        """
        path = self._path(key)
        name = str(path)
        signature = _signature(path)
        if signature is None:
            _RECENT.pop(name, None)
            return None
        recent = _RECENT.get(name)
        if recent is not None and recent[0] == signature:
            _RECENT[name] = (_touch(path) or signature, recent[1])  # the new signature after the LRU touch
            _RECENT.move_to_end(name)
            return recent[1]
        blob = self.get(key)
        if blob is None:
            return None
        value = decode(blob)
        _remember(path, value)
        return value

    def put_decoded(self, key: str, value, encode) -> bool:
        """Store ``encode(value)`` and remember ``value`` for :meth:`get_decoded`."""
        stored = self.put(key, encode(value))
        if stored:
            _remember(self._path(key), value)
        return stored

    def discard(self, key: str) -> None:
        """Remove an entry (e.g. one found corrupt)."""
        _RECENT.pop(str(self._path(key)), None)
        try:
            self._path(key).unlink()
        except OSError:
            pass

    def put(self, key: str, blob: bytes) -> bool:
        """Store ``blob`` atomically; False (with one warning) if the disk refuses."""
        if self.disabled_reason:
            return False
        path = self._path(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            self.disabled_reason = f"{exc.strerror or exc} ({self.directory})"
            if str(self.directory) not in _WARNED:
                _WARNED.add(str(self.directory))
                warnings.warn(
                    f"studio cache disabled: cannot write to {self.directory}: {exc.strerror or exc}; "
                    "results are computed but not kept (set STUDIO_CACHE_DIR to a writable folder)",
                    RuntimeWarning, stacklevel=2,
                )
            return False
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        self.evict()
        return True

    def entries(self) -> list:
        """(path, size, last-used time) of every entry, oldest first."""
        out = []
        if not self.directory.is_dir():
            return out
        for path in self.directory.glob(f"*/*{SUFFIX}"):
            if path.name.startswith(".tmp-"):
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((path, st.st_size, st.st_mtime))
        out.sort(key=lambda e: e[2])
        return out

    def size(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def evict(self) -> None:
        """Delete least-recently-used entries until the size bound holds."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        for path, size, _ in entries:
            if total <= self.max_bytes:
                break
            try:
                path.unlink()
                total -= size
            except OSError:
                pass

    def clear(self) -> None:
        for path, _, _ in self.entries():
            try:
                path.unlink()
            except OSError:
                pass


def _signature(path: Path):
    """(inode, size, mtime in ns) of ``path``, or None when it is absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _touch(path: Path):
    """Mark ``path`` used now (LRU order); its new signature, or None if it could not."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:
        return None
    return _signature(path)


def _remember(path: Path, value) -> None:
    signature = _signature(path)
    if signature is None:
        return
    if signature[1] > _RECENT_BYTES // 4:
        return
    _RECENT[str(path)] = (signature, value)
    _RECENT.move_to_end(str(path))
    while len(_RECENT) > _RECENT_ITEMS or sum(sig[1] for sig, _ in _RECENT.values()) > _RECENT_BYTES:
        _RECENT.popitem(last=False)
