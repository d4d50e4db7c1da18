"""Anchor rules as plain data for a card (the page or report renders it)."""

from __future__ import annotations

from studio.charts.base import compact
from studio.explanation import Explanation


def rule_card(exp: Explanation, row: int | None = None) -> dict:
    """The rule explaining ``row`` as card data.

    Returns
    -------
    dict
        ``{"method", "row", "predicates": [str], "text": "IF a AND b THEN
        <output>", "precision", "coverage", "output", "threshold", "meets"}``;
        ``meets`` is False when the rule stays under the precision asked
        (``threshold``): then ``text`` says so first ("No rule reached
        precision 0.95; best found: IF ... (precision 0.67)"), so an
        unmet rule is never read as an anchor. Raises ValueError when
        ``exp`` has no rule for the row.
    """
    if exp.kind != "rule" or not exp.rules:
        raise ValueError(f"{exp.method} has no rules")
    rules = exp.rules if row is None else [r for r in exp.rules if r.row == row]
    if not rules:
        raise ValueError(f"{exp.method} has no rule for row {row}")
    rule = rules[0]
    output = None
    if exp.target is not None and exp.output_names:
        pos = exp.rows.index(rule.row) if rule.row in exp.rows else 0
        t = exp.target[min(pos, len(exp.target) - 1)]
        if t is not None and 0 <= int(t) < len(exp.output_names):
            output = exp.output_names[int(t)]
    preds = [str(p) for p in rule.predicates]
    text = rule_text(preds, output)
    threshold = (exp.params or {}).get("threshold")
    meets = (rule.extra or {}).get("meets_threshold")
    if meets is None and threshold is not None:
        meets = float(rule.precision) >= float(threshold)
    if meets is False or meets == 0:
        text = (f"No rule reached precision {float(threshold):.2g}; best found: " if threshold is not None
                else "Not an anchor (under the precision asked); best found: ") + text + f" (precision {rule.precision:.2f})"
    return {
        "method": exp.method, "row": int(rule.row), "predicates": preds, "text": text,
        "precision": float(rule.precision), "coverage": float(rule.coverage), "output": output,
        "threshold": None if threshold is None else float(threshold), "meets": None if meets is None else bool(meets),
    }


NO_CONDITION = "For every row (no condition needed)"
TARGET_COLOR = "#e08a1e"
"""The precision-asked tick: orange, seen on the light and the dark theme and beside both bar colours."""


def rule_text(predicates, output=None) -> str:
    """A rule as one sentence: ``IF a AND b THEN predict <output>``; a rule with no predicates (anchors' empty
    anchor: the prediction holds whatever the features) reads ``For every row (no condition needed): predict
    <output>``, never ``ALWAYS THEN``."""
    preds = [str(p) for p in predicates]
    if not preds:
        return NO_CONDITION + (f": predict {output}" if output is not None else "")
    return "IF " + " AND ".join(preds) + (f" THEN predict {output}" if output is not None else "")


@compact
def rule_chart(card: dict, width: int | None = 220):
    """Precision and coverage of a rule card as two bars on [0, 1], each with its value written at its end, a
    orange tick at the precision asked (the card's ``threshold``, e.g. 0.95), the rule's predicates as the title."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame({"measure": ["precision", "coverage"], "value": [card["precision"], card["coverage"]]})
    from studio.charts.base import SUBTITLE_COLOR, short_label

    lines = [short_label(p, 80) for p in card["predicates"]]
    subtitle = [f"{'IF ' if i == 0 else 'AND '}{p}" for i, p in enumerate(lines[:6])] + (
        [f"... {len(lines) - 6} more"] if len(lines) > 6 else [])
    if not lines:
        subtitle.append(rule_text([], None if card.get("output") is None else short_label(card["output"])))
    elif card.get("output") is not None:
        subtitle.append(f"THEN predict {short_label(card['output'])}")
    if card.get("meets") is False:
        subtitle.insert(0, f"NOT AN ANCHOR: precision {card['precision']:.2f} is under {card['threshold']:.2g}; best rule found")
    size = {"width": width} if width else {}
    y = alt.Y("measure:N", title=None, sort=["precision", "coverage"])
    threshold = card.get("threshold")
    x_title = None if threshold is None else f"tick: precision asked, {float(threshold):.2g}"
    base = alt.Chart(frame)
    bars = base.mark_bar(color="#7f9f7f" if card.get("meets") is not False else "#c0504d").encode(
        y=y, x=alt.X("value:Q", scale=alt.Scale(domain=[0, 1]), title=x_title),
        tooltip=["measure:N", alt.Tooltip("value:Q", format=".3f")])
    # each bar's value: inside the bar at its start (white), or after a short bar; never under the target tick
    inside = base.transform_filter("datum.value >= 0.25").mark_text(align="left", dx=4, color="white",
                                                                     fontWeight="bold").encode(
        y=y, x=alt.datum(0), text=alt.Text("value:Q", format=".2f"))
    after = base.transform_filter("datum.value < 0.25").mark_text(align="left", dx=4, color=SUBTITLE_COLOR).encode(
        y=y, x="value:Q", text=alt.Text("value:Q", format=".2f"))
    layers = [bars, inside, after]
    if threshold is not None:
        # the precision asked for (anchors' threshold): a target tick on the precision bar only
        target = pd.DataFrame({"measure": ["precision"], "value": [float(threshold)],
                               "label": [f"asked {float(threshold):.2g}"]})
        layers.append(alt.Chart(target).mark_tick(color=TARGET_COLOR, thickness=3).encode(
            y=y, x="value:Q", tooltip=[alt.Tooltip("label:N", title="precision asked")]))
    return (
        alt.layer(*layers, height=60, **size)
        .properties(title=alt.TitleParams(f"{card['method']}: rule for row {card['row']}", subtitle=subtitle,
                                          subtitleColor=SUBTITLE_COLOR))
    )
