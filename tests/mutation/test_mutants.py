"""Mutation check: a deliberately broken variant of each method must fail that method's property check.

Each mutant is patched into the explainer with ``monkeypatch`` and the same
check function the real tests use (``tests/explainers/properties.py``) is
run; it must now raise ``AssertionError``. A check that still passes with a
mutant in place cannot catch that fault. The unmutated checks pass in
``tests/explainers/test_references.py`` (and ``test_anchors.py``).

Mutants: Grad-CAM ignoring gradients (every channel weighted 1, so class 0
and class 7 give the same map); guided backpropagation not guided; swapped
target (saliency, SmoothGrad, feature ablation, LIME, SHAP, anchors, PDP,
ICE, EBM); input x gradient without the input; IG and occlusion dropping
the user's baseline (black / zeros instead), SHAP its background; tabular
LIME with a wrong kernel width; ALE with its local effects reversed;
permutation importance scored against mismatched labels; the EBM surrogate
fitted to shifted predictions; the model-randomisation check that never
randomises. ``test_every_registered_method_has_a_mutant`` keeps the table
in step with the registry.
"""

from __future__ import annotations

import pytest

from tests.explainers import properties as P


def _n_outputs(model):
    return len(model.output_names)


def _swap(targets, model):
    return [(int(t) + 1) % _n_outputs(model) for t in targets]


# ---- mutants ---------------------------------------------------------------------------------
def grad_cam_ignoring_gradients(model, x, targets, layer="", net=None, relu=True, with_output=False):
    """Grad-CAM with every channel weighted 1: the gradient never enters the map."""
    import torch
    import torch.nn.functional as F

    from studio.explainers.cam import layer_tap
    from studio.explainers.gradients import forward_for

    module, _, read, close = layer_tap(model.native if net is None else net, layer)
    try:
        with torch.no_grad():
            out = forward_for(model, module)(x)
            act = read()
    finally:
        close()
    cam = act.sum(dim=1, keepdim=True).clamp(min=0)
    cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    explained = out.gather(1, torch.as_tensor(targets).reshape(-1, 1))[:, 0]
    return (cam, explained) if with_output else cam


def unguided_backprop(model, x, targets, net=None):
    """Plain gradients where guided backpropagation should be."""
    import torch

    from studio.explainers.gradients import forward_for

    x = x.detach().clone().requires_grad_(True)
    out = forward_for(model, net)(x)
    (grad,) = torch.autograd.grad(out.gather(1, torch.as_tensor(targets).reshape(-1, 1)).sum(), x)
    return grad


def swapped_attribute(cls, monkeypatch):
    original = cls.attribute

    def attribute(self, model, x, targets, params, data=None, net=None, ctx=None):
        return original(self, model, x, _swap(targets, model), params, data, net=net)

    monkeypatch.setattr(cls, "attribute", attribute)


def swapped_explain_one(cls, monkeypatch):
    original = cls.explain_one

    def explain_one(self, model, ev, image, reference, target, params, row):
        return original(self, model, ev, image, reference, _swap([target], model)[0], params, row)

    monkeypatch.setattr(cls, "explain_one", explain_one)


# ---- the mutation table ----------------------------------------------------------------------
def _grad_cam(mp):
    from studio.explainers import cam

    mp.setattr(cam, "grad_cam", grad_cam_ignoring_gradients)


def _guided(mp):
    from studio.explainers import cam

    mp.setattr(cam, "guided_backprop", unguided_backprop)


def _saliency(mp):
    from studio.explainers.gradients import Saliency

    swapped_attribute(Saliency, mp)


def _ixg(mp):
    from studio.explainers.gradients import InputXGradient, Saliency

    mp.setattr(InputXGradient, "attribute", lambda self, model, x, targets, params, data=None, net=None, ctx=None:
               Saliency.attribute(self, model, x, targets, {"absolute": False}, data, net=net))


def _smoothgrad(mp):
    from studio.explainers.gradients import SmoothGrad

    swapped_attribute(SmoothGrad, mp)


