"""Exact payload bytes of Python objects, deduplicated by the memory they occupy.

The single entry point is :func:`nbytes`. Under the hood every object is broken
into *blocks*: address ranges of tensor storages and numpy buffers (so that two
views of one buffer, or a tensor made with ``torch.from_numpy``, are counted
once), plus opaque blocks for objects that only report a byte count.
:class:`~continual.accountant.MemoryAccountant` uses the same blocks to
deduplicate across accounts.

Two measures
------------
*Payload* (the default) counts the numbers a learner stores: tensor storages,
array buffers, bytes and strings. Python object overhead is not payload: a list
of tensors costs its tensors, a Python ``float`` costs 0 bytes, and an object
that is none of the measurable kinds raises ``TypeError``.

*Python graph* is the opt-in for models whose Python objects *are* the payload
(river's trees, windows and statistics keep their state in dicts, floats and
small objects). Wrap the object, ``nbytes(PythonGraph(model))`` or
``accountant.track("model", PythonGraph(model))``, and every object reachable
from it is charged ``sys.getsizeof`` once (by identity), walking:

- ``dict`` and its subclasses (``OrderedDict``, ``defaultdict`` with its
  ``default_factory``, ``Counter``): keys and values;
- ``list``, ``tuple``, ``set``, ``frozenset`` and ``collections.deque``: items;
- an instance's ``__dict__`` (the dict object itself, so its size counts) and
  the values of every ``__slots__`` of its classes;
- a bound method's ``__self__``; a ``functools.partial``'s function, arguments and
  keywords; river's ``VectorDict``: the dict it wraps (it does not show it to the
  garbage collector);
- any other object with neither ``__dict__`` nor ``__slots__`` (a C or Rust
  extension object): what the garbage collector sees it hold
  (``gc.get_referents``);
- tensors and numpy arrays: their Python header (``sys.getsizeof``, without the
  buffer) plus their storage as in the payload measure, deduplicated by address;
  an array of dtype object also walks its elements;
- an object defining ``memory_items()`` is charged the items it declares (walked
  like the rest; its own bookkeeping is left out), and one defining
  ``__nbytes__()`` the count it reports, as in the payload measure.

Shared immutable objects are not charged, because the model does not own them:
``None``, ``True``, ``False``, ``Ellipsis`` and ``NotImplemented``; the ints
from -5 to 256 that CPython caches; interned strings (attribute names, dict
keys that are identifiers in the source), the empty string and one-character
Latin-1 strings, ``b""`` and one-byte ``bytes``, and the empty tuple; classes,
modules, functions, builtins, code objects, descriptors and dtypes. Memory an
extension object keeps on its own heap, outside Python objects (the state of a
Rust-backed river statistic), is not visible to ``sys.getsizeof`` and is not
counted.

CPython 3.11 and later keep an instance's attributes inline until its
``__dict__`` is first asked for (and an instance of a dict or list subclass
has no ``__dict__`` until then); the walk asks for it, so the first measure
of a fresh object materialises that dict (a few dozen bytes more than
before), and later measures are stable.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import gc
import struct
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from continual.devices import device_name

__all__ = [
    "Blocks",
    "Live",
    "PythonGraph",
    "Reservation",
    "collect_blocks",
    "nbytes",
    "python_objects",
]

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
    charged, or wrap a model whose Python objects are its payload (a river
    tree) in :class:`PythonGraph` to charge every object it holds.

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

    Python numbers are overhead, unless the Python objects are declared the payload:

    >>> import sys
    >>> from continual.measure import PythonGraph
    >>> nbytes([1.5, 2.5])
    0
    >>> nbytes(PythonGraph([1.5, 2.5])) == sys.getsizeof([1.5, 2.5]) + 2 * sys.getsizeof(1.5)
    True
    """
    return collect_blocks(obj).size()


def collect_blocks(obj: Any) -> Blocks:
    """Return the memory :class:`Blocks` of ``obj`` (see :func:`nbytes`)."""
    blocks = Blocks()
    _collect(obj, blocks, {})
    return blocks


def _collect(obj: Any, blocks: Blocks, seen: dict[Any, Any]) -> None:
    if isinstance(obj, _SCALARS) or id(obj) in seen:
        return
    seen[id(obj)] = obj  # keeps temporaries alive so that their ids are not reused
    if isinstance(obj, PythonGraph):
        _collect_graph(obj.obj, blocks, seen)
    elif hasattr(obj, "memory_items") and not isinstance(obj, type):
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
            "defining memory_items() or __nbytes__(); wrap it in continual.PythonGraph to charge "
            "every Python object it holds (a river model)"
        )


