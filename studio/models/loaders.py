"""Safe loaders for every model format in DESIGN.md.

No code from a file runs unless the caller trusts it: pickle/joblib are
refused without ``trust_pickle=True``; skops loads with untrusted types
refused except the reviewed table of what scikit-learn itself stores
(:mod:`studio.models.skops_types`; tree and neighbour storage admitted after
a bounds check); torch
state dicts load with ``weights_only=True``; TorchScript, torch.export and
ONNX load as themselves.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from studio.errors import StudioError, last_line
from studio.models.adapter import (BoosterModel, CatBoostModel, LightGBMModel, Model, OnnxModel, SklearnModel,
                                   TorchModel, XGBoostModel, sha256_bytes)
from studio.models.card import ModelCard, load_card

# Boosted-tree libraries' own model files: suffix -> format (see "boosted trees" below).
TREE_SUFFIXES = {".json": "xgboost", ".ubj": "xgboost", ".txt": "lightgbm", ".lgb": "lightgbm", ".cbm": "catboost"}
MODEL_SUFFIXES = (".skops", ".pt", ".pth", ".pt2", ".safetensors", ".onnx", ".pkl", ".pickle", ".joblib",
                  *TREE_SUFFIXES)
MAX_MODEL_BYTES = 2 * 2**30

PICKLE_ADVICE = (
    "Pickle files can run arbitrary code when loaded. Convert the model instead: "
    "scikit-learn -> skops.io.dump(model, 'model.skops'); torch -> torch.jit.script(model).save('model.pt') "
    "or torch.save(model.state_dict(), 'model.pt') with a card naming the architecture. "
    "If you wrote this file yourself and trust it, pass trust_pickle=True (CLI --trust-pickle; "
    "in the app the server must set STUDIO_ALLOW_PICKLE=1)."
)

PROGRAM_FORMATS = ("torchscript", "torch_export", "onnx")
"""Formats whose files are programs: run only inside an isolating sandbox, or when trusted."""


def load_model(source, card=None, trust_pickle: bool = False, name: str | None = None, *,
               sandbox: str | None = None, trust: bool = False, extra_files: dict | None = None) -> Model:
    """Load a model file into the studio's adapter.

    Untrusted models are loaded and run in a sandboxed worker process
    (:mod:`studio.sandbox`): the returned Model forwards every prediction and
    explanation to it, and no code from the file runs in this process.

    Parameters
    ----------
    source : str, Path or bytes
        A model file path, or its bytes (then ``name`` gives the file name
        whose suffix decides the format). A ``.zip`` holding one ``.onnx``
        file and its external data files (and optionally its card,
        ``*.card.json``) is loaded as that ONNX model.
    card : str, Path, dict, ModelCard or None
        The model card; by default ``<model>.card.json`` beside the file.
    trust_pickle : bool
        Load ``.pkl``/``.joblib`` (runs code from the file). Off by default.
    name : str, optional
        File name when ``source`` is bytes.
    sandbox : {"auto", "bubblewrap", "unshare", "none", "off"}, optional
        Where the model runs; default ``STUDIO_SANDBOX`` or ``"auto"`` (the
        strongest launcher this machine offers). ``"off"`` loads the model into
        this process: only for files you trust.
    trust : bool
        Allow program formats (TorchScript, ``.pt2``, ONNX) where no isolating
        sandbox exists (launcher ``"none"``); also ``STUDIO_TRUST_PROGRAMS=1``.
    extra_files : dict of str to bytes or path, optional
        Files the model refers to by name: an ONNX model's external data,
        by the file name the graph gives (``torch.onnx.export`` writes
        ``model.onnx`` and ``model.onnx.data``), e.g.
        ``{"model.onnx.data": data_bytes}``. By default, for an ONNX model
        given by path, the files the graph names are read from beside it.
        The graph's locations must be plain file names among these files;
        nothing else is ever read.

    Returns
    -------
    Model

    Raises
    ------
    StudioError
        For any file that cannot be loaded safely, with what to do instead;
        for a worker that crashed, hung or ran out of memory while loading.
    """
    from studio.sandbox import launcher

    data, name, path = _read_source(source, name)
    extra_files = _read_extra_files(extra_files, name)
    if Path(name).suffix.lower() == ".zip":
        data, name, zipped, zip_card = _unpack_onnx_zip(data, name)
        extra_files = {**zipped, **(extra_files or {})}
        if card is None:
            card = zip_card
    if card is None and path is not None:
        beside = path.with_name(path.name.split(".")[0] + ".card.json")
        alt = path.with_suffix(".card.json")
        for candidate in (alt, beside):
            if candidate.is_file():
                card = candidate
                break
    card = load_card(card)
    fmt = detect_format(data, name)
    if extra_files and fmt != "onnx":
        raise StudioError(f"extra files are for ONNX models' external data only; {name!r} is a {fmt} file, load it alone")
    if fmt == "onnx" and path is not None and not extra_files:
        extra_files = onnx_files_beside(data, name, path.parent)
    kind = launcher.choose(sandbox)
    if kind == "off":
        return load_in_process(data, name, card, trust_pickle, extra_files=extra_files)
    if fmt == "pickle" and not trust_pickle:
        raise StudioError(f"{name!r} is a pickle file and was not loaded. {PICKLE_ADVICE}")
    if kind not in launcher.ISOLATING and fmt in PROGRAM_FORMATS and not (trust or launcher.trust_programs()):
        raise StudioError(
            f"{name!r} is a {fmt} program and this machine has no sandbox to run it in "
            f"({launcher.why_not('bubblewrap')}); install bubblewrap, or, if you trust the file, pass trust=True "
            "(CLI --trust; in the app the server must set STUDIO_TRUST_PROGRAMS=1)"
        )
    if data[:2] == b"PK" and fmt != "torch_export":  # an early, friendly refusal; the worker checks again
        _check_zip_bounds(data, name)
    from studio.sandbox.client import open_model

    return open_model(data, name, card, fmt, trust_pickle, kind, extra_files=extra_files)


def load_in_process(data: bytes, name: str, card=None, trust_pickle: bool = False, extra_files: dict | None = None) -> Model:
    """Load model bytes in this process (what a sandbox worker runs; trusted files only elsewhere).

    Parameters
    ----------
    data : bytes
        The model file's bytes.
    name : str
        Its file name (the suffix decides the format).
    card : ModelCard, dict or None
    trust_pickle : bool
    extra_files : dict of str to bytes, optional
        Files the model refers to by name (an ONNX model's external data);
        nothing is read from the disk.

    Returns
    -------
    Model
    """
    card = load_card(card)
    fmt = detect_format(data, name)
    if extra_files and fmt != "onnx":
        raise StudioError(f"extra files are for ONNX models' external data only; {name!r} is a {fmt} file, load it alone")
    if data[:2] == b"PK" and fmt != "torch_export":  # torch and skops archives: bounds before any reading
        _check_zip_bounds(data, name)
    fingerprint = sha256_bytes(data)
    loader = {
        "skops": _load_skops,
        "torchscript": _load_torchscript,
        "torch_export": _load_torch_export,
        "state_dict": _load_state_dict,
        "safetensors": _load_safetensors,
        "onnx": _load_onnx,
        "pickle": _load_pickle,
        "xgboost": _load_xgboost,
        "lightgbm": _load_lightgbm,
        "catboost": _load_catboost,
    }[fmt]
    try:
        if fmt == "pickle":
            model = loader(data, name, card, fingerprint, trust_pickle)
        elif fmt == "onnx":
            model = loader(data, name, card, fingerprint, extra_files)
        else:
            model = loader(data, name, card, fingerprint)
        _check_card_against_model(model)
    except MemoryError:
        raise StudioError(
            f"{name!r} needs more memory than this machine has free to load; use a smaller model or a bigger machine"
        ) from None
    except RecursionError:
        raise StudioError(f"{name!r} is nested too deeply to load; the file is damaged or crafted") from None
    return model


def _check_zip_bounds(data, name):
    from studio.data.images import check_archive

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        return  # not a readable zip: the format's own loader says so in its words
    with zf:
        check_archive(zf, name)


def _read_source(source, name):
    if isinstance(source, (bytes, bytearray)):
        if not name:
            raise StudioError("a model given as bytes needs its file name (for the format)")
        _check_model_size(len(source), str(name))
        return bytes(source), str(name), None
    path = Path(source)
    if path.is_dir():  # a folder holding one model file (e.g. model.onnx beside model.onnx.data and its card)
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES
                       and not p.name.lower().endswith(".card.json"))
        if len(found) != 1:
            listed = ", ".join(p.name for p in found[:5]) or "none"
            raise StudioError(f"{str(path)!r} is a folder holding {len(found)} model files ({listed}); point at the "
                              "model file itself")
        path = found[0]
    if not path.is_file():
        raise StudioError(f"model file {str(path)!r} was not found; check the path")
    _check_model_size(path.stat().st_size, path.name)
    return path.read_bytes(), name or path.name, path


def _check_model_size(size: int, name: str) -> None:
    from studio.data.dataset import limit

    max_bytes = limit("STUDIO_MAX_MODEL_BYTES", MAX_MODEL_BYTES)
    if size > max_bytes:
        raise StudioError(
            f"model file {name!r} is {size} bytes, over the limit of {max_bytes} bytes; "
            "raise it with the environment variable STUDIO_MAX_MODEL_BYTES"
        )


def detect_format(data: bytes, name: str) -> str:
    """The model format from the file name and its first bytes."""
    lower = name.lower()
    suffix = Path(lower).suffix
    if not data:
        raise StudioError(f"model file {name!r} is empty")
    if suffix not in MODEL_SUFFIXES:
        raise StudioError(
            f"model file {name!r} has an unknown type; accepted: {', '.join(MODEL_SUFFIXES)} "
            "(.json/.ubj: XGBoost's save_model; .txt/.lgb: LightGBM's save_model; .cbm: CatBoost's save_model)"
        )
    if suffix in (".pkl", ".pickle", ".joblib"):
        return "pickle"
    if suffix == ".skops":
        return "skops"
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".safetensors":
        return "safetensors"
    if suffix == ".pt2":
        return "torch_export"
    if suffix in TREE_SUFFIXES:
        return _detect_tree_format(data, name, suffix)
    # .pt / .pth: TorchScript archive, torch.save zip (state dict), or legacy pickle
    if not data.startswith(b"PK"):
        if data[:1] == b"\x80":
            raise StudioError(
                f"{name!r} is a legacy (non-zip) torch pickle, which can run code when loaded. "
                "Re-save it with torch.save(model.state_dict(), path) on torch >= 1.6, or as TorchScript"
            )
        raise StudioError(f"{name!r} is not a torch file (it is not a zip archive); was it saved with torch.save or torch.jit.save?")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise StudioError(f"{name!r} is a damaged torch archive; save the model again") from None
    if any(n.endswith("constants.pkl") for n in names) or any("/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/models/model.json") or n.endswith("serialized_exported_program.json") for n in names):
        return "torch_export"
    return "state_dict"


# ---- scikit-learn via skops -------------------------------------------------------------


def _load_skops(data, name, card, fingerprint):
    import skops.io as sio

    from studio.models.skops_types import refused

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise StudioError(f"{name!r} is not a valid skops file ({type(exc).__name__}); save it with skops.io.dump") from None
    bad = refused(untrusted)
    if bad:
        raise StudioError(
            f"{name!r} contains types the studio does not trust: {', '.join(bad)}. "
            "The studio admits scikit-learn's estimators and the internals they store (listed in "
            "studio/models/skops_types.py), not custom functions or classes; replace those with scikit-learn "
            "components, or load a pickle of it you trust with trust_pickle=True"
        )
    try:
        estimator = sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise StudioError(f"{name!r} could not be loaded by skops: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not hasattr(estimator, "predict"):
        raise StudioError(f"{name!r} holds a {type(estimator).__name__}, not a fitted estimator with predict()")
    check_skops_storage(estimator, name)
    return SklearnModel(estimator, "skops", fingerprint, card, name)


def _iter_with_width(obj, width=None, seen=None):
    """``(object, width)`` for every object reachable from ``obj`` (pipelines, ensembles, lists, dicts).

    ``width`` is the ``n_features_in_`` of the innermost fitted estimator
    holding the object: the number of columns that estimator (and so its
    trees or neighbour storage) sees, e.g. the one-hot-encoded width for a
    forest after a ``ColumnTransformer``. None where no estimator says.
    """
    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _iter_with_width(item, width, seen)
        return
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        for item in obj.ravel():
            yield from _iter_with_width(item, width, seen)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            yield from _iter_with_width(item, width, seen)
        return
    own = getattr(obj, "__dict__", {}).get("n_features_in_") if hasattr(obj, "__dict__") else None
    if isinstance(own, (int, np.integer)):
        width = int(own)
    yield obj, width
    if not hasattr(obj, "__dict__"):
        return  # e.g. the Cython Tree: yielded, nothing inside to walk
    for value in vars(obj).values():
        yield from _iter_with_width(value, width, seen)


def _iter_estimators(obj, seen=None):
    """Every object reachable from ``obj`` (pipelines, ensembles, lists)."""
    for item, _ in _iter_with_width(obj, None, seen):
        yield item


def check_tree_bounds(estimator, name: str = "model") -> None:
    """Refuse a model whose tree storage indexes out of range.

    Checks every child, feature and value index of every scikit-learn
    ``Tree`` and HistGradientBoosting ``TreePredictor`` in ``estimator``;
    feature indices against the width the tree's own estimator sees (its
    ``n_features_in_``), so a forest after a one-hot encoder is checked
    against the encoded width.
    """
    for obj, width in _iter_with_width(estimator):
        _check_tree(obj, width, name)


def check_skops_storage(estimator, name: str = "model") -> None:
    """Refuse a loaded skops model whose Cython storage could index out of range.

    Trees (:func:`check_tree_bounds`), k-d and ball trees (index and node
    arrays against the stored data and the width their estimator sees),
    Minkowski weights (against that width), sparse matrices (scipy's full
    index check) and ``functools.partial`` (only the functions in
    :data:`studio.models.skops_types.PARTIAL_FUNCTIONS`).
    """
    import functools

    import scipy.sparse

    from studio.models.skops_types import PARTIAL_FUNCTIONS

    for obj, width in _iter_with_width(estimator):
        _check_tree(obj, width, name)
        kind = type(obj).__name__
        if kind in ("KDTree", "BallTree") and type(obj).__module__.startswith("sklearn.neighbors"):
            _check_neighbour_tree(obj, width, name)
        elif isinstance(obj, functools.partial):
            func = getattr(obj.func, "__module__", "") + "." + getattr(obj.func, "__qualname__", "")
            if func not in PARTIAL_FUNCTIONS:
                _refuse_storage(name, f"a stored partial calls {func}")
        elif scipy.sparse.issparse(obj):
            try:
                obj.check_format(full_check=True)
            except (ValueError, TypeError, AttributeError) as exc:
                _refuse_storage(name, f"a sparse matrix with bad indices ({last_line(exc)})")
        elif kind == "MinkowskiDistance64":
            _check_minkowski(obj, width, name)


def _refuse_storage(name, what):
    raise StudioError(f"{name!r} has malformed model storage ({what}); the file is damaged or crafted and was refused")


def _check_minkowski(metric, width, name):
    state = metric.__getstate__()  # (p, weights, matrix)
    weights = np.asarray(state[1])
    if weights.size and (weights.ndim != 1 or (width is not None and weights.size != width)):
        _refuse_storage(name, "Minkowski weights of the wrong length")


def _check_neighbour_tree(tree, width, name):
    """k-d / ball tree arrays: indices in range, node ranges inside the data, children inside the node array."""
    data, idx, nodes, bounds = tree.get_arrays()
    state = tree.__getstate__()  # (data, idx, nodes, bounds, leaf_size, n_levels, n_nodes, ..., metric, weights)
    n_levels, n_nodes = int(state[5]), int(state[6])
    n = data.shape[0] if data.ndim == 2 else -1
    if data.ndim != 2 or (width is not None and data.shape[1] != width):
        _refuse_storage(name, "neighbour data of the wrong width")
    if idx.ndim != 1 or len(idx) != n or (n and (idx.min() < 0 or idx.max() >= n)):
        _refuse_storage(name, "a neighbour index out of range")
    if len(nodes) != n_nodes or n_nodes != 2**n_levels - 1 or bounds.ndim != 3 or bounds.shape[1:] != (n_nodes, data.shape[1]):
        _refuse_storage(name, "neighbour node arrays disagree with the node count")
    start, end = nodes["idx_start"], nodes["idx_end"]
    if n_nodes and (start.min() < 0 or end.max() > n or np.any(start > end)):
        _refuse_storage(name, "a neighbour node range outside the data")
    internal = np.nonzero(nodes["is_leaf"] == 0)[0]
    if internal.size and 2 * internal.max() + 2 >= n_nodes:
        _refuse_storage(name, "a neighbour node whose children are missing")
    weights = state[-1]
    if weights is not None and np.asarray(weights).size not in (0, n):
        _refuse_storage(name, "neighbour sample weights of the wrong length")


def _check_tree(obj, n_features, name):
    from sklearn.tree._tree import Tree

    def bad(what):
        raise StudioError(f"{name!r} has a malformed tree ({what}); the file is damaged or crafted and was refused")

    if isinstance(obj, Tree):
        n = obj.node_count
        left, right, feat = obj.children_left, obj.children_right, obj.feature
        if len(left) != n or len(right) != n or len(feat) != n or obj.value.shape[0] != n:
            bad("array lengths disagree with node_count")
        leaf = left == -1
        if np.any(leaf != (right == -1)):
            bad("a node with one child")
        internal = ~leaf
        for child in (left[internal], right[internal]):
            if child.size and (child.min() < 1 or child.max() >= n):
                bad("a child index out of range")
        # children must point forward, so traversal always ends
        idx = np.nonzero(internal)[0]
        if np.any(left[internal] <= idx) or np.any(right[internal] <= idx):
            bad("a cycle in the children")
        if internal.any():
            f = feat[internal]
            limit = obj.n_features if n_features is None else min(obj.n_features, n_features)
            if f.min() < 0 or f.max() >= limit:
                bad(f"a feature index out of range (up to {int(f.max())}, the tree sees {limit} features)")
    elif type(obj).__name__ == "TreePredictor":
        nodes = obj.nodes
        n = len(nodes)
        if n == 0:
            bad("an empty tree")
        leaf = nodes["is_leaf"].astype(bool)
        internal = ~leaf
        left, right = nodes["left"][internal], nodes["right"][internal]
        for child in (left, right):
            if child.size and (child.min() < 1 or child.max() >= n):
                bad("a child index out of range")
        idx = np.nonzero(internal)[0]
        if np.any(left <= idx) or np.any(right <= idx):
            bad("a cycle in the children")
        f = nodes["feature_idx"][internal]
        if f.size and n_features is not None and (f.min() < 0 or f.max() >= n_features):
            bad(f"a feature index out of range (up to {int(f.max())}, the tree sees {n_features} features)")
        bitsets = getattr(obj, "raw_left_cat_bitsets", None)
        cat = nodes["is_categorical"][internal].astype(bool) if "is_categorical" in nodes.dtype.names else None
        if cat is not None and cat.any():
            bidx = nodes["bitset_idx"][internal][cat]
            if bitsets is None or bidx.min() < 0 or bidx.max() >= len(bitsets):
                bad("a category bitset index out of range")


# ---- torch ----------------------------------------------------------------------------


def _load_torchscript(data, name, card, fingerprint):
    import torch

    try:
        with warnings.catch_warnings():  # torch's own deprecation notice, not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:
        raise StudioError(f"{name!r} is not a loadable TorchScript file ({type(exc).__name__}); is it truncated?") from None
    return TorchModel(module.eval(), "torchscript", fingerprint, card, name)


# Members of a .pt2 archive that hold only short text (read as strings by torch).
PT2_TEXT_MEMBERS = ("archive_format", "archive_version", "version", "byteorder", "serialization_id", ".lock")
# Native code an AOTInductor / ExecuTorch package can carry; never loaded.
PT2_CODE_DIRS = ("aotinductor/", "executorch/", "mtia/")
PT2_CODE_SUFFIXES = (".so", ".dll", ".dylib", ".pyd", ".cpp", ".cubin", ".hsaco", ".o", ".py")
# Names a serialised symbolic-shape expression may use (torch's own sympy functions and
# sympy's basics); anything else (exec, eval, __import__, ...) is refused before sympy sees it.
PT2_EXPR_NAMES = frozenset(
    "Symbol Integer Rational Float Number positive integer nonnegative negative real finite True False oo zoo nan "
    "Max Min Abs floor ceiling Mod Eq Ne Lt Le Gt Ge And Or Not Piecewise sqrt Pow Mul Add S ITE "
    "FloorDiv ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift IsNonOverlappingAndDenseIndicator "
    "TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat FloatPow PowByNatural IntTrueDiv FloatTrueDiv Identity "
    "OpaqueUnaryFn_sqrt OpaqueUnaryFn_exp OpaqueUnaryFn_log BitwiseFn_bitwise_and BitwiseFn_bitwise_or "
    "BitwiseFn_bitwise_xor Float Boolean".split()
)
PT2_TARGET_PREFIXES = ("torch.ops.", "_operator.", "math.", "torch.sym_", "torch._sym_", "#")


def _pt2_refuse(name, what):
    raise StudioError(
        f"{name!r} was refused: {what}. A .pt2 file may hold only a torch.export program and tensors; "
        "re-export the model with torch.export.save, or save it as TorchScript"
    )


def _check_pt2_expr(expr, name):
    import re

    text = re.sub(r"'[A-Za-z_]\w{0,40}'", "0", str(expr))
    if len(text) > 10_000 or not re.fullmatch(r"[\w\s+\-*/%()<>=!.,&|~^]*", text) or "__" in text:
        _pt2_refuse(name, f"a shape expression {str(expr)[:60]!r} is not a plain formula")
    for word in re.findall(r"[A-Za-z_]\w*", text):
        if word not in PT2_EXPR_NAMES and not re.fullmatch(r"[a-z]+\d+", word):
            _pt2_refuse(name, f"a shape expression uses {word!r}, which is not an arithmetic function")


def _scan_pt2_json(obj, name, depth=0):
    """Refuse graph targets outside torch's operator namespaces and non-formula shape expressions."""
    if depth > 200:
        _pt2_refuse(name, "its program description is nested too deeply")
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "target" and isinstance(value, str):
                if not value.startswith(PT2_TARGET_PREFIXES) or "__" in value.split(".")[-1]:
                    _pt2_refuse(name, f"its graph calls {value[:80]!r}, which is not a torch operator")
            elif key == "expr_str":
                _check_pt2_expr(value, name)
            elif key == "range_constraints" and isinstance(value, dict):
                for sym in value:
                    _check_pt2_expr(sym, name)
            _scan_pt2_json(value, name, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _scan_pt2_json(value, name, depth + 1)


def check_pt2_archive(data: bytes, name: str = "model.pt2") -> None:
    """Refuse a ``.pt2`` archive that could run code when ``torch.export.load`` reads it.

    ``torch.export.load`` falls back to ``torch.load(weights_only=False)`` for
    pickled weights, constants and sample inputs, unpickles "opaque" constants
    with ``pickle.loads``, loads AOTInductor shared libraries, resolves graph
    targets by attribute lookup under ``torch`` and parses shape expressions
    with sympy (which evaluates them). Before torch sees the file, every
    pickled member must load with ``weights_only=True``, no compiled code may
    be present, every graph target must be a torch operator, and every shape
    expression a plain formula.
    """
    import json

    import torch

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise StudioError(f"{name!r} is not a torch.export archive (not a zip file); save it with torch.export.save") from None
    with zf:
        from studio.data.images import check_archive

        infos = check_archive(zf, name)
        raw_payloads = set()
        jsons = {}
        for info in infos:
            lower = info.filename.lower()
            if any(d in lower for d in PT2_CODE_DIRS) or lower.endswith(PT2_CODE_SUFFIXES):
                _pt2_refuse(name, f"it carries compiled or Python code ({info.filename!r})")
            if lower.endswith(".json"):
                try:
                    jsons[info.filename] = json.loads(zf.read(info))
                except (ValueError, RecursionError):
                    _pt2_refuse(name, f"its member {info.filename!r} is not valid JSON")
        for member, content in jsons.items():
            if member.endswith("_config.json") and isinstance(content, dict) and isinstance(content.get("config"), dict):
                for meta in content["config"].values():
                    path = str(meta.get("path_name", "")) if isinstance(meta, dict) else ""
                    if path.startswith(("custom_obj_", "opaque_obj_")):
                        _pt2_refuse(name, f"it holds a Python object constant ({path!r}), which loads with pickle")
                    if isinstance(meta, dict) and meta.get("use_pickle") is False:
                        raw_payloads.add(path)
            else:
                _scan_pt2_json(content, name)
        for info in infos:
            member = info.filename
            base = member.rsplit("/", 1)[-1]
            if info.is_dir() or member.endswith(".json") or base in PT2_TEXT_MEMBERS or "/extra" in "/" + member:
                continue
            if base in raw_payloads and ("/weights/" in member or "/constants/" in member):
                continue  # raw tensor bytes, read with torch.frombuffer
            try:
                torch.load(io.BytesIO(zf.read(info)), map_location="cpu", weights_only=True)
            except Exception:
                _pt2_refuse(name, f"its member {member!r} is not plain tensors (it would be unpickled with code)")


def _load_torch_export(data, name, card, fingerprint):
    import torch

    check_pt2_archive(data, name)
    try:
        program = torch.export.load(io.BytesIO(data))
        module = program.module()
    except Exception as exc:
        raise StudioError(f"{name!r} is not a loadable torch.export (.pt2) file ({type(exc).__name__}: {str(exc)[:150]})") from None
    return TorchModel(module, "torch_export", fingerprint, card, name)


def _state_dict_model(state, name, card, fingerprint, fmt):
    from studio.models.architectures import build_architecture

    import torch

    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise StudioError(
            f"{name!r} does not hold a state dict (a mapping of parameter names to tensors); "
            "save it with torch.save(model.state_dict(), path)"
        )
    if not card.architecture:
        raise StudioError(
            f"{name!r} holds only weights; add a model card with 'architecture' (e.g. \"resnet18\") "
            "so the studio can build the network, or save the model as TorchScript"
        )
    net = build_architecture(card.architecture, card.architecture_args, state)
    return TorchModel(net, fmt, fingerprint, card, name)


def _load_state_dict(data, name, card, fingerprint):
    import pickle

    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise StudioError(
            f"{name!r} holds more than weights (a whole pickled model), which could run code when loaded. "
            "Save model.state_dict() instead, or export to TorchScript"
        ) from None
    except Exception as exc:
        raise StudioError(f"{name!r} is not a readable torch file ({type(exc).__name__}); is it truncated?") from None
    return _state_dict_model(state, name, card, fingerprint, "state_dict")


def _load_safetensors(data, name, card, fingerprint):
    from safetensors.torch import load as st_load

    try:
        state = st_load(data)
    except Exception as exc:
        raise StudioError(f"{name!r} is not a valid safetensors file ({type(exc).__name__})") from None
    from studio.models.architectures import natural_key

    # safetensors does not keep the module order; restore it numerically
    state = dict(sorted(state.items(), key=lambda kv: natural_key(kv[0])))
    return _state_dict_model(state, name, card, fingerprint, "safetensors")


# ---- ONNX ------------------------------------------------------------------------------

# A location in an ONNX graph's external data must be a plain file name (no folders).
_ONNX_RESAVE = (
    "re-save it with its weights inside (onnx.save_model(onnx.load(path), 'model.onnx')) "
    "or beside it under one plain file name (onnx.save_model(m, path, save_as_external_data=True, location='model.onnx.data'))"
)


def _onnx_tensors(model):
    """Every TensorProto in an ONNX model: initializers, sparse tensors and attribute tensors of every (sub)graph and function."""
    from onnx import AttributeProto

    def from_graph(graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            yield from from_node(node)

    def from_node(node):
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attr.type == AttributeProto.GRAPH or attr.HasField("g"):
                yield from from_graph(attr.g)
            for sub in attr.graphs:
                yield from from_graph(sub)

    yield from from_graph(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from from_node(node)


def _plain_file_name(location: str) -> bool:
    from pathlib import PurePosixPath, PureWindowsPath

    return (
        bool(location) and len(location) <= 255 and location not in (".", "..") and "\x00" not in location
        and ":" not in location and PurePosixPath(location).name == location and PureWindowsPath(location).name == location
    )


def _external_locations(model, name) -> dict:
    """{tensor: (location, offset, length or None)} for every tensor stored outside the graph; StudioError on a bad one."""
    from onnx import TensorProto

    found = {}
    for tensor in _onnx_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        if not _plain_file_name(location):
            raise StudioError(
                f"{name!r} stores tensor {tensor.name[:60]!r} at {location[:80]!r}, which is not a plain file name "
                f"beside the model (folders, '..' and absolute paths are refused, so no other file is read); {_ONNX_RESAVE}"
            )
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise StudioError(f"{name!r} gives tensor {tensor.name[:60]!r} a non-numeric offset or length; the file is damaged") from None
        if offset < 0 or (length is not None and length < 0):
            raise StudioError(f"{name!r} gives tensor {tensor.name[:60]!r} a negative offset or length; the file is damaged or crafted")
        found[id(tensor)] = (tensor, location, offset, length)
    return found


def _external_files(wanted, given, name) -> dict:
    """{location: bytes} for each file the graph names, from ``given`` only; sizes bounded."""
    from studio.data.dataset import limit

    given = given or {}
    max_bytes = limit("STUDIO_MAX_MODEL_BYTES", MAX_MODEL_BYTES)
    files, total = {}, 0
    for location in sorted(wanted):
        if location not in given:
            have = f"; given: {', '.join(map(repr, sorted(given)))}" if given else ""
            raise StudioError(
                f"{name!r} keeps its weights in {location!r}, which was not given{have}. Load it with that file: "
                f"beside the model, in one .zip with it, or as extra_files={{{location!r}: bytes}} "
                "(in the app: the 'Model data file' uploader)"
            )
        content = given[location]
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise StudioError(f"external data {location!r} must be bytes, not {type(content).__name__}")
        content = bytes(content)
        total += len(content)
        if total > max_bytes:
            raise StudioError(
                f"{name!r} with its external data is over the limit of {max_bytes} bytes; "
                "raise it with the environment variable STUDIO_MAX_MODEL_BYTES"
            )
        files[location] = content
    return files


def _read_extra_files(extra_files, name) -> dict | None:
    """``extra_files`` with every value as bytes (paths are read here, bounded, links refused)."""
    if not extra_files:
        return None
    from studio.data.dataset import limit

    room = limit("STUDIO_MAX_MODEL_BYTES", MAX_MODEL_BYTES)
    out = {}
    for key, content in extra_files.items():
        key = str(key)
        if isinstance(content, (str, Path)):
            content = _read_beside(Path(content), key, name, room)
        elif not isinstance(content, (bytes, bytearray, memoryview)):
            raise StudioError(f"extra file {key[:80]!r} must be bytes or a path, not {type(content).__name__}")
        out[key] = bytes(content)
        room -= len(out[key])
        if room < 0:
            raise StudioError(
                f"{name!r} with its extra files is over the limit of {limit('STUDIO_MAX_MODEL_BYTES', MAX_MODEL_BYTES)} "
                "bytes; raise it with the environment variable STUDIO_MAX_MODEL_BYTES"
            )
    return out


def _onnx_locations(data: bytes, name: str) -> set:
    """The file names an ONNX graph keeps tensors in (empty for a graph that cannot be parsed)."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:
        return set()  # not a valid graph: the loader says so in its words
    return {loc for _, loc, _, _ in _external_locations(model, name).values()}


def onnx_files_beside(data: bytes, name: str, folder: Path) -> dict | None:
    """The external data files an ONNX graph names, read from ``folder`` (the model's own folder).

    Only plain file names are looked up (anything else is refused by
    :func:`_external_locations`); a file that is not there is left for the
    loader to name in its message. Parsing the graph here is data only (a
    protobuf); it runs where the file's path is known, before the model is
    handed to a sandbox worker that cannot read the disk.
    """
    from studio.data.dataset import limit

    room = limit("STUDIO_MAX_MODEL_BYTES", MAX_MODEL_BYTES)
    files = {}
    for location in sorted(_onnx_locations(data, name)):
        path = folder / location
        if path.exists() or path.is_symlink():
            files[location] = _read_beside(path, location, name, room)
            room -= len(files[location])
    return files or None


def _read_beside(path: Path, location: str, name: str, room: int) -> bytes:
    try:
        if path.is_symlink() or not path.is_file():
            raise StudioError(f"{name!r} names external data {location!r}, which is not a regular file beside it (links are refused)")
        if path.stat().st_size > room:
            raise StudioError(
                f"external data {location!r} of {name!r} is {path.stat().st_size} bytes, over the limit; "
                "raise it with the environment variable STUDIO_MAX_MODEL_BYTES"
            )
        return path.read_bytes()
    except OSError as exc:
        raise StudioError(f"external data {location!r} of {name!r} could not be read ({exc.strerror or exc})") from None


def _inline_external_data(data, name, given):
    """(model bytes with every external tensor copied in, {location: bytes}, ir_version, opsets).

    The graph is parsed with ``onnx`` and each tensor stored outside it is
    filled from the given files (by plain file name, within the file's
    bounds), in memory: onnxruntime then gets a model that refers to no file
    at all, so it never reads from the disk (it would otherwise resolve
    locations against its working directory).
    """
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        raise StudioError(f"{name!r} is not a valid ONNX model ({type(exc).__name__}); export it again") from None
    opsets = {op.domain or "ai.onnx": op.version for op in model.opset_import}
    found = _external_locations(model, name)
    if not found:
        if given:
            raise StudioError(
                f"{name!r} keeps all its weights inside; the external data file(s) {', '.join(map(repr, sorted(given)))} "
                "are not used by it: load the model alone, or check that it is the model they were saved with"
            )
        return data, {}, model.ir_version, opsets
    files = _external_files({loc for _, loc, _, _ in found.values()}, given, name)
    for tensor, location, offset, length in found.values():
        content = files[location]
        end = len(content) if length is None else offset + length
        if offset > len(content) or end > len(content):
            raise StudioError(
                f"{name!r} reads tensor {tensor.name[:60]!r} from bytes {offset} to {end} of {location!r}, "
                f"which has {len(content)} bytes; the data file is truncated or belongs to another model"
            )
        tensor.raw_data = content[offset:end]
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
    if model.ByteSize() >= 2**31 - 1:
        raise StudioError(
            f"{name!r} with its external data is over 2 GB, more than one ONNX protobuf can hold in memory; "
            "the studio explains smaller models"
        )
    return model.SerializeToString(), files, model.ir_version, opsets


def _ort_reason(exc) -> str:
    """onnxruntime's message without its C++ source location."""
    import re

    text = " ".join(str(exc).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"^\S+\.(?:cc|h|cpp):\d+ [\w:~<>]+\([^)]*\)\s*", "", text)
    return text[:600]


def _ort_version_advice(name, exc, ir_version, opsets) -> str | None:
    """A sentence naming the file's IR version/opset and what the installed onnxruntime runs, or None."""
    import re

    import onnxruntime as ort

    text = str(exc)
    opset_text = ", ".join(f"{d} {v}" for d, v in sorted(opsets.items()))
    m = re.search(r"max supported IR version: (\d+)", text)
    if m:
        top = int(m.group(1))
        return (
            f"{name!r} is ONNX IR version {ir_version} (opset {opset_text}), newer than onnxruntime {ort.__version__} "
            f"runs (IR version up to {top}). Re-save it for IR version {top}: m = onnx.load(path); m.ir_version = {top}; "
            f"onnx.save(m, path) (or onnx.helper.make_model(m.graph, ir_version={top}, opset_imports=m.opset_import)), "
            "export it with an older onnx or opset, or upgrade onnxruntime"
        )
    m = re.search(r"Opset (\d+) is under development.*?domain (\S+) is till opset (\d+)", text)
    if m:
        wanted, domain, top = m.group(1), m.group(2).rstrip("."), int(m.group(3))
        return (
            f"{name!r} uses opset {wanted} of {domain} (IR version {ir_version}), newer than onnxruntime {ort.__version__} "
            f"supports (opset up to {top}). Convert it: onnx.version_converter.convert_version(onnx.load(path), {top}), "
            f"export it again with opset_version={top} (torch.onnx.export(..., opset_version={top})), or upgrade onnxruntime"
        )
    return None


def _load_onnx(data, name, card, fingerprint, extra_files=None):
    import onnxruntime as ort

    model_bytes, files, ir_version, opsets = _inline_external_data(data, name, extra_files)
    if files:  # the weights are the model too: the id covers them
        import hashlib

        h = hashlib.sha256(data)
        for location in sorted(files):
            h.update(location.encode() + b"\x00" + hashlib.sha256(files[location]).digest())
        fingerprint = h.hexdigest()
    try:
        session = ort_session(model_bytes)
    except Exception as exc:
        advice = _ort_version_advice(name, exc, ir_version, opsets)
        if advice:
            raise StudioError(advice) from None
        raise StudioError(f"{name!r} is not a valid ONNX model for onnxruntime {ort.__version__} ({_ort_reason(exc)})") from None
    del model_bytes
    model = OnnxModel(session, "onnx", fingerprint, card, name)
    model.onnx_bytes = data  # the session has no graph; studio.activations.graph reads onnx's own from these
    model.onnx_extra = extra_files  # its external data, for a session with extra outputs (studio.activations)
    return model


def ort_session(model_bytes: bytes):
    """An onnxruntime session as the loader makes it (quiet log; CUDA first when onnxruntime has it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    return ort.InferenceSession(model_bytes, sess_options=options, providers=providers)


def _unpack_onnx_zip(data, name):
    """(onnx bytes, onnx file name, {file name: bytes} of the files beside it, card bytes or None) from a .zip.

    The archive is checked (size, members, paths, links) before anything is
    read; it must hold exactly one ``.onnx`` file. Files in the same folder
    are its candidate external data, and a ``*.card.json`` there its card.
    """
    from pathlib import PurePosixPath

    from studio.data.images import check_archive

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise StudioError(f"{name!r} is not a readable .zip archive; zip the .onnx file with its .data file again") from None
    with zf:
        infos = [i for i in check_archive(zf, name) if not i.is_dir()]
        paths = {i.filename: PurePosixPath(i.filename.replace("\\", "/")) for i in infos}
        infos = [i for i in infos if "__MACOSX" not in paths[i.filename].parts and not paths[i.filename].name.startswith(".")]
        graphs = [i for i in infos if paths[i.filename].suffix.lower() == ".onnx"]
        if len(graphs) != 1:
            raise StudioError(
                f"{name!r} holds {len(graphs)} .onnx files; a model .zip holds exactly one .onnx file "
                "and the external data files it names (e.g. model.onnx and model.onnx.data)"
            )
        graph = graphs[0]
        folder = paths[graph.filename].parent
        files, card = {}, None
        for info in infos:
            path = paths[info.filename]
            if info is graph or path.parent != folder:
                continue
            if path.name.lower().endswith(".card.json"):
                card = zf.read(info)
            else:
                files[path.name] = info
        data = zf.read(graph)
        named = _onnx_locations(data, name)  # other files in the archive (a README, say) are left alone
        return data, paths[graph.filename].name, {k: zf.read(v) for k, v in files.items() if k in named}, card


# ---- pickle (trusted only) ---------------------------------------------------------------


def _load_pickle(data, name, card, fingerprint, trust_pickle):
    if not trust_pickle:
        raise StudioError(f"{name!r} is a pickle file and was not loaded. {PICKLE_ADVICE}")
    import joblib

    try:
        obj = joblib.load(io.BytesIO(data))
    except MemoryError:
        raise
    except Exception as exc:
        raise StudioError(f"{name!r} could not be unpickled ({type(exc).__name__}: {str(exc)[:200]})") from None
    try:
        import torch

        if isinstance(obj, torch.nn.Module):
            return TorchModel(obj.eval(), "pickle", fingerprint, card, name)
    except ImportError:
        pass
    if not hasattr(obj, "predict"):
        raise StudioError(f"{name!r} holds a {type(obj).__name__}, not a model with predict()")
    return SklearnModel(obj, "pickle", fingerprint, card, name)


def _check_card_against_model(model: Model) -> None:
    card = model.card
    native = model._native_kind()
    if card.modality is not None and native is not None and card.modality != native:
        raise StudioError(f"the card's 'modality' is {card.modality!r} but the model takes {native} input; fix the "
                          "card's 'modality' or remove it")
    if isinstance(model, BoosterModel):
        _check_card_against_booster(model)
        return
    if isinstance(model, SklearnModel):
        names = model._native_feature_names()
        n = model.n_features
        if card.feature_names and n is not None and len(card.feature_names) != n:
            raise StudioError(
                f"the card lists {len(card.feature_names)} feature names but the model takes {n} features"
            )
        if card.feature_names and names and list(card.feature_names) != names:
            raise StudioError("the card's feature_names differ from the names the model was fitted with; fix the card or remove 'feature_names'")
        if card.task == "classification" and not hasattr(model.native, "predict_proba"):
            raise StudioError("the card says 'classification' but the model has no predict_proba; is it a regression model?")
        if card.task == "regression" and hasattr(model.native, "predict_proba"):
            raise StudioError("the card says 'regression' but the model is a classifier; fix the card's 'task'")
        native_classes = model._native_class_names()
        if card.class_names and native_classes and len(card.class_names) != len(native_classes):
            raise StudioError(
                f"the card lists {len(card.class_names)} class names but the model has {len(native_classes)} classes"
            )
        return
    _check_card_against_outputs(model)


def _check_card_against_outputs(model: Model) -> None:
    """Torch and ONNX models: probe the model with inputs of the card's shape and read what it returns.

    The probe runs one zero row, then (when that works) a batch of probe rows:
    zeros and seeded random inputs (tables: standard normal; images:
    uniform in [0, 1]). From the answers it reads, and records in
    ``model.notes``:

    - the dtype the network takes: a float64 torch network is fed float64
      (the parameters' dtype; a probe that fails on float32 is retried in
      float64);
    - the batch limit: a model that runs one row but fails (or answers with
      the wrong number of rows) on two gets ``max_batch = 1``, so every call
      runs it one row at a time (the cost: one model call per row);
    - outputs that already are probabilities: every probe row non-negative
      and summing to 1 (within 1e-4) with two or more outputs. Unless the
      card's ``outputs`` says otherwise, no softmax is applied to them;
    - the output count, compared with the card (task, class names, output names).
    """
    card = model.card
    if isinstance(model, TorchModel):
        shape = model._example_shape()
    elif isinstance(model, OnnxModel):
        dims = model._input.shape
        shape = tuple(card.input_size) if card.input_size else (len(card.feature_names),) if card.feature_names else None
        if shape is None and dims and all(isinstance(d, int) for d in dims[1:]):
            shape = tuple(dims[1:])
    else:
        return
    if shape is None:
        return
    where = "input_size" if card.input_size else "feature_names"
    out = _probe(model, np.zeros((1, *shape), dtype=np.float32), shape, where)
    if out.ndim > 2 or out.ndim == 0:
        raise StudioError(f"the model returns outputs of shape {list(out.shape)}; the studio explains (rows, outputs) outputs")
    n_out = 1 if out.ndim == 1 else out.shape[1]
    model._n_outputs = n_out
    rng = np.random.default_rng(0)
    size = (2, *shape)
    random = rng.uniform(0.0, 1.0, size) if card.input_size else rng.standard_normal(size)
    rows = np.concatenate([np.zeros((1, *shape)), random]).astype(np.float32)  # (3, *shape)
    batch_error = None
    try:
        many = np.asarray(model._raw_output(rows))
        if many.ndim == 0 or len(many) != len(rows):
            batch_error = f"{len(rows)} rows gave an output of shape {list(many.shape)}"
    except (MemoryError, StudioError):
        raise
    except Exception as exc:
        batch_error = last_line(exc)
    if batch_error is not None:
        model.max_batch = 1
        model.notes.append(
            f"The model runs one row per call (a batch of rows fails: {batch_error[:160]}); the studio calls it "
            "once per row, so every method costs one model call per evaluated row and runs slower than on a "
            "batching model."
        )
        many = np.concatenate([np.asarray(model._raw_output(r[None])).reshape(1, -1) for r in rows])
    if isinstance(model, TorchModel) and model._dtype is not None and str(model._dtype) == "torch.float64":
        model.notes.append("The network computes in float64; the studio feeds it float64 inputs.")
    many = np.asarray(many, dtype=np.float64).reshape(len(rows), -1)
    if (
        n_out >= 2 and many.shape[1] == n_out and np.all(np.isfinite(many)) and np.all(many >= -1e-6)
        and np.allclose(many.sum(axis=1), 1.0, atol=1e-4)
    ):
        model._probabilities_detected = True
        if card.outputs is None and model._outputs_are_logits():
            model.notes.append(
                f"The outputs already are probabilities (all {len(rows)} probe rows are non-negative and sum to 1), "
                "so no softmax is applied; set the card's 'outputs' to 'logits' to apply one."
            )
    if isinstance(model, TorchModel):
        model._modules.clear()  # wrappers built during the probe read the output kind found now
    if card.task == "regression" and card.output_names and len(card.output_names) != n_out:
        raise StudioError(
            f"the card lists {len(card.output_names)} output names but the model returns {n_out} outputs; fix the card's output_names"
        )
    if card.class_names and model.is_classifier and n_out != len(card.class_names) and not (n_out == 1 and len(card.class_names) == 2):
        raise StudioError(
            f"the card lists {len(card.class_names)} class names but the model returns {n_out} outputs; fix the card's class_names"
        )


def _probe(model, x, shape, where):
    """The model's raw output on ``x``; a torch network refusing float32 is retried in float64 (and kept so)."""
    try:
        return np.asarray(model._raw_output(x))
    except (MemoryError, StudioError):
        raise
    except Exception as exc:
        first = exc
    if isinstance(model, TorchModel):
        import torch

        before = model.input_dtype
        model._dtype = torch.float64 if before != torch.float64 else torch.float32
        model._modules.clear()
        try:
            return np.asarray(model._raw_output(x))
        except Exception:
            model._dtype = before
            model._modules.clear()
    raise StudioError(
        f"the model does not run on an input of shape {list(shape)} (from the card's {where}): "
        f"{last_line(first)}; fix the card"
    ) from None


# ---- boosted trees: XGBoost, LightGBM, CatBoost in their own formats ------------------------------
#
# Each library reads its own file: no pickle, no code. Text formats are bounded (size and nesting depth)
# before any parser sees them, and the trees' indices are checked before the first prediction.

MAX_TREE_JSON_BYTES = 512 * 2**20
MAX_JSON_DEPTH = 64
LGB_EXTRA = ("model_to_string", "pandas_categorical")


def _detect_tree_format(data: bytes, name: str, suffix: str) -> str:
    fmt = TREE_SUFFIXES[suffix]
    if fmt == "catboost" and not data.startswith(b"CBM1"):
        raise StudioError(f"{name!r} is not a CatBoost model (no CBM1 header); save it with model.save_model(path)")
    if fmt == "lightgbm" and not data.lstrip()[:5] == b"tree\n":
        raise StudioError(f"{name!r} is not a LightGBM text model (it does not start with 'tree'); "
                          "save it with booster.save_model('model.txt')")
    return fmt


def _tree_refuse(name, library, what):
    raise StudioError(f"{name!r} is not a usable {library} model ({what}); the file is damaged or crafted, "
                      f"save it again with {library}'s save_model")


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``{``/``[`` in JSON text, ignoring brackets inside strings (no parsing)."""
    import re

    body = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", data)
    if not body:
        return 0
    arr = np.frombuffer(body, dtype=np.uint8)
    step = np.isin(arr, (ord("{"), ord("["))).astype(np.int32) - np.isin(arr, (ord("}"), ord("]"))).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def _bounded_json(data, name, library):
    import json

    from studio.data.dataset import limit

    max_bytes = limit("STUDIO_MAX_JSON_BYTES", MAX_TREE_JSON_BYTES)
    if len(data) > max_bytes:
        raise StudioError(f"{name!r} is {len(data)} bytes of JSON, over the limit of {max_bytes}; "
                          "raise it with STUDIO_MAX_JSON_BYTES or save the model as .ubj")
    if json_depth(data) > MAX_JSON_DEPTH:
        _tree_refuse(name, library, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError):
        _tree_refuse(name, library, "not valid JSON")


def ubjson_depth(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> int:
    """Walk UBJSON (XGBoost's ``.ubj``) without building it: the nesting depth; ValueError if malformed.

    Typed arrays (``[$type#count``) are skipped in one step, so a model of
    many large trees is walked in a few thousand steps.
    """
    import struct

    sizes = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8, b"d": 4, b"D": 8, b"C": 1}
    ints = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q"}
    pos, n = 0, len(data)
    stack = []  # per open container: [is_object, remaining count or None, expect_key]

    def take(k):
        nonlocal pos
        if pos + k > n:
            raise ValueError("truncated")
        out = data[pos : pos + k]
        pos += k
        return out

    def read_int():
        t = take(1)
        if t not in ints:
            raise ValueError("bad length marker")
        v = struct.unpack(ints[t], take(sizes[t]))[0]
        if v < 0:
            raise ValueError("negative length")
        return v

    def skip_value(t):
        if t in sizes:
            take(sizes[t])
        elif t in (b"S", b"H"):
            take(read_int())
        elif t not in (b"Z", b"N", b"T", b"F"):
            raise ValueError(f"unknown marker {t!r}")

    deepest = 0
    while True:
        if stack:
            frame = stack[-1]
            if frame[1] is not None and frame[1] == 0:
                stack.pop()
                continue
            if frame[0] and frame[2]:  # an object key: a length and bytes, no marker
                if frame[1] is None and pos < n and data[pos : pos + 1] == b"}":
                    pos += 1
                    stack.pop()
                    continue
                take(read_int())
                frame[2] = False
                continue
        if pos >= n:
            if stack:
                raise ValueError("truncated")
            return deepest
        t = take(1)
        if stack and not stack[-1][0] and stack[-1][1] is None and t == b"]":
            stack.pop()
            continue
        if stack and stack[-1][1] is not None:
            stack[-1][1] -= 1
        if stack and stack[-1][0]:
            stack[-1][2] = True
        if t in (b"[", b"{"):
            count, typed = None, None
            if data[pos : pos + 1] == b"$":
                pos += 1
                typed = take(1)
                if data[pos : pos + 1] != b"#":
                    raise ValueError("typed container without a count")
            if data[pos : pos + 1] == b"#":
                pos += 1
                count = read_int()
            if typed is not None and t == b"[" and typed in sizes:
                take(count * sizes[typed])  # a typed array of numbers: one step
                continue
            if typed is not None:
                raise ValueError("typed containers of containers are not used by XGBoost")
            stack.append([t == b"{", count, t == b"{"])
            deepest = max(deepest, len(stack))
            if len(stack) > max_depth:
                return len(stack)
        elif t == b"N":
            if stack and stack[-1][1] is not None:
                stack[-1][1] += 1  # no-op padding does not count
        else:
            skip_value(t)
        if not stack:
            if pos != n:
                raise ValueError("data after the end")
            return deepest


XGB_NODE_ARRAYS = ("left_children", "right_children", "parents", "split_indices", "split_conditions", "split_type",
                   "default_left", "loss_changes", "sum_hessian")


def ubjson_decode(data: bytes):
    """Decode UBJSON (XGBoost's ``.ubj``) into dicts, lists and numpy arrays; ValueError if malformed.

    Call after :func:`ubjson_depth` has bounded the nesting (the decoder
    recurses once per level). Typed numeric arrays become numpy arrays in one
    step.
    """
    import struct

    sizes = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8, b"d": 4, b"D": 8, b"C": 1}
    fmts = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8", b"d": ">f4", b"D": ">f8", b"C": "S1"}
    pos = 0

    def take(k):
        nonlocal pos
        if k < 0 or pos + k > len(data):
            raise ValueError("truncated")
        out = data[pos : pos + k]
        pos += k
        return out

    def length():
        t = take(1)
        if t not in sizes or t in (b"d", b"D", b"C"):
            raise ValueError("bad length marker")
        v = int(np.frombuffer(take(sizes[t]), dtype=fmts[t])[0])
        if v < 0:
            raise ValueError("negative length")
        return v

    def value(t):
        if t in sizes:
            v = np.frombuffer(take(sizes[t]), dtype=fmts[t])[0]
            return v.item() if t != b"C" else v.decode("latin1")
        if t in (b"S", b"H"):
            return take(length()).decode("utf-8", "replace")
        if t in (b"T", b"F"):
            return t == b"T"
        if t == b"Z":
            return None
        if t in (b"[", b"{"):
            return container(t)
        raise ValueError(f"unknown marker {t!r}")

    def container(t):
        nonlocal pos
        typed = count = None
        if data[pos : pos + 1] == b"$":
            pos += 1
            typed = take(1)
        if data[pos : pos + 1] == b"#":
            pos += 1
            count = length()
        elif typed is not None:
            raise ValueError("typed container without a count")
        if t == b"[" and typed in sizes:
            return np.frombuffer(take(count * sizes[typed]), dtype=fmts[typed])
        out = {} if t == b"{" else []
        i = 0
        while count is None or i < count:
            if count is None:
                if data[pos : pos + 1] == (b"}" if t == b"{" else b"]"):
                    pos += 1
                    return out
                if data[pos : pos + 1] == b"N":
                    pos += 1
                    continue
            if t == b"{":
                key = take(length()).decode("utf-8", "replace")
                out[key] = value(typed or take(1))
            else:
                out.append(value(typed or take(1)))
            i += 1
        return out

    result = value(take(1))
    if pos != len(data):
        raise ValueError("data after the end")
    return result


def _check_xgb_trees(model_json, name):
    """Every XGBoost tree's arrays agree with its node count and stay in range (children, parents, split
    features, categories), and the forest's per-iteration index and per-tree class agree with the trees."""

    def refuse(what):
        _tree_refuse(name, "XGBoost", what)

    try:
        learner = model_json["learner"]
        params = learner["learner_model_param"]
        n_feat = int(params["num_feature"])
        n_groups = max(int(params.get("num_class", "0") or 0), int(params.get("num_target", "1") or 1), 1)
        booster = learner["gradient_booster"]
        model = booster["model"] if "model" in booster else booster["gbtree"]["model"]
        trees = model["trees"]
    except (KeyError, TypeError, ValueError):
        return  # linear boosters and others: nothing indexed by a tree
    try:
        n_trees = int(model["gbtree_model_param"]["num_trees"])
        indptr = np.asarray(model.get("iteration_indptr", [0, n_trees]), dtype=np.int64)
        info = np.asarray(model["tree_info"], dtype=np.int64)
    except (KeyError, TypeError, ValueError, OverflowError):
        refuse("an unreadable tree count, iteration index or tree_info")
    if n_trees != len(trees) or len(info) != n_trees or (n_trees and (info.min() < 0 or info.max() >= n_groups)):
        refuse("tree_info disagrees with the trees or the number of classes")
    if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != n_trees or np.any(np.diff(indptr) < 0):
        refuse("an iteration index that disagrees with the trees")
    for tree in trees:
        try:
            n = int(tree["tree_param"]["num_nodes"])
            arrays = {key: np.asarray(tree[key], dtype=np.float64) for key in XGB_NODE_ARRAYS}
            leaf_size = max(int(tree["tree_param"].get("size_leaf_vector", "1") or 1), 1)
            weights = len(tree["base_weights"])
        except (KeyError, TypeError, ValueError, OverflowError):
            refuse("a tree without readable node arrays")
        if n < 1 or any(a.ndim != 1 or len(a) != n for a in arrays.values()) or weights not in (n, n * leaf_size):
            refuse("tree arrays of different lengths")
        left, right = arrays["left_children"].astype(np.int64), arrays["right_children"].astype(np.int64)
        split = arrays["split_indices"].astype(np.int64)
        parents = arrays["parents"].astype(np.int64)
        internal = left != -1
        if np.any(internal != (right != -1)):
            refuse("a node with one child")
        for child in (left[internal], right[internal]):
            if child.size and (child.min() < 1 or child.max() >= n):
                refuse("a child index out of range")
        idx = np.nonzero(internal)[0]
        if np.any(left[internal] <= idx) or np.any(right[internal] <= idx):
            refuse("a cycle in the children")
        if n > 1 and (parents[1:].min() < 0 or parents[1:].max() >= n):
            refuse("a parent index out of range")
        if internal.any() and (split[internal].min() < 0 or split[internal].max() >= max(n_feat, 1)):
            refuse("a split feature index out of range")
        categorical = arrays["split_type"][internal] != 0
        if categorical.any():
            try:
                cats = len(tree["categories"])
                nodes = np.asarray(tree["categories_nodes"], dtype=np.int64)
                seg = np.asarray(tree["categories_segments"], dtype=np.int64)
                size = np.asarray(tree["categories_sizes"], dtype=np.int64)
            except (KeyError, TypeError, ValueError, OverflowError):
                refuse("categorical splits without readable categories")
            if (len(nodes) != len(seg) or len(seg) != len(size) or (nodes.size and (nodes.min() < 0 or nodes.max() >= n))
                    or (seg.size and (seg.min() < 0 or size.min() < 0 or (seg + size).max() > cats))):
                refuse("a categorical split out of range")


def _load_xgboost(data, name, card, fingerprint):
    import json

    import xgboost as xgb

    if data.lstrip()[:1] == b"{" and Path(name.lower()).suffix == ".json":
        model_json = _bounded_json(data, name, "XGBoost")
    else:
        try:
            depth = ubjson_depth(data)
        except (ValueError, OverflowError, MemoryError) as exc:
            _tree_refuse(name, "XGBoost", f"not valid UBJSON: {exc}")
        if depth > MAX_JSON_DEPTH:
            _tree_refuse(name, "XGBoost", f"nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            model_json = ubjson_decode(data)
        except (ValueError, OverflowError, MemoryError, RecursionError) as exc:
            _tree_refuse(name, "XGBoost", f"not valid UBJSON: {exc}")
    if not (isinstance(model_json, dict) and "learner" in model_json and "version" in model_json):
        raise StudioError(f"{name!r} is JSON but not an XGBoost model (no 'learner' and 'version'); "
                          "a .json or .ubj model must be written by XGBoost's save_model")
    _check_xgb_trees(model_json, name)  # before XGBoost's own parser builds the trees
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except Exception as exc:
        _tree_refuse(name, "XGBoost", f"XGBoost could not read it: {last_line(exc)[:150]}")
    try:
        config = json.loads(booster.save_config())
    except Exception:
        config = {}
    try:
        model = XGBoostModel(booster, "xgboost", fingerprint, card, name, config=config)
    except Exception as exc:
        _tree_refuse(name, "XGBoost", f"its configuration is unreadable: {last_line(exc)[:150]}")
    return _probe_booster(model, name)


LGB_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan|-?inf)"
LGB_NUMBERS = re.compile(rf"v?{LGB_NUMBER}(?: +{LGB_NUMBER})*")
LGB_INTERNAL_ARRAYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")


def _check_lgb_text(text, name):
    """Bound a LightGBM text model before LightGBM's parser reads it (it trusts the file's own counts).

    The header's ``tree_sizes`` must equal the trees' byte lengths (LightGBM
    jumps by them), every tree must hold its arrays with the lengths
    ``num_leaves`` implies, children must stay inside the tree, split
    features below ``max_feature_idx + 1`` and categorical splits inside
    ``cat_boundaries``.
    """
    import re

    def refuse(what):
        _tree_refuse(name, "LightGBM", what)

    data = text.encode("utf-8")
    end = re.search(rb"(?m)^end of trees$", data)
    if end is None:
        refuse("no 'end of trees' line: the file is truncated")
    tail = data[end.end():]
    params = re.search(rb"(?m)^parameters:$", tail)
    if params is not None:
        close = re.search(rb"(?m)^end of parameters$", tail)
        if close is None or close.start() < params.end():
            refuse("its parameters section is cut off: the file is truncated")
        for line in tail[params.end() : close.start()].splitlines():
            if line.strip() and not re.fullmatch(rb"\[[A-Za-z0-9_]+: .*\]", line.strip()):
                refuse("a malformed line in its parameters section")
    starts = [m.start() for m in re.finditer(rb"(?m)^Tree=", data[: end.start()])]
    header = dict(line.split("=", 1) for line in text[: starts[0] if starts else end.start()].splitlines() if "=" in line)
    try:
        max_feature = int(header["max_feature_idx"])
        per_iter = int(header.get("num_tree_per_iteration", "1"))
        sizes = [int(v) for v in header["tree_sizes"].split()] if "tree_sizes" in header else None
    except (KeyError, ValueError):
        refuse("an unreadable header (max_feature_idx, num_tree_per_iteration or tree_sizes)")
    if max_feature < 0 or per_iter < 1 or len(starts) % per_iter:
        refuse("a header that disagrees with the number of trees")
    if "feature_names" in header and len(header["feature_names"].split()) != max_feature + 1:
        refuse("feature_names disagree with max_feature_idx")
    if sizes is not None and sizes != list(np.diff(starts + [end.start()])):
        refuse("tree_sizes disagree with the trees in the file")
    for key in ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx", "tree_sizes"):
        if key in header and not LGB_NUMBERS.fullmatch(header[key].strip() or "0"):
            refuse(f"a header field {key!r} that is not numbers")
    bounds = starts + [end.start()]
    for k in range(len(starts)):
        block = data[bounds[k] : bounds[k + 1]].decode("utf-8")
        lines = [line for line in block.splitlines() if line.strip()]
        if any("=" not in line or not LGB_NUMBERS.fullmatch(line.split("=", 1)[1].strip() or "0") for line in lines):
            refuse(f"tree {k} holds a line that is not key=numbers")  # LightGBM aborts the process on these
        tree = dict(line.split("=", 1) for line in lines)
        try:
            leaves, n_cat = int(tree["num_leaves"]), int(tree.get("num_cat", "0"))
            leaf_value = tree["leaf_value"].split()
            arrays = {key: np.array(tree[key].split(), dtype=np.float64 if key == "threshold" else np.int64)
                      for key in LGB_INTERNAL_ARRAYS if leaves > 1}
        except (KeyError, ValueError, OverflowError):
            refuse(f"tree {k} lacks readable arrays")
        if leaves < 1 or len(leaf_value) != leaves or n_cat < 0:
            refuse(f"tree {k}'s leaf values disagree with num_leaves")
        if tree.get("is_linear", "0") != "0":
            refuse("linear trees are not supported; train without linear_tree")
        if leaves == 1:
            continue
        if any(len(v) != leaves - 1 for v in arrays.values()):
            refuse(f"tree {k}'s arrays disagree with num_leaves")
        feats = arrays["split_feature"]
        if feats.min() < 0 or feats.max() > max_feature:
            refuse("a split feature index out of range")
        for child in (arrays["left_child"], arrays["right_child"]):  # >= 0: internal node; < 0: leaf ~child
            if child.max() >= leaves - 1 or child.min() < -leaves:
                refuse("a child index out of range")
        categorical = (arrays["decision_type"] & 1).astype(bool)
        if categorical.any():
            try:
                cat_bounds = np.array(tree["cat_boundaries"].split(), dtype=np.int64)
                n_thresholds = len(tree["cat_threshold"].split())
            except (KeyError, ValueError):
                refuse(f"tree {k} has categorical splits without readable category arrays")
            cat_idx = arrays["threshold"][categorical]
            if (len(cat_bounds) != n_cat + 1 or cat_bounds[0] != 0 or np.any(np.diff(cat_bounds) < 0)
                    or cat_bounds[-1] != n_thresholds or cat_idx.min() < 0 or cat_idx.max() >= n_cat
                    or np.any(cat_idx != np.floor(cat_idx))):
                refuse("a categorical split out of range")


def _load_lightgbm(data, name, card, fingerprint):
    import lightgbm as lgb

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _tree_refuse(name, "LightGBM", "not UTF-8 text")
    _check_lgb_text(text, name)
    try:
        booster = lgb.Booster(model_str=text)
    except Exception as exc:
        _tree_refuse(name, "LightGBM", f"LightGBM could not read it: {last_line(exc)[:150]}")
    try:
        model = LightGBMModel(booster, "lightgbm", fingerprint, card, name)
    except Exception as exc:
        _tree_refuse(name, "LightGBM", f"its configuration is unreadable: {last_line(exc)[:150]}")
    return _probe_booster(model, name)


def _load_catboost(data, name, card, fingerprint):
    from catboost import CatBoost

    model = CatBoost()
    try:
        model.load_model(blob=data, format="cbm")
    except Exception as exc:
        _tree_refuse(name, "CatBoost", f"CatBoost could not read it: {last_line(exc)[:150]}")
    try:
        if not model.is_fitted() or model.tree_count_ in (None, 0):
            _tree_refuse(name, "CatBoost", "it holds no trees")
        adapter = CatBoostModel(model, "catboost", fingerprint, card, name)
    except StudioError:
        raise
    except Exception as exc:
        _tree_refuse(name, "CatBoost", f"its parameters are unreadable: {last_line(exc)[:150]}")
    return _probe_booster(adapter, name)


def _probe_booster(model: BoosterModel, name: str) -> BoosterModel:
    """One prediction, margin and TreeSHAP pass on a row of zeros: a file the library read but cannot run
    fails here, as one StudioError, not at the first explanation."""
    try:
        x = np.zeros((1, model.n_features or 1))
        model.output(x)
        model.margin(x)
        model.tree_shap(x)
    except StudioError:
        raise
    except Exception as exc:
        _tree_refuse(name, model.library, f"it does not run: {last_line(exc)[:150]}")
    return model


def _check_card_against_booster(model: BoosterModel) -> None:
    card = model.card
    native_task = "classification" if model.n_classes >= 2 else "regression"
    if card.task and card.task != native_task:
        raise StudioError(f"the card says {card.task!r} but the {model.library} model's objective "
                          f"({model.objective or 'unknown'}) is {native_task}; fix the card's 'task'")
    n = model.n_features
    if card.feature_names and n is not None and len(card.feature_names) != n:
        raise StudioError(f"the card lists {len(card.feature_names)} feature names but the model takes {n} features")
    if card.class_names and model.n_classes and len(card.class_names) != model.n_classes:
        raise StudioError(f"the card lists {len(card.class_names)} class names but the model has "
                          f"{model.n_classes} classes")


# ---- in-memory models ---------------------------------------------------------------------


def wrap_model(obj, card=None, name: str | None = None) -> Model:
    """Wrap an in-memory scikit-learn estimator or torch module (no file).

    The fingerprint hashes the estimator's skops bytes or the module's
    weights, so cached results follow the weights.
    """
    card = load_card(card)
    try:
        import torch

        if isinstance(obj, torch.nn.Module):
            h = _hash_state(obj.state_dict())
            model = TorchModel(obj.eval(), "torch", h, card, name or type(obj).__name__)
            _check_card_against_outputs(model)
            return model
    except ImportError:
        pass
    if hasattr(obj, "predict"):
        import pickle

        h = sha256_bytes(pickle.dumps(obj))
        model = SklearnModel(obj, "sklearn", h, card, name or type(obj).__name__)
        _check_card_against_model(model)
        return model
    raise StudioError(f"cannot wrap a {type(obj).__name__}: expected a scikit-learn estimator or a torch module")


def _hash_state(state) -> str:
    import hashlib

    h = hashlib.sha256()
    for key, tensor in state.items():
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


__all__ = ["load_model", "load_in_process", "wrap_model", "detect_format", "check_tree_bounds", "check_skops_storage",
           "ModelCard"]
