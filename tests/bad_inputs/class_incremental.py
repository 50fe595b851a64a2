"""Bad-input cases: the class-incremental classifiers, their streams and StreamingClassifier.

Every estimator is tiny (a few hidden units, one epoch, 40 samples of 6 features), so that
the whole module runs in seconds. Subjects are fresh per call: deep copies of estimators
fitted once and cached.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from continual.accountant import BudgetExceededError
from strategies import (
    DERClassifier,
    FinetuneClassifier,
    ICaRLClassifier,
    MEMOClassifier,
    ReplayClassifier,
    StreamingClassifier,
)
from streams import class_incremental, split_digits
from tests.bad_inputs import Case

NAN, INF = float("nan"), float("inf")
#: Keyword arguments that keep every classifier tiny and reproducible.
SMALL = {"epochs": 1, "batch_size": 16, "hidden_sizes": (8,), "random_state": 0}
GROWING_SMALL = {**SMALL, "hidden_sizes": (8, 4)}
STREAMING_SMALL = {"budget": "64 KB", "hidden_sizes": (4,), "batch_size": 4, "random_state": 0}
CLASSIFIERS = {
    "FinetuneClassifier": (FinetuneClassifier, SMALL),
    "ReplayClassifier": (ReplayClassifier, SMALL),
    "MEMOClassifier": (MEMOClassifier, GROWING_SMALL),
    "DERClassifier": (DERClassifier, GROWING_SMALL),
    "ICaRLClassifier": (ICaRLClassifier, SMALL),
}


@functools.cache
def _data() -> tuple[np.ndarray, np.ndarray]:
    """40 samples of 6 float32 features, 4 classes of 10 samples each."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    return X, y


def _X() -> np.ndarray:
    return _data()[0].copy()


def _y() -> np.ndarray:
    return _data()[1].copy()


def _with(array: np.ndarray, index: tuple[int, ...], value: Any) -> np.ndarray:
    array = array.astype(np.float64) if array.dtype.kind in "iu" else array
    array[index] = value
    return array


def _make(name: str, **params: Any) -> Any:
    cls, small = CLASSIFIERS[name]
    return cls(**{**small, **params})


@functools.cache
def _fitted_cached(name: str) -> Any:
    return _make(name).fit(*_data())


def _fitted(name: str) -> Callable[[], Any]:
    """A subject factory: a fresh copy of ``name`` fitted on the 4 classes."""
    return lambda: copy.deepcopy(_fitted_cached(name))


@functools.cache
def _first_task_cached() -> DERClassifier:
    """A DER fitted on classes 0 and 1 with a budget that holds exactly its first model and
    optimizer state: the second task's backbone cannot fit."""
    X, y = _data()
    first = y < 2
    try:  # the error's ledger holds what the first task plans: model and optimizer state
        DERClassifier(budget=1, **GROWING_SMALL).partial_fit(X[first], y[first], classes=range(4))
    except BudgetExceededError as error:
        budget = error.ledger.total
    return DERClassifier(budget=budget, **GROWING_SMALL).partial_fit(
        X[first], y[first], classes=range(4)
    )


@functools.cache
def _streaming_cached() -> StreamingClassifier:
    clf = StreamingClassifier(**STREAMING_SMALL)
    rng = np.random.default_rng(0)
    for _ in range(12):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        clf.learn_one(x, x["a"] > 0)
    return clf


def _streaming() -> StreamingClassifier:
    return copy.deepcopy(_streaming_cached())


def _fit(estimator: Any, X: Any = None, y: Any = None) -> Any:
    return estimator.fit(_X() if X is None else X, _y() if y is None else y)


def _weights(estimator: Any) -> list[torch.Tensor]:
    model = estimator.learner_.model if hasattr(estimator, "learner_") else estimator.model_
    return [tensor.detach().clone() for tensor in model.state_dict().values()]


