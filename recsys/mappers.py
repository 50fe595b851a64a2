"""ID mappers: from user or item IDs to rows of an embedding table.

A mapper turns IDs into one or more row indices (the embedding is the sum of those rows). Its
stored arrays (hash parameters, frequent-ID lists, cluster maps) are returned by
``memory_items()`` and charged to the accountant with the table. Every mapper accepts any
non-negative ID: IDs outside a mapper's known vocabulary go to hashed fallback rows.

A mapper is plain data: :meth:`IdMapper.to_dict` gives its ints and (read-only) arrays and
:func:`recsys.mapper_specs.mapper_from_dict` rebuilds it, so that an estimator keeps its maps
as facts. Stored arrays are never modified in place: a mapper that changes replaces them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from continual.measure import nbytes
from continual.state import read_only
from continual.validation import COUNT, check_ids, check_params
from streams.interactions import ID_LIMIT

__all__ = [
    "PRIME",
    "DoubleHash",
    "FrequencyHash",
    "Full",
    "IdMapper",
    "ModuloHash",
    "as_ids",
    "positive_int",
    "rebuildable_seed",
    "remap_table",
]

PRIME = 2_147_483_647  # 2**31 - 1, the modulus of the universal hashes


class IdMapper(ABC):
    """Interface: ``n_rows``, ``n_columns`` and ``rows(ids)`` of shape (n, n_columns)."""

    n_rows: int
    n_columns: int = 1

    @abstractmethod
    def rows(self, ids: Any) -> np.ndarray:
        """Row indices (int64) of shape (len(ids), n_columns)."""

    def memory_items(self) -> dict[str, Any]:
        """The stored arrays of the map."""
        return {}

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The mapper as plain data (``"kind"``, ints and read-only arrays); see
        :func:`recsys.mapper_specs.mapper_from_dict`."""

    def grown_nbytes(self, max_id: int) -> int:
        """Bytes the map will store once it knows every ID up to ``max_id``.

        Computed from sizes, without growing anything; hashing maps do not grow (new IDs go
        to fallback rows), so this is their current size.
        """
        return nbytes(self)


class Full(IdMapper):
    """One private row per known ID, plus ``n_fallback`` hashed rows for unseen IDs.

    Stores nothing but the table: the map is the identity.

    Examples
    --------
    >>> from recsys.mappers import Full
    >>> mapper = Full(3, n_fallback=2)
    >>> mapper.n_rows, mapper.rows([0, 2, 7]).ravel().tolist()
    (5, [0, 2, 4])
    """

    def __init__(self, n_ids: int, n_fallback: int = 1) -> None:
        positive_int("n_ids", n_ids, "Full")
        positive_int("n_fallback", n_fallback, "Full")
        self.n_ids = int(n_ids)
        self.n_fallback = int(n_fallback)
        self.n_rows = self.n_ids + self.n_fallback

    def rows(self, ids: Any) -> np.ndarray:
        ids = as_ids(ids)
        rows = np.where(ids < self.n_ids, ids, self.n_ids + ids % self.n_fallback)
        return rows[:, None]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "full", "n_ids": self.n_ids, "n_fallback": self.n_fallback}


class ModuloHash(IdMapper):
    """``row = id mod n_rows`` (the "random" baseline of the GraphHash paper).

    Stores its modulus, one int64 (8 bytes).

    Examples
    --------
    >>> from continual import nbytes
    >>> from recsys.mappers import ModuloHash
    >>> mapper = ModuloHash(4)
    >>> mapper.rows([1, 5, 10]).ravel().tolist(), nbytes(mapper)
    ([1, 1, 2], 8)
    """

    def __init__(self, n_rows: int) -> None:
        positive_int("n_rows", n_rows, "ModuloHash")
        self.n_rows = int(n_rows)
        self.params = read_only(np.array([n_rows], dtype=np.int64))

    def rows(self, ids: Any) -> np.ndarray:
        return (as_ids(ids) % self.n_rows)[:, None]

    def memory_items(self) -> dict[str, Any]:
        return {"params": self.params}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "modulo", "n_rows": self.n_rows}


