"""PromptTPP: an AttNHP backbone with a continuous-time retrieval prompt pool."""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import torch

from continual.plugin import Plugin
from continual.validation import COUNT, NON_NEGATIVE_FLOAT, Interval, StrOptions
from tpp.attnhp import AttNHP, check_attention_sizes
from tpp.estimator import TPPEstimator
from tpp.prompt_schedule import AlternateUpdates, FreezeBackbone

__all__ = ["PromptTPP"]

#: The plugins of each ``train_backbone`` setting.
BACKBONE_SCHEDULES = {"always": [], "first": [FreezeBackbone]}


class PromptTPP(TPPEstimator):
    """PromptTPP (Xue et al., 2023): learn a stream with a prompt pool, without replay.

    The backbone is :class:`~tpp.attnhp.AttNHP`; each attention layer has a
    :class:`~tpp.prompt_pool.PromptPool` (separate K and V prompts per head, retrieval keys),
    retrieved per position by a leak-free running-mean query and prepended to the attention keys
    and values with always-visible mask columns. The loss is the negative log-likelihood per
    event minus ``match_weight`` times the matching score; :meth:`score` reports the
    log-likelihood alone. Training runs through a :class:`~continual.Learner` with one Adam
    optimizer kept across windows; with ``alternate=True`` prompts and backbone learn on
    alternate batches (:class:`~tpp.prompt_schedule.AlternateUpdates`); with
    ``train_backbone="first"`` the backbone learns on the first window only and later windows
    train the prompts alone, its Adam moments freed
    (:class:`~tpp.prompt_schedule.FreezeBackbone`).

    Stored and charged: ``prompts`` (all pools: keys, K and V prompts, float32), ``model``
    (the backbone: every other parameter, float32) and ``optimizer`` (Adam moments and step
    counters of what learns: both, or the prompts alone once the backbone is frozen). No events
    are kept. The three are checked against the budget, from their shapes, before anything is
    allocated.

    Parameters
    ----------
    d_model, d_time, n_layers, n_heads
        AttNHP type-embedding size, time-embedding size (even), layers and heads, ints >= 1
        (``d_time`` >= 2); a token has ``d_model + d_time`` entries, a multiple of
        ``n_heads``. The defaults are the reference's (32, 16, 2, 2).
    n_prompts, prompt_length, top_n
        Pool size ``M``, tokens per prompt ``Lp`` and prompts retrieved ``N``, ints >= 1
        with ``top_n <= n_prompts``.
    match_weight
        Weight of the matching term in the loss (0.1 in the paper), a finite float >= 0.
    alternate
        Update prompts and backbone on alternate batches.
    train_backbone
        ``"always"`` or ``"first"`` (freeze the backbone after the first window).
    lr, epochs, batch_size, n_points, n_draws, time_scale, max_length, truncate, budget, \
random_state, verbose, device, precision, rollback
        As in :class:`tpp.NeuralTPP`.

    Examples
    --------
    >>> import numpy as np
    >>> rows = [{"dim_process": 2, "time_since_start": list(np.arange(8.0) + i),
    ...          "time_since_last_event": [0.0] + [1.0] * 7, "type_event": [0, 1] * 4}
    ...         for i in range(6)]
    >>> est = PromptTPP(d_model=8, d_time=4, n_prompts=4, prompt_length=2, top_n=2, epochs=2,
    ...                 budget="100 KB", random_state=0).fit(rows)
    >>> est.accountant_.accounts
    ['prompts', 'model', 'optimizer']
    >>> # per layer: 2 pools x 2 heads x 4 prompts x (12 key + 2 x 8 token) floats
    >>> est.accountant_.ledger().accounts["prompts"] == 4 * 2 * (2 * 2 * 4 * (12 + 2 * 8))
    True
    >>> times, types = est.predict(rows[:2])
    >>> times.shape, bool(np.all(times >= 7.0))
    ((2,), True)

    References
    ----------
    .. [1] Xue, S., Wang, Y., Chu, Z., Shi, X., Jiang, C., Hao, H., Jiang, G., Feng, X.,
       Zhang, J. and Zhou, J. (2023). Prompt-augmented Temporal Point Process for Streaming
       Event Sequence. NeurIPS.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "d_model": [COUNT],
        "d_time": [Interval(Integral, 2, None, closed="left")],
        "n_layers": [COUNT],
        "n_heads": [COUNT],
        "n_prompts": [COUNT],
        "prompt_length": [COUNT],
        "top_n": [COUNT],  # at most n_prompts: checked by PromptPool, on the meta device
        "match_weight": [NON_NEGATIVE_FLOAT],
        "alternate": ["boolean"],
        "train_backbone": [StrOptions(set(BACKBONE_SCHEDULES))],
    }

    def __init__(
        self,
        d_model: int = 32,
        d_time: int = 16,
        *,
        n_layers: int = 2,
        n_heads: int = 2,
        n_prompts: int = 10,
        prompt_length: int = 5,
        top_n: int = 5,
        match_weight: float = 0.1,
        alternate: bool = False,
        train_backbone: str = "always",
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
        self.d_model = d_model
        self.d_time = d_time
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_prompts = n_prompts
        self.prompt_length = prompt_length
        self.top_n = top_n
        self.match_weight = match_weight
        self.alternate = alternate
        self.train_backbone = train_backbone
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
        sizes = (self.d_model, self.d_time, self.n_heads)
        check_attention_sizes(*sizes, owner=type(self).__name__)

    def _make_model(self, n_types: int) -> torch.nn.Module:
        prompts = {
            "n_prompts": self.n_prompts,
            "prompt_length": self.prompt_length,
            "top_n": self.top_n,
        }
        return AttNHP(
            n_types,
            self.d_model,
            self.d_time,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            prompts=prompts,
        )

    def _model_accounts(self, model: torch.nn.Module) -> dict[str, Any]:
        return {"prompts": model.prompt_pools}

    def _make_plugins(self) -> list[Plugin]:
        plugins: list[Plugin] = [AlternateUpdates()] if self.alternate else []
        return plugins + [make() for make in BACKBONE_SCHEDULES[self.train_backbone]]

    def _match_weight(self) -> float:
        return self.match_weight
