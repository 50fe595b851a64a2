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
        ({"n_questions": 0}, r"'n_questions' .* RecallDifficulty .* \[1, inf\)\. Got 0 instead"),
        ({"n_observations": 1}, "n_observations must be at least n_questions=2, got 1"),
        ({"n_keys": 2}, "n_keys must be an int above n_questions=2, got 2"),
        ({"distractor_rate": 1.0}, r"'distractor_rate' .* \[0\.0, 1\.0\)\. Got 1\.0 instead"),
        ({"distractor_rate": float("nan")}, r"'distractor_rate' .* Got nan instead"),
        ({"budget": "10KB"}, r"'budget' .* \[1, inf\)\. Got '10KB' instead"),
        ({"filler": -1}, r"'filler' .* \[0, inf\)\. Got -1 instead"),
    ],
)
def test_bad_difficulties(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RecallDifficulty(**kwargs)


def test_numpy_integers_give_the_same_episodes():
    level = RecallDifficulty(n_questions=np.int64(2), budget=np.int64(120), filler=np.int32(1))
    expected = recall_stream(RecallDifficulty(n_questions=2, budget=120, filler=1), n_train=2)
    stream = recall_stream(level, n_train=np.int64(2), n_test=np.int64(64), seed=np.int64(0))
    assert stream[0].train == expected[0].train and stream[0].test == expected[0].test
    assert {type(episode.budget) for episode in stream[0].train} == {int}


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        (("aaaaaaaa", "k0", "v 1"), ValueError, "value must be a non-empty str .* got 'v 1'"),
        (("aaaaaaaa", "k0", ""), ValueError, "value must be a non-empty str .* got ''"),
        (("aaaaaaaa", "k=0", "v1"), ValueError, "key must be a non-empty str .* got 'k=0'"),
        (("", "k0", "v1"), ValueError, "id must be a non-empty str .* got ''"),
        ((7, "k0", "v1"), TypeError, "id must be a str, got 7"),
    ],
)
def test_bad_observations(fields, error, message):
    with pytest.raises(error, match=message):
        Observation(*fields)


def test_bad_episodes_and_stream_arguments():
    obs = (Observation("aaaaaaaa", "k0", "v1"),)
    with pytest.raises(ValueError, match=r"questions \['k9'\] are never shown by the observat"):
        RecallEpisode(("k9",), obs, budget=10)
    with pytest.raises(ValueError, match="questions must name at least one key"):
        RecallEpisode((), obs, budget=10)
    with pytest.raises(TypeError, match=r"questions must be a sequence of keys .*, got 'k0'"):
        RecallEpisode("k0", obs, budget=10)
    with pytest.raises(TypeError, match=r"observations\[1\] must be an Observation, got str"):
        RecallEpisode(("k0",), (*obs, "k0=v2"), budget=10)
    with pytest.raises(TypeError, match=r"budget must be an int of bytes, got 1\.5"):
        RecallEpisode(("k0",), obs, budget=1.5)
    with pytest.raises(ValueError, match="budget must be at least 1 byte, got 0"):
        RecallEpisode(("k0",), obs, budget=0)
    with pytest.raises(TypeError, match="answer must be a mapping"):
        RecallEpisode(("k0",), obs, budget=10).reward(["v1"])
    with pytest.raises(TypeError, match="difficulties must be a RecallDifficulty"):
        recall_stream([], n_train=1)
    with pytest.raises(TypeError, match=r"difficulties must be a RecallDifficulty.*got 'hard'"):
        recall_stream("hard")
    with pytest.raises(ValueError, match=r"'n_test' .* recall_stream .* \[0, inf\)\. Got -1 inst"):
        recall_stream(n_test=-1)
    with pytest.raises(ValueError, match=r"'seed' parameter of recall_stream .* Got -1 instead"):
        recall_stream(seed=-1)


def test_a_stream_may_hold_no_test_episodes():
    stream = recall_stream(RecallDifficulty(), n_train=2, n_test=0)
    assert len(stream[0].train) == 2 and stream[0].test == ()