class DoubleHash(IdMapper):
    """Two universal hashes ``((a x + b) mod p) mod n_rows``; the embedding sums both rows.

    Stores the modulus and the two (a, b) pairs, five int64 (40 bytes).

    Examples
    --------
    >>> from continual import nbytes
    >>> from recsys.mappers import DoubleHash
    >>> mapper = DoubleHash(8, seed=0)
    >>> mapper.rows([0, 1]).shape, nbytes(mapper), bool((mapper.rows(range(100)) < 8).all())
    ((2, 2), 40, True)
    """

    n_columns = 2

    def __init__(self, n_rows: int, seed: int | None = 0) -> None:
        positive_int("n_rows", n_rows, "DoubleHash")
        self.n_rows = int(n_rows)
        self.seed = seed
        rng = np.random.default_rng(seed)
        a = rng.integers(1, PRIME, size=2)
        b = rng.integers(0, PRIME, size=2)
        self.params = read_only(np.array([n_rows, a[0], b[0], a[1], b[1]], dtype=np.int64))

    def rows(self, ids: Any) -> np.ndarray:
        ids = as_ids(ids) % PRIME
        a, b = self.params[[1, 3]], self.params[[2, 4]]
        return ((ids[:, None] * a + b) % PRIME) % self.n_rows

    def memory_items(self) -> dict[str, Any]:
        return {"params": self.params}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "double", "n_rows": self.n_rows, "seed": rebuildable_seed(self)}


class FrequencyHash(IdMapper):
    """The most frequent IDs get private rows (half of the rows); the others are hashed.

    Stores the sorted private IDs as int32 (4 bytes each) and its modulus (8 bytes). Build it
    from interaction counts with :meth:`from_counts`.

    Examples
    --------
    >>> import numpy as np
    >>> from continual import nbytes
    >>> from recsys.mappers import FrequencyHash
    >>> mapper = FrequencyHash.from_counts(4, counts=np.array([5, 0, 9, 1, 7]))
    >>> mapper.frequent.tolist(), mapper.rows([2, 4, 1, 3]).ravel().tolist(), nbytes(mapper)
    ([2, 4], [0, 1, 3, 3], 16)
    """

    def __init__(self, n_rows: int, frequent: Any) -> None:
        positive_int("n_rows", n_rows, "FrequencyHash")
        frequent = np.unique(check_ids(frequent, "frequent", upper=ID_LIMIT).astype(np.int32))
        if frequent.size >= n_rows:
            raise ValueError(
                f"frequent must hold fewer IDs than n_rows={n_rows}, got {frequent.size}"
            )
        self.n_rows = int(n_rows)
        self.frequent = read_only(frequent)
        self.params = read_only(np.array([n_rows], dtype=np.int64))

    @classmethod
    def from_counts(cls, n_rows: int, counts: Any) -> FrequencyHash:
        """Give private rows to the ``n_rows // 2`` most frequent IDs (ties: smaller ID first)."""
        counts = np.asarray(counts)
        return cls.from_ids(n_rows, np.flatnonzero(counts), counts[counts != 0])

    @classmethod
    def from_ids(cls, n_rows: int, ids: Any, counts: Any) -> FrequencyHash:
        """Like :meth:`from_counts`, from the IDs that occur and their counts (no array over
        the whole vocabulary: ``np.unique(ids, return_counts=True)`` gives them).

        Examples
        --------
        >>> import numpy as np
        >>> from recsys.mappers import FrequencyHash
        >>> FrequencyHash.from_ids(4, [2, 2_000_000_000], [9, 7]).frequent.tolist()
        [2, 2000000000]
        """
        ids, counts = np.asarray(ids, dtype=np.int64), np.asarray(counts)
        n_private = min(int(n_rows) // 2, int(np.count_nonzero(counts)))
        order = np.lexsort((ids, -counts))
        return cls(n_rows, ids[order[:n_private]])

    def rows(self, ids: Any) -> np.ndarray:
        ids = as_ids(ids)
        n_private = self.frequent.size
        if n_private == 0:
            return (ids % self.n_rows)[:, None]
        position = np.minimum(np.searchsorted(self.frequent, ids), n_private - 1)
        private = self.frequent[position] == ids
        hashed = n_private + ids % (self.n_rows - n_private)
        return np.where(private, position, hashed)[:, None]

    def memory_items(self) -> dict[str, Any]:
        return {"frequent": self.frequent, "params": self.params}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "frequency", "n_rows": self.n_rows, "frequent": self.frequent}


