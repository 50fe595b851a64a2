"""GPU check: every domain on one device, with the accountant against the CUDA allocator.

What it runs, each for ``--precision`` 32 and bf16-mixed where it applies:

1. **cil** -- a CIFAR ResNet32 training step, batch 128, on random ``uint8`` images: a plain
   torch loop, then MEMO and DER at their third task through :class:`continual.Learner`.
   Medians of the timed steps, and each method's time per sample over the plain loop's.
2. **memory** -- the MEMO run's ledger total on the device against what
   ``torch.cuda.memory_allocated()`` grew by while the learner was built and trained.
3. **nhp** -- :class:`tpp.NeuralTPP` (NHP, hidden 32, 20 integral points, batch 256) trained
   on event sequences: events per second.
4. **lightgcn** -- :class:`recsys.Recommender` LightGCN, d=64, one BPR epoch on Gowalla and a
   full-ranking Recall@20/NDCG@20 evaluation.
5. **dsl** -- DSL's prune-and-grow pass on a table of Gowalla's size (70,839 rows x 64).

Data: ``--data`` is the folder holding ``gowalla/`` and ``tpp/taxi/``; where it is missing
(the device machine has no ``../shared``) the check makes data of the same shapes: Gowalla's
29,858 users, 40,981 items and 810,128 training pairs drawn from planted communities, and
Hawkes event sequences. Times on a GPU synchronise the device before reading the clock.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.gpu_check                      # on the first CUDA device
    .venv/bin/python -m benchmarks.gpu_check --device cpu --quick # smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.cil_step_speed import StepClock, clock, image_experience, median_step
from benchmarks.machine import machine_info
from continual import Learner, MemoryAccountant
from continual.devices import resolve_device
from continual.precision import Precision
from continual.tables import format_table
from strategies.der import DER
from strategies.memo import MEMO
from strategies.resnet import CifarResNet

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"
GOWALLA = {"users": 29_858, "items": 40_981, "train": 810_128}


def plain_step(device: torch.device, precision: str, steps: int, warmup: int, batch: int) -> float:
    """Median seconds of a hand-written ResNet32 training step."""
    torch.manual_seed(0)
    model = CifarResNet(32, n_classes=100).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    amp = Precision(precision, device)
    x, y = (torch.from_numpy(a) for a in image_experience(0, batch * (steps + warmup), 0).train)
    times, start = [], clock(device)
    for index in torch.arange(len(x)).split(batch):
        inputs = x[index].to(device, non_blocking=True).float() / 255
        with amp.autocast():
            loss = nn.functional.cross_entropy(model(inputs), y[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        amp.backward(loss)
        amp.step(optimizer)
        times.append(clock(device))
    return median_step(times, start, warmup)


def growing_step(
    strategy: str, device: torch.device, precision: str, steps: int, warmup: int, batch: int
) -> dict[str, float]:
    """MEMO or DER at its third task: median step seconds, samples per step, and the ledger
    against the allocator."""
    clock(device)
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    torch.manual_seed(0)
    timer = StepClock(device)
    plugin = MEMO(seed=0) if strategy == "memo" else DER(seed=0)
    learner = Learner(
        CifarResNet(32, n_classes=100),
        plugins=[plugin, timer],
        accountant=MemoryAccountant("4 GB"),
        optimizer="sgd",
        lr=0.01,
        batch_size=batch,
        input_scale=1 / 255,
        device=device,
        precision=precision,
    )
    for index in range(2):
        learner.train_experience(image_experience(index, batch, 0))
    n = batch * (steps + warmup)
    timer.times.clear()
    start = clock(device)
    learner.train_experience(image_experience(2, n, 0))
    step = median_step(timer.times, start, warmup)
    clock(device)
    allocated = torch.cuda.memory_allocated(device) - before if device.type == "cuda" else None
    ledger = learner.accountant.ledger()
    return {
        "step_s": step,
        "samples_per_step": batch + round(batch * len(plugin.store) / n),
        "ledger_on_device": ledger.device_totals().get(str(device), 0),
        "allocated": allocated,
    }


def check_cil(device: torch.device, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for precision in args.precisions:
        plain = plain_step(device, precision, args.steps, args.warmup, args.batch_size)
        rows.append({"what": "resnet32 plain", "precision": precision, "step_s": plain,
                     "per_sample_vs_plain": 1.0})  # fmt: skip
        for strategy in ("memo", "der"):
            result = growing_step(
                strategy, device, precision, args.steps, args.warmup, args.batch_size
            )
            per_sample = result["step_s"] / result["samples_per_step"]
            rows.append(
                {
                    "what": f"resnet32 {strategy} (task 3)",
                    "precision": precision,
                    **result,
                    "per_sample_vs_plain": per_sample / (plain / args.batch_size),
                }
            )
    return rows


def _event_data(data: Path, quick: bool) -> Any:
    path = data / "tpp" / "taxi" / "train.json"
    if path.exists() and not quick:
        from streams.easytpp import load_easytpp

        return load_easytpp(path), "taxi"
    from streams.hawkes import random_hawkes

    process = random_hawkes(10, random_state=0)
    n = 40 if quick else 1400  # Taxi's 1,400 training sequences
    return process.sample(n, 20.0, 0, min_events=2), "hawkes (no taxi data)"


def check_nhp(device: torch.device, args: argparse.Namespace) -> list[dict[str, Any]]:
    from tpp import NeuralTPP

    sequences, source = _event_data(args.data, args.quick)
    n_events = int(sequences.lengths.sum())
    rows = []
    for precision in args.precisions:
        model = NeuralTPP(hidden_size=32, n_points=20, batch_size=256, epochs=args.epochs,
                          truncate=True, random_state=0, device=str(device),
                          precision=precision)  # fmt: skip
        start = clock(device)
        model.fit(sequences)
        seconds = clock(device) - start
        rows.append({"what": f"nhp train ({source})", "precision": precision,
                     "events_per_s": n_events * args.epochs / seconds,
                     "log_likelihood": float(model.score(sequences))})  # fmt: skip
    return rows


def _gowalla(data: Path, quick: bool) -> tuple[Any, Any, str]:
    from streams.communities import planted_communities

    folder = data / "gowalla"
    if (folder / "train.txt").exists() and not quick:
        from streams.recsys_loaders import load_lightgcn

        train, test = load_lightgcn(folder)
        return train, test, "gowalla"
    users, items = (300, 400) if quick else (GOWALLA["users"], GOWALLA["items"])
    per_user = round(GOWALLA["train"] / GOWALLA["users"] / 0.8)
    inter = planted_communities(users, items, n_communities=50, interactions_per_user=per_user)
    train, test = inter.split_per_user(0.2, seed=0)
    return train, test, "gowalla-sized synthetic"


def check_lightgcn(device: torch.device, args: argparse.Namespace) -> list[dict[str, Any]]:
    from recsys import Recommender

    train, test, source = _gowalla(args.data, args.quick)
    rec = Recommender(model="lightgcn", dim=64, epochs=1, batch_size=2048, random_state=0,
                      device=str(device))  # fmt: skip
    start = clock(device)
    rec.fit(train)
    epoch = clock(device) - start
    start = clock(device)
    scores = rec.scores(test, train=train, k=20)
    evaluation = clock(device) - start
    return [{"what": f"lightgcn ({source})", "precision": "32", "epoch_s": epoch,
             "eval_s": evaluation, "recall@20": scores["recall"]}]  # fmt: skip


def check_dsl(device: torch.device, args: argparse.Namespace) -> list[dict[str, Any]]:
    from benchmarks.dsl_pass import prepared_state, synthetic_pairs, time_passes

    users, items = (300, 400) if args.quick else (GOWALLA["users"], GOWALLA["items"])
    pairs = synthetic_pairs(users, items, per_user=5 if args.quick else 27)
    with torch.device(device):  # the table, its mask and the optimizer state on the device
        model, optimizer, dsl = prepared_state(pairs, users, items, density=0.2)
        passes = time_passes(model, optimizer, dsl, ratios=(0.5,), repeats=3 if args.quick else 11)
    rows = users + items
    return [{"what": f"dsl pass ({rows:,} x 64, density 0.2)", "precision": "32",
             "pass_s": passes[0]["median_wall_ms"] / 1e3}]  # fmt: skip


CHECKS: dict[str, Callable[[torch.device, argparse.Namespace], list[dict[str, Any]]]] = {
    "cil": check_cil,
    "nhp": check_nhp,
    "lightgcn": check_lightgcn,
    "dsl": check_dsl,
}


def _run(name: str, device: torch.device, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One check's rows, or one row with the error: a failing domain does not hide the others."""
    print(f"[gpu_check] {name} ...", file=sys.stderr, flush=True)
    try:
        return CHECKS[name](device, args)
    except Exception as error:  # reported in the table and the JSON
        return [{"what": name, "error": f"{type(error).__name__}: {error}"}]


