"""AppTest for every page with session state seeded: no exception, key elements, runs, errors."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.uploads import EVIL, wine_files
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def _app(model=None, data=None, **state):
    at = AppTest.from_file(APP, default_timeout=180)
    if model is not None:
        at.session_state["model"] = model
        at.session_state["data"] = data.aligned_to(model)
        at.session_state["source"] = "test"
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def _press(at, label, index=None):
    buttons = [b for b in at.button if b.label == label]
    if index is None:
        [button] = buttons
    else:
        button = buttons[index]
    return button.click().run()


def _captions(at):
    return [c.value for c in at.caption]


def test_data_page_tables(gbt, table):
    at = _app(gbt, table)
    at.switch_page("pages/data.py").run()
    _ok(at)
    assert at.title[0].value == "Data"
    [frame] = [d.value for d in at.dataframe]
    assert list(frame["feature"]) == list(table.feature_names)
    assert any("heavily skewed" in w.value for w in at.warning)  # breast cancer has skewed error features
    assert len(at.get("vega_lite_chart")) == 1  # class balance


def test_data_page_images(cnn, digits):
    at = _app(cnn, digits)
    at.switch_page("pages/data.py").run()
    _ok(at)
    assert len(at.image) >= 10  # one row of samples per class


def test_model_page_metrics_subsets_and_row_choice(gbt, table):
    at = _app(gbt, table)
    at.switch_page("pages/model.py").run()
    _ok(at)
    labels = [m.label for m in at.metric]
    assert labels == ["rows", "accuracy", "F1 (macro)", "ROC AUC"]
    # a subset: the wrong predictions
    at.selectbox(key="cond-col").select("correct").run()
    at.selectbox(key="cond-op").select("==").run()
    at.text_input(key="cond-value").input("False").run()
    _press(at, "Add condition")
    at.text_input(key="subset-name").input("wrong").run()
    _press(at, "Save subset")
    _ok(at)
    assert "wrong" in at.session_state["subsets"]
    side = [d.value for d in at.dataframe if "subset" in d.value.columns][0]
    assert list(side["subset"]) == ["All rows", "wrong"]
    assert side.loc[1, "accuracy"] == 0.0 and side.loc[1, "rows"] == 7
    # choosing an instance here sets it for the Local page
    at.number_input[0].set_value(42).run()
    assert at.session_state["row"] == 42
    # a bad condition is an st.error, not an exception
    at.selectbox(key="cond-col").select("mean radius").run()
    at.text_input(key="cond-value").input("big").run()
    _press(at, "Add condition")
    _ok(at)
    assert any("numeric" in e.value for e in at.error)


def _bar_features(spec) -> list:
    """The features a bar chart draws, in order (its y axis sort)."""
    return list(spec["encoding"]["y"]["sort"])


def test_local_page_runs_side_by_side_panels_and_agreement(mlp, table):
    import json

    at = _app(mlp, table, row=3)
    at.switch_page("pages/local.py").run()
    _ok(at)
    at.multiselect(key="local-methods").set_value(["saliency", "integrated_gradients"]).run()
    assert any("model evaluations" in c for c in _captions(at))  # cost estimate before the run
    _press(at, "Run explainers")
    _ok(at)
    assert len(at.get("vega_lite_chart")) == 2
    assert sum("cache miss" in c for c in _captions(at)) == 2
    # first paint: the top 12 of 30 features, no agreement table; both on request
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert all(len(_bar_features(s)) == 12 for s in specs)
    assert "top 12 of 30 by |value| (averaged over the methods, one order for every chart)" in _captions(at)
    assert not [d for d in at.dataframe if "spearman" in d.value.columns]
    # each panel's checks as verdicts (studio.checks), behind an expander whose label says pass / fail,
    # e.g. IG's completeness gap as a percentage with its thresholds
    from studio.checks import format_value, status_of
    from studio.ui.views import md_escape

    ig = [r.explanation for r in at.session_state["results"].values() if r.method == "integrated_gradients"][0]
    gap = (f"**Completeness gap** {md_escape(format_value(ig.checks['completeness_gap'], 'share'))} "
           f"({md_escape('pass at or below 1%, fail above 5%, warn between')})")
    assert any(gap in m.value for m in at.markdown), gap
    assert any(e.label.startswith("Checks: ") for e in at.expander)
    if status_of("completeness_gap", ig.checks["completeness_gap"]) == "fail":  # shown before the chart
        assert any("Completeness gap" in e.value for e in at.error)
    # each panel names the class, the unit and the row's feature values
    cls = mlp.class_names[ig.target[0]]
    assert any(md_escape(f'Explains the probability of "{cls}" for row 3') in c and "unit: contribution to" in c
               for c in _captions(at)), _captions(at)
    assert any(c.startswith("row 3: ") and " = " in c for c in _captions(at))
    def title(t):  # an axis title wrapped on several lines (a narrow panel never cuts it)
        return " ".join(t) if isinstance(t, list) else t

    assert all(title(s["encoding"]["x"]["title"]) in (f"contribution to P({cls})", f"sensitivity of P({cls})")
               for s in specs), [s["encoding"]["x"]["title"] for s in specs]
    at.toggle(key="local-agreement").set_value(True).run()
    at.toggle(key="local-all-features").set_value(True).run()
    _ok(at)
    agreement = [d.value for d in at.dataframe if "spearman" in d.value.columns]
    assert len(agreement) == 1 and len(agreement[0]) == 1
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert all(sorted(_bar_features(s)) == sorted(table.feature_names) for s in specs)
    assert not any(c.startswith("top 12 of") for c in _captions(at))
    # a rerun (e.g. a page switch and back) draws from the session, without running anything
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/local.py").run()
    _ok(at)
    assert len(at.get("vega_lite_chart")) == 2 and not at.status


def test_new_session_reads_the_disk_cache(mlp, table):
    first = _app(mlp, table, row=1)
    first.switch_page("pages/local.py").run()
    first.multiselect(key="local-methods").set_value(["integrated_gradients"]).run()
    _press(first, "Run explainers")
    second = _app(mlp, table, row=1)
    second.switch_page("pages/local.py").run()
    second.multiselect(key="local-methods").set_value(["integrated_gradients"]).run()
    _press(second, "Run explainers")
    _ok(second)
    assert any("cache hit" in c for c in _captions(second))


def test_a_failing_method_shows_its_error_and_the_others_render(mlp, table, monkeypatch):
    from studio.explainers import gradients

    def broken(self, model, data, params, ctx):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(gradients.TabularSaliency, "explain", broken)
    at = _app(mlp, table)
    at.switch_page("pages/local.py").run()
    at.multiselect(key="local-methods").set_value(["saliency", "integrated_gradients"]).run()
    _press(at, "Run explainers")
    _ok(at)
    assert any("simulated failure" in e.value for e in at.error)
    assert len(at.get("vega_lite_chart")) == 1


def test_local_page_images_show_overlays(cnn, digits):
    at = _app(cnn, digits, row=5)
    at.switch_page("pages/local.py").run()
    _ok(at)
    at.multiselect(key="local-methods").set_value(["integrated_gradients", "grad_cam"]).run()
    _press(at, "Run explainers")
    _ok(at)
    assert len(at.image) == 3  # the instance and two overlays
    at.toggle(key="local-agreement").set_value(True).run()
    assert len([d for d in at.dataframe if "spearman" in d.value.columns]) == 1
    def scales():
        return [i.proto.imgs[0].caption for i in at.image if i.proto.imgs[0].caption.startswith("red")]

    assert len(scales()) == 2 and all("(per map)" in c for c in scales())
    # Grad-CAM's map is never negative: its caption explains red only (no blue that is not there)
    assert sum("no negative values, so no blue" in c for c in scales()) == 1
    assert sum("blue: pushes it down" in c for c in scales()) == 1  # integrated gradients: signed
    at.radio(key="local-scale").set_value("one scale for all maps").run()
    _ok(at)
    assert len(scales()) == 2 and all("shared across 2 maps" in c for c in scales())


def test_local_lists_unavailable_methods_with_the_reason(gbt, table):
    at = _app(gbt, table)
    at.switch_page("pages/local.py").run()
    _ok(at)
    disabled = [c for c in at.checkbox if c.disabled]
    assert {c.label for c in disabled} >= {"saliency", "integrated_gradients"}
    assert any("needs gradients" in c for c in _captions(at))
    assert "saliency" not in at.multiselect(key="local-methods").options


def test_global_effects_of_one_feature_on_one_chart_with_ebm_and_heatmaps(gbt, table):
    import json

    at = _app(gbt, table)
    at.switch_page("pages/global.py").run()
    at.multiselect(key="global-methods").set_value(["pdp", "ale", "ebm_surrogate"]).run()
    at.selectbox(key="global-feature").select("mean texture").run()
    at.selectbox(key="global-pair").select("mean symmetry").run()
    at.number_input(key="global-ebm_surrogate-max_rounds").set_value(100).run()
    at.number_input(key="global-ebm_surrogate-outer_bags").set_value(1).run()
    at.number_input(key="global-ebm_surrogate-interactions").set_value(3).run()
    _press(at, "Run explainers")
    _ok(at)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    # one chart per unit: the PDP and ALE in probability, the EBM in logit, never on one axis
    curves = {s["title"]["text"]: s for s in specs if isinstance(s.get("title"), dict)}
    assert set(curves) == {"mean texture: pdp, ale", "mean texture: ebm_surrogate"}, set(curves)
    cls = gbt.class_names[1]  # binary: global methods explain the positive class unless one is picked
    assert curves["mean texture: pdp, ale"]["layer"][1]["encoding"]["y"]["title"] == f"P({cls}) (centred)"
    assert curves["mean texture: ebm_surrogate"]["layer"][1]["encoding"]["y"]["title"] == f"logit of {cls} (centred)"
    assert at.selectbox(key="global-target").value == cls
    assert any("Every chart explains the probability of" in c and cls in c for c in _captions(at))
    heatmaps = [s["title"] for s in specs if isinstance(s.get("title"), str) and " x " in s["title"]]
    assert "pdp (pdp): mean texture x mean symmetry" in heatmaps and "ale (ale): mean texture x mean symmetry" in heatmaps
    checks = [d.value for d in at.dataframe if "check" in d.value.columns]
    assert any("Fidelity" in set(c["check"]) for c in checks)  # the surrogate's fidelity beside its shapes
    assert all(set(c.columns) == {"verdict", "check", "value", "threshold", "meaning"} for c in checks)


def test_cost_over_budget_asks_first(gbt, table, monkeypatch, isolated_cache):
    from studio import cost

    monkeypatch.setattr(cost, "_MEMO", {})  # a synthetic clock: 10 us per row, so the test does not depend on load
    monkeypatch.setattr(cost, "calibrate", lambda *a, **k: cost.Calibration(forward=(0.0, 1e-5)))
    at = _app(gbt, table)
    at.switch_page("pages/global.py").run()
    at.multiselect(key="global-methods").set_value(["permutation_importance"]).run()
    at.number_input(key="global-budget").set_value(1.0).run()
    at.number_input(key="global-permutation_importance-max_rows").set_value(0).run()
    at.number_input(key="global-permutation_importance-n_repeats").set_value(100).run()
    _ok(at)
    # over the budget: a warning with the estimate, and a choice that skips it unless the user says otherwise
    assert any("over the time budget of 1 s" in w.value for w in at.warning), [w.value for w in at.warning]
    ask = at.radio(key="global-confirm-permutation_importance")
    assert ask.value == "skip it" and any(o.startswith("run it anyway") for o in ask.options)
    _press(at, "Run explainers")
    assert not ui_results(at)  # skipped: nothing ran
    cut = [o for o in ask.options if o.startswith("cut its sample sizes")]
    assert cut, ask.options
    at.radio(key="global-confirm-permutation_importance").set_value("cut its sample sizes to fit").run()
    _press(at, "Run explainers")
    _ok(at)
    [ran] = ui_results(at)  # it ran, with the sample sizes cut, never below the method's useful minimum
    assert ran.method == "permutation_importance" and 200 <= ran.params["max_rows"] < len(table)
    assert ran.params["n_repeats"] >= 2 and ran.error == ""


def ui_results(at) -> list:
    return list(at.session_state["results"].values()) if "results" in at.session_state else []


def test_global_page_importance_and_curves_then_pin_and_report(gbt, table):
    at = _app(gbt, table)
    at.switch_page("pages/global.py").run()
    _ok(at)
    at.multiselect(key="global-methods").set_value(["permutation_importance", "pdp", "ale"]).run()
    at.selectbox(key="global-feature").select("worst radius").run()
    at.number_input(key="global-permutation_importance-n_repeats").set_value(1).run()
    _press(at, "Run explainers")
    _ok(at)
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert len(specs) == 2 and any("worst radius" in s for s in specs)
    _press(at, "Pin to report", 0)  # the first pin button: importance
    assert len(at.session_state["pins"]) == 1
    at.switch_page("pages/report.py").run()
    _ok(at)
    assert len(at.get("vega_lite_chart")) == 1
    assert [b.label for b in at.get("download_button")][0] == "Download report"  # then Download PDF (Chromium)
    # Save commits the typed sign-off (a Download press does the same, tests/browser/test_signoff_download.py)
    at.text_input(key="signoff-name").input("Ann Reviewer")
    at.selectbox(key="signoff-verdict").select("approved")
    at.text_area(key="signoff-note").input("numbers checked")
    _press(at, "Save comments and sign-off")
    _ok(at)
    assert any("Signed by Ann Reviewer" in m.value for m in at.success)
    html = at.session_state["_memo"]["report"][1]
    summary = html[html.index("<section class='summary'>"):html.index("</section>")]
    assert "Ann Reviewer" in summary and "numbers checked" in summary and "approved" in summary
    at.text_area(key=f"comment-{at.session_state['pins'][0]['key']}").input("checked by hand")
    _press(at, "Save comments and sign-off")
    _ok(at)
    assert at.session_state["pins"][0]["comment"] == "checked by hand"
    assert "checked by hand" in at.session_state["_memo"]["report"][1]


def test_upload_of_own_files_and_a_bad_upload_keeps_the_previous_pair():
    files = wine_files()
    at = _app()
    _ok(at)
    at.file_uploader[0].set_value(("wine.skops", files["model"], "application/octet-stream"))
    at.file_uploader[1].set_value(("wine.card.json", files["card"], "application/json"))
    at.file_uploader[2].set_value(("wine.csv", files["csv"], "text/csv"))
    at.button[0].click().run()  # the form's Load button
    _ok(at)
    assert at.session_state["model"].name == "wine.skops"
    assert EVIL in at.session_state["data"].feature_names
    # now a broken model file: st.error, and the wine pair stays loaded
    at.file_uploader[0].set_value(("broken.skops", b"not a zip at all", "application/octet-stream"))
    at.button[0].click().run()
    _ok(at)
    assert at.error and "previous model and data are still loaded" in at.error[0].value
    assert at.session_state["model"].name == "wine.skops"
    at.switch_page("pages/data.py").run()
    _ok(at)
    assert EVIL in list([d.value for d in at.dataframe][0]["feature"])


def test_compare_an_instance_with_another_and_with_a_subset_mean(mlp, table):
    import json

    from studio.evaluation import Condition

    at = _app(mlp, table, row=3, subsets={"big": [Condition("mean radius", ">", "20")]})
    at.switch_page("pages/local.py").run()
    at.multiselect(key="local-methods").set_value(["integrated_gradients"]).run()
    at.radio(key="local-compare").set_value("another instance").run()
    _press(at, "Run explainers")
    _ok(at)
    assert any(s.value == "Row 3 against row 4" for s in at.subheader)
    at.radio(key="local-compare").set_value("a subset's mean").run()
    _press(at, "Run explainers")
    _ok(at)
    [head] = [s.value for s in at.subheader if s.value.startswith("Row 3 against mean of big")]
    n = int(head.split("(")[1].split()[0])
    assert n == min(10, int((table.frame["mean radius"] > 20).sum()))
    spec = json.loads(at.get("vega_lite_chart")[-1].proto.spec)
    assert spec["encoding"]["yOffset"]["field"] == "instance"


def test_global_importance_side_by_side_permutation_mean_shap_and_ebm_terms(gbt, table):
    import json

    import studio
    from studio.charts.importance import ebm_term_importance

    at = _app(gbt, table)
    at.switch_page("pages/global.py").run()
    assert "shap" in at.multiselect(key="global-methods").options
    at.multiselect(key="global-methods").set_value(["permutation_importance", "shap", "ebm"]).run()
    at.number_input(key="global-shap-rows").set_value(40).run()
    at.number_input(key="global-permutation_importance-n_repeats").set_value(1).run()
    at.number_input(key="global-ebm-max_rounds").set_value(50).run()
    at.number_input(key="global-ebm-outer_bags").set_value(1).run()
    at.number_input(key="global-ebm-interactions").set_value(0).run()
    _ok(at)
    assert any(c.startswith("shap: ~") for c in _captions(at))  # costed for its 40 rows
    _press(at, "Run explainers")
    _ok(at)
    assert not at.error
    # one chart per method, side by side in columns, each with its own unit on the axis
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    units = [s["layer"][0]["encoding"]["x"]["title"] for s in specs if "layer" in s][:3]  # then the EBM curve
    units = [" ".join(u) if isinstance(u, list) else u for u in units]
    cls = gbt.class_names[1]
    assert units == ["drop in score", f"mean |contribution to P({cls})|", f"mean |term| in logit of {cls}"], units
    notes = _captions(at)
    from studio.ui.views import md_escape

    assert any(n.startswith(md_escape("mean |SHAP|: mean |value| over 40 sampled rows")) for n in notes)
    assert any(n.startswith(md_escape(f"ebm term importance: mean |term contribution| to the EBM's score over "
                                      f"{len(table)} rows")) for n in notes)
    # the shap run behind mean |SHAP|: 40 sampled rows, the positive class, as the global methods explain
    results = {r.method: r.explanation for r in at.session_state["results"].values()}
    shap = results["shap"]
    assert len(shap.rows) == 40 == len(set(shap.rows)) and shap.target == [1] * 40
    direct = studio.explain(gbt, table, "shap", rows=shap.rows, target=1)
    np.testing.assert_allclose(shap.values, direct.values, atol=1e-12)
    ebm = ebm_term_importance(results["ebm"], table.aligned_to(gbt).x)
    assert len(ebm.importances) == len(table.feature_names)  # no interactions asked: one term per feature


def test_global_page_offers_mean_shap_only_for_tables(cnn, digits):
    at = _app(cnn, digits)
    at.switch_page("pages/global.py").run()
    _ok(at)
    assert "shap" not in at.multiselect(key="global-methods").options
    assert not [n for n in at.number_input if n.key == "global-shap-rows"]


def test_first_estimate_never_holds_up_the_page(gbt, table, monkeypatch, isolated_cache):
    """A method met for the first time on a model is not timed while the page draws: its plan line says
    "measuring…" and the page is whole (Run button included) without any calibration; the page calibrates last
    (``measure_pending``) and reruns once, and the line shows the estimate. A calibration that fails is said
    once and not retried on every rerun."""
    from studio import cost
    from studio.ui import explain as ui

    monkeypatch.setattr(cost, "_MEMO", {})
    calls, real, later = [], cost.calibrate, ui.measure_pending
    monkeypatch.setattr(cost, "calibrate", lambda *a, **k: calls.append(a[0].name) or real(*a, **k))
    monkeypatch.setattr(ui, "measure_pending", lambda *a, **k: None)  # the page as drawn before measuring
    at = _app(gbt, table)
    at.switch_page("pages/global.py").run()
    at.multiselect(key="global-methods").set_value(["ale"]).run()
    _ok(at)
    assert calls == [] and any(c == f"ale: {ui.MEASURING}" for c in _captions(at)), _captions(at)
    assert [b for b in at.button if b.label == "Run explainers"]
    monkeypatch.setattr(ui, "measure_pending", later)
    at.run()
    _ok(at)
    assert calls == ["ale"] and any(c.startswith("ale: ~") and "model evaluations" in c for c in _captions(at))
    at.run()
    assert calls == ["ale"]  # remembered

    def broken(*a, **k):
        calls.append(a[0].name)
        raise RuntimeError("probe failed")

    monkeypatch.setattr(cost, "calibrate", broken)
    at.multiselect(key="global-methods").set_value(["ale", "pdp", "ice"]).run()
    _ok(at)
    at.run()
    assert calls == ["ale", "pdp", "ice"]  # one per rerun, each tried once
    for method in ("pdp", "ice"):
        assert any(c.startswith(f"{method}: cost not estimated") and "probe failed" in c for c in _captions(at))
