"""Token codec of the recall task: messages to the token IDs a tiny policy reads and writes."""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from strategies.memact.working_memory import Message, WorkingMemory

__all__ = [
    "ROLE_AGENT",
    "ROLE_INSTRUCTION",
    "ROLE_OBS",
    "ROLE_OBS_ID",
    "ROLE_RESULT",
    "RecallCodec",
]

ROLE_INSTRUCTION, ROLE_OBS_ID, ROLE_OBS, ROLE_AGENT, ROLE_RESULT = range(5)
_SPECIALS = ("PAD", "BOS", "TOOL", "Q", "NOOP", "OK", "ERR", "UNK", "FILL")
_KEY = re.compile(r"^k(\d+)$")
_VALUE = re.compile(r"^v(\d+)$")


@dataclasses.dataclass
class RecallCodec:
    """Encode a recall context as tokens, with a role and a version per token.

    Vocabulary: the specials ``PAD BOS TOOL Q NOOP OK ERR UNK FILL``, then ``n_keys`` key tokens,
    ``n_values`` value tokens and ``n_slots`` ID tokens. A tool result's 8-character ID gets the
    next free ID slot the first time the codec sees it (so an ID keeps its token after edits);
    the same ID token is the action "delete this result".

    - system message (edit instructions) → ``TOOL``; user instruction → ``BOS Q k..``;
    - tool result ``key=value w..`` with an ID → ``key value FILL.. ID`` (the ID last, so that a
      causal model's state at the ID has read the result it names); any other tool result → ``OK``
      or ``ERR`` (text starting with ``Error``);
    - assistant turn → one ID token per deleted ID of its ``prune_context`` calls, else ``NOOP``.

    Parameters
    ----------
    n_keys, n_values, n_slots
        Sizes of the key, value and ID parts of the vocabulary.

    Examples
    --------
    >>> codec = RecallCodec(n_keys=4, n_values=4, n_slots=8)
    >>> codec.vocab_size
    25
    >>> codec.encode_message(Message("user", "Remember the latest value of: k1 k3"))
    [1, 3, 10, 12]
    >>> codec.encode_message(Message("tool", "k1=v2 w7 w1", id="abcdefgh"))
    [10, 15, 8, 8, 17]
    """

    n_keys: int = 16
    n_values: int = 16
    n_slots: int = 96
    slots: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def key_base(self) -> int:
        return len(_SPECIALS)

    @property
    def value_base(self) -> int:
        return self.key_base + self.n_keys

    @property
    def slot_base(self) -> int:
        return self.value_base + self.n_values

    @property
    def vocab_size(self) -> int:
        return self.slot_base + self.n_slots

    def token(self, name: str) -> int:
        """ID of a special token by name, e.g. ``"NOOP"``."""
        return _SPECIALS.index(name)

    def slot(self, item_id: str) -> int:
        """The ID token of ``item_id`` (assigned on first sight; ``UNK`` when slots run out)."""
        if item_id not in self.slots:
            if len(self.slots) >= self.n_slots:
                return self.token("UNK")
            self.slots[item_id] = len(self.slots)
        return self.slot_base + self.slots[item_id]

    def item_id(self, token: int) -> str | None:
        """The item ID an ID token stands for, or None."""
        for item_id, slot in self.slots.items():
            if self.slot_base + slot == token:
                return item_id
        return None

    def _symbol(self, text: str, pattern: re.Pattern[str], base: int, size: int) -> int:
        match = pattern.match(text)
        if not match or int(match.group(1)) >= size:
            return self.token("UNK")
        return base + int(match.group(1))

    def encode_message(self, message: Message) -> list[int]:
        """Tokens of one message."""
        return [t for t, _ in self._encode(message)]

    def _encode(self, message: Message) -> list[tuple[int, int]]:
        if message.role == "system":
            return [(self.token("TOOL"), ROLE_INSTRUCTION)]
        if message.role == "user":
            words = message.content.split(":")[-1].split()
            keys = [self._symbol(w, _KEY, self.key_base, self.n_keys) for w in words]
            return [(t, ROLE_INSTRUCTION) for t in (self.token("BOS"), self.token("Q"), *keys)]
        if message.role == "tool":
            key, sep, rest = message.content.partition("=")
            if message.id is not None and sep:
                value, *filler = rest.split() or [""]
                return [
                    (self._symbol(key, _KEY, self.key_base, self.n_keys), ROLE_OBS),
                    (self._symbol(value, _VALUE, self.value_base, self.n_values), ROLE_OBS),
                    *[(self.token("FILL"), ROLE_OBS)] * len(filler),
                    (self.slot(message.id), ROLE_OBS_ID),
                ]
            bad = message.content.startswith("Error")
            return [(self.token("ERR" if bad else "OK"), ROLE_RESULT)]
        deleted = [
            i
            for call in message.calls
            if call.name == "prune_context" and isinstance(call.arguments, dict)
            for i in call.arguments.get("delete_ids", [])
            if isinstance(i, str)
        ]
        tokens = [self.slot(i) for i in deleted] or [self.token("NOOP")]
        return [(t, ROLE_AGENT) for t in tokens]

    def encode(self, memory: WorkingMemory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tokens, roles and versions (-1 except on agent tokens) of the visible context."""
        tokens, roles, versions = [], [], []
        for message in memory.visible:
            for token, role in self._encode(message):
                tokens.append(token)
                roles.append(role)
                versions.append(message.version if message.version is not None else -1)
        as_array = np.asarray
        return (
            as_array(tokens, dtype=np.int64),
            as_array(roles, dtype=np.int64),
            as_array(versions, dtype=np.int64),
        )
