"""DCPO (Dynamic Context Policy Optimization): policy gradient over edited, non-prefix contexts.

Each edit breaks the context's prefix property, so a trajectory is cut into segments at its edits:
a segment is the context exactly as the agent saw it just before an edit (plus one from the final
context), and its loss mask covers only the agent tokens generated since the previous edit. Every
segment's log-probabilities then come from one forward pass over a context the agent really saw.

References
----------
Zhang et al., "Memory as Action: Autonomous Context Curation for Long-Horizon Agentic Tasks",
2025, arXiv:2510.12635.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from strategies.memact.codec import ROLE_AGENT, RecallCodec
from strategies.memact.policy import TinyCurationPolicy, legal_mask
from strategies.memact.rollout import Trajectory, run_episode

__all__ = [
    "DCPOTrainer",
    "Segment",
    "build_segments",
    "clipped_pg_loss",
    "sample_segments",
    "segment_advantages",
]


@dataclasses.dataclass
class Segment:
    """One training segment: a context the agent saw, and which of its tokens to train on.

    Attributes
    ----------
    tokens, roles
        The context's tokens and their roles.
    mask
        True on the tokens that enter the loss.
    trajectory, group
        IDs of the trajectory it was cut from and of that trajectory's group.
    reward
        The trajectory's reward, shared by all its segments.
    """

    tokens: np.ndarray
    roles: np.ndarray
    mask: np.ndarray
    trajectory: int = 0
    group: int = 0
    reward: float = 0.0


def build_segments(
    trajectory: Trajectory,
    *,
    mode: str = "dcpo",
    final_mask: str = "own",
    trajectory_id: int = 0,
    group: int = 0,
) -> list[Segment]:
    """Cut a trajectory into training segments.

    - ``mode="dcpo"``: one segment per edit snapshot, masked on the agent tokens generated in
      that context version (since the previous edit, the edit turn included), and one from the
      final context, masked on its own agent tokens (``final_mask="own"``) or on every agent
      token left in context (``final_mask="all"``).
    - ``mode="final"``: the naive trainer, one segment from the final edited context masked on
      every agent token in it (tokens generated under contexts that no longer exist).

    Examples
    --------
    >>> from strategies.memact.rollout import ContextSnapshot
    >>> snap = ContextSnapshot(np.arange(4), np.array([0, 1, 3, 3]), np.array([-1, -1, 0, 1]),
    ...                        version=1, final=True)
    >>> trajectory = Trajectory(1.0, True, 1.0, False, [snap], [], [], 1)
    >>> build_segments(trajectory)[0].mask.tolist()
    [False, False, False, True]
    >>> build_segments(trajectory, mode="final")[0].mask.tolist()
    [False, False, True, True]
    """
    if mode not in ("dcpo", "final"):
        raise ValueError(f"mode must be 'dcpo' or 'final', got {mode!r}")
    if final_mask not in ("own", "all"):
        raise ValueError(f"final_mask must be 'own' or 'all', got {final_mask!r}")
    snapshots = trajectory.snapshots if mode == "dcpo" else trajectory.snapshots[-1:]
    segments = []
    for snap in snapshots:
        agent = snap.roles == ROLE_AGENT
        everything = mode == "final" or (snap.final and final_mask == "all")
        mask = agent if everything else agent & (snap.versions == snap.version)
        segments.append(
            Segment(snap.tokens, snap.roles, mask, trajectory_id, group, trajectory.reward)
        )
    return segments


def segment_advantages(
    trajectory_ids: Sequence[int],
    rewards: Sequence[float],
    groups: Sequence[int],
    *,
    normalize_std: bool = True,
    eps: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """GRPO advantages for segments, with group statistics over *unique* trajectories.

    Each segment carries its trajectory's reward. Within a group, mean and (unbiased, ddof=1)
    standard deviation are taken over the distinct trajectories, so a trajectory cut into many
    segments does not weigh more. ``A = (R - mean) / (std + eps)`` (or ``R - mean`` without
    ``normalize_std``). Groups whose trajectories all have the same reward teach nothing: their
    segments get ``keep=False``.

    Returns
    -------
    advantages, keep
        One value per segment.

    Examples
    --------
    >>> adv, keep = segment_advantages([0, 0, 1], [1.0, 1.0, 0.0], [0, 0, 0])
    >>> np.round(adv, 4).tolist(), keep.tolist()
    ([0.7071, 0.7071, -0.7071], [True, True, True])
    """
    trajectory_ids, groups = np.asarray(trajectory_ids), np.asarray(groups)
    rewards = np.asarray(rewards, dtype=np.float64)
    if not len(trajectory_ids) == len(rewards) == len(groups):
        raise ValueError(
            f"trajectory_ids, rewards and groups must have one entry per segment, got lengths "
            f"{len(trajectory_ids)}, {len(rewards)} and {len(groups)}"
        )
    advantages = np.zeros(len(rewards))
    keep = np.zeros(len(rewards), dtype=bool)
    for group in np.unique(groups):
        in_group = groups == group
        _, first = np.unique(trajectory_ids[in_group], return_index=True)
        unique_rewards = rewards[in_group][first]
        if len(unique_rewards) < 2 or np.ptp(unique_rewards) == 0:
            continue
        centred = rewards[in_group] - unique_rewards.mean()
        if normalize_std:
            centred = centred / (unique_rewards.std(ddof=1) + eps)
        advantages[in_group] = centred
        keep[in_group] = True
    return advantages, keep


def sample_segments(trajectory_ids: Sequence[int], n: int, rng: np.random.Generator) -> list[int]:
    """Pick ``n`` segment indices from one group, spreading them over trajectories.

    One segment from each of ``n`` distinct trajectories when there are enough; otherwise
    round-robin over the trajectories, preferring segments not used yet; segments repeat only
    when all have been used.

    Examples
    --------
    >>> picks = sample_segments([0, 0, 1, 2, 2, 2], 3, np.random.default_rng(0))
    >>> sorted({[0, 0, 1, 2, 2, 2][i] for i in picks})
    [0, 1, 2]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    trajectory_ids = np.asarray(trajectory_ids)
    if trajectory_ids.size == 0:
        return []
    owners = [int(t) for t in rng.permutation(np.unique(trajectory_ids))]
    pools = {t: list(rng.permutation(np.flatnonzero(trajectory_ids == t))) for t in owners}
    used: set[int] = set()
    chosen: list[int] = []
    while len(chosen) < n:
        if len(used) == trajectory_ids.size:
            used.clear()
        for owner in owners:
            fresh = [int(i) for i in pools[owner] if i not in used]
            if fresh and len(chosen) < n:
                chosen.append(fresh[0])
                used.add(fresh[0])
    return chosen


