"""Long-horizon, multi-objective recall episodes for context-curation agents.

An episode asks ``K`` questions (keys) and then shows ``T`` observations, each a tool result
``(id, key, value)``. Most observations are distractors (keys nobody asked about); some update a key
seen before, so only its latest value is the answer. The agent's context has a byte budget; the
environment says nothing about models or tokens (the agent decides how its context is stored and
charged). The answer is correct only if every asked key has its latest value (strict 0/1 reward);
a partial-credit switch scores the fraction of keys right instead, for curricula.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from continual.validation import COUNT, NON_NEGATIVE_INT, Interval, check_params
from streams.experience import Experience, Stream

__all__ = ["Observation", "RecallDifficulty", "RecallEpisode", "recall_stream"]

_ID_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))


@dataclasses.dataclass(frozen=True)
class Observation:
    """One tool result of an episode: a short ``id``, a ``key`` and its ``value``.

    ``id``, ``key`` and ``value`` are non-empty strings without ``=`` or spaces (the agent
    reads ``key=value`` back from the text); otherwise ``ValueError`` (``TypeError`` for a
    field that is not a str).

    Examples
    --------
    >>> Observation("a1b2c3d4", "k3", "v7").text
    'k3=v7'
    >>> Observation("a1b2c3d4", "k3", "v7", filler="w1 w4").text
    'k3=v7 w1 w4'
    """

    id: str
    key: str
    value: str
    filler: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "key", "value", "filler"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {getattr(self, name)!r}")
        # the reader takes the text up to '=' as the key and the next word as the value
        for name in ("id", "key", "value"):
            value = getattr(self, name)
            if not value or "=" in value or any(c.isspace() for c in value):
                raise ValueError(
                    f"{name} must be a non-empty str without '=' or spaces, got {value!r}"
                )

    @property
    def text(self) -> str:
        """The result as the agent reads it: ``"key=value"``, then the filler words, if any."""
        return f"{self.key}={self.value} {self.filler}".strip()


@dataclasses.dataclass(frozen=True)
class RecallEpisode:
    """A recall task: remember the latest value of each question key under a context budget.

    Parameters
    ----------
    questions
        The asked keys (a non-empty sequence of str), in the order the answer lists them;
        each must be shown by an observation.
    observations
        The tool results (:class:`Observation`) shown one by one.
    budget
        The context budget in bytes (an int >= 1); running over it ends the episode with
        reward 0.
    partial_credit
        Whether :meth:`reward` gives the fraction of keys right instead of strict 0/1.

    Examples
    --------
    >>> obs = (Observation("aaaaaaaa", "k0", "v1"), Observation("bbbbbbbb", "k0", "v2"))
    >>> episode = RecallEpisode(("k0",), obs, budget=100)
    >>> episode.answers
    {'k0': 'v2'}
    >>> episode.reward({"k0": "v2"}), episode.reward({"k0": "v1"})
    (1.0, 0.0)
    """

    questions: tuple[str, ...]
    observations: tuple[Observation, ...]
    budget: int
    partial_credit: bool = False

    def __post_init__(self) -> None:
        questions = self.questions
        if isinstance(questions, str) or not isinstance(questions, Sequence):
            raise TypeError(f"questions must be a sequence of keys (str), got {questions!r}")
        if not questions or not all(isinstance(q, str) for q in questions):
            raise ValueError(f"questions must name at least one key (str), got {questions!r}")
        if isinstance(self.budget, bool) or not isinstance(self.budget, numbers.Integral):
            raise TypeError(f"budget must be an int of bytes, got {self.budget!r}")
        if self.budget < 1:
            raise ValueError(f"budget must be at least 1 byte, got {self.budget!r}")
        for position, observation in enumerate(self.observations):
            if not isinstance(observation, Observation):
                raise TypeError(
                    f"observations[{position}] must be an Observation, got "
                    f"{type(observation).__name__} {observation!r}"
                )
        missing = set(questions) - {o.key for o in self.observations}
        if missing:
            raise ValueError(f"questions {sorted(missing)} are never shown by the observations")

    @property
    def instruction(self) -> str:
        """The task text the agent starts from."""
        return "Remember the latest value of: " + " ".join(self.questions)

    @property
    def answers(self) -> dict[str, str]:
        """The correct answer: the latest value of every question key."""
        latest = {o.key: o.value for o in self.observations}
        return {key: latest[key] for key in self.questions}

    def reward(self, answer: Mapping[str, Any] | None, partial: bool | None = None) -> float:
        """Score an answer: 1.0 if every key is right (strict), else 0.0.

        With ``partial`` (default: the episode's ``partial_credit``) the score is the fraction of
        keys answered right. ``None`` (no answer, e.g. after a budget overflow) scores 0.
        """
        if answer is None:
            return 0.0
        if not isinstance(answer, Mapping):
            raise TypeError(f"answer must be a mapping key -> value, got {type(answer).__name__}")
        partial = self.partial_credit if partial is None else partial
        right = [answer.get(key) == value for key, value in self.answers.items()]
        return float(np.mean(right)) if partial else float(all(right))


_DIFFICULTY_CONSTRAINTS = {
    "n_questions": [COUNT],
    "n_observations": [COUNT],
    "distractor_rate": [Interval(Real, 0, 1, closed="left")],
    "budget": [COUNT],
    "n_keys": [COUNT],
    "n_values": [COUNT],
    "filler": [NON_NEGATIVE_INT],
}
_STREAM_CONSTRAINTS = {
    "n_train": [NON_NEGATIVE_INT],
    "n_test": [NON_NEGATIVE_INT],
    "seed": [NON_NEGATIVE_INT],
}


@dataclasses.dataclass(frozen=True)
class RecallDifficulty:
    """The knobs of a recall episode.

    Parameters
    ----------
    n_questions
        ``K``, the number of keys asked.
    n_observations
        ``T``, the number of tool results shown.
    distractor_rate
        Probability that an observation shows a key nobody asked about.
    budget
        Context budget in bytes. With int32 tokens (4 bytes) and the default filler, an
        observation costs 28 bytes, so the default 240 bytes cannot hold all of ``T = 10``.
    n_keys
        Size of the key vocabulary (question keys plus distractor keys); at least ``K + 1``.
    n_values
        Size of the value vocabulary.
    filler
        Filler words after ``key=value`` in every result (tool results are long, the fact in
        them is short); each costs the agent context.

    Raises
    ------
    ValueError, TypeError
        A knob out of its range or of the wrong type (numpy integers are accepted), naming
        it and its value.

    Examples
    --------
    >>> RecallDifficulty(n_questions=3).n_distractor_keys
    5
    """

    n_questions: int = 2
    n_observations: int = 10
    distractor_rate: float = 0.5
    budget: int = 240
    n_keys: int = 8
    n_values: int = 10
    filler: int = 4

    def __post_init__(self) -> None:
        check_params(_DIFFICULTY_CONSTRAINTS, dataclasses.asdict(self), "RecallDifficulty")
        if self.n_observations < self.n_questions:
            raise ValueError(
                f"n_observations must be at least n_questions={self.n_questions}, "
                f"got {self.n_observations}"
            )
        if self.n_keys <= self.n_questions:
            raise ValueError(
                f"n_keys must be an int above n_questions={self.n_questions}, got {self.n_keys!r}"
            )

    @property
    def n_distractor_keys(self) -> int:
        """Keys that are never asked."""
        return self.n_keys - self.n_questions

    def sample(self, rng: np.random.Generator, partial_credit: bool = False) -> RecallEpisode:
        """Draw one episode with ``rng``.

        The question keys are drawn from ``k0 .. k{n_keys-1}``; every question key is shown at
        least once, the rest of the observations show a distractor key with probability
        ``distractor_rate``, else a question key again (a superseding update). IDs are 8
        random characters, unique within the episode.
        """
        keys = np.array([f"k{i}" for i in range(self.n_keys)])
        order = rng.permutation(self.n_keys)
        questions, distractors = keys[order[: self.n_questions]], keys[order[self.n_questions :]]
        shown = list(questions)
        for _ in range(self.n_observations - self.n_questions):
            pool = distractors if rng.random() < self.distractor_rate else questions
            shown.append(pool[rng.integers(len(pool))])
        shown = [shown[i] for i in rng.permutation(len(shown))]
        ids: set[str] = set()
        observations = []
        for key in shown:
            new_id = "".join(rng.choice(_ID_ALPHABET, size=8))
            while new_id in ids:
                new_id = "".join(rng.choice(_ID_ALPHABET, size=8))
            ids.add(new_id)
            value = f"v{rng.integers(self.n_values)}"
            filler = " ".join(f"w{w}" for w in rng.integers(100, size=self.filler))
            observations.append(Observation(new_id, str(key), value, filler))
        return RecallEpisode(
            tuple(str(q) for q in questions), tuple(observations), int(self.budget), partial_credit
        )


def recall_stream(
    difficulties: RecallDifficulty | Mapping[str, Any] | Sequence[Any] = RecallDifficulty(),
    *,
    n_train: int = 64,
    n_test: int = 64,
    partial_credit: bool = False,
    seed: int = 0,
) -> Stream:
    """A stream of recall experiences, one per difficulty (a curriculum when they grow).

    Each experience's ``train`` and ``test`` payloads are tuples of :class:`RecallEpisode`;
    its metadata holds the difficulty as a dict.

    Parameters
    ----------
    difficulties
        One difficulty, or a sequence of them (one experience each, in order); a mapping is
        read as the keyword arguments of a :class:`RecallDifficulty` (as in Hydra configs).
    n_train, n_test
        Episodes per experience for training and for held-out evaluation.
    partial_credit
        Default scoring of the episodes (see :meth:`RecallEpisode.reward`).
    seed
        Seed of every random draw (an int >= 0); equal seeds give equal streams.

    Raises
    ------
    ValueError, TypeError
        ``n_train``, ``n_test`` or ``seed`` not an int >= 0 (numpy integers are accepted),
        or ``difficulties`` neither a difficulty nor a non-empty sequence of them.

    Examples
    --------
    >>> stream = recall_stream(RecallDifficulty(n_questions=2, n_observations=6), n_train=3,
    ...                        n_test=2, seed=0)
    >>> stream
    Stream(name='recall', n_experiences=1, seed=0)
    >>> len(stream[0].train), len(stream[0].test), len(stream[0].train[0].observations)
    (3, 2, 6)
    >>> stream[0].train[0] == recall_stream(RecallDifficulty(n_observations=6), n_train=3,
    ...                                     n_test=2, seed=0)[0].train[0]
    True
    """
    check_params(
        _STREAM_CONSTRAINTS, {"n_train": n_train, "n_test": n_test, "seed": seed}, "recall_stream"
    )
    levels = _difficulties(difficulties)
    rng = np.random.default_rng(seed)
    experiences = []
    for index, difficulty in enumerate(levels):
        train = tuple(difficulty.sample(rng, partial_credit) for _ in range(n_train))
        test = tuple(difficulty.sample(rng, partial_credit) for _ in range(n_test))
        metadata = {"difficulty": dataclasses.asdict(difficulty)}
        experiences.append(Experience(index, train, test, metadata))
    return Stream(experiences, name="recall", seed=seed)


def _difficulties(difficulties: Any) -> list[RecallDifficulty]:
    """``difficulties`` as a non-empty list of :class:`RecallDifficulty`."""
    if isinstance(difficulties, (RecallDifficulty, Mapping)):
        difficulties = [difficulties]
    if isinstance(difficulties, Sequence) and not isinstance(difficulties, (str, bytes)):
        levels = [RecallDifficulty(**d) if isinstance(d, Mapping) else d for d in difficulties]
        if levels and all(isinstance(d, RecallDifficulty) for d in levels):
            return levels
    raise TypeError(
        "difficulties must be a RecallDifficulty, a mapping of its keyword arguments, or a "
        f"non-empty sequence of them, got {difficulties!r}"
    )
