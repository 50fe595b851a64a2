"""iCaRL: herding exemplars, distillation on old logits, nearest-mean-of-exemplars prediction."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from continual.distributed import local_part, sum_over_ranks
from continual.learner import Learner
from continual.measure import nbytes
from continual.state import read_only
from continual.validation import NON_NEGATIVE_FLOAT, POSITIVE_FLOAT
from strategies.backbones import head_classes
from strategies.expandable import fit_store_to_budget, replay_as_union
from strategies.replay import Replay, experience_arrays

__all__ = ["ICaRL", "NearestMeanClassifier"]


class NearestMeanClassifier(nn.Module):
    """Score each class by minus the squared distance to its mean of L2-normalised features.

    Returns ``[batch, n_classes]`` scores indexed by global label; classes without a mean score
    ``-inf``. It wraps a model with ``features(x)`` and owns no parameters.

    Parameters
    ----------
    model
        The feature extractor (its ``features`` method is used).
    means
        ``[n_means, feature_dim]`` L2-normalised class means.
    classes
        Global label of each row of ``means``.
    n_classes
        Width of the returned scores.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from strategies.icarl import NearestMeanClassifier
    >>> class Identity(nn.Identity):
    ...     def features(self, x):
    ...         return x
    >>> nme = NearestMeanClassifier(Identity(), torch.eye(2), torch.tensor([2, 0]), n_classes=3)
    >>> nme(torch.tensor([[0.1, 2.0]])).argmax(dim=1).tolist()
    [0]
    """

    def __init__(
        self, model: nn.Module, means: torch.Tensor, classes: torch.Tensor, n_classes: int
    ) -> None:
        super().__init__()
        self.model = model
        self.means = means
        self.classes = classes
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.normalize(self.model.features(x), dim=1)
        distances = torch.cdist(features, self.means.to(features.dtype)).square()
        scores = features.new_full((len(features), self.n_classes), float("-inf"))
        scores[:, self.classes.long()] = -distances
        return scores


class ICaRL(Replay):
    """Incremental Classifier and Representation Learning (Rebuffi et al., CVPR 2017).

    Training adds, to the learner's cross-entropy on new data plus replayed exemplars, a
    knowledge-distillation loss (temperature ``temperature``, weight ``distillation_weight``)
    between the current and the previous model's logits on the classes seen before. After each
    experience the previous model is replaced by a frozen copy of the current one, the herding
    exemplar store is refilled with what the budget leaves, and the class means of the
    L2-normalised exemplar features are recomputed. At evaluation the learner's model is
    replaced, between ``before_eval`` and ``after_eval``, by a :class:`NearestMeanClassifier`
    over those means: predictions are nearest-mean-of-exemplars, as in the paper.

    The learner's model must output logits over all classes and define ``features(x)`` (the
    backbones of :mod:`strategies.backbones` do).

    What it stores and how it is charged: the exemplars in their native dtype with a compact
    label each (``icarl/exemplars``); the frozen previous model used as the distillation
    teacher, kept from the end of one experience to the end of the next (``icarl/old_model``,
    parameters and buffers); the class means, float32 ``[n_seen, feature_dim]``, and their
    int64 labels (``icarl/class_means``, ``icarl/mean_classes``). Model and optimizer are the
    learner's ``model`` and ``optimizer`` accounts.

    Parameters
    ----------
    temperature
        Distillation temperature (2, as in common re-implementations), finite and > 0.
    distillation_weight
        Weight of the distillation term, finite and >= 0.
    replay_batch_size
        Stored samples added to each batch; by default in proportion to the store's size, as
        when training on the union of new data and exemplars
        (:func:`~strategies.expandable.replay_as_union`).
    seed
        Seed of the replayed batches.
    store_device
        Where the exemplars live (see :class:`~strategies.replay.Replay`).

    Raises
    ------
    InvalidParameterError
        For a parameter outside what is described above (a ``ValueError`` naming it).

    References
    ----------
    Rebuffi, Kolesnikov, Sperl, Lampert. "iCaRL: Incremental Classifier and Representation
    Learning", CVPR 2017.

    Examples
    --------
    >>> import torch
    >>> from continual import Learner, MemoryAccountant
    >>> from streams import split_digits
    >>> from strategies import DigitsConvNet
    >>> from strategies.icarl import ICaRL
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> icarl = ICaRL(seed=0)
    >>> learner = Learner(DigitsConvNet(10, width=4), plugins=[icarl], input_scale=1 / 16,
    ...                   accountant=MemoryAccountant("40 KB"), epochs=3)
    >>> scores = learner.run(split_digits(5, seed=0)[:3])
    >>> sorted(learner.accountant.ledger().accounts)  # doctest: +NORMALIZE_WHITESPACE
    ['icarl/class_means', 'icarl/exemplars', 'icarl/mean_classes', 'icarl/old_model',
     'model', 'optimizer']
    >>> learner.accountant.total() <= 40_000, icarl.mean_classes.numel()
    (True, 6)
    >>> scores.last_accuracy() > 0.6
    True
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "temperature": [POSITIVE_FLOAT],
        "distillation_weight": [NON_NEGATIVE_FLOAT],
    }

    def __init__(
        self,
        temperature: float = 2.0,
        distillation_weight: float = 1.0,
        replay_batch_size: int | None = None,
        seed: int = 0,
        store_device: str = "cpu",
    ) -> None:
        self.temperature = temperature
        self.distillation_weight = distillation_weight
        super().__init__(
            policy="herding",
            replay_batch_size=replay_batch_size,
            seed=seed,
            store_device=store_device,
        )

    def _reset(self) -> None:
        super()._reset()
        self.old_model: nn.Module | None = None
        self.class_means = torch.empty(0, 0)
        self.mean_classes = torch.empty(0, dtype=torch.int64)
        self._trained_model: nn.Module | None = None

    def memory_items(self) -> dict[str, Any]:
        return {
            "exemplars": self.store,
            "old_model": self.old_model,
            "class_means": self.class_means,
            "mean_classes": self.mean_classes,
        }

    def planned_bytes(self, model: nn.Module) -> dict[str, int]:
        """The teacher: a frozen copy of the model, kept from the first experience's end."""
        return {"old_model": nbytes(model)}

    def state_dict(self) -> dict[str, Any]:
        old = None if self.old_model is None else self.old_model.state_dict(keep_vars=True)
        return {
            **super().state_dict(),
            "old_model": old,
            "class_means": self.class_means,
            "mean_classes": self.mean_classes,
        }

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        super().load_state_dict(state, learner)
        self.old_model = None
        if state["old_model"] is not None:
            self.old_model = _frozen_copy(learner.model)
            self.old_model.load_state_dict(state["old_model"])
        self.class_means = read_only(state["class_means"])
        self.mean_classes = read_only(state["mean_classes"])

    # ------------------------------------------------------------------ training
    def before_experience(self, learner: Learner) -> None:
        # a teacher copy of the model will be kept from the end of this experience on
        teacher = nbytes(learner.model) if self.old_model is None else 0
        context = f"ICaRL at experience {learner.experience.index} (with its teacher copy)"
        fit_store_to_budget(learner, self.store, extra_bytes=teacher, context=context)

    def before_batch(self, learner: Learner) -> None:
        replay_as_union(learner, self.store, self._generator, self.replay_batch_size)

    def before_backward(self, learner: Learner) -> None:
        if self.old_model is None or not self.distillation_weight or not len(self.mean_classes):
            return
        old = self.mean_classes
        with torch.no_grad():
            teacher = self.old_model(learner.prepare(learner.batch[0]))[:, old]
        student = learner.output[:, old]
        t = self.temperature
        kd = F.kl_div(
            F.log_softmax(student / t, dim=1),
            F.log_softmax(teacher / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        learner.loss = learner.loss + self.distillation_weight * kd * t * t

    def after_experience(self, learner: Learner) -> None:
        self.old_model = _frozen_copy(learner.model)
        x, y = experience_arrays(local_part(learner.experience.train))
        seen = np.union1d(self.mean_classes.numpy(), np.unique(y)).astype(np.int64)
        feature_dim = learner.features(x[:1]).shape[1]
        # reserve the class means (same shapes as the final ones) before sizing the store
        self.class_means = torch.zeros(len(seen), feature_dim, device=learner.device)
        self.mean_classes = torch.from_numpy(seen)
        capacity = learner.room_for(self.store)
        self.store.update(x, y, capacity_bytes=capacity, feature_fn=learner.features)
        self._update_means(learner, x, y)
        read_only([self.class_means, self.mean_classes])

    @torch.no_grad()
    def _update_means(self, learner: Learner, x: Any, y: np.ndarray) -> None:
        """Means of normalised exemplar features; the experience's data for a class with none.

        Under data-parallel training the sums and counts of every rank's shard are added, so
        that every rank classifies with the means of the global store.
        """
        stored_y = self.store.y.long().cpu().numpy() if len(self.store) else np.empty(0, np.int64)
        stored = F.normalize(learner.features(self.store.x), dim=1) if len(self.store) else None
        means = self.class_means
        sums = torch.zeros(len(means), means.shape[1] + 1, device=means.device)
        for row, label in enumerate(self.mean_classes.tolist()):
            if stored is not None and (stored_y == label).any():
                features = stored[torch.from_numpy(stored_y == label)]
            elif (y == label).any():
                features = F.normalize(learner.features(x[y == label]), dim=1)
            else:  # a class this rank's shard does not hold
                continue
            sums[row, :-1] = features.sum(dim=0)
            sums[row, -1] = len(features)
        sums = sum_over_ranks(sums)
        held = sums[:, -1] > 0
        means[held] = F.normalize(sums[held, :-1] / sums[held, -1:], dim=1)

    # ---------------------------------------------------------------- evaluation
    def before_eval(self, learner: Learner) -> None:
        if not len(self.mean_classes):
            return
        self._trained_model = learner.model
        n_classes = head_classes(learner.model)
        learner.model = NearestMeanClassifier(
            learner.model, self.class_means, self.mean_classes, n_classes
        )

    def after_eval(self, learner: Learner) -> None:
        if self._trained_model is not None:
            learner.model, self._trained_model = self._trained_model, None


def _frozen_copy(model: nn.Module) -> nn.Module:
    """A frozen evaluation-mode copy of ``model`` (the teacher), its buffers read-only."""
    copy_ = copy.deepcopy(model).requires_grad_(False).eval()
    read_only(list(copy_.buffers()))
    return copy_
