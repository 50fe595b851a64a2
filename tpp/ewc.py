"""Elastic weight consolidation for neural TPPs: a diagonal Fisher and anchor weights."""

from __future__ import annotations

import numpy as np
import torch

from tpp.data import EventArrays, make_batch
from tpp.likelihood import sequence_log_likelihood

__all__ = ["EWCPenalty"]


class EWCPenalty:
    """``strength / 2 * sum_p F_p (theta_p - theta*_p)^2`` over the model's parameters.

    After each window :meth:`consolidate` adds that window's empirical diagonal Fisher
    information (squared gradients of the per-event negative log-likelihood, one per mini-batch,
    averaged) to the running Fisher, and stores the current weights as anchors.

    Stored: one float32 Fisher tensor and one float32 anchor tensor per parameter, i.e. twice the
    model's bytes, charged to the ``ewc`` account through :meth:`memory_items`.

    Parameters
    ----------
    strength
        The penalty weight ``lambda``.

    Examples
    --------
    >>> from tpp.nhp import NHP
    >>> _ = torch.manual_seed(0)
    >>> model = NHP(2, 4)
    >>> data = EventArrays(np.arange(6.0), np.arange(6) % 2, np.array([0, 3, 6]), 2)
    >>> ewc = EWCPenalty(10.0)
    >>> float(ewc(model)), ewc.consolidate(model, data, batch_size=2)
    (0.0, None)
    >>> ewc(model).item(), len(ewc.memory_items()["fisher"])
    (0.0, 6)
    """

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self.fisher: list[torch.Tensor] = []
        self.anchors: list[torch.Tensor] = []

    def __call__(self, model: torch.nn.Module) -> torch.Tensor:
        if not self.fisher:
            return torch.zeros(())
        total = sum(
            (f * (p - a) ** 2).sum()
            for f, p, a in zip(self.fisher, model.parameters(), self.anchors)
        )
        return 0.5 * self.strength * total

    def consolidate(
        self,
        model: torch.nn.Module,
        data: EventArrays,
        *,
        batch_size: int,
        time_scale: float = 1.0,
        n_points: int = 20,
    ) -> None:
        """Add the Fisher of ``data`` at the current weights and re-anchor."""
        params = list(model.parameters())
        fisher = [torch.zeros_like(p) for p in params]
        n_batches = 0
        for start in range(0, len(data), batch_size):
            batch = make_batch(
                data, np.arange(start, min(start + batch_size, len(data))), time_scale
            )
            if not batch.n_events:
                continue
            log_likelihood = sequence_log_likelihood(model, batch, n_points)[0]
            grads = torch.autograd.grad(
                -log_likelihood.sum() / batch.n_events, params, allow_unused=True
            )
            for f, g in zip(fisher, grads):
                if g is not None:
                    f += g.detach() ** 2
            n_batches += 1
        fisher = [f / max(1, n_batches) for f in fisher]
        self.fisher = (
            [old + new for old, new in zip(self.fisher, fisher)] if self.fisher else fisher
        )
        self.anchors = [p.detach().clone() for p in params]

    def memory_items(self) -> dict[str, list[torch.Tensor]]:
        """The Fisher and anchor tensors, for the accountant."""
        return {"fisher": self.fisher, "anchors": self.anchors}
