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
import functools
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from continual.accountant import MemoryAccountant
from continual.devices import move_to
from continual.learner import Learner, optimizer_state_split
from continual.measure import Reservation, collect_blocks
from continual.plugin import Plugin, load_plugin_states, sync_accounts
from continual.progress import progress
from continual.state import load_rng_state, rng_state
from strategies.memact.codec import ROLE_AGENT, RecallCodec
from strategies.memact.evaluation import evaluate_policy
from strategies.memact.policy import TinyCurationPolicy, legal_mask
from strategies.memact.rollout import Trajectory, run_episode

__all__ = [
    "DCPOTrainer",
    "Segment",
    "build_segments",
    "clipped_pg_loss",
    "sample_segments",
    "segment_advantages",
    "segment_batch",
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


def segment_batch(segments: Sequence[Segment], codec: RecallCodec) -> dict[str, torch.Tensor]:
    """Pad segments into one batch: ``tokens``, ``roles``, ``mask`` ``[batch, length]`` and the
    ``legal`` next tokens ``[batch, length, vocab]`` (padding positions allow only ``NOOP``).

    Examples
    --------
    >>> codec = RecallCodec(n_keys=4, n_values=4, n_slots=8)
    >>> short = Segment(np.array([2, 1]), np.array([0, 0]), np.array([False, False]))
    >>> long = Segment(np.array([2, 1, 3]), np.array([0, 0, 0]), np.array([False, False, True]))
    >>> batch = segment_batch([short, long], codec)
    >>> batch["tokens"].tolist(), batch["mask"].sum().item(), tuple(batch["legal"].shape)
    ([[2, 1, 0], [2, 1, 3]], 1, (2, 3, 25))
    """
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


def _segment_logprobs(model: TinyCurationPolicy, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The warm start's forward: token log-probabilities of a batch of segments."""
    return model.token_logprobs(*inputs)


def _masked_nll(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The warm start's loss: mean negative log-likelihood of the masked (teacher) tokens."""
    weights = mask.to(logp.dtype)
    return -(logp * weights).sum() / weights.sum().clamp(min=1)


class DCPOTrainer:
    """Train a :class:`TinyCurationPolicy` with DCPO (or the naive final-sequence trainer).

    DCPO is reinforcement learning, not a supervised pass over data, so it has its own loop;
    it shares everything else with :class:`continual.Learner`: the accountant, the plugin
    hooks, the progress bars and the training-loss record.

    - :meth:`warm_start` (the cold start): behaviour cloning of a teacher curator, trained by
      :class:`continual.Learner` (a supervised loop); the frozen reference becomes the cloned
      policy.
    - :meth:`train` (one call of the estimator's ``partial_fit``): ``n_updates`` updates, each
      on ``episodes_per_update`` episodes drawn with replacement from the call's episodes.
    - :meth:`update`: for each episode of the batch, roll out ``group_size`` trajectories (a
      fraction ``explore_fraction`` of them without the edit tool), cut them into segments,
      compute group advantages over unique trajectories (skipping zero-variance groups), keep
      ``segments_per_group`` segments per group, and take ``ppo_epochs`` optimizer steps on
      the clipped loss with a KL term to the frozen reference.

    What it stores, charged to ``accountant`` (read it with ``accountant.ledger()``):
    ``policy`` (the trained weights), ``reference`` (the frozen copy for the KL term) and
    ``optimizer`` (Adam's two moments and step per parameter tensor, reserved before the
    first step; during the warm start, the cloning optimizer instead), plus every plugin's
    :meth:`~continual.plugin.Plugin.memory_items` as ``"<plugin name>/<key>"``. The budget is
    checked before and after each :meth:`train`, and the ledger is recorded after it.

    Devices: the trainer works where the policy's weights are (:attr:`device`; move the
    policy before building the trainer). Segment batches are built on the CPU and moved
    there; the sampling generators stay on the CPU (a rollout's choice is copied back at each
    turn anyway), so a seed draws the same way on every device.

    Plugin hooks (each receives the trainer): ``before_experience`` and ``after_experience``
    around a :meth:`train` call, ``before_batch`` and ``after_batch`` around each update,
    ``before_backward`` and ``after_backward`` around each optimizer step, ``before_eval``
    and ``after_eval`` around :meth:`evaluate`. The warm start calls no hooks.

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
    context_budget
        Context budget of the rollouts in bytes (None: each episode's budget).
    seed
        Seed of the sampling generators (rollouts, episode and segment draws, batch order).
    plugins
        :class:`continual.Plugin` objects, called in order at every hook.
    accountant
        The shared :class:`continual.MemoryAccountant`; a measure-only one when None.
    verbose
        0 for silence; otherwise progress bars.

    Attributes
    ----------
    model : TinyCurationPolicy
        The policy being trained (``policy``).
    reference : TinyCurationPolicy
        The frozen reference policy of the KL term.
    optimizer : torch.optim.Adam
        The DCPO optimizer.
    accountant : MemoryAccountant
        The shared accountant.
    experience
        The current :meth:`train` call, with ``index`` and ``train`` (its episodes).
    train_data : list
        The episodes updates draw from (``before_experience`` may replace it). Both are
        dropped after ``after_experience``: the trainer keeps no episode.
    batch : list
        The episodes of the current update (``before_batch`` may replace it).
    segments, advantages
        The segments chosen by the current update and their advantages.
    output, loss
        Token log-probabilities of ``segments`` and the clipped loss, at ``before_backward``
        (which may add loss terms to ``loss``).
    stats : dict
        Statistics of the last update, at ``after_batch``.
    stop_training : bool
        Set by a plugin to end the current :meth:`train` call after this update.
    losses, history : list
        The loss and the statistics of each update of the last :meth:`train` call only
        (bounded: older calls are dropped).
    n_trained, n_updates_done, n_steps : int
        :meth:`train` calls, updates and optimizer steps so far.
    optimizer_nbytes : dict of str to int
        Bytes of Adam's state once it has stepped (from shapes), per device, reserved in the
        ledger (moments on :attr:`device`, step counters on the CPU).
    codec, plugins
        The token codec and the plugins.
    rng, generator
        The numpy generator (episode and segment draws) and the torch generator (rollouts)
        of sampling; both are in :meth:`state_dict`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from continual import MemoryAccountant
    >>> codec = RecallCodec()
    >>> obs = [SimpleNamespace(id=f"id{i}", text=f"k{i % 3}=v{i}") for i in range(4)]
    >>> episode = SimpleNamespace(questions=("k0",), observations=obs, budget=200,
    ...     instruction="Remember: k0", reward=lambda a, partial=None: float(a == {"k0": "v3"}))
    >>> with torch.random.fork_rng():
    ...     _ = torch.manual_seed(0)
    ...     policy = TinyCurationPolicy(codec.vocab_size, d_model=16, n_layers=1)
    >>> trainer = DCPOTrainer(policy, codec, group_size=4, seed=0, accountant=MemoryAccountant())
    >>> losses = trainer.train([episode], n_updates=2, episodes_per_update=1)
    >>> len(losses), sorted(trainer.stats)
    (2, ['clip_fraction', 'edits', 'kl', 'loss', 'reward', 'segments', 'success'])
    >>> sorted(trainer.accountant.ledger().accounts)
    ['optimizer', 'policy', 'reference']
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
        context_budget: int | None = None,
        seed: int = 0,
        plugins: Sequence[Plugin] = (),
        accountant: MemoryAccountant | None = None,
        verbose: int = 0,
    ) -> None:
        self.model = policy
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
        self.context_budget = context_budget
        self.seed = seed
        self.plugins = list(plugins)
        self.accountant = MemoryAccountant() if accountant is None else accountant
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.reference = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = self._new_optimizer()
        params = list(self.model.parameters())
        self.optimizer_nbytes = optimizer_state_split("adam", params, self.device, lr=self.lr)
        self.rng = np.random.default_rng(self.seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.experience: Any = None
        self.train_data: list[Any] = []
        self.batch: list[Any] | None = None
        self.segments: list[Segment] = []
        self.advantages: np.ndarray | None = None
        self.output: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self.stats: dict[str, float] = {}
        self.stop_training = False
        self.losses: list[float] = []
        self.history: list[dict[str, float]] = []
        self.n_trained = self.n_updates_done = self.n_steps = 0
        self._warm_learner: Learner | None = None
        self._accounts: list[str] = []
        self._sync_accounts()

    def _new_optimizer(self) -> torch.optim.Adam:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    @property
    def device(self) -> torch.device:
        """The device of the policy's weights, where the reference, Adam's state and every
        training batch live too."""
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ training
    def train(
        self, episodes: Sequence[Any], *, n_updates: int, episodes_per_update: int, index: int = 0
    ) -> list[float]:
        """Run ``n_updates`` updates on ``episodes`` (one experience); return their losses.

        Each update draws ``episodes_per_update`` episodes with replacement from ``episodes``
        with :attr:`rng`. Calls ``before_experience``, then per update ``before_batch``,
        :meth:`update` and ``after_batch``, then ``after_experience``; checks the budget
        before and after, and records the ledger at step ``index``.
        """
        self.experience = SimpleNamespace(index=index, train=episodes)
        self.train_data = list(episodes)
        self.stop_training = False
        self.losses, self.history = [], []
        self._call("before_experience")
        self._sync_accounts()
        self.accountant.check(context=f"before experience {index}")
        try:
            for _ in progress(range(n_updates), verbose=self.verbose, desc="DCPO updates"):
                picks = self.rng.choice(len(self.train_data), size=episodes_per_update)
                self.batch = [self.train_data[i] for i in picks]
                self._call("before_batch")
                self.update(self.batch)
                self.losses.append(self.stats["loss"])
                self.history.append(dict(self.stats))
                self._call("after_batch")
                if self.stop_training:
                    break
        finally:  # drop the autograd graph and the rollouts
            self.batch = self.output = self.loss = self.advantages = None
            self.segments = []
        self._call("after_experience")
        self.experience, self.train_data = None, []  # keep no reference to the episodes
        self._sync_accounts()
        self.n_trained += 1
        self.accountant.snapshot(index).check(context=f"after experience {index}")
        return list(self.losses)

    def update(self, episodes: Sequence[Any]) -> dict[str, float]:
        """One DCPO update on a batch of episodes; returns (and keeps in :attr:`stats`) its
        statistics: ``loss`` (0.0 when every group had equal rewards and no step was taken),
        ``kl``, ``clip_fraction``, the mean ``reward``, ``success`` and ``edits`` of the
        rollouts that could edit (of all rollouts when none could), and the number of
        ``segments`` trained on."""
        segments, trajectories = self.collect(episodes)
        self.segments, advantages = self.select(segments)
        self.advantages = advantages
        stats = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0}
        if self.segments:
            stats = self._step(self.segments, advantages)
        edited = [t for t in trajectories if t.edits_allowed] or trajectories
        stats.update(
            reward=float(np.mean([t.reward for t in edited])),
            success=float(np.mean([t.success for t in edited])),
            edits=float(np.mean([t.n_edits for t in edited])),
            segments=float(len(self.segments)),
        )
        self.n_updates_done += 1
        self.stats = stats
        return stats

    def _rollout(self, episode: Any, edits: bool, **kwargs: Any) -> Trajectory:
        return run_episode(
            episode,
            self.model,
            budget=self.context_budget,
            edits=edits,
            partial=self.partial,
            generator=self.generator,
            codec=dataclasses.replace(self.codec, slots={}),
            **kwargs,
        )

    def collect(self, episodes: Sequence[Any]) -> tuple[list[Segment], list[Trajectory]]:
        """Roll out every episode ``group_size`` times; return all segments and trajectories."""
        n_plain = round(self.explore_fraction * self.group_size)
        segments, trajectories = [], []
        self.model.eval()
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
                picks = sample_segments(owners, self.segments_per_group, self.rng)
                chosen += [int(members[p]) for p in picks]
        return [segments[i] for i in chosen], advantages[chosen]

    def _step(self, segments: Sequence[Segment], advantages: np.ndarray) -> dict[str, float]:
        batch = move_to(segment_batch(segments, self.codec), self.device)
        args = (batch["tokens"], batch["roles"], batch["legal"])
        with torch.no_grad():
            old_logp = self.model.token_logprobs(*args)
            ref_logp = self.reference.token_logprobs(*args)
        stats: dict[str, float] = {}
        self.model.train()
        for _ in range(self.ppo_epochs):
            self.output = self.model.token_logprobs(*args)
            self.loss, stats = clipped_pg_loss(
                self.output,
                old_logp,
                ref_logp,
                torch.as_tensor(advantages, dtype=self.output.dtype, device=self.device),
                batch["mask"],
                clip=self.clip,
                kl_coef=self.kl_coef,
            )
            self._call("before_backward")
            self.optimizer.zero_grad(set_to_none=True)
            self.loss.backward()
            self._call("after_backward")
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.n_steps += 1
        self.model.eval()
        return {"loss": float(self.loss.detach()), **stats}

    def warm_start(
        self,
        episodes: Sequence[Any],
        teacher: Any,
        *,
        epochs: int = 3,
        batch_size: int = 16,
        lr: float | None = None,
    ) -> list[float]:
        """Behaviour cloning (the cold start): maximise the policy's log-probability of the
        teacher's turns, segment by segment (DCPO segments of the teacher's trajectories).

        Trained by a :class:`continual.Learner` with its own Adam optimizer (learning rate
        ``lr``, default the trainer's), charged to the ``optimizer`` account while it lives;
        batches are drawn in an order seeded from ``seed``. The reference policy is then set
        to the cloned policy and the DCPO optimizer starts afresh. Returns the mean negative
        log-likelihood of each epoch.
        """
        segments: list[Segment] = []
        for episode in episodes:
            trajectory = run_episode(
                episode,
                teacher,
                budget=self.context_budget,
                codec=dataclasses.replace(self.codec, slots={}),
            )
            segments += build_segments(trajectory, final_mask="own")
        segments = [s for s in segments if s.mask.any()]
        losses: list[float] = []
        if segments and epochs:
            self._warm_learner = Learner(
                self.model,
                optimizer="adam",
                lr=self.lr if lr is None else lr,
                epochs=epochs,
                batch_size=batch_size,
                batches=self._segment_batches,
                forward=_segment_logprobs,
                loss=_masked_nll,
                seed=self.seed,
                verbose=self.verbose,
                device=self.device,
            )
            try:
                losses = self._warm_learner.learn(segments, index=0)
            finally:
                self._warm_learner = None
        self.model.eval()
        self.reference.load_state_dict(self.model.state_dict())
        self.optimizer = self._new_optimizer()
        return losses

    def _segment_batches(
        self, segments: Sequence[Segment], batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
        """Shuffled mini-batches of segments, as ``((tokens, roles, legal), mask)``."""
        for index in torch.randperm(len(segments), generator=generator).split(batch_size):
            batch = segment_batch([segments[i] for i in index.tolist()], self.codec)
            yield (batch["tokens"], batch["roles"], batch["legal"]), batch["mask"]

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, episodes: Sequence[Any], **kwargs: Any) -> dict[str, float]:
        """Greedy play of the policy on ``episodes`` (see :func:`evaluate_policy`, which
        receives ``kwargs``; ``budget`` defaults to ``context_budget``), between the
        ``before_eval`` and ``after_eval`` hooks."""
        kwargs.setdefault("budget", self.context_budget)
        self._call("before_eval")
        self.model.eval()
        result = evaluate_policy(self.model, episodes, **kwargs)
        self._call("after_eval")
        return result

    # --------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Weights, reference, optimizer, generator states, counters and plugins' states.

        Tensors are references (see :mod:`continual.state`); the frozen reference is kept by
        reference in rollback backups.
        """
        return {
            "policy": self.model.state_dict(keep_vars=True),
            "reference": self.reference.state_dict(keep_vars=True),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(self.rng),
            "generator": rng_state(self.generator),
            "n_trained": self.n_trained,
            "n_updates_done": self.n_updates_done,
            "n_steps": self.n_steps,
            "plugins": [plugin.state_dict() for plugin in self.plugins],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (plugins first, then the weights)."""
        load_plugin_states(self.plugins, state["plugins"], self)
        self.model.load_state_dict(state["policy"])
        self.reference.load_state_dict(state["reference"])
        self.optimizer = self._new_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        load_rng_state(self.rng, state["rng"])
        load_rng_state(self.generator, state["generator"])
        self.n_trained = int(state["n_trained"])
        self.n_updates_done = int(state["n_updates_done"])
        self.n_steps = int(state["n_steps"])
        self._sync_accounts()

    # ----------------------------------------------------------------- internals
    def _call(self, hook: str) -> None:
        for plugin in self.plugins:
            getattr(plugin, hook)(self)

    def optimizer_items(self) -> list[Any]:
        """What the ``optimizer`` account charges: the optimizers alive (the DCPO one, and
        the cloning one during a warm start) plus a reservation for the state Adam creates
        at its first step, so that the account holds what training will allocate."""
        alive = [self.optimizer]
        if self._warm_learner is not None and self._warm_learner.optimizer is not None:
            alive.append(self._warm_learner.optimizer)
        held = collect_blocks(alive).size_by_device()
        reserved = [
            Reservation(max(0, size - held.get(device, 0)), device)
            for device, size in self.optimizer_nbytes.items()
        ]
        return [*alive, *reserved]

    def _sync_accounts(self) -> None:
        """Track the policy, reference, optimizer and every plugin item as live accounts."""
        own = {
            "policy": functools.partial(getattr, self, "model"),
            "reference": functools.partial(getattr, self, "reference"),
            "optimizer": self.optimizer_items,
        }
        self._accounts = sync_accounts(self.accountant, own, self.plugins, self._accounts)
