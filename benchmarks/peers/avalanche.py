"""Split digits with Avalanche's Naive and Replay beside our Learner: training time, in one run.

Both sides train the same MLP (64 -> 128 -> 10, ReLU; the same initial weights from the same
seed) on the same five experiences of :func:`streams.split_digits` (two classes each, class
order from ``--seed``), SGD lr 0.05 with momentum 0.9, batch 32, 20 epochs per experience.

- **Peer**: avalanche-lib 0.6.0 in its own environment (``benchmarks/peers/_avalanche_side.py``):
  ``avalanche.training.Naive`` and ``Replay`` (``mem_size=200``, its experience-balanced
  buffer; each batch adds 32 buffer samples) with an evaluator without metrics or loggers.
- **Ours**: :class:`continual.Learner` with no plugin (naive) or with
  :class:`strategies.Replay` (class-balanced store, 32 replayed samples per batch), under a
  byte budget of the model, its SGD momentum and 200 stored samples (65 bytes each: a uint8
  8x8 image and a 1-byte label), so that it keeps 200 samples too. The accounting runs as
  always (budget checks, ledger snapshots).

The time is the sum over the five experiences of training one experience (the peer's
``strategy.train(experience)``, our ``Learner.train_experience``), on wall time and on CPU
time; the median over ``--repeats`` alternating runs. The test accuracy on the classes seen so
far is computed after each experience by the same plain forward pass on both sides, outside
the clock. Target: ours at least 3x faster for both strategies.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.peers.avalanche
    .venv/bin/python -m benchmarks.peers.avalanche --quick --ours-only   # no peer environment

The first run makes the peer environment (see :mod:`benchmarks.peers.environment`). It prints
a table and writes ``benchmarks/results/peers_avalanche.json``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.peers.compare import alternate, base_parser, speed_row, write_document
from benchmarks.peers.environment import PeerEnvironment
from continual import Learner, MemoryAccountant, nbytes
from continual.learner import optimizer_state_nbytes
from continual.tables import format_table
from strategies import Finetune, Replay
from strategies.backbones import MLP
from streams import split_digits
from streams.experience import Stream

__all__ = ["environment", "main", "ours_side"]

SIDE = Path(__file__).resolve().parent / "_avalanche_side.py"
REQUIREMENTS = ("avalanche-lib==0.6.0", "torchvision==0.29.1")
TARGET = 3.0
SAMPLE_BYTES = 65  # a uint8 8x8 digit and a 1-byte label in our store


def environment(cache: Path | None = None) -> PeerEnvironment:
    """avalanche-lib's environment (our torch shared into it)."""
    return PeerEnvironment("avalanche", REQUIREMENTS, cache=cache)


@torch.no_grad()
def _accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, scale: float) -> float:
    model.eval()
    predictions = model(torch.as_tensor(x).to(torch.float32) * scale).argmax(dim=1)
    return float((predictions == torch.as_tensor(y)).float().mean())


