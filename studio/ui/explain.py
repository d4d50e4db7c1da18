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
from studio.cost import calibrated, describe, estimate, human, is_calibrated
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


# ---- the explained class ------------------------------------------------------------------------
SHARED_TARGET = "explain-target"
"""Session key of the class both explanation pages explain (a class name, or ``predicted class``)."""
PREDICTED = "predicted class"


def default_global_class(model, data) -> int:
    """The class global methods explain unless the user picks one: ``studio.explain``'s default
    (:func:`studio.api.default_class`: the positive class of a binary model, class 0 otherwise, when the data holds
    it, else the data's most frequent class)."""
    from studio.api import requested_target

    return requested_target(model, data, None, "global") or 0


def target_picker(model, data, scope: str, key: str) -> int | None:
    """One control for the explained class, shared by the Local and Global pages, and a caption saying what the
    page explains.

    The choice is kept in ``st.session_state[SHARED_TARGET]``: picking a class on one page makes the other page
    explain it too. Local pages offer ``predicted class`` (each row's own); global methods explain one class, so
    there it falls back to :func:`default_global_class` (and says so).

    Returns
    -------
    int or None
        The class index; None for each row's predicted class (local) or a regression model.
    """
    from studio.ui.views import md_escape

    if not model.is_classifier:
        label = getattr(data, "label", None)
        outputs = [str(n) for n in model.output_names]
        if len(outputs) > 1:  # a multi-output regressor: every panel explains the chosen output
            choice = st.selectbox("Explained output", outputs, key=key,
                                  help="This regression model predicts several outputs; methods explain one.")
            st.caption(f'Regression: every panel explains the predicted **"{md_escape(choice)}"**, in its own units.')
            return outputs.index(choice)
        st.caption(f"Regression: every panel explains the predicted {md_escape(label or 'value')}, in the target's "
                   "own units.")
        return None
    names = [str(n) for n in model.class_names or []]
    options = ([PREDICTED] if scope == "local" else []) + names
    shared = st.session_state.get(SHARED_TARGET)
    fallback = options[0] if scope == "local" else names[default_global_class(model, data)]
    if shared in options:
        st.session_state[key] = shared
    elif st.session_state.get(key) not in options:
        st.session_state[key] = fallback
    if scope != "local" and shared == PREDICTED:
        st.session_state[key] = fallback

    def share():
        st.session_state[SHARED_TARGET] = st.session_state[key]

    choice = st.selectbox("Explained class", options, key=key, on_change=share,
                          help="Shared by the Local and Global explanations pages.")
    if scope == "local":
        if choice == PREDICTED:
            st.caption("Every panel explains the probability of **each row's predicted class**. Pick a class to "
                       "explain that class here and on the Global explanations page.")
            return None
        st.caption(f'Every panel explains the probability of **"{md_escape(choice)}"**; the Global explanations '
                   "page explains the same class.")
        return names.index(choice)
    why = (" (shared with the Local explanations page)" if shared == choice else
           " (Local explains each row's predicted class unless you pick a class; global methods need one class)")
    st.caption(f'Every chart explains the probability of **"{md_escape(choice)}"**{md_escape(why)}; EBM terms '
               "are in its logit (log-odds).")
    return names.index(choice)


# ---- cost ---------------------------------------------------------------------------------------
def budget_input(key: str) -> float:
    """The time budget (seconds) per method, which the user can change."""
    return float(state.kept(st.number_input, "Time budget per method (s)", key, min_value=1.0, max_value=86400.0,
                            value=DEFAULT_BUDGET_S, step=10.0,
                            help="A method estimated above this asks first; a run past it is stopped."))


@dataclass
class Plan:
    """One method, ready to run.

    ``fits`` is False for a method estimated over the budget until the user confirms it (:func:`show_plans`);
    ``limit`` is the run's time limit in seconds: the budget, or the raised one the user confirmed.
    """

    info: object
    params: dict
    seconds: float = 0.0
    evaluations: int = 0
    fits: bool = True
    note: str = ""
    error: str = ""
    limit: float | None = None
    budget: float | None = None
    adaptive: bool = False
    setup: float = 0.0
    reduced: object = None
    cut_note: str = ""
    pending: bool = False


def _device(model) -> str:
    if getattr(model, "differentiable", False):
        from studio.device import resolve_device

        return resolve_device("auto")
    return "cpu"


MEASURING = "measuring this method's cost on this machine (once per model)…"
_FAILED = "cost-calibration-failed"
"""Session key: {calibration's key: why it failed}, so a failing calibration is not tried on every rerun."""


def _calibration_id(model, info, valid, device) -> str:
    return json.dumps([model.fingerprint, info.name, valid, device], sort_keys=True, default=str)


