"""Backbones: MF and LightGCN over one joint user + item embedding table.

References
----------
He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys.dsl import DenseTable, SparseTable
from recsys.mappers import IdMapper

__all__ = ["MF", "LightGCN", "normalized_adjacency"]


class MF(nn.Module):
    """Matrix factorisation: the score is the dot product of user and item embeddings.

    Users and items share one table of ``user_mapper.n_rows + item_mapper.n_rows`` rows (item
    rows after user rows); an ID's embedding is the sum of the rows its mapper gives. The table
    is dense, or sparse (:class:`~recsys.dsl.SparseTable`) when ``density < 1``. Stores the
    table (charged as a module) and the two mappers (their ``memory_items``).

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
    >>> import torch
    >>> from continual import nbytes
    >>> from recsys.mappers import Full, ModuloHash
    >>> from recsys.models import MF
    >>> model = MF(Full(5), ModuloHash(3), n_users=5, n_items=7, dim=4)
    >>> users, items = model.final()
    >>> users.shape, items.shape, nbytes(model.table)  # (6 + 3) rows x 4 x 4 bytes
    (torch.Size([5, 4]), torch.Size([7, 4]), 144)
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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if seed is None else seed)
            if density >= 1.0:
                self.table: nn.Module = DenseTable(n_rows, dim)
            else:
                self.table = SparseTable(n_rows, dim, density, seed)

    def mappers(self) -> dict[str, Any]:
        """The two mappers, for the ledger."""
        return {"user_map": self.user_mapper, "item_map": self.item_mapper}

    def lookup(self, weight: torch.Tensor, ids: Any, side: str) -> torch.Tensor:
        """Layer-0 embeddings of ``ids`` (``side`` is ``"user"`` or ``"item"``)."""
        mapper = self.user_mapper if side == "user" else self.item_mapper
        rows = torch.from_numpy(mapper.rows(np.asarray(ids)))
        if side == "item":
            rows = rows + self.user_mapper.n_rows
        return weight[rows].sum(1)

    def represent(
        self, users: np.ndarray, items: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final and layer-0 embeddings: (users, items, users_ego, items_ego)."""
        weight = self.table.dense()
        self._last_weight = weight
        user_ego, item_ego = self.lookup(weight, users, "user"), self.lookup(weight, items, "item")
        return user_ego, item_ego, user_ego, item_ego

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
    (int64 indices, float32 values; charged through :meth:`graph_items`), needed at inference.

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
        graph: sp.spmatrix,
        n_layers: int = 3,
    ) -> None:
        super().__init__(user_mapper, item_mapper, n_users, n_items, dim, density, seed)
        self.n_layers = n_layers
        self.set_graph(graph)

    def set_graph(self, graph: sp.spmatrix) -> None:
        """Use the user × item ``graph`` (resized to the vocabulary) for propagation."""
        graph = sp.csr_matrix(graph)
        graph.resize((self.n_users, self.n_items))
        self.adjacency = normalized_adjacency(graph)

    def graph_items(self) -> dict[str, Any]:
        """The stored adjacency, for the ledger."""
        return {"adjacency": self.adjacency}

    def propagate(self, weight: torch.Tensor) -> torch.Tensor:
        """Mean over layers 0..n_layers of the propagated user and item embeddings."""
        layer = torch.cat(
            [
                self.lookup(weight, np.arange(self.n_users), "user"),
                self.lookup(weight, np.arange(self.n_items), "item"),
            ]
        )
        total = layer
        for _ in range(self.n_layers):
            layer = torch.sparse.mm(self.adjacency, layer)
            total = total + layer
        return total / (self.n_layers + 1)

    def represent(
        self, users: np.ndarray, items: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        weight = self.table.dense()
        self._last_weight = weight
        final = self.propagate(weight)
        users_t, items_t = torch.from_numpy(np.asarray(users)), torch.from_numpy(np.asarray(items))
        return (
            final[users_t],
            final[self.n_users + items_t],
            self.lookup(weight, users, "user"),
            self.lookup(weight, items, "item"),
        )

    def final(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            final = self.propagate(self.table.dense())
        return final[: self.n_users], final[self.n_users :]


def normalized_adjacency(graph: sp.spmatrix) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``[[0, R], [R^T, 0]]``, as torch sparse CSR.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.models import normalized_adjacency
    >>> normalized_adjacency(sp.csr_matrix(np.array([[1.0, 1.0]]))).to_dense()
    tensor([[0.0000, 0.7071, 0.7071],
            [0.7071, 0.0000, 0.0000],
            [0.7071, 0.0000, 0.0000]])
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # beta-state and invariant-check notices
        return torch.sparse_csr_tensor(
            torch.from_numpy(adjacency.indptr.astype(np.int64)),
            torch.from_numpy(adjacency.indices.astype(np.int64)),
            torch.from_numpy(adjacency.data),
            size=adjacency.shape,
        )
