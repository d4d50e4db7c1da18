"""Faithfulness of an attribution: deletion and insertion curves, infidelity, max-sensitivity.

- Deletion and insertion (Petsiuk, Das and Saenko 2018, RISE): remove (or insert) input units in the
  attribution's order of ``|attribution|`` and follow the model's output for the explained class; the area
  under the deletion curve is low and under the insertion curve high for a faithful attribution. Images are
  cut in ``patch`` x ``patch`` pixel squares (attribution summed over the square and the channels); tables one
  feature at a time. The same curves in a random order (seeded) are the baseline every method should beat.
- Infidelity (Yeh et al. 2019, ``captum.metrics.infidelity``): the expected squared error between
  ``I . attribution`` and ``f(x) - f(x - I)`` for Gaussian perturbations ``I``; forward-only, so any model.
- Max-sensitivity (Yeh et al. 2019, ``captum.metrics.sensitivity_max``): the largest relative change of the
  attribution under uniform input perturbations of a small radius; re-explains, so differentiable models only.

Everything calls the model through ``Model.output`` (and :func:`studio.explain`), so a sandboxed model is
measured exactly like an in-process one.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from studio.errors import StudioError

DEFAULTS = {
    "steps": 32,                      # images: units removed in this many equal chunks; tables: one feature a step
    "patch": 2,                       # images: square side in pixels
    "deletion_substrate": "zero",     # images: zero (black) | blur | mean; tables: always the reference
    "insertion_substrate": "blur",    # images: the canvas insertion starts from
    "blur_sigma_of_side": 0.125,      # blur substrate: Gaussian sigma = this x the image's longer side
    "random_orders": 3,               # random-order baseline: permutations per row, averaged
    "n_perturb_samples": 10,          # infidelity and sensitivity: perturbations per row
    "infidelity_sigma": 0.05,         # images: pixels; tables: x column std
    "sensitivity_radius": 0.02,       # images: pixels; tables: x column std
}


def settings(params: dict | None, kind: str, reference=None) -> dict:
    """The faithfulness settings in force (defaults overridden by ``params``), as stored in the provenance."""
    out = {**DEFAULTS, **(params or {})}
    unknown = set(out) - set(DEFAULTS)
    if unknown:
        raise StudioError(f"unknown faithfulness setting {sorted(unknown)[0]!r}; choose from {', '.join(DEFAULTS)}")
    for key in ("deletion_substrate", "insertion_substrate"):
        if out[key] not in ("zero", "blur", "mean"):
            raise StudioError(f"{key} must be zero, blur or mean, got {out[key]!r}")
    if kind == "tabular":
        out["reference"] = "background mean" if reference is None else [float(v) for v in np.ravel(reference)]
        for key in ("patch", "deletion_substrate", "insertion_substrate", "blur_sigma_of_side"):
            out.pop(key)
    return out


def _units(shape, patch: int) -> tuple[np.ndarray, int]:
    """Unit index of every pixel (patch x patch squares, row-major) and the number of units."""
    h, w = shape
    rows, cols = np.arange(h) // patch, np.arange(w) // patch
    n_cols = int(cols.max()) + 1
    return rows[:, None] * n_cols + cols[None, :], int(rows.max() + 1) * n_cols


def unit_scores(values: np.ndarray, kind: str, patch: int = 1) -> np.ndarray:
    """``|attribution|`` per unit: tables (n, n_features) as they are; images summed over channels and squares.

    Returns
    -------
    ndarray of shape (n, n_units)
    """
    a = np.abs(np.asarray(values, dtype=float))
    if kind == "tabular":
        return a.reshape(len(a), -1)
    a = a.reshape(a.shape[0], -1, a.shape[-2], a.shape[-1]).sum(axis=1)
    unit, n_units = _units(a.shape[1:], patch)
    out = np.zeros((len(a), n_units))
    for i in range(len(a)):
        out[i] = np.bincount(unit.ravel(), weights=a[i].ravel(), minlength=n_units)
    return out


def substrate(x: np.ndarray, kind: str, how: str, settings_: dict, reference=None) -> np.ndarray:
    """What a removed unit becomes: tables the reference row; images zero, the blurred image or its mean."""
    if kind == "tabular":
        return np.broadcast_to(np.asarray(reference, dtype=float), x.shape).astype(x.dtype)
    if how == "zero":
        return np.zeros_like(x)
    if how == "mean":
        return np.broadcast_to(x.mean(axis=(2, 3), keepdims=True), x.shape).astype(x.dtype)
    from scipy.ndimage import gaussian_filter

    s = settings_["blur_sigma_of_side"] * max(x.shape[-2:])
    return gaussian_filter(x, sigma=(0, 0, s, s), mode="nearest").astype(x.dtype)


def _score(model, out: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The explained output: the target class's probability, or the regression output."""
    return out[np.arange(len(out)), target] if model.is_classifier else out[:, 0]


