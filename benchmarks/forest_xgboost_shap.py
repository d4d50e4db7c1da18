"""Section 15's SHAP part alone: the studio's path-dependent TreeSHAP routes (XGBoost rewrite, look-up tables,
shap's own path) vs shap.

The forest and tables of :mod:`benchmarks.peer_forest` (50 trees, depth 8,
20 features, binary). For each size, in one process, alternating so machine
load hits all four alike: ``studio.explain(..., "shap",
algorithm="tree_path_dependent")`` with the XGBoost route forced on
(``pred_contribs`` on all the process's threads), the same with the
look-up tables (:mod:`studio.explainers.fast_treeshap`, built anew each
run), the same on shap's own path (both off), and
``shap.TreeExplainer(forest).shap_values`` called directly. Prints
seconds (median over ``--repeats``) and the max difference of the values from shap's.

Run: ``python -m benchmarks.forest_xgboost_shap [--rows 1000 10000] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    import shap

    import studio
    from benchmarks.peer_forest import write_case
    from studio.explainers import forest_xgboost, shapley

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model_path, tables = write_case(Path(tmp), args.rows)
        model = studio.load_model(model_path, sandbox="off")
        est = model.native
        print(f"threads {forest_xgboost._threads()}, XGBoost route worthwhile: {forest_xgboost.worthwhile(est)}")
        for n in args.rows:
            data = studio.load_dataset(tables[n], label="target")
            rows = list(range(n))
            x = data.x.astype(np.float64)
            times = {"studio (XGBoost route)": [], "studio (tables)": [], "studio (shap's path)": [],
                     "shap direct": []}
            got = {}
            default, path_tables = forest_xgboost.THREADS_PER_GROUP, shapley._path_tables
            for _ in range(args.repeats):
                for key in times:
                    forest_xgboost.THREADS_PER_GROUP = 0 if key == "studio (XGBoost route)" else 10**6
                    shapley._TABLES.clear()  # the tables are built inside each timed run
                    shapley._path_tables = (lambda *a: None) if key == "studio (shap's path)" else path_tables
                    t0 = time.perf_counter()
                    if key == "shap direct":
                        got[key] = np.asarray(shap.TreeExplainer(est).shap_values(x, check_additivity=False))[..., 1]
                    else:
                        exp = studio.explain(model, data, "shap", rows=rows, target=1,
                                             params={"algorithm": "tree_path_dependent"}, cache=False)
                        got[key] = exp.values
                        got[key + " flag"] = next((k.rsplit("_", 1)[1] for k in ("tree_path_dependent_xgboost",
                                                                                  "tree_path_dependent_tables")
                                                   if exp.checks.get(k)), "shap")
                    times[key].append(time.perf_counter() - t0)
            forest_xgboost.THREADS_PER_GROUP, shapley._path_tables = default, path_tables
            ref = got["shap direct"]
            for key, ts in times.items():
                med = statistics.median(ts)
                extra = ("" if key == "shap direct" else
                         f", route {got[key + ' flag']}, max |diff| vs shap {np.abs(got[key] - ref).max():.2e}")
                print(f"{n} rows  {key:24s} {med:7.2f} s (runs {', '.join(f'{t:.2f}' for t in ts)})"
                      f"  ratio to shap {med / statistics.median(times['shap direct']):.2f}{extra}", flush=True)


if __name__ == "__main__":
    main()
