"""Shared by the torch regression tests: in-process loading and one torch thread (deterministic sums)."""

from __future__ import annotations

import pytest
import torch

import studio


def load(*args, **kwargs):
    """``studio.load_model`` in this process (the tests read adapter internals; the files are our own)."""
    return studio.load_model(*args, sandbox="off", **kwargs)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
