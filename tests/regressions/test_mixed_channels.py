"""Issue 13, kind 5: image sets that mix greyscale and RGB files.

Before: refused with "differ in size or channels ... resize them". Now read
as torchvision's ImageFolder reads them (PIL ``convert("RGB")``), then
converted to the model's input channels (``convert("L")`` for a grey
model), and the Dataset's ``notes`` say so (shown on the Data page). The
right values come from PIL itself, on the same files.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import studio

SIDE = 12


def _png(arr, mode):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def mixed_zip():
    """Class folders a/ and b/: two grey PNGs, two RGB PNGs, one RGBA PNG, one palette PNG (PIL mode P)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    files = {
        "a/grey1.png": _png(rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8), "L"),
        "a/rgb1.png": _png(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8), "RGB"),
        "a/rgba1.png": _png(rng.integers(0, 256, (SIDE, SIDE, 4), dtype=np.uint8), "RGBA"),  # alpha dropped
        "b/grey2.png": _png(rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8), "L"),
        "b/rgb2.png": _png(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8), "RGB"),
    }
    pal = Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8), "RGB").quantize(16)
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    files["b/palette.png"] = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return out.getvalue(), files


def _pil(blob, mode):
    """What torchvision's ImageFolder loader gives (PIL convert), as float (C, H, W) in [0, 1]."""
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as img:
        arr = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _model(channels):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(channels, 3, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(3, 2)).eval()
    return studio.wrap_model(net, card={"task": "classification", "class_names": ["a", "b"],
                                        "input_size": [channels, SIDE, SIDE]})


def test_mixed_set_loads_as_rgb_like_image_folder(mixed_zip, tmp_path):
    blob, files = mixed_zip
    path = tmp_path / "mixed.zip"
    path.write_bytes(blob)
    data = studio.load_dataset(path)
    assert data.image_shape == (3, SIDE, SIDE) and data.x.dtype == np.float32
    for i, name in enumerate(data.names):
        np.testing.assert_array_equal(data.x[i], _pil(files[name], "RGB"))
    assert len(data.notes) == 2 and "2 of 6 images are greyscale" in data.notes[0] and "RGB" in data.notes[0]
    # the RGBA file's alpha is dropped, and said so (random alpha: it has transparent pixels)
    assert data.notes[1].startswith("1 of 6 images has an alpha (transparency) channel (with transparent pixels")
    assert "alpha channel was dropped" in data.notes[1]
    assert list(data.y) == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("mode, alpha, said", [
    ("RGBA", 255, "every pixel opaque"), ("RGBA", 0, "with transparent pixels"), ("LA", 10, "with transparent pixels"),
    ("RGB", None, None), ("L", None, None)])
def test_alpha_is_stated_only_where_a_file_had_one(tmp_path, mode, alpha, said):
    """Opaque or transparent, an alpha channel is named; files without one get no alpha note. Values: PIL's own."""
    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (SIDE, SIDE, 1 if mode in ("L", "LA") else 3), dtype=np.uint8)
    arr = colour if alpha is None else np.concatenate([colour, np.full((SIDE, SIDE, 1), alpha, np.uint8)], axis=2)
    folder = tmp_path / "set"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        (folder / cls / "1.png").write_bytes(_png(arr[..., 0] if arr.shape[2] == 1 else arr, mode))
    data = studio.load_dataset(folder)
    grey = mode in ("L", "LA")
    np.testing.assert_array_equal(data.x[0], _pil((folder / "a" / "1.png").read_bytes(), "L" if grey else "RGB"))
    alpha_notes = [n for n in data.notes if "alpha" in n]
    if said is None:
        assert alpha_notes == []
    else:
        assert len(alpha_notes) == 1 and alpha_notes[0].startswith("2 of 2 images have an alpha") and said in alpha_notes[0]


def test_explanation_meta_states_the_dropped_alpha(mixed_zip, tmp_path):
    """The note travels with every explanation of the set (provenance, the report's meta line)."""
    from studio.report import _meta

    blob, _ = mixed_zip
    path = tmp_path / "mixed.zip"
    path.write_bytes(blob)
    data = studio.load_dataset(path)
    exp = studio.explain(_model(3), data, "saliency", rows=[0], cache=False)
    assert exp.provenance["data_notes"] == data.notes
    assert "alpha channel was dropped" in _meta(exp) and "greyscale" in _meta(exp)


