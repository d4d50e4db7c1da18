"""Capture one layer's output for a set of rows, reduce it to one number per neuron, and summarise it.

After ActiVis (Kahng et al., "ActiVis: Visual Exploration of Industry-Scale
Deep Neural Network Models", IEEE VAST 2017): a layer's neurons as columns,
instances, subsets and classes as rows (their mean activation), neurons
sorted by the difference between two rows, and a 2-D projection of the
instances' activations.

Layers are reached with forward hooks on eager modules and on the eager view
of scripted chains (:func:`studio.explainers.cam.layer_view`); other scripted
modules through their TorchScript graph rewritten to also return the layer's
output (as Grad-CAM does); ``torch.export`` programs through
:class:`torch.fx.Interpreter`, by fx node name.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from studio.errors import StudioError
from studio.activations.graph import SCHEMA

REDUCTIONS = ("mean", "max")
PROJECTIONS = ("pca", "tsne", "umap")
MAX_PROJECTED = 5000
"""At most this many rows are projected (a seeded sample of them beyond)."""


@dataclass
class Projection:
    """A 2-D projection of rows' activations.

    Attributes
    ----------
    xy : ndarray of shape (n_points, 2)
    rows : ndarray of shape (n_points,)
        Dataset row of each point.
    index : ndarray of shape (n_points,)
        Position of each point in the :class:`Activations` matrix.
    method : {"pca", "tsne", "umap"}
    """

    xy: np.ndarray
    rows: np.ndarray
    index: np.ndarray
    method: str


@dataclass
class Activations:
    """One layer's activations for a set of rows (see :func:`activations`).

    Attributes
    ----------
    matrix : ndarray of shape (n_rows, n_neurons), float32
        Each row's activation of each neuron, after ``reduction``.
    rows : ndarray of shape (n_rows,), int64
        Dataset rows, in matrix order.
    layer : str
    neuron_names : list of str
        ``ch0``... for channels of a convolution, ``n0``... otherwise.
    reduction : str
        How each neuron's output became one number (``"none"``,
        ``"spatial mean over 8x8"``, ``"spatial max over 8x8"``, ...).
    layer_shape : list of int
        The layer's output shape for one row, before the reduction.
    peak : ndarray of shape (n_neurons,), float32
        Largest activation of each neuron over the rows and every spatial
        position (before the reduction).
    labels, predictions : list or None
        Class names (classifiers) or values (regression), one per row.
    notes : list of str
    groups : dict or None
        The groups asked for at capture (:func:`activations` ``groups=``):
        ``{"names": [...], "means": ndarray (n_groups, n_neurons), "counts": ndarray (n_groups,)}``.
    cache : str
        ``"hit"`` when read from the studio cache, ``"miss"`` when computed.
    """

    matrix: np.ndarray
    rows: np.ndarray
    layer: str
    neuron_names: list
    reduction: str
    layer_shape: list
    peak: np.ndarray
    labels: list | None = None
    predictions: list | None = None
    notes: list = field(default_factory=list)
    groups: dict | None = None
    cache: str = ""

    @property
    def dead(self) -> np.ndarray:
        """Bool mask (n_neurons,): neurons never > 0 on these rows, at any position."""
        return ~(self.peak > 0)

    @property
    def n_dead(self) -> int:
        return int(self.dead.sum())

    @property
    def correct(self) -> np.ndarray | None:
        """Bool (n_rows,): label equals prediction (classifiers with labels), else None."""
        if self.labels is None or self.predictions is None or not all(isinstance(p, str) for p in self.predictions):
            return None
        return np.asarray([str(a) == str(b) for a, b in zip(self.labels, self.predictions)])

    def mask(self, rows) -> np.ndarray:
        """Bool (n_rows,) selecting the given dataset rows (a bool mask passes through)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (len(self.rows),):
                raise StudioError(f"a row mask needs {len(self.rows)} entries, got {rows.shape}")
            return rows
        return np.isin(self.rows, rows.astype(np.int64))

    def groups_by(self, by: str) -> dict:
        """Masks of the rows per ``"label"``, ``"prediction"`` or ``"correct"`` (``"correct"`` / ``"misclassified"``)."""
        if by == "correct":
            correct = self.correct
            if correct is None:
                raise StudioError("grouping by correctness needs a classifier and labels in the data")
            return {"correct": correct, "misclassified": ~correct}
        values = {"label": self.labels, "prediction": self.predictions}.get(by, "?")
        if values == "?":
            raise StudioError(f"group by 'label', 'prediction' or 'correct', not {by!r}")
        if values is None:
            raise StudioError(f"grouping by {by} needs {'labels in the data' if by == 'label' else 'predictions'}")
        values = np.asarray([str(v) for v in values], dtype=object)
        return {str(v): values == v for v in dict.fromkeys(values)}

    def group_means(self, groups: dict) -> tuple:
        """Mean activation of each neuron in each group.

        Parameters
        ----------
        groups : dict of str to (bool mask or list of dataset rows)

        Returns
        -------
        names : list of str
        means : ndarray of shape (n_groups, n_neurons)
            NaN for an empty group.
        counts : ndarray of shape (n_groups,)
        """
        names, means, counts = [], [], []
        for name, rows in groups.items():
            m = self.mask(rows)
            names.append(str(name))
            counts.append(int(m.sum()))
            means.append(self.matrix[m].mean(axis=0) if m.any() else np.full(self.matrix.shape[1], np.nan))
        return names, np.asarray(means, dtype=np.float64).reshape(len(names), -1), np.asarray(counts)

    def group_summary(self, groups: dict) -> dict:
        """:meth:`group_means` as the dict kept in :attr:`groups`."""
        names, means, counts = self.group_means(groups)
        return {"names": names, "means": means, "counts": counts}

    def order_by_difference(self, a, b) -> tuple:
        """Neurons ordered by how differently they respond to two groups.

        Parameters
        ----------
        a, b : bool mask or list of dataset rows

        Returns
        -------
        order : ndarray of shape (n_neurons,)
            Neuron indices, largest ``|mean_a - mean_b|`` first (ties by index).
        difference : ndarray of shape (n_neurons,)
            ``mean_a - mean_b`` per neuron (signed, in neuron order, not sorted).
        """
        _, means, counts = self.group_means({"a": a, "b": b})
        if counts.min() == 0:
            raise StudioError("both groups need at least one row to compare them")
        diff = means[0] - means[1]
        return np.argsort(-np.abs(diff), kind="stable"), diff

    def project(self, method: str = "pca", seed: int = 0, max_points: int = MAX_PROJECTED) -> Projection:
        """2-D projection of the rows' activations.

        Parameters
        ----------
        method : {"pca", "tsne", "umap"}
            scikit-learn's PCA (default); t-SNE by openTSNE (Poličar et al.
            2019); UMAP by umap-learn (McInnes et al. 2018).
        seed : int
            Seeds the sample of rows and the method.
        max_points : int
            At most this many rows are projected (a seeded uniform sample, in row order).

        Returns
        -------
        Projection
        """
        if method not in PROJECTIONS:
            raise StudioError(f"projection {method!r} is unknown; use one of {', '.join(PROJECTIONS)}")
        n = len(self.matrix)
        index = np.arange(n)
        if n > max_points:
            index = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
        x = np.asarray(self.matrix[index], dtype=np.float64)
        if len(x) < 3:
            raise StudioError("a projection needs at least 3 rows")
        xy = project_matrix(x, method, seed)
        return Projection(xy, self.rows[index], index, method)

    # ---- writing -----------------------------------------------------------------------------
    def to_dict(self, model=None, data=None) -> dict:
        """Schema ``studio.activations/1`` (``kind: "activations"``); see docs/activations.md."""
        out = {"schema": SCHEMA, "kind": "activations"}
        if model is not None:
            out["model"] = {"id": model.fingerprint, "format": model.format, "name": model.name}
        if data is not None:
            out["dataset"] = {"id": data.fingerprint, "name": data.name}
        out.update(self._meta())
        out["values"] = self.matrix.tolist()
        out["peak"] = self.peak.tolist()
        out["dead"] = np.flatnonzero(self.dead).tolist()
        out["n_dead"] = self.n_dead
        if self.groups is not None:
            out["groups"] = _groups_json(self.groups)
        return out

    def to_json(self, model=None, data=None, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(model, data), indent=indent)

    def _meta(self) -> dict:
        return {"layer": self.layer, "reduction": self.reduction, "layer_shape": list(self.layer_shape),
                "rows": self.rows.tolist(), "neuron_names": list(self.neuron_names),
                "labels": _plain(self.labels), "predictions": _plain(self.predictions), "notes": list(self.notes)}

    def to_wire(self) -> tuple:
        """(JSON header, .npy parts) for the sandbox protocol."""
        return self._meta(), {"values": np.ascontiguousarray(self.matrix), "peak": np.ascontiguousarray(self.peak)}

    @classmethod
    def from_wire(cls, meta: dict, parts: dict) -> "Activations":
        matrix = np.asarray(parts["values"], dtype=np.float32)
        peak = np.asarray(parts["peak"], dtype=np.float32)
        rows = np.asarray(meta["rows"], dtype=np.int64)
        if matrix.ndim != 2 or matrix.shape != (len(rows), len(meta["neuron_names"])) or peak.shape != (matrix.shape[1],):
            raise StudioError("the model's worker sent back activations of inconsistent shapes")
        return cls(matrix, rows, str(meta["layer"]), list(meta["neuron_names"]), str(meta["reduction"]),
                   list(meta["layer_shape"]), peak, meta.get("labels"), meta.get("predictions"), list(meta.get("notes") or []),
                   _groups_read(meta.get("groups")))

    @classmethod
    def from_dict(cls, d: dict) -> "Activations":
        if d.get("schema") != SCHEMA or d.get("kind") != "activations":
            raise StudioError(f"not a {SCHEMA} activations result (schema {d.get('schema')!r}, kind {d.get('kind')!r})")
        n = len(d["neuron_names"])
        matrix = np.asarray(d["values"], dtype=np.float32).reshape(-1, n)
        return cls.from_wire(d, {"values": matrix, "peak": np.asarray(d["peak"], dtype=np.float32)})


