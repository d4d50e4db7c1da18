"""Explanation -> Altair chart: pure functions, no explainer is ever run here.

Every chart sends at most :data:`MAX_POINTS` data points to the browser;
where the input is larger it is sampled or aggregated and the title says so.

Functions
---------
shared_feature_order   one feature order for several attribution explanations
attribution_bars       signed bars per method, same feature order, tooltips
importance_bars        global importance (mean and spread) per method
curve_chart            PDP + ICE, ALE and EBM shapes for one feature on one chart
heatmap_chart          a two-feature PDP / ALE / EBM surface
rule_card              anchors as plain data for a card
rule_chart             a rule's precision and coverage, its predicates in the title
distribution_chart     a small histogram or bar chart of one column
class_balance_chart    label counts
confusion_chart        confusion matrix
image_attribution_chart  one image map as a heatmap (aggregated to <= MAX_POINTS cells)
"""

from studio.charts.attribution import (
    attribution_bars,
    attribution_frame,
    comparison_bars,
    image_attribution_chart,
    importance_bars,
    importance_frame,
    normalised_map,
    shared_feature_order,
    shared_importance_order,
)
from studio.charts.base import MAX_POINTS, chart_points
from studio.charts.curves import curve_chart, curves_for, heatmap_chart
from studio.charts.data import class_balance_chart, confusion_chart, distribution_chart, histogram_chart
from studio.charts.rules import rule_card, rule_chart

__all__ = [
    "MAX_POINTS",
    "chart_points",
    "shared_feature_order",
    "shared_importance_order",
    "attribution_frame",
    "attribution_bars",
    "comparison_bars",
    "importance_frame",
    "importance_bars",
    "image_attribution_chart",
    "normalised_map",
    "curves_for",
    "curve_chart",
    "heatmap_chart",
    "rule_card",
    "rule_chart",
    "distribution_chart",
    "histogram_chart",
    "class_balance_chart",
    "confusion_chart",
]
