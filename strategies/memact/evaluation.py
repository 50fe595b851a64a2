"""Evaluate a curation policy on held-out episodes: success, context size and edits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from strategies.memact.rollout import run_episode

__all__ = ["evaluate_policy"]


def evaluate_policy(
    policy: Any,
    episodes: Iterable[Any],
    *,
    budget: int | None = None,
    charge: str = "tokens",
    greedy: bool = True,
) -> dict[str, float]:
    """Play every episode once and average the results.

    Returns ``success`` (strict 0/1 reward), ``partial`` (fraction of keys right), ``overflow``
    (share of episodes that ran over the budget), ``bytes_per_step`` and ``tokens_per_step``
    (mean context size over the steps of an episode, averaged over episodes), ``edits`` (edits
    per episode) and ``episodes``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from strategies.memact.curators import KeepEverything
    >>> obs = [SimpleNamespace(id="a", text="k0=v1"), SimpleNamespace(id="b", text="k1=v2")]
    >>> episode = SimpleNamespace(questions=("k0",), observations=obs, budget=100,
    ...     instruction="Remember: k0", reward=lambda a, partial=None: float(a == {"k0": "v1"}))
    >>> evaluate_policy(KeepEverything(), [episode])
    {'success': 1.0, 'partial': 1.0, 'overflow': 0.0, 'bytes_per_step': 40.0,
     'tokens_per_step': 10.0, 'edits': 0.0, 'episodes': 1}
    """
    trajectories = [
        run_episode(e, policy, budget=budget, charge=charge, greedy=greedy, record=False)
        for e in episodes
    ]
    if not trajectories:
        raise ValueError("episodes must hold at least one episode, got none")

    def mean_size(values: list[int]) -> float:
        return float(np.mean(values)) if values else 0.0

    return {
        "success": float(np.mean([t.success for t in trajectories])),
        "partial": float(np.mean([t.partial for t in trajectories])),
        "overflow": float(np.mean([t.overflow for t in trajectories])),
        "bytes_per_step": float(np.mean([mean_size(t.bytes_per_step) for t in trajectories])),
        "tokens_per_step": float(np.mean([mean_size(t.tokens_per_step) for t in trajectories])),
        "edits": float(np.mean([t.n_edits for t in trajectories])),
        "episodes": len(trajectories),
    }
