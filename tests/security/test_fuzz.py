"""Property-based fuzzing: no input makes the loaders raise anything but StudioError."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import studio
from studio.errors import StudioError
from studio.models import load_card
from studio.models.card import ModelCard

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

cells = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6), st.sampled_from(["", "NA", "nan", "inf", '"', "a,b", "\n"]),
)
csv_text = st.lists(st.lists(cells, min_size=0, max_size=5), min_size=0, max_size=6).flatmap(
    lambda rows: st.sampled_from([",", ";", "\t", "|"]).map(lambda sep: "\n".join(sep.join(r) for r in rows))
)


def _accepts(fn):
    """Run ``fn``; a StudioError is a fine answer, anything else fails the property."""
    try:
        return fn()
    except StudioError as exc:
        assert str(exc).strip()
        return None


@FUZZ
@given(text=csv_text, label=st.sampled_from([None, "target", "a"]))
def test_csv_text(text, label):
    data = _accepts(lambda: studio.load_dataset(text.encode(), name="f.csv", label=label))
    if data is not None:
        assert data.kind == "tabular" and len(data) >= 1 and data.x.shape[0] == len(data)


@FUZZ
@given(blob=st.binary(max_size=400))
def test_csv_bytes(blob):
    _accepts(lambda: studio.load_dataset(blob, name="f.csv"))


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


dtypes = st.sampled_from(["f8", "f4", "i8", "u1", "?", "U3", "c16", "m8[s]", "S2"])
shapes = st.lists(st.integers(0, 5), min_size=0, max_size=5).map(tuple)
arrays = st.tuples(dtypes, shapes).map(lambda ds: np.zeros(ds[1], dtype=ds[0]))
npz_members = st.dictionaries(st.sampled_from(["x", "y", "feature_names", "class_names", "other"]), arrays, max_size=4)


@FUZZ
@given(members=npz_members, cut=st.one_of(st.none(), st.integers(0, 2000)), flip=st.integers(0, 2000))
def test_npz(members, cut, flip):
    blob = bytearray(_npz(members))
    if flip < len(blob) and cut is None:
        blob[flip] ^= 0xFF
    if cut is not None:
        blob = blob[:cut]
    data = _accepts(lambda: studio.load_dataset(bytes(blob), name="f.npz"))
    if data is not None:
        assert len(data) >= 1


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
card_fields = st.dictionaries(
    st.sampled_from(list(ModelCard.__dataclass_fields__) + ["other"]), json_values, max_size=5
)


@FUZZ
@given(raw=card_fields)
def test_card_objects(raw):
    card = _accepts(lambda: load_card(json.dumps(raw)))
    if card is not None:
        assert isinstance(card, ModelCard)
        json.loads(card.canonical_json())  # a valid card always serialises (it goes into cache keys)


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_card_text(text):
    if isinstance(text, str) and not text.lstrip().startswith(("{", "[")):
        text = text.encode()  # a plain string would be read as a path
    _accepts(lambda: load_card(text))


names = st.one_of(
    st.sampled_from(["a/1.png", "b/2.png", "../x.png", "/abs.png", "C:/d.png", "a/../../e.png", "a\\b.png", "x.png",
                     "__MACOSX/a/._1.png", "a/.hidden.png", "a/", "c/3.jpg"]),
    st.text(min_size=1, max_size=12),
)
contents = st.one_of(st.sampled_from(["png", "png_rgb", "png_big"]), st.binary(max_size=64))


def _png(kind):
    from PIL import Image

    size = (8, 8) if kind != "png_big" else (12, 9)
    img = Image.new("RGB" if kind == "png_rgb" else "L", size)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@FUZZ
@given(members=st.lists(st.tuples(names, contents), max_size=5), cut=st.one_of(st.none(), st.integers(0, 600)))
def test_zip(members, cut):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members:
            try:
                zf.writestr(name, _png(content) if isinstance(content, str) else content)
            except (ValueError, IndexError):
                pass  # names zipfile itself will not write (e.g. a lone NUL)
    blob = buf.getvalue() if cut is None else buf.getvalue()[:cut]
    data = _accepts(lambda: studio.load_dataset(blob, name="f.zip"))
    if data is not None:
        assert data.kind == "image" and data.x.ndim == 4 and len(data.names) == len(data)
        assert all(".." not in n.split("/") and not n.startswith("/") for n in data.names)
