"""Uniform negative sampling that rejects known positives, vectorised."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["NegativeSampler"]


class NegativeSampler:
    """Draw one item per user uniformly among the items the user has not interacted with.

    All draws of a call are made at once; the draws that hit a known positive (found by binary
    search in the sorted ``user * n_items + item`` keys of the training matrix) are redrawn
    together, round after round, so there is no Python loop per sample. A user who has every
    item gets ``-1`` after ``max_rounds`` rounds.

    Stores the int64 keys of the training matrix (8 bytes per interaction): this is an index of
    the training data, rebuilt for each block and dropped afterwards, not learner state.

    Parameters
    ----------
    train
        CSR user × item matrix of known positives (sorted indices).
    seed
        Seed of the sampler's own generator, used when :meth:`sample` gets no ``rng``.
    max_rounds
        Redraw rounds before giving up on a sample.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.sampling import NegativeSampler
    >>> train = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 0, 0, 0]]))
    >>> sampler = NegativeSampler(train, seed=0)
    >>> sampler.sample(np.array([0, 0, 0, 0, 0])).tolist()
    [2, 2, 2, 2, 2]
    """

    def __init__(self, train: sp.csr_matrix, seed: int | None = 0, max_rounds: int = 100) -> None:
        rows = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        self._setup(rows * int(train.shape[1]) + train.indices, train.shape[1], seed, max_rounds)

    @classmethod
    def from_pairs(
        cls, users: np.ndarray, items: np.ndarray, n_items: int, **settings: Any
    ) -> NegativeSampler:
        """A sampler over ``n_items`` items whose known positives are the ``(users[k],
        items[k])`` pairs, built without a user x item matrix (nothing is allocated per user
        or item of the vocabulary).

        Examples
        --------
        >>> import numpy as np
        >>> from recsys.sampling import NegativeSampler
        >>> sampler = NegativeSampler.from_pairs(np.array([7, 7]), np.array([0, 1]), n_items=3)
        >>> sampler.sample(np.array([7, 7, 7])).tolist()
        [2, 2, 2]
        """
        sampler = cls.__new__(cls)
        sampler._setup(
            np.asarray(users, dtype=np.int64) * int(n_items) + np.asarray(items), n_items,
            **settings,
        )  # fmt: skip
        return sampler

    def _setup(
        self, keys: np.ndarray, n_items: int, seed: int | None = 0, max_rounds: int = 100
    ) -> None:
        self.seed = seed
        self.max_rounds = max_rounds
        self.n_items = int(n_items)
        self._keys = np.unique(keys)
        self._rng = np.random.default_rng(seed)

    def memory_items(self) -> dict[str, np.ndarray]:
        """The sorted positive keys."""
        return {"keys": self._keys}

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each (user, item) pair is a known positive."""
        if self._keys.size == 0:
            return np.zeros(np.shape(users), dtype=bool)
        keys = np.asarray(users, dtype=np.int64) * self.n_items + items
        position = np.minimum(np.searchsorted(self._keys, keys), self._keys.size - 1)
        return self._keys[position] == keys

    def sample(self, users: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """One negative item per entry of ``users`` (int64), drawn from ``rng`` (by default
        the sampler's own generator)."""
        rng = self._rng if rng is None else rng
        users = np.asarray(users, dtype=np.int64)
        items = rng.integers(self.n_items, size=users.size)
        todo = np.flatnonzero(self.is_positive(users, items))
        for _ in range(self.max_rounds):
            if todo.size == 0:
                break
            items[todo] = rng.integers(self.n_items, size=todo.size)
            todo = todo[self.is_positive(users[todo], items[todo])]
        items[todo] = -1
        return items
