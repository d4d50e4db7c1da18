"""Self-contained HTML report of explanations (no network needed to open).

Each chart is embedded twice: its Vega-Lite spec (JSON, drawn live by the
Vega libraries inlined in the page) and a static SVG rendering made offline
with ``vl-convert`` (shown until, or instead of, the live chart). Images are
PNG data URIs. Every piece of user text (feature, class and file names,
comments, sign-off) is HTML-escaped; specs are JSON with ``<`` escaped.
Names of any length cost linear time: they are drawn short (the first 60
characters and an ellipsis, :func:`studio.charts.base.short_label`) with
the whole name in the cell's ``title`` attribute and the chart tooltips.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import time
from importlib import metadata

import numpy as np

from studio.explanation import Explanation

PACKAGES = ("numpy", "pandas", "scikit-learn", "torch", "captum", "shap", "lime", "interpret", "anchor-exp",
            "onnxruntime", "skops", "altair", "streamlit", "vl-convert-python")


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _name(value) -> str:
    """A user name (feature, class, file) for display: short, the whole name in a ``title`` attribute."""
    from studio.charts.base import short_label

    text = str(value)
    short = short_label(text)
    if short == text:
        return _esc(text)
    return f"<span title='{_esc(text)}'>{_esc(short)}</span>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def package_versions() -> dict:
    """Installed versions of the libraries the studio computes with (``absent`` when missing)."""
    import platform

    from studio.api import STUDIO_VERSION

    out = {"studio": STUDIO_VERSION, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


# ---- charts -----------------------------------------------------------------------------------
def spec_json(spec: dict) -> str:
    """JSON safe to place inside a ``<script>`` element (``<``, ``>``, ``&`` escaped as \\u sequences)."""
    text = json.dumps(spec, allow_nan=False, default=_json_default)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def static_svg(spec: dict) -> str | None:
    """An SVG rendering of a Vega-Lite spec made offline with vl-convert, or None if it is not installed."""
    try:
        import vl_convert as vlc
    except ImportError:
        return None
    try:
        return vlc.vegalite_to_svg(spec)
    except Exception:
        return None


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str | None:
    """Vega, Vega-Lite and vega-embed as one inline script (about 0.9 MB), or None without vl-convert."""
    try:
        import vl_convert as vlc

        js = vlc.javascript_bundle()
    except Exception:
        return None
    return js.replace("</script", "<\\/script")


def chart_html(spec: dict, index: int) -> str:
    """A figure holding the live chart's container, its spec, and the static SVG."""
    svg = static_svg(spec)
    static = (f"<img class='static' alt='chart (static rendering)' src='data:image/svg+xml;base64,"
              f"{base64.b64encode(svg.encode()).decode()}'>" if svg else
              "<p class='meta'>Static rendering unavailable (install vl-convert-python); the live chart needs the inlined Vega.</p>")
    return (f"<figure class='chart'><div class='live' id='vl-{index}'></div>{static}"
            f"<script type='application/json' class='vl-spec' data-target='vl-{index}'>{spec_json(spec)}</script></figure>")


def image_html(png: bytes, alt: str = "image") -> str:
    return f"<img class='overlay' alt='{_esc(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def default_figure(exp: Explanation, data=None):
    """The chart spec or PNG that draws ``exp`` (as the app would), for explanations given without a pin.

    Returns
    -------
    (spec or None, png bytes or None, text)
    """
    from studio import charts

    if exp.kind == "importance" or (exp.kind == "attribution" and exp.values is not None
                                    and np.asarray(exp.values).ndim == 2 and exp.rows and len(exp.rows) > 20):
        return charts.importance_bars(exp).to_dict(), None, ""
    if exp.kind == "attribution" and exp.values is not None and np.asarray(exp.values).ndim == 2:
        return charts.attribution_bars([exp], exp.rows[0] if exp.rows else None).to_dict(), None, ""
    if exp.kind == "attribution" and exp.values is not None:
        from studio.charts.images import overlay_png

        row = exp.rows[0] if exp.rows else 0
        if data is not None and data.kind == "image" and row < len(data):
            return None, overlay_png(data.x[row], charts.normalised_map(exp, row)), ""
        return charts.image_attribution_chart(exp, row).to_dict(), None, ""
    if exp.kind == "curve":
        from studio.charts.curves import curve_features

        feats = curve_features([exp])
        if feats:
            return charts.curve_chart([exp], feats[0]).to_dict(), None, ""
        pairs = curve_features([exp], two_way=True)
        if pairs:
            return charts.heatmap_chart(exp, pairs[0]).to_dict(), None, ""
        return None, None, ""
    if exp.kind == "rule" and exp.rules:
        cards = [charts.rule_card(exp, r.row) for r in exp.rules]
        return None, None, "; ".join(f"row {c['row']}: {c['text']} (precision {c['precision']:.3f}, "
                                     f"coverage {c['coverage']:.3f})" for c in cards)
    return None, None, ""