def clipped_pg_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float = 0.2,
    kl_coef: float = 1e-3,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clipped policy-gradient loss plus a KL penalty to a frozen reference, no entropy bonus.

    Per masked token: ``-min(r A, clip(r, 1-clip, 1+clip) A) + kl_coef * KL`` with
    ``r = exp(logp - old_logp)`` and the k3 estimator ``KL = exp(ref - logp) - (ref - logp) - 1``;
    averaged over all masked tokens of the batch.

    Parameters
    ----------
    logp, old_logp, ref_logp
        ``[batch, length]`` token log-probabilities under the policy, the policy that sampled,
        and the reference.
    advantages
        ``[batch]``, one per segment.
    mask
        ``[batch, length]`` bool, the tokens trained on.

    Examples
    --------
    >>> logp = torch.log(torch.tensor([[0.5, 0.5]]))
    >>> loss, stats = clipped_pg_loss(logp, logp, logp, torch.tensor([1.0]),
    ...                               torch.tensor([[True, False]]))
    >>> round(loss.item(), 4), stats["kl"]
    (-1.0, 0.0)
    """
    mask = mask.to(logp.dtype)
    n_tokens = mask.sum().clamp(min=1)
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(-1)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    log_ratio_ref = ref_logp - logp
    kl = torch.exp(log_ratio_ref) - log_ratio_ref - 1
    loss = ((-surrogate + kl_coef * kl) * mask).sum() / n_tokens
    clipped = ((ratio - 1).abs() > clip).to(logp.dtype)
    stats = {
        "kl": float((kl.detach() * mask).sum() / n_tokens),
        "clip_fraction": float((clipped.detach() * mask).sum() / n_tokens),
    }
    return loss, stats


def _batch(segments: Sequence[Segment], codec: RecallCodec) -> dict[str, torch.Tensor]:
    length = max(len(s.tokens) for s in segments)
    count, vocab = len(segments), codec.vocab_size
    tokens = torch.zeros(count, length, dtype=torch.long)
    roles = torch.full((count, length), ROLE_AGENT, dtype=torch.long)  # padding: one per position
    mask = torch.zeros(count, length, dtype=torch.bool)
    legal = torch.zeros(count, length, vocab, dtype=torch.bool)
    legal[..., codec.token("NOOP")] = True
    for row, segment in enumerate(segments):
        n = len(segment.tokens)
        tokens[row, :n] = torch.as_tensor(segment.tokens)
        roles[row, :n] = torch.as_tensor(segment.roles)
        mask[row, :n] = torch.as_tensor(segment.mask)
        legal[row, :n] = torch.as_tensor(legal_mask(segment.tokens, segment.roles, codec)[:n])
    return {"tokens": tokens, "roles": roles, "mask": mask, "legal": legal}


class DCPOTrainer:
    """Train a :class:`TinyCurationPolicy` with DCPO (or the naive final-sequence trainer).

    One :meth:`update`: for each episode of the batch, roll out ``group_size`` trajectories
    (a fraction ``explore_fraction`` of them without the edit tool), cut them into segments,
    compute group advantages over unique trajectories (skipping zero-variance groups), keep
    ``segments_per_group`` segments per group, and take ``ppo_epochs`` optimizer steps on the
    clipped loss with a KL term to the frozen reference (the policy as it was when the trainer
    was made, i.e. after the warm start).

    Parameters
    ----------
    policy
        The policy to train (changed in place).
    codec
        The token codec the policy reads.
    group_size, segments_per_group
        Trajectories per episode (G) and segments kept per group (n).
    lr, clip, kl_coef, ppo_epochs
        Optimizer and loss settings.
    explore_fraction
        Share of each group rolled out with no edit tool.
    normalize_std, final_mask, mode
        See :func:`segment_advantages` and :func:`build_segments`.
    partial
        Train on partial-credit rewards.
    budget
        Context budget override in bytes (None: each episode's budget).
    seed
        Seed of sampling.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> _ = torch.manual_seed(0)
    >>> codec = RecallCodec()
    >>> obs = [SimpleNamespace(id=f"id{i}", text=f"k{i % 3}=v{i}") for i in range(4)]
    >>> episode = SimpleNamespace(questions=("k0",), observations=obs, budget=200,
    ...     instruction="Remember: k0", reward=lambda a, partial=None: float(a == {"k0": "v3"}))
    >>> trainer = DCPOTrainer(TinyCurationPolicy(codec.vocab_size), codec, group_size=4, seed=0)
    >>> stats = trainer.update([episode])
    >>> sorted(stats)[:3]
    ['clip_fraction', 'edits', 'kl']
    """

    def __init__(
        self,
        policy: TinyCurationPolicy,
        codec: RecallCodec,
        *,
        group_size: int = 8,
        segments_per_group: int = 12,
        lr: float = 1e-3,
        clip: float = 0.2,
        kl_coef: float = 1e-3,
        ppo_epochs: int = 1,
        explore_fraction: float = 0.5,
        normalize_std: bool = True,
        final_mask: str = "own",
        mode: str = "dcpo",
        partial: bool = False,
        budget: int | None = None,
        seed: int = 0,
    ) -> None:
        self.policy = policy
        self.codec = codec
        self.group_size = group_size
        self.segments_per_group = segments_per_group
        self.lr = lr
        self.clip = clip
        self.kl_coef = kl_coef
        self.ppo_epochs = ppo_epochs
        self.explore_fraction = explore_fraction
        self.normalize_std = normalize_std
        self.final_mask = final_mask
        self.mode = mode
        self.partial = partial
        self.budget = budget
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self.reference_ = copy.deepcopy(self.policy).requires_grad_(False)
        self.optimizer_ = torch.optim.Adam(self.policy.parameters(), lr=self.lr)
        self.rng_ = np.random.default_rng(self.seed)
        self.generator_ = torch.Generator().manual_seed(self.seed)
        self.history_: list[dict[str, float]] = []

    def _rollout(self, episode: Any, edits: bool, **kwargs: Any) -> Trajectory:
        return run_episode(
            episode,
            self.policy,
            budget=self.budget,
            edits=edits,
            partial=self.partial,
            generator=self.generator_,
            codec=dataclasses.replace(self.codec, slots={}),
            **kwargs,
        )

    def collect(self, episodes: Sequence[Any]) -> tuple[list[Segment], list[Trajectory]]:
        """Roll out every episode ``group_size`` times; return all segments and trajectories."""
        n_plain = round(self.explore_fraction * self.group_size)
        segments, trajectories = [], []
        self.policy.eval()
        for group, episode in enumerate(episodes):
            for k in range(self.group_size):
                trajectory = self._rollout(episode, edits=k >= n_plain)
                segments += build_segments(
                    trajectory,
                    mode=self.mode,
                    final_mask=self.final_mask,
                    trajectory_id=len(trajectories),
                    group=group,
                )
                trajectories.append(trajectory)
        return segments, trajectories

    def select(self, segments: Sequence[Segment]) -> tuple[list[Segment], np.ndarray]:
        """Advantages, zero-variance groups dropped, then ``segments_per_group`` per group."""
        advantages, keep = segment_advantages(
            [s.trajectory for s in segments],
            [s.reward for s in segments],
            [s.group for s in segments],
            normalize_std=self.normalize_std,
        )
        chosen: list[int] = []
        groups = np.array([s.group for s in segments])
        for group in np.unique(groups[keep]):
            members = np.flatnonzero((groups == group) & keep)
            members = members[[bool(segments[i].mask.any()) for i in members]]
            if members.size:
                owners = [segments[i].trajectory for i in members]
                picks = sample_segments(owners, self.segments_per_group, self.rng_)
                chosen += [int(members[p]) for p in picks]
        return [segments[i] for i in chosen], advantages[chosen]

    def _step(self, segments: Sequence[Segment], advantages: np.ndarray) -> dict[str, float]:
        batch = _batch(segments, self.codec)
        args = (batch["tokens"], batch["roles"], batch["legal"])
        with torch.no_grad():
            old_logp = self.policy.token_logprobs(*args)
            ref_logp = self.reference_.token_logprobs(*args)
        stats: dict[str, float] = {}
        self.policy.train()
        for _ in range(self.ppo_epochs):
            logp = self.policy.token_logprobs(*args)
            loss, stats = clipped_pg_loss(
                logp,
                old_logp,
                ref_logp,
                torch.as_tensor(advantages, dtype=logp.dtype),
                batch["mask"],
                clip=self.clip,
                kl_coef=self.kl_coef,
            )
            self.optimizer_.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 1.0)
            self.optimizer_.step()
        self.policy.eval()
        return {**stats, "loss": float(loss.detach())}

    def update(self, episodes: Sequence[Any]) -> dict[str, float]:
        """One DCPO update on a batch of episodes; returns its statistics."""
        start = time.perf_counter()
        segments, trajectories = self.collect(episodes)
        chosen, advantages = self.select(segments)
        stats = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0}
        if chosen:
            stats = self._step(chosen, advantages)
        edited = [t for t in trajectories if t.edits_allowed]
        stats.update(
            reward=float(np.mean([t.reward for t in edited])),
            success=float(np.mean([t.success for t in edited])),
            edits=float(np.mean([t.n_edits for t in edited])),
            segments=float(len(chosen)),
            seconds=time.perf_counter() - start,
        )
        self.history_.append(stats)
        return stats

    def warm_start(
        self,
        episodes: Sequence[Any],
        teacher: Any,
        *,
        epochs: int = 3,
        batch_size: int = 16,
        lr: float | None = None,
        progress: Callable[[Any], Any] = iter,
    ) -> list[float]:
        """Behaviour cloning (the cold start): maximise the policy's log-probability of the
        teacher's turns, segment by segment (DCPO segments of the teacher's trajectories).

        It uses its own Adam optimizer with learning rate ``lr`` (default: the trainer's).
        The reference policy is reset to the cloned policy afterwards, and the DCPO
        optimizer starts afresh. Returns the mean negative log-likelihood per epoch.
        """
        optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr if lr is None else lr)
        segments = []
        for episode in episodes:
            trajectory = run_episode(
                episode,
                teacher,
                budget=self.budget,
                codec=dataclasses.replace(self.codec, slots={}),
            )
            segments += build_segments(trajectory, final_mask="own")
        segments = [s for s in segments if s.mask.any()]
        losses = []
        self.policy.train()
        for _ in progress(range(epochs)):
            order = self.rng_.permutation(len(segments))
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                chunk = [segments[i] for i in order[start : start + batch_size]]
                batch = _batch(chunk, self.codec)
                logp = self.policy.token_logprobs(batch["tokens"], batch["roles"], batch["legal"])
                mask = batch["mask"].to(logp.dtype)
                loss = -(logp * mask).sum() / mask.sum().clamp(min=1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(chunk)
                count += len(chunk)
            losses.append(total / max(count, 1))
        self.policy.eval()
        self.reference_ = copy.deepcopy(self.policy).requires_grad_(False)
        self.optimizer_ = torch.optim.Adam(self.policy.parameters(), lr=self.lr)
        return losses
