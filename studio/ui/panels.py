"""Result panels: side by side, each with its time, cache state, checks and a pin; a failing panel shows its error."""

from __future__ import annotations

import numpy as np
import altair as alt
import streamlit as st

from studio import charts
from studio.agreement import agreement_table
from studio.ui import views
from studio.charts import captions
from studio.ui.explain import check_banner, checks_table, panel_header, pin_button

PER_ROW = 3
TOP_K = 12
"""Features per bar chart on first paint (the rest behind a toggle): fewer marks for the browser to draw."""


def image_upload(model, data, row: int):
    """A single PNG/JPEG to explain instead of a dataset row.

    Returns
    -------
    Dataset or None
        The uploaded image as a one-row dataset fitted to ``model``; None
        when nothing is uploaded or the upload is refused (the error is
        shown and row ``row`` stays the instance).
    """
    import hashlib

    from studio.errors import StudioError
    from studio.ui import state
    from studio.ui.instance import UPLOAD_SUFFIXES, image_instance

    up = st.file_uploader("Single image to explain (optional)", type=list(UPLOAD_SUFFIXES), key="local-image",
                          help="Resized and converted to the model's input size and channels; "
                               "remove it to explain dataset rows again.")
    if up is None:
        return None
    blob = up.getvalue()
    key = model.cache_id + hashlib.sha256(blob).hexdigest() + up.name
    try:
        return state._memo("upload-image", key, lambda: image_instance(blob, up.name, model, data))
    except StudioError as exc:
        st.error(views.sentences(str(exc), f"Row {row} of the dataset is explained instead."))
        return None


def instance_summary(model, data, row: int, frame, title: str | None = None) -> None:
    """Label, prediction and confidence of the chosen row (and the image itself); ``title`` names it otherwise."""
    rec = frame.iloc[row]
    parts = [f"row **{row}**" if title is None else f"**{views.md_escape(title)}**"]
    if "label" in frame:
        parts.append(f"label **{views.md_escape(rec['label'])}**")
    pred = rec["prediction"]
    if isinstance(pred, (float, np.floating)):  # a regression's output: four significant figures, not fifteen
        pred = f"{float(pred):.4g}"
    parts.append(f"prediction **{views.md_escape(pred)}**")
    if "confidence" in frame:
        parts.append(f"confidence {rec['confidence']:.3f}")
    if "correct" in frame:
        parts.append("correct" if rec["correct"] else "**wrong**")
    if data.kind == "image":
        c1, c2 = st.columns([1, 6])
        c1.image(views.to_display(data.x[row]), width=96)
        c2.markdown(" · ".join(parts))
    else:
        st.markdown(" · ".join(parts))


def _grid(items, per_row=PER_ROW):
    for start in range(0, len(items), per_row):
        cols = st.columns(per_row)
        for col, item in zip(cols, items[start : start + per_row]):
            yield col, item


def image_norms(explanations, row: int, shared: bool) -> dict:
    """One :class:`studio.overlays.Normalisation` per method: the same rule (99th percentile of |value|) for
    each map, or one scale shared by all maps (``shared``; fair only when the methods share units)."""
    from studio.overlays import normalisation

    maps = {e.method: np.asarray(e.values)[e.rows.index(row) if row in e.rows else 0]
            for e in explanations if e.kind == "attribution" and e.values is not None and np.asarray(e.values).ndim == 4}
    if not maps:
        return {}
    if shared:
        one = normalisation(list(maps.values()), mode="percentile")
        return {m: one for m in maps}
    return {m: normalisation(v, mode="percentile") for m, v in maps.items()}


def feature_limit(data, key: str = "local-all-features") -> int | None:
    """Features per bar chart: :data:`TOP_K` by default, with a note and a toggle to show every feature."""
    from studio.ui import state

    n = len(data.feature_names or [])
    if data.kind != "tabular" or n <= TOP_K:
        return None
    show_all = state.kept(st.toggle, f"Show all {n} features", key, value=False)
    if show_all:
        return None
    st.caption(f"top {TOP_K} of {n} by |value| (averaged over the methods, one order for every chart)")
    return TOP_K


