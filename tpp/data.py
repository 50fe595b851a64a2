"""Event data as the models see it: flat arrays in, padded torch batches out.

The models accept any object with the flat layout of ``streams.EventSequences`` (attributes
``times``, ``types``, ``offsets`` and ``dim_process``) or a plain list of EasyTPP-layout dicts.
``tpp`` does not import ``streams`` (the packages are independent), so this module reads both by
their fields.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["EventArrays", "EventBatch", "as_event_arrays", "make_batch"]


@dataclass(frozen=True)
class EventArrays:
    """Flat event arrays: sequence ``i`` is ``times[offsets[i]:offsets[i + 1]]``.

    Examples
    --------
    >>> data = as_event_arrays([{"dim_process": 2, "time_since_start": [0.0, 1.0],
    ...                          "time_since_last_event": [0.0, 1.0], "type_event": [0, 1]}])
    >>> len(data), data.n_events, data.lengths.tolist()
    (1, 2, [2])
    """

    times: np.ndarray
    types: np.ndarray
    offsets: np.ndarray
    dim_process: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        """Total number of events."""
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        """Events per sequence."""
        return np.diff(self.offsets)

    def subset(self, indices: Any) -> EventArrays:
        """The sequences at ``indices`` (copies), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, lengths = self.offsets[indices], self.lengths[indices]
        flat = _ragged_positions(starts, lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return EventArrays(self.times[flat], self.types[flat], offsets, self.dim_process)

    def truncated(self, max_length: int) -> EventArrays:
        """Every sequence cut to its first ``max_length`` events."""
        lengths = np.minimum(self.lengths, max_length)
        flat = _ragged_positions(self.offsets[:-1], lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return EventArrays(self.times[flat], self.types[flat], offsets, self.dim_process)


def _ragged_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat positions ``starts[i] + arange(lengths[i])`` for every ``i``, concatenated."""
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))


def _from_dicts(rows: list[Any]) -> EventArrays:
    times, types, dims = [], [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or not {"time_since_start", "type_event"} <= set(row):
            raise TypeError(
                f"sequences[{i}] must be a dict with time_since_start, type_event and "
                f"dim_process (the EasyTPP layout), got {type(row).__name__}"
            )
        times.append(np.asarray(row["time_since_start"], dtype=np.float64))
        types.append(np.asarray(row["type_event"], dtype=np.int64))
        dims.add(int(row.get("dim_process", -1)))
    if len(dims) != 1 or -1 in dims:
        raise ValueError(f"every sequence must have the same dim_process, got {sorted(dims)}")
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in times])]).astype(np.int64)
    return EventArrays(np.concatenate(times), np.concatenate(types), offsets, dims.pop())


def as_event_arrays(sequences: Any, dim_process: int | None = None) -> EventArrays:
    """Read and check ``sequences``: the flat event container or a list of EasyTPP dicts.

    Raises ValueError for an empty input or sequence, unsorted, negative or non-finite times,
    types outside ``[0, dim_process)``, or a ``dim_process`` other than the expected one.
    """
    if all(hasattr(sequences, name) for name in ("times", "types", "offsets", "dim_process")):
        data = EventArrays(
            np.asarray(sequences.times, dtype=np.float64),
            np.asarray(sequences.types, dtype=np.int64),
            np.asarray(sequences.offsets, dtype=np.int64),
            int(sequences.dim_process),
        )
    elif isinstance(sequences, (list, tuple)):
        if not sequences:
            raise ValueError("sequences must hold at least one sequence, got an empty list")
        data = _from_dicts(list(sequences))
    else:
        raise TypeError(
            "sequences must be an EventSequences-like container (times, types, offsets, "
            f"dim_process) or a list of EasyTPP dicts, got {type(sequences).__name__}"
        )
    _check(data, dim_process)
    return data


def _check(data: EventArrays, dim_process: int | None) -> None:
    if len(data) < 1:
        raise ValueError("sequences must hold at least one sequence, got none")
    if np.any(data.lengths < 1):
        raise ValueError(
            f"every sequence must hold at least one event; empty sequences at positions "
            f"{np.flatnonzero(data.lengths < 1)[:10].tolist()}"
        )
    if dim_process is not None and data.dim_process != dim_process:
        raise ValueError(
            f"sequences have dim_process={data.dim_process}, expected {dim_process} as when "
            "the model was fitted"
        )
    if not np.all(np.isfinite(data.times)):
        raise ValueError("times must be finite, got NaN or inf")
    if np.any(data.times < 0):
        raise ValueError(f"times must be non-negative, got minimum {data.times.min()}")
    steps = np.diff(data.times)
    inside = np.ones(steps.size, dtype=bool)
    inside[data.offsets[1:-1] - 1] = False
    if np.any((steps < 0) & inside):
        raise ValueError("times must be sorted within each sequence, got a decreasing time")
    if data.types.size and (data.types.min() < 0 or data.types.max() >= data.dim_process):
        raise ValueError(
            f"types must lie in [0, dim_process={data.dim_process}), got range "
            f"[{data.types.min()}, {data.types.max()}]"
        )


@dataclass(frozen=True)
class EventBatch:
    """A padded batch: ``times`` (relative to each first event, divided by the time scale),
    ``gaps`` (0 at position 0), ``types`` (padding holds ``dim_process``) and ``mask``, all of
    shape (B, L)."""

    times: torch.Tensor
    gaps: torch.Tensor
    types: torch.Tensor
    mask: torch.Tensor

    @property
    def n_events(self) -> int:
        """Events that are scored: all but each sequence's first."""
        return int(self.mask[:, 1:].sum())


def make_batch(data: EventArrays, indices: Any, time_scale: float = 1.0) -> EventBatch:
    """Pad the sequences at ``indices`` into an :class:`EventBatch` (vectorised, no loop).

    Examples
    --------
    >>> data = EventArrays(np.array([5.0, 6.0, 8.0, 1.0]), np.array([0, 1, 0, 1]),
    ...                    np.array([0, 3, 4]), 2)
    >>> batch = make_batch(data, [0, 1])
    >>> batch.times.tolist(), batch.types.tolist()
    ([[0.0, 1.0, 3.0], [0.0, 0.0, 0.0]], [[0, 1, 0], [1, 2, 2]])
    """
    if isinstance(time_scale, bool) or not isinstance(time_scale, numbers.Real) or time_scale <= 0:
        raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")
    indices = np.asarray(indices, dtype=np.int64)
    starts, lengths = data.offsets[indices], data.lengths[indices]
    width = int(lengths.max())
    column = np.arange(width)
    mask = column[None, :] < lengths[:, None]
    flat = np.where(mask, starts[:, None] + column[None, :], 0)
    times = np.where(mask, data.times[flat] - data.times[starts][:, None], 0.0) / time_scale
    times = np.maximum.accumulate(times, axis=1)  # padding repeats the last time
    gaps = np.diff(times, axis=1, prepend=0.0)
    types = np.where(mask, data.types[flat], data.dim_process)
    return EventBatch(
        torch.as_tensor(times, dtype=torch.float32),
        torch.as_tensor(gaps, dtype=torch.float32),
        torch.as_tensor(types, dtype=torch.long),
        torch.as_tensor(mask),
    )
