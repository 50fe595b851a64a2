"""Checks shared by the device tests of the domains: where the stored tensors live, and what
the CUDA allocator says about them."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
import torch

from continual.devices import device_name

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

#: Adam keeps its step counters on the CPU unless it is capturable or fused (torch's choice).
CPU_STEP_BYTES = 4


def stored_tensors(*objects: Any) -> list[torch.Tensor]:
    """Every tensor stored in ``objects``: parameters and buffers of modules, optimizer state
    (but Adam's ``step`` counters, see :data:`CPU_STEP_BYTES`), the parts of sparse tensors,
    what ``memory_items()`` returns, and containers of these."""
    found: list[torch.Tensor] = []
    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if obj is None or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            if obj.layout == torch.sparse_csr:
                found.extend([obj.crow_indices(), obj.col_indices(), obj.values()])
            else:
                found.append(obj)
        elif isinstance(obj, torch.nn.Module):
            for tensor in (*obj.parameters(), *obj.buffers()):
                walk(tensor)
        elif isinstance(obj, torch.optim.Optimizer):
            for state in obj.state.values():
                walk({key: value for key, value in state.items() if key != "step"})
        elif isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)
        elif hasattr(obj, "memory_items"):
            walk(obj.memory_items())

    for obj in objects:
        walk(obj)
    return found


def assert_stored_on(device: str, ledger: Any, tensors: list[torch.Tensor], cpu=()) -> None:
    """Every tensor is on ``device``, and so is every account of ``ledger`` but those named in
    ``cpu`` (numpy stores and maps) and Adam's step counters (``optimizer`` on the CPU)."""
    assert tensors
    assert {device_name(t.device) for t in tensors} == {device}
    for name in ledger.accounts:
        held = ledger.account_devices(name)
        if name in cpu:
            assert set(held) <= {"cpu"}, (name, held)
        elif name == "optimizer" and device != "cpu":
            assert set(held) <= {device, "cpu"}, (name, held)
            assert held.get("cpu", 0) % CPU_STEP_BYTES == 0, (name, held)
        else:
            assert set(held) <= {device}, (name, held)


def cuda_bytes_of(fit: Callable[[], Any]) -> tuple[Any, int]:
    """``fit()`` on CUDA, and the bytes the allocator holds for it afterwards.

    ``fit`` runs twice: the first run warms up CUDA (cuBLAS workspaces, kernels) and is
    thrown away, so that the second allocates only what the estimator keeps.
    """
    fit()
    gc.collect()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    estimator = fit()
    gc.collect()
    torch.cuda.synchronize()
    return estimator, torch.cuda.memory_allocated() - before


def assert_allocator_agrees(ledger: Any, allocated: int, tensors: list[torch.Tensor]) -> None:
    """The ledger's ``cuda:0`` bytes are what the allocator handed out, up to its rounding of
    each allocation to 512-byte blocks."""
    counted = ledger.device_totals().get("cuda:0", 0)
    n_cuda = sum(t.device.type == "cuda" for t in tensors)
    assert counted <= allocated <= counted + 512 * n_cuda, (counted, allocated, n_cuda)
