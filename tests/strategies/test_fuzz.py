"""Fuzzing the class-incremental classifiers, StreamingClassifier and the class-incremental
streams with generated bad inputs (hypothesis).

The property (:func:`tests.bad_inputs.fails_cleanly`): a call either raises a
``ValueError``, ``TypeError`` or ``BudgetExceededError`` with a message and leaves the
estimator exactly as it was, or returns a valid result, checked here against what the input
implies (predictions among the declared classes, finite probabilities, experiences that
partition the classes).
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from continual.estimator import BudgetedEstimator
from strategies import (
    DERClassifier,
    FinetuneClassifier,
    ICaRLClassifier,
    MEMOClassifier,
    ReplayClassifier,
    StreamingClassifier,
)
from streams import class_incremental
from tests.bad_inputs import _difference, fails_cleanly, snapshot

FUZZ = settings(max_examples=40)  # the rest from the 'ci' profile (conftest.py)
SMALL = {"epochs": 1, "batch_size": 8, "hidden_sizes": (4, 4), "random_state": 0}
#: For the calls that take milliseconds (no training): more examples.
CHEAP = settings(FUZZ, max_examples=80)
CLASSIFIERS = [FinetuneClassifier, ReplayClassifier, MEMOClassifier, DERClassifier, ICaRLClassifier]
N_FEATURES = 5
CLASSES = np.arange(3)

# A value of a feature: an ordinary number, or one that is NaN, infinite or huge.
numbers = st.floats(-100, 100, width=32)
bad_values = st.sampled_from([math.nan, math.inf, -math.inf, 1e30, -0.0])
values = st.one_of(numbers, bad_values)
# Labels: declared classes, or undeclared, negative, fractional, NaN.
good_labels = st.sampled_from([0, 1, 2])
bad_labels = st.sampled_from([3, -1, 0.5, math.nan, math.inf])
labels = st.one_of(good_labels, bad_labels)


@st.composite
def experiences(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: a valid experience of 1 to 6 rows, then perhaps one thing made wrong (a
    value, a label, the number of features or of labels, no rows at all)."""
    n_rows = draw(st.integers(1, 6))
    X = draw(hnp.arrays(np.float64, (n_rows, N_FEATURES), elements=numbers))
    y = np.array(draw(st.lists(good_labels, min_size=n_rows, max_size=n_rows)))
    flaw = draw(st.sampled_from(["none", "none", "value", "label", "features", "labels", "empty"]))
    if flaw == "value":
        X[draw(st.integers(0, n_rows - 1)), draw(st.integers(0, N_FEATURES - 1))] = draw(bad_values)
    elif flaw == "label":
        y = y.astype(float)
        y[draw(st.integers(0, n_rows - 1))] = draw(bad_labels)
    elif flaw == "features":
        X = X[:, : draw(st.sampled_from([1, N_FEATURES - 1]))]
    elif flaw == "labels":
        y = y[:-1]
    elif flaw == "empty":
        X, y = X[:0], y[:0]
    return X, y


def _outcome(result: Any) -> str:
    """What a call did, for hypothesis' statistics (``--hypothesis-show-statistics``)."""
    return type(result).__name__ if isinstance(result, Exception) else "accepted"


@functools.cache
def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(24, N_FEATURES)), np.repeat(CLASSES, 8)


@functools.cache
def _fitted_cached(cls: type) -> BudgetedEstimator:
    return cls(**SMALL).fit(*_data())


def _fitted(cls: type) -> BudgetedEstimator:
    return copy.deepcopy(_fitted_cached(cls))


def _check_predictions(estimator: Any, X: np.ndarray) -> None:
    """A fitted classifier predicts a declared class, with finite probabilities, per row."""
    proba = estimator.predict_proba(X)
    assert proba.shape == (len(X), len(CLASSES))
    assert np.isfinite(proba).all()
    assert set(estimator.predict(X).tolist()) <= set(CLASSES.tolist())


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda cls: cls.__name__)
@FUZZ
@given(data=experiences())
def test_partial_fit_fails_cleanly_or_learns(cls: type, data: tuple) -> None:
    X, y = data
    estimator = _fitted(cls)
    result = fails_cleanly(estimator, lambda est: est.partial_fit(X, y))
    event(_outcome(result))
    if result is estimator:  # accepted: only a valid experience may be
        assert np.isfinite(X).all() and len(X) == len(y) > 0 and X.shape[1] == N_FEATURES
        assert set(np.asarray(y).tolist()) <= set(CLASSES.tolist())
        _check_predictions(estimator, _data()[0])


@FUZZ
@given(data=experiences())
def test_fit_fails_cleanly_or_learns(data: tuple) -> None:
    X, y = data
    estimator = FinetuneClassifier(**SMALL)
    result = fails_cleanly(estimator, lambda est: est.fit(X, y))
    event(_outcome(result))
    if result is estimator:
        assert np.isfinite(X).all() and len(X) == len(y) > 0
        assert estimator.classes_.tolist() == np.unique(y).tolist()
        assert np.isfinite(estimator.predict_proba(X)).all()