def _same_model_as(reference: Callable[[], Any]) -> Callable[[Any], None]:
    """A ``valid`` check: the result's weights equal those ``reference()`` learns."""

    def check(result: Any) -> None:
        expected, got = _weights(reference()), _weights(result)
        assert len(expected) == len(got), f"{len(got)} tensors, expected {len(expected)}"
        for a, b in zip(expected, got):
            assert a.shape == b.shape and torch.equal(a, b), "weights differ from Python numbers"

    return check


def _param_case(name: str, params: dict[str, Any], mentions: tuple[str, ...]) -> Case:
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return Case(f"{name}({shown})", lambda _: _fit(_make(name, **params)), mentions)


# ----------------------------------------------------------------- parameters
_PARAMS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("FinetuneClassifier", {"input_scale": NAN}, ("input_scale", "nan")),
    ("FinetuneClassifier", {"input_scale": INF}, ("input_scale", "inf")),
    ("FinetuneClassifier", {"input_scale": 0.0}, ("input_scale", "0.0")),
    ("ReplayClassifier", {"hidden_sizes": (0,)}, ("hidden_sizes", "(0,)")),
    ("FinetuneClassifier", {"hidden_sizes": (-3,)}, ("hidden_sizes", "-3")),
    ("FinetuneClassifier", {"hidden_sizes": (8.5,)}, ("hidden_sizes", "8.5")),
    ("FinetuneClassifier", {"hidden_sizes": 8}, ("hidden_sizes", "8")),
    ("FinetuneClassifier", {"lr": 0.0}, ("lr", "0.0")),
    ("FinetuneClassifier", {"lr": -0.1}, ("lr", "-0.1")),
    ("FinetuneClassifier", {"lr": INF}, ("lr", "inf")),
    ("FinetuneClassifier", {"lr": NAN}, ("lr", "nan")),
    ("FinetuneClassifier", {"lr": "0.01"}, ("lr", "0.01")),
    ("FinetuneClassifier", {"epochs": 0}, ("epochs", "0")),
    ("FinetuneClassifier", {"epochs": -2}, ("epochs", "-2")),
    ("FinetuneClassifier", {"epochs": 1.5}, ("epochs", "1.5")),
    ("FinetuneClassifier", {"batch_size": 0}, ("batch_size", "0")),
    ("FinetuneClassifier", {"batch_size": 2.5}, ("batch_size", "2.5")),
    ("FinetuneClassifier", {"optimizer": "adamm"}, ("optimizer", "adamm")),
    ("FinetuneClassifier", {"backbone": "resnet"}, ("backbone", "resnet")),
    ("FinetuneClassifier", {"precision": "64"}, ("precision", "64")),
    ("FinetuneClassifier", {"budget": "lots"}, ("budget", "lots")),
    ("ReplayClassifier", {"policy": "fifo"}, ("policy", "fifo")),
    ("ReplayClassifier", {"store_device": "floppy"}, ("store_device", "floppy")),
    ("ICaRLClassifier", {"temperature": 0.0}, ("temperature", "0.0")),
    ("ICaRLClassifier", {"temperature": -1.0}, ("temperature", "-1.0")),
    ("ICaRLClassifier", {"temperature": NAN}, ("temperature", "nan")),
    ("ICaRLClassifier", {"distillation_weight": -1.0}, ("distillation_weight", "-1.0")),
    ("MEMOClassifier", {"aux_weight": -1.0}, ("aux_weight", "-1.0")),
    ("DERClassifier", {"aux_weight": NAN}, ("aux_weight", "nan")),
    ("MEMOClassifier", {"hidden_sizes": ()}, ("hidden_sizes", "()")),
    ("MEMOClassifier", {"train_base": "yes"}, ("train_base", "yes")),
    ("DERClassifier", {"weight_alignment": 2}, ("weight_alignment", "2")),
]


def _conv8_width_zero(_: Any) -> Any:
    X = np.zeros((8, 64), dtype=np.uint8)
    return FinetuneClassifier(backbone="conv8", width=0, epochs=1).fit(X, np.arange(8) % 2)


def _too_small_budget(_: Any) -> Any:
    return _fit(_make("FinetuneClassifier", budget=100))


