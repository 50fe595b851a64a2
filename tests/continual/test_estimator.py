"""The BudgetedEstimator contract beyond continual.checks: shared parameters, the plan check,
transient bytes, rollback modes and the evaluation protocol."""

import resource

import numpy as np
import pytest
from sklearn.datasets import load_digits

from continual import BudgetExceededError, ScoreMatrix, nbytes
from continual.estimator import draw_seed
from strategies import FinetuneClassifier, ReplayClassifier
from streams import split_digits


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.uint8), y


def _small(cls=FinetuneClassifier, **params):
    defaults = {"hidden_sizes": (16,), "epochs": 1, "input_scale": 1 / 16, "random_state": 0}
    return cls(**{**defaults, **params})


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("rollback", "tape", r"rollback must be one of \('memory', 'disk', 'off'\), got 'tape'"),
        ("device", "gpu0", "device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got 'gpu0'"),
        ("device", "cuda:99", "device='cuda:99' is not available"),
        ("verbose", -1, "verbose must be a non-negative int, got -1"),
        ("random_state", "seven", "random_state must be None, an int or a numpy"),
        ("budget", "lots", "budget must look like"),
    ],
)
def test_shared_parameters_are_checked_at_fit_and_named(param, value, match, digits):
    X, y = digits
    estimator = _small(**{param: value})
    with pytest.raises(ValueError, match=match):
        estimator.fit(X[:50], y[:50])
    assert not hasattr(estimator, "accountant_")


def test_random_state_none_draws_a_seed_and_keeps_it(digits):
    X, y = digits
    estimator = _small(random_state=None).fit(X[:100], y[:100])
    assert isinstance(estimator.seed_, int)
    again = _small(random_state=estimator.seed_).fit(X[:100], y[:100])
    np.testing.assert_array_equal(estimator.predict_proba(X), again.predict_proba(X))


def test_draw_seed_reads_no_global_generator():
    state = np.random.get_state()  # noqa: NPY002 - the global generator is what is checked
    draw_seed(None)
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002 - the global generator is what is checked


def test_a_model_that_cannot_fit_fails_before_it_is_allocated(digits):
    X, y = digits
    # 64 x 200,000 + 200,000 x 2,000 float32 weights: 1.65 GB, and twice that of Adam state
    huge = _small(hidden_sizes=(200_000, 2_000), budget="1 MB")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BudgetExceededError, match="model needs 1,652,") as error:
        huge.partial_fit(X[:10], y[:10], classes=range(10))
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 200_000  # far less than the 1.65 GB the model would have taken
    assert (
        error.value.ledger.accounts["optimizer"] == 2 * error.value.ledger.accounts["model"] + 4 * 6
    )
    assert not hasattr(huge, "accountant_")


def test_the_rollback_backup_is_transient_bytes_in_the_peak(digits):
    X, y = digits
    estimator = _small(budget="16 KB").partial_fit(X[y < 5], y[y < 5], classes=range(10))
    first = estimator.accountant_.ledger()
    assert first.peak == first.total  # the first call has nothing to back up
    estimator.partial_fit(X[y >= 5], y[y >= 5])
    ledger = estimator.accountant_.ledger()
    model = estimator.learner_.model
    # the backup: every (trainable) weight and the facts' arrays (the classes, int64)
    backup = nbytes(model) + estimator.classes_.nbytes
    assert ledger.transient == 0 and ledger.peak == ledger.total + backup
    assert ledger.total <= 16_000 < ledger.peak  # the budget charges what is stored


def test_replay_exemplars_are_not_copied_by_the_backup(digits):
    X, y = digits
    estimator = _small(ReplayClassifier, budget="150 KB")
    estimator.partial_fit(X[y < 5], y[y < 5], classes=range(10))
    estimator.partial_fit(X[y >= 5], y[y >= 5])
    ledger = estimator.accountant_.ledger()
    copied = ledger.peak - ledger.total
    assert ledger.accounts["replay/exemplars"] > 50_000
    assert copied < nbytes(estimator.learner_.model) + 10_000  # weights and generator states


def test_rollback_off_keeps_no_backup(digits):
    X, y = digits
    estimator = _small(rollback="off").partial_fit(X[y < 5], y[y < 5], classes=range(10))
    estimator.partial_fit(X[y >= 5], y[y >= 5])
    ledger = estimator.accountant_.ledger()
    assert ledger.peak == ledger.total


def test_bad_input_is_rejected_before_anything_changes(digits, monkeypatch):
    X, y = digits
    estimator = _small().partial_fit(X[y < 5], y[y < 5], classes=range(10))
    taken = []
    monkeypatch.setattr("continual.estimator.Backup", lambda *a: taken.append(a))
    with pytest.raises(ValueError, match="outside the declared classes"):
        estimator.partial_fit(X[:5], np.full(5, 42))
    assert taken == []  # validation came first: no backup was even taken


def test_the_history_is_bounded_on_a_long_stream(digits):
    X, y = digits
    estimator = _small(hidden_sizes=(4,)).partial_fit(X[:8], y[:8], classes=range(10))
    estimator.accountant_.history = type(estimator.accountant_.history)(maxlen=5)
    for start in range(8, 8 * 12, 8):
        estimator.partial_fit(X[start : start + 8], y[start : start + 8])
    assert len(estimator.accountant_.history) == 5
    assert estimator.accountant_.n_snapshots == estimator.n_partial_fits_ == 12


def test_evaluate_runs_the_protocol_with_forward_scores():
    stream = split_digits(5, seed=0, flatten=True)[:3]
    matrix = _small(epochs=2).evaluate(stream)
    assert isinstance(matrix, ScoreMatrix) and matrix.matrix.shape == (3, 3)
    assert not np.isnan(matrix.matrix).any()  # every experience scored after each
    assert matrix.forward_score() == 0.0  # unseen classes are never predicted
    both = _small().evaluate(stream, metrics=["accuracy"], horizon=1)
    assert set(both) == {"accuracy"} and np.isnan(both["accuracy"].matrix[0, 2])
    with pytest.raises(ValueError, match=r"metrics \['recall'\] are not scores"):
        _small().evaluate(stream, metrics=["recall"])
