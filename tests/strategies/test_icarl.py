"""iCaRL under the byte budget: herding, distillation, nearest-mean-of-exemplars and charges."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

from continual import BudgetExceededError, Learner, MemoryAccountant, Plugin, nbytes
from strategies import DigitsConvNet
from strategies.classifiers import ICaRLClassifier
from strategies.icarl import ICaRL
from streams import split_digits
from tests.strategies.test_classifiers import EXPECTED_FAILED_CHECKS


def _learner(budget, plugins):
    torch.manual_seed(0)
    return Learner(
        DigitsConvNet(10, width=4),
        plugins=plugins,
        accountant=MemoryAccountant(budget),
        input_scale=1 / 16,
        epochs=2,
    )


@pytest.fixture(scope="module")
def trained():
    icarl = ICaRL(seed=0)
    learner = _learner("40 KB", [icarl])
    stream = split_digits(5, seed=0)[:3]
    scores = learner.run(stream)
    return learner, icarl, scores, stream


def test_everything_is_charged_and_fits(trained):
    learner, icarl, _, _ = trained
    ledger = learner.accountant.ledger()
    assert ledger.accounts["icarl/old_model"] == nbytes(learner.model)
    assert ledger.accounts["icarl/class_means"] == 6 * 16 * 4
    assert ledger.accounts["icarl/mean_classes"] == 6 * 8
    assert ledger.accounts["icarl/exemplars"] == len(icarl.store) * 65
    assert ledger.headroom < 65
    assert all(s.ledger.total <= 40_000 for s in learner.accountant.history)


def test_evaluation_uses_nearest_mean_of_exemplars(trained):
    learner, icarl, scores, stream = trained
    x, y = stream[1].test
    features = F.normalize(learner.features(x), dim=1).numpy()
    means = []
    for label in icarl.mean_classes.tolist():
        stored = icarl.store.x[icarl.store.y.long() == label]
        mean = F.normalize(learner.features(stored), dim=1).mean(0)
        means.append(F.normalize(mean, dim=0).numpy())
    distances = ((features[:, None, :] - np.array(means)[None]) ** 2).sum(-1)
    predicted = icarl.mean_classes.numpy()[distances.argmin(1)]
    assert scores.matrix[2, 1] == pytest.approx((predicted == y).mean())
    assert learner.accuracy(x, y) == pytest.approx((predicted == y).mean())
    assert type(learner.model).__name__ == "DigitsConvNet"  # restored after evaluation


class _LossSpy(Plugin):
    def __init__(self):
        self.extra = []

    def before_backward(self, learner):
        self.ce = float(F.cross_entropy(learner.output.detach(), learner.batch[1].long()))

    def after_batch(self, learner):
        self.extra.append(float(learner.loss.detach()) - self.ce)


def test_distillation_is_added_from_the_second_experience():
    spy = _LossSpy()
    learner = _learner(None, [ICaRL(seed=0), spy])
    stream = split_digits(5, seed=0)
    learner.train_experience(stream[0])
    assert spy.extra and max(abs(e) for e in spy.extra) < 1e-6
    spy.extra = []
    learner.train_experience(stream[1])
    assert min(spy.extra) > 0  # KL divergence to the teacher, strictly positive


def test_budget_that_cannot_hold_model_optimizer_and_teacher():
    learner = _learner("20 KB", [ICaRL(seed=0)])
    with pytest.raises(
        BudgetExceededError,
        match=r"ICaRL at experience 0 .*teacher.* the budget "
        r"is 20,000 bytes",
    ):
        learner.train_experience(split_digits(5, seed=0)[0])


# ------------------------------------------------------------------ the scikit-learn face
def test_icarl_classifier_passes_check_estimator():
    # the foundation's EXPECTED_FAILED_CHECKS apply unchanged; small settings keep it fast
    estimator = ICaRLClassifier(hidden_sizes=(8,), epochs=4, lr=0.05)
    results = check_estimator(
        estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None
    )
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []


def test_icarl_classifier_fits_the_budget_and_refuses_one_below_the_model():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.uint8)
    clf = ICaRLClassifier(
        budget="120 KB", hidden_sizes=(32, 16), epochs=2, input_scale=1 / 16, random_state=0
    )
    for task in range(3):
        mask = y // 2 == task
        clf.partial_fit(X[mask], y[mask], classes=np.arange(10))
    ledger = clf.accountant_.ledger()
    assert ledger.total <= 120_000 and ledger.accounts["icarl/exemplars"] > 0
    small = ICaRLClassifier(
        budget="10 KB", hidden_sizes=(32, 16), input_scale=1 / 16, random_state=0
    )
    with pytest.raises(BudgetExceededError, match=r"model needs .* the budget is .10 KB."):
        small.partial_fit(X, y, classes=np.arange(10))
    assert not hasattr(small, "learner_")
