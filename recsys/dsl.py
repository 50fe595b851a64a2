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
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from continual.bitmask import BitMask
from continual.plugin import Plugin
from continual.validation import COUNT, FRACTION, check_params

if TYPE_CHECKING:  # pragma: no cover
    from continual.learner import Learner

__all__ = [
    "DenseTable",
    "DynamicSparsity",
    "SparseTable",
    "cosine_ratio",
    "select_extreme",
    "table_nbytes",
]


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

    def flags(self) -> np.ndarray:
        """The mask unpacked: a transient boolean array, one entry per flat table position.

        Examples
        --------
        >>> from recsys.dsl import SparseTable
        >>> table = SparseTable(3, 4, density=0.5, seed=0)
        >>> flags = table.flags()
        >>> flags.shape, int(flags.sum()), flags.nonzero()[0].tolist() == table.active().tolist()
        ((12,), 6, True)
        """
        size = self.shape[0] * self.shape[1]
        return np.unpackbits(self.mask_bits.cpu().numpy(), count=size).view(np.bool_)

    def active(self) -> torch.Tensor:
        """Flat positions of the active entries, sorted (int64), unpacked on demand."""
        return torch.from_numpy(np.flatnonzero(self.flags()))

    def dense(self) -> torch.Tensor:
        """The table as a transient differentiable ``(n_rows, dim)`` tensor."""
        return _Scatter.apply(self.values, np.flatnonzero(self.flags()), self.shape)


class _Scatter(torch.autograd.Function):
    """``values`` scattered to flat ``positions`` of a zero table; the gradient gathers back.

    On the CPU through numpy's fancy indexing, about twice as fast as ``index_put`` and its
    backward; on another device through torch's indexing there.
    """

    @staticmethod
    def forward(
        ctx: Any, values: torch.Tensor, positions: np.ndarray, shape: tuple[int, int]
    ) -> torch.Tensor:
        out = torch.zeros(shape, dtype=values.dtype, device=values.device)
        if values.device.type == "cpu":
            ctx.positions = positions
            out.numpy().reshape(-1)[positions] = values.detach().numpy()
        else:
            ctx.positions = torch.from_numpy(positions).to(values.device)
            out.view(-1)[ctx.positions] = values.detach()
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        flat = grad.detach().reshape(-1)
        if isinstance(ctx.positions, np.ndarray):
            return torch.from_numpy(flat.contiguous().numpy()[ctx.positions]), None, None
        return flat[ctx.positions], None, None


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
        Length of the cosine schedule (an int >= 1).
    update_every
        ΔT, steps between updates (an int >= 1).
    accumulate
        Batches whose gradients are summed to choose the grown entries (an int in
        ``[1, update_every]``).
    ratio_start, ratio_end
        The schedule's end points, fractions in ``[0, 1]``.

    Raises
    ------
    ValueError
        Naming the parameter and its value when it is outside these ranges.

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

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "total_steps": [COUNT],
        "update_every": [COUNT],
        "accumulate": [COUNT],
        "ratio_start": [FRACTION],
        "ratio_end": [FRACTION],
    }

    def __init__(
        self,
        total_steps: int,
        update_every: int = 100,
        accumulate: int = 1,
        ratio_start: float = 0.5,
        ratio_end: float = 0.005,
    ) -> None:
        check_params(
            self._parameter_constraints,
            {
                "total_steps": total_steps,
                "update_every": update_every,
                "accumulate": accumulate,
                "ratio_start": ratio_start,
                "ratio_end": ratio_end,
            },
            "DynamicSparsity",
        )
        if accumulate > update_every:
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
        """Swap ``n = ceil(ratio * nnz)`` entries of ``table``; return ``n``.

        The ``n`` active entries of smallest magnitude are dropped, and the ``n`` inactive
        entries of largest accumulated gradient (uniform random scores without one) become
        active at 0; the kept entries keep their values and ``optimizer``'s per-entry state,
        the grown ones start with zero state. Ties at either cut are broken by spreading the
        choice evenly over the tied entries in position order (:func:`select_extreme`), so
        that growing among equal (e.g. zero) gradients does not favour the first rows. The
        mask is rewritten in place. The pass works on flat numpy arrays in linear time, on the
        CPU (a table on another device is copied there and back).
        """
        flags = table.flags()  # a fresh array: updated in place below
        active = np.flatnonzero(flags)
        nnz, total = active.size, flags.size
        n = min(math.ceil(ratio * nnz), nnz, total - nnz)
        if n <= 0:
            return 0
        with torch.no_grad():
            values = table.values.detach()
            dropped = _extreme(np.abs(values.cpu().numpy()), n, largest=False)
            if self._grad is not None:
                score = self._grad.detach().reshape(-1).cpu().numpy()
            else:
                score = torch.rand(total).numpy()
            grown = _extreme(score, n, largest=True, excluded=flags)
            keep = np.ones(nnz, dtype=np.bool_)
            keep[dropped] = False
            before = flags.copy()
            flags[active[dropped]] = False
            flags[grown] = True
            # new slot of each kept entry (in position order) and the entry it comes from
            slots = np.flatnonzero(before[np.flatnonzero(flags)])
            sources = np.flatnonzero(keep)
            table.values.data = _moved(values, sources, slots)
            state = optimizer.state.get(table.values, {}) if optimizer is not None else {}
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == table.values.shape:
                    state[key] = _moved(value, sources, slots)
            table.mask_bits.copy_(torch.from_numpy(np.packbits(flags)))
        self.n_updates += 1
        return n


