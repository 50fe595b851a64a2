"""MEMO trained by Avalanche's loop against MEMO trained by our learner."""

import warnings

import numpy as np
import pytest
import torch
from avalanche.training import Naive

from continual import Learner, MemoryAccountant
from continual.avalanche import MemoryBudgetPlugin
from strategies import MEMO, DigitsConvNet
from strategies.memo_avalanche import MEMOModel, MEMOPlugin
from streams import split_digits, to_avalanche

pytestmark = pytest.mark.filterwarnings("ignore")

BUDGET = "150 KB"
EPOCHS = 8


def _ours(seed):
    torch.manual_seed(seed)
    learner = Learner(
        DigitsConvNet(10, width=8),
        plugins=[MEMO(weight_alignment=False, seed=seed)],
        accountant=MemoryAccountant(BUDGET),
        epochs=EPOCHS,
        lr=0.05,
        batch_size=32,
        input_scale=1 / 16,
        seed=seed,
    )
    return learner.run(split_digits(5, seed=seed)).last_accuracy()


def _avalanche(seed):
    stream = split_digits(5, seed=seed)
    torch.manual_seed(seed)
    model = MEMOModel(DigitsConvNet(10, width=8), input_scale=1 / 16, seed=seed)
    budget = MemoryBudgetPlugin(BUDGET)
    memo = MEMOPlugin(budget.accountant, weight_alignment=False, seed=seed)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=32,
        train_epochs=EPOCHS,
        eval_mb_size=512,
        plugins=[memo, budget],
        evaluator=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for experience in to_avalanche(stream).train_stream:
            strategy.train(experience)
    X = np.concatenate([e.test[0] for e in stream])
    y = np.concatenate([e.test[1] for e in stream])
    model.eval()
    with torch.no_grad():
        predictions = model(torch.as_tensor(X)).argmax(1).numpy()
    return float((predictions == y).mean()), budget, memo, model


def test_avalanche_and_our_loop_reach_the_same_accuracy():
    # The two loops draw batches in different orders, so single seeds differ by a few points;
    # averaged over seeds, the same method reaches the same accuracy.
    ours = [_ours(seed) for seed in range(3)]
    theirs = [_avalanche(seed)[0] for seed in range(3)]
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.01
    assert min(theirs) > 0.85


def test_avalanche_memo_stays_within_the_budget_with_uint8_exemplars():
    _, budget, memo, model = _avalanche(seed=0)
    ledger = budget.accountant.ledger()
    assert set(ledger.accounts) == {"model", "optimizer", "memo/exemplars"}
    assert ledger.total <= 150_000
    assert memo.store.x.dtype == torch.uint8
    assert ledger.accounts["memo/exemplars"] == len(memo.store) * 65
    assert len(model.net.blocks) == 5
    assert [s.ledger.total <= 150_000 for s in budget.accountant.history] == [True] * 5


def test_adaptation_grows_only_for_training_and_keeps_old_blocks_frozen():
    from types import SimpleNamespace

    model = MEMOModel(DigitsConvNet(10, width=4), seed=0)
    model.adaptation(SimpleNamespace(classes_in_this_experience=[0, 1], current_experience=0))
    model.adaptation(SimpleNamespace(classes_in_this_experience=[2, 3], current_experience=1))
    model.eval()
    model.adaptation(SimpleNamespace(classes_in_this_experience=[4, 5], current_experience=2))
    assert len(model.net.blocks) == 2  # evaluation never grows the model
    model.train()
    old = model.net.blocks[0]
    assert not old.training and not any(p.requires_grad for p in old.parameters())
    assert model.net.blocks[1].training


def test_plugin_needs_a_memo_model():
    plugin = MEMOPlugin(MemoryAccountant())
    model = torch.nn.Linear(64, 10)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        criterion=torch.nn.CrossEntropyLoss(),
        plugins=[plugin],
        evaluator=None,
    )
    with pytest.raises(TypeError, match="needs the strategy's model to be a MEMOModel"):
        strategy.train(to_avalanche(split_digits(5, seed=0)).train_stream[0])
