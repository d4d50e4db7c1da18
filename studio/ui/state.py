"""Session state for the app: the loaded model and data, and what was run.

A failed upload never replaces the previous valid model or data.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from studio.errors import StudioError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {
    "Breast cancer: gradient-boosted trees (skops)": ("models/tabular_gbt.skops", "sample_data/breast_cancer.csv"),
    "Breast cancer: torch MLP (TorchScript)": ("models/tabular_mlp.pt", "sample_data/breast_cancer.csv"),
    "Breast cancer: MLP (ONNX)": ("models/tabular_mlp.onnx", "sample_data/breast_cancer.csv"),
    "Digits: small CNN (TorchScript)": ("models/image_cnn.pt", "sample_data/digits.zip"),
}
DEFAULT_SAMPLE = next(iter(SAMPLES))


def pickle_allowed() -> bool:
    """Pickle uploads are loaded only when the server sets STUDIO_ALLOW_PICKLE=1."""
    return os.environ.get("STUDIO_ALLOW_PICKLE") == "1"


MODEL_TTL_S = int(os.environ.get("STUDIO_MODEL_TTL_S", "1800"))
"""Seconds a loaded model stays shared after it was loaded (its worker holds 0.1-1 GB); sessions holding it keep it."""


@st.cache_resource(show_spinner="Loading model...", max_entries=8, ttl=MODEL_TTL_S)
def _load_model_cached(key: str, _data: bytes, name: str, _card_bytes: bytes | None, trust: bool, _files: dict | None = None):
    """A model shared by the sessions that load the same bytes; its sandbox worker ends when every holder drops it.

    ``key`` digests the model, card and extra file bytes (Streamlit does not hash the ``_`` arguments). The
    server's shared copy is dropped :data:`MODEL_TTL_S` seconds after loading, so the workers of closed sessions
    do not stay up for the server's life; an open session keeps its own reference and goes on.
    """
    import studio

    _serve_spares()
    return studio.load_model(_data, card=_card_bytes, trust_pickle=trust, name=name, extra_files=_files or None)


@st.cache_resource
def _serve_spares() -> bool:
    """Once per server: keep a started worker ready, so a load does not wait for a fresh interpreter."""
    from studio.sandbox import keep_spare

    keep_spare(True)
    return True


def sandbox_sentence(model) -> str:
    """Where ``model`` runs, in one sentence for the Load page."""
    from studio.sandbox import sentence

    return sentence(getattr(model, "sandbox", "off"))


@st.cache_resource(show_spinner="Loading dataset...")
def _load_data_cached(key: str, _data: bytes, name: str, label: str | None, feature_names: tuple | None):
    """A dataset shared by the sessions that load the same bytes (``key`` digests them).

    A table of millions of rows opens as a DuckDB-backed table
    (:mod:`studio.data.large`): its connection, summaries and sample live
    in this cached object, so every session and rerun on that file reuses them.
    """
    import studio

    data = studio.load_dataset(_data, name=name, label=label, feature_names=list(feature_names) if feature_names else None,
                               large_tables=True)
    if getattr(data, "large", None) is not None:  # the Data page's statistics, counted once while loading
        data.large.summary()
        data.large.distributions()
        first = data.feature_names[0]  # the column the Data page shows first
        data.large.histogram(first, 40)
        if data.large.numeric(first):
            data.large.quartiles(first)
    return data


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def load_pair(model_bytes, model_name, card_bytes, data_bytes, data_name, label=None, model_files=None):
    """Load and validate a model and a dataset together.

    ``model_files`` maps file names to bytes: an ONNX model's external data
    (``model.onnx.data``). Returns (model, data) aligned, or raises
    StudioError; nothing in the session changes here.
    """
    files_key = "".join(name + _digest(content) for name, content in sorted((model_files or {}).items()))
    model = _load_model_cached(
        _digest(model_bytes) + _digest(card_bytes or b"") + files_key, model_bytes, model_name, card_bytes,
        pickle_allowed(), model_files,
    )
    names = tuple(model.feature_names) if model.feature_names else None
    data = _load_data_cached(_digest(data_bytes) + str(label) + str(names), data_bytes, data_name, label, names)
    data = data.aligned_to(model)
    check_pair(model, data)
    return model, data


def check_pair(model, data) -> None:
    """Model and data must agree on classes too; raise StudioError otherwise."""
    try:
        out = model.output(data.x[:2])
    except StudioError:
        raise
    except Exception as exc:
        raise StudioError(f"the model could not run on this dataset: {type(exc).__name__}: {str(exc)[:200]}") from None
    if model.is_classifier and data.class_names and data.kind == "image":
        if len(data.class_names) > out.shape[1]:
            raise StudioError(
                f"the dataset has {len(data.class_names)} classes but the model outputs {out.shape[1]}; check the card's class_names"
            )


def sample_files(sample: str):
    model_path, data_path = SAMPLES[sample]
    model_path, data_path = ROOT / model_path, ROOT / data_path
    card = model_path.with_suffix(".card.json")
    return (
        model_path.read_bytes(), model_path.name, card.read_bytes() if card.is_file() else None,
        data_path.read_bytes(), data_path.name,
    )


ROUTED = "_studio_routed"  # set by app.py on every run of the router
OPEN_PAGE = "_studio_open_page"  # a page asked for by URL before the router ran


def through_router(page_file: str) -> None:
    """Hand a page opened by its URL on a fresh server over to the router.

    Until a script has called ``st.navigation`` in the server process,
    Streamlit treats ``pages/`` as an old-style page folder and runs a page
    named in the URL (``/local``) alone, without app.py's layout, navigation
    and sidebar. Each page calls this first: outside the router it notes the
    page and switches to app.py, which opens the page through the router.
    """
    if st.session_state.get(ROUTED):
        return
    st.session_state[OPEN_PAGE] = Path(page_file).stem
    st.switch_page("app.py")


def open_requested_page(pages) -> None:
    """In app.py after ``st.navigation``: open the page :func:`through_router` noted, if any."""
    st.session_state[ROUTED] = True
    wanted = st.session_state.pop(OPEN_PAGE, None)
    page = next((p for p in pages if p.url_path == wanted), None)
    if page is not None:
        st.switch_page(page)


def ensure_loaded() -> None:
    """Load the default sample into the session when nothing is loaded yet."""
    if "model" in st.session_state and "data" in st.session_state:
        return
    st.session_state.pop("data", None)  # data loaded alone by current_data(): reload it aligned to the model
    model_bytes, model_name, card, data_bytes, data_name = sample_files(DEFAULT_SAMPLE)
    model, data = load_pair(model_bytes, model_name, card, data_bytes, data_name)
    set_pair(model, data, f"sample: {DEFAULT_SAMPLE}")


def set_pair(model, data, source: str) -> None:
    old = st.session_state.get("model"), st.session_state.get("data")
    if old[0] is not None and old[1] is not None and (old[0].cache_id, old[1].fingerprint) != (
            model.cache_id, data.fingerprint):
        # subsets are conditions on the previous model's predictions and data: they do not carry over
        st.session_state.pop("subsets", None)
        st.session_state.pop("subset_draft", None)
    st.session_state["model"] = model
    st.session_state["data"] = data
    st.session_state["source"] = source
    if getattr(data, "large", None) is not None:  # a table of millions of rows: the sample's predictions made
        predictions(model, data)                   # while loading, so the Model page opens at once
    st.session_state.setdefault("row", 0)
    if st.session_state["row"] >= len(data):
        st.session_state["row"] = 0


def current():
    """(model, data) of this session, loading the sample if needed."""
    ensure_loaded()
    return st.session_state["model"], st.session_state["data"]


def current_data():
    """The session's dataset, without waiting for the model when nothing is loaded yet.

    The Data page needs only the data; on a fresh session this loads the
    default sample's dataset alone (milliseconds) and leaves the model (and
    its library imports, seconds on a cold server) to the first page that
    needs it. :func:`current` later replaces it with the same data aligned
    to the model.
    """
    if "data" in st.session_state:
        return st.session_state["data"]
    _, _, _, data_bytes, data_name = sample_files(DEFAULT_SAMPLE)
    data = _load_data_cached(_digest(data_bytes) + "None" + "None", data_bytes, data_name, None, None)
    st.session_state["data"] = data
    st.session_state.setdefault("row", 0)
    return data


def sidebar() -> None:
    """The shared sidebar: what is loaded (drawn after the page, so it shows what the page loaded)."""
    model = st.session_state.get("model")
    data = st.session_state.get("data")
    with st.sidebar:
        st.caption("Loaded")
        if model is not None:
            st.text(f"Model: {model.name}\n  {model.format}, {model.task}")
        else:
            st.text(f"Model: {Path(SAMPLES[DEFAULT_SAMPLE][0]).name}\n  loads when a page needs it")
        if data is not None:
            large = getattr(data, "large", None)
            rows = f"{len(data)} rows" if large is None else f"{large.n_rows} rows (sample {len(data)})"
            st.text(f"Data: {data.name}\n  {rows}, {data.kind}")


def _memo(slot: str, key: str, compute):
    """Keep one computed value per slot in the session (recomputed only when ``key`` changes)."""
    memo = st.session_state.setdefault("_memo", {})
    if slot not in memo or memo[slot][0] != key:
        memo[slot] = (key, compute())
    return memo[slot][1]


def profile(data):
    """The data overview of ``data`` (computed once per dataset)."""
    from studio.data.profile import profile as compute

    return _memo("profile", data.fingerprint, lambda: compute(data))


def predictions(model, data, slot: str = "predictions"):
    """(frame, output) of :func:`studio.evaluation.predictions_frame`, once per model and dataset (per ``slot``)."""
    from studio.evaluation import predictions_frame

    return _memo(slot, model.cache_id + data.fingerprint, lambda: predictions_frame(model, data))


VALUE_ARGS = ("value", "default", "index")


def kept(widget, label, key: str, **kwargs):
    """Call a Streamlit widget whose value survives page switches.

    Streamlit forgets a widget's state when its page is not shown; the value
    is copied to ``st.session_state['_kept']`` after each run and restored
    before the widget is drawn again (without its default, so Streamlit does
    not warn about two sources of the value).
    """
    store = st.session_state.setdefault("_kept", {})
    if key not in st.session_state and key in store:
        st.session_state[key] = store[key]
    if key in st.session_state and "options" in kwargs:  # options change with the model and data
        options = list(kwargs["options"])
        current = st.session_state[key]
        if isinstance(current, list):
            st.session_state[key] = [v for v in current if v in options]
        elif current not in options:
            del st.session_state[key]
    if key in st.session_state:
        for arg in VALUE_ARGS:
            kwargs.pop(arg, None)
    value = widget(label, key=key, **kwargs)
    store[key] = value
    return value
