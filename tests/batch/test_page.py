"""The Global page's Batch results section (AppTest): summaries of a batch folder, sampled dependence stated."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.batch.conftest import ROWS
from tests.conftest import ROOT


@pytest.fixture
def page(gbt, table, two_workers, monkeypatch):
    monkeypatch.setenv("STUDIO_BATCH_ROOT", str(two_workers.out.parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model"] = gbt
    at.session_state["data"] = table.aligned_to(gbt)
    at.session_state["source"] = "test"
    at.run()
    return at.switch_page("pages/global.py").run()


def _titles(at) -> list:
    out = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        for part in [spec] + spec.get("hconcat", []) + spec.get("layer", []):
            title = part.get("title")
            out.append(f"{title.get('text')} | {title.get('subtitle')}" if isinstance(title, dict) else title)
    return [t for t in out if t]


def test_batch_section_shows_importance_dependence_and_subsets(page, two_workers):
    at = page.text_input(key="batch-folder").input(two_workers.out.name).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(f"on {ROWS:,} rows" in m.value for m in at.markdown)
    titles = _titles(at)
    assert any(t.startswith("mean |shap| (batch)") for t in titles), titles
    assert f"shap dependence: income | sample of 5,000 of {ROWS:,} rows" in titles, titles
    assert "mean |attribution| by prediction" in titles
    at = at.selectbox(key="batch-subset").select("income").run()
    assert not at.exception
    assert any("exact quantiles" in c.value for c in at.caption)
    assert at.dataframe[-1].value["rows"].sum() == ROWS


def test_folders_outside_the_root_are_refused(page):
    at = page.text_input(key="batch-folder").input("../../etc").run()
    assert not at.exception
    assert any("beneath" in e.value for e in at.error)
