"""Content-addressed persistent cache of explanations.

Key: sha256 over the canonical JSON of everything that decides a result.
Entries are written atomically (temp file + ``os.replace``), the directory
is kept under a size bound by least-recently-used eviction, a corrupt entry
is treated as a miss and recomputed, and a directory that cannot be written
degrades to no caching with one warning.

Trust: the cache directory is private (created 0700; a wider mode on a
directory this user owns is tightened, with one warning). Every entry file is
``MAGIC + tag + blob`` where ``tag`` is HMAC-SHA256 (RFC 2104, Python's
``hmac``) over the entry's key and blob, under a 32-byte secret kept in the
directory as ``.key`` (mode 0600, created atomically with ``os.link``). An
entry whose tag does not verify is a miss and is recomputed, never served,
so someone who can write the directory but not read the secret cannot plant
a result. A secret that is not a private regular file of this user is not
trusted (reads miss; the next write replaces it). Only regular files are
read: opened with ``O_NOFOLLOW | O_NONBLOCK`` (no links, and a FIFO cannot
block), then ``fstat`` checks the type and the size before a byte is read.
Listing and eviction use ``lstat`` and never follow links, and unlink by
name inside a sub-folder opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
import time
import warnings
from collections import OrderedDict
from pathlib import Path

DEFAULT_MAX_BYTES = 2 * 2**30
SUFFIX = ".explanation"
ARRAY_SUFFIX = ".npy"  # memory-mapped array entries (put_array / get_array), listed and evicted with the others
MAGIC = b"STUDIOC1"  # entry format: MAGIC, 32-byte HMAC-SHA256 tag, blob
TAG_BYTES = 32
HEADER_BYTES = len(MAGIC) + TAG_BYTES
KEY_FILE = ".key"
KEY_BYTES = 32
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
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
    """A private directory of ``<key>.explanation`` files, each tagged with an HMAC.

    Parameters
    ----------
    directory : path, optional
        Defaults to :func:`default_dir`.
    max_bytes : int, optional
        Size bound; ``$STUDIO_CACHE_MAX_BYTES`` or 2 GiB.
    max_entry_bytes : int, optional
        Largest entry file read; ``$STUDIO_RESULT_MAX_BYTES`` or 1 GiB (a
        larger file is a miss and is never read).
    """

    def __init__(self, directory=None, max_bytes: int | None = None, max_entry_bytes: int | None = None):
        from studio.explanation import max_result_bytes

        self.directory = Path(directory) if directory is not None else default_dir()
        self.max_bytes = max_bytes if max_bytes is not None else _env_max_bytes()
        self.max_entry_bytes = max_entry_bytes if max_entry_bytes is not None else max_result_bytes()
        self.disabled_reason: str | None = None
        self._secret: bytes | None = None

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{SUFFIX}"

    # ---- the secret ----------------------------------------------------------------------------
    def _key_path(self) -> Path:
        return self.directory / KEY_FILE

    def _read_secret(self) -> bytes | None:
        """The directory's HMAC secret if it is a private regular file of this user, else None."""
        if self._secret is not None:
            return self._secret
        got = _read_regular(self._key_path(), KEY_BYTES, private=True)
        if got is not None and len(got[0]) == KEY_BYTES:
            self._secret = got[0]
        return self._secret

    def _make_secret(self) -> bytes:
        """Read the secret, or create it (0600, atomically: ``os.link`` of a finished temp file).

        A key file that is not a private regular file of this user (a link,
        another owner, group/other permissions, the wrong size) is replaced,
        with one warning: entries tagged under it are then misses.
        """
        secret = self._read_secret()
        if secret is not None:
            return secret
        path = self._key_path()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if another process made the key first: then use theirs
            except FileExistsError:
                if self._read_secret() is None:  # there is one, but not ours or not private
                    _warn_once(f"key:{self.directory}",
                               f"studio cache key {path} was not a private file of this user; replaced it "
                               "(results cached under the old key are recomputed)")
                    os.replace(tmp, path)  # replaces a link itself, never its target
                    tmp = None
        finally:
            _discard(tmp)
        secret = self._read_secret()
        if secret is None:
            raise OSError(errno.EACCES, "the cache key could not be made private", str(path))
        return secret

    def _prepare_directory(self) -> None:
        """Create the directory 0700; tighten one this user owns that others can reach (one warning)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(self.directory)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "Not a directory", str(self.directory))
        if os.name == "posix" and st.st_mode & 0o077:  # Windows has no group/other bits to tighten
            if st.st_uid == _euid():
                os.chmod(self.directory, 0o700)
                _warn_once(f"mode:{self.directory}",
                           f"studio cache folder {self.directory} was readable or writable by others "
                           f"(mode {stat.S_IMODE(st.st_mode):o}); made it private (700)")
            else:
                _warn_once(f"mode:{self.directory}",
                           f"studio cache folder {self.directory} belongs to another user and is open to others; "
                           "entries are still verified, but set STUDIO_CACHE_DIR to a folder of your own")

    def _prepare_subdir(self, key: str) -> Path:
        """The entry's sub-folder as a real directory of mode 0700 (a link or file in its place is removed)."""
        sub = self.directory / key[:2]
        try:
            st = os.lstat(sub)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(sub)  # a link or a file: unlinking removes it, never its target
            st = None
        if st is None:
            try:
                os.mkdir(sub, 0o700)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(sub).st_mode):
                    raise
        return sub

    # ---- entries -------------------------------------------------------------------------------
    def _tag(self, secret: bytes, key: str, blob) -> bytes:
        mac = hmac.new(secret, MAGIC + key.encode() + b"\0", hashlib.sha256)
        mac.update(blob)
        return mac.digest()

    def get(self, key: str) -> bytes | None:
        """The stored bytes for ``key``, or None (absent, not a regular file, too large, or a tag that
        does not verify). Touches the entry (LRU)."""
        got = self._get(key)
        return None if got is None else got[0]

    def _get(self, key: str):
        """(blob, file signature after the touch) or None."""
        secret = self._read_secret()
        if secret is None:
            return None
        got = _read_regular(self._path(key), self.max_entry_bytes + HEADER_BYTES, touch=True)
        if got is None:
            return None
        raw, signature = got
        view = memoryview(raw)
        if len(raw) < HEADER_BYTES or raw[: len(MAGIC)] != MAGIC:
            return None
        blob = view[HEADER_BYTES:]
        if not hmac.compare_digest(bytes(view[len(MAGIC):HEADER_BYTES]), self._tag(secret, key, blob)):
            return None
        return bytes(blob), signature

    def get_decoded(self, key: str, decode):
        """The entry for ``key`` decoded by ``decode(bytes)``, or None when absent or not verified.

        Repeated calls in one process reuse the decoded value while the file
        is unchanged, so a warm hit costs an ``lstat``; ``decode`` errors
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
        got = self._get(key)
        if got is None:
            return None
        value = decode(got[0])
        _remember(path, value, got[1])
        return value

    def put_decoded(self, key: str, value, encode) -> bool:
        """Store ``encode(value)`` and remember ``value`` for :meth:`get_decoded`."""
        stored = self.put(key, encode(value))
        if stored:
            _remember(self._path(key), value)
        return stored

    def discard(self, key: str) -> None:
        """Remove an entry (e.g. one found corrupt), and its array file if it has one."""
        _RECENT.pop(str(self._path(key)), None)
        _unlink_entry(self._path(key))
        _unlink_entry(self._array_path(key))

    def put(self, key: str, blob: bytes) -> bool:
        """Store ``blob`` atomically with its tag; False (with one warning) if the disk refuses."""
        if self.disabled_reason:
            return False
        def write(fh):
            fh.write(MAGIC)
            fh.write(self._tag(self._make_secret(), key, blob))
            fh.write(blob)

        return self._write_private(key, self._path(key), SUFFIX, write) is not None

    # ---- memory-mapped arrays -------------------------------------------------------------------
    def _array_path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{ARRAY_SUFFIX}"

    def put_array(self, key: str, array) -> str | None:
        """Store ``array`` as a plain ``.npy`` file (numpy's format, no pickle) for :meth:`get_array`.

        The file carries no tag of its own: the caller keeps the returned
        sha256 inside a tagged entry (:meth:`put`), and :meth:`get_array`
        maps the file only when its bytes hash to it.

        Returns
        -------
        str or None
            The file's sha256 (hex), or None when the disk refuses (one warning, as :meth:`put`).
        """
        import numpy as np

        if self.disabled_reason:
            return None
        return self._write_private(
            key, self._array_path(key), ARRAY_SUFFIX,
            lambda fh: np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False), digest=True)

    def _write_private(self, key: str, path: Path, suffix: str, write, digest: bool = False):
        """Write ``path`` atomically: ``write(file)`` into a private (0600) temporary file beside it, fsync, rename.

        Returns the written file's sha256 (hex) when ``digest``, else "" (the file is not read back); None when
        the disk refuses (the cache is then disabled, with one warning). Evicts afterwards to keep the size bound.
        """
        tmp = None
        try:
            self._prepare_directory()
            self._prepare_subdir(key)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)  # mode 0600
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            sha256 = _file_sha256(tmp) if digest else ""
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            self._disable(exc)
            return None
        finally:
            _discard(tmp)
        self.evict()
        return sha256

    def get_array(self, key: str, sha256: str, dtype=None):
        """The ``.npy`` entry of ``key`` memory-mapped read-only, or None (absent, too large, another hash).

        Equivalent to ``np.load(path, mmap_mode="r")``, but the mapping is made
        from the same descriptor whose bytes were hashed (opened with
        ``O_NOFOLLOW``, a regular file checked by ``fstat``), so a file swapped
        between the check and the mapping is never served. Object dtypes are
        refused; ``dtype`` (optional) must match exactly.
        """
        import numpy as np

        path = self._array_path(key)
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_entry_bytes:
                    return None
                h = hashlib.sha256()
                for chunk in iter(lambda: fh.read(1 << 24), b""):
                    h.update(chunk)
                if not hmac.compare_digest(h.hexdigest(), str(sha256)):
                    return None
                fh.seek(0)
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, got = read_header(fh)
                if got.hasobject or (dtype is not None and got != np.dtype(dtype)):
                    return None
                array = np.memmap(fh, dtype=got, mode="r", shape=shape, order="F" if fortran else "C",
                                  offset=fh.tell())
        except (OSError, ValueError):
            return None
        _touch(path)
        return array

    def _disable(self, exc: OSError) -> None:
        """Stop writing after the disk refused (one warning per directory per process)."""
        self.disabled_reason = f"{exc.strerror or exc} ({self.directory})"
        if str(self.directory) not in _WARNED:
            _WARNED.add(str(self.directory))
            warnings.warn(
                f"studio cache disabled: cannot write to {self.directory}: {exc.strerror or exc}; "
                "results are computed but not kept (set STUDIO_CACHE_DIR to a writable folder)",
                RuntimeWarning, stacklevel=3,
            )

    def entries(self) -> list:
        """(path, size, last-used time) of every entry, oldest first.

        Only regular files in real sub-folders count: links (to files or to
        folders) are neither listed nor followed.
        """
        out = []
        try:
            top = os.scandir(self.directory)
        except OSError:
            return out
        with top:
            subs = [e.path for e in top if e.is_dir(follow_symlinks=False)]
        for sub in subs:
            try:
                listing = os.scandir(sub)
            except OSError:
                continue
            with listing:
                for entry in listing:
                    if not entry.name.endswith((SUFFIX, ARRAY_SUFFIX)) or entry.name.startswith(".tmp-"):
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        out.append((Path(entry.path), st.st_size, st.st_mtime))
        out.sort(key=lambda e: e[2])
        return out

    def size(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def evict(self) -> None:
        """Delete least-recently-used entries until the size bound holds (never through a link)."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        for path, size, _ in entries:
            if total <= self.max_bytes:
                break
            if _unlink_entry(path):
                total -= size

    def clear(self) -> None:
        for path, _, _ in self.entries():
            _unlink_entry(path)


def _euid():
    """This process's effective user id (0 where the platform has none: Windows reports every st_uid as 0)."""
    return os.geteuid() if hasattr(os, "geteuid") else 0


def _warn_once(tag: str, message: str) -> None:
    if tag not in _WARNED:
        _WARNED.add(tag)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _read_regular(path: Path, max_size: int, touch: bool = False, private: bool = False):
    """(bytes, signature) of a regular file of at most ``max_size`` bytes, or None.

    Opened with ``O_NOFOLLOW | O_NONBLOCK`` (a link fails, a FIFO does not
    block), checked with ``fstat`` (regular file, size, and with ``private``
    owned by this user with no group/other permissions) before reading.
    ``touch`` sets its times to now through the open descriptor (LRU).
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_size:
            return None
        if private and (st.st_uid != _euid() or (os.name == "posix" and st.st_mode & 0o077)):
            return None
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                return None  # shrank while read: treat as absent
            chunks.append(chunk)
            left -= len(chunk)
        if os.read(fd, 1):
            return None  # grew while read
        if touch and os.utime in os.supports_fd:
            now = time.time_ns()
            try:
                os.utime(fd, ns=(now, now))
                st = os.fstat(fd)
            except OSError:
                pass
        return b"".join(chunks), (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        return None
    finally:
        os.close(fd)


def _discard(tmp) -> None:
    """Remove a temporary file left by an interrupted write, if any (``None`` means nothing to remove)."""
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def _unlink_entry(path: Path) -> bool:
    """Unlink ``path`` by name inside its folder opened with ``O_NOFOLLOW``: never deletes through a link."""
    try:
        dir_fd = os.open(path.parent, _DIR_FLAGS)
    except OSError:
        return False
    try:
        os.unlink(path.name, dir_fd=dir_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(dir_fd)


def _signature(path: Path):
    """(inode, size, mtime in ns) of ``path`` itself (``lstat``), or None when it is absent."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _touch(path: Path):
    """Mark ``path`` used now (LRU order); its new signature, or None if it could not."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now), follow_symlinks=False)
    except OSError:
        return None
    return _signature(path)


def _remember(path: Path, value, signature=None) -> None:
    signature = signature or _signature(path)
    if signature is None:
        return
    if signature[1] > _RECENT_BYTES // 4:
        return
    _RECENT[str(path)] = (signature, value)
    _RECENT.move_to_end(str(path))
    while len(_RECENT) > _RECENT_ITEMS or sum(sig[1] for sig, _ in _RECENT.values()) > _RECENT_BYTES:
        _RECENT.popitem(last=False)
