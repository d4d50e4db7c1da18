"""Item 9: SHAP on held-out random forests: studio / ``shap.TreeExplainer`` called directly.

The forests are trained here (scikit-learn ``RandomForestClassifier`` and
``ExtraTreesClassifier``, 3 classes, 10 features, on 1,000 and 10,000 rows of
``make_classification``), not the bundled sample. The studio explains
``sizes.local_rows`` rows with ``shap`` at its defaults (``algorithm="auto"``:
interventional TreeSHAP with a 100-row background, then path-dependent
TreeSHAP if that misses additivity, then permutation). The direct call is
the shap call that gives the values the studio returned: interventional
``shap.TreeExplainer(model, data=background, model_output="probability")``
when the studio kept it, ``shap.TreeExplainer(model,
feature_perturbation="tree_path_dependent")`` when it fell back, so the ratio
includes what the fallback costs. Each row's note gives the algorithm, its
reason and the largest difference from the direct values. Two more rows
round the features to 2 decimals (measured values with few digits, like the
wine data), where shap 0.51's interventional TreeSHAP called directly misses
additivity (it rounds each threshold to the nearest float32, so a value
equal to that rounding goes the other way than in scikit-learn); the studio
hands shap thresholds floored to float32 (the same splits on the float32
inputs scikit-learn compares), so it stays on the interventional path, and
the note gives the direct call's own additivity gap beside the difference.

Run alone: ``python -m benchmarks --only trees`` (rewrites only this section
of ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Row, median_times, missing_reason, not_measured, registered

SUITE = "trees"
GOAL = 1.5
ROWS = (1_000, 10_000)
N_TREES = {"tiny": 5, "quick": 30, "full": 50}


def _forest(kind: str, n_rows: int, n_trees: int, decimals: int | None = None):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    x, y = make_classification(n_samples=n_rows, n_features=10, n_informative=6, n_classes=3, random_state=0)
    if decimals is not None:  # measured values with few digits (like the wine data): shap's interventional misses
        x = np.round(x, decimals)
    cls = {"RandomForestClassifier": RandomForestClassifier, "ExtraTreesClassifier": ExtraTreesClassifier}[kind]
    return cls(n_estimators=n_trees, random_state=0, n_jobs=1).fit(x, y), x, y


def bench_forest(kind: str, n_rows: int, sizes, decimals: int | None = None) -> Row:
    import pandas as pd
    import shap

    import studio
    from studio.explainers.tabular_utils import sample_rows

    digits = f", features to {decimals} decimals" if decimals is not None else ""
    name = f"shap on a held-out {kind} ({n_rows:,} rows{digits}) vs shap.TreeExplainer"
    if not registered("shap", "tabular"):
        return not_measured(SUITE, name, missing_reason("shap", "tabular"), GOAL)
    n_trees = N_TREES.get(sizes.name, 50)
    est, x, y = _forest(kind, n_rows, n_trees, decimals)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["target"] = y
    data = _dataset(frame)
    model = studio.wrap_model(est)
    rows = list(range(sizes.local_rows))
    exp = studio.explain(model, data, "shap", rows=rows, cache=False)
    algorithm = exp.provenance.get("algorithm", "?")
    xs = np.asarray(data.x[rows], dtype=np.float64)
    if algorithm == "tree_interventional":
        bg = np.asarray(data.x[sample_rows(len(data), exp.params["background"], exp.params["seed"])], dtype=np.float64)

        def direct_fn():
            return shap.TreeExplainer(est, data=bg, feature_perturbation="interventional",
                                      model_output="probability")(xs, check_additivity=False).values
    else:
        def direct_fn():
            return shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")(xs, check_additivity=False).values

    def studio_fn():
        return studio.explain(model, data, "shap", rows=rows, cache=False)

    t = median_times({"studio": studio_fn, "direct": direct_fn}, sizes)
    ref = np.asarray(direct_fn())
    ref = ref[np.arange(len(rows)), :, np.asarray(exp.target)] if ref.ndim == 3 else ref
    diff = float(np.abs(ref - exp.values).max()) if algorithm != "permutation" else float("nan")
    if algorithm == "tree_interventional":  # the direct call's own additivity gap (shap's float32 threshold fault)
        sv = shap.TreeExplainer(est, data=bg, feature_perturbation="interventional",
                                model_output="probability")(xs, check_additivity=False)
        direct_gap = float(np.abs(sv.values.sum(axis=1) + sv.base_values - est.predict_proba(xs)).max())
        diff_text = f"max |SHAP diff| vs direct {diff:.1e} (direct call's own additivity gap {direct_gap:.1e})"
    else:
        diff_text = f"max |SHAP diff| vs direct {diff:.1e}"
    note = (f"{n_trees} trees, {len(rows)} rows explained; studio algorithm {algorithm} "
            f"({exp.provenance.get('algorithm_reason', '')}); additivity gap {exp.checks['additivity_gap']:.1e}; "
            + diff_text)
    return Row(SUITE, name, ours=t["studio"], ref=t["direct"], ref_label="shap", goal=GOAL, note=note)


def _dataset(frame):
    import tempfile
    from pathlib import Path

    import studio

    path = Path(tempfile.mkdtemp(prefix="studio-bench-trees-")) / "data.csv"
    frame.to_csv(path, index=False)
    return studio.load_dataset(path, label="target")


def run(sizes, device="cpu", methods=None) -> list:
    if methods and "shap" not in methods:
        return []
    rows = []
    cases = [(kind, n, None) for kind in ("RandomForestClassifier", "ExtraTreesClassifier") for n in ROWS]
    cases += [("RandomForestClassifier", n, 2) for n in ROWS]  # rounded data: shap's float32 threshold fault
    for kind, n_rows, decimals in cases:
        try:
            rows.append(bench_forest(kind, n_rows, sizes, decimals))
        except Exception as exc:
            rows.append(not_measured(SUITE, f"shap on a held-out {kind} ({n_rows:,} rows)",
                                     f"benchmark failed: {type(exc).__name__}: {exc}", GOAL))
    return rows
