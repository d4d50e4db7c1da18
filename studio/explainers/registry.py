"""The explicit registry of explainers.

Each method name (DESIGN.md) maps, per data kind, to ``"module:Class"``;
modules are imported only when a method is used, so ``import studio``
stays fast. Adding a method adds one line here.
"""

from __future__ import annotations

import importlib

from studio.errors import StudioError

_GRAD = "studio.explainers.gradients"
_PIX = "studio.explainers.superpixels"

REGISTRY: dict[str, dict[str, str]] = {
    # ---- local: one row or image at a time ------------------------------------------
    "shap": {"tabular": "studio.explainers.shapley:TabularShap", "image": f"{_PIX}:Shap"},
    "lime": {"tabular": "studio.explainers.lime_tabular:TabularLime", "image": f"{_PIX}:Lime"},
    "anchors": {"tabular": "studio.explainers.anchors:TabularAnchors", "image": f"{_PIX}:Anchors"},
    "saliency": {"tabular": f"{_GRAD}:TabularSaliency", "image": f"{_GRAD}:Saliency"},
    "integrated_gradients": {"tabular": f"{_GRAD}:TabularIntegratedGradients", "image": f"{_GRAD}:IntegratedGradients"},
    "input_x_gradient": {"image": f"{_GRAD}:InputXGradient"},
    "smoothgrad": {"image": f"{_GRAD}:SmoothGrad"},
    "grad_cam": {"image": "studio.explainers.cam:GradCam"},
    "guided_grad_cam": {"image": "studio.explainers.cam:GuidedGradCam"},
    "occlusion": {"image": f"{_PIX}:Occlusion"},
    "feature_ablation": {"image": f"{_PIX}:FeatureAblation"},
    "model_randomisation": {"image": "studio.explainers.sanity:ModelRandomisation"},
    # ---- global: the model over the whole dataset -----------------------------------
    "pdp": {"tabular": "studio.explainers.curves:PartialDependence"},
    "ice": {"tabular": "studio.explainers.curves:IndividualConditionalExpectation"},
    "ale": {"tabular": "studio.explainers.curves:AccumulatedLocalEffects"},
    "permutation_importance": {"tabular": "studio.explainers.importance:PermutationImportance"},
    "ebm_surrogate": {"tabular": "studio.explainers.ebm:EbmSurrogate"},
    "ebm": {"tabular": "studio.explainers.ebm:Ebm"},
}


def names() -> list[str]:
    """Every registered method name."""
    return list(REGISTRY)


def get(name: str, data_kind: str):
    """The explainer instance registered for ``name`` and ``data_kind``."""
    if name not in REGISTRY:
        raise StudioError(f"unknown method {name!r}; known methods: {', '.join(sorted(REGISTRY))}")
    by_kind = REGISTRY[name]
    if data_kind not in by_kind:
        kinds = " and ".join(by_kind)
        raise StudioError(f"method {name!r} works on {kinds} data, not {data_kind} data")
    module_name, cls_name = by_kind[data_kind].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls()
