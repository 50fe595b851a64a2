"""Multivariate Hawkes processes with exponential kernels: Ogata thinning and exact likelihood.

The intensity of type ``k`` is

.. math:: \\lambda_k(t) = \\mu_k + \\sum_{t_j < t} \\alpha_{k, k_j} \\beta e^{-\\beta (t - t_j)},

so ``alpha[k, l]`` is the expected number of type-``k`` children of one type-``l`` event (the
branching matrix; the process is stationary when its spectral radius is below 1) and ``beta`` the
decay rate. :func:`hawkes_drift_stream` builds the synthetic drifting stream of the PromptTPP
specification, with the exact log-likelihood under the true parameters as the oracle.

References
----------
.. [1] Ogata, Y. (1981). On Lewis' simulation method for point processes. IEEE Transactions on
   Information Theory 27(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from continual.validation import COUNT, POSITIVE_FLOAT, Interval, check_params
from streams.events import EventSequences
from streams.experience import Experience, Stream

__all__ = ["HawkesProcess", "hawkes_drift_stream", "random_hawkes"]


@dataclass(frozen=True)
class HawkesProcess:
    """A multivariate Hawkes process with one exponential decay rate.

    Parameters
    ----------
    baseline
        Background rates ``mu``, shape (K,), positive.
    adjacency
        Branching matrix ``alpha``, shape (K, K), non-negative; ``alpha[k, l]`` is the mean number
        of type-``k`` events triggered by one type-``l`` event.
    decay
        Kernel decay rate ``beta > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> process = HawkesProcess(np.array([0.5, 0.2]), np.array([[0.3, 0.1], [0.2, 0.4]]), 1.5)
    >>> times, types = process.simulate(50.0, random_state=0)
    >>> len(times) > 10, bool(np.all(np.diff(times) >= 0))
    (True, True)
    >>> round(process.log_likelihood(times, types, end=50.0) / len(times), 3)
    -1.317
    """

    baseline: np.ndarray
    adjacency: np.ndarray
    decay: float

    def __post_init__(self) -> None:
        mu = np.asarray(self.baseline, dtype=np.float64)
        alpha = np.asarray(self.adjacency, dtype=np.float64)
        if mu.ndim != 1 or mu.size < 1 or np.any(~np.isfinite(mu)) or np.any(mu <= 0):
            raise ValueError(f"baseline must be a 1-d array of positive rates, got {mu!r}")
        if alpha.shape != (mu.size, mu.size) or np.any(alpha < 0) or np.any(~np.isfinite(alpha)):
            raise ValueError(
                f"adjacency must be a non-negative ({mu.size}, {mu.size}) array, got shape "
                f"{alpha.shape}"
            )
        if not np.isfinite(self.decay) or self.decay <= 0:
            raise ValueError(f"decay must be a positive number, got {self.decay!r}")
        object.__setattr__(self, "baseline", mu)
        object.__setattr__(self, "adjacency", alpha)

    @property
    def n_types(self) -> int:
        """Number of event types ``K``."""
        return self.baseline.size

    @property
    def spectral_radius(self) -> float:
        """Spectral radius of the branching matrix (below 1: stationary)."""
        return float(np.max(np.abs(np.linalg.eigvals(self.adjacency))))

    def simulate(self, horizon: float, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Simulate on ``[0, horizon]`` by Ogata's thinning; return ``(times, types)``.

        Between events the intensity only decays, so its value just after the current time
        bounds it until the next event; candidate times are accumulated exponential steps at
        that bound and accepted with probability ``lambda / bound``.
        """
        if not np.isfinite(horizon) or horizon <= 0:
            raise ValueError(f"horizon must be a positive number, got {horizon!r}")
        rng = check_random_state(random_state)
        mu, alpha, beta = self.baseline, self.adjacency, self.decay
        excitation = np.zeros(self.n_types)
        t, times, types = 0.0, [], []
        while True:
            bound = mu.sum() + excitation.sum()
            step = rng.exponential(1.0 / bound)
            t += step
            if t > horizon:
                break
            excitation *= np.exp(-beta * step)
            rates = mu + excitation
            if rng.uniform() * bound <= rates.sum():
                k = int(rng.choice(self.n_types, p=rates / rates.sum()))
                times.append(t)
                types.append(k)
                excitation += beta * alpha[:, k]
        return np.asarray(times, dtype=np.float64), np.asarray(types, dtype=np.int64)

    def sample(
        self, n_sequences: int, horizon: float, random_state: Any = None, min_events: int = 1
    ) -> EventSequences:
        """``n_sequences`` independent sequences on ``[0, horizon]`` with ``>= min_events`` each."""
        rng = check_random_state(random_state)
        times, types = [], []
        while len(times) < n_sequences:
            t, k = self.simulate(horizon, rng)
            if len(t) >= min_events:
                times.append(t)
                types.append(k)
        return EventSequences.from_lists(times, types, self.n_types)

    def intensity(self, query: Any, times: Any, types: Any) -> np.ndarray:
        """Intensities ``lambda_k(t)`` at each query time given the events strictly before it.

        Returns an array of shape ``(len(query), K)``.
        """
        query = np.asarray(query, dtype=np.float64).reshape(-1)
        times, types = np.asarray(times, dtype=np.float64), np.asarray(types, dtype=np.int64)
        lag = query[:, None] - times[None, :]
        kernel = np.where(lag > 0, self.decay * np.exp(-self.decay * np.maximum(lag, 0)), 0.0)
        return self.baseline + kernel @ self.adjacency[:, types].T

    def log_likelihood(
        self,
        times: Any,
        types: Any,
        *,
        end: float | None = None,
        condition_on_first: bool = False,
    ) -> float:
        """Exact log-likelihood of one sequence under these parameters.

        With ``condition_on_first=False`` it is the full likelihood on ``[0, end]``:
        ``sum_i log lambda_{k_i}(t_i) - int_0^end sum_k lambda_k``. With ``True`` it is the
        convention of the neural models in :mod:`tpp` (and EasyTPP): the first event is given,
        the sum runs over events ``1..n-1`` and the integral over ``[t_0, end]``. ``end``
        defaults to the last event time.

        Raises
        ------
        ValueError
            For no event, times that are not finite, non-negative and sorted, types that are
            not whole numbers in ``[0, n_types)``, or an ``end`` before the last event.
        """
        if np.size(times) == 0:
            raise ValueError("times must hold at least one event, got an empty sequence")
        times, types = EventSequences.from_lists([times], [types], self.n_types)[0]
        types = types.astype(np.int64)
        end = float(times[-1]) if end is None else float(end)
        start = float(times[0]) if condition_on_first else 0.0
        if not end >= times[-1] or not np.isfinite(end):
            raise ValueError(
                f"end must be a finite time at least the last event time {times[-1]}, got {end}"
            )
        first = 1 if condition_on_first else 0
        rates = self.intensity(times[first:], times, types)
        log_events = np.log(rates[np.arange(rates.shape[0]), types[first:]]).sum()
        beta = self.decay
        column = self.adjacency[:, types].sum(axis=0)  # total children per event
        lower = np.maximum(start, times)
        excited = column * (np.exp(-beta * (lower - times)) - np.exp(-beta * (end - times)))
        compensator = self.baseline.sum() * (end - start) + excited.sum()
        return float(log_events - compensator)


