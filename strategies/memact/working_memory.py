"""An agent's working memory: the ordered list of messages it sees, and what that costs."""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["KVCacheCost", "Message", "ToolCall", "WorkingMemory", "word_tokens"]

_ROLES = ("system", "user", "assistant", "tool")
_WORDS = re.compile(r"\w+|[^\w\s]")


def word_tokens(text: str) -> list[str]:
    """Split text into words and punctuation: the default token count of a message.

    Examples
    --------
    >>> word_tokens("k3=v7, ok")
    ['k3', '=', 'v7', ',', 'ok']
    """
    return _WORDS.findall(text)


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """One tool call inside an assistant turn.

    Parameters
    ----------
    id
        The call's short ID; the tool result it produces carries the same ID.
    name
        The tool's name, e.g. ``"prune_context"``.
    arguments
        The call's arguments as a mapping (a model may send malformed ones; they are kept as
        given, and the tool answers with an error).

    Examples
    --------
    >>> ToolCall("c1", "read", {}).text
    'read({})'
    """

    id: str
    name: str
    arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def text(self) -> str:
        """The call as text: ``name(arguments)``."""
        arguments = self.arguments
        return f"{self.name}({dict(arguments) if isinstance(arguments, Mapping) else arguments})"


@dataclasses.dataclass(frozen=True)
class Message:
    """One message of the context.

    Parameters
    ----------
    role
        ``"system"``, ``"user"``, ``"assistant"`` or ``"tool"``.
    content
        The text of the message.
    calls
        Tool calls made by an assistant turn.
    id
        For a tool result, the short ID of the call that produced it; the agent deletes results
        by this ID. For an item added with ADD, the item's ID.
    version
        For an assistant turn, how many edits the context had seen when the turn was generated
        (set by the rollout; DCPO's loss masks come from it).
    hidden
        Soft-deleted: not shown to the agent, but still stored (and charged) until purged.

    Examples
    --------
    >>> Message("tool", "k3=v7", id="a1b2c3d4").text
    'k3=v7'
    >>> Message("assistant", "ok", calls=(ToolCall("c1", "read"),)).text
    'ok read({})'
    """

    role: str
    content: str = ""
    calls: tuple[ToolCall, ...] = ()
    id: str | None = None
    version: int | None = None
    hidden: bool = False

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"role must be one of {_ROLES}, got {self.role!r}")
        if not isinstance(self.content, str):
            raise TypeError(f"content must be a str, got {type(self.content).__name__}")

    @property
    def text(self) -> str:
        """Content followed by the text of each call."""
        return " ".join([self.content, *(call.text for call in self.calls)]).strip()