# ---- tables -----------------------------------------------------------------------------------
MARKS = {"fail": "&#10006; fail", "warn": "&#9650; warn", "pass": "&#10004; pass", "info": "info"}


def _checks_table(exp: Explanation) -> str:
    """Every check with its verdict, value, threshold and meaning (:mod:`studio.checks`)."""
    from studio.checks import verdicts

    if not exp.checks:
        return "<p class='meta'>No checks.</p>"
    rows = "".join(f"<tr class='{v.status}'><td>{MARKS[v.status]}</td><th>{_esc(v.label)}</th><td>{_esc(v.shown)}</td>"
                   f"<td>{_esc(v.threshold)}</td><td class='meta'>{_esc(v.meaning)}</td></tr>" for v in verdicts(exp.checks))
    return ("<table class='checks'><tr><th>verdict</th><th>check</th><th>value</th><th>threshold</th><th>meaning</th>"
            f"</tr>{rows}</table>")


def _check_banner(exp: Explanation) -> str:
    """Failing and warning checks, one sentence each, placed BEFORE the figure they qualify."""
    from studio.checks import verdicts

    bad = [v for v in verdicts(exp.checks) if v.status in ("fail", "warn")]
    return "".join(f"<p class='verdict {v.status}'>{MARKS[v.status]}: {_esc(v.sentence)}</p>" for v in bad)


def _payload_table(exp: Explanation, limit: int = 30) -> str:
    """The numbers behind the chart (top ``limit`` features), so the report reads without any chart."""
    if exp.kind == "importance":
        items = sorted(exp.importances, key=lambda i: -i.mean)[:limit]
        rows = "".join(f"<tr><td>{_name(i.feature)}</td><td>{i.mean:.4g}</td><td>{i.std:.4g}</td></tr>" for i in items)
        return f"<table><tr><th>feature</th><th>mean</th><th>std</th></tr>{rows}</table>"
    if exp.kind == "rule":
        from studio.charts.rules import NO_CONDITION

        rows = "".join(
            f"<tr><td>{r.row}</td><td>{' AND '.join(_name(p) for p in r.predicates) or _esc(NO_CONDITION)}</td>"
            f"<td>{r.precision:.3f}</td>"
            f"<td>{r.coverage:.3f}</td></tr>" for r in exp.rules
        )
        return f"<table><tr><th>row</th><th>rule</th><th>precision</th><th>coverage</th></tr>{rows}</table>"
    if exp.kind == "curve":
        return "<ul>" + "".join(f"<li>{_esc(c.kind)}: {' x '.join(_name(f) for f in c.features)}"
                                f" ({len(np.asarray(c.grid[0]))} grid points)</li>" for c in exp.curves) + "</ul>"
    if exp.feature_names is not None and exp.values is not None and np.asarray(exp.values).ndim == 2:
        parts = []
        for r, row in enumerate(exp.rows[:5]):
            order = np.abs(exp.values[r]).argsort()[::-1][:limit]
            cells = "".join(f"<tr><td>{_name(exp.feature_names[i])}</td><td>{exp.values[r][i]:.4g}</td></tr>" for i in order)
            parts.append(f"<details><summary>row {row}: top {len(order)} attributions</summary>"
                         f"<table><tr><th>feature</th><th>attribution</th></tr>{cells}</table></details>")
        return "".join(parts)
    return ""


def params_text(params: dict) -> str:
    """Parameters as a reader writes them: ``n_steps 32 · baseline black · features mean radius, worst area``."""
    def one(v):
        if isinstance(v, (list, tuple)):
            return ", ".join(map(one, v)) or "(none)"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.3g}"
        if v is None or v == "":
            return "(automatic)"
        return str(v)

    return " · ".join(f"{k.replace('_', ' ')} {one(v)}" for k, v in (params or {}).items()) or "defaults"


