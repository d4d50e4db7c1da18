"""A short form for the model card fields a file cannot tell (task, classes, input size, normalisation)."""

from __future__ import annotations

import json

import streamlit as st

from studio.errors import StudioError


def card_fields() -> dict:
    """Widgets for the card; returns the raw answers (blank means: infer it)."""
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task", ["(infer)", "classification", "regression"], key="card-task")
    classes = c2.text_input("Class names, comma-separated", key="card-classes", placeholder="e.g. cat, dog")
    c3, c4, c5 = st.columns(3)
    size = c3.text_input("Image input size C,H,W", key="card-size", placeholder="e.g. 3,224,224")
    mean = c4.text_input("Normalisation mean", key="card-mean", placeholder="e.g. 0.485,0.456,0.406")
    std = c5.text_input("Normalisation std", key="card-std", placeholder="e.g. 0.229,0.224,0.225")
    return {"task": task, "classes": classes, "size": size, "mean": mean, "std": std}


def _numbers(text: str, what: str, cast=float) -> list | None:
    if not text.strip():
        return None
    try:
        return [cast(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise StudioError(f"{what} must be numbers separated by commas, got {text!r}") from None


def card_bytes(fields: dict) -> bytes | None:
    """The card as JSON bytes from the form, or None when the form is blank."""
    card = {}
    if fields.get("task") and fields["task"] != "(infer)":
        card["task"] = fields["task"]
    classes = [c.strip() for c in fields.get("classes", "").split(",") if c.strip()]
    if classes:
        card["class_names"] = classes
    size = _numbers(fields.get("size", ""), "input size", int)
    if size is not None:
        if len(size) != 3:
            raise StudioError(f"input size must be three numbers C,H,W, got {fields['size']!r}")
        card["input_size"] = size
    for name in ("mean", "std"):
        values = _numbers(fields.get(name, ""), f"normalisation {name}")
        if values is not None:
            card[name] = values
    return json.dumps(card).encode() if card else None
