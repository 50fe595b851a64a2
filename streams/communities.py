"""A synthetic interaction generator with planted user and item communities."""

from __future__ import annotations

from numbers import Real

import numpy as np

from continual.validation import COUNT, FRACTION, Interval, check_params
from streams.interactions import Interactions

__all__ = ["planted_communities"]

_CONSTRAINTS = {
    "n_users": [COUNT],
    "n_items": [COUNT],
    "n_communities": [COUNT],
    "interactions_per_user": [COUNT],
    "p_in": [FRACTION],
    "popularity": [Interval(Real, None, None, closed="neither")],  # finite
    "return_communities": ["boolean"],
}


def planted_communities(
    n_users: int = 300,
    n_items: int = 400,
    *,
    n_communities: int = 8,
    interactions_per_user: int = 20,
    p_in: float = 0.9,
    popularity: float = 0.5,
    seed: int | None = 0,
    return_communities: bool = False,
) -> Interactions | tuple[Interactions, np.ndarray, np.ndarray]:
    """Implicit feedback where users mostly pick items of their own community.

    Users and items get a community uniformly at random. Each user draws
    ``interactions_per_user`` items: with probability ``p_in`` from its community, otherwise from
    all items, in both cases with Zipf-like popularity ``rank ** -popularity`` (0 is uniform).
    Duplicate (user, item) pairs are dropped. Timestamps are the draw order shuffled across users,
    so time blocks see new users and items arrive.

    Parameters
    ----------
    n_users, n_items
        Vocabulary sizes.
    n_communities
        Number of planted communities.
    interactions_per_user
        Draws per user before deduplication.
    p_in
        Probability that a draw stays inside the user's community.
    popularity
        Exponent of the item popularity law, a finite float (negative favours the least
        popular items).
    seed
        Seed of every random choice.
    return_communities
        Also return the user and item community labels.

    Raises
    ------
    ValueError
        Naming the parameter and its value: a size that is not an int >= 1, more
        communities than items, ``p_in`` outside ``[0, 1]``, a NaN or infinite
        ``popularity``, or one so large that the item weights overflow.

    Examples
    --------
    >>> from streams.communities import planted_communities
    >>> data, users, items = planted_communities(50, 60, n_communities=3, return_communities=True)
    >>> data
    Interactions(n_interactions=628, n_users=50, n_items=60, times=True, ratings=False)
    >>> bool((users[data.users] == items[data.items]).mean() > 0.85)
    True
    """
    check_params(
        _CONSTRAINTS,
        {
            "n_users": n_users,
            "n_items": n_items,
            "n_communities": n_communities,
            "interactions_per_user": interactions_per_user,
            "p_in": p_in,
            "popularity": popularity,
            "return_communities": return_communities,
        },
        "planted_communities",
    )
    if n_communities > n_items:
        raise ValueError(f"n_communities must be at most n_items={n_items}, got {n_communities}")
    n_users, n_items, n_communities = int(n_users), int(n_items), int(n_communities)
    interactions_per_user = int(interactions_per_user)
    rng = np.random.default_rng(seed)
    user_labels = rng.integers(n_communities, size=n_users)
    item_labels = np.arange(n_items) % n_communities
    rng.shuffle(item_labels)
    with np.errstate(over="ignore", invalid="ignore"):
        weight = (1.0 + rng.permutation(n_items)) ** -float(popularity)
        overflow = not np.isfinite(weight / weight.sum()).all()
    if overflow:
        raise ValueError(
            f"popularity={popularity!r} is too extreme for {n_items} items: the weights "
            "rank ** -popularity overflow"
        )
    draws = n_users * interactions_per_user
    users = np.repeat(np.arange(n_users), interactions_per_user)
    inside = rng.random(draws) < p_in
    items = rng.choice(n_items, size=draws, p=weight / weight.sum())
    order = np.lexsort((rng.random(n_items), item_labels))  # items grouped by community
    starts = np.searchsorted(item_labels[order], np.arange(n_communities))
    sizes = np.bincount(item_labels, minlength=n_communities)
    community = user_labels[users[inside]]
    offsets = _weighted_offsets(weight[order], starts, sizes, community, rng)
    items[inside] = order[starts[community] + offsets]
    times = rng.permutation(draws)
    data = Interactions(users, items, times=times, n_users=n_users, n_items=n_items)
    data = data.select(np.argsort(data.times, kind="stable"))
    data, _ = data.deduplicate()
    if return_communities:
        return data, user_labels, item_labels
    return data


def _weighted_offsets(
    weight: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    community: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Offsets inside each draw's community block, drawn with the block's weights (vectorised)."""
    cumulative = np.cumsum(weight)
    before = np.concatenate([[0.0], cumulative])[starts]
    totals = np.concatenate([[0.0], cumulative])[starts + sizes] - before
    targets = before[community] + rng.random(community.size) * totals[community]
    position = np.searchsorted(cumulative, targets, side="right")
    return np.clip(position - starts[community], 0, sizes[community] - 1)