def shown_params(exp: Explanation) -> dict:
    """``exp.params`` as a reader needs them: a parameter whose 0 means "the library's default" shows the value
    used, e.g. LIME's ``kernel_width`` 0 reads "LIME's default (0.75 x sqrt(30 features) = 4.11)" (lime's
    ``LimeTabularExplainer``: ``kernel_width = 0.75 * sqrt(n_features)`` when none is given)."""
    params = dict(exp.params or {})
    if exp.method == "lime" and "kernel_width" in params and not params["kernel_width"]:
        n = len(exp.feature_names or [])
        params["kernel_width"] = (f"LIME's default (0.75 x sqrt({n} features) = {0.75 * np.sqrt(n):.3g})" if n else
                                  "LIME's default (0.75 x sqrt(number of features))")
    return params


def _params_html(params: dict) -> str:
    if not params:
        return "defaults"
    return "<ul class='params'>" + "".join(
        f"<li>{_esc(k.replace('_', ' '))}: <strong>{_esc(params_text({'': v}).strip())}</strong></li>"
        for k, v in params.items()) + "</ul>"


def _meta(exp: Explanation) -> str:
    versions = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in exp.provenance.get("versions", {}).items())
    return (f"<p class='meta'>method <code>{_esc(exp.method)}</code> &middot; rows {_esc(exp.rows or 'all')} &middot; "
            f"target {_esc(_target_text(exp))} &middot; {exp.compute_seconds:.2f} s ({_esc(exp.cache)})</p>"
            f"<details class='meta'><summary>parameters: {_esc(params_text(shown_params(exp)))}</summary>"
            f"{_params_html(shown_params(exp))}</details>"
            f"<p class='meta'>model {_esc(exp.model_id[:16])} &middot; data {_esc(exp.dataset_id[:16])} &middot; "
            f"{_seed_text(exp)} &middot; device {_esc(exp.provenance.get('device', ''))}"
            f" &middot; versions: {versions}</p>"
            + "".join(f"<p class='meta'>data: {_esc(note)}</p>" for note in exp.provenance.get("data_notes", [])))


def _seed_text(exp: Explanation) -> str:
    """``seed 0`` for a random method; methods without a seed parameter are deterministic: ``not random``."""
    seed = exp.provenance.get("seed")
    return "not random (no seed)" if seed is None else f"seed {_esc(seed)}"


def _target_text(exp: Explanation) -> str:
    """The explained class(es) with their names, e.g. ``1 (benign)``."""
    from studio.charts.base import short_label

    if exp.target is None:
        return "prediction"
    names = exp.output_names or []
    out = []
    for t in dict.fromkeys(exp.target):
        name = names[int(t)] if t is not None and 0 <= int(t) < len(names) else None
        out.append(f"{t} ({short_label(name)})" if name is not None else str(t))
    return ", ".join(out)


def _explains(exp: Explanation, model) -> str:
    """What ``exp`` explains, for the summary: the class names (``class 'class_2'``), or ``the prediction (target
    units)`` for regression, so lines explaining different classes are not read as one story."""
    if not getattr(model, "is_classifier", False):
        return "the prediction (target units)"
    if exp.target is None:
        return "every class"
    names = exp.output_names or getattr(model, "class_names", None) or []
    labels = []
    for t in dict.fromkeys(exp.target):
        ok = t is not None and 0 <= int(t) < len(names)
        labels.append(repr(str(names[int(t)])) if ok else str(t))
    return ("class " if len(labels) == 1 else "classes ") + ", ".join(labels)


def _rows_text(rows) -> str:
    if not rows:
        return "all (global)"
    return ", ".join(map(str, rows[:8])) + (f" ... ({len(rows)} rows)" if len(rows) > 8 else "")


def _ranking(exp: Explanation, data=None):
    """(where, feature names, scores) of what ``exp`` says matters most, or None: importances and mean |value|
    over many rows are global; one row's |attribution| is local to that row; EBM terms need ``data``."""
    from studio.charts.attribution import importance_frame

    if exp.kind == "importance" or (exp.kind == "attribution" and exp.values is not None
                                    and np.asarray(exp.values).ndim == 2 and len(exp.rows or []) > 1):
        frame = importance_frame(exp)
        return "overall", list(frame["feature"]), frame["mean"].to_numpy(dtype=float)
    if exp.kind == "attribution" and exp.values is not None and np.asarray(exp.values).ndim == 2 and exp.feature_names:
        return f"row {exp.rows[0] if exp.rows else 0}", list(exp.feature_names), np.abs(np.asarray(exp.values[0], float))
    if exp.kind == "curve" and exp.method in ("ebm", "ebm_surrogate") and data is not None and data.kind == "tabular":
        from studio.charts.importance import ebm_term_importance

        try:
            imp = ebm_term_importance(exp, data.x)
        except Exception:
            return None
        return "overall", [i.feature for i in imp.importances], np.array([i.mean for i in imp.importances])
    return None


