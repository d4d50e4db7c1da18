"""Work done in a fresh process: ``python -m benchmarks.worker TASK`` (JSON args on stdin).

Tasks
-----
cache_restart
    Load the models and data named in ``jobs`` and time ``studio.explain``
    against an existing cache directory (results cached by an earlier
    process): the cost of a cached result after a restart.
scaling
    Time studio methods on the sample table resampled to ``n_rows`` rows,
    with the peak RSS of each call (the kernel's peak mark is reset before
    each method).
peer_studio
    The studio computing SHAP values (every row), permutation importances and
    PDPs of the 5 most important features on the sample tabular model.
peer_dashboard
    explainerdashboard's ClassifierExplainer computing the same set (run with
    the peer venv's python).
peer_forest_studio, peer_forest_dashboard
    The same set on a held-out random forest and table given as files
    (section 15, ``benchmarks/peer_forest.py``), each part timed.

Each prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from benchmarks import common

CONTROL = "model predict_proba on 20x the rows (no studio)"


def _model(spec: str):
    return common.fixture(spec)


def _data(spec: str):
    if spec in ("table", "digits"):
        return common.fixture(spec)
    if spec.startswith("scaled:"):
        return common.resampled_table(int(spec.split(":", 1)[1]))
    raise ValueError(f"unknown data spec {spec!r}")


def cache_restart(args: dict) -> dict:
    import studio
    from studio.cache import Cache

    cache = Cache(args["cache_dir"])
    loaded: dict = {}
    out = []
    for job in args["jobs"]:
        key = (job["model"], job["data"])
        if key not in loaded:
            loaded[key] = (_model(job["model"]), _data(job["data"]))
            loaded[key][1].aligned_to(loaded[key][0])  # checked against the model at load, as the Load page does
        model, data = loaded[key]
        start = time.perf_counter()
        exp = studio.explain(model, data, job["method"], rows=job.get("rows"), params=job.get("params"),
                             device=job.get("device", "cpu"), cache=cache)
        out.append({"method": job["method"], "seconds": time.perf_counter() - start, "cache": exp.cache})
    return {"jobs": out}


def scaling(args: dict) -> dict:
    """Every size in this one process, interleaved: for each repeat, each size in turn, each method in turn,
    so the machine's load moves all sizes alike; ``repeats[i]`` timed runs for size i (median reported)."""
    import statistics

    import studio

    model = _model("gbt")
    datas = [_data(f"scaled:{n}") for n in args["n_rows"]]
    small = datas[0].subset(list(range(min(50, len(datas[0])))))
    for job in args["jobs"]:  # warm-up on 50 rows: imports and first-call costs stay out of the clock
        if job["method"] != CONTROL:
            studio.explain(model, small, job["method"], rows=[0] if job.get("rows") else None,
                           params=job.get("params"), cache=False)
    results = {(i, job["method"]): {"seconds": [], "peak_over": 0, "peak_rss": 0}
               for i in range(len(datas)) for job in args["jobs"]}
    for r in range(max(args["repeats"])):
        for i, data in enumerate(datas):
            if r >= args["repeats"][i]:
                continue
            for job in args["jobs"]:
                rows = list(range(len(data))) if job.get("rows") == "all" else job.get("rows")
                common.reset_peak_rss()
                before = common.rss_bytes()
                start = time.perf_counter()
                if job["method"] == CONTROL:  # the model alone, no studio: scikit-learn on 20 copies of the rows
                    model.native.predict_proba(np.tile(np.asarray(data.x, dtype=np.float64), (20, 1)))
                else:
                    studio.explain(model, data, job["method"], rows=rows, params=job.get("params"), cache=False)
                res = results[(i, job["method"])]
                res["seconds"].append(time.perf_counter() - start)
                peak = common.peak_rss_bytes()
                res["peak_over"] = max(res["peak_over"], peak - before)
                res["peak_rss"] = max(res["peak_rss"], peak)
    sizes = []
    for i, data in enumerate(datas):
        jobs = []
        for job in args["jobs"]:
            res = results[(i, job["method"])]
            jobs.append({"method": job["method"], "seconds": statistics.median(res["seconds"]),
                         "runs": len(res["seconds"]), "peak_rss": res["peak_rss"], "peak_over": res["peak_over"]})
        sizes.append({"n_rows": len(data), "jobs": jobs})
    return {"sizes": sizes}


