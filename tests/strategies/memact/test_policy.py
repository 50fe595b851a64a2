"""Legal-action masking of the tiny policy, and the chat-model path with a scripted model."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from strategies.memact import (
    PRUNE_TOOL,
    ChatModelPolicy,
    CurationPolicy,
    CurationState,
    Message,
    RecallCodec,
    TinyCurationPolicy,
    WorkingMemory,
    legal_mask,
    run_episode,
)
from strategies.memact.rollout import EDIT_INSTRUCTIONS


def _memory(with_tool=True):
    messages = [Message("system", EDIT_INSTRUCTIONS)] if with_tool else []
    messages += [
        Message("user", "Remember the latest value of: k0"),
        Message("tool", "k0=v1 w2", id="aaaaaaaa"),
        Message("assistant", "noop", version=0),
        Message("tool", "k1=v2 w5", id="bbbbbbbb"),
    ]
    return WorkingMemory(messages)


def test_only_ids_in_context_and_noop_are_legal():
    codec = RecallCodec()
    tokens, roles, _ = codec.encode(_memory())
    mask = legal_mask(tokens, roles, codec)
    assert mask.shape == (len(tokens) + 1, codec.vocab_size)
    first, second = codec.slot("aaaaaaaa"), codec.slot("bbbbbbbb")
    assert np.flatnonzero(mask[-1]).tolist() == [codec.token("NOOP"), first, second]
    obs2 = int(np.flatnonzero(tokens == second)[0])
    assert np.flatnonzero(mask[obs2]).tolist() == [codec.token("NOOP"), first]
    tokens, roles, _ = codec.encode(_memory(with_tool=False))
    assert np.flatnonzero(legal_mask(tokens, roles, codec)[-1]).tolist() == [codec.token("NOOP")]


@pytest.mark.parametrize("id_range", [None, "codec"])
def test_policy_samples_only_legal_actions_and_logprobs_normalise(id_range):
    torch.manual_seed(0)
    codec = RecallCodec()
    ids = (codec.slot_base, codec.vocab_size) if id_range else None
    policy = TinyCurationPolicy(codec.vocab_size, d_model=32, n_layers=1, id_range=ids)
    assert isinstance(policy, CurationPolicy)
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(30):
        turn = policy.act(CurationState(_memory(), codec=codec), generator=generator)
        seen.add(tuple(turn.calls[0].arguments["delete_ids"]) if turn.calls else ())
    assert seen <= {(), ("aaaaaaaa",), ("bbbbbbbb",)} and len(seen) > 1
    turn = policy.act(CurationState(_memory(with_tool=False), codec=codec), greedy=True)
    assert turn.content == "noop" and not turn.calls
    tokens, roles, _ = codec.encode(_memory())
    legal = torch.as_tensor(legal_mask(tokens, roles, codec)[: len(tokens)])
    x, r = torch.as_tensor(tokens)[None], torch.as_tensor(roles)[None]
    logp = policy.token_logprobs(x, r, legal[None])
    probs = torch.softmax(
        policy(x, r)[0, -1].masked_fill(
            ~torch.as_tensor(legal_mask(tokens, roles, codec)[-1]), float("-inf")
        ),
        -1,
    )
    assert probs.sum().item() == pytest.approx(1.0)
    assert (probs > 0).sum().item() == 3
    assert logp.shape == x.shape and torch.isfinite(logp).all()


def test_policy_rejects_missing_codec_and_long_contexts():
    policy = TinyCurationPolicy(RecallCodec().vocab_size, d_model=16, n_layers=1, max_len=4)
    with pytest.raises(ValueError, match=r"state\.codec must be a RecallCodec"):
        policy.act(CurationState(_memory()))
    with pytest.raises(ValueError, match="context of 5 positions is longer than max_len=4"):
        policy(torch.zeros(1, 5, dtype=torch.long), torch.full((1, 5), 3))  # 5 agent turns


class ScriptedChat:
    """Follows the tool schema with a fixed script and records what it was shown."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.seen = []

    def __call__(self, messages, tools):
        self.seen.append((messages, tools))
        return self.replies.pop(0)