def summary_html(model, data, explanations, signoff) -> str:
    """The first screen: model, data, what drives predictions, where methods disagree, failed checks, sign-off."""
    from studio.agreement import spearman, top_k_overlap
    from studio.checks import verdicts

    drives, ranked, unranked = [], [], []
    for e in explanations:
        r = _ranking(e, data)
        if r is None:
            r = _image_ranking(e)
            if r is None:
                unranked.append(e)
            else:
                ranked.append((e.method,) + r)
            continue
        where, names, sc = r
        top = [names[i] for i in np.argsort(-sc, kind="stable")[:3]]
        drives.append(f"<li><strong>{_esc(e.method)}</strong> ({_esc(where)}; explains {_esc(_explains(e, model))}): "
                      f"{_esc(', '.join(top))}</li>")
        ranked.append((e.method, where, names, sc))
    if not drives:
        drives = ["<li>No tabular attributions or importances in this report (see the image sections).</li>"]
    pairs, why_not = [], []
    for i in range(len(ranked)):
        for j in range(i + 1, len(ranked)):
            (ma, wa, na, sa), (mb, wb, nb, sb) = ranked[i], ranked[j]
            common = [n for n in na if n in nb]
            if wa != wb:
                why_not.append(f"{ma} ({wa}) and {mb} ({wb}) explain different rows or scopes")
                continue
            if len(common) < 3:
                why_not.append(f"{ma} and {mb} share fewer than 3 features or regions")
                continue
            a = np.array([sa[na.index(n)] for n in common])
            b = np.array([sb[nb.index(n)] for n in common])
            image = str(common[0]).startswith("block ")  # regions of an image map (_image_ranking)
            k = max(3, round(len(common) / 10)) if image else 3
            rho, overlap = spearman(a, b), top_k_overlap(a, b, k)
            agree = rho >= 0.5 and overlap >= 2 / 3
            unit = "4x4-pixel blocks of |map|" if image else "features"
            pairs.append((agree, f"<li class='{'pass' if agree else 'warn'}'>{'agree' if agree else 'disagree'}: "
                                 f"<strong>{_esc(ma)}</strong> vs <strong>{_esc(mb)}</strong> ({_esc(wa)}): rank "
                                 f"correlation {rho:.2f}, {round(overlap * k)} of their top {k} {unit} in common</li>"))
    rule = ("<p class='meta'>Agree: rank correlation of |scores| at least 0.5 and two thirds of the top k in common "
            "(studio.agreement; images on 4x4-pixel blocks, k = 10% of the blocks).</p>")
    if pairs:
        disagree_html = ("<ul>" + "".join(t for ok, t in pairs if not ok) + "".join(t for ok, t in pairs if ok)
                         + "</ul>" + rule)
    else:
        reason = "; ".join(why_not) if why_not else "fewer than two methods rank features or image regions"
        disagree_html = f"<p>Nothing compared: {_esc(reason)}.</p>"
    bad = []
    for e in explanations:
        for v in verdicts(e.checks):
            if v.status in ("fail", "warn"):
                bad.append(f"<li class='{v.status}'>{MARKS[v.status]} <strong>{_esc(e.method)}</strong>: "
                           f"{_esc(v.sentence)}</li>")
    judged = [e.method for e in explanations if any(v.status != "info" for v in verdicts(e.checks))]
    unchecked = list(dict.fromkeys(e.method for e in explanations if e.method not in judged))
    if bad:
        checks_html = "<ul>" + "".join(bad) + "</ul>"
    elif judged:
        checks_html = f"<p>&#10004; Every check passes ({_esc(', '.join(dict.fromkeys(judged)))}).</p>"
    else:
        checks_html = ""
    if unchecked:
        checks_html += (f"<p class='warn'>{_esc(_and(unchecked))} {'has' if len(unchecked) == 1 else 'have'} no "
                        f"checks: {'its result is' if len(unchecked) == 1 else 'their results are'} not verified.</p>")
    if not checks_html:
        checks_html = "<p>No explanations in this report.</p>"
    if signoff:
        verdict = signoff.get("verdict") or "(none)"
        verdict = "no verdict given" if verdict == "(none)" else verdict
        sign = (f"<p>Signed by <strong>{_esc(signoff.get('name') or '(no name)')}</strong> on "
                f"{_esc(signoff.get('date', ''))}: <strong>{_esc(verdict)}</strong></p>"
                + (f"<blockquote>{_esc(signoff['note'])}</blockquote>" if signoff.get("note") else ""))
    else:
        sign = "<p class='warn'>Not signed.</p>"
    classes = ", ".join(map(str, model.class_names or [])) if getattr(model, "class_names", None) else "regression"
    return (f"<section class='summary'><h2>Summary</h2>"
            f"<p><strong>Model</strong> {_esc(model.name)} ({_esc(model.format)}, {_esc(model.task)}; "
            f"outputs: {_esc(classes)}) &middot; <strong>Data</strong> {_esc(data.name)} ({len(data):,} rows, "
            f"{_esc(data.kind)})</p>"
            f"<h3>What drives the predictions</h3><ul>{''.join(drives)}</ul>"
            f"<h3>Where the methods disagree</h3>{disagree_html}"
            f"<h3>Checks that fail or warn</h3>{checks_html}"
            f"<h3>Sign-off</h3>{sign}</section>")


