"""DCPO: segment masks on a hand-built trajectory, advantages by hand, sampling and the loss."""

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from strategies.memact import (
    DCPOTrainer,
    RecallCodec,
    TinyCurationPolicy,
    build_segments,
    clipped_pg_loss,
    make_curator,
    prune_turn,
    run_episode,
    sample_segments,
    segment_advantages,
)


class Scripted:
    """Deletes the listed IDs at each step (None: NOOP)."""

    def __init__(self, plan):
        self.plan = list(plan)

    def act(self, state):
        step = self.plan.pop(0)
        return prune_turn([] if step is None else [step])


def _episode(reward_answer=None):
    observations = [
        SimpleNamespace(id="o1", text="k0=v1"),
        SimpleNamespace(id="o2", text="k1=v2"),
        SimpleNamespace(id="o3", text="k0=v3"),
    ]
    return SimpleNamespace(
        questions=("k0",),
        observations=observations,
        budget=1000,
        instruction="Remember the latest value of: k0",
        reward=lambda answer, partial=None: float(answer == {"k0": "v3"}),
    )


# Codec (defaults): PAD 0 BOS 1 TOOL 2 Q 3 NOOP 4 OK 5; keys from 9, values from 25, IDs from 41.
TOOL, BOS, Q, NOOP, OK = 2, 1, 3, 4, 5
K0, K1, V1, V2, V3 = 9, 10, 26, 27, 28
ID_O1, ID_O2, ID_O3 = 41, 42, 43


@pytest.fixture
def trajectory():
    # step 1: NOOP; step 2: delete o2 (a distractor); step 3: delete o1 (superseded by o3)
    return run_episode(_episode(), Scripted([None, "o2", "o1"]))


def test_snapshots_are_the_contexts_the_agent_saw(trajectory):
    assert trajectory.success and trajectory.n_edits == 2
    first, second, final = trajectory.snapshots
    # an observation is "key value ID" (roles 2 2 1); an agent turn is one token (role 3)
    assert first.tokens.tolist() == [TOOL, BOS, Q, K0, K0, V1, ID_O1, NOOP, K1, V2, ID_O2, ID_O2]
    assert first.roles.tolist() == [0, 0, 0, 0, 2, 2, 1, 3, 2, 2, 1, 3]
    assert second.tokens.tolist() == [
        *(TOOL, BOS, Q, K0, K0, V1, ID_O1, NOOP, ID_O2, OK),
        *(K0, V3, ID_O3, ID_O1),
    ]
    assert final.final
    assert final.tokens.tolist() == [TOOL, BOS, Q, K0, NOOP, ID_O2, OK, K0, V3, ID_O3, ID_O1, OK]


def test_segment_masks_match_hand_written_masks(trajectory):
    segments = build_segments(trajectory, trajectory_id=7, group=3)
    expected = [
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],  # NOOP and the first edit, both in version 0
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  # only the second edit: version 1
        [0] * 12,  # nothing was generated after the last edit
    ]
    assert [s.mask.astype(int).tolist() for s in segments] == expected
    assert {(s.trajectory, s.group, s.reward) for s in segments} == {(7, 3, 1.0)}
    final_all = build_segments(trajectory, final_mask="all")[-1].mask
    assert np.flatnonzero(final_all).tolist() == [4, 5, 10]
    naive = build_segments(trajectory, mode="final")
    assert len(naive) == 1 and np.flatnonzero(naive[0].mask).tolist() == [4, 5, 10]


def test_segment_options_are_validated(trajectory):
    with pytest.raises(ValueError, match="mode must be 'dcpo' or 'final', got 'x'"):
        build_segments(trajectory, mode="x")
    with pytest.raises(ValueError, match="final_mask must be 'own' or 'all', got 'mine'"):
        build_segments(trajectory, final_mask="mine")


def test_advantages_by_hand_with_deduplication_by_trajectory():
    # group 0: trajectory 0 (3 segments, R=1), 1 (1 segment, R=0), 2 (2 segments, R=0)
    # group 1: trajectories 3 and 4 both R=1 -> zero variance -> skipped
    ids = [0, 0, 0, 1, 2, 2, 3, 4]
    rewards = [1, 1, 1, 0, 0, 0, 1, 1]
    groups = [0, 0, 0, 0, 0, 0, 1, 1]
    mean = 1 / 3  # over the 3 unique trajectories (per segment it would be 0.5)
    std = math.sqrt(((1 - mean) ** 2 + 2 * mean**2) / 2)  # ddof=1 over unique trajectories
    adv, keep = segment_advantages(ids, rewards, groups)
    high, low = (1 - mean) / (std + 1e-6), -mean / (std + 1e-6)
    np.testing.assert_allclose(adv, [high] * 3 + [low] * 3 + [0, 0])
    assert keep.tolist() == [True] * 6 + [False] * 2
    adv, _ = segment_advantages(ids, rewards, groups, normalize_std=False)
    np.testing.assert_allclose(adv[:6], [2 / 3] * 3 + [-1 / 3] * 3)
    with pytest.raises(ValueError, match="one entry per segment, got lengths 2, 1 and 2"):
        segment_advantages([0, 1], [1.0], [0, 0])


