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


class NanAwareNet(torch.nn.Module):
    """A torch classifier of three columns that reads a missing value itself: NaN -> 0 plus a missing indicator."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(6, 2)

    def forward(self, x):
        gone = torch.isnan(x)
        return self.lin(torch.cat([torch.where(gone, torch.zeros_like(x), x), gone.to(x.dtype)], dim=1))
