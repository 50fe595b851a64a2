"""Backbones: MF and LightGCN over one joint user + item embedding table.

References
----------
He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from continual.state import read_only
from recsys.dsl import DenseTable, SparseTable
from recsys.mappers import IdMapper

__all__ = [
    "MF",
    "LightGCN",
    "Representation",
    "adjacency_nbytes",
    "index_dtype",
    "normalized_adjacency",
]


class Representation(NamedTuple):
    """What a backbone's forward pass gives for a batch of users and items.

    ``users`` and ``items`` are the final embeddings that score pairs; ``users_ego`` and
    ``items_ego`` the layer-0 (table) embeddings, for the L2 term; ``weight`` the transient
    dense table of the step, whose gradient DSL reads (:class:`recsys.dsl.DynamicSparsity`).
    """

    users: torch.Tensor
    items: torch.Tensor
    users_ego: torch.Tensor
    items_ego: torch.Tensor
    weight: torch.Tensor


class MF(nn.Module):
    """Matrix factorisation: the score is the dot product of user and item embeddings.

    Users and items share one table of ``user_mapper.n_rows + item_mapper.n_rows`` rows (item
    rows after user rows); an ID's embedding is the sum of the rows its mapper gives. The table
    is dense, or sparse (:class:`~recsys.dsl.SparseTable`) when ``density < 1``. Its parameters
    and buffers are the table's (the module's bytes are the table's); the two mappers are
    plain attributes, charged apart (their ``memory_items``). ``model(users, items)`` returns
    a :class:`Representation`.

    Parameters
    ----------
    user_mapper, item_mapper
        ID mappers (see :mod:`recsys.mappers` and :mod:`recsys.graphhash`).
    n_users, n_items
        Vocabulary sizes for the full ranking.
    dim
        Embedding width.
    density
        Fraction of table entries stored; 1.0 is dense.
    seed
        Seed of the initialisation.

    Examples
    --------
    >>> import numpy as np
    >>> from continual import nbytes
    >>> from recsys.mappers import Full, ModuloHash
    >>> from recsys.models import MF
    >>> model = MF(Full(5), ModuloHash(3), n_users=5, n_items=7, dim=4)
    >>> users, items = model.final()
    >>> users.shape, items.shape, nbytes(model)  # (6 + 3) rows x 4 x 4 bytes
    (torch.Size([5, 4]), torch.Size([7, 4]), 144)
    >>> model(np.array([0, 1]), np.array([2, 6])).users.shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        user_mapper: IdMapper,
        item_mapper: IdMapper,
        n_users: int,
        n_items: int,
        dim: int = 64,
        density: float = 1.0,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        self.user_mapper = user_mapper
        self.item_mapper = item_mapper
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        n_rows = user_mapper.n_rows + item_mapper.n_rows
        if density >= 1.0:
            self.table: nn.Module = DenseTable(n_rows, dim, seed=0 if seed is None else seed)
        else:
            self.table = SparseTable(n_rows, dim, density, seed)

    def mappers(self) -> dict[str, Any]:
        """The two mappers, for the ledger."""
        return {"user_map": self.user_mapper, "item_map": self.item_mapper}

    def lookup(self, weight: torch.Tensor, ids: Any, side: str) -> torch.Tensor:
        """Layer-0 embeddings of ``ids`` (``side`` is ``"user"`` or ``"item"``)."""
        mapper = self.user_mapper if side == "user" else self.item_mapper
        rows = torch.from_numpy(mapper.rows(np.asarray(ids))).to(weight.device)
        if side == "item":
            rows = rows + self.user_mapper.n_rows
        return weight[rows].sum(1)

    def forward(self, users: np.ndarray, items: np.ndarray) -> Representation:
        """Final and layer-0 embeddings of ``users`` and ``items``, with the step's table."""
        weight = self.table.dense()
        user_ego, item_ego = self.lookup(weight, users, "user"), self.lookup(weight, items, "item")
        return Representation(user_ego, item_ego, user_ego, item_ego, weight)

    def final(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final embeddings of every user and item (no gradient)."""
        with torch.no_grad():
            weight = self.table.dense()
            return (
                self.lookup(weight, np.arange(self.n_users), "user"),
                self.lookup(weight, np.arange(self.n_items), "item"),
            )


class LightGCN(MF):
    """LightGCN: ``n_layers`` propagations over the symmetric-normalised user–item graph.

    No weights or nonlinearities; the final embedding is the mean of the layer outputs. Stores,
    besides what :class:`MF` stores, the normalised adjacency as a torch sparse CSR matrix
    (int32 indices, float32 values: :func:`adjacency_nbytes`), needed at inference. It is not a
    parameter or buffer: an estimator charges it apart, and replaces it (never modifies it in
    place) when the graph changes. ``graph=None`` leaves it unset until :meth:`set_graph`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.mappers import Full
    >>> from recsys.models import LightGCN
    >>> graph = sp.csr_matrix(np.eye(3, 4))
    >>> model = LightGCN(Full(3), Full(4), n_users=3, n_items=4, dim=2, graph=graph)
    >>> [tuple(t.shape) for t in model.final()]
    [(3, 2), (4, 2)]
    """

    def __init__(
        self,
        user_mapper: IdMapper,
        item_mapper: IdMapper,
        n_users: int,
        n_items: int,
        dim: int = 64,
        density: float = 1.0,
        seed: int | None = 0,
        *,
        graph: sp.spmatrix | None,
        n_layers: int = 3,
    ) -> None:
        super().__init__(user_mapper, item_mapper, n_users, n_items, dim, density, seed)
        self.n_layers = n_layers
        self.adjacency: torch.Tensor | None = None
        if graph is not None:
            self.set_graph(graph)

    def set_graph(self, graph: sp.spmatrix) -> None:
        """Use the user × item ``graph`` (resized to the vocabulary) for propagation."""
        graph = sp.csr_matrix(graph)
        graph.resize((self.n_users, self.n_items))
        device = next(self.table.parameters()).device
        self.adjacency = read_only(normalized_adjacency(graph).to(device))

    def propagate(self, weight: torch.Tensor) -> torch.Tensor:
        """Mean over layers 0..n_layers of the propagated user and item embeddings."""
        if self.adjacency is None:
            raise RuntimeError("LightGCN has no graph yet: call set_graph(graph) first")
        layer = torch.cat(
            [
                self.lookup(weight, np.arange(self.n_users), "user"),
                self.lookup(weight, np.arange(self.n_items), "item"),
            ]
        )
        total = layer
        # sparse products have no low-precision kernels on the CPU: run them in float32
        with torch.autocast(layer.device.type, enabled=False):
            layer = layer.float()
            for _ in range(self.n_layers):
                layer = _SymmetricProduct.apply(self.adjacency, layer)
                total = total + layer
        return total / (self.n_layers + 1)

    def forward(self, users: np.ndarray, items: np.ndarray) -> Representation:
        weight = self.table.dense()
        final = self.propagate(weight)
        users_t, items_t = (
            torch.from_numpy(np.asarray(ids)).to(final.device) for ids in (users, items)
        )
        return Representation(
            final[users_t],
            final[self.n_users + items_t],
            self.lookup(weight, users, "user"),
            self.lookup(weight, items, "item"),
            weight,
        )

    def final(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            final = self.propagate(self.table.dense())
        return final[: self.n_users], final[self.n_users :]


def adjacency_nbytes(n_users: int, n_items: int, n_edges: int) -> int:
    """Bytes of :func:`normalized_adjacency` for ``n_edges`` distinct user-item pairs.

    From sizes alone: row pointers for ``n_users + n_items + 1`` rows, and a column index
    plus a float32 value for each of the ``2 * n_edges`` stored entries; the indices are
    int32 (4 bytes), or int64 (8) for a graph too large for int32 (:func:`index_dtype`).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from continual import nbytes
    >>> from recsys.models import adjacency_nbytes, normalized_adjacency
    >>> graph = sp.csr_matrix(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    >>> adjacency_nbytes(2, 3, 3), nbytes(normalized_adjacency(graph))  # 4 x 6 + 8 x 6
    (72, 72)
    """
    n_rows, n_entries = int(n_users) + int(n_items), 2 * int(n_edges)
    index = torch.empty(0, dtype=index_dtype(n_rows, n_entries)).element_size()
    return index * (n_rows + 1) + (index + 4) * n_entries


def index_dtype(n_rows: int, n_entries: int) -> torch.dtype:
    """The index dtype of a CSR matrix: int32 when its sizes fit, else int64.

    Examples
    --------
    >>> from recsys.models import index_dtype
    >>> index_dtype(70_839, 1_620_256), index_dtype(10, 2**31)
    (torch.int32, torch.int64)
    """
    return torch.int32 if max(int(n_rows), int(n_entries)) < 2**31 else torch.int64


class _SymmetricProduct(torch.autograd.Function):
    """``adjacency @ x`` for a symmetric sparse ``adjacency``, whose gradient with respect to
    ``x`` is ``adjacency @ grad``: torch's own backward of a CSR product builds the transpose
    at every step, which costs more than the product itself."""

    @staticmethod
    def forward(ctx: Any, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.sparse.mm(ctx.adjacency, grad)


def normalized_adjacency(graph: sp.spmatrix) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``[[0, R], [R^T, 0]]``, as torch sparse CSR.

    The indices are :func:`index_dtype`'s (int32 unless the graph is too large for it): they
    take half the bytes of int64, and ``torch.sparse.mm`` is not slower with them.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.models import normalized_adjacency
    >>> adjacency = normalized_adjacency(sp.csr_matrix(np.array([[1.0, 1.0]])))
    >>> adjacency.to_dense()
    tensor([[0.0000, 0.7071, 0.7071],
            [0.7071, 0.0000, 0.0000],
            [0.7071, 0.0000, 0.0000]])
    >>> adjacency.crow_indices().dtype, adjacency.col_indices().dtype
    (torch.int32, torch.int32)
    """
    graph = sp.csr_matrix(graph, dtype=np.float32)
    graph.data[:] = 1.0
    adjacency = sp.bmat([[None, graph], [graph.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(adjacency.sum(1)).ravel()
    scale = np.zeros_like(degree)
    scale[degree > 0] = degree[degree > 0] ** -0.5
    adjacency = sp.diags(scale) @ adjacency @ sp.diags(scale)
    adjacency = sp.csr_matrix(adjacency, dtype=np.float32)
    adjacency.sort_indices()
    dtype = index_dtype(adjacency.shape[0], adjacency.nnz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # beta-state and invariant-check notices
        return torch.sparse_csr_tensor(
            torch.from_numpy(adjacency.indptr).to(dtype),
            torch.from_numpy(adjacency.indices).to(dtype),
            torch.from_numpy(adjacency.data),
            size=adjacency.shape,
        )
