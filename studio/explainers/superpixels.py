"""Perturbation methods for images: occlusion, superpixel ablation, LIME,
anchors and SHAP.

They only need the model's outputs, so they run on ONNX image models too.
Shared here: superpixels (:func:`superpixels`: SLIC with ``sigma=1``, as
many as the image size calls for, checked, and a regular grid where SLIC
fails or cuts across the image's edges; ``checks["grid_rows"]`` counts
the rows cut into the grid), reference images for hidden regions, and
batched masking. For torch models images are masked and evaluated on the
model's device; for other models through ``model.output`` on the CPU.

A hidden superpixel takes the pixels of the reference image named by the
``baseline`` parameter (black, a blurred copy, or the image's mean), the
same way in every method here, so their maps are comparable.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError
from studio.explainers.base import Cost, Explainer, batched
from studio.explainers.gradients import explained_output, image_baseline, rows_per_batch, target_list
from studio.explainers.params import Param, ParamSpec
from studio.explanation import Explanation, Rule

BASELINES = ("blurred", "black", "mean")
_SEED = Param("seed", "int", 0, "Random seed.", low=0)
_BASELINE = Param("baseline", "str", "blurred", "What hidden regions show: a blurred copy, black, or the image mean.",
                  choices=BASELINES)
_N_SEGMENTS = Param("n_segments", "int", 0, "Superpixels wanted (SLIC may return a few more or fewer); 0: from the "
                    "image size, one per 64 pixels, between 9 and 64.", low=0, high=2000)
_SEGMENTATION = Param("segmentation", "str", "auto", "Superpixels: SLIC (follows edges), a grid of squares, or auto: SLIC "
                      "when its superpixels are more uniform than grid cells, else the grid. SLIC falls back to the grid "
                      "when it returns fewer than half the superpixels wanted.", choices=("auto", "slic", "grid"))
_COMPACTNESS = Param("compactness", "float", 0.3, "SLIC compactness (pixel values in [0, 1]): higher gives squarer "
                     "superpixels.", low=1e-4, high=1000)


# ---- shared code ------------------------------------------------------------------------
def segments_for(h: int, w: int) -> int:
    """Superpixels for an image of h x w pixels: one per 64 pixels (8 x 8), between 9 and 64.

    Small images get cells big enough to hide something (a 32 x 32 image: 16
    cells of 8 x 8); large ones no more than 64, so LIME and anchors keep
    enough samples per superpixel at their default sample counts.
    """
    return int(np.clip(round(h * w / 64), 9, 64))


def grid_segments(h: int, w: int, n_segments: int) -> np.ndarray:
    """Square cells of side round(sqrt(H * W / n)) from the top-left corner, shape (H, W), int64."""
    side = max(1, int(round(np.sqrt(h * w / n_segments))))
    rows, cols = np.arange(h)[:, None] // side, np.arange(w)[None, :] // side
    return (rows * (int(cols.max()) + 1) + cols).astype(np.int64)


def _within_ss(values: np.ndarray, labels: np.ndarray) -> float:
    """Sum over segments of squared deviations from the segment's mean colour; values (H, W, C)."""
    flat = values.reshape(-1, values.shape[-1])
    lab = labels.ravel()
    count = np.bincount(lab).astype(np.float64)
    total = 0.0
    for c in range(flat.shape[1]):
        s1 = np.bincount(lab, weights=flat[:, c])
        s2 = np.bincount(lab, weights=flat[:, c] ** 2)
        total += float((s2 - s1 ** 2 / np.maximum(count, 1)).sum())
    return total


