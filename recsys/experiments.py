"""Recommendation experiments: tables at equal rows, DSL densities, a stream; the Hydra run.

:func:`equal_row_mappers` builds every embedding mapper with exactly the rows GraphHash produced;
:func:`train_and_evaluate` trains one model on the one loop (:func:`recsys.training.make_learner`)
under a CPU time budget and reports Recall@20, NDCG@20, bytes per ledger account, the loss curve
and times; :func:`prequential` scores each block of a stream before learning it (the forward
entries of :meth:`Recommender.evaluate <continual.BudgetedEstimator.evaluate>`).
``run_recsys_budget`` is the ``continual-run`` entry point of ``experiment=recsys_budget``;
``experiment=recsys_stream`` runs on the generic :func:`continual.runner.run_stream_experiment`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from hydra.utils import instantiate
from omegaconf import DictConfig

from continual.accountant import MemoryAccountant
from continual.budget import parse_budget
from continual.figures import plot_accuracy_vs_memory
from continual.progress import progress
from continual.run_folder import RunFolder
from continual.tables import format_table
from recsys.dsl import DynamicSparsity, SparseTable
from recsys.graphhash import DoubleGraphHash, GraphHash
from recsys.mappers import DoubleHash, FrequencyHash, Full, IdMapper, ModuloHash
from recsys.metrics import evaluate
from recsys.models import MF, LightGCN
from recsys.recommender import Recommender
from recsys.time_budget import CpuTimeBudget
from recsys.training import PositivePairs, bpr_forward, make_learner

__all__ = [
    "compare",
    "equal_row_mappers",
    "format_records",
    "prequential",
    "recall_vs_memory_curves",
    "run_recsys_budget",
    "train_and_evaluate",
]


def equal_row_mappers(
    graph: sp.csr_matrix, resolution: float, seed: int = 0
) -> tuple[dict[str, tuple[IdMapper, IdMapper]], dict[str, Any]]:
    """Full plus every compressed mapper pair at the row counts GraphHash gives at ``resolution``.

    DoubleGraphHash clusters at a lower resolution, found by bisection, so that about half of
    its rows are cluster rows and the rest hashed rows, at the same total. Returns the mappers
    and a summary (cluster counts, clustering seconds, reduction).

    Examples
    --------
    >>> from streams.communities import planted_communities
    >>> from recsys.experiments import equal_row_mappers
    >>> graph = planted_communities(200, 300, seed=0).csr()
    >>> mappers, info = equal_row_mappers(graph, resolution=5.0)
    >>> sorted(mappers)
    ['double', 'doublegraphhash', 'frequency', 'full', 'graphhash', 'modulo']
    >>> {name: m[0].n_rows for name, m in mappers.items() if name != "full"} == {
    ...     name: info["user_rows"] for name in ("double", "doublegraphhash", "frequency",
    ...                                         "graphhash", "modulo")}
    True
    """
    n_users, n_items = graph.shape
    start = time.perf_counter()
    users, items = GraphHash.fit(graph, resolution, random_state=seed)
    seconds = time.perf_counter() - start
    user_rows, item_rows = users.n_rows, items.n_rows
    half_users, half_items = _half_clusters(graph, resolution, user_rows, item_rows, seed)
    mappers = {
        "full": (Full(n_users), Full(n_items)),
        "modulo": (ModuloHash(user_rows), ModuloHash(item_rows)),
        "double": (DoubleHash(user_rows, seed), DoubleHash(item_rows, seed + 1)),
        "frequency": (
            FrequencyHash.from_counts(user_rows, np.diff(graph.indptr)),
            FrequencyHash.from_counts(item_rows, np.bincount(graph.indices, minlength=n_items)),
        ),
        "graphhash": (users, items),
        "doublegraphhash": (
            DoubleGraphHash(half_users, user_rows - half_users.n_rows, seed),
            DoubleGraphHash(half_items, item_rows - half_items.n_rows, seed + 1),
        ),
    }
    info = {
        "resolution": resolution,
        "user_clusters": users.n_clusters,
        "item_clusters": items.n_clusters,
        "user_rows": user_rows,
        "item_rows": item_rows,
        "cluster_seconds": seconds,
        "reduction": 1 - (user_rows + item_rows) / (n_users + n_items),
    }
    return mappers, info


def _half_clusters(
    graph: sp.csr_matrix, resolution: float, user_rows: int, item_rows: int, seed: int
) -> tuple[GraphHash, GraphHash]:
    lo, hi = math.log(resolution) - 8, math.log(resolution)
    best = None
    for _ in range(10):
        middle = (lo + hi) / 2
        pair = GraphHash.fit(graph, math.exp(middle), random_state=seed)
        if pair[0].n_rows <= user_rows // 2 + 1 and pair[1].n_rows <= item_rows // 2 + 1:
            best, lo = pair, middle
        else:
            hi = middle
    if best is None:
        best = GraphHash(np.zeros(graph.shape[0])), GraphHash(np.zeros(graph.shape[1]))
    return best


def train_and_evaluate(
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    mappers: tuple[IdMapper, IdMapper],
    *,
    model: str = "mf",
    density: float = 1.0,
    dim: int = 64,
    lr: float = 0.01,
    batch_size: int = 2048,
    reg: float = 1e-4,
    epochs: int = 1000,
    time_budget: float | None = 30.0,
    update_every: int | None = None,
    budget: int | str | None = None,
    seed: int = 0,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train MF or LightGCN with these mappers for ``time_budget`` CPU seconds; evaluate.

    Training is :func:`recsys.training.make_learner`'s loop (the same as
    :class:`~recsys.recommender.Recommender`'s), with the given mappers. DSL's ΔT
    (``update_every``) defaults to a fortieth of the steps the run is expected to take (DSL's
    3,000 steps assume runs of hundreds of epochs; short runs need more rounds). Returns
    Recall@20, NDCG@20, the ledger (table, optimizer, maps, graph), the mean loss of each
    epoch, epochs done, training CPU seconds and evaluation seconds, and whether the total
    fits ``budget`` (bytes, reported, not enforced, so that a sweep over budgets shows which
    runs would not fit).
    """
    n_users, n_items = train.shape
    users, items = mappers
    if model == "lightgcn":
        net: MF = LightGCN(users, items, n_users, n_items, dim, density, seed, graph=train)
    else:
        net = MF(users, items, n_users, n_items, dim, density, seed)
    pairs = PositivePairs.from_matrix(train)
    n_batches = math.ceil(pairs.users.size / batch_size)
    dsl = None
    if isinstance(net.table, SparseTable):
        expected_steps = max(1, epochs * n_batches)
        if time_budget is not None:
            expected_steps = min(expected_steps, _steps_in(time_budget, net, pairs, batch_size))
        every = update_every or max(1, expected_steps // 40)  # about 40 prune-and-grow rounds
        dsl = DynamicSparsity(expected_steps, every)
    accountant = MemoryAccountant()  # measures; the budget is compared with, not enforced
    learner = make_learner(
        net,
        accountant=accountant,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        reg=reg,
        time_budget=time_budget,
        dsl=dsl,
        seed=seed,
        verbose=verbose,
    )
    accountant.track("user_map", users)
    accountant.track("item_map", items)
    if isinstance(net, LightGCN):
        accountant.track("graph", net.adjacency)
    learner.learn(pairs, index=0)
    timer = next(p for p in learner.plugins if isinstance(p, CpuTimeBudget))
    start = time.perf_counter()
    user_emb, item_emb = net.final()
    metrics = evaluate(user_emb, item_emb, train, test, k=20)
    eval_seconds = time.perf_counter() - start
    ledger = accountant.ledger()
    limit = parse_budget(budget)
    return {
        "model": model,
        "density": density,
        "recall": metrics["recall"],
        "ndcg": metrics["ndcg"],
        "losses": list(learner.epoch_losses),
        "epochs": learner.n_steps / n_batches,
        "steps": learner.n_steps,
        "train_cpu_s": timer.seconds_used,
        "eval_s": eval_seconds,
        "ledger": ledger.accounts,
        "total_bytes": ledger.total,
        "budget": limit,
        "fits_budget": limit is None or ledger.total <= limit,
        "rows": users.n_rows + items.n_rows,
        "dsl_updates": 0 if dsl is None else dsl.n_updates,
    }


def _steps_in(time_budget: float, net: MF, pairs: PositivePairs, batch_size: int) -> int:
    """Steps that fit ``time_budget``, from the CPU time of three probe steps (no update)."""
    users, items = pairs.users[:batch_size], pairs.items[:batch_size]
    start = time.process_time()
    for _ in range(3):
        output = bpr_forward(net, (users, items, items))
        (output.users.repeat(2, 1) * output.items).sum().backward()
    net.zero_grad(set_to_none=True)
    per_step = max((time.process_time() - start) / 3, 1e-4)
    return max(1, int(time_budget / per_step))


def prequential(
    stream: Iterable[Any],
    embeddings: list[str],
    *,
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Recall@20 of block ``t`` before learning it, for every block but the first, per embedding.

    ``stream`` holds experiences whose ``train`` is an interactions block with the stream's full
    vocabulary and whose ``test`` a :class:`~streams.interaction_streams.RankingTest`
    (``streams.interaction_blocks``): the items of the earlier blocks are masked when ranking
    block ``t``. These are the forward entries ``R[t-1][t]`` of
    :meth:`Recommender.evaluate <continual.BudgetedEstimator.evaluate>`.

    Examples
    --------
    >>> from streams.communities import planted_communities
    >>> from streams.interaction_streams import interaction_blocks
    >>> from recsys.experiments import prequential
    >>> stream = interaction_blocks(planted_communities(100, 120, seed=0), 3)
    >>> curves = prequential(stream, ["full"], params={"dim": 8, "epochs": 2})
    >>> len(curves["full"])
    2
    """
    curves: dict[str, list[float]] = {}
    for embedding in embeddings:
        rec = Recommender(embedding=embedding, random_state=seed, **(params or {}))
        matrix = rec.evaluate(stream, horizon=1).matrix
        curves[embedding] = [float(matrix[t - 1, t]) for t in range(1, matrix.shape[0])]
    return curves


def format_records(records: list[dict[str, Any]]) -> str:
    """An aligned table: recall, NDCG, bytes per ledger account, epochs, times.

    Examples
    --------
    >>> from recsys.experiments import format_records
    >>> print(format_records([{"name": "mf/full", "recall": 0.31234, "ndcg": 0.2, "epochs": 2.5,
    ...     "ledger": {"model": 1200, "optimizer": 2404}, "total_bytes": 3604,
    ...     "train_cpu_s": 1.26, "eval_s": 0.051}]))
    run      recall@20  ndcg@20  model  optimizer  total  epochs  train s  eval s
    mf/full     0.3123   0.2000  1,200      2,404  3,604    2.50      1.3    0.05
    """
    accounts = list(dict.fromkeys(a for r in records for a in r["ledger"]))
    header = ["run", "recall@20", "ndcg@20", *accounts, "total", "epochs", "train s", "eval s"]
    rows = [
        [
            r["name"],
            r["recall"],
            r["ndcg"],
            *(r["ledger"].get(a, 0) for a in accounts),
            r["total_bytes"],
            r["epochs"],
            r["train_cpu_s"],
            r["eval_s"],
        ]
        for r in records
    ]
    formats = {"recall@20": ".4f", "ndcg@20": ".4f", "epochs": ".2f", "train s": ".1f",
               "eval s": ".2f"}  # fmt: skip
    return format_table(header, rows, formats=formats)


def compare(
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    *,
    resolution: float,
    densities: tuple[float, ...] = (1.0, 0.5, 0.2, 0.1),
    lightgcn: tuple[str, ...] = ("full", "graphhash"),
    settings: dict[str, Any] | None = None,
    lightgcn_settings: dict[str, Any] | None = None,
    budget: int | str | None = None,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """MF with every mapper at equal rows, LightGCN on ``lightgcn``, DSL MF at ``densities``."""
    mappers, info = equal_row_mappers(train, resolution, seed)
    settings = dict(settings or {})
    jobs: list[tuple[str, dict[str, Any]]] = [
        (f"mf/{name}", {"mappers": pair, **settings}) for name, pair in mappers.items()
    ]
    for name in lightgcn:
        jobs.append(
            (
                f"lightgcn/{name}",
                {
                    "mappers": mappers[name],
                    "model": "lightgcn",
                    **settings,
                    **(lightgcn_settings or {}),
                },
            )
        )
    for density in densities:
        if density < 1.0:
            pair = (Full(train.shape[0]), Full(train.shape[1]))
            jobs.append(
                (f"mf/full/dsl{density}", {"mappers": pair, "density": density, **settings})
            )
    records = []
    for name, job in progress(jobs, verbose=verbose, desc="runs"):
        record = train_and_evaluate(train, test, budget=budget, seed=seed, **job)
        records.append({"name": name, **record})
    return records, info


def recall_vs_memory_curves(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """One labelled point per table (``run -> [(bytes, recall)]``), and one curve for DSL:
    dense MF with the full table and its sparse versions, by density.

    Examples
    --------
    >>> from recsys.experiments import recall_vs_memory_curves
    >>> recall_vs_memory_curves([
    ...     {"name": "mf/full", "total_bytes": 900, "recall": 0.3},
    ...     {"name": "mf/modulo", "total_bytes": 300, "recall": 0.1},
    ...     {"name": "mf/full/dsl0.5", "total_bytes": 500, "recall": 0.25}])
    {'mf/full, DSL densities': [(900, 0.3), (500, 0.25)], 'mf/modulo': [(300, 0.1)]}
    """
    dsl = [r for r in records if "dsl" in r["name"]]
    curves: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        point = (record["total_bytes"], record["recall"])
        if record["name"] == "mf/full" and dsl:
            curves.setdefault("mf/full, DSL densities", []).insert(0, point)
        elif "dsl" in record["name"]:
            curves.setdefault("mf/full, DSL densities", []).append(point)
        else:
            curves[record["name"]] = [point]
    return curves


def run_recsys_budget(cfg: DictConfig, folder: RunFolder) -> dict[str, Any]:
    """Hydra: tables at equal rows, LightGCN, DSL densities on the experiment's data.

    Writes ``recall_vs_memory.png`` (one labelled point per table, the DSL densities as one
    curve), each run's training-loss curve and final ledger to TensorBoard (``tb/<run>/``),
    and returns the runs with their table.
    """
    exp = cfg.experiment
    data = instantiate(exp.data)
    train, test = data.split_per_user(exp.test_fraction, seed=cfg.seed)
    records, info = compare(
        train.csr(),
        test.csr(),
        resolution=exp.resolution,
        densities=tuple(exp.densities),
        lightgcn=tuple(exp.lightgcn),
        settings=dict(exp.train),
        lightgcn_settings=dict(exp.get("lightgcn_train", {})),
        budget=cfg.budget,
        seed=cfg.seed,
        verbose=cfg.verbose,
    )
    for record in records:
        folder.log_experience(
            record["name"], 0, losses=record["losses"], ledger=record["ledger"],
            scores={"recall@20": record["recall"], "ndcg@20": record["ndcg"]},
        )  # fmt: skip
    figure = plot_accuracy_vs_memory(recall_vs_memory_curves(records), metric="Recall@20")
    folder.figure("recall_vs_memory", figure)
    return {"clustering": info, "runs": records, "table": format_records(records)}
