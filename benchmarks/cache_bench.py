"""Item 3: the cache, for every registered method.

cold: the first ``studio.explain`` into an empty cache directory (computes and
writes); warm: the same call again in the same process (median of repeats);
restart: the same call in a fresh process (``benchmarks.worker
cache_restart``) against the directory the first process filled; model and
data are loaded and checked against each other before its clock starts, as
the app's Load page has them. Each
method runs at its default parameters on the first row (local methods),
on the first model among the samples it is compatible with.
"""

from __future__ import annotations

import tempfile

from benchmarks import common
from benchmarks.common import Row, fixture, median_times, not_measured, run_worker

SUITE = "cache"
GOAL_WARM = 0.02
GOAL_RESTART = 0.05
CANDIDATES = {"tabular": [("gbt", "table"), ("mlp", "table")], "image": [("cnn", "digits"), ("cnn_state", "digits")]}


def _pick(name, kind):
    """(model spec, data spec) of the first sample pair the method accepts, or (None, reason)."""
    from studio.explainers import registry

    explainer = registry.get(name, kind)
    reasons = []
    for model_spec, data_spec in CANDIDATES[kind]:
        model, data = fixture(model_spec), fixture(data_spec)
        ok, reason = explainer.is_compatible(model, data.aligned_to(model))
        if ok:
            return (model_spec, data_spec), explainer.scope
        reasons.append(f"{model_spec}: {reason}")
    return None, "; ".join(reasons)


def jobs_for(methods=None) -> list:
    """One job per registered (method, data kind): what the cache benchmark runs."""
    from studio.explainers import registry

    jobs = []
    for name in registry.names():
        if methods and name not in methods:
            continue
        for kind in registry.REGISTRY[name]:
            try:
                pair, scope = _pick(name, kind)
            except Exception as exc:
                jobs.append({"method": name, "kind": kind, "skip": f"could not load: {type(exc).__name__}: {exc}"})
                continue
            if pair is None:
                jobs.append({"method": name, "kind": kind, "skip": f"no compatible sample model ({scope})"})
                continue
            jobs.append({"method": name, "kind": kind, "model": pair[0], "data": pair[1],
                         "rows": [0] if scope == "local" else None, "device": "cpu"})
    return jobs


def run(sizes, device="cpu", methods=None) -> list:
    import studio
    from studio.cache import Cache

    jobs = jobs_for(methods)
    out: list = []
    done = []
    tmp = tempfile.mkdtemp(prefix="studio-bench-cache-")
    cache = Cache(tmp)
    for job in jobs:
        label = f"{job['method']} ({job['kind']})"
        if "skip" in job:
            out.append(not_measured(SUITE, f"{label} warm/cold", job["skip"], GOAL_WARM))
            continue
        job["device"] = device if job["kind"] == "image" else "cpu"
        model, data = fixture(job["model"]), fixture(job["data"])

        def call(job=job, model=model, data=data):
            return studio.explain(model, data, job["method"], rows=job["rows"], device=job["device"], cache=cache)

        try:
            exp, cold = common.timed(call)
            if exp.cache != "miss":
                raise RuntimeError(f"first call was a cache {exp.cache}")
            warm = median_times({"warm": call}, sizes)["warm"]
            hit = call()
            if hit.cache != "hit":
                raise RuntimeError("second call was not a cache hit")
        except Exception as exc:
            out.append(not_measured(SUITE, f"{label} warm/cold", f"failed: {type(exc).__name__}: {exc}", GOAL_WARM))
            continue
        job["cold"] = cold
        out.append(Row(SUITE, f"{label} warm/cold", ours=warm, ref=cold, ours_label="warm", ref_label="cold",
                       goal=GOAL_WARM, note=f"{job['model']} on {job['data']}"))
        done.append(job)
    if done:
        try:
            result = run_worker("cache_restart", {"cache_dir": tmp, "jobs": [
                {k: j[k] for k in ("method", "model", "data", "rows", "device")} for j in done]})
            for job, res in zip(done, result["jobs"]):
                label = f"{job['method']} ({job['kind']})"
                note = f"fresh process; {job['model']} on {job['data']}"
                if res["cache"] != "hit":
                    out.append(Row(SUITE, f"{label} after restart/cold", ours=res["seconds"], ref=job["cold"],
                                   ours_label="restart", ref_label="cold", goal=GOAL_RESTART, status="miss",
                                   note=note + f"; was a cache {res['cache']}, not a hit",
                                   fix="the cache key must not change between processes"))
                else:
                    out.append(Row(SUITE, f"{label} after restart/cold", ours=res["seconds"], ref=job["cold"],
                                   ours_label="restart", ref_label="cold", goal=GOAL_RESTART, note=note))
        except Exception as exc:
            out.append(not_measured(SUITE, "after restart", f"worker failed: {exc}", GOAL_RESTART))
    return out