def superpixels(image, n_segments: int = 0, compactness: float = 0.3, sigma: float = 1.0, method: str = "auto"):
    """Superpixels of one image and how they were made.

    SLIC (Achanta et al. 2012, scikit-image's ``slic``) runs on the pixel
    values in [0, 1] (no Lab conversion, so ``compactness`` means the same
    for grey and colour images) with ``sigma=1`` smoothing: with its default
    ``sigma=0`` it can return a single segment on small images (DESIGN.md).
    What SLIC returns is checked: fewer than half the superpixels wanted
    (one, on textured images at low compactness) means it failed, and the
    image is cut into a regular grid instead. ``"auto"`` also prefers the
    grid when SLIC's superpixels are less uniform in colour (larger
    within-segment sum of squares) than the grid's cells: on small images
    SLIC's few-pixel segments cut across the image's edges rather than
    follow them.

    Parameters
    ----------
    image : ndarray of shape (C, H, W) in [0, 1]
    n_segments : int
        Superpixels wanted; 0: :func:`segments_for` the image size.
    method : {"auto", "slic", "grid"}

    Returns
    -------
    labels : ndarray of shape (H, W), int64, values 0 .. n - 1
    used : {"slic", "grid"}

    Raises
    ------
    StudioError
        When the image cannot be cut into 2 segments (a grid cell as large as the image).
    """
    img = np.asarray(image, dtype=np.float64)
    hwc = np.moveaxis(img, 0, -1)  # (H, W, C)
    h, w = hwc.shape[:2]
    n = int(n_segments) or segments_for(h, w)
    grid = grid_segments(h, w, n)
    if grid.max() + 1 < 2:
        raise StudioError(f"a grid of {n} cell(s) is one cell on a {h}x{w} image; raise n_segments")
    if method == "grid":
        return grid, "grid"
    from skimage.segmentation import slic

    labels = slic(hwc, n_segments=n, compactness=compactness, sigma=sigma, start_label=0, channel_axis=-1,
                  convert2lab=False, enforce_connectivity=True)
    _, labels = np.unique(labels, return_inverse=True)  # 0 .. n-1 with no gaps
    labels = labels.reshape(h, w).astype(np.int64)
    got = int(labels.max()) + 1
    if got < max(2, n // 2):
        return grid, "grid"
    if method == "auto" and _within_ss(hwc, labels) > _within_ss(hwc, grid):
        return grid, "grid"
    return labels, "slic"


def segment(image, n_segments: int = 0, compactness: float = 0.3, sigma: float = 1.0, method: str = "slic"):
    """Superpixel labels of one image (:func:`superpixels` without the method used).

    Returns
    -------
    labels : ndarray of shape (H, W), int64, values 0 .. n - 1
    """
    return superpixels(image, n_segments, compactness, sigma, method)[0]


def _n_segments(data, params) -> int:
    """Superpixels asked for this data's images (for cost estimates)."""
    if params.get("n_segments"):
        return int(params["n_segments"])
    shape = data.image_shape if data is not None else None
    return segments_for(shape[1], shape[2]) if shape else 25


class Evaluator:
    """The explained output of a batch of images, batched and on the right device.

    Torch models: the differentiable module on the model's device (no
    gradients kept). Other models: ``model.output`` on numpy.
    """

    def __init__(self, model, like):
        self.model = model
        self.torch = getattr(model, "differentiable", False)
        self.batch = rows_per_batch(model, like) if self.torch else 64

    def tensor(self, x):
        """``x`` (numpy) as a float32 tensor where the model runs."""
        import torch

        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.model.device if self.torch else "cpu")

    def __call__(self, x):
        """Outputs (n, n_outputs) for images ``x`` (n, C, H, W), a tensor."""
        import torch

        with torch.no_grad():
            if self.torch:
                f = self.model.torch_module("probabilities")
                return torch.cat([f(x[i : i + self.batch]) for i in range(0, len(x), self.batch)])
            out = self.model.output(x.cpu().numpy(), batch_size=self.batch)
            return torch.as_tensor(out, dtype=torch.float32)

    def target(self, x, t: int):
        """Outputs of class ``t`` for ``x``, shape (n,)."""
        return self(x)[:, t]


