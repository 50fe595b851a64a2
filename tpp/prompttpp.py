"""PromptTPP: an AttNHP backbone with a continuous-time retrieval prompt pool."""

from __future__ import annotations

import numpy as np
import torch

from continual.budget import parse_budget
from continual.measure import nbytes
from tpp.attnhp import AttNHP
from tpp.data import EventArrays
from tpp.estimator import TPPEstimator
from tpp.training import train_epochs

__all__ = ["PromptTPP"]


class PromptTPP(TPPEstimator):
    """PromptTPP (Xue et al., 2023): learn a stream with a prompt pool, without replay.

    The backbone is :class:`~tpp.attnhp.AttNHP`; each attention layer has a
    :class:`~tpp.prompt_pool.PromptPool` (separate K and V prompts per head, retrieval keys),
    retrieved per position by a leak-free running-mean query and prepended to the attention keys
    and values with always-visible mask columns. The loss is the negative log-likelihood per
    event minus ``match_weight`` times the matching score; :meth:`score` reports the
    log-likelihood alone. With ``alternate=True`` prompts and backbone learn on alternate
    batches (one Adam optimiser); with ``train_backbone="first"`` the backbone learns on the
    first window only and later windows train the prompts alone.

    Stored and charged: ``prompts`` (all pools: keys, K and V prompts, float32), ``backbone``
    (the other parameters, float32) and ``optimizer`` (Adam moments of what learns: both, or
    the prompts alone once ``train_backbone="first"`` has frozen the backbone). No events are
    kept. A pool that alone exceeds the budget raises ValueError when fitting starts.

    Parameters
    ----------
    d_model, d_time, n_layers, n_heads
        AttNHP type-embedding size, time-embedding size, layers and heads; a token has
        ``d_model + d_time`` entries. The defaults are the reference's (32, 16, 2, 2).
    n_prompts, prompt_length, top_n
        Pool size ``M``, tokens per prompt ``Lp`` and prompts retrieved ``N``.
    match_weight
        Weight of the matching term in the loss (0.1 in the paper).
    alternate
        Update prompts and backbone on alternate batches.
    train_backbone
        ``"always"`` or ``"first"`` (freeze the backbone after the first window).
    lr, epochs, batch_size, n_points, time_scale, max_length, truncate, budget, random_state,
    verbose
        As in :class:`tpp.NeuralTPP`.

    Examples
    --------
    >>> import numpy as np
    >>> rows = [{"dim_process": 2, "time_since_start": list(np.arange(8.0) + i),
    ...          "time_since_last_event": [0.0] + [1.0] * 7, "type_event": [0, 1] * 4}
    ...         for i in range(6)]
    >>> est = PromptTPP(d_model=8, d_time=4, n_prompts=4, prompt_length=2, top_n=2, epochs=2,
    ...                 budget="100 KB", random_state=0).fit(rows)
    >>> est.accountant_.accounts  # per layer: 2 pools x 2 heads x 4 x (12 + 2 x 8) floats
    ['prompts', 'backbone', 'optimizer']
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
        time_scale: float = 1.0,
        max_length: int | None = 512,
        truncate: bool = False,
        budget: int | str | None = None,
        random_state: int | None = None,
        verbose: int = 0,
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
        self.time_scale = time_scale
        self.max_length = max_length
        self.truncate = truncate
        self.budget = budget
        self.random_state = random_state
        self.verbose = verbose

    def _make_model(self, n_types: int) -> torch.nn.Module:
        if self.train_backbone not in ("always", "first"):
            raise ValueError(
                f"train_backbone must be 'always' or 'first', got {self.train_backbone!r}"
            )
        prompts = {
            "n_prompts": self.n_prompts,
            "prompt_length": self.prompt_length,
            "top_n": self.top_n,
        }
        model = AttNHP(
            n_types,
            self.d_model,
            self.d_time,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            prompts=prompts,
        )
        budget = parse_budget(self.budget)
        pool_bytes = nbytes(model.prompt_pools)
        if budget is not None and pool_bytes > budget:
            raise ValueError(
                f"the prompt pool alone needs {pool_bytes:,} bytes, more than budget={budget:,}; "
                "lower n_prompts, prompt_length or d_model, or raise the budget"
            )
        return model

    def _track(self) -> None:
        self.accountant_.track("prompts", self.model_.prompt_pools)
        self.accountant_.track("backbone", self.model_)
        self.accountant_.track("optimizer", self.optimizer_)

    def _learn(self, data: EventArrays, rng: np.random.Generator) -> None:
        frozen = self.train_backbone == "first" and self.n_windows_ > 0
        for name, parameter in self.model_.named_parameters():
            learns = not frozen or name.startswith("prompt_pools")
            parameter.requires_grad_(learns)
            if not learns:  # a frozen backbone keeps no Adam moments
                self.optimizer_.state.pop(parameter, None)
        train_epochs(
            self.model_,
            self.optimizer_,
            data,
            epochs=self.epochs,
            batch_size=self.batch_size,
            time_scale=self.time_scale,
            n_points=self.n_points,
            rng=rng,
            match_weight=self.match_weight,
            alternate=(lambda name: name.startswith("prompt_pools")) if self.alternate else None,
            verbose=self.verbose,
        )
