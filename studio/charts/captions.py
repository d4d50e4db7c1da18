"""Words for charts: what is explained (class or output, in the model's names), in which unit, on which row.

Pure functions of an :class:`~studio.explanation.Explanation` (and the data
for the row's feature values), used by the pages and the report, so a chart
is never shown without saying what its numbers are. Units follow what each
method computes (DESIGN.md: gradient and perturbation methods explain the
probability, softmax of the logits; an EBM scores in logits; regression in
the target's own units).
"""

from __future__ import annotations

import numpy as np

from studio.explanation import Explanation

UNITS = {
    "shap": "SHAP value: contribution to the {out} (base value + contributions = the model's {out})",
    "integrated_gradients": "contribution to the {out} from the baseline (they add up to f(input) - f(baseline))",
    "input_x_gradient": "input x gradient of the {out}",
    "saliency": "|gradient| of the {out}: sensitivity, no unit",
    "smoothgrad": "|gradient| of the {out}, averaged over noisy copies: sensitivity, no unit",
    "lime": "weight in LIME's local linear fit of the {out}",
    "occlusion": "drop in the {out} when a patch is hidden",
    "feature_ablation": "drop in the {out} when a superpixel is hidden",
    "grad_cam": "Grad-CAM activation for the {cls}: where the model looks, relative (no unit), never negative",
    "guided_grad_cam": "guided Grad-CAM for the {cls}: relative (no unit)",
    "model_randomisation": "|map| of the {out}: relative",
    "anchors": "an IF-THEN rule: where it holds, the model predicts the {cls}",
    "permutation_importance": "drop in the model's score (accuracy, or R^2 for regression) when the feature is shuffled",
    "pdp": "average {out} (partial dependence)",
    "ice": "{out} of each row (individual conditional expectation)",
    "ale": "accumulated local effect on the {out}",
    "ebm": "EBM term score in {logit} (a glass-box model fitted to the data)",
    "ebm_surrogate": "EBM term score in {logit} (a glass-box model fitted to the model's predictions)",
}
"""What one number of each method's result is, with ``{out}`` the explained output (``probability of
"malignant"``), ``{cls}`` the class and ``{logit}`` the EBM's own scale."""

LOGIT_METHODS = ("ebm", "ebm_surrogate")


def class_of(exp: Explanation) -> str | None:
    """The explained class name when one class is explained (``"malignant"``), else None."""
    names = exp.output_names or []
    targets = [t for t in dict.fromkeys(exp.target or []) if t is not None]
    if len(targets) != 1 or names == ["prediction"]:
        return None
    t = int(targets[0])
    return str(names[t]) if 0 <= t < len(names) else str(t)


def output_text(exp: Explanation, target_name: str | None = None) -> str:
    """The explained output in words: ``probability of "malignant"``, ``probability of each row's predicted class``,
    or ``predicted <target>`` for regression (``target_name``: the data's label column)."""
    if _is_regression(exp):
        output = class_of(exp)  # a multi-output regressor's explained output
        if output is not None:
            return f'predicted "{output}"'
        return f"predicted {target_name}" if target_name else "prediction (the target's units)"
    cls = class_of(exp)
    if cls is not None:
        return f'probability of "{cls}"'
    return "probability of each row's predicted class"


def unit_text(exp: Explanation, target_name: str | None = None) -> str:
    """What each number of ``exp`` is, in the model's names, e.g. ``SHAP value: contribution to the probability
    of "malignant" (...)``."""
    out = output_text(exp, target_name)
    cls = class_of(exp)
    regression = _is_regression(exp)
    logit = (f"the target's units ({target_name})" if target_name else "the target's units") if regression else (
        f'logit (log-odds) of "{cls}"' if cls else "logit (log-odds)")
    template = UNITS.get(exp.method, "{out}")
    return template.format(out=out, cls=f'class "{cls}"' if cls else "explained class", logit=logit)


def _is_regression(exp: Explanation) -> bool:
    task = (exp.provenance or {}).get("task") if isinstance(exp.provenance, dict) else None
    if task:
        return task == "regression"
    return (exp.output_names or ["prediction"]) == ["prediction"]


def axis_unit(exp: Explanation, target_name: str | None = None) -> str:
    """A short axis title: ``contribution to P(malignant)``, ``logit of malignant``, ``predicted price``."""
    cls = class_of(exp)
    regression = _is_regression(exp)
    if exp.method in LOGIT_METHODS and not regression:
        return f"logit of {cls}" if cls else "logit"
    p = (target_name or "prediction") if regression else (f"P({cls})" if cls else "P(predicted class)")
    if exp.kind == "attribution":
        if exp.method in ("saliency", "smoothgrad", "grad_cam", "guided_grad_cam"):
            return f"sensitivity of {p}"
        return f"contribution to {p}"
    if exp.method == "permutation_importance":
        return "drop in score"
    return p


def scale_key(exp: Explanation) -> str:
    """Which axis a curve may share: ``"logit"`` for EBMs of classifiers, else ``"output"`` (probability or the
    target's units). Curves with different keys are never drawn on one axis."""
    regression = _is_regression(exp)
    return "logit" if exp.method in LOGIT_METHODS and not regression else "output"


def row_values(exp: Explanation, row: int | None, features=None, limit: int = 6, data=None) -> str:
    """The row's feature values as ``name = value`` (the ``limit`` features of ``features``, or the largest
    |attribution|), 3 significant figures; empty when the explanation does not carry the inputs."""
    if exp.feature_names is None:
        return ""
    pos = exp.rows.index(row) if exp.rows and row in exp.rows else 0
    inputs = None
    if exp.data is not None and np.asarray(exp.data).ndim == 2:
        inputs = np.asarray(exp.data)[pos]
    elif data is not None and data.kind == "tabular" and row is not None and row < len(data):
        inputs = np.asarray(data.x[row])
    if inputs is None:
        return ""
    names = list(exp.feature_names)
    if features is None and exp.values is not None and np.asarray(exp.values).ndim == 2:
        order = np.abs(np.asarray(exp.values, dtype=float)[pos]).argsort()[::-1]
        features = [names[i] for i in order]
    features = [f for f in (features or names) if f in names][:limit]
    return ", ".join(f"{f} = {_short(inputs[names.index(f)])}" for f in features)


def _short(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return str(v)
    if abs(f) >= 1e5:
        return f"{f:.2e}"
    return f"{f:,.0f}" if abs(f) >= 1000 else f"{f:.3g}"


def explained_caption(exp: Explanation, row: int | None = None, target_name: str | None = None) -> str:
    """One line above a chart: ``Explains the probability of "malignant" · unit: SHAP value: ...``."""
    what = output_text(exp, target_name)
    if scale_key(exp) == "logit":
        cls = class_of(exp)
        what = f'EBM score for "{cls}"' if cls else "EBM score"
    return f"Explains the {what}" + (f" for row {row}" if row is not None else "") + \
        f" · unit: {unit_text(exp, target_name)}"
