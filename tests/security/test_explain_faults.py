"""A method that fails fails alone; runs can be cancelled or time-bounded."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.errors import StudioError
from studio.explainers import registry
from studio.explainers.base import Cancelled
from studio.cache import Cache
from tests.security import fakes


@pytest.fixture(autouse=True)
def fake_methods(monkeypatch):
    for name in ("fake_oom", "fake_raises", "fake_slow"):
        cls = {"fake_oom": "OutOfMemory", "fake_raises": "Raises", "fake_slow": "Slow"}[name]
        monkeypatch.setitem(registry.REGISTRY, name, {"tabular": f"tests.security.fakes:{cls}"})


def test_out_of_memory_becomes_advice(mlp, table, isolated_cache):
    with pytest.raises(StudioError, match="ran out of memory; explain fewer rows"):
        studio.explain(mlp, table, "fake_oom")
    assert Cache(isolated_cache).entries() == []


def test_a_failing_method_leaves_model_data_and_other_methods_intact(mlp, table, isolated_cache):
    before = mlp.output(table.x[:20])
    x_before = table.x.copy()
    with pytest.raises(RuntimeError, match="a bug inside"):
        studio.explain(mlp, table, "fake_raises")
    assert Cache(isolated_cache).entries() == []  # nothing half-written
    np.testing.assert_array_equal(mlp.output(table.x[:20]), before)
    np.testing.assert_array_equal(table.x, x_before)
    exp = studio.explain(mlp, table, "permutation_importance", params={"n_repeats": 1, "max_rows": 30})
    assert len(exp.importances) == table.n_features


def test_time_bound_stops_a_run(mlp, table):
    fakes.Slow.steps_done = 0
    with pytest.raises(Cancelled, match="ran past its time limit") as info:
        studio.explain(mlp, table, "fake_slow", timeout=0.05, cache=False)
    assert isinstance(info.value, StudioError)
    assert 0 < fakes.Slow.steps_done < fakes.Slow.max_steps - 1


def test_cancel_stops_a_run_and_reports_progress(mlp, table):
    polls, seen = [], []

    def cancel():
        polls.append(1)
        return len(polls) > 5

    with pytest.raises(Cancelled, match="cancelled"):
        studio.explain(mlp, table, "fake_slow", cancel=cancel, progress=lambda f, m: seen.append(f), cache=False)
    assert fakes.Slow.steps_done == 5
    assert seen == sorted(seen) and all(0.0 <= f <= 1.0 for f in seen) and len(seen) == 5


def test_cancel_reaches_permutation_importance(mlp, table, isolated_cache):
    with pytest.raises(Cancelled):
        studio.explain(mlp, table, "permutation_importance", cancel=lambda: True)
    assert Cache(isolated_cache).entries() == []
