"""MEMO: shared generalized blocks, one specialized block per task."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from strategies.backbones import head_classes, split_backbone
from strategies.expandable import ExpandableNet, GrowingStrategy

__all__ = ["MEMO"]


class MEMO(GrowingStrategy):
    """Memory-efficient expandable model (Zhou et al., ICLR 2023).

    The learner's backbone is split by :func:`~strategies.backbones.split_backbone` into its
    generalized part (kept once, shared) and its specialized part (one copy per task, each
    initialised from the previous one). The feature is the concatenation of every specialized
    block's output on the shared feature map; a unified head over the classes seen so far
    (old weights copied in) classifies it, and an auxiliary ``new + 1`` head on the newest
    block adds ``aux_weight`` times its cross-entropy from the second task on. Old specialized
    blocks are frozen, batch norm included. After each incremental task the new classes' head
    rows are weight-aligned. Exemplars are chosen by iCaRL herding on the concatenated feature
    and fill whatever the grown model leaves of the budget.

    What it stores and how it is charged: the shared trunk, every specialized block, the
    unified and auxiliary heads (the learner's ``model`` account, BN statistics included), the
    optimizer state over the trainable part (``optimizer``) and the exemplars in their native
    dtype with a compact label each (``memo/exemplars``). Logits index global labels; unseen
    classes score ``-inf`` (see :mod:`strategies.expandable`).

    Weight alignment assumes the new classes' head rows grew longer than the old ones (many
    epochs on data where new classes outnumber the exemplars). In short CPU runs the opposite
    holds (gamma > 1) and alignment then favours the new classes; measure both
    (``benchmarks/RESULTS.md``, section cil_memory_aligned).

    Speed: the generalized blocks run once per batch for all specialized blocks, the frozen
    blocks run with their batch norms folded into their convolutions and image inputs run
    channels-last (:meth:`~strategies.expandable.ExpandableNet.features`). With
    ``train_base=True`` the trunk's gradient still flows back through every frozen block,
    which is most of MEMO's extra cost per sample over one ResNet (``benchmarks/RESULTS.md``,
    section cil_step_speed).

    Parameters
    ----------
    train_base
        A bool: keep training the generalized blocks after the first task (the released
        default).
    aux_weight, weight_alignment, replay_batch_size, seed, store_device
        As in :class:`~strategies.expandable.GrowingStrategy`.

    References
    ----------
    Zhou, Wang, Ye, Zhan. "A Model or 603 Exemplars: Towards Memory-Efficient Class-Incremental
    Learning", ICLR 2023.

    Examples
    --------
    >>> import torch
    >>> from continual import Learner, MemoryAccountant
    >>> from streams import split_digits
    >>> from strategies import DigitsConvNet
    >>> from strategies.memo import MEMO
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> memo = MEMO(weight_alignment=False, seed=0)  # see the note on weight alignment
    >>> learner = Learner(DigitsConvNet(10, width=4), plugins=[memo], input_scale=1 / 16,
    ...                   accountant=MemoryAccountant("60 KB"), epochs=3)
    >>> scores = learner.run(split_digits(5, seed=0)[:3])
    >>> len(learner.model.blocks), learner.accountant.total() <= 60_000
    (3, True)
    >>> scores.last_accuracy() > 0.6
    True
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {"train_base": ["boolean"]}

    def __init__(
        self,
        train_base: bool = True,
        aux_weight: float = 1.0,
        weight_alignment: bool = True,
        replay_batch_size: int | None = None,
        seed: int = 0,
        store_device: str = "cpu",
    ) -> None:
        self.train_base = train_base
        super().__init__(aux_weight, weight_alignment, replay_batch_size, seed, store_device)

    def expand(self, model: nn.Module) -> ExpandableNet:
        """The learner's backbone as a MEMO network (its head is dropped)."""
        n_classes = head_classes(model)
        generalized, specialized, dim = split_backbone(model)
        return ExpandableNet(generalized, specialized, dim, n_classes, train_shared=self.train_base)
