"""MEMO inside Avalanche's own training loop (needs the ``avalanche`` extra).

:class:`MEMOModel` is an Avalanche ``DynamicModule`` around the same
:class:`~strategies.expandable.ExpandableNet` our :class:`~strategies.memo.MEMO` plugin
grows; :class:`MEMOPlugin` adds what MEMO does around training. Put a
:class:`continual.avalanche.MemoryBudgetPlugin` beside them and the exemplar store is
sized from the same byte budget as everything else.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import DynamicModule
from torch import nn

from continual.accountant import MemoryAccountant
from continual.avalanche import dataset_arrays
from continual.exemplars import ExemplarStore
from continual.validation import NON_NEGATIVE_FLOAT, check_params
from strategies.backbones import head_classes, split_backbone
from strategies.expandable import ExpandableNet, union_replay_size

__all__ = ["MEMOModel", "MEMOPlugin"]


class MEMOModel(DynamicModule):
    """MEMO's growing network as an Avalanche dynamic module.

    ``adaptation(experience)`` grows the network when a *training* experience
    brings new classes: a new specialized block initialised from the previous
    one, the unified head widened with the old weights copied in, and an
    auxiliary ``new + 1`` head (see :meth:`ExpandableNet.grow
    <strategies.expandable.ExpandableNet.grow>`). Evaluation-time adaptation
    never grows it. Old blocks stay frozen, batch norm included, across
    Avalanche's ``model.train()`` calls. Inputs are cast to float32 and
    multiplied by ``input_scale``. Logits index global labels; unseen classes
    score ``-inf``.

    What it stores: the shared generalized blocks, one specialized block per
    task and the heads (charged as the ``model`` account by
    :class:`~continual.avalanche.MemoryBudgetPlugin`).

    Parameters
    ----------
    backbone
        A backbone that :func:`~strategies.backbones.split_backbone` can split
        (``DigitsConvNet``, ``CifarResNet``); its head only gives the class count.
    train_base
        Keep training the generalized blocks after the first task.
    input_scale
        Factor applied after the float cast (``1/16`` for digits).
    seed
        Seed of each new block's and head's initialisation (as in our ``MEMO`` plugin).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from strategies import DigitsConvNet
    >>> from strategies.memo_avalanche import MEMOModel
    >>> model = MEMOModel(DigitsConvNet(10, width=4), input_scale=1 / 16)
    >>> model.adaptation(SimpleNamespace(classes_in_this_experience=[3, 7], current_experience=0))
    >>> model.adaptation(SimpleNamespace(classes_in_this_experience=[1, 2], current_experience=1))
    >>> len(model.net.blocks), model.net.head.classes.tolist()
    (2, [3, 7, 1, 2])
    """

    def __init__(
        self, backbone: nn.Module, train_base: bool = True, input_scale: float = 1.0, seed: int = 0
    ) -> None:
        super().__init__()
        n_classes = head_classes(backbone)
        generalized, specialized, dim = split_backbone(backbone)
        self.net = ExpandableNet(generalized, specialized, dim, n_classes, train_shared=train_base)
        self.input_scale = input_scale
        self.seed = seed

    def adaptation(self, experience: Any) -> None:
        if not self.training:
            return
        seen = set(self.net.head.classes.tolist())
        new = sorted(set(int(c) for c in experience.classes_in_this_experience) - seen)
        if not new:
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 100_003 + int(experience.current_experience))
            self.net.grow(new)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Stored inputs as float32 model inputs."""
        return x.to(torch.float32) * self.input_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare(x))


class MEMOPlugin(SupervisedPlugin):
    """What MEMO does around Avalanche's training loop.

    - ``before_training_exp``: clears the optimizer's state (a fresh optimizer
      per task, as MEMO's reference and our learner do) and shrinks the exemplar
      store to what the grown model leaves of the budget;
    - ``before_forward``: adds stored exemplars to the mini-batch, as many as
      training on the union of new data and memory would show
      (:func:`~strategies.expandable.union_replay_size`);
    - ``before_backward``: adds ``aux_weight`` times the auxiliary head's
      cross-entropy;
    - ``after_training_exp``: weight alignment of the new classes' head rows,
      then herding exemplars (iCaRL) into the store up to the budget's room.

    What it stores: an :class:`~continual.exemplars.ExemplarStore` of the
    experiences' samples in their native dtype (``memo/exemplars``, sized by
    ``accountant.room_for``).

    Parameters
    ----------
    accountant
        The accountant of the strategy's
        :class:`~continual.avalanche.MemoryBudgetPlugin` (``plugin.accountant``).
    aux_weight
        Weight of the auxiliary loss.
    weight_alignment
        Align the new classes' head rows after each incremental task.
    seed
        Seed of the herding ties and the replayed batches.

    Examples
    --------
    >>> from continual import MemoryAccountant
    >>> from strategies.memo_avalanche import MEMOPlugin
    >>> plugin = MEMOPlugin(MemoryAccountant("100 KB"))
    >>> list(plugin.memory_items())
    ['exemplars']
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "accountant": [MemoryAccountant],
        "aux_weight": [NON_NEGATIVE_FLOAT],
        "weight_alignment": ["boolean"],
        "seed": [Integral],
    }

    def __init__(
        self,
        accountant: MemoryAccountant,
        aux_weight: float = 1.0,
        weight_alignment: bool = True,
        seed: int = 0,
    ) -> None:
        params = {
            "accountant": accountant,
            "aux_weight": aux_weight,
            "weight_alignment": weight_alignment,
            "seed": seed,
        }
        check_params(self._parameter_constraints, params, "MEMOPlugin")
        super().__init__()
        self.accountant = accountant
        self.aux_weight = aux_weight
        self.weight_alignment = weight_alignment
        self.seed = seed
        self.store = ExemplarStore(policy="herding", random_state=seed)
        self._generator = torch.Generator().manual_seed(seed)
        self._n_new = 1

    @property
    def name(self) -> str:
        return "memo"

    def memory_items(self) -> dict[str, Any]:
        return {"exemplars": self.store}

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        _check_model(strategy.model)
        strategy.optimizer.state.clear()  # a fresh optimizer per task, as in MEMO's reference
        self.store.shrink(self.accountant.room_for(self.store))
        self._n_new = len(strategy.experience.dataset)

    def before_forward(self, strategy: Any, **kwargs: Any) -> None:
        if not len(self.store):
            return
        x, y, *rest = strategy.mbatch
        n = union_replay_size(len(y), len(self.store), self._n_new)
        old_x, old_y = self.store.sample(n, self._generator)
        batch = [torch.cat([x, old_x.to(x.device, x.dtype)]), torch.cat([y, old_y.to(y)])]
        batch += [torch.cat([t, t.new_zeros(n)]) for t in rest]  # task label 0
        strategy.mbatch = batch

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        loss = strategy.model.net.aux_loss(strategy.mb_y)
        if loss is not None and self.aux_weight:
            strategy.loss = strategy.loss + self.aux_weight * loss

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        model = strategy.model
        model.net.last_features = None
        if self.weight_alignment and model.net.n_tasks > 1:
            model.net.head.align_weights(model.net.n_new)
        x, y = dataset_arrays(strategy.experience.dataset)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self.store.update(
                x, y, capacity_bytes=self.accountant.room_for(self.store), feature_fn=model.features
            )
        model.train(was_training)


def _check_model(model: Any) -> None:
    if not isinstance(model, MEMOModel):
        raise TypeError(
            f"MEMOPlugin needs the strategy's model to be a MEMOModel, got {type(model).__name__}"
        )
