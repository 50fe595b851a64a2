"""StreamingClassifier: a river classifier under the byte budget."""

import copy
import functools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from river import checks, compose, datasets, drift, evaluate, metrics, preprocessing, utils

from continual import BudgetExceededError
from continual.checks import assert_same_state, check_estimator
from strategies import StreamingClassifier
from strategies import streaming as streaming_module
from streams import class_incremental

SMALL = {"hidden_sizes": (8,), "batch_size": 4, "refill_every": 2}


def key_bytes(key):
    """A map key's payload as the docstring states it, plus an int64 position."""
    if isinstance(key, bool):
        return 1 + 8
    if isinstance(key, int):
        return 8 + 8
    return len(key.encode()) + 8


def expected_fixed_bytes(n_features, names, labels, hidden=8, rows=8):
    """Bytes of everything but the store, from the shapes (float32 weights, Adam's two
    moments and a float32 step per tensor, float32 rows with int64 labels, map payloads)."""
    weights = n_features * hidden + hidden + hidden * len(labels) + len(labels)
    return {
        "model": 4 * weights,
        "optimizer": 2 * 4 * weights + 4 * 4,
        "buffer": rows * (4 * n_features + 8),
        "features": sum(key_bytes(name) for name in names),
        "classes": sum(key_bytes(label) for label in labels),
        "inference": 0,
    }


def sea(n, seed=1):
    return list(datasets.synth.SEA(seed=seed).take(n))


def named_sea(n, seed=1):
    """SEA with string feature names (river's mini-batch transformers need them)."""
    return [({f"x{k}": v for k, v in x.items()}, y) for x, y in sea(n, seed)]


def scaled(stream):
    """SEA's features (0 to 10) brought near unit scale, without a river pipeline."""
    return [({k: v / 10 for k, v in x.items()}, y) for x, y in stream]


def fitted(n=200, **params):
    clf = StreamingClassifier(**{**SMALL, "random_state": 0, **params})
    for x, y in scaled(sea(n)):
        clf.learn_one(x, y)
    return clf


# ------------------------------------------------------------------------ ledger
def test_ledger_matches_independent_byte_count():
    clf = fitted(300, budget="4 KB")
    accounts = clf.accountant_.ledger().accounts
    expected = expected_fixed_bytes(3, [0, 1, 2], [False, True])
    assert {name: accounts[name] for name in expected} == expected
    n_stored = len(clf.store_)
    assert n_stored > 0
    assert accounts["replay/exemplars"] == n_stored * (3 * 4 + 1)  # float32 row, uint8 label
    assert sum(accounts.values()) == clf.accountant_.total() <= 4000


def test_budget_holds_after_every_sample_while_features_and_classes_grow():
    clf = StreamingClassifier(budget="3 KB", **SMALL, random_state=0)
    rng = np.random.default_rng(0)
    totals = []
    for i in range(600):
        n_features = 3 if i < 200 else 6  # three new features at sample 200
        x = {f"f{j}": float(v) for j, v in enumerate(rng.normal(size=n_features))}
        y = int(x["f0"] > 0) + (2 if i >= 400 and x["f1"] > 0 else 0)  # new classes at 400
        clf.learn_one(x, y)
        totals.append(clf.accountant_.ledger().total)
    assert max(totals) <= 3000
    assert len(clf.features_) == 6 and sorted(clf.classes_) == [0, 1, 2, 3]
    assert clf.store_.x.shape[1] == 6  # stored rows were widened with zeros
    assert max(totals[150:]) > 2900  # the store spends the headroom


def test_wider_rows_shorten_the_buffer_and_no_sample_is_lost():
    clf = StreamingClassifier(budget="64 KB", hidden_sizes=(8,), batch_size=4, random_state=0)
    rng = np.random.default_rng(0)
    for i in range(300):
        width = 2 if i < 150 else 100  # 98 new features at sample 150
        x = {f"f{j}": float(v) for j, v in enumerate(rng.normal(size=width))}
        clf.learn_one(x, int(x["f0"] > 0))
        if i == 149:
            assert clf.refill_every_ == 16  # 16 steps of 4 rows of 16 bytes: under 2,000
        assert clf.accountant_.ledger().total <= 64_000
    assert clf.refill_every_ == 1  # a step of 4 rows of 408 bytes is already over 2,000
    assert clf.store_.n_seen + clf.pending_.n == clf.n_samples_seen_ == 300


