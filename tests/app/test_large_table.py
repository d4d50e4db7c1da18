"""A 100k-row table: pages render, charts and tables send aggregates or samples, reruns recompute nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from studio.charts import MAX_POINTS
from tests.conftest import ROOT, SAMPLE_DATA

APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def big(gbt):
    from studio.data.tabular import table_dataset

    base = pd.read_csv(SAMPLE_DATA / "breast_cancer.csv")
    frame = base.sample(100_000, replace=True, random_state=0).reset_index(drop=True)
    feats = [c for c in frame.columns if c != "target"]
    frame[feats] = frame[feats] * np.random.default_rng(0).normal(1, 0.02, size=(len(frame), len(feats)))
    return table_dataset(frame, name="big.csv").aligned_to(gbt)


def _chart_rows(at) -> list[int]:
    return [sum(pa.ipc.open_stream(d.data.data).read_all().num_rows for d in c.proto.datasets)
            for c in at.get("vega_lite_chart")]


def test_pages_on_100k_rows_send_bounded_data(gbt, big, monkeypatch):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["model"], at.session_state["data"], at.session_state["source"] = gbt, big, "big"
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    [table] = [d.value for d in at.dataframe]
    assert list(table["count"]) == [100_000] * 30
    assert all(sum(h) == 100_000 for h in table["distribution"])  # histograms count every row
    at.switch_page("pages/model.py").run()
    assert not at.exception
    rows = _chart_rows(at)
    assert rows and max(rows) <= MAX_POINTS
    instances = [d.value for d in at.dataframe if "confidence" in d.value.columns][0]
    assert len(instances) == 2000
    assert at.metric[0].value == "100,000"  # metrics use every row
    # a rerun recomputes neither predictions nor metrics
    from studio import evaluation

    def fail(*a, **k):
        raise AssertionError("recomputed on rerun")

    monkeypatch.setattr(evaluation, "predictions_frame", fail)
    monkeypatch.setattr(evaluation, "metrics", fail)
    at.run()
    assert not at.exception
