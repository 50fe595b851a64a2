"""Real Avalanche runs under the byte budget, checked against independently computed bytes."""

import warnings

import pytest
import torch
from avalanche.logging import BaseLogger
from avalanche.training import EWC, ICaRL, LwF, Naive, Replay
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin

from continual import BudgetExceededError, MemoryAccountant, nbytes
from continual.avalanche import LedgerMetric, MemoryBudgetPlugin
from streams import split_digits, to_avalanche

pytestmark = pytest.mark.filterwarnings("ignore")

SAMPLE = 64 + 8  # a uint8 8x8 digit plus its int64 label, as Avalanche returns them


class ToFloat(torch.nn.Module):
    def forward(self, x):
        return x.float().flatten(1) / 16


def _features():
    return torch.nn.Sequential(ToFloat(), torch.nn.Linear(64, 32), torch.nn.ReLU())


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(_features(), torch.nn.Linear(32, 10))


def _bytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def _model_bytes(model):
    return _bytes([*model.parameters(), *model.buffers()])


def _optimizer_bytes(optimizer):
    return _bytes([t for state in optimizer.state.values() for t in state.values()])


@pytest.fixture(scope="module")
def benchmark():
    return to_avalanche(split_digits(n_experiences=5, seed=0))


def _common(budget_plugin):
    return {
        "criterion": torch.nn.CrossEntropyLoss(),
        "train_mb_size": 32,
        "train_epochs": 1,
        "eval_mb_size": 256,
        "plugins": [budget_plugin],
        "evaluator": None,
    }


def _strategy(name, budget_plugin):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    common = _common(budget_plugin)
    if name == "naive":
        return Naive(model=model, optimizer=optimizer, **common)
    if name == "replay":
        return Replay(model=model, optimizer=optimizer, mem_size=400, **common)
    if name == "ewc":
        return EWC(model=model, optimizer=optimizer, ewc_lambda=1.0, **common)
    if name == "lwf":
        return LwF(model=model, optimizer=optimizer, alpha=1.0, temperature=2.0, **common)
    torch.manual_seed(0)
    features, classifier = _features(), torch.nn.Linear(32, 10)
    params = [*features.parameters(), *classifier.parameters()]
    del common["criterion"]
    return ICaRL(
        feature_extractor=features,
        classifier=classifier,
        optimizer=torch.optim.SGD(params, lr=0.05, momentum=0.9),
        memory_size=300,
        buffer_transform=None,
        fixed_memory=True,
        **common,
    )


def _expected_stores(name, strategy):
    """Bytes of each plugin store, computed from the plugin's own attributes."""
    plugins = {type(p).__name__: p for p in strategy.plugins}
    if name == "replay":
        return {"replay/buffer": len(plugins["ReplayPlugin"].storage_policy.buffer) * SAMPLE}
    if name == "ewc":
        ewc = plugins["EWCPlugin"]
        return {
            "ewc/importances": _bytes(p.data for d in ewc.importances.values() for p in d.values()),
            "ewc/anchors": _bytes(p.data for d in ewc.saved_params.values() for p in d.values()),
        }
    if name == "lwf":
        return {"lwf/previous_model": _model_bytes(plugins["LwFPlugin"].lwf.prev_model)}
    if name == "icarl":
        icarl = plugins["_ICaRLPlugin"]
        n = sum(len(x) for x in icarl.x_memory)
        means = _bytes(icarl.class_means.values())
        return {"icarl/exemplars": n * (64 + 4 + 8) + means}
    return {}


def _train(strategy, benchmark):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for experience in benchmark.train_stream:
            strategy.train(experience)


STRATEGIES = ["naive", "replay", "ewc", "lwf", "icarl"]