def remap_table(
    old: IdMapper, new: IdMapper, table: torch.Tensor, ids: Any, init: torch.Tensor
) -> torch.Tensor:
    """Rows for ``new``: each is the mean embedding, under ``old``, of the IDs mapped to it.

    Rows of ``new`` that no ID of ``ids`` reaches keep their value in ``init``. The result is
    on the device of ``table`` (``init`` is moved there); the mappers' rows are computed on
    the CPU.

    Examples
    --------
    >>> import torch
    >>> from recsys.mappers import Full, ModuloHash, remap_table
    >>> table = torch.tensor([[0.0], [2.0], [4.0], [9.0]])
    >>> remap_table(Full(3), ModuloHash(2), table, [0, 1, 2], torch.zeros(2, 1)).ravel().tolist()
    [2.0, 2.0]
    """
    ids = as_ids(ids)
    like = {"dtype": table.dtype, "device": table.device}
    with torch.no_grad():
        embeddings = table[torch.from_numpy(old.rows(ids)).to(table.device)].sum(1)
        target = torch.from_numpy(new.rows(ids)).to(table.device)
        out = torch.zeros(new.n_rows, table.shape[1], **like)
        count = torch.zeros(new.n_rows, **like)
        for column in range(target.shape[1]):
            out.index_add_(0, target[:, column], embeddings / target.shape[1])
            count.index_add_(0, target[:, column], torch.ones(len(ids), **like))
        reached = count > 0
        result = init.to(table.device, copy=True)
        result[reached] = out[reached] / count[reached, None]
    return result


def as_ids(ids: Any, name: str = "ids") -> np.ndarray:
    """Non-negative whole-number IDs as a flat int64 array.

    :func:`continual.validation.check_ids` under the argument's ``name``: a negative,
    fractional or NaN ID is a ValueError naming it and its position, a non-number a TypeError.

    Examples
    --------
    >>> from recsys.mappers import as_ids
    >>> as_ids([[3], [1.0]]).tolist()
    [3, 1]
    >>> as_ids([2, -1])
    Traceback (most recent call last):
    ...
    ValueError: ids must hold non-negative IDs; got -1 at position 1
    """
    return check_ids(ids, name).reshape(-1)


def rebuildable_seed(mapper: Any) -> int:
    """The mapper's seed, which must be an int for the mapper to be rebuilt from a dict."""
    if mapper.seed is None:
        raise ValueError(
            f"a {type(mapper).__name__} built with seed=None draws fresh hashes and cannot be "
            "rebuilt from a dict; pass an int seed"
        )
    return int(mapper.seed)


def positive_int(name: str, value: Any, caller: str = "the mapper") -> None:
    """Raise ``InvalidParameterError`` (a ValueError) naming ``name``, ``value`` and ``caller``
    unless ``value`` is an int >= 1 (numpy ints included): the shared ``COUNT`` constraint.

    Examples
    --------
    >>> from recsys.mappers import positive_int
    >>> try:
    ...     positive_int("n_rows", 0, "ModuloHash")
    ... except ValueError as error:
    ...     print(error)
    The 'n_rows' parameter of ModuloHash must be an int in the range [1, inf). Got 0 instead.
    """
    check_params({name: [COUNT]}, {name: value}, caller)
