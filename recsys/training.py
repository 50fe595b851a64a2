"""BPR on the one training loop: the batches, forward pass and loss a Learner needs.

:func:`make_learner` puts them together with the strategy plugins of a recommender:
:class:`~recsys.dsl.DynamicSparsity` (DSL) and :class:`~recsys.time_budget.CpuTimeBudget`.
The payload of an experience is a :class:`PositivePairs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from continual.accountant import MemoryAccountant
from continual.distributed import local_rows
from continual.learner import Learner
from recsys.dsl import DynamicSparsity
from recsys.models import MF, Representation
from recsys.sampling import NegativeSampler
from recsys.time_budget import CpuTimeBudget

__all__ = [
    "BPRLoss",
    "PositivePairs",
    "bpr_batches",
    "bpr_forward",
    "bpr_loss",
    "make_learner",
]


def bpr_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log sigmoid(positive - negative)``.

    Examples
    --------
    >>> import torch
    >>> from recsys.training import bpr_loss
    >>> round(float(bpr_loss(torch.tensor([0.0]), torch.tensor([0.0]))), 4)  # log 2
    0.6931
    """
    return F.softplus(negative - positive).mean()


class PositivePairs(NamedTuple):
    """The training payload of one block: its distinct (user, item) pairs and their sampler.

    ``users`` and ``items`` are int64 arrays; ``sampler`` draws negatives that avoid the
    block's positives. Built from arrays (:meth:`from_arrays`), nothing in it is sized by the
    vocabulary.
    """

    users: np.ndarray
    items: np.ndarray
    sampler: NegativeSampler

    @classmethod
    def from_arrays(cls, users: Any, items: Any, n_items: int) -> PositivePairs:
        """Pairs ``(users[k], items[k])`` (assumed distinct), negatives among ``n_items``."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        return cls(users, items, NegativeSampler.from_pairs(users, items, n_items))

    @classmethod
    def from_matrix(cls, train: sp.spmatrix) -> PositivePairs:
        """The stored entries of a user x item matrix.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from recsys.training import PositivePairs
        >>> pairs = PositivePairs.from_matrix(sp.csr_matrix(np.eye(2)))
        >>> pairs.users.tolist(), pairs.items.tolist(), pairs.sampler.n_items
        ([0, 1], [0, 1], 2)
        """
        train = sp.csr_matrix(train)
        train.sum_duplicates()
        users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        return cls.from_arrays(users, train.indices, train.shape[1])


def bpr_batches(
    payload: PositivePairs, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], None]]:
    """One epoch of BPR mini-batches: shuffled positive pairs, one negative per positive.

    The order and the negatives (uniform over the items the user has not interacted with in
    the block, from :class:`~recsys.sampling.NegativeSampler`) come from a numpy generator
    seeded by ``generator`` (the learner's). A pair whose user has every item is dropped.
    Under data-parallel training ``batch_size`` is the global batch and each rank samples
    negatives for its pairs of it only (:func:`continual.distributed.local_rows`).
    Yields ``((users, positives, negatives), None)``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, torch
    >>> from recsys.training import PositivePairs, bpr_batches
    >>> pairs = PositivePairs.from_matrix(sp.csr_matrix(np.eye(3, 4)))
    >>> batches = list(bpr_batches(pairs, 2, torch.Generator().manual_seed(0)))
    >>> [len(users) for (users, _, _), _ in batches]
    [2, 1]
    >>> all((negatives != positives).all() for (_, positives, negatives), _ in batches)
    True
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    users, items = payload.users, payload.items
    order = rng.permutation(users.size)
    for start in range(0, users.size, batch_size):
        index = local_rows(order[start : start + batch_size])  # this rank's pairs
        if not index.size:
            continue
        u, i = users[index], items[index]
        j = payload.sampler.sample(u, rng)
        if (j < 0).any():
            keep = j >= 0
            u, i, j = u[keep], i[keep], j[keep]
        yield (u, i, j), None


def bpr_forward(model: MF, inputs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Representation:
    """The model's representation of a batch: its users, then positives and negatives."""
    users, positives, negatives = inputs
    return model(users, np.concatenate([positives, negatives]))


class BPRLoss:
    """BPR on a :class:`~recsys.models.Representation` plus ``reg / 2`` times the mean squared
    norm of the batch's layer-0 embeddings (the L2 term of LightGCN and DSL).

    Examples
    --------
    >>> import torch
    >>> from recsys.models import Representation
    >>> from recsys.training import BPRLoss
    >>> users, items = torch.ones(1, 2), torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    >>> output = Representation(users, items, users, items, None)
    >>> round(float(BPRLoss(reg=0.0)(output, None)), 4)  # softplus(0 - 2)
    0.1269
    """

    def __init__(self, reg: float = 1e-4) -> None:
        self.reg = reg

    def __call__(self, output: Representation, targets: Any = None) -> torch.Tensor:
        n = output.users.shape[0]
        score = (output.users.repeat(2, 1) * output.items).sum(1)
        loss = bpr_loss(score[:n], score[n:])
        norm = output.users_ego.pow(2).sum() + output.items_ego.pow(2).sum()
        return loss + self.reg * 0.5 * norm / max(n, 1)


def make_learner(
    model: MF,
    *,
    accountant: MemoryAccountant | None = None,
    lr: float = 0.01,
    epochs: int = 10,
    batch_size: int = 2048,
    reg: float = 1e-4,
    time_budget: float | None = None,
    dsl: DynamicSparsity | None = None,
    seed: int = 0,
    verbose: int = 0,
    device: str | torch.device | None = None,
    precision: str = "32",
) -> Learner:
    """The Learner that trains an MF or LightGCN ``model`` with BPR.

    Adam over the table, kept across experiences; :func:`bpr_batches`, :func:`bpr_forward`
    and :class:`BPRLoss`; the ``dsl`` plugin when given, and a
    :class:`~recsys.time_budget.CpuTimeBudget` that ends an experience after ``time_budget``
    CPU seconds (and measures them in any case). Train one block with
    ``learner.learn(pairs)``, ``pairs`` a :class:`PositivePairs`. ``device`` and
    ``precision`` are the :class:`~continual.Learner`'s: the model and Adam's state live on
    ``device`` (None: where the model is); the batches stay numpy ID arrays, which the model
    maps to table rows (the mappers are numpy, on the CPU).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.mappers import Full
    >>> from recsys.models import MF
    >>> from recsys.training import PositivePairs, make_learner
    >>> model = MF(Full(4), Full(4), n_users=4, n_items=4, dim=8)
    >>> learner = make_learner(model, lr=0.05, epochs=30, batch_size=4, reg=0.0)
    >>> losses = learner.learn(PositivePairs.from_matrix(sp.csr_matrix(np.eye(4))))
    >>> learner.n_steps, losses[-1] < 0.2
    (30, True)
    >>> print(learner.accountant.ledger())
    account    device  bytes
    model         cpu    320
    optimizer     cpu    644
    total                964
    """
    plugins: list[Any] = [] if dsl is None else [dsl]
    plugins.append(CpuTimeBudget(time_budget))
    return Learner(
        model,
        plugins=plugins,
        accountant=accountant,
        optimizer="adam",
        lr=lr,
        loss=BPRLoss(reg),
        forward=bpr_forward,
        batches=bpr_batches,
        epochs=epochs,
        batch_size=batch_size,
        keep_optimizer=True,
        seed=seed,
        verbose=verbose,
        device=device,
        precision=precision,
    )
