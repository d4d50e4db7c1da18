"""The Local page explains an uploaded single image: decoded safely, fitted to the model, explained as one row."""

from __future__ import annotations

import io

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from studio.errors import StudioError
from studio.ui.instance import image_instance, resize, to_channels
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
ROW = 5


def _png(array: np.ndarray) -> bytes:
    """(H, W) or (H, W, 3) uint8 -> PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _grey(digits, row=ROW) -> np.ndarray:
    """Row ``row`` of the digits as (H, W) uint8, the values a PNG of it holds."""
    return (digits.x[row, 0] * 255).round().astype(np.uint8)


def _app(cnn, digits, **state):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["model"] = cnn
    at.session_state["data"] = digits.aligned_to(cnn)
    at.session_state["source"] = "test"
    at.session_state["row"] = ROW
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("pages/local.py").run()
    assert not at.exception
    return at


def test_an_rgb_upload_is_converted_to_the_models_grey_input_exactly(cnn, digits):
    grey = _grey(digits)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)  # (32, 32, 3), equal channels
    one = image_instance(_png(rgb), "seven.png", cnn, digits)
    assert one.kind == "image" and one.x.shape == (1, 1, 32, 32) and one.y is None and len(one) == 1
    np.testing.assert_allclose(one.x[0, 0], grey / 255.0, atol=1e-6)  # luma of equal channels is the grey value


def test_a_larger_upload_is_shrunk_by_averaging_and_grey_repeats_to_colour(cnn, digits):
    grey = _grey(digits)
    big = np.kron(grey, np.ones((3, 3), dtype=np.uint8))  # (96, 96): each pixel a 3x3 block
    one = image_instance(_png(big), "big.png", cnn, digits)
    np.testing.assert_allclose(one.x[0, 0], grey / 255.0, atol=1e-6)  # box average of equal blocks
    colour = to_channels(one.x[0], 3)
    assert colour.shape == (3, 32, 32) and all(np.array_equal(colour[c], one.x[0, 0]) for c in range(3))
    small = resize(one.x[0], 16, 16)  # (1, 16, 16): each output pixel the mean of a 2x2 block
    np.testing.assert_allclose(small[0], one.x[0, 0].reshape(16, 2, 16, 2).mean(axis=(1, 3)), atol=1e-6)


def test_broken_huge_or_foreign_uploads_are_refused_in_words(cnn, digits, monkeypatch):
    with pytest.raises(StudioError, match="could not be decoded"):
        image_instance(b"\x89PNG\r\n\x1a\n not really", "broken.png", cnn, digits)
    with pytest.raises(StudioError, match="PNG or JPEG"):
        image_instance(_png(_grey(digits)), "notes.txt", cnn, digits)
    monkeypatch.setenv("STUDIO_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(StudioError, match="over the limit of 100 pixels"):
        image_instance(_png(_grey(digits)), "big.png", cnn, digits)


def test_local_page_explains_an_uploaded_image(cnn, digits):
    grey = _grey(digits, 17)
    at = _app(cnn, digits)
    at.multiselect(key="local-methods").set_value(["integrated_gradients", "grad_cam"]).run()
    at.file_uploader(key="local-image").set_value(("my digit.png", _png(grey), "image/png")).run()
    assert not at.exception and not at.error
    assert "uploaded image my digit" in at.markdown[0].value.replace("\\", "")
    [run] = [b for b in at.button if b.label == "Run explainers"]
    run.click().run()
    assert not at.exception and not at.error
    assert len(at.image) == 3  # the uploaded image and two overlays
    results = list(at.session_state["results"].values())
    assert len(results) == 2 and all(r.explanation.rows == [0] for r in results)
    expected = np.asarray(cnn.output(grey[None, None] / np.float32(255.0))).argmax()
    ig = [r.explanation for r in results if r.method == "integrated_gradients"][0]
    assert ig.values.shape == (1, 1, 32, 32) and ig.target == [int(expected)]
    # the explained input is the upload (a one-row dataset of it), not row 5
    one = image_instance(_png(grey), "my digit.png", cnn, digits)
    assert all(r.explanation.dataset_id == one.fingerprint for r in results)
    assert ig.checks["completeness_gap"] < 0.05


def test_a_broken_upload_shows_an_error_and_the_row_is_explained(cnn, digits):
    at = _app(cnn, digits)
    at.multiselect(key="local-methods").set_value(["grad_cam"]).run()
    at.file_uploader(key="local-image").set_value(("broken.png", b"not an image", "image/png")).run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert "could not be decoded" in error and f"Row {ROW} of the dataset is explained instead." in error
    assert at.markdown[0].value.startswith(f"row **{ROW}**")
    [run] = [b for b in at.button if b.label == "Run explainers"]
    run.click().run()
    assert not at.exception
    [res] = list(at.session_state["results"].values())
    assert res.explanation.rows == [ROW] and len(at.image) == 2