def test_budget_too_small_for_the_model_fails_before_allocating(monkeypatch):
    def no_model(*args, **kwargs):
        pytest.fail("the model was allocated although the plan does not fit")

    monkeypatch.setattr(streaming_module, "MLP", no_model)
    clf = StreamingClassifier(budget=500, hidden_sizes=(64,), random_state=0)
    with pytest.raises(BudgetExceededError, match="model needs 1,284 bytes"):
        clf.learn_one({"a": 1.0, "b": 2.0, "c": 3.0}, True)
    assert not hasattr(clf, "accountant_")
    assert clf.predict_proba_one({"a": 1.0}) == {}


def test_growth_that_cannot_fit_raises_and_changes_nothing():
    fixed = sum(expected_fixed_bytes(3, [0, 1, 2], [False, True]).values())
    clf = fitted(64, budget=fixed + 130)  # room for 10 stored rows of 13 bytes
    before = copy.deepcopy(clf)
    # ten new features need 10 * 8 * 4 model bytes and twice that in Adam: far over
    with pytest.raises(BudgetExceededError, match="growing to 13 features"):
        clf.learn_one({**{j: 0.5 for j in range(3)}, **{f"new{j}": 1.0 for j in range(10)}}, True)
    assert_same_state(clf, before)
    assert clf.features_ == [0, 1, 2] and clf.model_.body[1].in_features == 3
    assert len(clf.store_) == len(before.store_) == 10


# ----------------------------------------------------------------------- growth
def test_unseen_feature_gets_zero_weight_and_prediction_does_not_jump():
    clf = fitted(41)  # 41 = 10 steps of 4, one sample pending: the next learn_one won't step
    x = {0: 0.3, 1: 0.9, 2: 0.1}
    before = clf.predict_proba_one(x)
    clf.learn_one({**x, "new": 5.0}, True)
    assert clf.n_steps_ == 10
    assert clf.features_[-1] == "new"
    assert torch.equal(clf.model_.body[1].weight[:, -1], torch.zeros(8))
    assert clf.predict_proba_one({**x, "new": 5.0}) == pytest.approx(before, rel=1e-6)
    assert clf.predict_proba_one({**x, "never seen": 1e6}) == before  # ignored: weight 0


def test_new_class_adds_a_zero_head_row_and_ledger_shows_it():
    clf = fitted(41)
    ledger = clf.accountant_.ledger().accounts
    x = {0: 0.3, 1: 0.9, 2: 0.1}
    before = clf.predict_proba_one(x)
    clf.learn_one(x, "new class")
    after = clf.predict_proba_one(x)
    head = clf.model_.head
    assert head.out_features == 3 and clf.classes_[-1] == "new class"
    assert torch.equal(head.weight[2], torch.zeros(8)) and head.bias[2] == 0
    assert math.isclose(after[False] / after[True], before[False] / before[True], rel_tol=1e-6)
    grown = clf.accountant_.ledger().accounts
    assert grown["model"] - ledger["model"] == 4 * (8 + 1)
    assert grown["optimizer"] - ledger["optimizer"] == 2 * 4 * (8 + 1)
    assert grown["classes"] - ledger["classes"] == len("new class") + 8


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ({0: float("nan"), 1: 0.5, 2: 0.5}, True, r"x\[0\] must be a finite number, got nan"),
        ({0: "red", 1: 0.5, 2: 0.5}, True, r"x\[0\] must be a number, got 'red'"),
        ({0: 0.5, 1: 0.5, 2: 0.5}, None, "y must be a class label, got None"),
        ({"brand new": float("inf")}, "brand new class", r"x\['brand new'\] must be a finite"),
    ],
)
def test_bad_sample_raises_and_leaves_the_model_unchanged(x, y, message):
    clf = fitted(43)
    before = copy.deepcopy(clf)
    with pytest.raises(ValueError, match=message):
        clf.learn_one(x, y)
    assert_same_state(clf, before)
    assert clf.n_samples_seen_ == 43 and clf.pending_.n == before.pending_.n


