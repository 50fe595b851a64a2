"""The per-type homogeneous Poisson baseline, in the same log-likelihood convention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from continual.estimator import BudgetedEstimator
from continual.validation import POSITIVE_FLOAT
from streams.easytpp import as_event_sequences
from streams.events import EventSequences

__all__ = ["PoissonTPP"]


class PoissonTPP(BudgetedEstimator):
    """Independent homogeneous Poisson processes, one constant rate per type.

    The rate of type ``k`` is its count over the observed time (each sequence from its first to
    its last event, first events not counted), the maximum-likelihood estimate; a count of 0
    counts as 0.5. ``partial_fit`` adds a window's counts and observed time to those of the
    windows before it, so the rates are those of every window seen since ``fit``. :meth:`score`
    is the log-likelihood per event in the convention of :mod:`tpp.likelihood`. A neural TPP is
    useful only when it clearly beats this.

    Stored: ``counts_`` (K float64, account ``counts``) and ``exposure_`` (one float64,
    account ``exposure``), on ``device``.

    Parameters
    ----------
    time_scale
        Times are divided by it, as in :class:`tpp.NeuralTPP` (a finite float > 0, checked
        at ``fit``, ``partial_fit`` and ``score``).
    budget, random_state, verbose, device, rollback
        As in :class:`~continual.estimator.BudgetedEstimator` (nothing here is random; the
        device needs float64, which MPS lacks).

    Examples
    --------
    >>> rows = [{"dim_process": 2, "time_since_start": [0.0, 1.0, 2.0, 4.0],
    ...          "time_since_last_event": [0.0, 1.0, 1.0, 2.0], "type_event": [0, 0, 1, 0]}]
    >>> model = PoissonTPP(budget=100).fit(rows)
    >>> model.rates_.tolist(), round(float(model.score(rows)), 4)  # (2 log .5 + log .25 - 3) / 3
    ([0.5, 0.25], -1.9242)
    >>> model.accountant_.ledger().accounts
    {'counts': 16, 'exposure': 8}
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {"time_scale": [POSITIVE_FLOAT]}

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        budget: int | str | None = None,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        rollback: str = "memory",
    ) -> None:
        self.time_scale = time_scale
        self.budget = budget
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.rollback = rollback

    # ------------------------------------------------------- BudgetedEstimator
    def _validate_input(self, X: Any, y: Any = None, *, first: bool) -> EventSequences:
        if y is not None:
            raise ValueError(f"y must be None: event sequences carry their own marks, got {y!r}")
        return as_event_sequences(X, None if first else self.n_types_)

    def _initialize(self, data: EventSequences) -> None:
        self.n_types_ = int(data.dim_process)

    def _planned_bytes(self, data: EventSequences) -> Mapping[str, int]:
        return {"counts": 8 * self.n_types_, "exposure": 8}

    def _build(self) -> None:
        zeros = torch.zeros(self.n_types_ + 1, dtype=torch.float64, device=self.device_)
        self.counts_ = self.accountant_.track("counts", zeros[:-1].clone())
        self.exposure_ = self.accountant_.track("exposure", zeros[-1].clone())

    def _learn(self, data: EventSequences) -> None:
        counts, exposure = self._statistics(data)
        self.counts_ += torch.from_numpy(counts).to(self.counts_.device)
        self.exposure_ += exposure
        self.accountant_.snapshot(self.n_partial_fits_)

    def _state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts_, "exposure": self.exposure_}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts_.copy_(state["counts"])
        self.exposure_.copy_(state["exposure"])

    # -------------------------------------------------------------- inference
    def _statistics(self, data: EventSequences) -> tuple[np.ndarray, float]:
        first = np.zeros(data.n_events, dtype=bool)
        first[data.offsets[:-1]] = True
        types = data.types[~first].astype(np.int64)
        counts = np.bincount(types, minlength=data.dim_process).astype(np.float64)
        spans = data.times[data.offsets[1:] - 1] - data.times[data.offsets[:-1]]
        return counts, float(spans.sum()) / self.time_scale

    @property
    def rates_(self) -> np.ndarray:
        """The rate of each type (events per time unit, after ``time_scale``)."""
        check_is_fitted(self, "counts_")
        counts = np.maximum(self.counts_.cpu().numpy(), 0.5)
        return counts / max(float(self.exposure_), 1e-12)

    def score(self, X: Any, y: Any = None) -> float:
        """Log-likelihood per event (a ValueError when no event is scored: every sequence
        of ``X`` holds one event)."""
        check_is_fitted(self, "counts_")
        self._check_shared_params()  # parameters set after fitting are read here too
        data = self._validate_input(X, y, first=False)
        counts, exposure = self._statistics(data)
        if not counts.sum():
            raise ValueError("sequences must hold at least one sequence with two or more events")
        rates = self.rates_
        total = float(counts @ np.log(rates) - rates.sum() * exposure)
        return float(total / max(counts.sum(), 1.0))

    def scores(self, X: Any, y: Any = None) -> dict[str, float]:
        """``{"log_likelihood": ...}`` per event."""
        return {"log_likelihood": self.score(X, y)}
