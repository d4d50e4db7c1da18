"""Names from the user's files are stored as given and escaped in the HTML report."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import studio
from studio.data.tabular import table_dataset

EVIL = "<img src=x onerror=alert(1)>"
BREAKOUT = "</script><img src=y onerror=alert(3)>"  # would close an inline JSON/JS block
EVIL_CLASS = "<script>alert('c')</script>"
EVIL_FILE = '"><svg onload=alert(2)>.csv'


@pytest.fixture(scope="module")
def evil_pair():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({EVIL: rng.normal(size=80), BREAKOUT: rng.normal(size=80)})
    labels = np.where(frame[EVIL] > 0, EVIL_CLASS, "benign")
    estimator = LogisticRegression().fit(frame, labels)
    card = {"description": EVIL, "class_names": sorted([EVIL_CLASS, "benign"])}
    model = studio.wrap_model(estimator, card=card, name=EVIL + ".skops")
    data = table_dataset(frame.assign(label=labels), name=EVIL_FILE, label="label")
    return model, data


def test_library_keeps_names_as_given(evil_pair):
    model, data = evil_pair
    assert EVIL in data.feature_names and EVIL in model.feature_names
    assert EVIL_CLASS in model.class_names and EVIL_CLASS in data.class_names
    assert model.card.description == EVIL
    assert data.name == EVIL_FILE


class _Scan(HTMLParser):
    """Every tag and attribute a browser would build, and the visible text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if not self._in_script:
            self.text.append(data)


def test_report_escapes_feature_class_and_file_names(evil_pair):
    from studio.report import build_report

    model, data = evil_pair
    exp = studio.explain(model, data, "permutation_importance", params={"n_repeats": 1}, cache=False)
    assert EVIL in exp.feature_names and BREAKOUT in exp.feature_names
    html = build_report(model, data, [exp], comments=[EVIL], signoff={"name": EVIL_CLASS, "date": "x", "verdict": EVIL})
    scan = _Scan()
    scan.feed(html)
    handlers = [(tag, name) for tag, attrs in scan.tags for name in attrs if name.lower().startswith("on")]
    assert handlers == [], handlers  # no onerror/onload from any name
    assert not any(tag in ("img", "svg") and attrs.get("src") in ("x", "y") for tag, attrs in scan.tags)
    text = "".join(scan.text)
    assert EVIL in text  # shown to the reader as text
    assert EVIL_FILE in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert EVIL_CLASS not in html and EVIL not in html
