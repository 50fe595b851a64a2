"""BPR training of an MF or LightGCN model, optionally under a CPU time budget."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from continual.progress import progress
from recsys.dsl import DynamicSparsity
from recsys.models import MF
from recsys.sampling import NegativeSampler

__all__ = ["TrainReport", "bpr_loss", "train_bpr"]


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


@dataclass
class TrainReport:
    """What one call to :func:`train_bpr` did: epochs (fractional), steps, seconds, last loss."""

    epochs: float
    steps: int
    seconds: float
    loss: float


def train_bpr(
    model: MF,
    train: sp.csr_matrix,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int = 10,
    batch_size: int = 2048,
    reg: float = 1e-4,
    time_budget: float | None = None,
    dsl: DynamicSparsity | None = None,
    step_offset: int = 0,
    seed: int | None = 0,
    verbose: int = 0,
) -> TrainReport:
    """Train with BPR: one uniform negative per positive, rejecting known positives.

    Each epoch shuffles the positive pairs of ``train`` and walks them in batches. The loss adds
    ``reg / 2`` times the mean squared norm of the batch's layer-0 embeddings. Training stops
    after ``epochs`` epochs or, mid-epoch, once ``time_budget`` seconds (process CPU time) are
    spent. With ``dsl``, the sparse table is pruned and grown on its schedule.

    Examples
    --------
    >>> import scipy.sparse as sp, torch
    >>> from recsys.mappers import Full
    >>> from recsys.models import MF
    >>> from recsys.training import train_bpr
    >>> model = MF(Full(4), Full(4), n_users=4, n_items=4, dim=8)
    >>> optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    >>> report = train_bpr(model, sp.csr_matrix(torch.eye(4).numpy()), optimizer, epochs=30)
    >>> report.epochs, report.steps, report.loss < 0.2
    (30.0, 30, True)
    """
    users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
    items = train.indices.astype(np.int64)
    if users.size == 0:
        raise ValueError("train must hold at least one interaction, got an empty training set")
    sampler = NegativeSampler(train, seed=seed)
    rng = np.random.default_rng(seed)
    n_batches = math.ceil(users.size / batch_size)
    start = time.process_time()
    step, loss_value, done = step_offset, math.nan, 0
    for _ in progress(range(epochs), verbose=verbose, desc="epochs"):
        order = rng.permutation(users.size)
        for batch in range(n_batches):
            index = order[batch * batch_size : (batch + 1) * batch_size]
            u, i, j = users[index], items[index], sampler.sample(users[index])
            loss_value = _step(model, optimizer, u, i, j, reg, dsl, step)
            step += 1
            done += 1
            if time_budget is not None and time.process_time() - start > time_budget:
                return TrainReport(done / n_batches, step - step_offset, _spent(start), loss_value)
    return TrainReport(done / n_batches, step - step_offset, _spent(start), loss_value)


def _step(
    model: MF,
    optimizer: torch.optim.Optimizer,
    users: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray,
    reg: float,
    dsl: DynamicSparsity | None,
    step: int,
) -> float:
    items = np.concatenate([positives, negatives])
    user_vec, item_vec, user_ego, item_ego = model.represent(users, items)
    weight = model._last_weight
    if dsl is not None and dsl.wants_gradient(step):
        weight.retain_grad()
    n = users.size
    score = (user_vec.repeat(2, 1) * item_vec).sum(1)
    loss = bpr_loss(score[:n], score[n:])
    norm = user_ego.pow(2).sum() + item_ego.pow(2).sum()
    loss = loss + reg * 0.5 * norm / n
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if dsl is not None:
        dsl.after_step(step, weight)
    model._last_weight = None  # the dense view is transient: do not keep it between steps
    return float(loss.detach())


def _spent(start: float) -> float:
    return time.process_time() - start
