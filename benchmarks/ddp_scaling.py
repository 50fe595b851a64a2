"""Data-parallel scaling of the Learner: steps/s and samples/s on 1 and 2 processes, and the
communication share of a step.

Each world size runs in fresh processes started by ``torch.multiprocessing.spawn`` and joined
in one process group (gloo on the CPU, nccl with ``--device cuda``). Every rank trains the
digits conv net (width 16) with SGD, ``--batch`` rows per rank, on the training images of
split digits (1,347) repeated ``--copies`` times, through :class:`continual.Learner` (DDP with its
row-weighted gradient all-reduce and ``join`` included), and records its step times. Then, in the
same processes, a plain DDP loop on one batch alternates blocks of steps that all-reduce the
gradients, the same inside DDP's ``join`` context (which the Learner needs for uneven batch
counts: one more small all-reduce per step), and steps under ``no_sync()``: one minus the
no_sync/DDP ratio is the communication share, one minus DDP/join the share of ``join``.
The world sizes alternate ``--repeats`` times; the table gives medians.

On this 2-core machine two processes share the two cores with everything else running, so
the ideal is 2x samples/s and less is expected; with one GPU, nccl can only be measured at
world size 1 (NCCL needs one device per rank).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.ddp_scaling
    .venv/bin/python -m benchmarks.ddp_scaling --quick --out /tmp/ddp.json
    .venv/bin/python -m benchmarks.ddp_scaling --device cuda --worlds 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.distributed.algorithms.join import Join

from benchmarks.cil_step_speed import StepClock, clock, median_step
from benchmarks.machine import machine_info
from continual import Learner
from continual.distributed import backend_for, data_parallel
from continual.tables import format_table
from strategies import DigitsConvNet
from streams import split_digits

__all__ = ["main", "measure_world"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "ddp_scaling.json"
WARMUP = 5
BLOCK = 10


def measure_world(world: int, args: argparse.Namespace) -> dict[str, float]:
    """Rank 0's measurements for ``world`` processes (see the module docstring)."""
    with tempfile.TemporaryDirectory() as folder:
        init = f"file://{Path(folder) / 'rendezvous'}"
        mp.spawn(_rank_main, args=(world, init, folder, vars(args)), nprocs=world, join=True)
        return json.loads((Path(folder) / "rank0.json").read_text())


def _rank_main(rank: int, world: int, init: str, folder: str, settings: dict[str, Any]) -> None:
    torch.set_num_threads(settings["threads"])
    device = torch.device(settings["device"])
    if device.type == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), init_method=init, rank=rank, world_size=world)
    try:
        result = _measure(world, device, settings)
        (Path(folder) / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _measure(world: int, device: torch.device, settings: dict[str, Any]) -> dict[str, float]:
    x, y = split_digits(1, seed=0)[0].train  # all ten classes, 1,347 images
    x, y = np.concatenate([x] * settings["copies"]), np.concatenate([y] * settings["copies"])
    torch.manual_seed(0)
    stepper = StepClock(device)
    learner = Learner(DigitsConvNet(10, width=16), plugins=[stepper], epochs=settings["epochs"],
                      batch_size=settings["batch"], input_scale=1 / 16, device=device)  # fmt: skip
    learner.learn((x[: 8 * settings["batch"]], y[: 8 * settings["batch"]]))  # warm-up, in step
    stepper.times.clear()
    start = clock(device)
    learner.learn((x, y))
    seconds = clock(device) - start
    step = median_step(stepper.times, start, WARMUP)
    result = {
        "step_ms": 1e3 * step,
        "steps_per_s": 1 / step,
        "samples_per_s": world * settings["batch"] / step,
        "epoch_samples_per_s": settings["epochs"] * len(y) / seconds,
        "steps": len(stepper.times),
    }
    if world > 1:
        result |= _communication(learner.model, x, y, device, settings)
    return result


def _communication(
    model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, settings: dict[str, Any]
) -> dict[str, float]:
    """Median plain-DDP step: with the gradient all-reduce, inside DDP's ``join`` context (one
    more all-reduce per step, as the Learner trains), and under ``no_sync()``; blocks of steps
    of the three kinds alternate on the same batch."""
    parallel = data_parallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    batch = settings["batch"]
    inputs = torch.as_tensor(x[:batch], device=device).float() / 16
    targets = torch.as_tensor(y[:batch], device=device).long()
    kinds = {  # in this order: a join block followed by a no_sync one aborts torch 2.14 at exit
        "no_sync_step_ms": parallel.no_sync,
        "ddp_step_ms": contextlib.nullcontext,
        "joined_step_ms": lambda: Join([parallel]),
    }
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for block in range(settings["comm_steps"] // BLOCK + 1):
        for name, context in kinds.items():
            with context():
                for step in range(BLOCK):
                    start = clock(device)
                    loss = nn.functional.cross_entropy(parallel(inputs), targets)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if block or step >= WARMUP:
                        times[name].append(clock(device) - start)
    result = {name: 1e3 * statistics.median(values) for name, values in times.items()}
    result["communication_share"] = 1 - result["no_sync_step_ms"] / result["ddp_step_ms"]
    result["join_share"] = 1 - result["ddp_step_ms"] / result["joined_step_ms"]
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return the JSON document it writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--copies", type=int, default=2, help="copies of the experience")
    parser.add_argument("--batch", type=int, default=32, help="rows per rank per step")
    parser.add_argument("--comm-steps", type=int, default=60, help="steps of each kind")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (nccl)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1 epoch, 20 steps")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs, args.copies, args.comm_steps = 1, 1, 1, 20
    runs: dict[int, list[dict[str, float]]] = {world: [] for world in args.worlds}
    started = time.perf_counter()
    for repeat in range(args.repeats):
        order = args.worlds if repeat % 2 == 0 else args.worlds[::-1]
        for world in order:
            runs[world].append(measure_world(world, args))
    summary = {
        world: {key: float(statistics.median(r[key] for r in results)) for key in results[0]}
        for world, results in runs.items()
    }
    base = summary[min(summary)]["samples_per_s"]
    for values in summary.values():
        values["speedup"] = values["samples_per_s"] / base
    print(format_table(*_table(summary)))
    document = {
        "command": "python -m benchmarks.ddp_scaling " + shlex.join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "settings": vars(args) | {"out": str(args.out)},
        "seconds": time.perf_counter() - started,
        "summary": {str(world): values for world, values in summary.items()},
        "runs": {str(world): results for world, results in runs.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


def _table(summary: dict[int, dict[str, float]]) -> tuple[list[str], list[list[Any]]]:
    columns = {
        "step_ms": "step ms",
        "steps_per_s": "steps/s",
        "samples_per_s": "samples/s",
        "epoch_samples_per_s": "epoch samples/s",
        "speedup": "speedup",
        "ddp_step_ms": "DDP step ms",
        "joined_step_ms": "+join ms",
        "no_sync_step_ms": "no_sync ms",
        "communication_share": "comm share",
        "join_share": "join share",
    }
    rows = [[world, *(values.get(key, "") for key in columns)] for world, values in summary.items()]
    return ["processes", *columns.values()], rows


if __name__ == "__main__":
    main()
