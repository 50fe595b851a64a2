"""Calendar-window streams: cut an absolute clock into windows, one experience each."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from continual.validation import COUNT, POSITIVE_FLOAT, Interval, check_params
from streams.events import EventSequences
from streams.experience import Experience, Stream

__all__ = ["calendar_windows"]


#: The constraints of the numeric arguments (:mod:`continual.validation`).
_CONSTRAINTS: dict[str, Any] = {
    "n_windows": [COUNT],
    "width": [POSITIVE_FLOAT],
    "stride": [POSITIVE_FLOAT, None],
    "start": [Interval(Real, None, None, closed="neither"), None],  # finite
    "min_events": [COUNT],
}


def _window(sequences: EventSequences, low: float, high: float, min_events: int) -> tuple:
    """Each sequence's events in ``[low, high)``, kept when it has ``>= min_events`` of them."""
    inside = (sequences.times >= low) & (sequences.times < high)
    counts = np.add.reduceat(inside.astype(np.int64), sequences.offsets[:-1])
    keep = np.flatnonzero(counts >= min_events)
    if keep.size == 0:
        return None, keep
    chosen = sequences.subset(keep)
    mask = (chosen.times >= low) & (chosen.times < high)
    lengths = np.add.reduceat(mask.astype(np.int64), chosen.offsets[:-1])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return EventSequences(chosen.times[mask], chosen.types[mask], offsets, chosen.dim_process), keep


def calendar_windows(
    sequences: EventSequences,
    n_windows: int,
    width: float,
    *,
    stride: float | None = None,
    start: float | None = None,
    min_events: int = 3,
    split: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 0,
    name: str = "calendar_windows",
) -> Stream:
    """Cut the absolute clock into ``n_windows`` windows; each becomes one experience.

    Window ``i`` covers ``[start + i * stride, start + i * stride + width)``. It holds every
    sequence's events inside it, keeping the sequences with at least ``min_events`` of them,
    split 70/10/20 (``split``) by sequence into ``train``, ``metadata["dev"]`` and ``test``
    (all :class:`~streams.events.EventSequences`). ``metadata`` also holds the window bounds
    and the indices of the kept source sequences (``"sequences"``).

    Parameters
    ----------
    sequences
        Sequences on a shared absolute clock.
    n_windows
        Number of windows ``T``, an int >= 1.
    width
        Window width, in the units of the times: a finite float > 0.
    stride
        Distance between window starts (a finite float > 0); ``width`` (contiguous windows)
        when None.
    start
        Start of the first window (finite); the earliest event time when None.
    min_events
        Minimum number of events (an int >= 1) of a sequence inside a window for it to be
        kept.
    split
        Fractions of each window's sequences for train, dev and test.
    seed
        Seed of the random split.
    name
        Name of the stream.

    Raises
    ------
    ValueError
        For bad arguments (naming the argument and the value), or a window with fewer than 3
        kept sequences (cannot be split).

    Examples
    --------
    >>> seqs = EventSequences.from_lists([np.arange(0.0, 20.0, 0.5)] * 10, [[0] * 40] * 10, 1)
    >>> stream = calendar_windows(seqs, 2, width=10.0)
    >>> [(len(e.train), len(e.metadata["dev"]), len(e.test)) for e in stream]
    [(7, 1, 2), (7, 1, 2)]
    >>> float(stream[1].train.times.min()), stream[1].metadata["window"]
    (10.0, (10.0, 20.0))
    """
    if not isinstance(sequences, EventSequences):
        raise TypeError(f"sequences must be EventSequences, got {type(sequences).__name__}")
    arguments = dict(
        n_windows=n_windows, width=width, stride=stride, start=start, min_events=min_events
    )
    check_params(_CONSTRAINTS, arguments, "calendar_windows")
    width = float(width)
    stride = width if stride is None else float(stride)
    start = float(sequences.times.min()) if start is None else float(start)
    if len(split) != 3 or min(split) < 0 or not np.isclose(sum(split), 1.0):
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {split}")
    rng = check_random_state(seed)
    experiences = []
    for index in range(int(n_windows)):
        low = start + index * stride
        window, keep = _window(sequences, low, low + width, min_events)
        if window is None or len(window) < 3:
            raise ValueError(
                f"window {index} [{low}, {low + width}) holds {keep.size} sequences with at least "
                f"min_events={min_events} events; expected at least 3 to split it"
            )
        order = rng.permutation(len(window))
        n_train = max(1, round(split[0] * len(window)))
        n_dev = min(round(split[1] * len(window)), len(window) - n_train - 1)
        parts = order[:n_train], order[n_train : n_train + n_dev], order[n_train + n_dev :]
        train, test = window.subset(parts[0]), window.subset(parts[2])
        dev = window.subset(parts[1]) if len(parts[1]) else None
        metadata = {"dev": dev, "window": (low, low + width), "sequences": keep}
        experiences.append(Experience(index, train, test, metadata))
    return Stream(experiences, name=name, seed=seed)
