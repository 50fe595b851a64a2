"""Replay of past event sequences from a reservoir that fills the budget's headroom."""

from __future__ import annotations

from typing import Any

import numpy as np

from continual.learner import Learner
from continual.plugin import Plugin
from streams.events import EventSequences

__all__ = ["EventReservoir", "SequenceReplay"]


class EventReservoir:
    """Reservoir sampling over whole sequences, under a byte capacity given at each update.

    A sequence is stored as its times relative to its first event in float32 (4 bytes per event)
    and its types in the smallest unsigned dtype (1 byte per event up to 256 types). Every
    incoming sequence is offered; while the store is under capacity it is kept, afterwards it
    replaces a random stored sequence with probability ``stored / seen`` (Vitter's algorithm R),
    and random sequences are dropped until the store fits the capacity. Stored arrays are
    read-only: they are replaced, never modified.

    Stored: the two arrays of each sequence (:meth:`memory_items`).

    Examples
    --------
    >>> data = EventSequences(np.arange(40.0), np.zeros(40, dtype=int), np.arange(0, 41, 4), 3)
    >>> store = EventReservoir()
    >>> store.update(data, capacity=100, rng=np.random.default_rng(0))
    >>> len(store), store.nbytes  # 5 sequences of 4 events at 5 bytes per event
    (5, 100)
    >>> store.as_sequences(3).n_events
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

    def update(self, data: EventSequences, capacity: int, rng: np.random.Generator) -> None:
        """Offer every sequence of ``data``, then shrink the store to ``capacity`` bytes."""
        dtype = np.uint8 if data.dim_process <= 256 else np.uint16
        for start, stop in zip(data.offsets[:-1], data.offsets[1:]):
            times = (data.times[start:stop] - data.times[start]).astype(np.float32)
            types = data.types[start:stop].astype(dtype)
            times.setflags(write=False)
            types.setflags(write=False)
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

    def as_sequences(self, dim_process: int) -> EventSequences:
        """The stored sequences as :class:`~streams.events.EventSequences` (float64 copies)."""
        offsets = np.concatenate([[0], np.cumsum([len(t) for t in self.times], dtype=np.int64)])
        empty = not self.times
        return EventSequences(
            np.zeros(0) if empty else np.concatenate(self.times).astype(np.float64),
            np.zeros(0, dtype=np.int64) if empty else np.concatenate(self.types),
            offsets,
            dim_process,
        )

    def memory_items(self) -> dict[str, list[np.ndarray]]:
        """The stored arrays, for the accountant."""
        return {"times": self.times, "types": self.types}

    def state_dict(self) -> dict[str, Any]:
        """The stored arrays (by reference) and the count of sequences seen."""
        return {"times": list(self.times), "types": list(self.types), "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (arrays are kept, read-only)."""
        self.times = [_frozen(array) for array in state["times"]]
        self.types = [_frozen(array) for array in state["types"]]
        self.seen = int(state["seen"])


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    array.setflags(write=False)
    return array


class SequenceReplay(Plugin):
    """Train on each experience's sequences together with a reservoir of past ones.

    Before an experience, the stored sequences are appended to the learner's training payload
    (``learner.train_data``). After it, every sequence of the experience is offered to an
    :class:`EventReservoir` whose capacity is the accountant's headroom plus what it holds
    (``room_for``), so that the model, its optimizer state and the reservoir together fit the
    budget; without a budget it keeps every sequence. The reservoir's choices draw from a numpy
    generator seeded with ``seed`` and the experience count.

    Stored: the reservoir, float32 relative times and uint8 types (5 bytes per event up to 256
    types), charged to ``replay/sequences``. The reservoir is numpy arrays on the CPU, whatever
    the learner's device (the learner moves each batch there); with a budget per device it
    fills the CPU's headroom.

    Parameters
    ----------
    seed
        Seed of the reservoir's choices.

    Examples
    --------
    >>> import functools, torch
    >>> from continual import Learner, MemoryAccountant
    >>> from streams import hawkes_drift_stream
    >>> from tpp.batches import event_batches
    >>> from tpp.likelihood import sequence_log_likelihood, training_loss
    >>> from tpp.nhp import NHP
    >>> stream = hawkes_drift_stream(2, 2, horizon=60.0, n_sequences=6, seed=0)
    >>> _ = torch.manual_seed(0)
    >>> replay = SequenceReplay(seed=0)
    >>> learner = Learner(NHP(2, 4), plugins=[replay], accountant=MemoryAccountant(5000),
    ...                   optimizer="adam", loss=training_loss, batches=event_batches,
    ...                   forward=functools.partial(sequence_log_likelihood, n_points=4))
    >>> for experience in stream:
    ...     learner.train_experience(experience)
    >>> ledger = learner.accountant.ledger()
    >>> ledger.accounts["replay/sequences"] == replay.store.nbytes > 0, ledger.total <= 5000
    (True, True)
    """

    name = "replay"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.store = EventReservoir()

    def memory_items(self) -> dict[str, Any]:
        return {"sequences": self.store}

    def state_dict(self) -> dict[str, Any]:
        return {"store": self.store.state_dict()}

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        self.store.load_state_dict(state["store"])

    def before_experience(self, learner: Learner) -> None:
        if len(self.store):
            data = learner.train_data
            stored = self.store.as_sequences(data.dim_process)
            learner.train_data = EventSequences.concatenate([data, stored])

    def after_experience(self, learner: Learner) -> None:
        capacity = learner.accountant.room_for(self.store, "cpu")  # numpy arrays
        rng = np.random.default_rng([self.seed, learner.n_trained])
        self.store.update(learner.experience.train, capacity, rng)
