"""NHP on Taxi against EasyTPP's published anchor: log-likelihood, accuracy, RMSE and speed.

Setup as the anchor: NHP with hidden size 32 (15,252 parameters for the 10 types), batch 256,
20 integration points per interval, Adam (``tpp.NeuralTPP``, one ``partial_fit`` per epoch so
that the scores are taken between epochs; Adam's state carries over). The anchor's learning
rate is 1e-3 (``--lr 1e-3``), ours defaults to 1e-2, which the 60 Adam steps of 10 epochs need.
Reported after 2 and after 10 epochs on the test split: log-likelihood per event, next-type
accuracy, next-time RMSE, training throughput (scored events per second of wall time, and per
second of this process's CPU time, which a shared machine disturbs less; medians over epochs)
and wall time. Baselines beside them: the per-type homogeneous Poisson process fitted on train
(log-likelihood), the train-mean gap (RMSE) and the most frequent train type (accuracy).

Convention (the same as EasyTPP's): nats per event with each sequence conditioned on its first
event, whose type is not scored; the integral runs from the first to the last event, by the
midpoint rule with 20 points per interval (EasyTPP: a 20-point grid). Times are in the data's
units. Predicted times are the mean of ``--draws`` thinning draws (EasyTPP: one draw); the
one-draw numbers are reported too.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.tpp_taxi                  # --data ../shared/data/tpp/taxi
    .venv/bin/python -m benchmarks.tpp_taxi --lr 1e-3        # the anchor's learning rate
    .venv/bin/python -m benchmarks.tpp_taxi --quick          # CI smoke run (synthetic data)

It prints an aligned table and writes JSON (default ``benchmarks/results/tpp_taxi.json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.machine import machine_info
from continual.tables import format_table
from streams.easytpp import load_easytpp
from streams.events import EventSequences
from streams.hawkes import random_hawkes
from tpp import NeuralTPP, PoissonTPP

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tpp" / "taxi"
ANCHOR = {
    2: {"log_likelihood": -1.51, "accuracy": 0.46, "rmse": 0.34},
    10: {"log_likelihood": -0.49, "accuracy": 0.87, "rmse": 0.36},
    "events_per_second": 20_000,
    "mean_gap_rmse": 0.30,
    "most_frequent_accuracy": 0.44,
}


def _splits(data: Path | None, quick: bool) -> list[EventSequences]:
    if quick:
        process = random_hawkes(4, random_state=0)
        return [process.sample(n, 20.0, s, min_events=2) for n, s in ((40, 0), (10, 1))]
    return [load_easytpp(data / f"{name}.json") for name in ("train", "test")]


def _gaps(data: EventSequences) -> np.ndarray:
    """Inter-event gaps inside the sequences (no first event)."""
    inside = np.ones(data.n_events, dtype=bool)
    inside[data.offsets[:-1]] = False
    return data.gaps()[inside]


def bench(
    data: Path | None,
    *,
    epochs: int,
    checkpoints: Sequence[int],
    draws: int,
    seed: int,
    quick: bool,
    lr: float = 1e-2,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Train NHP one epoch per ``partial_fit`` and score at the checkpoints; return every
    number of the report."""
    train, test = _splits(data, quick)
    estimator = NeuralTPP(
        "nhp",
        hidden_size=32,
        lr=lr,
        epochs=1,
        batch_size=batch_size,
        n_points=20,
        n_draws=draws,
        max_length=None,
        random_state=seed,
    )
    scored = train.n_events - len(train)
    epoch_seconds, epoch_cpu, results = [], [], {}
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        tic, cpu = time.perf_counter(), time.process_time()
        estimator.partial_fit(train)  # one epoch; Adam's state carries over
        epoch_seconds.append(time.perf_counter() - tic)
        epoch_cpu.append(time.process_time() - cpu)
        if epoch in checkpoints:
            metrics = estimator.set_params(n_draws=draws).scores(test)
            one = estimator.set_params(n_draws=1).scores(test)
            metrics["accuracy_one_draw"], metrics["rmse_one_draw"] = one["accuracy"], one["rmse"]
            metrics["train_seconds"] = sum(epoch_seconds)
            results[epoch] = metrics
    mean_gap = float(_gaps(train).mean())
    return {
        "parameters": sum(p.numel() for p in estimator.learner_.model.parameters()),
        "checkpoints": results,
        "events_per_second": scored / statistics.median(epoch_seconds),
        "all_events_per_second": train.n_events / statistics.median(epoch_seconds),
        "events_per_cpu_second": scored / statistics.median(epoch_cpu),
        "epoch_seconds": epoch_seconds,
        "epoch_cpu_seconds": epoch_cpu,
        "wall_seconds": time.perf_counter() - start,
        "ledger": estimator.accountant_.ledger().to_dict(),
        "poisson_log_likelihood": PoissonTPP().fit(train).score(test),
        "mean_gap_rmse": float(np.sqrt(np.mean((_gaps(test) - mean_gap) ** 2))),
        "most_frequent_accuracy": results[max(results)]["most_frequent_accuracy"],
        "n_train_events": train.n_events,
        "n_test_scored_events": test.n_events - len(test),
    }


