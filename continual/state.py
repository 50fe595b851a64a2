"""State of fitted objects as nested values: tensors and arrays by reference, the rest as JSON.

Every stateful part of an estimator (a learner, a plugin, a store, a mapper) says what it holds
with ``state_dict()`` and takes it back with ``load_state_dict(state)``, as torch modules and
optimizers do. A state is a nested structure of dicts, lists and tuples whose leaves are
tensors, numpy arrays, or JSON values (None, bools, numbers, strings). :func:`flatten` splits
such a structure into its tensors, keyed by path, and a JSON skeleton that names them;
:func:`unflatten` is the inverse. Checkpoints (:mod:`continual.checkpoint`) write the two
halves to one safetensors file, and rollback backups (:mod:`continual.rollback`) keep them in
memory or in a temporary file.

States hold *references*: taking one copies nothing. Tensors that are never modified in place
(stored exemplars, a frozen teacher, a replaced graph) can be declared with :func:`read_only`,
so that a backup keeps them by reference instead of copying them.
"""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "flatten",
    "is_read_only",
    "load_rng_state",
    "pack",
    "read_only",
    "rng_state",
    "unflatten",
]

# Tensors declared never to be modified in place: id -> (weak reference, version counter at
# declaration). Keyed by id because tensors compare element-wise; the weak reference drops the
# entry when the tensor dies, so a reused id is never mistaken for it.
_READ_ONLY: dict[int, tuple[weakref.ref[torch.Tensor], int]] = {}

_SPARSE_PARTS = {
    torch.sparse_csr: ("crow_indices", "col_indices", "values"),
    torch.sparse_csc: ("ccol_indices", "row_indices", "values"),
    torch.sparse_coo: ("indices", "values"),
}
_SPARSE_BUILDERS = {
    "sparse_csr": torch.sparse_csr_tensor,
    "sparse_csc": torch.sparse_csc_tensor,
    "sparse_coo": torch.sparse_coo_tensor,
}


def read_only(value: Any) -> Any:
    """Declare that ``value`` will never be modified in place, and return it.

    A numpy array is made non-writeable. A tensor is recorded with its version counter
    (torch increments it at every in-place operation), so that a rollback that kept it by
    reference can verify it was not changed. Lists and tuples are marked element by element.

    Examples
    --------
    >>> import torch
    >>> from continual.state import is_read_only, read_only
    >>> x = read_only(torch.zeros(3))
    >>> is_read_only(x), is_read_only(torch.zeros(3))
    (True, False)
    >>> x.add_(1) is x, is_read_only(x)  # changed in place: no longer read-only
    (True, False)
    """
    if isinstance(value, torch.Tensor):
        key = id(value)
        _READ_ONLY[key] = (weakref.ref(value, lambda _: _READ_ONLY.pop(key, None)), value._version)
    elif isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, (list, tuple)):
        for item in value:
            read_only(item)
    return value


