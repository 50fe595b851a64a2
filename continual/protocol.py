"""The continual evaluation protocol, one for every domain: learn each experience, score all.

After learning experience ``i`` the learner is scored on the test payload of every experience
``j`` of the stream, filling ``R[i][j]`` of a :class:`~continual.evaluation.ScoreMatrix`. The
entries above the diagonal are forward scores: ``R[i][i + 1]`` is the score on the next
experience before learning it (the prequential score of a stream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from continual.evaluation import ScoreMatrix
from continual.progress import progress

__all__ = ["evaluate_stream"]


def evaluate_stream(
    stream: Sequence[Any],
    learn: Callable[[Any], Any],
    score: Callable[[Any], float | Mapping[str, float]],
    *,
    sizes: Sequence[float] | None = None,
    horizon: int | None = None,
    higher_is_better: Mapping[str, bool] | None = None,
    after_experience: Callable[[int], Any] | None = None,
    start: int = 0,
    scores: ScoreMatrix | Mapping[str, ScoreMatrix] | None = None,
    verbose: int = 0,
) -> Any:
    """Learn every experience of ``stream`` in turn and score every experience after each.

    Parameters
    ----------
    stream
        A sequence of experiences with ``train`` and ``test`` payloads.
    learn
        Called with each experience, in order.
    score
        Called with a test payload; returns a score, or a mapping of metric name to score.
    sizes
        Test sizes, the weights of the incremental scores (see :class:`ScoreMatrix`).
    horizon
        Score experience ``j`` after experience ``i`` only when ``j <= i + horizon`` (1 keeps
        the past, the present and the next experience); None scores every experience.
    higher_is_better
        Metric name to whether higher is better (default True), for forgetting.
    after_experience
        Called with ``i`` after experience ``i`` is learned and scored (for logging and
        checkpoints).
    start
        The first experience to learn: a run resumed after experience ``start - 1`` passes
        the ``scores`` it had filled so far.
    scores
        Matrices to fill (when resuming); new ones otherwise.
    verbose
        0 silences the progress bar.

    Returns
    -------
    ScoreMatrix or dict of ScoreMatrix
        One matrix, or one per metric when ``score`` returns a mapping. Entries not scored
        are NaN.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from continual.protocol import evaluate_stream
    >>> stream = [SimpleNamespace(index=i, train=i, test=i) for i in range(3)]
    >>> learned = []
    >>> scores = evaluate_stream(stream, learned.append, lambda j: float(j <= len(learned) - 1))
    >>> scores.matrix.tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    >>> scores.forward_score()
    0.0
    """
    n = len(stream)
    if n == 0:
        raise ValueError("stream must hold at least one experience, got none")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int)
                                or horizon < 0):  # fmt: skip
        raise ValueError(f"horizon must be a non-negative int or None, got {horizon!r}")
    missing = [exp.index for exp in stream if getattr(exp, "test", None) is None]
    if missing:
        raise ValueError(
            f"every experience needs a test payload to be scored; experiences {missing} have "
            "test=None (build the stream with test data)"
        )
    single = isinstance(scores, ScoreMatrix)
    matrices: dict[str, ScoreMatrix] | None = (
        {"score": scores} if single else None if scores is None else dict(scores)
    )
    if not 0 <= start <= n or (start and matrices is None):
        raise ValueError(
            f"start must be in [0, {n}] and come with the scores filled so far, got "
            f"start={start!r}, scores={scores!r}"
        )
    for i in progress(range(start, n), verbose=verbose, desc="experiences"):
        learn(stream[i])
        last = n - 1 if horizon is None else min(n - 1, i + horizon)
        for j in range(last + 1):
            value = score(stream[j].test)
            if matrices is None:
                single = not isinstance(value, Mapping)
                names = ["score"] if single else list(value)
                better = dict(higher_is_better or {})
                matrices = {
                    name: ScoreMatrix(n, test_sizes=sizes, higher_is_better=better.get(name, True))
                    for name in names
                }
            values = {"score": value} if single else value
            for name, matrix in matrices.items():
                matrix.record(i, j, float(values[name]))
        if after_experience is not None:
            after_experience(i)
    return matrices["score"] if single else matrices