def _collect_items(
    items: Iterable[Any] | Mapping[Any, Any], blocks: Blocks, seen: dict[Any, Any]
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


def _collect_tensor(tensor: torch.Tensor, blocks: Blocks, seen: dict[Any, Any]) -> None:
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


def _collect_qparams(tensor: torch.Tensor, blocks: Blocks, seen: dict[Any, Any]) -> None:
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
            "expected a numeric, bool or fixed-width string dtype, or wrap it in "
            "continual.PythonGraph to charge its objects"
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


class PythonGraph:
    """Measure ``obj`` as a graph of Python objects: every object it reaches, once.

    Use it for a model whose Python objects are its payload, such as a river
    estimator: ``nbytes(PythonGraph(model))`` or
    ``accountant.track("model", PythonGraph(model))``. What is walked and which
    shared objects are left out is listed in the :mod:`continual.measure`
    docstring. Tensors and arrays inside are charged their Python header plus
    their storage, deduplicated by address with the rest of the measure.

    Parameters
    ----------
    obj
        The root of the graph.

    Examples
    --------
    >>> import sys
    >>> from continual import nbytes
    >>> from continual.measure import PythonGraph
    >>> point = {"x": 0.5, "y": 1234.5}
    >>> nbytes(point)  # payload: Python numbers are overhead
    0
    >>> nbytes(PythonGraph(point)) == sys.getsizeof(point) + 2 * sys.getsizeof(0.5)
    True
    >>> nbytes(PythonGraph([point, point])) - nbytes(PythonGraph(point)) == sys.getsizeof([0, 0])
    True
    """

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __repr__(self) -> str:
        return f"PythonGraph({type(self.obj).__name__})"


_SHARED_TYPES = (
    type(None),
    bool,
    type(Ellipsis),
    type(NotImplemented),
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    np.dtype,
    torch.dtype,
)
_SEQUENCES = (list, tuple, set, frozenset, collections.deque)
_CONTAINERS = (dict, *_SEQUENCES)


def _interned_reader() -> Callable[[str], bool] | None:
    """A reader of CPython's ``interned`` flag of a str, or None where it cannot be read.

    The flag is the low two bits of the string's ``state`` field, which follows the object
    header, the length and the hash. The reader is trusted only after it tells a string
    made at run time from its interned twin.
    """
    if sys.implementation.name != "cpython":
        return None
    offset = object.__basicsize__ + 2 * struct.calcsize("n")

    def interned(text: str) -> bool:
        return ctypes.c_uint32.from_address(id(text) + offset).value & 0b11 != 0

    fresh = "".join(("continual", "-measure-interning-probe"))
    if interned(fresh) or not interned(sys.intern(fresh)):
        return None
    return interned


_is_interned = _interned_reader()


def _is_shared(obj: Any) -> bool:
    """Whether ``obj`` is a shared immutable object that no model owns (see the module
    docstring)."""
    kind = type(obj)
    if kind is int:
        return -5 <= obj <= 256
    if kind is str:
        if len(obj) <= 1:
            return not obj or ord(obj) < 256
        return _is_interned is not None and _is_interned(obj)
    if kind is bytes:
        return len(obj) <= 1
    if kind is tuple:
        return not obj
    return isinstance(obj, _SHARED_TYPES)


def python_objects(obj: Any) -> Iterator[Any]:
    """Yield every object of the Python graph of ``obj``, each once, in walk order.

    These are the objects that :class:`PythonGraph` charges (the rules are in the
    :mod:`continual.measure` docstring): shared immutable objects are left out, tensors
    and arrays are yielded but not entered (an array of dtype object is), and an object
    declaring ``memory_items()`` is entered through its items only. Use it to find the parts of a
    model that hold its memory (the leaves of a tree, the window of a nearest-neighbour
    search).

    Parameters
    ----------
    obj
        The root of the graph.

    Examples
    --------
    >>> from continual.measure import python_objects
    >>> class Leaf:
    ...     def __init__(self, counts):
    ...         self.counts = counts
    >>> tree = [Leaf({"a": 1000}), Leaf({"b": 2000})]
    >>> [type(o).__name__ for o in python_objects(tree)].count("Leaf")
    2
    >>> any(o is None or o == "a" for o in python_objects(tree))  # shared: None, interned "a"
    False
    """
    visited: dict[int, Any] = {}
    yield from _walk_graph(obj, visited)


def _walk_graph(root: Any, visited: dict[int, Any]) -> Iterator[Any]:
    """The walk behind :func:`python_objects`; ``visited`` keeps every object met alive
    (so that no id is reused while walking) and is shared by the graphs of one measure."""
    slots: dict[type, tuple[types.MemberDescriptorType, ...]] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in visited or _is_shared(obj):
            continue
        visited[id(obj)] = obj
        kind = type(obj)
        if kind is dict:
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif kind is list or kind is tuple:
            stack.extend(obj)
        elif kind not in _ATOMS:
            if kind not in slots:
                slots[kind] = _slot_members(kind)
            stack.extend(_held_objects(obj, slots[kind]))
        yield obj


def _held_objects(obj: Any, slots: tuple[types.MemberDescriptorType, ...]) -> list[Any]:
    """What the walk enters from an object that is not an atom, a dict, a list or a tuple."""
    if isinstance(obj, PythonGraph):
        return [obj.obj]
    if _declares(obj, "memory_items"):
        items = obj.memory_items()
        return list(items.values() if isinstance(items, Mapping) else items)
    if _declares(obj, "__nbytes__") or isinstance(obj, torch.Tensor):
        return []
    if isinstance(obj, np.ndarray):
        owner = _owning_array(obj)
        return list(owner.flat) if owner.dtype.hasobject else []
    held = [*_python_children(obj), *_attributes(obj, slots)]
    if not held and not isinstance(obj, _CONTAINERS):
        # A C or Rust object: what it holds is what the garbage collector sees.
        return gc.get_referents(obj)
    return held


def _declares(obj: Any, method: str) -> bool:
    return hasattr(obj, method) and not isinstance(obj, type)


def _collect_graph(root: Any, blocks: Blocks, seen: dict[Any, Any]) -> None:
    """Charge every object of the Python graph of ``root`` once (see :class:`PythonGraph`)."""
    for obj in _walk_graph(root, seen.setdefault(_GRAPH, {})):
        kind = type(obj)
        if kind in _ATOMS or kind is dict or kind is list or kind is tuple:
            _charge_header(blocks, obj)
        elif isinstance(obj, PythonGraph) or _declares(obj, "memory_items"):
            continue
        elif _declares(obj, "__nbytes__"):
            _collect(obj, blocks, seen)
        elif isinstance(obj, torch.Tensor):
            _charge_header(blocks, obj)
            _collect_tensor(obj, blocks, seen)
        elif isinstance(obj, np.ndarray):
            _collect_graph_array(obj, blocks)
        else:
            _charge_header(blocks, obj)


_GRAPH = "python graph"  # the key of the graph's objects in ``seen`` (other keys are ints)
_ATOMS = frozenset({int, float, complex, str, bytes})


def _charge_header(blocks: Blocks, obj: Any, size: int | None = None) -> None:
    key = ("python", id(obj))
    blocks.opaque[key] = sys.getsizeof(obj) if size is None else size
    blocks.owners.append(obj)


def _collect_graph_array(array: np.ndarray, blocks: Blocks) -> None:
    """Charge an array's Python header and, once by address, its owner's buffer (object
    arrays too: their elements are walked as part of the graph)."""
    owned = array.nbytes if array.flags.owndata else 0
    _charge_header(blocks, array, sys.getsizeof(array) - owned)
    owner = _owning_array(array)
    low, high = np.lib.array_utils.byte_bounds(owner)
    blocks.add_range("cpu", low, high - low)


def _python_children(obj: Any) -> Iterator[Any]:
    """The items of a container (keys and values of a dict), and what a bound method, a
    ``functools.partial`` or a river ``VectorDict`` holds."""
    if isinstance(obj, dict):
        yield from dict.keys(obj)
        yield from dict.values(obj)
        if isinstance(obj, collections.defaultdict):
            yield obj.default_factory
    elif isinstance(obj, _SEQUENCES):
        yield from obj
    elif isinstance(obj, types.MethodType):
        yield obj.__self__
    elif isinstance(obj, functools.partial):
        yield from (obj.func, obj.args, obj.keywords)
    elif _is_vector_dict(obj):
        yield from gc.get_referents(obj.items())  # the dict a VectorDict wraps


def _is_vector_dict(obj: Any) -> bool:
    kind = type(obj)
    return kind.__name__ == "VectorDict" and kind.__module__.startswith("river")


def _slot_members(kind: type) -> tuple[types.MemberDescriptorType, ...]:
    """The slot descriptors declared by ``kind`` and its bases."""
    return tuple(
        member
        for cls in kind.__mro__
        if "__slots__" in cls.__dict__
        for member in cls.__dict__.values()
        if isinstance(member, types.MemberDescriptorType)
    )


def _attributes(obj: Any, slots: tuple[types.MemberDescriptorType, ...]) -> Iterator[Any]:
    """An object's ``__dict__`` (the dict itself) and the values of its ``__slots__``."""
    try:
        attributes = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        attributes = None
    if isinstance(attributes, dict):
        yield attributes
    for member in slots:
        try:
            yield member.__get__(obj, type(obj))
        except AttributeError:  # an empty slot
            continue


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
