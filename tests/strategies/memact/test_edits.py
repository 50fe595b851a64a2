"""prune_context and the item operations, case by case."""

import pytest

from continual import MemoryAccountant
from strategies.memact import (
    ItemEdit,
    Message,
    ToolCall,
    WorkingMemory,
    apply_item_edit,
    execute_call,
    prune_context,
)


def _prune_call(delete_ids, memory="keep k2", call_id="p1"):
    return ToolCall(call_id, "prune_context", {"memory": memory, "delete_ids": delete_ids})


def _context(*delete_ids, memory="keep k2"):
    """user, a turn with two reads (a1, b2), their results, a turn with one read (c3), its
    result, and the calling turn."""
    context = WorkingMemory(
        [
            Message("user", "task"),
            Message("assistant", calls=(ToolCall("a1", "read"), ToolCall("b2", "read"))),
            Message("tool", "k1=v1", id="a1"),
            Message("tool", "k2=v2", id="b2"),
            Message("assistant", "reading c3", calls=(ToolCall("c3", "read"),)),
            Message("tool", "k3=v3", id="c3"),
            Message("assistant", calls=(_prune_call(list(delete_ids), memory),)),
        ]
    )
    return context, list(context.messages)


def test_deletes_the_result_and_the_call_that_produced_it():
    context, before = _context("c3")
    assert prune_context(context, "keep k2", ["c3"]) == "Deleted 1 item(s): c3."
    # the turn keeps its text, loses its only call; the result is gone
    assert context.messages == [
        *before[:4],
        Message("assistant", "reading c3", calls=()),
        before[6],
    ]


def test_partial_cut_from_a_multi_call_turn():
    context, before = _context("a1")
    prune_context(context, "keep k2", ["a1"])
    assert context.messages == [
        before[0],
        Message("assistant", calls=(ToolCall("b2", "read"),)),
        before[3],
        *before[4:],
    ]


def test_a_turn_left_empty_is_removed():
    context, before = _context("a1", "b2")
    assert prune_context(context, "keep k2", ["a1", "b2"]) == "Deleted 2 item(s): a1, b2."
    assert context.messages == [before[0], *before[4:]]


def test_the_summary_stays_in_the_calling_turn_which_is_never_deleted():
    context, before = _context("p1", "c3")
    text = prune_context(context, "keep k2", ["p1", "c3"])
    assert text == "Deleted 1 item(s): c3. Not in context, nothing deleted: p1."
    assert context.messages[-1] == before[-1]
    assert context.messages[-1].calls[0].arguments["memory"] == "keep k2"


@pytest.mark.parametrize(
    ("memory", "delete_ids", "message"),
    [
        ("", ["a1"], "Error: memory must be a non-empty string"),
        ("   ", ["a1"], "Error: memory must be a non-empty string"),
        (None, ["a1"], "Error: memory must be a non-empty string"),
        ("keep", [], "Error: delete_ids must be a non-empty list of ID strings, got []"),
        ("keep", "a1", "Error: delete_ids must be a non-empty list of ID strings, got 'a1'"),
        ("keep", [1, 2], "Error: delete_ids must be a non-empty list of ID strings, got [1, 2]"),
    ],
)
def test_empty_or_malformed_arguments_are_errors_and_delete_nothing(memory, delete_ids, message):
    context, before = _context("a1")
    assert prune_context(context, memory, delete_ids).startswith(message)
    assert context.messages == before


def test_unknown_ids_delete_nothing():
    context, before = _context("zz")
    text = prune_context(context, "keep", ["zz", "yy", "zz"])
    assert text == "Deleted 0 item(s). Not in context, nothing deleted: zz, yy."
    assert context.messages == before


def test_hidden_items_cannot_be_pruned_again():
    context, before = _context("a1")
    context.hide("a1")
    assert "nothing deleted: a1" in prune_context(context, "keep", ["a1"])
    assert len(context) == len(before)


def test_item_operations_and_soft_delete_accounting():
    memory = WorkingMemory([Message("user", "task")])
    accountant = MemoryAccountant(1000)
    accountant.track("context", memory)
    assert apply_item_edit(memory, ItemEdit("noop")) == "No change."
    assert apply_item_edit(memory, ItemEdit("add", content="k1=v1")).startswith("Added ")
    item = memory.ids()[0]
    assert len(item) == 8
    assert apply_item_edit(memory, ItemEdit("update", id=item, content="k1=v9")) == (
        f"Updated {item}."
    )
    assert memory.messages[1].content == "k1=v9" and memory.messages[1].id == item
    assert accountant.total() == 4 + 5
    apply_item_edit(memory, ItemEdit("delete", id=item, soft=True))
    assert memory.ids() == [] and accountant.total() == 9
    memory.purge()
    assert accountant.total() == 4
    apply_item_edit(memory, ItemEdit("add", id="m2", content="x"))
    assert apply_item_edit(memory, ItemEdit("delete", id="m2")) == "Deleted m2."
    assert accountant.total() == 4


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (ItemEdit("add"), "Error: add needs non-empty content, got None"),
        (ItemEdit("add", id="m1", content="y"), "Error: id 'm1' is already in context"),
        (ItemEdit("update", id="zz", content="y"), "Error: id 'zz' is not in context"),
        (ItemEdit("update", id="m1"), "Error: update needs non-empty content, got None"),
        (ItemEdit("delete"), "Error: id None is not in context"),
        ("delete m1", "Error: edit must be an ItemEdit, got str"),
    ],
)
def test_item_operation_errors_change_nothing(edit, message):
    memory = WorkingMemory([Message("assistant", "x", id="m1")])
    before = list(memory.messages)
    assert apply_item_edit(memory, edit).startswith(message)
    assert memory.messages == before


def test_bad_item_op_name_raises():
    with pytest.raises(ValueError, match="op must be 'add', 'update', 'delete' or 'noop'"):
        ItemEdit("replace")


def test_execute_call_parses_json_arguments_and_reports_malformed_calls():
    context, _ = _context("c3")
    call = ToolCall("p1", "prune_context", '{"memory": "m", "delete_ids": ["c3"]}')
    assert execute_call(context, call) == "Deleted 1 item(s): c3."
    missing = ToolCall("p2", "prune_context", {"memory": "m"})
    assert execute_call(context, missing) == (
        "Error: prune_context is missing required arguments ['delete_ids']"
    )
    assert execute_call(context, {"name": "prune_context"}).startswith("Error: a tool call")
    assert execute_call(context, ToolCall("x", "prune_context", [1])).startswith(
        "Error: arguments of prune_context must be a JSON object"
    )
    add = ToolCall("x", "memory_add", {"content": "k9=v9"})
    assert execute_call(context, add).startswith("Added ")
    assert execute_call(context, ToolCall("y", "memory_delete", {"id": "zz"})).startswith(
        "Error: id 'zz' is not in context"
    )