# --------------------------------------------------------------------- inputs
def _partial(X: Any = None, y: Any = None, **kw: Any) -> Callable[[Any], Any]:
    return lambda est: est.partial_fit(_X() if X is None else X, _y() if y is None else y, **kw)


_INPUTS: list[Case] = [
    Case(
        "FinetuneClassifier.fit: NaN in X",
        lambda _: _fit(_make("FinetuneClassifier"), X=_with(_X(), (3, 2), NAN)),
        ("X", "NaN"),
    ),
    Case(
        "FinetuneClassifier.fit: inf in X",
        lambda _: _fit(_make("FinetuneClassifier"), X=_with(_X(), (3, 2), INF)),
        ("X", "infinity"),
    ),
    Case(
        "FinetuneClassifier.fit: NaN in y",
        lambda _: _fit(_make("FinetuneClassifier"), y=_with(_y(), (5,), NAN)),
        ("y", "NaN"),
    ),
    Case(
        "ReplayClassifier.partial_fit: NaN in y",
        _partial(y=_with(_y(), (5,), NAN)),
        ("y", "NaN"),
        subject=_fitted("ReplayClassifier"),
    ),
    Case(
        "ReplayClassifier.partial_fit: NaN in X",
        _partial(X=_with(_X(), (0, 0), NAN)),
        ("X", "NaN"),
        subject=_fitted("ReplayClassifier"),
    ),
    Case(
        "FinetuneClassifier.fit: y is None",
        lambda _: _make("FinetuneClassifier").fit(_X()),
        ("y", "None"),
    ),
    Case(
        "FinetuneClassifier.fit: 40 rows of X, 39 labels",
        lambda _: _fit(_make("FinetuneClassifier"), y=_y()[:-1]),
        ("X", "y", "40", "39"),
    ),
    Case(
        "FinetuneClassifier.fit: empty X",
        lambda _: _make("FinetuneClassifier").fit(np.zeros((0, 6)), np.zeros(0)),
        ("X", "0 samples"),
    ),
    Case(
        "FinetuneClassifier.fit: 1-D X",
        lambda _: _make("FinetuneClassifier").fit(np.zeros(6), np.zeros(6)),
        ("2D array",),
    ),
    Case(
        "FinetuneClassifier.fit: strings in X",
        lambda _: _fit(_make("FinetuneClassifier"), X=np.full((40, 6), "hot")),
        ("X", "strings"),
    ),
    Case(
        "FinetuneClassifier.partial_fit: 5 features after 6",
        _partial(X=_X()[:, :5]),
        ("5 features", "6 features"),
        subject=_fitted("FinetuneClassifier"),
    ),
    Case(
        "FinetuneClassifier.partial_fit: a label outside the classes",
        _partial(y=_y() + 1),
        ("y", "[4]"),
        subject=_fitted("FinetuneClassifier"),
    ),
    Case(
        "FinetuneClassifier.partial_fit: other classes on the second call",
        _partial(classes=range(5)),
        ("classes", "[0, 1, 2, 3, 4]"),
        subject=_fitted("FinetuneClassifier"),
    ),
    Case(
        "FinetuneClassifier.partial_fit: no classes on the first call",
        lambda _: _make("FinetuneClassifier").partial_fit(_X(), _y()),
        ("classes", "None"),
    ),
    Case(
        "FinetuneClassifier.predict before fit",
        lambda _: _make("FinetuneClassifier").predict(_X()),
        ("not fitted",),
    ),
    Case(
        "FinetuneClassifier.predict: 7 features after 6",
        lambda est: est.predict(np.zeros((2, 7))),
        ("7 features", "6 features"),
        subject=_fitted("FinetuneClassifier"),
    ),
    Case(
        "ICaRLClassifier.predict: NaN in X",
        lambda est: est.predict(_with(_X(), (1, 1), NAN)),
        ("X", "NaN"),
        subject=_fitted("ICaRLClassifier"),
    ),
    Case(
        "FinetuneClassifier.score: 40 rows of X, 30 labels",
        lambda est: est.score(_X(), _y()[:30]),
        ("40", "30"),
        subject=_fitted("FinetuneClassifier"),
    ),
    Case(
        "FinetuneClassifier(budget=100): the model cannot fit",
        _too_small_budget,
        ("budget", "100"),
    ),
    Case(
        "DERClassifier.partial_fit: the second backbone passes the budget",
        lambda est: est.partial_fit(_X()[_y() >= 2], _y()[_y() >= 2]),
        ("budget",),
        subject=lambda: copy.deepcopy(_first_task_cached()),
    ),
    Case("FinetuneClassifier(backbone='conv8', width=0)", _conv8_width_zero, ("width", "0")),
]


