"""AppTest: the router and the Load page."""

from __future__ import annotations

import numpy as np
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


def _uploads(at, model, data):
    at.file_uploader[0].set_value(model)
    at.file_uploader[2].set_value(data)


def test_a_failed_load_joins_the_messages_with_one_full_stop(monkeypatch):
    from studio.errors import StudioError
    from studio.ui import state

    def refuse(*args, **kwargs):
        raise StudioError("the file is damaged.")

    at = AppTest.from_file(APP, default_timeout=120).run()
    monkeypatch.setattr(state, "load_pair", refuse)
    _uploads(at, ("m.skops", b"x", "application/octet-stream"), ("d.csv", b"a,b\n1,2\n", "text/csv"))
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["the file is damaged. The previous model and data are still loaded."]
    assert at.session_state["model"].name == "tabular_gbt.skops"


def test_card_form_describes_a_model_uploaded_without_a_card(cnn, digits):
    """TorchScript CNN with no card: the form gives task, classes, input size and normalisation."""
    from tests.conftest import MODELS, SAMPLE_DATA

    model_bytes = (MODELS / "image_cnn.pt").read_bytes()
    data_bytes = (SAMPLE_DATA / "digits.zip").read_bytes()
    classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    at = AppTest.from_file(APP, default_timeout=120).run()
    _uploads(at, ("cnn.pt", model_bytes, "application/octet-stream"), ("digits.zip", data_bytes, "application/zip"))
    at.selectbox(key="card-task").select("classification")
    at.text_input(key="card-classes").input(", ".join(classes))
    at.text_input(key="card-size").input("3,32,32")  # wrong channels first: refused, the sample stays loaded
    at.text_input(key="card-mean").input("0.2")
    at.text_input(key="card-std").input("0.3")
    at.button[0].click().run()
    assert not at.exception
    assert at.error and "[3, 32, 32]" in at.error[0].value and ".." not in at.error[0].value
    assert at.session_state["model"].name == "tabular_gbt.skops"

    at.text_input(key="card-size").input("1,32,32")
    at.button[0].click().run()
    assert not at.exception and not at.error
    model = at.session_state["model"]
    assert model.name == "cnn.pt" and at.session_state["data"].kind == "image"
    assert model.task == "classification" and list(model.class_names) == classes
    assert list(model.card.input_size) == [1, 32, 32]
    assert model.card.mean == [0.2] and model.card.std == [0.3]
    # the normalisation from the form is applied: the same outputs as the sample CNN with its own card
    np.testing.assert_allclose(model.output(digits.x[:8]), cnn.output(digits.x[:8]), rtol=1e-5, atol=1e-6)
