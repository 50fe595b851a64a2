"""GraphHash: users (items) in one community of the bipartite graph share an embedding row.

References
----------
Wu et al., "GraphHash: Graph Clustering Enables Parameter Efficiency in Recommender Systems",
WWW 2025. The clustering is scikit-network's Louvain with Barber's bipartite modularity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
from sknetwork.clustering import Louvain

from recsys.mappers import _PRIME, IdMapper, _ids, _positive

__all__ = ["DoubleGraphHash", "GraphHash", "cluster_bipartite"]


def cluster_bipartite(
    graph: sp.csr_matrix, resolution: float, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Louvain on the bipartite user × item graph; compact user and item labels (int32).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.graphhash import cluster_bipartite
    >>> graph = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))
    >>> users, items = cluster_bipartite(graph, resolution=1.0)
    >>> users.tolist(), items.tolist()
    ([0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1])
    """
    if not resolution > 0:
        raise ValueError(f"resolution must be positive, got {resolution!r}")
    louvain = Louvain(resolution=float(resolution), random_state=random_state)
    louvain.fit(sp.csr_matrix(graph, dtype=np.float64), force_bipartite=True)
    users = np.unique(louvain.labels_row_, return_inverse=True)[1].astype(np.int32)
    items = np.unique(louvain.labels_col_, return_inverse=True)[1].astype(np.int32)
    return users, items


class GraphHash(IdMapper):
    """Rows are communities: every ID of a cluster shares one row.

    Stores the cluster of every known ID as int32 (4 bytes per ID, ``-1`` while unassigned) and
    its two sizes (16 bytes). Streaming policy for IDs it has not clustered: they first go to
    ``n_fallback`` hashed rows placed after the cluster rows (no crash); once they have
    interactions, :meth:`assign_by_neighbours` moves each to the majority cluster of its
    neighbours. :meth:`fit` clusters both sides at once; :meth:`for_budget` searches the
    resolution for a byte budget.

    Parameters
    ----------
    labels
        Cluster of each ID, ``-1`` for unassigned.
    n_fallback
        Hashed rows for unassigned IDs.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from continual import nbytes
    >>> from recsys.graphhash import GraphHash
    >>> graph = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 2))))
    >>> users, items = GraphHash.fit(graph, resolution=1.0)
    >>> users.n_clusters, users.n_rows, users.rows([0, 4, 9]).ravel().tolist(), nbytes(users)
    (2, 3, [0, 1, 2], 40)
    """

    def __init__(self, labels: Any, n_fallback: int = 1) -> None:
        _positive("n_fallback", n_fallback)
        self.labels = np.asarray(labels, dtype=np.int32)
        self.n_fallback = int(n_fallback)
        self.n_clusters = int(self.labels.max()) + 1 if self.labels.size else 0
        self.params = np.array([self.n_clusters, self.n_fallback], dtype=np.int64)
        self.n_rows = self.n_clusters + self.n_fallback

    @classmethod
    def fit(
        cls,
        graph: sp.csr_matrix,
        resolution: float = 1.0,
        *,
        n_fallback: int = 1,
        random_state: int | None = 0,
    ) -> tuple[GraphHash, GraphHash]:
        """Cluster the user × item graph; return the user and the item mapper."""
        users, items = cluster_bipartite(graph, resolution, random_state)
        return cls(users, n_fallback), cls(items, n_fallback)

    @classmethod
    def for_budget(
        cls,
        budget: int,
        graph: sp.csr_matrix,
        dim: int,
        *,
        bytes_per_value: int = 4,
        n_fallback: int = 1,
        random_state: int | None = 0,
        low: float = 1e-3,
        high: float = 1e4,
        steps: int = 14,
    ) -> tuple[GraphHash, GraphHash, float]:
        """The largest resolution (searched geometrically) whose tables and maps fit ``budget``.

        The cost is ``(user rows + item rows) * dim * bytes_per_value`` plus both maps. Returns
        the two mappers and the resolution. Raises ValueError when even ``low`` does not fit.
        """

        def cost(pair: tuple[GraphHash, GraphHash]) -> int:
            rows = pair[0].n_rows + pair[1].n_rows
            maps = sum(m.labels.nbytes + m.params.nbytes for m in pair)
            return rows * dim * bytes_per_value + maps

        best = cls.fit(graph, low, n_fallback=n_fallback, random_state=random_state)
        if cost(best) > budget:
            raise ValueError(
                f"budget={budget:,} bytes is too small for even the smallest GraphHash tables "
                f"({cost(best):,} bytes at resolution {low})"
            )
        best_resolution = low
        lo, hi = math.log(low), math.log(high)
        for _ in range(steps):
            middle = (lo + hi) / 2
            pair = cls.fit(
                graph, math.exp(middle), n_fallback=n_fallback, random_state=random_state
            )
            if cost(pair) <= budget:
                best, best_resolution, lo = pair, math.exp(middle), middle
            else:
                hi = middle
        return best[0], best[1], best_resolution

    def rows(self, ids: Any) -> np.ndarray:
        ids = _ids(ids)
        known = ids < self.labels.size
        label = np.full(ids.size, -1, dtype=np.int64)
        label[known] = self.labels[ids[known]]
        fallback = self.n_clusters + ids % self.n_fallback
        return np.where(label >= 0, label, fallback)[:, None]

    def assign_by_neighbours(self, ids: Any, neighbours: sp.spmatrix, other: GraphHash) -> int:
        """Move each of ``ids`` to the majority cluster of its neighbours; return how many moved.

        ``neighbours`` has one row per ID of ``ids`` and one column per ID of the other side
        (``other``); IDs whose neighbours are all unassigned stay in the fallback rows. The
        label array grows to cover new IDs (and is charged for it).
        """
        ids = _ids(ids)
        neighbours = sp.csr_matrix(neighbours)
        if neighbours.shape[0] != ids.size:
            raise ValueError(
                f"neighbours must have one row per id ({ids.size}), got {neighbours.shape[0]}"
            )
        n_other = min(neighbours.shape[1], other.labels.size)
        labelled = np.flatnonzero(other.labels[:n_other] >= 0)
        onehot = sp.csr_matrix(
            (np.ones(labelled.size), (labelled, other.labels[labelled])),
            shape=(neighbours.shape[1], max(other.n_clusters, 1)),
        )
        votes = (neighbours @ onehot).toarray()
        has_vote = votes.sum(1) > 0
        if ids.size and ids.max() >= self.labels.size:
            grown = np.full(int(ids.max()) + 1, -1, dtype=np.int32)
            grown[: self.labels.size] = self.labels
            self.labels = grown
        winners = votes.argmax(1)
        valid = has_vote & (winners < self.n_clusters)
        self.labels[ids[valid]] = winners[valid]
        return int(valid.sum())

    def memory_items(self) -> dict[str, Any]:
        return {"labels": self.labels, "params": self.params}