@dataclasses.dataclass(frozen=True)
class KVCacheCost:
    """Bytes a served transformer keeps per context token: ``2 × layers × kv_heads × head_dim ×
    dtype bytes`` (keys and values of every layer).

    Examples
    --------
    >>> KVCacheCost(layers=32, kv_heads=8, head_dim=128, dtype_bytes=2).bytes_per_token
    131072
    """

    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2

    def __post_init__(self) -> None:
        for name in ("layers", "kv_heads", "head_dim", "dtype_bytes"):
            _check_int(name, getattr(self, name))

    @property
    def bytes_per_token(self) -> int:
        """KV-cache bytes of one token."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


class WorkingMemory:
    """The ordered messages an agent sees, with their byte and token cost.

    What it stores, and how it is charged (``nbytes``, and so any
    :class:`continual.MemoryAccountant` that tracks it):

    - ``charge="text"``: the UTF-8 bytes of every message's :attr:`Message.text`;
    - ``charge="tokens"``: ``n_tokens`` × the itemsize of ``token_dtype`` (int32 = 4 bytes,
      int64 = 8), the size of the token-ID tensor a model would hold;
    - with ``kv_cache`` set, ``n_tokens × kv_cache.bytes_per_token`` is added (what the context
      costs a served model).

    Soft-deleted (hidden) messages are not shown to the agent but are charged until
    :meth:`purge`.

    Parameters
    ----------
    messages
        The initial messages (usually the instruction).
    charge
        ``"text"`` or ``"tokens"``.
    tokenizer
        Maps a message to its tokens (a sequence); defaults to :func:`word_tokens` of its text.
    token_dtype
        Dtype of the token tensor when ``charge="tokens"``.
    kv_cache
        Optional KV-cache cost model.

    Examples
    --------
    >>> from continual import MemoryAccountant
    >>> memory = WorkingMemory([Message("user", "Remember k1")])
    >>> memory.append(Message("tool", "k1=v2", id="a1b2c3d4"))
    >>> memory.nbytes, memory.n_tokens
    (16, 5)
    >>> accountant = MemoryAccountant(100)
    >>> _ = accountant.track("context", memory)
    >>> accountant.total()
    16
    >>> WorkingMemory(memory.messages, charge="tokens").nbytes  # 5 int32 tokens
    20
    """

    def __init__(
        self,
        messages: Iterable[Message] = (),
        *,
        charge: str = "text",
        tokenizer: Callable[[Message], Sequence[Any]] | None = None,
        token_dtype: torch.dtype = torch.int32,
        kv_cache: KVCacheCost | None = None,
    ) -> None:
        if charge not in ("text", "tokens"):
            raise ValueError(f"charge must be 'text' or 'tokens', got {charge!r}")
        if not isinstance(token_dtype, torch.dtype) or token_dtype.is_floating_point:
            raise TypeError(f"token_dtype must be an integer torch.dtype, got {token_dtype!r}")
        self.charge = charge
        self.tokenizer = tokenizer
        self.token_dtype = token_dtype
        self.kv_cache = kv_cache
        self.messages: list[Message] = []
        for message in messages:
            self.append(message)

    # -- contents ---------------------------------------------------------------------------
    def append(self, message: Message) -> None:
        """Add ``message`` at the end."""
        if not isinstance(message, Message):
            raise TypeError(f"message must be a Message, got {type(message).__name__}")
        self.messages.append(message)

    @property
    def visible(self) -> list[Message]:
        """The messages the agent sees (soft-deleted ones left out)."""
        return [m for m in self.messages if not m.hidden]

    def ids(self) -> list[str]:
        """IDs of the visible tool results and items, in order."""
        return [m.id for m in self.visible if m.id is not None]

    def find(self, item_id: str) -> int | None:
        """Position of the visible message with ``item_id``, or None."""
        for position, message in enumerate(self.messages):
            if message.id == item_id and not message.hidden:
                return position
        return None

    def hide(self, item_id: str) -> bool:
        """Soft-delete the item ``item_id``: hidden but still charged. Returns whether found."""
        position = self.find(item_id)
        if position is None:
            return False
        self.messages[position] = dataclasses.replace(self.messages[position], hidden=True)
        return True

    def purge(self) -> int:
        """Drop every soft-deleted message; returns the bytes freed."""
        before = self.nbytes
        self.messages = [m for m in self.messages if not m.hidden]
        return before - self.nbytes

    def copy(self) -> WorkingMemory:
        """A copy with its own message list (messages are immutable and shared)."""
        twin = WorkingMemory(
            charge=self.charge,
            tokenizer=self.tokenizer,
            token_dtype=self.token_dtype,
            kv_cache=self.kv_cache,
        )
        twin.messages = list(self.messages)
        return twin

    # -- cost -------------------------------------------------------------------------------
    def message_tokens(self, message: Message) -> int:
        """Token count of one message."""
        if self.tokenizer is None:
            return len(word_tokens(message.text))
        return len(self.tokenizer(message))

    @property
    def n_tokens(self) -> int:
        """Tokens of every stored message (hidden ones included)."""
        return sum(self.message_tokens(m) for m in self.messages)

    def message_nbytes(self, message: Message) -> int:
        """Bytes charged for one message."""
        tokens = self.message_tokens(message) if self.charge == "tokens" or self.kv_cache else 0
        size = (
            tokens * self.token_dtype.itemsize
            if self.charge == "tokens"
            else len(message.text.encode("utf-8"))
        )
        if self.kv_cache is not None:
            size += tokens * self.kv_cache.bytes_per_token
        return size

    @property
    def nbytes(self) -> int:
        """Bytes charged for every stored message (hidden ones included)."""
        return sum(self.message_nbytes(m) for m in self.messages)

    def __nbytes__(self) -> int:
        return self.nbytes

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        return (
            f"WorkingMemory(n_messages={len(self)}, nbytes={self.nbytes}, "
            f"n_tokens={self.n_tokens}, charge={self.charge!r})"
        )


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)
