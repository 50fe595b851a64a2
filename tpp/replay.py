"""A reservoir of past event sequences in compact dtypes, capped in bytes."""

from __future__ import annotations

import numpy as np

from tpp.data import EventArrays

__all__ = ["EventReservoir"]


class EventReservoir:
    """Reservoir sampling over whole sequences, under a byte capacity given at each update.

    A sequence is stored as its times relative to its first event in float32 (4 bytes per event)
    and its types in the smallest unsigned dtype (1 byte per event up to 256 types). Every
    incoming sequence is offered; while the store is under capacity it is kept, afterwards it
    replaces a random stored sequence with probability ``stored / seen`` (Vitter's algorithm R),
    and random sequences are dropped until the store fits the capacity.

    Stored: the two arrays of each sequence, charged to the ``replay`` account through
    :meth:`memory_items`.

    Examples
    --------
    >>> data = EventArrays(np.arange(40.0), np.zeros(40, dtype=int), np.arange(0, 41, 4), 3)
    >>> store = EventReservoir()
    >>> store.update(data, capacity=100, rng=np.random.default_rng(0))
    >>> len(store), store.nbytes  # 5 sequences of 4 events at 5 bytes per event
    (5, 100)
    >>> store.as_arrays(3).n_events
    20
    """

    def __init__(self) -> None:
        self.times: list[np.ndarray] = []
        self.types: list[np.ndarray] = []
        self.seen = 0

    def __len__(self) -> int:
        return len(self.times)

    @property
    def nbytes(self) -> int:
        """Stored payload bytes."""
        return sum(t.nbytes + k.nbytes for t, k in zip(self.times, self.types))

    def update(self, data: EventArrays, capacity: int, rng: np.random.Generator) -> None:
        """Offer every sequence of ``data``, then shrink the store to ``capacity`` bytes."""
        dtype = np.uint8 if data.dim_process <= 256 else np.uint16
        for start, stop in zip(data.offsets[:-1], data.offsets[1:]):
            times = (data.times[start:stop] - data.times[start]).astype(np.float32)
            types = data.types[start:stop].astype(dtype)
            self.seen += 1
            size = times.nbytes + types.nbytes
            if self.nbytes + size <= capacity:
                self.times.append(times)
                self.types.append(types)
            elif self.times and rng.uniform() < len(self.times) / self.seen:
                slot = int(rng.integers(len(self.times)))
                self.times[slot], self.types[slot] = times, types
        while self.times and self.nbytes > capacity:
            slot = int(rng.integers(len(self.times)))
            del self.times[slot], self.types[slot]

    def as_arrays(self, dim_process: int) -> EventArrays:
        """The stored sequences as :class:`~tpp.data.EventArrays` (float64 copies)."""
        offsets = np.concatenate([[0], np.cumsum([len(t) for t in self.times])]).astype(np.int64)
        return EventArrays(
            np.concatenate(self.times).astype(np.float64),
            np.concatenate(self.types).astype(np.int64),
            offsets,
            dim_process,
        )

    def memory_items(self) -> dict[str, list[np.ndarray]]:
        """The stored arrays, for the accountant."""
        return {"times": self.times, "types": self.types}
