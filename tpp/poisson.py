"""The per-type homogeneous Poisson baseline, in the same log-likelihood convention."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from tpp.data import as_event_arrays

__all__ = ["PoissonTPP"]


class PoissonTPP(BaseEstimator):
    """Independent homogeneous Poisson processes, one constant rate per type.

    The rate of type ``k`` is its count over the observed time (each sequence from its first to
    its last event, first events not counted), the maximum-likelihood estimate. :meth:`score` is
    the log-likelihood per event in the convention of :mod:`tpp.likelihood`. A neural TPP is
    useful only when it clearly beats this. Stored: ``rates_`` (K float64).

    Parameters
    ----------
    time_scale
        Times are divided by it, as in :class:`tpp.NeuralTPP`.

    Examples
    --------
    >>> rows = [{"dim_process": 2, "time_since_start": [0.0, 1.0, 2.0, 4.0],
    ...          "time_since_last_event": [0.0, 1.0, 1.0, 2.0], "type_event": [0, 0, 1, 0]}]
    >>> model = PoissonTPP().fit(rows)
    >>> model.rates_.tolist(), round(float(model.score(rows)), 4)  # (2 log .5 + log .25 - 3) / 3
    ([0.5, 0.25], -1.9242)
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale

    def fit(self, sequences: Any) -> PoissonTPP:
        """Estimate one rate per type."""
        data = as_event_arrays(sequences)
        counts, exposure = self._statistics(data)
        self.rates_ = np.maximum(counts, 0.5) / max(exposure, 1e-12)
        self.n_types_ = data.dim_process
        return self

    def _statistics(self, data) -> tuple[np.ndarray, float]:
        first = np.zeros(data.n_events, dtype=bool)
        first[data.offsets[:-1]] = True
        counts = np.bincount(data.types[~first], minlength=data.dim_process).astype(float)
        spans = data.times[data.offsets[1:] - 1] - data.times[data.offsets[:-1]]
        return counts, float(spans.sum()) / self.time_scale

    def score(self, sequences: Any) -> float:
        """Log-likelihood per event."""
        check_is_fitted(self)
        data = as_event_arrays(sequences, self.n_types_)
        counts, exposure = self._statistics(data)
        total = float(counts @ np.log(self.rates_) - self.rates_.sum() * exposure)
        return float(total / max(counts.sum(), 1.0))