# Hyperparameters: valid values (numpy scalars included) and bad ones.
hyperparameters = st.fixed_dictionaries(
    {},
    optional={
        "lr": st.sampled_from([0.01, np.float32(0.01), 0.0, -1.0, math.nan, math.inf, "0.1"]),
        "epochs": st.sampled_from([1, np.int64(1), 0, -1, 1.5, None]),
        "batch_size": st.sampled_from([8, np.int32(8), 0, 2.5]),
        "input_scale": st.sampled_from([1.0, np.float64(0.5), 0.0, math.nan, -math.inf]),
        "hidden_sizes": st.sampled_from([(4,), (np.int64(4),), (), (0,), (-2,), (2.5,), 4]),
        "optimizer": st.sampled_from(["sgd", "adam", "nope", 3]),
        "precision": st.sampled_from(["32", "bf16-mixed", "8"]),
        "budget": st.sampled_from([None, np.int64(100_000), 10, -5, "huge"]),
    },
)


@FUZZ
@given(params=hyperparameters, cls=st.sampled_from(CLASSIFIERS))
def test_hyperparameters_fail_cleanly_or_build(params: dict, cls: type) -> None:
    estimator = cls(**{**SMALL, **params})
    result = fails_cleanly(estimator, lambda est: est.fit(*_data()))
    event(_outcome(result))
    if result is estimator:
        _check_predictions(estimator, _data()[0])


@CHEAP
@given(data=experiences())
def test_predict_fails_cleanly_or_predicts(data: tuple) -> None:
    X, _ = data
    estimator = _fitted(ICaRLClassifier)
    before = snapshot(estimator)
    result = fails_cleanly(estimator, lambda est: est.predict(X))
    event(_outcome(result))
    if isinstance(result, np.ndarray):
        assert np.isfinite(X).all() and X.shape[1] == N_FEATURES and len(X) > 0
        assert result.shape == (len(X),) and set(result.tolist()) <= set(CLASSES.tolist())
    assert not _difference(before, snapshot(estimator)), "predict changed the estimator"


# ------------------------------------------------------------------- streaming
@functools.cache
def _streaming_cached() -> StreamingClassifier:
    clf = StreamingClassifier(budget="32 KB", hidden_sizes=(4,), batch_size=4, random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        clf.learn_one(x, int(x["a"] > 0))
    return clf


feature_values = st.one_of(
    values, st.sampled_from([None, "hot", True, [1.0], np.float32(2.0), np.int64(3)])
)
samples = st.dictionaries(st.sampled_from(["a", "b", "c", 0]), feature_values, max_size=3)
river_labels = st.one_of(labels, st.sampled_from([None, "storm", True, [0], np.int64(1)]))


@CHEAP
@given(x=st.one_of(samples, st.sampled_from([None, [1.0], "a"])), y=river_labels)
def test_learn_one_fails_cleanly_or_learns(x: Any, y: Any) -> None:
    clf = copy.deepcopy(_streaming_cached())
    seen = clf.n_samples_seen_
    result = fails_cleanly(clf, lambda est: est.learn_one(x, y))
    event(_outcome(result))
    if not isinstance(result, Exception):
        assert all(isinstance(v, (int, float, np.number)) and math.isfinite(v) for v in x.values())
        assert clf.n_samples_seen_ == seen + 1
        assert all(math.isfinite(p) for p in clf.predict_proba_one(x).values())


@FUZZ
@given(data=experiences())
def test_streaming_partial_fit_fails_cleanly_or_learns(data: tuple) -> None:
    X, y = data
    clf = copy.deepcopy(_streaming_cached())
    result = fails_cleanly(clf, lambda est: est.partial_fit(X, y))
    event(_outcome(result))
    if result is clf:
        assert np.isfinite(X).all() and len(X) == len(y) > 0
        assert np.isfinite(clf.predict_proba_many(X).to_numpy()).all()


@CHEAP
@given(x=st.one_of(samples, st.sampled_from([None, [1.0]])))
def test_predict_one_fails_cleanly_or_predicts(x: Any) -> None:
    clf = copy.deepcopy(_streaming_cached())
    result = fails_cleanly(clf, lambda est: est.predict_one(x))
    event(_outcome(result))
    if not isinstance(result, Exception):
        assert result in clf.classes_


# --------------------------------------------------------------------- streams
@st.composite
def class_orders(draw: Any, y: list) -> Any:
    """None, a permutation of the labels of ``y``, or any list of labels."""
    classes = sorted(set(y), key=repr)
    return draw(st.one_of(st.none(), st.permutations(classes), st.lists(labels, max_size=4)))


@CHEAP
@given(
    y=st.one_of(st.lists(good_labels, max_size=8), st.lists(labels, max_size=8)),
    n_experiences=st.sampled_from([1, 2, 3, 0, -1, 2.0, np.int64(3), None]),
    data=st.data(),
)
def test_class_incremental_fails_cleanly_or_partitions(
    y: list, n_experiences: Any, data: Any
) -> None:
    class_order = data.draw(class_orders(y))
    X = np.zeros((len(y), 2))
    result = fails_cleanly(
        None,
        lambda _: class_incremental(X, y, n_experiences=n_experiences, class_order=class_order),
    )
    event(_outcome(result))
    if not isinstance(result, Exception):
        groups = [set(group) for group in result.classes]
        assert len(result) == n_experiences and all(len(g) == len(groups[0]) for g in groups)
        assert set().union(*groups) == set(np.unique(y).tolist())
        assert sum(len(exp.train[1]) for exp in result) == len(y)