def random_hawkes(
    n_types: int = 5,
    *,
    baseline_range: tuple[float, float] = (0.05, 0.4),
    radius_range: tuple[float, float] = (0.5, 0.8),
    decay_range: tuple[float, float] = (1.0, 2.0),
    random_state: Any = None,
) -> HawkesProcess:
    """A random stationary Hawkes process with parameters drawn uniformly from the ranges.

    The branching matrix has uniform entries (half of them zeroed) rescaled to a spectral radius
    drawn from ``radius_range``.

    Raises
    ------
    ValueError
        For ``n_types`` not an int >= 1, or a range that is not a pair ``(low, high)`` with
        ``low <= high`` of finite positive numbers (radii below 1: a stationary process).

    Examples
    --------
    >>> process = random_hawkes(5, random_state=0)
    >>> 0.5 <= round(process.spectral_radius, 6) <= 0.8
    True
    """
    check_params({"n_types": [COUNT]}, {"n_types": n_types}, "random_hawkes")
    n_types = int(n_types)
    _check_range("baseline_range", baseline_range, POSITIVE_FLOAT)
    _check_range("radius_range", radius_range, _RADIUS)
    _check_range("decay_range", decay_range, POSITIVE_FLOAT)
    rng = check_random_state(random_state)
    baseline = rng.uniform(*baseline_range, size=n_types)
    alpha = rng.uniform(0.0, 1.0, size=(n_types, n_types)) * (
        rng.uniform(size=(n_types,) * 2) < 0.5
    )
    alpha[np.arange(n_types), np.arange(n_types)] += rng.uniform(0.2, 1.0, size=n_types)
    radius = np.max(np.abs(np.linalg.eigvals(alpha)))
    alpha *= rng.uniform(*radius_range) / radius
    return HawkesProcess(baseline, alpha, float(rng.uniform(*decay_range)))


#: Spectral radii of a stationary process.
_RADIUS = Interval(Real, 0, 1, closed="neither")


