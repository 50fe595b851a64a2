"""The scikit-learn face: a budgeted recommender trained block by block."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_is_fitted

from continual.accountant import MemoryAccountant
from continual.devices import device_name
from continual.estimator import BudgetedEstimator
from continual.learner import optimizer_state_nbytes
from continual.measure import Live, nbytes
from continual.precision import PRECISIONS, Precision
from continual.state import read_only
from continual.validation import (
    COUNT,
    NON_NEGATIVE_FLOAT,
    POSITIVE_FLOAT,
    Interval,
    StrOptions,
    check_ids,
    check_params,
)
from recsys.dsl import DenseTable, DynamicSparsity, SparseTable, table_nbytes
from recsys.graphhash import DoubleGraphHash, GraphHash
from recsys.mapper_specs import mapper_from_dict
from recsys.mappers import DoubleHash, FrequencyHash, Full, IdMapper, ModuloHash, remap_table
from recsys.metrics import as_csr, evaluate
from recsys.models import MF, LightGCN, adjacency_nbytes
from recsys.training import PositivePairs, make_learner
from streams.interaction_streams import RankingTest
from streams.interactions import ID_LIMIT, Interactions

__all__ = ["Recommender"]

_MODELS = ("mf", "lightgcn")
_EMBEDDINGS = ("full", "modulo", "double", "frequency", "graphhash", "doublegraphhash")
_CLUSTERED = ("graphhash", "doublegraphhash")
_RANK_BATCH = 1024  # users scored at once by recommend and scores


class Recommender(BudgetedEstimator):
    """MF or LightGCN with a compressed (and optionally sparse) embedding table, under a budget.

    ``fit`` forgets everything and learns one block of interactions; ``partial_fit`` learns
    the next block of a stream, transactionally (a failure leaves the estimator as it was).
    The mappers are built on the first block: hashing baselines get ``n_user_rows`` and
    ``n_item_rows`` rows (default: a quarter of the vocabulary), GraphHash clusters the users
    and items of the first block at ``resolution``. Training is BPR on
    :class:`continual.Learner` (:func:`recsys.training.make_learner`): Adam, one uniform
    negative per positive, ``reg`` times the L2 norm of the batch embeddings; DSL (``density
    < 1``) and the CPU ``time_budget`` are its plugins. The table is initialised on the CPU
    (a seed gives the same weights on every device), then the table, Adam's state and
    LightGCN's graph live on ``device``; the ID mappers and the negative sampling are numpy,
    on the CPU, and the scores of :meth:`recommend` and :meth:`scores` are computed on
    ``device``.

    New IDs: with the Full and the hashing mappers, IDs never seen go to hashed fallback rows,
    so the stored state does not grow with new IDs (only the vocabulary sizes, two numbers,
    do). GraphHash keeps an int32 cluster label per ID up to the largest it has seen: later
    blocks move new IDs to the majority cluster of their neighbours, and the label array grows.
    LightGCN stores the normalised graph of the last block, sized by the vocabulary.

    What is stored and charged to ``accountant_``: ``model`` (the embedding table: dense
    float32, or packed mask plus values at ``density < 1``), ``optimizer`` (Adam's two moments,
    sized like the stored values, and a step counter), ``user_map`` and ``item_map`` (the
    mappers' arrays), ``graph`` (LightGCN: the normalised adjacency used at inference) and
    ``dsl/grad_accumulator`` (DSL: a dense gradient, only during the steps before an update).
    Before anything grows, the bytes the call will hold are computed from shapes (the mapper
    growth, the table, the graph, the optimizer) and a call that cannot fit the budget raises
    :class:`~continual.accountant.BudgetExceededError` before allocating them. Training
    interactions are not kept: pass them as ``exclude`` / ``train`` to mask seen items when
    ranking (a stream's :class:`~streams.interaction_streams.RankingTest` carries them).
    Ranking is not stored, but it needs the final float32 embedding of every user and item
    known: a call that brings a vocabulary whose ranking alone needs more than the budget (an
    item ID near ``2**31``) raises :class:`~continual.accountant.BudgetExceededError` too,
    before anything grows, and so do :meth:`recommend` and :meth:`scores`.

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
        DSL's ΔT in steps; None gives about 40 prune-and-grow rounds over the ``epochs`` of a
        block the size of the first.
    random_state
        None (a fresh seed, kept as ``seed_``) or an int: the seed of the initialisation, the
        hashes, the clustering, the batch order and the negatives.
    verbose
        0 silences progress bars.
    device, rollback
        As in :class:`~continual.estimator.BudgetedEstimator`.
    precision
        ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"``: mixed precision through
        ``torch.autocast`` (see :class:`~continual.precision.Precision`).

    Every parameter is checked at each ``fit`` / ``partial_fit`` (numpy scalars are accepted
    wherever Python numbers are): ``density`` in ``(0, 1]``; ``dim``, ``epochs``,
    ``batch_size`` and, when given, ``n_user_rows``, ``n_item_rows`` and ``update_every``
    ints >= 1; ``lr``, ``resolution`` and, when given, ``time_budget`` finite floats > 0;
    ``reg`` a finite float >= 0. A violation raises ``InvalidParameterError`` (a
    ``ValueError``) naming the parameter, the value and what was expected.

    Attributes
    ----------
    model_ : MF or LightGCN
        The backbone, with its mappers and table.
    learner_ : Learner
        The training loop (its plugins: DSL when ``density < 1``, the CPU time budget).
    n_users_, n_items_ : int
        Vocabulary sizes seen so far.
    user_map_, item_map_ : dict
        The mappers as plain data (:meth:`recsys.mappers.IdMapper.to_dict`).
    last_fit_ : dict
        What the last call did: ``epochs`` (fractional when the time budget stopped it),
        ``steps`` and ``loss`` (the mean loss of its last epoch).
    totals_ : dict
        ``epochs`` and ``steps`` since the last ``fit``.
    n_duplicates_ : int
        Duplicate (user, item) pairs dropped from the blocks so far.
    dsl_ : DynamicSparsity or None
        The DSL plugin.
    accountant_, seed_, n_partial_fits_, losses_
        As in :class:`~continual.estimator.BudgetedEstimator` (``n_partial_fits_`` counts the
        blocks learned, ``losses_`` the mean loss of each epoch of the last block).

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
    >>> sorted(rec.scores(test, train=train, k=10))
    ['ndcg', 'recall']
    >>> sorted(rec.accountant_.ledger().accounts)
    ['item_map', 'model', 'optimizer', 'user_map']
    >>> rec.n_partial_fits_, rec.last_fit_["epochs"], rec.last_fit_["steps"]
    (1, 20.0, 20)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "model": [StrOptions(set(_MODELS))],
        "embedding": [StrOptions(set(_EMBEDDINGS))],
        "density": [Interval(Real, 0.0, 1.0, closed="right")],
        "dim": [COUNT],
        "lr": [POSITIVE_FLOAT],
        "epochs": [COUNT],
        "batch_size": [COUNT],
        "reg": [NON_NEGATIVE_FLOAT],
        "time_budget": [POSITIVE_FLOAT, None],
        "n_user_rows": [COUNT, None],
        "n_item_rows": [COUNT, None],
        "resolution": [POSITIVE_FLOAT],
        "update_every": [COUNT, None],
        "precision": [StrOptions(set(PRECISIONS))],
    }

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
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        precision: str = "32",
        rollback: str = "memory",
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
        self.device = device
        self.precision = precision
        self.rollback = rollback

    # ----------------------------------------------------------------- fitting
    def fit(self, X: Interactions, y: None = None) -> Recommender:
        """Forget everything and learn the interactions ``X`` as one block."""
        return super().fit(X, y)

    def partial_fit(self, X: Interactions, y: None = None) -> Recommender:
        """Learn one block of interactions ``X``; a failure leaves the estimator as it was."""
        return super().partial_fit(X, y)

    def recluster(self, window: Interactions, resolution: float | None = None) -> Recommender:
        """Re-cluster GraphHash on a window of recent interactions and remap the table rows.

        Only the users and items of ``window`` are clustered; the others are unassigned
        (fallback rows) until a later block assigns them to their neighbours' cluster. Each
        new cluster row starts as the mean embedding, under the old mapping, of the IDs it
        receives (:func:`recsys.mappers.remap_table`); Adam's state restarts. With LightGCN
        the window becomes the propagation graph. Only for ``embedding="graphhash"`` with a
        dense table; ``resolution`` (default: the estimator's) must be a finite float > 0.
        The new maps, table and optimizer state are checked against the budget before the
        table is allocated, and a failure leaves the estimator as it was (the transaction of
        :meth:`partial_fit`).
        """
        check_is_fitted(self, "learner_")
        self._check_shared_params()
        if self.embedding != "graphhash" or self.density < 1.0:
            raise ValueError(
                f"recluster needs embedding='graphhash' and density=1.0, got "
                f"embedding={self.embedding!r}, density={self.density!r}"
            )
        resolution = self.resolution if resolution is None else resolution
        check_params(
            {"resolution": [POSITIVE_FLOAT]}, {"resolution": resolution}, "Recommender.recluster"
        )
        data = self._validate_input(window, first=False)
        self._check_plan(data, "before re-clustering")  # the maps' growth, before clustering
        with self._transaction(first=False):
            self._recluster(data[0], float(resolution))
        return self

    # --------------------------------------------------------------- inference
    def recommend(self, users: Any, k: int = 20, exclude: Interactions | None = None) -> np.ndarray:
        """Top ``k`` items per user (rows), skipping the items of ``exclude`` when given.

        Parameters
        ----------
        users
            A 1-D sequence of user IDs, whole numbers in ``[0, 2**31)``; users never seen get
            their fallback rows.
        k
            Items per user, an int >= 1 (at most every item is returned).
        exclude
            Interactions whose items are skipped for their users.

        Returns
        -------
        ndarray of shape (len(users), min(k, n_items_))
            Item IDs, best first.

        Raises
        ------
        ValueError
            Naming ``users`` and the first bad ID (negative, fractional, NaN, too large) and
            its position, or ``k`` and its value.
        TypeError
            When ``users`` are not numbers or ``exclude`` is not interactions.
        BudgetExceededError
            When the working memory of ranking (the float32 embeddings and a user's scores)
            alone exceeds the budget, before it is allocated.
        """
        check_is_fitted(self, "learner_")
        users = check_ids(users, "users", upper=ID_LIMIT, what="user IDs")
        if users.ndim != 1:
            raise ValueError(f"users must be a 1-D sequence of user IDs, got shape {users.shape}")
        check_params({"k": [COUNT]}, {"k": k}, "Recommender.recommend")
        if exclude is not None:
            exclude = _interactions(exclude, "exclude")
        self._check_ranking(self.n_users_, self.n_items_, "recommend")
        user_emb, item_emb = self.model_.final()
        device = item_emb.device
        k = min(int(k), item_emb.shape[0])
        seen = None if exclude is None else _excluded(exclude, users, item_emb.shape[0])
        top = []
        for start in range(0, users.size, _RANK_BATCH):
            batch = users[start : start + _RANK_BATCH]
            scores = self._user_rows(user_emb, batch) @ item_emb.T
            if seen is not None:
                rows, columns = seen
                inside = (rows >= start) & (rows < start + batch.size)
                scores[
                    torch.from_numpy(rows[inside] - start).to(device),
                    torch.from_numpy(columns[inside]).to(device),
                ] = -torch.inf
            top.append(torch.topk(scores, k, dim=1).indices.cpu().numpy())
        return np.concatenate(top) if top else np.zeros((0, k), dtype=np.int64)

    def _user_rows(self, user_emb: torch.Tensor, users: np.ndarray) -> torch.Tensor:
        """Final embeddings of ``users``; users never seen get their fallback rows."""
        known = users < user_emb.shape[0]
        rows = user_emb[torch.from_numpy(np.where(known, users, 0)).to(user_emb.device)]
        if not known.all():
            with torch.no_grad():
                unseen = self.model_.lookup(self.model_.table.dense(), users[~known], "user")
            rows[torch.from_numpy(np.flatnonzero(~known)).to(rows.device)] = unseen.to(rows)
        return rows

    def scores(
        self, X: Interactions, y: None = None, *, train: Interactions | None = None, k: int = 20
    ) -> dict[str, float]:
        """Recall@k and NDCG@k of ranking every item for the users of ``X``.

        The items of ``train`` are masked when given (see :func:`recsys.metrics.evaluate`);
        the averages are over the users with at least one item in ``X``.

        Raises
        ------
        TypeError
            When ``X`` or ``train`` is not interactions.
        ValueError
            Naming ``k`` when it is not an int >= 1, or ``y`` when it is given.
        BudgetExceededError
            When the working memory of ranking alone exceeds the budget, before it is
            allocated.
        """
        check_is_fitted(self, "learner_")
        test = _interactions(X, "X")
        _no_targets(y)
        if train is not None:
            train = _interactions(train, "train")
        check_params({"k": [COUNT]}, {"k": k}, "Recommender.scores")
        n_users = max(self.n_users_, test.n_users)
        self._check_ranking(n_users, self.n_items_, "scores")
        user_emb, item_emb = self._final(n_users)
        n_items = item_emb.shape[0]
        seen = (
            sp.csr_matrix((n_users, n_items), dtype=np.float32)
            if train is None
            else _matrix(train, n_users, n_items)
        )
        result = evaluate(user_emb, item_emb, seen, _matrix(test, n_users, n_items), k=k)
        return {"recall": float(result["recall"]), "ndcg": float(result["ndcg"])}

    def score(self, X: Interactions, y: None = None, *, train: Interactions | None = None) -> float:
        """Recall@20 on the interactions ``X``, masking the items of ``train`` when given.

        Recall@20, not Recall@k for another k: :meth:`scores` gives every metric at any k.
        """
        return self.scores(X, y, train=train, k=20)["recall"]

    def _score_payload(self, payload: Any) -> float:
        targets, exclude = _ranking_test(payload)
        return self.score(targets, train=exclude)

    def _scores_payload(self, payload: Any) -> dict[str, float]:
        targets, exclude = _ranking_test(payload)
        return self.scores(targets, train=exclude)

    # ------------------------------------------------------- BudgetedEstimator
    def _validate_input(
        self, X: Any, y: Any = None, *, first: bool, **params: Any
    ) -> tuple[Interactions, int]:
        if params:
            raise TypeError(f"unexpected keyword arguments {sorted(params)}")
        _no_targets(y)
        data = _interactions(X, "X")
        if len(data) == 0:
            raise ValueError("X must hold at least one interaction, got 0")
        return data.deduplicate()

    def _check_plan(self, data: tuple[Interactions, int], moment: str) -> None:
        """The stored bytes (the base's plan), then the working memory of ranking the
        vocabulary the call brings: a vocabulary that could not be ranked under the budget
        is refused here, not at a later :meth:`recommend`."""
        super()._check_plan(data, moment)
        interactions, _ = data
        n_users = max(getattr(self, "n_users_", 0), interactions.n_users)
        n_items = max(getattr(self, "n_items_", 0), interactions.n_items)
        self._check_ranking(n_users, n_items, moment)

    def _check_ranking(self, n_users: int, n_items: int, moment: str) -> None:
        """Raise BudgetExceededError when ranking alone would pass the budget.

        Ranking is not stored (the budget charges stored bytes), but it allocates the final
        float32 embedding of every user and item (LightGCN: three such arrays while it
        propagates) and at least one user's scores over every item; a vocabulary whose
        ranking needs more than the whole budget is refused before anything is allocated.
        """
        if self.budget is None:
            return
        copies = 3 if self.model == "lightgcn" else 1
        needs = 4 * (copies * int(self.dim) * (n_users + n_items) + n_items)
        context = (
            f"Recommender {moment}: ranking {n_users:,} users and {n_items:,} items needs "
            f"{needs:,} bytes of working memory, the budget is {self.budget!r}"
        )
        MemoryAccountant(self.budget).check_plan(
            {"ranking": needs}, context, device=device_name(self.device_)
        )

    def _initialize(self, data: tuple[Interactions, int]) -> None:
        interactions, _ = data
        self.n_users_, self.n_items_ = interactions.n_users, interactions.n_items
        self.n_duplicates_ = 0
        self.totals_ = {"epochs": 0.0, "steps": 0}
        self._check_plan(data, "before building its ID maps")
        users, items = self._make_mappers(interactions)
        self.user_map_, self.item_map_ = users.to_dict(), items.to_dict()
        self.dsl_schedule_ = None
        if self.density < 1.0:
            total = self.epochs * math.ceil(len(interactions) / self.batch_size)
            every = self.update_every or max(1, total // 40)
            self.dsl_schedule_ = {"total_steps": total, "update_every": every}

    def _planned_bytes(self, data: tuple[Interactions, int]) -> Mapping[str, int]:
        """Bytes the call will hold, from shapes, before anything grows.

        First call: the table, Adam's state and the maps (before the maps are built, what they
        need at least: a GraphHash label per ID up to the largest, and the table of the
        fewest rows); later calls: the maps' growth. LightGCN: the block's normalised graph.
        """
        interactions, _ = data
        max_user, max_item = int(interactions.users.max()), int(interactions.items.max())
        planned: dict[str, int] = {}
        if hasattr(self, "model_"):
            users, items = self.model_.user_mapper, self.model_.item_mapper
            planned["user_map"] = users.grown_nbytes(max_user)
            planned["item_map"] = items.grown_nbytes(max_item)
        else:
            if hasattr(self, "user_map_"):
                users, items = mapper_from_dict(self.user_map_), mapper_from_dict(self.item_map_)
                n_rows = users.n_rows + items.n_rows
                planned["user_map"], planned["item_map"] = nbytes(users), nbytes(items)
            else:
                n_rows, planned["user_map"], planned["item_map"] = self._least_maps(
                    max_user, max_item
                )
            planned["model"] = table_nbytes(n_rows, self.dim, self.density)
            planned["optimizer"] = self._adam_nbytes(n_rows)
        if self.model == "lightgcn":
            n_users = max(self.n_users_, interactions.n_users)
            n_items = max(self.n_items_, interactions.n_items)
            planned["graph"] = adjacency_nbytes(n_users, n_items, len(interactions))
        return planned

    def _least_maps(self, max_user: int, max_item: int) -> tuple[int, int, int]:
        """Table rows and map bytes the mappers will need at least, from the parameters."""
        user_rows = self.n_user_rows or max(1, self.n_users_ // 4)
        item_rows = self.n_item_rows or max(1, self.n_items_ // 4)
        if self.embedding == "full":
            return self.n_users_ + self.n_items_ + 2, 0, 0
        if self.embedding in ("modulo", "frequency"):
            return user_rows + item_rows, 8, 8
        if self.embedding == "double":
            return user_rows + item_rows, 40, 40
        extra = 24 if self.embedding == "doublegraphhash" else 0  # its hash parameters
        rows = 6 if extra else 4  # a cluster and a fallback row per side (and a hashed row)
        return rows, 4 * (max_user + 1) + 16 + extra, 4 * (max_item + 1) + 16 + extra

    def _adam_nbytes(self, n_rows: int) -> int:
        """Adam's state for the table, plus the gradient scaler's under ``"16-mixed"``."""
        if self.density < 1.0:
            shape: tuple[int, ...] = (SparseTable.planned_nnz(n_rows, self.dim, self.density),)
        else:
            shape = (n_rows, self.dim)
        param = torch.nn.Parameter(torch.empty(shape, device="meta"))
        scaler = Precision(self.precision, self.device_).planned_nbytes()
        return optimizer_state_nbytes("adam", [param], lr=self.lr) + scaler

    def _make_mappers(self, data: Interactions) -> tuple[IdMapper, IdMapper]:
        seed = self.seed_
        user_rows = self.n_user_rows or max(1, self.n_users_ // 4)
        item_rows = self.n_item_rows or max(1, self.n_items_ // 4)
        if self.embedding == "full":
            return Full(self.n_users_), Full(self.n_items_)
        if self.embedding == "modulo":
            return ModuloHash(user_rows), ModuloHash(item_rows)
        if self.embedding == "double":
            return DoubleHash(user_rows, seed), DoubleHash(item_rows, seed + 1)
        if self.embedding == "frequency":
            return (
                FrequencyHash.from_ids(user_rows, *np.unique(data.users, return_counts=True)),
                FrequencyHash.from_ids(item_rows, *np.unique(data.items, return_counts=True)),
            )
        users, items = GraphHash.fit_pairs(
            data.users, data.items, self.resolution, random_state=seed
        )
        if self.embedding == "graphhash":
            return users, items
        return (
            DoubleGraphHash(users, max(1, users.n_clusters // 2), seed),
            DoubleGraphHash(items, max(1, items.n_clusters // 2), seed + 1),
        )

    def _build(self) -> None:
        users, items = mapper_from_dict(self.user_map_), mapper_from_dict(self.item_map_)
        shape = (users, items, self.n_users_, self.n_items_, self.dim, self.density, self.seed_)
        model = LightGCN(*shape, graph=None) if self.model == "lightgcn" else MF(*shape)
        dsl = None if self.dsl_schedule_ is None else DynamicSparsity(**self.dsl_schedule_)
        self.learner_ = make_learner(
            model,
            accountant=self.accountant_,
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            reg=self.reg,
            time_budget=self.time_budget,
            dsl=dsl,
            seed=self.seed_,
            verbose=self.verbose,
            device=self.device_,
            precision=self.precision,
        )
        self.model_, self.dsl_ = model, dsl
        self.accountant_.track("user_map", Live(functools.partial(getattr, model, "user_mapper")))
        self.accountant_.track("item_map", Live(functools.partial(getattr, model, "item_mapper")))
        if self.model == "lightgcn":
            self.accountant_.track("graph", Live(functools.partial(getattr, model, "adjacency")))

    def _learn(self, data: tuple[Interactions, int]) -> None:
        interactions, dropped = data
        self._grow_vocabulary(interactions)
        self._set_graph(interactions)
        pairs = PositivePairs.from_arrays(interactions.users, interactions.items, self.n_items_)
        learner = self.learner_
        before = learner.n_steps
        losses = learner.learn(pairs, index=self.n_partial_fits_)
        steps = learner.n_steps - before
        epochs = steps / math.ceil(len(interactions) / self.batch_size)
        self.losses_ = losses
        self.last_fit_ = {"epochs": epochs, "steps": steps, "loss": losses[-1] if losses else None}
        self.totals_ = {
            "epochs": self.totals_["epochs"] + epochs,
            "steps": self.totals_["steps"] + steps,
        }
        self.n_duplicates_ += dropped

    def _grow_vocabulary(self, data: Interactions) -> None:
        """Widen the vocabulary to new IDs; GraphHash assigns them to neighbour clusters."""
        self.n_users_ = max(self.n_users_, data.n_users)
        self.n_items_ = max(self.n_items_, data.n_items)
        model = self.model_
        model.n_users, model.n_items = self.n_users_, self.n_items_
        if self.embedding in _CLUSTERED:
            users, items = _clusters(model.user_mapper), _clusters(model.item_mapper)
            users.assign_by_neighbours(data.users, data.items, items)
            items.assign_by_neighbours(data.items, data.users, users)
            self.user_map_ = model.user_mapper.to_dict()
            self.item_map_ = model.item_mapper.to_dict()

    def _recluster(self, data: Interactions, resolution: float) -> None:
        self._grow_vocabulary(data)
        users, items = GraphHash.fit_pairs(
            data.users, data.items, resolution, random_state=self.seed_
        )
        n_rows = users.n_rows + items.n_rows
        planned = {
            "model": table_nbytes(n_rows, self.dim),
            "optimizer": self._adam_nbytes(n_rows),
            "user_map": nbytes(users),
            "item_map": nbytes(items),
        }
        needs = ", ".join(f"{name} needs {size:,} bytes" for name, size in planned.items())
        self.accountant_.check_plan(
            planned, f"Recommender re-clustering: {needs}, the budget is {self.budget!r}"
        )
        model = self.model_
        weight = model.table.dense().detach()
        old_users, old_items = model.user_mapper, model.item_mapper
        generator = torch.Generator().manual_seed(self.seed_ * 100_003 + 7 + self.learner_.n_steps)
        init = (torch.randn(n_rows, self.dim, generator=generator) * 0.1).to(weight.device)
        new_users = remap_table(
            old_users,
            users,
            weight[: old_users.n_rows],
            np.arange(max(_clusters(old_users).labels.size, users.labels.size)),
            init[: users.n_rows],
        )
        new_items = remap_table(
            old_items,
            items,
            weight[old_users.n_rows :],
            np.arange(max(_clusters(old_items).labels.size, items.labels.size)),
            init[users.n_rows :],
        )
        model.user_mapper, model.item_mapper = users, items
        self.user_map_, self.item_map_ = users.to_dict(), items.to_dict()
        model.table = DenseTable(n_rows, self.dim, seed=self.seed_).to(weight.device)
        with torch.no_grad():  # the initial values are overwritten
            model.table.weight.copy_(torch.cat([new_users, new_items]))
        self.learner_.optimizer = None  # Adam restarts on the new rows
        self._set_graph(data)
        self.accountant_.check("Recommender.recluster")

    def _state_dict(self) -> dict[str, Any]:
        graph = self.model_.adjacency if isinstance(self.model_, LightGCN) else None
        return {"learner": self.learner_.state_dict(), "graph": graph}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner_.load_state_dict(state["learner"])
        if isinstance(self.model_, LightGCN) and state["graph"] is not None:
            self.model_.adjacency = read_only(state["graph"].to(self.device_))

    def _set_graph(self, data: Interactions) -> None:
        """LightGCN: propagate over the graph of ``data`` (normalised on the CPU, then moved
        to the table's device); nothing for MF."""
        if isinstance(self.model_, LightGCN):
            self.model_.set_graph(_matrix(data, self.n_users_, self.n_items_))

    # --------------------------------------------------------------- internals
    def _final(self, n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
        user_emb, item_emb = self.model_.final()
        if n_users > user_emb.shape[0]:  # users never seen: their fallback rows
            with torch.no_grad():
                extra = self.model_.lookup(
                    self.model_.table.dense(), np.arange(user_emb.shape[0], n_users), "user"
                )
            user_emb = torch.cat([user_emb, extra])
        return user_emb, item_emb


def _clusters(mapper: IdMapper) -> GraphHash:
    """The GraphHash inside a GraphHash or DoubleGraphHash mapper."""
    return mapper.graph if isinstance(mapper, DoubleGraphHash) else mapper  # type: ignore[return-value]


def _matrix(data: Interactions, n_users: int, n_items: int) -> sp.csr_matrix:
    """Deduplicated binary user × item CSR of ``data``, resized to the vocabulary."""
    matrix = as_csr(data)
    matrix.resize((max(n_users, matrix.shape[0]), max(n_items, matrix.shape[1])))
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def _interactions(value: Any, name: str) -> Interactions:
    if not isinstance(value, Interactions):
        raise TypeError(
            f"{name} must be an interactions container (streams.Interactions), got "
            f"{type(value).__name__}"
        )
    return value


def _excluded(
    exclude: Interactions, users: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``users``, item) of every pair of ``exclude`` whose user is asked for and
    whose item is ranked; nothing is allocated per user or item of the vocabulary."""
    keep = np.isin(exclude.users, users) & (exclude.items < n_items)
    pair_users, pair_items = exclude.users[keep], exclude.items[keep]
    order = np.argsort(users, kind="stable")
    left = np.searchsorted(users[order], pair_users, side="left")
    counts = np.searchsorted(users[order], pair_users, side="right") - left
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = order[np.repeat(left, counts) + offsets]
    return rows, np.repeat(pair_items, counts).astype(np.int64)


def _ranking_test(payload: Any) -> tuple[Interactions, Interactions | None]:
    """``(targets, exclude)`` of a test payload: a RankingTest or plain interactions."""
    if isinstance(payload, RankingTest):
        return payload.targets, payload.exclude
    return payload, None


def _no_targets(y: Any) -> None:
    if y is not None:
        raise ValueError(
            f"y must be None (interactions carry their own targets; pass the items to mask as "
            f"train=...), got {type(y).__name__}"
        )
