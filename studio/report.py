"""Self-contained HTML report of explanations (no network needed to open)."""

from __future__ import annotations

import html
import time

from studio.explanation import Explanation


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _checks_table(exp: Explanation) -> str:
    if not exp.checks:
        return "<p>No checks.</p>"
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in exp.checks.items())
    return f"<table class='checks'>{rows}</table>"


def _payload_table(exp: Explanation, limit: int = 30) -> str:
    if exp.kind == "importance":
        items = sorted(exp.importances, key=lambda i: -i.mean)[:limit]
        rows = "".join(f"<tr><td>{_esc(i.feature)}</td><td>{i.mean:.4g}</td><td>{i.std:.4g}</td></tr>" for i in items)
        return f"<table><tr><th>feature</th><th>mean</th><th>std</th></tr>{rows}</table>"
    if exp.kind == "rule":
        rows = "".join(
            f"<tr><td>{r.row}</td><td>{_esc(' AND '.join(r.predicates))}</td><td>{r.precision:.3f}</td><td>{r.coverage:.3f}</td></tr>"
            for r in exp.rules
        )
        return f"<table><tr><th>row</th><th>rule</th><th>precision</th><th>coverage</th></tr>{rows}</table>"
    if exp.kind == "curve":
        return "<ul>" + "".join(f"<li>{_esc(c.kind)}: {_esc(c.feature)}</li>" for c in exp.curves) + "</ul>"
    if exp.feature_names is not None and exp.values is not None and exp.values.ndim == 2:
        parts = []
        for r, row in enumerate(exp.rows):
            order = abs(exp.values[r]).argsort()[::-1][:limit]
            cells = "".join(f"<tr><td>{_esc(exp.feature_names[i])}</td><td>{exp.values[r][i]:.4g}</td></tr>" for i in order)
            parts.append(f"<h4>row {row}</h4><table><tr><th>feature</th><th>attribution</th></tr>{cells}</table>")
        return "".join(parts)
    return "<p>Image attributions (see the app for overlays).</p>"


def build_report(model, data, explanations, panels=None, comments=None, signoff=None) -> str:
    """One self-contained HTML page.

    Parameters
    ----------
    model : Model
    data : Dataset
    explanations : list of Explanation
    panels : list of str, optional
        Extra HTML fragments (already escaped/embedded charts) per explanation.
    comments : list of str, optional
        Reviewer comments per explanation (escaped here).
    signoff : dict, optional
        ``{"name", "date", "verdict"}`` (escaped here).

    Returns
    -------
    str
        The HTML document.
    """
    sections = []
    for i, exp in enumerate(explanations):
        extra = panels[i] if panels and i < len(panels) else ""
        comment = comments[i] if comments and i < len(comments) else ""
        versions = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in exp.provenance.get("versions", {}).items())
        sections.append(
            f"<section><h2>{_esc(exp.method)}</h2>"
            f"<p class='meta'>rows {_esc(exp.rows)} &middot; target {_esc(exp.target)} &middot; params {_esc(exp.params)}"
            f" &middot; {exp.compute_seconds:.2f}s ({_esc(exp.cache)})</p>"
            f"{extra}{_payload_table(exp)}<h3>Checks</h3>{_checks_table(exp)}"
            f"<p class='meta'>versions: {versions}</p>"
            + (f"<blockquote>{_esc(comment)}</blockquote>" if comment else "")
            + "</section>"
        )
    sign = ""
    if signoff:
        sign = (
            f"<section class='signoff'><h2>Sign-off</h2><p>{_esc(signoff.get('name', ''))}, "
            f"{_esc(signoff.get('date', ''))}: <strong>{_esc(signoff.get('verdict', ''))}</strong></p></section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model Inspection Studio report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
.meta{{color:#666;font-size:.9em}}section{{border-top:2px solid #eee;margin-top:1.5em}}</style></head>
<body><h1>Model Inspection Studio report</h1>
<p>Model <strong>{_esc(model.name)}</strong> ({_esc(model.format)}, {_esc(model.task)}), id <code>{_esc(model.fingerprint)}</code></p>
<p>Dataset <strong>{_esc(data.name)}</strong> ({len(data)} rows), id <code>{_esc(data.fingerprint)}</code></p>
<p class="meta">Generated {_esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p>
{''.join(sections)}{sign}
</body></html>
"""