def _check_range(name: str, pair: Any, interval: Interval) -> None:
    """Raise ValueError unless ``pair`` is ``(low, high)``, both in ``interval``, low <= high."""
    try:
        low, high = pair
    except (TypeError, ValueError):
        low = high = None
    ok = all(interval.is_satisfied_by(value) for value in (low, high))
    if not ok or low > high:
        raise ValueError(
            f"{name} must be a pair (low, high) with low <= high, each {interval}; got {pair!r}"
        )


def _split(n: int, rng: np.random.RandomState, fractions: tuple[float, float, float]) -> list:
    order = rng.permutation(n)
    n_train = max(1, round(fractions[0] * n))
    n_dev = round(fractions[1] * n)
    return [order[:n_train], order[n_train : n_train + n_dev], order[n_train + n_dev :]]


def _check_split(split: Any, n_sequences: int) -> None:
    """Raise ValueError unless ``split`` gives every experience train and test sequences."""
    fractions = np.asarray(split, dtype=np.float64) if np.ndim(split) == 1 else np.zeros(0)
    if fractions.shape != (3,) or not (fractions >= 0).all() or not np.isclose(fractions.sum(), 1):
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {split!r}")
    n_train = max(1, round(fractions[0] * n_sequences))
    n_test = n_sequences - n_train - round(fractions[1] * n_sequences)
    if n_test < 1:
        raise ValueError(
            f"n_sequences={n_sequences} with split={split!r} leaves no test sequence; "
            "expected more sequences or a larger test fraction"
        )


def hawkes_drift_stream(
    n_regimes: int = 8,
    n_types: int = 5,
    *,
    horizon: float = 2000.0,
    n_sequences: int = 40,
    split: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 0,
) -> Stream:
    """The synthetic drifting stream: one Hawkes regime per experience.

    Each experience holds ``n_sequences`` sequences, each simulated on ``horizon / n_sequences``
    time units (so ``horizon`` units per regime), split by sequence into train, dev and test.
    Payloads are :class:`~streams.events.EventSequences`: ``train`` and ``test``, with ``dev``
    (None when the split leaves it no sequence), the ``process`` and the oracle in the
    metadata. ``metadata["oracle"]`` holds the exact log-likelihood per event of the test
    sequences under the true parameters, in the conditioned-on-first-event convention of
    :mod:`tpp`.

    Examples
    --------
    >>> stream = hawkes_drift_stream(2, 3, horizon=200.0, n_sequences=10, seed=0)
    >>> stream, len(stream[0].test)
    (Stream(name='hawkes_drift', n_experiences=2, seed=0), 2)
    >>> -3.0 < stream[1].metadata["oracle"] < 0.0
    True

    Raises
    ------
    ValueError
        For ``n_regimes``, ``n_types`` or ``n_sequences`` not an int >= 1, ``horizon`` not a
        finite float > 0, or a ``split`` that leaves no training or no test sequence.
    """
    constraints = {name: [COUNT] for name in ("n_regimes", "n_types", "n_sequences")}
    constraints["horizon"] = [POSITIVE_FLOAT]
    arguments = dict(n_regimes=n_regimes, n_types=n_types, horizon=horizon, n_sequences=n_sequences)
    check_params(constraints, arguments, "hawkes_drift_stream")
    _check_split(split, n_sequences)
    rng = check_random_state(seed)
    experiences = []
    for index in range(n_regimes):
        process = random_hawkes(n_types, random_state=rng)
        sequences = process.sample(n_sequences, horizon / n_sequences, rng, min_events=3)
        train, dev, test = _split(n_sequences, rng, split)
        train, test = sequences.subset(train), sequences.subset(test)
        dev = sequences.subset(dev) if len(dev) else None  # too few sequences for a dev set
        oracle = oracle_log_likelihood(process, test)
        metadata = {"dev": dev, "process": process, "oracle": oracle, "regime": index}
        experiences.append(Experience(index, train, test, metadata))
    return Stream(experiences, name="hawkes_drift", seed=seed)


def oracle_log_likelihood(process: HawkesProcess, sequences: EventSequences) -> float:
    """Exact log-likelihood per event of ``sequences`` under ``process``.

    The convention is that of :mod:`tpp`: each sequence is conditioned on its first event (which
    is not counted), and the integral runs from the first event to the last.

    Raises
    ------
    ValueError
        For sequences with another number of types than the process, or without a sequence
        of two or more events.
    """
    if not isinstance(sequences, EventSequences):
        raise TypeError(f"sequences must be EventSequences, got {type(sequences).__name__}")
    if sequences.dim_process != process.n_types:
        raise ValueError(
            f"sequences have dim_process={sequences.dim_process}, but the process has "
            f"{process.n_types} types"
        )
    if sequences.n_events == len(sequences):
        raise ValueError("sequences must hold at least one sequence with two or more events")
    total = sum(process.log_likelihood(t, k, condition_on_first=True) for t, k in sequences)
    return total / float(sequences.n_events - len(sequences))
