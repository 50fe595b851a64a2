"""Fuzzing MemoryAsAction and its episodes: every generated input gets a clear error that
changes nothing, or a valid result."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from strategies.memact import MemoryAsAction, read_answer
from strategies.memact.working_memory import Message, WorkingMemory
from streams.episodes import Observation, RecallDifficulty, RecallEpisode, recall_stream
from tests.bad_inputs import fails_cleanly
from tests.bad_inputs.memact import TINY, _fitted, _train

FUZZ = settings(max_examples=20)  # the rest from the 'ci' profile (conftest.py)

#: For the tests that train nothing.
CHEAP = settings(FUZZ, max_examples=50)

#: Numbers around every boundary, small enough that a valid one trains in a blink.
NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, 0.5, 1.0, 2.0, 1e-3]),
    st.integers(-2, 3),
    st.integers(-2, 3).map(np.int64),
    st.floats(-3, 3).map(np.float32),
    st.booleans(),
)
ODDITIES = st.one_of(st.none(), st.text(max_size=4), st.just([1]), st.just(object()))
NUMERIC = [
    "bc_epochs",
    "bc_lr",
    "n_updates",
    "group_size",
    "episodes_per_update",
    "segments_per_group",
    "lr",
    "clip",
    "kl_coef",
    "ppo_epochs",
    "explore_fraction",
    "d_model",
    "n_layers",
]
NAMED = ["teacher", "final_mask", "mode", "normalize_std", "partial", "context_budget", "plugins"]


def _accepted(result):
    """Whether the call returned (recorded in hypothesis's statistics)."""
    event("refused" if isinstance(result, Exception) else "accepted")
    return not isinstance(result, Exception)


def _fitted_or_error(result, n_partial_fits):
    if _accepted(result):
        assert result.n_partial_fits_ == n_partial_fits
        assert all(math.isfinite(loss) for loss in result.losses_)


@FUZZ
@given(name=st.sampled_from(NUMERIC), value=NUMBERS)
def test_fit_with_any_number_fails_cleanly_or_fits(name, value):
    model = MemoryAsAction(**{**TINY, name: value})
    _fitted_or_error(fails_cleanly(model, lambda m: m.fit(_train())), 1)


@FUZZ
@given(name=st.sampled_from(NAMED), value=st.one_of(ODDITIES, NUMBERS))
def test_fit_with_any_setting_fails_cleanly_or_fits(name, value):
    model = MemoryAsAction(**{**TINY, name: value})
    _fitted_or_error(fails_cleanly(model, lambda m: m.fit(_train())), 1)


@FUZZ
@given(name=st.sampled_from(NUMERIC + NAMED), value=st.one_of(ODDITIES, NUMBERS))
def test_partial_fit_after_set_params_fails_cleanly_or_learns(name, value):
    model = _fitted().set_params(**{name: value})
    _fitted_or_error(fails_cleanly(model, lambda m: m.partial_fit(_train())), 2)


JUNK = st.one_of(
    ODDITIES,
    st.integers(),
    st.builds(SimpleNamespace, questions=st.just(("k0",))),
    st.builds(SimpleNamespace, index=st.integers(0, 2), train=st.just(()), test=st.just(())),
    # every field an episode has, holding junk
    st.builds(
        SimpleNamespace,
        questions=st.just(("k0",)),
        observations=st.lists(ODDITIES, min_size=1, max_size=2),
        instruction=st.one_of(st.text(max_size=3), st.integers()),
        budget=st.integers(1, 100),
        reward=st.none(),
    ),
)


@FUZZ
@given(episodes=st.one_of(JUNK, st.lists(JUNK, max_size=3), st.lists(JUNK, max_size=2).map(tuple)))
def test_partial_fit_and_score_on_junk_fail_cleanly(episodes):
    model = _fitted()
    result = fails_cleanly(model, lambda m: m.partial_fit(episodes))
    assert isinstance(result, Exception)  # nothing here is an episode
    result = fails_cleanly(model, lambda m: m.score(episodes))
    assert isinstance(result, Exception)


@FUZZ
@given(
    y=st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=2)),
    keyword=st.sampled_from(["sample_weight", "classes", "episodes"]),
)
def test_partial_fit_takes_no_targets_and_no_keywords(y, keyword):
    model = _fitted()
    assert isinstance(fails_cleanly(model, lambda m: m.partial_fit(_train(), y)), ValueError)
    error = fails_cleanly(model, lambda m: m.partial_fit(_train(), **{keyword: y}))
    assert isinstance(error, TypeError) and keyword in str(error)


