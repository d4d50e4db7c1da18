"""Shared chart settings: the point budget, colours, and a point counter."""

from __future__ import annotations

MAX_POINTS = 5000
"""Most data points any chart sends to the browser."""

POSITIVE = "#d6604d"  # pushes the explained output up
NEGATIVE = "#4393c3"  # pushes it down
SIGN_DOMAIN = ["raises output", "lowers output"]
SIGN_RANGE = [POSITIVE, NEGATIVE]
METHOD_SCHEME = "tableau10"


def chart_points(chart) -> int:
    """Number of data rows a chart sends to the browser (all its datasets)."""
    spec = chart.to_dict()
    total = 0
    for values in (spec.get("datasets") or {}).values():
        total += len(values)

    def walk(node):
        nonlocal total
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and isinstance(data.get("values"), list):
                total += len(data["values"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in spec.items() if k != "datasets"})
    return total


def sample_note(shown: int, total: int, what: str = "rows") -> str:
    """Title suffix saying a chart shows a sample, or ``""``."""
    return f" (sample of {shown:,} of {total:,} {what})" if shown < total else ""
