"""Edit actions on a working memory: the ``prune_context`` tool and Mem0's item operations.

Every function here returns the text the agent reads back; bad arguments give an ``"Error: ..."``
text and change nothing, so a malformed call never stops an episode or a training run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from strategies.memact.working_memory import Message, ToolCall, WorkingMemory

__all__ = [
    "ITEM_TOOLS",
    "PRUNE_TOOL",
    "ItemEdit",
    "apply_item_edit",
    "execute_call",
    "prune_context",
]

PRUNE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "prune_context",
        "description": (
            "Delete tool results from your context by their IDs, with the calls that produced "
            "them, and keep a summary of what matters in `memory`. Never invent IDs."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "memory": {"type": "string", "description": "What to remember."},
                "delete_ids": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["memory", "delete_ids"],
        },
    },
}

ITEM_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": f"memory_{op}",
            "description": f"Mem0-style {op.upper()} of one memory item.",
            "parameters": {
                "type": "object",
                "properties": {k: {"type": "string"} for k in keys},
                "required": list(keys),
            },
        },
    }
    for op, keys in (("add", ("content",)), ("update", ("id", "content")), ("delete", ("id",)))
]


def _error(text: str) -> str:
    return f"Error: {text}"


def prune_context(
    context: WorkingMemory, memory: Any, delete_ids: Any, *, call_id: str | None = None
) -> str:
    """Run the ``prune_context(memory, delete_ids)`` tool on ``context``; return the result text.

    - Every visible message whose ID is listed is removed, with the tool call that produced it.
    - An assistant turn that made several calls loses only the deleted calls; a turn left with
      neither text nor calls is removed.
    - The calling turn (the assistant message holding call ``call_id``, or the last one holding a
      ``prune_context`` call) is never deleted: the ``memory`` summary stays in context as its
      argument.
    - An empty or malformed ``memory`` or ``delete_ids`` is an error and deletes nothing.
    - IDs not in context delete nothing; the result names them.

    Examples
    --------
    >>> ctx = WorkingMemory([
    ...     Message("user", "task"),
    ...     Message("assistant", calls=(ToolCall("a1", "read"), ToolCall("b2", "read"))),
    ...     Message("tool", "k1=v1", id="a1"), Message("tool", "k2=v2", id="b2"),
    ... ])
    >>> ctx.append(Message("assistant", calls=(ToolCall(
    ...     "p1", "prune_context", {"memory": "k2 is v2", "delete_ids": ["a1"]}),)))
    >>> prune_context(ctx, "k2 is v2", ["a1", "zz"])
    'Deleted 1 item(s): a1. Not in context, nothing deleted: zz.'
    >>> [m.text for m in ctx.messages][1:3]
    ['read({})', 'k2=v2']
    >>> prune_context(ctx, "", ["b2"])
    'Error: memory must be a non-empty string (a summary of what to keep), got an empty value'
    """
    if not isinstance(memory, str) or not memory.strip():
        return _error(
            "memory must be a non-empty string (a summary of what to keep), "
            f"got {'an empty value' if not memory else repr(memory)}"
        )
    if (
        not isinstance(delete_ids, (list, tuple))
        or not delete_ids
        or not all(isinstance(i, str) for i in delete_ids)
    ):
        return _error(f"delete_ids must be a non-empty list of ID strings, got {delete_ids!r}")
    caller = _calling_turn(context, call_id)
    present = set(context.ids())
    if caller is not None:
        present.discard(context.messages[caller].id)
    known = [i for i in dict.fromkeys(delete_ids) if i in present]
    unknown = [i for i in dict.fromkeys(delete_ids) if i not in present]
    doomed = set(known)
    kept = []
    for position, message in enumerate(context.messages):
        if position == caller:
            kept.append(message)
        elif message.id in doomed and not message.hidden:
            continue
        elif message.calls and any(c.id in doomed for c in message.calls):
            calls = tuple(c for c in message.calls if c.id not in doomed)
            if calls or message.content:
                kept.append(dataclasses.replace(message, calls=calls))
        else:
            kept.append(message)
    context.messages = kept
    text = f"Deleted {len(known)} item(s)" + (f": {', '.join(known)}." if known else ".")
    if unknown:
        text += f" Not in context, nothing deleted: {', '.join(unknown)}."
    return text


def _calling_turn(context: WorkingMemory, call_id: str | None) -> int | None:
    for position in range(len(context.messages) - 1, -1, -1):
        message = context.messages[position]
        for call in message.calls:
            if (call_id is None and call.name == "prune_context") or call.id == call_id:
                return position
    return None


@dataclasses.dataclass(frozen=True)
class ItemEdit:
    """One Mem0-style item operation: ``"add"``, ``"update"``, ``"delete"`` or ``"noop"``.

    Parameters
    ----------
    op
        The operation.
    id
        The item to update or delete (for ``"add"``, an optional ID for the new item).
    content
        The text to add, or the new text of an updated item.
    soft
        For ``"delete"``: hide the item (still stored and charged until purged) instead of
        removing it.

    Examples
    --------
    >>> memory = WorkingMemory([Message("user", "task")])
    >>> apply_item_edit(memory, ItemEdit("add", id="m1", content="k1=v1"))
    'Added m1.'
    >>> apply_item_edit(memory, ItemEdit("update", id="m1", content="k1=v2"))
    'Updated m1.'
    >>> apply_item_edit(memory, ItemEdit("delete", id="m1", soft=True)), memory.nbytes
    ('Hid m1 (still stored until purged).', 9)
    >>> memory.purge(), memory.nbytes
    (5, 4)
    """

    op: str
    id: str | None = None
    content: str | None = None
    soft: bool = False

    def __post_init__(self) -> None:
        if self.op not in ("add", "update", "delete", "noop"):
            raise ValueError(f"op must be 'add', 'update', 'delete' or 'noop', got {self.op!r}")


def apply_item_edit(memory: WorkingMemory, edit: ItemEdit) -> str:
    """Apply one :class:`ItemEdit` to ``memory``; return the result text (errors as text)."""
    if not isinstance(edit, ItemEdit):
        return _error(f"edit must be an ItemEdit, got {type(edit).__name__}")
    if edit.op == "noop":
        return "No change."
    if edit.op == "add":
        if not isinstance(edit.content, str) or not edit.content:
            return _error(f"add needs non-empty content, got {edit.content!r}")
        item_id = edit.id or _new_id(memory, edit.content)
        if item_id in memory.ids():
            return _error(f"id {item_id!r} is already in context")
        memory.append(Message("assistant", edit.content, id=item_id))
        return f"Added {item_id}."
    position = memory.find(edit.id) if isinstance(edit.id, str) else None
    if position is None:
        return _error(f"id {edit.id!r} is not in context; known IDs are {memory.ids()}")
    if edit.op == "update":
        if not isinstance(edit.content, str) or not edit.content:
            return _error(f"update needs non-empty content, got {edit.content!r}")
        old = memory.messages[position]
        memory.messages[position] = dataclasses.replace(old, content=edit.content)
        return f"Updated {edit.id}."
    if edit.soft:
        memory.hide(edit.id)
        return f"Hid {edit.id} (still stored until purged)."
    del memory.messages[position]
    return f"Deleted {edit.id}."


def _new_id(memory: WorkingMemory, content: str) -> str:
    salt = 0
    while True:
        digest = hashlib.sha1(f"{content}|{len(memory)}|{salt}".encode()).hexdigest()[:8]
        if digest not in memory.ids():
            return digest
        salt += 1


def execute_call(memory: WorkingMemory, call: Any) -> str:
    """Run one tool call of the edit vocabulary on ``memory``; return the result text.

    Known tools: ``prune_context`` and ``memory_add`` / ``memory_update`` / ``memory_delete``.
    A malformed call (not a :class:`ToolCall`, unknown tool, arguments that are not a mapping or
    a JSON object, missing arguments) gives an ``"Error: ..."`` text and changes nothing.

    Examples
    --------
    >>> memory = WorkingMemory([Message("user", "task")])
    >>> execute_call(memory, ToolCall("c1", "forget_all", {}))
    "Error: unknown tool 'forget_all'; known tools are prune_context, memory_add, memory_update, memory_delete"
    >>> execute_call(memory, ToolCall("c2", "prune_context", "{not json"))
    "Error: arguments of prune_context must be a JSON object, got '{not json'"
    """  # noqa: E501
    if not isinstance(call, ToolCall):
        return _error(f"a tool call must be a ToolCall, got {type(call).__name__}")
    arguments = call.arguments
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            arguments = None
    if not isinstance(arguments, Mapping):
        return _error(f"arguments of {call.name} must be a JSON object, got {call.arguments!r}")
    if call.name == "prune_context":
        missing = {"memory", "delete_ids"} - set(arguments)
        if missing:
            return _error(f"prune_context is missing required arguments {sorted(missing)}")
        return prune_context(memory, arguments["memory"], arguments["delete_ids"], call_id=call.id)
    ops = {"memory_add": "add", "memory_update": "update", "memory_delete": "delete"}
    if call.name not in ops:
        return _error(
            f"unknown tool {call.name!r}; known tools are prune_context, " + ", ".join(ops)
        )
    edit = ItemEdit(ops[call.name], id=arguments.get("id"), content=arguments.get("content"))
    return apply_item_edit(memory, edit)
