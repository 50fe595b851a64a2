"""Recommendation under a byte budget: tables at equal rows, LightGCN, DSL densities, a stream.

On Gowalla (``--data``, LightGCN format) and on synthetic data with planted communities:

- MF with Full, Modulo, Double, Frequency, GraphHash and DoubleGraphHash tables, all hashed
  tables at exactly the row count GraphHash produces at ``--resolution`` (>= 75% reduction);
- LightGCN with Full and GraphHash tables;
- DSL (MF, Full mapper) at densities 0.5, 0.2, 0.1 (density 1.0 is the dense MF run);
- every run gets the same CPU time budget (``--time-budget`` seconds of process time); the table
  reports the epochs that were;
- a streaming variant on synthetic data: prequential Recall@20 per block with new users and
  items arriving (Full, Modulo, GraphHash);
- the GraphHash anchor: cluster counts and seconds on the Gowalla train graph at gamma=200.

    python -m benchmarks.recsys_budget                     # a few minutes per data set
    python -m benchmarks.recsys_budget --quick             # synthetic only, seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.machine import machine_info
from recsys.experiments import compare, format_records, prequential
from recsys.graphhash import cluster_bipartite
from streams.communities import planted_communities
from streams.interaction_streams import interaction_blocks
from streams.recsys_loaders import load_lightgcn

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "gowalla"
ANCHOR = {"resolution": 200.0, "user_clusters": 5652, "item_clusters": 5669}


def anchor_check(train: Any) -> dict[str, Any]:
    """Cluster counts and seconds at gamma=200 against the published anchor (within 3%)."""
    start = time.perf_counter()
    users, items = cluster_bipartite(train, ANCHOR["resolution"], random_state=0)
    seconds = time.perf_counter() - start
    found = {"user_clusters": int(users.max()) + 1, "item_clusters": int(items.max()) + 1}
    within = all(
        abs(found[key] - ANCHOR[key]) <= 0.03 * ANCHOR[key]
        for key in ("user_clusters", "item_clusters")
    )
    return {**found, "seconds": seconds, "expected": ANCHOR, "within_3_percent": within}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The two target ratios."""
    by = {r["name"]: r for r in records}
    out: dict[str, Any] = {}
    if "mf/graphhash" in by and "mf/modulo" in by:
        out["graphhash_over_modulo"] = by["mf/graphhash"]["recall"] / max(
            by["mf/modulo"]["recall"], 1e-12
        )
    if "mf/full/dsl0.2" in by and "mf/full" in by:
        out["dsl0.2_over_dense"] = by["mf/full/dsl0.2"]["recall"] / max(
            by["mf/full"]["recall"], 1e-12
        )
        out["dsl0.2_bytes_over_dense"] = (
            by["mf/full/dsl0.2"]["total_bytes"] / by["mf/full"]["total_bytes"]
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="LightGCN folder (Gowalla)")
    parser.add_argument("--time-budget", type=float, default=30.0, help="CPU s per Gowalla run")
    parser.add_argument("--resolution", type=float, default=200.0, help="GraphHash gamma, Gowalla")
    parser.add_argument("--synthetic-time-budget", type=float, default=8.0)
    parser.add_argument("--synthetic-resolution", type=float, default=50.0)
    parser.add_argument("--skip-gowalla", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic run only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/recsys_budget.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = {"dim": 64, "lr": 0.01, "batch_size": 2048, "reg": 1e-4}
    result: dict[str, Any] = {
        "benchmark": "recsys_budget",
        "quick": args.quick,
        "command": "python -m benchmarks.recsys_budget " + " ".join(argv or sys.argv[1:]),
        "machine": {**machine_info(), "torch_threads": torch.get_num_threads()},
        "settings": settings,
    }
    if args.quick:
        size = {"n_users": 300, "n_items": 400, "n_communities": 8, "interactions_per_user": 20}
        budget, resolution, blocks = 0.25, 20.0, 3
        settings = {**settings, "dim": 16, "batch_size": 512}
    else:
        size = {"n_users": 3000, "n_items": 4000, "n_communities": 50, "interactions_per_user": 30}
        budget, resolution, blocks = args.synthetic_time_budget, args.synthetic_resolution, 5
    synthetic = planted_communities(
        size["n_users"],
        size["n_items"],
        seed=0,
        n_communities=size["n_communities"],
        interactions_per_user=size["interactions_per_user"],
    )
    train, test = synthetic.split_per_user(0.2, seed=0)
    records, info = compare(
        train.csr(),
        test.csr(),
        resolution=resolution,
        settings={**settings, "time_budget": budget},
        lightgcn_settings={"batch_size": 4 * settings["batch_size"]},
    )
    result["synthetic"] = {
        "data": size,
        "time_budget_s": budget,
        "clustering": info,
        "runs": records,
        "summary": summarise(records),
    }
    print(
        f"synthetic {size}: {budget:g} CPU s per run, tables at {info['reduction']:.0%} fewer rows"
    )
    print(format_records(records))
    curves = prequential(
        interaction_blocks(synthetic, blocks, seed=0),
        ["full", "modulo", "graphhash"],
        params={
            "dim": settings["dim"],
            "epochs": 5,
            "batch_size": settings["batch_size"],
            "resolution": resolution,
            "time_budget": budget,
        },
    )
    result["stream"] = {"n_blocks": blocks, "prequential_recall": curves}
    print(
        "prequential Recall@20 per block:", {k: [round(v, 4) for v in c] for k, c in curves.items()}
    )
    if not args.quick and not args.skip_gowalla and Path(args.data).exists():
        gtrain, gtest = load_lightgcn(args.data)
        gtrain_csr, gtest_csr = gtrain.csr(), gtest.csr()
        result["anchor"] = anchor_check(gtrain_csr)
        print("anchor:", result["anchor"])
        records, info = compare(
            gtrain_csr,
            gtest_csr,
            resolution=args.resolution,
            settings={**settings, "time_budget": args.time_budget},
            lightgcn_settings={"batch_size": 8192},
        )
        result["gowalla"] = {
            "time_budget_s": args.time_budget,
            "clustering": info,
            "runs": records,
            "summary": summarise(records),
        }
        print(
            f"gowalla: {args.time_budget:g} CPU s per run, "
            f"tables at {info['reduction']:.0%} fewer rows"
        )
        print(format_records(records))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