class DoubleGraphHash(IdMapper):
    """The sum of the cluster row and a universally hashed row from ``n_hash_rows`` more rows.

    Stores the cluster map of ``graph`` and three int64 hash parameters (24 bytes).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from continual import nbytes
    >>> from recsys.graphhash import DoubleGraphHash, GraphHash
    >>> users, _ = GraphHash.fit(sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 2)))))
    >>> mapper = DoubleGraphHash(users, n_hash_rows=4, seed=0)
    >>> mapper.n_rows, mapper.rows([0]).shape, nbytes(mapper)
    (7, (1, 2), 64)
    """

    n_columns = 2

    def __init__(self, graph: GraphHash, n_hash_rows: int, seed: int | None = 0) -> None:
        _positive("n_hash_rows", n_hash_rows)
        self.graph = graph
        self.n_hash_rows = int(n_hash_rows)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.params = np.array(
            [n_hash_rows, rng.integers(1, _PRIME), rng.integers(0, _PRIME)], dtype=np.int64
        )
        self.n_rows = graph.n_rows + self.n_hash_rows

    def rows(self, ids: Any) -> np.ndarray:
        ids = _ids(ids)
        hashed = ((ids % _PRIME * self.params[1] + self.params[2]) % _PRIME) % self.n_hash_rows
        return np.stack([self.graph.rows(ids)[:, 0], self.graph.n_rows + hashed], axis=1)

    def memory_items(self) -> dict[str, Any]:
        return {"graph": self.graph, "params": self.params}
