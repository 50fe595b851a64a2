import dataclasses

import numpy as np
import pytest

from streams import Stream
from streams.episodes import Observation, RecallDifficulty, RecallEpisode, recall_stream


def test_stream_of_experiences_is_seeded_and_reproducible():
    levels = [RecallDifficulty(n_questions=2), RecallDifficulty(n_questions=4, budget=300)]
    stream = recall_stream(levels, n_train=5, n_test=3, seed=7)
    again = recall_stream(levels, n_train=5, n_test=3, seed=7)
    other = recall_stream(levels, n_train=5, n_test=3, seed=8)
    assert isinstance(stream, Stream) and len(stream) == 2
    assert [len(e.train) for e in stream] == [5, 5] and [len(e.test) for e in stream] == [3, 3]
    assert stream[1].metadata["difficulty"] == dataclasses.asdict(levels[1])
    assert all(a.train == b.train for a, b in zip(stream, again))
    assert stream[0].train != other[0].train
    assert {len(ep.questions) for ep in stream[1].train} == {4}
    assert {ep.budget for ep in stream[1].test} == {300}


def test_episode_structure_follows_the_difficulty():
    difficulty = RecallDifficulty(
        n_questions=3, n_observations=40, distractor_rate=0.7, n_keys=10, filler=2
    )
    rng = np.random.default_rng(0)
    episodes = [difficulty.sample(rng) for _ in range(50)]
    for episode in episodes:
        ids = [o.id for o in episode.observations]
        assert len(ids) == 40 and len(set(ids)) == 40 and {len(i) for i in ids} == {8}
        assert set(episode.questions) <= {o.key for o in episode.observations}
        assert all(len(o.filler.split()) == 2 for o in episode.observations)
        latest = {}
        for o in episode.observations:
            latest[o.key] = o.value
        assert episode.answers == {k: latest[k] for k in episode.questions}
    shown = [o.key for e in episodes for o in e.observations[3:]]
    asked = {k for e in episodes for k in e.questions}
    distractor_share = np.mean([o.key not in e.questions for e in episodes for o in e.observations])
    assert 0.55 < distractor_share < 0.75  # 37 of 40 draws at rate 0.7
    assert len(shown) and asked
    updates = sum(
        len([o for o in e.observations if o.key == k]) > 1 for e in episodes for k in e.questions
    )
    assert updates > 0  # superseding updates happen


def test_reward_is_strict_with_a_partial_credit_switch():
    obs = (
        Observation("aaaaaaaa", "k0", "v1"),
        Observation("bbbbbbbb", "k1", "v2"),
        Observation("cccccccc", "k0", "v3"),
    )
    strict = RecallEpisode(("k0", "k1"), obs, budget=100)
    partial = dataclasses.replace(strict, partial_credit=True)
    assert strict.answers == {"k0": "v3", "k1": "v2"}
    assert strict.reward({"k0": "v3", "k1": "v2"}) == 1.0
    assert strict.reward({"k0": "v1", "k1": "v2"}) == 0.0
    assert partial.reward({"k0": "v1", "k1": "v2"}) == 0.5
    assert strict.reward({"k0": "v1", "k1": "v2"}, partial=True) == 0.5
    assert strict.reward(None) == partial.reward(None) == 0.0
    assert strict.instruction == "Remember the latest value of: k0 k1"
    assert obs[0].text == "k0=v1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_questions": 0}, "n_questions must be a positive int, got 0"),
        ({"n_observations": 1}, "n_observations must be at least n_questions=2, got 1"),
        ({"n_keys": 2}, "n_keys must be an int above n_questions=2, got 2"),
        ({"distractor_rate": 1.0}, r"distractor_rate must be in \[0, 1\), got 1.0"),
        ({"budget": "10KB"}, "budget must be a positive int, got '10KB'"),
        ({"filler": -1}, "filler must be a non-negative int, got -1"),
    ],
)
def test_bad_difficulties(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RecallDifficulty(**kwargs)


def test_bad_episodes_and_stream_arguments():
    obs = (Observation("aaaaaaaa", "k0", "v1"),)
    with pytest.raises(ValueError, match="observations never show the question keys \\['k9'\\]"):
        RecallEpisode(("k9",), obs, budget=10)
    with pytest.raises(ValueError, match="questions must name at least one key"):
        RecallEpisode((), obs, budget=10)
    with pytest.raises(TypeError, match=r"budget must be an int of bytes, got 1\.5"):
        RecallEpisode(("k0",), obs, budget=1.5)
    with pytest.raises(TypeError, match="answer must be a mapping"):
        RecallEpisode(("k0",), obs, budget=10).reward(["v1"])
    with pytest.raises(TypeError, match="difficulties must be a RecallDifficulty"):
        recall_stream([], n_train=1)
    with pytest.raises(ValueError, match="n_test must be a non-negative int, got -1"):
        recall_stream(n_test=-1)
