"""The HTML report: self-contained, charts as Vega-Lite + static SVG, user text escaped."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import studio
from studio import Explanation, Importance, Rule
from studio.charts.images import overlay_png
from studio.report import build_report, spec_json

EVIL = "<img src=x onerror=alert(1)>"


def _model_data():
    from sklearn.linear_model import LogisticRegression

    from studio.data import Dataset

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    names = ["alpha", EVIL, "gamma"]
    import pandas as pd

    frame = pd.DataFrame(x, columns=names)
    est = LogisticRegression().fit(frame, y)
    model = studio.wrap_model(est)
    data = Dataset(kind="tabular", x=x, y=y, feature_names=names, frame=frame, name=f"{EVIL}.csv")
    return model, data


def _no_raw(html_text: str) -> None:
    assert EVIL not in html_text
    # every occurrence is escaped: as HTML text (&lt;) or inside JSON (\u003c)
    for m in re.finditer("onerror=alert", html_text):
        before = html_text[max(0, m.start() - 16) : m.start()]
        assert before.endswith("&lt;img src=x ") or before.endswith("\\u003cimg src=x "), before


def test_report_escapes_every_user_string_and_embeds_charts():
    model, data = _model_data()
    imp = Explanation("permutation_importance", "importance", feature_names=data.feature_names,
                      importances=[Importance(n, float(i + 1), 0.1) for i, n in enumerate(data.feature_names)],
                      checks={"baseline_score": 0.9}, model_id="m" * 64, dataset_id="d" * 64,
                      target=[0], output_names=["no", "yes"])
    rule = Explanation("anchors", "rule", rows=[2], target=[1], output_names=["0", "1"],
                       rules=[Rule(2, [f"{EVIL} > 0.5"], 0.97, 0.1)])
    text = build_report(model, data, [imp, rule], comments=[f"looks fine {EVIL}"],
                        signoff={"name": EVIL, "date": "2026-11-25", "verdict": "approved"})
    _no_raw(text)
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    # the chart spec is embedded as JSON with '<' escaped, and parses back to the same data
    specs = re.findall(r"<script type='application/json' class='vl-spec' data-target='vl-\d+'>(.*?)</script>", text, re.S)
    assert len(specs) == 1
    spec = json.loads(specs[0])
    values = [v for ds in spec["datasets"].values() for v in ds]
    assert {v["feature"] for v in values} == set(data.feature_names)
    # a static SVG rendering (vl-convert) is there too, inert inside an <img>
    svgs = re.findall(r"src='data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(svgs) == 1 and base64.b64decode(svgs[0]).startswith(b"<svg")
    # nothing is fetched: no http(s) source or link anywhere outside the JSON schema strings
    outside = re.sub(r"<script type='application/json'.*?</script>", "", text, flags=re.S)
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", outside)
    assert "Sign-off" in text and "approved" in text
    # the summary names the class each line explains; a regression model reads "regression", not "classes: -"
    assert "overall; explains class &#x27;no&#x27;)" in text
    from sklearn.linear_model import LinearRegression

    reg = studio.wrap_model(LinearRegression().fit(data.frame, data.x[:, 0]))
    reg_imp = Explanation("permutation_importance", "importance", feature_names=data.feature_names,
                          importances=[Importance(n, float(i), 0.1) for i, n in enumerate(data.feature_names)])
    reg_text = build_report(reg, data, [reg_imp], interactive=False)
    assert "explains the prediction (target units)" in reg_text
    assert "classes: -" not in reg_text and "); regression<br>" in reg_text


def test_spec_json_cannot_close_the_script():
    s = spec_json({"title": "</script><script>alert(1)</script>"})
    assert "</" not in s and json.loads(s)["title"] == "</script><script>alert(1)</script>"


def test_pins_carry_png_comments_and_provenance(gbt, table):
    exp = studio.explain(gbt, table, "permutation_importance", params={"n_repeats": 1, "max_rows": 50})
    png = overlay_png(np.zeros((1, 4, 4)), np.ones((4, 4)))
    pins = [{"title": "importance", "page": "Global", "explanation": exp, "spec": None, "png": png,
             "text": "", "comment": "ship it"}]
    text = build_report(gbt, table, [], pins=pins, interactive=False)
    assert base64.b64encode(png).decode() in text
    assert exp.provenance["versions"]["scikit-learn"] in text
    assert gbt.fingerprint in text and table.fingerprint in text
    assert "ship it" in text and "<script>" not in text


def test_live_charts_use_the_inlined_bundle_only():
    pytest.importorskip("vl_convert")
    model, data = _model_data()
    imp = Explanation("permutation_importance", "importance",
                      importances=[Importance(n, 1.0, 0.0) for n in data.feature_names])
    text = build_report(model, data, [imp])
    assert "vegaEmbed" in text and len(text) > 500_000
    assert "default-src 'none'" in text  # the page may not fetch anything


# ---- wording of the summary and sections (trial defects, issue 14) ------------------------------------------
def _image_data():
    from studio.data import Dataset

    x = np.random.default_rng(1).random((2, 1, 16, 16)).astype(np.float32)
    return Dataset(kind="image", x=x, name="imgs", class_names=["a", "b"])


def _map(values, method, row=0, checks=None):
    return Explanation(method, "attribution", rows=[row], target=[1], output_names=["a", "b"],
                       values=np.asarray(values, dtype=float)[None, None], checks=checks or {},
                       provenance={"seed": None})


def _blocks(m):
    return np.abs(m).reshape(4, 4, 4, 4).sum(axis=(1, 3)).ravel()  # 4x4-pixel blocks of a 16x16 map


def _summary(text):
    return re.search(r"<section class='summary'>(.*?)</section>", text, re.S).group(1)


def test_image_report_compares_maps_and_names_methods_without_checks():
    from scipy.stats import spearmanr

    model, _ = _model_data()
    data = _image_data()
    rng = np.random.default_rng(2)
    cam = rng.random((16, 16))
    occ = cam + 0.3 * rng.random((16, 16))  # mostly the same places
    text = build_report(model, data, [_map(cam, "grad_cam"), _map(occ, "occlusion")], interactive=False)
    summary = _summary(text)
    rho = spearmanr(_blocks(cam), _blocks(occ))[0]
    k = 3  # 10% of 16 blocks, at least 3
    common = len(set(np.argsort(-_blocks(cam))[:k]) & set(np.argsort(-_blocks(occ))[:k]))
    assert (f"<strong>grad_cam</strong> vs <strong>occlusion</strong> (row 0): rank correlation {rho:.2f}, "
            f"{common} of their top {k} 4x4-pixel blocks") in summary
    assert "Nothing" not in summary
    assert "grad_cam and occlusion have no checks: their results are not verified" in summary
    assert "Every check" not in summary
    # deterministic methods: no "seed None"; an image dataset: no empty "features:" line
    assert "seed None" not in text and "not random" in text
    assert "features:" not in text
    # a reversed map disagrees, said first; maps of different rows are not compared, and the report says why
    text = build_report(model, data, [_map(cam, "grad_cam"), _map(cam.max() - cam, "occlusion")], interactive=False)
    assert "<li class='warn'>disagree: <strong>grad_cam</strong> vs <strong>occlusion</strong>" in _summary(text)
    text = build_report(model, data, [_map(cam, "grad_cam"), _map(occ, "occlusion", row=1)], interactive=False)
    assert ("Nothing compared: grad_cam (row 0) and occlusion (row 1) explain different rows or scopes"
            in _summary(text))
    # one method with a passing verdict, one without: both named
    text = build_report(model, data, [_map(cam, "grad_cam"), _map(occ, "integrated_gradients",
                                                                  checks={"completeness_gap": 0.001})],
                        interactive=False)
    assert "Every check passes (integrated_gradients)" in _summary(text)
    assert "grad_cam has no checks: its result is not verified" in _summary(text)


def test_lime_default_kernel_width_and_empty_rules_read_as_used():
    model, data = _model_data()
    lime = Explanation("lime", "attribution", rows=[0], target=[1], feature_names=data.feature_names,
                       values=np.ones((1, 3)), params={"num_samples": 100, "kernel_width": 0.0, "seed": 0},
                       provenance={"seed": 0})
    given = lime.copy()
    given.params = dict(lime.params, kernel_width=2.5)
    rule = Explanation("anchors", "rule", rows=[4], target=[0], output_names=["benign", "malignant"],
                       rules=[Rule(4, [], 0.99, 1.0)], params={"threshold": 0.95})
    text = build_report(model, data, [lime, rule], interactive=False)
    width = f"{0.75 * np.sqrt(3):.3g}"
    assert f"kernel width LIME&#x27;s default (0.75 x sqrt(3 features) = {width})" in text
    assert "kernel width 0" not in text and "seed 0" in text
    assert "For every row (no condition needed): predict benign" in text
    assert "ALWAYS" not in text
    assert "<td>For every row (no condition needed)</td>" in text  # the rule table too
    assert "kernel width 2.5" in build_report(model, data, [given], interactive=False)
