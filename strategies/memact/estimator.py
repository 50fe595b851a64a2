"""MemoryAsAction: the budgeted estimator face of learned context curation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral
from typing import Any, ClassVar

import torch
from sklearn.utils.validation import check_is_fitted

from continual.accountant import MemoryAccountant
from continual.budget import parse_budget
from continual.estimator import BudgetedEstimator
from continual.learner import optimizer_state_nbytes
from continual.measure import nbytes
from continual.plugin import Plugin
from continual.validation import (
    COUNT,
    FRACTION,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    Interval,
    InvalidParameterError,
    StrOptions,
)
from strategies.memact.codec import RecallCodec
from strategies.memact.curators import CURATORS, make_curator
from strategies.memact.dcpo import DCPOTrainer
from strategies.memact.edits import PRUNE_TOOL, execute_call
from strategies.memact.policy import CurationState, TinyCurationPolicy, prune_turn
from strategies.memact.rollout import EDIT_INSTRUCTIONS
from strategies.memact.working_memory import Message, WorkingMemory

__all__ = ["MemoryAsAction", "as_episodes"]

_EPISODE_FIELDS = ("questions", "observations", "instruction", "budget", "reward")


def as_episodes(data: Any, part: str = "train") -> list[Any]:
    """A flat list of episodes from episodes, or from a stream of experiences holding them.

    A stream (anything whose items have ``train``, ``test`` and ``index``, like
    ``streams.Stream``) contributes the ``part`` episodes (``"train"`` or ``"test"``) of every
    experience.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> ep = SimpleNamespace(questions=(), observations=(), instruction="", budget=1,
    ...                      reward=None)
    >>> stream = [SimpleNamespace(index=0, train=(ep, ep), test=(ep,))]
    >>> len(as_episodes(stream)), len(as_episodes(stream, "test")), len(as_episodes([ep]))
    (2, 1, 1)

    Raises
    ------
    TypeError
        ``data`` is not iterable, or an item is not an episode (naming its position).
    ValueError
        No episode at all (a stream whose ``part`` payloads are all empty, say so).
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
        raise TypeError(f"episodes must be an iterable of episodes, got {type(data).__name__}")
    episodes: list[Any] = []
    from_stream = False
    for item in data:
        if hasattr(item, part) and hasattr(item, "index"):
            episodes += list(getattr(item, part))
            from_stream = True
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
        where = f"; the stream's experiences hold no {part} episodes" if from_stream else ""
        raise ValueError(f"episodes must hold at least one episode, got none{where}")
    return episodes


