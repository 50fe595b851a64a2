"""TPPEstimator: what the neural TPP estimators share on top of BudgetedEstimator.

Reading event sequences, the Learner's TPP batches, forward pass and loss, and the scores.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Mapping
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from continual.estimator import BudgetedEstimator
from continual.learner import Learner, optimizer_state_nbytes
from continual.measure import nbytes
from continual.plugin import Plugin
from continual.precision import PRECISIONS, Precision
from continual.validation import COUNT, POSITIVE_FLOAT, Interval, StrOptions
from streams.easytpp import as_event_sequences
from streams.events import EventSequences
from tpp.batches import event_batches, make_batch
from tpp.likelihood import sequence_log_likelihood, training_loss
from tpp.metrics import event_scores, log_likelihood_per_event, predict_next

__all__ = ["TPPEstimator"]


class TPPEstimator(BudgetedEstimator):
    """Base of :class:`tpp.NeuralTPP` and :class:`tpp.PromptTPP`: one ``partial_fit`` per window.

    Inputs are event sequences: :class:`~streams.events.EventSequences` or a list of EasyTPP
    dicts (read by :func:`streams.easytpp.as_event_sequences`). :meth:`fit` forgets the past
    and learns one window; :meth:`partial_fit` learns the next window of a stream. Training
    runs through a :class:`~continual.Learner`: shuffled padded mini-batches
    (:func:`tpp.batches.event_batches`), the log-likelihood terms
    (:func:`tpp.likelihood.sequence_log_likelihood`) and the loss
    (:func:`tpp.likelihood.training_loss`: minus the log-likelihood per scored event, minus
    ``match_weight`` times the prompt matching score), with one Adam optimizer kept across
    windows. The strategy is the Learner's plugins. The model is built on the CPU (so that a
    seed gives the same initial weights on every device) and the Learner moves it, its Adam
    state and every batch to ``device``; training runs in ``precision``.

    :meth:`score` is the log-likelihood per event (the first event of each sequence
    conditioned on, times divided by ``time_scale``, midpoint integral with ``n_points`` points
    per interval, no matching term); :meth:`scores` adds next-type accuracy, error rate,
    next-time RMSE (``n_draws`` thinning draws per prediction), the most-frequent-type baseline
    and the number of scored events; :meth:`predict` gives the next event after each sequence.

    Every hyperparameter is checked at ``fit`` / ``partial_fit`` (and again at ``score``,
    ``scores`` and ``predict``) against ``_parameter_constraints``, merged along the class
    hierarchy (:mod:`continual.validation`): a ``ValueError`` names the parameter, the value
    and what was expected, before anything changes. numpy scalars are accepted wherever
    Python numbers are. Event input goes through :func:`streams.easytpp.as_event_sequences`,
    whose errors name the sequence, the field, the value and its position.

    Subclasses store their hyperparameters in ``__init__`` (at least those of
    :class:`~continual.estimator.BudgetedEstimator` and ``lr``, ``epochs``, ``batch_size``,
    ``n_points``, ``n_draws``, ``time_scale``, ``max_length``, ``truncate``, ``precision``)
    and implement :meth:`_make_model`, :meth:`_make_plugins` and, when the model holds more
    than one account, :meth:`_model_accounts`.

    Attributes
    ----------
    n_types_ : int
        Event types (``dim_process``) of the first data.
    horizon_ : float
        Look-ahead of the thinning predictions: the largest gap of the first data, scaled.
    frequent_type_ : int
        Most frequent type of the first data (the baseline of ``most_frequent_accuracy``).
    learner_ : Learner
        The training loop, with ``model`` and ``plugins``.
    accountant_, seed_, n_partial_fits_, losses_
        As in :class:`~continual.estimator.BudgetedEstimator`.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "lr": [POSITIVE_FLOAT],
        "epochs": [COUNT],
        "batch_size": [COUNT],
        "n_points": [COUNT],
        "n_draws": [COUNT],
        "time_scale": [POSITIVE_FLOAT],
        "max_length": [Interval(Integral, 2, None, closed="left"), None],
        "truncate": ["boolean"],
        "precision": [StrOptions(set(PRECISIONS))],
    }

    # ----------------------------------------------------------- to implement
    @abstractmethod
    def _make_model(self, n_types: int) -> torch.nn.Module:
        """The network for ``n_types`` event types."""

    @abstractmethod
    def _make_plugins(self) -> list[Plugin]:
        """The strategy's plugins (``seed_`` is set)."""

    def _check_params(self) -> None:
        """Raise ValueError for a bad combination of hyperparameters (each one alone is
        checked against ``_parameter_constraints`` before), before anything changes."""

    def _model_accounts(self, model: torch.nn.Module) -> dict[str, Any]:
        """Accounts the model's parts are charged to before the Learner's ``model`` account
        (which then holds the rest), e.g. ``{"prompts": model.prompt_pools}``."""
        return {}

    # ------------------------------------------------------- BudgetedEstimator
    def _validate_input(self, X: Any, y: Any = None, *, first: bool) -> EventSequences:
        if y is not None:
            raise ValueError(f"y must be None: event sequences carry their own marks, got {y!r}")
        self._check_params()
        data = as_event_sequences(X, None if first else self.n_types_)
        max_length = self.max_length
        if max_length is None:
            return data
        longest = int(data.lengths.max()) if len(data) else 0
        if longest <= max_length:
            return data
        if not self.truncate:
            raise ValueError(
                f"a sequence has {longest} events, more than max_length={max_length}; "
                "pass truncate=True to keep the first max_length events of each"
            )
        return data.truncated(int(max_length))

    def _initialize(self, data: EventSequences) -> None:
        self.n_types_ = int(data.dim_process)
        gaps = data.gaps()  # 0 at each sequence's first event
        self.horizon_ = float(max(float(gaps.max()) if gaps.size else 1.0, 1e-6) / self.time_scale)
        types, counts = np.unique(data.types, return_counts=True)  # not n_types_ wide
        self.frequent_type_ = int(types[counts.argmax()])

    def _planned_bytes(self, data: EventSequences) -> Mapping[str, int]:
        """On the first call: the model's accounts, its Adam state and the plugins' stores,
        measured on the meta device (nothing is allocated).

        Plugins add what their model's shapes fix (:meth:`continual.Plugin.planned_bytes`, e.g.
        EWC's Fisher and anchors); stores sized from the headroom (replay) need no plan.
        """
        if hasattr(self, "learner_"):
            return {}
        with torch.device("meta"):
            model = self._make_model(self.n_types_)
        planned: dict[str, int] = {}
        for name, part in self._model_accounts(model).items():
            planned[name] = nbytes(part)
        planned["model"] = nbytes(model) - sum(planned.values())
        trainable = [p for p in model.parameters() if p.requires_grad]
        scaler = Precision(self.precision, self.device_).planned_nbytes()  # "16-mixed" only
        planned["optimizer"] = optimizer_state_nbytes("adam", trainable, lr=self.lr) + scaler
        for plugin in self._make_plugins():
            planned.update(
                {f"{plugin.name}/{k}": v for k, v in plugin.planned_bytes(model).items()}
            )
        return planned

    def _build(self) -> None:
        model = self._make_model(self.n_types_)
        for name, part in self._model_accounts(model).items():
            self.accountant_.track(name, part)
        self.learner_ = Learner(
            model,
            plugins=self._make_plugins(),
            accountant=self.accountant_,
            optimizer="adam",
            lr=float(self.lr),
            loss=functools.partial(training_loss, match_weight=self._match_weight()),
            forward=functools.partial(sequence_log_likelihood, n_points=self.n_points),
            batches=functools.partial(event_batches, time_scale=self.time_scale),
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            keep_optimizer=True,
            seed=self.seed_,
            verbose=self.verbose,
            device=self.device_,
            precision=self.precision,
        )

    def _match_weight(self) -> float:
        return 0.0

    def _learn(self, data: EventSequences) -> None:
        self.losses_ = self.learner_.learn(data, index=self.n_partial_fits_)

    def _state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner_.state_dict()}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner_.load_state_dict(state["learner"])

    # -------------------------------------------------------------- inference
    def _read(self, X: Any) -> EventSequences:
        check_is_fitted(self, "learner_")
        self._check_shared_params()  # parameters set after fitting are read here too
        return self._validate_input(X, first=False)

    def score(self, X: Any, y: Any = None) -> float:
        """Log-likelihood per event (see the class docstring for the convention)."""
        data = self._read(X)
        return log_likelihood_per_event(
            self.learner_.model, data, time_scale=self.time_scale, n_points=self.n_points
        )

    def scores(self, X: Any, y: Any = None) -> dict[str, float]:
        """``log_likelihood`` per event, next-type ``accuracy`` and ``error_rate``, next-time
        ``rmse`` (input time units), ``most_frequent_accuracy`` (always answering the most
        frequent type of the first data) and ``n_events`` (scored events).

        Predictions are the mean of ``n_draws`` thinning draws, from a generator seeded with
        ``seed_``: the scores are deterministic.
        """
        data = self._read(X)
        return event_scores(
            self.learner_.model,
            data,
            time_scale=self.time_scale,
            horizon=self.horizon_,
            n_points=self.n_points,
            n_draws=self.n_draws,
            frequent_type=self.frequent_type_,
            seed=self.seed_,
        )

    @torch.no_grad()
    def predict(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Next event after the end of each sequence: ``(times, types)``.

        Times are absolute, in the units of the input; each is the mean of ``n_draws`` thinning
        draws (from a generator on ``device``, seeded with ``seed_``), and the type is the
        argmax of the intensity at that time.
        """
        data = self._read(X)
        learner = self.learner_
        model = learner.model
        model.eval()
        generator = torch.Generator(device=learner.device).manual_seed(self.seed_)
        offsets, types = [], []
        for start in range(0, len(data), 64):
            index = np.arange(start, min(start + 64, len(data)))
            batch = learner.to_device(make_batch(data, index, self.time_scale))
            offset, kind = predict_next(
                model, batch, self.horizon_, n_draws=self.n_draws, generator=generator
            )
            last = learner.to_device(torch.as_tensor(data.lengths[index] - 1)[:, None])
            offsets.append(offset.gather(1, last).squeeze(1))
            types.append(kind.gather(1, last).squeeze(1))
        last_times = data.times[data.offsets[1:] - 1]
        offset = torch.cat(offsets).cpu().numpy()  # one copy back, at the end
        return last_times + offset * self.time_scale, torch.cat(types).cpu().numpy()
