"""Charts are pure functions of Explanations: right encodings, bounded data, no reruns."""

from __future__ import annotations

import numpy as np
import pytest

from studio import Curve, Explanation, Importance, Rule
from studio import charts
from studio.charts.curves import curve_features

NAMES = [f"f{i}" for i in range(12)]


def _attr(method, values, rows):
    values = np.asarray(values, dtype=float)
    return Explanation(method, "attribution", rows=list(rows), feature_names=list(NAMES), values=values,
                       base_values=np.zeros(len(values)), data=np.arange(values.size, dtype=float).reshape(values.shape))


def _layers(spec):
    """Every unit spec (with an encoding) inside a chart spec."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if "encoding" in node:
                out.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    return out


def test_shared_order_weighs_each_method_equally():
    # method a puts all its mass on f0, method b (100x larger scale) on f1 and f2 equally:
    # shares are f0 1.0, f1 0.5, f2 0.5 -> order f0, f1, f2
    a = _attr("a", [[1.0] + [0.0] * 11], [7])
    b = _attr("b", [[0.0, 100.0, -100.0] + [0.0] * 9], [7])
    assert charts.shared_feature_order([a, b], row=7, top_k=3) == ["f0", "f1", "f2"]


def test_attribution_bars_same_order_signed_colours_and_tooltips():
    rng = np.random.default_rng(0)
    a, b = _attr("shap", rng.normal(size=(2, 12)), [3, 9]), _attr("lime", rng.normal(size=(2, 12)), [3, 9])
    order = charts.shared_feature_order([a, b], row=9, top_k=5)
    spec = charts.attribution_bars([a, b], row=9, top_k=5).to_dict()
    units = _layers(spec)
    assert len(units) == 2
    for unit in units:
        enc = unit["encoding"]
        assert enc["y"]["sort"] == order
        assert enc["color"]["scale"]["range"] == charts.base.SIGN_RANGE
        assert {t["field"] for t in enc["tooltip"]} >= {"feature", "value", "method", "input"}
    # the data are exactly the row's values for the ordered features
    frame = charts.attribution_frame(b, 9, order)
    pos = [NAMES.index(f) for f in order]
    np.testing.assert_array_equal(frame["value"].to_numpy(), b.values[1, pos])
    assert set(frame["sign"]) <= set(charts.base.SIGN_DOMAIN)
    assert ((frame["value"] >= 0) == (frame["sign"] == "raises output")).all()


def test_attribution_bars_refuse_a_row_not_explained():
    with pytest.raises(ValueError, match="row 4"):
        charts.attribution_bars([_attr("shap", np.ones((1, 12)), [3])], row=4)


def test_importance_from_importances_and_from_attributions():
    imp = Explanation("permutation_importance", "importance",
                      importances=[Importance(n, float(i), 0.5) for i, n in enumerate(NAMES)])
    vals = np.random.default_rng(1).normal(size=(40, 12))
    shap = _attr("shap", vals, range(40))
    frame = charts.importance_frame(shap)
    np.testing.assert_allclose(frame["mean"], np.abs(vals).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(frame["high"] - frame["low"], 2 * np.abs(vals).std(axis=0), rtol=1e-12)
    spec = charts.importance_bars([imp, shap], top_k=6).to_dict()
    bars = [u for u in _layers(spec) if u["mark"]["type"] == "bar"]
    rules = [u for u in _layers(spec) if u["mark"]["type"] == "rule"]
    assert len(bars) == 2 and len(rules) == 2
    assert bars[0]["encoding"]["y"]["sort"] == bars[1]["encoding"]["y"]["sort"]
    assert rules[0]["encoding"]["x2"]["field"] == "high"


def _curves(n_ice=3000, grid=25):
    g = np.linspace(0.0, 1.0, grid)
    ice = np.random.default_rng(0).normal(size=(n_ice, grid)) + g
    pdp = Explanation("pdp", "curve", curves=[Curve("f1", "pdp", [g], ice.mean(axis=0), individual=ice,
                                                    extra={"scale": "probability"})])
    ale = Explanation("ale", "curve", curves=[Curve("f1", "ale", [g], 2 * g, extra={"scale": "probability"})])
    ebm = Explanation("ebm", "curve", curves=[Curve("f1", "ebm", [g], 3 * g + 5, extra={"scale": "logit"}),
                                              Curve(("f1", "f2"), "ebm", [g, g], np.outer(g, g))])
    return pdp, ale, ebm


def test_curve_chart_puts_every_method_on_one_chart_and_samples_ice():
    pdp, ale, ebm = _curves()
    chart = charts.curve_chart([pdp, ale, ebm], "f1")
    assert charts.chart_points(chart) <= charts.MAX_POINTS
    spec = chart.to_dict()
    assert "ICE lines shown" in spec["title"]["subtitle"] and "centred" in spec["title"]["subtitle"]
    frame, note, numeric = charts.curves.curve_frame(charts.curves_for([pdp, ale, ebm], "f1"))
    assert numeric and "of 3000 ICE lines" in note
    avg = frame[frame["line"] < 0]
    assert set(avg["label"]) == {"pdp", "ale", "ebm"}
    # centring keeps the shape: the EBM curve 3g+5 becomes 3(g - mean g)
    g = np.linspace(0.0, 1.0, 25)
    np.testing.assert_allclose(avg[avg["method"] == "ebm"]["y"], 3 * (g - g.mean()), atol=1e-12)
    # ICE lines sampled to at most 200, each complete
    ice = frame[frame["line"] >= 0]
    assert ice["line"].nunique() <= charts.curves.MAX_ICE_LINES
    assert (ice.groupby("line").size() == 25).all()


def test_curve_features_and_heatmap():
    pdp, ale, ebm = _curves(n_ice=5)
    assert curve_features([pdp, ale, ebm]) == ["f1"]
    assert curve_features([ebm], two_way=True) == [("f1", "f2")]
    chart = charts.heatmap_chart(ebm, ("f2", "f1"))
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "rect"
    assert charts.chart_points(chart) == 25 * 25
    big = Explanation("pdp", "curve", curves=[Curve(("a", "b"), "pdp", [np.arange(200.0), np.arange(200.0)],
                                                    np.zeros((200, 200)))])
    assert charts.chart_points(charts.heatmap_chart(big)) <= charts.MAX_POINTS
    assert "thinned" in charts.heatmap_chart(big).to_dict()["title"]


def test_rule_card_text_and_numbers():
    exp = Explanation("anchors", "rule", rows=[3, 8], target=[1, 0], output_names=["no", "yes"],
                      rules=[Rule(3, ["f1 > 0.5", "0.1 < f2 <= 3"], 0.97, 0.2), Rule(8, [], 0.99, 1.0)])
    card = charts.rule_card(exp, 3)
    assert card["text"] == "IF f1 > 0.5 AND 0.1 < f2 <= 3 THEN predict yes"
    assert (card["precision"], card["coverage"]) == (0.97, 0.2)
    always = charts.rule_card(exp, 8)
    assert always["text"] == "For every row (no condition needed): predict no"
    assert charts.rule_chart(always).to_dict()["title"]["subtitle"] == [always["text"]]
    with pytest.raises(ValueError):
        charts.rule_card(exp, 5)
    spec = charts.rule_chart(card).to_dict()
    assert spec["title"]["subtitle"] == ["IF f1 > 0.5", "AND 0.1 < f2 <= 3", "THEN predict yes"]
    bars = [u for u in _layers(spec) if u["mark"]["type"] == "bar"]
    assert bars[0]["encoding"]["x"]["scale"]["domain"] == [0, 1]
    # every bar has its number written, and the precision asked is drawn only when asked
    texts = [u for u in _layers(spec) if u["mark"]["type"] == "text"]
    assert [u["encoding"]["text"]["format"] for u in texts] == [".2f", ".2f"]
    assert sorted(u["transform"][0]["filter"] for u in texts) == ["datum.value < 0.25", "datum.value >= 0.25"]
    assert not any(u["mark"]["type"] == "tick" for u in _layers(spec))
    exp.params = {"threshold": 0.95}
    asked = charts.rule_chart(charts.rule_card(exp, 3)).to_dict()
    ticks = [u for u in _layers(asked) if u["mark"]["type"] == "tick"]
    assert len(ticks) == 1 and asked["datasets"][ticks[0]["data"]["name"]] == [
        {"measure": "precision", "value": 0.95, "label": "asked 0.95"}]


def test_data_charts_aggregate_large_inputs():
    x = np.random.default_rng(0).normal(size=100_000)
    chart = charts.distribution_chart(x, "x", bins=20)
    assert charts.chart_points(chart) == 20
    frame, numeric = charts.data.histogram_frame(x, 20)
    assert numeric and frame["count"].sum() == 100_000
    cats = np.asarray([f"c{i % 50}" for i in range(10_000)], dtype=object)
    frame, numeric = charts.data.histogram_frame(cats)
    assert not numeric and len(frame) == 21 and frame["count"].sum() == 10_000
    cm = np.array([[5, 1], [2, 7]])
    spec = charts.confusion_chart(cm, ["a", "<b>"]).to_dict()
    assert charts.chart_points(charts.confusion_chart(cm, ["a", "<b>"])) == 4
    assert any(u["mark"]["type"] == "text" for u in _layers(spec))
    assert charts.chart_points(charts.class_balance_chart(np.repeat([0, 1, 2], [10, 20, 30]))) == 3


def test_image_map_is_block_averaged_under_the_budget():
    v = np.random.default_rng(0).normal(size=(1, 3, 128, 128)).astype(np.float32)
    exp = Explanation("saliency", "attribution", rows=[0], values=v, base_values=np.zeros(1))
    chart = charts.image_attribution_chart(exp)
    assert charts.chart_points(chart) <= charts.MAX_POINTS
    assert "blocks averaged" in chart.to_dict()["title"]


def test_restyling_reads_the_cache_and_never_reruns(gbt, table, monkeypatch):
    """A chart is drawn twice with different styles from one run; the second explain is a cache hit."""
    import studio
    from studio.explainers import importance

    calls = []
    original = importance.PermutationImportance.explain

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(importance.PermutationImportance, "explain", counting)
    params = {"n_repeats": 1, "max_rows": 60}
    exp = studio.explain(gbt, table, "permutation_importance", params=params)
    wide = charts.importance_bars(exp, top_k=5, width=400).to_dict()
    narrow = charts.importance_bars(exp, top_k=10, width=150).to_dict()
    again = studio.explain(gbt, table, "permutation_importance", params=params)
    assert len(calls) == 1 and again.cache == "hit"
    assert wide != narrow


def test_every_quantitative_axis_gets_a_compact_format_chosen_from_the_magnitude():
    from studio.charts.base import number_format

    assert number_format([1e-11, -2e-11]) == ".4~g" and number_format([0.3, 2]) == ".4~g"
    assert number_format([3.0, 2.5e6, np.nan]) == "~s" and number_format(["a", np.inf]) == ".4~g"
    assert number_format([25, 12_345]) == ".6~g"
    rng = np.random.default_rng(0)
    tiny = _attr("shap", rng.normal(scale=1e-11, size=(1, 12)), [0])
    huge = _attr("lime", rng.normal(scale=1e6, size=(1, 12)), [0])
    spec = charts.attribution_bars([tiny, huge], row=0).to_dict()
    formats = [u["encoding"]["x"]["axis"]["format"] for u in _layers(spec) if u["encoding"]["x"]["type"] == "quantitative"]
    assert formats[:2] == [".4~g", "~s"], formats
    # the tick labels as drawn: exponents, never a run of zeros, and SI prefixes for millions
    import re

    import altair as alt
    import pandas as pd
    import vl_convert as vlc

    from studio.charts.base import compact_numbers

    ticks = re.findall(r"<text[^>]*>([^<]*)</text>", vlc.vegalite_to_svg(spec))
    assert "1e-11" in ticks and "1M" in ticks and not any("0.000" in t for t in ticks), ticks
    # an axis that states its own format keeps it; one asked to have no axis gets none
    own = alt.Chart(pd.DataFrame({"a": [1e-9, 0.5], "b": [1e7, 2e7]})).mark_point().encode(
        x=alt.X("a:Q", axis=alt.Axis(format="%")), y=alt.Y("b:Q", axis=None))
    enc = compact_numbers(own).to_dict()["encoding"]
    assert enc["x"]["axis"] == {"format": "%"} and enc["y"]["axis"] is None
    # ordinary values read plainly: a precision of its own keeps Vega from taking one from the tick step, which
    # drew ticks at 100, 150, 200 as 1e+2, 1.5e+2, 2e+2 (a regression target's histogram, an effect curve)
    plain = compact_numbers(alt.Chart(pd.DataFrame({"t": [25.0, 346.0], "n": [0, 57]})).mark_bar().encode(
        x="t:Q", y="n:Q"))
    ticks = re.findall(r"<text[^>]*>([^<]*)</text>", vlc.vegalite_to_svg(plain.to_dict()))
    assert {"100", "150", "200", "300", "50"} <= set(ticks) and not any("e+" in t for t in ticks), ticks


def test_stretched_charts_keep_their_height_and_narrow_panels_their_axis_title():
    """Issue 14 at 1280 px: Streamlit's default "fit" squeezed a stretched curve chart's title, legend and axes
    into its 300 px (an 80 px plot, the title cut); a narrow attribution panel cut its value-axis title."""
    pdp, ale, _ = _curves(n_ice=5)
    spec = charts.curve_chart([pdp, ale], "f1", width=None).to_dict()
    assert spec["autosize"] == {"type": "fit-x", "contains": "padding"}  # the height stays the plot's
    assert min(layer.get("height", spec.get("height", 0)) for layer in _layers(spec)) >= 200
    # a concatenation is left alone (Vega-Lite cannot fit one)
    two = [_attr("shap", np.ones((1, 12)), [0]), _attr("lime", np.ones((1, 12)), [0])]
    assert "autosize" not in charts.attribution_bars(two, 0).to_dict()
    # a chart of a set width keeps its plot at that size, axes, title and legend around it (Streamlit's "fit"
    # drew the Quality page's 200 px curves 10-70 px tall, the title hidden under the control above)
    import altair as alt
    import pandas as pd

    from studio.charts.base import compact

    fixed = compact(lambda: alt.Chart(pd.DataFrame({"s": [1, 2], "v": [0.1, 0.9]})).mark_line().encode(
        x="s:Q", y="v:Q").properties(width=260, height=200))().to_dict()
    assert fixed["autosize"] == {"type": "pad"} and (fixed["width"], fixed["height"]) == (260, 200)
    from studio.charts import quality

    assert all(getattr(f, "__wrapped__", None) for f in (quality.robustness_chart, quality.resilience_chart,
                                                          quality.faithfulness_chart))  # the Quality page's curves
    unit = "contribution to P(od280/od315_of_diluted_wines)"
    narrow = charts.attribution_bars(two[:1], 0, width=None, unit=unit).to_dict()
    title = narrow["encoding"]["x"]["title"]
    assert isinstance(title, list) and max(map(len, title)) <= 16 and "".join(title).replace(" ", "") == unit.replace(" ", "")
    assert narrow["encoding"]["x"]["axis"]["titleLimit"] == 0
    assert narrow["encoding"]["y"]["axis"]["labelLimit"] <= 120
    # a full-size histogram names its axes; a thumbnail does not
    hist = charts.distribution_chart(np.arange(50.0), "Target: y", small=False).to_dict()["encoding"]
    assert (hist["x"]["title"], hist["y"]["title"]) == ("value", "rows")
    assert charts.distribution_chart(np.arange(50.0)).to_dict()["encoding"]["x"]["title"] is None