def _string_labels(_: Any) -> Any:
    labels = np.where(_y() % 2 == 0, "cat", "dog")
    return _fit(_make("FinetuneClassifier", epochs=5), y=labels)


def _check_string_labels(result: Any) -> None:
    assert result.classes_.tolist() == ["cat", "dog"], result.classes_
    predicted = result.predict(_X())
    assert set(predicted.tolist()) <= {"cat", "dog"}, set(predicted.tolist())


def _numpy_scalars(name: str) -> Case:
    cls, small = CLASSIFIERS[name]
    numpy_params = {
        **small,
        "epochs": np.int64(1),
        "batch_size": np.int64(16),
        "lr": np.float32(0.01),
        "input_scale": np.float64(0.5),
        "hidden_sizes": tuple(np.int64(size) for size in small["hidden_sizes"]),
        "budget": np.int64(200_000),
        "random_state": np.int64(0),
    }
    python_params = {
        **small,
        "lr": float(np.float32(0.01)),
        "input_scale": 0.5,
        "budget": 200_000,
    }
    return Case(
        f"{name}: numpy scalars (epochs, batch_size, lr, input_scale, hidden_sizes, budget)",
        lambda _: _fit(cls(**numpy_params)),
        valid=_same_model_as(lambda: _fit(cls(**python_params))),
    )


_VALID: list[Case] = [
    Case("FinetuneClassifier.fit: string labels", _string_labels, valid=_check_string_labels),
    _numpy_scalars("FinetuneClassifier"),
    _numpy_scalars("DERClassifier"),
    Case(
        "ICaRLClassifier(temperature=np.float32(2.0))",
        lambda _: _fit(_make("ICaRLClassifier", temperature=np.float32(2.0))),
        valid=_same_model_as(lambda: _fit(_make("ICaRLClassifier", temperature=2.0))),
    ),
]


# --------------------------------------------------------------------- streams
def _stream(**kw: Any) -> Callable[[Any], Any]:
    return lambda _: class_incremental(_X(), _y(), **kw)


def _check_two_experiences(stream: Any) -> None:
    assert len(stream) == 2, len(stream)
    assert sorted(c for group in stream.classes for c in group) == [0, 1, 2, 3], stream.classes


