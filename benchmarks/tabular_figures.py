"""Correctness figures of the tabular explainers (issue 3), measured on the samples.

Run: ``python -m benchmarks.tabular_figures`` (about 2 minutes on 2 cores).
Prints one line per figure: SHAP additivity gaps per path, PDP/ICE against
scikit-learn, ALE against a direct loop, anchors' precision on fresh samples
(ours and anchor-exp's), EBM reconstruction and surrogate fidelity.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "explainers"))


def main():
    import torch

    torch.set_num_threads(1)
    import tabular_models as tm
    from test_anchors import fresh_precision
    from test_curves import _ale_loop

    import studio
    from studio.explainers.ebm import ebm_score

    table = studio.load_dataset(ROOT / "sample_data" / "breast_cancer.csv")
    gbt = studio.load_model(ROOT / "models" / "tabular_gbt.skops", sandbox="off")
    mlp = studio.load_model(ROOT / "models" / "tabular_mlp.pt", sandbox="off")
    onnx = studio.load_model(ROOT / "models" / "tabular_mlp.onnx", sandbox="off")
    rows = list(range(0, 569, 12))  # 48 rows

    def gap(model, data, exp):
        cols = exp.target or [0] * len(exp.rows)
        fx = model.output(data.x[exp.rows])[np.arange(len(exp.rows)), cols]
        return float(np.abs(exp.base_values + exp.values.sum(axis=1) - fx).max())

    print("# SHAP additivity gap, max over rows of |base + sum(values) - model.output|")
    for name, model, data, params in [
        ("gbt skops, auto (tree, probability)", gbt, table, {"background": 100}),
        ("mlp torchscript, gradient (expected gradients, 200 samples)", mlp, table,
         {"algorithm": "gradient", "background": 100}),
        ("mlp torchscript, auto", mlp, table, {"background": 50, "max_evals": 200}),
        ("mlp onnx, auto (permutation)", onnx, table, {"background": 50, "max_evals": 200}),
        ("wine random forest, auto", *tm.wine_forest(), {"background": 100}),
        ("diabetes GBR (regression), auto (tree)", *tm.diabetes_gbr(), {"background": 100}),
    ]:
        r = [x for x in rows if x < len(data)]
        exp = studio.explain(model, data, "shap", rows=r, params=params, cache=False)
        paths = [k[5:] for k in exp.checks if k.startswith("path_")]
        extra = {k: v for k, v in exp.checks.items() if k.endswith("_additivity_gap") and k != "additivity_gap"}
        print(f"{name}: rows={len(r)} path={paths[0]} gap={gap(model, data, exp):.3g} "
              f"relative={exp.checks['additivity_gap_relative']:.3g} {extra or ''}")

    print("# PDP / ICE against sklearn.inspection.partial_dependence(method='brute'), max |diff|")
    from sklearn.inspection import partial_dependence

    for name, model, data, feats in [("gbt", gbt, table, ["mean radius", "worst area:mean texture"]),
                                     ("diabetes GBR", *tm.diabetes_gbr(), ["bmi", "s5:bp"])]:
        exp = studio.explain(model, data, "pdp", params={"features": feats, "grid": "uniform", "max_rows": 0},
                             cache=False)
        for c, f in zip(exp.curves, feats):
            ref = partial_dependence(model.native, data.frame, f.split(":"), method="brute", grid_resolution=20)
            print(f"{name} {f}: {np.abs(c.average - ref['average'][0 if not model.is_classifier else 0]).max():.3g}")

    print("# ALE against a direct per-row loop (gbt, 'mean texture', 10 bins, 120 rows), max |diff|")
    exp = studio.explain(gbt, table, "ale", params={"features": ["mean texture"], "grid_resolution": 10,
                                                    "max_rows": 120, "seed": 7}, cache=False)
    sample = np.sort(np.random.default_rng(7).choice(len(table), 120, replace=False))
    ref = _ale_loop(gbt, table.x[sample], 1, exp.curves[0].grid[0], target=1)
    print(f"{np.abs(exp.curves[0].average - ref).max():.3g}")

    print("# Anchors: precision on 2000 fresh samples (threshold 0.95); anchor-exp on the same rows")
    from anchor.anchor_tabular import AnchorTabularExplainer

    ref_explainer = AnchorTabularExplainer(gbt.class_names, table.feature_names, table.x)
    for r in (0, 5, 7):
        target = int(gbt.predict(table.x[[r]])[0])
        t0 = time.perf_counter()
        ours = studio.explain(gbt, table, "anchors", rows=[r], cache=False).rules[0]
        t1 = time.perf_counter()
        np.random.seed(r)
        ref = ref_explainer.explain_instance(table.x[r], gbt.predict, threshold=0.95)
        t2 = time.perf_counter()
        ref_rule = studio.Rule(row=r, predicates=[n.replace(" = ", " == ") for n in ref.names()], precision=0,
                               coverage=0)
        print(f"row {r}: studio {fresh_precision(gbt, table, ours, target):.3f} ({len(ours.predicates)} preds, "
              f"{t1 - t0:.1f}s) | anchor-exp {fresh_precision(gbt, table, ref_rule, target):.3f} "
              f"(its own estimate {ref.precision():.3f}, {len(ref.names())} preds, {t2 - t1:.1f}s)")

    print("# EBM: |intercept + terms - EBM score| from the curves; surrogate fidelity on held-out rows")
    from interpret.glassbox import ExplainableBoostingClassifier

    params = {"interactions": 3, "max_rounds": 300, "outer_bags": 2, "max_rows": 0}
    exp = studio.explain(gbt, table, "ebm", params=params, cache=False)
    ebm = ExplainableBoostingClassifier(interactions=3, max_rounds=300, outer_bags=2, max_bins=256, n_jobs=1,
                                        random_state=0).fit(table.frame, table.y)
    print(f"ebm gbt data: max |diff| = {np.abs(ebm_score(exp, table.x) - ebm.decision_function(table.frame)).max():.3g}")
    for name, model, data in [("gbt", gbt, table), ("mlp", mlp, table), ("onnx", onnx, table),
                              ("diabetes GBR", *tm.diabetes_gbr())]:
        exp = studio.explain(model, data, "ebm_surrogate", params=params, cache=False)
        print(f"ebm_surrogate {name}: fidelity={exp.checks['fidelity']:.3f} (train {exp.checks['fidelity_train']:.3f})")


if __name__ == "__main__":
    main()
