"""Adapters that turn numpy arrays, pandas data frames and river datasets into streams.

Rows keep their order: a stream built here is the data read front to back, cut into contiguous
experiences (or, for pandas, grouped by the values of one column).
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import check_scalar

from continual.river import check_finite_stream
from continual.validation import Interval, check_labels, check_params
from streams.experience import Experience, Stream

#: A held-out fraction: NaN is outside it (sklearn's check_scalar would let NaN through).
_HELD_OUT = Interval(numbers.Real, 0, 1, closed="left")


def _check_xy(X: Any, y: Any, *, y_required: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert ``X`` and ``y`` to arrays and check that they have the same number of rows."""
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError(f"X must be an array with at least one dimension, got a scalar {X!r}")
    if len(X) == 0:
        raise ValueError(f"X must be non-empty, got an array of shape {X.shape}")
    if y is None:
        if y_required:
            raise ValueError("y must be an array of labels, got None")
        return X, None
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != len(X):
        raise ValueError(
            f"X and y must have the same number of rows, got X with {len(X)} rows and y "
            f"of shape {y.shape}"
        )
    check_labels(y)
    return X, y


def _check_fraction(test_fraction: float, caller: str) -> float:
    check_params({"test_fraction": [_HELD_OUT]}, {"test_fraction": test_fraction}, caller)
    return float(test_fraction)


