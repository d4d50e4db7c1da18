"""The persistent cache: hit/miss, restart, corruption, LRU bound, read-only."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import studio
from studio.cache import Cache, cache_key
from tests.conftest import MODELS, ROOT, SAMPLE_DATA

PARAMS = {"n_repeats": 1, "max_rows": 200}


def test_second_call_is_a_hit_with_equal_values(gbt, table):
    first = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    second = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    assert (first.cache, second.cache) == ("miss", "hit")
    assert [i.mean for i in first.importances] == [i.mean for i in second.importances]
    third = studio.explain(gbt, table, "permutation_importance", params={**PARAMS, "seed": 1})
    assert third.cache == "miss"
    fresh = studio.explain(gbt, table, "permutation_importance", params=PARAMS, cache=False)
    assert fresh.cache == "miss"


def test_result_survives_a_process_restart(isolated_cache):
    code = (
        "import studio;"
        f"m=studio.load_model(r'{MODELS / 'tabular_gbt.skops'}');"
        f"d=studio.load_dataset(r'{SAMPLE_DATA / 'breast_cancer.csv'}');"
        "print(studio.explain(m,d,'permutation_importance',params={'n_repeats':1,'max_rows':100}).cache)"
    )
    env = dict(os.environ, STUDIO_CACHE_DIR=str(isolated_cache))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT) for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["miss", "hit"], runs[1].stderr


def test_corrupt_entry_is_recomputed(gbt, table, isolated_cache):
    first = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    entries = Cache(isolated_cache).entries()
    assert len(entries) == 1
    entries[0][0].write_bytes(b"garbage")
    again = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    assert again.cache == "miss"
    assert [i.mean for i in again.importances] == [i.mean for i in first.importances]
    assert studio.explain(gbt, table, "permutation_importance", params=PARAMS).cache == "hit"


def test_lru_bound(tmp_path):
    cache = Cache(tmp_path, max_bytes=2500)
    for i in range(5):
        key = cache_key({"i": i})
        cache.put(key, b"x" * 1000)
        os.utime(cache._path(key), (i, i))  # make ages distinct
        cache.evict()
    assert cache.size() <= 2500
    assert cache.get(cache_key({"i": 4})) is not None
    assert cache.get(cache_key({"i": 0})) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_cache_degrades(tmp_path):  # pragma: no cover - CI runs as root
    tmp_path.chmod(0o500)
    cache = Cache(tmp_path / "sub")
    with pytest.warns(RuntimeWarning):
        assert cache.put("ab" * 32, b"x") is False


def test_unwritable_cache_degrades_with_one_warning(tmp_path, gbt, table, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(blocker / "cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    assert exp.cache == "miss" and exp.importances
    assert any("cache disabled" in str(w.message) for w in caught)


def test_key_is_canonical():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def _count_model_calls(model, monkeypatch) -> list:
    calls = []
    raw = model._raw_output
    monkeypatch.setattr(model, "_raw_output", lambda x: calls.append(len(x)) or raw(x))
    return calls


def test_a_hit_runs_no_model_call(table, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    from studio.models import wrap_model

    fitted = LogisticRegression(max_iter=2000).fit(table.x, table.y)
    model = wrap_model(fitted)
    first = studio.explain(model, table, "shap", rows=[3, 7])
    calls = _count_model_calls(model, monkeypatch)
    second = studio.explain(model, table, "shap", rows=[3, 7])
    assert (first.cache, second.cache, calls) == ("miss", "hit", [])
    assert second.target == first.target == [int(c) for c in fitted.predict(table.x[[3, 7]])]
    other = studio.explain(model, table, "shap", rows=[3, 7], target=1 - first.target[0])
    assert other.cache == "miss" and other.target == [1 - first.target[0]] * 2


def test_a_hit_is_a_copy_the_caller_may_change(gbt, table):
    first = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    hit = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    hit.importances[0].mean = 1e9
    hit.checks["planted"] = 1.0
    again = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    assert again.cache == "hit"
    assert again.importances[0].mean == first.importances[0].mean
    assert "planted" not in again.checks


def test_an_entry_replaced_by_another_process_is_read_afresh(gbt, table, isolated_cache):
    first = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    studio.explain(gbt, table, "permutation_importance", params=PARAMS)  # remembered in this process
    (path, _, _), = Cache(isolated_cache).entries()
    key = path.name[: -len(".explanation")]
    changed = studio.Explanation.from_bytes(Cache(isolated_cache).get(key))
    changed.checks["written_elsewhere"] = 1.0
    assert Cache(isolated_cache).put(key, changed.to_bytes())  # as another process sharing the cache writes it
    again = studio.explain(gbt, table, "permutation_importance", params=PARAMS)
    assert again.checks["written_elsewhere"] == 1.0
    assert [i.mean for i in again.importances] == [i.mean for i in first.importances]
