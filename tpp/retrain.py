"""Retrain: every experience after the first starts from fresh weights and optimizer state."""

from __future__ import annotations

import torch

from continual.learner import Learner
from continual.plugin import Plugin

__all__ = ["Retrain"]


class Retrain(Plugin):
    """Re-initialise the model and clear the optimizer state before every experience but the
    first, so that each experience is learned from scratch, alone.

    Every module of the model that defines ``reset_parameters()`` re-draws its own parameters
    (from torch's generator, which the estimators seed per call); a parameter that no such
    module owns raises ``TypeError``. The optimizer object (with its hyperparameters) is kept,
    its state emptied.

    Stored: nothing.

    Examples
    --------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> from continual import Learner
    >>> _ = torch.manual_seed(0)
    >>> learner = Learner(torch.nn.Linear(2, 2), plugins=[Retrain()], keep_optimizer=True)
    >>> learner.n_trained = 1  # as after a first experience
    >>> before = learner.model.weight.detach().clone()
    >>> Retrain().before_experience(learner)
    >>> bool(torch.equal(before, learner.model.weight))
    False
    """

    def before_experience(self, learner: Learner) -> None:
        if learner.n_trained == 0:
            return
        reset_parameters(learner.model)
        if learner.optimizer is not None:
            learner.optimizer.state.clear()


@torch.no_grad()
def reset_parameters(model: torch.nn.Module) -> None:
    """Call ``reset_parameters()`` on every module of ``model`` that has it.

    Raises ``TypeError`` when a parameter belongs to no such module (it would not be reset).
    """
    covered = set()
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
            covered.update(id(p) for p in module.parameters(recurse=False))
    missing = [name for name, p in model.named_parameters() if id(p) not in covered]
    if missing:
        raise TypeError(
            f"cannot re-initialise parameters {missing}: their modules define no reset_parameters()"
        )
