"""Tests for continual.river: river estimators under a byte budget, and river stream facts."""

import math
import random

import pytest
from river import (
    base,
    checks,
    compose,
    evaluate,
    forest,
    linear_model,
    metrics,
    neighbors,
    preprocessing,
    tree,
)
from river.datasets import synth

from continual import BudgetExceededError, MemoryAccountant
from continual.measure import PythonGraph, nbytes
from continual.river import (
    Budgeted,
    BudgetedClassifier,
    BudgetedRegressor,
    check_finite_stream,
    drift_points,
)


def grown_tree():
    return tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3)


def learn(model, dataset, n):
    for x, y in dataset.take(n):
        model.learn_one(x, y)
    return model


def snapshots(model):
    return [snapshot.ledger.total for snapshot in model.accountant_.history]


# ------------------------------------------------------------------------------ the wrapper


def test_budgeted_is_a_river_estimator_of_the_kind_it_wraps():
    classifier = Budgeted(tree.HoeffdingTreeClassifier(), "1 MB")
    regressor = Budgeted(tree.HoeffdingTreeRegressor(), "1 MB")
    assert isinstance(classifier, BudgetedClassifier) and isinstance(classifier, Budgeted)
    assert isinstance(classifier, base.Classifier) and not isinstance(classifier, base.Regressor)
    assert isinstance(regressor, BudgetedRegressor) and isinstance(regressor, base.Regressor)
    assert Budgeted(model=tree.HoeffdingTreeClassifier(), budget=None).budget is None
    pipeline = preprocessing.StandardScaler() | tree.HoeffdingTreeClassifier()
    assert isinstance(Budgeted(pipeline, "1 MB"), BudgetedClassifier)


def test_budgeted_refuses_what_it_cannot_wrap():
    with pytest.raises(TypeError, match=r"model must be a river classifier or regressor.*Scaler"):
        Budgeted(preprocessing.StandardScaler(), "1 MB")
    with pytest.raises(TypeError, match="model must be a river classifier, got Hoeffding"):
        BudgetedClassifier(tree.HoeffdingTreeRegressor(), "1 MB")
    with pytest.raises(ValueError, match="check_every must be a positive int, got 0"):
        Budgeted(tree.HoeffdingTreeClassifier(), "1 MB", check_every=0)
    with pytest.raises(ValueError, match="budget"):
        Budgeted(tree.HoeffdingTreeClassifier(), "a lot")


def test_ledger_shows_the_model_account_measured_as_a_python_graph():
    model = Budgeted(grown_tree(), "1 MB", check_every=100)
    learn(model, synth.SEA(seed=1), 1000)
    ledger = model.accountant_.ledger()
    assert list(ledger.accounts) == ["model"]
    assert ledger.accounts["model"] == nbytes(PythonGraph(model.model))
    assert ledger.budget == 1_000_000
    assert [s.step for s in model.accountant_.history] == list(range(0, 1001, 100))
    assert model.n_learned_ == 1000


def test_wrapper_predicts_as_the_model_it_wraps():
    wrapped = learn(Budgeted(grown_tree(), None, check_every=50), synth.SEA(seed=2), 1500)
    alone = learn(grown_tree(), synth.SEA(seed=2), 1500)
    for x, _ in synth.SEA(seed=3).take(200):
        assert wrapped.predict_one(x) == alone.predict_one(x)
        assert wrapped.predict_proba_one(x) == alone.predict_proba_one(x)


# ------------------------------------------------------------------------ growth is stopped


def test_tree_stops_growing_within_its_budget():
    unbounded = learn(grown_tree(), synth.SEA(seed=1), 3000)
    assert nbytes(PythonGraph(unbounded)) > 120_000  # what the budget would have cost
    model = learn(Budgeted(grown_tree(), "60 kB", check_every=10), synth.SEA(seed=1), 3000)
    assert max(snapshots(model)) <= 60_000
    assert 1 < model.model.n_leaves < unbounded.n_leaves
    assert not model.model._growth_allowed  # river's own flag: no more splits
    accuracy = evaluate.progressive_val_score(
        synth.SEA(seed=9).take(1000), model, metrics.Accuracy()
    )
    assert accuracy.get() > 0.85  # it keeps learning its leaves' statistics


def categories(n, seed=1):
    """A stream whose nominal feature takes ever new values: a leaf's split statistics grow
    with every new value, split or not."""
    rng = random.Random(seed)
    for _ in range(n):
        a = rng.random()
        yield {"a": a, "c": f"category {rng.randrange(2000)}"}, a > 0.5


def test_leaves_are_deactivated_when_the_budget_is_passed():
    def nominal_tree():
        return tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3, nominal_attributes=["c"])

    unbounded = nominal_tree()
    for x, y in categories(3000):
        unbounded.learn_one(x, y)
    assert nbytes(PythonGraph(unbounded)) > 200_000
    model = Budgeted(nominal_tree(), "60 kB", check_every=20)
    for x, y in categories(3000):
        model.learn_one(x, y)
    assert max(snapshots(model)) <= 60_000
    assert model.model.n_inactive_leaves > 0
    assert model.model.n_active_leaves + model.model.n_inactive_leaves == model.model.n_leaves
    assert model.predict_one({"a": 0.9, "c": "category 1"}) is True


