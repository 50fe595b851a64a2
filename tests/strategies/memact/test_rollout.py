"""The episode loop: the budget cap, bad budgets, exploration rollouts and bookkeeping."""

from types import SimpleNamespace

from continual import MemoryAccountant
from strategies.memact import KeepEverything, QueriedKeysCurator, read_answer, run_episode
from strategies.memact.codec import RecallCodec


def _episode(budget):
    observations = [SimpleNamespace(id=f"i{t}", text=f"k{t % 2}=v{t} w1 w2") for t in range(6)]
    return SimpleNamespace(
        questions=("k1",),
        observations=observations,
        budget=budget,
        instruction="Remember the latest value of: k1",
        reward=lambda answer, partial=None: (
            0.0 if answer is None else float(answer.get("k1") == "v5")
        ),
    )


def test_the_budget_cap_ends_the_episode_with_reward_zero():
    # instruction: TOOL BOS Q k1 = 4 tokens; each step: 5 observation tokens + 1 NOOP
    trajectory = run_episode(_episode(budget=4 * (4 + 3 * 6 + 5)), KeepEverything())
    assert trajectory.overflow and trajectory.reward == 0.0 and trajectory.answer is None
    assert trajectory.error == "the context ran over its budget of 108 bytes"
    # step 4: the observation still fits (88 + 20 = 108 bytes), the NOOP turn does not
    assert trajectory.bytes_per_step == [4 * (4 + 6), 4 * (4 + 12), 4 * (4 + 18), 4 * (4 + 24)]
    assert trajectory.tokens_per_step == [10, 16, 22, 28]
    exact = run_episode(_episode(budget=4 * (4 + 6 * 6)), KeepEverything())
    assert not exact.overflow and exact.success and exact.bytes_per_step[-1] == 160


def test_a_budget_smaller_than_the_instruction_is_an_error_not_an_exception():
    trajectory = run_episode(_episode(budget=8), QueriedKeysCurator())
    assert trajectory.overflow and trajectory.reward == 0.0
    assert trajectory.error == "the budget of 8 bytes is smaller than the instruction (16 bytes)"


def test_curation_fits_where_keeping_everything_does_not():
    trajectory = run_episode(_episode(budget=108), QueriedKeysCurator())
    assert trajectory.success and not trajectory.overflow
    assert trajectory.n_edits == 5  # 3 distractors and 2 superseded k1 values
    assert max(trajectory.bytes_per_step) <= 108
    assert [s.final for s in trajectory.snapshots] == [False] * 5 + [True]


def test_exploration_rollouts_offer_no_edit_tool():
    codec = RecallCodec()
    trajectory = run_episode(_episode(budget=400), QueriedKeysCurator(), edits=False, codec=codec)
    assert trajectory.n_edits == 0 and not trajectory.edits_allowed
    final = trajectory.snapshots[-1]
    assert codec.token("TOOL") not in final.tokens
    assert (final.tokens == codec.token("ERR")).sum() == 5  # each attempted call is refused


def test_reader_and_partial_reward():
    trajectory = run_episode(_episode(budget=400), KeepEverything(), partial=True)
    assert trajectory.answer == {"k1": "v5"} and trajectory.reward == trajectory.partial == 1.0
    assert (
        read_answer(
            __import__("strategies.memact", fromlist=["WorkingMemory"]).WorkingMemory(), ["k1"]
        )
        == {}
    )


def test_context_is_charged_to_an_accountant_like_any_component():
    from strategies.memact import Message, WorkingMemory

    memory = WorkingMemory(
        [Message("user", "Remember the latest value of: k1")],
        charge="tokens",
        tokenizer=RecallCodec().encode_message,
    )
    accountant = MemoryAccountant(100)
    accountant.track("context", memory)
    assert accountant.total() == 3 * 4 and memory.n_tokens == 3
