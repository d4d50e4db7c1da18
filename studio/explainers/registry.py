"""The explicit registry of explainers.

Each method name (DESIGN.md) maps, per data kind, to ``"module:Class"``;
modules are imported only when a method is used, so ``import studio``
stays fast. Adding a method adds one line here.
"""

from __future__ import annotations

import importlib

from studio.errors import StudioError

REGISTRY: dict[str, dict[str, str]] = {
    # ---- tabular, global -------------------------------------------------------
    "permutation_importance": {"tabular": "studio.explainers.importance:PermutationImportance"},
    # ---- tabular explainers (issue 3) -------------------------------------------
    "pdp": {"tabular": "studio.explainers.curves:PartialDependence"},
    "ice": {"tabular": "studio.explainers.curves:IndividualConditionalExpectation"},
    "ale": {"tabular": "studio.explainers.curves:AccumulatedLocalEffects"},
    "shap": {"tabular": "studio.explainers.shapley:TabularShap"},
    "lime": {"tabular": "studio.explainers.lime_tabular:TabularLime"},
    "anchors": {"tabular": "studio.explainers.anchors:TabularAnchors"},
    "ebm": {"tabular": "studio.explainers.ebm:Ebm"},
    "ebm_surrogate": {"tabular": "studio.explainers.ebm:EbmSurrogate"},
    # ---- image explainers (issue 4): in ISSUE4 below, merged per data kind -------
}

# ---- image explainers (issue 4) ---------------------------------------------------
# Merged per data kind: saliency and integrated_gradients (and shap, lime, anchors)
# also serve tables, registered by the tabular section under the same names.
ISSUE4: dict[str, dict[str, str]] = {
    "saliency": {"image": "studio.explainers.gradients:Saliency",
                 "tabular": "studio.explainers.gradients:TabularSaliency"},
    "integrated_gradients": {"image": "studio.explainers.gradients:IntegratedGradients",
                             "tabular": "studio.explainers.gradients:TabularIntegratedGradients"},
    "input_x_gradient": {"image": "studio.explainers.gradients:InputXGradient"},
    "smoothgrad": {"image": "studio.explainers.gradients:SmoothGrad"},
    "grad_cam": {"image": "studio.explainers.cam:GradCam"},
    "guided_grad_cam": {"image": "studio.explainers.cam:GuidedGradCam"},
    "occlusion": {"image": "studio.explainers.superpixels:Occlusion"},
    "feature_ablation": {"image": "studio.explainers.superpixels:FeatureAblation"},
    "lime": {"image": "studio.explainers.superpixels:Lime"},
    "anchors": {"image": "studio.explainers.superpixels:Anchors"},
    "shap": {"image": "studio.explainers.superpixels:Shap"},
    "model_randomisation": {"image": "studio.explainers.sanity:ModelRandomisation"},
}
for _name, _by_kind in ISSUE4.items():
    REGISTRY.setdefault(_name, {}).update(_by_kind)

# Where the same name serves tables and images, the order the UI lists them.
SCOPES = ("local", "global")


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
