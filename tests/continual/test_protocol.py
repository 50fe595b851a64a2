"""The evaluation protocol: every experience scored after each, forward scores, resuming."""

from types import SimpleNamespace

import numpy as np
import pytest

from continual import ScoreMatrix, evaluate_stream


def _stream(n=4):
    return [SimpleNamespace(index=i, train=i, test=i) for i in range(n)]


class Memory:
    """Learns experience indices; scores 1 for a learned one, 0.5 for the next, 0 otherwise."""

    def __init__(self):
        self.learned = []

    def learn(self, experience):
        self.learned.append(experience.index)

    def score(self, j):
        last = self.learned[-1]
        return {"hit": 1.0 if j <= last else 0.5 if j == last + 1 else 0.0, "miss": float(j)}


def test_every_entry_is_scored_and_forward_scores_sit_above_the_diagonal():
    memory = Memory()
    scores = evaluate_stream(_stream(), memory.learn, lambda j: memory.score(j)["hit"])
    expected = np.tril(np.ones((4, 4))) + np.diag(np.full(3, 0.5), k=1)
    np.testing.assert_array_equal(scores.matrix, expected)
    assert scores.forward_score() == 0.5 and memory.learned == [0, 1, 2, 3]


def test_mapping_scores_give_one_matrix_per_metric_and_a_horizon_limits_them():
    memory = Memory()
    scores = evaluate_stream(
        _stream(), memory.learn, memory.score, horizon=1, higher_is_better={"miss": False}
    )
    assert set(scores) == {"hit", "miss"} and scores["miss"].higher_is_better is False
    assert np.isnan(scores["hit"].matrix[0, 2]) and scores["hit"].matrix[0, 1] == 0.5


def test_a_resumed_run_fills_the_same_matrix():
    memory = Memory()
    full = evaluate_stream(_stream(), memory.learn, lambda j: memory.score(j)["hit"])
    partial = ScoreMatrix(4)
    memory = Memory()
    calls = []
    evaluate_stream(
        _stream()[:2], memory.learn, lambda j: memory.score(j)["hit"], after_experience=calls.append
    )
    for i in range(2):
        for j in range(4):
            if j < 2:
                partial.record(i, j, 1.0 if j <= i else 0.5)
    resumed = evaluate_stream(
        _stream(), memory.learn, lambda j: memory.score(j)["hit"], start=2, scores=partial
    )
    np.testing.assert_array_equal(resumed.matrix[2:], full.matrix[2:])
    assert calls == [0, 1] and memory.learned == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon": -1}, "horizon must be a non-negative int or None, got -1"),
        ({"start": 2}, "start must be in"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate_stream(_stream(), lambda e: None, lambda j: 0.0, **kwargs)


def test_a_stream_without_test_payloads_is_named():
    stream = [SimpleNamespace(index=0, train=0, test=None)]
    with pytest.raises(ValueError, match=r"experiences \[0\] have test=None"):
        evaluate_stream(stream, lambda e: None, lambda j: 0.0)
