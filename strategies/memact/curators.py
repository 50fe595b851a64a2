"""Heuristic context curators: the baselines (and demonstrators) run under the same budget.

Each curator is a :class:`~strategies.memact.policy.CurationPolicy`: it takes the same turns as a
learned policy (``NOOP``, or ``prune_context`` deleting one tool result) through the same tool,
and its context is charged to the same byte budget.
"""

from __future__ import annotations

from collections.abc import Callable

from strategies.memact.policy import CurationState, prune_turn
from strategies.memact.working_memory import Message

__all__ = [
    "CURATORS",
    "FIFOCurator",
    "KeepEverything",
    "Mem0Curator",
    "QueriedKeysCurator",
    "RecencyCurator",
    "make_curator",
]


def _observations(state: CurationState) -> list[tuple[str, str]]:
    """(id, key) of the visible ``key=value`` tool results, oldest first."""
    found = []
    for message in state.memory.visible:
        key, sep, _ = message.content.partition("=")
        if message.role == "tool" and message.id is not None and sep:
            found.append((message.id, key))
    return found


def _reserve(state: CurationState) -> int:
    """Bytes to keep free: this turn and its result, then one more observation, turn and result."""
    observations = [m for m in state.memory.visible if m.role == "tool" and m.id is not None]
    if not observations:
        return 0
    memory = state.memory
    turn = memory.message_nbytes(prune_turn([observations[-1].id]))
    result = memory.message_nbytes(Message("tool", f"Deleted 1 item(s): {observations[-1].id}."))
    return memory.message_nbytes(observations[-1]) + 2 * (turn + result)


class KeepEverything:
    """Never edit: the context grows until it overflows the budget.

    Examples
    --------
    >>> from strategies.memact.working_memory import WorkingMemory
    >>> KeepEverything().act(CurationState(WorkingMemory())).content
    'noop'
    """

    def act(self, state: CurationState) -> Message:
        """Always NOOP."""
        return prune_turn([])


class FIFOCurator:
    """Delete the oldest tool result whenever the budget could not take another step.

    Examples
    --------
    >>> from strategies.memact.working_memory import WorkingMemory
    >>> memory = WorkingMemory([Message("tool", "k1=v1", id="a"), Message("tool", "k2=v2", id="b")])
    >>> FIFOCurator().act(CurationState(memory, headroom=5)).calls[0].arguments["delete_ids"]
    ['a']
    """

    def act(self, state: CurationState) -> Message:
        """Delete the oldest result when short of room, else NOOP."""
        observations = _observations(state)
        if observations and state.headroom < _reserve(state):
            return prune_turn([observations[0][0]])
        return prune_turn([])


class RecencyCurator:
    """Keep a sliding window of the most recent tool results; delete the oldest beyond it.

    Parameters
    ----------
    window
        Results kept; None keeps as many as there are questions, plus one.

    Examples
    --------
    >>> from strategies.memact.working_memory import WorkingMemory
    >>> memory = WorkingMemory([Message("tool", f"k{i}=v0", id=f"i{i}") for i in range(3)])
    >>> RecencyCurator(window=2).act(CurationState(memory)).calls[0].arguments["delete_ids"]
    ['i0']
    """

    def __init__(self, window: int | None = None) -> None:
        self.window = window

    def act(self, state: CurationState) -> Message:
        """Delete the oldest result when more than ``window`` are in context."""
        window = len(state.questions) + 1 if self.window is None else self.window
        observations = _observations(state)
        if len(observations) > window or (observations and state.headroom < _reserve(state)):
            return prune_turn([observations[0][0]])
        return prune_turn([])


class QueriedKeysCurator:
    """Oracle-like: keep only the latest result of each question key.

    A new result whose key is not asked is deleted at once; a new value of an asked key deletes
    the older one it supersedes.

    Examples
    --------
    >>> from strategies.memact.working_memory import WorkingMemory
    >>> memory = WorkingMemory([Message("tool", "k1=v1", id="a"), Message("tool", "k1=v2", id="b")])
    >>> curator = QueriedKeysCurator()
    >>> curator.act(CurationState(memory, questions=["k1"])).calls[0].arguments["delete_ids"]
    ['a']
    >>> curator.act(CurationState(memory, questions=["k2"])).calls[0].arguments["delete_ids"]
    ['b']
    """

    def act(self, state: CurationState) -> Message:
        """Delete the newest result if not asked, else the value it supersedes, else NOOP."""
        observations = _observations(state)
        if not observations:
            return prune_turn([])
        newest_id, newest_key = observations[-1]
        if newest_key not in state.questions:
            return prune_turn([newest_id])
        older = [i for i, key in observations[:-1] if key == newest_key]
        return prune_turn(older[:1])


class Mem0Curator:
    """Mem0-style rules without knowing the questions: ADD new keys, UPDATE a key seen before
    (the older value is deleted), and DELETE the oldest item when the budget is short.

    Examples
    --------
    >>> from strategies.memact.working_memory import WorkingMemory
    >>> memory = WorkingMemory([Message("tool", "k1=v1", id="a"), Message("tool", "k2=v2", id="b"),
    ...                         Message("tool", "k1=v3", id="c")])
    >>> Mem0Curator().act(CurationState(memory)).calls[0].arguments["delete_ids"]
    ['a']
    """

    def act(self, state: CurationState) -> Message:
        """UPDATE (delete the superseded value), else DELETE oldest when short, else ADD (NOOP)."""
        observations = _observations(state)
        if not observations:
            return prune_turn([])
        _, newest_key = observations[-1]
        older = [i for i, key in observations[:-1] if key == newest_key]
        if older:
            return prune_turn(older[:1])
        if state.headroom < _reserve(state):
            return prune_turn([observations[0][0]])
        return prune_turn([])


CURATORS: dict[str, Callable[[], object]] = {
    "keep_everything": KeepEverything,
    "fifo": FIFOCurator,
    "recency": RecencyCurator,
    "queried_keys": QueriedKeysCurator,
    "mem0": Mem0Curator,
}


def make_curator(name: str) -> object:
    """A heuristic curator by name: one of :data:`CURATORS`.

    Examples
    --------
    >>> type(make_curator("fifo")).__name__
    'FIFOCurator'
    """
    if name not in CURATORS:
        raise ValueError(f"curator must be one of {sorted(CURATORS)}, got {name!r}")
    return CURATORS[name]()
