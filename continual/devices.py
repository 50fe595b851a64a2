"""Devices: resolving a ``device`` parameter, and moving batches onto it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["device_name", "module_device", "move_to", "resolve_device"]

_EXPECTED = "'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"


def resolve_device(device: Any) -> torch.device:
    """The torch device for a ``device`` parameter, checked to exist on this machine.

    ``"auto"`` is the first accelerator (CUDA, then MPS), else the CPU. ``"cuda"`` is the
    current CUDA device, with its index (``cuda:0``), so that ledgers and budgets name it
    the way tensors report it.

    Raises
    ------
    ValueError
        For a value that is not a device, or a device this machine does not have.

    Examples
    --------
    >>> from continual.devices import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in {"cpu", "cuda", "mps"}
    True
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be {_EXPECTED}, got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be {_EXPECTED}, got {device!r}") from None
    if resolved.type == "cpu":
        return torch.device("cpu")
    if resolved.type == "cuda":
        return _cuda(resolved, device)
    if resolved.type == "mps":
        if not _mps_available():
            raise ValueError(f"device={device!r} is not available: this machine has no MPS")
        return torch.device("mps")
    raise ValueError(f"device must be {_EXPECTED}, got {device!r}")


def _cuda(resolved: torch.device, asked: str) -> torch.device:
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={asked!r} is not available: torch sees no CUDA device on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None})"
        )
    index = torch.cuda.current_device() if resolved.index is None else resolved.index
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(
            f"device={asked!r} is not available: this machine has {count} CUDA device(s), "
            f"cuda:0 to cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def device_name(device: Any) -> str:
    """The name ledgers and per-device budgets use for ``device``: ``"cpu"``, ``"cuda:0"``.

    Examples
    --------
    >>> from continual.devices import device_name
    >>> device_name("cpu"), device_name("cuda:1"), device_name("cuda")
    ('cpu', 'cuda:1', 'cuda:0')
    """
    resolved = torch.device(device)
    if resolved.type == "cuda" and resolved.index is None:
        return "cuda:0"
    return str(resolved)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer (the CPU for an empty module).

    Examples
    --------
    >>> import torch
    >>> from continual.devices import module_device
    >>> module_device(torch.nn.Linear(2, 1)), module_device(torch.nn.ReLU())
    (device(type='cpu'), device(type='cpu'))
    """
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def move_to(data: Any, device: torch.device, *, pin_memory: bool = False) -> Any:
    """Move every tensor inside ``data`` (tensors, tuples, lists, dicts, dataclasses) to
    ``device``; anything else is returned as it is.

    A CPU tensor bound for an accelerator is copied with ``non_blocking=True``, from pinned
    memory when ``pin_memory`` is set (pinned memory is what lets the copy overlap with
    compute). Tensors already on ``device`` are returned unchanged, so on the CPU this
    costs nothing.

    Examples
    --------
    >>> import torch
    >>> from continual.devices import move_to
    >>> batch = (torch.zeros(2), {"y": torch.ones(2, dtype=torch.long)}, "id")
    >>> moved = move_to(batch, torch.device("cpu"))
    >>> moved[0] is batch[0], moved[1]["y"].device, moved[2]
    (True, device(type='cpu'), 'id')
    """
    if isinstance(data, torch.Tensor):
        if data.device == device:
            return data
        if pin_memory and device.type == "cuda" and data.device.type == "cpu":
            data = data.pin_memory()
        return data.to(device, non_blocking=device.type != "cpu")
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(move_to(item, device, pin_memory=pin_memory) for item in data))
    if isinstance(data, (tuple, list)):
        return type(data)(move_to(item, device, pin_memory=pin_memory) for item in data)
    if isinstance(data, Mapping):
        return {key: move_to(value, device, pin_memory=pin_memory) for key, value in data.items()}
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        changes = {
            f.name: move_to(getattr(data, f.name), device, pin_memory=pin_memory)
            for f in dataclasses.fields(data)
            if f.init
        }
        return dataclasses.replace(data, **changes)
    return data
