"""A short form for the model card fields a file cannot tell.

Task, classes, the architecture of a state dict (with its arguments), image
input size, normalisation and what the network returns: enough to load a
state dict or an image model from the browser without a card file. The
fields are those of :class:`studio.models.card.ModelCard` (``docs/card.md``).
"""

from __future__ import annotations

import json

import streamlit as st

from studio.errors import StudioError
from studio.models.architectures import architecture_names
from studio.models.card import OUTPUTS

NO_ARCHITECTURE = "(none: the file holds the network)"
INFER = "(infer)"


def card_fields() -> dict:
    """Widgets for the card; returns the raw answers (blank means: infer it)."""
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task", [INFER, "classification", "regression"], key="card-task")
    classes = c2.text_input("Class names, comma-separated", key="card-classes", placeholder="e.g. cat, dog")
    a1, a2 = st.columns(2)
    architecture = a1.selectbox(
        "Architecture (state dicts)", [NO_ARCHITECTURE, *architecture_names()], key="card-architecture",
        help="A weights-only file (torch.save(model.state_dict()) or safetensors) is built on this network.",
    )
    arch_args = a2.text_input(
        "Architecture arguments, key=value, comma-separated", key="card-architecture-args",
        placeholder="e.g. in_channels=1, width=16",
    )
    c3, c4, c5 = st.columns(3)
    size = c3.text_input("Image input size C,H,W", key="card-size", placeholder="e.g. 3,224,224")
    mean = c4.text_input("Normalisation mean", key="card-mean", placeholder="e.g. 0.485,0.456,0.406")
    std = c5.text_input("Normalisation std", key="card-std", placeholder="e.g. 0.229,0.224,0.225")
    outputs = st.radio(
        "The network returns", [INFER, *OUTPUTS], key="card-outputs", horizontal=True,
        help="Logits pass through softmax; probabilities are used as they are. "
        "(infer): outputs that are already probabilities on every probe row are used as they are.",
    )
    return {
        "task": task, "classes": classes, "architecture": architecture, "architecture_args": arch_args,
        "size": size, "mean": mean, "std": std, "outputs": outputs,
    }


def _numbers(text: str, what: str, cast=float) -> list | None:
    if not text.strip():
        return None
    try:
        return [cast(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise StudioError(f"{what} must be numbers separated by commas, got {text!r}") from None


def _arguments(text: str) -> dict:
    """``"in_channels=1, width=16"`` -> ``{"in_channels": 1, "width": 16}`` (numbers, true/false or text)."""
    out = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier() or not value:
            raise StudioError(f"architecture arguments are key=value pairs separated by commas, got {part!r}")
        if value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
            continue
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def card_bytes(fields: dict) -> bytes | None:
    """The card as JSON bytes from the form, or None when the form is blank (its defaults only)."""
    card = {}
    if fields.get("task") and fields["task"] != INFER:
        card["task"] = fields["task"]
    classes = [c.strip() for c in fields.get("classes", "").split(",") if c.strip()]
    if classes:
        card["class_names"] = classes
    architecture = fields.get("architecture")
    if architecture and architecture != NO_ARCHITECTURE:
        card["architecture"] = architecture
    args = _arguments(fields.get("architecture_args", ""))
    if args:
        if "architecture" not in card:
            raise StudioError("architecture arguments were given without an architecture; choose the architecture too")
        card["architecture_args"] = args
    size = _numbers(fields.get("size", ""), "input size", int)
    if size is not None:
        if len(size) != 3:
            raise StudioError(f"input size must be three numbers C,H,W, got {fields['size']!r}")
        card["input_size"] = size
    for name in ("mean", "std"):
        values = _numbers(fields.get(name, ""), f"normalisation {name}")
        if values is not None:
            card[name] = values
    if fields.get("outputs") and fields["outputs"] != INFER:
        card["outputs"] = fields["outputs"]
    return json.dumps(card).encode() if card else None
