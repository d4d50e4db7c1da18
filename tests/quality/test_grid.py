"""The resumable scenario grid: an assessment interrupted part way computes only the missing scenarios when run
again (in this process or in a new one, through the CLI), and ends with the numbers of an uninterrupted run."""

import json
import subprocess
import sys

import pytest

import studio
from studio.quality import grid
from tests.conftest import MODELS, ROOT, SAMPLE_DATA

ROWS = [0, 1, 2, 3]
PARAMS = {"shap": {"background": 20}, "lime": {"num_samples": 100}}
ARGS = dict(rows=ROWS, severities=(1, 2, 3), seed=5, method_params=PARAMS, faithfulness=("deletion", "infidelity"))
N = 2 * 1 * 3  # methods x attacks x severities


class Stop(Exception):
    pass


def _stop_after(k):
    """A progress callback that raises once ``k`` scenarios have finished (as a closed app or a killed job)."""
    seen = []

    def progress(fraction, message):
        if message.startswith("scenario "):
            seen.append(message)
            if len(seen) == k:
                raise Stop(message)

    return progress


def _counting(monkeypatch):
    """Count studio.explain calls, split into clean rows and perturbed ones (assess calls it by module attribute)."""
    calls = []
    real = studio.explain

    def explain(model, data, method, **kw):
        calls.append((method, data.fingerprint))
        return real(model, data, method, **kw)

    monkeypatch.setattr(studio, "explain", explain)
    return calls


@pytest.fixture(scope="module")
def uninterrupted(gbt, table):
    return studio.assess(gbt, table, ["shap", "lime"], ["noise"], cache=False, **ARGS)


def test_an_interrupted_grid_resumes_with_only_the_missing_scenarios(gbt, table, uninterrupted, monkeypatch):
    assert uninterrupted.provenance["grid"] == {"scenarios": N, "reused": 0, "computed": N, "cache": False,
                                                "units_reused": 0, "units_computed": 2 * 2 + 1 + 3 + N}
    kept = [r["value"] for r in uninterrupted.numbers("performance") if r["metric"] == "prediction_kept"]
    assert kept == [1.0, 1.0, 1.0]  # so every scenario re-explains: one explain call per computed scenario
    with pytest.raises(Stop, match="scenario 4 of 6"):
        studio.assess(gbt, table, ["shap", "lime"], ["noise"], progress=_stop_after(4), **ARGS)
    calls = _counting(monkeypatch)
    messages = []
    resumed = studio.assess(gbt, table, ["shap", "lime"], ["noise"], progress=lambda f, m: messages.append(m), **ARGS)
    assert resumed.provenance["grid"]["reused"] == 4 and resumed.provenance["grid"]["computed"] == N - 4
    assert len(calls) == N - 4 and table.fingerprint not in {fp for _, fp in calls}  # no clean explanation again
    assert messages[-2] == "scenario 6 of 6: lime under noise severity 3 (4 reused from the cache)"
    assert json.dumps(resumed.numbers()) == json.dumps(uninterrupted.numbers())
    assert resumed.curves == uninterrupted.curves
    # the drill-down's arrays come back with the numbers, reused or not
    for method in ("shap", "lime"):
        a, b = resumed.scenario(method, "noise", 2), uninterrupted.scenario(method, "noise", 2)
        assert (a.x_perturbed == b.x_perturbed).all() and (a.attribution_perturbed == b.attribution_perturbed).all()
        assert a.numbers == b.numbers
    again = studio.assess(gbt, table, ["shap", "lime"], ["noise"], **ARGS)
    assert again.provenance["grid"]["reused"] == N and again.provenance["grid"]["units_computed"] == 0
    assert len(calls) == N - 4


def test_another_seed_or_method_parameter_is_another_scenario(gbt, table):
    studio.assess(gbt, table, ["shap"], ["noise"], **{**ARGS, "severities": (1,)})
    other_seed = studio.assess(gbt, table, ["shap"], ["noise"], **{**ARGS, "severities": (1,), "seed": 6})
    other_param = studio.assess(gbt, table, ["shap"], ["noise"], **{**ARGS, "severities": (1,),
                                                                   "method_params": {"shap": {"background": 21}}})
    assert other_seed.provenance["grid"]["reused"] == 0 and other_param.provenance["grid"]["reused"] == 0


def test_scenario_shows_a_cells_inputs_and_explanations(uninterrupted, table):
    sc = uninterrupted.scenario("lime", "noise", 3)
    assert sc.rows == ROWS and sc.params == {"sigma_stds": pytest.approx(0.3)}
    assert (sc.x_clean == table.x[ROWS]).all() and not (sc.x_perturbed == sc.x_clean).all()
    assert sc.attribution_clean.shape == sc.attribution_perturbed.shape == (4, table.n_features)
    cell = [r["value"] for r in uninterrupted.numbers("resilience") if (r["method"], r["attack"], r["severity"],
            r["metric"]) == ("lime", "noise", 3, "rank_correlation")]
    assert sc.numbers["rank_correlation"] == cell[0] == pytest.approx(sc.rank_correlation_rows.mean())
    assert sc.numbers["prediction_kept"] == 1.0 and sc.kept.all()
    with pytest.raises(studio.StudioError, match="no scenario lime under blur"):
        uninterrupted.scenario("lime", "blur", 3)


def test_a_corrupt_unit_is_recomputed(gbt, table):
    from studio.cache import Cache

    studio.assess(gbt, table, ["shap"], ["noise"], **{**ARGS, "severities": (1,)})
    cache = Cache()
    entries = cache.entries()
    assert len(entries) == 5  # clean, random order, faithfulness, perturbation, scenario
    for path, _, _ in entries:  # a truncated file fails its tag: a miss
        path.write_bytes(path.read_bytes()[:-7])
    res = studio.assess(gbt, table, ["shap"], ["noise"], **{**ARGS, "severities": (1,)})
    assert res.provenance["grid"]["units_reused"] == 0 and res.provenance["grid"]["units_computed"] == 5
    with pytest.raises(ValueError):
        grid.decode(b"not an npz")


def test_the_cli_resumes_after_a_restart(gbt, table, uninterrupted, tmp_path):
    """An in-process run stopped after 2 scenarios; a new process (the CLI) reuses them and computes the rest."""
    with pytest.raises(Stop):
        studio.assess(gbt, table, ["shap", "lime"], ["noise"], progress=_stop_after(2), **ARGS)
    cmd = [sys.executable, "-m", "studio", "assess", "--model", MODELS / "tabular_gbt.skops", "--data",
           SAMPLE_DATA / "breast_cancer.csv", "--sandbox", "off", "--methods", "shap,lime", "--attacks", "noise",
           "--rows", "0,1,2,3", "--severities", "1,2,3", "--seed", "5", "--faithfulness", "deletion,infidelity",
           "--param", "shap.background=20", "--param", "lime.num_samples=100", "--out", tmp_path / "a.json"]
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert f"{N} scenarios: 2 reused from the cache, {N - 2} computed" in done.stdout
    assert "%: scenario" in done.stderr  # progress lines
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["provenance"]["grid"]["reused"] == 2
    def numbers(doc):
        return [r for r in doc["records"] if r["attribute"] != "cost"]

    assert numbers(doc) == numbers(json.loads(uninterrupted.to_json()))
