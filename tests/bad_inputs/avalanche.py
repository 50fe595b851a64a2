"""Bad-input cases: Avalanche strategies under MemoryBudgetPlugin, and the benchmark
converters ``to_avalanche`` / ``from_avalanche``."""

from __future__ import annotations

import dataclasses
import math
import warnings
from functools import cache
from typing import Any

import numpy as np
import torch

from continual import MemoryAccountant
from continual.avalanche import MemoryBudgetPlugin
from strategies.memo_avalanche import MEMOPlugin
from streams import Experience, Stream, from_avalanche, split_digits, to_avalanche
from tests.bad_inputs import Case


@cache
def _digits() -> Stream:
    return split_digits(n_experiences=5, seed=0)[:2]


@cache
def _benchmark() -> Any:
    return to_avalanche(_digits())


class _ToFloat(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().flatten(1) / 16


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(_ToFloat(), torch.nn.Linear(64, 10))


def _train(plugin: MemoryBudgetPlugin, strategy: str = "Naive", **kwargs: Any) -> Any:
    import avalanche.training as training

    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = getattr(training, strategy)(
        model=model,
        optimizer=optimizer,
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=64,
        train_epochs=1,
        plugins=[plugin],
        evaluator=None,
        **kwargs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for experience in _benchmark().train_stream:
            run.train(experience)
    return plugin


def _with(**changes: Any) -> Stream:
    experiences = [dataclasses.replace(e, **changes) for e in _digits()]
    return Stream(experiences, name="digits")


def _nan_labels() -> Stream:
    first, second = _digits()
    X, y = first.train
    labels = y.astype(float)
    labels[0] = math.nan
    return Stream([dataclasses.replace(first, train=(X, labels)), second], name="digits")


def _ledger_budget(expected: int) -> Any:
    def check(plugin: MemoryBudgetPlugin) -> None:
        ledger = plugin.accountant.ledger()
        assert ledger.budget == expected, ledger.budget
        assert ledger.accounts["model"] == 650 * 4, ledger.accounts

    return check


class _NotABenchmark:
    train_stream = (1, 2)
    test_stream = (1,)


CASES: list[Case] = [
    Case("MemoryBudgetPlugin(budget='lots')", lambda _: MemoryBudgetPlugin("lots"), ("lots",)),
    Case("MemoryBudgetPlugin(budget=-1)", lambda _: MemoryBudgetPlugin(-1), ("budget", "-1")),
    Case(
        "MemoryBudgetPlugin(on_exceed='explode')",
        lambda _: MemoryBudgetPlugin("1 MB", on_exceed="explode"),
        ("on_exceed", "explode"),
    ),
    Case(
        "MemoryBudgetPlugin(accountant='mine')",
        lambda _: MemoryBudgetPlugin(accountant="mine"),
        ("accountant", "mine"),
    ),
    Case(
        "MemoryBudgetPlugin(budget=np.int64(10**6))",
        lambda _: _train(MemoryBudgetPlugin(np.int64(10**6))),
        valid=_ledger_budget(10**6),
    ),
    Case(
        "Naive under a budget smaller than its model",
        lambda _: _train(MemoryBudgetPlugin("1 KB")),
        ("model", "budget"),
    ),
    Case(
        "Replay under on_exceed='raise' and a budget its buffer cannot meet",
        lambda _: _train(MemoryBudgetPlugin("4 KB", on_exceed="raise"), "Replay", mem_size=200),
        ("budget",),
    ),
    Case(
        "MEMOPlugin(aux_weight=nan)",
        lambda _: MEMOPlugin(MemoryAccountant(), aux_weight=math.nan),
        ("aux_weight", "nan"),
    ),
    Case(
        "MEMOPlugin(accountant=None)",
        lambda _: MEMOPlugin(None),
        ("accountant", "None"),
    ),
    Case("to_avalanche(a list)", lambda _: to_avalanche(list(_digits())), ("stream", "list")),
    Case(
        "to_avalanche(stream without test data)",
        lambda _: to_avalanche(_with(test=None)),
        ("test",),
    ),
    Case(
        "to_avalanche(stream without classes)",
        lambda _: to_avalanche(_with(metadata={})),
        ("classes",),
    ),
    Case("to_avalanche(NaN labels)", lambda _: to_avalanche(_nan_labels()), ("nan",)),
    Case(
        "to_avalanche(event sequences)",
        lambda _: to_avalanche(Stream([Experience(0, [{"t": 1}], [{"t": 2}], {"classes": (0,)})])),
        ("(X, y)",),
    ),
    Case("from_avalanche(42)", lambda _: from_avalanche(42), ("benchmark", "int")),
    Case(
        "from_avalanche(train and test of different lengths)",
        lambda _: from_avalanche(_NotABenchmark()),
        ("2", "1"),
    ),
]
