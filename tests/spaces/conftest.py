"""Shared settings for the search-space tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run on one intra-op thread: these tests use tiny tensors, for which a second
    thread costs more in synchronisation than it gains (much more on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
