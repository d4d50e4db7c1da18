"""Safe loaders for every model format in DESIGN.md.

No code from a file runs unless the caller trusts it: pickle/joblib are
refused without ``trust_pickle=True``; skops loads with untrusted types
refused (scikit-learn's tree storage admitted after a bounds check); torch
state dicts load with ``weights_only=True``; TorchScript, torch.export and
ONNX load as themselves.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.models.adapter import Model, OnnxModel, SklearnModel, TorchModel, sha256_bytes
from studio.models.card import ModelCard, load_card

MODEL_SUFFIXES = (".skops", ".pt", ".pth", ".pt2", ".safetensors", ".onnx", ".pkl", ".pickle", ".joblib")
MAX_MODEL_BYTES = 2 * 2**30

PICKLE_ADVICE = (
    "Pickle files can run arbitrary code when loaded. Convert the model instead: "
    "scikit-learn -> skops.io.dump(model, 'model.skops'); torch -> torch.jit.script(model).save('model.pt') "
    "or torch.save(model.state_dict(), 'model.pt') with a card naming the architecture. "
    "If you wrote this file yourself and trust it, pass trust_pickle=True (CLI --trust-pickle; "
    "in the app the server must set STUDIO_ALLOW_PICKLE=1)."
)

# skops reports these scikit-learn tree storage types as untrusted; they are
# admitted only after every index in every tree is checked to be in range.
TREE_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def load_model(source, card=None, trust_pickle: bool = False, name: str | None = None) -> Model:
    """Load a model file into the studio's adapter.

    Parameters
    ----------
    source : str, Path or bytes
        A model file path, or its bytes (then ``name`` gives the file name
        whose suffix decides the format).
    card : str, Path, dict, ModelCard or None
        The model card; by default ``<model>.card.json`` beside the file.
    trust_pickle : bool
        Load ``.pkl``/``.joblib`` (runs code from the file). Off by default.
    name : str, optional
        File name when ``source`` is bytes.

    Returns
    -------
    Model

    Raises
    ------
    StudioError
        For any file that cannot be loaded safely, with what to do instead.
    """
    data, name, path = _read_source(source, name)
    if card is None and path is not None:
        beside = path.with_name(path.name.split(".")[0] + ".card.json")
        alt = path.with_suffix(".card.json")
        for candidate in (alt, beside):
            if candidate.is_file():
                card = candidate
                break
    card = load_card(card)
    fmt = detect_format(data, name)
    fingerprint = sha256_bytes(data)
    loader = {
        "skops": _load_skops,
        "torchscript": _load_torchscript,
        "torch_export": _load_torch_export,
        "state_dict": _load_state_dict,
        "safetensors": _load_safetensors,
        "onnx": _load_onnx,
        "pickle": _load_pickle,
    }[fmt]
    if fmt == "pickle":
        model = loader(data, name, card, fingerprint, trust_pickle)
    else:
        model = loader(data, name, card, fingerprint)
    _check_card_against_model(model)
    return model


def _read_source(source, name):
    if isinstance(source, (bytes, bytearray)):
        if not name:
            raise StudioError("a model given as bytes needs its file name (for the format)")
        return bytes(source), str(name), None
    path = Path(source)
    if not path.is_file():
        raise StudioError(f"model file {str(path)!r} was not found; check the path")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise StudioError(f"model file {path.name!r} is {size / 2**30:.1f} GiB, over the 2 GiB limit")
    return path.read_bytes(), name or path.name, path


def detect_format(data: bytes, name: str) -> str:
    """The model format from the file name and its first bytes."""
    lower = name.lower()
    suffix = Path(lower).suffix
    if not data:
        raise StudioError(f"model file {name!r} is empty")
    if suffix not in MODEL_SUFFIXES:
        raise StudioError(
            f"model file {name!r} has an unknown type; accepted: {', '.join(MODEL_SUFFIXES)}"
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
    except zipfile.BadZipFile:
        raise StudioError(f"{name!r} is a damaged torch archive; save the model again") from None
    if any(n.endswith("constants.pkl") for n in names) or any("/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/models/model.json") or n.endswith("serialized_exported_program.json") for n in names):
        return "torch_export"
    return "state_dict"


# ---- scikit-learn via skops -------------------------------------------------------------


def _load_skops(data, name, card, fingerprint):
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise StudioError(f"{name!r} is not a valid skops file ({type(exc).__name__}); save it with skops.io.dump") from None
    refused = [t for t in untrusted if t not in TREE_TYPES]
    if refused:
        raise StudioError(
            f"{name!r} contains types the studio does not trust: {', '.join(refused)}. "
            "Only scikit-learn's own estimators (and its tree storage) are loaded from skops files"
        )
    try:
        estimator = sio.loads(data, trusted=[t for t in untrusted if t in TREE_TYPES])
    except Exception as exc:
        raise StudioError(f"{name!r} could not be loaded by skops: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not hasattr(estimator, "predict"):
        raise StudioError(f"{name!r} holds a {type(estimator).__name__}, not a fitted estimator with predict()")
    check_tree_bounds(estimator, name)
    return SklearnModel(estimator, "skops", fingerprint, card, name)


def _iter_estimators(obj, seen=None):
    """Every estimator reachable from ``obj`` (pipelines, ensembles, lists)."""
    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _iter_estimators(item, seen)
        return
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        for item in obj.ravel():
            yield from _iter_estimators(item, seen)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            yield from _iter_estimators(item, seen)
        return
    yield obj
    if not hasattr(obj, "__dict__"):
        return  # e.g. the Cython Tree: yielded, nothing inside to walk
    for value in vars(obj).values():
        yield from _iter_estimators(value, seen)


def check_tree_bounds(estimator, name: str = "model") -> None:
    """Refuse a model whose tree storage indexes out of range.

    Checks every child, feature and value index of every scikit-learn
    ``Tree`` and HistGradientBoosting ``TreePredictor`` in ``estimator``.
    """
    from sklearn.tree._tree import Tree

    n_features = getattr(estimator, "n_features_in_", None)

    def bad(what):
        raise StudioError(f"{name!r} has a malformed tree ({what}); the file is damaged or crafted and was refused")

    for obj in _iter_estimators(estimator):
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
                    bad("a feature index out of range")
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
                bad("a feature index out of range")
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


def _load_torch_export(data, name, card, fingerprint):
    import torch

    try:
        program = torch.export.load(io.BytesIO(data))
        module = program.module()
    except Exception as exc:
        raise StudioError(f"{name!r} is not a loadable torch.export (.pt2) file ({type(exc).__name__}: {str(exc)[:150]})") from None
    return TorchModel(module, "torch_export", fingerprint, card, name)


def _state_dict_model(state, name, card, fingerprint, fmt):
    from studio.models.architectures import build_architecture

    if not isinstance(state, dict) or not state:
        raise StudioError(f"{name!r} does not hold a state dict (a mapping of parameter names to tensors)")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
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


def _load_onnx(data, name, card, fingerprint):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:
        raise StudioError(f"{name!r} is not a valid ONNX model ({str(exc).splitlines()[0][:200]})") from None
    return OnnxModel(session, "onnx", fingerprint, card, name)


# ---- pickle (trusted only) ---------------------------------------------------------------


def _load_pickle(data, name, card, fingerprint, trust_pickle):
    if not trust_pickle:
        raise StudioError(f"{name!r} is a pickle file and was not loaded. {PICKLE_ADVICE}")
    import joblib

    try:
        obj = joblib.load(io.BytesIO(data))
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
            return TorchModel(obj.eval(), "torch", h, card, name or type(obj).__name__)
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


__all__ = ["load_model", "wrap_model", "detect_format", "check_tree_bounds", "ModelCard"]
