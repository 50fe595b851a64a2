"""Elastic weight consolidation as a Learner plugin: a diagonal Fisher and anchor weights."""

from __future__ import annotations

from typing import Any

import torch

from continual.devices import module_device
from continual.learner import Learner
from continual.measure import nbytes
from continual.plugin import Plugin
from continual.state import read_only

__all__ = ["EWC"]


class EWC(Plugin):
    """Add ``strength / 2 * sum_p F_p (theta_p - theta*_p)^2`` to every training loss.

    After each experience, the empirical diagonal Fisher information of that experience
    (squared gradients of the learner's loss, one per mini-batch of the experience's own
    training payload, averaged) is added to the running Fisher, and the current weights become
    the anchors. Before the first experience ends there is no penalty. The batches, forward
    pass and loss are the learner's own, so the plugin serves any domain; the Fisher batches
    are drawn in a fixed order (seed 0) and moved to the learner's device.

    Stored: one float32 Fisher tensor and one float32 anchor tensor per parameter, twice the
    model's bytes, on the device of the model, charged to ``ewc/fisher`` and ``ewc/anchors``.
    Both are replaced after each experience, never modified in place (rollbacks keep them by
    reference).

    Parameters
    ----------
    strength
        The penalty weight ``lambda``.

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
    >>> ewc = EWC(10.0)
    >>> learner = Learner(NHP(2, 4), plugins=[ewc], accountant=MemoryAccountant(), batch_size=4,
    ...                   optimizer="adam", lr=1e-2, loss=training_loss, batches=event_batches,
    ...                   forward=functools.partial(sequence_log_likelihood, n_points=4))
    >>> for experience in stream:
    ...     learner.train_experience(experience)
    >>> ledger = learner.accountant.ledger().accounts
    >>> ledger["ewc/fisher"] == ledger["ewc/anchors"] == ledger["model"]
    True
    >>> float(ewc.penalty(learner.model).detach())  # at the anchors
    0.0
    >>> with torch.no_grad():
    ...     _ = learner.model.head.linear.bias.add_(1.0)
    >>> float(ewc.penalty(learner.model).detach()) > 0.0
    True
    """

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self.fisher: list[torch.Tensor] = []
        self.anchors: list[torch.Tensor] = []

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """The penalty at the model's current weights (0 before the first consolidation)."""
        if not self.fisher:
            return torch.zeros((), device=module_device(model))
        total = sum(
            (f * (p - a) ** 2).sum()
            for f, p, a in zip(self.fisher, model.parameters(), self.anchors)
        )
        return 0.5 * self.strength * total

    def planned_bytes(self, model: torch.nn.Module) -> dict[str, int]:
        """Bytes of the Fisher and the anchors of ``model`` (a meta-device model will do)."""
        size = nbytes(model)
        return {"fisher": size, "anchors": size}

    def before_backward(self, learner: Learner) -> None:
        if self.fisher:
            learner.loss = learner.loss + self.penalty(learner.model)

    def after_experience(self, learner: Learner) -> None:
        fisher = self.experience_fisher(learner)
        if self.fisher:
            fisher = [old + new for old, new in zip(self.fisher, fisher)]
        self.fisher = read_only(fisher)
        self.anchors = read_only([p.detach().clone() for p in learner.model.parameters()])

    @torch.enable_grad()
    def experience_fisher(self, learner: Learner) -> list[torch.Tensor]:
        """The mean squared gradient of the learner's loss over the experience's batches."""
        params = list(learner.model.parameters())
        fisher = [torch.zeros_like(p) for p in params]
        learns = [(f, p) for f, p in zip(fisher, params) if p.requires_grad]
        generator = torch.Generator().manual_seed(0)  # orders the batches, built on the CPU
        n_batches = 0
        for batch in learner.batches(learner.experience.train, learner.batch_size, generator):
            inputs, targets = learner.to_device(batch)
            loss = learner.loss_fn(learner.forward(inputs), targets)
            grads = torch.autograd.grad(loss, [p for _, p in learns], allow_unused=True)
            for (f, _), g in zip(learns, grads):
                if g is not None:
                    f += g.detach() ** 2
            n_batches += 1
        return [f / max(1, n_batches) for f in fisher]

    def memory_items(self) -> dict[str, Any]:
        return {"fisher": self.fisher, "anchors": self.anchors}

    def state_dict(self) -> dict[str, Any]:
        return {"fisher": list(self.fisher), "anchors": list(self.anchors)}

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        """Restore the Fisher and the anchors, onto the device of the learner's model (a
        checkpoint holds them on the CPU)."""
        params = list(learner.model.parameters())
        self.fisher = read_only([f.to(p.device) for f, p in zip(state["fisher"], params)])
        self.anchors = read_only([a.to(p.device) for a, p in zip(state["anchors"], params)])