_STREAMS: list[Case] = [
    Case("class_incremental(n_experiences=0)", _stream(n_experiences=0), ("n_experiences", "0")),
    Case("class_incremental(n_experiences=-1)", _stream(n_experiences=-1), ("n_experiences", "-1")),
    Case(
        "class_incremental(n_experiences=3), 4 classes",
        _stream(n_experiences=3),
        ("n_experiences", "3"),
    ),
    Case(
        "class_incremental(n_experiences=2.0)",
        _stream(n_experiences=2.0),
        ("n_experiences", "float"),
    ),
    Case(
        "class_incremental(n_experiences=2, classes_per_experience=2)",
        _stream(n_experiences=2, classes_per_experience=2),
        ("n_experiences", "classes_per_experience"),
    ),
    Case(
        "class_incremental(class_order=[0, 1, 2]): a class missing",
        _stream(n_experiences=2, class_order=[0, 1, 2]),
        ("class_order", "[0, 1, 2]"),
    ),
    Case(
        "class_incremental(class_order=[0, 0, 1, 2]): a class repeated",
        _stream(n_experiences=2, class_order=[0, 0, 1, 2]),
        ("class_order", "[0, 0, 1, 2]"),
    ),
    Case(
        "class_incremental(class_order=[0, 1, 2, 9]): an unknown class",
        _stream(n_experiences=2, class_order=[0, 1, 2, 9]),
        ("class_order", "9"),
    ),
    Case(
        "class_incremental: NaN in y",
        lambda _: class_incremental(_X(), _with(_y(), (3,), NAN), n_experiences=1),
        ("y", "nan"),
    ),
    Case(
        "class_incremental: 40 rows, 39 labels",
        lambda _: class_incremental(_X(), _y()[:-1], n_experiences=2),
        ("40", "39"),
    ),
    Case(
        "class_incremental: 2-D y",
        lambda _: class_incremental(_X(), _y().reshape(40, 1), n_experiences=2),
        ("y", "1-D"),
    ),
    Case(
        "class_incremental: y is None with an array",
        lambda _: class_incremental(_X(), n_experiences=2),
        ("y", "must be given"),
    ),
    Case(
        "class_incremental: a test label the training data lack",
        _stream(n_experiences=2, test=(_X()[:2], np.array([0, 7]))),
        ("test", "7"),
    ),
    Case(
        "class_incremental: an empty test set",
        _stream(n_experiences=2, test=(np.zeros((0, 6)), np.zeros(0, dtype=int))),
        ("test", "empty"),
    ),
    Case(
        "class_incremental: NaN in the test labels",
        _stream(n_experiences=2, test=(_X()[:2], np.array([0.0, NAN]))),
        ("test", "nan"),
    ),
    Case(
        "class_incremental(n_experiences=np.int64(2))",
        _stream(n_experiences=np.int64(2), seed=0),
        valid=_check_two_experiences,
    ),
    Case("split_digits(3)", lambda _: split_digits(3), ("n_experiences", "3")),
    Case("split_digits(0)", lambda _: split_digits(0), ("n_experiences", "0")),
    Case(
        "split_digits(test_size=1.5)",
        lambda _: split_digits(2, test_size=1.5),
        ("test_size", "1.5"),
    ),
    Case(
        "split_digits(flatten='yes')", lambda _: split_digits(2, flatten="yes"), ("flatten", "str")
    ),
    Case(
        "FinetuneClassifier.evaluate: a stream without test data",
        lambda _: _make("FinetuneClassifier").evaluate(
            class_incremental(_X(), _y(), n_experiences=2)
        ),
        ("test",),
    ),
]


# ------------------------------------------------------------------- streaming
def _streaming_param_case(params: dict[str, Any], mentions: tuple[str, ...]) -> Case:
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    clf = {**STREAMING_SMALL, **params}
    return Case(
        f"StreamingClassifier({shown})",
        lambda _: StreamingClassifier(**clf).learn_one({"a": 1.0}, True),
        mentions,
    )


_STREAMING_PARAMS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"batch_size": 0}, ("batch_size", "0")),
    ({"batch_size": 1.5}, ("batch_size", "1.5")),
    ({"lr": NAN}, ("lr", "nan")),
    ({"lr": 0.0}, ("lr", "0.0")),
    ({"lr": INF}, ("lr", "inf")),
    ({"drift_lr_boost": INF}, ("drift_lr_boost", "inf")),
    ({"drift_lr_boost": NAN}, ("drift_lr_boost", "nan")),
    ({"drift_lr_boost": 0.0}, ("drift_lr_boost", "0.0")),
    ({"drift_boost_steps": -1}, ("drift_boost_steps", "-1")),
    ({"policy": "fifo"}, ("policy", "fifo")),
    ({"hidden_sizes": (0,)}, ("hidden_sizes", "(0,)")),
    ({"replay_batch_size": -1}, ("replay_batch_size", "-1")),
    ({"refill_every": 0}, ("refill_every", "0")),
    ({"drift_detector": "adwin"}, ("drift_detector", "adwin")),
    ({"optimizer": "adamm"}, ("optimizer", "adamm")),
    ({"budget": 100}, ("budget", "100")),
]


