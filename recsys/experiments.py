"""Recommendation experiments: tables at equal rows, DSL densities, a stream; Hydra run functions.

:func:`equal_row_mappers` builds every embedding mapper with exactly the rows GraphHash produced;
:func:`train_and_evaluate` trains one model under a CPU time budget and reports Recall@20,
NDCG@20, bytes per ledger account and times; :func:`prequential` scores each block of a stream
before learning it. ``run_recsys_budget`` and ``run_recsys_stream`` are the ``continual-run``
entry points (``experiment=recsys_budget`` / ``recsys_stream``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from continual.accountant import MemoryAccountant
from continual.figures import plot_accuracy_vs_memory
from continual.progress import progress
from continual.tables import format_table
from recsys.dsl import DynamicSparsity, SparseTable
from recsys.graphhash import DoubleGraphHash, GraphHash, cluster_bipartite
from recsys.mappers import DoubleHash, FrequencyHash, Full, IdMapper, ModuloHash
from recsys.metrics import evaluate
from recsys.models import MF, LightGCN
from recsys.recommender import Recommender
from recsys.training import train_bpr

__all__ = [
    "compare",
    "equal_row_mappers",
    "format_records",
    "prequential",
    "run_recsys_budget",
    "run_recsys_stream",
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
        users, items = cluster_bipartite(graph, math.exp(middle), seed)
        pair = GraphHash(users), GraphHash(items)
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

    DSL's ΔT (``update_every``) defaults to a fortieth of the steps the run is expected to
    take (DSL's 3,000 steps assume runs of hundreds of epochs; short runs need more rounds).
    Returns Recall@20, NDCG@20, the ledger (table, maps, optimizer, graph), epochs done,
    training and evaluation seconds, and whether the total fits ``budget`` (bytes, reported,
    not enforced, so that a sweep over budgets shows which runs would not fit).
    """
    n_users, n_items = train.shape
    users, items = mappers
    torch.manual_seed(seed)
    if model == "lightgcn":
        net: MF = LightGCN(users, items, n_users, n_items, dim, density, seed, graph=train)
    else:
        net = MF(users, items, n_users, n_items, dim, density, seed)
    optimizer = torch.optim.Adam(net.table.parameters(), lr=lr)
    accountant = MemoryAccountant(budget)
    accountant.track("embedding_table", net.table)
    accountant.track("user_map", users)
    accountant.track("item_map", items)
    accountant.track("optimizer", optimizer)
    if isinstance(net, LightGCN):
        accountant.track("graph", net.adjacency)
    dsl = None
    if isinstance(net.table, SparseTable):
        expected_steps = max(1, int(epochs * math.ceil(train.nnz / batch_size)))
        if time_budget is not None:
            expected_steps = min(expected_steps, _steps_in(time_budget, net, train, batch_size))
        every = update_every or max(1, expected_steps // 40)  # about 40 prune-and-grow rounds
        dsl = DynamicSparsity(net.table, optimizer, expected_steps, every)
    report = train_bpr(
        net,
        train,
        optimizer,
        epochs=epochs,
        batch_size=batch_size,
        reg=reg,
        time_budget=time_budget,
        dsl=dsl,
        seed=seed,
        verbose=verbose,
    )
    start = time.perf_counter()
    user_emb, item_emb = net.final()
    metrics = evaluate(user_emb, item_emb, train, test, k=20)
    eval_seconds = time.perf_counter() - start
    ledger = accountant.ledger()
    return {
        "model": model,
        "density": density,
        "recall": metrics["recall"],
        "ndcg": metrics["ndcg"],
        "epochs": report.epochs,
        "steps": report.steps,
        "train_cpu_s": report.seconds,
        "eval_s": eval_seconds,
        "ledger": ledger.accounts,
        "total_bytes": ledger.total,
        "budget": ledger.budget,
        "fits_budget": ledger.headroom >= 0,
        "rows": users.n_rows + items.n_rows,
        "dsl_updates": 0 if dsl is None else dsl.n_updates,
    }


def _steps_in(time_budget: float, net: MF, train: sp.csr_matrix, batch_size: int) -> int:
    """Steps that fit ``time_budget``, from the CPU time of three probe steps (no update)."""
    users = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))[:batch_size]
    items = train.indices[:batch_size].astype(np.int64)
    start = time.process_time()
    for _ in range(3):
        u, i, _e, _f = net.represent(users, items)
        (u * i).sum().backward()
    net.table.zero_grad(set_to_none=True)
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
    vocabulary (``streams.interaction_blocks``). Items of the earlier blocks are masked when
    ranking block ``t``.

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
        past: sp.csr_matrix | None = None
        scores = []
        for experience in stream:
            block = experience.train
            if past is not None:
                scores.append(rec.score(block, train=past))
            rec.partial_fit(block)
            past = block.csr() if past is None else past + block.csr()
        curves[embedding] = scores
    return curves


def format_records(records: list[dict[str, Any]]) -> str:
    """An aligned table: recall, NDCG, bytes per ledger account, epochs, times."""
    accounts = list(dict.fromkeys(a for r in records for a in r["ledger"]))
    header = ["run", "recall@20", "ndcg@20", *accounts, "total", "epochs", "train s", "eval s"]
    rows = [header]
    for r in records:
        rows.append(
            [
                r["name"],
                f"{r['recall']:.4f}",
                f"{r['ndcg']:.4f}",
                *(f"{r['ledger'].get(a, 0):,}" for a in accounts),
                f"{r['total_bytes']:,}",
                f"{r['epochs']:.2f}",
                f"{r['train_cpu_s']:.1f}",
                f"{r['eval_s']:.2f}",
            ]
        )
    return format_table(rows[0], rows[1:])


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


def run_recsys_budget(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Hydra: tables at equal rows, LightGCN, DSL densities on the experiment's data."""
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
    curves: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        family = "dsl" if "dsl" in record["name"] or record["name"] == "mf/full" else "tables"
        curves.setdefault(family, []).append((record["total_bytes"], record["recall"]))
    plot_accuracy_vs_memory(
        curves, path=Path(out_dir) / "recall_vs_memory.png", metric="Recall@20"
    ).clear()
    return {"clustering": info, "runs": records, "table": format_records(records)}


def run_recsys_stream(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Hydra: prequential Recall@20 per block for each embedding on a synthetic stream."""
    exp = cfg.experiment
    stream = instantiate(exp.stream)
    curves = prequential(stream, list(exp.embeddings), params=dict(exp.params), seed=cfg.seed)
    lines = ["embedding  " + "  ".join(f"block {t + 1}" for t in range(len(stream) - 1))]
    for name, scores in curves.items():
        lines.append(f"{name:<9}  " + "  ".join(f"{s:7.4f}" for s in scores))
    return {"prequential_recall": curves, "table": "\n".join(lines)}
