"""Heuristic curators: their rules, and their results under one budget."""

import numpy as np
import pytest

from strategies.memact import (
    CURATORS,
    CurationState,
    Mem0Curator,
    Message,
    QueriedKeysCurator,
    RecencyCurator,
    WorkingMemory,
    evaluate_policy,
    make_curator,
)
from streams.episodes import RecallDifficulty, recall_stream


def _memory(*pairs):
    return WorkingMemory(
        [Message("user", "task")]
        + [Message("tool", f"{key}=v{i} w1", id=f"i{i}") for i, key in enumerate(pairs)]
    )


def _deleted(turn):
    return turn.calls[0].arguments["delete_ids"] if turn.calls else []


def test_queried_keys_deletes_distractors_and_superseded_values():
    curator = QueriedKeysCurator()
    assert _deleted(curator.act(CurationState(_memory("k1", "k2"), questions=["k1"]))) == ["i1"]
    assert _deleted(curator.act(CurationState(_memory("k1", "k2", "k1"), questions=["k1"]))) == [
        "i0"
    ]
    assert _deleted(curator.act(CurationState(_memory("k2", "k1"), questions=["k1"]))) == []


def test_mem0_updates_repeated_keys_and_deletes_oldest_when_short():
    curator = Mem0Curator()
    assert _deleted(curator.act(CurationState(_memory("k2", "k1", "k2")))) == ["i0"]
    assert _deleted(curator.act(CurationState(_memory("k2", "k1"), headroom=10_000))) == []
    assert _deleted(curator.act(CurationState(_memory("k2", "k1"), headroom=1))) == ["i0"]


def test_fifo_and_recency():
    fifo = make_curator("fifo")
    assert _deleted(fifo.act(CurationState(_memory("k1", "k2"), headroom=10_000))) == []
    assert _deleted(fifo.act(CurationState(_memory("k1", "k2"), headroom=1))) == ["i0"]
    recency = RecencyCurator()  # window = questions + 1 = 2
    state = CurationState(_memory("k1", "k2", "k3"), questions=["k9"], headroom=10_000)
    assert _deleted(recency.act(state)) == ["i0"]
    assert _deleted(RecencyCurator(window=3).act(state)) == []


def test_unknown_curator_name():
    with pytest.raises(ValueError, match=r"curator must be one of .* got 'lru'"):
        make_curator("lru")


def test_curators_under_one_budget():
    difficulty = RecallDifficulty(n_questions=2, n_observations=10, budget=240)
    episodes = recall_stream(difficulty, n_train=0, n_test=40, seed=1)[0].test
    results = {name: evaluate_policy(make_curator(name), episodes) for name in CURATORS}
    # keep-everything needs 20 + 10 * (28 + 4) = 340 bytes: it always overflows
    assert results["keep_everything"]["overflow"] == 1.0
    assert results["keep_everything"]["success"] == 0.0
    assert results["queried_keys"]["success"] == 1.0
    assert results["queried_keys"]["overflow"] == 0.0
    for name in ("fifo", "recency", "mem0"):
        assert 0.0 < results[name]["success"] < 1.0, name
    # the oracle-like curator keeps the smallest context
    smallest = min(results, key=lambda n: results[n]["bytes_per_step"])
    assert smallest == "queried_keys"
    for result in results.values():  # int32 tokens: 4 bytes each
        assert np.isclose(result["bytes_per_step"], 4 * result["tokens_per_step"])
