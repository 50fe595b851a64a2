"""MemoryAsAction: the scikit-learn face of learned context curation."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from continual import MemoryAccountant, parse_budget
from continual.progress import progress
from strategies.memact.codec import RecallCodec
from strategies.memact.curators import make_curator
from strategies.memact.dcpo import DCPOTrainer
from strategies.memact.edits import PRUNE_TOOL, execute_call
from strategies.memact.evaluation import evaluate_policy
from strategies.memact.policy import CurationState, TinyCurationPolicy
from strategies.memact.rollout import EDIT_INSTRUCTIONS
from strategies.memact.working_memory import Message, WorkingMemory

__all__ = ["MemoryAsAction", "as_episodes"]

_EPISODE_FIELDS = ("questions", "observations", "instruction", "budget", "reward")


def as_episodes(data: Any) -> list[Any]:
    """A flat list of episodes from episodes, or from a stream of experiences holding them.

    A stream (anything whose items have ``train`` and ``index``, like ``streams.Stream``)
    contributes the ``train`` episodes of every experience.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> ep = SimpleNamespace(questions=(), observations=(), instruction="", budget=1,
    ...                      reward=None)
    >>> len(as_episodes([SimpleNamespace(index=0, train=(ep, ep))]))
    2
    """
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
        raise TypeError(f"episodes must be an iterable of episodes, got {type(data).__name__}")
    episodes: list[Any] = []
    for item in data:
        if hasattr(item, "train") and hasattr(item, "index"):
            episodes += list(item.train)
        else:
            episodes.append(item)
    for position, episode in enumerate(episodes):
        missing = [f for f in _EPISODE_FIELDS if not hasattr(episode, f)]
        if missing:
            raise TypeError(
                f"episodes[{position}] must be a recall episode with {', '.join(_EPISODE_FIELDS)};"
                f" a {type(episode).__name__} lacks {', '.join(missing)}"
            )
    if not episodes:
        raise ValueError("episodes must hold at least one episode, got none")
    return episodes


class MemoryAsAction(BaseEstimator):
    """Learned context curation (Memory-as-Action) trained with DCPO under a byte budget.

    :meth:`fit` clones a heuristic curator (behaviour cloning, the cold start) into a tiny
    causal transformer policy, then improves it with DCPO; :meth:`score` is the strict success
    rate on held-out episodes; :meth:`curate` lets the policy edit another agent's memory.

    What it stores, and how it is charged: the agent's context during an episode is a
    :class:`WorkingMemory` of int32 token IDs (4 bytes per token) tracked by a
    :class:`continual.MemoryAccountant` whose budget is the context budget (``budget``, or
    each episode's own); running over ends the episode with reward 0. The learner's own
    state (policy weights, frozen reference, Adam state) is measured in ``accountant_``
    (accounts ``policy``, ``reference``, ``optimizer``), without a budget: it is not part of the
    context.

    Parameters
    ----------
    budget
        Context budget in bytes (int or string such as ``"240B"``); None uses each episode's.
    teacher
        Heuristic curator cloned in the warm start (a name of ``CURATORS``), or None to skip it.
    bc_epochs, bc_lr
        Behaviour-cloning epochs over the training episodes, and their learning rate.
    n_updates
        DCPO updates after the warm start.
    group_size, episodes_per_update, segments_per_group
        G rollouts per episode, episodes per update, and n segments kept per group.
    lr, clip, kl_coef, ppo_epochs, explore_fraction, normalize_std, final_mask, mode
        DCPO settings (see :class:`DCPOTrainer`); ``mode="final"`` is the naive trainer.
    partial
        Train on partial credit instead of the strict reward.
    d_model, n_layers
        Size of the policy.
    random_state
        Seed of initialisation and sampling.
    verbose
        0 for silence; otherwise progress bars on a terminal.

    Attributes
    ----------
    policy_, trainer_, codec_, accountant_
        The trained policy, its trainer, the token codec and the measuring accountant.
    bc_losses_, history_
        Warm-start losses per epoch and DCPO statistics per update.
    training_seconds_
        Wall time of :meth:`fit`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> obs = [SimpleNamespace(id=f"i{t}", text=f"k{t % 3}=v{t}") for t in range(5)]
    >>> episode = SimpleNamespace(questions=("k1",), observations=obs, budget=200,
    ...     instruction="Remember: k1", reward=lambda a, partial=None: float(a == {"k1": "v4"}))
    >>> model = MemoryAsAction(bc_epochs=2, n_updates=1, group_size=2, d_model=16, n_layers=1)
    >>> model.fit([episode]).score([episode]) in (0.0, 1.0)
    True
    >>> sorted(model.accountant_.ledger().accounts)
    ['optimizer', 'policy', 'reference']
    """

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        teacher: str | None = "queried_keys",
        bc_epochs: int = 4,
        bc_lr: float = 3e-3,
        n_updates: int = 50,
        group_size: int = 8,
        episodes_per_update: int = 4,
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
        d_model: int = 64,
        n_layers: int = 2,
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.budget = budget
        self.teacher = teacher
        self.bc_epochs = bc_epochs
        self.bc_lr = bc_lr
        self.n_updates = n_updates
        self.group_size = group_size
        self.episodes_per_update = episodes_per_update
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
        self.d_model = d_model
        self.n_layers = n_layers
        self.random_state = random_state
        self.verbose = verbose

    def _validate(self) -> int | None:
        for name in ("bc_epochs", "n_updates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        for name in ("group_size", "episodes_per_update", "segments_per_group", "d_model"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.teacher is not None:
            make_curator(self.teacher)
        if self.mode not in ("dcpo", "final"):
            raise ValueError(f"mode must be 'dcpo' or 'final', got {self.mode!r}")
        if self.final_mask not in ("own", "all"):
            raise ValueError(f"final_mask must be 'own' or 'all', got {self.final_mask!r}")
        return parse_budget(self.budget)

    def fit(self, episodes: Any) -> MemoryAsAction:
        """Warm start from the teacher, then ``n_updates`` DCPO updates on ``episodes``.

        ``episodes`` is a sequence of recall episodes or a stream of experiences holding them.
        """
        budget = self._validate()
        episodes = as_episodes(episodes)
        start = time.perf_counter()
        torch.manual_seed(self.random_state)
        self.codec_ = RecallCodec()
        self.policy_ = TinyCurationPolicy(
            self.codec_.vocab_size,
            d_model=self.d_model,
            n_layers=self.n_layers,
            id_range=(self.codec_.slot_base, self.codec_.vocab_size),
        )
        self.trainer_ = DCPOTrainer(
            self.policy_,
            self.codec_,
            group_size=self.group_size,
            segments_per_group=self.segments_per_group,
            lr=self.lr,
            clip=self.clip,
            kl_coef=self.kl_coef,
            ppo_epochs=self.ppo_epochs,
            explore_fraction=self.explore_fraction,
            normalize_std=self.normalize_std,
            final_mask=self.final_mask,
            mode=self.mode,
            partial=self.partial,
            budget=budget,
            seed=self.random_state,
        )
        self.bc_losses_: list[float] = []
        if self.teacher is not None and self.bc_epochs:
            self.bc_losses_ = self.trainer_.warm_start(
                episodes,
                make_curator(self.teacher),
                epochs=self.bc_epochs,
                lr=self.bc_lr,
                progress=lambda it: progress(it, verbose=self.verbose, desc="warm start"),
            )
        rng = np.random.default_rng(self.random_state)
        for _ in progress(range(self.n_updates), verbose=self.verbose, desc="DCPO"):
            batch = rng.choice(len(episodes), size=self.episodes_per_update)
            self.trainer_.update([episodes[i] for i in batch])
        self.history_ = self.trainer_.history_
        self.accountant_ = MemoryAccountant(None)
        self.accountant_.track("policy", self.policy_)
        self.accountant_.track("reference", self.trainer_.reference_)
        self.accountant_.track("optimizer", self.trainer_.optimizer_)
        self.training_seconds_ = time.perf_counter() - start
        return self

    def evaluate(self, episodes: Any) -> dict[str, float]:
        """Greedy play on ``episodes``: success, partial credit, context size, edits."""
        check_is_fitted(self, "policy_")
        return evaluate_policy(
            self.policy_, as_episodes(episodes), budget=parse_budget(self.budget)
        )

    def score(self, episodes: Any) -> float:
        """Strict success rate of greedy play on ``episodes``."""
        return self.evaluate(episodes)["success"]

    def curate(self, memory: WorkingMemory) -> Message:
        """Let the policy take one curation turn on ``memory`` (changed in place).

        The turn is appended to ``memory``, its ``prune_context`` call is run and the result
        appended (errors come back as text). The messages must be in the recall format (a
        ``key=value`` tool result per ID); the edit instruction is shown to the policy when the
        memory has no system message. Returns the turn.
        """
        check_is_fitted(self, "policy_")
        if not isinstance(memory, WorkingMemory):
            raise TypeError(f"memory must be a WorkingMemory, got {type(memory).__name__}")
        if not memory.visible:
            raise ValueError("memory must hold at least one visible message, got an empty one")
        codec = dataclasses.replace(self.codec_, slots={})
        view = memory.copy()
        if not any(m.role == "system" for m in view.visible):
            view.messages.insert(0, Message("system", EDIT_INSTRUCTIONS))
        turn = self.policy_.act(CurationState(view, [PRUNE_TOOL], codec=codec), greedy=True)
        memory.append(turn)
        for call in turn.calls:
            memory.append(Message("tool", execute_call(memory, call)))
        return turn