def ours_side(
    stream: Stream,
    strategy: str,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.9,
    hidden: int = 128,
    mem_size: int = 200,
    input_scale: float = 1 / 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Train our Learner over ``stream``; the same keys as the peer's side."""
    torch.manual_seed(seed)
    x0 = np.asarray(stream[0].train[0])
    model = MLP(
        int(np.prod(x0.shape[1:])),
        len(np.unique(np.concatenate([np.asarray(e.test[1]) for e in stream]))),
        hidden_sizes=(hidden,),
    )
    if strategy == "replay":
        params = list(model.parameters())
        state = optimizer_state_nbytes("sgd", params, lr=lr, momentum=momentum)
        budget = nbytes(model) + state + mem_size * SAMPLE_BYTES
        plugins: list[Any] = [Replay(replay_batch_size=batch_size, seed=seed)]
    else:
        budget, plugins = None, [Finetune()]
    learner = Learner(
        model,
        plugins=plugins,
        accountant=MemoryAccountant(budget),
        optimizer="sgd",
        lr=lr,
        momentum=momentum,
        epochs=epochs,
        batch_size=batch_size,
        input_scale=input_scale,
        seed=seed,
    )
    seconds, cpu, accuracies = [], [], []
    for i, experience in enumerate(stream):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        learner.train_experience(experience)
        seconds.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
        seen_x = np.concatenate([np.asarray(e.test[0]) for e in stream[: i + 1]])
        seen_y = np.concatenate([np.asarray(e.test[1]) for e in stream[: i + 1]])
        accuracies.append(_accuracy(model, seen_x, seen_y, input_scale))
    return {
        "library": "continual-budget",
        "strategy": strategy,
        "experience_seconds": seconds,
        "experience_cpu_seconds": cpu,
        "steps": learner.n_steps,
        "stored_samples": len(plugins[0].store) if strategy == "replay" else 0,
        "seen_accuracy": accuracies,
        "budget": budget,
        "ledger": learner.accountant.ledger().to_dict(),
    }


def _write_arrays(stream: Stream, path: Path) -> None:
    arrays: dict[str, Any] = {"n_experiences": len(stream)}
    for i, experience in enumerate(stream):
        arrays[f"train_x_{i}"], arrays[f"train_y_{i}"] = map(np.asarray, experience.train)
        arrays[f"test_x_{i}"], arrays[f"test_y_{i}"] = map(np.asarray, experience.test)
    arrays["n_classes"] = len(
        np.unique(np.concatenate([arrays[f"test_y_{i}"] for i in range(len(stream))]))
    )
    np.savez(path, **arrays)


def _stream(quick: bool, seed: int) -> Stream:
    if not quick:
        return split_digits(5, seed=seed)
    from streams import class_incremental

    rng = np.random.default_rng(seed)
    X = rng.integers(0, 17, size=(80, 1, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(4), 20)
    return class_incremental(X, y, n_experiences=2, test=(X, y), seed=seed)


def format_report(document: dict[str, Any]) -> str:
    """Training seconds per strategy, ratios, and the accuracies."""
    header = [
        "strategy",
        "measure",
        "ours s",
        "avalanche s",
        "ratio",
        "paired ratio",
        "target",
        "met",
    ]
    rows = [
        [
            r["strategy"],
            r["what"],
            r["ours"],
            r["peer"],
            r["ratio"],
            r["paired_ratio"],
            r["target"],
            r["met"],
        ]
        for r in document["speed"]
    ]
    formats = {"ours s": ".2f", "avalanche s": ".2f", "ratio": ".2f", "paired ratio": ".2f"}
    lines = [format_table(header, rows, formats=formats), ""]
    acc_rows = []
    for key, runs in document["runs"].items():
        for i, run in enumerate(runs, 1):
            acc_rows.append(
                [
                    key,
                    i,
                    run["steps"],
                    run["stored_samples"],
                    float(np.mean(run["seen_accuracy"])),
                    run["seen_accuracy"][-1],
                ]
            )
    acc_header = ["side/strategy", "repeat", "steps", "stored", "avg inc acc", "final acc"]
    lines.append(format_table(acc_header, acc_rows))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both sides alternately, print the table and write the JSON document."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = base_parser(__doc__.splitlines()[0], "avalanche")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--mem-size", type=int, default=200)
    parser.add_argument(
        "--strategies", nargs="+", default=["naive", "replay"], choices=["naive", "replay"]
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.epochs, args.repeats, args.mem_size = 2, 1, 10
    stream = _stream(args.quick, args.seed)
    settings = {
        "epochs": args.epochs,
        "batch_size": 32,
        "lr": 0.05,
        "momentum": 0.9,
        "hidden": 128,
        "mem_size": args.mem_size,
        "repeats": args.repeats,
        "seed": args.seed,
        "n_experiences": len(stream),
    }
    env = None if args.ours_only else environment(args.cache)
    freeze: list[str] = []
    if env is not None:
        env.ensure(rebuild=args.rebuild)
        freeze = env.freeze()
    runs: dict[str, list[dict[str, Any]]] = {}
    speed = []
    with tempfile.TemporaryDirectory() as workdir:
        data = Path(workdir) / "split_digits.npz"
        _write_arrays(stream, data)
        for strategy in args.strategies:
            sides = {
                "ours": lambda s=strategy: ours_side(
                    stream, s, epochs=args.epochs, mem_size=args.mem_size, seed=args.seed
                )
            }
            if env is not None:
                side_args = [
                    "--data",
                    str(data),
                    "--strategy",
                    strategy,
                    "--epochs",
                    str(args.epochs),
                    "--mem-size",
                    str(args.mem_size),
                    "--seed",
                    str(args.seed),
                ]
                sides = {"avalanche": lambda a=side_args: env.run(SIDE, a), **sides}
            result = alternate(sides, args.repeats)
            for side, side_runs in result.items():
                runs[f"{side}/{strategy}"] = side_runs
            for key, label in (
                ("experience_seconds", "train s (wall)"),
                ("experience_cpu_seconds", "train s (CPU)"),
            ):
                row = speed_row(
                    label,
                    [sum(r[key]) for r in result["ours"]],
                    [sum(r[key]) for r in result.get("avalanche", [])],
                    higher_is_better=False,
                    target=TARGET,
                )
                speed.append({"strategy": strategy, **row})
    document = write_document(
        args.out,
        "avalanche",
        argv,
        quick=args.quick,
        peer={"requirements": list(REQUIREMENTS), "freeze": freeze},
        settings=settings,
        speed=speed,
        runs=runs,
    )
    print(format_report(document))
    return document


if __name__ == "__main__":
    main()
