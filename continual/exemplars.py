"""A byte-budgeted store of exemplars kept in their native dtype."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch

from continual.distributed import SHARDS, local_share
from continual.samples import LazySamples
from continual.selection import balanced_quotas, herding, reservoir_update
from continual.state import load_rng_state, read_only, rng_state

__all__ = ["ExemplarStore"]

POLICIES = ("reservoir", "random", "class_balanced", "herding")

FeatureFn = Callable[[torch.Tensor], "np.ndarray | torch.Tensor"]
Samples = torch.Tensor | np.ndarray | LazySamples


class ExemplarStore:
    """Keep as many ``(x, y)`` samples as a byte budget allows.

    The store decides *which* samples to keep (the policy); the caller decides *how many*
    by passing ``capacity_bytes`` (usually the accountant's headroom plus what the store
    holds now). Samples keep their native dtype: a ``uint8`` image costs one byte per value.
    Labels are stored in the smallest integer dtype holding them (``uint8`` for labels in
    ``[0, 255]``, else ``int16``, ``int32`` or ``int64``).

    What is stored and how it is charged: two tensors, ``x`` (``len * x.element_size() *
    prod(sample shape)`` bytes) and ``y`` (``len * label element size`` bytes). Both own
    exactly their payload, so ``__nbytes__()`` and the accountant's dedup count the same.
    They are replaced at every change, never modified in place, and are declared
    :func:`~continual.state.read_only`: a rollback keeps them by reference, at no cost.

    Policies:

    - ``"reservoir"``: reservoir sampling over every sample ever offered (Algorithm R);
      a smaller capacity drops a uniformly random subset.
    - ``"random"``: a uniformly random subset of stored plus new samples.
    - ``"class_balanced"``: :func:`~continual.selection.balanced_quotas` over the classes
      of stored plus new samples, random within a class.
    - ``"herding"``: the same quotas, each class ordered by iCaRL
      :func:`~continual.selection.herding` on ``feature_fn`` features. A class with new
      samples is re-herded over stored plus new; a class without keeps a prefix of its order.

    Parameters
    ----------
    policy
        One of ``"reservoir"``, ``"random"``, ``"class_balanced"``, ``"herding"``.
    random_state
        Seed (``None``, an int or a ``numpy.random.Generator``) for every random choice.
    device
        Where the stored tensors live (``"cpu"``, ``"cuda:0"``); None keeps them on the
        device of the first samples offered. Samples from elsewhere are copied there.

    Examples
    --------
    >>> import torch
    >>> from continual.exemplars import ExemplarStore
    >>> x = torch.arange(40, dtype=torch.uint8).reshape(10, 4)
    >>> y = torch.tensor([0, 1] * 5)
    >>> store = ExemplarStore(policy="class_balanced", random_state=0)
    >>> store = store.update(x, y, capacity_bytes=33)  # 4 + 1 bytes per sample: 6 fit
    >>> len(store), store.class_counts(), store.per_sample_nbytes, store.__nbytes__()
    (6, {0: 3, 1: 3}, 5, 30)
    >>> store.x.dtype, store.y.dtype
    (torch.uint8, torch.uint8)
    >>> len(store.shrink(capacity_bytes=20))
    4
    """

    def __init__(
        self,
        policy: str = "class_balanced",
        random_state: int | np.random.Generator | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.policy = policy
        self.random_state = random_state
        self.device = device
        self._reset()

    def _reset(self) -> None:
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self._n_seen = 0
        self._rng = np.random.default_rng(self.random_state)

    # ------------------------------------------------------------------ contents
    @property
    def x(self) -> torch.Tensor:
        """Stored samples, first dimension = samples (empty before the first update)."""
        return self._x if self._x is not None else torch.empty(0)

    @property
    def y(self) -> torch.Tensor:
        """Stored labels, aligned with :attr:`x`."""
        return self._y if self._y is not None else torch.empty(0, dtype=torch.uint8)

    def __len__(self) -> int:
        return 0 if self._y is None else len(self._y)

    @property
    def classes(self) -> list[int]:
        """Sorted labels present in the store."""
        return list(self.class_counts())

    def class_counts(self) -> dict[int, int]:
        """Number of stored samples per label, in sorted label order.

        Examples
        --------
        >>> import torch
        >>> from continual.exemplars import ExemplarStore
        >>> store = ExemplarStore(policy="random", random_state=0)
        >>> store = store.update(torch.zeros(3, 2), torch.tensor([7, 2, 7]), capacity_bytes=100)
        >>> store.class_counts(), store.classes
        ({2: 1, 7: 2}, [2, 7])
        """
        labels, counts = np.unique(self.y.cpu().numpy(), return_counts=True)
        return {int(label): int(count) for label, count in zip(labels, counts)}

    @property
    def per_sample_nbytes(self) -> int | None:
        """Bytes one stored sample costs (x plus label), ``None`` when empty."""
        if not len(self):
            return None
        return _per_sample_nbytes(self._x, self._y.element_size())

    @property
    def n_seen(self) -> int:
        """Number of samples ever offered to :meth:`update` since the last reset."""
        return self._n_seen

    # ------------------------------------------------------------------ updates
    def update(
        self,
        x: Samples,
        y: torch.Tensor | np.ndarray,
        *,
        capacity_bytes: int,
        feature_fn: FeatureFn | None = None,
    ) -> ExemplarStore:
        """Offer new samples and keep what fits in ``capacity_bytes``.

        The capacity in samples is ``capacity_bytes // per_sample_bytes`` with
        ``per_sample_bytes = x.element_size() * prod(x.shape[1:])`` plus the element size
        of the label dtype needed by stored plus new labels. The pool (stored plus new)
        is reduced to that many samples by the policy. If the call fails the contents are
        left as they were.

        ``x`` may be a :class:`~continual.samples.LazySamples` (rows of a torch ``Dataset``):
        then only the rows kept are read and copied into the store (``"herding"`` reads
        every new sample of a class it re-herds, for its features), and the first row is
        read once for the dtype and shape. What is stored, and charged, is the same tensor
        as for an array of the same samples.

        Parameters
        ----------
        x
            Tensor, array or :class:`~continual.samples.LazySamples` of samples, first
            dimension = samples. Its dtype and sample shape must match earlier updates.
        y
            1-D integer labels, one per sample.
        capacity_bytes
            Bytes the store may hold after the call, a non-negative int.
        feature_fn
            Required by ``"herding"`` (ignored by the other policies): maps a batch of
            stored-dtype samples to a 2-D float feature array or tensor, one row per sample.

        Returns
        -------
        ExemplarStore
            ``self``.

        Examples
        --------
        >>> import torch
        >>> from continual.exemplars import ExemplarStore
        >>> store = ExemplarStore(policy="reservoir", random_state=0)
        >>> x, y = torch.zeros(50, 3, dtype=torch.int16), torch.arange(50) % 5
        >>> len(store.update(x, y, capacity_bytes=70)), store.n_seen  # 7 bytes per sample
        (10, 50)
        """
        policy = self._check_policy()
        _check_capacity(capacity_bytes)
        new_x, new_y = self._check_xy(x, y)
        if policy == "herding" and not callable(feature_fn):
            raise ValueError(
                f"feature_fn must be a callable mapping x to 2-D features for policy "
                f"'herding', got {feature_fn!r}"
            )
        stored_x = self._no_rows(new_x) if self._x is None else self._x
        stored_y = np.empty(0, np.int64) if self._y is None else _labels_numpy(self._y)
        pool_y = np.concatenate([stored_y, new_y])
        label_size = _label_dtype(pool_y).itemsize
        capacity = capacity_bytes // _per_sample_nbytes(stored_x, label_size)
        order = self._select(policy, stored_x, new_x, pool_y, capacity, feature_fn)
        self._x = read_only(_gather(stored_x, new_x, order))
        self._y = read_only(_labels_tensor(pool_y[order], stored_x.device))
        self._n_seen += len(new_y)
        return self

    def shrink(self, capacity_bytes: int) -> ExemplarStore:
        """Drop samples until the store fits in ``capacity_bytes``.

        ``"class_balanced"`` and ``"herding"`` recompute the quotas and keep a prefix of each
        class (for herding, the iCaRL reduce step). ``"random"`` and ``"reservoir"`` keep a
        uniformly random subset. A store that already fits is left unchanged.

        Parameters
        ----------
        capacity_bytes
            Bytes the store may hold after the call, a non-negative int. No policy needs
            features to shrink: herding keeps a prefix of each class.

        Returns
        -------
        ExemplarStore
            ``self``.

        Examples
        --------
        >>> import torch
        >>> from continual.exemplars import ExemplarStore
        >>> store = ExemplarStore(policy="class_balanced", random_state=0)
        >>> store = store.update(torch.zeros(9, 2), torch.tensor([0] * 6 + [1] * 3),
        ...                      capacity_bytes=1000)
        >>> store.shrink(capacity_bytes=45).class_counts()  # 9 bytes per sample: 5 fit
        {0: 3, 1: 2}
        """
        policy = self._check_policy()
        _check_capacity(capacity_bytes)
        if not len(self):
            return self
        capacity = capacity_bytes // self.per_sample_nbytes
        if capacity >= len(self):
            return self
        pool_y = _labels_numpy(self._y)
        empty = self._x[:0]
        order = self._select(policy, self._x, empty, pool_y, capacity, feature_fn=None)
        self._x = read_only(_gather(self._x, empty, order))
        self._y = read_only(_labels_tensor(pool_y[order], self._x.device))
        return self

    def clear(self) -> ExemplarStore:
        """Forget all contents, the seen counter and the expected dtype; reseed.

        Examples
        --------
        >>> import torch
        >>> from continual.exemplars import ExemplarStore
        >>> store = ExemplarStore(random_state=0)
        >>> store = store.update(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), capacity_bytes=99)
        >>> len(store.clear()), store.per_sample_nbytes
        (0, None)
        """
        self._reset()
        return self

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw a random batch of ``n`` stored samples.

        Without replacement when ``n <= len(self)``, with replacement otherwise.

        Parameters
        ----------
        n
            Batch size, a non-negative int.
        generator
            CPU ``torch.Generator`` driving the draw.

        Returns
        -------
        tuple of torch.Tensor
            ``(x, y)`` batch.

        Examples
        --------
        >>> import torch
        >>> from continual.exemplars import ExemplarStore
        >>> store = ExemplarStore(random_state=0)
        >>> store = store.update(torch.arange(8).reshape(4, 2), torch.tensor([0, 1, 2, 3]),
        ...                      capacity_bytes=100)
        >>> xb, yb = store.sample(3, torch.Generator().manual_seed(0))
        >>> xb.shape, sorted(set(yb.tolist())) == sorted(yb.tolist())
        (torch.Size([3, 2]), True)
        """
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        size = len(self)
        if not size:
            raise ValueError("cannot sample from an empty ExemplarStore; call update first")
        if n <= size:
            index = torch.randperm(size, generator=generator)[:n]
        else:
            index = torch.randint(size, (int(n),), generator=generator)
        index = index.to(self._x.device)
        return self._x[index], self._y[index]

    # ------------------------------------------------------------------ accounting
    def memory_items(self) -> dict[str, object]:
        """The stored tensors ``{"x": ..., "y": ...}`` (empty before the first update).

        Examples
        --------
        >>> import torch
        >>> from continual.exemplars import ExemplarStore
        >>> store = ExemplarStore(random_state=0)
        >>> store = store.update(torch.zeros(2, 3, dtype=torch.uint8), torch.tensor([1, 2]),
        ...                      capacity_bytes=100)
        >>> {name: tuple(t.shape) for name, t in store.memory_items().items()}
        {'x': (2, 3), 'y': (2,)}
        """
        if self._x is None:
            return {}
        return {"x": self._x, "y": self._y}

    def state_dict(self) -> dict[str, object]:
        """Contents, seen counter and generator state (see :mod:`continual.state`).

        Examples
        --------
        >>> import torch
        >>> from continual.exemplars import ExemplarStore
        >>> store = ExemplarStore(policy="random", random_state=0)
        >>> store = store.update(torch.arange(6).reshape(3, 2), torch.tensor([0, 1, 1]),
        ...                      capacity_bytes=100)
        >>> copy = ExemplarStore(policy="random")
        >>> copy.load_state_dict(store.state_dict())
        >>> torch.equal(copy.x, store.x), copy.n_seen, copy.class_counts()
        (True, 3, {0: 1, 1: 2})
        """
        return {
            "x": self._x,
            "y": self._y,
            "n_seen": self._n_seen,
            "rng": rng_state(self._rng),
            SHARDS: ["x", "y"],  # under data-parallel training, this rank's rows
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what :meth:`state_dict` returned.

        The union of every rank's store, from a checkpoint written by several ranks, gives
        each rank its share of the rows (see :func:`~continual.distributed.local_share`).
        """
        state = local_share(state)
        self._x = None if state["x"] is None else read_only(self._placed(state["x"]))
        self._y = None if state["y"] is None else read_only(self._placed(state["y"]))
        self._n_seen = int(state["n_seen"])
        load_rng_state(self._rng, state["rng"])

    def _placed(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self.device is None else tensor.to(self.device)

    def _no_rows(self, x: torch.Tensor | LazySamples) -> torch.Tensor:
        """An empty tensor with the dtype and sample shape of ``x``'s samples, on the store's
        device (or on ``x``'s)."""
        if isinstance(x, LazySamples):
            empty = torch.empty((0, *x.sample_shape), dtype=x.sample_dtype)
        else:
            empty = x[:0]
        return self._placed(empty)

    def __nbytes__(self) -> int:
        """Bytes of storage held by the stored tensors."""
        return sum(t.untyped_storage().nbytes() for t in self.memory_items().values())

    def __repr__(self) -> str:
        return (
            f"ExemplarStore(policy={self.policy!r}, random_state={self.random_state!r}, "
            f"n={len(self)}, classes={len(self.classes)}, nbytes={self.__nbytes__()})"
        )

    # ------------------------------------------------------------------ internals
    def _check_policy(self) -> str:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        return self.policy

    def _check_xy(
        self, x: Samples, y: torch.Tensor | np.ndarray
    ) -> tuple[torch.Tensor | LazySamples, np.ndarray]:
        if isinstance(x, LazySamples):
            if not len(x):
                raise ValueError("x must hold at least one sample, got an empty LazySamples")
            new_x = x
            got = (x.sample_dtype, x.sample_shape)
        else:
            new_x = _as_tensor(x)
            if new_x.ndim == 0 or len(new_x) == 0:
                raise ValueError(
                    f"x must hold at least one sample (first dimension = samples), "
                    f"got shape {tuple(new_x.shape)}"
                )
            if self._x is not None:
                new_x = new_x.to(self._x.device)
            got = (new_x.dtype, tuple(new_x.shape[1:]))
        if self._x is not None:
            expected = (self._x.dtype, tuple(self._x.shape[1:]))
            if got != expected:
                raise ValueError(
                    f"x must match earlier updates: expected dtype {expected[0]} and sample "
                    f"shape {expected[1]}, got dtype {got[0]} and sample shape {got[1]}"
                )
        new_y = _labels_numpy(y)
        if new_y.shape != (len(new_x),):
            raise ValueError(
                f"y must be 1-D with one label per sample of x ({len(new_x)}), "
                f"got shape {new_y.shape}"
            )
        return new_x, new_y

    def _select(
        self,
        policy: str,
        stored_x: torch.Tensor,
        new_x: torch.Tensor | LazySamples,
        pool_y: np.ndarray,
        capacity: int,
        feature_fn: FeatureFn | None,
    ) -> np.ndarray:
        """Pool indices to keep, in store order (stored samples first, then new ones)."""
        n_stored, n_pool = len(stored_x), len(pool_y)
        if policy == "random":
            return self._rng.choice(n_pool, size=min(capacity, n_pool), replace=False)
        if policy == "reservoir":
            return self._reservoir(n_stored, n_pool, capacity)
        labels, counts = np.unique(pool_y, return_counts=True)
        quotas = balanced_quotas(dict(zip(labels.tolist(), counts.tolist())), capacity)
        kept = []
        for label, quota in quotas.items():
            members = np.flatnonzero(pool_y == label)
            if members[-1] < n_stored:  # no new samples: keep a prefix of the stored order
                kept.append(members[:quota])
            elif policy == "class_balanced":
                kept.append(self._rng.choice(members, size=quota, replace=False))
            elif quota:
                features = _features(feature_fn, _gather(stored_x, new_x, members))
                kept.append(members[herding(features, quota)])
        return np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)

    def _reservoir(self, n_stored: int, n_pool: int, capacity: int) -> np.ndarray:
        kept = np.arange(n_stored)
        if n_stored > capacity:
            kept = np.sort(self._rng.choice(n_stored, size=capacity, replace=False))
        n_new = n_pool - n_stored
        slots = reservoir_update(
            len(kept), max(self._n_seen, len(kept)), n_new, capacity, self._rng
        )
        appended = min(capacity - len(kept), n_new)
        order = np.concatenate([kept, np.zeros(appended, dtype=np.int64)])
        offered = np.flatnonzero(slots >= 0)[::-1]  # last writer of a slot wins
        unique_slots, last = np.unique(slots[offered], return_index=True)
        order[unique_slots] = n_stored + offered[last]
        return order


def _check_capacity(capacity_bytes: object) -> None:
    if (
        not isinstance(capacity_bytes, numbers.Integral)
        or isinstance(capacity_bytes, bool)
        or capacity_bytes < 0
    ):
        raise ValueError(f"capacity_bytes must be a non-negative int, got {capacity_bytes!r}")


def _as_tensor(x: object) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        try:
            return torch.from_numpy(np.ascontiguousarray(x))
        except TypeError:
            raise TypeError(
                f"x must have a dtype torch supports, got numpy dtype {x.dtype}"
            ) from None
    raise TypeError(
        f"x must be a torch.Tensor, a numpy.ndarray or a continual.samples.LazySamples, got "
        f"{type(x).__name__}"
    )


def _labels_numpy(y: object) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    elif not isinstance(y, np.ndarray):
        raise TypeError(f"y must be a torch.Tensor or numpy.ndarray, got {type(y).__name__}")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y must hold integer labels, got dtype {y.dtype}")
    if y.size and (y.min() < np.iinfo(np.int64).min or y.max() > np.iinfo(np.int64).max):
        raise ValueError(f"y must hold labels that fit in int64, got max {y.max()}")
    return y.astype(np.int64)


def _label_dtype(labels: np.ndarray) -> np.dtype:
    """Smallest of uint8, int16, int32, int64 holding every label."""
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _labels_tensor(labels: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(labels.astype(_label_dtype(labels))).to(device)


def _per_sample_nbytes(x: torch.Tensor, label_size: int) -> int:
    return x.element_size() * math.prod(x.shape[1:]) + label_size


def _gather(
    stored: torch.Tensor, new: torch.Tensor | LazySamples, order: np.ndarray
) -> torch.Tensor:
    """Rows ``order`` of ``cat([stored, new])`` in a fresh tensor, without building the cat
    (of a :class:`~continual.samples.LazySamples`, only those rows are read)."""
    out = torch.empty((len(order), *stored.shape[1:]), dtype=stored.dtype, device=stored.device)
    from_stored = order < len(stored)
    for mask, source, offset in ((from_stored, stored, 0), (~from_stored, new, len(stored))):
        if mask.any():
            rows = order[mask] - offset
            if isinstance(source, LazySamples):
                values = source.read(rows).to(out.device)
            else:
                values = source[torch.as_tensor(rows, device=source.device)].to(out.device)
            out[torch.as_tensor(np.flatnonzero(mask), device=out.device)] = values
    return out


def _features(feature_fn: FeatureFn, batch: torch.Tensor) -> np.ndarray:
    features = feature_fn(batch)
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    features = np.asarray(features)
    if features.ndim != 2 or len(features) != len(batch):
        raise ValueError(
            f"feature_fn must return a 2-D array with one row per sample ({len(batch)}), "
            f"got shape {features.shape}"
        )
    return features
