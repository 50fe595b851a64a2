"""Training-step time of a CIFAR ResNet32 on CPU: a plain torch loop, our learner, and MEMO.

Random ``uint8`` 3x32x32 images and labels, batch 128, SGD with momentum, on CPU:

1. **plain** -- a hand-written loop: cast, forward, cross-entropy, backward, step.
2. **learner** -- :class:`strategies.Finetune` through :class:`continual.Learner` with a byte
   budget (accounting on: the model and optimizer are tracked, the budget is checked before and
   after the experience, and a snapshot is recorded).
3. **memo** -- :class:`strategies.memo.MEMO` on its third task (three specialized stage-3
   blocks on the shared stem and stages 1-2), with its exemplar replay and auxiliary loss.

Steps are timed between consecutive ``after_batch`` calls (the plain loop the same way), the
first ``warmup`` steps dropped; the table reports medians and the ratio to the plain loop.
``learner (incl. experience overhead)`` spreads the whole experience time, accounting included,
over its steps. The target: the learner with accounting within 5% of the plain loop.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.cil_step_speed
    .venv/bin/python -m benchmarks.cil_step_speed --quick --out /tmp/speed.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks.machine import machine_info
from continual import Learner, MemoryAccountant, Plugin
from continual.tables import format_table
from strategies.finetune import Finetune
from strategies.memo import MEMO
from strategies.resnet import CifarResNet

__all__ = ["main", "time_steps"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cil_step_speed.json"
TARGET_RATIO = 1.05
N_CLASSES = 100


class _StepClock(Plugin):
    """Record the time of every ``after_batch`` call."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def after_batch(self, learner: Learner) -> None:
        self.times.append(time.perf_counter())


def _experience(index: int, n: int, seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed + index)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    classes = np.arange(10 * index, 10 * index + 10)
    return SimpleNamespace(index=index, train=(x, rng.choice(classes, size=n)), test=None)


def _median_step(times: list[float], start: float, warmup: int) -> float:
    steps = np.diff([start, *times])[warmup:]
    return float(statistics.median(steps))


def time_steps(
    variant: str, *, steps: int, warmup: int, batch_size: int, seed: int = 0
) -> dict[str, float]:
    """Median seconds per step of ``variant`` (``"plain"``, ``"learner"`` or ``"memo"``)."""
    torch.manual_seed(seed)
    model = CifarResNet(32, n_classes=N_CLASSES)
    n = batch_size * (steps + warmup)
    experience = _experience(2 if variant == "memo" else 0, n, seed)
    if variant == "plain":
        return _time_plain(model, experience, batch_size, warmup, seed)
    clock = _StepClock()
    plugin = MEMO(seed=seed) if variant == "memo" else Finetune()
    learner = Learner(
        model,
        plugins=[plugin, clock],
        accountant=MemoryAccountant("1 GB"),
        optimizer="sgd",
        lr=0.01,
        batch_size=batch_size,
        input_scale=1 / 255,
        seed=seed,
    )
    extra = 0.0
    if variant == "memo":
        for index in range(2):  # grow to the third task on two one-batch experiences
            learner.train_experience(_experience(index, batch_size, seed))
        extra = round(batch_size * len(plugin.store) / n)
    clock.times.clear()
    start = time.perf_counter()
    learner.train_experience(experience)
    total = time.perf_counter() - start
    return {
        "median_step_s": _median_step(clock.times, start, warmup),
        "experience_s_per_step": total / (steps + warmup),
        "replayed_per_step": float(extra),
    }


def _time_plain(
    model: nn.Module, experience: SimpleNamespace, batch_size: int, warmup: int, seed: int
) -> dict[str, float]:
    x, y = (torch.from_numpy(np.asarray(a)) for a in experience.train)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    times: list[float] = []
    start = time.perf_counter()
    for index in torch.randperm(len(x), generator=generator).split(batch_size):
        inputs = x[index].to(torch.float32) * (1 / 255)
        loss = nn.functional.cross_entropy(model(inputs), y[index].long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter())
    total = time.perf_counter() - start
    return {
        "median_step_s": _median_step(times, start, warmup),
        "experience_s_per_step": total / len(times),
        "replayed_per_step": 0.0,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return the JSON document it writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 8, 2 steps (smoke run)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.batch_size, args.repeats = 2, 1, 8, 1
    torch.set_num_threads(args.threads)
    variants = ("plain", "learner", "memo")
    raw: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            raw[variant].append(
                time_steps(
                    variant, steps=args.steps, warmup=args.warmup, batch_size=args.batch_size
                )
            )
    summary = {
        v: {
            key: float(statistics.median(r[key] for r in raw[v]))
            for key in ("median_step_s", "experience_s_per_step", "replayed_per_step")
        }
        for v in variants
    }
    plain = summary["plain"]["median_step_s"]
    for v in variants:
        summary[v]["ratio_to_plain"] = summary[v]["median_step_s"] / plain
        summary[v]["paired_ratio_median"] = float(
            statistics.median(
                r["median_step_s"] / p["median_step_s"] for r, p in zip(raw[v], raw["plain"])
            )
        )
        summary[v]["experience_ratio_to_plain"] = (
            summary[v]["experience_s_per_step"] / summary["plain"]["experience_s_per_step"]
        )
    document = {
        "benchmark": "cil_step_speed",
        "quick": args.quick,
        "command": "python -m benchmarks.cil_step_speed "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "machine": machine_info(),
        "settings": {
            k: getattr(args, k) for k in ("steps", "warmup", "batch_size", "repeats", "threads")
        },
        "summary": summary,
        "raw": raw,
        "target_ratio": TARGET_RATIO,
        "target_met": summary["learner"]["ratio_to_plain"] <= TARGET_RATIO,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    print(summary_table(summary))
    return document


def summary_table(summary: dict[str, dict[str, float]]) -> str:
    """Aligned table of median step times and ratios to the plain loop."""
    header = [
        "variant", "median step (s)", "ratio", "paired ratio", "per step incl. experience (s)",
        "ratio to plain",
    ]  # fmt: skip
    keys = ["median_step_s", "ratio_to_plain", "paired_ratio_median", "experience_s_per_step",
            "experience_ratio_to_plain"]  # fmt: skip
    rows = [[variant, *(s[key] for key in keys)] for variant, s in summary.items()]
    formats = {"median step (s)": ".4f", "per step incl. experience (s)": ".4f"}
    return format_table(header, rows, formats=formats)


if __name__ == "__main__":
    main()