def plan_runs(model, data, chosen, params_by_method: dict, n_rows: int, budget: float, target=None,
              measure: bool = True) -> list:
    """Validate parameters and estimate each chosen method's cost (:func:`studio.cost.estimate`, calibrated on
    this machine at the first estimate of a model and method, then remembered). A method over the budget is
    kept with ``fits=False`` and, in ``reduced``, the sample sizes that would fit; :func:`show_plans` asks.

    ``measure=False`` never calibrates here: a method not yet calibrated comes back ``pending`` (shown as
    "measuring…", runnable within the budget), for :func:`measure_pending` to calibrate after the page is drawn.
    """
    plans = []
    device = _device(model)
    failed = st.session_state.setdefault(_FAILED, {})
    for info in chosen:
        explainer = registry.get(info.name, data.kind)
        try:
            valid = explainer.params.validate(params_by_method.get(info.name), info.name)
        except StudioError as exc:
            plans.append(Plan(info, params_by_method.get(info.name) or {}, fits=False, error=str(exc)))
            continue
        why = failed.get(_calibration_id(model, info, valid, device))
        if why is None and not measure and not is_calibrated(explainer, model, data, valid, device):
            plans.append(Plan(info, valid, note=MEASURING, limit=budget, budget=budget, pending=True))
            continue
        try:
            if why is not None:
                raise StudioError(why)
            with st.spinner(f"Timing {info.name} on this machine (once per model)"):
                calibrated(explainer, model, data, valid, device)
            est = estimate(explainer, model, data, valid, n_rows, budget, target=target, device=device)
            reduced, cut_note = None, ""
            if not est.fits:
                cut = estimate(explainer, model, data, valid, n_rows, budget, fit=True, target=target, device=device)
                reduced = cut if cut.fits else None
                cut_note = "" if cut.fits else cut.note  # why cutting cannot fit (the floors that held)
        except Exception as exc:  # noqa: BLE001 -- a method whose small calibration run fails: run it, unestimated
            why = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {str(exc)[:200]}"
            failed[_calibration_id(model, info, valid, device)] = why
            plans.append(Plan(info, valid, note=f"cost not estimated: its calibration run failed ({why})",
                              limit=budget, budget=budget))
            continue
        plans.append(Plan(info, est.params, est.seconds, est.evaluations, est.fits, est.note, limit=budget,
                          budget=budget, reduced=reduced, cut_note=cut_note, adaptive=est.adaptive, setup=est.setup))
    return plans