def peer_studio(args: dict) -> dict:
    import studio

    import shap  # noqa: F401  (imported before the clock, as explainerdashboard's import does)
    import sklearn.inspection  # noqa: F401

    model = _model("gbt")
    data = _data("table")
    if args.get("n_rows"):
        data = data.subset(list(range(args["n_rows"])))
    load_peak = common.peak_rss_bytes()
    common.reset_peak_rss()
    start_rss = common.rss_bytes()
    start = time.perf_counter()
    rows = list(range(len(data)))
    shap_exp = studio.explain(model, data, "shap", rows=rows, params=args.get("shap_params"), cache=False)
    perm = studio.explain(model, data, "permutation_importance", params=args.get("perm_params"), cache=False)
    top = sorted(perm.importances, key=lambda imp: -imp.mean)[:5]
    features = [imp.feature for imp in top]
    pdp_params = dict(args.get("pdp_params") or {})
    pdp_params["features"] = ",".join(features) if args.get("features_as_str") else features
    pdp = studio.explain(model, data, "pdp", params=pdp_params, cache=False)
    seconds = time.perf_counter() - start
    compute_peak = common.peak_rss_bytes()
    return {"seconds": seconds, "peak_rss": max(load_peak, compute_peak), "compute_peak_rss": compute_peak, "start_rss": start_rss, "features": features,
            "shap_shape": list(shap_exp.values.shape), "n_curves": len(pdp.curves)}


def peer_dashboard(args: dict) -> dict:
    import logging

    import pandas as pd

    logging.disable(logging.WARNING)
    from explainerdashboard import ClassifierExplainer

    from studio.models.loaders import load_model

    model = load_model(common.MODELS / "tabular_gbt.skops", sandbox="off").native
    frame = pd.read_csv(common.SAMPLE_DATA / "breast_cancer.csv")
    if args.get("n_rows"):
        frame = frame.iloc[: args["n_rows"]]
    y = frame.pop("target")
    load_peak = common.peak_rss_bytes()
    common.reset_peak_rss()
    start_rss = common.rss_bytes()
    start = time.perf_counter()
    explainer = ClassifierExplainer(model, frame, y)
    shap_df = explainer.get_shap_values_df()
    perm = explainer.get_permutation_importances_df()
    features = list(perm["Feature"][:5])
    pdps = [explainer.pdp_df(col) for col in features]
    seconds = time.perf_counter() - start
    compute_peak = common.peak_rss_bytes()
    return {"seconds": seconds, "peak_rss": max(load_peak, compute_peak), "compute_peak_rss": compute_peak, "start_rss": start_rss, "features": features,
            "shap_shape": list(shap_df.shape), "n_curves": len(pdps),
            "explainer_shap": str(getattr(explainer, "shap", "")), "model_output": str(explainer.model_output)}


def apptest_local(args: dict) -> dict:
    """The Local page's script alone (Streamlit's AppTest, no browser): a cold run of the default methods into
    ``cache_dir``, then in new sessions, 'Run explainers' answered from that disk cache (median of 3)."""
    import logging
    import os
    import statistics

    logging.disable(logging.WARNING)
    os.environ["STUDIO_CACHE_DIR"] = args["cache_dir"]
    from streamlit.testing.v1 import AppTest

    def session():
        at = AppTest.from_file(str(common.ROOT / "app.py"), default_timeout=600)
        at.run()  # the router, as a browser session starts
        at.switch_page("pages/local.py").run()
        button = next(b for b in at.button if b.label == "Run explainers")
        start = time.perf_counter()
        button.click().run()
        if at.exception:
            raise RuntimeError(at.exception[0].value)
        return time.perf_counter() - start

    cold = session()
    cached = [session() for _ in range(3)]
    return {"cold": cold, "cached": statistics.median(cached)}


