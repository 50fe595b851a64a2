"""DSL: dynamic sparse training of an embedding table with a constant number of nonzeros.

References
----------
Wang et al., "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation",
WSDM 2024.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from continual.bitmask import BitMask

__all__ = ["DenseTable", "DynamicSparsity", "SparseTable", "cosine_ratio"]


class DenseTable(nn.Module):
    """A plain ``(n_rows, dim)`` float32 table, initialised from N(0, 0.1²).

    Stores ``n_rows * dim`` float32 (the parameter).

    Examples
    --------
    >>> import torch
    >>> from continual import nbytes
    >>> from recsys.dsl import DenseTable
    >>> torch.manual_seed(0) is not None
    True
    >>> table = DenseTable(10, 4)
    >>> table.dense().shape, nbytes(table)
    (torch.Size([10, 4]), 160)
    """

    def __init__(self, n_rows: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_rows, dim) * 0.1)

    def dense(self) -> torch.Tensor:
        """The table as a differentiable ``(n_rows, dim)`` tensor."""
        return self.weight


class SparseTable(nn.Module):
    """A table stored as a packed bitmask plus the float32 values of its active entries.

    Each entry is kept independently with probability ``density`` (Bernoulli, seeded); the
    number of active entries never changes afterwards. Stores ``ceil(n_rows * dim / 8)`` bytes of
    mask (:class:`continual.BitMask`) and 4 bytes per active entry. Inactive entries are not
    stored, so masking them (and their optimizer state, which is sized by the values) is
    structural. :meth:`dense` scatters the values into a transient dense tensor for the forward
    pass; gradients flow to ``values``.

    Parameters
    ----------
    n_rows, dim
        Shape of the table.
    density
        Fraction of entries kept, in (0, 1].
    seed
        Seed of the mask and of the initial values.

    Examples
    --------
    >>> from continual import nbytes
    >>> from recsys.dsl import SparseTable
    >>> table = SparseTable(100, 8, density=0.25, seed=0)
    >>> table.nnz, nbytes(table), table.dense().shape  # 100 mask bytes + 4 x 190 values
    (190, 860, torch.Size([100, 8]))
    """

    def __init__(self, n_rows: int, dim: int, density: float = 0.5, seed: int | None = 0) -> None:
        super().__init__()
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {density!r}")
        rng = np.random.default_rng(seed)
        keep = rng.random(n_rows * dim) < density
        if not keep.any():
            keep[rng.integers(keep.size)] = True
        self.shape = (int(n_rows), int(dim))
        self.density = density
        self.mask = BitMask.from_bool(keep)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        self.values = nn.Parameter(torch.randn(int(keep.sum()), generator=generator) * 0.1)

    @property
    def nnz(self) -> int:
        """Number of active (stored) entries."""
        return int(self.values.numel())

    def memory_items(self) -> dict[str, Any]:
        """The packed mask and the values."""
        return {"mask": self.mask, "values": self.values}

    def active(self) -> torch.Tensor:
        """Flat positions of the active entries, sorted (int64), unpacked on demand."""
        bits = np.unpackbits(self.mask.packed.numpy(), count=len(self.mask))
        return torch.from_numpy(np.flatnonzero(bits))

    def dense(self) -> torch.Tensor:
        """The table as a transient differentiable ``(n_rows, dim)`` tensor."""
        flat = torch.zeros(self.shape[0] * self.shape[1], dtype=self.values.dtype)
        return flat.index_put((self.active(),), self.values).view(self.shape)


def cosine_ratio(step: int, total: int, start: float = 0.5, end: float = 0.005) -> float:
    """The update ratio, cosine-annealed from ``start`` at step 0 to ``end`` at ``total``.

    Examples
    --------
    >>> from recsys.dsl import cosine_ratio
    >>> cosine_ratio(0, 100), cosine_ratio(50, 100), cosine_ratio(100, 100)
    (0.5, 0.2525, 0.005)
    """
    progress = min(max(step / max(total, 1), 0.0), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


class DynamicSparsity:
    """Prune and grow a :class:`SparseTable` every ``update_every`` steps.

    Prune drops the ``n = ceil(ratio * nnz)`` active entries of smallest magnitude; grow
    activates the ``n`` inactive entries with the largest absolute gradient (accumulated over
    the last ``accumulate`` batches), starting at 0 with zero optimizer state. The ratio follows
    :func:`cosine_ratio` over ``total_steps``. The number of nonzeros is constant. Stores, only
    during the ``accumulate`` batches before an update, one dense float32 gradient accumulator
    (charged through :meth:`memory_items`).

    Parameters
    ----------
    table
        The sparse table.
    optimizer
        Its optimizer; per-entry state tensors of the values' size are remapped too.
    total_steps
        Length of the cosine schedule.
    update_every
        ΔT, steps between updates.
    accumulate
        Batches whose gradients are summed to choose the grown entries.
    ratio_start, ratio_end
        The schedule's end points.

    Examples
    --------
    >>> import torch
    >>> from recsys.dsl import DynamicSparsity, SparseTable
    >>> table = SparseTable(20, 4, density=0.5, seed=0)
    >>> optimizer = torch.optim.Adam(table.parameters(), lr=0.1)
    >>> dsl = DynamicSparsity(table, optimizer, total_steps=10, update_every=2)
    >>> for step in range(4):
    ...     weight = table.dense()
    ...     if dsl.wants_gradient(step):
    ...         weight.retain_grad()
    ...     loss = (weight.sum(1) - 1.0).pow(2).sum()
    ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
    ...     dsl.after_step(step, weight)
    >>> table.nnz, table.mask.count(), dsl.n_updates
    (39, 39, 2)
    """

    def __init__(
        self,
        table: SparseTable,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        update_every: int = 100,
        accumulate: int = 1,
        ratio_start: float = 0.5,
        ratio_end: float = 0.005,
    ) -> None:
        if update_every < 1 or accumulate < 1 or accumulate > update_every:
            raise ValueError(
                f"need 1 <= accumulate <= update_every, got accumulate={accumulate!r}, "
                f"update_every={update_every!r}"
            )
        self.table = table
        self.optimizer = optimizer
        self.total_steps = total_steps
        self.update_every = update_every
        self.accumulate = accumulate
        self.ratio_start = ratio_start
        self.ratio_end = ratio_end
        self.n_updates = 0
        self._grad: torch.Tensor | None = None

    def memory_items(self) -> dict[str, Any]:
        """The gradient accumulator while it exists."""
        return {} if self._grad is None else {"grad_accumulator": self._grad}

    def wants_gradient(self, step: int) -> bool:
        """Whether the dense gradient of this step is needed (call ``retain_grad`` then)."""
        return step % self.update_every >= self.update_every - self.accumulate

    def after_step(self, step: int, weight: torch.Tensor | None = None) -> None:
        """Accumulate ``weight.grad`` when wanted; prune and grow at the end of each ΔT.

        ``weight`` is the step's dense table, on which ``retain_grad()`` was called when
        :meth:`wants_gradient` said so.
        """
        dense_grad = weight.grad if weight is not None and self.wants_gradient(step) else None
        if dense_grad is not None:
            grad = dense_grad.detach().abs()
            self._grad = grad if self._grad is None else self._grad + grad
        if (step + 1) % self.update_every == 0 and self._grad is not None:
            self.prune_and_grow(
                cosine_ratio(step, self.total_steps, self.ratio_start, self.ratio_end)
            )
            self._grad = None

    def prune_and_grow(self, ratio: float) -> int:
        """Swap ``ceil(ratio * nnz)`` entries; return how many."""
        table = self.table
        active = table.active()
        nnz, total = active.numel(), table.shape[0] * table.shape[1]
        n = min(math.ceil(ratio * nnz), nnz, total - nnz)
        if n <= 0:
            return 0
        with torch.no_grad():
            keep = torch.ones(nnz, dtype=torch.bool)
            keep[_smallest(table.values.detach().abs(), n)] = False
            score = self._grad.reshape(-1).clone() if self._grad is not None else torch.rand(total)
            score[active] = -torch.inf
            grown = _smallest(-score, n)
            positions = torch.cat([active[keep], grown])
            order = torch.argsort(positions)
            source = torch.cat([torch.nonzero(keep).ravel(), torch.full((n,), -1)])[order]
            table.values.data = _gather(table.values.data, source)
            for state in self.optimizer.state.get(table.values, {}).values():
                if isinstance(state, torch.Tensor) and state.shape == table.values.shape:
                    state.copy_(_gather(state, source))
            flags = torch.zeros(total, dtype=torch.bool)
            flags[positions] = True
        table.mask = BitMask.from_bool(flags)
        self.n_updates += 1
        return n


def _smallest(values: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the ``n`` smallest entries, in linear time (``numpy.argpartition``)."""
    array = values.numpy()
    if n >= array.size:
        return torch.arange(array.size)
    return torch.from_numpy(np.argpartition(array, n - 1)[:n].astype(np.int64))


def _gather(values: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(values)
    kept = source >= 0
    out[kept] = values[source[kept]]
    return out
