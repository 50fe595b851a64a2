"""NeuralTPP: NHP or AttNHP with a continual strategy, under the byte budget."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any, ClassVar

import torch

from continual.plugin import Plugin
from continual.validation import COUNT, NON_NEGATIVE_FLOAT, Interval, StrOptions
from tpp.attnhp import AttNHP, check_attention_sizes
from tpp.estimator import TPPEstimator
from tpp.ewc import EWC
from tpp.nhp import NHP
from tpp.pretrain import Pretrain
from tpp.replay import SequenceReplay
from tpp.retrain import Retrain

__all__ = ["MODELS", "STRATEGIES", "NeuralTPP"]

#: Each strategy's plugins, built for an estimator whose ``seed_`` is set.
STRATEGIES: dict[str, Callable[[NeuralTPP], list[Plugin]]] = {
    "finetune": lambda est: [],
    "retrain": lambda est: [Retrain()],
    "pretrain": lambda est: [Pretrain()],
    "ewc": lambda est: [EWC(est.ewc_lambda)],
    "replay": lambda est: [SequenceReplay(seed=est.seed_)],
}

#: Each model's builder, for an estimator and a number of event types.
MODELS: dict[str, Callable[[NeuralTPP, int], torch.nn.Module]] = {
    "nhp": lambda est, n_types: NHP(n_types, est.hidden_size),
    "attnhp": lambda est, n_types: AttNHP(
        n_types, est.hidden_size, est.time_size, n_layers=est.n_layers, n_heads=est.n_heads
    ),
}


class NeuralTPP(TPPEstimator):
    """A neural temporal point process learned window by window.

    Each ``partial_fit`` call learns one window with a :class:`~continual.Learner` (Adam, one
    optimizer kept across windows); the strategy is the Learner's plugins (``STRATEGIES``).
    What each strategy stores beyond the model and its optimizer state:

    - ``"finetune"``: keep training the same model on each window (nothing more);
    - ``"retrain"``: re-initialise the weights and clear the optimizer state before every
      window after the first, then train on the window alone (:class:`~tpp.retrain.Retrain`;
      nothing more);
    - ``"pretrain"``: train on the first window only; later windows change nothing
      (:class:`~tpp.pretrain.Pretrain`; nothing more);
    - ``"ewc"``: fine-tune with the EWC penalty (:class:`~tpp.ewc.EWC`); the Fisher and the
      anchors, one float32 each per parameter, are charged to ``ewc/fisher`` and
      ``ewc/anchors``;
    - ``"replay"``: fine-tune on the window plus a reservoir of past sequences (float32
      relative times, uint8 types) filling the budget's headroom
      (:class:`~tpp.replay.SequenceReplay`), charged to ``replay/sequences``.

    The ``model`` account holds the parameters (float32), ``optimizer`` the Adam moments and
    step counters. The model, its Adam state and EWC's tensors are checked against the budget,
    from their shapes, before anything is allocated.

    Parameters
    ----------
    model
        ``"nhp"`` (continuous-time LSTM) or ``"attnhp"``.
    hidden_size
        NHP state size, or AttNHP type-embedding size (an int >= 1).
    time_size
        AttNHP time-embedding size, an even int >= 2 (ignored by NHP); an AttNHP token has
        ``hidden_size + time_size`` entries.
    n_layers, n_heads
        AttNHP layers and heads, ints >= 1, ``n_heads`` dividing ``hidden_size + time_size``
        (ignored by NHP).
    strategy
        One of the strategies above.
    ewc_lambda
        EWC penalty weight, a finite float >= 0.
    lr, epochs, batch_size
        Adam learning rate (a finite float > 0), passes per window and sequences per batch
        (ints >= 1).
    n_points
        Midpoint-rule points per inter-event interval for the integral (an int >= 1).
    n_draws
        Thinning draws per predicted event (:meth:`scores`, :meth:`predict`; an int >= 1).
    time_scale
        Times are divided by it before they reach the model (log-likelihoods are per event in
        those units); a finite float > 0.
    max_length, truncate
        Longest accepted sequence (an int >= 2, or None for no limit); longer ones raise
        ValueError unless ``truncate`` (a bool) keeps the first ``max_length`` events.
    budget, random_state, verbose, device, rollback
        As in :class:`~continual.estimator.BudgetedEstimator`: the byte budget of
        ``accountant_``; the seed of initialisation, batch order, the strategy's choices and
        predictions; progress bars; where the model, its optimizer state, EWC's tensors and
        every batch live (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"``; the
        replay reservoir stays on the CPU); how a failed call is undone.
    precision
        ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"``: mixed precision through
        ``torch.autocast`` (see :class:`~continual.precision.Precision`).

    Examples
    --------
    >>> import numpy as np
    >>> rows = [{"dim_process": 2, "time_since_start": list(np.arange(8.0) + i),
    ...          "time_since_last_event": [0.0] + [1.0] * 7, "type_event": [0, 1] * 4}
    ...         for i in range(6)]
    >>> est = NeuralTPP(hidden_size=8, epochs=2, batch_size=4, budget="20 KB", random_state=0)
    >>> est.fit(rows).n_partial_fits_
    1
    >>> est.score(rows) < 0, est.accountant_.ledger().accounts
    (True, {'model': 3984, 'optimizer': 7992})
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "model": [StrOptions(set(MODELS))],
        "hidden_size": [COUNT],
        "time_size": [Interval(Integral, 2, None, closed="left")],
        "n_layers": [COUNT],
        "n_heads": [COUNT],
        "strategy": [StrOptions(set(STRATEGIES))],
        "ewc_lambda": [NON_NEGATIVE_FLOAT],
    }

    def __init__(
        self,
        model: str = "nhp",
        hidden_size: int = 32,
        time_size: int = 16,
        *,
        n_layers: int = 2,
        n_heads: int = 2,
        strategy: str = "finetune",
        ewc_lambda: float = 100.0,
        lr: float = 1e-3,
        epochs: int = 10,
        batch_size: int = 64,
        n_points: int = 20,
        n_draws: int = 8,
        time_scale: float = 1.0,
        max_length: int | None = 512,
        truncate: bool = False,
        budget: int | str | None = None,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        precision: str = "32",
        rollback: str = "memory",
    ) -> None:
        self.model = model
        self.hidden_size = hidden_size
        self.time_size = time_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.strategy = strategy
        self.ewc_lambda = ewc_lambda
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.n_points = n_points
        self.n_draws = n_draws
        self.time_scale = time_scale
        self.max_length = max_length
        self.truncate = truncate
        self.budget = budget
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.rollback = rollback

    def _check_params(self) -> None:
        if self.model == "attnhp":
            names = ("hidden_size", "time_size", "n_heads")
            sizes = (self.hidden_size, self.time_size, self.n_heads)
            check_attention_sizes(*sizes, names=names, owner=type(self).__name__)

    def _make_model(self, n_types: int) -> torch.nn.Module:
        return MODELS[self.model](self, n_types)

    def _make_plugins(self) -> list[Plugin]:
        return STRATEGIES[self.strategy](self)
