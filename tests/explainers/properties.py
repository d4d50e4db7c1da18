"""Property checks with an independent reference or an exact identity, one per method.

Each ``check_*`` function raises ``AssertionError`` when its method is
wrong and returns nothing otherwise. The tests in
``tests/explainers/test_references.py`` call them on the real explainers;
``tests/mutation/test_mutants.py`` calls the same functions with a broken
variant of each explainer patched in and asserts they now fail, so every
check is known to be able to fail.

References: Captum's ``LayerGradCam`` / ``GuidedGradCam`` on
``softmax(net((x - mean) / std))`` built here from the card (DESIGN.md:
gradient methods explain probabilities), torch autograd for saliency,
exact identities (input x gradient = x * signed saliency; SmoothGrad at
zero noise = saliency; IG completeness against the baseline the user
chose), hand-computed drops for occlusion and ablation, and models built
here that read only the top-left quadrant (nothing outside it may get
attribution; superpixel methods must put their mass, with the right sign,
inside it). Tabular LIME is compared with ``lime.LimeTabularExplainer``
configured here, independently of the studio's configuration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import studio
from studio.data.dataset import Dataset

ROOT = Path(__file__).resolve().parents[2]
SIDE, Q = 32, 16


# ---- models and data built for the checks ---------------------------------------------------
def eager_cnn():
    """The sample CNN's weights as an eager module (state dict + card), and its card as a dict."""
    import json

    card = json.loads((ROOT / "models" / "image_cnn_state.card.json").read_text())
    model = studio.load_model(ROOT / "models" / "image_cnn_state.pt", card=ROOT / "models" / "image_cnn_state.card.json",
                              sandbox="off")  # in this process: the mutation test patches the explainers here
    return model, card


def digits_rows(n=3):
    """A few digits from the sample data set (N, 1, 32, 32)."""
    data = studio.load_dataset(ROOT / "sample_data" / "digits.zip")
    return data.subset(list(range(0, 40 * n, 40)))


