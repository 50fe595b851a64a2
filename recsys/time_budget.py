"""A CPU time budget per experience, as a plugin of the training loop."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from continual.plugin import Plugin
from continual.validation import NON_NEGATIVE_FLOAT, check_params

if TYPE_CHECKING:  # pragma: no cover
    from continual.learner import Learner

__all__ = ["CpuTimeBudget"]


class CpuTimeBudget(Plugin):
    """End each experience once it has used ``seconds`` of process CPU time.

    The clock starts in ``before_experience``; after every batch (``after_batch``) the plugin
    sets ``learner.stop_training`` when the budget is spent, so the experience ends after that
    batch, mid-epoch if need be. It always measures: ``seconds_used`` holds the CPU seconds of
    the last experience. Stores nothing, and has no state: time is measured, not learned, so
    a checkpoint or a rollback does not carry it.

    Parameters
    ----------
    seconds
        CPU seconds per experience, a finite float >= 0; None only measures.

    Raises
    ------
    ValueError
        Naming ``seconds`` and its value when it is negative, NaN, infinite or not a number.

    Examples
    --------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> from continual import Learner
    >>> from recsys.time_budget import CpuTimeBudget
    >>> budget = CpuTimeBudget(seconds=0.0)  # spent after the first batch
    >>> learner = Learner(torch.nn.Linear(2, 2), plugins=[budget], epochs=5, batch_size=1)
    >>> learner.train_experience(SimpleNamespace(index=0, train=(torch.ones(4, 2),
    ...                                                          torch.zeros(4))))
    >>> learner.n_steps, budget.seconds_used >= 0.0
    (1, True)
    """

    def __init__(self, seconds: float | None = None) -> None:
        check_params({"seconds": [NON_NEGATIVE_FLOAT, None]}, {"seconds": seconds}, "CpuTimeBudget")
        self.seconds = seconds
        self.seconds_used = 0.0
        self._start = 0.0

    @property
    def name(self) -> str:
        return "cpu_time"

    def before_experience(self, learner: Learner) -> None:
        self._start = time.process_time()
        self.seconds_used = 0.0

    def after_batch(self, learner: Learner) -> None:
        if self.seconds is not None and time.process_time() - self._start >= self.seconds:
            learner.stop_training = True

    def after_experience(self, learner: Learner) -> None:
        self.seconds_used = time.process_time() - self._start