def _and(names: list) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _image_ranking(exp: Explanation):
    """(where, region names, scores) of an image map on its first row: |attribution| summed over channels and
    4x4-pixel blocks (:func:`studio.agreement.scores`), or None for anything else."""
    from studio.agreement import scores

    if exp.kind != "attribution" or exp.values is None or np.asarray(exp.values).ndim < 3:
        return None
    row = exp.rows[0] if exp.rows else None
    try:
        sc = scores(exp, row)
    except (ValueError, IndexError):  # a map of an unexpected shape: not compared, never a lost report
        return None
    return f"row {row if row is not None else 0}", [f"block {i}" for i in range(len(sc))], sc


class _Counter:
    def __init__(self):
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


def _image_row(exp: Explanation, png: bytes, data, title: str) -> str:
    """Original image, overlay and the colour scale side by side (the overlay alone when the original is not in
    the data)."""
    from studio.charts.images import colour_bar_png, png_bytes, to_display

    row = exp.rows[0] if exp.rows else 0
    parts = []
    if data is not None and data.kind == "image" and row < len(data):
        parts.append(f"<figure>{image_html(png_bytes(to_display(data.x[row]), 4), f'row {row}')}"
                     f"<figcaption>original (row {row})</figcaption></figure>")
    parts.append(f"<figure>{image_html(png, title)}<figcaption>overlay</figcaption></figure>")
    if exp.kind == "attribution" and exp.values is not None:
        v = np.asarray(exp.values[exp.rows.index(row) if row in (exp.rows or []) else 0], dtype=float)
        v = v.sum(axis=0) if v.ndim == 3 else v
        scale = float(np.percentile(np.abs(v), 99)) if v.size else 0.0
        negative = bool((v < 0).any())
        bar = colour_bar_png()
        parts.append(
            "<figure class='scale'><img class='bar' alt='colour scale' "
            f"src='data:image/png;base64,{base64.b64encode(bar).decode()}'>"
            f"<figcaption><span>-{scale:.2g}</span><span>0</span><span>+{scale:.2g}</span><br>"
            + ("blue lowers, red raises the explained output" if negative else
               "the map has no negative values: only the red half is used")
            + "; clipped at the 99th percentile of |value|</figcaption></figure>")
    return "<div class='images'>" + "".join(parts) + "</div>"


def _section(title, exp, spec, png, text, comment, extra, counter, data=None) -> str:
    from studio.charts.captions import explained_caption, row_values

    body = [f"<section><h2>{_esc(title)}</h2>"]
    if exp is not None:
        body.append(_meta(exp))
        body.append(_check_banner(exp))
        row = exp.rows[0] if exp.rows and len(exp.rows) == 1 else None
        body.append(f"<p class='caption'>{_esc(explained_caption(exp, row, getattr(data, 'label', None)))}</p>")
        values = row_values(exp, row, data=data) if row is not None and exp.kind == "attribution" else ""
        if values:
            body.append(f"<p class='meta'>row {row}: {_esc(values)}</p>")
    if spec is not None:
        body.append(chart_html(spec, counter.next()))
    if png is not None:
        body.append(_image_row(exp, png, data, title) if exp is not None else image_html(png, title))
    if text:
        body.append(f"<p class='rule'>{_esc(text)}</p>")
    body.append(extra or "")
    if exp is not None:
        body.append(_payload_table(exp))
        body.append(f"<h3>Checks</h3>{_checks_table(exp)}")
    if comment:
        body.append(f"<blockquote><strong>Reviewer:</strong> {_esc(comment)}</blockquote>")
    body.append("</section>")
    return "".join(body)