@pytest.mark.parametrize("name", STRATEGIES)
def test_ledger_equals_independently_computed_bytes(name, benchmark):
    budget = MemoryBudgetPlugin(budget=None)
    strategy = _strategy(name, budget)
    _train(strategy, benchmark)
    accounts = budget.accountant.ledger().accounts
    expected = {
        "model": _model_bytes(strategy.model),
        "optimizer": _optimizer_bytes(strategy.optimizer),
        **_expected_stores(name, strategy),
    }
    assert accounts == expected
    assert accounts["optimizer"] > 0
    assert sum(accounts.values()) == nbytes([strategy.model, strategy.optimizer]) + sum(
        v for k, v in expected.items() if k not in ("model", "optimizer")
    )
    assert [s.step for s in budget.accountant.history] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("name", "budget"), [("replay", 30_000), ("icarl", 40_000)])
def test_shrinking_fits_the_budget(name, budget, benchmark):
    plugin = MemoryBudgetPlugin(budget=budget)
    strategy = _strategy(name, plugin)
    _train(strategy, benchmark)
    ledger = plugin.accountant.ledger()
    store = f"{name}/buffer" if name == "replay" else "icarl/exemplars"
    assert ledger.accounts[store] > 0
    assert ledger.total <= budget
    assert all(s.ledger.total <= budget for s in plugin.accountant.history)
    unconstrained = 400 * SAMPLE if name == "replay" else 300 * (64 + 4 + 8)
    assert ledger.accounts[store] < unconstrained  # it really had to shrink


@pytest.mark.parametrize("name", STRATEGIES)
def test_raise_mode_raises_with_the_ledger(name, benchmark):
    plugin = MemoryBudgetPlugin(budget=15_000, on_exceed="raise")  # model 9,640 + momentum 9,640
    strategy = _strategy(name, plugin)
    with pytest.raises(BudgetExceededError) as error:
        _train(strategy, benchmark)
    assert error.value.ledger.total > 15_000
    assert "model" in str(error.value)


@pytest.mark.parametrize("budget", [5_000, {"cpu": 5_000}])
def test_budget_smaller_than_the_model(benchmark, budget):
    plugin = MemoryBudgetPlugin(budget=budget)
    strategy = _strategy("naive", plugin)
    with pytest.raises(BudgetExceededError, match="model and optimizer alone"):
        _train(strategy, benchmark)


def test_strategy_without_optimizer_is_named(benchmark):
    plugin = MemoryBudgetPlugin(budget=None)
    strategy = _strategy("naive", plugin)
    strategy.optimizer = None
    with pytest.raises(ValueError, match=r"strategy\.optimizer must be a torch optimizer"):
        _train(strategy, benchmark)


def test_unresizable_storage_policy_is_named(benchmark):
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    class Fixed(ReservoirSamplingBuffer):
        def resize(self, strategy, new_size):
            raise NotImplementedError

    plugin = MemoryBudgetPlugin(budget=25_000)
    model = _model()
    replay = ReplayPlugin(mem_size=400, storage_policy=Fixed(400))
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        **{**_common(plugin), "plugins": [replay, plugin]},
    )
    with pytest.raises(ValueError, match="storage policy Fixed cannot be resized"):
        _train(strategy, benchmark)


def test_shared_accountant_and_bad_on_exceed():
    accountant = MemoryAccountant("1 MB")
    assert MemoryBudgetPlugin(accountant=accountant).accountant is accountant
    with pytest.raises(ValueError, match="on_exceed must be one of"):
        MemoryBudgetPlugin(on_exceed="drop")


class Capture(BaseLogger):
    def __init__(self):
        super().__init__()
        self.values = {}

    def log_single_metric(self, name, value, x_plot):
        self.values.setdefault(name, []).append(value)


def test_ledger_metric_reaches_avalanche_loggers(benchmark):
    plugin = MemoryBudgetPlugin(budget=30_000)
    logger = Capture()
    evaluator = EvaluationPlugin(LedgerMetric(plugin), loggers=[logger])
    model = _model()
    strategy = Replay(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        mem_size=400,
        **{**_common(plugin), "evaluator": evaluator},
    )
    _train(strategy, benchmark)
    history = plugin.accountant.history
    assert logger.values["Memory/total"] == [s.ledger.total for s in history]
    assert logger.values["Memory/replay/buffer"] == [
        s.ledger.accounts["replay/buffer"] for s in history
    ]