def test_bad_first_sample_leaves_the_estimator_unfitted():
    clf = StreamingClassifier(random_state=0)
    with pytest.raises(ValueError, match="must be a finite number"):
        clf.learn_one({"a": float("nan")}, 1)
    assert not hasattr(clf, "accountant_")


def test_bad_row_in_learn_many_rolls_back_the_whole_batch():
    clf = fitted(40)
    before = copy.deepcopy(clf)
    X = pd.DataFrame({0: [0.1, 0.2], 1: [0.3, np.nan], 2: [0.5, 0.6]})
    with pytest.raises(ValueError, match=r"X\[1\] must hold finite numbers, got nan in row 1"):
        clf.learn_many(X, pd.Series([True, False]))
    assert_same_state(clf, before)


# ------------------------------------------------------------------ river tools
def test_river_tools_work_unchanged():
    model = compose.Pipeline(
        preprocessing.StandardScaler(), StreamingClassifier(**SMALL, random_state=0)
    )
    accuracy, rolling, log_loss = (
        metrics.Accuracy(),
        utils.Rolling(metrics.Accuracy, window_size=300),
        metrics.LogLoss(),
    )
    evaluate.progressive_val_score(named_sea(1500), model, metrics.Accuracy())
    for x, y in named_sea(600, seed=2):
        log_loss.update(y, model.predict_proba_one(x))
        accuracy.update(y, model.predict_one(x))
        rolling.update(y, model.predict_one(x))
        model.learn_one(x, y)
    assert accuracy.get() > 0.9 and rolling.get() > 0.9 and log_loss.get() < 0.3
    X = pd.DataFrame([x for x, _ in named_sea(50, seed=3)])
    y = pd.Series([y for _, y in named_sea(50, seed=3)])
    model.learn_many(X, y)
    assert list(model.predict_proba_many(X).columns) == model["StreamingClassifier"].classes_
    assert (model.predict_many(X) == y).mean() > 0.8


def test_predict_proba_one_is_empty_before_learning():
    clf = StreamingClassifier()
    assert clf.predict_proba_one({"a": 1.0}) == {} and clf.predict_one({"a": 1.0}) is None
    assert clf.predict_proba_many(pd.DataFrame({"a": [1.0]})).empty


RIVER_MODEL = StreamingClassifier(budget="64 KB", **SMALL, random_state=42)


@pytest.mark.parametrize("check", list(checks.yield_checks(RIVER_MODEL)), ids=lambda c: c.__name__)
def test_river_estimator_checks(check):
    check(RIVER_MODEL.clone())


def test_sklearn_clone_and_params():
    from sklearn.base import clone

    clf = StreamingClassifier(budget="8 KB", drift_detector=drift.ADWIN(), random_state=3)
    twin = clone(clf)
    assert twin.get_params()["budget"] == "8 KB" and twin.drift_detector is not clf.drift_detector
    assert clf.clone()._get_params() == clf._get_params()


# ---------------------------------------------------------------- reproducibility
def test_random_state_reproduces_and_seeds_differ():
    first, second = fitted(300, random_state=7), fitted(300, random_state=7)
    assert_same_state(first, second)
    x = {0: 0.4, 1: 0.2, 2: 0.7}
    assert first.predict_proba_one(x) == second.predict_proba_one(x)
    assert fitted(300, random_state=8).predict_proba_one(x) != first.predict_proba_one(x)


def test_budgeted_estimator_contract():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    stream = class_incremental(X, y, n_experiences=2, test=(X, y), seed=0)
    make = functools.partial(StreamingClassifier, budget="6 KB", **SMALL)
    check_estimator(make, stream)


