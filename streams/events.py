"""EventSequences: ragged (time, type) event sequences stored as flat arrays plus offsets."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from continual.validation import check_ids

__all__ = ["EventSequences", "check_events"]


def _type_dtype(dim_process: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds every type in ``[0, dim_process)``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if dim_process - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _ragged_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat positions ``starts[i] + arange(lengths[i])`` for every ``i``, concatenated."""
    lengths = np.asarray(lengths, dtype=np.int64)
    first = np.cumsum(lengths) - lengths  # where each sequence starts in the output
    return np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _sequence_name(index: int) -> str:
    return f"sequence {index}"


def check_events(
    times: np.ndarray,
    types: Any,
    offsets: np.ndarray,
    dim_process: int,
    *,
    where: Callable[[int], str] = _sequence_name,
    fields: tuple[str, str] = ("times", "types"),
) -> np.ndarray:
    """Check flat event arrays sequence by sequence; return ``types`` as int64.

    Every sequence must hold at least one event, its times must be finite, non-negative and
    sorted, and its types whole numbers in ``[0, dim_process)``. A ``ValueError`` names the
    sequence (``where(i)``), the field (``fields``: the names of the times and the types), the
    offending value and its position in the sequence.

    Parameters
    ----------
    times
        Flat float64 times.
    types
        Flat types, one per time.
    offsets
        ``n_sequences + 1`` positions into the flat arrays, from 0 to ``len(times)``.
    dim_process
        The number of event types.
    where
        The name of sequence ``i`` in messages.
    fields
        The names of the times and of the types in messages.

    Raises
    ------
    ValueError
        For an empty sequence, a bad time or an out-of-range type.
    TypeError
        For types that are not numbers.

    Examples
    --------
    >>> import numpy as np
    >>> check_events(np.array([0.0, 2.0, 1.0]), [0, 1, 0], np.array([0, 3]), 2)
    Traceback (most recent call last):
    ...
    ValueError: sequence 0: times must be sorted (non-decreasing); got 1.0 after 2.0 at position 2
    """
    empty = np.diff(offsets) <= 0
    if empty.any():
        name = where(int(np.flatnonzero(empty)[0]))
        raise ValueError(f"{name} is empty: every sequence must hold at least one event")
    time_field, type_field = fields
    expected = f"{time_field} must hold finite numbers"
    _raise_first(~np.isfinite(times), times, offsets, where, expected)
    _raise_first(times < 0, times, offsets, where, f"{time_field} must be non-negative")
    decreasing = np.zeros(len(times), dtype=bool)
    decreasing[1:] = times[1:] < times[:-1]
    decreasing[offsets[:-1]] = False  # a sequence's first event follows none of its own
    expected = f"{time_field} must be sorted (non-decreasing)"
    _raise_first(decreasing, times, offsets, where, expected, after=True)
    try:
        return check_ids(types, type_field, upper=dim_process, what="event types")
    except ValueError:
        types = np.asarray(types)
        for index in range(len(offsets) - 1):  # name the sequence that holds the bad type
            name = f"{where(index)}: {type_field}"
            part = types[offsets[index] : offsets[index + 1]]
            check_ids(part, name, upper=dim_process, what="event types")
        raise


def _raise_first(
    bad: np.ndarray,
    times: np.ndarray,
    offsets: np.ndarray,
    where: Callable[[int], str],
    expected: str,
    *,
    after: bool = False,
) -> None:
    """Raise ``ValueError`` naming the sequence, value and position of the first ``bad``."""
    if not bad.any():
        return
    flat = int(np.flatnonzero(bad)[0])
    index = int(np.searchsorted(offsets, flat, side="right") - 1)
    previous = f" after {times[flat - 1].item()!r}" if after else ""
    position = flat - int(offsets[index])
    raise ValueError(
        f"{where(index)}: {expected}; got {times[flat].item()!r}{previous} at position {position}"
    )


