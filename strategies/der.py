"""DER: Dynamically Expandable Representation, one whole backbone per task."""

from __future__ import annotations

from torch import nn

from strategies.backbones import head_classes, split_backbone
from strategies.expandable import ExpandableNet, GrowingStrategy

__all__ = ["DER"]


class DER(GrowingStrategy):
    """Dynamically Expandable Representation (Yan, Xie, He, CVPR 2021).

    Each task adds a whole new feature extractor (the learner's backbone without its head,
    initialised from the previous one) and freezes the old ones, batch norm included. Nothing
    is shared. The concatenated feature feeds a unified head over the classes seen so far and
    the newest extractor feeds an auxiliary ``new + 1`` head. The new classes' head rows are
    weight-aligned after each incremental task, and herding exemplars fill what the models
    leave of the budget. This is the same growth as :class:`~strategies.memo.MEMO` with an
    empty shared trunk; it is not Avalanche's "DER" (Dark Experience Replay). Mask-based
    pruning of the original paper is not implemented.

    What it stores and how it is charged: one backbone per task and both heads (``model``),
    the optimizer state of the newest backbone and the heads (``optimizer``), and the exemplars
    in their native dtype with a compact label each (``der/exemplars``).

    Parameters
    ----------
    aux_weight, weight_alignment, replay_batch_size, seed
        As in :class:`~strategies.expandable.GrowingStrategy`.

    References
    ----------
    Yan, Xie, He. "DER: Dynamically Expandable Representation for Class Incremental Learning",
    CVPR 2021.

    Examples
    --------
    >>> import torch
    >>> from continual import Learner, MemoryAccountant
    >>> from streams import split_digits
    >>> from strategies import DigitsConvNet
    >>> from strategies.der import DER
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> learner = Learner(DigitsConvNet(10, width=4), plugins=[DER(seed=0)], input_scale=1 / 16,
    ...                   accountant=MemoryAccountant("60 KB"), epochs=3)
    >>> scores = learner.run(split_digits(5, seed=0)[:3])
    >>> len(learner.model.blocks), learner.accountant.total() <= 60_000
    (3, True)
    >>> scores.last_accuracy() > 0.6
    True
    """

    def expand(self, model: nn.Module) -> ExpandableNet:
        """The learner's backbone without its head as the first of DER's extractors."""
        n_classes = head_classes(model)
        generalized, specialized, dim = split_backbone(model)
        return ExpandableNet(nn.Identity(), nn.Sequential(generalized, specialized), dim, n_classes)
