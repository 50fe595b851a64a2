"""NHP training-epoch speed on Taxi: this tree's code beside another tree's, in alternation.

Each run is a fresh subprocess that imports ``tpp`` from one tree (``PYTHONPATH``), trains
``tpp.NeuralTPP("nhp")`` as in ``benchmarks/tpp_taxi.py`` and as EasyTPP's anchor (hidden size 32,
20 midpoint points per interval, batch 256, Adam, one ``partial_fit`` per epoch) on one torch
thread, and records each epoch's wall and CPU seconds; after the last epoch it scores the test
split (log-likelihood per event). Runs alternate between the trees (the baseline first in even
rounds, this tree first in odd ones) so that both see the same machine load. Reported per tree:
the median over runs of each run's median epoch time, scored events per second from it, and
the test log-likelihood; and the median over rounds of the paired ratio baseline / this tree.
CPU seconds (``time.process_time``) are given beside wall seconds: a shared machine disturbs
them less.

Without ``--baseline`` only this tree is timed. To compare with the code before a change::

    git worktree add /tmp/old_nhp HEAD        # before committing the change
    .venv/bin/python -m benchmarks.nhp_epoch --baseline /tmp/old_nhp --runs 5
    git worktree remove /tmp/old_nhp

Run (from the repository root)::

    .venv/bin/python -m benchmarks.nhp_epoch                   # --data ../shared/data/tpp/taxi
    .venv/bin/python -m benchmarks.nhp_epoch --epochs 10 --baseline /tmp/old_nhp --runs 3
    .venv/bin/python -m benchmarks.nhp_epoch --quick           # CI smoke run (synthetic data)

It prints an aligned table and writes JSON (default ``benchmarks/results/nhp_epoch.json``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["main", "run_epochs"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tpp" / "taxi"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "nhp_epoch.json"


def run_epochs(
    data: str | None, *, epochs: int, seed: int, lr: float, batch_size: int
) -> dict[str, Any]:
    """Train NHP for ``epochs`` epochs in this process and time each; score the test split.

    Imports only what every version of the library has (``tpp.NeuralTPP``,
    ``streams.easytpp.load_easytpp``, ``streams.hawkes.random_hawkes``): the worker runs this
    function against another tree's code. ``data`` None means a small synthetic stream.
    """
    import tpp
    from tpp import NeuralTPP

    torch.set_num_threads(1)
    if data is None:
        from streams.hawkes import random_hawkes

        process = random_hawkes(4, random_state=0)
        train, test = (process.sample(n, 20.0, s, min_events=2) for n, s in ((40, 0), (10, 1)))
    else:
        from streams.easytpp import load_easytpp

        train, test = (load_easytpp(Path(data) / f"{name}.json") for name in ("train", "test"))
    estimator = NeuralTPP(
        "nhp",
        hidden_size=32,
        lr=lr,
        epochs=1,
        batch_size=batch_size,
        n_points=20,
        max_length=None,
        random_state=seed,
    )
    wall, cpu = [], []
    for _ in range(epochs):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        estimator.partial_fit(train)  # one epoch; Adam's state carries over
        wall.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
    return {
        "source": str(Path(inspect.getfile(tpp)).parent.parent),
        "epoch_seconds": wall,
        "epoch_cpu_seconds": cpu,
        "scored_events": int(train.n_events - len(train)),
        "test_log_likelihood": float(estimator.score(test)),
    }


def _in_tree(tree: Path, work: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_epochs` on ``tree``'s code, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(work)],
        env=env, cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the run on {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of each run's median epoch (wall and CPU) and the scores."""
    wall = statistics.median(statistics.median(r["epoch_seconds"]) for r in runs)
    cpu = statistics.median(statistics.median(r["epoch_cpu_seconds"]) for r in runs)
    scored = runs[0]["scored_events"]
    return {
        "source": runs[0]["source"],
        "median_epoch_seconds": wall,
        "median_epoch_cpu_seconds": cpu,
        "events_per_second": scored / wall,
        "events_per_cpu_second": scored / cpu,
        "test_log_likelihood": [r["test_log_likelihood"] for r in runs],
        "runs": runs,
    }


def _paired(base: list[dict[str, Any]], this: list[dict[str, Any]], key: str) -> float:
    """Median over rounds of baseline / this tree (each run's median epoch)."""
    ratios = [statistics.median(b[key]) / statistics.median(t[key]) for b, t in zip(base, this)]
    return statistics.median(ratios)


def format_report(result: dict[str, Any]) -> str:
    """One row per tree, then the paired ratios."""
    from continual.tables import format_table

    header = ["code", "epoch s", "epoch CPU s", "events/s", "events/CPU s", "test LL/event"]
    rows = []
    for name, tree in result["trees"].items():
        lls = tree["test_log_likelihood"]
        rows.append(
            [
                f"{name} ({tree['source']})",
                tree["median_epoch_seconds"],
                tree["median_epoch_cpu_seconds"],
                tree["events_per_second"],
                tree["events_per_cpu_second"],
                statistics.median(lls),
            ]
        )
    formats = {
        "epoch s": ".3f",
        "epoch CPU s": ".3f",
        "events/s": ",.0f",
        "events/CPU s": ",.0f",
        "test LL/event": ".4f",
    }
    settings = result["settings"]
    lines = [
        f"NHP epoch, {settings['epochs']} epochs x {settings['runs']} runs per tree, batch "
        f"{settings['batch_size']}, Adam lr {settings['lr']}, seed {settings['seed']} "
        "(medians over runs of each run's median epoch)",
        format_table(header, rows, formats=formats),
    ]
    if "ratio_wall" in result:
        lines.append(
            f"baseline / this tree, median of paired rounds: wall {result['ratio_wall']:.2f}x, "
            f"CPU {result['ratio_cpu']:.2f}x"
        )
    return "\n".join(lines)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of *.json")
    parser.add_argument("--baseline", type=Path, help="another tree to time beside this one")
    parser.add_argument("--runs", type=int, default=3, help="subprocesses per tree")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="tiny synthetic smoke run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and write the JSON document."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse_args(argv)
    if args.worker is not None:
        result = run_epochs(**json.loads(args.worker))
        print(json.dumps(result))
        return result
    from benchmarks.machine import machine_info

    torch.set_num_threads(1)
    runs, epochs = (1, 2) if args.quick else (args.runs, args.epochs)
    work = {
        "data": None if args.quick else str(args.data.resolve()),
        "epochs": epochs,
        "seed": args.seed,
        "lr": args.lr,
        "batch_size": args.batch_size,
    }
    trees = {"this tree": ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline, "this tree": ROOT}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for round_ in range(runs):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in order:
            results[name].append(_in_tree(trees[name], work))
    document: dict[str, Any] = {
        "benchmark": "nhp_epoch",
        "quick": args.quick,
        "command": "python -m benchmarks.nhp_epoch " + shlex.join(argv),
        "machine": machine_info(),
        "settings": {**work, "runs": runs, "hidden_size": 32, "n_points": 20},
        "trees": {name: _summary(runs_) for name, runs_ in results.items()},
    }
    if args.baseline is not None:
        base, this = results["baseline"], results["this tree"]
        document["ratio_wall"] = _paired(base, this, "epoch_seconds")
        document["ratio_cpu"] = _paired(base, this, "epoch_cpu_seconds")
    print(format_report(document))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