def _take(array: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if array is None else array[rows]


def _experiences_from_rows(
    X: np.ndarray,
    y: np.ndarray | None,
    row_groups: Sequence[np.ndarray],
    metadata: Sequence[Mapping[str, Any]],
    *,
    test_fraction: float = 0.0,
    seed: Any = 0,
) -> list[Experience]:
    """Build one experience per group of row indices, holding out a random test part of each.

    The held-out rows of a group (``ceil(test_fraction * size)`` of them, drawn with
    ``np.random.default_rng(seed)``) keep their original order, and so do the training rows.
    """
    rng = np.random.default_rng(seed)
    experiences = []
    for index, (rows, meta) in enumerate(zip(row_groups, metadata)):
        test = None
        if test_fraction > 0:
            n_test = int(np.ceil(test_fraction * len(rows)))
            if n_test >= len(rows):
                raise ValueError(
                    f"test_fraction={test_fraction} leaves no training rows in experience "
                    f"{index} of {len(rows)} rows; use a smaller test_fraction"
                )
            held_out = np.zeros(len(rows), dtype=bool)
            held_out[rng.choice(len(rows), size=n_test, replace=False)] = True
            test = (X[rows[held_out]], _take(y, rows[held_out]))
            rows = rows[~held_out]
        experiences.append(Experience(index, (X[rows], _take(y, rows)), test, meta))
    return experiences


def _contiguous_stream(
    X: np.ndarray,
    y: np.ndarray | None,
    chunks: Sequence[np.ndarray],
    *,
    extra: Mapping[str, Any] | None = None,
    test_fraction: float = 0.0,
    seed: Any = 0,
    name: str,
) -> Stream:
    """A stream with one experience per contiguous chunk of row indices."""
    metadata = [
        {"start": int(rows[0]), "stop": int(rows[-1]) + 1, **(extra or {})} for rows in chunks
    ]
    experiences = _experiences_from_rows(
        X, y, chunks, metadata, test_fraction=test_fraction, seed=seed
    )
    return Stream(experiences, name=name, seed=seed if test_fraction > 0 else None)


def _split_evenly(n_rows: int, n_experiences: int) -> list[np.ndarray]:
    check_scalar(n_experiences, "n_experiences", numbers.Integral, min_val=1)
    if n_experiences > n_rows:
        raise ValueError(
            f"n_experiences must be at most the number of rows ({n_rows}), got {n_experiences}"
        )
    return np.array_split(np.arange(n_rows), n_experiences)


def from_arrays(
    X: Any,
    y: Any = None,
    *,
    n_experiences: int,
    test_fraction: float = 0.0,
    seed: Any = 0,
    name: str = "arrays",
) -> Stream:
    """Cut arrays, in row order, into contiguous experiences of near-equal size.

    Parameters
    ----------
    X
        Inputs, one row per sample. Their dtype is kept.
    y
        Targets with as many rows as ``X``, or None for unlabelled data (the payload is then
        ``(X, None)``).
    n_experiences
        Number of experiences; chunk sizes differ by at most one (``np.array_split``).
    test_fraction
        Fraction in ``[0, 1)`` of each chunk held out, at random, as its test payload
        (``ceil(test_fraction * size)`` rows). With 0 the test payload is None.
    seed
        Seed of the random hold-out. The stream records it only when ``test_fraction > 0``.
    name
        Name of the stream.

    Returns
    -------
    Stream
        Experience ``i`` has ``metadata == {"start": start, "stop": stop}``, the absolute row range
        ``X[start:stop]`` of its chunk.

    Examples
    --------
    >>> import numpy as np
    >>> stream = from_arrays(np.arange(10).reshape(5, 2), np.arange(5), n_experiences=2)
    >>> [dict(exp.metadata) for exp in stream]
    [{'start': 0, 'stop': 3}, {'start': 3, 'stop': 5}]
    >>> stream[1].train
    (array([[6, 7],
           [8, 9]]), array([3, 4]))
    >>> held = from_arrays(np.arange(8), n_experiences=1, test_fraction=0.25, seed=0)
    >>> len(held[0].train[0]), len(held[0].test[0]), held[0].train[1]
    (6, 2, None)
    """
    X, y = _check_xy(X, y)
    test_fraction = _check_fraction(test_fraction, "from_arrays")
    chunks = _split_evenly(len(X), n_experiences)
    return _contiguous_stream(X, y, chunks, test_fraction=test_fraction, seed=seed, name=name)


def _check_column(df: pd.DataFrame, column: Any, argument: str) -> None:
    if column is not None and column not in df.columns:
        raise ValueError(
            f"{argument} must be a column of df, got {column!r}; columns are {list(df.columns)}"
        )


def _group_rows(values: pd.Series) -> tuple[list[Any], list[np.ndarray]]:
    """Sorted distinct values of a column, and the row positions holding each of them."""
    if values.isna().any():
        raise ValueError(f"experience column {values.name!r} must not contain missing values")
    codes, uniques = pd.factorize(values, sort=True)
    rows = [np.flatnonzero(codes == code) for code in range(len(uniques))]
    return list(uniques.tolist()), rows


def from_pandas(
    df: pd.DataFrame,
    *,
    target: Any = None,
    experience: Any = None,
    n_experiences: int | None = None,
    test_fraction: float = 0.0,
    seed: Any = 0,
    name: str = "pandas",
) -> Stream:
    """Build a stream from a data frame, grouped by a column or cut into contiguous chunks.

    Give exactly one of ``experience`` (one experience per distinct value of that column, in
    sorted order, rows in their original order) or ``n_experiences`` (contiguous near-equal
    chunks, as :func:`from_arrays`).

    Parameters
    ----------
    df
        The data frame.
    target
        Column holding the targets ``y``, or None for unlabelled data.
    experience
        Column whose values define the experiences.
    n_experiences
        Number of contiguous chunks.
    test_fraction
        Fraction in ``[0, 1)`` of each experience held out at random as its test payload.
    seed
        Seed of the random hold-out. The stream records it only when ``test_fraction > 0``.
    name
        Name of the stream.

    Returns
    -------
    Stream
        Payloads ``(X, y)`` where ``X = df[columns].to_numpy()`` holds every column other than
        ``target`` and ``experience``. The metadata carries ``"columns"`` (the names of the
        columns of ``X``) and either ``"group"`` (the column value) or ``"start"``/``"stop"``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "day": [2, 1, 2, 1], "y": [0, 1, 0, 1]})
    >>> stream = from_pandas(df, target="y", experience="day")
    >>> [dict(exp.metadata) for exp in stream]
    [{'group': 1, 'columns': ('a',)}, {'group': 2, 'columns': ('a',)}]
    >>> stream[0].train
    (array([[2.],
           [4.]]), array([1, 1]))
    >>> from_pandas(df, target="y", n_experiences=2)[1].metadata["columns"]
    ('a', 'day')
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if (experience is None) == (n_experiences is None):
        raise ValueError(
            "give exactly one of experience and n_experiences, got "
            f"experience={experience!r} and n_experiences={n_experiences!r}"
        )
    _check_column(df, target, "target")
    _check_column(df, experience, "experience")
    if target is not None and target == experience:
        raise ValueError(f"target and experience must be different columns, got {target!r} twice")
    columns = tuple(c for c in df.columns if c not in (target, experience))
    if not columns:
        raise ValueError(f"df must have a feature column besides target and experience, got {df}")
    X = df[list(columns)].to_numpy()
    y = None if target is None else df[target].to_numpy()
    X, y = _check_xy(X, y)
    test_fraction = _check_fraction(test_fraction, "from_pandas")
    if n_experiences is not None:
        chunks = _split_evenly(len(X), n_experiences)
        extra = {"columns": columns}
        return _contiguous_stream(
            X, y, chunks, extra=extra, test_fraction=test_fraction, seed=seed, name=name
        )
    values, row_groups = _group_rows(df[experience])
    metadata = [{"group": value, "columns": columns} for value in values]
    experiences = _experiences_from_rows(
        X, y, row_groups, metadata, test_fraction=test_fraction, seed=seed
    )
    return Stream(experiences, name=name, seed=seed if test_fraction > 0 else None)


def _read_river(
    dataset: Iterable[Any], take: int | None
) -> tuple[np.ndarray, np.ndarray | None, tuple[Any, ...]]:
    """Read ``(x, y)`` pairs into a feature matrix, the labels and the feature names.

    The columns follow the key order of the first ``x``.
    """
    rows: list[list[Any]] = []
    labels: list[Any] = []
    keys: list[Any] = []
    for row, pair in enumerate(itertools.islice(dataset, take)):
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"dataset must yield (x, y) pairs, got {pair!r} at row {row}")
        x, label = pair
        if not isinstance(x, Mapping):
            raise TypeError(f"dataset must yield (dict, y) pairs, got x of type {type(x).__name__}")
        if row == 0:
            keys = list(x)
        missing = [key for key in keys if key not in x]
        if missing:
            raise ValueError(f"dataset row {row} is missing feature {missing[0]!r}")
        if len(x) != len(keys):
            extra = [key for key in x if key not in set(keys)]
            raise ValueError(f"dataset row {row} has feature {extra[0]!r} absent from row 0")
        rows.append([x[key] for key in keys])
        labels.append(label)
    if not rows:
        raise ValueError("dataset must yield at least one (x, y) pair, got none")
    X = pd.DataFrame(rows, columns=keys).to_numpy()
    unlabelled = [label is None for label in labels]
    if all(unlabelled):
        return X, None, tuple(keys)
    if any(unlabelled):
        raise ValueError(
            f"dataset yields y=None at row {unlabelled.index(True)} but labels elsewhere"
        )
    return X, np.asarray(labels), tuple(keys)


def from_river(
    dataset: Iterable[Any],
    *,
    n_experiences: int | None = None,
    experience_size: int | None = None,
    take: int | None = None,
    test_fraction: float = 0.0,
    seed: Any = 0,
    name: str | None = None,
) -> Stream:
    """Read a river dataset (or any iterable of ``(x: dict, y)`` pairs) into a stream.

    Features become the columns of ``X`` in the key order of the first ``x``; every later ``x``
    must have the same keys. Rows keep their order and are cut into contiguous experiences.

    Parameters
    ----------
    dataset
        A river dataset such as ``river.datasets.Phishing()``, or an iterator such as
        ``river.stream.iter_array(X, y)``. If every ``y`` is None the payload is ``(X, None)``.
    n_experiences
        Number of near-equal contiguous experiences.
    experience_size
        Rows per experience (the last one may be shorter). Give exactly one of the two.
    take
        Read at most this many rows (None reads everything). Required for an endless
        dataset (a river synthetic generator, whose ``n_samples`` is None).
    test_fraction
        Fraction in ``[0, 1)`` of each experience held out at random as its test payload.
    seed
        Seed of the random hold-out. The stream records it only when ``test_fraction > 0``.
    name
        Name of the stream; defaults to the class name of ``dataset``.

    Returns
    -------
    Stream
        Experience metadata ``{"start": start, "stop": stop, "columns": feature_names}``.

    Examples
    --------
    >>> from river import datasets
    >>> stream = from_river(datasets.Phishing(), experience_size=500)
    >>> stream
    Stream(name='Phishing', n_experiences=3, seed=None)
    >>> [len(exp.train[0]) for exp in stream], stream[0].train[0].shape[1]
    ([500, 500, 250], 9)

    A synthetic generator never ends, so ``take`` says how much of it to read:

    >>> from river.datasets import synth
    >>> from_river(synth.SEA(seed=1), n_experiences=5, take=1000)[4].metadata["stop"]
    1000
    """
    if (n_experiences is None) == (experience_size is None):
        raise ValueError(
            "give exactly one of n_experiences and experience_size, got "
            f"n_experiences={n_experiences!r} and experience_size={experience_size!r}"
        )
    if take is not None:
        check_scalar(take, "take", numbers.Integral, min_val=1)
    check_finite_stream(dataset, take)
    if experience_size is not None:
        check_scalar(experience_size, "experience_size", numbers.Integral, min_val=1)
    else:
        check_scalar(n_experiences, "n_experiences", numbers.Integral, min_val=1)
    test_fraction = _check_fraction(test_fraction, "from_river")
    if name is None:
        name = type(dataset).__name__
    X, y, columns = _read_river(dataset, take)
    if experience_size is not None:
        starts = range(experience_size, len(X), experience_size)
        chunks = np.split(np.arange(len(X)), starts)
    else:
        chunks = _split_evenly(len(X), n_experiences)
    extra = {"columns": columns}
    return _contiguous_stream(
        X, y, chunks, extra=extra, test_fraction=test_fraction, seed=seed, name=name
    )
