"""Score matrices and the metrics derived from them.

Every report of a continual run comes from one matrix ``R`` where ``R[i][j]`` is the score on
experience ``j`` after training through experience ``i``. :class:`ScoreMatrix` holds that matrix
and derives average incremental accuracy, last accuracy, forgetting and backward transfer from it.
:func:`auc_over_budgets` (with :func:`auc_a` and :func:`auc_l`) summarises several runs made under
different memory budgets by the area under the score-versus-memory curve, as in MEMO.

:func:`prequential` (from :mod:`continual.prequential`) evaluates any estimator on a stream,
test-then-train, and returns a :class:`PrequentialResult`: scores and bytes held against the
samples seen.

Accuracies are fractions in ``[0, 1]`` in this library. Papers usually report percent, so a
number quoted from a paper is 100 times the number computed here.

References
----------
.. [1] Rebuffi, S.-A., Kolesnikov, A., Sperl, G. and Lampert, C. H. (2017). iCaRL: Incremental
   Classifier and Representation Learning. CVPR.
.. [2] Lopez-Paz, D. and Ranzato, M. (2017). Gradient Episodic Memory for Continual Learning.
   NeurIPS.
.. [3] Chaudhry, A., Dokania, P. K., Ajanthan, T. and Torr, P. H. S. (2018). Riemannian Walk for
   Incremental Learning: Understanding Forgetting and Intransigence. ECCV.
.. [4] Zhou, D.-W., Wang, Q.-W., Ye, H.-J. and Zhan, D.-C. (2023). A Model or 603 Exemplars:
   Towards Memory-Efficient Class-Incremental Learning. ICLR.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from continual.prequential import PrequentialResult, prequential

__all__ = [
    "PrequentialResult",
    "ScoreMatrix",
    "auc_a",
    "auc_l",
    "auc_over_budgets",
    "prequential",
]

#: Bytes per unit accepted by :func:`auc_over_budgets`.
MEMORY_UNITS: dict[str, int] = {"B": 1, "KB": 10**3, "MB": 10**6, "KiB": 2**10, "MiB": 2**20}


def _check_index(name: str, value: Any, n: int) -> int:
    """Return ``value`` as an int after checking ``0 <= value < n``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 0 <= value < n:
        raise ValueError(f"{name} must be in [0, {n - 1}], got {value}")
    return int(value)


def _check_score(score: Any) -> float:
    """Return ``score`` as a float after checking it is a finite real number."""
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise TypeError(f"score must be a real number, got {score!r}")
    if not math.isfinite(score):
        raise ValueError(f"score must be finite, got {score}")
    return float(score)


def _check_test_sizes(test_sizes: Any, n_experiences: int) -> np.ndarray:
    """Return the test sizes as float weights, or equal weights when ``test_sizes`` is None."""
    if test_sizes is None:
        return np.ones(n_experiences)
    sizes = np.asarray(test_sizes)
    if sizes.shape != (n_experiences,) or not np.issubdtype(sizes.dtype, np.number):
        raise ValueError(
            f"test_sizes must be a sequence of {n_experiences} numbers (one per experience), "
            f"got {test_sizes!r}"
        )
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise ValueError(f"test_sizes must all be positive and finite, got {test_sizes!r}")
    return sizes.astype(float)


