"""Prequential (test-then-train) evaluation of any estimator on a stream, with its memory.

:func:`prequential` predicts each sample (or chunk) before learning it, as river's
``progressive_val_score`` does, for river estimators and this library's alike, and traces the
bytes the estimator holds; :class:`PrequentialResult` holds the curves, prints them and draws
them (:func:`~continual.figures.plot_prequential`). It is exported by
:mod:`continual.evaluation` beside the score matrices.

References
----------
.. [1] Dawid, A. P. (1984). Present Position and Potential Developments: Some Personal Views:
   Statistical Theory: The Prequential Approach. Journal of the Royal Statistical Society A.
"""

from __future__ import annotations

import collections
import itertools
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from continual.measure import PythonGraph, nbytes
from continual.tables import format_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PrequentialResult", "prequential"]


@dataclass(frozen=True)
class PrequentialResult:
    """The curves of a prequential run, one point every ``every`` samples learned.

    Parameters
    ----------
    samples
        Samples learned at each point.
    scores
        Metric name to its score over every sample tested so far, at each point.
    window_scores
        Metric name to its score over the last ``window`` samples tested, at each point.
    memory
        Bytes the estimator held at each point: its ``accountant_``'s total when it has one,
        else ``nbytes(PythonGraph(estimator))``.
    window
        Length of the window of ``window_scores``, in samples.
    drifts
        ``(position, width)`` of each known drift, in samples.
    budget
        The estimator's budget in bytes (its ``accountant_``'s), or None.

    Examples
    --------
    >>> result = PrequentialResult([100, 200], {"Accuracy": [0.5, 0.75]},
    ...                            {"Accuracy": [0.5, 1.0]}, [1_000, 1_800], window=100)
    >>> print(result)
    samples  Accuracy  Accuracy (last 100)  bytes
    100         0.500                0.500  1,000
    200         0.750                1.000  1,800
    >>> result.to_dict()["memory"]
    [1000, 1800]
    """

    samples: list[int]
    scores: dict[str, list[float]]
    window_scores: dict[str, list[float]]
    memory: list[int]
    window: int
    drifts: list[tuple[int, int]] = field(default_factory=list)
    budget: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the curves as a JSON-ready dict (drifts as ``[position, width]`` lists)."""
        data = asdict(self)
        data["drifts"] = [list(drift) for drift in self.drifts]
        return data

    def plot(self, path: str | Path | None = None) -> Figure:
        """Draw scores and memory against samples with
        :func:`~continual.figures.plot_prequential` (saved to ``path`` when given)."""
        from continual.figures import plot_prequential

        return plot_prequential(
            self.samples,
            self.scores,
            self.memory,
            window_scores=self.window_scores,
            window=self.window,
            drifts=self.drifts,
            budget=self.budget,
            path=path,
        )

    def __str__(self) -> str:
        header = ["samples"]
        for name in self.scores:
            header += [name, f"{name} (last {self.window:,})"]
        rows = [
            [n]
            + [
                v
                for name in self.scores
                for v in (self.scores[name][k], self.window_scores[name][k])
            ]
            + [self.memory[k]]
            for k, n in enumerate(self.samples)
        ]
        return format_table([*header, "bytes"], rows, formats={"samples": "d"})


class _Windowed:
    """A river metric over the last ``window`` updates (a clone reverted as updates leave)."""

    def __init__(self, metric: Any, window: int) -> None:
        self.metric = metric.clone()
        self.updates: collections.deque[tuple[Any, Any]] = collections.deque()
        self.window = window

    def update(self, y: Any, prediction: Any) -> None:
        self.metric.update(y, prediction)
        self.updates.append((y, prediction))
        if len(self.updates) > self.window:
            self.metric.revert(*self.updates.popleft())

    def get(self) -> float:
        return self.metric.get()


class _Recorder:
    """Metrics updated with each tested sample, and the curves sampled every ``every``."""

    def __init__(self, metrics: dict[str, Any], window: int, every: int) -> None:
        self.metrics = metrics
        self.windowed = {name: _Windowed(metric, window) for name, metric in metrics.items()}
        self.every = every
        self.seen = 0
        self.curves: dict[str, Any] = {"samples": [], "scores": {}, "window": {}, "memory": []}
        self.needs_proba = any(not getattr(m, "requires_labels", True) for m in metrics.values())

    def update(self, y: Any, label: Any, proba: Any) -> None:
        for name, metric in self.metrics.items():
            prediction = label if getattr(metric, "requires_labels", True) else proba
            if prediction is None or (isinstance(prediction, dict) and not prediction):
                continue  # the estimator cannot predict yet (river's convention)
            metric.update(y, prediction)
            self.windowed[name].update(y, prediction)

    def learned(self, n: int, estimator: Any, last: bool = False) -> None:
        before, self.seen = self.seen, self.seen + n
        if self.seen // self.every > before // self.every or (last and n):
            self.record(estimator)

    def record(self, estimator: Any) -> None:
        if self.curves["samples"] and self.curves["samples"][-1] == self.seen:
            return
        self.curves["samples"].append(self.seen)
        for name, metric in self.metrics.items():
            self.curves["scores"].setdefault(name, []).append(float(metric.get()))
            self.curves["window"].setdefault(name, []).append(float(self.windowed[name].get()))
        self.curves["memory"].append(_held_bytes(estimator))


def _held_bytes(estimator: Any) -> int:
    """The estimator's ``accountant_`` total, or the bytes of its Python objects; a river
    pipeline adds its steps' (a scaler's graph plus a budgeted learner's accounts)."""
    accountant = getattr(estimator, "accountant_", None)
    if accountant is not None:
        return int(accountant.total())
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, Mapping) and steps:
        return sum(_held_bytes(step) for step in steps.values())
    return nbytes(PythonGraph(estimator))