def is_read_only(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` was declared :func:`read_only` and not modified in place since."""
    entry = _READ_ONLY.get(id(tensor))
    return entry is not None and entry[0]() is tensor and entry[1] == tensor._version


def rng_state(rng: torch.Generator | np.random.Generator) -> Any:
    """The state of a torch or numpy generator: a uint8 tensor, or a JSON-ready dict.

    Examples
    --------
    >>> import numpy as np
    >>> from continual.state import load_rng_state, rng_state
    >>> rng = np.random.default_rng(0)
    >>> state = rng_state(rng)
    >>> first = rng.random()
    >>> load_rng_state(rng, state)
    >>> rng.random() == first
    True
    """
    if isinstance(rng, torch.Generator):
        return rng.get_state()
    if isinstance(rng, np.random.Generator):
        return _json_ints(rng.bit_generator.state)
    raise TypeError(f"rng must be a torch.Generator or numpy Generator, got {type(rng).__name__}")


def load_rng_state(rng: torch.Generator | np.random.Generator, state: Any) -> None:
    """Put back a state returned by :func:`rng_state`."""
    if isinstance(rng, torch.Generator):
        rng.set_state(torch.as_tensor(state, dtype=torch.uint8).clone())
    elif isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        raise TypeError(
            f"rng must be a torch.Generator or numpy Generator, got {type(rng).__name__}"
        )


def _json_ints(value: Any) -> Any:
    """numpy integers inside a bit generator's state as Python ints."""
    if isinstance(value, dict):
        return {key: _json_ints(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def flatten(state: Any) -> tuple[dict[str, Any], Any]:
    """Split a nested state into ``(leaves, skeleton)``.

    ``leaves`` maps a path such as ``"learner/model/weight"`` to each tensor or numpy array;
    ``skeleton`` is JSON-ready and refers to them by path. Tuples, dicts with non-string keys,
    sparse tensors and arrays are tagged in the skeleton so that :func:`unflatten` gives back
    the same types. Leaves are the objects themselves (parameters stay parameters); use
    :func:`pack` to turn them into tensors for a file.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from continual.state import flatten, unflatten
    >>> state = {"weights": torch.ones(2), "seen": np.arange(3), "step": 4, "shape": (2, 3),
    ...          "by_id": {0: "a"}}
    >>> leaves, skeleton = flatten(state)
    >>> sorted(leaves), skeleton["weights"], skeleton["shape"]
    (['seen', 'weights'], {'$tensor': 'weights'}, {'$tuple': [2, 3]})
    >>> back = unflatten(leaves, skeleton)
    >>> back["by_id"], back["shape"], back["seen"].dtype == np.int64
    ({0: 'a'}, (2, 3), True)
    """
    leaves: dict[str, Any] = {}
    skeleton = _flatten(state, "", leaves)
    return leaves, skeleton


def _flatten(value: Any, path: str, leaves: dict[str, Any]) -> Any:
    if isinstance(value, torch.Tensor):
        return _flatten_tensor(value, path, leaves)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OU":
            if not all(isinstance(item, str) for item in value.ravel().tolist()):
                raise TypeError(f"state at {path!r}: numpy arrays of objects cannot be saved")
            return {"$strings": value.tolist(), "dtype": value.dtype.str}
        leaves[path] = value
        return {"$ndarray": path}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, tuple):
        return {"$tuple": [_flatten(v, f"{path}/{i}", leaves) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_flatten(v, f"{path}/{i}", leaves) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return _flatten_mapping(value, path, leaves)
    raise TypeError(
        f"state at {path or 'the root'!r} holds a {type(value).__name__}; a state holds "
        "tensors, numpy arrays, None, bools, numbers, strings, lists, tuples and dicts"
    )


def _flatten_tensor(tensor: torch.Tensor, path: str, leaves: dict[str, Any]) -> Any:
    if tensor.layout in _SPARSE_PARTS:
        leaves[path] = tensor
        layout = str(tensor.layout).removeprefix("torch.")
        return {"$sparse": path, "layout": layout, "size": list(tensor.shape)}
    if tensor.layout != torch.strided:
        raise TypeError(f"state at {path!r}: tensors of layout {tensor.layout} cannot be saved")
    leaves[path] = tensor
    return {"$tensor": path}


def pack(leaves: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The leaves of :func:`flatten` as dense CPU tensors, ready for a safetensors file.

    numpy arrays become tensors; a sparse tensor at ``path`` becomes its index and value
    tensors at ``path::<part>`` (``crow_indices``, ``col_indices``, ``values`` for CSR).
    Every tensor is contiguous, on the CPU, and shares memory with no other. A CPU tensor that
    already is (it fills its own storage) is passed as it is, so that writing a file does not
    double the memory; anything else is copied.
    """
    packed: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for path, leaf in leaves.items():
        if isinstance(leaf, np.ndarray):
            packed[path] = torch.from_numpy(np.array(leaf, copy=True))
        elif leaf.layout in _SPARSE_PARTS:
            sparse = leaf.detach().coalesce() if leaf.layout == torch.sparse_coo else leaf.detach()
            for name in _SPARSE_PARTS[leaf.layout]:
                packed[f"{path}::{name}"] = getattr(sparse, name)().to("cpu", copy=True)
        else:
            packed[path] = _own_cpu_tensor(leaf.detach(), storages)
    return packed


def _own_cpu_tensor(tensor: torch.Tensor, storages: set[int]) -> torch.Tensor:
    """``tensor`` itself when it is a contiguous CPU tensor filling a storage not seen yet."""
    storage = tensor.untyped_storage()
    whole = tensor.numel() * tensor.element_size() == storage.nbytes()
    fresh = storage.data_ptr() not in storages
    if tensor.device.type == "cpu" and tensor.is_contiguous() and whole and fresh:
        if storage.nbytes():
            storages.add(storage.data_ptr())
        return tensor
    return tensor.to("cpu", copy=True).contiguous()


def _flatten_mapping(mapping: Mapping[Any, Any], path: str, leaves: dict[str, Any]) -> Any:
    plain = all(isinstance(key, str) and not key.startswith("$") for key in mapping)
    if plain:
        return {key: _flatten(value, f"{path}/{key}" if path else key, leaves)
                for key, value in mapping.items()}  # fmt: skip
    items = []
    for position, (key, value) in enumerate(mapping.items()):
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise TypeError(f"state at {path!r}: dict keys must be str or numbers, got {key!r}")
        items.append([key, _flatten(value, f"{path}/{position}", leaves)])
    return {"$items": items}


def unflatten(leaves: Mapping[str, Any], skeleton: Any) -> Any:
    """Rebuild the state that :func:`flatten` split, from its leaves or their :func:`pack`.

    Arrays come back as numpy arrays and sparse tensors are reassembled from their parts.
    """
    if isinstance(skeleton, list):
        return [unflatten(leaves, item) for item in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if len(skeleton) == 1:
        ((tag, body),) = skeleton.items()
        if tag == "$tensor":
            return _leaf(leaves, body, torch.Tensor)
        if tag == "$ndarray":
            leaf = _leaf(leaves, body, (np.ndarray, torch.Tensor))
            return leaf.numpy() if isinstance(leaf, torch.Tensor) else leaf
        if tag == "$tuple":
            return tuple(unflatten(leaves, item) for item in body)
        if tag == "$items":
            return {key: unflatten(leaves, value) for key, value in body}
    if set(skeleton) == {"$sparse", "layout", "size"}:
        return _sparse(leaves, skeleton)
    if set(skeleton) == {"$strings", "dtype"}:
        return np.array(skeleton["$strings"], dtype=np.dtype(skeleton["dtype"]))
    return {key: unflatten(leaves, value) for key, value in skeleton.items()}


def _sparse(leaves: Mapping[str, Any], skeleton: dict[str, Any]) -> torch.Tensor:
    path, layout = skeleton["$sparse"], skeleton["layout"]
    if path in leaves:
        return _leaf(leaves, path, torch.Tensor)
    if layout not in _SPARSE_BUILDERS:
        raise ValueError(f"the state's entry {path!r} has an unknown sparse layout {layout!r}")
    layout_type = getattr(torch, layout)
    parts = [_leaf(leaves, f"{path}::{name}", torch.Tensor) for name in _SPARSE_PARTS[layout_type]]
    # the parts may come from a file: check the indices before torch uses them
    return _SPARSE_BUILDERS[layout](*parts, size=skeleton["size"], check_invariants=True)


def _leaf(leaves: Mapping[str, Any], path: Any, kind: Any) -> Any:
    if not isinstance(path, str) or path not in leaves:
        raise ValueError(f"the state names a tensor {path!r} that is missing")
    leaf = leaves[path]
    if not isinstance(leaf, kind):
        raise ValueError(f"the state's entry {path!r} is a {type(leaf).__name__}")
    return leaf
