"""Activations and graphs in the studio cache: a hit makes no model call, the matrix is memory-mapped, schema files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import studio
from studio.activations import Activations, Graph
from studio.cache import Cache
from tests.activations.conftest import images, table

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "activations-1.json"


def _count_forward_calls(net) -> list:
    """Every call of the torch network (the hooked capture and the graph's shape pass both go through it)."""
    calls = []
    net.register_forward_pre_hook(lambda mod, args: calls.append(len(args[0])))
    return calls


def test_a_hit_makes_no_model_call_and_maps_the_matrix(mlp_model, isolated_cache):
    net, model = mlp_model
    data = table()
    calls = _count_forward_calls(net)
    first = studio.activations(model, data, "2", rows=[5, 1, 9, 30])
    assert first.cache == "miss" and calls
    del calls[:]
    second = studio.activations(model, data, "2", rows=[5, 1, 9, 30])
    assert (second.cache, calls) == ("hit", [])
    assert isinstance(second.matrix, np.memmap) and not second.matrix.flags.writeable
    np.testing.assert_array_equal(second.matrix, first.matrix)
    np.testing.assert_array_equal(second.peak, first.peak)
    assert (second.rows.tolist(), second.labels, second.predictions) == ([5, 1, 9, 30], first.labels, first.predictions)
    second.predictions[0] = "changed"  # a hit is the caller's to change
    assert studio.activations(model, data, "2", rows=[5, 1, 9, 30]).predictions == first.predictions
    # anything that decides the result is in the key
    for kw in ({"rows": [5, 1, 9]}, {"rows": [5, 1, 9, 30], "reduce": "max"}, {"rows": [5, 1, 9, 30], "groups": "label"}):
        assert studio.activations(model, data, kw.pop("layer", "2"), **kw).cache == "miss"
    assert studio.activations(model, data, "0", rows=[5, 1, 9, 30]).cache == "miss"
    assert studio.activations(model, data, "2", rows=[5, 1, 9, 30], cache=False).cache == "miss"
    # a fresh process (nothing remembered) reads the same entry from disk
    from studio import cache as cache_module

    cache_module._RECENT.clear()
    del calls[:]
    again = studio.activations(model, data, "2", rows=[5, 1, 9, 30])
    assert (again.cache, calls) == ("hit", []) and isinstance(again.matrix, np.memmap)
    np.testing.assert_array_equal(again.matrix, first.matrix)
    files = sorted(p.suffix for p, _, _ in Cache(isolated_cache).entries())
    assert ".npy" in files and ".explanation" in files


def test_a_changed_matrix_file_is_recomputed_never_served(mlp_model, isolated_cache):
    _, model = mlp_model
    data = table()
    first = studio.activations(model, data, "0", rows=range(10))
    (npy,) = [p for p, _, _ in Cache(isolated_cache).entries() if p.suffix == ".npy"]
    planted = np.asarray(first.matrix) + 1.0
    with open(npy, "wb") as fh:
        np.save(fh, planted.astype(np.float32))  # a valid .npy of the right shape, other values
    from studio import cache as cache_module

    cache_module._RECENT.clear()
    again = studio.activations(model, data, "0", rows=range(10))
    assert again.cache == "miss"
    np.testing.assert_array_equal(again.matrix, first.matrix)
    assert studio.activations(model, data, "0", rows=range(10)).cache == "hit"


def test_groups_are_numpy_means_of_their_member_rows(cnn_model):
    _, model = cnn_model
    data = images()
    act = studio.activations(model, data, "0", groups={"first": [0, 1, 2], "odd": [1, 3, 5, 7]})
    assert act.groups["names"] == ["first", "odd"] and act.groups["counts"].tolist() == [3, 4]
    np.testing.assert_allclose(act.groups["means"][0], np.asarray(act.matrix)[[0, 1, 2]].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(act.groups["means"][1], np.asarray(act.matrix)[[1, 3, 5, 7]].mean(axis=0), rtol=1e-6)
    by_label = studio.activations(model, data, "0", groups="label")
    labels = np.asarray(by_label.labels)
    for name, mean in zip(by_label.groups["names"], by_label.groups["means"]):
        np.testing.assert_allclose(mean, np.asarray(by_label.matrix)[labels == name].mean(axis=0), rtol=1e-6)
    hit = studio.activations(model, data, "0", groups="label")
    assert hit.cache == "hit" and hit.groups["names"] == by_label.groups["names"]
    np.testing.assert_array_equal(hit.groups["means"], by_label.groups["means"])
    with pytest.raises(studio.StudioError, match="group by"):
        studio.activations(model, data, "0", groups="colour")


def test_graph_is_cached(mlp_model, monkeypatch):
    import sys

    graph_module = sys.modules["studio.activations.graph"]  # the module, not the function of the same name
    _, model = mlp_model
    calls = []
    build = graph_module.torch_graph
    monkeypatch.setattr(graph_module, "torch_graph", lambda *a: calls.append(1) or build(*a))
    first = studio.graph(model)
    second = studio.graph(model)
    assert calls == [1] and second.to_dict() == first.to_dict()
    assert studio.graph(model, cache=False).to_dict() == first.to_dict() and calls == [1, 1]


def test_results_follow_the_json_schema(cnn_model):
    jsonschema = pytest.importorskip("jsonschema")
    _, model = cnn_model
    data = images()
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    act = studio.activations(model, data, "0", rows=[0, 3], groups={"empty": [11], "both": [0, 3]})
    g = studio.graph(model)
    for d in (act.to_dict(model, data), g.to_dict(model)):
        jsonschema.validate(d, schema)
        back = (Activations if d["kind"] == "activations" else Graph).from_dict(json.loads(json.dumps(d)))
        assert (back.to_dict(model, data) if d["kind"] == "activations" else back.to_dict(model)) == d
    bad = act.to_dict()
    bad["values"] = "not numbers"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
