"""AppTest: the router and the Load page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def test_app_opens_on_the_sample_without_errors():
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "Load"
    assert at.session_state["model"].name == "tabular_gbt.skops"
    assert len(at.session_state["data"]) == 569


@pytest.mark.parametrize("page", ["pages/data.py", "pages/model.py", "pages/local.py", "pages/global.py", "pages/report.py"])
def test_every_page_opens(page):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception


def test_switching_sample_loads_images():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox[0].select("Digits: small CNN (TorchScript)").run()
    assert not at.exception
    assert at.session_state["data"].kind == "image"