def _budget_of(estimator: Any) -> int | None:
    """The byte budget of the estimator's ``accountant_`` (or of a pipeline's last step)."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, Mapping) and steps and not hasattr(estimator, "accountant_"):
        estimator = list(steps.values())[-1]
    budget = getattr(getattr(estimator, "accountant_", None), "budget", None)
    return budget if isinstance(budget, int) else None


def _check_count(name: str, value: Any, *, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "a positive int or None" if optional else "a positive int"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def _check_metrics(metrics: Any, estimator: Any, per_sample: bool) -> dict[str, Any]:
    """Metric name to river metric; the default is accuracy, or MAE for a regressor."""
    if metrics is None:
        from river import metrics as river_metrics

        regressor = _is_regressor(estimator, per_sample)
        metrics = river_metrics.MAE() if regressor else river_metrics.Accuracy()
    if isinstance(metrics, Mapping):
        named = {f"metrics[{name!r}]": (str(name), m) for name, m in metrics.items()}
    elif isinstance(metrics, Sequence) and not isinstance(metrics, str):
        named = {f"metrics[{k}]": (type(m).__name__, m) for k, m in enumerate(metrics)}
    else:
        named = {"metrics": (type(metrics).__name__, metrics)}
    if not named:
        raise ValueError(f"metrics must name at least one river metric, got {metrics!r}")
    for argument, (_, metric) in named.items():
        if not all(hasattr(metric, verb) for verb in ("update", "revert", "get", "clone")):
            raise TypeError(
                f"{argument} must be a river metric such as river.metrics.Accuracy() (with "
                f"update, revert, get and clone), got {metric!r}"
            )
    return dict(named.values())


def _is_regressor(estimator: Any, per_sample: bool) -> bool:
    if per_sample:
        from river import base

        return isinstance(estimator, base.Regressor)
    from sklearn.base import is_regressor

    return is_regressor(estimator)


def _check_verbs(estimator: Any, verbs: tuple[str, ...], fix: str) -> None:
    missing = [verb for verb in verbs if not callable(getattr(estimator, verb, None))]
    if missing:
        raise TypeError(
            f"estimator must have {' and '.join(verbs)}, got {type(estimator).__name__} "
            f"without {', '.join(missing)}; {fix}"
        )


def _check_drifts(drifts: Any, stream: Any) -> list[tuple[int, int]]:
    """Drifts given as positions or ``(position, width)`` pairs, else read from the stream."""
    if drifts is None:
        from continual.river import drift_points

        return drift_points(stream)
    checked = []
    for k, drift in enumerate(drifts):
        position, width = drift if isinstance(drift, Sequence) else (drift, 0)
        for part, value in (("position", position), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(
                    f"drifts[{k}] must be a sample position or a (position, width) pair of "
                    f"non-negative ints, got {drift!r} (bad {part})"
                )
        checked.append((int(position), int(width)))
    return sorted(checked)


def _pairs(stream: Any, take: int | None) -> Iterator[tuple[Any, Any]]:
    """``(x, y)`` pairs from an iterable of pairs or an ``(X, y)`` pair of arrays."""
    if isinstance(stream, tuple) and len(stream) == 2 and hasattr(stream[0], "shape"):
        X, y = stream
        if len(X) != len(y):
            raise ValueError(
                f"stream (X, y) must have as many labels as rows, got {len(X)} rows and "
                f"{len(y)} labels"
            )
        stream = zip(X, y)
    if not isinstance(stream, Iterable):
        raise TypeError(
            f"stream must be an iterable of (x, y) pairs or an (X, y) pair of arrays, got "
            f"{type(stream).__name__}"
        )
    for row, pair in enumerate(itertools.islice(stream, take)):
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"stream must yield (x, y) pairs, got {pair!r} at sample {row}")
        yield pair


def _as_dict(x: Any) -> dict:
    """A river sample: a dict as it is, an array row as ``{0: x[0], 1: x[1], ...}``."""
    return x if isinstance(x, Mapping) else dict(enumerate(np.asarray(x).ravel().tolist()))


def _as_row(x: Any) -> np.ndarray:
    return np.asarray(list(x.values()) if isinstance(x, Mapping) else x)


def _test_then_train_one(estimator: Any, pairs: Iterable, recorder: _Recorder) -> None:
    for x, y in pairs:
        x = _as_dict(x)
        label = estimator.predict_one(x)
        proba = estimator.predict_proba_one(x) if recorder.needs_proba else None
        recorder.update(y, label, proba)
        estimator.learn_one(x, y)
        recorder.learned(1, estimator)


def _test_then_train_batches(
    estimator: Any, pairs: Iterable, recorder: _Recorder, batch_size: int, classes: Any
) -> None:
    extra = {} if classes is None else {"classes": classes}
    fitted = False
    while batch := list(itertools.islice(pairs, batch_size)):
        X = np.stack([_as_row(x) for x, _ in batch])
        y = np.asarray([label for _, label in batch])
        if fitted:  # the first batch cannot be tested: nothing was learned yet
            labels = estimator.predict(X)
            probas = _proba_dicts(estimator, X) if recorder.needs_proba else [None] * len(X)
            for truth, label, proba in zip(y.tolist(), np.asarray(labels).tolist(), probas):
                recorder.update(truth, label, proba)
        estimator.partial_fit(X, y, **extra)
        fitted = True
        recorder.learned(len(batch), estimator)


def _proba_dicts(estimator: Any, X: np.ndarray) -> list[dict]:
    probas = np.asarray(estimator.predict_proba(X))
    classes = np.asarray(estimator.classes_).tolist()
    return [dict(zip(classes, row)) for row in probas.tolist()]


def prequential(
    estimator: Any,
    stream: Any,
    *,
    metrics: Any = None,
    window: int = 1000,
    every: int = 100,
    batch_size: int | None = None,
    take: int | None = None,
    drifts: Sequence[int | tuple[int, int]] | None = None,
    classes: Any = None,
) -> PrequentialResult:
    """Evaluate ``estimator`` on ``stream`` test-then-train, and trace its memory.

    Each sample is first predicted (tested), then learned. With ``batch_size=None`` this is
    done one sample at a time with river's verbs, ``predict_one`` (and ``predict_proba_one``
    for a metric that needs probabilities) then ``learn_one``: any river estimator, a
    :class:`~continual.river.Budgeted` one, or a river-compatible learner of this library.
    With ``batch_size=n`` it is done on chunks of ``n`` samples with scikit-learn's verbs,
    ``predict`` (and ``predict_proba``) then ``partial_fit`` (given ``classes=`` when set); the
    first chunk is only learned. A prediction of None or ``{}`` (a river model that has seen
    nothing) updates no metric, as in river's ``progressive_val_score``.

    Every ``every`` samples learned (and after the last), it records each metric over all
    the samples tested so far and over the last ``window`` of them, and the bytes the
    estimator holds: its ``accountant_``'s total when it has one, else
    ``nbytes(PythonGraph(estimator))``, every Python object it holds.

    Parameters
    ----------
    estimator
        A river estimator (``learn_one``/``predict_one``) or, with ``batch_size``, an
        estimator with ``partial_fit``/``predict``.
    stream
        An iterable of ``(x, y)`` pairs, ``x`` a dict (river) or an array row; a river dataset
        (an endless generator needs ``take``); or an ``(X, y)`` pair of arrays. Rows become
        dicts ``{0: x[0], 1: x[1], ...}`` for a river estimator, and dicts become rows (in
        key order) for a batch estimator.
    metrics
        A river metric, a list of them (named by their class) or a mapping name to metric.
        They are updated in place. Default: ``Accuracy()``, or ``MAE()`` for a regressor.
    window
        Samples in the window of the windowed scores.
    every
        Samples learned between two recorded points.
    batch_size
        None for river's one-sample verbs, else the chunk size for scikit-learn's verbs.
    take
        Read at most this many samples (required for an endless river generator).
    drifts
        Known drift positions (or ``(position, width)`` pairs), in samples. None reads them
        from a river ``ConceptDriftStream`` (see :func:`continual.river.drift_points`).
    classes
        Passed to every ``partial_fit`` call when given (scikit-learn's convention).

    Returns
    -------
    PrequentialResult
        The curves; ``.plot()`` draws them and ``.to_dict()`` is JSON-ready.

    Examples
    --------
    >>> from river import tree
    >>> from river.datasets import synth
    >>> from continual.evaluation import prequential
    >>> from continual.river import Budgeted
    >>> stream = synth.ConceptDriftStream(synth.SEA(seed=1, variant=0),
    ...                                   synth.SEA(seed=1, variant=3), position=1500,
    ...                                   width=50, seed=1)
    >>> model = Budgeted(tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3),
    ...                  budget="60 kB", check_every=10)
    >>> result = prequential(model, stream, take=3000, every=500, window=500)
    >>> print(result)  # bytes: one leaf, then two, then no more splits (Python-dependent)
    samples  Accuracy  Accuracy (last 500)   bytes
    500         0.920                0.920  ...
    1000        0.923                0.926  ...
    1500        0.919                0.910  ...
    2000        0.909                0.882  ...
    2500        0.914                0.930  ...
    3000        0.916                0.926  ...
    >>> result.drifts, result.budget, max(result.memory) <= 60_000
    ([(1500, 50)], 60000, True)

    A scikit-learn estimator learns on chunks of ``batch_size`` rows:

    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(600, 2))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> result = prequential(SGDClassifier(random_state=0), (X, y), batch_size=50, every=200,
    ...                      classes=[0, 1])
    >>> result.samples, [round(score, 2) for score in result.scores["Accuracy"]]
    ([200, 400, 600], [0.91, 0.94, 0.95])
    """
    window = _check_count("window", window)
    every = _check_count("every", every)
    batch_size = _check_count("batch_size", batch_size, optional=True)
    take = _check_count("take", take, optional=True)
    per_sample = batch_size is None
    if per_sample:
        fix = "pass batch_size= to learn with partial_fit and predict on chunks"
        _check_verbs(estimator, ("learn_one", "predict_one"), fix)
    else:
        fix = "pass batch_size=None to learn with learn_one and predict_one"
        _check_verbs(estimator, ("partial_fit", "predict"), fix)
    from continual.river import check_finite_stream

    check_finite_stream(stream, take)
    recorder = _Recorder(_check_metrics(metrics, estimator, per_sample), window, every)
    known_drifts = _check_drifts(drifts, stream)
    pairs = _pairs(stream, take)
    if per_sample:
        _test_then_train_one(estimator, pairs, recorder)
    else:
        _test_then_train_batches(estimator, pairs, recorder, batch_size, classes)
    if recorder.seen == 0:
        raise ValueError("stream must yield at least one (x, y) pair, got none")
    recorder.record(estimator)
    budget = _budget_of(estimator)
    curves = recorder.curves
    return PrequentialResult(
        samples=curves["samples"],
        scores=curves["scores"],
        window_scores=curves["window"],
        memory=curves["memory"],
        window=window,
        drifts=known_drifts,
        budget=budget,
    )