def format_rows(rows: list[dict[str, Any]]) -> str:
    columns = ["what", "precision", "step_s", "per_sample_vs_plain", "ledger_on_device",
               "allocated", "events_per_s", "epoch_s", "eval_s", "pass_s", "error"]  # fmt: skip
    used = [c for c in columns if any(c in row for row in rows)]
    return format_table(used, [[row.get(c) for c in used] for row in rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the checks; return the JSON document it writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, mps or cpu")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--checks", default=",".join(CHECKS), help="comma-separated")
    parser.add_argument("--precisions", default="32,bf16-mixed", help="comma-separated")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="NHP epochs")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.precisions = [p for p in args.precisions.split(",") if p]
    if args.quick:
        args.steps, args.warmup, args.batch_size, args.epochs = 2, 1, 8, 1
    device = resolve_device(args.device)
    names = [n for n in args.checks.split(",") if n]
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        parser.error(f"--checks names unknown checks {unknown}; expected some of {list(CHECKS)}")
    rows = [row for name in names for row in _run(name, device, args)]
    print(format_rows(rows))
    info = machine_info()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    document = {
        "command": "python -m benchmarks.gpu_check " + shlex.join(argv or sys.argv[1:]),
        "device": str(device),
        "machine": info,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


if __name__ == "__main__":
    main()
