"""Fixtures for the security tests: the generated bad-input corpus."""

from __future__ import annotations

import pytest

from tests.bad_inputs import make_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """(folder, cases): every corpus file written once per test session."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    cases = make_corpus.build(folder)
    return folder, {c.name: c for c in cases}


@pytest.fixture(scope="session")
def sample_models():
    """Loaded sample models shared between corpus cases (never mutated by a failing case)."""
    return {}
