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
import warnings
from pathlib import Path

DEFAULT_MAX_BYTES = 2 * 2**30
SUFFIX = ".explanation"
# Directories already warned about in this process: a server that cannot write its
# cache says so once, not on every explanation.
_WARNED: set = set()


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
        try:
            os.utime(path)
        except OSError:
            pass
        return blob

    def discard(self, key: str) -> None:
        """Remove an entry (e.g. one found corrupt)."""
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