def render_local(results, model, data, row: int, page: str = "Local explanations", shared_scale: bool = False,
                 label: str | None = None) -> list:
    """Panels for local results on ``row``: aligned bars (tables) or overlays with one normalisation (images).

    ``label`` names the instance in pin titles (default ``row N``).

    Returns
    -------
    list of Explanation
        The results that succeeded.
    """
    ok = [r.explanation for r in results if r.explanation is not None]
    order = None
    if data.kind == "tabular":
        order = charts.shared_feature_order(ok, row, top_k=feature_limit(data)) if ok else None
    label = label or f"row {row}"
    norms = image_norms(ok, row, shared_scale) if data.kind == "image" else {}
    for col, res in _grid(results):
        with col, st.container(border=True):
            panel_header(res)
            if res.error:
                st.error(res.error)
                continue
            exp = res.explanation
            key = f"{page}-{exp.provenance.get('cache_key', res.method)}-{row}"
            check_banner(exp)  # failing checks before the chart they qualify
            st.caption(views.md_escape(captions.explained_caption(exp, row, target_name(data))))
            try:
                chart, png, text = _local_body(exp, data, row, order, norms.get(exp.method))
            except Exception as exc:  # a drawing problem stays in its panel
                st.error(f"{res.method}: could not draw this result ({type(exc).__name__}: {exc})")
                continue
            checks_table(exp, compact=True)
            pin_button(f"{res.method} on {label}", page, key, explanation=exp, chart=chart, png=png, text=text)
    return ok


def target_name(data) -> str | None:
    """The data's label column (the regression target's name), or None."""
    return getattr(data, "label", None)


def _local_body(exp, data, row, order, norm=None):
    """Draw one local result; returns (chart, png, text) for pinning."""
    if data.kind == "image" and exp.kind in ("attribution", "rule"):
        return _image_body(exp, data, row, norm)
    if exp.kind == "rule":
        card = charts.rule_card(exp, row)
        st.code(card["text"], language=None, wrap_lines=True)
        chart = charts.rule_chart(card)
        # an explicit height: Streamlit collapses a short chart whose height is left to its content
        # and Vega-Lite's "fit" inside it (the charts' own fit-x would draw past those 170 px over what follows)
        st.altair_chart(charts.rule_chart(card, width=None).properties(
            title="precision and coverage", height=70, autosize=alt.AutoSizeParams(type="fit", contains="padding")),
                        width="stretch", height=170)
        return chart, None, f"{card['text']} (precision {card['precision']:.3f}, coverage {card['coverage']:.3f})"
    if exp.kind != "attribution":
        st.info(f"{exp.method} gives {exp.kind} results; see the Global explanations page.")
        return None, None, ""
    if np.asarray(exp.values).ndim == 2:
        chart = charts.attribution_bars([exp], row, order=order, width=None, title=False,
                                        unit=captions.axis_unit(exp, target_name(data)))
        st.altair_chart(chart, width="stretch")
        values = captions.row_values(exp, row, features=order, data=data)
        if values:
            st.caption(views.md_escape(f"row {row}: {values}"))
        return chart, None, ""
    return _image_body(exp, data, row, norm)


def _image_body(exp, data, row, norm):
    """An image result as an overlay (studio.overlays); rules outline their superpixels."""
    from studio.overlays import explanation_overlay

    index = exp.rows.index(row) if row in exp.rows else 0
    if exp.kind == "rule":
        rule = exp.rules[index]
        over = explanation_overlay(exp, data.x[row], index, scale=4)
        png = views.png_bytes(over.image)
        st.image(png, width="stretch", caption=over.caption)
        st.caption(f"precision {rule.precision:.3f} · coverage {rule.coverage:.3f}")
        regions = len(rule.extra.get("superpixels", []))
        anchor = f"{regions} superpixel(s)" if regions else "for every image (no region needed)"
        return None, png, f"anchor: {anchor}, precision {rule.precision:.3f}"
    if (np.asarray(exp.values[index]) < 0).any():
        over = explanation_overlay(exp, data.x[row], index, norm, scale=4)
    else:  # non-negative maps (Grad-CAM, |saliency|) on the same diverging scale: red only
        from studio.overlays import diverging

        over = diverging(data.x[row], exp.values[index], norm, scale=4)
        # the map has no negative values, so the diverging scale shows no blue: say what the red means
        from dataclasses import replace

        over = replace(over, caption=over.caption.replace(
            "red: pushes the output up, blue: pushes it down",
            "red: where the map is high (it has no negative values, so no blue)"))
    png = views.png_bytes(over.image)
    st.image(png, width="stretch", caption=over.caption)
    return None, png, over.caption


def render_agreement(explanations, row: int, k: int = 5) -> None:
    """Pairwise rank correlation and top-k overlap of the methods' rankings on this row."""
    attributions = [e for e in explanations if e.kind == "attribution"]
    if len(attributions) < 2:
        st.caption("Run two or more attribution methods to see how far they agree.")
        return
    table = agreement_table(attributions, row, k=k)
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={
            "spearman": st.column_config.NumberColumn("Spearman ρ", format="%.2f",
                                                      help="Rank correlation of |attribution| over all features/regions"),
            "top_k_overlap": st.column_config.ProgressColumn("top-k overlap", min_value=0.0, max_value=1.0, format="%.2f"),
        },
    )
    st.caption(("Images are ranked over 4x4-pixel blocks. " if np.asarray(attributions[0].values).ndim > 2 else "")
               + "Low agreement means the methods tell different stories: "
               "trust the ones whose checks pass, and look at what they share.")