@FUZZ
@given(budget=st.one_of(st.integers(-4, 80), st.text(max_size=4), st.sampled_from([math.nan, 1.5])))
def test_any_context_budget_fails_cleanly_or_fits_under_it(budget):
    model = MemoryAsAction(**TINY, context_budget=budget)
    result = fails_cleanly(model, lambda m: m.fit(_train()))
    if _accepted(result):
        # one question, one filler word: TOOL, BOS Q k, key value FILL ID, NOOP = 9 tokens
        assert result.trainer_.context_budget >= 4 * 9


SIZES = st.one_of(st.integers(-1, 6), st.integers(-1, 6).map(np.int64), NUMBERS, ODDITIES)


@CHEAP
@given(
    knobs=st.dictionaries(
        st.sampled_from(["n_questions", "n_observations", "n_keys", "filler", "budget"]),
        SIZES,
        max_size=3,
    ),
    rate=st.one_of(st.floats(0, 1), st.floats(allow_nan=True), ODDITIES),
    n_train=SIZES,
    seed=SIZES,
)
def test_recall_stream_fails_cleanly_or_follows_its_difficulty(knobs, rate, n_train, seed):
    difficulty = {"n_observations": 6, **knobs, "distractor_rate": rate}
    result = fails_cleanly(None, lambda _: recall_stream(difficulty, n_train=n_train, seed=seed))
    if not _accepted(result):
        return
    level = RecallDifficulty(**difficulty)
    assert len(result[0].train) == n_train and len(result[0].test) == 64
    for episode in result[0].train:
        assert len(episode.questions) == level.n_questions
        assert len(episode.observations) == level.n_observations
        assert episode.budget == level.budget


#: Short texts, often valid, with the characters that break a ``key=value`` result.
WORDS = st.one_of(st.text("kv01=é \t", max_size=4), st.text(max_size=3))


@CHEAP
@given(
    item=st.one_of(st.just("aaaaaaaa"), WORDS),
    key=st.one_of(st.just("k0"), WORDS),
    value=WORDS,
    filler=st.one_of(st.just(""), WORDS, st.integers()),
)
def test_an_accepted_observation_is_read_back_as_it_was_written(item, key, value, filler):
    result = fails_cleanly(None, lambda _: Observation(item, key, value, filler))
    if not _accepted(result):
        return
    memory = WorkingMemory([Message("tool", result.text, id=result.id)])
    assert read_answer(memory, [key]) == {key: value}


@CHEAP
@given(
    questions=st.one_of(st.text(max_size=3), st.lists(st.sampled_from(["k0", "k1", 0]))),
    budget=st.one_of(st.integers(-2, 3), NUMBERS, ODDITIES),
    extra=st.one_of(st.none(), st.text(max_size=3), st.integers()),
)
def test_recall_episode_fails_cleanly_or_can_be_answered(questions, budget, extra):
    shown = (Observation("aaaaaaaa", "k0", "v1"), Observation("bbbbbbbb", "k1", "v2"))
    observations = shown if extra is None else (*shown, extra)
    result = fails_cleanly(None, lambda _: RecallEpisode(questions, observations, budget))
    if _accepted(result):
        assert result.reward(result.answers) == 1.0 and result.budget >= 1


@pytest.mark.parametrize("part", ["train", "test"])
def test_a_stream_without_episodes_of_a_part_names_it(part):
    empty = recall_stream(RecallDifficulty(), n_train=0, n_test=0)
    call = (lambda m: m.partial_fit(empty)) if part == "train" else (lambda m: m.score(empty))
    error = fails_cleanly(_fitted(), call)
    assert isinstance(error, ValueError) and f"no {part} episodes" in str(error)
