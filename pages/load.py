"""Load: the bundled samples, or the user's own model, card and dataset."""

import streamlit as st

from studio.errors import StudioError
from studio.ui import card_form, state, views

state.through_router(__file__)

st.title("Load")
model, data = state.current()
st.success(f"Loaded {st.session_state['source']}")
st.caption(state.sandbox_sentence(model))
for note in getattr(model, "notes", None) or []:  # what the load probe read from the model (issue 13)
    st.info(views.md_escape(note))

sample = st.selectbox("Sample", list(state.SAMPLES), index=None, placeholder="Switch to another bundled sample")
if sample is not None and st.session_state.get("source") != f"sample: {sample}":
    try:
        pair = state.load_pair(*state.sample_files(sample))
        state.set_pair(*pair, f"sample: {sample}")
        st.rerun()
    except StudioError as exc:
        st.error(str(exc))

st.subheader("Your own model and data")
with st.form("upload"):
    model_file = st.file_uploader(
        "Model file",
        type=["skops", "pt", "pth", "pt2", "onnx", "safetensors", "pkl", "joblib", "json", "ubj", "txt", "lgb", "cbm", "zip"],
        help="An ONNX model with its weights in a separate file: upload a .zip holding both, "
        "or the .onnx here and the weights below.",
    )
    card_file = st.file_uploader("Model card (optional)", type=["json"])
    data_file = st.file_uploader("Dataset file", type=["csv", "tsv", "parquet", "zip", "npz"])
    weights_file = st.file_uploader(
        "Model data file (optional)",
        help="ONNX external data: the file torch.onnx.export writes beside model.onnx (model.onnx.data), "
        "under the name the model gives it.",
    )
    label = st.text_input("Label column (tables; blank: target, label, y or class, else the column the model does not use)")
    with st.expander("No card? Describe what the file cannot say"):
        form_card = card_form.card_fields()
    submitted = st.form_submit_button("Load")

if submitted:
    if model_file is None or data_file is None:
        st.error("Choose both a model file and a dataset file, then press Load.")
    else:
        try:
            card_bytes = card_file.getvalue() if card_file else card_form.card_bytes(form_card)
            pair = state.load_pair(
                model_file.getvalue(), model_file.name, card_bytes,
                data_file.getvalue(), data_file.name, label or None,
                model_files={weights_file.name: weights_file.getvalue()} if weights_file else None,
            )
        except StudioError as exc:
            st.error(views.sentences(str(exc), "The previous model and data are still loaded."))
        else:
            state.set_pair(*pair, f"upload: {model_file.name} + {data_file.name}")
            st.rerun()

for message in getattr(model.card, "warnings", None) or []:
    st.warning(message)