def assessment_html(assessment) -> str:
    """The report's "Quality of explanations" section for one :func:`studio.assess` result (tables, verdicts)."""
    from studio.checks import verdicts

    prov = assessment.provenance
    methods = list(prov.get("methods", {}))

    def value(attribute, metric, method, other=""):
        got = [r["value"] for r in assessment.records if r["attribute"] == attribute and r["metric"] == metric
               and r["method"] == method and r["other"] == other and not r["attack"]]
        if not got:
            return "-"
        return f"{got[0] / 2**20:.3g}" if metric.endswith("_bytes") else _fmt(got[0])

    cols = [("s / row", "cost", "seconds_per_row", ""), ("Python peak MiB", "cost", "python_peak_bytes", ""),
            ("RSS peak rise MiB", "cost", "rss_hwm_delta_bytes", ""),
            ("deletion area", "faithfulness", "deletion_auc", ""), ("random order", "faithfulness", "deletion_auc", "random"),
            ("insertion area", "faithfulness", "insertion_auc", ""),
            ("random order", "faithfulness", "insertion_auc", "random"),
            ("infidelity", "faithfulness", "infidelity", ""), ("max-sensitivity", "faithfulness", "sensitivity_max", "")]
    head = "".join(f"<th>{_esc(c[0])}</th>" for c in cols)
    body = "".join(f"<tr><td>{_name(m)}</td>" + "".join(f"<td>{value(a, k, m, o)}</td>" for _, a, k, o in cols)
                   + "</tr>" for m in methods)
    checks = "".join(f"<p class='verdict {v.status}'>{_name(m)}: {_esc(v.sentence)}</p>"
                     for m in methods for v in verdicts(assessment.checks(m)) if v.status != "info")
    perf = [r for r in assessment.records if r["attribute"] == "performance" and r["metric"] != "prediction_kept"]
    kept = {(r["attack"], r["severity"]): r["value"] for r in assessment.records if r["metric"] == "prediction_kept"}
    robust = "".join(f"<tr><td>{_esc(r['attack'] or 'clean')}</td><td>{_esc(r['severity'] or 0)}</td>"
                     f"<td>{_esc(r['metric'])} {_fmt(r['value'])}</td>"
                     f"<td>{_fmt(kept.get((r['attack'], r['severity']), 1.0))}</td></tr>" for r in perf)
    res = {}
    for r in assessment.records:
        if r["attribute"] == "resilience" and r["metric"] == "rank_correlation":
            res.setdefault(r["method"], {})[f"{r['attack']} s{r['severity']}"] = (r["value"], r["n_rows"])
    scen = list(dict.fromkeys(k for v in res.values() for k in v))
    res_rows = "".join(f"<tr><td>{_name(m)}</td>" + "".join(
        f"<td>{_fmt(res[m][k][0]) if res[m].get(k, (0, 0))[1] else '-'}</td>" for k in scen) + "</tr>" for m in res)
    names, dev = assessment.matrix("rank_correlation")
    dev_rows = "".join(f"<tr><td>{_name(a)}</td>" + "".join(f"<td>{_fmt(dev[i, j])}</td>" for j in range(len(names)))
                       + "</tr>" for i, a in enumerate(names))
    skipped = "".join(f"<li>{_esc(s.get('attack') or s.get('method'))} {_esc(s.get('metric', ''))}: "
                      f"{_esc(s['reason'])}</li>" for s in assessment.skipped)
    return (f"<section class='quality'><h2>Quality of explanations</h2>"
            f"<p class='meta'>studio.assess (schema studio.assessment/1): rows {_esc(_rows_text(prov.get('rows', [])))}"
            f", seed {_esc(prov.get('seed'))}, severities {_esc(prov.get('severities'))}, device "
            f"{_esc(prov.get('device'))}, {_esc(prov.get('created'))}. Explained output: each row's predicted class "
            f"(probability) or the regression output.</p>{checks}"
            f"<h3>Cost and faithfulness</h3><table><tr><th>method</th>{head}</tr>{body}</table>"
            f"<p class='caption'>Deletion: lower than the random order is better; insertion: higher is better; "
            f"infidelity and max-sensitivity: lower is better (Captum).</p>"
            f"<h3>Robustness</h3><table><tr><th>attack</th><th>severity</th><th>model</th><th>predictions kept</th>"
            f"</tr>{robust}</table>"
            f"<h3>Resilience (rank correlation, clean vs perturbed, rows whose prediction held)</h3><table><tr>"
            f"<th>method</th>{''.join(f'<th>{_esc(k)}</th>' for k in scen)}</tr>{res_rows}</table>"
            f"<h3>Deviation (Spearman rank correlation between methods)</h3><table><tr><th></th>"
            f"{''.join(f'<th>{_name(n)}</th>' for n in names)}</tr>{dev_rows}</table>"
            + (f"<p>Not run:</p><ul>{skipped}</ul>" if skipped else "") + "</section>")