def _probabilities(net, card):
    """softmax(net((x - mean) / std)), written here from the card."""
    import torch

    mean = torch.tensor(card["mean"], dtype=torch.float32).reshape(1, -1, 1, 1)
    std = torch.tensor(card["std"], dtype=torch.float32).reshape(1, -1, 1, 1)

    class Probabilities(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.softmax(self.net((x - mean) / std), dim=1)

    return Probabilities().eval()


def quadrant_sum_model(channels=1, classes=2):
    """Class logits from the mean of the top-left quadrant only, through nn.Linear(1, classes)."""
    import torch
    from torch import nn

    class QuadrantSum(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(1, classes)
            with torch.no_grad():
                w = torch.linspace(-4.0, 4.0, classes)[:, None]
                self.linear.weight.copy_(w)
                self.linear.bias.copy_(-0.5 * w[:, 0])  # class `classes - 1` when the quadrant's mean > 0.5

        def forward(self, x):
            return self.linear(x[:, :, :Q, :Q].mean(dim=(1, 2, 3))[:, None])

    card = {"task": "classification", "class_names": [f"c{i}" for i in range(classes)],
            "input_size": [channels, SIDE, SIDE]}
    return studio.wrap_model(QuadrantSum().eval(), card=card)


def quadrant_cnn(channels=1):
    """A small CNN whose first layer zeroes everything outside the top-left quadrant (8 classes)."""
    import torch
    from torch import nn

    class Mask(nn.Module):
        def forward(self, x):
            m = torch.zeros_like(x)
            m[..., :Q, :Q] = 1
            return x * m

    torch.manual_seed(3)
    net = nn.Sequential(Mask(), nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8)).eval()
    card = {"task": "classification", "class_names": [f"c{i}" for i in range(8)], "input_size": [channels, SIDE, SIDE]}
    return studio.wrap_model(net, card=card)


def block_data(channels=1, n=2, seed=0, bright=True):
    """8x8 blocks of flat colour, random outside the quadrant, bright inside (when ``bright``)."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.0, 1.0, size=(n, channels, SIDE // 8, SIDE // 8))
    if bright:
        blocks[..., : Q // 8, : Q // 8] = rng.uniform(0.75, 0.95, size=(n, channels, Q // 8, Q // 8))
    x = np.kron(blocks, np.ones((1, 1, 8, 8))) + rng.normal(0, 0.01, size=(n, channels, SIDE, SIDE))
    return Dataset(kind="image", x=np.clip(x, 0, 1).astype(np.float32), y=np.zeros(n, dtype=np.int64), name="blocks")


def quadrant_share(values) -> np.ndarray:
    a = np.abs(np.asarray(values, dtype=np.float64))
    return a[..., :Q, :Q].reshape(len(a), -1).sum(1) / a.reshape(len(a), -1).sum(1)


# ---- gradient methods ------------------------------------------------------------------------
def check_grad_cam_matches_captum(method="grad_cam"):
    """Grad-CAM (or guided Grad-CAM) of the eager CNN equals Captum's on the probabilities, for
    class 0 and class 7, and the two classes give different maps."""
    import torch
    from captum.attr import GuidedGradCam, LayerAttribution, LayerGradCam

    model, card = eager_cnn()
    data = digits_rows(2)
    x = torch.as_tensor(data.x)
    f = _probabilities(model.native, card)
    from studio.explainers.cam import find_layer

    name, _ = find_layer(model.native)
    layer = dict(f.named_modules())["net." + name]
    maps = {}
    for target in (0, 7):
        exp = studio.explain(model, data, method, rows=[0, 1], target=target, cache=False)
        if method == "grad_cam":
            want = LayerGradCam(f, layer).attribute(x, target=target, relu_attributions=True)
            want = LayerAttribution.interpolate(want, (SIDE, SIDE), "bilinear")
        else:
            want = GuidedGradCam(f, layer).attribute(x.clone(), target=target, interpolate_mode="bilinear")
        want = want.detach().numpy()
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(exp.values, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
        maps[target] = exp.values
    assert not np.allclose(maps[0], maps[7], rtol=0.05, atol=0), "class 0 and class 7 gave the same map"


def check_saliency_matches_autograd():
    """Signed saliency = d softmax(net((x - mean)/std))[target] / dx by torch autograd, per row and target."""
    import torch

    model, card = eager_cnn()
    data = digits_rows(2)
    f = _probabilities(model.native, card)
    for target in (1, 6):
        exp = studio.explain(model, data, "saliency", rows=[0, 1], target=target, params={"absolute": False},
                             cache=False)
        x = torch.as_tensor(data.x).requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x)[:, target].sum(), x)
        np.testing.assert_allclose(exp.values, grad.numpy(), rtol=1e-4, atol=1e-6 * np.abs(grad.numpy()).max())


def check_input_x_gradient_identity():
    """input_x_gradient = x * signed saliency, exactly, for two targets."""
    model, _ = eager_cnn()
    data = digits_rows(2)
    for target in (2, 5):
        ixg = studio.explain(model, data, "input_x_gradient", rows=[0, 1], target=target, cache=False)
        sal = studio.explain(model, data, "saliency", rows=[0, 1], target=target, params={"absolute": False},
                             cache=False)
        np.testing.assert_allclose(ixg.values, data.x * sal.values, rtol=1e-6, atol=1e-12)
        assert np.abs(ixg.values).max() > 0


def check_smoothgrad_zero_noise_is_saliency():
    """SmoothGrad with zero noise averages identical gradients: it equals saliency (|grad| and signed)."""
    model, _ = eager_cnn()
    data = digits_rows(2)
    for absolute in (True, False):
        sg = studio.explain(model, data, "smoothgrad", rows=[0, 1], target=3, cache=False,
                            params={"noise_level": 0.0, "n_samples": 3, "absolute": absolute})
        sal = studio.explain(model, data, "saliency", rows=[0, 1], target=3, params={"absolute": absolute},
                             cache=False)
        np.testing.assert_allclose(sg.values, sal.values, rtol=1e-5, atol=1e-7 * np.abs(sal.values).max())


def check_ig_completeness_on_the_chosen_baseline(baseline="blurred"):
    """sum(IG) = f(x) - f(baseline) for the baseline the user chose, base values = f(baseline)."""
    import torch

    from studio.explainers.gradients import image_baseline

    model, card = eager_cnn()
    data = digits_rows(2)
    exp = studio.explain(model, data, "integrated_gradients", rows=[0, 1], cache=False,
                         params={"baseline": baseline, "n_steps": 64, "max_gap": 0})
    t = np.asarray(exp.target)  # each row's predicted class
    x = torch.as_tensor(data.x)
    ref = image_baseline(x, baseline).numpy()  # the reference the parameter names (documented)
    f = _probabilities(model.native, card)
    with torch.no_grad():
        fx, fref = f(x).numpy()[[0, 1], t], f(torch.as_tensor(ref)).numpy()[[0, 1], t]
    np.testing.assert_allclose(exp.base_values, fref, atol=1e-6)
    total = exp.values.reshape(2, -1).sum(1)
    assert np.all(np.abs(fx - fref) > 1e-3)
    np.testing.assert_allclose(total, fx - fref, rtol=0.02, atol=0)


IGNORED = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "occlusion", "feature_ablation")
FAST = {"integrated_gradients": {"n_steps": 8, "max_gap": 0}, "smoothgrad": {"n_samples": 4},
        "feature_ablation": {"segmentation": "grid"}}


def check_ignored_pixels_get_zero(method):
    """A model that never reads outside the top-left quadrant: exactly zero attribution there, some inside."""
    model = quadrant_cnn()
    data = block_data(1, n=2, seed=5)
    exp = studio.explain(model, data, method, rows=[0, 1], target=2, params=FAST.get(method), cache=False)
    v = exp.values
    assert np.abs(v[..., :Q, :Q]).sum() > 0
    assert np.all(v[..., Q:, :] == 0) and np.all(v[..., :Q, Q:] == 0), method


def check_ignored_table_feature_gets_zero(method):
    """A torch MLP whose first layer never reads feature 2: saliency and IG give it exactly zero on every row."""
    import pandas as pd
    import torch

    from studio.data.tabular import table_dataset

    torch.manual_seed(4)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    with torch.no_grad():
        net[0].weight[:, 2] = 0.0
    names = [f"f{j}" for j in range(5)]
    model = studio.wrap_model(net, card={"task": "classification", "class_names": ["a", "b", "c"],
                                         "feature_names": names})
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(30, 5)), columns=names).assign(label=rng.integers(0, 3, 30))
    data = table_dataset(frame, name="t", label="label")
    params = {"n_steps": 16, "max_gap": 0} if method == "integrated_gradients" else None
    exp = studio.explain(model, data, method, rows=[0, 1, 2], target=1, params=params, cache=False)
    assert np.all(exp.values[:, 2] == 0), exp.values[:, 2]
    assert np.all(np.abs(exp.values[:, [0, 1, 3, 4]]).sum(axis=1) > 0)


# ---- perturbation methods --------------------------------------------------------------------
def check_occlusion_is_the_drop(baseline="blurred"):
    """Occlusion with 8x8 windows at stride 8: each window's pixels get f(x) - f(x with it replaced by the baseline)."""
    import torch

    from studio.explainers.gradients import image_baseline

    model = quadrant_sum_model()
    data = block_data(1, n=1, seed=6)
    exp = studio.explain(model, data, "occlusion", rows=[0], target=1, cache=False,
                         params={"window": 8, "stride": 8, "baseline": baseline})
    x = data.x
    ref = image_baseline(torch.as_tensor(x), baseline).numpy()
    fx = model.output(x)[0, 1]
    for r, c in ((0, 0), (1, 0), (0, 1), (3, 3)):
        hidden = x.copy()
        hidden[..., 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = ref[..., 8 * r : 8 * r + 8, 8 * c : 8 * c + 8]
        want = fx - model.output(hidden)[0, 1]
        np.testing.assert_allclose(exp.values[0, 0, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8], want, atol=1e-6)
    assert np.abs(exp.values).max() > 1e-3


def check_feature_ablation_is_the_drop():
    """Grid ablation: each cell gets f(x) - f(x with the cell replaced by the blurred image), for the target asked."""
    import torch

    from studio.explainers.gradients import image_baseline

    model = quadrant_sum_model(classes=3)
    data = block_data(1, n=1, seed=7)
    for target in (0, 2):
        exp = studio.explain(model, data, "feature_ablation", rows=[0], target=target, cache=False,
                             params={"n_segments": 16, "segmentation": "grid", "baseline": "black"})
        x = data.x
        ref = image_baseline(torch.as_tensor(x), "black").numpy()
        fx = model.output(x)[0, target]
        for r, c in ((0, 0), (1, 1), (2, 3)):
            hidden = x.copy()
            hidden[..., 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = ref[..., 8 * r : 8 * r + 8, 8 * c : 8 * c + 8]
            want = fx - model.output(hidden)[0, target]
            np.testing.assert_allclose(exp.values[0, 0, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8], want, atol=1e-6)


def check_superpixel_method_localised(method, params=None):
    """On the quadrant-sum model (class 1: bright quadrant) >= 95% of |attribution| lies in the quadrant,
    and hiding the bright quadrant lowers p(class 1): the quadrant's attribution for class 1 is positive."""
    model = quadrant_sum_model()
    data = block_data(1, n=2, seed=8)
    exp = studio.explain(model, data, method, rows=[0, 1], target=1, params=params, cache=False)
    share = quadrant_share(exp.values)
    assert np.all(share >= 0.95), (method, share)
    inside = exp.values[..., :Q, :Q].reshape(2, -1).sum(1)
    assert np.all(inside > 0), (method, inside)


def check_image_anchors_in_the_quadrant():
    """Image anchors of the quadrant-sum model: non-empty rules of superpixels inside the quadrant."""
    model = quadrant_sum_model()
    data = block_data(1, n=2, seed=9)
    assert (model.predict(data.x) == 1).all()
    exp = studio.explain(model, data, "anchors", rows=[0, 1], cache=False,
                         params={"baseline": "black", "batch_size": 60, "n_validate": 300})
    for rule in exp.rules:
        seg = np.asarray(rule.extra["segments"])
        ids = rule.extra["superpixels"]
        assert ids
        outside = set(np.unique(seg[Q:, :])) | set(np.unique(seg[:Q, Q:]))
        assert not set(ids) & outside and set(ids) <= set(np.unique(seg[:Q, :Q])), ids
        assert rule.precision >= 0.95


# ---- tabular ---------------------------------------------------------------------------------
def check_tabular_lime_matches_lime(model, data, rows=(1, 30), label=1, num_samples=300, seed=4):
    """The studio's tabular LIME equals lime's LimeTabularExplainer configured here from lime's own defaults
    (quartile discretiser, kernel width 0.75 * sqrt(features), all rows as training data)."""
    from lime.lime_tabular import LimeTabularExplainer

    exp = studio.explain(model, data, "lime", rows=list(rows), target=label, cache=False,
                         params={"num_samples": num_samples, "seed": seed})
    train = np.asarray(data.x, dtype=np.float64)
    ref = LimeTabularExplainer(train, mode="classification", feature_names=list(data.feature_names),
                               discretize_continuous=True, kernel_width=0.75 * np.sqrt(train.shape[1]),
                               random_state=seed)
    for i, r in enumerate(rows):
        e = ref.explain_instance(train[r], model.predict_proba, labels=(label,), num_features=train.shape[1],
                                 num_samples=num_samples)
        w = np.zeros(train.shape[1])
        for j, v in e.local_exp[label]:
            w[j] = v
        np.testing.assert_allclose(exp.values[i], w, rtol=1e-9, atol=1e-12)
        assert exp.base_values[i] == e.intercept[label]


def check_tabular_anchors_precision(model, data, rows=(0, 80), threshold=0.95, n=2000, seed=12345):
    """Each rule holds on its row and keeps the row's predicted class on fresh draws of an independent sampler
    (data rows, each constrained feature redrawn from data values satisfying the rule) to within 3 standard
    errors of the threshold."""
    import re

    exp = studio.explain(model, data, "anchors", rows=list(rows), cache=False, params={"threshold": threshold})
    x = np.asarray(data.x, dtype=np.float64)
    predicted = model.predict(x[list(rows)])
    rng = np.random.default_rng(seed)
    num = r"(-?[0-9.eE+-]+)"
    for rule, row, label in zip(exp.rules, rows, predicted):
        assert rule.extra["meets_threshold"], rule.predicates
        z = x[rng.integers(0, len(x), n)].copy()
        covered = np.ones(len(x), dtype=bool)
        for p in rule.predicates:
            for j, name in sorted(enumerate(data.feature_names), key=lambda jn: -len(jn[1])):
                m = re.fullmatch(num + r" < " + re.escape(name) + r" <= " + num, p)
                lo, hi = (float(m[1]), float(m[2])) if m else (None, None)
                if not m:
                    m = re.fullmatch(re.escape(name) + r" (<=|>) " + num, p)
                    if m:
                        lo, hi = (None, float(m[2])) if m[1] == "<=" else (float(m[2]), None)
                if m:
                    break
            else:
                raise AssertionError(f"unparseable predicate {p!r}")

            def holds(col, lo=lo, hi=hi):
                return (col > (-np.inf if lo is None else lo)) & (col <= (np.inf if hi is None else hi))

            pool = x[holds(x[:, j]), j]
            bad = ~holds(z[:, j])
            z[bad, j] = pool[rng.integers(0, len(pool), bad.sum())]
            covered &= holds(x[:, j])
        assert covered[row], (row, rule.predicates)
        fresh = float(np.mean(model.predict(z) == label))
        assert fresh >= threshold - 3 * np.sqrt(threshold * (1 - threshold) / n), (rule.predicates, fresh)


# ---- tabular: the remaining methods of the registry (issue 13's mutation check) ---------------
def _table_mlp(seed=4, n=30):
    """A tanh MLP on five numeric features (three classes) and its data, plain card: f = softmax(net(x))."""
    import pandas as pd
    import torch

    from studio.data.tabular import table_dataset

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    names = [f"f{j}" for j in range(5)]
    model = studio.wrap_model(net, card={"task": "classification", "class_names": ["a", "b", "c"],
                                         "feature_names": names})
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 5)), columns=names).assign(label=rng.integers(0, 3, n))
    return model, net, table_dataset(frame, name="t", label="label")