def masked(image, reference, segments, keep):
    """Images with the superpixels not kept replaced by the reference.

    Parameters
    ----------
    image, reference : torch.Tensor of shape (C, H, W)
    segments : torch.Tensor of shape (H, W), int64
    keep : torch.Tensor of shape (m, n_segments), bool

    Returns
    -------
    torch.Tensor of shape (m, C, H, W)
    """
    pixel_keep = keep[:, segments]  # (m, H, W)
    return (image[None] * pixel_keep[:, None] + reference[None] * (~pixel_keep[:, None])).to(image.dtype)


def references(x, kind: str, seed: int = 0):
    """Reference images (what hidden regions show), shape of ``x`` (a tensor)."""
    return image_baseline(x, kind, seed)


def image_compatible(explainer, model, data) -> tuple[bool, str]:
    """Image data and a model that answers on images."""
    if data is not None and data.kind != "image":
        return False, f"{explainer.name} for image data; the dataset holds {data.kind} data"
    if model.format in ("skops", "sklearn", "pickle"):
        return False, "needs an image model (torch or ONNX)"
    return True, ""


def eval_batch(model, data) -> int:
    """Images per model call of :class:`Evaluator` on this data (the cost models' batch)."""
    if getattr(model, "differentiable", False):
        return rows_per_batch(model, data.x[:1])
    return 64


def eval_calls(model, data, images: int, calls: int = 1) -> Cost:
    """``calls`` :class:`Evaluator` calls of ``images`` images each (split into model batches)."""
    return Cost(calls=calls * batched(images, eval_batch(model, data)), rows=calls * images)


class PerturbationExplainer(Explainer):
    """Shared frame for the image perturbation methods."""

    data_kind = "image"
    libraries = ("torch", "scikit-image")

    def is_compatible(self, model, data):
        return image_compatible(self, model, data)

    def explain(self, model, data, params, ctx):
        import torch

        ev = Evaluator(model, torch.as_tensor(data.x[:1]))
        x = ev.tensor(data.x[ctx.rows])  # (n, C, H, W)
        targets = target_list(ctx, len(x))
        refs = references(x, params.get("baseline", "black"), params.get("seed", 0))
        maps, bases, extra = [], [], {}
        for i in range(len(x)):
            ctx.progress(i / len(x), f"{self.name}: image {i + 1} of {len(x)}")
            m, b, info = self.explain_one(model, ev, x[i], refs[i], targets[i], params, ctx.rows[i])
            maps.append(m)
            bases.append(b)
            for k, v in info.items():
                extra.setdefault(k, []).append(v)
        ctx.progress(1.0, "done")
        return self.package(model, maps, bases, extra, params)

    def explain_one(self, model, ev, image, reference, target, params, row):
        """One image -> (map tensor (C', H, W), base value, dict of per-row info)."""
        raise NotImplementedError

    def package(self, model, maps, bases, extra, params) -> Explanation:
        import torch

        values = torch.stack([torch.as_tensor(m) for m in maps]).detach().cpu().numpy().astype(np.float32)
        checks = {}
        if "n_segments" in extra:
            checks["n_segments_min"] = float(min(extra["n_segments"]))
            checks["n_segments_max"] = float(max(extra["n_segments"]))
        if "grid" in extra:
            checks["grid_rows"] = float(sum(extra["grid"]))
        return Explanation(
            method=self.name, kind="attribution", values=values,
            base_values=np.asarray([float(b) for b in bases], dtype=np.float64),
            output_names=model.output_names, checks=checks,
        )


