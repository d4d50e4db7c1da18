"""Every registered method's JSON output validates against docs/schemas/explanation-1.json (draft 2020-12).

Tabular methods run on the gradient-boosting sample and the torch MLP, image
methods on the CNN sample, each with tiny parameters. Adding a method without
a row here fails :func:`test_every_registered_method_has_a_row`.
"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

import studio
from studio.explainers import registry
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "docs" / "schemas" / "explanation-1.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

CURVES = {"features": ["mean radius", "mean texture:mean area"], "grid_resolution": 4, "max_rows": 30}
EBM = {"interactions": 1, "max_rounds": 20, "outer_bags": 1, "max_bins": 8, "max_rows": 150}
TABULAR = {
    "shap": {"algorithm": "permutation", "background": 8, "max_evals": 61},
    "lime": {"num_samples": 100},
    "anchors": {"batch_size": 40, "beam_size": 1, "max_anchor_size": 2, "fresh_samples": 100, "max_rows": 300},
    "saliency": {},
    "integrated_gradients": {"n_steps": 8, "max_steps": 8},
    "pdp": CURVES,
    "ice": {"features": ["mean radius"], "grid_resolution": 4, "max_rows": 20},
    "ale": CURVES,
    "permutation_importance": {"n_repeats": 1, "max_rows": 60},
    "ebm_surrogate": EBM,
    "ebm": EBM,
}
IMAGE = {
    "saliency": {},
    "input_x_gradient": {},
    "integrated_gradients": {"n_steps": 4, "max_steps": 4, "max_gap": 1.0},
    "smoothgrad": {"n_samples": 2},
    "grad_cam": {},
    "guided_grad_cam": {},
    "occlusion": {"window": 8, "stride": 8},
    "feature_ablation": {"n_segments": 4, "baseline": "black"},
    "lime": {"n_samples": 10, "n_segments": 4, "baseline": "black"},
    "shap": {"max_evals": 20, "baseline": "black"},
    "anchors": {"batch_size": 10, "n_validate": 10, "n_segments": 4, "baseline": "black"},
    "model_randomisation": {"max_layers": 1, "n_steps": 2},
}
CASES = [(name, "tabular", model) for name in TABULAR for model in ("gbt", "mlp")] + [
    (name, "image", "cnn") for name in IMAGE
]


def test_the_schema_is_a_valid_draft_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_registered_method_has_a_row():
    registered = {(name, kind) for name in registry.names() for kind in registry.REGISTRY[name]}
    assert registered == {(name, kind) for name, kind, _ in CASES}


@pytest.fixture(scope="module")
def documents(request):
    """{(method, kind, model): to_dict() of a fresh run}, computed once (explainers are not cheap)."""
    table = request.getfixturevalue("table")
    digits = request.getfixturevalue("digits")
    out = {}
    for name, kind, model_name in CASES:
        model = request.getfixturevalue(model_name)
        data, params = (table, TABULAR[name]) if kind == "tabular" else (digits, IMAGE[name])
        info = next(i for i in studio.methods(model, data) if i.name == name)
        if not info.available:  # gradients of a skops model: listed as unavailable, never run
            assert model_name == "gbt" and "gradients" in info.reason, info.reason
            continue
        exp = studio.explain(model, data, name, rows=[0, 1] if kind == "tabular" else [0], params=params, cache=False)
        out[(name, kind, model_name)] = json.loads(exp.to_json())
    return out


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_method_output_validates(documents, case):
    if case not in documents:
        pytest.skip(f"{case[0]} is not available for {case[2]} (listed as unavailable with its reason)")
    doc = documents[case]
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in VALIDATOR.iter_errors(doc)]
    assert not errors, errors
    assert doc["method"] == case[0]


def test_two_feature_curves_use_the_list_of_grids_form(documents):
    doc = documents[("pdp", "tabular", "gbt")]
    pair = next(c for c in doc["curves"] if isinstance(c["feature"], list))
    assert pair["feature"] == ["mean texture", "mean area"] and len(pair["grid"]) == 2
    assert [len(row) for row in pair["average"]] == [len(pair["grid"][1])] * len(pair["grid"][0])


def _invalid(doc) -> bool:
    return not VALIDATOR.is_valid(doc)


def test_the_schema_refuses_broken_documents(documents):
    """The schema can fail: each mutation of a valid document is refused."""
    attribution = documents[("shap", "tabular", "gbt")]
    curve = documents[("pdp", "tabular", "gbt")]
    rule = documents[("anchors", "tabular", "gbt")]
    importance = documents[("permutation_importance", "tabular", "gbt")]
    for doc in (attribution, curve, rule, importance):
        assert VALIDATOR.is_valid(doc)

    def mutated(doc, change):
        doc = copy.deepcopy(doc)
        change(doc)
        return doc

    broken = [
        mutated(attribution, lambda d: d.pop("base_values")),
        mutated(attribution, lambda d: d.update(curves=[])),  # two payloads
        mutated(attribution, lambda d: d.update(schema="studio.explanation/2")),
        mutated(attribution, lambda d: d.update(kind="heatmap")),
        mutated(attribution, lambda d: d["values"][0].__setitem__(0, "0.5")),
        mutated(attribution, lambda d: d.update(cache="maybe")),
        mutated(attribution, lambda d: d["model"].update(id="not-a-hash")),
        mutated(attribution, lambda d: d.update(rows=[-1])),
        mutated(curve, lambda d: next(c for c in d["curves"] if isinstance(c["feature"], list))["grid"].pop()),
        mutated(curve, lambda d: d["curves"][0].update(average=[[0.1, 0.2]])),  # one feature, 2-D average
        mutated(rule, lambda d: d["rules"][0].update(precision=1.5)),
        mutated(rule, lambda d: d["rules"][0].update(predicates="x > 1")),
        mutated(importance, lambda d: d["importances"][0].update(std=-1.0)),
        mutated(importance, lambda d: d.pop("importances")),
    ]
    assert [i for i, doc in enumerate(broken) if not _invalid(doc)] == []