def check_tabular_saliency_matches_autograd():
    """Tabular saliency (signed) = d softmax(net(x))[target] / dx by torch autograd, for two targets."""
    import torch

    model, net, data = _table_mlp()
    for target in (0, 2):
        exp = studio.explain(model, data, "saliency", rows=[0, 1, 2], target=target, params={"absolute": False},
                             cache=False)
        x = torch.as_tensor(np.asarray(data.x[:3], dtype=np.float32)).requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.softmax(net(x), dim=1)[:, target].sum(), x)
        np.testing.assert_allclose(exp.values, grad.numpy(), rtol=1e-4, atol=1e-7)


def check_tabular_ig_completeness():
    """Tabular IG from the data's mean row: sum = f(x) - f(mean row), f computed here from the net."""
    import torch

    model, net, data = _table_mlp()
    exp = studio.explain(model, data, "integrated_gradients", rows=[0, 1, 2], target=1,
                         params={"n_steps": 64, "baseline": "mean"}, cache=False)
    x = torch.as_tensor(np.asarray(data.x[:3], dtype=np.float32))
    mean = torch.as_tensor(np.asarray(data.x, dtype=np.float64).mean(axis=0), dtype=torch.float32).reshape(1, -1)
    with torch.no_grad():
        want = (torch.softmax(net(x), dim=1)[:, 1] - torch.softmax(net(mean), dim=1)[0, 1]).numpy()
    np.testing.assert_allclose(exp.values.sum(axis=1), want, rtol=0, atol=1e-4)


