"""Exemplar-selection steps shared by every rehearsal strategy.

iCaRL, MEMO and Replay all decide *which* samples to keep with these functions; how many
to keep is decided by the byte budget (see :class:`continual.exemplars.ExemplarStore`).
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Mapping

import numpy as np
import torch
from sklearn.preprocessing import normalize
from sklearn.utils import check_array

__all__ = ["balanced_quotas", "herding", "reservoir_update"]


def herding(features: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """Select ``n`` samples by iCaRL herding, in selection order.

    Rows are L2-normalised and ``mu`` is the mean of the normalised rows. At step ``k``
    (1-based) the sample chosen, without replacement, is the one minimising
    ``|| mu - (sum of the chosen rows + candidate) / k ||``. Ties go to the lowest index.
    Herding is greedy, so ``herding(f, m)`` is the prefix of ``herding(f, n)`` for ``m <= n``;
    shrinking an iCaRL memory therefore keeps a prefix.

    Parameters
    ----------
    features
        2-D array or tensor, one row of features per sample.
    n
        Number of samples to select, ``0 <= n <= len(features)``.

    Returns
    -------
    numpy.ndarray
        ``n`` distinct row indices (``int64``) in the order they were chosen.

    References
    ----------
    Rebuffi, Kolesnikov, Sperl, Lampert. "iCaRL: Incremental Classifier and Representation
    Learning", CVPR 2017 (Algorithm 4).

    Examples
    --------
    >>> import numpy as np
    >>> from continual.selection import herding
    >>> features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.1]])
    >>> herding(features, 3)
    array([2, 3, 1])
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    array = check_array(features, dtype=np.float64, ensure_min_samples=0, input_name="features")
    n_samples = array.shape[0]
    if not _is_int(n) or not 0 <= n <= n_samples:
        raise ValueError(f"n must be an int in [0, {n_samples}] (the number of rows), got {n!r}")
    unit = normalize(array, norm="l2")
    mu = unit.mean(axis=0) if n_samples else np.zeros(array.shape[1])
    chosen = np.empty(int(n), dtype=np.int64)
    taken = np.zeros(n_samples, dtype=bool)
    running = np.zeros(array.shape[1])
    for step in range(int(n)):
        distances = np.linalg.norm(mu - (running + unit) / (step + 1), axis=1)
        distances[taken] = np.inf
        best = int(np.argmin(distances))
        chosen[step] = best
        taken[best] = True
        running += unit[best]
    return chosen


def balanced_quotas(available: Mapping[Hashable, int], n_total: int) -> dict[Hashable, int]:
    """Split ``n_total`` slots among classes as evenly as their sizes allow.

    Every class gets the same share; a class with fewer samples than its share keeps all it
    has and its surplus is shared among the others, repeatedly (water filling). The last
    ``remainder`` slots go one each to the unfilled classes in sorted label order, so no slot
    is lost to flooring: the quotas sum to ``min(n_total, sum(available.values()))``.

    Parameters
    ----------
    available
        Number of samples available per class label. Labels must be mutually sortable.
    n_total
        Number of slots to hand out, a non-negative int.

    Returns
    -------
    dict
        Quota per label (every label of ``available``), in sorted label order.

    Examples
    --------
    >>> from continual.selection import balanced_quotas
    >>> balanced_quotas({0: 10, 1: 10, 2: 10}, 8)
    {0: 3, 1: 3, 2: 2}
    >>> balanced_quotas({0: 1, 1: 10, 2: 10}, 8)
    {0: 1, 1: 4, 2: 3}
    """
    if not _is_int(n_total) or n_total < 0:
        raise ValueError(f"n_total must be a non-negative int, got {n_total!r}")
    for label, size in available.items():
        if not _is_int(size) or size < 0:
            raise ValueError(
                f"available must map labels to non-negative ints, got {size!r} for label {label!r}"
            )
    labels = sorted(available)
    quotas = dict.fromkeys(labels, 0)
    budget = min(int(n_total), sum(int(size) for size in available.values()))
    open_labels = [label for label in labels if available[label] > 0]
    while open_labels:
        share, remainder = divmod(budget, len(open_labels))
        filled = [label for label in open_labels if available[label] <= share]
        if not filled:
            for rank, label in enumerate(open_labels):
                quotas[label] = share + int(rank < remainder)
            break
        for label in filled:
            quotas[label] = int(available[label])
            budget -= int(available[label])
        open_labels = [label for label in open_labels if available[label] > share]
    return quotas


def reservoir_update(
    n_stored: int, n_seen: int, n_new: int, capacity: int, rng: np.random.Generator
) -> np.ndarray:
    """Decide where each of ``n_new`` offered items goes, by reservoir sampling (Algorithm R).

    Items are offered one after the other. While the reservoir holds fewer than ``capacity``
    items the next item is appended. Afterwards the item that has ``s`` items offered before
    it draws ``j`` uniformly from ``{0, ..., s}`` and replaces slot ``j`` if ``j < capacity``,
    else it is discarded. Every offered item is then kept with probability
    ``capacity / (items offered)``.

    Parameters
    ----------
    n_stored
        Items in the reservoir now, ``0 <= n_stored <= capacity``.
    n_seen
        Items offered so far (``n_seen >= n_stored``).
    n_new
        Items offered now.
    capacity
        Maximum number of items kept.
    rng
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``int64`` slot per new item, ``-1`` when discarded. Slots ``>= n_stored`` are appends.
        Apply the decisions in order: a later item may overwrite a slot an earlier one took.

    References
    ----------
    Vitter. "Random sampling with a reservoir", ACM TOMS 11(1), 1985.

    Examples
    --------
    >>> import numpy as np
    >>> from continual.selection import reservoir_update
    >>> reservoir_update(n_stored=1, n_seen=1, n_new=2, capacity=3, rng=np.random.default_rng(0))
    array([1, 2])
    >>> slots = reservoir_update(3, 3, 4, 3, np.random.default_rng(0))
    >>> slots.shape, bool(((slots >= -1) & (slots < 3)).all())
    ((4,), True)
    """
    for name, value in (("n_stored", n_stored), ("n_new", n_new), ("capacity", capacity)):
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if n_stored > capacity:
        raise ValueError(f"n_stored must be at most capacity={capacity}, got {n_stored}")
    if not _is_int(n_seen) or n_seen < n_stored:
        raise ValueError(f"n_seen must be an int >= n_stored={n_stored}, got {n_seen!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    slots = np.full(n_new, -1, dtype=np.int64)
    n_fill = min(capacity - n_stored, n_new)
    slots[:n_fill] = np.arange(n_stored, n_stored + n_fill)
    n_rest = n_new - n_fill
    if n_rest and capacity:
        offered_before = n_seen + n_fill + np.arange(n_rest)
        draws = rng.integers(0, offered_before + 1)
        slots[n_fill:] = np.where(draws < capacity, draws, -1)
    return slots


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
