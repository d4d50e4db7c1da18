"""Long names (200,000 characters) cost linear time: drawn short, kept whole in tooltips and title attributes.

No timed asserts: the report's size is checked to grow by a fixed number of
copies of the name (O(n)), every label the static rendering draws is short,
and the whole name is still there for a reader who hovers.
"""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import pandas as pd
import pytest

import studio
from studio import Explanation, Importance, charts
from studio.charts.base import ELLIPSIS, LABEL_CHARS, short_label, short_labels
from studio.data import Dataset
from studio.report import build_report


def _report(n: int) -> tuple[str, str]:
    from sklearn.linear_model import LogisticRegression

    name = "f" * (n - 1) + "Z"
    names = [name, "beta", "gamma"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    frame = pd.DataFrame(x, columns=names)
    model = studio.wrap_model(LogisticRegression().fit(frame, y))
    data = Dataset(kind="tabular", x=x, y=y, feature_names=names, frame=frame, name="d.csv")
    imp = Explanation("permutation_importance", "importance", feature_names=names,
                      importances=[Importance(nm, float(i + 1), 0.1) for i, nm in enumerate(names)],
                      model_id="m" * 64, dataset_id="d" * 64)
    att = Explanation("shap", "attribution", feature_names=names, values=rng.normal(size=(1, 3)), rows=[0], target=[1],
                      output_names=["no", "yes"], model_id="m" * 64, dataset_id="d" * 64)
    return name, build_report(model, data, [imp, att], interactive=False)


@pytest.fixture(scope="module")
def reports():
    return {n: _report(n) for n in (2_000, 20_000, 200_000)}


def _svg_texts(page: str) -> list[str]:
    texts = []
    for b64 in re.findall(r"src='data:image/svg\+xml;base64,([^']+)'", page):
        svg = base64.b64decode(b64).decode()
        texts += [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    return texts


def test_the_report_grows_linearly_with_a_name(reports):
    """Bytes added per character of the name are the same from 2k to 20k as from 20k to 200k: O(n)."""
    size = {n: len(page) for n, (_, page) in reports.items()}
    early = (size[20_000] - size[2_000]) / 18_000
    late = (size[200_000] - size[20_000]) / 180_000
    assert 1 <= late <= 40  # a fixed number of copies of the name (data, tooltips, title attributes)
    assert abs(late - early) / late < 0.01
    name, page = reports[200_000]
    assert 1 <= page.count(name) <= 20


def test_the_drawn_labels_are_short_and_the_whole_name_is_in_a_title(reports):
    name, page = reports[200_000]
    short = short_label(name)
    assert short == name[:LABEL_CHARS] + ELLIPSIS
    texts = _svg_texts(page)
    assert texts, "no static chart was rendered"
    assert max(len(t) for t in texts) <= LABEL_CHARS + 1
    assert any(t.startswith("f" * 20) and t.endswith(ELLIPSIS) for t in texts)  # the axis shows the short form
    assert f"<span title='{name}'>{short}</span>" in page  # report tables: short, whole name on hover
    spec = re.search(r"class='vl-spec' data-target='vl-\d+'>(.*?)</script>", page, re.S).group(1)
    assert name in spec and "labelExpr" in spec  # the chart data and tooltip keep the whole name


def test_curve_heatmap_rule_and_confusion_charts_draw_names_short():
    from studio import Curve, Rule

    name = "g" * 200_000
    grid = np.linspace(0, 1, 5)
    curve = Explanation("pdp", "curve", curves=[Curve(name, "pdp", [grid], grid ** 2)])
    spec = str(charts.curve_chart([curve], name).to_dict())
    assert name not in spec and short_label(name) in spec
    two = Explanation("pdp", "curve", curves=[Curve((name, "b"), "pdp", [grid, grid], np.outer(grid, grid))])
    assert name not in str(charts.heatmap_chart(two, (name, "b")).to_dict())
    rule = Explanation("anchors", "rule", rows=[0], target=[0], output_names=[name],
                       rules=[Rule(0, [f"{name} > 0.5"], 0.9, 0.1)])
    assert name not in str(charts.rule_chart(charts.rule_card(rule, 0)).to_dict())
    names = [name + "1", name + "2", "c"]
    confusion = charts.confusion_chart(np.eye(3, dtype=int), names).to_dict()
    assert name not in str(confusion)  # 9 cells x 2 names each would be 3.6 MB of one name


def test_short_labels_stay_distinct():
    a, b = "x" * 100 + "1", "x" * 100 + "2"
    out = short_labels([a, b, "plain"])
    assert len(set(out)) == 3 and out[2] == "plain"
    assert all(len(label) <= LABEL_CHARS + 4 for label in out[:2])
    assert short_labels(["same", "same"]) == ["same", "same"]  # short duplicates are not this function's to rename