class ScoreMatrix:
    r"""The matrix of scores of a continual run, and the metrics derived from it.

    ``R[i][j]`` is the score on experience ``j`` after training through experience ``i``, for
    ``T`` experiences. Entries that were not evaluated are NaN. With weights ``w_j`` (the test
    sizes, or 1 when they are not given) the derived metrics are:

    - incremental accuracy after experience ``i``:
      :math:`A_i = \sum_{j \le i} w_j R_{i,j} / \sum_{j \le i} w_j`.
      When the test set of experience ``j`` holds exactly its classes, this is the accuracy on all
      classes seen so far;
    - average incremental accuracy [1]_ [4]_: :math:`\bar A = \frac{1}{T} \sum_{i=0}^{T-1} A_i`;
    - last accuracy: :math:`A_{T-1}`;
    - forgetting [3]_, 0.0 when ``T == 1``:
      :math:`F = \frac{1}{T-1} \sum_{j=0}^{T-2} (\max_{l \in [j, T-2]} R_{l,j} - R_{T-1,j})`;
    - backward transfer [2]_, 0.0 when ``T == 1``:
      :math:`BWT = \frac{1}{T-1} \sum_{j=0}^{T-2} (R_{T-1,j} - R_{j,j})`.

    Forgetting and backward transfer are plain (unweighted) means over experiences, as in the
    papers. For a score where lower is better (an error, an RMSE), pass
    ``higher_is_better=False``: forgetting and backward transfer are then computed on ``-R``,
    so that positive forgetting always means worse and positive transfer better. The entries
    above the diagonal are forward scores: :meth:`forward_score` is the mean of
    ``R[i][i+1]``, the score on each experience before learning it. A metric that needs an
    entry that was not recorded raises ``ValueError``.

    Parameters
    ----------
    n_experiences
        Number of experiences ``T`` in the stream (the matrix is ``T x T``).
    test_sizes
        Number of test examples of each experience, used as weights of the incremental
        accuracies. None weighs every experience equally.
    higher_is_better
        Whether a larger score is better (accuracy, log-likelihood) or worse (error, RMSE).

    References
    ----------
    .. [1] Rebuffi et al. (2017). iCaRL: Incremental Classifier and Representation Learning. CVPR.
    .. [2] Lopez-Paz and Ranzato (2017). Gradient Episodic Memory for Continual Learning. NeurIPS.
    .. [3] Chaudhry et al. (2018). Riemannian Walk for Incremental Learning. ECCV.
    .. [4] Zhou et al. (2023). A Model or 603 Exemplars: Towards Memory-Efficient
       Class-Incremental Learning. ICLR.

    Examples
    --------
    >>> scores = ScoreMatrix(2, test_sizes=[100, 300])
    >>> scores.record(0, 0, 0.9)
    >>> scores.record(1, 0, 0.6)
    >>> scores.record(1, 1, 0.8)
    >>> scores.incremental_accuracies()
    array([0.9 , 0.75])
    >>> scores.average_incremental_accuracy()
    0.825
    >>> scores.forgetting(), scores.backward_transfer()
    (0.3, -0.3)
    """

    def __init__(
        self,
        n_experiences: int,
        *,
        test_sizes: Sequence[float] | None = None,
        higher_is_better: bool = True,
    ) -> None:
        self.n_experiences = n_experiences
        self.test_sizes = test_sizes
        self.higher_is_better = higher_is_better
        self._reset()

    def _reset(self) -> None:
        n = self.n_experiences
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n_experiences must be a positive int, got {n!r}")
        self._weights = _check_test_sizes(self.test_sizes, int(n))
        self._scores = np.full((int(n), int(n)), np.nan)

    @classmethod
    def from_array(
        cls,
        array: Any,
        test_sizes: Sequence[float] | None = None,
        *,
        higher_is_better: bool = True,
    ) -> ScoreMatrix:
        """Build a score matrix from a square array, NaN marking entries not evaluated.

        Parameters
        ----------
        array
            Square array-like of shape ``(T, T)``; ``array[i][j]`` is ``R[i][j]``.
        test_sizes, higher_is_better
            As in the constructor.

        Examples
        --------
        >>> scores = ScoreMatrix.from_array([[1.0, float("nan")], [0.5, 0.7]])
        >>> scores.last_accuracy()
        0.6
        """
        values = np.asarray(array, dtype=float)
        if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] == 0:
            raise ValueError(
                f"array must be a non-empty square 2-d array, got shape {values.shape}"
            )
        if np.any(np.isinf(values)):
            raise ValueError("array must hold finite scores or NaN, got an infinite value")
        scores = cls(values.shape[0], test_sizes=test_sizes, higher_is_better=higher_is_better)
        scores._scores[...] = values
        return scores

    @property
    def matrix(self) -> np.ndarray:
        """A copy of ``R`` as a float array of shape ``(T, T)``, NaN where not evaluated.

        Examples
        --------
        >>> scores = ScoreMatrix(2)
        >>> scores.record(0, 0, 0.5)
        >>> scores.matrix
        array([[0.5, nan],
               [nan, nan]])
        """
        return self._scores.copy()

    def record(self, i: int, j: int, score: float) -> None:
        """Store the score on experience ``j`` after training through experience ``i``.

        Parameters
        ----------
        i
            Index of the last experience trained on, in ``[0, T - 1]``.
        j
            Index of the evaluated experience, in ``[0, T - 1]``.
        score
            A finite real number; accuracies are fractions in ``[0, 1]``.

        Examples
        --------
        >>> scores = ScoreMatrix(1)
        >>> scores.record(0, 0, 0.25)
        >>> scores.last_accuracy()
        0.25
        """
        n = self._scores.shape[0]
        i = _check_index("i", i, n)
        j = _check_index("j", j, n)
        self._scores[i, j] = _check_score(score)

    def _entry(self, i: int, j: int) -> float:
        value = self._scores[i, j]
        if np.isnan(value):
            raise ValueError(f"score R[{i}][{j}] was not recorded; record(i={i}, j={j}, score=...)")
        return float(value)

    def _incremental_accuracy(self, i: int) -> float:
        row = np.array([self._entry(i, j) for j in range(i + 1)])
        return float(np.average(row, weights=self._weights[: i + 1]))

    def incremental_accuracies(self) -> np.ndarray:
        """Return ``A_i`` for every ``i``: the weighted mean of ``R[i][j]`` over ``j <= i``.

        Examples
        --------
        >>> ScoreMatrix.from_array([[0.8, 0.0], [0.4, 0.6]]).incremental_accuracies()
        array([0.8, 0.5])
        """
        return np.array([self._incremental_accuracy(i) for i in range(self._scores.shape[0])])

    def average_incremental_accuracy(self) -> float:
        """Return the mean of the incremental accuracies ``A_0, ..., A_{T-1}``.

        Examples
        --------
        >>> ScoreMatrix.from_array([[0.8, 0.0], [0.4, 0.6]]).average_incremental_accuracy()
        0.65
        """
        return float(np.mean(self.incremental_accuracies()))

    def last_accuracy(self) -> float:
        """Return ``A_{T-1}``, the incremental accuracy after the last experience.

        Examples
        --------
        >>> ScoreMatrix.from_array([[0.8, 0.0], [0.4, 0.6]]).last_accuracy()
        0.5
        """
        return self._incremental_accuracy(self._scores.shape[0] - 1)

    def forgetting(self) -> float:
        """Return the mean drop from the best earlier score to the final score (Chaudhry 2018).

        Examples
        --------
        >>> ScoreMatrix.from_array([[0.8, 0.0], [0.4, 0.6]]).forgetting()
        0.4
        """
        last = self._scores.shape[0] - 1
        if last == 0:
            return 0.0
        sign = 1.0 if self.higher_is_better else -1.0
        drops = [
            max(sign * self._entry(k, j) for k in range(j, last)) - sign * self._entry(last, j)
            for j in range(last)
        ]
        return float(np.mean(drops))

    def backward_transfer(self) -> float:
        """Return the mean of ``R[T-1][j] - R[j][j]`` over ``j < T - 1`` (Lopez-Paz 2017).

        Examples
        --------
        >>> ScoreMatrix.from_array([[0.8, 0.0], [0.4, 0.6]]).backward_transfer()
        -0.4
        """
        last = self._scores.shape[0] - 1
        if last == 0:
            return 0.0
        sign = 1.0 if self.higher_is_better else -1.0
        changes = [self._entry(last, j) - self._entry(j, j) for j in range(last)]
        return sign * float(np.mean(changes))

    def forward_score(self) -> float:
        """Return the mean of ``R[i][i+1]``: each experience scored before it is learned.

        NaN for a stream of one experience.

        Examples
        --------
        >>> ScoreMatrix.from_array([[0.8, 0.3], [0.4, 0.6]]).forward_score()
        0.3
        """
        n = self._scores.shape[0]
        if n == 1:
            return math.nan
        return float(np.mean([self._entry(i, i + 1) for i in range(n - 1)]))

    def summary(self) -> dict[str, float]:
        """Return the derived metrics as a dict of floats.

        Examples
        --------
        >>> ScoreMatrix.from_array([[0.8, 0.0], [0.4, 0.6]]).summary()
        {'average_incremental_accuracy': 0.65, 'last_accuracy': 0.5, 'forgetting': 0.4,
         'backward_transfer': -0.4, 'forward_score': 0.0}

        ``forward_score`` is None when an entry ``R[i][i+1]`` was not recorded.
        """
        upper = [self._scores[i, i + 1] for i in range(self._scores.shape[0] - 1)]
        forward = None if not upper or np.isnan(upper).any() else self.forward_score()
        return {
            "average_incremental_accuracy": self.average_incremental_accuracy(),
            "last_accuracy": self.last_accuracy(),
            "forgetting": self.forgetting(),
            "backward_transfer": self.backward_transfer(),
            "forward_score": forward,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: the matrix as nested lists (None for NaN) and the summary.

        Examples
        --------
        >>> ScoreMatrix.from_array([[1.0]]).to_dict()
        {'n_experiences': 1, 'test_sizes': None, 'higher_is_better': True, 'matrix': [[1.0]],
         'summary': {'average_incremental_accuracy': 1.0, 'last_accuracy': 1.0,
                     'forgetting': 0.0, 'backward_transfer': 0.0, 'forward_score': None}}
        """
        matrix = [[None if np.isnan(v) else float(v) for v in row] for row in self._scores]
        sizes = None if self.test_sizes is None else np.asarray(self.test_sizes).tolist()
        return {
            "n_experiences": self._scores.shape[0],
            "test_sizes": sizes,
            "higher_is_better": self.higher_is_better,
            "matrix": matrix,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreMatrix:
        """Rebuild a score matrix from :meth:`to_dict`'s dict (as read back from JSON).

        The ``matrix`` entry is required (None marks an entry not evaluated); ``test_sizes``
        and ``higher_is_better`` are optional, and the ``summary`` is ignored: it is derived.

        Parameters
        ----------
        data
            A mapping with a ``"matrix"`` of nested lists, as written by :meth:`to_dict`.

        Examples
        --------
        >>> saved = ScoreMatrix.from_array([[0.8, 0.0], [0.4, 0.6]], [10, 30]).to_dict()
        >>> ScoreMatrix.from_dict(saved).average_incremental_accuracy()
        0.6
        >>> ScoreMatrix.from_dict({"matrix": [[0.5, None], [0.2, 0.7]]}).last_accuracy()
        0.45
        """
        if not isinstance(data, Mapping) or "matrix" not in data:
            raise ValueError(f"data must be a mapping with a 'matrix' entry, got {data!r}")
        matrix = [[np.nan if v is None else v for v in row] for row in data["matrix"]]
        return cls.from_array(
            matrix,
            data.get("test_sizes"),
            higher_is_better=data.get("higher_is_better", True),
        )

    def __repr__(self) -> str:
        return f"ScoreMatrix(n_experiences={self.n_experiences!r}, test_sizes={self.test_sizes!r})"


def auc_over_budgets(
    budgets: Sequence[float], scores: Sequence[float], *, unit: str = "MB"
) -> float:
    """Return the area under the score-versus-memory curve by the trapezoid rule.

    Budgets are in bytes and are converted to ``unit`` (``"MB"`` = 10**6 bytes, ``"MiB"`` = 2**20
    bytes; ``"B"``, ``"KB"`` and ``"KiB"`` are accepted too). Points are sorted by budget first.
    With average incremental accuracy as the score this is MEMO's AUC-A, with last accuracy its
    AUC-L [1]_. Scores here are fractions, while the paper reports percent, so the paper's AUC is
    100 times this one for the same runs.

    Parameters
    ----------
    budgets
        Memory budget of each run, in bytes (non-negative, all different).
    scores
        Score of each run, in the same order as ``budgets``.
    unit
        Memory unit of the x axis.

    References
    ----------
    .. [1] Zhou et al. (2023). A Model or 603 Exemplars: Towards Memory-Efficient Class-Incremental
       Learning. ICLR.

    Examples
    --------
    >>> auc_over_budgets([3_000_000, 1_000_000], [0.6, 0.4])
    1.0
    """
    if unit not in MEMORY_UNITS:
        raise ValueError(f"unit must be one of {sorted(MEMORY_UNITS)}, got {unit!r}")
    x = np.asarray(budgets, dtype=float)
    y = np.asarray(scores, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"budgets and scores must be 1-d and of the same length, got {len(budgets)} budgets "
            f"and {len(scores)} scores"
        )
    if x.size < 2:
        raise ValueError(f"budgets must hold at least 2 points, got {x.size}")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f"budgets must be non-negative finite byte counts, got {list(budgets)}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"scores must be finite, got {list(scores)}")
    if np.unique(x).size != x.size:
        raise ValueError(f"budgets must all be different, got {list(budgets)}")
    order = np.argsort(x)
    return float(np.trapezoid(y[order], x[order] / MEMORY_UNITS[unit]))


def _check_matrices(budgets: Sequence[float], matrices: Sequence[ScoreMatrix]) -> None:
    for k, matrix in enumerate(matrices):
        if not isinstance(matrix, ScoreMatrix):
            raise TypeError(f"matrices[{k}] must be a ScoreMatrix, got {type(matrix).__name__}")
    if len(budgets) != len(matrices):
        raise ValueError(
            f"budgets and matrices must have the same length, got {len(budgets)} budgets and "
            f"{len(matrices)} matrices"
        )


def auc_a(budgets: Sequence[float], matrices: Sequence[ScoreMatrix], *, unit: str = "MB") -> float:
    """Return MEMO's AUC-A: the area under average incremental accuracy versus memory.

    Parameters
    ----------
    budgets
        Memory budget of each run, in bytes.
    matrices
        Score matrix of each run, in the same order as ``budgets``.
    unit
        Memory unit of the x axis, as in :func:`auc_over_budgets`.

    Examples
    --------
    >>> runs = [ScoreMatrix.from_array([[0.5]]), ScoreMatrix.from_array([[0.7]])]
    >>> auc_a([1_000_000, 2_000_000], runs)
    0.6
    """
    _check_matrices(budgets, matrices)
    scores = [m.average_incremental_accuracy() for m in matrices]
    return auc_over_budgets(budgets, scores, unit=unit)


def auc_l(budgets: Sequence[float], matrices: Sequence[ScoreMatrix], *, unit: str = "MB") -> float:
    """Return MEMO's AUC-L: the area under last accuracy versus memory.

    Parameters
    ----------
    budgets
        Memory budget of each run, in bytes.
    matrices
        Score matrix of each run, in the same order as ``budgets``.
    unit
        Memory unit of the x axis, as in :func:`auc_over_budgets`.

    Examples
    --------
    >>> runs = [ScoreMatrix.from_array([[0.5]]), ScoreMatrix.from_array([[0.9]])]
    >>> auc_l([2**20, 3 * 2**20], runs, unit="MiB")
    1.4
    """
    _check_matrices(budgets, matrices)
    scores = [m.last_accuracy() for m in matrices]
    return auc_over_budgets(budgets, scores, unit=unit)
