"""Bad-input cases: the shared core (budgets, the accountant, the learner, the evaluation
protocol, checkpoints) and the stream adapters every domain uses."""

from __future__ import annotations

import copy
import math
from functools import cache
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import numpy as np
import pandas as pd
import torch
from river import linear_model, tree
from river.datasets import synth

from continual import (
    ExemplarStore,
    Learner,
    MemoryAccountant,
    ScoreMatrix,
    auc_over_budgets,
    evaluate_stream,
    load,
    parse_budget,
    parse_budgets,
    save,
)
from continual.prequential import prequential
from continual.river import Budgeted
from strategies import FinetuneClassifier
from streams import Experience, Stream, from_arrays, from_pandas, from_river
from tests.bad_inputs import Case


@cache
def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def _small(**params: Any) -> FinetuneClassifier:
    return FinetuneClassifier(hidden_sizes=(8,), epochs=1, random_state=0, **params)


@cache
def _fitted_once() -> FinetuneClassifier:
    return _small().fit(*_data())


def _fitted() -> FinetuneClassifier:
    return copy.deepcopy(_fitted_once())


def _fit(**params: Any) -> Any:
    return lambda _: _small(**params).fit(*_data())


def _budget_is(expected: int) -> Any:
    def check(estimator: FinetuneClassifier) -> None:
        assert estimator.accountant_.budget == expected, estimator.accountant_.budget

    return check


def _stream(test: bool) -> Stream:
    X, y = _data()
    halves = [(X[:20], y[:20]), (X[20:], y[20:])]
    return Stream(Experience(i, part, part if test else None) for i, part in enumerate(halves))


def _learner(_: Any) -> Learner:
    torch.manual_seed(0)
    return Learner(torch.nn.Linear(4, 2))


def _saved_path() -> Path:
    folder = Path(mkdtemp())
    return save(_fitted(), folder / "model.safetensors")


def _corrupted(content: bytes) -> Any:
    def act(_: Any) -> Any:
        path = Path(mkdtemp()) / "model.safetensors"
        path.write_bytes(content)
        return load(path)

    return act


def _truncated(_: Any) -> Any:
    path = _saved_path()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return load(path)


def _endless() -> Any:
    while True:
        yield {"x": 1.0}, 0


def _nan_labels() -> tuple[np.ndarray, np.ndarray]:
    X, y = _data()
    labels = y.astype(float)
    labels[3] = np.nan
    return X, labels


