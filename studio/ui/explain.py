"""Streamlit helpers to choose, cost, run and show explainers.

Widgets are generated from each explainer's declared ``Param`` list; runs go
through ``studio.explain(cache=True)`` with a progress bar, and results are
kept in ``st.session_state["results"]`` so reruns and page switches never
recompute (and a new session reads the studio's disk cache).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import streamlit as st

import studio
from studio.cost import estimate, human, model_timing
from studio.errors import StudioError
from studio.explainers import registry
from studio.ui import state

DEFAULT_BUDGET_S = 60.0
# Chosen by default when available: quick methods that show different families side by side.
DEFAULTS = {
    ("tabular", "local"): ["shap", "lime", "anchors", "integrated_gradients"],
    ("image", "local"): ["integrated_gradients", "grad_cam", "occlusion", "saliency"],
}


# ---- choosing methods ---------------------------------------------------------------------------
def method_picker(model, data, scope: str, key: str, default: list | None = None, extra: tuple = ()) -> list:
    """A multiselect of the available methods of ``scope``; unavailable ones shown disabled with why.

    ``extra`` names methods of another scope offered here too (the Global
    page offers ``shap``, run on a sample of rows for mean |SHAP|).

    Returns
    -------
    list of MethodInfo
        The chosen, available methods.
    """
    infos = [m for m in studio.methods(model, data) if m.scope == scope or m.name in extra]
    available = [m for m in infos if m.available]
    names = [m.name for m in available]
    preferred = default or DEFAULTS.get((data.kind, scope)) or names
    default = [n for n in preferred if n in names][:3] or names[:3]
    chosen = state.kept(st.multiselect, "Methods", key, options=names, default=default,
                            help="Methods this model and data support; the others are listed below with the reason.")
    missing = [m for m in infos if not m.available]
    if missing:
        with st.expander(f"Unavailable here ({len(missing)})"):
            for m in missing:
                st.checkbox(m.name, value=False, disabled=True, key=f"{key}-na-{m.name}", help=m.reason)
                st.caption(m.reason)
    by_name = {m.name: m for m in available}
    return [by_name[n] for n in chosen]


def param_widgets(info, data, key: str, overrides: dict | None = None) -> dict:
    """Widgets generated from a method's declared parameters.

    number_input with the declared low/high for numbers, selectbox for
    choices, checkbox for booleans, multiselect of features for a
    ``features`` list, text input otherwise. ``overrides`` fixes values
    without a widget (e.g. the Global page's chosen feature).

    Returns
    -------
    dict
        Parameter values (validated later by ``studio.explain``).
    """
    overrides = overrides or {}
    values = {}
    for p in info.params:
        k = f"{key}-{info.name}-{p.name}"
        if p.name in overrides:
            values[p.name] = overrides[p.name]
        elif p.type == "bool":
            values[p.name] = state.kept(st.checkbox, p.name, k, value=bool(p.default), help=p.help)
        elif p.choices:
            choices = list(p.choices)
            values[p.name] = state.kept(st.selectbox, p.name, k, options=choices,
                                        index=choices.index(p.default) if p.default in choices else 0, help=p.help)
        elif p.type in ("int", "float"):
            cast = int if p.type == "int" else float
            kw = {}
            if p.low is not None:
                kw["min_value"] = cast(p.low)
            if p.high is not None:
                kw["max_value"] = cast(p.high)
            default = cast(p.default) if p.default is not None else cast(p.low or 0)
            values[p.name] = state.kept(st.number_input, p.name, k, value=default,
                                        step=1 if p.type == "int" else None, help=p.help, **kw)
        elif p.type == "list" and p.name == "features" and data.feature_names:
            values[p.name] = state.kept(st.multiselect, p.name, k, options=list(data.feature_names),
                                        default=list(p.default or []), help=p.help)
        elif p.type == "list":
            text = state.kept(st.text_input, p.name, k, value=", ".join(p.default or []), help=p.help)
            values[p.name] = [v.strip() for v in text.split(",") if v.strip()]
        else:
            values[p.name] = state.kept(st.text_input, p.name, k, value=str(p.default or ""), help=p.help)
    return values


# ---- cost ---------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=64)
def _timing(key: str, _model, _data):
    return model_timing(_model, _data)


def timing(model, data):
    """The model's fixed cost per call and marginal cost per row (:func:`studio.cost.model_timing`), measured once
    per model and data in this server (shared by sessions: a new session's first page does not wait for it)."""
    return _timing(model.cache_id + data.fingerprint, model, data)


def budget_input(key: str) -> float:
    """The time budget (seconds) per method, which the user can change."""
    return float(state.kept(st.number_input, "Time budget per method (s)", key, min_value=1.0, max_value=86400.0,
                            value=DEFAULT_BUDGET_S, step=10.0,
                                 help="Methods estimated above this are refused; sampling methods are cut to fit."))


@dataclass
class Plan:
    """One method, ready to run."""

    info: object
    params: dict
    seconds: float = 0.0
    evaluations: int = 0
    fits: bool = True
    note: str = ""
    error: str = ""


def plan_runs(model, data, chosen, params_by_method: dict, n_rows: int, budget: float) -> list:
    """Validate parameters and estimate each chosen method's cost (shrinking samples to fit)."""
    cost = timing(model, data)
    plans = []
    for info in chosen:
        explainer = registry.get(info.name, data.kind)
        try:
            valid = explainer.params.validate(params_by_method.get(info.name), info.name)
        except StudioError as exc:
            plans.append(Plan(info, params_by_method.get(info.name) or {}, fits=False, error=str(exc)))
            continue
        est = estimate(explainer, model, data, valid, n_rows, cost.per_row, budget, fit=True, per_call=cost.per_call)
        plans.append(Plan(info, est.params, est.seconds, est.evaluations, est.fits, est.note))
    return plans


def show_plans(plans) -> None:
    """One line per method: estimated evaluations and time, and what was cut or refused."""
    for p in plans:
        if p.error:
            st.error(f"{p.info.name}: {p.error}")
        elif not p.fits:
            st.warning(f"{p.info.name}: refused, {p.note}")
        else:
            extra = f" ({p.note})" if p.note else ""
            st.caption(f"{p.info.name}: ~{p.evaluations:,} model evaluations, about {human(p.seconds)}{extra}")


# ---- running ------------------------------------------------------------------------------------
@dataclass
class Result:
    """What one run gave: an Explanation or the error shown in its panel."""

    method: str
    explanation: object = None
    error: str = ""
    seconds: float = 0.0
    params: dict = field(default_factory=dict)


def result_key(model, data, method: str, rows, params: dict, target=None) -> str:
    return json.dumps([method, model.cache_id, data.fingerprint, list(rows or []), params, target],
                      sort_keys=True, default=str)


def results_store() -> dict:
    return st.session_state.setdefault("results", {})


def stored(model, data, plans, rows, target=None) -> list:
    """Results already computed in this session for these plans (missing ones skipped)."""
    store = results_store()
    out = []
    for p in plans:
        key = result_key(model, data, p.info.name, rows, p.params, target)
        if key in store:
            out.append(store[key])
    return out


def run_plans(model, data, plans, rows, target=None) -> list:
    """Run each plan that fits, with a status box and a progress bar; failures become error results."""
    store = results_store()
    out = []
    todo = [p for p in plans if p.fits and not p.error]
    if not todo:
        return out
    with st.status(f"Running {len(todo)} explainer(s)", expanded=True) as status:
        for p in todo:
            key = result_key(model, data, p.info.name, rows, p.params, target)
            if key in store:
                out.append(store[key])
                continue
            bar = st.progress(0.0, text=f"{p.info.name}: starting")

            def progress(fraction, message, bar=bar, name=p.info.name):
                bar.progress(min(max(fraction, 0.0), 1.0), text=f"{name}: {message}")

            start = time.perf_counter()
            try:
                exp = studio.explain(model, data, p.info.name, rows=rows if rows else None, target=target,
                                     params=p.params, cache=True, progress=progress)
                res = Result(p.info.name, exp, seconds=time.perf_counter() - start, params=p.params)
                bar.progress(1.0, text=f"{p.info.name}: done ({exp.cache})")
            except StudioError as exc:
                res = Result(p.info.name, error=str(exc), seconds=time.perf_counter() - start, params=p.params)
                bar.progress(1.0, text=f"{p.info.name}: failed")
            except Exception as exc:  # a broken method must not take the page down
                res = Result(p.info.name, error=f"{p.info.name} failed: {type(exc).__name__}: {str(exc)[:300]}",
                             seconds=time.perf_counter() - start, params=p.params)
                bar.progress(1.0, text=f"{p.info.name}: failed")
            store[key] = res
            out.append(res)
        failed = sum(1 for r in out if r.error)
        status.update(label=f"Ran {len(out)} explainer(s)" + (f", {failed} failed" if failed else ""),
                      state="error" if failed == len(out) else "complete", expanded=False)
    return out


# ---- panels -------------------------------------------------------------------------------------
def panel_header(res: Result) -> None:
    """Method name, compute time, cache hit or miss."""
    exp = res.explanation
    st.markdown(f"**{res.method}**")
    if exp is not None:
        st.caption(f"computed in {exp.compute_seconds:.2f} s · cache {exp.cache}")


def checks_table(exp, compact: bool = False) -> None:
    """The explanation's checks as a small table (``compact``: one ``name: value`` line each in a caption, lighter
    for the browser to draw than a data grid and narrow enough for a panel, when many panels share a page)."""
    if exp.checks and compact:
        from studio.ui.views import md_escape

        st.caption("  \n".join(f"{md_escape(k)}: **{_fmt(v)}**" for k, v in exp.checks.items()))
    elif exp.checks:
        import pandas as pd

        st.dataframe(pd.DataFrame({"check": list(exp.checks), "value": [_fmt(v) for v in exp.checks.values()]}),
                     hide_index=True, width="stretch")


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def pin_button(title: str, page: str, key: str, explanation=None, chart=None, png: bytes | None = None,
               text: str = "") -> None:
    """A button that pins this panel to the report (kept in ``st.session_state['pins']``)."""
    pins = st.session_state.setdefault("pins", [])
    pinned = any(p["key"] == key for p in pins)
    if st.button("Pinned" if pinned else "Pin to report", key=f"pin-{key}", disabled=pinned):
        spec = chart.to_dict() if chart is not None else None
        pins.append({"key": key, "title": title, "page": page, "explanation": explanation, "spec": spec,
                     "png": png, "text": text, "comment": ""})
        st.rerun()
