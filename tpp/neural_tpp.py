"""NeuralTPP: NHP or AttNHP with a continual strategy, under the byte budget."""

from __future__ import annotations

import numpy as np
import torch

from continual.accountant import MemoryAccountant
from tpp.attnhp import AttNHP
from tpp.data import EventArrays
from tpp.estimator import TPPEstimator
from tpp.ewc import EWCPenalty
from tpp.nhp import NHP
from tpp.replay import EventReservoir
from tpp.training import train_epochs

__all__ = ["NeuralTPP"]

_STRATEGIES = ("finetune", "retrain", "pretrain", "ewc", "replay")


class NeuralTPP(TPPEstimator):
    """A neural temporal point process learned window by window.

    Strategies (``strategy``), and what each stores beyond the model and optimizer:

    - ``"finetune"``: keep training the same model on each window (stores nothing more);
    - ``"retrain"``: re-initialise the model and optimizer, then train on the window alone;
    - ``"pretrain"``: train on the first window only, then freeze;
    - ``"ewc"``: fine-tune with the EWC penalty; the Fisher and anchors (2 floats per
      parameter) are charged to the ``ewc`` account;
    - ``"replay"``: fine-tune on the window plus a reservoir of past sequences (float32
      relative times, uint8 types) filling the budget's headroom, charged to ``replay``.

    The ``model`` account holds the parameters (float32), ``optimizer`` the Adam moments.

    Parameters
    ----------
    model
        ``"nhp"`` (continuous-time LSTM) or ``"attnhp"``.
    hidden_size
        NHP state size, or AttNHP type-embedding size.
    time_size
        AttNHP time-embedding size (ignored by NHP); an AttNHP token has
        ``hidden_size + time_size`` entries.
    n_layers, n_heads
        AttNHP layers and heads (ignored by NHP).
    strategy
        One of the strategies above.
    ewc_lambda
        EWC penalty weight.
    lr, epochs, batch_size
        Adam learning rate, passes per window and sequences per batch.
    n_points
        Midpoint-rule points per inter-event interval for the integral.
    time_scale
        Times are divided by it before they reach the model (log-likelihoods are per event in
        those units).
    max_length, truncate
        Longest accepted sequence; longer ones raise ValueError unless ``truncate`` keeps the
        first ``max_length`` events.
    budget
        Byte budget of the accountant (``accountant_``), or None to measure only.
    random_state
        Seed of initialisation, batching and prediction.
    verbose
        0 silences the progress bars.

    Examples
    --------
    >>> import numpy as np
    >>> rows = [{"dim_process": 2, "time_since_start": list(np.arange(8.0) + i),
    ...          "time_since_last_event": [0.0] + [1.0] * 7, "type_event": [0, 1] * 4}
    ...         for i in range(6)]
    >>> est = NeuralTPP(hidden_size=8, epochs=2, batch_size=4, budget="20 KB", random_state=0)
    >>> est.fit(rows).n_windows_
    1
    >>> round(est.score(rows), 3), est.accountant_.accounts
    (-1.744, ['model', 'optimizer'])
    """

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
        time_scale: float = 1.0,
        max_length: int | None = 512,
        truncate: bool = False,
        budget: int | str | None = None,
        random_state: int | None = None,
        verbose: int = 0,
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
        self.time_scale = time_scale
        self.max_length = max_length
        self.truncate = truncate
        self.budget = budget
        self.random_state = random_state
        self.verbose = verbose

    def _make_model(self, n_types: int) -> torch.nn.Module:
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {self.strategy!r}")
        if self.model == "nhp":
            return NHP(n_types, self.hidden_size)
        if self.model == "attnhp":
            return AttNHP(
                n_types,
                self.hidden_size,
                self.time_size,
                n_layers=self.n_layers,
                n_heads=self.n_heads,
            )
        raise ValueError(f"model must be 'nhp' or 'attnhp', got {self.model!r}")

    def _track(self) -> None:
        accountant: MemoryAccountant = self.accountant_
        accountant.track("model", self.model_)
        accountant.track("optimizer", self.optimizer_)
        if self.strategy == "ewc":
            self.ewc_ = accountant.track("ewc", EWCPenalty(self.ewc_lambda))
        if self.strategy == "replay":
            self.replay_ = accountant.track("replay", EventReservoir())

    def _learn(self, data: EventArrays, rng: np.random.Generator) -> None:
        if self.strategy == "pretrain" and self.n_windows_ > 0:
            return
        if self.strategy == "retrain" and self.n_windows_ > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed_ + self.n_windows_)
                fresh = self._make_model(self.n_types_)
            self.model_.load_state_dict(fresh.state_dict())
            self.optimizer_.state.clear()
        train = data
        if self.strategy == "replay" and len(self.replay_):
            train = _concatenate(data, self.replay_.as_arrays(self.n_types_))
        penalty = (lambda: self.ewc_(self.model_)) if self.strategy == "ewc" else None
        train_epochs(
            self.model_,
            self.optimizer_,
            train,
            epochs=self.epochs,
            batch_size=self.batch_size,
            time_scale=self.time_scale,
            n_points=self.n_points,
            rng=rng,
            penalty=penalty,
            verbose=self.verbose,
        )
        if self.strategy == "ewc":
            self.ewc_.consolidate(
                self.model_,
                data,
                batch_size=self.batch_size,
                time_scale=self.time_scale,
                n_points=self.n_points,
            )
        if self.strategy == "replay":
            capacity = self.accountant_.room_for(self.replay_)
            self.replay_.update(data, capacity, rng)


def _concatenate(a: EventArrays, b: EventArrays) -> EventArrays:
    offsets = np.concatenate([a.offsets, b.offsets[1:] + a.offsets[-1]])
    return EventArrays(
        np.concatenate([a.times, b.times]),
        np.concatenate([a.types, b.types]),
        offsets,
        a.dim_process,
    )
