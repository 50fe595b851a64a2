"""Interactions: (user, item[, time, rating]) triples as compact integer arrays."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp

from continual.validation import check_ids

__all__ = ["ID_LIMIT", "Interactions"]


class Interactions:
    """Implicit or explicit feedback as parallel compact arrays.

    Users and items are stored as ``int32``, times as ``int64`` (or ``float64`` when they are
    not integral) and ratings as ``float32``; ``nbytes`` (through :meth:`memory_items`) is the
    sum of these arrays. The vocabulary sizes ``n_users`` and ``n_items`` default to the largest
    ID plus one and may be declared larger (users or items without interactions).

    Parameters
    ----------
    users, items
        Integer IDs in ``[0, 2**31)``, one per interaction (whole-number floats are read as
        integers).
    times
        Optional timestamps, one per interaction (finite numbers).
    ratings
        Optional ratings, one per interaction (finite numbers).
    n_users, n_items
        Declared vocabulary sizes; every ID must be below them.

    Raises
    ------
    ValueError
        Naming the argument, the first bad value and its position: an ID that is negative,
        fractional, NaN or too large for int32, a NaN or infinite time or rating, arrays of
        different lengths, a declared vocabulary smaller than the largest ID.
    TypeError
        For IDs, times or ratings that are not numbers.

    Examples
    --------
    >>> from continual import nbytes
    >>> from streams.interactions import Interactions
    >>> data = Interactions([0, 0, 1, 2], [1, 3, 3, 0], times=[5, 6, 7, 8])
    >>> data
    Interactions(n_interactions=4, n_users=3, n_items=4, times=True, ratings=False)
    >>> nbytes(data)  # 4 x (int32 user + int32 item + int64 time)
    64
    >>> data.csr().toarray().astype(int)
    array([[0, 1, 0, 1],
           [0, 0, 0, 1],
           [1, 0, 0, 0]])
    >>> data.user_items(0)
    array([1, 3], dtype=int32)
    """

    def __init__(
        self,
        users: Any,
        items: Any,
        *,
        times: Any = None,
        ratings: Any = None,
        n_users: int | None = None,
        n_items: int | None = None,
    ) -> None:
        self.users = _ids("users", users)
        self.items = _ids("items", items)
        if self.users.shape != self.items.shape:
            raise ValueError(
                f"users and items must have the same length, got {self.users.size} users and "
                f"{self.items.size} items"
            )
        self.times = None if times is None else _column("times", times, self.users.size, "time")
        self.ratings = (
            None if ratings is None else _column("ratings", ratings, self.users.size, "rating")
        )
        self.n_users = _vocabulary("n_users", n_users, self.users)
        self.n_items = _vocabulary("n_items", n_items, self.items)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.users.size)

    def __repr__(self) -> str:
        return (
            f"Interactions(n_interactions={len(self)}, n_users={self.n_users}, "
            f"n_items={self.n_items}, times={self.times is not None}, "
            f"ratings={self.ratings is not None})"
        )

    def memory_items(self) -> dict[str, np.ndarray]:
        """The stored arrays: users, items and, when present, times and ratings."""
        stored = {"users": self.users, "items": self.items}
        if self.times is not None:
            stored["times"] = self.times
        if self.ratings is not None:
            stored["ratings"] = self.ratings
        return stored

    def csr(self) -> sp.csr_matrix:
        """The user × item matrix in CSR form (float32 ones; duplicates summed), built on demand."""
        data = np.ones(len(self), dtype=np.float32)
        matrix = sp.csr_matrix(
            (data, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix

    def user_items(self, user: int) -> np.ndarray:
        """Sorted unique items of ``user``."""
        return np.unique(self.items[self.users == user])

    # ------------------------------------------------------------- operations
    def select(self, index: Any) -> Interactions:
        """The interactions at ``index`` (a boolean mask or positions), same vocabulary."""
        return Interactions(
            self.users[index],
            self.items[index],
            times=None if self.times is None else self.times[index],
            ratings=None if self.ratings is None else self.ratings[index],
            n_users=self.n_users,
            n_items=self.n_items,
        )

    def deduplicate(self) -> tuple[Interactions, int]:
        """Keep the first occurrence of each (user, item) pair; return it and the count dropped.

        Examples
        --------
        >>> from streams.interactions import Interactions
        >>> unique, dropped = Interactions([0, 0, 1, 0], [2, 2, 2, 2]).deduplicate()
        >>> len(unique), dropped
        (2, 2)
        """
        keys = self.users.astype(np.int64) * self.n_items + self.items
        _, first = np.unique(keys, return_index=True)
        first.sort()
        return self.select(first), len(self) - first.size

    def with_vocabulary(self, n_users: int, n_items: int) -> Interactions:
        """The same interactions with a larger declared vocabulary."""
        return Interactions(
            self.users,
            self.items,
            times=self.times,
            ratings=self.ratings,
            n_users=n_users,
            n_items=n_items,
        )

    def split_per_user(
        self, test_fraction: float = 0.2, seed: int | None = 0
    ) -> tuple[Interactions, Interactions]:
        """Hold out ``test_fraction`` of each user's interactions (at least one kept for training).

        Users with a single interaction keep it in training. The split is seeded.

        Examples
        --------
        >>> from streams.interactions import Interactions
        >>> data = Interactions([0] * 10 + [1], list(range(10)) + [0])
        >>> train, test = data.split_per_user(0.3, seed=0)
        >>> len(train), len(test), test.users.tolist()
        (8, 3, [0, 0, 0])
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
        rng = np.random.default_rng(seed)
        order = np.lexsort((rng.random(len(self)), self.users))
        counts = np.bincount(self.users, minlength=self.n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(self)) - np.repeat(starts, counts)
        n_test = np.floor(counts * test_fraction).astype(np.int64)
        n_test = np.minimum(n_test, np.maximum(counts - 1, 0))
        is_test = np.zeros(len(self), dtype=bool)
        is_test[order] = rank < np.repeat(n_test, counts)
        return self.select(~is_test), self.select(is_test)


#: IDs are stored as int32: every ID must lie below this.
ID_LIMIT = int(np.iinfo(np.int32).max) + 1


def _ids(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int32)
    return check_ids(array, name, upper=ID_LIMIT).astype(np.int32)


def _column(name: str, values: Any, size: int, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (size,):
        raise ValueError(f"{name} must hold one {what} per interaction ({size}), got {array.shape}")
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype} ({values!r:.80})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        position = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(
            f"{name} must hold finite {what}s; got {array[position].item()!r} at position "
            f"{position}"
        )
    if name == "ratings":
        ratings = array.astype(np.float32)
        if not np.isfinite(ratings).all():
            position = int(np.flatnonzero(~np.isfinite(ratings))[0])
            raise ValueError(
                f"ratings must fit float32; got {array[position].item()!r} at position {position}"
            )
        return ratings
    if array.dtype.kind in "iu" or np.all(array == np.round(array)):
        return array.astype(np.int64)
    return array.astype(np.float64)


def _vocabulary(name: str, declared: int | None, ids: np.ndarray) -> int:
    needed = int(ids.max()) + 1 if ids.size else 0
    if declared is None:
        return needed
    if isinstance(declared, bool) or not isinstance(declared, Integral) or declared < 0:
        raise ValueError(f"{name} must be a non-negative int, got {declared!r}")
    if needed > declared:
        raise ValueError(f"{name}={declared} is too small: the data holds the ID {needed - 1}")
    return int(declared)