def check_tabular_shap_linear_known_answer():
    """A linear regression's SHAP values are coef * (x - mean of the background rows) (Lundberg & Lee 2017);
    with background = every row, the mean is the data's."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from studio.data.tabular import table_dataset

    rng = np.random.default_rng(6)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=["a", "b", "c", "d"])
    y = frame.to_numpy() @ np.array([1.5, -2.0, 0.0, 0.5]) + 3.0 + rng.normal(0, 0.1, 60)
    est = LinearRegression().fit(frame, y)
    data = table_dataset(frame.assign(y=y), name="lin.csv", label="y")
    exp = studio.explain(studio.wrap_model(est), data, "shap", rows=[0, 1, 2], params={"background": 60},
                         cache=False)
    x = frame.to_numpy()
    np.testing.assert_allclose(exp.values, est.coef_ * (x[:3] - x.mean(axis=0)), rtol=1e-9, atol=1e-10)


def check_model_randomisation_passes_saliency():
    """Adebayo et al. (2018): saliency maps change when the weights are randomised, so the sanity check passes;
    its maps are the saliency maps of the trained model."""
    model, _ = eager_cnn()
    data = digits_rows(2)
    exp = studio.explain(model, data, "model_randomisation", rows=[0, 1], target=3,
                         params={"method": "saliency", "max_layers": 2}, cache=False)
    sal = studio.explain(model, data, "saliency", rows=[0, 1], target=3, cache=False)
    np.testing.assert_allclose(exp.values, sal.values, rtol=1e-6, atol=0)
    assert exp.checks["does_not_depend_on_model"] == 0.0 and exp.checks["spearman_full"] < 0.5, exp.checks


def check_pdp_ice_match_sklearn(method):
    """PDP (average) and ICE (each row) of the wine forest equal scikit-learn's brute ``partial_dependence`` on the
    same grid, for the class asked (two classes, so a swapped target shows)."""
    import sys

    from sklearn.inspection import partial_dependence

    sys.path.insert(0, str(Path(__file__).parent))
    from tabular_models import wine_forest

    model, data = wine_forest()
    est, x = model.native, data.frame
    for target in (0, 2):
        exp = studio.explain(model, data, method, target=target, cache=False,
                             params={"features": ["alcohol"], "grid_resolution": 6, "max_rows": 0})
        curve = exp.curves[0]
        grid = np.asarray(curve.grid[0], dtype=float)
        want = partial_dependence(est, x, ["alcohol"], custom_values={"alcohol": grid}, method="brute",
                                  kind="both")
        np.testing.assert_allclose(curve.average, want["average"][target], rtol=0, atol=1e-12)
        if method == "ice":
            np.testing.assert_allclose(curve.individual, want["individual"][target], rtol=0, atol=1e-12)


class ThreeX1MinusX3:
    """f = 3 x1 - x3 (a regressor with a known ALE)."""

    n_features_in_ = 3

    def fit(self, x, y=None):
        return self

    def predict(self, x):
        x = np.asarray(x, dtype=np.float64)
        return 3.0 * x[:, 0] - x[:, 2]


class ReadsA:
    """A classifier of class 1 exactly where a > 0 (reads nothing else)."""

    n_features_in_ = 3
    classes_ = np.array([0, 1])

    def fit(self, x, y=None):
        return self

    def predict_proba(self, x):
        p = (np.asarray(x, dtype=np.float64)[:, 0] > 0).astype(float)
        return np.column_stack([1 - p, p])

    def predict(self, x):
        return self.predict_proba(x).argmax(axis=1)


def check_ale_linear_slope():
    """ALE of f = 3 x1 - x3 has slope 3 in x1 and -1 in x3 (Apley & Zhu 2020), centred to mean 0 over the rows."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tabular_models import correlated_table

    data = correlated_table()
    model = studio.wrap_model(ThreeX1MinusX3(), card={"task": "regression", "feature_names": list(data.feature_names)})
    exp = studio.explain(model, data, "ale", params={"features": ["x1", "x3"], "grid_resolution": 10}, cache=False)
    for curve, slope in zip(exp.curves, (3.0, -1.0)):
        edges = np.asarray(curve.grid[0], dtype=float)
        np.testing.assert_allclose(np.diff(curve.average) / np.diff(edges), slope, rtol=1e-9)
        counts = np.asarray(curve.extra["counts"])
        assert abs(np.sum((curve.average[:-1] + curve.average[1:]) / 2 * counts)) < 1e-9


