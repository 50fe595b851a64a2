"""Rollback backups: what a ``partial_fit`` call needs to undo itself, and nothing more.

A :class:`Backup` holds an estimator's state as it was before a call (see
:mod:`continual.state`). Only what the call can change in place is copied: trainable
parameters, buffers, optimizer moments and other writable tensors. Frozen parameters
(``requires_grad=False``), tensors declared :func:`~continual.state.read_only` and non-writeable
numpy arrays are kept by reference; the backup checks, when it is restored, that none of them
was modified in place. Copies always live on the CPU: in memory (``mode="memory"``) or in a
temporary safetensors file (``mode="disk"``).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from continual.measure import nbytes
from continual.state import flatten, is_read_only, pack, unflatten

__all__ = ["ROLLBACK_MODES", "Backup"]

ROLLBACK_MODES = ("memory", "disk", "off")


class Backup:
    """A state taken before a call, to restore if the call fails.

    Parameters
    ----------
    state
        The nested state (see :mod:`continual.state`); it is not modified.
    mode
        ``"memory"`` keeps the copies on the CPU, ``"disk"`` in a temporary file that
        :meth:`release` deletes.

    Attributes
    ----------
    nbytes : int
        Bytes copied into memory (0 with ``mode="disk"``).
    disk_bytes : int
        Bytes written to the temporary file.

    Examples
    --------
    >>> import torch
    >>> from continual.rollback import Backup
    >>> from continual.state import read_only
    >>> weights, store = torch.nn.Parameter(torch.zeros(4)), read_only(torch.ones(100))
    >>> backup = Backup({"weights": weights, "store": store})
    >>> backup.nbytes  # the weights are copied, the read-only store is kept by reference
    16
    >>> with torch.no_grad():
    ...     _ = weights.add_(1.0)
    >>> restored = backup.state()
    >>> restored["weights"].tolist(), restored["store"] is store
    ([0.0, 0.0, 0.0, 0.0], True)
    """

    def __init__(self, state: Any, mode: str = "memory") -> None:
        if mode not in ("memory", "disk"):
            raise ValueError(f"mode must be 'memory' or 'disk', got {mode!r}")
        leaves, self._skeleton = flatten(state)
        self._kept: dict[str, Any] = {}
        self._versions: dict[str, int] = {}
        changing: dict[str, Any] = {}
        for path, leaf in leaves.items():
            if _kept_by_reference(leaf):
                self._kept[path] = leaf
                if isinstance(leaf, torch.Tensor):
                    self._versions[path] = leaf._version
            else:
                changing[path] = leaf
        self.mode = mode
        self.nbytes = 0
        self.disk_bytes = 0
        self._copies: dict[str, Any] = {}
        self._path: str | None = None
        if mode == "memory":
            self._copies = {path: _cpu_copy(leaf) for path, leaf in changing.items()}
            self.nbytes = nbytes(list(self._copies.values()))
        else:
            handle, self._path = tempfile.mkstemp(
                prefix="continual-rollback-", suffix=".safetensors"
            )
            os.close(handle)
            save_file(pack(changing), self._path)
            self.disk_bytes = os.path.getsize(self._path)

    def state(self) -> Any:
        """The state as it was when the backup was taken.

        Raises
        ------
        RuntimeError
            If a tensor kept by reference was modified in place since.
        """
        changed = [path for path, v in self._versions.items() if self._kept[path]._version != v]
        if changed:
            raise RuntimeError(
                f"cannot roll back: tensors kept by reference were modified in place: {changed}; "
                "a tensor declared read_only() must be replaced, never modified"
            )
        copies = self._copies if self._path is None else load_file(self._path)
        return unflatten({**self._kept, **copies}, self._skeleton)

    def release(self) -> None:
        """Drop the copies and delete the temporary file, if any."""
        self._copies = {}
        self._kept = {}
        if self._path is not None:
            os.unlink(self._path)
            self._path = None


def _kept_by_reference(leaf: Any) -> bool:
    if isinstance(leaf, np.ndarray):
        return not leaf.flags.writeable
    if isinstance(leaf, torch.nn.Parameter) and not leaf.requires_grad:
        return True
    return is_read_only(leaf)


def _cpu_copy(leaf: Any) -> Any:
    if isinstance(leaf, np.ndarray):
        return np.array(leaf, copy=True)
    return leaf.detach().to("cpu", copy=True)