def _groups_json(groups: dict) -> dict:
    """Group means as JSON (an empty group's NaN means become null)."""
    means = np.asarray(groups["means"], dtype=np.float64)
    return {"names": list(groups["names"]), "counts": [int(c) for c in groups["counts"]],
            "means": [[None if not np.isfinite(v) else float(v) for v in row] for row in means]}


def _groups_read(d):
    if d is None:
        return None
    means = np.asarray([[np.nan if v is None else v for v in row] for row in d["means"]], dtype=np.float64)
    return {"names": list(d["names"]), "means": means.reshape(len(d["names"]), -1),
            "counts": np.asarray(d["counts"], dtype=np.int64)}


def _plain(values):
    if values is None:
        return None
    return [v.item() if hasattr(v, "item") else v for v in values]


def project_matrix(x: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D embedding of the rows of ``x`` (n, k): PCA, t-SNE (openTSNE) or UMAP (umap-learn); (n, 2) float64."""
    n, k = x.shape
    if method == "pca":
        from sklearn.decomposition import PCA

        comps = min(2, n, k)
        xy = PCA(n_components=comps, random_state=seed).fit_transform(x)
    elif method == "tsne":
        try:
            from openTSNE import TSNE
        except ImportError:
            raise StudioError("t-SNE needs openTSNE; pip install openTSNE (see requirements.txt)") from None
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
        xy = np.asarray(TSNE(n_components=2, perplexity=perplexity, random_state=seed, n_jobs=1).fit(x))
    else:
        try:
            import umap
        except ImportError:
            raise StudioError("UMAP needs umap-learn; pip install umap-learn (see requirements.txt)") from None
        xy = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed).fit_transform(x)
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((n, 2 - xy.shape[1]))])
    return xy


# ---- capture ----------------------------------------------------------------------------------------------
CAPTURE_VERSION = 2
"""Part of the cache key: bumped when what a capture returns changes."""


def activations(model, data, layer: str, rows=None, groups=None, reduce: str = "mean", batch_size: int | None = None,
                cache=True) -> Activations:
    """One layer's activations for rows of ``data``, from the studio cache when computed before.

    Parameters
    ----------
    model : Model
        A torch model, or an ONNX model (captured by onnxruntime, see
        :func:`onnx_capture`). A sandboxed model (``model.remote``) captures
        in its worker; the cache stays in this process.
    data : Dataset
        Aligned to the model.
    layer : str
        A name from :attr:`studio.activations.Graph.layers` (module path such
        as ``layer1.0.conv1``; fx node names for ``torch.export`` programs;
        ONNX value names).
    rows : list of int, optional
        Dataset rows; default every row.
    groups : {"label", "prediction", "correct"} or dict, optional
        Groups whose mean activation is kept in the result
        (:attr:`Activations.groups`): a grouping of :meth:`Activations.groups_by`,
        or names mapped to dataset rows.
    reduce : {"mean", "max"}
        How a convolution channel's (C, H, W) map becomes one number: its
        spatial mean (default) or max. 2-D outputs are taken as they are.
    batch_size : int, optional
        Rows per forward pass; default 64 for images, 4096 for tables.
    cache : bool or Cache
        True uses the default disk cache (:class:`studio.cache.Cache`),
        keyed by the model's cache id, the data's fingerprint, the layer,
        rows, groups and reduction; the per-row matrix is kept as a
        memory-mapped ``.npy`` file. A hit runs no model call. False
        computes afresh.

    Returns
    -------
    Activations
        ``cache`` says ``"hit"`` or ``"miss"``.

    Raises
    ------
    StudioError
        For a model without layers, an unknown layer, a layer never called,
        or rows out of range.
    """
    if reduce not in REDUCTIONS:
        raise StudioError(f"reduce must be one of {', '.join(REDUCTIONS)}, not {reduce!r}")
    n = len(data)
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(list(rows), dtype=np.int64).reshape(-1)
    if len(rows) == 0:
        raise StudioError("pick at least one row")
    if rows.min() < 0 or rows.max() >= n:
        raise StudioError(f"rows must be between 0 and {n - 1}")
    spec = _groups_spec(groups)
    from studio.activations import store

    key = store.activations_key(model, data, layer, rows, spec, reduce) if cache else None
    if key is not None:
        hit = store.get_activations(cache, key)
        if hit is not None:
            return hit
    act = _capture(model, data, str(layer), rows, reduce, batch_size)
    if spec is not None:
        act.groups = act.group_summary(act.groups_by(spec) if isinstance(spec, str) else spec)
    act.cache = "miss"
    if key is not None:
        store.put_activations(cache, key, act, model, data)
    return act


def _groups_spec(groups):
    """Groups as a grouping name or ``{name: sorted dataset rows}`` (the cache key's form)."""
    if groups is None or isinstance(groups, str):
        if groups is not None and groups not in ("label", "prediction", "correct"):
            raise StudioError(f"group by 'label', 'prediction' or 'correct', not {groups!r}")
        return groups
    if not isinstance(groups, dict):
        raise StudioError("groups must be 'label', 'prediction', 'correct' or a dict of names to dataset rows")
    out = {}
    for name, members in groups.items():
        m = np.asarray(members)
        if m.dtype == bool:
            raise StudioError(f"group {name!r}: give dataset rows, not a mask (a mask depends on the rows captured)")
        out[str(name)] = sorted(int(r) for r in m.reshape(-1))
    return out


def _capture(model, data, layer: str, rows: np.ndarray, reduce: str, batch_size: int | None) -> Activations:
    """The capture itself (no cache): in the sandbox worker, by onnxruntime, or by forward hooks here."""
    if getattr(model, "remote", False):
        return model.activations(data, layer, rows=rows, reduce=reduce, batch_size=batch_size)
    if model.format == "onnx":
        from studio.activations.onnx_capture import onnx_activations

        return onnx_activations(model, data, layer, rows, reduce, batch_size)
    if not getattr(model, "differentiable", False) or not hasattr(model, "torch_module"):
        raise StudioError(f"{model.name!r} is a {model.format} model; activations are captured for torch and ONNX "
                          "models only")
    import torch

    bs = int(batch_size or default_batch(data))
    tap = _Tap(model, layer, reduce)
    matrix = peaks = None
    outs = []
    contiguous = bool(np.all(np.diff(rows) == 1))
    try:
        with torch.inference_mode(), capture_threads():
            for start in range(0, len(rows), bs):
                if contiguous:  # a slice: no gather copy
                    xb = data.x[rows[start] : rows[start] + min(bs, len(rows) - start)]
                else:
                    xb = data.x[rows[start : start + bs]]
                xb = np.asarray(xb, dtype=np.float32)
                x = torch.as_tensor(xb if xb.flags.writeable else xb.copy(), device=model.device)
                out = tap.module(x)
                if tap.value is None:
                    raise StudioError(f"layer {layer!r} was not called in the forward pass; pick another layer")
                reduced, peak = tap.value
                if matrix is None:
                    matrix = np.empty((len(rows), reduced.shape[1]), dtype=np.float32)
                matrix[start : start + len(reduced)] = reduced.cpu().numpy()
                peaks = peak if peaks is None else torch.maximum(peaks, peak)
                outs.append(out.cpu().numpy())
                tap.value = None
    finally:
        tap.close()
    return finish(model, data, rows, matrix, peaks.cpu().numpy(), np.concatenate(outs), tap.name, tap.shape, reduce,
                  tap.notes)


@contextlib.contextmanager
def capture_threads():
    """torch's intra-op threads for a capture: ``$STUDIO_CAPTURE_THREADS`` (default 1; 0 keeps torch's own).

    Measured on 2 shared cores (benchmarks section "activations"): with the
    machine loaded, two threads were over 10 times slower than one (each
    batch waits for the busier core); idle, two threads gain little on a
    model this small. Restored afterwards.
    """
    import torch

    try:
        wanted = int(os.environ.get("STUDIO_CAPTURE_THREADS", "1"))
    except ValueError:
        wanted = 1
    before = torch.get_num_threads()
    if wanted > 0 and wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def default_batch(data) -> int:
    """Rows per forward pass: 64 images (fits the cache of one core best here), 4096 table rows."""
    return 64 if np.ndim(data.x) == 4 else 4096


def finish(model, data, rows, matrix, peak, raw_out, layer, shape, reduce, notes) -> Activations:
    """An :class:`Activations` from a capture: predictions from the model's raw outputs, labels, names, reduction."""
    output = model._to_output(raw_out)
    model._n_outputs = output.shape[1]  # as Model.output does: class names may come from the output's width
    if model.is_classifier:
        names = model.class_names or [str(i) for i in range(output.shape[1])]
        predictions = [str(names[i]) for i in output.argmax(axis=1)]
    else:
        predictions = [float(v) for v in output[:, 0]]
    labels = None
    if data.y is not None:
        if model.is_classifier:
            from studio.evaluation import label_names

            try:
                labels = [str(v) for v in label_names(model, data)[rows]]
            except StudioError as exc:
                labels = [str(v) for v in np.asarray(data.y)[rows]]
                notes.append(f"labels kept as in the data: {exc}")
        else:
            labels = [float(v) for v in np.asarray(data.y, dtype=float)[rows]]
    shape = list(shape)
    prefix = "ch" if len(shape) == 3 else "n"
    if len(shape) == 1:
        reduction = "none"
    elif len(shape) == 3:
        reduction = f"spatial {reduce} over {shape[1]}x{shape[2]}"
    else:
        reduction = f"{reduce} over the last {len(shape) - 1} axes ({'x'.join(map(str, shape[1:]))})"
    return Activations(matrix, np.asarray(rows, dtype=np.int64), layer, [f"{prefix}{k}" for k in range(matrix.shape[1])],
                       reduction, shape, np.asarray(peak, dtype=np.float32), labels, predictions, list(notes))


def dead_neurons(model, data, rows=None, batch_size: int | None = None) -> dict:
    """Dead neurons of every hookable layer in one pass: ``{layer: (n_dead, n_neurons)}``.

    A neuron (a channel of a convolution's output, a unit of a linear one) is
    dead when it is never above 0 on the rows, at any position (as
    :attr:`Activations.dead`). Covers the layers forward hooks reach (eager
    modules, scripted chains); other scripted graphs and ``torch.export``
    programs give ``{}`` (capture one layer with :func:`activations` instead).

    Parameters
    ----------
    model : Model
        A torch model; a sandboxed one counts in its worker.
    data : Dataset
    rows : list of int, optional
        Default every row.
    batch_size : int, optional
        Default 64 images, 4096 table rows.

    Returns
    -------
    dict of str to (int, int)
        In layer order.
    """
    if getattr(model, "remote", False):
        return model.dead_neurons(data, rows=rows, batch_size=batch_size)
    if not getattr(model, "differentiable", False) or not hasattr(model, "torch_module"):
        raise StudioError(f"{model.name!r} is a {model.format} model; activations are captured for torch models only")
    from studio.explainers.cam import _is_chain, _is_script, layer_view, layers

    net = model.native
    if model.format == "torch_export" or (_is_script(net) and not _is_chain(net)):
        return {}
    import torch

    view = layer_view(net)
    found = layers(view) if view is not net else dict(view.named_modules())
    leaves = {n: m for n, m in found.items() if n and (type(m).__name__ == "ScriptedLayer" or not list(m.children()))}
    peaks: dict = {}

    def hook(name):
        def fn(mod, inputs, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            if not isinstance(output, torch.Tensor) or output.ndim < 1:
                return
            t = output.detach()
            t = t.reshape(len(t), 1) if t.ndim < 2 else t
            peak = t.reshape(t.shape[0], t.shape[1], -1).float().amax(dim=(0, 2))
            peaks[name] = peak if name not in peaks else torch.maximum(peaks[name], peak)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves.items()]
    module = model.torch_module_over(view, "raw") if view is not net else model.torch_module("raw")
    x_all = data.x if rows is None else data.x[np.asarray(list(rows), dtype=np.int64)]
    bs = int(batch_size or default_batch(data))
    try:
        with torch.inference_mode(), capture_threads():
            for start in range(0, len(x_all), bs):
                xb = np.asarray(x_all[start : start + bs], dtype=np.float32)
                module(torch.as_tensor(xb if xb.flags.writeable else xb.copy(), device=model.device))
    finally:
        for h in handles:
            h.remove()
    return {name: (int((peaks[name] <= 0).sum()), int(peaks[name].numel())) for name in leaves if name in peaks}


class _Tap:
    """The model wrapped so that one forward call also leaves the layer's reduced output in ``value``."""

    def __init__(self, model, layer: str, reduce: str):
        from studio.explainers.cam import _is_chain, _is_script, layer_view, layers

        self.value = None
        self.shape = None
        self.reduce = reduce
        self.notes = []
        self._close = lambda: None
        net = model.native
        if not layer:
            raise StudioError("name a layer (see studio.graph(model).layers)")
        if model.format == "torch_export":
            self.name = layer
            self.module = model.torch_module_over(_interpreter_net(net, layer, self.store), "raw")
            return
        if _is_script(net) and not _is_chain(net):
            self.name = layer
            self.module = model.torch_module_over(_script_net(net, layer, self.store), "raw")
            return
        view = layer_view(net)
        found = layers(view) if view is not net else dict(view.named_modules())
        if layer not in found:
            known = [k for k in found if k]
            raise StudioError(f"layer {layer!r} not found; layers: {', '.join(known[:40])}")
        self.name = layer
        calls = []

        def hook(mod, inputs, output):
            calls.append(1)
            self.store(output)

        handle = found[layer].register_forward_hook(hook)
        self._close = handle.remove
        self._calls = calls
        self.module = model.torch_module_over(view, "raw") if view is not net else model.torch_module("raw")

    def store(self, output) -> None:
        """Reduce the layer's output at once (on its device), so in-place ops after the layer cannot change it."""
        import torch

        if isinstance(output, (tuple, list)):
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise StudioError("the layer returns no tensor; pick another layer")
        t = output.detach()
        if t.ndim < 2:
            t = t.reshape(len(t), 1)
        self.shape = list(t.shape[1:])
        if t.ndim == 2:
            reduced = t.float().clone()  # a later in-place op must not change it
            peak = reduced.amax(dim=0)
        else:
            flat = t.reshape(t.shape[0], t.shape[1], -1).float()  # (n, k, positions)
            row_max = flat.amax(dim=2)
            reduced = row_max if self.reduce == "max" else flat.mean(dim=2)
            peak = row_max.amax(dim=0)
        self.value = (reduced, peak)

    def close(self) -> None:
        self._close()


def _script_net(net, layer: str, store):
    """An eager module running the scripted graph rewritten to return ``layer``'s output too."""
    from torch import nn

    from studio.activations.graph import script_ops, tap_script

    try:
        graph, ops = script_ops(net)
    except Exception as exc:  # noqa: BLE001
        raise StudioError(f"the TorchScript graph of the model could not be read ({type(exc).__name__})") from None
    names = [o[0] for o in ops]
    if layer not in names:
        raise StudioError(f"layer {layer!r} not found in the scripted graph; layers: {', '.join(names[:40])}")
    fn = tap_script(net, graph, [ops[names.index(layer)][4]])

    class Tapped(nn.Module):
        def forward(self, x):
            out, value = fn(x)
            store(value)
            return out

    return Tapped()


def _interpreter_net(gm, layer: str, store):
    """An eager module running a ``torch.export`` graph node by node, keeping fx node ``layer``'s output."""
    from torch import fx, nn

    names = [n.name for n in gm.graph.nodes if n.op == "call_function"]
    if layer not in names:
        raise StudioError(f"layer {layer!r} not found among the program's nodes; nodes: {', '.join(names[:40])}")

    class Capture(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if n.name == layer:
                store(result)
            return result

    class Run(nn.Module):
        def forward(self, x):
            return Capture(gm).run(x)

    return Run()
