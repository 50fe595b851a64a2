"""The scikit-learn face: a budgeted recommender trained block by block."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from continual.accountant import MemoryAccountant
from continual.estimator import FittedStateMixin
from continual.measure import Live
from recsys.dsl import DenseTable, DynamicSparsity, SparseTable
from recsys.graphhash import DoubleGraphHash, GraphHash
from recsys.mappers import DoubleHash, FrequencyHash, Full, IdMapper, ModuloHash, remap_table
from recsys.metrics import as_csr, evaluate
from recsys.models import MF, LightGCN
from recsys.training import train_bpr

__all__ = ["Recommender"]

_EMBEDDINGS = ("full", "modulo", "double", "frequency", "graphhash", "doublegraphhash")


class Recommender(FittedStateMixin, BaseEstimator):
    """MF or LightGCN with a compressed (and optionally sparse) embedding table, under a budget.

    ``fit`` forgets everything and learns one block; ``partial_fit`` learns the next block of a
    stream. The mappers are built on the first block: hashing baselines get ``n_user_rows`` and
    ``n_item_rows`` rows (default: a quarter of the vocabulary), GraphHash clusters the first
    block's graph at ``resolution``. IDs never seen before go to the mappers' hashed fallback
    rows; with GraphHash, later blocks move them to the majority cluster of their neighbours.

    What is stored and charged to ``accountant_``: ``embedding_table`` (dense float32, or packed
    mask plus values at ``density < 1``), ``user_map`` and ``item_map`` (the mappers' arrays),
    ``optimizer`` (Adam's two moments, sized like the stored values) and, for LightGCN,
    ``graph`` (the normalised adjacency used at inference). Training interactions are not kept:
    pass them as ``exclude`` / ``train`` to mask seen items when ranking.

    Parameters
    ----------
    model
        ``"mf"`` or ``"lightgcn"``.
    embedding
        One of ``"full"``, ``"modulo"``, ``"double"``, ``"frequency"``, ``"graphhash"``,
        ``"doublegraphhash"``.
    density
        Fraction of table entries kept (DSL when below 1).
    budget
        Bytes (int or string) for the accountant, or None.
    dim, lr, epochs, batch_size, reg
        Training settings (Adam, BPR with L2 on the batch embeddings).
    time_budget
        CPU seconds per block, or None.
    n_user_rows, n_item_rows
        Rows of the hashing baselines.
    resolution
        Louvain resolution for GraphHash.
    update_every
        DSL's ΔT in steps; None gives about 40 prune-and-grow rounds over ``epochs``.
    random_state
        Seed.
    verbose
        0 silences progress bars.

    Attributes
    ----------
    model_ : MF or LightGCN
    accountant_ : MemoryAccountant
    n_users_, n_items_ : int
    reports_ : list of TrainReport
    n_duplicates_ : int
        Duplicate (user, item) pairs dropped from the blocks so far.

    Examples
    --------
    >>> from streams.communities import planted_communities
    >>> from recsys.recommender import Recommender
    >>> train, test = planted_communities(120, 150, seed=0).split_per_user(0.2, seed=0)
    >>> rec = Recommender(embedding="graphhash", dim=16, epochs=20, random_state=0).fit(train)
    >>> rec.recommend([0, 1], k=3, exclude=train).shape
    (2, 3)
    >>> rec.score(test, train=train) > 0.15
    True
    >>> sorted(rec.accountant_.ledger().accounts)
    ['embedding_table', 'item_map', 'optimizer', 'user_map']
    """

    def __init__(
        self,
        model: str = "mf",
        embedding: str = "full",
        density: float = 1.0,
        budget: int | str | None = None,
        *,
        dim: int = 64,
        lr: float = 0.01,
        epochs: int = 10,
        batch_size: int = 2048,
        reg: float = 1e-4,
        time_budget: float | None = None,
        n_user_rows: int | None = None,
        n_item_rows: int | None = None,
        resolution: float = 1.0,
        update_every: int | None = None,
        random_state: int | None = 0,
        verbose: int = 0,
    ) -> None:
        self.model = model
        self.embedding = embedding
        self.density = density
        self.budget = budget
        self.dim = dim
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.reg = reg
        self.time_budget = time_budget
        self.n_user_rows = n_user_rows
        self.n_item_rows = n_item_rows
        self.resolution = resolution
        self.update_every = update_every
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fitting
    def fit(self, interactions: Any) -> Recommender:
        """Forget everything and learn ``interactions`` as one block."""
        with self._restored_on_failure():
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
                delattr(self, name)
            self.partial_fit(interactions)
        return self

    def partial_fit(self, interactions: Any) -> Recommender:
        """Learn one block; a failure leaves the estimator as it was."""
        with self._restored_on_failure():
            data = self._validate(interactions)
            data, dropped = data.deduplicate()
            first = not hasattr(self, "model_")
            if first:
                self._initialize(data)
            else:
                self._grow_vocabulary(data)
            graph = _graph(data, self.n_users_, self.n_items_)
            if isinstance(self.model_, LightGCN):
                self.model_.set_graph(graph)
            report = train_bpr(
                self.model_,
                graph,
                self.optimizer_,
                epochs=self.epochs,
                batch_size=self.batch_size,
                reg=self.reg,
                time_budget=self.time_budget,
                dsl=self.dsl_,
                step_offset=self.steps_,
                seed=None if self.random_state is None else self.random_state + len(self.reports_),
                verbose=self.verbose,
            )
            self.steps_ += report.steps
            self.reports_.append(report)
            self.n_duplicates_ += dropped
            self.accountant_.snapshot(len(self.reports_))
            self.accountant_.check("Recommender.partial_fit")
        return self

    def recluster(self, window: Any, resolution: float | None = None) -> Recommender:
        """Re-cluster GraphHash on a window of recent interactions and remap the table rows.

        Each new cluster row starts as the mean embedding, under the old mapping, of the IDs it
        receives (:func:`recsys.mappers.remap_table`); Adam's state restarts. Only for
        ``embedding="graphhash"`` with a dense table. A failure leaves the estimator unchanged.
        """
        check_is_fitted(self)
        with self._restored_on_failure():
            if self.embedding != "graphhash" or self.dsl_ is not None:
                raise ValueError(
                    f"recluster needs embedding='graphhash' and density=1.0, got "
                    f"embedding={self.embedding!r}, density={self.density!r}"
                )
            data = self._validate(window)
            self._grow_vocabulary(data)
            graph = _graph(data, self.n_users_, self.n_items_)
            users, items = GraphHash.fit(
                graph, resolution or self.resolution, random_state=self.random_state
            )
            model = self.model_
            weight = model.table.dense().detach()
            n_old_users = model.user_mapper.n_rows
            new_users = remap_table(
                model.user_mapper,
                users,
                weight[:n_old_users],
                np.arange(self.n_users_),
                torch.randn(users.n_rows, self.dim) * 0.1,
            )
            new_items = remap_table(
                model.item_mapper,
                items,
                weight[n_old_users:],
                np.arange(self.n_items_),
                torch.randn(items.n_rows, self.dim) * 0.1,
            )
            model.user_mapper, model.item_mapper = users, items
            model.table = DenseTable(users.n_rows + items.n_rows, self.dim)
            with torch.no_grad():
                model.table.weight.copy_(torch.cat([new_users, new_items]))
            self.optimizer_ = torch.optim.Adam(model.table.parameters(), lr=self.lr)
            for name in ("embedding_table", "user_map", "item_map", "optimizer"):
                self.accountant_.untrack(name)
            self.accountant_.track("embedding_table", model.table)
            self.accountant_.track("user_map", users)
            self.accountant_.track("item_map", items)
            self.accountant_.track("optimizer", self.optimizer_)
            self.accountant_.check("Recommender.recluster")
        return self

    # --------------------------------------------------------------- inference
    def recommend(self, users: Any, k: int = 20, exclude: Any = None) -> np.ndarray:
        """Top ``k`` items per user (rows), skipping the items of ``exclude`` when given."""
        check_is_fitted(self)
        users = np.asarray(users, dtype=np.int64)
        user_emb, item_emb = self._final(int(users.max()) + 1 if users.size else 0)
        scores = user_emb[torch.from_numpy(users)] @ item_emb.T
        if exclude is not None:
            seen = _graph(exclude, max(self.n_users_, int(users.max()) + 1), self.n_items_)
            sub = seen[users]
            rows = np.repeat(np.arange(users.size), np.diff(sub.indptr))
            scores[
                torch.from_numpy(rows), torch.from_numpy(sub.indices.astype(np.int64))
            ] = -torch.inf
        return torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.numpy()

    def evaluate(self, test: Any, train: Any = None, k: int = 20) -> dict[str, Any]:
        """Recall@k and NDCG@k over users with test items (see :func:`recsys.metrics.evaluate`)."""
        check_is_fitted(self)
        test = self._validate(test)
        n_users = max(self.n_users_, test.n_users)
        user_emb, item_emb = self._final(n_users)
        n_items = item_emb.shape[0]
        empty = sp.csr_matrix((n_users, n_items), dtype=np.float32)
        seen = empty if train is None else _graph(train, n_users, n_items)
        return evaluate(user_emb, item_emb, seen, _graph(test, n_users, n_items), k=k)

    def score(self, interactions: Any, train: Any = None) -> float:
        """Recall@20 on ``interactions``, masking the items of ``train`` when given."""
        return float(self.evaluate(interactions, train)["recall"])

    # --------------------------------------------------------------- internals
    def _validate(self, interactions: Any) -> Any:
        if not all(hasattr(interactions, a) for a in ("csr", "deduplicate", "n_users")):
            raise TypeError(
                "interactions must be an interactions container (streams.Interactions), got "
                f"{type(interactions).__name__}"
            )
        if len(interactions) == 0:
            raise ValueError("interactions must hold at least one interaction, got 0")
        return interactions

    def _initialize(self, data: Any) -> None:
        if self.model not in ("mf", "lightgcn"):
            raise ValueError(f"model must be 'mf' or 'lightgcn', got {self.model!r}")
        if self.embedding not in _EMBEDDINGS:
            raise ValueError(f"embedding must be one of {_EMBEDDINGS}, got {self.embedding!r}")
        seed = 0 if self.random_state is None else int(self.random_state)
        self.n_users_, self.n_items_ = data.n_users, data.n_items
        graph = _graph(data, self.n_users_, self.n_items_)
        users, items = self._mappers(graph, seed)
        cls = LightGCN if self.model == "lightgcn" else MF
        extra = {"graph": graph} if self.model == "lightgcn" else {}
        args = (users, items, self.n_users_, self.n_items_, self.dim, self.density, seed)
        self.accountant_ = MemoryAccountant(self.budget)
        model = cls(*args, **extra)
        self.accountant_.track("embedding_table", model.table)
        self.accountant_.track("user_map", users)
        self.accountant_.track("item_map", items)
        if self.model == "lightgcn":
            self.accountant_.track("graph", Live(model.graph_items))
        self.accountant_.check("Recommender: the embedding table alone")
        self.model_ = model
        self.optimizer_ = torch.optim.Adam(model.table.parameters(), lr=self.lr)
        self.accountant_.track("optimizer", self.optimizer_)
        total = max(1, self.epochs * -(-len(data) // self.batch_size))
        self.dsl_ = (
            DynamicSparsity(
                model.table, self.optimizer_, total, self.update_every or max(1, total // 40)
            )
            if isinstance(model.table, SparseTable)
            else None
        )
        if self.dsl_ is not None:
            self.accountant_.track("dsl", self.dsl_)
        self.steps_ = 0
        self.reports_ = []
        self.n_duplicates_ = 0

    def _mappers(self, graph: sp.csr_matrix, seed: int) -> tuple[IdMapper, IdMapper]:
        n_users, n_items = graph.shape
        user_rows = self.n_user_rows or max(1, n_users // 4)
        item_rows = self.n_item_rows or max(1, n_items // 4)
        if self.embedding == "full":
            return Full(n_users), Full(n_items)
        if self.embedding == "modulo":
            return ModuloHash(user_rows), ModuloHash(item_rows)
        if self.embedding == "double":
            return DoubleHash(user_rows, seed), DoubleHash(item_rows, seed + 1)
        if self.embedding == "frequency":
            return (
                FrequencyHash.from_counts(user_rows, np.diff(graph.indptr)),
                FrequencyHash.from_counts(item_rows, np.bincount(graph.indices, minlength=n_items)),
            )
        users, items = GraphHash.fit(graph, self.resolution, random_state=seed)
        if self.embedding == "graphhash":
            return users, items
        return (
            DoubleGraphHash(users, max(1, users.n_clusters // 2), seed),
            DoubleGraphHash(items, max(1, items.n_clusters // 2), seed + 1),
        )

    def _grow_vocabulary(self, data: Any) -> None:
        """Widen the vocabulary to new IDs; GraphHash assigns them to neighbour clusters."""
        n_users, n_items = max(self.n_users_, data.n_users), max(self.n_items_, data.n_items)
        graph = _graph(data, n_users, n_items)
        users, items = self.model_.user_mapper, self.model_.item_mapper
        if isinstance(users, DoubleGraphHash):
            users, items = users.graph, items.graph
        if isinstance(users, GraphHash):
            new_users = np.arange(users.labels.size, n_users)
            new_items = np.arange(items.labels.size, n_items)
            users.assign_by_neighbours(new_users, graph[new_users], items)
            items.assign_by_neighbours(new_items, graph.T.tocsr()[new_items], users)
        self.n_users_, self.n_items_ = n_users, n_items
        self.model_.n_users, self.model_.n_items = n_users, n_items

    def _final(self, n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
        user_emb, item_emb = self.model_.final()
        if n_users > user_emb.shape[0]:  # users never seen: their fallback rows
            with torch.no_grad():
                extra = self.model_.lookup(
                    self.model_.table.dense(), np.arange(user_emb.shape[0], n_users), "user"
                )
            user_emb = torch.cat([user_emb, extra])
        return user_emb, item_emb


def _graph(data: Any, n_users: int, n_items: int) -> sp.csr_matrix:
    """Deduplicated binary user × item CSR of ``data``, resized to the vocabulary."""
    matrix = as_csr(data)
    matrix.resize((max(n_users, matrix.shape[0]), max(n_items, matrix.shape[1])))
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix
