"""Device resolution, batch transfer, and exact byte counts on CUDA where it exists."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest
import torch

from continual import Learner, MemoryAccountant
from continual.devices import device_name, move_to, resolve_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@dataclass(frozen=True)
class Batch:
    x: torch.Tensor
    lengths: np.ndarray


class Pair(NamedTuple):
    users: torch.Tensor
    items: torch.Tensor


def test_resolve_device_names_what_is_wrong():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"):
        resolve_device(3)
    with pytest.raises(ValueError, match="got 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="device='cuda:99' is not available"):
        resolve_device("cuda:99")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' is not available: torch sees no CUDA"):
            resolve_device("cuda")
        assert resolve_device("auto").type in ("cpu", "mps")


def test_device_name_is_what_tensors_report():
    assert device_name("cuda") == "cuda:0"
    assert device_name(torch.device("cuda", 2)) == "cuda:2"
    assert device_name("cpu") == str(torch.zeros(1).device)


def test_move_to_walks_containers_and_leaves_other_values():
    batch = {
        "batch": Batch(torch.zeros(2), np.arange(2)),
        "pair": Pair(torch.ones(1), torch.ones(1)),
        "list": [torch.zeros(1), "name", 3],
    }
    moved = move_to(batch, torch.device("meta"))
    assert moved["batch"].x.device.type == "meta"
    assert moved["batch"].lengths is batch["batch"].lengths  # not a tensor: unchanged
    assert isinstance(moved["pair"], Pair) and moved["pair"].items.device.type == "meta"
    assert moved["list"][0].device.type == "meta" and moved["list"][1:] == ["name", 3]


@cuda
def test_nbytes_agrees_with_the_cuda_allocator():
    """The accountant's CUDA bytes equal what the allocator handed out for the same state,
    up to its rounding of each allocation to 512-byte blocks."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    model = torch.nn.Sequential(
        torch.nn.Linear(300, 257), torch.nn.ReLU(), torch.nn.Linear(257, 10)
    )
    learner = Learner(model, device="cuda", optimizer="adam", accountant=MemoryAccountant())
    x = torch.randn(64, 300)
    y = torch.randint(0, 10, (64,))
    learner.learn((x, y))  # gradients are dropped after the experience
    torch.cuda.synchronize()
    allocated = torch.cuda.memory_allocated() - before
    ledger = learner.accountant.ledger()
    counted = ledger.device_totals()["cuda:0"]
    n_tensors = len(list(model.parameters())) * 3  # weights and two Adam moments
    assert counted <= allocated <= counted + 512 * n_tensors
    assert all(t.device.type == "cuda" for t in model.parameters())