def build_report(model, data, explanations, panels=None, comments=None, signoff=None, pins=None,
                 interactive: bool = True, assessment=None) -> str:
    """One self-contained HTML page.

    Parameters
    ----------
    model : Model
    data : Dataset
    explanations : list of Explanation
        Each gets a section with the chart the app would draw for it.
    panels : list of str, optional
        Extra HTML fragments (already escaped/embedded) per explanation.
    comments : list of str, optional
        Reviewer comments per explanation (escaped here).
    signoff : dict, optional
        ``{"name", "date", "verdict"}`` (escaped here).
    pins : list of dict, optional
        Panels pinned in the app: ``{"title", "page", "explanation", "spec", "png", "text", "comment"}``
        (spec: a Vega-Lite dict; png: bytes; every field optional but title).
    interactive : bool
        Inline the Vega libraries (about 0.9 MB) so charts are live (tooltips) offline;
        the static SVG is there either way.
    assessment : Assessment, optional
        A :func:`studio.assess` result: a "Quality of explanations" section (:func:`assessment_html`).

    Returns
    -------
    str
        The HTML document.
    """
    counter = _Counter()
    sections = []
    for pin in pins or []:
        sections.append(_section(pin.get("title", "panel"), pin.get("explanation"), pin.get("spec"), pin.get("png"),
                                 pin.get("text", ""), pin.get("comment", ""), "", counter, data))
    for i, exp in enumerate(explanations):
        extra = panels[i] if panels and i < len(panels) else ""
        comment = comments[i] if comments and i < len(comments) else ""
        try:
            spec, png, text = default_figure(exp, data)
        except Exception as exc:  # a chart that cannot be drawn must not lose the section
            spec, png, text = None, None, f"(chart unavailable: {type(exc).__name__})"
        sections.append(_section(exp.method, exp, spec, png, text, comment, extra, counter, data))

    all_exps = [p.get("explanation") for p in pins or [] if p.get("explanation") is not None] + list(explanations)
    from studio.checks import summary as checks_summary

    summary = "".join(
        f"<tr><td>{_esc(e.method)}</td><td>{_esc(params_text(shown_params(e)))}</td>"
        f"<td>{_esc(_rows_text(e.rows))}</td><td>{_esc(_target_text(e))}</td>"
        f"<td>{_esc(checks_summary(e.checks) or 'no verdicts')}</td>"
        f"<td>{e.compute_seconds:.2g} s ({_esc(e.cache)})</td></tr>"
        for e in all_exps
    )
    versions = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in package_versions().items())
    sign = ""
    if signoff:
        sign = (f"<section class='signoff'><h2>Sign-off</h2><p>{_esc(signoff.get('name', ''))}, "
                f"{_esc(signoff.get('date', ''))}: <strong>{_esc(signoff.get('verdict', ''))}</strong></p>"
                + (f"<blockquote>{_esc(signoff['note'])}</blockquote>" if signoff.get("note") else "")
                + "</section>")
    classes = ", ".join(map(_name, model.class_names or [])) if getattr(model, "class_names", None) else None
    features = ", ".join(map(_name, (data.feature_names or [])[:40])) + (" ..." if data.feature_names and len(data.feature_names) > 40 else "")
    script = ""
    bundle = vega_bundle() if interactive and counter.n else None
    if bundle:
        script = (f"<script>{bundle}</script><script>"
                  "document.querySelectorAll('script.vl-spec').forEach(function(s){"
                  "var target=document.getElementById(s.dataset.target);"
                  "var img=target.parentNode.querySelector('img.static');"
                  "window.vegaEmbed(target, JSON.parse(s.textContent), {actions:false, renderer:'svg'})"
                  ".then(function(){ if (img) img.style.display='none'; target.classList.add('rendered'); })"
                  ".catch(function(e){ target.textContent=''; });});</script>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model Inspection Studio report</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline' 'unsafe-eval'">
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;background:#fff}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}}
.meta{{color:#666;font-size:.9em}}section{{border-top:2px solid #eee;margin-top:1.5em}}
figure.chart{{margin:.5em 0}}img.overlay{{width:192px;image-rendering:pixelated}}.rule{{font-family:monospace}}
blockquote{{border-left:4px solid #9bd;margin:.5em 0;padding:.2em 1em;background:#f4f8fb}}
code{{word-break:break-all}}
.summary{{border:2px solid #9bd;padding:0 1em;background:#fafcfe}}.summary h3{{margin:.6em 0 .2em}}
.fail,.verdict.fail{{color:#a11}}.warn,.verdict.warn{{color:#a60}}tr.pass td:first-child{{color:#171}}
.verdict{{font-weight:600;margin:.3em 0}}.caption{{color:#333;font-style:italic}}ul.params{{margin:.2em 0}}
.images{{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap}}.images figure{{margin:0}}
figure.scale img.bar{{width:256px;height:14px;display:block}}
figure.scale figcaption span{{display:inline-block;width:84px;text-align:center}}
@media print{{section{{break-inside:avoid-page}}.live{{display:none}}img.static{{display:block!important}}}}</style></head>
<body><h1>Model Inspection Studio report</h1>
<p class="meta">Generated {_esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p>
{summary_html(model, data, all_exps, signoff)}
<h2>Model and data</h2>
<p>Model <strong>{_name(model.name)}</strong> ({_esc(model.format)}, {_esc(model.task)}); {'classes: ' + classes if classes else ('classes: -' if model.is_classifier else 'regression')}<br>
fingerprint <code>{_esc(model.fingerprint)}</code></p>
<p>Dataset <strong>{_name(data.name)}</strong> ({len(data)} rows, {_esc(data.kind)}){'; features: ' + features if features else ''}<br>
fingerprint <code>{_esc(data.fingerprint)}</code></p>
<h2>Methods</h2><table><tr><th>method</th><th>params</th><th>rows</th><th>target</th><th>checks</th><th>time</th></tr>{summary}</table>
<details><summary>Package versions</summary><table>{versions}</table></details>
{''.join(sections)}{assessment_html(assessment) if assessment is not None else ''}{sign}
{script}
</body></html>
"""


# ---- PDF ----------------------------------------------------------------------------------------
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def pdf_engine() -> str | None:
    """The headless Chromium that prints reports to PDF (Debian's ``chromium``), or None when none is installed."""
    import shutil

    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html_text: str, timeout: float = 120.0) -> bytes:
    """The report's PDF twin: the same HTML printed by headless Chromium (``--print-to-pdf``).

    Chromium draws the page exactly as a browser shows it (the inlined Vega
    libraries render the live charts, print CSS shows the static SVGs), so
    the PDF has the same sections as the HTML. It needs no network: the file
    is opened from disk and every network request is refused
    (``--host-resolver-rules``); no fonts or scripts are fetched.

    Raises
    ------
    StudioError
        When no Chromium is installed or printing fails.
    """
    import subprocess
    import tempfile
    from pathlib import Path

    from studio.errors import StudioError

    engine = pdf_engine()
    if engine is None:
        raise StudioError("PDF export needs Chromium (apt-get install chromium); download the HTML report instead")
    with tempfile.TemporaryDirectory(prefix="studio-pdf-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html_text, encoding="utf-8")
        cmd = [engine, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
               "--disable-background-networking", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND",
               f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", "--virtual-time-budget=10000",
               f"--print-to-pdf={out}", src.as_uri()]
        deadline = time.monotonic() + timeout
        for _ in range(2):  # a headless Chromium under load now and then exits without printing: once more
            try:
                subprocess.run(cmd, capture_output=True, timeout=max(deadline - time.monotonic(), 1.0), check=False)
            except subprocess.TimeoutExpired:
                raise StudioError(f"printing the report to PDF took over {timeout:.0f} s; download the HTML report "
                                  "instead") from None
            if out.exists() and out.stat().st_size > 0:
                return out.read_bytes()
        raise StudioError("Chromium could not print the report to PDF; download the HTML report instead")
