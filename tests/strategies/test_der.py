"""DER under the byte budget: one whole backbone per task, nothing shared."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

from continual import BudgetExceededError, Learner, MemoryAccountant, nbytes
from strategies import DigitsConvNet
from strategies.classifiers import DERClassifier
from strategies.der import DER
from strategies.memo import MEMO
from streams import split_digits
from tests.strategies.test_classifiers import EXPECTED_FAILED_CHECKS


def _run(plugin, budget="60 KB", n=3):
    torch.manual_seed(0)
    learner = Learner(
        DigitsConvNet(10, width=4),
        plugins=[plugin],
        accountant=MemoryAccountant(budget),
        input_scale=1 / 16,
    )
    learner.run(split_digits(5, seed=0)[:n])
    return learner


def test_der_keeps_a_whole_backbone_per_task_within_budget():
    der = DER(seed=0)
    learner = _run(der)
    model = learner.model
    backbone = DigitsConvNet(10, width=4)
    body_bytes = nbytes(backbone) - nbytes(backbone.head)
    assert len(model.blocks) == 3 and nbytes(model.shared) == 0
    assert all(nbytes(block) == body_bytes for block in model.blocks)
    heads = 4 * 6 * (3 * 16 + 1) + 8 * 6 + 4 * 3 * (16 + 1)
    assert nbytes(model) == 3 * body_bytes + heads
    for snapshot in learner.accountant.history:
        assert snapshot.ledger.total <= 60_000
    assert learner.accountant.ledger().accounts["der/exemplars"] == len(der.store) * 65


def test_der_pays_more_model_and_keeps_fewer_exemplars_than_memo():
    der, memo = DER(seed=0), MEMO(seed=0)
    der_ledger = _run(der).accountant.ledger().accounts
    memo_ledger = _run(memo).accountant.ledger().accounts
    assert der_ledger["model"] > memo_ledger["model"]
    assert len(der.store) < len(memo.store)


def test_budget_below_der_model_size():
    with pytest.raises(
        BudgetExceededError,
        match=r"DER at experience 2: the model needs [\d,]+ "
        r"bytes .* but the budget is 25,000 bytes",
    ):
        _run(DER(seed=0), budget="25 KB")


# ------------------------------------------------------------------ the scikit-learn face
def test_der_classifier_passes_check_estimator():
    # the foundation's EXPECTED_FAILED_CHECKS apply unchanged; small settings keep it fast
    estimator = DERClassifier(hidden_sizes=(8, 8), epochs=4, lr=0.05)
    results = check_estimator(
        estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None
    )
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []


def test_der_classifier_fits_the_budget_and_refuses_one_below_the_model():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.uint8)
    clf = DERClassifier(
        budget="120 KB", hidden_sizes=(32, 16), epochs=2, input_scale=1 / 16, random_state=0
    )
    for task in range(3):
        mask = y // 2 == task
        clf.partial_fit(X[mask], y[mask], classes=np.arange(10))
    ledger = clf.accountant_.ledger()
    assert ledger.total <= 120_000 and ledger.accounts["der/exemplars"] > 0
    small = DERClassifier(budget="10 KB", hidden_sizes=(32, 16), input_scale=1 / 16, random_state=0)
    with pytest.raises(BudgetExceededError, match=r"model needs .* the budget is '10 KB'"):
        small.partial_fit(X, y, classes=np.arange(10))
    assert not hasattr(small, "learner_")