def _learn_one(x: Any, y: Any) -> Callable[[Any], Any]:
    return lambda clf: clf.learn_one(x, y)


def _unfitted_streaming() -> StreamingClassifier:
    return StreamingClassifier(**STREAMING_SMALL)


def _streaming_numpy(_: Any) -> Any:
    clf = StreamingClassifier(
        budget=np.int64(64_000),
        hidden_sizes=(np.int64(4),),
        batch_size=np.int64(4),
        lr=np.float32(0.01),
        drift_lr_boost=np.float64(3.0),
        random_state=np.int64(0),
    )
    return _learn_streaming(clf)


def _learn_streaming(clf: StreamingClassifier) -> StreamingClassifier:
    rng = np.random.default_rng(1)
    for _ in range(8):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        clf.learn_one(x, x["a"] > 0)
    return clf


_STREAMING_INPUTS: list[Case] = [
    Case(
        "StreamingClassifier.learn_one: NaN feature",
        _learn_one({"a": NAN}, True),
        ("x", "nan"),
        subject=_unfitted_streaming,
    ),
    Case(
        "StreamingClassifier.learn_one: inf feature",
        _learn_one({"a": INF}, True),
        ("x", "inf"),
        subject=_unfitted_streaming,
    ),
    Case(
        "StreamingClassifier.learn_one: None label",
        _learn_one({"a": 1.0}, None),
        ("y", "None"),
        subject=_unfitted_streaming,
    ),
    Case(
        "StreamingClassifier.learn_one: NaN label",
        _learn_one({"a": 1.0}, NAN),
        ("y", "nan"),
        subject=_unfitted_streaming,
    ),
    Case(
        "StreamingClassifier.learn_one: a string value",
        _learn_one({"a": "hot"}, 1),
        ("x", "hot"),
        subject=_unfitted_streaming,
    ),
    Case(
        "StreamingClassifier.learn_one: x is a list",
        _learn_one([1.0], 1),
        ("x", "list"),
        subject=_unfitted_streaming,
    ),
    Case(
        "StreamingClassifier.learn_one (fitted): NaN feature",
        _learn_one({"a": NAN, "b": 0.0}, True),
        ("x", "nan"),
        subject=_streaming,
    ),
    Case(
        "StreamingClassifier.learn_one (fitted): None label",
        _learn_one({"a": 1.0, "b": 0.0}, None),
        ("y", "None"),
        subject=_streaming,
    ),
    Case(
        "StreamingClassifier.learn_many: 3 rows, 2 labels",
        lambda clf: clf.learn_many(np.zeros((3, 2)), [True, False]),
        ("3", "2"),
        subject=_streaming,
    ),
    Case(
        "StreamingClassifier.partial_fit: NaN in X",
        lambda clf: clf.partial_fit(np.array([[0.0, NAN]]), [True]),
        ("X", "nan"),
        subject=_streaming,
    ),
    Case(
        "StreamingClassifier.predict_one: NaN feature",
        lambda clf: clf.predict_one({"a": NAN, "b": 0.0}),
        ("x", "nan"),
        subject=_streaming,
    ),
    Case(
        "StreamingClassifier.predict_one before learning: NaN feature",
        lambda _: StreamingClassifier().predict_one({"a": NAN}),
        ("x", "nan"),
    ),
    Case(
        "StreamingClassifier: numpy scalars (budget, hidden_sizes, batch_size, lr)",
        _streaming_numpy,
        valid=_same_model_as(lambda: _learn_streaming(StreamingClassifier(**STREAMING_SMALL))),
    ),
]

CASES: list[Case] = [
    *(_param_case(name, params, mentions) for name, params, mentions in _PARAMS),
    *_INPUTS,
    *_VALID,
    *_STREAMS,
    *(_streaming_param_case(params, mentions) for params, mentions in _STREAMING_PARAMS),
    *_STREAMING_INPUTS,
]
