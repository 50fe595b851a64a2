"""Exact payload bytes of Python objects, deduplicated by the memory they occupy.

The single entry point is :func:`nbytes`. Under the hood every object is broken
into *blocks*: address ranges of tensor storages and numpy buffers (so that two
views of one buffer, or a tensor made with ``torch.from_numpy``, are counted
once), plus opaque blocks for objects that only report a byte count.
:class:`~continual.accountant.MemoryAccountant` uses the same blocks to
deduplicate across accounts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from continual.devices import device_name

__all__ = ["Blocks", "Live", "Reservation", "collect_blocks", "nbytes"]

_SCALARS = (int, float, complex, bool, type(None), np.generic)
_COMPRESSED_INDICES = {
    torch.sparse_csr: ("crow_indices", "col_indices"),
    torch.sparse_bsr: ("crow_indices", "col_indices"),
    torch.sparse_csc: ("ccol_indices", "row_indices"),
    torch.sparse_bsc: ("ccol_indices", "row_indices"),
}


@dataclass
class Blocks:
    """Memory blocks of one object: address ranges per device, plus opaque sizes.

    ``ranges`` maps a device name to a list of half-open ``(start, stop)``
    address ranges. ``opaque`` maps an identity key to a byte count for objects
    that report their size without exposing memory (``__nbytes__``, ``bytes``,
    ``str``). Overlapping ranges are merged when the blocks are sized.
    """

    ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    opaque: dict[Any, int] = field(default_factory=dict)
    # The device each opaque block is charged to ("cpu" unless its object names one).
    opaque_devices: dict[Any, str] = field(default_factory=dict)
    # Objects behind opaque keys, kept alive so that their ids are not reused by new objects.
    owners: list[Any] = field(default_factory=list, repr=False)

    def add_range(self, device: str, start: int, size: int) -> None:
        if size > 0:
            self.ranges.setdefault(device, []).append((start, start + size))

    def update(self, other: Blocks) -> None:
        """Add every block of ``other`` to these blocks."""
        for device, ranges in other.ranges.items():
            self.ranges.setdefault(device, []).extend(ranges)
        self.opaque.update(other.opaque)
        self.opaque_devices.update(other.opaque_devices)
        self.owners.extend(other.owners)

    def add_opaque(self, kind: str, obj: Any, size: int, device: str = "cpu") -> None:
        """Charge ``size`` bytes on ``device`` for ``obj``, once however often it is met."""
        self.opaque[(kind, id(obj))] = size
        self.opaque_devices[(kind, id(obj))] = device
        self.owners.append(obj)

    def merge(self) -> Blocks:
        """Merge overlapping ranges in place and return ``self``."""
        self.ranges = {device: _merge_ranges(r) for device, r in self.ranges.items()}
        return self

    def size(self) -> int:
        """Bytes covered, each address and each opaque key counted once."""
        covered = sum(stop - start for r in self.merge().ranges.values() for start, stop in r)
        return covered + sum(self.opaque.values())

    def size_by_device(self) -> dict[str, int]:
        """:meth:`size` split by device name (``"cpu"``, ``"cuda:0"``), devices with bytes
        only."""
        sizes: dict[str, int] = {}
        for device, ranges in self.merge().ranges.items():
            sizes[device] = sizes.get(device, 0) + sum(stop - start for start, stop in ranges)
        for key, size in self.opaque.items():
            device = self.opaque_devices.get(key, "cpu")
            sizes[device] = sizes.get(device, 0) + size
        return {device: size for device, size in sizes.items() if size}


def nbytes(obj: Any) -> int:
    """Return the exact payload bytes held by ``obj``.

    Memory is deduplicated by address: a tensor storage or numpy buffer is
    counted once however many views, slices, ``expand`` results or
    ``torch.from_numpy`` aliases point at it. What is counted:

    - dense tensors: their whole untyped storage (a slice keeps its base alive,
      so it is charged the base's storage);
    - sparse COO tensors: indices plus values; CSR/CSC/BSR/BSC: the compressed
      and plain index arrays plus values (``Tensor.nbytes`` would report the
      dense size instead);
    - quantized tensors: their integer storage plus the quantization
      parameters (per-channel scale and zero-point tensors, or 16 bytes for a
      per-tensor double scale and int64 zero point);
    - numpy arrays: the owning base array, once;
    - ``bytes``, ``bytearray`` and ``memoryview``: their length in bytes;
      ``str``: its UTF-8 length;
    - ``torch.nn.Module``: parameters and buffers (tied parameters once);
    - ``torch.optim.Optimizer``: every tensor in its ``state`` (the parameters
      themselves belong to the model);
    - lists, tuples, sets and dict values: recursively;
    - any object defining ``memory_items()`` (a mapping or iterable of
      measurable objects, deduplicated like the rest) or ``__nbytes__()`` (an
      opaque byte count, trusted as given).

    A tensor made by ``torch.from_numpy`` of a numpy *slice* is charged for the
    slice only: torch does not expose the numpy array that owns the rest.

    Python object overhead (object headers, list and dict slots, the size of a
    Python ``int`` or ``float``) is **not** payload and is not counted: Python
    numbers count 0 bytes. Keep numeric data in arrays or tensors to have it
    charged.

    Parameters
    ----------
    obj
        The object to measure.

    Returns
    -------
    int
        Payload bytes.

    Raises
    ------
    TypeError
        If ``obj`` (or something inside it) cannot be measured.

    Examples
    --------
    >>> import torch
    >>> from continual import nbytes
    >>> w = torch.zeros(10, 10)
    >>> nbytes(w)
    400
    >>> nbytes([w, w[2:5], w.t(), w[0].expand(4, 10)])
    400
    >>> nbytes(torch.nn.Linear(3, 2))
    32
    >>> nbytes("héllo")
    6
    """
    return collect_blocks(obj).size()


def collect_blocks(obj: Any) -> Blocks:
    """Return the memory :class:`Blocks` of ``obj`` (see :func:`nbytes`)."""
    blocks = Blocks()
    _collect(obj, blocks, {})
    return blocks


def _collect(obj: Any, blocks: Blocks, seen: dict[int, Any]) -> None:
    if isinstance(obj, _SCALARS) or id(obj) in seen:
        return
    seen[id(obj)] = obj  # keeps temporaries alive so that their ids are not reused
    if hasattr(obj, "memory_items") and not isinstance(obj, type):
        _collect_items(obj.memory_items(), blocks, seen)
    elif hasattr(obj, "__nbytes__") and not isinstance(obj, type):
        device = getattr(obj, "device", None)
        name = "cpu" if device is None else device_name(device)
        blocks.add_opaque("object", obj, _checked_size(obj), name)
    elif isinstance(obj, torch.Tensor):
        _collect_tensor(obj, blocks, seen)
    elif isinstance(obj, np.ndarray):
        _collect_array(obj, blocks)
    elif isinstance(obj, torch.nn.Module):
        _collect_items(obj.parameters(), blocks, seen)
        _collect_items(obj.buffers(), blocks, seen)
    elif isinstance(obj, torch.optim.Optimizer):
        _collect_items(obj.state.values(), blocks, seen)
    elif isinstance(obj, (bytes, bytearray)):
        blocks.add_opaque("bytes", obj, len(obj))
    elif isinstance(obj, memoryview):
        blocks.add_opaque("bytes", obj, obj.nbytes)
    elif isinstance(obj, str):
        blocks.add_opaque("str", obj, len(obj.encode("utf-8")))
    elif isinstance(obj, Mapping):
        _collect_items(obj.values(), blocks, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        _collect_items(obj, blocks, seen)
    else:
        raise TypeError(
            f"cannot measure an object of type {type(obj).__name__!r}: expected a tensor, "
            "numpy array, nn.Module, optimizer, bytes, str, container of those, or an object "
            "defining memory_items() or __nbytes__()"
        )


def _collect_items(
    items: Iterable[Any] | Mapping[Any, Any], blocks: Blocks, seen: dict[int, Any]
) -> None:
    values = items.values() if isinstance(items, Mapping) else items
    for item in values:
        _collect(item, blocks, seen)


def _checked_size(obj: Any) -> int:
    size = obj.__nbytes__()
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise TypeError(
            f"{type(obj).__name__}.__nbytes__() must return a non-negative int, got {size!r}"
        )
    return int(size)


def _collect_tensor(tensor: torch.Tensor, blocks: Blocks, seen: dict[int, Any]) -> None:
    layout = tensor.layout
    if layout == torch.sparse_coo:
        _collect_items((tensor._indices(), tensor._values()), blocks, seen)
    elif layout in _COMPRESSED_INDICES:
        compressed, plain = _COMPRESSED_INDICES[layout]
        parts = (getattr(tensor, compressed)(), getattr(tensor, plain)(), tensor.values())
        _collect_items(parts, blocks, seen)
    elif tensor.is_quantized:
        _collect_storage(tensor, blocks)
        _collect_qparams(tensor, blocks, seen)
    else:
        _collect_storage(tensor, blocks)


def _collect_storage(tensor: torch.Tensor, blocks: Blocks) -> None:
    storage = tensor.untyped_storage()
    if tensor.device.type == "meta":
        # Meta tensors have no addresses; each storage object is its own block.
        owner = tensor._base if tensor._base is not None else tensor
        blocks.add_opaque("meta", owner, storage.nbytes(), "meta")
        return
    blocks.add_range(str(tensor.device), storage.data_ptr(), storage.nbytes())


def _collect_qparams(tensor: torch.Tensor, blocks: Blocks, seen: dict[int, Any]) -> None:
    if tensor.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scales = tensor.q_per_channel_scales()
        zero_points = tensor.q_per_channel_zero_points()
        size = scales.numel() * scales.element_size()
        size += zero_points.numel() * zero_points.element_size()
    else:
        size = 16  # one float64 scale and one int64 zero point
    blocks.add_opaque("qparams", tensor, size)


def _collect_array(array: np.ndarray, blocks: Blocks) -> None:
    owner = _owning_array(array)
    if owner.dtype.hasobject:
        raise TypeError(
            "cannot measure a numpy array of dtype object: its payload is Python objects; "
            "expected a numeric, bool or fixed-width string dtype"
        )
    low, high = np.lib.array_utils.byte_bounds(owner)
    blocks.add_range("cpu", low, high - low)


def _owning_array(array: np.ndarray) -> np.ndarray:
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return owner


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            if stop > merged[-1][1]:
                merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


class Live:
    """Measure whatever ``getter()`` returns at measuring time.

    Track a ``Live`` view when the object behind an account may be replaced
    (a model swapped for a grown one, a teacher copy renewed): the accountant
    then always charges the current object.

    Examples
    --------
    >>> import torch
    >>> from continual import nbytes
    >>> from continual.measure import Live
    >>> box = {"model": torch.nn.Linear(2, 2)}
    >>> view = Live(lambda: box["model"])
    >>> nbytes(view)
    24
    >>> box["model"] = torch.nn.Linear(4, 4)
    >>> nbytes(view)
    80
    """

    def __init__(self, getter: Callable[[], Any]) -> None:
        self.getter = getter

    def memory_items(self) -> dict[str, Any]:
        return {"value": self.getter()}


class Reservation:
    """Bytes reserved on ``device`` for something that does not exist yet (an optimizer's
    future state).

    Examples
    --------
    >>> from continual import nbytes
    >>> from continual.measure import Reservation
    >>> nbytes([Reservation(100), Reservation(20)])
    120
    >>> from continual.measure import collect_blocks
    >>> collect_blocks([Reservation(100, "cuda:0"), Reservation(20)]).size_by_device()
    {'cuda:0': 100, 'cpu': 20}
    """

    def __init__(self, size: int, device: str | torch.device = "cpu") -> None:
        self.size = size
        self.device = device

    def __nbytes__(self) -> int:
        return self.size
