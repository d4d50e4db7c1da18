"""The sandbox through the app: hostile uploads in one browser session end in one error; the server and the
other session go on.

Session A loads the MLP, then uploads (1) a scikit-learn tree crafted to segfault on its first prediction and
(2) a TorchScript file that reads a secret file of the server's machine with ``torch.from_file``. Each shows
one error in A, A keeps its model, the server process is still running, and session B, which loaded the CNN,
reruns a page with no error.
"""

from __future__ import annotations

import re

import pytest

from tests.sandbox import hostile

from tests.browser_kit import (  # noqa: F401 (fixtures)
    two_sample_sessions, choose_uploads, exception_count, open_page, session, sidebar, submit, browser, server,
)

pytestmark = pytest.mark.browser


def _error_text(page) -> str:
    error = page.locator("[data-testid='stAlertContentError']")
    error.first.wait_for(timeout=120_000)
    assert error.count() == 1
    return error.first.inner_text()


def test_hostile_uploads_end_in_one_error_and_the_other_session_goes_on(server, browser, tmp_path):
    (ctx_a, a), (ctx_b, b) = two_sample_sessions(browser, server)
    assert "models run in a bubblewrap sandbox" in a.locator("[data-testid='stMain']").inner_text().lower() or \
        "models run in a sandbox" in a.locator("[data-testid='stMain']").inner_text().lower()

    table = tmp_path / "two.csv"
    table.write_text("a,b,label\n" + "".join(f"{i * 0.1},{-i * 0.2},{i % 2}\n" for i in range(20)))
    card = tmp_path / "crash.card.json"
    card.write_text('{"feature_names": ["a", "b"]}')
    choose_uploads(a, hostile.crashing_tree(tmp_path / "crash.skops"), card, table)
    submit(a)
    assert "segmentation fault" in _error_text(a)
    assert "tabular_mlp.pt" in sidebar(a)

    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    card3 = tmp_path / "reader.card.json"
    card3.write_text('{"feature_names": ["a", "b", "c"]}')
    table3 = tmp_path / "three.csv"
    table3.write_text("a,b,c,label\n" + "".join(f"{i},{i},{i},{i % 2}\n" for i in range(10)))
    choose_uploads(a, hostile.scripted("read", tmp_path / "reader.pt", str(secret)), card3, table3)
    submit(a)
    text = _error_text(a)
    # the secret's first bytes, read as the model's outputs, would be 84 and 79 ('T', 'O'); paths are left out of
    # the search, since pytest's own tmp folder (".../pytest-784/...") may hold those digits
    words = re.sub(r"\S*/\S*", " ", text)
    assert "TOP" not in words and not re.search(r"\b(84|79)(\.0+)?\b", words), text
    assert "tabular_mlp.pt" in sidebar(a)

    open_page(b, "Data")
    assert "image_cnn.pt" in sidebar(b) and b.locator("[data-testid='stAlertContentError']").count() == 0
    assert exception_count(a) == 0 and exception_count(b) == 0
    ctx_a.close()
    ctx_b.close()
