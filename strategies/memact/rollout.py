"""Play one recall episode with a curation policy under the context byte budget.

Episodes are duck-typed (this package does not import ``streams``): an episode has
``questions`` (keys), ``observations`` (objects with ``id`` and ``text``, ``"key=value"``
followed by optional filler words),
``instruction`` (text), ``budget`` (bytes) and ``reward(answer, partial=None)``, like
``streams.RecallEpisode``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from continual import MemoryAccountant
from strategies.memact.codec import RecallCodec
from strategies.memact.edits import ITEM_TOOLS, PRUNE_TOOL, execute_call
from strategies.memact.policy import CurationState
from strategies.memact.working_memory import Message, WorkingMemory

__all__ = ["EDIT_INSTRUCTIONS", "ContextSnapshot", "Trajectory", "read_answer", "run_episode"]

EDIT_INSTRUCTIONS = (
    "You may call prune_context(memory, delete_ids) to delete tool results by ID and keep a "
    "summary. Never invent IDs."
)


@dataclasses.dataclass(frozen=True)
class ContextSnapshot:
    """The context as tokens at one moment: just before an edit, or at the end.

    ``version`` is the number of edits made before this snapshot; ``final`` marks the last one.
    """

    tokens: np.ndarray
    roles: np.ndarray
    versions: np.ndarray
    version: int
    final: bool = False


@dataclasses.dataclass
class Trajectory:
    """The record of one episode.

    Attributes
    ----------
    reward
        The training reward (strict or partial, as asked).
    success
        Whether every key was answered right (the strict reward).
    partial
        Fraction of keys answered right.
    overflow
        Whether the context ran over its budget (the episode then ends without an answer).
    snapshots
        Context snapshots before each edit and at the end (for DCPO).
    bytes_per_step, tokens_per_step
        Context size after each step.
    n_edits
        Edits that changed the context.
    error
        Why the episode ended early, if it did.
    """

    reward: float
    success: bool
    partial: float
    overflow: bool
    snapshots: list[ContextSnapshot]
    bytes_per_step: list[int]
    tokens_per_step: list[int]
    n_edits: int
    answer: dict[str, str] | None = None
    error: str | None = None
    edits_allowed: bool = True


def read_answer(memory: WorkingMemory, questions: Sequence[str]) -> dict[str, str]:
    """The fixed reader: each question key's latest ``key=value`` tool result in context.

    Examples
    --------
    >>> memory = WorkingMemory([Message("tool", "k1=v1 w3", id="a"),
    ...                         Message("tool", "k1=v4 w8", id="b")])
    >>> read_answer(memory, ["k1", "k2"])
    {'k1': 'v4'}
    """
    answer: dict[str, str] = {}
    for message in memory.visible:
        key, sep, rest = message.content.partition("=")
        if message.role == "tool" and message.id is not None and sep and key in questions:
            answer[key] = rest.split()[0] if rest.split() else ""
    return answer


def _snapshot(codec: RecallCodec, memory: WorkingMemory, version: int, final: bool = False):
    tokens, roles, versions = codec.encode(memory)
    return ContextSnapshot(tokens, roles, versions, version, final)


def run_episode(
    episode: Any,
    policy: Any,
    *,
    budget: int | None = None,
    edits: bool = True,
    item_tools: bool = False,
    charge: str = "tokens",
    partial: bool = False,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    codec: RecallCodec | None = None,
    record: bool = True,
) -> Trajectory:
    """Play ``episode`` with ``policy`` and return its :class:`Trajectory`.

    The context (a :class:`WorkingMemory` charged by ``charge``: int32 tokens of the codec, or
    UTF-8 text) is tracked by a :class:`continual.MemoryAccountant` with the context budget.
    Each step appends the next tool result, checks the budget, lets the policy take a turn,
    runs its tool calls (errors come back as tool results) and checks the budget again. Running
    over ends the episode without an answer (reward 0); so does a budget smaller than the
    instruction. At the end the fixed reader (:func:`read_answer`) answers from the context.

    Parameters
    ----------
    episode
        A recall episode (see the module docstring).
    policy
        Anything with ``act(state) -> Message``; token policies also accept ``greedy`` and
        ``generator``.
    budget
        Context budget in bytes; defaults to ``episode.budget``.
    edits
        Whether the edit tool (and its instruction) is on offer; off for exploration rollouts.
    item_tools
        Also offer Mem0's item tools (``memory_add``, ``memory_update``, ``memory_delete``).
    charge
        ``"tokens"`` (int32 token IDs of the codec, 4 bytes each) or ``"text"`` (UTF-8).
    partial
        Train on the partial-credit reward instead of strict 0/1.
    greedy, generator
        Passed to token policies.
    codec
        The token codec; a fresh :class:`RecallCodec` by default.
    record
        Keep context snapshots for training.
    """
    codec = RecallCodec() if codec is None else codec
    memory = WorkingMemory(charge=charge, tokenizer=codec.encode_message)
    accountant = MemoryAccountant(episode.budget if budget is None else budget)
    accountant.track("context", memory)
    tools = ([PRUNE_TOOL, *ITEM_TOOLS] if item_tools else [PRUNE_TOOL]) if edits else []
    if edits:
        memory.append(Message("system", EDIT_INSTRUCTIONS))
    memory.append(Message("user", episode.instruction))
    kwargs = {"greedy": greedy, "generator": generator} if hasattr(policy, "token_logprobs") else {}
    trajectory = Trajectory(0.0, False, 0.0, False, [], [], [], 0, edits_allowed=edits)
    if accountant.headroom() < 0:
        trajectory.overflow = True
        trajectory.error = (
            f"the budget of {accountant.budget} bytes is smaller than the instruction "
            f"({memory.nbytes} bytes)"
        )
        return trajectory
    version = 0
    for observation in episode.observations:
        memory.append(Message("tool", observation.text, id=observation.id))
        if accountant.headroom() < 0:
            break
        state = CurationState(memory, tools, tuple(episode.questions), accountant.headroom(), codec)
        turn = dataclasses.replace(policy.act(state, **kwargs), version=version)
        memory.append(turn)
        if turn.calls:
            snapshot = _snapshot(codec, memory, version) if record else None
            before = list(memory.messages)
            results = [
                execute_call(memory, call) if edits else "Error: no tools are available"
                for call in turn.calls
            ]
            if memory.messages != before:
                version += 1
                if snapshot is not None:
                    trajectory.snapshots.append(snapshot)
            for result in results:
                memory.append(Message("tool", result))
        trajectory.bytes_per_step.append(memory.nbytes)
        trajectory.tokens_per_step.append(memory.n_tokens)
        if accountant.headroom() < 0:
            break
    trajectory.n_edits = version
    if accountant.headroom() < 0:
        trajectory.overflow = True
        trajectory.error = f"the context ran over its budget of {accountant.budget} bytes"
    else:
        trajectory.answer = read_answer(memory, episode.questions)
    trajectory.success = episode.reward(trajectory.answer, partial=False) == 1.0
    trajectory.partial = episode.reward(trajectory.answer, partial=True)
    trajectory.reward = trajectory.partial if partial else float(trajectory.success)
    if record:
        trajectory.snapshots.append(_snapshot(codec, memory, version, final=True))
    return trajectory
