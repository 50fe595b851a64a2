"""The learner loop: hook order, accounting of model, optimizer and plugin items, budget checks."""

import numpy as np
import pytest
import torch

from continual import BudgetExceededError, Learner, MemoryAccountant, Plugin, nbytes
from continual.plugin import HOOKS
from streams import class_incremental


def _stream(n_experiences=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(160, 6)).astype(np.float32)
    y = rng.integers(0, 4, size=160)
    X[np.arange(160), y] += 3.0  # separable enough to learn
    return class_incremental(X, y, n_experiences=n_experiences, test=(X, y), seed=seed)


class Recorder(Plugin):
    """Records the name of every hook call."""

    def __init__(self):
        self.calls = []


for _hook in HOOKS:
    setattr(Recorder, _hook, lambda self, learner, _hook=_hook: self.calls.append(_hook))


def test_hooks_are_called_in_lifecycle_order():
    recorder = Recorder()
    experience = _stream()[0]
    learner = Learner(torch.nn.Linear(6, 4), plugins=[recorder], epochs=2, batch_size=30)
    learner.train_experience(experience)
    n_batches = -(-len(experience.train[1]) // 30)
    batch = ["before_batch", "before_backward", "after_backward", "after_batch"]
    assert recorder.calls == ["before_experience", *batch * (2 * n_batches), "after_experience"]
    learner.accuracy(*experience.test)
    assert recorder.calls[-2:] == ["before_eval", "after_eval"]


def test_run_fills_the_score_matrix_and_learns():
    torch.manual_seed(0)
    learner = Learner(torch.nn.Linear(6, 4), epochs=20, lr=0.1)
    scores = learner.run(_stream(n_experiences=1))
    assert scores.matrix.shape == (1, 1)
    assert scores.matrix[0, 0] > 0.9


def test_model_optimizer_and_plugin_items_are_charged():
    class Keeps(Plugin):
        def __init__(self):
            self.kept = torch.zeros(10, dtype=torch.float64)

        def memory_items(self):
            return {"kept": self.kept}

    model = torch.nn.Linear(6, 4)
    accountant = MemoryAccountant()
    learner = Learner(model, plugins=[Keeps()], accountant=accountant, optimizer="adam")
    learner.train_experience(_stream()[0])
    ledger = accountant.ledger()
    params = (6 * 4 + 4) * 4
    assert ledger.accounts["model"] == params
    assert ledger.accounts["optimizer"] == nbytes(learner.optimizer) >= 2 * params
    assert ledger.accounts["keeps/kept"] == 80
    assert [s.step for s in accountant.history] == [0]


def test_user_accounts_survive_the_learner_resync():
    accountant = MemoryAccountant()
    accountant.track("embeddings", torch.zeros(25))
    learner = Learner(torch.nn.Linear(6, 4), accountant=accountant)
    learner.train_experience(_stream()[0])
    assert accountant.ledger().accounts["embeddings"] == 100


def test_model_larger_than_budget_raises_before_training():
    model = torch.nn.Linear(6, 4)
    before = model.weight.detach().clone()
    learner = Learner(model, accountant=MemoryAccountant(50))
    with pytest.raises(BudgetExceededError, match="before experience 0") as error:
        learner.train_experience(_stream()[0])
    assert error.value.ledger.accounts["model"] == 112
    assert torch.equal(model.weight, before)


def test_plugin_that_overspends_is_caught_after_the_experience():
    class Hoarder(Plugin):
        def __init__(self):
            self.items = []

        def after_experience(self, learner):
            self.items.append(torch.zeros(1000))

        def memory_items(self):
            return {"hoard": self.items}

    learner = Learner(torch.nn.Linear(6, 4), plugins=[Hoarder()], accountant=MemoryAccountant(2000))
    with pytest.raises(BudgetExceededError, match="after experience 0"):
        learner.train_experience(_stream()[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"epochs": 0}, "epochs must be a positive int, got 0"),
        ({"batch_size": 2.5}, "batch_size must be a positive int, got 2.5"),
    ],
)
def test_bad_learner_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Learner(torch.nn.Linear(2, 2), **kwargs)


def test_same_seed_same_scores():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(Learner(torch.nn.Linear(6, 4), seed=7, epochs=2).run(_stream()).matrix)
    np.testing.assert_array_equal(*runs)
