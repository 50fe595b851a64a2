"""Interaction streams: blocks of interactions in time, random or ID order."""

from __future__ import annotations

import itertools
from numbers import Integral
from typing import NamedTuple

import numpy as np

from continual.validation import COUNT, StrOptions, check_params
from streams.experience import Experience, Stream
from streams.interactions import Interactions

__all__ = ["RankingTest", "interaction_blocks"]


class RankingTest(NamedTuple):
    """The test payload of an interaction block: items to find, and items to mask.

    A recommender ranks every item for each user of ``targets`` and counts the hits among the
    user's ``targets`` items; the user's ``exclude`` items (interactions the evaluator knows
    the user already had) are masked from the ranking. The mask travels with the payload
    because a recommender does not store interactions.

    Examples
    --------
    >>> from streams.interactions import Interactions
    >>> from streams.interaction_streams import RankingTest
    >>> test = RankingTest(Interactions([0], [2]), Interactions([0], [1]))
    >>> test.targets.items.tolist(), test.exclude.items.tolist()
    ([2], [1])
    """

    targets: Interactions
    exclude: Interactions


_ORDERS = ("auto", "time", "random", "id")
_CONSTRAINTS = {
    "n_blocks": [COUNT],
    "order": [StrOptions(set(_ORDERS))],
    "seed": [Integral, np.random.Generator, None],
    "name": [str],
}


def interaction_blocks(
    data: Interactions,
    n_blocks: int,
    *,
    order: str = "auto",
    seed: int | None = 0,
    name: str = "interactions",
) -> Stream:
    """Cut interactions into ``n_blocks`` consecutive blocks of (nearly) equal size.

    Each experience's ``train`` is one block (an :class:`Interactions` with the full vocabulary);
    its metadata marks the users and items seen for the first time in that block
    (``new_users``, ``new_items`` as int32 arrays, and their counts) and the block's
    ``start``/``stop`` positions in the chosen order. Its ``test`` is a :class:`RankingTest`
    for prequential evaluation: the targets are the block itself and the mask is every
    interaction of the earlier blocks. Scored after learning blocks ``0..t-1`` (the forward
    entry ``R[t-1][t]`` of a score matrix) it is the block scored before it is learned, its
    users' past items masked; scored after learning block ``t`` or later it measures how well
    the block's own interactions are still ranked. The masks hold the earlier blocks, so the
    test payloads hold about ``n_blocks / 2`` copies of the interactions.

    Parameters
    ----------
    data
        The interactions.
    n_blocks
        Number of blocks, an int at least 1 and at most ``len(data)`` (numpy ints too).
    order
        ``"time"`` (by timestamp, stable), ``"random"`` (a seeded shuffle), ``"id"`` (by user then
        item ID, so later blocks bring new users) or ``"auto"`` (time when timestamps exist,
        otherwise random).
    seed
        Seed of the random order.
    name
        The stream's name.

    Raises
    ------
    ValueError
        Naming the parameter and its value: ``n_blocks`` not an int in ``[1, len(data)]``,
        an unknown ``order``, ``order="time"`` without timestamps.
    TypeError
        When ``data`` is not an :class:`Interactions`.

    Examples
    --------
    >>> from streams.interactions import Interactions
    >>> from streams.interaction_streams import interaction_blocks
    >>> data = Interactions([0, 1, 0, 2, 2, 3], [0, 0, 1, 2, 0, 3], times=[1, 2, 3, 4, 5, 6])
    >>> stream = interaction_blocks(data, 3)
    >>> [(e.train.users.tolist(), e.metadata["new_users"].tolist()) for e in stream]
    [([0, 1], [0, 1]), ([0, 2], [2]), ([2, 3], [3])]
    >>> [e.metadata["n_new_items"] for e in stream]
    [1, 2, 1]
    >>> test = stream[2].test
    >>> test.targets.users.tolist(), test.exclude.users.tolist()
    ([2, 3], [0, 1, 0, 2])
    """
    if not isinstance(data, Interactions):
        raise TypeError(f"data must be an Interactions, got {type(data).__name__}")
    check_params(
        _CONSTRAINTS,
        {"n_blocks": n_blocks, "order": order, "seed": seed, "name": name},
        "interaction_blocks",
    )
    n_blocks = int(n_blocks)
    if n_blocks > len(data):
        raise ValueError(f"n_blocks must be at most len(data)={len(data)}, got {n_blocks}")
    if order == "time" and data.times is None:
        raise ValueError("order='time' needs timestamps, but data.times is None")
    if order == "auto":
        order = "time" if data.times is not None else "random"
    positions = _ordered(data, order, seed)
    seen_users = np.zeros(data.n_users, dtype=bool)
    seen_items = np.zeros(data.n_items, dtype=bool)
    experiences = []
    bounds = np.linspace(0, len(data), n_blocks + 1).astype(np.int64)
    for index, (start, stop) in enumerate(itertools.pairwise(bounds)):
        block = data.select(positions[start:stop])
        new_users = _first_seen(block.users, seen_users)
        new_items = _first_seen(block.items, seen_items)
        metadata = {
            "start": int(start),
            "stop": int(stop),
            "order": order,
            "new_users": new_users,
            "new_items": new_items,
            "n_new_users": int(new_users.size),
            "n_new_items": int(new_items.size),
        }
        test = RankingTest(block, data.select(positions[:start]))
        experiences.append(Experience(index, block, test, metadata=metadata))
    return Stream(experiences, name=name, seed=seed if order == "random" else None)


def _ordered(data: Interactions, order: str, seed: int | None) -> np.ndarray:
    if order == "time":
        return np.argsort(data.times, kind="stable")
    if order == "random":
        return np.random.default_rng(seed).permutation(len(data))
    return np.lexsort((data.items, data.users))


def _first_seen(ids: np.ndarray, seen: np.ndarray) -> np.ndarray:
    unique = np.unique(ids)
    new = unique[~seen[unique]]
    seen[new] = True
    return new.astype(np.int32)