def _ig(mp):
    from studio.explainers.gradients import IntegratedGradients

    mp.setattr(IntegratedGradients, "reference", lambda self, model, x, params, data: x * 0)


def _occlusion(mp):
    from studio.explainers import superpixels

    mp.setattr(superpixels, "references", lambda x, kind, seed=0: x * 0)


def _ablation(mp):
    from studio.explainers.superpixels import FeatureAblation

    swapped_explain_one(FeatureAblation, mp)


def _lime_image(mp):
    from studio.explainers.superpixels import Lime

    swapped_explain_one(Lime, mp)


def _shap_image(mp):
    from studio.explainers.superpixels import Shap

    swapped_explain_one(Shap, mp)


def _anchors_image(mp):
    from studio.explainers.superpixels import Anchors

    swapped_explain_one(Anchors, mp)


def _lime_tabular(mp):
    from lime.lime_tabular import LimeTabularExplainer

    from studio.explainers.lime_tabular import TabularLime

    original = TabularLime.lime_explainer

    def lime_explainer(self, model, data, params, codec, *args, **kwargs):
        good = original(self, model, data, params, codec, *args, **kwargs)
        return LimeTabularExplainer(good.training_data if hasattr(good, "training_data") else codec.encode(data.x),
                                    mode=good.mode, feature_names=list(data.feature_names),
                                    discretize_continuous=params["discretize"],
                                    kernel_width=0.25 * (data.n_features ** 0.5), random_state=params["seed"])

    mp.setattr(TabularLime, "lime_explainer", lime_explainer)


def swapped_explain(cls, monkeypatch):
    """``cls.explain`` run for the next class instead of the one asked."""
    original = cls.explain

    def explain(self, model, data, params, ctx):
        ctx.targets = _swap(ctx.targets, model)
        return original(self, model, data, params, ctx)

    monkeypatch.setattr(cls, "explain", explain)


def _anchors_tabular(mp):
    from studio.explainers.anchors import TabularAnchors

    swapped_explain(TabularAnchors, mp)


def _ig_table(mp):
    from studio.explainers.gradients import TabularIntegratedGradients

    mp.setattr(TabularIntegratedGradients, "reference", lambda self, model, x, params, data: x * 0)


def _shap_table(mp):
    from studio.explainers.shapley import TabularShap

    original = TabularShap._run

    def run(self, path, model, codec, x, bg, cols, params, ctx):  # the background replaced by zeros
        return original(self, path, model, codec, x, bg * 0, cols, params, ctx)

    mp.setattr(TabularShap, "_run", run)


def _no_randomisation(mp):
    from studio.explainers import sanity

    mp.setattr(sanity, "reinitialise", lambda params, generator: None)


def _curve_target(mp):
    from studio.explainers import curves

    original = curves.target_fn
    mp.setattr(curves, "target_fn", lambda model, target, *args, **kwargs: original(
        model, None if target is None else _swap([target], model)[0], *args, **kwargs))


def _ale_reversed(mp):
    from studio.explainers import curves

    original = curves.bin_effects

    def reversed_effects(f, x, j, edges):  # f(lower edge) - f(upper edge)
        mean, counts = original(f, x, j, edges)
        return -mean, counts

    mp.setattr(curves, "bin_effects", reversed_effects)


def _permutation_labels(mp):
    import numpy as np
    import sklearn.inspection

    original = sklearn.inspection.permutation_importance

    def mismatched(estimator, x, y, **kwargs):  # each row scored against another row's label
        return original(estimator, x, np.random.default_rng(0).permutation(np.asarray(y)), **kwargs)

    mp.setattr(sklearn.inspection, "permutation_importance", mismatched)


def _ebm_target(mp):
    from studio.explainers.ebm import Ebm

    swapped_explain(Ebm, mp)


def _surrogate_shifted(mp):
    import numpy as np

    from studio.explainers.ebm import _EbmExplainer

    original = _EbmExplainer._fit
    mp.setattr(_EbmExplainer, "_fit", lambda self, frame, y, classification, params: original(
        self, frame, np.roll(np.asarray(y), 1), classification, params))