def check_permutation_importance_matches_sklearn():
    """Permutation importance of the wine forest equals scikit-learn's ``permutation_importance`` called here on
    the estimator itself (accuracy, same repeats and seed)."""
    import sys

    # the module itself: the mutation test patches the name in sklearn.inspection, which the studio imports
    from sklearn.inspection._permutation_importance import permutation_importance

    sys.path.insert(0, str(Path(__file__).parent))
    from tabular_models import wine_forest

    model, data = wine_forest()
    exp = studio.explain(model, data, "permutation_importance", params={"n_repeats": 2, "seed": 3}, cache=False)
    want = permutation_importance(model.native, data.frame, data.y, n_repeats=2, random_state=3, scoring="accuracy")
    np.testing.assert_allclose([i.mean for i in exp.importances], want.importances_mean, rtol=0, atol=1e-12)
    assert max(i.mean for i in exp.importances) > 0.01


def _binary_table(n=300, seed=8):
    import pandas as pd

    from studio.data.tabular import table_dataset

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    y = (frame["a"] + 0.5 * frame["b"] ** 2 + rng.normal(0, 0.3, n) > 0.5).astype(int)
    return frame, table_dataset(frame.assign(y=y), name="bin.csv", label="y")


EBM_FAST = {"interactions": 0, "max_rounds": 60, "outer_bags": 1, "max_bins": 16, "max_rows": 0}


