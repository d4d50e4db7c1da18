"""Figures quoted in issue 4's report (not a test; slow on 2 cores, ~5 min).

Run from the repository root: ``PYTHONPATH=. python tests/explainers/image_figures.py``
"""

import sys

import numpy as np
import torch

import studio
from studio.explainers.gradients import _ig, _row_gaps, image_baseline

sys.path.insert(0, "tests/explainers")
from image_test_models import block_images, image_dataset, quadrant_model, quadrant_share  # noqa: E402

cnn = studio.load_model("models/image_cnn.pt", sandbox="off")
d = studio.load_dataset("sample_data/digits.zip")

# IG completeness at 64 steps (Gauss-Legendre), every one of the 360 digits, no refinement
x = torch.as_tensor(d.x)
t = [int(v) for v in cnn.predict(d.x)]
f = cnn.torch_module("probabilities")
for base in ("black", "blurred", "noise"):
    b = image_baseline(x, base, 0)
    g = _row_gaps(_ig(f, cnn, x, b, t, 64), x, b, t, f).numpy()
    print(f"IG 64 steps, {base}: median gap {np.median(g):.4f}, images < 1%: {(g < 0.01).mean():.3f}, max {g.max():.3f}")
# with the default refinement (max_gap=0.01, max_steps=512), 60 digits
rows = list(range(0, 360, 6))
for base in ("black", "blurred", "noise"):
    e = studio.explain(cnn, d, "integrated_gradients", rows=rows, params={"n_steps": 64, "baseline": base}, cache=False)
    print(f"IG refined, {base}: completeness_gap {e.checks['completeness_gap']:.4f}, "
          f"rows refined {e.checks['rows_refined']:.0f}/{len(rows)}")
# quadrant model: share of |attribution| in the quadrant, worst of 3 images
for c in (1, 3):
    m = quadrant_model(c, scripted=True)
    data = image_dataset(block_images(c, n=3, seed=c))
    for meth, p in [("saliency", None), ("integrated_gradients", {"n_steps": 16}), ("grad_cam", None), ("occlusion", None),
                    ("feature_ablation", {"n_segments": 16, "segmentation": "grid"}), ("feature_ablation", {"n_segments": 16}),
                    ("shap", {"max_evals": 120})]:
        e = studio.explain(m, data, meth, rows=[0, 1, 2], params=p, cache=False)
        print(f"quadrant C={c} {meth} {p or ''}: share min {quadrant_share(e.values).min():.3f}")
e = studio.explain(cnn, d, "anchors", rows=list(range(0, 360, 36)), cache=False)
print("anchors, 10 digits: fresh precision min", round(min(r.precision for r in e.rules), 4),
      "anchor sizes", [len(r.extra["superpixels"]) for r in e.rules])
e = studio.explain(cnn, d, "lime", rows=list(range(0, 360, 36)), cache=False)
print("lime, 10 digits: lowest surrogate score", round(e.checks["score"], 3))
