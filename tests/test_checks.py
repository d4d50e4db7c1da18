"""Check definitions: every key the explainers write has a meaning, and each value earns one verdict."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from studio import checks
from studio.checks import CHECKS, definition, format_value, verdict, verdicts

ROOT = Path(__file__).resolve().parents[1]


def _written_keys() -> set:
    """Check keys written in studio/explainers (``checks[...] =``, ``"key": float(`` in a checks dict)."""
    keys = set()
    for path in (ROOT / "studio" / "explainers").glob("*.py"):
        text = path.read_text()
        keys |= set(re.findall(r'checks\["([a-z_]+)"\]\s*=', text))
        for block in re.findall(r"checks\s*=\s*\{(.*?)\}", text, flags=re.S):
            keys |= set(re.findall(r'"([a-z_]+)":', block))
        for block in re.findall(r"checks\.update\(\{(.*?)\}", text, flags=re.S):
            keys |= set(re.findall(r'"([a-z_]+)":', block))
        keys |= set(re.findall(r'out\["([a-z_]+)"\]\s*=', text))  # gradient methods' measure()
        for block in re.findall(r'return \{("completeness_gap".*?)\}', text, flags=re.S):
            keys |= set(re.findall(r'"([a-z_]+)":', block))
        for block in re.findall(r"dict\(checks, (.*?)\)", text, flags=re.S):
            keys |= set(re.findall(r"([a-z_]+)=", block))
    return keys


def test_every_key_the_explainers_write_is_declared():
    keys = _written_keys()
    assert {"completeness_gap", "additivity_gap", "fidelity", "local_gap", "meets_threshold"} <= keys  # found them
    undeclared = sorted(k for k in keys if k not in CHECKS)
    assert not undeclared, undeclared
    # keys built at run time follow declared patterns
    assert definition("path_tree").label == "SHAP algorithm"
    assert definition("spearman_after_conv1").label == "Rank correlation after randomising conv1"
    for c in CHECKS.values():
        assert c.direction in ("lower", "higher", "info") and c.meaning.endswith(".")
        if c.direction != "info":
            assert c.fail is not None, c.key


@pytest.mark.parametrize("key,value,status", [
    ("completeness_gap", 0.004, "pass"), ("completeness_gap", 0.02, "warn"), ("completeness_gap", 0.11, "fail"),
    ("additivity_gap", 6.087e-09, "pass"), ("additivity_gap", 0.05, "fail"),
    ("fidelity", 0.97, "pass"), ("fidelity", 0.8, "warn"), ("fidelity", 0.5, "fail"),
    ("local_gap", 43.52, "fail"), ("score", 0.3, "warn"),
    ("meets_threshold", 0.0, "fail"), ("meets_threshold", 1.0, "pass"), ("precision", 0.67, "fail"),
    ("does_not_depend_on_model", 1.0, "fail"), ("does_not_depend_on_model", 0.0, "pass"),
    ("path_tree", 1.0, "info"), ("below_threshold", 1.0, "info"), ("n_rows", 500.0, "info"),
    ("completeness_gap", float("nan"), "info"), ("never_declared", 3.0, "info"),
])
def test_verdicts_follow_direction_and_thresholds(key, value, status):
    got, sentence = verdict(key, value)
    assert got == status
    c = definition(key)
    said = c.statement(value) if c.kind == "flag" and status != "info" else ""
    assert sentence.endswith(".") and (said or c.label) in sentence


def test_a_sentence_gives_the_number_the_threshold_and_the_meaning():
    status, sentence = verdict("completeness_gap", 0.11)
    assert status == "fail"
    assert sentence.startswith("Completeness gap is 11%, so the check fails (pass at or below 1%, fail above 5%, "
                               "warn between). How far the attributions")
    # a flag says what its value means, never "Meets the precision asked no: fails"
    assert verdict("meets_threshold", 0.0) == ("fail", "A rule stays under the precision asked, so the check fails "
                                                       "(pass when every rule reaches the precision asked). "
                                                       + definition("meets_threshold").meaning)
    assert verdict("meets_threshold", 1.0)[1].startswith("Every rule reaches the precision asked, so the check passes. ")
    assert verdict("does_not_depend_on_model", 1.0)[1].startswith(
        "The maps stay alike after the model's weights are randomised, so the check fails (pass when the maps change")
    assert verdict("fidelity", 0.8)[1].startswith("Fidelity is 0.8, so the check gives a warning (pass at or above 0.9")
    status, sentence = verdict("path_tree", 1.0)
    assert sentence == "SHAP algorithm: tree. SHAP values were computed with shap's tree algorithm."


def test_verdicts_are_worst_first_and_one_per_property():
    vs = verdicts({"n_rows": 10.0, "additivity_gap": 0.5, "additivity_gap_relative": 0.001, "local_gap": 0.3})
    assert [v.status for v in vs] == ["fail", "pass", "info", "info"]
    assert vs[0].key == "local_gap" and vs[0].value == 0.3 and vs[0].shown == "0.3"
    # the absolute gap is a fact when the relative one carries the verdict
    assert {v.key: v.status for v in vs}["additivity_gap"] == "info"
    assert checks.worst({"n_rows": 1.0}) == "info" and checks.worst({"fidelity": 0.8, "n_rows": 1.0}) == "warn"
    assert checks.summary({"fidelity": 0.5, "score": 0.3}) == "1 check fails: Fidelity 0.5 (fail), Local fit (R^2) 0.3 (warn)"
    assert checks.summary({"fidelity": 0.5, "meets_threshold": 0.0}) == (
        "2 checks fail: Fidelity 0.5 (fail), A rule stays under the precision asked (fail)")
    assert checks.summary({"fidelity": 0.8}) == "1 warning: Fidelity 0.8 (warn)"
    assert checks.summary({"fidelity": 0.95}) == "1 check passes" and checks.summary({"n_rows": 3.0}) == ""
    assert checks.summary({"fidelity": 0.95, "score": 0.9}) == "2 checks pass"


def test_values_are_written_with_two_or_three_significant_figures():
    assert format_value(0.123456789) == "0.123"
    assert format_value(6.087e-09) == "6.09e-9"
    assert format_value(43.5234) == "43.5"
    assert format_value(0.00626, "share") == "0.63%" and format_value(0.5, "share") == "50%"
    assert format_value(500.0, "count") == "500" and format_value(1.0, "flag") == "yes"
    assert format_value(math.nan) == "undefined" and format_value(123456.0) == "1.23e5"