def first_call(args: dict) -> dict:
    """``load_model`` + one 1-row prediction of the sample GBT in this fresh process (sandboxed or not); with
    ``spare``, a spare worker is started and ready first, as a server keeps one."""
    import studio
    from studio.sandbox import client

    data = common.fixture("table")
    if args.get("spare"):
        os.environ["STUDIO_SANDBOX_SPARE"] = "1"
        client.keep_spare(True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            spare = client._spares.get(args["sandbox"])
            if spare is not None and spare.ready:
                break
            time.sleep(0.05)
    start = time.perf_counter()
    model = studio.load_model(common.MODELS / "tabular_gbt.skops", sandbox=args["sandbox"])
    model.predict(data.x[:1])
    return {"seconds": time.perf_counter() - start}


TASKS = {"first_call": first_call, "cache_restart": cache_restart, "scaling": scaling, "peer_studio": peer_studio, "peer_dashboard": peer_dashboard,
         "apptest_local": apptest_local}


# ---- section 15: the peer benchmark on a held-out random forest (benchmarks/peer_forest.py) -------------------------
def _timed(steps) -> tuple[dict, float]:
    """Run ``steps`` (name, fn) in order; the seconds of each and in all."""
    seconds = {}
    start = time.perf_counter()
    for name, fn in steps:
        t = time.perf_counter()
        fn()
        seconds[name] = time.perf_counter() - t
    return seconds, time.perf_counter() - start


def peer_forest_studio(args: dict) -> dict:
    """The studio's share of section 15: SHAP of every row, permutation importance, PDPs of the top 5."""
    import studio

    import shap  # noqa: F401  (imported before the clock, as explainerdashboard's import does)
    import sklearn.inspection  # noqa: F401

    model = studio.load_model(args["model"], sandbox="off")
    data = studio.load_dataset(args["data"], label="target")
    data.aligned_to(model)
    got: dict = {}
    rows = list(range(len(data)))

    def shap_step():
        got["shap"] = studio.explain(model, data, "shap", rows=rows, params=args.get("shap_params"), cache=False)

    def perm_step():
        got["perm"] = studio.explain(model, data, "permutation_importance", params=args.get("perm_params"),
                                     cache=False)
        got["top"] = [imp.feature for imp in sorted(got["perm"].importances, key=lambda imp: -imp.mean)[:5]]

    def pdp_step():
        got["pdp"] = studio.explain(model, data, "pdp", params={**(args.get("pdp_params") or {}),
                                                                 "features": got["top"]}, cache=False)

    common.reset_peak_rss()
    seconds, total = _timed([("shap", shap_step), ("permutation", perm_step), ("pdp", pdp_step)])
    return {"seconds": total, "parts": seconds, "features": got["top"], "shap_shape": list(got["shap"].values.shape),
            "algorithm": got["shap"].provenance.get("algorithm"), "peak_rss": common.peak_rss_bytes(),
            "route": next((key for key in ("tree_path_dependent_tables", "tree_path_dependent_xgboost")
                           if got["shap"].checks.get(key)), "shap's own path")}


def peer_forest_dashboard(args: dict) -> dict:
    """explainerdashboard's ClassifierExplainer on the same forest and table, at its defaults."""
    import logging

    import pandas as pd

    logging.disable(logging.WARNING)
    from explainerdashboard import ClassifierExplainer

    from studio.models.loaders import load_model

    model = load_model(args["model"], sandbox="off").native
    frame = pd.read_csv(args["data"])
    y = frame.pop("target")
    got: dict = {}

    def shap_step():
        got["explainer"] = ClassifierExplainer(model, frame, y)
        got["shap"] = got["explainer"].get_shap_values_df()

    def perm_step():
        got["top"] = list(got["explainer"].get_permutation_importances_df()["Feature"][:5])

    def pdp_step():
        got["pdps"] = [got["explainer"].pdp_df(col) for col in got["top"]]

    common.reset_peak_rss()
    seconds, total = _timed([("shap", shap_step), ("permutation", perm_step), ("pdp", pdp_step)])
    return {"seconds": total, "parts": seconds, "features": got["top"], "shap_shape": list(got["shap"].shape),
            "peak_rss": common.peak_rss_bytes()}


TASKS.update({"peer_forest_studio": peer_forest_studio, "peer_forest_dashboard": peer_forest_dashboard})


def main() -> int:
    task = sys.argv[1]
    args = json.loads(sys.stdin.read() or "{}")
    result = TASKS[task](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