def check_ebm_matches_interpret():
    """The ``ebm`` curves rebuild the score of interpret's EBM fitted here with the same settings, for the class
    asked (class 0 of a binary EBM is the negated logit)."""
    from interpret.glassbox import ExplainableBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from studio.explainers.ebm import ebm_score

    frame, data = _binary_table()
    model = studio.wrap_model(LogisticRegression().fit(frame, data.y))
    ebm = ExplainableBoostingClassifier(interactions=0, max_rounds=60, outer_bags=1, max_bins=16, n_jobs=1,
                                        random_state=0).fit(frame, data.y)
    for target, sign in ((1, 1.0), (0, -1.0)):
        exp = studio.explain(model, data, "ebm", target=target, params=EBM_FAST, cache=False)
        np.testing.assert_allclose(ebm_score(exp, data.x), sign * ebm.decision_function(frame), rtol=0, atol=1e-9)


def check_ebm_surrogate_follows_the_model():
    """A surrogate of a model that reads only ``a`` (class = a > 0; labels are noise) agrees with the model on
    held-out rows (fidelity >= 0.9, and its score's sign agrees on every row but a few), and its shape of ``a``
    is the step the model has while ``b`` and ``c`` stay near 0."""
    from studio.explainers.ebm import ebm_score

    frame, data = _binary_table()
    data.y = np.random.default_rng(9).integers(0, 2, len(frame))  # labels unrelated to the model
    model = studio.wrap_model(ReadsA(), card={"task": "classification", "feature_names": ["a", "b", "c"],
                                               "class_names": ["0", "1"]})
    exp = studio.explain(model, data, "ebm_surrogate", target=1, params=EBM_FAST, cache=False)
    assert exp.checks["fidelity"] >= 0.9, exp.checks
    agree = np.mean((ebm_score(exp, data.x) > 0) == (frame["a"].to_numpy() > 0))
    assert agree >= 0.95, agree
    spread = {c.feature: np.ptp(np.asarray(c.average, dtype=float)) for c in exp.curves}
    assert spread["a"] > 5 * max(spread["b"], spread["c"]), spread
