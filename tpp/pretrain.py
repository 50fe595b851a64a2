"""Pretrain: learn the first experience, then change nothing."""

from __future__ import annotations

from continual.learner import Learner
from continual.plugin import Plugin

__all__ = ["Pretrain"]


class Pretrain(Plugin):
    """Train on the first experience only: later experiences stop before their first batch,
    so the weights and the optimizer state stay as the first experience left them.

    Stored: nothing.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> learner = SimpleNamespace(n_trained=1, stop_training=False)
    >>> Pretrain().before_experience(learner)
    >>> learner.stop_training
    True
    """

    def before_experience(self, learner: Learner) -> None:
        if learner.n_trained > 0:
            learner.stop_training = True
