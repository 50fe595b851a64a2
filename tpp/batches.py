"""Event sequences as the models see them: padded torch batches, built without a Python loop.

The models read :class:`~streams.events.EventSequences` (absolute times, compact types, offsets)
through :func:`make_batch`. :func:`event_batches` is the ``batches`` of the
:class:`~continual.Learner` (shuffled training mini-batches); :func:`ordered_batches` walks a
payload in order (scoring, the EWC Fisher).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from continual.distributed import local_rows
from streams.events import EventSequences

__all__ = ["EventBatch", "event_batches", "make_batch", "ordered_batches"]


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


def make_batch(data: EventSequences, indices: Any, time_scale: float = 1.0) -> EventBatch:
    """Pad the sequences at ``indices`` into an :class:`EventBatch` (vectorised, no loop).

    Examples
    --------
    >>> from streams import EventSequences
    >>> data = EventSequences.from_lists([[5.0, 6.0, 8.0], [1.0]], [[0, 1, 0], [1]], 2)
    >>> batch = make_batch(data, [0, 1])
    >>> batch.times.tolist(), batch.types.tolist(), batch.n_events
    ([[0.0, 1.0, 3.0], [0.0, 0.0, 0.0]], [[0, 1, 0], [1, 2, 2]], 2)
    """
    if isinstance(time_scale, bool) or not isinstance(time_scale, numbers.Real) or time_scale <= 0:
        raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        raise ValueError("indices must select at least one sequence, got none")
    lengths = np.diff(data.offsets)
    starts, lengths = data.offsets[indices], lengths[indices]
    width = int(lengths.max())
    column = np.arange(width)
    mask = column[None, :] < lengths[:, None]
    flat = np.where(mask, starts[:, None] + column[None, :], 0)
    times = np.where(mask, data.times[flat] - data.times[starts][:, None], 0.0) / time_scale
    times = np.maximum.accumulate(times, axis=1)  # padding repeats the last time
    gaps = np.diff(times, axis=1, prepend=0.0)
    types = np.where(mask, data.types[flat].astype(np.int64), data.dim_process)
    return EventBatch(
        torch.as_tensor(times, dtype=torch.float32),
        torch.as_tensor(gaps, dtype=torch.float32),
        torch.as_tensor(types, dtype=torch.long),
        torch.as_tensor(mask),
    )


def event_batches(
    data: EventSequences,
    batch_size: int,
    generator: torch.Generator,
    *,
    time_scale: float = 1.0,
) -> Iterator[tuple[EventBatch, int]]:
    """Shuffled training mini-batches ``(batch, n_scored_events)`` of ``data``.

    The ``batches`` of a :class:`~continual.Learner` (bind ``time_scale`` with
    ``functools.partial``). Batches without a scored event (sequences of one event) are
    skipped; a payload with no sequence yields nothing. Under data-parallel training
    ``batch_size`` is the global batch, and each rank builds only its sequences of it
    (:func:`continual.distributed.local_rows`).

    Examples
    --------
    >>> import torch
    >>> from streams import EventSequences
    >>> data = EventSequences.from_lists([[0.0, 1.0], [2.0], [0.0, 1.0, 3.0]],
    ...                                  [[0, 1], [1], [0, 1, 1]], 2)
    >>> batches = event_batches(data, 1, torch.Generator().manual_seed(0))
    >>> sorted(n for _, n in batches)
    [1, 2]
    """
    for index in torch.randperm(len(data), generator=generator).split(batch_size):
        index = local_rows(index)  # under data-parallel training, this rank's sequences
        if len(index) == 0:
            continue
        batch = make_batch(data, index.numpy(), time_scale)
        if batch.n_events:
            yield batch, batch.n_events


def ordered_batches(
    data: EventSequences, batch_size: int, *, time_scale: float = 1.0
) -> Iterator[EventBatch]:
    """The batches of ``data`` in order, skipping those without a scored event.

    Examples
    --------
    >>> from streams import EventSequences
    >>> data = EventSequences.from_lists([[0.0, 1.0], [2.0], [0.0, 1.0, 3.0]],
    ...                                  [[0, 1], [1], [0, 1, 1]], 2)
    >>> [batch.n_events for batch in ordered_batches(data, 2)]
    [1, 2]
    """
    for start in range(0, len(data), batch_size):
        batch = make_batch(data, np.arange(start, min(start + batch_size, len(data))), time_scale)
        if batch.n_events:
            yield batch
