"""The growing network that MEMO and DER share, and the budget step every model-growing plugin runs.

:class:`ExpandableNet` holds one ``shared`` module (MEMO's generalized blocks; an identity for
DER) and one ``block`` per task (MEMO's specialized blocks; a whole backbone for DER). Its
feature is the concatenation of every block's output on the shared feature map, read by a
:class:`UnifiedHead` over the classes seen so far and, while a new task trains, by an auxiliary
``new + 1`` head on the newest block's feature. :func:`fit_store_to_budget` shrinks an exemplar
store when a grown model no longer leaves it room, and raises a clear
:class:`~continual.accountant.BudgetExceededError` when the model alone does not fit.

Label convention: logits always index *global* class labels. The unified head only has rows for
the classes seen so far (the only ones charged), remembers their labels in a small int64 buffer
and scatters its scores into a ``[batch, n_classes]`` tensor whose unseen columns are ``-inf``,
so the learner's arg-max accuracy and cross-entropy work with global labels unchanged.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from continual.accountant import BudgetExceededError
from continual.distributed import agree_min, world_size
from continual.exemplars import ExemplarStore
from continual.learner import Learner
from continual.measure import nbytes
from continual.state import read_only
from continual.validation import NON_NEGATIVE_FLOAT
from strategies.replay import Replay

__all__ = [
    "ExpandableNet",
    "GrowingStrategy",
    "UnifiedHead",
    "fit_store_to_budget",
    "replay_as_union",
    "union_replay_size",
]


class UnifiedHead(nn.Module):
    """A linear head over the classes seen so far, returning logits over all ``n_classes``.

    :meth:`grow` builds a new ``(n_seen + n_new) x in_features`` linear layer (PyTorch's default
    initialisation) and copies the old weights into its top-left block. :meth:`align_weights`
    is the weight alignment of Zhao et al. (2020) used by MEMO and DER.

    What it stores: ``weight`` and ``bias`` (float32) for the seen classes and ``classes``, their
    global labels (int64): ``4 * n_seen * (in_features + 1) + 8 * n_seen`` bytes.

    Parameters
    ----------
    n_classes
        Width of the returned logits (every class the stream may show).

    Examples
    --------
    >>> import torch
    >>> from strategies.expandable import UnifiedHead
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> head = UnifiedHead(n_classes=4)
    >>> head.grow(3, [2, 0])
    >>> head(torch.ones(1, 3)).isinf().tolist()
    [[False, True, False, True]]
    >>> old = head.weight.detach().clone()
    >>> head.grow(5, [3])
    >>> torch.equal(head.weight[:2, :3], old), tuple(head.weight.shape), head.classes.tolist()
    (True, (3, 5), [2, 0, 3])
    """

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.weight = nn.Parameter(torch.empty(0, 0))
        self.bias = nn.Parameter(torch.empty(0))
        self.register_buffer("classes", torch.empty(0, dtype=torch.int64))

    def grow(self, in_features: int, new_classes: Sequence[int]) -> None:
        """Widen to ``in_features`` inputs and add rows for ``new_classes`` (global labels)."""
        old_out, old_in = self.weight.shape
        if in_features < old_in:
            raise ValueError(f"in_features must be >= {old_in}, got {in_features}")
        new = torch.as_tensor(list(new_classes), dtype=torch.int64)
        if new.numel() and (new.min() < 0 or new.max() >= self.n_classes):
            raise ValueError(f"new_classes must be in [0, {self.n_classes}), got {new.tolist()}")
        layer = nn.Linear(in_features, old_out + len(new)).to(self.weight.device)
        with torch.no_grad():
            layer.weight[:old_out, :old_in] = self.weight
            layer.bias[:old_out] = self.bias
        self.weight = nn.Parameter(layer.weight.detach())
        self.bias = nn.Parameter(layer.bias.detach())
        self.classes = torch.cat([self.classes, new.to(self.classes.device)])

    @torch.no_grad()
    def align_weights(self, n_new: int) -> float:
        """Scale the last ``n_new`` rows by mean old row norm / mean new row norm; return gamma.

        Examples
        --------
        >>> import torch
        >>> from strategies.expandable import UnifiedHead
        >>> head = UnifiedHead(3)
        >>> head.grow(2, [0, 1, 2])
        >>> head.weight.data = torch.tensor([[3.0, 4.0], [0.0, 5.0], [0.0, 1.0]])
        >>> head.align_weights(1), head.weight[2].tolist()
        (5.0, [0.0, 5.0])
        """
        n_old = len(self.weight) - n_new
        if n_new <= 0 or n_old <= 0:
            return 1.0
        norms = self.weight.norm(dim=1)
        gamma = float(norms[:n_old].mean() / norms[n_old:].mean().clamp_min(1e-12))
        self.weight[n_old:] *= gamma
        return gamma

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scores = F.linear(features, self.weight, self.bias)
        logits = scores.new_full((len(features), self.n_classes), float("-inf"))
        logits[:, self.classes] = scores
        return logits


class ExpandableNet(nn.Module):
    """A network that adds one block per task on a shared trunk (MEMO, DER).

    :meth:`grow` (called once per task, before training on it):

    1. from the second task on, appends a new block, a copy of the previous one
       (``init_from_previous``) or a freshly initialised one, and freezes the old blocks
       (no gradients, batch norm kept in eval mode, buffers declared
       :func:`~continual.state.read_only`: rollbacks keep frozen blocks by reference);
    2. widens the :class:`UnifiedHead` to the concatenated feature and adds the new classes,
       the old weights copied in;
    3. adds an auxiliary head with ``n_new + 1`` outputs on the newest block's feature, where
       label 0 stands for every old class (:meth:`aux_targets`).

    With ``train_shared=False`` the shared trunk is frozen too from the second task on.

    What it stores: the shared trunk once, one block per task, the unified head and the
    auxiliary head, all charged to the ``model`` account when the learner tracks it.

    Parameters
    ----------
    shared
        The trunk every block reads (``nn.Identity()`` for DER).
    block
        The first task's block; must output a ``[batch, feature_dim]`` feature.
    feature_dim
        Width of one block's feature.
    n_classes
        Width of the logits (every class of the stream).
    train_shared
        Keep training the trunk after the first task (MEMO's released ``train_base=True``).
    init_from_previous
        Initialise each new block from the previous block's weights.
    channels_last
        Run image inputs (4-d) in the channels-last memory format. Convolutions on CPU
        (oneDNN) then skip their per-call layout conversions; the numbers are the same up to
        float rounding, and parameters keep their own layout (checkpoints are unchanged).

    Attributes
    ----------
    n_tasks : int
        Number of :meth:`grow` calls.

    last_features : torch.Tensor or None
        The feature of the last training-mode forward pass (for the auxiliary loss).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from strategies.expandable import ExpandableNet
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = ExpandableNet(nn.Flatten(), nn.Linear(4, 3), feature_dim=3, n_classes=6)
    >>> net.grow([0, 1])
    >>> net.grow([4, 5])
    >>> len(net.blocks), net.features(torch.zeros(2, 2, 2)).shape, net.head.classes.tolist()
    (2, torch.Size([2, 6]), [0, 1, 4, 5])
    >>> net.blocks[0].weight.requires_grad, net.aux_head.out_features
    (False, 3)
    >>> net.aux_targets(torch.tensor([0, 5, 4, 1])).tolist()
    [0, 2, 1, 0]
    """

    def __init__(
        self,
        shared: nn.Module,
        block: nn.Module,
        feature_dim: int,
        n_classes: int,
        *,
        train_shared: bool = True,
        init_from_previous: bool = True,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.shared = shared
        self.blocks = nn.ModuleList([block])
        self.feature_dim = feature_dim
        self.n_classes = n_classes
        self.train_shared = train_shared
        self.init_from_previous = init_from_previous
        self.channels_last = channels_last
        self.head = UnifiedHead(n_classes)
        self.register_module("aux_head", None)
        self.n_tasks = 0
        self.n_new = 0
        self.last_features: torch.Tensor | None = None

    # ------------------------------------------------------------------ growing
    def grow(self, new_classes: Sequence[int]) -> None:
        """Start a new task whose new classes are ``new_classes`` (global labels)."""
        new_classes = [int(c) for c in new_classes]
        if self.n_tasks:
            block = copy.deepcopy(self.blocks[-1])
            if not self.init_from_previous:
                _reset_parameters(block)
            for old in self.blocks:
                old.requires_grad_(False)
                read_only(list(old.buffers()))
            block.requires_grad_(True)
            self.blocks.append(block)
            if not self.train_shared:
                self.shared.requires_grad_(False)
                read_only(list(self.shared.buffers()))
        self.head.grow(self.feature_dim * len(self.blocks), new_classes)
        self.aux_head = (
            nn.Linear(self.feature_dim, len(new_classes) + 1).to(self.head.weight.device)
            if self.n_tasks and new_classes
            else None
        )
        self.n_tasks += 1
        self.n_new = len(new_classes)
        self.train(self.training)

    def aux_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Auxiliary labels: 0 for an old class, ``1 + k`` for the k-th new class."""
        lookup = torch.zeros(self.n_classes, dtype=torch.int64, device=y.device)
        new = self.head.classes[len(self.head.classes) - self.n_new :]
        lookup[new] = torch.arange(1, self.n_new + 1, device=y.device)
        return lookup[y.long()]

    def aux_loss(self, y: torch.Tensor) -> torch.Tensor | None:
        """Cross-entropy of the auxiliary head on the last training batch (None without one)."""
        if self.aux_head is None or self.last_features is None:
            return None
        logits = self.aux_head(self.last_features[:, -self.feature_dim :])
        return F.cross_entropy(logits, self.aux_targets(y))

    # ------------------------------------------------------------------ forward
    def train(self, mode: bool = True) -> ExpandableNet:
        """Set training mode; frozen blocks (and a frozen trunk) stay in eval mode."""
        super().train(mode)
        if mode:
            for block in self.blocks[:-1]:
                block.eval()
            if not self.train_shared and self.n_tasks > 1:
                self.shared.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated features of every block: ``[batch, feature_dim * len(blocks)]``.

        The shared trunk runs once and every block reads its output. Frozen blocks run in eval
        mode, where the ResNet blocks of :mod:`strategies.resnet` fold their batch norms into
        their convolutions (:func:`~strategies.resnet.conv_bn`). With a trainable trunk
        (MEMO's default) the frozen blocks stay in the autograd graph, for the trunk's gradient
        flows back through them; with a frozen trunk nothing before the newest block records a
        graph.
        """
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        trunk = self.shared(x)
        return torch.cat([block(trunk) for block in self.blocks], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        self.last_features = features if self.training else None
        return self.head(features)

    def __deepcopy__(self, memo: dict[int, Any]) -> ExpandableNet:
        # the cached feature is part of an autograd graph, which cannot be deep-copied
        cached, self.last_features = self.last_features, None
        try:
            clone = copy.copy(self)
            memo[id(self)] = clone
            clone.__dict__ = copy.deepcopy(self.__dict__, memo)
        finally:
            self.last_features = cached
        return clone


def _reset_parameters(module: nn.Module) -> None:
    for child in module.modules():
        if hasattr(child, "reset_parameters"):
            child.reset_parameters()


def union_replay_size(batch_size: int, n_stored: int, n_new: int) -> int:
    """Stored samples per batch so that an epoch shows each about once (training on the union).

    Examples
    --------
    >>> from strategies.expandable import union_replay_size
    >>> union_replay_size(32, n_stored=100, n_new=400)
    8
    """
    return max(1, min(n_stored, round(batch_size * n_stored / max(1, n_new))))


def replay_as_union(
    learner: Learner, store: ExemplarStore, generator: torch.Generator, n: int | None = None
) -> None:
    """Add stored exemplars to ``learner.batch`` as if training on the union new data + store.

    Without ``n``, each batch receives ``round(batch size * len(store) / len(experience))``
    exemplars, so one epoch shows each stored sample about once and new classes outnumber old
    ones as they do in the reference implementations (which train on the concatenated data
    set); weight alignment corrects exactly that imbalance.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from types import SimpleNamespace
    >>> from continual import ExemplarStore
    >>> from strategies.expandable import replay_as_union
    >>> store = ExemplarStore(random_state=0).update(
    ...     torch.zeros(50, 2), torch.zeros(50, dtype=torch.int64), capacity_bytes=10_000)
    >>> learner = SimpleNamespace(batch=(torch.ones(10, 2), torch.ones(10, dtype=torch.int64)),
    ...     batch_size=10, experience=SimpleNamespace(train=(np.ones((200, 2)), np.ones(200))))
    >>> replay_as_union(learner, store, torch.Generator().manual_seed(0))
    >>> len(learner.batch[0])  # 10 new + round(10 * 50 / 200) stored
    12
    """
    if not len(store):
        return
    x, y = learner.batch
    if n is None:
        n_local = -(-len(learner.experience.train[1]) // world_size())  # this rank's share
        n = union_replay_size(learner.batch_size, len(store), n_local)
    old_x, old_y = store.sample(min(max(n, 1), len(store)), generator)
    learner.batch = (
        torch.cat([x, old_x.to(x.device, x.dtype)]),
        torch.cat([y, old_y.to(y.device, y.dtype)]),
    )


def fit_store_to_budget(
    learner: Learner, store: ExemplarStore, *, extra_bytes: int = 0, context: str = ""
) -> None:
    """Shrink ``store`` so that the model, the next optimizer state and everything else fit.

    Called in ``before_experience`` after a plugin grew the model. The learner's accounts are
    live, so the ledger already charges the grown model and reserves the state its optimizer
    will hold; ``extra_bytes`` reserves what the plugin will add during the experience.

    Raises
    ------
    BudgetExceededError
        If the model, its optimizer state, the other plugins' items and ``extra`` exceed the
        budget even with an empty store; the message gives the bytes needed and the budget.

    Examples
    --------
    >>> import torch
    >>> from continual import BudgetExceededError, ExemplarStore, Learner, MemoryAccountant
    >>> from strategies.expandable import fit_store_to_budget
    >>> learner = Learner(torch.nn.Linear(3, 2), accountant=MemoryAccountant(40))
    >>> try:
    ...     fit_store_to_budget(learner, ExemplarStore())
    ... except BudgetExceededError as error:
    ...     print(str(error).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    the model needs 64 bytes (32 of parameters and buffers, 32 of optimizer state) but the
    budget is 40 bytes: memory budget exceeded by 24 bytes (64 B used of 40 B)
    """
    ledger = learner.accountant.ledger()
    if ledger.budget is None:
        return
    # every rank keeps a shard of the same size, and fails with the others
    room = agree_min(int(ledger.headroom) + nbytes(store) - extra_bytes)
    if room < 0:
        needed = ledger.accounts["model"] + ledger.accounts["optimizer"]
        prefix = f"{context}: " if context else ""
        raise BudgetExceededError(
            ledger,
            f"{prefix}the model needs {needed:,} bytes ({ledger.accounts['model']:,} of "
            f"parameters and buffers, {ledger.accounts['optimizer']:,} of optimizer state)"
            + (f" plus {extra_bytes:,} bytes it will keep" if extra_bytes else "")
            + f" but the budget is {ledger.budget:,} bytes",
        )
    store.shrink(room)


class GrowingStrategy(Replay, ABC):
    """The plugin steps MEMO and DER share; subclasses only say how a backbone is split.

    ``before_experience`` turns the learner's backbone into an :class:`ExpandableNet` (first
    experience), grows it for the experience's new classes and shrinks the exemplar store to what
    the grown model leaves (:func:`fit_store_to_budget`). ``before_batch`` adds stored
    exemplars in proportion to the store's size (:func:`replay_as_union`). ``before_backward`` adds
    ``aux_weight`` times the auxiliary head's cross-entropy. ``after_experience`` aligns the new
    classes' head weights, then refills the herding store with the headroom.

    What it stores: the exemplar store (account ``<name>/exemplars``, native dtype plus a compact
    label each). The grown network is the learner's ``model`` account.

    Parameters
    ----------
    aux_weight
        Weight of the auxiliary ``new + 1`` loss (1.0 in MEMO and DER), finite and >= 0.
    weight_alignment
        A bool: scale the new classes' head rows after each incremental task.
    replay_batch_size
        Stored samples added to each batch; by default in proportion to the store's size
        (:func:`replay_as_union`).
    seed
        Seed of the replayed batches and of the new blocks' and heads' initialisation.
    store_device
        Where the exemplars live (see :class:`~strategies.replay.Replay`).

    Raises
    ------
    InvalidParameterError
        For a parameter outside what is described above (a ``ValueError`` naming it).
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "aux_weight": [NON_NEGATIVE_FLOAT],
        "weight_alignment": ["boolean"],
    }

    def __init__(
        self,
        aux_weight: float = 1.0,
        weight_alignment: bool = True,
        replay_batch_size: int | None = None,
        seed: int = 0,
        store_device: str = "cpu",
    ) -> None:
        self.aux_weight = aux_weight
        self.weight_alignment = weight_alignment
        super().__init__(
            policy="herding",
            replay_batch_size=replay_batch_size,
            seed=seed,
            store_device=store_device,
        )

    def _reset(self) -> None:
        super()._reset()
        self.task_classes: list[list[int]] = []

    @abstractmethod
    def expand(self, model: nn.Module) -> ExpandableNet:
        """Build the growing network from the learner's backbone (subclasses define it)."""

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "task_classes": [list(c) for c in self.task_classes]}

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        """Restore the store, then rebuild the grown network on the learner, task by task."""
        super().load_state_dict(state, learner)
        self.task_classes = []
        for index, classes in enumerate(state["task_classes"]):
            self._grow(learner, [int(c) for c in classes], index)

    def before_experience(self, learner: Learner) -> None:
        labels = np.unique(np.asarray(learner.experience.train[1]))
        model = learner.model
        seen = set(model.head.classes.tolist()) if isinstance(model, ExpandableNet) else set()
        self._grow(learner, sorted(set(labels.tolist()) - seen), learner.experience.index)
        context = f"{type(self).__name__} at experience {learner.experience.index}"
        fit_store_to_budget(learner, self.store, context=context)

    def _grow(self, learner: Learner, classes: list[int], index: int) -> None:
        """Grow ``learner.model`` (made an :class:`ExpandableNet` first) for ``classes``."""
        if not isinstance(learner.model, ExpandableNet):
            learner.model = self.expand(learner.model)
        with torch.random.fork_rng(devices=[]):  # seeded growth, global RNG untouched
            torch.manual_seed(self.seed * 100_003 + index)
            learner.model.grow(classes)
        self.task_classes.append(classes)

    def before_batch(self, learner: Learner) -> None:
        replay_as_union(learner, self.store, self._generator, self.replay_batch_size)

    def before_backward(self, learner: Learner) -> None:
        loss = learner.model.aux_loss(learner.batch[1])
        if loss is not None and self.aux_weight:
            learner.loss = learner.loss + self.aux_weight * loss

    def after_batch(self, learner: Learner) -> None:
        learner.model.last_features = None

    def after_experience(self, learner: Learner) -> None:
        model = learner.model
        model.last_features = None
        if self.weight_alignment and model.n_tasks > 1:
            model.head.align_weights(model.n_new)
        super().after_experience(learner)
