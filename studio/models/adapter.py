"""The Model adapter: one face for scikit-learn, torch, ONNX and boosted-tree (XGBoost, LightGBM, CatBoost) models.

Every model answers ``predict(x)`` and, for classifiers, ``predict_proba(x)``
on a numpy batch (tables: rows in the model's feature order; images:
N x C x H x W float in [0, 1]). ``output(x)`` is the output explainers
explain: probabilities for classifiers, the prediction for regression.
"""

from __future__ import annotations

import hashlib

import numpy as np

from studio.errors import StudioError
from studio.models.card import ModelCard


class Model:
    """Base adapter. Subclasses implement :meth:`_raw_output`.

    Attributes
    ----------
    format : str
        ``"skops"``, ``"torchscript"``, ``"torch_export"``, ``"state_dict"``,
        ``"onnx"``, ``"xgboost"``, ``"lightgbm"``, ``"catboost"``, ``"pickle"``,
        ``"sklearn"`` or ``"torch"`` (in memory).
    fingerprint : str
        sha256 of the weight bytes (the model id).
    card : ModelCard
    name : str
        File name or a short description, for display.
    native : object
        The underlying estimator, torch module or onnxruntime session.
    notes : list of str
        What the studio read from the model at load and acts on (outputs
        that already are probabilities, a float64 network, a batch limit),
        one sentence each, for the Load page.
    max_batch : int or None
        Most rows the model takes per call (1 for models that run one row
        at a time, found by the load probe); None: no limit.
    """

    differentiable = False

    def __init__(self, native, fmt: str, fingerprint: str, card: ModelCard | None = None, name: str = "model"):
        self.native = native
        self.format = fmt
        self.fingerprint = fingerprint
        self.card = card or ModelCard()
        self.name = name
        self._n_outputs: int | None = None
        self.notes: list[str] = []
        self.max_batch: int | None = None
        self._probabilities_detected = False

    # ---- what the model is -------------------------------------------------------
    @property
    def id(self) -> str:
        return self.fingerprint

    @property
    def cache_id(self) -> str:
        """Fingerprint of weights and card together (the card changes outputs)."""
        state = (self.fingerprint, repr(self.card))  # the card's repr lists every field: cheap to compare
        if getattr(self, "_cache_id", (None, None))[0] != state:
            self._cache_id = (state, hashlib.sha256((self.fingerprint + self.card.canonical_json()).encode()).hexdigest())
        return self._cache_id[1]

    @property
    def task(self) -> str:
        if self.card.task:
            return self.card.task
        return self._infer_task()

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    @property
    def feature_names(self) -> list[str] | None:
        return self.card.feature_names or self._native_feature_names()

    @property
    def input_size(self) -> list[int] | None:
        return self.card.input_size

    @property
    def kind(self) -> str | None:
        """``"tabular"``, ``"image"`` or None when only the data can tell."""
        if self.card.modality is not None:
            return self.card.modality
        if self.card.input_size is not None:
            return "image"
        if self.feature_names is not None:
            return "tabular"
        return self._native_kind()

    @property
    def class_names(self) -> list[str] | None:
        if not self.is_classifier:
            return None
        if self.card.class_names:
            return list(self.card.class_names)
        native = self._native_class_names()
        if native is not None:
            return native
        n = self._n_outputs
        if n:
            return [str(i) for i in range(max(n, 2))]
        return None

    @property
    def output_names(self) -> list[str]:
        """Class names (classifiers); for regression ``["prediction"]``, or one name per output of a
        multi-output regressor (the card's ``output_names``, else ``"output 0"``, ``"output 1"``, ...)."""
        if self.is_classifier:
            return self.class_names if self.class_names else ["prediction"]
        n = self._n_outputs or self._native_n_outputs()
        if self.card.output_names and (n is None or len(self.card.output_names) == n):
            return list(self.card.output_names)
        if n and n > 1:
            return [f"output {i}" for i in range(n)]
        return ["prediction"]

    @property
    def applies_softmax(self) -> bool:
        """Whether the model's raw outputs pass through softmax (or a sigmoid) to become probabilities.

        Classifiers whose card says ``"logits"``, or says nothing and whose
        outputs were not found to be probabilities at load.
        """
        if not self.is_classifier or not self._outputs_are_logits():
            return False
        if self.card.outputs is not None:
            return self.card.outputs == "logits"
        return not self._probabilities_detected

    # ---- predictions ----------------------------------------------------------------
    def output(self, x, batch_size: int | None = None) -> np.ndarray:
        """The explained output: probabilities (classifiers) or predictions.

        Parameters
        ----------
        x : ndarray of shape (n, n_features) or (n, C, H, W)

        Returns
        -------
        ndarray of shape (n, n_outputs)
            Rows of class probabilities, or one column for regression.
        """
        x = self._check_input(x)
        if len(x) == 0:
            return np.zeros((0, self.n_outputs_or(1)))
        bs = batch_size or self._default_batch(x)
        if self.max_batch:
            bs = min(bs, self.max_batch)
        parts = [self._raw_output(x[i : i + bs]) for i in range(0, len(x), bs)]
        raw = np.concatenate(parts, axis=0)
        out = self._to_output(raw)
        self._n_outputs = out.shape[1]
        return out

    def predict_proba(self, x, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities, shape (n, n_classes). Classifiers only."""
        if not self.is_classifier:
            raise StudioError("predict_proba is for classifiers; this model is a regression model")
        return self.output(x, batch_size)

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        """Class indices (classifiers) or values (regression: the first output), shape (n,)."""
        out = self.output(x, batch_size)
        if self.is_classifier:
            return out.argmax(axis=1)
        return out[:, 0]

    def n_outputs_or(self, default: int) -> int:
        return self._n_outputs or default

    # ---- hooks for subclasses ---------------------------------------------------------
    def _raw_output(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _to_output(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 1:
            raw = raw[:, None]
        if raw.ndim != 2:
            raise StudioError(f"the model returned outputs of shape {raw.shape}; expected (rows, outputs)")
        if self.applies_softmax:
            if raw.shape[1] == 1:  # one logit: binary classifier
                p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
                return np.stack([1 - p, p], axis=1)
            z = raw - raw.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        return raw

    def _outputs_are_logits(self) -> bool:
        return True

    def _infer_task(self) -> str:
        return "classification"

    def _native_feature_names(self):
        return None

    def _native_class_names(self):
        return None

    def _native_n_outputs(self) -> int | None:
        return None

    def _native_kind(self):
        return None

    def _default_batch(self, x: np.ndarray) -> int:
        return 4096 if x.ndim == 2 else 64

    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim not in (2, 4):
            raise StudioError(f"model input must be rows x features or N x C x H x W, got shape {x.shape}")
        return x

    def __repr__(self) -> str:
        """One line: name, format, task (with its classes), input kind and size."""
        task = self.task
        if self.is_classifier and self.class_names:
            task += f" ({len(self.class_names)} classes)"
        kind = self.kind or "input kind from the data"
        if self.feature_names:
            kind += f", {len(self.feature_names)} features"
        elif self.input_size:
            kind += f" {'x'.join(map(str, self.input_size))}"
        return f"<Model {self.name!r} format={self.format} task={task} kind={kind}>"


def _selects_no_columns(estimator) -> bool:
    """Whether a fitted scikit-learn estimator reads its input by position only.

    True for scikit-learn's own estimators and pipelines of them; False for
    column transformers, function transformers and anything from another
    library, which may select columns by name.
    """
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        return all(step in (None, "passthrough") or _selects_no_columns(step) for _, step in steps)
    module = type(estimator).__module__
    if not module.startswith("sklearn.") or module.startswith("sklearn.compose"):
        return False
    return type(estimator).__name__ != "FunctionTransformer"


class SklearnModel(Model):
    """A scikit-learn estimator or pipeline."""

    # None until the first call tells whether array input works for this estimator
    _takes_arrays: bool | None = None

    def _infer_task(self) -> str:
        return "classification" if hasattr(self.native, "predict_proba") else "regression"

    def _native_feature_names(self):
        names = getattr(self.native, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else None

    def _native_class_names(self):
        classes = getattr(self.native, "classes_", None)
        return [str(c) for c in classes] if classes is not None else None

    def _native_kind(self):
        return "tabular"

    def _native_n_outputs(self) -> int | None:
        est = self.native.steps[-1][1] if hasattr(self.native, "steps") else self.native
        n = getattr(est, "n_outputs_", None)
        return int(n) if n is not None and not self.is_classifier else None

    def _outputs_are_logits(self) -> bool:
        return False

    @property
    def n_features(self) -> int | None:
        n = getattr(self.native, "n_features_in_", None)
        return int(n) if n is not None else None

    def _raw_output(self, x):
        if x.ndim != 2:
            x = x.reshape(len(x), -1)
        if getattr(self.native, "feature_names_in_", None) is not None:
            if x.dtype != object and self._takes_arrays is not False and _selects_no_columns(self.native):
                # Fitted on a DataFrame but reads columns by position only: an array gives the same
                # predictions without scikit-learn re-validating a DataFrame on every call.
                import warnings

                try:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message="X does not have valid feature names")
                        out = self._predict(x)
                    self._takes_arrays = True
                    return out
                except Exception:
                    if self._takes_arrays:
                        raise
                    self._takes_arrays = False
            import pandas as pd

            x = pd.DataFrame(x, columns=list(self.native.feature_names_in_))
            # numeric columns stay numeric for estimators that check dtypes
            x = x.infer_objects()
        return self._predict(x)

    def _predict(self, x):
        if self.is_classifier:
            return self.native.predict_proba(x)
        return self.native.predict(x)


class TorchModel(Model):
    """A torch module (TorchScript, torch.export, state dict or in memory).

    The network's input is normalised with the card's mean/std inside
    :meth:`torch_module`, so callers always pass raw inputs.
    """

    differentiable = True

    def __init__(self, native, fmt, fingerprint, card=None, name="model"):
        super().__init__(native, fmt, fingerprint, card, name)
        self._device = "cpu"
        self._modules: dict = {}
        self._dtype = None  # torch dtype the network takes; read from its parameters on first use

    @property
    def input_dtype(self):
        """The floating dtype the network takes (its first floating parameter or buffer's; float32 if none).

        The adapter casts every input to it (inside :meth:`torch_module`), so a
        ``model.double()`` network gets float64 tensors.
        """
        if self._dtype is None:
            import torch

            self._dtype = torch.float32
            for tensors in (self._named(self.native, "parameters"), self._named(self.native, "buffers")):
                found = next((t.dtype for t in tensors if t.is_floating_point()), None)
                if found is not None:
                    self._dtype = found
                    break
        return self._dtype

    @staticmethod
    def _named(net, what):
        try:
            return list(getattr(net, what)())
        except Exception:  # some exported programs do not list them
            return []

    @property
    def device(self) -> str:
        return self._device

    def to(self, device: str) -> "TorchModel":
        """Move the network to ``device`` (resolved from ``auto``); returns self."""
        from studio.device import resolve_device

        device = resolve_device(device)
        if device != self._device:
            self.native = self.native.to(device)
            self._modules.clear()
            self._device = device
        return self

    def _outputs_are_logits(self) -> bool:
        return True

    def _infer_task(self) -> str:
        n = self._n_outputs or self._probe_outputs()
        return "regression" if n == 1 else "classification"

    def _probe_outputs(self) -> int | None:
        shape = self._example_shape()
        if shape is None:
            return None
        import torch

        with torch.no_grad():
            try:
                out = self.torch_module("raw")(torch.zeros((1, *shape), device=self._device))
            except Exception:
                return None
        self._n_outputs = int(out.reshape(1, -1).shape[1]) if out.ndim <= 2 else None
        return self._n_outputs

    def _example_shape(self):
        if self.card.input_size:
            return tuple(self.card.input_size)
        if self.card.feature_names:
            return (len(self.card.feature_names),)
        return None

    def torch_module(self, output: str = "probabilities", device: str | None = None):
        """A differentiable ``nn.Module``: raw input -> explained output.

        Parameters
        ----------
        output : {"probabilities", "logits"}
            Classifiers: whether softmax is applied (logits cards only).
            Regression models return (N, 1) either way.
        device : str, optional
            Moves the model first.

        Returns
        -------
        torch.nn.Module
            Takes float tensors of shape (N, F) or (N, C, H, W) in raw units
            (images in [0, 1]); normalisation from the card is applied inside.
        """
        if device is not None:
            self.to(device)
        key = output
        if key not in self._modules:
            self._modules[key] = _Wrapped(self, output)
        return self._modules[key]

    def torch_module_over(self, net, output: str = "probabilities"):
        """Like :meth:`torch_module`, around another network with this card.

        For explainers that need a variant of the network (a copy with
        re-initialised weights, an unrolled view of a scripted module): the
        card's normalisation and the output transform are applied exactly as
        in :meth:`torch_module`. Not cached.

        Parameters
        ----------
        net : torch.nn.Module
            Takes normalised inputs, returns what :attr:`native` returns.
        output : {"probabilities", "logits", "raw"}
        """
        return _Wrapped(self, output, net=net)

    def _raw_output(self, x):
        import torch

        with torch.no_grad():
            x = np.asarray(x, dtype=np.float64 if self.input_dtype == torch.float64 else np.float32)
            t = torch.as_tensor(x if x.flags.writeable else x.copy(), device=self._device)
            out = self.torch_module("raw")(t)
        return out.detach().cpu().numpy()

    def _to_output(self, raw):
        return super()._to_output(raw)


def select_output(out, key, n_rows: int):
    """The explained tensor of a network's output: ``out`` itself, or the card's ``output`` part of it.

    Parameters
    ----------
    out : Tensor, dict, tuple or list
        What the network returned for ``n_rows`` rows.
    key : str or int or None
        The card's ``output``: a dict key or a tuple/list index.
    n_rows : int

    Returns
    -------
    Tensor of shape (n_rows, n_outputs)
        A 1-D output of ``n_rows`` values is one column; a 1-D output for
        one row (a network without a batch dimension) is that row.

    Raises
    ------
    StudioError
        For a structure the card does not resolve, naming it.
    """
    import torch

    if isinstance(out, dict):
        if key is None and len(out) == 1:
            key = next(iter(out))
        if key is None or key not in out:
            keys = ", ".join(repr(k) for k in list(out)[:10])
            raise StudioError(
                f"the model returns a dict with keys {keys}; set the card's 'output' to the key to explain"
                + (f" ({key!r} is not one of them)" if key is not None else "")
            )
        out = out[key]
    elif isinstance(out, (tuple, list)):
        if key is None and len(out) == 1:
            key = 0
        if not isinstance(key, int) or not 0 <= key < len(out):
            kinds = ", ".join(_describe(v) for v in list(out)[:6])
            raise StudioError(
                f"the model returns a {type(out).__name__} of {len(out)} items ({kinds}); "
                "set the card's 'output' to the index of the one to explain"
                + (f" ({key!r} is not an index of it)" if key is not None else "")
            )
        out = out[key]
    if not isinstance(out, torch.Tensor):
        raise StudioError(
            f"the model's output{'' if key is None else f' {key!r}'} is a {type(out).__name__}, not a tensor; "
            "set the card's 'output' to the part holding the scores"
        )
    if out.ndim == 1:
        out = out[:, None] if len(out) == n_rows else out.reshape(1, -1) if n_rows == 1 else out[:, None]
    return out


def _describe(v) -> str:
    shape = getattr(v, "shape", None)
    return f"tensor {list(shape)}" if shape is not None else type(v).__name__


def _make_wrapped_class():
    from torch import nn

    class Wrapped(nn.Module):
        def __init__(self, model: TorchModel, output: str, net=None):
            super().__init__()
            self.net = model.native if net is None else net
            self.output = output
            self.is_classifier = model.is_classifier if output != "raw" else False
            self.apply_softmax = output == "probabilities" and model.applies_softmax
            self.model_ref = [model]  # a list: not registered as a submodule; read max_batch at call time
            self.key = model.card.output
            self.dtype = model.input_dtype
            mean, std = model.card.mean, model.card.std
            import torch

            if mean is not None:
                shape = (1, -1, 1, 1) if model.card.input_size else (1, -1)
                self.register_buffer("mean", torch.tensor(mean, dtype=self.dtype).reshape(shape).to(model.device))
                self.register_buffer("std", torch.tensor(std, dtype=self.dtype).reshape(shape).to(model.device))
            else:
                self.mean = None

        def _run(self, x):
            limit = self.model_ref[0].max_batch
            if limit and len(x) > limit:  # a network that runs a few rows per call: one call per chunk
                import torch

                return torch.cat([self._run(x[i : i + limit]) for i in range(0, len(x), limit)])
            return select_output(self.net(x), self.key, len(x))

        def forward(self, x):
            import torch

            given = x.dtype
            if x.is_floating_point() and x.dtype != self.dtype:
                x = x.to(self.dtype)  # the network's own dtype (float64 networks); differentiable
            if self.mean is not None:
                x = (x - self.mean) / self.std
            out = self._run(x)
            if out.is_floating_point() and given.is_floating_point and out.dtype != given:
                out = out.to(given)
            if self.output == "raw" or not self.is_classifier:
                return out
            if out.shape[1] == 1:
                if self.apply_softmax:
                    p = torch.sigmoid(out)
                    return torch.cat([1 - p, p], dim=1)
                if self.output == "logits":
                    return torch.cat([torch.zeros_like(out), out], dim=1)
                return torch.cat([1 - out, out], dim=1)
            return torch.softmax(out, dim=1) if self.apply_softmax else out

    return Wrapped


_WRAPPED = None


def _Wrapped(model, output, net=None):
    global _WRAPPED
    if _WRAPPED is None:
        _WRAPPED = _make_wrapped_class()
    wrapped = _WRAPPED(model, output, net=net)
    wrapped.training = False  # not .eval(): torch.export modules refuse train()
    return wrapped


class OnnxModel(Model):
    """An ONNX model run by onnxruntime (no gradients)."""

    def __init__(self, native, fmt, fingerprint, card=None, name="model"):
        super().__init__(native, fmt, fingerprint, card, name)
        inputs = native.get_inputs()
        if len(inputs) != 1:
            raise StudioError(f"the ONNX model has {len(inputs)} inputs; the studio explains models with one input tensor")
        self._input = inputs[0]
        self._output_name, self._is_proba = self._pick_output()

    def _pick_output(self):
        outs = self.native.get_outputs()
        key = self.card.output
        if key is not None:  # the card names the output: by name or by position
            names = [o.name for o in outs]
            if isinstance(key, int) and 0 <= key < len(outs):
                key = names[key]
            if key not in names:
                raise StudioError(
                    f"the card's 'output' {key!r} is not an output of the ONNX model; its outputs are "
                    f"{', '.join(map(repr, names[:10]))}"
                )
            return key, "prob" in key.lower() and self.card.outputs != "logits"
        for o in outs:
            if "prob" in o.name.lower() and "tensor" in o.type:
                return o.name, True
        for o in outs:
            if "float" in o.type or "double" in o.type:
                return o.name, False
        raise StudioError("the ONNX model has no float tensor output to explain")

    def _outputs_are_logits(self) -> bool:
        return not self._is_proba

    def _infer_task(self) -> str:
        if self._is_proba:
            return "classification"
        shape = self.native.get_outputs()[[o.name for o in self.native.get_outputs()].index(self._output_name)].shape
        last = shape[-1] if shape else None
        return "regression" if last == 1 or len(shape) == 1 else "classification"

    def _native_kind(self):
        shape = self._input.shape
        return "image" if len(shape) == 4 else "tabular"

    def feeds(self, x) -> dict:
        """onnxruntime's input feed for raw rows ``x``: the input's dtype, the card's normalisation applied once."""
        dtype = np.float64 if "double" in self._input.type else np.float32
        x = np.asarray(x, dtype=dtype)
        if self.card.mean is not None:  # the card's normalisation, once, as for torch models
            shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
            x = (x - np.asarray(self.card.mean, dtype=dtype).reshape(shape)) / np.asarray(self.card.std, dtype=dtype).reshape(shape)
        return {self._input.name: x}

    @property
    def output_name(self) -> str:
        """The ONNX output explained (``Model.output``'s source)."""
        return self._output_name

    def _raw_output(self, x):
        return self.native.run([self._output_name], self.feeds(x))[0]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- gradient-boosted trees in their own formats (XGBoost, LightGBM, CatBoost) ---------------------


class BoosterModel(Model):
    """A boosted-tree model run by its own library (no pickle), on numeric tables.

    Subclasses read the task, classes and feature names from the file and
    answer :meth:`margin` and :meth:`tree_shap`, the library's exact TreeSHAP
    (Lundberg et al. 2020, "From local explanations to global understanding
    with explainable AI for trees"), which works on the raw margin: log-odds
    for binary classifiers, the per-class scores that go through softmax for
    multiclass ones, and the value before the inverse link for regression.

    Output columns match :meth:`Model.output`: a binary classifier has two,
    and its class-0 margin is the negated class-1 log-odds (log(p0/p1)).
    """

    library = ""
    n_classes = 0  # 0 for regression
    link = "identity"  # "logit" (binary), "softmax", "identity" or "log" (regression)

    def __init__(self, native, fmt, fingerprint, card=None, name="model"):
        super().__init__(native, fmt, fingerprint, card, name)
        self._features: list[str] | None = None
        self._classes: list[str] | None = None
        self._n_features: int | None = None

    def _infer_task(self) -> str:
        return "classification" if self.n_classes >= 2 else "regression"

    def _native_feature_names(self):
        return list(self._features) if self._features else None

    def _native_class_names(self):
        if self._classes:
            return list(self._classes)
        return [str(i) for i in range(self.n_classes)] if self.n_classes >= 2 else None

    def _native_kind(self):
        return "tabular"

    def _outputs_are_logits(self) -> bool:
        return False

    @property
    def n_features(self) -> int | None:
        return self._n_features

    @property
    def explains_margin(self) -> bool:
        """Whether TreeSHAP's output (the margin) differs from :meth:`output` (probabilities, or a link)."""
        return self.n_classes >= 2 or self.link != "identity"

    def _check_input(self, x) -> np.ndarray:
        x = super()._check_input(x)
        if x.ndim != 2:
            raise StudioError(f"{self.library} models take a table (rows x features), got shape {x.shape}")
        if self._n_features is not None and x.shape[1] != self._n_features:
            raise StudioError(f"the model takes {self._n_features} features, the data has {x.shape[1]}")
        if x.dtype == object:
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError):
                raise StudioError(f"{self.library} models here take numeric columns; encode text columns as numbers") from None
        return x

    def margin(self, x) -> np.ndarray:
        """The raw margin TreeSHAP explains.

        Parameters
        ----------
        x : ndarray of shape (n, n_features)

        Returns
        -------
        ndarray of shape (n, n_outputs)
            Same columns as :meth:`output`: binary classifiers ``[-m, m]``
            with ``m`` the class-1 log-odds; multiclass the per-class scores;
            regression one column.
        """
        x = self._check_input(x)
        return self._widen(np.asarray(self._margin(x), dtype=np.float64))

    def tree_shap(self, x):
        """The library's exact TreeSHAP values of :meth:`margin`.

        Returns
        -------
        values : ndarray of shape (n, n_features, n_outputs)
        base : ndarray of shape (n, n_outputs)
            ``base + values.sum(axis=1)`` equals :meth:`margin` (up to the
            library's float precision).
        """
        x = self._check_input(x)
        raw = np.asarray(self._contribs(x), dtype=np.float64)  # (n, F+1) or (n, K, F+1)
        if raw.ndim == 2:
            raw = raw[:, None, :]
        values, base = np.transpose(raw[:, :, :-1], (0, 2, 1)), raw[:, :, -1]  # (n, F, K), (n, K)
        if self.n_classes == 2 and values.shape[2] == 1:
            values, base = np.concatenate([-values, values], axis=2), np.concatenate([-base, base], axis=1)
        return values, base

    def _widen(self, m):
        if m.ndim == 1:
            m = m[:, None]
        if self.n_classes == 2 and m.shape[1] == 1:
            m = np.concatenate([-m, m], axis=1)
        return m

    def _to_output(self, raw):
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 1:
            raw = raw[:, None]
        if self.n_classes == 2 and raw.shape[1] == 1:  # P(class 1) only
            raw = np.concatenate([1.0 - raw, raw], axis=1)
        return raw

    def _margin(self, x):
        raise NotImplementedError

    def _contribs(self, x):
        raise NotImplementedError


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class XGBoostModel(BoosterModel):
    """An ``xgboost.Booster`` loaded from XGBoost's JSON or UBJSON model file."""

    library = "XGBoost"

    def __init__(self, native, fmt, fingerprint, card=None, name="model", *, config=None, n_features=None):
        super().__init__(native, fmt, fingerprint, card, name)
        learner = (config or {}).get("learner", {})
        self.objective = str(learner.get("objective", {}).get("name", ""))
        n_class = int(learner.get("learner_model_param", {}).get("num_class", "0") or 0)
        if self.objective.startswith(("binary:", "reg:logistic")) and self.objective != "reg:logistic":
            self.n_classes, self.link = 2, "logit"
        elif self.objective.startswith("multi:"):
            self.n_classes, self.link = max(n_class, 2), "softmax"
        elif self.objective in ("count:poisson", "reg:gamma", "reg:tweedie", "survival:cox"):
            self.link = "log"
        elif self.objective == "reg:logistic":
            self.link = "logit"
        self._features = list(native.feature_names) if native.feature_names else None
        self._n_features = n_features if n_features is not None else int(native.num_features())

    def _dmatrix(self, x):
        import xgboost as xgb

        types = self.native.feature_types
        categorical = bool(types) and "c" in types  # categories coded as numbers, as XGBoost trained on them
        return xgb.DMatrix(np.asarray(x, dtype=np.float32), feature_names=self.native.feature_names,
                           feature_types=types if categorical else None, enable_categorical=categorical,
                           missing=np.nan)

    def _raw_output(self, x):
        dm = self._dmatrix(x)
        if self.objective in ("binary:logistic", "multi:softprob") or self.n_classes == 0:
            return self.native.predict(dm)
        m = np.asarray(self.native.predict(dm, output_margin=True), dtype=np.float64)
        if self.n_classes == 2:
            return 1.0 / (1.0 + np.exp(-m))
        return _softmax(m.reshape(len(x), -1))

    def _margin(self, x):
        return self.native.predict(self._dmatrix(x), output_margin=True)

    def _contribs(self, x):
        return self.native.predict(self._dmatrix(x), pred_contribs=True)


class LightGBMModel(BoosterModel):
    """A ``lightgbm.Booster`` loaded from LightGBM's text model file."""

    library = "LightGBM"

    def __init__(self, native, fmt, fingerprint, card=None, name="model"):
        super().__init__(native, fmt, fingerprint, card, name)
        self.objective = str(native.params.get("objective", "") or _lgb_objective(native))
        head = self.objective.split()[0] if self.objective else ""
        if head == "binary":
            self.n_classes, self.link = 2, "logit"
        elif head in ("multiclass", "multiclassova", "softmax", "multiclass_ova", "ova", "ovr"):
            self.n_classes, self.link = max(int(native.num_model_per_iteration()), 2), "softmax"
        elif head in ("poisson", "gamma", "tweedie"):
            self.link = "log"
        elif head in ("cross_entropy", "xentropy", "cross_entropy_lambda", "xentlambda"):
            self.link = "logit"
        names = list(native.feature_name())
        self._features = None if names == [f"Column_{i}" for i in range(len(names))] else names
        self._n_features = int(native.num_feature())

    def _raw_output(self, x):
        return self.native.predict(np.asarray(x, dtype=np.float64))

    def _margin(self, x):
        return self.native.predict(np.asarray(x, dtype=np.float64), raw_score=True)

    def _contribs(self, x):
        raw = np.asarray(self.native.predict(np.asarray(x, dtype=np.float64), pred_contrib=True))
        k = self.n_classes if self.n_classes > 2 else 1
        return raw.reshape(len(x), k, -1)  # LightGBM lays classes side by side: (n, K * (F + 1))


def _category_text(value) -> str:
    """A categorical value as the string CatBoost hashes: whole floats without ``.0``, missing as ``"nan"``."""
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "nan"
        if float(value).is_integer():
            return str(int(value))
    if value is None:
        return "nan"
    return str(value)


def _lgb_objective(booster) -> str:
    for line in booster.model_to_string(num_iteration=0).splitlines()[:20]:
        if line.startswith("objective="):
            return line.split("=", 1)[1]
    return ""


class CatBoostModel(BoosterModel):
    """A CatBoost model loaded from its ``.cbm`` file, with numeric and categorical features.

    Categorical features (CatBoost's ``cat_features``, read from the file)
    take the data's text as it is: each value is handed to CatBoost as a
    string in a ``Pool`` carrying ``cat_features``, as CatBoost does at
    training time. Whole numbers read as floats (a CSV column of codes) are
    written without the ``.0`` and missing values as ``"nan"`` (CatBoost
    itself asks for missing categories to be converted to strings; pandas'
    ``astype(str)`` writes ``"nan"``). TreeSHAP (``get_feature_importance(
    type="ShapValues")``) then explains each categorical column as one
    feature.
    """

    library = "CatBoost"

    def __init__(self, native, fmt, fingerprint, card=None, name="model"):
        super().__init__(native, fmt, fingerprint, card, name)
        params = native.get_all_params()
        self.objective = str(params.get("loss_function", ""))
        head = self.objective.split(":")[0]
        classes = getattr(native, "classes_", None)
        if head in ("Logloss", "CrossEntropy"):
            self.n_classes, self.link = 2, "logit"
        elif head in ("MultiClass", "MultiClassOneVsAll"):
            self.n_classes, self.link = max(len(classes) if classes is not None else 0,
                                            int(native.get_params().get("classes_count") or 0), 2), "softmax"
        elif head in ("Poisson", "Tweedie"):
            self.link = "log"
        if self.n_classes and classes is not None and len(classes) == self.n_classes:
            self._classes = [str(c) for c in classes]
        names = list(native.feature_names_ or [])
        self._features = None if names == [str(i) for i in range(len(names))] else names
        self._n_features = len(names) or None
        self.categorical_indices = [int(i) for i in native.get_cat_feature_indices()]

    def _check_input(self, x) -> np.ndarray:
        if not self.categorical_indices:
            return super()._check_input(x)
        x = Model._check_input(self, x)
        if x.ndim != 2:
            raise StudioError(f"{self.library} models take a table (rows x features), got shape {x.shape}")
        if self._n_features is not None and x.shape[1] != self._n_features:
            raise StudioError(f"the model takes {self._n_features} features, the data has {x.shape[1]}")
        numeric = [j for j in range(x.shape[1]) if j not in self.categorical_indices]
        try:
            np.asarray(x[:, numeric], dtype=np.float64)
        except (TypeError, ValueError):
            raise StudioError("the CatBoost model's numeric features hold text; give it the columns it was trained "
                              "on, in order") from None
        return x

    def _pool(self, x):
        from catboost import Pool

        if not self.categorical_indices:
            return Pool(np.asarray(x, dtype=np.float64))
        import pandas as pd

        x = np.asarray(x, dtype=object)
        columns = {}
        for j in range(x.shape[1]):
            if j in self.categorical_indices:
                columns[j] = [_category_text(v) for v in x[:, j]]
            else:
                columns[j] = np.asarray(x[:, j], dtype=np.float64)
        frame = pd.DataFrame(columns)
        names = list(self.native.feature_names_ or [])
        if len(names) == frame.shape[1]:  # CatBoost checks a frame's column names against the file's
            frame.columns = names
        return Pool(frame, cat_features=self.categorical_indices)

    def _raw_output(self, x):
        if self.n_classes:
            return self.native.predict(self._pool(x), prediction_type="Probability")
        kind = "Exponent" if self.link == "log" else "RawFormulaVal"
        return self.native.predict(self._pool(x), prediction_type=kind)

    def _margin(self, x):
        return self.native.predict(self._pool(x), prediction_type="RawFormulaVal")

    def _contribs(self, x):
        return self.native.get_feature_importance(data=self._pool(x), type="ShapValues")