def select_extreme(score: np.ndarray, n: int, largest: bool = True) -> np.ndarray:
    """Indices of the ``n`` largest (or smallest) entries of a 1-D ``score``, in linear time.

    Entries strictly beyond the ``n``-th value are all taken; the rest come from the entries
    equal to it (the ties at the cut), spread evenly over them in index order: of ``m``
    tied entries, ``k`` are wanted, the tied entries number ``j * m // k`` for
    ``j = 0 .. k-1``. The order of the returned indices is unspecified.

    Parameters
    ----------
    score
        1-D array of scores (no NaN).
    n
        How many indices to return (clipped to ``score.size``).
    largest
        Take the largest entries (True) or the smallest (False).

    Returns
    -------
    numpy.ndarray
        ``min(n, score.size)`` distinct int64 indices into ``score``.

    Examples
    --------
    >>> import numpy as np
    >>> from recsys.dsl import select_extreme
    >>> sorted(select_extreme(np.array([0.3, 0.9, 0.1, 0.5]), 2).tolist())
    [1, 3]
    >>> sorted(select_extreme(np.array([5.0, 0.0, 0.0, 0.0, 0.0, 1.0]), 3).tolist())  # ties
    [0, 1, 5]
    """
    size = score.size
    if n >= size:
        return np.arange(size)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    kth = size - n if largest else n - 1
    cut = np.partition(score, kth)[kth]
    beyond = np.flatnonzero(score > cut if largest else score < cut)
    return np.concatenate([beyond, _spread(np.flatnonzero(score == cut), n - beyond.size)])


def _spread(tied: np.ndarray, k: int) -> np.ndarray:
    """``k`` of the ``tied`` indices, evenly spaced: entries ``j * len(tied) // k``."""
    return tied[np.arange(k, dtype=np.int64) * tied.size // max(k, 1)] if k > 0 else tied[:0]


def _extreme(
    score: np.ndarray, n: int, largest: bool, excluded: np.ndarray | None = None
) -> np.ndarray:
    """:func:`select_extreme` of a non-negative ``score``, over the entries not ``excluded``.

    Zeros are the common tie here (a gradient is zero outside the rows of the last batches; a
    grown entry stays 0 until its row is trained), and :func:`numpy.partition` is slow on
    many equal values, so the zero and the positive entries are taken apart: the positive
    ones first for the largest, the zeros first for the smallest. Returns indices into
    ``score`` (flat positions for a table-sized score).
    """
    zero = score > 0  # becomes the zero mask below, once the positive one is made
    if excluded is None:
        positive = zero.copy()
    else:
        positive = np.less(excluded, zero)  # not excluded and positive
        np.logical_or(zero, excluded, out=zero)
    np.logical_not(zero, out=zero)  # (not excluded and) zero
    first, second = (positive, zero) if largest else (zero, positive)
    first = np.flatnonzero(first)
    if first.size >= n:
        if largest:
            return first[select_extreme(score[first], n, largest=True)]
        return _spread(first, n)
    second = np.flatnonzero(second)
    rest = n - first.size
    if largest:
        return np.concatenate([first, _spread(second, rest)])
    return np.concatenate([first, second[select_extreme(score[second], rest, largest=False)]])


def _moved(values: torch.Tensor, sources: np.ndarray, slots: np.ndarray) -> torch.Tensor:
    """A new per-entry tensor holding ``values[sources]`` at ``slots`` and zeros elsewhere."""
    array = values.cpu().numpy()
    out = np.zeros_like(array)
    out[slots] = array[sources]
    return torch.from_numpy(out).to(values.device)