class MemoryAsAction(BudgetedEstimator):
    """Learned context curation (Memory-as-Action) trained with DCPO, on a byte budget.

    A tiny causal transformer policy learns when and which tool result to delete from an
    agent's context. What a call does:

    - :meth:`partial_fit` learns one experience of episodes. The first call (after
      construction or :meth:`fit`) builds the policy, warm-starts it by behaviour cloning of
      the ``teacher`` curator (``bc_epochs`` epochs over the teacher's trajectories on these
      episodes; the frozen KL reference becomes the cloned policy), then runs ``n_updates``
      DCPO updates. Every later call runs ``n_updates`` DCPO updates on its own episodes,
      continuing the same policy, optimizer state and generators (no warm start). Each
      update rolls out ``group_size`` trajectories of ``episodes_per_update`` episodes drawn
      with replacement from the call's episodes.
    - :meth:`fit` forgets everything, then makes one :meth:`partial_fit` call (warm start and
      ``n_updates`` updates).
    - :meth:`score` is the strict success rate of greedy play on held-out episodes,
      :meth:`scores` every measure of :func:`~strategies.memact.evaluation.evaluate_policy`,
      and :meth:`curate` lets the policy edit another agent's memory.

    What it stores, and how it is charged: ``accountant_`` charges the learner's state
    against ``budget``: ``policy`` (the weights), ``reference`` (the frozen copy for the KL
    term, the same bytes) and ``optimizer`` (Adam: two float32 moments per weight and a
    step counter per tensor, reserved from the first call; during the warm start, the
    cloning optimizer instead), plus each plugin's items. They are computed from shapes (a
    policy built on the meta device) and checked before anything is allocated. The agent's
    context is separate: during an episode it is a :class:`WorkingMemory` of int32 token IDs
    (4 bytes per token) charged to the episode's own accountant against ``context_budget``;
    running over ends the episode with reward 0.

    Parameters
    ----------
    budget
        Bytes the learner may store (policy, reference, optimizer), as an int or a string
        such as ``"2 MB"``; None measures without a limit.
    context_budget
        The agent's context budget in bytes (int or string such as ``"240B"``); None uses
        each episode's own budget. A call whose episodes cannot take even one step under it
        (the instructions, the first tool result and one turn) raises
        :class:`~continual.BudgetExceededError` before anything is built.
    teacher
        Heuristic curator cloned in the warm start (a name of ``CURATORS``), or None to skip it.
    bc_epochs, bc_lr
        Behaviour-cloning epochs over the first call's episodes (an int >= 0), and their
        learning rate (a finite float > 0).
    n_updates
        DCPO updates per call (an int >= 0; 0 leaves the warm-started policy as it is).
    group_size, episodes_per_update, segments_per_group
        G rollouts per episode (an int >= 2: advantages compare the rollouts of a group),
        episodes per update and n segments kept per group (ints >= 1).
    lr, clip, kl_coef, ppo_epochs, explore_fraction, normalize_std, final_mask, mode
        DCPO settings (see :class:`DCPOTrainer`): ``lr`` and ``clip`` finite floats > 0,
        ``kl_coef`` a finite float >= 0 (0: no KL term), ``ppo_epochs`` an int >= 1,
        ``explore_fraction`` in [0, 1], ``final_mask`` ``"own"`` or ``"all"``, ``mode``
        ``"dcpo"`` or ``"final"`` (the naive trainer). Changed with ``set_params`` between
        calls, they apply from the next call.
    partial
        Train on partial credit instead of the strict reward.
    d_model, n_layers
        Size of the policy (fixed by the first call): ``d_model`` a multiple of 4 (the
        heads), ``n_layers`` an int >= 1.
    plugins
        Plugin factories: classes or importable functions returning a
        :class:`continual.Plugin`, called on every build (so :meth:`fit` starts fresh ones,
        and checkpoints save their names). The trainer calls their hooks (see
        :class:`DCPOTrainer`).
    random_state
        None (a fresh seed, kept as ``seed_``), an int, or a numpy generator: the seed of the
        initialisation and of every draw (rollouts, episodes, segments, batch order).
    verbose
        0 for silence; otherwise progress bars.
    device, rollback
        As in :class:`~continual.estimator.BudgetedEstimator`: the policy, its reference,
        the optimizers' state and the training batches live on ``device``; the agent's
        context (token IDs) and the sampling generators stay on the CPU.

    Every parameter is checked at :meth:`fit` / :meth:`partial_fit` (its
    ``_parameter_constraints``), before anything changes; numpy scalars are accepted
    wherever Python numbers are and give the same run.

    Attributes
    ----------
    policy_, trainer_, codec_
        The trained policy, its :class:`DCPOTrainer` and the token codec.
    accountant_, seed_, n_partial_fits_
        As in :class:`~continual.estimator.BudgetedEstimator`.
    losses_ : list of float
        The DCPO loss of each update of the last call (0.0 for an update whose groups all
        had equal rewards: no step), the training-loss curve.
    history_ : list of dict
        Statistics of each update of the last call (``loss``, ``kl``, ``clip_fraction``,
        ``reward``, ``success``, ``edits``, ``segments``); earlier calls are dropped.
    bc_losses_ : list of float
        Warm-start negative log-likelihood per epoch (empty without a teacher).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> obs = [SimpleNamespace(id=f"i{t}", text=f"k{t % 3}=v{t}") for t in range(5)]
    >>> episode = SimpleNamespace(questions=("k1",), observations=obs, budget=200,
    ...     instruction="Remember: k1", reward=lambda a, partial=None: float(a == {"k1": "v4"}))
    >>> model = MemoryAsAction("300 KB", bc_epochs=2, n_updates=1, group_size=2, d_model=16,
    ...                        n_layers=1, random_state=0)
    >>> model.fit([episode]).score([episode]) in (0.0, 1.0)
    True
    >>> model = model.partial_fit([episode, episode])  # one more DCPO update, no warm start
    >>> model.n_partial_fits_, len(model.losses_), len(model.bc_losses_)
    (2, 1, 2)
    >>> print(model.accountant_.ledger())  # the peak includes the second call's backup
    account    device    bytes   share
    policy        cpu   62,244   20.7%
    reference     cpu   62,244   20.7%
    optimizer     cpu  124,572   41.5%
    total              249,060   83.0%
    peak               440,932  147.0%
    budget             300,000
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "context_budget": "no_validation",  # parsed by parse_budget in _check_params
        "teacher": [StrOptions(set(CURATORS)), None],
        "bc_epochs": [NON_NEGATIVE_INT],
        "bc_lr": [POSITIVE_FLOAT],
        "n_updates": [NON_NEGATIVE_INT],
        # group advantages compare at least two rollouts of an episode
        "group_size": [Interval(Integral, 2, None, closed="left")],
        "episodes_per_update": [COUNT],
        "segments_per_group": [COUNT],
        "lr": [POSITIVE_FLOAT],
        "clip": [POSITIVE_FLOAT],
        "kl_coef": [NON_NEGATIVE_FLOAT],
        "ppo_epochs": [COUNT],
        "explore_fraction": [FRACTION],
        "normalize_std": ["boolean"],
        "final_mask": [StrOptions({"own", "all"})],
        "mode": [StrOptions({"dcpo", "final"})],
        "partial": ["boolean"],
        "d_model": [COUNT],  # and a multiple of 4, checked in _check_params
        "n_layers": [COUNT],
        "plugins": "no_validation",  # factories, checked in _check_params
    }

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        context_budget: int | str | None = None,
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
        plugins: Sequence[Callable[[], Plugin]] = (),
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        rollback: str = "memory",
    ) -> None:
        self.budget = budget
        self.context_budget = context_budget
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
        self.plugins = plugins
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.rollback = rollback

    # ----------------------------------------------------------------- fitting
    def fit(self, episodes: Any, y: None = None) -> MemoryAsAction:
        """Forget everything, then one :meth:`partial_fit`: warm start from the teacher and
        ``n_updates`` DCPO updates on ``episodes``.

        ``episodes`` is a sequence of recall episodes or a stream of experiences holding them
        (their ``train`` episodes). A failure leaves the estimator as it was.
        """
        return super().fit(episodes, y)

    def partial_fit(self, episodes: Any, y: None = None) -> MemoryAsAction:
        """Learn one experience of ``episodes`` (see the class docstring).

        The first call builds the policy, warm-starts it and runs ``n_updates`` DCPO
        updates; later calls run ``n_updates`` DCPO updates. A failure (bad input, a budget
        that cannot hold the learner) leaves the estimator as it was.

        Raises
        ------
        ValueError, TypeError
            A parameter out of its range or of the wrong type (naming it and its value),
            ``y`` not None, or ``episodes`` empty or holding objects that are not episodes.
        BudgetExceededError
            ``budget`` cannot hold the policy, its reference and Adam's state, or the context
            budget cannot hold one step of any episode; raised before anything is allocated.
        """
        return super().partial_fit(episodes, y)

    # --------------------------------------------------------------- inference
    def scores(self, episodes: Any, y: None = None) -> dict[str, float]:
        """Greedy play on ``episodes`` (a stream contributes its ``test`` episodes).

        Returns ``success`` (strict), ``partial``, ``overflow``, ``bytes_per_step``,
        ``tokens_per_step``, ``edits`` and ``episodes``, as
        :func:`~strategies.memact.evaluation.evaluate_policy`.
        """
        check_is_fitted(self, "trainer_")
        budget = self._context_budget()
        return self.trainer_.evaluate(as_episodes(episodes, "test"), budget=budget)

    def score(self, episodes: Any, y: None = None) -> float:
        """Strict success rate of greedy play on ``episodes``."""
        return self.scores(episodes)["success"]

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

    # ------------------------------------------------------- BudgetedEstimator
    def _validate_input(self, X: Any, y: Any = None, *, first: bool, **params: Any) -> list[Any]:
        if params:
            raise TypeError(f"partial_fit takes episodes only, got keywords {sorted(params)}")
        if y is not None:
            raise ValueError(f"y must be None: episodes carry their own rewards, got {y!r}")
        self._check_params()
        episodes = as_episodes(X)
        self._check_context_room(episodes)
        return episodes

    def _check_params(self) -> None:
        """What ``_parameter_constraints`` cannot say: ``d_model`` divisible by the heads,
        a ``context_budget`` that parses, and plugin factories rather than plugins."""
        if self.d_model % 4:
            raise InvalidParameterError(
                "The 'd_model' parameter of MemoryAsAction must be a multiple of 4 (the policy "
                f"has 4 heads). Got {self.d_model!r} instead."
            )
        self._context_budget()
        plugins = self.plugins
        if isinstance(plugins, (str, bytes)) or not isinstance(plugins, Sequence):
            raise TypeError(f"plugins must be a sequence of plugin factories, got {plugins!r}")
        for position, factory in enumerate(plugins):
            if isinstance(factory, Plugin) or not callable(factory):
                raise TypeError(
                    f"plugins[{position}] must be a Plugin class or a function returning a "
                    f"Plugin (called at every build), got {factory!r}"
                )

    def _context_budget(self) -> int | None:
        """``context_budget`` in bytes (None: each episode's own budget)."""
        try:
            return parse_budget(self.context_budget)
        except (TypeError, ValueError) as error:
            raise InvalidParameterError(
                "The 'context_budget' parameter of MemoryAsAction must be bytes as an int or a "
                f"str such as '240B', or None ({error}). Got {self.context_budget!r} instead."
            ) from None

    def _check_context_room(self, episodes: Sequence[Any]) -> None:
        """Raise ``BudgetExceededError`` when no episode's first step fits its context budget.

        Such a call could learn nothing (every rollout would end at once without an answer),
        so it fails before anything is built or changed.
        """
        budget = self._context_budget()
        budgets = [budget] * len(episodes)
        if budget is None:
            budgets = [_episode_budget(e, position) for position, e in enumerate(episodes)]
        needs = [_first_step_nbytes(e, position) for position, e in enumerate(episodes)]
        if any(b is None or need <= b for need, b in zip(needs, budgets)):
            return
        position = min(range(len(episodes)), key=lambda i: needs[i] - budgets[i])
        step = (
            f"episodes[{position}]'s first step (the instructions, its first tool result and "
            f"one turn, as int32 tokens) needs {needs[position]:,} bytes"
        )
        if budget is None:
            where = (
                "no episode's own budget can hold one step: "
                f"episodes[{position}].budget={budgets[position]}"
            )
            advice = "give the episodes a larger budget or set context_budget"
        else:
            where = f"context_budget={self.context_budget!r} cannot hold one step of any episode"
            advice = "raise context_budget"
        MemoryAccountant(budgets[position]).check_plan(
            {"context": needs[position]}, f"MemoryAsAction: {where}; {step}; {advice}"
        )

    def _make_policy(self) -> TinyCurationPolicy:
        codec = RecallCodec()
        return TinyCurationPolicy(
            codec.vocab_size,
            d_model=int(self.d_model),
            n_layers=int(self.n_layers),
            id_range=(codec.slot_base, codec.vocab_size),
        )

    def _planned_bytes(self, data: Any) -> Mapping[str, int]:
        """On the first call: the policy, its frozen reference and Adam's state, from shapes
        on the meta device (later calls allocate nothing new)."""
        if hasattr(self, "trainer_"):
            return {}
        with torch.device("meta"):
            policy = self._make_policy()
        size = nbytes(policy)
        optimizer = optimizer_state_nbytes("adam", list(policy.parameters()), lr=float(self.lr))
        return {"policy": size, "reference": size, "optimizer": optimizer}

    def _build(self) -> None:
        # built on the CPU, so that a seed gives the same initial weights on every device
        self.policy_ = self._make_policy().to(self.device_)
        self.codec_ = RecallCodec()
        plugins = [factory() for factory in self.plugins]
        for position, plugin in enumerate(plugins):
            if not isinstance(plugin, Plugin):
                raise TypeError(
                    f"plugins[{position}] must return a continual.Plugin, got {plugin!r}"
                )
        self.trainer_ = DCPOTrainer(
            self.policy_,
            self.codec_,
            seed=self.seed_,
            plugins=plugins,
            accountant=self.accountant_,
            verbose=self.verbose,
            **self._trainer_settings(),
        )

    def _trainer_settings(self) -> dict[str, Any]:
        """The trainer's settings as Python numbers (numpy scalars give the same run)."""
        return {
            "group_size": int(self.group_size),
            "segments_per_group": int(self.segments_per_group),
            "lr": float(self.lr),
            "clip": float(self.clip),
            "kl_coef": float(self.kl_coef),
            "ppo_epochs": int(self.ppo_epochs),
            "explore_fraction": float(self.explore_fraction),
            "normalize_std": bool(self.normalize_std),
            "final_mask": self.final_mask,
            "mode": self.mode,
            "partial": bool(self.partial),
            "context_budget": self._context_budget(),
        }

    def _learn(self, episodes: list[Any]) -> None:
        trainer = self.trainer_
        for name, value in self._trainer_settings().items():  # set_params between calls
            setattr(trainer, name, value)
        for group in trainer.optimizer.param_groups:
            group["lr"] = trainer.lr
        trainer.verbose = self.verbose
        if self.n_partial_fits_ == 0:
            self.bc_losses_: list[float] = []
            if self.teacher is not None and self.bc_epochs:
                teacher = make_curator(self.teacher)
                self.bc_losses_ = trainer.warm_start(
                    episodes, teacher, epochs=int(self.bc_epochs), lr=float(self.bc_lr)
                )
        self.losses_ = trainer.train(
            episodes,
            n_updates=int(self.n_updates),
            episodes_per_update=int(self.episodes_per_update),
            index=self.n_partial_fits_,
        )
        self.history_ = [dict(stats) for stats in trainer.history]

    def _state_dict(self) -> dict[str, Any]:
        return {"trainer": self.trainer_.state_dict()}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer_.load_state_dict(state["trainer"])


def _episode_budget(episode: Any, position: int) -> int | None:
    """An episode's own context budget in bytes."""
    try:
        return parse_budget(episode.budget)
    except (TypeError, ValueError) as error:
        raise type(error)(f"episodes[{position}].budget is invalid: {error}") from None


def _first_step_nbytes(episode: Any, position: int) -> int:
    """Context bytes of an episode's first step as a rollout with the edit tool charges them:
    the edit instructions, the task, the first tool result and one turn, as int32 tokens."""
    codec = RecallCodec()
    memory = WorkingMemory(charge="tokens", tokenizer=codec.encode_message)
    try:
        memory.append(Message("system", EDIT_INSTRUCTIONS))
        memory.append(Message("user", episode.instruction))
        first = next(iter(episode.observations), None)
        if first is not None:
            memory.append(Message("tool", first.text, id=first.id))
    except (AttributeError, TypeError, ValueError) as error:
        raise TypeError(f"episodes[{position}] is not a readable recall episode: {error}") from None
    memory.append(prune_turn([]))
    return memory.nbytes
