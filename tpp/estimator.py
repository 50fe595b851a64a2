"""The scikit-learn face shared by the neural TPP estimators: one ``partial_fit`` per window."""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from continual.accountant import MemoryAccountant
from continual.estimator import FittedStateMixin, int_seed
from tpp.data import EventArrays, as_event_arrays, make_batch
from tpp.metrics import evaluate, log_likelihood_per_event, predict_next

__all__ = ["TPPEstimator"]


class TPPEstimator(FittedStateMixin, BaseEstimator, ABC):
    """Base class of :class:`tpp.NeuralTPP` and :class:`tpp.PromptTPP`.

    Inputs are event sequences: an ``EventSequences`` container from ``streams`` (anything with
    flat ``times``, ``types``, ``offsets`` and ``dim_process``) or a list of EasyTPP dicts.
    :meth:`fit` forgets the past and learns one window; :meth:`partial_fit` learns the next
    window of a stream; :meth:`score` is the log-likelihood per event (the first event of each
    sequence conditioned on, time divided by ``time_scale``, midpoint integral with
    ``n_points`` points per interval, no prompt matching term); :meth:`predict` gives the next
    event after each sequence. A call that fails (bad input, or a ledger over the budget, which
    raises :class:`~continual.accountant.BudgetExceededError`) leaves the estimator as it was.

    Subclasses store their hyperparameters in ``__init__`` (at least ``lr``, ``epochs``,
    ``batch_size``, ``n_points``, ``time_scale``, ``max_length``, ``truncate``, ``budget``,
    ``random_state``, ``verbose``) and implement :meth:`_make_model`, :meth:`_track` and
    :meth:`_learn`.
    """

    # ----------------------------------------------------------- to implement
    @abstractmethod
    def _make_model(self, n_types: int) -> torch.nn.Module:
        """The network for ``n_types`` event types."""

    @abstractmethod
    def _track(self) -> None:
        """Register the fitted components with ``accountant_``."""

    @abstractmethod
    def _learn(self, data: EventArrays, rng: np.random.Generator) -> None:
        """Train on one window of sequences."""

    # ------------------------------------------------------------------ fitting
    def fit(self, sequences: Any) -> TPPEstimator:
        """Forget everything and learn ``sequences`` as one window."""
        with self._restored_on_failure():
            self._forget()
            self.partial_fit(sequences)
        return self

    def partial_fit(self, sequences: Any) -> TPPEstimator:
        """Learn one window of the stream."""
        first = not hasattr(self, "model_")
        with self._restored_on_failure():
            data = self._validate(sequences, reset=first)
            if first:
                self._initialize(data)
            rng = np.random.default_rng([self.seed_, self.n_windows_])
            self._learn(data, rng)
            self.accountant_.check(f"{type(self).__name__} window {self.n_windows_}")
            self.accountant_.snapshot(self.n_windows_)
            self.n_windows_ += 1
        return self

    # ---------------------------------------------------------------- inference
    def score(self, sequences: Any) -> float:
        """Log-likelihood per event (see the class docstring for the convention)."""
        check_is_fitted(self)
        data = self._validate(sequences, reset=False)
        return log_likelihood_per_event(
            self.model_, data, time_scale=self.time_scale, n_points=self.n_points
        )

    def evaluate(self, sequences: Any, *, n_draws: int = 8) -> dict[str, float]:
        """Log-likelihood per event, next-type accuracy, time RMSE and the frequent-type baseline.

        The baseline answers the most frequent type of the training data seen by the first fit.
        """
        check_is_fitted(self)
        data = self._validate(sequences, reset=False)
        return evaluate(
            self.model_,
            data,
            time_scale=self.time_scale,
            horizon=self.horizon_,
            n_points=self.n_points,
            n_draws=n_draws,
            frequent_type=self.frequent_type_,
            seed=self.seed_,
        )

    @torch.no_grad()
    def predict(self, sequences: Any, *, n_draws: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """Next event after the end of each sequence: ``(times, types)``.

        Times are absolute, in the units of the input; each is the mean of ``n_draws`` thinning
        draws, and the type is the argmax of the intensity at that time.
        """
        check_is_fitted(self)
        data = self._validate(sequences, reset=False)
        self.model_.eval()
        generator = torch.Generator().manual_seed(self.seed_)
        times, types = [], []
        for start in range(0, len(data), 64):
            index = np.arange(start, min(start + 64, len(data)))
            batch = make_batch(data, index, self.time_scale)
            offset, kind = predict_next(
                self.model_, batch, self.horizon_, n_draws=n_draws, generator=generator
            )
            last = torch.as_tensor(data.lengths[index] - 1)[:, None]
            times.append(
                data.times[data.offsets[index + 1] - 1]
                + offset.gather(1, last).squeeze(1).numpy() * self.time_scale
            )
            types.append(kind.gather(1, last).squeeze(1).numpy())
        return np.concatenate(times), np.concatenate(types)

    # ---------------------------------------------------------------- internals
    def _validate(self, sequences: Any, *, reset: bool) -> EventArrays:
        data = as_event_arrays(sequences, None if reset else self.n_types_)
        max_length = self.max_length
        if max_length is not None:
            if (
                isinstance(max_length, bool)
                or not isinstance(max_length, numbers.Integral)
                or max_length < 2
            ):
                raise ValueError(f"max_length must be an int >= 2 or None, got {max_length!r}")
            longest = int(data.lengths.max())
            if longest > max_length:
                if not self.truncate:
                    raise ValueError(
                        f"a sequence has {longest} events, more than max_length={max_length}; "
                        "pass truncate=True to keep the first max_length events of each"
                    )
                data = data.truncated(int(max_length))
        return data

    def _initialize(self, data: EventArrays) -> None:
        self.seed_ = int_seed(self.random_state)
        self.n_types_ = data.dim_process
        gaps = np.diff(data.times)
        inside = np.ones(gaps.size, dtype=bool)
        inside[data.offsets[1:-1] - 1] = False
        gaps = gaps[inside] if gaps.size else np.ones(1)
        self.horizon_ = float(max(gaps.max(), 1e-6) / self.time_scale)
        self.frequent_type_ = int(np.bincount(data.types, minlength=self.n_types_).argmax())
        self.accountant_ = MemoryAccountant(self.budget)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)
            self.model_ = self._make_model(self.n_types_)
        self.optimizer_ = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
        self.n_windows_ = 0
        self._track()