def _call(arguments, call_id="c1", name="prune_context"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_scripted_chat_model_runs_an_episode_and_reads_its_errors():
    observations = [
        SimpleNamespace(id="id000001", text="k0=v1"),
        SimpleNamespace(id="id000002", text="k5=v2"),
        SimpleNamespace(id="id000003", text="k5=v3"),
        SimpleNamespace(id="id000004", text="k0=v4"),
        SimpleNamespace(id="id000005", text="k7=v4"),
    ]
    episode = SimpleNamespace(
        questions=("k0",),
        observations=observations,
        budget=10_000,
        instruction="Remember the latest value of: k0",
        reward=lambda answer, partial=None: float(answer == {"k0": "v4"}),
    )
    chat = ScriptedChat(
        [
            {"content": "", "tool_calls": [_call("{not json")]},  # malformed arguments
            {
                "content": "",
                "tool_calls": [
                    _call(json.dumps({"memory": "k0 is v1", "delete_ids": ["invented"]}))
                ],
            },  # an invented ID
            {
                "content": "",
                "tool_calls": [
                    _call(
                        json.dumps({"memory": "k0 is v1", "delete_ids": ["id000002", "id000003"]})
                    )
                ],
            },
            {
                "content": "",
                "tool_calls": [_call(json.dumps({"memory": "", "delete_ids": ["id000001"]}))],
            },  # empty memory
            "not a reply",  # malformed reply
        ]
    )
    trajectory = run_episode(episode, ChatModelPolicy(chat), charge="text")
    assert trajectory.success and trajectory.n_edits == 1
    messages, tools = chat.seen[1]
    assert tools == [PRUNE_TOOL]
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    # each turn's result comes back before the next observation
    assert messages[-3]["tool_calls"][0]["function"]["name"] == "prune_context"
    assert messages[-2] == {"role": "tool", "content": messages[-2]["content"]}
    assert messages[-2]["content"].startswith("Error: arguments of prune_context must be a JSON")
    assert messages[-1] == {"role": "tool", "content": "k5=v2", "tool_call_id": "id000002"}
    assert chat.seen[2][0][-2]["content"] == (
        "Deleted 0 item(s). Not in context, nothing deleted: invented."
    )
    assert chat.seen[3][0][-2]["content"] == "Deleted 2 item(s): id000002, id000003."
    shown = [m.get("tool_call_id") for m in chat.seen[3][0]]
    assert "id000002" not in shown and "id000003" not in shown and "id000001" in shown
    assert chat.seen[4][0][-2]["content"].startswith("Error: memory must be a non-empty string")


def test_chat_policy_has_no_segment_logprobs():
    with pytest.raises(NotImplementedError, match="cannot return segment log-probabilities"):
        ChatModelPolicy(lambda m, t: {}).segment_logprobs(None)


def test_results_and_the_instruction_are_compound_positions():
    """A tool result's tokens form one position: changing its filler or the number of
    questions does not shift the positions after it."""
    torch.manual_seed(0)
    codec = RecallCodec()
    policy = TinyCurationPolicy(codec.vocab_size, d_model=16, n_layers=1)
    short = WorkingMemory(
        [
            Message("system", EDIT_INSTRUCTIONS),
            Message("user", "Remember the latest value of: k0"),
            Message("tool", "k0=v1", id="aaaaaaaa"),
        ]
    )
    long = WorkingMemory(
        [
            Message("system", EDIT_INSTRUCTIONS),
            Message("user", "Remember the latest value of: k0 k3"),
            Message("tool", "k0=v1 w1 w2 w3", id="aaaaaaaa"),
        ]
    )
    logits = []
    for memory in (short, long):
        tokens, roles, _ = codec.encode(memory)
        logits.append(policy(torch.as_tensor(tokens)[None], torch.as_tensor(roles)[None]))
    assert logits[0].shape[1] == 7 and logits[1].shape[1] == 11  # one row per token
    # 2 positions either way (instruction, result): the last rows differ only by content
    assert not torch.allclose(logits[0][0, -1], logits[1][0, -1])
    assert torch.equal(logits[1][0, 0], logits[1][0, 4])  # all instruction tokens share a row


def test_scripted_chat_model_with_mem0_item_tools():
    observations = [
        SimpleNamespace(id="id000001", text="k0=v1"),
        SimpleNamespace(id="id000002", text="k0=v2"),
        SimpleNamespace(id="id000003", text="k4=v3"),
    ]
    episode = SimpleNamespace(
        questions=("k0",),
        observations=observations,
        budget=10_000,
        instruction="Remember the latest value of: k0",
        reward=lambda answer, partial=None: float(answer == {"k0": "v2"}),
    )
    add = json.dumps({"content": "note: k0 is v1"})
    chat = ScriptedChat(
        [
            {"tool_calls": [_call(add, "c1", "memory_add")]},
            {"tool_calls": [_call(json.dumps({"id": "id000001"}), "c2", "memory_delete")]},
            {
                "tool_calls": [
                    _call(json.dumps({"id": "nope", "content": "x"}), "c3", "memory_update")
                ]
            },
        ]
    )
    trajectory = run_episode(episode, ChatModelPolicy(chat), item_tools=True, charge="text")
    names = [t["function"]["name"] for t in chat.seen[0][1]]
    assert names == ["prune_context", "memory_add", "memory_update", "memory_delete"]
    assert trajectory.success and trajectory.n_edits == 2  # the add and the delete
    assert chat.seen[1][0][-2]["content"].startswith("Added ")
    assert chat.seen[2][0][-2]["content"] == "Deleted id000001."
    assert "id000001" not in [m.get("tool_call_id") for m in chat.seen[2][0]]
