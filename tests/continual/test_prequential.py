"""Tests for continual.prequential: test-then-train evaluation and its memory curve."""

import json

import numpy as np
import pytest
from river import evaluate, metrics, tree
from river import stream as river_stream
from river.datasets import synth
from sklearn.linear_model import SGDClassifier

from continual.evaluation import prequential
from continual.measure import PythonGraph, nbytes
from continual.river import Budgeted


def small_tree():
    return tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3)


def test_prequential_matches_rivers_progressive_validation():
    for metric in (metrics.Accuracy(), metrics.LogLoss()):
        expected = evaluate.progressive_val_score(
            synth.SEA(seed=1).take(1500), small_tree(), metric.clone()
        )
        result = prequential(small_tree(), synth.SEA(seed=1), metrics=metric, take=1500)
        name = type(metric).__name__
        assert result.scores[name][-1] == pytest.approx(expected.get())
        assert result.samples == list(range(100, 1501, 100))


def test_prequential_windowed_score_is_the_accuracy_of_the_last_window():
    hits, model = [], small_tree()
    for x, y in synth.SEA(seed=4).take(700):
        hits.append(model.predict_one(x) == y if model.predict_one(x) is not None else None)
        model.learn_one(x, y)
    result = prequential(small_tree(), synth.SEA(seed=4), take=700, every=250, window=200)
    assert result.samples == [250, 500, 700]
    for n, windowed, cumulative in zip(
        result.samples, result.window_scores["Accuracy"], result.scores["Accuracy"]
    ):
        tested = [hit for hit in hits[:n] if hit is not None]
        assert windowed == pytest.approx(np.mean(tested[-200:]))
        assert cumulative == pytest.approx(np.mean(tested))


def test_prequential_memory_comes_from_the_accountant_or_the_python_graph():
    model = small_tree()
    plain = prequential(model, synth.SEA(seed=1), take=300, every=300)
    assert plain.memory == [nbytes(PythonGraph(model))] and plain.budget is None
    budgeted = Budgeted(small_tree(), "60 kB", check_every=10)
    result = prequential(budgeted, synth.SEA(seed=1), take=3000, every=500)
    assert result.budget == 60_000 and max(result.memory) <= 60_000
    assert result.memory[-1] == budgeted.accountant_.total()


def test_prequential_on_mini_batches_with_partial_fit():
    X = np.random.default_rng(0).normal(size=(230, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    expected_model, hits = SGDClassifier(random_state=0), []
    for start in range(0, 230, 40):
        chunk = slice(start, start + 40)
        if start:
            hits.extend(expected_model.predict(X[chunk]) == y[chunk])
        expected_model.partial_fit(X[chunk], y[chunk], classes=[0, 1])
    model = SGDClassifier(random_state=0)
    result = prequential(model, (X, y), batch_size=40, every=100, classes=[0, 1])
    assert result.samples == [120, 200, 230]  # recorded when a chunk passes 100, 200, the end
    assert result.scores["Accuracy"][-1] == pytest.approx(np.mean(hits))
    pairs = [({"a": a, "b": b, "c": c}, label) for (a, b, c), label in zip(X.tolist(), y)]
    same = prequential(SGDClassifier(random_state=0), pairs, batch_size=40, classes=[0, 1])
    assert same.scores["Accuracy"][-1] == pytest.approx(np.mean(hits))
    np.testing.assert_array_equal(model.coef_, expected_model.coef_)


def test_prequential_gives_river_estimators_dict_rows_from_arrays():
    X = np.random.default_rng(1).normal(size=(300, 2))
    y = X[:, 0] > 0
    from_arrays = prequential(small_tree(), (X, y), every=300)
    pairs = river_stream.iter_array(X, y)
    assert from_arrays.scores == prequential(small_tree(), pairs, every=300).scores


def test_prequential_regressor_defaults_to_mae():
    result = prequential(tree.HoeffdingTreeRegressor(), synth.Friedman(seed=1), take=200)
    assert list(result.scores) == ["MAE"] and result.scores["MAE"][-1] > 0


def test_prequential_reads_drifts_from_the_stream_or_the_argument():
    stream = synth.ConceptDriftStream(
        synth.SEA(seed=1, variant=0), synth.SEA(seed=1, variant=3), position=150, width=20
    )
    assert prequential(small_tree(), stream, take=300).drifts == [(150, 20)]
    given = prequential(small_tree(), stream, take=300, drifts=[250, (100, 10)])
    assert given.drifts == [(100, 10), (250, 0)]


def test_prequential_result_to_dict_is_json_and_plots(tmp_path):
    stream = synth.ConceptDriftStream(
        synth.SEA(seed=1, variant=0), synth.SEA(seed=1, variant=3), position=600, width=50
    )
    model = Budgeted(small_tree(), "60 kB", check_every=20)
    result = prequential(model, stream, take=1200, every=200, window=300)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["drifts"] == [[600, 50]] and data["samples"] == result.samples
    assert set(data) == {
        "samples",
        "scores",
        "window_scores",
        "memory",
        "window",
        "drifts",
        "budget",
    }
    path = tmp_path / "prequential.png"
    figure = result.plot(path)
    assert path.read_bytes().startswith(b"\x89PNG")
    top, bottom = figure.axes
    assert bottom.get_ylabel() == "memory (kB)" and bottom.get_xlabel() == "samples seen"
    labels = [text.get_text() for text in top.get_legend().get_texts()]
    assert labels == ["Accuracy", "Accuracy, last 300 samples", "drift"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every": 0}, ValueError, "every must be a positive int, got 0"),
        ({"window": 2.5}, ValueError, "window must be a positive int, got 2.5"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int or None, got 0"),
        ({"take": -1}, ValueError, "take must be a positive int or None, got -1"),
        ({"metrics": "Accuracy"}, TypeError, "metrics must be a river metric .* got 'Accuracy'"),
        ({"metrics": [metrics.Accuracy(), 3]}, TypeError, r"metrics\[1\] must be a river metric"),
        ({"metrics": {}}, ValueError, "metrics must name at least one river metric"),
        ({"drifts": [-5]}, ValueError, r"drifts\[0\] must be a sample position"),
    ],
)
def test_prequential_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        prequential(small_tree(), [({"a": 1.0}, True)], **kwargs)


def test_prequential_rejects_bad_estimators_and_streams():
    with pytest.raises(TypeError, match="without learn_one, predict_one; pass batch_size="):
        prequential(SGDClassifier(), [({"a": 1.0}, 1)])
    with pytest.raises(TypeError, match="without partial_fit, predict; pass batch_size=None"):
        prequential(small_tree(), [({"a": 1.0}, 1)], batch_size=10)
    with pytest.raises(ValueError, match=r"dataset SEA is an endless stream .* pass take="):
        prequential(small_tree(), synth.SEA(seed=1))
    with pytest.raises(TypeError, match=r"stream must yield \(x, y\) pairs, got 3 at sample 1"):
        prequential(small_tree(), [({"a": 1.0}, True), 3])
    with pytest.raises(TypeError, match="stream must be an iterable"):
        prequential(small_tree(), 42)
    with pytest.raises(ValueError, match="stream must yield at least one"):
        prequential(small_tree(), [])
    with pytest.raises(ValueError, match="as many labels as rows, got 3 rows and 2 labels"):
        prequential(small_tree(), (np.zeros((3, 2)), np.zeros(2)))
