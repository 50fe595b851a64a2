"""Full-ranking evaluation speed on Gowalla: ``recsys.evaluate`` against a plain numpy version.

Both rank all 40,981 items for every one of the 29,858 users with d=64 embeddings (seeded random:
the time does not depend on their values), mask the training items and compute Recall@20 and
NDCG@20. The plain version does the numpy steps one would write first (numpy matmul, dense test
rows, ``argpartition`` then a sort of the k), with the same batching. Reports medians over
``--repeats`` runs of each, and checks both give the same metrics.

    python -m benchmarks.recsys_eval_speed --threads 2
    python -m benchmarks.recsys_eval_speed --quick        # synthetic data, seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks.machine import machine_info
from continual.tables import format_table
from recsys.metrics import evaluate
from streams.communities import planted_communities
from streams.recsys_loaders import load_lightgcn

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "gowalla"


def evaluate_numpy(
    users: np.ndarray,
    items: np.ndarray,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    k: int = 20,
    batch_size: int = 1024,
) -> dict[str, float]:
    """The plain numpy baseline: matmul, mask, argpartition, sort k, dense test rows."""
    n_test = np.diff(test.indptr)
    evaluated = np.flatnonzero(n_test)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[1.0], np.cumsum(discount)])
    recall = ndcg = 0.0
    for start in range(0, evaluated.size, batch_size):
        batch = evaluated[start : start + batch_size]
        scores = users[batch] @ items.T
        seen = train[batch]
        rows = np.repeat(np.arange(batch.size), np.diff(seen.indptr))
        scores[rows, seen.indices] = -np.inf
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, 1)
        truth = test[batch].toarray() > 0
        hits = np.take_along_axis(truth, top, 1)
        counts = n_test[batch]
        recall += float((hits.sum(1) / counts).sum())
        ndcg += float(((hits @ discount) / ideal[np.minimum(counts, k)]).sum())
    return {"recall": recall / evaluated.size, "ndcg": ndcg / evaluated.size}


def _timed(fn: Any, repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="LightGCN folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="synthetic data, 2 repeats")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/recsys_eval_speed.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        train, test = planted_communities(2000, 3000, seed=0).split_per_user(0.2, seed=0)
        dataset, repeats = "synthetic 2000 x 3000", 2
    else:
        train, test = load_lightgcn(args.data)
        dataset, repeats = "gowalla", args.repeats
    rng = np.random.default_rng(0)
    users = rng.normal(size=(train.n_users, 64)).astype(np.float32)
    items = rng.normal(size=(train.n_items, 64)).astype(np.float32)
    train_csr, test_csr = train.csr(), test.csr()
    fast_times, fast = _timed(
        lambda: evaluate(users, items, train_csr, test_csr, k=20, batch_size=args.batch_size),
        repeats,
    )
    plain_times, plain = _timed(
        lambda: evaluate_numpy(users, items, train_csr, test_csr, 20, args.batch_size), repeats
    )
    same = bool(
        np.isclose(fast["recall"], plain["recall"]) and np.isclose(fast["ndcg"], plain["ndcg"])
    )
    result = {
        "benchmark": "recsys_eval_speed",
        "quick": args.quick,
        "dataset": dataset,
        "n_users": train.n_users,
        "n_items": train.n_items,
        "dim": 64,
        "k": 20,
        "batch_size": args.batch_size,
        "repeats": repeats,
        "command": "python -m benchmarks.recsys_eval_speed " + " ".join(argv or sys.argv[1:]),
        "machine": {**machine_info(), "torch_threads": torch.get_num_threads()},
        "fast": {"times_s": fast_times, "median_s": statistics.median(fast_times), **fast},
        "plain_numpy": {
            "times_s": plain_times,
            "median_s": statistics.median(plain_times),
            **plain,
        },
        "same_metrics": same,
        "target_s": 15.0,
    }
    result["speedup"] = result["plain_numpy"]["median_s"] / result["fast"]["median_s"]
    header = ["version", "median s", "recall@20", "ndcg@20"]
    rows = [
        [name, result[name]["median_s"], result[name]["recall"], result[name]["ndcg"]]
        for name in ("fast", "plain_numpy")
    ]
    formats = {"median s": ".2f", "recall@20": ".5f", "ndcg@20": ".5f"}
    print(format_table(header, rows, formats=formats))
    print(f"{dataset}: speedup {result['speedup']:.1f}x, same metrics: {same}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