def measure_pending(model, data, plans) -> None:
    """Calibrate the first method :func:`plan_runs` left ``pending``, AFTER the page is drawn (call it last): the
    page shows "measuring…" meanwhile; then rerun, so its estimate fills in and the next pending method is
    measured on that run (one method per run: a click waits for one calibration at most, not all of them). A
    calibration that fails is remembered for the session (the plan then says why), so it is not retried on every
    rerun."""
    pending = [p for p in plans if p.pending]
    if not pending:
        return
    p = pending[0]
    device = _device(model)
    try:
        calibrated(registry.get(p.info.name, data.kind), model, data, p.params, device)
    except Exception as exc:  # noqa: BLE001 -- shown on the rerun as "cost not estimated"
        st.session_state.setdefault(_FAILED, {})[_calibration_id(model, p.info, p.params, device)] = (
            str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {str(exc)[:200]}")
    st.rerun()


SKIP, CUT, ANYWAY = "skip it", "cut its sample sizes to fit", "run it anyway"


def show_plans(plans, key: str = "plan") -> None:
    """One line per method: estimated evaluations and time. A method estimated over the budget asks first: skip
    it, cut its sample sizes to fit, or run it anyway with the time limit raised to twice its estimate."""
    for p in plans:
        if p.error:
            st.error(f"{p.info.name}: {p.error}")
            continue
        about = describe(p.seconds, p.setup)
        if p.fits and (p.pending or p.note.startswith("cost not estimated")):
            st.caption(f"{p.info.name}: {p.note}")
            continue
        if p.fits:
            st.caption(f"{p.info.name}: ~{p.evaluations:,} model evaluations, {describe(p.seconds, p.setup, p.adaptive)}"
                       + (f" ({p.note})" if p.note else ""))
            continue
        raised = max(2 * p.seconds, p.budget or 0)
        st.warning(f"{p.info.name} is estimated at {about}, over the time budget of {human(p.budget)}."
                   + (f" Cutting its sample sizes cannot fit it: {p.cut_note}." if p.cut_note else ""))
        options = [SKIP] + ([CUT] if p.reduced is not None else []) + [ANYWAY]
        labels = {SKIP: SKIP, CUT: f"{CUT} ({p.reduced.note.split(': ', 1)[-1] if p.reduced else ''}, about "
                                   f"{human(p.reduced.seconds) if p.reduced else ''})",
                  ANYWAY: f"{ANYWAY} (time limit raised to {human(raised)})"}
        choice = st.radio(f"{p.info.name} over the budget:", options, key=f"{key}-confirm-{p.info.name}",
                          horizontal=True, format_func=labels.get)
        if choice == CUT and p.reduced is not None:
            p.params, p.seconds, p.evaluations, p.fits = p.reduced.params, p.reduced.seconds, p.reduced.evaluations, True
            p.note = p.reduced.note
        elif choice == ANYWAY:
            p.fits, p.limit = True, raised


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
    return run_batches(model, data, [(plans, rows, target)])


def run_batches(model, data, batches) -> list:
    """Several groups of plans, each ``(plans, rows, target)``, in ONE status box (one box per press of Run
    explainers, however many row sets it explains); each method has a progress bar labelled once with its name.

    Returns
    -------
    list of Result
        Every group's results, in order.
    """
    store = results_store()
    out = []
    jobs = [(p, rows, target) for plans, rows, target in batches for p in plans if p.fits and not p.error]
    if not jobs:
        return out
    with st.status(f"Running {len(jobs)} explainer run(s)", expanded=True) as status:
        for p, rows, target in jobs:
            key = result_key(model, data, p.info.name, rows, p.params, target)
            if key in store:
                out.append(store[key])
                continue
            bar = st.progress(0.0, text=f"{p.info.name}: starting")

            def progress(fraction, message, bar=bar, name=p.info.name):
                text = message if message.startswith(f"{name}:") else f"{name}: {message}"  # named once
                bar.progress(min(max(fraction, 0.0), 1.0), text=text)

            start = time.perf_counter()
            try:
                exp = studio.explain(model, data, p.info.name, rows=rows if rows else None, target=target,
                                     params=p.params, cache=True, progress=progress, timeout=p.limit)
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
        status.update(label=f"Ran {len(out)} explainer run(s)" + (f", {failed} failed" if failed else ""),
                      state="error" if failed == len(out) else "complete", expanded=False)
    return out


# ---- panels -------------------------------------------------------------------------------------
def panel_header(res: Result) -> None:
    """Method name, compute time, cache hit or miss."""
    exp = res.explanation
    st.markdown(f"**{res.method}**")
    if exp is not None:
        st.caption(f"computed in {exp.compute_seconds:.2f} s · cache {exp.cache}")


ICONS = {"fail": ":material/cancel:", "warn": ":material/warning:", "pass": ":material/check_circle:",
         "info": ":material/info:"}
MARKS = {"fail": "✖ fail", "warn": "▲ warn", "pass": "✔ pass", "info": "· info"}


def check_banner(exp) -> None:
    """Failing and warning checks as an error / warning box, each one sentence: drawn BEFORE the chart they
    qualify, so nobody reads a chart without its caveat (:mod:`studio.checks`)."""
    from studio.checks import verdicts
    from studio.ui.views import md_escape

    for v in verdicts(exp.checks):
        if v.status == "fail":
            st.error(md_escape(v.sentence), icon=ICONS["fail"])
        elif v.status == "warn":
            st.warning(md_escape(v.sentence), icon=ICONS["warn"])


def checks_table(exp, compact: bool = False) -> None:
    """Every check with its verdict, threshold and meaning, behind an expander whose label gives the summary
    (``3 checks pass``, ``1 check fails: ...``); the numbers are there on demand. ``compact``: lines of text
    instead of a data grid (lighter to draw, narrow enough for a panel)."""
    from studio.checks import summary, verdicts, worst
    from studio.ui.views import md_escape

    if not exp.checks:
        return
    vs = verdicts(exp.checks)
    head = summary(exp.checks) or f"{len(vs)} fact{'s' if len(vs) > 1 else ''} about this run"
    label = "Checks: " + head.split(":")[0]
    with st.expander(label, icon=ICONS[worst(exp.checks)]):
        if compact:
            st.markdown("  \n".join(
                f"{MARKS[v.status]} · **{md_escape(v.label)}** {md_escape(v.shown)}"
                + (f" ({md_escape(v.threshold)})" if v.threshold else "") for v in vs))
            st.caption("  \n".join(f"**{md_escape(v.label)}**: {md_escape(v.meaning)}" for v in vs))
        else:
            import pandas as pd

            st.dataframe(pd.DataFrame({"verdict": [MARKS[v.status] for v in vs], "check": [v.label for v in vs],
                                       "value": [v.shown for v in vs], "threshold": [v.threshold for v in vs],
                                       "meaning": [v.meaning for v in vs]}),
                         hide_index=True, width="stretch")


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