def test_segment_sampling_spreads_over_trajectories():
    owners = [0, 0, 1, 2, 2, 2]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        two = sample_segments(owners, 2, rng)
        assert len({owners[i] for i in two}) == 2
        five = sample_segments(owners, 5, rng)
        assert len(set(five)) == 5 and {owners[i] for i in five} == {0, 1, 2}
        eight = sample_segments(owners, 8, rng)
        assert sorted(set(eight)) == list(range(6)) and len(eight) == 8
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        sample_segments(owners, 0, np.random.default_rng(0))


def test_clipped_loss_by_hand():
    logp = torch.tensor([[0.0, -0.5, -1.0]])
    old = torch.tensor([[0.0, -1.0, -0.9]])
    ref = torch.tensor([[0.0, -0.7, -1.2]])
    mask = torch.tensor([[False, True, True]])
    adv = torch.tensor([2.0])
    loss, stats = clipped_pg_loss(logp, old, ref, adv, mask, clip=0.2, kl_coef=0.1)
    expected = 0.0
    for lp, o, r in [(-0.5, -1.0, -0.7), (-1.0, -0.9, -1.2)]:
        ratio = math.exp(lp - o)
        surrogate = min(ratio * 2, min(max(ratio, 0.8), 1.2) * 2)
        kl = math.exp(r - lp) - (r - lp) - 1
        expected += -surrogate + 0.1 * kl
    assert loss.item() == pytest.approx(expected / 2, rel=1e-5)
    assert stats["clip_fraction"] == pytest.approx(0.5)


def _policy(seed=0, **shape):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        shape = {"d_model": 32, "n_layers": 1, **shape}
        return TinyCurationPolicy(RecallCodec().vocab_size, **shape)


def test_trainer_update_and_warm_start_change_the_policy():
    codec = RecallCodec()
    policy = _policy()
    trainer = DCPOTrainer(policy, codec, group_size=4, seed=0)
    before = [p.detach().clone() for p in policy.parameters()]
    losses = trainer.warm_start([_episode()] * 4, make_curator("queried_keys"), epochs=8)
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    reference = [p.detach().clone() for p in trainer.reference.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(reference, policy.parameters()))
    assert not any(p.requires_grad for p in trainer.reference.parameters())
    assert not trainer.optimizer.state  # DCPO's optimizer starts afresh after the warm start
    stats = trainer.update([_episode(), _episode()])
    assert {"loss", "kl", "clip_fraction", "reward", "success", "edits", "segments"} == set(stats)
    assert stats["segments"] <= 2 * trainer.segments_per_group
    # the reference stays frozen
    assert all(torch.equal(a, b) for a, b in zip(reference, trainer.reference.parameters()))


def test_train_keeps_only_the_last_calls_history_and_records_the_ledger():
    trainer = DCPOTrainer(_policy(d_model=16), RecallCodec(), group_size=2, seed=0)
    episodes = [_episode(), _episode()]
    assert len(trainer.train(episodes, n_updates=3, episodes_per_update=1, index=0)) == 3
    losses = trainer.train(episodes, n_updates=2, episodes_per_update=1, index=1)
    assert losses == trainer.losses == [h["loss"] for h in trainer.history]
    assert len(trainer.history) == 2 and trainer.n_updates_done == 5 and trainer.n_trained == 2
    assert [step for step, _ in trainer.accountant.timeline()] == [0, 1]
    assert trainer.batch is None and trainer.loss is None and trainer.output is None


def test_optimizer_account_reserves_adams_state_before_the_first_step():
    trainer = DCPOTrainer(_policy(d_model=16), RecallCodec(), seed=0)
    params = list(trainer.model.parameters())
    n_weights = sum(p.numel() for p in params)
    expected = 4 * 2 * n_weights + 4 * len(params)  # two float32 moments, a float32 step
    assert not trainer.optimizer.state
    assert trainer.accountant.ledger().accounts["optimizer"] == expected
    for p in params:
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()
    assert trainer.accountant.ledger().accounts["optimizer"] == expected


def test_state_dict_round_trip_resumes_sampling_identically():
    episodes = [_episode(), _episode()]
    a = DCPOTrainer(_policy(d_model=16), RecallCodec(), group_size=4, seed=5)
    a.train(episodes, n_updates=2, episodes_per_update=2)
    b = DCPOTrainer(_policy(seed=1, d_model=16), RecallCodec(), group_size=4, seed=99)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert a.train(episodes, n_updates=2, episodes_per_update=2) == b.train(
        episodes, n_updates=2, episodes_per_update=2
    )
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
