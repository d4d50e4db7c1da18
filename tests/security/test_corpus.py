"""Every corpus file gives exactly one StudioError that says what is wrong (library level)."""

from __future__ import annotations

import pytest

from studio.errors import StudioError
from tests.bad_inputs import make_corpus

NAMES = [c.name for c in make_corpus.CASES]


def test_the_corpus_is_large_and_well_formed():
    assert len(NAMES) >= 40
    assert len(set(NAMES)) == len(NAMES)
    stages = {c.stage for c in make_corpus.CASES}
    assert stages == {"card", "model", "data", "pair", "explain"}
    for c in make_corpus.CASES:
        assert c.expect.strip(), c.name


@pytest.mark.parametrize("name", NAMES)
def test_case_raises_one_clear_studio_error(name, corpus, sample_models, monkeypatch):
    folder, cases = corpus
    case = cases[name]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(StudioError) as info:
        make_corpus.run_case(case, folder, sample_models)
    message = str(info.value)
    assert case.expect.lower() in message.lower(), message
    assert "Traceback" not in message
    assert 20 <= len(message) <= 600, message
    # the message is one sentence-like line a user can act on (the CLI prints it on one line)
    assert "\n" not in message.strip(), message
    assert not (folder / make_corpus.MARKER).exists(), f"{name} ran code from the file"
