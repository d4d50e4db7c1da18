"""Multipart uploads streamed to a private folder, each part bounded while it arrives.

Starlette's own form parser spools every file part to a temporary file
before the endpoint runs, so a limit checked in the endpoint comes after the
bytes were stored. Here the body is fed chunk by chunk to python-multipart's
streaming parser (the one Starlette uses) and each file part is written to
the caller's private folder only up to its limit; one byte more ends the
upload with 413, the partial file is deleted, and the rest of the body is
read and dropped (up to a bound) so the client receives the answer.
"""

from __future__ import annotations

import asyncio

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

FIELD_BYTES = 4096
"""Largest plain (non-file) form field in bytes, e.g. a label column's name."""
FIELD_CHARS = 1024
"""Largest plain form field in characters (what the OpenAPI document says; at most FIELD_BYTES in UTF-8)."""


class UploadError(Exception):
    """An upload refused with an HTTP status and one sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Part:
    """One form field: a file written to ``path`` or a small text ``value``."""

    name: str
    filename: str | None = None
    path: Path | None = None
    size: int = 0
    value: bytearray = field(default_factory=bytearray)
    _fd: int | None = None


@dataclass
class Spec:
    """What a form may hold: file fields with their byte limits, plain fields, the required ones."""

    files: dict
    fields: tuple = ()
    required: tuple = ()
    limit_advice: dict = field(default_factory=dict)


class _Collector:
    def __init__(self, folder: Path, spec: Spec, total: int):
        self.folder, self.spec, self.total = folder, spec, total
        self.parts: dict[str, Part] = {}
        self.current: Part | None = None
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.used = 0

    # python-multipart callbacks
    def on_part_begin(self):
        self.current, self.disposition = None, b""

    def on_header_field(self, data, start, end):
        self.header_name += data[start:end]

    def on_header_value(self, data, start, end):
        self.header_value += data[start:end]

    def on_header_end(self):
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self):
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise UploadError(400, "a form part has no field name; send each file as a named form field")
        if name in self.parts:
            raise UploadError(400, f"the form field {name[:40]!r} is given twice; send it once")
        if name not in self.spec.files and name not in self.spec.fields:
            known = ", ".join(list(self.spec.files) + list(self.spec.fields))
            raise UploadError(400, f"unknown form field {name[:40]!r}; this endpoint takes {known}")
        part = Part(name)
        if name in self.spec.files:
            raw = options.get(b"filename")
            part.filename = os.path.basename(raw.decode("utf-8", "replace").replace("\\", "/")) if raw else ""
            part.path = self.folder / f".upload-{secrets.token_hex(8)}"
            part._fd = os.open(part.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self.parts[name] = self.current = part

    def on_part_data(self, data, start, end):
        part = self.current
        if part is None:
            return
        n = end - start
        part.size += n
        self.used += n
        if part.path is None:
            if part.size > FIELD_BYTES:
                raise UploadError(422, f"the form field {part.name!r} is over {FIELD_BYTES} bytes; it holds a name")
            part.value += data[start:end]
            return
        if part.size > self.spec.files[part.name]:
            raise UploadError(413, _too_large(part.name, self.spec.files[part.name], self.spec))
        if self.used > self.total:
            raise UploadError(413, _too_large("upload", self.total, self.spec))
        view = memoryview(data)[start:end]
        while view:
            view = view[os.write(part._fd, view):]

    def on_part_end(self):
        part = self.current
        if part is not None and part._fd is not None:
            os.close(part._fd)
            part._fd = None
        self.current = None

    def discard(self):
        for part in self.parts.values():
            if part._fd is not None:
                os.close(part._fd)
                part._fd = None
            if part.path is not None:
                part.path.unlink(missing_ok=True)


def _too_large(what: str, limit: int, spec: Spec) -> str:
    """The 413 sentence: the configured limit of the part (or, for the whole body, of each file it may hold)."""
    advice = spec.limit_advice.get(what) or spec.limit_advice.get("upload", "")
    if what == "upload":  # the body's bound is the sum of its parts' limits: name each configured one instead
        each = ", ".join(f"{name} {_size(n)}" for name, n in spec.files.items())
        text = f"the upload is over this endpoint's limits ({each})"
    else:
        text = f"the {what} is over its upload limit of {_size(limit)}"
    return text + (f"; {advice}" if advice else "")


def _size(n: int) -> str:
    """Bytes as the limit was configured, with a readable unit beside it: '2147483648 bytes (2 GiB)'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n} bytes ({n / scale:.3g} {unit})"
    return f"{n} bytes"


async def read_form(request, folder: Path, spec: Spec, drain_bytes: int) -> dict[str, Part]:
    """Stream ``request``'s multipart body into ``folder``: {field name: Part}.

    Parameters
    ----------
    request : starlette.requests.Request
    folder : Path
        The caller's private folder; file parts are written there (mode 0600)
        and the caller renames or deletes them.
    spec : Spec
        Allowed fields and each file field's byte limit.
    drain_bytes : int
        After a refusal, at most this many more bytes are read (and dropped)
        so that the client, still sending, gets the answer.

    Raises
    ------
    UploadError
        415 not multipart, 400 malformed or unknown fields, 413 a part or the
        whole body over its limit (declared by Content-Length or counted).
    """
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadError(415, "send the upload as multipart/form-data (curl -F file=@model.skops)")
    total = sum(spec.files.values()) + FIELD_BYTES * (len(spec.fields) + 8)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > total:
        await _drain(request.stream(), drain_bytes)
        raise UploadError(413, _too_large("upload", total, spec))
    collector = _Collector(folder, spec, total)
    callbacks = {name: getattr(collector, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished")}
    parser = MultipartParser(options[b"boundary"], callbacks, max_header_count=16, max_header_size=8192)
    stream = request.stream()
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        collector.discard()
        await _drain(stream, drain_bytes)
        raise
    except Exception as exc:  # noqa: BLE001 -- the parser's own errors: a malformed body
        collector.discard()
        await _drain(stream, drain_bytes)
        raise UploadError(400, f"the multipart body is malformed ({type(exc).__name__}); send it as curl -F does") \
            from None
    if collector.current is not None or any(p._fd is not None for p in collector.parts.values()):
        collector.discard()
        raise UploadError(400, "the multipart body ended inside a part; send the whole file")
    missing = [name for name in spec.required if name not in collector.parts]
    if missing:
        collector.discard()
        raise UploadError(400, f"the form field {missing[0]!r} is missing; send it as a file field")
    return collector.parts


DRAIN_SECONDS = 2.0
"""Longest wait for the rest of a refused body: a client that declares more than it sends gets its answer."""


async def _drain(stream, limit: int) -> None:
    """Read and drop up to ``limit`` bytes of what is left of the body, for at most :data:`DRAIN_SECONDS`."""
    seen = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in stream:
                seen += len(chunk)
                if seen > limit:
                    return
    except Exception:  # noqa: BLE001 -- timed out (TimeoutError), or the client gave up
        return