class EventSequences:
    """Ragged marked event sequences: flat ``times`` and ``types`` plus ``offsets``.

    Sequence ``i`` is ``times[offsets[i]:offsets[i + 1]]`` with the matching ``types``. Times are
    absolute (float64), sorted within each sequence, finite and non-negative; types are integers
    in ``[0, dim_process)`` stored in the smallest unsigned dtype that holds them. The payload is
    charged to a :class:`~continual.MemoryAccountant` through :meth:`memory_items` (the three
    arrays, nothing else).

    Parameters
    ----------
    times
        Flat event times, float64-convertible.
    types
        Flat event types, one per time.
    offsets
        ``n_sequences + 1`` non-decreasing int positions into the flat arrays, starting at 0 and
        ending at ``len(times)``.
    dim_process
        The number of event types ``K``.

    Raises
    ------
    ValueError
        For unsorted, negative or non-finite times, types out of range, inconsistent offsets or
        an empty sequence: the message names the sequence, the value and its position (see
        :func:`check_events`).
    TypeError
        For types that are not numbers.

    Examples
    --------
    >>> seqs = EventSequences.from_lists([[0.0, 0.5, 2.0], [1.0, 1.5]], [[0, 1, 0], [2, 2]], 3)
    >>> seqs
    EventSequences(n_sequences=2, n_events=5, dim_process=3)
    >>> seqs[1]
    (array([1. , 1.5]), array([2, 2], dtype=uint8))
    >>> seqs.lengths.tolist(), seqs.nbytes
    ([3, 2], 69)
    >>> seqs.subset([1]).times.tolist()
    [1.0, 1.5]
    """

    def __init__(self, times: Any, types: Any, offsets: Any, dim_process: int) -> None:
        self.times = np.ascontiguousarray(times, dtype=np.float64)
        types = np.asarray(types)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.dim_process = dim_process
        types = self._validate(types)
        self.types = np.ascontiguousarray(types, dtype=_type_dtype(int(dim_process)))

    # ---------------------------------------------------------------- building
    @classmethod
    def from_lists(
        cls, times: Iterable[Sequence[float]], types: Iterable[Sequence[int]], dim_process: int
    ) -> EventSequences:
        """Build from one list of times and one list of types per sequence."""
        times, types = [np.asarray(t, dtype=np.float64) for t in times], list(types)
        if len(times) != len(types):
            raise ValueError(
                f"times and types must hold the same number of sequences, got {len(times)} "
                f"and {len(types)}"
            )
        types = [np.asarray(k) for k in types]
        for i, (t, k) in enumerate(zip(times, types)):
            if t.shape != k.shape or t.ndim != 1:
                raise ValueError(
                    f"sequence {i}: times and types must be 1-d of equal length, got shapes "
                    f"{t.shape} and {k.shape}"
                )
        lengths = [len(t) for t in times]
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        flat_t = np.concatenate(times) if times else np.zeros(0)
        flat_k = np.concatenate(types) if types else np.zeros(0, dtype=np.int64)
        return cls(flat_t, flat_k, offsets, dim_process)

    def _validate(self, types: np.ndarray) -> np.ndarray:
        """Check every field; return ``types`` as int64."""
        k = self.dim_process
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"dim_process must be a positive int, got {k!r}")
        if self.times.ndim != 1 or types.shape != self.times.shape:
            raise ValueError(
                f"times and types must be flat arrays of equal length, got shapes "
                f"{self.times.shape} and {types.shape}"
            )
        off = self.offsets
        if off.ndim != 1 or len(off) < 1 or off[0] != 0 or off[-1] != len(self.times):
            raise ValueError(
                f"offsets must start at 0 and end at len(times)={len(self.times)}, got {off!r}"
            )
        return check_events(self.times, types, off, int(k))

    # --------------------------------------------------------------- accessing
    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        """Total number of events."""
        return len(self.times)

    @property
    def lengths(self) -> np.ndarray:
        """Number of events of each sequence."""
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(i).__name__}; use subset() for many")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sequence index {i} out of range for {n} sequences")
        i = int(i) % n
        start, stop = self.offsets[i], self.offsets[i + 1]
        return self.times[start:stop], self.types[start:stop]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self[i] for i in range(len(self)))

    def subset(self, indices: Any) -> EventSequences:
        """A new container holding the sequences at ``indices``, in that order (copies).

        Raises
        ------
        ValueError
            For no index, or an index that is not a whole number in ``[0, len(self))``.
        """
        indices = check_ids(indices, "indices", upper=len(self), what="sequence indices")
        indices = indices.reshape(-1)
        if indices.size == 0:
            raise ValueError("indices must select at least one sequence, got none")
        starts, stops = self.offsets[indices], self.offsets[indices + 1]
        lengths = stops - starts
        flat = _ragged_positions(starts, lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return EventSequences(self.times[flat], self.types[flat], offsets, self.dim_process)

    def truncated(self, max_length: int) -> EventSequences:
        """A new container with every sequence cut to its first ``max_length`` events.

        Examples
        --------
        >>> seqs = EventSequences.from_lists([[0.0, 1.0, 2.0], [5.0]], [[0, 1, 0], [1]], 2)
        >>> seqs.truncated(2).lengths.tolist()
        [2, 1]
        """
        if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral):
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        if max_length < 1:
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        lengths = np.minimum(self.lengths, int(max_length))
        flat = _ragged_positions(self.offsets[:-1], lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return EventSequences(self.times[flat], self.types[flat], offsets, self.dim_process)

    @classmethod
    def concatenate(cls, parts: Sequence[EventSequences]) -> EventSequences:
        """The sequences of every container of ``parts``, in order, in one new container.

        Every part must have the same ``dim_process``; a part may hold no sequence.

        Examples
        --------
        >>> a = EventSequences.from_lists([[0.0, 1.0]], [[0, 1]], 2)
        >>> b = EventSequences.from_lists([[2.0], [0.5, 0.7]], [[1], [0, 0]], 2)
        >>> both = EventSequences.concatenate([a, b])
        >>> both.lengths.tolist(), both.times.tolist()
        ([2, 1, 2], [0.0, 1.0, 2.0, 0.5, 0.7])
        """
        parts = list(parts)
        if not parts or not all(isinstance(part, EventSequences) for part in parts):
            raise TypeError(f"parts must be a non-empty sequence of EventSequences, got {parts!r}")
        dims = sorted({int(part.dim_process) for part in parts})
        if len(dims) != 1:
            raise ValueError(f"parts must share one dim_process, got {dims}")
        lengths = np.concatenate([part.lengths for part in parts])
        return cls(
            np.concatenate([part.times for part in parts]),
            np.concatenate([part.types for part in parts]),
            np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]),
            dims[0],
        )

    def gaps(self) -> np.ndarray:
        """Inter-event times, flat; the first gap of every sequence is 0."""
        gaps = np.diff(self.times, prepend=0.0)
        gaps[self.offsets[:-1]] = 0.0
        return gaps

    def to_dicts(self) -> list[dict[str, Any]]:
        """The EasyTPP row layout: one dict per sequence (see :mod:`streams.easytpp`)."""
        gaps = self.gaps()
        rows = []
        for i in range(len(self)):
            start, stop = self.offsets[i], self.offsets[i + 1]
            rows.append(
                {
                    "dim_process": int(self.dim_process),
                    "seq_idx": i,
                    "seq_len": int(stop - start),
                    "time_since_start": self.times[start:stop].tolist(),
                    "time_since_last_event": gaps[start:stop].tolist(),
                    "type_event": self.types[start:stop].astype(int).tolist(),
                }
            )
        return rows

    # ---------------------------------------------------------------- charging
    def memory_items(self) -> dict[str, np.ndarray]:
        """The stored arrays, for :func:`continual.nbytes` and the accountant."""
        return {"times": self.times, "types": self.types, "offsets": self.offsets}

    @property
    def nbytes(self) -> int:
        """Payload bytes of the three arrays."""
        return int(self.times.nbytes + self.types.nbytes + self.offsets.nbytes)

    def __repr__(self) -> str:
        return (
            f"EventSequences(n_sequences={len(self)}, n_events={self.n_events}, "
            f"dim_process={self.dim_process})"
        )