def test_regression_tree_stays_within_its_budget():
    model = Budgeted(tree.HoeffdingTreeRegressor(grace_period=50), "60 kB", check_every=20)
    learn(model, synth.Friedman(seed=1), 1000)
    assert max(snapshots(model)) <= 60_000
    assert math.isfinite(model.predict_one(dict.fromkeys(range(10), 0.5)))


def test_forest_stays_within_its_budget():
    unbounded = learn(forest.ARFClassifier(n_models=3, seed=1), synth.SEA(seed=1), 2000)
    assert nbytes(PythonGraph(unbounded)) > 600_000
    model = Budgeted(forest.ARFClassifier(n_models=3, seed=1), "300 kB", check_every=25)
    learn(model, synth.SEA(seed=1), 2000)
    assert max(snapshots(model)) <= 300_000
    trees = list(model.model)  # the forest is a list of its trees
    assert trees and not any(t._growth_allowed for t in trees)


def test_nearest_neighbour_window_stops_growing():
    knn = neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=1000))
    model = learn(Budgeted(knn, "50 kB"), synth.SEA(seed=1), 800)
    window = knn._nn.window
    assert max(snapshots(model)) <= 50_000
    assert 10 < len(window) < 800 and window.maxlen == knn._nn.window_size == len(window)
    last = list(synth.SEA(seed=1).take(800))[-1]
    assert window[-1][0] == (last[0], last[1])  # the newest samples are kept


def test_a_model_river_cannot_cap_raises_with_the_ledger():
    model = Budgeted(linear_model.LinearRegression(), 3_000)
    with pytest.raises(BudgetExceededError, match=r"LinearRegression after \d+ samples") as error:
        for i in range(200):
            model.learn_one({f"feature {i}": 1.0}, 1.0)
    assert list(error.value.ledger.accounts) == ["model"]
    assert error.value.over > 0 and error.value.ledger.budget == 3_000


def test_a_budget_smaller_than_the_untrained_model_fails_at_once():
    with pytest.raises(BudgetExceededError, match="HoeffdingTreeClassifier after 0 samples"):
        Budgeted(tree.HoeffdingTreeClassifier(), 100)


def test_a_model_that_cannot_fit_even_stopped_raises():
    knn = neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=100))
    model = Budgeted(knn, "6 kB")
    wide = {i: float(i) + 0.5 for i in range(300)}  # one sample is larger than the budget
    with pytest.raises(BudgetExceededError, match="after 1 samples with its growth stopped"):
        model.learn_one(wide, True)
    assert len(knn._nn.window) == 1


# ------------------------------------------------------------------------------ river tools


@pytest.mark.parametrize("cls", [BudgetedClassifier, BudgetedRegressor])
def test_river_estimator_checks(cls):
    for params in cls._unit_test_params():
        checks.check_estimator(cls(**params))


def test_progressive_validation_and_pipelines_work():
    model = compose.Pipeline(
        preprocessing.StandardScaler(), Budgeted(grown_tree(), "60 kB", check_every=10)
    )
    score = evaluate.progressive_val_score(synth.SEA(seed=1).take(2000), model, metrics.Accuracy())
    assert score.get() > 0.85
    budgeted = model.steps["BudgetedClassifier"]
    assert budgeted.n_learned_ == 2000 and max(snapshots(budgeted)) <= 60_000


def test_clone_is_fresh_with_its_own_accountant():
    model = learn(Budgeted(grown_tree(), "1 MB", check_every=100), synth.SEA(seed=1), 500)
    clone = model.clone()
    assert isinstance(clone, BudgetedClassifier) and clone.n_learned_ == 0
    assert clone.accountant_ is not model.accountant_
    assert isinstance(clone.accountant_, MemoryAccountant)
    assert clone.model.n_nodes is None and clone.check_every == 100  # never learned


def test_learn_many_for_mini_batch_models_only():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = pd.Series([False, True, True, True])
    model = Budgeted(linear_model.LogisticRegression(), "1 MB", check_every=4)
    model.learn_many(X, y)
    assert model.n_learned_ == 4 and len(model.accountant_.history) == 2
    assert list(model.predict_proba_many(X).columns) == [False, True]
    with pytest.raises(NotImplementedError, match="HoeffdingTreeClassifier has no learn_many"):
        Budgeted(tree.HoeffdingTreeClassifier(), "1 MB").learn_many(X, y)


# --------------------------------------------------------------------------- stream facts


def test_check_finite_stream_names_the_argument_and_the_dataset():
    with pytest.raises(ValueError, match=r"dataset Agrawal is an endless .* pass limit=<"):
        check_finite_stream(synth.Agrawal(seed=1), None, argument="limit")
    check_finite_stream(synth.Agrawal(seed=1), 10)
    check_finite_stream(iter([]), None)  # no n_samples: trusted


def test_drift_points_of_nested_concept_drift_streams():
    inner = synth.ConceptDriftStream(
        synth.SEA(seed=1, variant=1), synth.SEA(seed=1, variant=2), position=300, width=10
    )
    before = synth.ConceptDriftStream(
        synth.SEA(seed=1, variant=0), synth.SEA(seed=1, variant=3), position=100, width=4
    )
    outer = synth.ConceptDriftStream(before, inner, position=1000, width=50)
    assert drift_points(outer) == [(100, 4), (1000, 50), (1300, 10)]
    assert drift_points(synth.SEA(seed=1)) == [] == drift_points([({"a": 1}, 0)])
