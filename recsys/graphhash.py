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

from continual.state import read_only
from continual.validation import check_ids
from recsys.mappers import PRIME, IdMapper, as_ids, positive_int, rebuildable_seed
from streams.interactions import ID_LIMIT

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

    Stores the cluster of every ID up to the largest one it knows as int32 (4 bytes per ID,
    ``-1`` while unassigned) and its two sizes (16 bytes). :meth:`fit` clusters only the IDs
    that have interactions: an ID without any (an isolated node) gets no private cluster.
    Streaming policy for IDs it has not clustered: they first go to ``n_fallback`` hashed rows
    placed after the cluster rows (no crash); once they have interactions,
    :meth:`assign_by_neighbours` moves each to the majority cluster of its neighbours. The
    label array is never modified in place: a change replaces it. :meth:`for_budget` searches
    the resolution for a byte budget.

    Parameters
    ----------
    labels
        Cluster of each ID (a 1-D sequence of ints), ``-1`` for unassigned.
    n_fallback
        Hashed rows for unassigned IDs.

    Raises
    ------
    ValueError
        Naming the label below -1 or fractional and its position, or ``n_fallback`` < 1.

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
        positive_int("n_fallback", n_fallback, "GraphHash")
        self.labels = read_only(_labels(labels))
        self.n_fallback = int(n_fallback)
        self.n_clusters = int(self.labels.max()) + 1 if self.labels.size else 0
        self.params = read_only(np.array([self.n_clusters, self.n_fallback], dtype=np.int64))
        self.n_rows = self.n_clusters + self.n_fallback

    @classmethod
    def fit(
        cls,
        graph: sp.spmatrix,
        resolution: float = 1.0,
        *,
        n_fallback: int = 1,
        random_state: int | None = 0,
    ) -> tuple[GraphHash, GraphHash]:
        """Cluster the user × item graph; return the user and the item mapper.

        Only the users and items with at least one interaction are clustered (see
        :meth:`fit_pairs`).
        """
        graph = sp.csr_matrix(graph)
        users = np.repeat(np.arange(graph.shape[0], dtype=np.int64), np.diff(graph.indptr))
        return cls.fit_pairs(
            users, graph.indices, resolution, n_fallback=n_fallback, random_state=random_state
        )

    @classmethod
    def fit_pairs(
        cls,
        users: Any,
        items: Any,
        resolution: float = 1.0,
        *,
        n_fallback: int = 1,
        random_state: int | None = 0,
    ) -> tuple[GraphHash, GraphHash]:
        """Cluster the bipartite graph of the ``(users[k], items[k])`` pairs.

        Louvain runs on the users and items that occur (relabelled compactly, in ID order), so
        nothing is allocated per ID of a vocabulary beyond the label arrays, which end at the
        largest ID that occurs: IDs that do not occur are unassigned (``-1``).

        Examples
        --------
        >>> from recsys.graphhash import GraphHash
        >>> users, items = GraphHash.fit_pairs([0, 0, 5, 5], [1, 2, 7, 9])
        >>> users.labels.tolist(), items.labels.tolist()
        ([0, -1, -1, -1, -1, 1], [-1, 0, 0, -1, -1, -1, -1, 1, -1, 1])
        """
        user_ids, user_index = np.unique(as_ids(users), return_inverse=True)
        item_ids, item_index = np.unique(as_ids(items), return_inverse=True)
        user_labels = np.full(user_ids[-1] + 1 if user_ids.size else 0, -1, dtype=np.int32)
        item_labels = np.full(item_ids[-1] + 1 if item_ids.size else 0, -1, dtype=np.int32)
        if user_ids.size:
            graph = sp.csr_matrix(
                (np.ones(user_index.size), (user_index, item_index)),
                shape=(user_ids.size, item_ids.size),
            )
            graph.sum_duplicates()
            graph.data[:] = 1.0
            user_labels[user_ids], item_labels[item_ids] = cluster_bipartite(
                graph, resolution, random_state
            )
        return cls(user_labels, n_fallback), cls(item_labels, n_fallback)

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
        ids = as_ids(ids)
        known = ids < self.labels.size
        label = np.full(ids.size, -1, dtype=np.int64)
        label[known] = self.labels[ids[known]]
        fallback = self.n_clusters + ids % self.n_fallback
        return np.where(label >= 0, label, fallback)[:, None]

    def assign_by_neighbours(self, ids: Any, neighbours: Any, other: GraphHash) -> int:
        """Move unassigned IDs to the majority cluster of their neighbours; return how many.

        ``ids[k]`` interacted with ``neighbours[k]``, an ID of the other side (``other``). Each
        distinct ID of ``ids`` that has no cluster yet joins the cluster most of its labelled
        neighbours belong to (ties go to the smaller cluster); IDs without a labelled neighbour
        stay unassigned, and IDs that have a cluster keep it. Works on the pairs (nothing is
        allocated per ID of the other side). The label array is replaced by one that covers
        every ID of ``ids`` (:meth:`grown_nbytes` gives its size beforehand).

        Examples
        --------
        >>> from recsys.graphhash import GraphHash
        >>> users, items = GraphHash([0, 1]), GraphHash([0, 0, 1])
        >>> users.assign_by_neighbours([3, 3, 3, 4], [0, 2, 1, 9], items)
        1
        >>> users.labels.tolist()
        [0, 1, -1, 0, -1]
        """
        ids, neighbours = as_ids(ids), as_ids(neighbours)
        if neighbours.size != ids.size:
            raise ValueError(
                f"neighbours must hold one ID per entry of ids ({ids.size}), got {neighbours.size}"
            )
        size = max(self.labels.size, int(ids.max()) + 1 if ids.size else 0)
        labels = np.full(size, -1, dtype=np.int32)
        labels[: self.labels.size] = self.labels
        vote = np.full(neighbours.size, -1, dtype=np.int64)
        known = neighbours < other.labels.size
        vote[known] = other.labels[neighbours[known]]
        open_ = (labels[ids] < 0) & (vote >= 0) & (vote < self.n_clusters)
        moved = 0
        if open_.any():
            pairs, counts = np.unique(ids[open_] * (self.n_clusters + 1) + vote[open_],
                                      return_counts=True)  # fmt: skip
            who, cluster = np.divmod(pairs, self.n_clusters + 1)
            order = np.lexsort((cluster, -counts, who))  # per ID: most votes, smaller cluster
            first = order[np.r_[True, who[order][1:] != who[order][:-1]]]
            labels[who[first]] = cluster[first]
            moved = int(first.size)
        self.labels = read_only(labels)
        return moved

    def grown_nbytes(self, max_id: int) -> int:
        """Bytes once the labels cover every ID up to ``max_id`` (4 per ID, plus 16)."""
        return 4 * max(self.labels.size, int(max_id) + 1) + self.params.nbytes

    def memory_items(self) -> dict[str, Any]:
        return {"labels": self.labels, "params": self.params}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "graphhash", "labels": self.labels, "n_fallback": self.n_fallback}


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
        positive_int("n_hash_rows", n_hash_rows, "DoubleGraphHash")
        self.graph = graph
        self.n_hash_rows = int(n_hash_rows)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.params = read_only(
            np.array([n_hash_rows, rng.integers(1, PRIME), rng.integers(0, PRIME)], dtype=np.int64)
        )
        self.n_rows = graph.n_rows + self.n_hash_rows

    def rows(self, ids: Any) -> np.ndarray:
        ids = as_ids(ids)
        hashed = ((ids % PRIME * self.params[1] + self.params[2]) % PRIME) % self.n_hash_rows
        return np.stack([self.graph.rows(ids)[:, 0], self.graph.n_rows + hashed], axis=1)

    def memory_items(self) -> dict[str, Any]:
        return {"graph": self.graph, "params": self.params}

    def grown_nbytes(self, max_id: int) -> int:
        """The cluster map's bytes once it covers ``max_id``, plus the 24 hash bytes."""
        return self.graph.grown_nbytes(max_id) + self.params.nbytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "doublegraphhash",
            "graph": self.graph.to_dict(),
            "n_hash_rows": self.n_hash_rows,
            "seed": rebuildable_seed(self),
        }


def _labels(labels: Any) -> np.ndarray:
    """Cluster labels as int32: whole numbers in ``[-1, 2**31 - 1)``, -1 for unassigned."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be 1-D, got an array of shape {array.shape}")
    if array.dtype.kind in "iuf":  # -1 is allowed: check the others as IDs
        array = np.where(array == -1, 0, array)
    check_ids(array, "labels", upper=ID_LIMIT - 1, what="cluster labels (or -1)")
    return np.asarray(labels).astype(np.int32, copy=False)  # an int32 array is shared