CASES: list[Case] = [
    # budgets
    Case("parse_budget('lots')", lambda _: parse_budget("lots"), ("budget", "lots")),
    Case("parse_budget(-5)", lambda _: parse_budget(-5), ("budget", "-5")),
    Case("parse_budget(nan)", lambda _: parse_budget(math.nan), ("budget", "nan")),
    Case("parse_budget(inf)", lambda _: parse_budget(math.inf), ("budget", "inf")),
    Case("parse_budget(True)", lambda _: parse_budget(True), ("budget", "True")),
    Case("parse_budget('5 XB')", lambda _: parse_budget("5 XB"), ("budget", "5 XB")),
    Case("parse_budget(1.5)", lambda _: parse_budget(1.5), ("budget", "1.5")),
    Case("parse_budgets({'gpu0': '1 MB'})", lambda _: parse_budgets({"gpu0": "1 MB"}), ("gpu0",)),
    Case("parse_budgets({})", lambda _: parse_budgets({}), ("budget",)),
    Case(
        "parse_budget(np.int64(200000))",
        lambda _: parse_budget(np.int64(200_000)),
        valid=lambda result: _equal(result, 200_000),
    ),
    Case(
        "estimator budget=np.int64(200000)",
        _fit(budget=np.int64(200_000)),
        valid=_budget_is(200_000),
    ),
    Case(
        "estimator budget=np.float64(200000.0)",
        _fit(budget=np.float64(200_000.0)),
        valid=_budget_is(200_000),
    ),
    Case("MemoryAccountant(budget='big')", lambda _: MemoryAccountant("big"), ("budget", "big")),
    # the shared estimator parameters
    Case("estimator verbose=-1", _fit(verbose=-1), ("verbose", "-1")),
    Case("estimator rollback='tape'", _fit(rollback="tape"), ("rollback", "tape")),
    Case(
        "estimator random_state='seven'",
        lambda _: FinetuneClassifier(random_state="seven").fit(*_data()),
        ("random_state", "seven"),
    ),
    Case("estimator device='tpu'", _fit(device="tpu"), ("device", "tpu")),
    Case("estimator budget='1 B'", _fit(budget="1 B"), ("budget",)),
    Case(
        "partial_fit after set_params(budget='1 B')",
        lambda est: est.set_params(budget="1 B").partial_fit(*_data()),
        ("budget",),
        subject=_fitted,
    ),
    # the learner and the evaluation protocol
    Case(
        "Learner.run on a stream without test data",
        lambda _: _learner(_).run(_stream(test=False)),
        ("test",),
    ),
    Case(
        "estimator.evaluate on a stream without test data",
        lambda est: est.evaluate(_stream(test=False)),
        ("test",),
        subject=lambda: _small(),
    ),
    Case(
        "Learner(epochs=0)",
        lambda _: Learner(torch.nn.Linear(4, 2), epochs=0).learn(_data()),
        ("epochs", "0"),
    ),
    Case(
        "Learner(lr=nan)",
        lambda _: Learner(torch.nn.Linear(4, 2), lr=math.nan).learn(_data()),
        ("lr", "nan"),
    ),
    Case(
        "Learner(batch_size=2.5)",
        lambda _: Learner(torch.nn.Linear(4, 2), batch_size=2.5).learn(_data()),
        ("batch_size", "2.5"),
    ),
    Case(
        "Learner.learn with NaN labels",
        lambda _: _learner(_).learn(_nan_labels()),
        ("nan",),
    ),
    Case("evaluate_stream(empty stream)", lambda _: evaluate_stream([], print, len), ("stream",)),
    Case(
        "evaluate_stream(horizon=-1)",
        lambda _: evaluate_stream(_stream(True), lambda e: None, lambda t: 1.0, horizon=-1),
        ("horizon", "-1"),
    ),
    Case("ScoreMatrix(-1)", lambda _: ScoreMatrix(-1), ("n_experiences", "-1")),
    Case(
        "ScoreMatrix.record(5, 0) of 3",
        lambda _: ScoreMatrix(3).record(5, 0, 1.0),
        ("5",),
    ),
    Case(
        "ScoreMatrix.record(0, 0, nan)",
        lambda _: ScoreMatrix(3).record(0, 0, math.nan),
        ("nan",),
    ),
    Case(
        "auc_over_budgets with a NaN budget",
        lambda _: auc_over_budgets([1.0, math.nan], [0.5, 0.6]),
        ("budgets", "nan"),
    ),
    Case(
        "auc_over_budgets with lengths 2 and 3",
        lambda _: auc_over_budgets([1.0, 2.0], [0.5, 0.6, 0.7]),
        ("budgets",),
    ),
    Case(
        "ExemplarStore(policy='best').update",
        lambda _: ExemplarStore(policy="best").update(
            *map(torch.as_tensor, _data()), capacity_bytes=400
        ),
        ("policy", "best"),
    ),
    Case(
        "ExemplarStore.update with NaN labels",
        lambda _: ExemplarStore().update(*map(torch.as_tensor, _nan_labels()), capacity_bytes=400),
        ("y", "float"),
    ),
    # checkpoints
    Case(
        "save(a torch module)",
        lambda _: save(torch.nn.Linear(2, 2), Path(mkdtemp()) / "x.safetensors"),
        ("estimator", "Linear"),
    ),
    Case(
        "save into a missing folder",
        lambda _: save(_small(), Path(mkdtemp()) / "nowhere" / "x.safetensors"),
        ("nowhere",),
    ),
    Case(
        "load(missing file)",
        lambda _: load(Path(mkdtemp()) / "missing.safetensors"),
        ("missing.safetensors",),
    ),
    Case("load(binary garbage)", _corrupted(bytes(range(256)) * 4), ("model.safetensors",)),
    Case("load(empty file)", _corrupted(b""), ("model.safetensors",)),
    Case("load(truncated checkpoint)", _truncated, ("model.safetensors",)),
    # stream adapters
    Case(
        "from_arrays with NaN labels",
        lambda _: from_arrays(*_nan_labels(), n_experiences=2),
        ("y", "nan"),
    ),
    Case(
        "from_arrays X of 40 rows, y of 39",
        lambda _: from_arrays(_data()[0], _data()[1][:-1], n_experiences=2),
        ("40", "39"),
    ),
    Case(
        "from_arrays(n_experiences=0)",
        lambda _: from_arrays(*_data(), n_experiences=0),
        ("n_experiences", "0"),
    ),
    Case(
        "from_arrays(n_experiences=np.int64(2))",
        lambda _: from_arrays(*_data(), n_experiences=np.int64(2)),
        valid=lambda stream: _equal(len(stream), 2),
    ),
    Case(
        "from_arrays(test_fraction=1.5)",
        lambda _: from_arrays(*_data(), n_experiences=2, test_fraction=1.5),
        ("test_fraction", "1.5"),
    ),
    Case(
        "from_pandas(target='missing')",
        lambda _: from_pandas(pd.DataFrame({"a": [1, 2]}), target="missing", n_experiences=1),
        ("missing",),
    ),
    Case(
        "from_pandas with a NaN target",
        lambda _: from_pandas(
            pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "t": [0, 1, None, 1]}),
            target="t",
            n_experiences=2,
        ),
        ("t", "nan"),
    ),
    Case(
        "from_river(synth.Agrawal()) without take",
        lambda _: from_river(synth.Agrawal(seed=0), n_experiences=2),
        ("take",),
    ),
    Case(
        "from_river(take=-1)",
        lambda _: from_river(_endless(), n_experiences=2, take=-1),
        ("take", "-1"),
    ),
    Case(
        "Stream of non-experiences",
        lambda _: Stream([(1, 2)]),
        ("Experience",),
    ),
    Case(
        "Stream with indices 1, 0",
        lambda _: Stream([Experience(1, None), Experience(0, None)]),
        ("index",),
    ),
    Case("Stream[1.5]", lambda _: _stream(True)[1.5], ("float",)),
    # river models on the ledger, and the prequential loop
    Case(
        "Budgeted(HoeffdingTree, budget='lots')",
        lambda _: Budgeted(tree.HoeffdingTreeClassifier(), "lots").learn_one({"x": 1.0}, 0),
        ("budget", "lots"),
    ),
    Case(
        "Budgeted(check_every=0)",
        lambda _: Budgeted(tree.HoeffdingTreeClassifier(), "1 MB", check_every=0).learn_one(
            {"x": 1.0}, 0
        ),
        ("check_every", "0"),
    ),
    Case(
        "Budgeted(a torch module)",
        lambda _: Budgeted(torch.nn.Linear(2, 2), "1 MB"),
        ("model", "Linear"),
    ),
    Case(
        "prequential(window=0)",
        lambda _: prequential(linear_model.LogisticRegression(), _river_rows(), window=0),
        ("window", "0"),
    ),
    Case(
        "prequential(every=1.5)",
        lambda _: prequential(linear_model.LogisticRegression(), _river_rows(), every=1.5),
        ("every", "1.5"),
    ),
    Case(
        "prequential on a stream with a None label",
        lambda _: prequential(
            linear_model.LogisticRegression(), [*_river_rows()[:5], ({"x": 1.0}, None)]
        ),
        ("None",),
    ),
]


def _river_rows() -> list[tuple[dict[str, float], bool]]:
    X, y = _data()
    return [({"x": float(row[0])}, bool(label)) for row, label in zip(X, y, strict=True)]


def _equal(result: Any, expected: Any) -> None:
    assert result == expected, f"expected {expected!r}, got {result!r}"