def format_report(result: dict[str, Any]) -> str:
    """Ours beside the anchor at each checkpoint, then the baselines."""
    header = [
        "epochs",
        "LL/event",
        "LL anchor",
        "accuracy",
        "acc anchor",
        "RMSE",
        "RMSE anchor",
        "acc 1-draw",
        "RMSE 1-draw",
        "train s",
    ]
    rows = []
    for epoch, m in result["checkpoints"].items():
        anchor = ANCHOR.get(int(epoch), {})
        rows.append(
            [
                str(epoch),
                m["log_likelihood"],
                anchor.get("log_likelihood"),
                m["accuracy"],
                anchor.get("accuracy"),
                m["rmse"],
                anchor.get("rmse"),
                m["accuracy_one_draw"],
                m["rmse_one_draw"],
                m["train_seconds"],
            ]
        )
    formats = {"LL anchor": ".2f", "acc anchor": ".2f", "RMSE anchor": ".2f", "train s": ".1f"}
    lines = format_table(header, rows, formats=formats).splitlines()
    lines += [
        f"Adam lr {result.get('lr', '-')}, batch {result.get('batch_size', '-')}",
        f"parameters {result['parameters']:,}; throughput {result['events_per_second']:,.0f} "
        f"scored events/s (anchor {ANCHOR['events_per_second']:,}), "
        f"{result['all_events_per_second']:,.0f} events/s counting first events, "
        f"{result['events_per_cpu_second']:,.0f} scored events per CPU second; "
        f"wall {result['wall_seconds']:.1f} s",
        f"baselines: Poisson LL/event {result['poisson_log_likelihood']:.3f}; mean-gap RMSE "
        f"{result['mean_gap_rmse']:.3f}; most-frequent-type accuracy "
        f"{result['most_frequent_accuracy']:.3f}",
    ]
    return "\n".join(lines)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of *.json")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--draws", type=int, default=16, help="thinning draws per prediction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (anchor 1e-3)")
    parser.add_argument(
        "--batch-size", type=int, default=256, help="sequences per batch (anchor 256)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny synthetic smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/tpp_taxi.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and write the JSON document."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse_args(argv)
    torch.set_num_threads(1)
    epochs = 2 if args.quick else args.epochs
    checkpoints = sorted({min(2, epochs), epochs})
    result = bench(
        None if args.quick else args.data,
        epochs=epochs,
        checkpoints=checkpoints,
        draws=2 if args.quick else args.draws,
        seed=args.seed,
        quick=args.quick,
        lr=args.lr,
        batch_size=args.batch_size,
    )
    document = {
        "benchmark": "tpp_taxi",
        "quick": args.quick,
        "command": "python -m benchmarks.tpp_taxi " + shlex.join(argv),
        "machine": machine_info(),
        "convention": "nats per event, first event of each sequence conditioned on, integral "
        "from first to last event, midpoint rule with 20 points per interval",
        "anchor": {str(k): v for k, v in ANCHOR.items()},
        "lr": args.lr,
        "batch_size": args.batch_size,
        **result,
        "checkpoints": {str(k): v for k, v in result["checkpoints"].items()},
    }
    print(format_report(document))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
