"""Embedding tables and DSL: dynamic sparse training with a constant number of nonzeros.

:class:`DenseTable` is a plain table; :class:`SparseTable` stores only its active entries (a
packed bitmask plus their values); :class:`DynamicSparsity` is the plugin that prunes and grows a
sparse table during training, on the :class:`~continual.learner.Learner`'s step counter.

References
----------
Wang et al., "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation",
WSDM 2024.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from continual.bitmask import BitMask
from continual.plugin import Plugin

if TYPE_CHECKING:  # pragma: no cover
    from continual.learner import Learner

__all__ = ["DenseTable", "DynamicSparsity", "SparseTable", "cosine_ratio", "table_nbytes"]


def table_nbytes(n_rows: int, dim: int, density: float = 1.0) -> int:
    """Bytes a table of ``n_rows x dim`` float32 will store, from its shape alone.

    Dense (``density >= 1``): 4 bytes per entry. Sparse: the packed mask (1 bit per entry)
    plus 4 bytes per active entry (:meth:`SparseTable.planned_nnz`).

    Examples
    --------
    >>> from recsys.dsl import table_nbytes
    >>> table_nbytes(100, 8), table_nbytes(100, 8, density=0.25)  # 100 mask bytes + 4 x 200
    (3200, 900)
    """
    if density >= 1.0:
        return 4 * int(n_rows) * int(dim)
    return math.ceil(int(n_rows) * int(dim) / 8) + 4 * SparseTable.planned_nnz(n_rows, dim, density)


class DenseTable(nn.Module):
    """A plain ``(n_rows, dim)`` float32 table, initialised from N(0, 0.1²).

    Stores ``n_rows * dim`` float32 (the parameter).

    Parameters
    ----------
    n_rows, dim
        Shape of the table.
    seed
        Seed of the initial values (a private generator; None uses torch's global one).

    Examples
    --------
    >>> from continual import nbytes
    >>> from recsys.dsl import DenseTable
    >>> table = DenseTable(10, 4, seed=0)
    >>> table.dense().shape, nbytes(table)
    (torch.Size([10, 4]), 160)
    """

    def __init__(self, n_rows: int, dim: int, seed: int | None = None) -> None:
        super().__init__()
        generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        self.weight = nn.Parameter(torch.randn(n_rows, dim, generator=generator) * 0.1)

    def dense(self) -> torch.Tensor:
        """The table as a differentiable ``(n_rows, dim)`` tensor."""
        return self.weight


class SparseTable(nn.Module):
    """A table stored as a packed bitmask plus the float32 values of its active entries.

    Exactly :meth:`planned_nnz` entries (``round(density * n_rows * dim)``, a uniform random
    subset, seeded) are active, and their number never changes afterwards: the bytes are known
    from the shape before the table is built. Stores ``ceil(n_rows * dim / 8)`` bytes of mask
    (the buffer ``mask_bits``, a :class:`continual.BitMask`'s packed bits) and 4 bytes per
    active entry (the parameter ``values``). Inactive entries are not stored, so masking them
    (and their optimizer state, which is sized by the values) is structural. :meth:`dense`
    scatters the values into a transient dense tensor for the forward pass; gradients flow to
    ``values``.

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
    >>> table.nnz, nbytes(table), table.dense().shape  # 100 mask bytes + 4 x 200 values
    (200, 900, torch.Size([100, 8]))
    """

    def __init__(self, n_rows: int, dim: int, density: float = 0.5, seed: int | None = 0) -> None:
        super().__init__()
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {density!r}")
        self.shape = (int(n_rows), int(dim))
        self.density = density
        size = self.shape[0] * self.shape[1]
        rng = np.random.default_rng(seed)
        keep = np.zeros(size, dtype=bool)
        nnz = self.planned_nnz(n_rows, dim, density)
        keep[rng.choice(size, size=nnz, replace=False)] = True
        self.register_buffer("mask_bits", BitMask.from_bool(keep).packed)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        self.values = nn.Parameter(torch.randn(nnz, generator=generator) * 0.1)

    @staticmethod
    def planned_nnz(n_rows: int, dim: int, density: float) -> int:
        """Active entries of a table of this shape and density (at least 1)."""
        return max(1, min(int(n_rows) * int(dim), round(density * int(n_rows) * int(dim))))

    @property
    def nnz(self) -> int:
        """Number of active (stored) entries."""
        return int(self.values.numel())

    @property
    def mask(self) -> BitMask:
        """The active entries, one bit per entry of the flattened table."""
        return BitMask(self.mask_bits, (self.shape[0] * self.shape[1],))

    def set_mask(self, mask: BitMask) -> None:
        """Replace the mask (the values must already be in its order)."""
        self.mask_bits = mask.packed

    def memory_items(self) -> dict[str, Any]:
        """The packed mask and the values."""
        return {"mask": self.mask_bits, "values": self.values}

    def active(self) -> torch.Tensor:
        """Flat positions of the active entries, sorted (int64), unpacked on demand."""
        bits = np.unpackbits(self.mask_bits.numpy(), count=self.shape[0] * self.shape[1])
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


class DynamicSparsity(Plugin):
    """DSL as a plugin: prune and grow the model's :class:`SparseTable` every ΔT steps.

    The learner's model must have a ``table`` (a :class:`SparseTable`) and its forward output a
    ``weight`` field: the transient dense table of the step (see
    :class:`recsys.models.Representation`). Step ``s`` is ``learner.n_steps``. On the
    ``accumulate`` steps before each update the plugin keeps the dense table's gradient
    (``before_backward`` asks autograd to retain it, ``after_backward`` adds its absolute
    value); after the optimizer step that ends each ΔT window (``after_batch``) it drops the
    ``n = ceil(ratio * nnz)`` active entries of smallest magnitude and activates the ``n``
    inactive entries with the largest accumulated gradient, at 0 and with zero optimizer
    state. The ratio follows :func:`cosine_ratio` over ``total_steps``. The number of nonzeros
    is constant.

    Stores, only during the ``accumulate`` steps before an update, one dense float32 gradient
    accumulator of the table's shape (account ``dsl/grad_accumulator``; it is part of the
    plugin's state, so checkpoints and rollbacks keep it).

    Parameters
    ----------
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
    >>> from types import SimpleNamespace
    >>> from continual import Learner
    >>> from recsys.dsl import DynamicSparsity, SparseTable
    >>> class Table(torch.nn.Module):  # a model whose output carries the dense table
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.table = SparseTable(20, 4, density=0.5, seed=0)
    ...     def forward(self, x):
    ...         weight = self.table.dense()
    ...         return SimpleNamespace(weight=weight, value=(weight.sum(1) - 1.0).pow(2).sum())
    >>> dsl = DynamicSparsity(total_steps=10, update_every=2)
    >>> learner = Learner(Table(), plugins=[dsl], optimizer="adam", lr=0.1, epochs=4,
    ...                   loss=lambda output, _: output.value,
    ...                   batches=lambda payload, size, generator: [(None, None)],
    ...                   forward=lambda model, inputs: model(inputs), keep_optimizer=True)
    >>> learner.train_experience(SimpleNamespace(index=0, train=None))
    >>> table = learner.model.table
    >>> table.nnz, table.mask.count(), dsl.n_updates
    (40, 40, 2)
    """

    def __init__(
        self,
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
        self.total_steps = total_steps
        self.update_every = update_every
        self.accumulate = accumulate
        self.ratio_start = ratio_start
        self.ratio_end = ratio_end
        self.n_updates = 0
        self._grad: torch.Tensor | None = None

    @property
    def name(self) -> str:
        return "dsl"

    def memory_items(self) -> dict[str, Any]:
        """The gradient accumulator (None outside the steps before an update)."""
        return {"grad_accumulator": self._grad}

    def state_dict(self) -> dict[str, Any]:
        return {"n_updates": self.n_updates, "grad": self._grad}

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        self.n_updates = int(state["n_updates"])
        self._grad = state["grad"]

    def wants_gradient(self, step: int) -> bool:
        """Whether the dense gradient of step ``step`` is accumulated."""
        return step % self.update_every >= self.update_every - self.accumulate

    def accumulate_gradient(self, grad: torch.Tensor) -> None:
        """Add ``|grad|`` (the dense table's gradient) to the accumulator."""
        grad = grad.detach().abs()
        self._grad = grad if self._grad is None else self._grad + grad

    def before_backward(self, learner: Learner) -> None:
        if self.wants_gradient(learner.n_steps):
            learner.output.weight.retain_grad()

    def after_backward(self, learner: Learner) -> None:
        if self.wants_gradient(learner.n_steps) and learner.output.weight.grad is not None:
            self.accumulate_gradient(learner.output.weight.grad)

    def after_batch(self, learner: Learner) -> None:
        step = learner.n_steps - 1  # the step just taken
        if (step + 1) % self.update_every == 0 and self._grad is not None:
            ratio = cosine_ratio(step, self.total_steps, self.ratio_start, self.ratio_end)
            self.prune_and_grow(learner.model.table, learner.optimizer, ratio)
            self._grad = None

    def prune_and_grow(
        self, table: SparseTable, optimizer: torch.optim.Optimizer | None, ratio: float
    ) -> int:
        """Swap ``ceil(ratio * nnz)`` entries of ``table`` (and ``optimizer``'s per-entry
        state); return how many. Grown entries are those of largest accumulated gradient (at
        random without one)."""
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
            state = optimizer.state.get(table.values, {}) if optimizer is not None else {}
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == table.values.shape:
                    value.copy_(_gather(value, source))
            flags = torch.zeros(total, dtype=torch.bool)
            flags[positions] = True
        table.set_mask(BitMask.from_bool(flags))
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
