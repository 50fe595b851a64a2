"""Replay under the shared accountant: the store takes the headroom and never overspends."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continual import BudgetExceededError, Learner, MemoryAccountant
from strategies import Finetune, Replay
from streams import class_incremental


def _stream(seed=0, n=120, features=8):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 255, size=(n, features), dtype=np.uint8)
    y = rng.integers(0, 6, size=n)
    return class_incremental(X, y, n_experiences=3, test=(X, y), seed=seed)


def _learner(budget, policy="class_balanced", **kwargs):
    torch.manual_seed(0)
    return Learner(
        torch.nn.Linear(8, 6),
        plugins=[Replay(policy=policy, seed=0)],
        accountant=MemoryAccountant(budget),
        input_scale=1 / 255,
        **kwargs,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    budget=st.integers(0, 3000),
    policy=st.sampled_from(["reservoir", "random", "class_balanced", "herding"]),
    seed=st.integers(0, 5),
)
def test_adding_data_never_leaves_the_total_over_budget_without_raising(budget, policy, seed):
    learner = _learner(budget, policy)
    learner.model.features = torch.nn.Identity()  # herding on raw inputs
    try:
        learner.run(_stream(seed))
    except BudgetExceededError as error:
        assert error.ledger.total > budget
        return
    assert learner.accountant.total() <= budget


def test_store_takes_all_headroom_left_by_model_and_optimizer():
    learner = _learner(1500)
    learner.run(_stream())
    ledger = learner.accountant.ledger()
    model = ledger.accounts["model"]
    optimizer = ledger.accounts["optimizer"]
    assert model == optimizer == (8 * 6 + 6) * 4  # SGD momentum: one buffer per parameter
    per_sample = 8 + 1  # uint8 features plus a uint8 label
    assert ledger.accounts["replay/exemplars"] == (1500 - model - optimizer) // per_sample * 9


def test_without_budget_replay_keeps_everything():
    learner = _learner(None)
    stream = _stream()
    learner.run(stream)
    assert len(learner.plugins[0].store) == sum(len(e.train[1]) for e in stream)


def test_replayed_samples_join_the_batch():
    seen = []

    class Spy(Finetune):
        def before_backward(self, learner):
            seen.append(len(learner.output))

    learner = _learner(None, batch_size=10)
    learner.plugins.append(Spy())
    learner.run(_stream())
    first = len(_stream()[0].train[1])
    assert max(seen[: -(-first // 10)]) == 10  # nothing stored yet
    assert max(seen) == 20  # 10 new + 10 replayed


def test_replay_outperforms_finetune_on_forgetting():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 8)) * 4
    y = np.repeat(np.arange(6), 60)
    X = (centers[y] + rng.normal(size=(360, 8))).astype(np.float32)
    stream = class_incremental(X, y, n_experiences=3, test=(X, y), seed=0)
    forgetting = {}
    for plugin in (Finetune(), Replay(seed=0)):
        torch.manual_seed(0)
        learner = Learner(
            torch.nn.Linear(8, 6),
            plugins=[plugin],
            epochs=10,
            lr=0.05,
            accountant=MemoryAccountant("4 KB"),
        )
        forgetting[plugin.name] = learner.run(stream).forgetting()
    assert forgetting["replay"] < forgetting["finetune"] - 0.2


def test_bad_policy_is_reported_when_the_plugin_is_made():
    with pytest.raises(ValueError, match=r"'policy' parameter of Replay .* Got 'fifo' instead"):
        _learner(None, policy="fifo")
