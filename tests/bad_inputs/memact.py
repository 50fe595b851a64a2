"""Bad-input cases: Memory-as-Action (the estimator, its recall episodes and their stream)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch

from continual import Plugin
from strategies import MemoryAsAction
from strategies.memact import WorkingMemory
from streams import Observation, RecallDifficulty, RecallEpisode, recall_stream
from tests.bad_inputs import Case

#: The smallest settings that train: one warm-start epoch and one DCPO update of two rollouts.
TINY = {
    "bc_epochs": 1,
    "n_updates": 1,
    "group_size": 2,
    "episodes_per_update": 1,
    "segments_per_group": 2,
    "d_model": 8,
    "n_layers": 1,
    "random_state": 0,
}
LEVEL = RecallDifficulty(n_questions=1, n_observations=3, n_keys=3, filler=1, budget=200)
OBSERVATIONS = (Observation("aaaaaaaa", "k0", "v1"), Observation("bbbbbbbb", "k1", "v2"))


@cache
def _stream() -> Any:
    return recall_stream(LEVEL, n_train=2, n_test=2, seed=0)


def _train() -> tuple[RecallEpisode, ...]:
    return _stream()[0].train


@cache
def _fitted_once(**params: Any) -> MemoryAsAction:
    return MemoryAsAction(**{**TINY, **params}).fit(_train())


def _fitted() -> MemoryAsAction:
    return copy.deepcopy(_fitted_once())


def _same_fit(**python_numbers: Any) -> Callable[[MemoryAsAction], None]:
    """Checks a fit with numpy scalars against the fit with the same Python numbers."""

    def check(model: MemoryAsAction) -> None:
        expected = _fitted_once(**python_numbers)
        assert model.n_partial_fits_ == 1
        assert model.bc_losses_ == expected.bc_losses_, (model.bc_losses_, expected.bc_losses_)
        assert model.losses_ == expected.losses_, (model.losses_, expected.losses_)
        pairs = zip(model.policy_.parameters(), expected.policy_.parameters(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs), "the weights differ"

    return check


def _fit_with(
    name: str, value: Any, mentions: tuple[str, ...] | None = None, label: str | None = None
) -> Case:
    """Fit an unfitted estimator whose parameter ``name`` is ``value`` (shown as ``label``)."""
    shown = repr(value) if isinstance(value, str) else str(value)
    label = repr(value) if label is None else label
    return Case(
        f"MemoryAsAction({name}={label})",
        lambda model: model.fit(_train()),
        (name, shown) if mentions is None else mentions,
        subject=lambda: MemoryAsAction(**{**TINY, name: value}),
    )


def _refit_with(name: str, value: Any, mentions: tuple[str, ...] | None = None) -> Case:
    """``set_params(name=value)`` on a fitted estimator, then ``partial_fit``."""
    return Case(
        f"fitted MemoryAsAction.set_params({name}={value!r}).partial_fit",
        lambda model: model.set_params(**{name: value}).partial_fit(_train()),
        (name, str(value)) if mentions is None else mentions,
        subject=_fitted,
    )


class _Recorder(Plugin):
    pass


_PARAMETERS = [
    _fit_with("mode", "sgd"),
    _fit_with("teacher", "oracle"),
    _fit_with("teacher", 3),
    _fit_with("final_mask", "none"),
    _fit_with("clip", math.nan),
    _fit_with("clip", math.inf),
    _fit_with("clip", 0.0),
    _fit_with("clip", -0.2),
    _fit_with("lr", math.nan),
    _fit_with("lr", math.inf),
    _fit_with("lr", 0.0),
    _fit_with("lr", -0.001),
    _fit_with("lr", "0.001"),
    _fit_with("bc_lr", math.nan),
    _fit_with("bc_lr", -math.inf),
    _fit_with("bc_lr", 0),
    _fit_with("kl_coef", math.nan),
    _fit_with("kl_coef", math.inf),
    _fit_with("kl_coef", -0.001),
    _fit_with("explore_fraction", 1.5),
    _fit_with("explore_fraction", -0.1),
    _fit_with("explore_fraction", math.nan),
    _fit_with("group_size", 0),
    _fit_with("group_size", 1),
    _fit_with("group_size", 2.0),
    _fit_with("n_updates", -1),
    _fit_with("n_updates", 1.5),
    _fit_with("bc_epochs", -1),
    _fit_with("ppo_epochs", 0),
    _fit_with("ppo_epochs", 1.0),
    _fit_with("episodes_per_update", 0),
    _fit_with("segments_per_group", 0),
    _fit_with("d_model", 0),
    _fit_with("d_model", 8.0),
    _fit_with("d_model", 18),
    _fit_with("n_layers", 0),
    _fit_with("n_layers", 1.5),
    _fit_with("normalize_std", "yes"),
    _fit_with("partial", "no"),
    _fit_with("context_budget", "lots"),
    _fit_with("context_budget", -5),
    _fit_with("context_budget", math.nan),
    # 20 bytes cannot hold an instruction with its first tool result: nothing to learn
    _fit_with("context_budget", 20),
    _fit_with("context_budget", "20B", ("context_budget", "20")),
    _fit_with("plugins", [3], ("plugins[0]", "3")),
    _fit_with("plugins", "_Recorder", ("plugins", "_Recorder")),
    _fit_with("plugins", [_Recorder()], ("plugins[0]", "_Recorder"), "[_Recorder()]"),
    _fit_with("plugins", [dict], ("plugins[0]", "Plugin"), "[dict]"),
    _fit_with("budget", 1_000, ("budget", "1000")),
    _fit_with("budget", "lots", ("budget", "lots")),
    _fit_with("random_state", "seed", ("random_state", "seed")),
    _fit_with("rollback", "maybe", ("rollback", "maybe")),
    _refit_with("lr", math.nan),
    _refit_with("mode", "sgd"),
    _refit_with("group_size", 0),
    _refit_with("context_budget", 20),
]

_EPISODES = [
    Case(
        "MemoryAsAction.fit([])",
        lambda model: model.fit([]),
        ("episodes", "none"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "MemoryAsAction.fit([1, 2])",
        lambda model: model.fit([1, 2]),
        ("episodes[0]", "int"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "MemoryAsAction.fit(3)",
        lambda model: model.fit(3),
        ("episodes", "int"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "MemoryAsAction.fit('episodes')",
        lambda model: model.fit("episodes"),
        ("episodes", "str"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "MemoryAsAction.fit(episodes, y=[1])",
        lambda model: model.fit(_train(), [1]),
        ("y", "[1]"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "MemoryAsAction.fit(a stream without training episodes)",
        lambda model: model.fit(recall_stream(LEVEL, n_train=0, n_test=1)),
        ("train", "episodes"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "MemoryAsAction.fit(episodes whose own budget cannot hold one step)",
        lambda model: model.fit(recall_stream({**vars(LEVEL), "budget": 8}, n_train=2, n_test=0)),
        ("budget", "8"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "fitted MemoryAsAction.partial_fit([object()])",
        lambda model: model.partial_fit([object()]),
        ("episodes[0]", "object"),
        subject=_fitted,
    ),
    Case(
        "fitted MemoryAsAction.partial_fit([])",
        lambda model: model.partial_fit([]),
        ("episodes", "none"),
        subject=_fitted,
    ),
    Case(
        "fitted MemoryAsAction.partial_fit(episodes, y=[0, 1])",
        lambda model: model.partial_fit(_train(), [0, 1]),
        ("y", "[0, 1]"),
        subject=_fitted,
    ),
]

_SCORING = [
    Case(
        "MemoryAsAction().score(episodes) before fit",
        lambda model: model.score(_train()),
        ("not fitted", "MemoryAsAction"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "MemoryAsAction().curate(memory) before fit",
        lambda model: model.curate(WorkingMemory()),
        ("not fitted", "MemoryAsAction"),
        subject=lambda: MemoryAsAction(**TINY),
    ),
    Case(
        "fitted MemoryAsAction.score([])",
        lambda model: model.score([]),
        ("episodes", "none"),
        subject=_fitted,
    ),
    Case(
        "fitted MemoryAsAction.score([None])",
        lambda model: model.score([None]),
        ("episodes[0]", "NoneType"),
        subject=_fitted,
    ),
    Case(
        "fitted MemoryAsAction.score(a stream without test episodes)",
        lambda model: model.score(recall_stream(LEVEL, n_train=1, n_test=0)),
        ("test", "episodes"),
        subject=_fitted,
    ),
    Case(
        "fitted MemoryAsAction.curate([])",
        lambda model: model.curate([]),
        ("memory", "list"),
        subject=_fitted,
    ),
    Case(
        "fitted MemoryAsAction.curate(WorkingMemory())",
        lambda model: model.curate(WorkingMemory()),
        ("memory", "empty"),
        subject=_fitted,
    ),
]

_STREAMS = [
    Case("recall_stream(n_train=-1)", lambda _: recall_stream(n_train=-1), ("n_train", "-1")),
    Case("recall_stream(n_train=1.5)", lambda _: recall_stream(n_train=1.5), ("n_train", "1.5")),
    Case("recall_stream('hard')", lambda _: recall_stream("hard"), ("difficulties", "'hard'")),
    Case("recall_stream([])", lambda _: recall_stream([]), ("difficulties", "[]")),
    Case("recall_stream(3)", lambda _: recall_stream(3), ("difficulties", "3")),
    Case("recall_stream(seed=-1)", lambda _: recall_stream(seed=-1), ("seed", "-1")),
    Case("recall_stream(seed='x')", lambda _: recall_stream(seed="x"), ("seed", "'x'")),
    Case("recall_stream(seed=0.5)", lambda _: recall_stream(seed=0.5), ("seed", "0.5")),
    Case(
        "recall_stream({'n_questions': 0})",
        lambda _: recall_stream({"n_questions": 0}),
        ("n_questions", "0"),
    ),
    Case(
        "recall_stream({'levels': 3})",
        lambda _: recall_stream({"levels": 3}),
        ("levels",),
    ),
    Case(
        "RecallDifficulty(n_questions=1.5)",
        lambda _: RecallDifficulty(n_questions=1.5),
        ("n_questions", "1.5"),
    ),
    Case(
        "RecallDifficulty(n_observations=1)",
        lambda _: RecallDifficulty(n_observations=1),
        ("n_observations", "1"),
    ),
    Case(
        "RecallDifficulty(distractor_rate=nan)",
        lambda _: RecallDifficulty(distractor_rate=math.nan),
        ("distractor_rate", "nan"),
    ),
    Case(
        "RecallDifficulty(distractor_rate=1.0)",
        lambda _: RecallDifficulty(distractor_rate=1.0),
        ("distractor_rate", "1.0"),
    ),
    Case(
        "RecallDifficulty(distractor_rate='0.5')",
        lambda _: RecallDifficulty(distractor_rate="0.5"),
        ("distractor_rate", "'0.5'"),
    ),
    Case("RecallDifficulty(n_keys=2)", lambda _: RecallDifficulty(n_keys=2), ("n_keys", "2")),
    Case("RecallDifficulty(n_keys=8.5)", lambda _: RecallDifficulty(n_keys=8.5), ("n_keys", "8.5")),
    Case("RecallDifficulty(budget=0)", lambda _: RecallDifficulty(budget=0), ("budget", "0")),
    Case("RecallDifficulty(filler=-1)", lambda _: RecallDifficulty(filler=-1), ("filler", "-1")),
    Case("RecallDifficulty(n_values=0)", lambda _: RecallDifficulty(n_values=0), ("n_values", "0")),
    Case(
        "RecallEpisode(questions=())",
        lambda _: RecallEpisode((), OBSERVATIONS, 100),
        ("questions", "()"),
    ),
    Case(
        "RecallEpisode(questions='k0')",
        lambda _: RecallEpisode("k0", OBSERVATIONS, 100),
        ("questions", "'k0'"),
    ),
    Case(
        "RecallEpisode(questions=('k9',))",
        lambda _: RecallEpisode(("k9",), OBSERVATIONS, 100),
        ("questions", "k9"),
    ),
    Case(
        "RecallEpisode(budget=-1)",
        lambda _: RecallEpisode(("k0",), OBSERVATIONS, -1),
        ("budget", "-1"),
    ),
    Case(
        "RecallEpisode(budget=100.0)",
        lambda _: RecallEpisode(("k0",), OBSERVATIONS, 100.0),
        ("budget", "100.0"),
    ),
    Case(
        "RecallEpisode(observations=('k0=v1',))",
        lambda _: RecallEpisode(("k0",), ("k0=v1",), 100),
        ("observations[0]", "str"),
    ),
    Case(
        "RecallEpisode.reward('v1')",
        lambda _: RecallEpisode(("k0",), OBSERVATIONS, 100).reward("v1"),
        ("answer", "str"),
    ),
    Case(
        "Observation(value='v 1')",
        lambda _: Observation("aaaaaaaa", "k0", "v 1"),
        ("value", "'v 1'"),
    ),
    Case("Observation(value='')", lambda _: Observation("aaaaaaaa", "k0", ""), ("value", "''")),
    Case(
        "Observation(key='k=0')", lambda _: Observation("aaaaaaaa", "k=0", "v1"), ("key", "'k=0'")
    ),
    Case("Observation(id=1)", lambda _: Observation(1, "k0", "v1"), ("id", "1")),
    Case("Observation(id='')", lambda _: Observation("", "k0", "v1"), ("id", "''")),
]


def _numpy_fit(name: str, numpy_params: dict[str, Any], python_params: dict[str, Any]) -> Case:
    return Case(
        name,
        lambda model: model.fit(_train()),
        subject=lambda: MemoryAsAction(**{**TINY, **numpy_params}),
        valid=_same_fit(**python_params),
    )


def _same_stream(stream: Any) -> None:
    expected = recall_stream(LEVEL, n_train=2, n_test=1, seed=3)
    assert len(stream) == 1 and stream[0].train == expected[0].train
    assert stream[0].test == expected[0].test


def _same_episode(episode: RecallEpisode) -> None:
    expected = RecallDifficulty(n_questions=2, budget=120).sample(np.random.default_rng(0))
    assert episode == expected and type(episode.budget) is int


_NUMPY = [
    _numpy_fit(
        "MemoryAsAction(n_updates=np.int64(1), group_size=np.int64(2), ...) fits as with ints",
        {k: np.int64(v) for k, v in TINY.items()},
        {},
    ),
    _numpy_fit(
        "MemoryAsAction(lr=np.float32(0.001), bc_lr=np.float32(0.003)) fits as with floats",
        {"lr": np.float32(0.001), "bc_lr": np.float32(0.003), "clip": np.float64(0.2)},
        {"lr": float(np.float32(0.001)), "bc_lr": float(np.float32(0.003)), "clip": 0.2},
    ),
    _numpy_fit(
        "MemoryAsAction(explore_fraction=np.float64(0.5), context_budget=np.int64(200)) fits",
        {"explore_fraction": np.float64(0.5), "context_budget": np.int64(200)},
        {"explore_fraction": 0.5, "context_budget": 200},
    ),
    Case(
        "recall_stream(n_train=np.int64(2), n_test=np.int64(1), seed=np.int64(3))",
        lambda _: recall_stream(LEVEL, n_train=np.int64(2), n_test=np.int64(1), seed=np.int64(3)),
        valid=_same_stream,
    ),
    Case(
        "RecallDifficulty(n_questions=np.int64(2), budget=np.int64(120)).sample",
        lambda _: RecallDifficulty(n_questions=np.int64(2), budget=np.int64(120)).sample(
            np.random.default_rng(0)
        ),
        valid=_same_episode,
    ),
]

CASES: list[Case] = [*_PARAMETERS, *_EPISODES, *_SCORING, *_STREAMS, *_NUMPY]
