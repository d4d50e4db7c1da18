"""Section 15 (issue 12): the peer benchmark on a held-out random forest at 1,000, 10,000 and 100,000 rows.

The forest is trained here, not the sample: scikit-learn
``RandomForestClassifier(n_estimators=50, max_depth=8)`` on 5,000 rows of
``make_classification`` (20 features, 8 informative, 2 classes, values to 3
decimals), saved with ``skops.io.dump``; the explained tables are fresh
rows from the same generator, written as CSV. Both sides load the same two
files and compute the set of section 4: SHAP values of every row,
permutation importances (one repeat, ROC AUC), and partial dependence of the
5 most important features (10 grid points over 500 sampled rows).

Same work on both sides: explainerdashboard computes a random forest's SHAP
values with ``shap.TreeExplainer(model)`` (path-dependent TreeSHAP, no
background; it takes the interventional path only for boosted models), so
the studio is asked for the same estimand (``algorithm="tree_path_dependent"``).
An informative row gives the studio at its defaults (interventional TreeSHAP
against a 100-row background) on the same table.

Each side runs in its own fresh process (``benchmarks/worker.py``
``peer_forest_studio`` / ``peer_forest_dashboard``, the dashboard in the peer
venv of section 4) and times only the computation (imports and loading
excluded), with the seconds of each part (SHAP, permutation, PDP). The
dashboard runs up to ``PEER_MAX_ROWS`` rows; above that its time is
extrapolated part by part from its own measured 1k -> 10k scaling
(``t(10n) = t(n) * t(10k) / t(1k)``) and the row says so.

Run alone: ``python -m benchmarks --only peer_forest`` (``--quick``: 1k and 10k rows).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import peer
from benchmarks.common import Row, missing_reason, not_measured, registered, run_worker

SUITE = "peer_forest"
GOAL = 0.5
ROWS = {"tiny": (200,), "quick": (1_000, 10_000), "full": (1_000, 10_000, 100_000)}
PEER_MAX_ROWS = 100_000  # the dashboard at 100k rows: about 5 minutes here
N_TRAIN = 5_000
SHAP_SAME = {"algorithm": "tree_path_dependent"}
PERM = {"n_repeats": 1, "scoring": "roc_auc_ovr", "max_rows": 0}
PDP = {"grid_resolution": 10, "max_rows": 500, "grid": "uniform"}


def write_case(folder: Path, sizes_rows) -> tuple[Path, dict]:
    """Train and save the forest (skops) and write one CSV per table size; the model's path and the tables'."""
    import pandas as pd
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    # always the full draw, so every size (and a 100k run made apart) explains the same forest
    x, y = make_classification(n_samples=N_TRAIN + max(ROWS["full"]), n_features=20, n_informative=8, n_redundant=4,
                               n_classes=2, random_state=0)
    x = np.round(x, 3)
    est = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0, n_jobs=1).fit(x[:N_TRAIN], y[:N_TRAIN])
    model_path = folder / "forest.skops"
    sio.dump(est, model_path)
    tables = {}
    for n in sizes_rows:
        frame = pd.DataFrame(x[N_TRAIN:N_TRAIN + n], columns=[f"x{i}" for i in range(x.shape[1])])
        frame["target"] = y[N_TRAIN:N_TRAIN + n]
        tables[n] = folder / f"table_{n}.csv"
        frame.to_csv(tables[n], index=False)
    return model_path, tables


def _median(runs: list, key=None) -> float:
    return statistics.median(r["seconds"] if key is None else r["parts"][key] for r in runs)


def _parts(runs: list) -> str:
    return ", ".join(f"{k} {_median(runs, k):.2f} s" for k in runs[0]["parts"])


def run(sizes, device="cpu", methods=None) -> list:
    name = "held-out random forest, SHAP + permutation importance + 5 PDPs: studio / explainerdashboard"
    if methods and not {"shap", "permutation_importance", "pdp"} & set(methods):
        return []
    for method in ("shap", "permutation_importance", "pdp"):
        if not registered(method, "tabular"):
            return [not_measured(SUITE, name, missing_reason(method, "tabular"), GOAL)]
    reason = peer.ensure_venv(create=sizes.name != "tiny")
    if reason:
        return [not_measured(SUITE, name, reason, GOAL)]
    sizes_rows = ROWS.get(sizes.name, ROWS["full"])
    folder = Path(tempfile.mkdtemp(prefix="studio-bench-peer-forest-"))
    model_path, tables = write_case(folder, sizes_rows)
    out, measured = [], {}
    for n in sizes_rows:
        args = {"model": str(model_path), "data": str(tables[n]), "perm_params": PERM, "pdp_params": PDP}
        repeats = max(1, min(2, sizes.repeats)) if n <= 1_000 else 1
        ours, theirs = [], []
        try:
            for _ in range(repeats):  # fresh processes, interleaved
                ours.append(run_worker("peer_forest_studio", {**args, "shap_params": SHAP_SAME}))
                if n <= PEER_MAX_ROWS:
                    theirs.append(run_worker("peer_forest_dashboard", args, python=str(peer.peer_python())))
        except Exception as exc:
            out.append(not_measured(SUITE, f"{name}, {n:,} rows", f"a side failed: {exc}", GOAL))
            continue
        if theirs:
            measured[n] = theirs
            ref, how = _median(theirs), f"measured, median of {len(theirs)} fresh processes"
            ref_parts = _parts(theirs)
            same = "same top-5 features" if ours[0]["features"] == theirs[0]["features"] else (
                f"top-5 differ: studio {ours[0]['features']}, dashboard {theirs[0]['features']}")
            shapes = f"SHAP {ours[0]['shap_shape']} vs {theirs[0]['shap_shape']}; {same}"
        else:
            small, big = sorted(measured)[-2:] if len(measured) >= 2 else (None, None)
            if small is None:
                out.append(not_measured(SUITE, f"{name}, {n:,} rows", "no two measured peer sizes to extrapolate "
                                        "from", GOAL))
                continue
            factor = n / big
            parts = {k: _median(measured[big], k) * (_median(measured[big], k) / _median(measured[small], k))
                     ** np.log10(factor) for k in measured[big][0]["parts"]}
            ref = sum(parts.values())
            how = (f"EXTRAPOLATED, not measured: each part at {big:,} rows times its own measured {small:,} -> "
                   f"{big:,} growth")
            ref_parts = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
            shapes = f"SHAP {ours[0]['shap_shape']}"
        out.append(Row(SUITE, f"{name}, {n:,} rows", ours=_median(ours), ref=ref, ref_label="dashboard", goal=GOAL,
                       note=f"50 trees, depth 8, trained on {N_TRAIN:,} other rows; studio SHAP "
                            f"{ours[0]['algorithm']} (the dashboard's estimand for forests; route "
                            f"{ours[0].get('route', '?')}); studio parts: "
                            f"{_parts(ours)} (median of {len(ours)}); dashboard ({how}): {ref_parts}; {shapes}"))
    default_n = min(sizes_rows)
    try:  # the studio at its defaults: interventional TreeSHAP against 100 background rows
        args = {"model": str(model_path), "data": str(tables[default_n]), "perm_params": PERM, "pdp_params": PDP}
        runs = [run_worker("peer_forest_studio", args)]
        if default_n in measured:
            out.append(Row(SUITE, f"the same at the studio's SHAP default (interventional), {default_n:,} rows",
                           ours=_median(runs), ref=_median(measured[default_n]), ref_label="dashboard",
                           note=f"informative: a different SHAP estimand (absent features drawn from a 100-row "
                                f"background) than the dashboard's path-dependent one; studio parts: {_parts(runs)}"))
    except Exception as exc:
        out.append(not_measured(SUITE, "the same at the studio's SHAP default", f"failed: {exc}"))
    return out
