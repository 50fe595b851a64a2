"""Fixtures shared by the recommendation tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """torch's sparse products spin for milliseconds with more threads than free cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
