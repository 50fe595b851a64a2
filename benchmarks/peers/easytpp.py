"""NHP on Taxi beside EasyTPP's own NHP: training speed and log-likelihood, in one run.

Both sides train the neural Hawkes process with hidden size 32 (15,252 parameters each), 20
integration points per interval, batch 256 and Adam (``--lr``, 1e-2 by default as in
``benchmarks.tpp_taxi``) for 10 epochs on the Taxi train split, then score the test split.

- **Peer**: easy-tpp 0.3.0 in its own environment (``benchmarks/peers/_easytpp_side.py``):
  ``easy_tpp.model.NHP`` through EasyTPP's ``ModelWrapper.run_batch``. Its batches are
  prebuilt by its own tokenizer before the clock starts, so its timed epoch is the model's
  training step only.
- **Ours**: ``tpp.NeuralTPP("nhp")``, one ``partial_fit`` per epoch, timed whole: input
  validation, batch building, the budget accounting and the rollback backup included.

Speed is scored events (all but each sequence's first) per second, on wall time and on the
process's CPU time: of the median epoch of a run, and of all its epochs together (the first
one, with any setup, included); then the median over
``--repeats`` alternating runs; repeat ``r`` trains both sides from seed ``--seed + r``, so
the log-likelihood comes from as many seeds. Target: ours at least 1.5x the peer, with equal
log-likelihood. The log-likelihood is reported as each library computes it (ours: midpoint
rule; EasyTPP: the mean over a 20-point grid that includes both ends of each interval) and,
to set the integral rule aside, both with 200 points.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.peers.easytpp                 # Taxi, 3 repeats of 10 epochs
    .venv/bin/python -m benchmarks.peers.easytpp --quick         # synthetic smoke run
    .venv/bin/python -m benchmarks.peers.easytpp --quick --ours-only   # no peer environment

The first run makes the peer environment (see :mod:`benchmarks.peers.environment`). It prints
a table and writes ``benchmarks/results/peers_easytpp.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.peers.compare import alternate, base_parser, median, speed_row, write_document
from benchmarks.peers.environment import PeerEnvironment
from continual.tables import format_table
from streams.easytpp import load_easytpp
from streams.events import EventSequences
from streams.hawkes import random_hawkes
from tpp import NeuralTPP
from tpp.metrics import log_likelihood_per_event

__all__ = ["environment", "main", "ours_side"]

SIDE = Path(__file__).resolve().parent / "_easytpp_side.py"
REQUIREMENTS = ("easy-tpp==0.3.0",)
TARGET = 1.5


def environment(cache: Path | None = None) -> PeerEnvironment:
    """easy-tpp's environment (our torch shared into it)."""
    return PeerEnvironment("easytpp", REQUIREMENTS, cache=cache)


def ours_side(
    train: EventSequences,
    test: EventSequences,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    hidden: int = 32,
    points: int = 20,
    eval_points: Sequence[int] = (20, 200),
    seed: int = 0,
) -> dict[str, Any]:
    """Train our NHP one ``partial_fit`` per epoch; the same keys as the peer's side."""
    estimator = NeuralTPP(
        "nhp",
        hidden_size=hidden,
        lr=lr,
        epochs=1,
        batch_size=batch_size,
        n_points=points,
        n_draws=1,
        max_length=None,
        random_state=seed,
    )
    seconds, cpu, losses = [], [], []
    for _ in range(epochs):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        estimator.partial_fit(train)
        seconds.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
        losses.append(estimator.losses_[-1])
    model = estimator.learner_.model
    return {
        "library": "continual-budget",
        "parameters": sum(p.numel() for p in model.parameters()),
        "epoch_seconds": seconds,
        "epoch_cpu_seconds": cpu,
        "scored_events": [train.n_events - len(train)] * epochs,
        "train_losses": losses,
        "test_log_likelihood": {
            str(p): log_likelihood_per_event(model, test, n_points=p) for p in eval_points
        },
        "test_scored_events": test.n_events - len(test),
    }


def _rates(run: dict[str, Any], key: str, over: str) -> float:
    """Scored events per second: the median over the epochs (``over="median"``) or over
    all epochs together, the first (which carries any setup) included (``"all"``)."""
    if over == "all":
        return sum(run["scored_events"]) / sum(run[key])
    return median([n / s for n, s in zip(run["scored_events"], run[key])])


