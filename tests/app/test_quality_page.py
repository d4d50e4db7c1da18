"""AppTest of the Quality page: run an assessment on the sample CNN, see its matrices, curves, checks and exports."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def test_quality_page_runs_and_shows_every_attribute(cnn, digits):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["model"] = cnn
    at.session_state["data"] = digits.aligned_to(cnn)
    at.session_state["source"] = "test"
    at.session_state["quality-methods"] = ["saliency", "grad_cam"]
    at.session_state["quality-attacks"] = ["noise", "fgsm"]
    at.session_state["quality-rows"] = 3
    at.session_state["quality-severity"] = 2
    at.session_state["quality-faith"] = ["deletion", "insertion"]
    at.run()
    at = at.switch_page("pages/quality.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Quality of explanations"
    assert any("2 method(s) x 4 perturbation(s) = 8 scenarios" in c.value for c in at.caption)
    assert any("Run assessment" in i.value for i in at.info)
    at.button(key="quality-run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    heads = [h.value for h in at.subheader]
    assert heads[:4] == ["Resilience: methods x perturbations", "Robustness: the model under each perturbation",
                         "Deviation: do methods agree?", "Faithfulness"]
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    # resilience heatmap, accuracy and kept curves, resilience curve, two deviation heatmaps, two faithfulness curves
    assert len(specs) == 8
    assert "Resilience (rank correlation" in specs[0] and "Deletion curve" in specs[-2] and "Insertion" in specs[-1]
    assert any("probability" in c.value for c in at.caption)  # the explained class and unit are named
    assert at.session_state["assessment"]["result"].provenance["rows"] == [0, 1, 2]
    at.radio(key="quality-metric").set_value("top_k_overlap").run()
    assert not at.exception
    # drill-down: one cell's number, its rows' predictions, and the clean and perturbed images with overlays
    result = at.session_state["assessment"]["result"]
    assert at.selectbox(key="quality-drill-method").options == ["saliency", "grad_cam"]
    at.selectbox(key="quality-drill-method").set_value("grad_cam").run()
    at.selectbox(key="quality-drill-scenario").set_value("noise s2").run()
    assert not at.exception, [e.value for e in at.exception]
    sc = result.scenario("grad_cam", "noise", 2)
    value = [r["value"] for r in result.numbers("resilience") if (r["method"], r["attack"], r["severity"],
             r["metric"]) == ("grad_cam", "noise", 2, "top_k_overlap")][0]
    assert at.metric[0].value == f"{value:.3f}"  # the cell's number (the radio above chose top-k overlap)
    assert at.metric[1].value == f"{int(sc.kept.sum())} of 3"
    rows = at.dataframe[0].value
    assert list(rows["row"]) == [0, 1, 2] and list(rows["prediction kept"]) == list(sc.kept)
    assert np.nanmean(rows["top-k overlap"]) == pytest.approx(value)
    images = at.get("image")
    assert len(images) == (4 if sc.kept[0] else 3)  # row 0: clean, its overlay, perturbed, its overlay
    if sc.kept[0]:  # each map on its own scale by default (rank agreement ignores scale), one scale on demand
        assert any("clean: colour scale" in c.value and "(per map)" in c.value for c in at.caption)
        at.radio(key="quality-drill-scale").set_value("one scale for both").run()
        assert any("shared across 2 maps" in c.value for c in at.caption)


def test_the_drill_down_of_a_table_shows_values_and_attributions_clean_and_perturbed(gbt, table):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["model"] = gbt
    at.session_state["data"] = table.aligned_to(gbt)
    at.session_state["source"] = "test"
    at.session_state["quality-methods"] = ["shap"]
    at.session_state["quality-attacks"] = ["noise"]
    at.session_state["quality-rows"] = 2
    at.session_state["quality-severity"] = 2
    at.session_state["quality-faith"] = []
    at.run()
    at = at.switch_page("pages/quality.py").run()
    at.button(key="quality-run").click().run()
    at.selectbox(key="quality-drill-scenario").set_value("noise s2").run()
    at.selectbox(key="quality-drill-row").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    sc = at.session_state["assessment"]["result"].scenario("shap", "noise", 2)
    values = at.dataframe[1].value
    assert list(values["feature"]) == list(table.feature_names)
    assert np.array_equal(values["value (clean)"], table.x[1].astype(float))
    assert np.array_equal(values["value (perturbed)"], sc.x_perturbed[1].astype(float))
    assert np.array_equal(values["attribution (clean)"], sc.attribution_clean[1])
    if sc.kept[1]:
        assert np.array_equal(values["attribution (perturbed)"], sc.attribution_perturbed[int(sc.kept[:2].sum()) - 1])
    assert any("Row 1: prediction" in c.value for c in at.caption)