def curves(model, x: np.ndarray, kind: str, orders: np.ndarray, target: np.ndarray, start: np.ndarray,
           end: np.ndarray, steps: int, patch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The model's score as units move from ``start`` to ``end`` in each row's order.

    Parameters
    ----------
    x : ndarray of shape (n, ...)
        Only its shape is used (images: the unit grid).
    orders : ndarray of int, shape (n, n_units)
        Units in the order they are moved.
    start, end : ndarray of x's shape
        Deletion: start = x, end = substrate; insertion: start = substrate, end = x.
    steps : int
        Images: chunks of units per curve (tables: every feature is a step).

    Returns
    -------
    fractions : ndarray of shape (n_steps + 1,)
        Share of units moved, from 0 to 1.
    scores : ndarray of shape (n, n_steps + 1)
    """
    n, n_units = orders.shape
    chunks = np.array_split(np.arange(n_units), n_units if kind == "tabular" else min(steps, n_units))
    fractions = np.array([0.0] + [float(c[-1] + 1) / n_units for c in chunks])
    unit = None if kind == "tabular" else _units(x.shape[-2:], patch)[0]
    batch = []
    for i in range(n):
        moved = np.zeros(n_units, dtype=bool)
        frames = [start[i]]
        for c in chunks:
            moved[orders[i, c]] = True
            mask = moved if unit is None else moved[unit][None, :, :]
            frames.append(np.where(mask, end[i], start[i]))
        batch.append(np.stack(frames))
    flat = np.concatenate(batch).astype(x.dtype)
    out = model.output(flat)
    scores = _score(model, out, np.repeat(np.asarray(target), len(fractions))).reshape(n, len(fractions))
    return fractions, scores


def auc(fractions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Area under each curve by the trapezoid rule over the share of units moved in [0, 1]."""
    return np.trapezoid(scores, fractions, axis=-1)


def random_orders(n: int, n_units: int, seed: int, count: int) -> list:
    """``count`` random unit orders per row, from ``default_rng([seed, crc32('random-order'), k])``."""
    out = []
    for k in range(count):
        rng = np.random.default_rng([int(seed), zlib.crc32(b"random-order"), k])
        out.append(np.stack([rng.permutation(n_units) for _ in range(n)]))
    return out


def deletion_insertion(model, x, values, kind, target, settings_, reference=None, orders=None):
    """Deletion and insertion curves of one attribution (or of given ``orders``) on rows ``x``.

    Returns
    -------
    dict
        ``fractions`` (n_steps + 1,), ``deletion`` and ``insertion`` (n, n_steps + 1) scores,
        ``deletion_auc`` and ``insertion_auc`` (n,).
    """
    patch = int(settings_.get("patch", 1))
    if orders is None:
        orders = np.argsort(-unit_scores(values, kind, patch), axis=1, kind="stable")
    gone = substrate(x, kind, settings_.get("deletion_substrate"), settings_, reference)
    canvas = substrate(x, kind, settings_.get("insertion_substrate"), settings_, reference)
    fr, dele = curves(model, x, kind, orders, target, x, gone, settings_["steps"], patch)
    _, ins = curves(model, x, kind, orders, target, canvas, x, settings_["steps"], patch)
    return {"fractions": fr, "deletion": dele, "insertion": ins, "deletion_auc": auc(fr, dele),
            "insertion_auc": auc(fr, ins)}


def _torch_output(model):
    """``f(t)``: a tensor batch through ``Model.output`` (works for any model, sandboxed or not)."""
    import torch

    def forward(t):
        return torch.as_tensor(model.output(t.detach().cpu().numpy()))

    return forward


def infidelity(model, x, values, kind, target, sigma: float, n_samples: int, seed: int, scale=None) -> np.ndarray:
    """Captum's infidelity per row (``captum.metrics.infidelity``, ``normalize=True``).

    Perturbations ``I ~ N(0, sigma^2)`` per input value (tables: sigma x each column's std), drawn from a
    ``torch.Generator`` seeded with ``seed``; the model is called through ``Model.output``.

    Parameters
    ----------
    values : ndarray broadcastable to x's shape (signed attributions; a one-channel map is repeated over channels)
    target : ndarray of int, shape (n,)

    Returns
    -------
    ndarray of shape (n,)
    """
    import torch
    from captum.metrics import infidelity as captum_infidelity

    x = np.asarray(x)
    try:
        attr = np.broadcast_to(np.asarray(values, dtype=np.float64), x.shape)
    except ValueError:
        raise StudioError(f"an attribution of shape {np.shape(values)[1:]} does not match inputs of shape "
                          f"{x.shape[1:]}; infidelity needs one value per input value") from None
    gen = torch.Generator().manual_seed(int(seed))
    std = torch.as_tensor(sigma * (np.ones(x.shape[1:]) if scale is None else np.asarray(scale)),
                          dtype=torch.float64)

    def perturb(inputs):
        noise = torch.randn(inputs.shape, generator=gen, dtype=torch.float64) * std
        return noise, inputs - noise

    got = captum_infidelity(_torch_output(model), perturb, torch.as_tensor(x, dtype=torch.float64),
                            torch.as_tensor(np.array(attr)),
                            target=torch.as_tensor(np.asarray(target, dtype=np.int64)),
                            n_perturb_samples=int(n_samples), normalize=True)
    return got.detach().cpu().numpy().astype(float)


def appended(data, x_new: np.ndarray):
    """``data`` with rows ``x_new`` appended after its own (methods keep drawing backgrounds from ``data``)."""
    x = np.concatenate([data.x, np.asarray(x_new, dtype=data.x.dtype)])
    frame = None
    if data.frame is not None:
        import pandas as pd

        frame = pd.DataFrame(x, columns=list(data.frame.columns))
    y = None if data.y is None else np.concatenate([data.y, np.resize(data.y, len(x_new))])
    names = None if data.names is None else list(data.names) + [f"perturbed-{i}" for i in range(len(x_new))]
    return dataclasses.replace(data, x=x, y=y, frame=frame, names=names, _fingerprint=None, _checked_for=None)


def sensitivity(model, data, x, clean_values, method, params, radius: float, n_samples: int, seed: int,
                scale=None) -> np.ndarray:
    """Captum's max-sensitivity per row (``captum.metrics.sensitivity_max``, Frobenius norm).

    Perturbations are uniform in [-radius, radius] per input value (tables: radius x column std), from a
    ``torch.Generator`` seeded with ``seed``; every perturbed copy is explained by :func:`studio.explain` with
    the same method and parameters (its own predicted class), appended to ``data``.

    Returns
    -------
    ndarray of shape (n,)
    """
    import torch
    from captum.metrics import sensitivity_max

    import studio

    x = np.asarray(x)
    gen = torch.Generator().manual_seed(int(seed))
    r = torch.as_tensor(radius * (np.ones(x.shape[1:]) if scale is None else np.asarray(scale)), dtype=torch.float32)
    clean_t = torch.as_tensor(np.asarray(clean_values, dtype=np.float32))
    x_t = torch.as_tensor(x, dtype=torch.float32)

    def perturb(inputs):
        return inputs + (torch.rand(inputs.shape, generator=gen) * 2 - 1) * r

    def explanation(inputs):
        if isinstance(inputs, tuple):  # captum passes the clean inputs as a 1-tuple
            return (explanation(inputs[0]),)
        if inputs.shape == x_t.shape and torch.equal(inputs, x_t):
            return clean_t  # the clean rows' explanation, already computed
        xs = inputs.detach().cpu().numpy()
        pdata = appended(data, xs)
        rows = list(range(len(data), len(data) + len(xs)))
        with torch.enable_grad():  # sensitivity_max calls this under no_grad; gradient methods need it back
            exp = studio.explain(model, pdata, method, rows=rows, params=params, cache=False)
        return torch.as_tensor(np.asarray(exp.values, dtype=np.float32))

    got = sensitivity_max(explanation, x_t, perturb_func=perturb, n_perturb_samples=int(n_samples))
    return got.detach().cpu().numpy().astype(float)