def _wine_forest():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(P.__file__).parent))
    from tabular_models import wine_forest

    return wine_forest()


MUTANTS = {
    "grad_cam: every channel weighted 1": (_grad_cam, lambda: P.check_grad_cam_matches_captum("grad_cam")),
    "guided_grad_cam: Grad-CAM ignoring gradients": (_grad_cam, lambda: P.check_grad_cam_matches_captum("guided_grad_cam")),
    "guided_grad_cam: backprop not guided": (_guided, lambda: P.check_grad_cam_matches_captum("guided_grad_cam")),
    "saliency: swapped target": (_saliency, P.check_saliency_matches_autograd),
    "input_x_gradient: gradient without the input": (_ixg, P.check_input_x_gradient_identity),
    "smoothgrad: swapped target": (_smoothgrad, P.check_smoothgrad_zero_noise_is_saliency),
    "integrated_gradients: baseline dropped": (_ig, lambda: P.check_ig_completeness_on_the_chosen_baseline("blurred")),
    "occlusion: baseline dropped": (_occlusion, lambda: P.check_occlusion_is_the_drop("blurred")),
    "feature_ablation: swapped target": (_ablation, P.check_feature_ablation_is_the_drop),
    "lime (image): swapped target": (_lime_image, lambda: P.check_superpixel_method_localised("lime", {"n_samples": 200})),
    "shap (image): swapped target": (_shap_image, lambda: P.check_superpixel_method_localised("shap", {"max_evals": 120})),
    "anchors (image): swapped target": (_anchors_image, P.check_image_anchors_in_the_quadrant),
    "lime (table): wrong kernel width": (_lime_tabular, lambda: P.check_tabular_lime_matches_lime(*_gbt_table())),
    "anchors (table): swapped target": (_anchors_tabular, lambda: P.check_tabular_anchors_precision(*_wine_forest())),
    "saliency (table): swapped target": (_saliency, P.check_tabular_saliency_matches_autograd),
    "integrated_gradients (table): baseline dropped": (_ig_table, P.check_tabular_ig_completeness),
    "shap (table): background dropped": (_shap_table, P.check_tabular_shap_linear_known_answer),
    "model_randomisation: weights never randomised": (_no_randomisation, P.check_model_randomisation_passes_saliency),
    "pdp: swapped target": (_curve_target, lambda: P.check_pdp_ice_match_sklearn("pdp")),
    "ice: swapped target": (_curve_target, lambda: P.check_pdp_ice_match_sklearn("ice")),
    "ale: local effects reversed": (_ale_reversed, P.check_ale_linear_slope),
    "permutation_importance: labels mismatched": (_permutation_labels, P.check_permutation_importance_matches_sklearn),
    "ebm: swapped target": (_ebm_target, P.check_ebm_matches_interpret),
    "ebm_surrogate: fitted to shifted predictions": (_surrogate_shifted, P.check_ebm_surrogate_follows_the_model),
}


def test_every_registered_method_has_a_mutant():
    """Issue 13: the mutation check covers the whole registry (each method and data kind it serves)."""
    from studio.explainers import registry

    named = " ".join(MUTANTS)
    for method in registry.names():
        for kind in registry.REGISTRY[method]:
            both = len(registry.REGISTRY[method]) > 1
            label = f"{method} ({'table' if kind == 'tabular' else kind})" if both else method
            assert f"{label}:" in named or (both and kind == "image" and f"{method}:" in named), (method, kind)


def _gbt_table():
    from tests.conftest import MODELS, SAMPLE_DATA

    import studio

    return studio.load_model(MODELS / "tabular_gbt.skops", sandbox="off"), studio.load_dataset(SAMPLE_DATA / "breast_cancer.csv")


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_fails_its_check(name, monkeypatch):
    patch, check = MUTANTS[name]
    patch(monkeypatch)
    with pytest.raises(AssertionError):
        check()
