"""The scikit-learn faces: estimator checks, bad input, atomic partial_fit, budgets."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

from continual import BudgetExceededError, nbytes
from strategies import FinetuneClassifier, ReplayClassifier

# Checks that cannot pass, with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": (
        "float32 matrix products take different BLAS kernels for different batch sizes, so "
        "probabilities of a subset differ from the full batch in the last float32 bits "
        "(about 2e-7), just above the check's 1e-7 tolerance"
    ),
}

ESTIMATORS = [FinetuneClassifier, ReplayClassifier]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.uint8), y


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_sklearn_estimator_checks(estimator_class):
    results = check_estimator(
        estimator_class(), expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None
    )
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


def _small(estimator_class, **params):
    defaults = {"epochs": 2, "input_scale": 1 / 16, "random_state": 0}
    return estimator_class(**{**defaults, **params})


def _state(clf):
    state = {k: v.clone() for k, v in clf.learner_.model.state_dict().items()}
    return state, clf.n_partial_fits_, nbytes(clf.learner_.plugins)


def _assert_same_state(before, after):
    (model_a, n_a, stored_a), (model_b, n_b, stored_b) = before, after
    assert model_a.keys() == model_b.keys()
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)
    assert (n_a, stored_a) == (n_b, stored_b)


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_partial_fit_is_one_experience_and_fit_resets(estimator_class, digits):
    X, y = digits
    clf = _small(estimator_class)
    clf.partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))
    clf.partial_fit(X[y >= 5], y[y >= 5])
    assert clf.n_partial_fits_ == 2
    assert clf.predict_proba(X[:3]).shape == (3, 10)
    clf.fit(X, y)
    assert clf.n_partial_fits_ == 1
    assert clf.score(X, y) > 0.8


def test_replay_spends_headroom_on_uint8_exemplars(digits):
    X, y = digits
    clf = _small(ReplayClassifier, budget="120 KB")
    for task in range(5):
        mask = y // 2 == task
        clf.partial_fit(X[mask], y[mask], classes=np.arange(10))
    ledger = clf.accountant_.ledger()
    store = clf.learner_.plugins[0].store
    assert store.x.dtype == torch.uint8
    assert ledger.accounts["replay/exemplars"] == len(store) * (64 + 1)
    assert ledger.total <= 120_000
    assert ledger.headroom < 65  # not one more exemplar would fit
    assert len(store.classes) == 10


def test_replay_beats_finetune_under_the_same_budget(digits):
    X, y = digits
    scores = {}
    for estimator_class in ESTIMATORS:
        clf = _small(estimator_class, budget="150 KB", epochs=5)
        for task in range(5):
            mask = y // 2 == task
            clf.partial_fit(X[mask], y[mask], classes=np.arange(10))
        scores[estimator_class.__name__] = clf.score(X, y)
    assert scores["ReplayClassifier"] > scores["FinetuneClassifier"] + 0.2


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_budget_that_cannot_hold_the_model(estimator_class, digits):
    X, y = digits
    clf = _small(estimator_class, budget="10 KB")
    with pytest.raises(BudgetExceededError, match="budget exceeded") as error:
        clf.partial_fit(X, y, classes=np.arange(10))
    assert error.value.ledger.accounts["model"] == 38_440
    assert error.value.ledger.budget == 10_000
    assert not hasattr(clf, "learner_")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda clf, X, y: clf.partial_fit(X, y), "classes must be passed on the first call"),
        (
            lambda clf, X, y: clf.partial_fit(X, y + 20, classes=np.arange(10)),
            r"y contains labels \[20.*outside the declared classes",
        ),
        (
            lambda clf, X, y: clf.partial_fit(X[:0], y[:0], classes=np.arange(10)),
            "X must hold at least one sample",
        ),
    ],
)
def test_bad_first_call_raises_and_leaves_estimator_unfitted(call, match, digits):
    X, y = digits
    clf = _small(FinetuneClassifier)
    with pytest.raises(ValueError, match=match):
        call(clf, X[:50], y[:50])
    assert [k for k in vars(clf) if k.endswith("_")] == []


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
@pytest.mark.parametrize(
    ("make_bad", "error", "match"),
    [
        (lambda X, y: (X[:, :10], y), ValueError, "X has 10 features.*expecting 64"),
        (lambda X, y: (np.where(X == 0, np.nan, X), y), ValueError, "Input X contains NaN"),
        (lambda X, y: (np.where(X == 0, np.inf, X), y), ValueError, "Input X contains inf"),
        (lambda X, y: (X, np.full_like(y, 11)), ValueError, "outside the declared classes"),
        (lambda X, y: (X[:0], y[:0]), ValueError, "an experience cannot be empty"),
        (lambda X, y: (X, y), BudgetExceededError, "budget exceeded"),
    ],
)
def test_failed_partial_fit_leaves_model_exactly_as_it_was(
    estimator_class, make_bad, error, match, digits
):
    X, y = digits
    clf = _small(estimator_class, budget="180 KB")
    clf.partial_fit(X[y < 4], y[y < 4], classes=np.arange(10))
    before = _state(clf)
    if error is BudgetExceededError:
        clf.accountant_.budget = 50_000  # the model trains, then the check fails: roll back
    with pytest.raises(error, match=match):
        clf.partial_fit(*make_bad(X[y >= 4], y[y >= 4]))
    _assert_same_state(before, _state(clf))


def test_changed_classes_are_rejected(digits):
    X, y = digits
    clf = _small(FinetuneClassifier).partial_fit(X[:20], y[:20], classes=np.arange(10))
    with pytest.raises(ValueError, match="differs from the classes declared"):
        clf.partial_fit(X[:20], y[:20], classes=np.arange(5))


def test_same_seed_same_model_and_clone_is_unfitted(digits):
    X, y = digits
    first = _small(ReplayClassifier).fit(X[:300], y[:300])
    second = clone(first).fit(X[:300], y[:300])
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert not hasattr(clone(first), "learner_")


def test_string_labels(digits):
    X, y = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    clf = _small(FinetuneClassifier, epochs=5).fit(X, names[y])
    assert set(clf.predict(X[:50])) <= set(names)
    assert clf.score(X, names[y]) > 0.8


def test_conv_backbone(digits):
    X, y = digits
    clf = _small(FinetuneClassifier, backbone="conv8", width=4).fit(X[:200], y[:200])
    assert type(clf.learner_.model).__name__ == "DigitsConvNet"
    with pytest.raises(ValueError, match="backbone 'conv8' needs 64 input features"):
        _small(FinetuneClassifier, backbone="conv8").fit(X[:50, :10], y[:50])
