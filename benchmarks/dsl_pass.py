"""One DSL prune-and-grow pass at Gowalla's table size, timed at the schedule's ratios.

DSL (:class:`recsys.dsl.DynamicSparsity`) swaps ``ceil(ratio * nnz)`` entries of MF's joint
user + item :class:`~recsys.dsl.SparseTable` every ΔT steps. This times one such pass on a
table of Gowalla's shape (29,858 users + 40,981 items, d=64: 4,533,696 entries) at density 0.2,
in the state a training run leaves it in:

1. MF at density 0.2, Adam lr 0.01, BPR with 1e-4 L2, batch 2048, on the interactions of
   ``--data`` (Gowalla in the LightGCN format) or, without it, on synthetic pairs of the same
   shape (users uniform, 27 items each, items uniform);
2. two training steps, a pass at ratio 0.5 (half the active entries become fresh zeros, the
   common tie that the pass meets in a run), two more steps, then one step whose dense-table
   gradient is the accumulator the pass grows from (nonzero on the batch's rows only);
3. that state (mask, values, Adam's moments, accumulator) is saved, and each timed pass starts
   from a copy of it. The ratios alternate within each round, so they share the machine's
   load; the table gives the median wall and CPU milliseconds per ratio. The target is 20 ms.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.dsl_pass
    .venv/bin/python -m benchmarks.dsl_pass --data ../shared/data/gowalla --repeats 21
    .venv/bin/python -m benchmarks.dsl_pass --quick --out /tmp/dsl_pass.json   # seconds
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.machine import machine_info
from continual.tables import format_table
from recsys.dsl import DynamicSparsity, SparseTable
from recsys.mappers import Full
from recsys.models import MF
from recsys.training import BPRLoss, PositivePairs, bpr_batches, bpr_forward

__all__ = ["main", "prepared_state", "time_passes"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "dsl_pass.json"
GOWALLA = {"n_users": 29_858, "n_items": 40_981, "per_user": 27}  # 810,128 train pairs
RATIOS = (0.5, 0.25, 0.05, 0.005)
TARGET_MS = 20.0


def synthetic_pairs(n_users: int, n_items: int, per_user: int, seed: int = 0) -> PositivePairs:
    """``per_user`` distinct uniform items for every user: pairs of Gowalla's shape, no data.

    Examples
    --------
    >>> from benchmarks.dsl_pass import synthetic_pairs
    >>> pairs = synthetic_pairs(4, 10, 3)
    >>> pairs.users.tolist(), pairs.sampler.n_items
    ([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], 10)
    """
    rng = np.random.default_rng(seed)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    return PositivePairs.from_arrays(np.repeat(np.arange(n_users), per_user), items, n_items)


def prepared_state(
    pairs: PositivePairs, n_users: int, n_items: int, *, density: float = 0.2, dim: int = 64
) -> tuple[MF, torch.optim.Optimizer, DynamicSparsity]:
    """MF at ``density`` after a few steps and one pass, with one batch's gradient accumulated.

    Parameters
    ----------
    pairs
        The training pairs the BPR batches (2048 pairs) are drawn from.
    n_users, n_items
        Vocabulary sizes; the table has ``n_users + 1 + n_items + 1`` rows (Full mappers).
    density, dim
        The table's density and width.

    Returns
    -------
    tuple
        The model (its ``table`` a :class:`~recsys.dsl.SparseTable`), its Adam optimizer and
        the :class:`~recsys.dsl.DynamicSparsity` holding the accumulated gradient.
    """
    model = MF(Full(n_users), Full(n_items), n_users, n_items, dim, density, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss = BPRLoss(1e-4)
    dsl = DynamicSparsity(total_steps=1000, update_every=10)
    generator = torch.Generator().manual_seed(0)
    batches = (batch for _ in iter(int, 1) for batch in bpr_batches(pairs, 2048, generator))

    def step(keep_gradient: bool = False) -> None:
        inputs, _ = next(batches)
        output = bpr_forward(model, inputs)
        output.weight.retain_grad()
        optimizer.zero_grad()
        loss(output).backward()
        optimizer.step()
        if keep_gradient:
            dsl.accumulate_gradient(output.weight.grad)

    for _ in range(2):
        step()
    step(keep_gradient=True)
    dsl.prune_and_grow(model.table, optimizer, 0.5)
    dsl._grad = None
    for _ in range(2):
        step()
    step(keep_gradient=True)
    return model, optimizer, dsl


def time_passes(
    model: MF,
    optimizer: torch.optim.Optimizer,
    dsl: DynamicSparsity,
    ratios: tuple[float, ...] = RATIOS,
    repeats: int = 11,
) -> list[dict[str, Any]]:
    """Wall and CPU time of ``repeats`` passes per ratio, each from a copy of the state.

    Parameters
    ----------
    model, optimizer, dsl
        What :func:`prepared_state` returns; restored to that state before every pass.
    ratios
        Update ratios to time, alternating within each round.
    repeats
        Rounds.

    Returns
    -------
    list of dict
        Per ratio: ``ratio``, ``swapped`` (entries swapped), the median wall and CPU
        milliseconds and every wall time.
    """
    table: SparseTable = model.table
    saved = {
        "mask": table.mask_bits.clone(),
        "values": table.values.detach().clone(),
        "state": copy.deepcopy(optimizer.state[table.values]),
        "grad": dsl._grad,
    }
    wall: dict[float, list[float]] = {ratio: [] for ratio in ratios}
    cpu: dict[float, list[float]] = {ratio: [] for ratio in ratios}
    swapped: dict[float, int] = {}
    for _ in range(repeats):
        for ratio in ratios:
            with torch.no_grad():
                table.mask_bits.copy_(saved["mask"])
                table.values.data = saved["values"].clone()
            optimizer.state[table.values] = copy.deepcopy(saved["state"])
            dsl._grad = saved["grad"].clone()
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            swapped[ratio] = dsl.prune_and_grow(table, optimizer, ratio)
            cpu[ratio].append(time.process_time() - start_cpu)
            wall[ratio].append(time.perf_counter() - start_wall)
    return [
        {
            "ratio": ratio,
            "swapped": swapped[ratio],
            "median_wall_ms": 1e3 * statistics.median(wall[ratio]),
            "median_cpu_ms": 1e3 * statistics.median(cpu[ratio]),
            "wall_ms": [1e3 * s for s in wall[ratio]],
        }
        for ratio in ratios
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time the passes, print the table and write the JSON; return the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="LightGCN folder (Gowalla); synthetic without")
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=11, help="timed passes per ratio")
    parser.add_argument("--quick", action="store_true", help="a small table, for tests")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.data is not None:
        from streams.recsys_loaders import load_lightgcn

        train, _ = load_lightgcn(str(args.data))
        matrix = train.csr()
        n_users, n_items = matrix.shape
        pairs = PositivePairs.from_matrix(matrix)
        source = str(args.data)
    else:
        shape = {"n_users": 600, "n_items": 800, "per_user": 5} if args.quick else GOWALLA
        n_users, n_items = shape["n_users"], shape["n_items"]
        pairs = synthetic_pairs(n_users, n_items, shape["per_user"])
        source = "synthetic"
    repeats = 3 if args.quick else args.repeats
    model, optimizer, dsl = prepared_state(pairs, n_users, n_items, density=args.density)
    table = model.table
    runs = time_passes(model, optimizer, dsl, RATIOS, repeats)
    entries = table.shape[0] * table.shape[1]
    results: dict[str, Any] = {
        "benchmark": "dsl_pass",
        "quick": args.quick,
        "command": shlex.join(
            ["python", "-m", "benchmarks.dsl_pass", *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": machine_info(),
        "settings": {
            "data": source,
            "n_users": n_users,
            "n_items": n_items,
            "dim": table.shape[1],
            "entries": entries,
            "density": args.density,
            "nnz": table.nnz,
            "repeats": repeats,
        },
        "passes": runs,
        "worst_median_wall_ms": max(run["median_wall_ms"] for run in runs),
        "target_ms": TARGET_MS,
        "target_met": max(run["median_wall_ms"] for run in runs) <= TARGET_MS,
    }
    print(
        f"DSL prune-and-grow pass: {n_users:,} + {n_items:,} rows x {table.shape[1]} "
        f"({entries:,} entries), density {args.density:g}, {table.nnz:,} active; {source}; "
        f"median of {repeats}"
    )
    print(
        format_table(
            ["ratio", "swapped", "wall ms", "CPU ms"],
            [[r["ratio"], r["swapped"], r["median_wall_ms"], r["median_cpu_ms"]] for r in runs],
            formats={"ratio": "g", "wall ms": ".1f", "CPU ms": ".1f"},
        )
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
