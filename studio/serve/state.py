"""What the server holds: limits, one private space per token, uploads on disk, loaded models.

Each token has its own folder (mode 0700) under the server's private
temporary folder, its own uploads and its own jobs; another token cannot
see or name them. Everything is deleted when the server stops.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import StudioError, last_line


def _env_limit(name: str, default: int) -> int:
    from studio.data.dataset import limit

    return limit(name, default)


def _model_bytes() -> int:
    from studio.models.loaders import MAX_MODEL_BYTES

    return _env_limit("STUDIO_MAX_MODEL_BYTES", MAX_MODEL_BYTES)


def _data_bytes() -> int:
    from studio.data import MAX_DATA_BYTES

    return _env_limit("STUDIO_MAX_DATA_BYTES", MAX_DATA_BYTES)


def _card_bytes() -> int:
    from studio.models.card import MAX_CARD_BYTES

    return MAX_CARD_BYTES


@dataclass(frozen=True)
class Limits:
    """The server's bounds. Defaults are the studio's loader limits (SECURITY.md), read from the environment.

    Attributes
    ----------
    model_bytes : int
        A model upload with its external data (``STUDIO_MAX_MODEL_BYTES``, 2 GiB).
    data_bytes : int
        A dataset upload (``STUDIO_MAX_DATA_BYTES``, 2 GiB).
    card_bytes : int
        A model card (1,000,000 bytes, as the loader).
    uploads : int
        Models and datasets one token may hold at once.
    workers : int
        Jobs running at once (threads; the work runs in the models' sandboxed workers).
    queued : int
        Jobs queued or running at once, server-wide; more are refused with 429.
    jobs_kept : int
        Finished jobs (and their results) kept per token; the oldest are forgotten first.
    loaded_models : int
        Models kept loaded (each holds a warm sandbox worker); others are reloaded from disk when used.
    job_seconds : float
        Time limit of one explanation (``studio.explain(timeout=...)``).
    drain_bytes : int
        After refusing an upload, how much more of its body is read (and dropped) so the client gets the answer.
    """

    model_bytes: int = field(default_factory=_model_bytes)
    data_bytes: int = field(default_factory=_data_bytes)
    card_bytes: int = field(default_factory=_card_bytes)
    uploads: int = 32
    workers: int = 2
    queued: int = 16
    jobs_kept: int = 100
    loaded_models: int = 4
    job_seconds: float = 3600.0
    drain_bytes: int = 64 * 2**20


@dataclass
class Upload:
    """A stored model or dataset: its file(s) in the token's folder and what loading it said."""

    id: str
    name: str
    path: Path
    info: dict
    card: Path | None = None
    extra: dict = field(default_factory=dict)  # external data: file name the graph gives -> stored path
    label: str | None = None

    def delete(self) -> None:
        for p in (self.path, self.card, *self.extra.values()):
            if p is not None:
                Path(p).unlink(missing_ok=True)


class Space:
    """One token's uploads and jobs, in its own private folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(mode=0o700)
        self.models: dict[str, Upload] = {}
        self.datasets: dict[str, Upload] = {}
        self.jobs: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def count(self) -> int:
        return len(self.models) + len(self.datasets)


class State:
    """The server's state: spaces by token digest, the loaded-model cache, the job runner."""

    def __init__(self, tokens, limits: Limits, root: Path | None = None):
        from studio.serve.jobs import JobRunner

        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix="studio-serve-", dir=root))
        os.chmod(self.root, 0o700)
        self.spaces = {}
        for token in tokens:
            digest = token_digest(token)
            if digest not in self.spaces:
                self.spaces[digest] = Space(self.root / digest[:16])
        self.runner = JobRunner(limits.workers, limits.queued)
        self._models: OrderedDict = OrderedDict()
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def space(self, token: str) -> Space | None:
        return self.spaces.get(token_digest(token))

    # ---- loaded models and datasets ---------------------------------------------------------------
    def model(self, upload: Upload):
        """The loaded model of ``upload`` (sandboxed; loaded again from disk if it was dropped)."""
        with self._lock:
            model = self._models.get(upload.id)
            if model is not None:
                self._models.move_to_end(upload.id)
                return model
        model = load_model_upload(upload)
        self.keep_model(upload.id, model)
        return model

    def keep_model(self, key: str, model) -> None:
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.limits.loaded_models:
                self._models.popitem(last=False)  # its worker ends when the last job holding it is done

    def dataset(self, upload: Upload, model=None):
        """The dataset of ``upload``, read with ``model``'s feature names (how the label column is found)."""
        import studio

        names = tuple(model.feature_names) if model is not None and model.feature_names else None
        key = (upload.id, names)
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        data = studio.load_dataset(upload.path.read_bytes(), name=upload.name, label=upload.label,
                                   feature_names=list(names) if names else None)
        with self._lock:
            self._data[key] = data
            while len(self._data) > 8:
                self._data.popitem(last=False)
        return data

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._models.pop(upload_id, None)
            for key in [k for k in self._data if k[0] == upload_id]:
                del self._data[key]

    def close(self) -> None:
        """Stop the jobs, drop the models (their workers end), delete every upload."""
        self.runner.shutdown()
        with self._lock:
            models = list(self._models.values())
            self._models.clear()
            self._data.clear()
        for model in models:
            try:
                model.close()
            except Exception:  # noqa: BLE001, S110 -- a worker that is already gone
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def pickle_allowed() -> bool:
    """Pickle uploads load only when the server sets ``STUDIO_ALLOW_PICKLE=1`` (as in the app)."""
    return os.environ.get("STUDIO_ALLOW_PICKLE") == "1"


def load_model_upload(upload: Upload):
    """``studio.load_model`` on a stored upload: in the sandbox (its default), the card and external data given."""
    import studio

    extra = {name: Path(p).read_bytes() for name, p in upload.extra.items()} or None
    card = upload.card.read_bytes() if upload.card is not None else None
    try:
        return studio.load_model(upload.path.read_bytes(), card=card, name=upload.name,
                                 trust_pickle=pickle_allowed(), extra_files=extra)
    except StudioError:
        raise
    except MemoryError:
        raise StudioError(f"{upload.name!r} needs more memory than is free to load") from None
    except Exception as exc:  # noqa: BLE001 -- the file made the loader (or the model, in its worker) fail: the file is the problem
        raise StudioError(f"{upload.name!r} could not be loaded: {type(exc).__name__}: {last_line(exc)}") from None