def _data(args: Any, workdir: Path) -> tuple[Path, Path]:
    if not args.quick:
        folder = args.data / "tpp" / "taxi"
        return folder / "train.json", folder / "test.json"
    process = random_hawkes(4, random_state=args.seed)
    paths = []
    for name, (n, seed) in {"train": (40, 0), "test": (10, 1)}.items():
        path = workdir / f"{name}.json"
        path.write_text(json.dumps(process.sample(n, 20.0, seed, min_events=2).to_dicts()))
        paths.append(path)
    return paths[0], paths[1]


def format_report(document: dict[str, Any]) -> str:
    """The speed rows, then the log-likelihoods of every run."""
    header = ["measure", "ours", "easy-tpp", "ratio", "paired ratio", "target", "met"]
    rows = [
        [r["what"], r["ours"], r["peer"], r["ratio"], r["paired_ratio"], r["target"], r["met"]]
        for r in document["speed"]
    ]
    formats = {"ours": ",.0f", "easy-tpp": ",.0f", "ratio": ".2f", "paired ratio": ".2f"}
    lines = [format_table(header, rows, formats=formats), ""]
    ll_header = ["side", "seed", "LL own rule", "LL 200 points", "epoch s (median)"]
    ll_rows = []
    for side, runs in document["runs"].items():
        for i, run in enumerate(runs):
            own = run["test_log_likelihood"][str(document["settings"]["points"])]
            dense = run["test_log_likelihood"].get("200")
            seed = document["settings"]["seed"] + i
            ll_rows.append([side, seed, own, dense, median(run["epoch_seconds"])])
    lines.append(
        format_table(ll_header, ll_rows, formats={"LL own rule": ".4f", "LL 200 points": ".4f"})
    )
    for side, rules in document["log_likelihood"].items():
        dense = rules["200"]
        lines.append(
            f"{side}: test LL per event (200 points) {dense['mean']:.4f} +- {dense['std']:.4f} "
            f"over {len(dense['runs'])} seed(s)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both sides alternately, print the table and write the JSON document."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = base_parser(__doc__.splitlines()[0], "easytpp")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.epochs, args.repeats, args.batch_size = 2, 1, 16
    settings = {
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "hidden": 32,
        "points": 20,
        "repeats": args.repeats,
        "seed": args.seed,
    }
    with tempfile.TemporaryDirectory() as workdir:
        train_path, test_path = _data(args, Path(workdir))
        train, test = load_easytpp(train_path), load_easytpp(test_path)
        # repeat r trains from seed + r on both sides: the same work, and the log-likelihood
        # of several seeds
        seeds = {
            side: iter(range(args.seed, args.seed + args.repeats)) for side in ("ours", "easy-tpp")
        }
        sides = {
            "ours": lambda: ours_side(
                train,
                test,
                epochs=args.epochs,
                lr=args.lr,
                batch_size=args.batch_size,
                seed=next(seeds["ours"]),
            ),
        }
        freeze: list[str] = []
        if not args.ours_only:
            env = environment(args.cache)
            env.ensure(rebuild=args.rebuild)
            freeze = env.freeze()
            side_args = [
                "--train",
                str(train_path),
                "--test",
                str(test_path),
                "--epochs",
                str(args.epochs),
                "--lr",
                str(args.lr),
                "--batch-size",
                str(args.batch_size),
            ]
            sides = {
                "easy-tpp": lambda: env.run(
                    SIDE, [*side_args, "--seed", str(next(seeds["easy-tpp"]))]
                ),
                **sides,
            }
        runs = alternate(sides, args.repeats)
    speed = [
        speed_row(
            f"scored events/s, {name} ({clock})",
            [_rates(r, key, over) for r in runs["ours"]],
            [_rates(r, key, over) for r in runs.get("easy-tpp", [])],
            higher_is_better=True,
            target=TARGET,
        )
        for over, name in (("median", "median epoch"), ("all", "all epochs"))
        for key, clock in (("epoch_seconds", "wall"), ("epoch_cpu_seconds", "CPU"))
    ]
    log_likelihood = {
        side: {
            rule: {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": values}
            for rule in ("20", "200")
            for values in [[run["test_log_likelihood"][rule] for run in side_runs]]
        }
        for side, side_runs in runs.items()
    }
    document = write_document(
        args.out,
        "easytpp",
        argv,
        quick=args.quick,
        peer={"requirements": list(REQUIREMENTS), "freeze": freeze},
        settings=settings,
        data=None if args.quick else str(args.data / "tpp" / "taxi"),
        speed=speed,
        log_likelihood=log_likelihood,
        runs=runs,
    )
    print(format_report(document))
    return document


if __name__ == "__main__":
    main()