def test_converted_to_the_model_channels_and_said_so(mixed_zip, tmp_path):
    blob, files = mixed_zip
    path = tmp_path / "mixed.zip"
    path.write_bytes(blob)
    data = studio.load_dataset(path)
    grey = data.aligned_to(_model(1))
    assert grey.image_shape == (1, SIDE, SIDE)
    for i, name in enumerate(grey.names):
        np.testing.assert_array_equal(grey.x[i], _pil(files[name], "L"))  # PIL's own luma, bit for bit
    assert "converted to grey" in grey.notes[-1] and len(grey.notes) == 3
    rgb = data.aligned_to(_model(3))
    assert rgb is data  # already the model's channels: nothing changed
    exp = studio.explain(_model(1), grey, "saliency", rows=[0, 1], cache=False)
    assert exp.values.shape == (2, 1, SIDE, SIDE)


def test_all_grey_set_for_an_rgb_model(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "greys"
    for k, cls in enumerate(("a", "b")):
        (folder / cls).mkdir(parents=True)
        (folder / cls / f"{k}.png").write_bytes(_png(rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8), "L"))
    data = studio.load_dataset(folder)
    assert data.image_shape == (1, SIDE, SIDE) and data.notes == []
    rgb = data.aligned_to(_model(3))
    assert rgb.image_shape == (3, SIDE, SIDE) and "converted to RGB" in rgb.notes[0]
    np.testing.assert_array_equal(rgb.x, np.repeat(data.x, 3, axis=1))


def test_sizes_that_differ_are_still_refused(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "sizes"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.png").write_bytes(_png(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L"))
    (folder / "a" / "2.png").write_bytes(_png(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8), "RGB"))
    with pytest.raises(studio.StudioError, match="differ in size"):
        studio.load_dataset(folder)


def test_data_page_shows_the_note(mixed_zip, tmp_path):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    blob, _ = mixed_zip
    path = tmp_path / "mixed.zip"
    path.write_bytes(blob)
    model = _model(1)
    data = studio.load_dataset(path).aligned_to(model)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["model"] = model
    at.session_state["data"] = data
    at.session_state["source"] = "test"
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(i.value for i in at.info)
    assert "2 of 6 images are greyscale" in shown and "converted to grey" in shown and "alpha channel was dropped" in shown


# ---- conformance: every image method on a mixed set, for a grey and an RGB model -------------------------------
FAST_IMAGE = {"shap": {"max_evals": 40}, "lime": {"n_samples": 60}, "anchors": {"batch_size": 20, "n_validate": 100},
              "integrated_gradients": {"n_steps": 8, "max_gap": 0}, "smoothgrad": {"n_samples": 3},
              "model_randomisation": {"max_layers": 1}, "occlusion": {"window": 4, "stride": 4}}


@pytest.fixture(scope="module")
def mixed_set(mixed_zip, tmp_path_factory):
    path = tmp_path_factory.mktemp("mixed") / "mixed.zip"
    path.write_bytes(mixed_zip[0])
    return studio.load_dataset(path)


@pytest.mark.parametrize("channels", [1, 3], ids=["grey-model", "rgb-model"])
@pytest.mark.parametrize("method", sorted(n for n in studio.explainers.registry.names()
                                          if "image" in studio.explainers.registry.REGISTRY[n]))
def test_mixed_set_conformance_every_image_method(mixed_set, method, channels):
    """Issue 13's conformance row for mixed-channel image sets: each image method explains a grey and an RGB
    model on the set (grey, RGB, RGBA and palette files), with maps of the model's size and finite values,
    and the result states what loading changed."""
    from studio.explainers import registry

    model = _model(channels)
    explainer = registry.get(method, "image")
    params = {k: v for k, v in FAST_IMAGE.get(method, {}).items() if k in explainer.params.defaults()}
    exp = studio.explain(model, mixed_set, method, rows=[0, 3], target=1, params=params, cache=False)
    if exp.kind == "attribution":
        # per channel (gradients), or one map per image (CAM, superpixels, windows)
        assert exp.values.shape in ((2, channels, SIDE, SIDE), (2, 1, SIDE, SIDE)) and np.all(np.isfinite(exp.values))
    else:
        assert [r.row for r in exp.rules] == [0, 3] and all(np.isfinite(r.precision) for r in exp.rules)
    notes = exp.provenance["data_notes"]
    assert any("greyscale" in n for n in notes) and any("alpha" in n for n in notes)
    assert (channels == 1) == any("converted to grey" in n for n in notes)