def test_partial_fit_takes_arrays_and_dict_rows_like_learn_one():
    rows = scaled(sea(64))
    X = np.array([[x[k] for k in range(3)] for x, _ in rows])
    y = np.array([label for _, label in rows])
    from_array = StreamingClassifier(**SMALL, random_state=0).partial_fit(X, y)
    from_dicts = StreamingClassifier(**SMALL, random_state=0).partial_fit(
        [x for x, _ in rows], list(y)
    )
    one_by_one = StreamingClassifier(**SMALL, random_state=0)
    for x, label in rows:
        one_by_one.learn_one(x, label)
    assert_same_state(from_array, from_dicts)
    x = {0: 0.2, 1: 0.5, 2: 0.9}
    assert from_array.predict_proba_one(x) == one_by_one.predict_proba_one(x)
    assert len(from_array.losses_) == 16 and from_array.score(X, y) > 0.5


def test_checkpoint_round_trip_with_a_detector_class(tmp_path):
    from continual import load, save

    clf = fitted(120, drift_detector=drift.ADWIN)
    loaded = load(save(clf, tmp_path / "streaming.safetensors"))
    assert_same_state(loaded, clf)
    assert isinstance(loaded.drift_detector_, drift.ADWIN)
    for x, y in scaled(sea(40, seed=5)):
        loaded.learn_one(x, y)
        clf.learn_one(x, y)
    assert_same_state(loaded, clf)


# -------------------------------------------------------------- drift and store
def flipping_stream(n, flip_at, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = {"a": float(rng.uniform(-1, 1)), "b": float(rng.uniform(-1, 1))}
        yield x, (x["a"] > 0) != (i >= flip_at)


def stored_after_flip(clf):
    """Fraction of the stored samples whose label follows the flipped concept."""
    a = clf.store_.x[:, clf.features_.index("a")].numpy()
    labels = np.asarray(clf.classes_)[clf.store_.y.numpy()]
    return float(np.mean(labels != (a > 0)))


def test_drift_detector_counts_drifts_boosts_the_rate_and_refreshes_the_store():
    clf = StreamingClassifier(
        **SMALL,
        budget="3 KB",
        lr=0.01,
        drift_detector=drift.ADWIN(),
        drift_boost_steps=10_000,
        random_state=0,
    )
    for x, y in flipping_stream(3000, flip_at=1500):
        clf.learn_one(x, y)
    assert clf.n_drifts_ >= 1 and len(clf.drifts_) == clf.n_drifts_
    assert 1500 < clf.drifts_[0] < 2200
    assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01 * 3.0)
    assert clf.drift_detector_ is not clf.drift_detector  # the parameter is left untouched
    # a reservoir over the whole stream would hold half of each concept (a uniform sample);
    # restarted at the drift, it holds mostly the new one
    assert stored_after_flip(clf) > 0.75


def test_without_a_detector_nothing_is_detected_and_the_store_is_uniform():
    clf = StreamingClassifier(**SMALL, budget="3 KB", random_state=0)
    for x, y in flipping_stream(3000, flip_at=1500):
        clf.learn_one(x, y)
    assert clf.n_drifts_ == 0 and clf.drifts_ == []
    assert stored_after_flip(clf) == pytest.approx(0.5, abs=0.1)


def test_class_balanced_store_keeps_equal_quotas():
    clf = StreamingClassifier(budget="2 KB", **SMALL, policy="class_balanced", random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        clf.learn_one(x, "rare" if rng.random() < 0.1 else "common")
    counts = list(clf.store_.class_counts().values())
    assert len(counts) == 2 and max(counts) - min(counts) <= 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"batch_size": 0}, r"'batch_size' parameter .* int in the range \[1, inf\). Got 0 "),
        ({"policy": "herding"}, "'policy' parameter .* str among .* Got 'herding' "),
        ({"hidden_sizes": (8, -1)}, r"'hidden_sizes' parameter .* ints >= 1. Got \(8, -1\) "),
        ({"lr": -1.0}, r"'lr' parameter .* float in the range \(0.0, inf\). Got -1.0 "),
        ({"lr": float("nan")}, "'lr' parameter .* Got nan "),
        ({"drift_lr_boost": float("inf")}, "'drift_lr_boost' parameter .* Got inf "),
        ({"drift_detector": dict}, "'drift_detector' parameter .* Got <class 'dict'> "),
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        StreamingClassifier(**params).learn_one({"a": 1.0}, 0)
