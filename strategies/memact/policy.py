"""Curation policies: the protocol, a tiny causal transformer, and a chat-model adapter."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from strategies.memact.codec import ROLE_INSTRUCTION, ROLE_OBS, ROLE_OBS_ID, RecallCodec
from strategies.memact.working_memory import Message, ToolCall, WorkingMemory

__all__ = [
    "ChatModelPolicy",
    "CurationPolicy",
    "CurationState",
    "TinyCurationPolicy",
    "legal_mask",
    "prune_turn",
]


@dataclasses.dataclass
class CurationState:
    """What an agent sees when it takes a turn.

    Parameters
    ----------
    memory
        The working memory (its visible messages are the context).
    tools
        The tool schemas on offer (empty in a no-edit rollout).
    questions
        The episode's question keys (heuristic curators use them; a learned policy reads the
        instruction instead).
    headroom
        Bytes left in the context budget.
    codec
        The token codec of the episode, for token policies.
    """

    memory: WorkingMemory
    tools: Sequence[Mapping[str, Any]] = ()
    questions: Sequence[str] = ()
    headroom: float = math.inf
    codec: RecallCodec | None = None


@runtime_checkable
class CurationPolicy(Protocol):
    """A policy acts on a message list with tools and returns its assistant turn.

    Trainable policies also return the log-probabilities of a training segment's tokens
    (``segment_logprobs``); the DCPO trainer needs nothing else.
    """

    def act(self, state: CurationState) -> Message:
        """The next assistant turn (a ``prune_context`` call, or a turn with no call)."""
        ...


def prune_turn(delete_ids: Sequence[str], memory: str = "-", call_id: str = "prune") -> Message:
    """An assistant turn that calls ``prune_context`` (a NOOP turn when ``delete_ids`` is empty).

    Examples
    --------
    >>> prune_turn(["a1"]).calls[0].arguments
    {'memory': '-', 'delete_ids': ['a1']}
    >>> prune_turn([]).content
    'noop'
    """
    if not delete_ids:
        return Message("assistant", "noop")
    arguments = {"memory": memory, "delete_ids": list(delete_ids)}
    return Message("assistant", calls=(ToolCall(call_id, "prune_context", arguments),))


def legal_mask(tokens: np.ndarray, roles: np.ndarray, codec: RecallCodec) -> np.ndarray:
    """Legal next tokens at every position: row ``p`` is legal for the token at ``p``.

    ``NOOP`` is always legal; an ID token is legal at ``p`` when that ID's tool result appears
    before ``p`` and the edit tool is on offer (the context holds the ``TOOL`` instruction).
    Invented IDs are therefore never sampled.

    Examples
    --------
    >>> codec = RecallCodec(n_keys=4, n_values=4, n_slots=8)
    >>> tokens = np.array([2, 1, 3, 10, 10, 15, 17, 4])
    >>> roles = np.array([0, 0, 0, 0, 2, 2, 1, 3])
    >>> np.flatnonzero(legal_mask(tokens, roles, codec)[7]).tolist()
    [4, 17]
    """
    length, vocab = len(tokens), codec.vocab_size
    mask = np.zeros((length + 1, vocab), dtype=bool)
    mask[:, codec.token("NOOP")] = True
    if codec.token("TOOL") not in tokens:
        return mask
    seen = np.zeros(vocab, dtype=bool)
    for position in range(length):
        mask[position, seen] = True
        if roles[position] == ROLE_OBS_ID:
            seen[tokens[position]] = True
    mask[length, seen] = True
    mask[:, codec.token("UNK")] = False
    return mask


class TinyCurationPolicy(nn.Module):
    """A tiny causal transformer over the recall codec's tokens; each turn is one action token.

    At every step it reads the context tokens (with a role embedding; the tokens of one tool
    result, and those of the instruction, are summed into one compound position) and picks
    ``NOOP`` or the ID token of a tool result in context (meaning
    ``prune_context(delete_ids=[that ID])``).
    Logits of illegal tokens are set to ``-inf`` (see :func:`legal_mask`). With ``id_range``,
    the logits of ID tokens also get a pointer score (scaled dot product between the current
    state and the state at each tool result's ID token), which lets a tiny model name the
    result it means to delete.

    Parameters
    ----------
    vocab_size
        Size of the codec's vocabulary.
    id_range
        ``(first, stop)`` of the ID tokens in the vocabulary, for the pointer scores; None for
        none.
    d_model, n_layers, n_heads
        Transformer width, depth and heads.
    max_len
        Longest context in positions (a tool result is one position).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> policy = TinyCurationPolicy(RecallCodec().vocab_size)
    >>> sum(p.numel() for p in policy.parameters()) < 150_000
    True
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        max_len: int = 512,
        id_range: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.id_range = id_range
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.role = nn.Embedding(5, d_model)
        self.position = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor, roles: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``[batch, length, vocab]``: position ``p`` predicts token ``p+1``.

        The tokens of one tool result (key, value, filler, ID), and those of the instruction,
        are summed into one compound position each (so the layout does not depend on how many
        questions there are); the transformer runs causally over positions, and every token gets the
        logits of the position it belongs to (meaningful where a new position starts: the
        agent's turns).
        """
        starts = torch.ones_like(roles, dtype=torch.bool)
        instruction = roles == ROLE_INSTRUCTION
        starts[:, 1:] = (roles[:, :-1] != ROLE_OBS) & ~(instruction[:, :-1] & instruction[:, 1:])
        group = starts.long().cumsum(dim=1) - 1
        n_groups = int(group.max()) + 1 if group.numel() else 1
        if n_groups > self.max_len:
            raise ValueError(
                f"context of {n_groups} positions is longer than max_len={self.max_len}"
            )
        width = self.embed.embedding_dim
        per_token = self.embed(tokens) + self.role(roles)
        x = per_token.new_zeros(tokens.shape[0], n_groups, width)
        x = x.scatter_add(1, group.unsqueeze(-1).expand(-1, -1, width), per_token)
        x = x + self.position(torch.arange(n_groups, device=tokens.device))
        causal = nn.Transformer.generate_square_subsequent_mask(n_groups, device=tokens.device)
        hidden = self.norm(self.encoder(x, mask=causal, is_causal=True))
        logits = self.head(hidden)
        if self.id_range is not None:
            logits = self._add_pointer(logits, hidden, tokens, roles, group, causal == 0)
        vocab = logits.shape[-1]
        return logits.gather(1, group.unsqueeze(-1).expand(-1, -1, vocab))

    def _add_pointer(
        self,
        logits: torch.Tensor,
        hidden: torch.Tensor,
        tokens: torch.Tensor,
        roles: torch.Tensor,
        group: torch.Tensor,
        visible: torch.Tensor,
    ) -> torch.Tensor:
        first, stop = self.id_range
        is_id = (roles == ROLE_OBS_ID).unsqueeze(-1)
        slots = (tokens - first).clamp(0, stop - first - 1)
        onehot = nn.functional.one_hot(slots, stop - first).to(hidden.dtype) * is_id
        per_group = onehot.new_zeros(tokens.shape[0], hidden.shape[1], stop - first)
        per_group = per_group.scatter_add(1, group.unsqueeze(-1).expand_as(onehot), onehot)
        scores = self.query(hidden) @ self.key(hidden).transpose(1, 2) / hidden.shape[-1] ** 0.5
        pointable = (per_group.sum(-1) > 0).unsqueeze(1) & visible.unsqueeze(0)
        pointer = scores.masked_fill(~pointable, 0.0) @ per_group
        return torch.cat([logits[..., :first], logits[..., first:stop] + pointer], dim=-1)

    def token_logprobs(
        self, tokens: torch.Tensor, roles: torch.Tensor, legal: torch.Tensor
    ) -> torch.Tensor:
        """Log-probability of every token given its prefix, over legal tokens: ``[batch, len]``.

        ``legal`` is ``[batch, len, vocab]`` (row ``p`` for the token at ``p``); position 0 has
        no prefix and gets 0.
        """
        logits = self(tokens, roles)[:, :-1]
        logits = logits.masked_fill(~legal[:, 1:], float("-inf"))
        logp = torch.log_softmax(logits, dim=-1)
        target = tokens[:, 1:].clamp(min=0)
        picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        picked = torch.where(legal[:, 1:].gather(-1, target.unsqueeze(-1)).squeeze(-1), picked, 0)
        return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1)

    @torch.no_grad()
    def act(
        self,
        state: CurationState,
        *,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Message:
        """Sample (or pick greedily) the next action token and return it as an assistant turn.

        The context is encoded on the CPU and read on the policy's device; a sample is drawn
        on the device of ``generator`` (the probabilities are copied there: one small copy,
        which the choice needs anyway), so that a CPU generator serves a policy on any device.
        """
        if state.codec is None:
            raise ValueError("state.codec must be a RecallCodec for a token policy, got None")
        tokens, roles, _ = state.codec.encode(state.memory)
        legal = legal_mask(tokens, roles, state.codec)[-1]
        device = self.head.weight.device
        x = torch.as_tensor(tokens).unsqueeze(0).to(device)
        r = torch.as_tensor(roles).unsqueeze(0).to(device)
        logits = self(x, r)[0, -1].masked_fill(~torch.as_tensor(legal).to(device), float("-inf"))
        if greedy:
            choice = int(logits.argmax())
        else:
            probabilities = torch.softmax(logits, -1)
            if generator is not None:
                probabilities = probabilities.to(generator.device)
            choice = int(torch.multinomial(probabilities, 1, generator=generator))
        item_id = state.codec.item_id(choice)
        return prune_turn([item_id] if item_id is not None else [])


def _arguments_json(arguments: Any) -> str:
    return json.dumps(dict(arguments)) if isinstance(arguments, Mapping) else str(arguments)


def _as_wire(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments_json(call.arguments)},
            }
            for call in message.calls
        ]
    if message.role == "tool" and message.id is not None:
        wire["tool_call_id"] = message.id
    return wire


def _parse_call(raw: Any, position: int) -> ToolCall:
    if not isinstance(raw, Mapping):
        return ToolCall(f"bad{position}", "<malformed>", {})
    function = raw.get("function", raw)
    name = function.get("name") if isinstance(function, Mapping) else None
    arguments = function.get("arguments", {}) if isinstance(function, Mapping) else {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return ToolCall(str(raw.get("id", f"bad{position}")), str(name), arguments)
    return ToolCall(str(raw.get("id", f"call{position}")), str(name), arguments)


class ChatModelPolicy:
    """Adapter that lets a chat model (any ``chat(messages, tools) -> reply`` callable) curate.

    Messages go out in the usual chat format (``role``, ``content``, ``tool_calls`` with JSON
    ``arguments``, ``tool_call_id``); the reply is a mapping with ``content`` and optional
    ``tool_calls``. A malformed reply becomes a call the edit tool answers with an error, so
    the agent reads its mistake instead of the episode crashing.

    Parameters
    ----------
    chat
        The model: ``chat(messages: list[dict], tools: list[dict]) -> dict``.

    Examples
    --------
    >>> from strategies.memact.edits import PRUNE_TOOL
    >>> scripted = lambda messages, tools: {"content": "", "tool_calls": [{"id": "c1",
    ...     "function": {"name": "prune_context",
    ...                  "arguments": '{"memory": "k1=v2", "delete_ids": ["a1"]}'}}]}
    >>> memory = WorkingMemory([Message("user", "task"), Message("tool", "k1=v2", id="a1")])
    >>> turn = ChatModelPolicy(scripted).act(CurationState(memory, [PRUNE_TOOL]))
    >>> turn.calls[0].name, turn.calls[0].arguments["delete_ids"]
    ('prune_context', ['a1'])
    """

    def __init__(self, chat: Callable[[list[dict], list[dict]], Any]) -> None:
        self.chat = chat

    def act(self, state: CurationState) -> Message:
        """Ask the chat model for its next turn."""
        messages = [_as_wire(m) for m in state.memory.visible]
        reply = self.chat(messages, [dict(t) for t in state.tools])
        if not isinstance(reply, Mapping):
            return Message("assistant", calls=(ToolCall("bad", "<malformed>", {}),))
        content = reply.get("content") or ""
        raw_calls = reply.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raw_calls = [raw_calls]
        calls = tuple(_parse_call(raw, i) for i, raw in enumerate(raw_calls))
        return Message("assistant", str(content) if calls or content else "noop", calls=calls)

    def segment_logprobs(self, segment: Any) -> torch.Tensor:
        """Not available: a chat model behind an API returns no token log-probabilities here."""
        raise NotImplementedError(
            "ChatModelPolicy cannot return segment log-probabilities; train a token policy"
        )