def occlude(forward, x, refs, targets, window: int, stride: int, per_eval: int):
    """Captum's occlusion of all images in one call, each with its own target and reference.

    Parameters
    ----------
    forward : callable
        Images (m, C, H, W) -> outputs (m, n_outputs).
    x, refs : torch.Tensor of shape (n, C, H, W)
        Images and what a hidden window shows in each.
    targets : list of int, length n
    window, stride : int
        Side of the hidden square and step between windows (pixels; clipped to the image).
    per_eval : int
        Windows per forward pass; each pass holds ``per_eval * n`` images.

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        Per pixel, the mean drop of the target output over the windows covering it.
    """
    from captum.attr import Occlusion as CaptumOcclusion

    c, h, w = x.shape[1:]
    win, stride = min(window, h, w), min(stride, h, w)
    return CaptumOcclusion(forward).attribute(
        x, sliding_window_shapes=(c, win, win), strides=(c, stride, stride), baselines=refs,
        target=list(targets), perturbations_per_eval=max(1, int(per_eval)),
    )


def n_windows(shape, window: int, stride: int) -> int:
    """Windows of side ``window`` at step ``stride`` on an image of ``shape`` (C, H, W) (clipped like :func:`occlude`)."""
    _, h, w = shape
    win, stride = min(window, h, w), min(stride, h, w)
    return ((h - win) // stride + 1) * ((w - win) // stride + 1)


class Occlusion(PerturbationExplainer):
    """Occlusion (Zeiler & Fergus 2014): output drop when a window is hidden.

    Each pixel gets the average drop over the windows covering it (Captum's
    ``Occlusion``). All images are occluded in one Captum call, each with
    its own target and reference; every forward pass holds as many windows
    of every image as a batch allows. ``values``: (n_rows, 1, H, W);
    ``base_values``: f(x), from Captum's own pass over the unoccluded images.
    """

    name = "occlusion"
    libraries = ("torch", "captum")
    summary = "Drop in the class probability when a square window of the image is hidden."
    params = ParamSpec(
        (
            Param("window", "int", 4, "Side of the hidden square, in pixels.", low=1, high=1024),
            Param("stride", "int", 4, "Step between windows, in pixels.", low=1, high=1024),
            Param("baseline", "str", "black", "What the hidden window shows.", choices=BASELINES),
        )
    )

    def explain(self, model, data, params, ctx):
        import torch

        if params["stride"] > params["window"]:  # captum asserts it; pixels between windows would get nothing
            raise StudioError(f"occlusion's stride ({params['stride']}) is larger than its window "
                              f"({params['window']}): pixels between windows would never be hidden; use a stride "
                              "at most the window")
        ev = Evaluator(model, torch.as_tensor(data.x[:1]))
        x = ev.tensor(data.x[ctx.rows])  # (n, C, H, W)
        targets = target_list(ctx, len(x))
        refs = references(x, params["baseline"])
        windows = n_windows(x.shape[1:], params["window"], params["stride"])
        per_eval = max(1, min(windows, ev.batch // max(1, len(x))))
        passes = 1 + -(-windows // per_eval)  # captum's unoccluded pass, then the occluded ones
        done = [0]
        clean = []  # outputs of captum's pass over the unoccluded images: the base values

        def forward(batch):
            ctx.progress(done[0] / passes, f"{self.name}: pass {done[0] + 1} of {passes}")
            done[0] += 1
            out = ev(batch)
            if not clean and batch.shape == x.shape and torch.equal(batch, x):
                clean.append(out)
            return out

        attr = occlude(forward, x, refs, targets, params["window"], params["stride"], per_eval)
        idx = torch.as_tensor(targets, device=x.device).reshape(-1, 1)
        base = (clean[0] if clean else ev(x)).gather(1, idx)[:, 0]  # ev's outputs are where x is
        ctx.progress(1.0, "done")
        return self.package(model, list(attr[:, :1]), base.tolist(), {}, params)

    def cost(self, model, data, params, n_rows):
        """Captum's pass over the unoccluded images, then the windows, as many of every image per pass as a
        batch holds (``per_eval``). Own work: building the occluded copies (images x windows)."""
        windows = n_windows(data.image_shape, params.get("window", 4), params.get("stride", 4))
        per_eval = max(1, min(windows, eval_batch(model, data) // max(1, n_rows)))
        total = eval_calls(model, data, n_rows)
        full, rest = divmod(windows, per_eval)
        total = total + eval_calls(model, data, per_eval * n_rows, full)
        if rest:
            total = total + eval_calls(model, data, rest * n_rows)
        return total + Cost(own=n_rows * windows, own_unit="images x windows")

    def probe_params(self, params, data, k):
        """One image with a stride (and a window at least as large: captum requires it) of a quarter (then a
        sixth) of its side: 16 (then 36) windows, where a default run on a 224 x 224 image hides 3,136 (each probe
        was a whole run: minutes on resnet18). :meth:`cost` counts the windows, so the estimate scales."""
        side = min(data.image_shape[1:])
        stride = max(params.get("stride", 4), -(-side // (4 + 2 * k)))
        return dict(params, stride=stride, window=max(params.get("window", 4), stride)), 1


class SuperpixelExplainer(PerturbationExplainer):
    """Segments each image first (:func:`segment`), then perturbs superpixels."""

    def segments(self, image, params, info=None):
        """Superpixels of ``image`` as a tensor (H, W) on its device; ``info["grid"]`` records whether the grid was used."""
        import torch

        labels, used = superpixels(image.detach().cpu().numpy(), params["n_segments"], params["compactness"],
                                   method=params["segmentation"])
        if info is not None:
            info["grid"] = used == "grid"
        return torch.as_tensor(labels, device=image.device)


class FeatureAblation(SuperpixelExplainer):
    """Ablation of each superpixel in turn: f(x) - f(x without it).

    Every pixel of a superpixel gets that superpixel's drop. ``values``:
    (n_rows, 1, H, W); ``base_values``: f(x).
    """

    name = "feature_ablation"
    summary = "Drop in the class probability when each superpixel is hidden in turn."
    params = ParamSpec((_N_SEGMENTS, _SEGMENTATION, _COMPACTNESS, _BASELINE))

    def explain_one(self, model, ev, image, reference, target, params, row):
        import torch

        info = {}
        seg = self.segments(image, params, info)
        n = int(seg.max()) + 1
        keep = ~torch.eye(n, dtype=torch.bool, device=image.device)  # (n, n): all but one
        out = ev.target(torch.cat([image[None], masked(image, reference, seg, keep)]), target)
        drop = out[0] - out[1:]  # (n,)
        return drop[seg][None], out[0], {"n_segments": n, "grid": info["grid"]}

    def cost(self, model, data, params, n_rows):
        """Per image: the segmentation (own work), then one call on the image and its copies without each
        superpixel. SLIC may give fewer superpixels than asked (``bound``)."""
        n = _n_segments(data, params)
        return eval_calls(model, data, n + 1, n_rows) + Cost(own=n_rows, own_unit="images", bound=True)

    def probe_params(self, params, data, k):
        """1 then 2 images at 8 superpixels: :meth:`cost` counts the superpixels' model rows, so the estimate
        scales to the run's (default probes were whole runs: 66 rows each on a 224 x 224 image)."""
        return dict(params, n_segments=min(_n_segments(data, params), 8)), k + 1


class Lime(SuperpixelExplainer):
    """LIME (Ribeiro et al. 2016) over superpixels, with lime's image explainer.

    ``values``: (n_rows, 1, H, W), each pixel its superpixel's weight in the
    local linear surrogate; ``base_values``: the surrogate's intercept;
    ``checks["score"]``: the lowest R^2 of the surrogate (on its weighted
    samples) over the rows.
    """

    name = "lime"
    libraries = ("lime", "scikit-image")
    summary = "Weights of a local linear surrogate fitted on images with superpixels hidden."
    params = ParamSpec(
        (
            Param("n_samples", "int", 500, "Perturbed images the surrogate is fitted on.", low=10, high=100000,
                  fit_low=100, fit_why="the surrogate fitted on fewer images has mostly noise for weights"),
            _N_SEGMENTS, _SEGMENTATION, _COMPACTNESS, _BASELINE, _SEED,
        )
    )

    def explain_one(self, model, ev, image, reference, target, params, row):
        import torch
        from lime.lime_image import LimeImageExplainer

        info = {}
        seg = self.segments(image, params, info)
        seg_np = seg.cpu().numpy()
        c = image.shape[0]
        hwc = np.moveaxis(image.cpu().numpy().astype(np.float64), 0, -1)
        hwc3 = np.repeat(hwc, 3, axis=-1) if c == 1 else hwc
        ref = reference.cpu().numpy()

        def classify(batch):
            # lime writes hide_color (NaN) into hidden superpixels; they get the reference's pixels
            batch = np.moveaxis(np.asarray(batch, dtype=np.float32), -1, 1)[:, :c]  # (m, C, H, W)
            hidden = np.isnan(batch)
            batch = np.where(hidden, ref[None], batch)
            return ev(ev.tensor(batch)).cpu().numpy()

        explainer = LimeImageExplainer(random_state=params["seed"])
        result = explainer.explain_instance(
            hwc3, classify, labels=(target,), top_labels=None, hide_color=np.nan, num_features=int(seg.max()) + 1,
            num_samples=params["n_samples"], batch_size=min(ev.batch, params["n_samples"]),
            segmentation_fn=lambda _img: seg_np, random_seed=params["seed"],
        )
        weights = np.zeros(int(seg_np.max()) + 1)
        for s, w in result.local_exp[target]:
            weights[s] = w
        values = torch.as_tensor(weights[seg_np][None], dtype=torch.float32)
        score = result.score[target] if isinstance(result.score, dict) else result.score  # one label asked: a float
        return values, float(result.intercept[target]), {"n_segments": len(weights), "score": float(score),
                                                           "grid": info["grid"]}

    def package(self, model, maps, bases, extra, params):
        exp = super().package(model, maps, bases, extra, params)
        exp.checks["score"] = float(min(extra["score"]))
        return exp

    def cost(self, model, data, params, n_rows):
        """Per image: the segmentation, then lime's ``n_samples`` masked images in calls of ``batch_size``
        (a model batch at most); own work: masking, distances and the ridge fit, per sample."""
        ns = params.get("n_samples", 500)
        bs = min(eval_batch(model, data), ns)
        full, rest = divmod(ns, bs)
        total = eval_calls(model, data, bs, full * n_rows)
        if rest:
            total = total + eval_calls(model, data, rest, n_rows)
        return total + Cost(own=n_rows * ns, own_unit="masked images")

    def probe_params(self, params, data, k):
        return dict(params, n_samples=min(params.get("n_samples", 500), 50 * (k + 1))), 1


class Anchors(SuperpixelExplainer):
    """Superpixel anchors (Ribeiro et al. 2018): superpixels that, kept as they
    are, keep the prediction whatever the other superpixels show.

    Samples: every superpixel outside the anchor is independently kept
    (probability ``p_keep``) or replaced by the reference image. The search
    is greedy with a beam: it adds the superpixel giving the highest
    precision until the Wilson lower bound of the precision reaches
    ``threshold``; the anchor found is then re-checked on ``n_validate``
    FRESH samples from another random stream, and the search goes on when it
    fails there. ``Rule.precision`` is that fresh estimate; ``coverage`` is
    ``p_keep ** len(anchor)``, the share of perturbed images the anchor
    applies to. ``Rule.extra`` holds ``superpixels`` (ids), ``segments``
    (the (H, W) segmentation as nested lists), ``p_keep``, ``baseline`` and
    ``precision_search``.
    """

    name = "anchors"
    kind = "rule"
    summary = "Superpixels that, kept as they are, keep the prediction (precision checked on fresh samples)."
    params = ParamSpec(
        (
            Param("threshold", "float", 0.95, "Precision wanted.", low=0.5, high=1.0),
            Param("batch_size", "int", 200, "Samples per candidate anchor in the search (raised to what the "
                  "threshold needs: a perfect anchor's 95% lower bound must be able to reach it).", low=10, high=100000),
            Param("n_validate", "int", 1000, "Fresh samples the anchor's precision is checked on.", low=10, high=1000000),
            Param("p_keep", "float", 0.5, "Chance that a superpixel outside the anchor is kept.", low=0.0, high=0.95),
            Param("beam", "int", 2, "Anchors kept between search steps.", low=1, high=20),
            _N_SEGMENTS, _SEGMENTATION, _COMPACTNESS, _BASELINE, _SEED,
        )
    )

    def explain_one(self, model, ev, image, reference, target, params, row):
        import torch

        info = {}
        seg = self.segments(image, params, info)
        n = int(seg.max()) + 1
        dev = image.device
        search_gen = torch.Generator(device=dev).manual_seed(params["seed"])
        fresh_gen = torch.Generator(device=dev).manual_seed(params["seed"] + 1_000_003)

        def precision(anchor_sets, m, gen):
            """Share of m samples per anchor that keep the target class, shape (len(anchor_sets),)."""
            keep = torch.rand((len(anchor_sets), m, n), generator=gen, device=dev) < params["p_keep"]
            for j, a in enumerate(anchor_sets):
                if a:
                    keep[j][:, list(a)] = True
            imgs = masked(image, reference, seg, keep.reshape(-1, n))
            pred = ev(imgs).argmax(dim=1).reshape(len(anchor_sets), m)
            return (pred == target).float().mean(dim=1)

        z = 1.96
        # enough samples that a perfect anchor's Wilson bound, m / (m + z^2), can reach the threshold
        thr = min(params["threshold"], 0.999)
        m = max(params["batch_size"], int(np.ceil(z * z * thr / (1 - thr))) + 1)

        def lower(p):
            # Wilson score lower bound for m samples
            return (p + z * z / (2 * m) - z * torch.sqrt(p * (1 - p) / m + z * z / (4 * m * m))) / (1 + z * z / m)

        beam = [()]
        best, best_p = (), precision([()], m, search_gen)[0]
        fresh = None
        while True:
            done = lower(best_p) >= params["threshold"]
            if done:
                fresh = precision([best], params["n_validate"], fresh_gen)[0]
                if fresh >= params["threshold"]:
                    break
            if len(best) >= n:
                break
            candidates = sorted({tuple(sorted(set(a) | {s})) for a in beam for s in range(n) if s not in a})
            if not candidates:
                break
            p = precision(candidates, m, search_gen)
            order = torch.argsort(p, descending=True, stable=True)[: params["beam"]].tolist()
            beam = [candidates[i] for i in order]
            best, best_p = beam[0], p[order[0]]
        if fresh is None:
            fresh = precision([best], params["n_validate"], fresh_gen)[0]
        seg_np = seg.cpu().numpy()
        rule = Rule(
            row=int(row), predicates=[f"superpixel_{s} == original" for s in best], precision=float(fresh),
            coverage=float(params["p_keep"] ** len(best)),
            extra={"superpixels": [int(s) for s in best], "segments": seg_np.tolist(), "p_keep": params["p_keep"],
                   "baseline": params["baseline"], "precision_search": float(best_p), "target": int(target),
                   "segmentation": "grid" if info["grid"] else "slic"},
        )
        return None, 0.0, {"rule": rule, "n_segments": n, "grid": info["grid"]}

    def package(self, model, maps, bases, extra, params):
        rules = extra["rule"]
        return Explanation(
            method=self.name, kind="rule", rules=rules, output_names=model.output_names,
            checks={"precision": float(min(r.precision for r in rules)), "coverage": float(min(r.coverage for r in rules)),
                    "n_segments_min": float(min(extra["n_segments"])), "grid_rows": float(sum(extra["grid"]))},
        )

    def cost(self, model, data, params, n_rows):
        """Adaptive (typical counts, ``bound``): about four search steps of ``beam`` x ``batch_size`` samples per
        image, twice, and ``n_validate`` fresh samples, in calls of a model batch; own work: the masked images."""
        rows = params.get("n_validate", 1000) + 8 * params.get("beam", 2) * params.get("batch_size", 200)
        c = eval_calls(model, data, rows)
        return Cost(calls=n_rows * (c.calls + 1), rows=n_rows * rows, own=n_rows * rows, own_unit="masked images",
                    bound=True)

    def probe_params(self, params, data, k):
        return dict(params, n_validate=100 * (k + 1), batch_size=max(10, params.get("batch_size", 200) // 8)), 1


class Shap(PerturbationExplainer):
    """SHAP for images: shap's Partition explainer with an image masker.

    Owen values over a hierarchy of image regions; hidden regions are blurred
    (``baseline="blurred"``) or black. ``values``: (n_rows, C, H, W);
    ``base_values``: the output with everything hidden;
    ``checks["additivity_gap"]``: max over rows |base + sum(values) - f(x)|.
    """

    name = "shap"
    libraries = ("shap",)
    summary = "Shapley values of image regions (partition explainer, blurred or black background)."
    params = ParamSpec(
        (
            Param("max_evals", "int", 300, "Model evaluations per image.", low=20, high=100000, fit_low=100,
                  fit_why="fewer evaluations split the image into only a few coarse regions"),
            Param("baseline", "str", "blurred", "What hidden regions show.", choices=("blurred", "black")),
        )
    )

    def explain_one(self, model, ev, image, reference, target, params, row):
        import shap
        import torch

        c, h, w = image.shape
        k = max(3, (min(h, w) // 4) | 1)
        mask_value = f"blur({k},{k})" if params["baseline"] == "blurred" else 0.0
        masker = shap.maskers.Image(mask_value, (h, w, c))

        def f(batch):  # (m, H, W, C) numpy -> (m, n_outputs)
            t = ev.tensor(np.moveaxis(np.asarray(batch, dtype=np.float32).reshape(-1, h, w, c), -1, 1))
            return ev(t).cpu().numpy()

        explainer = shap.Explainer(f, masker, output_names=model.output_names)
        x = np.moveaxis(image.cpu().numpy(), 0, -1)[None]
        result = explainer(x, max_evals=params["max_evals"], batch_size=min(ev.batch, params["max_evals"]),
                           outputs=[int(target)], silent=True)
        values = np.moveaxis(np.asarray(result.values)[0, ..., 0], -1, 0)  # (C, H, W)
        base = float(np.asarray(result.base_values).reshape(-1)[0])
        fx = float(ev.target(image[None], target)[0])
        return torch.as_tensor(values, dtype=torch.float32), base, {"gap": abs(base + values.sum() - fx)}

    def package(self, model, maps, bases, extra, params):
        exp = super().package(model, maps, bases, extra, params)
        exp.checks["additivity_gap"] = float(max(extra["gap"]))
        return exp

    def cost(self, model, data, params, n_rows):
        """Per image: shap's partition explainer, ``max_evals`` masked images in calls of ``batch_size`` (a model
        batch at most; shap may stop short, ``bound``), and f(x); own work: masking and the partition tree, per
        evaluation."""
        me = params.get("max_evals", 300)
        bs = min(eval_batch(model, data), me)
        return Cost(calls=n_rows * (batched(me, bs) + 2), rows=n_rows * (me + 2), own=n_rows * me,
                    own_unit="masked images", bound=True)

    def probe_params(self, params, data, k):
        return dict(params, max_evals=min(params.get("max_evals", 300), 20 * (k + 1))), 1
