"""Training-step time of a CIFAR ResNet32 on CPU: a plain torch loop, our learner, and MEMO.

Random ``uint8`` 3x32x32 images and labels, batch 128, SGD with momentum, on CPU:

1. **plain** -- a hand-written loop: cast, forward, cross-entropy, backward, step.
2. **learner** -- :class:`strategies.Finetune` through :class:`continual.Learner` with a byte
   budget (accounting on: the model and optimizer are tracked, the budget is checked before and
   after the experience, and a snapshot is recorded).
3. **memo** -- :class:`strategies.memo.MEMO` on its third task (three specialized stage-3
   blocks on the shared stem and stages 1-2), with its exemplar replay and auxiliary loss.
4. **plain_channels_last** -- the plain loop with the model and the inputs in the
   channels-last memory format (what the layout alone buys a single ResNet32; MEMO's network
   runs its inputs channels-last).
5. **memo_frozen_trunk** -- MEMO with ``train_base=False`` (the generalized blocks frozen after
   the first task, so no gradient flows through the frozen specialized blocks).

Steps are timed between consecutive ``after_batch`` calls (the plain loop the same way), the
first ``warmup`` steps dropped; the table reports medians and the ratio to the plain loop.
``learner (incl. experience overhead)`` spreads the whole experience time, accounting included,
over its steps. MEMO's batches carry replayed exemplars on top of the ``batch_size`` new
samples, so its time is also compared per sample (``per_sample_ratio_to_plain``).

The variants run one after another, each for a whole experience, so on a shared machine a
change of load between them moves their ratios. :func:`interleaved_steps` therefore also steps
the plain network and MEMO's network (task 3, the same replayed samples per batch, the
auxiliary loss; no learner) alternately in one process and reports the median of the per-sample
ratios of neighbouring steps (``interleaved``).

The targets: the learner with accounting within 5% of the plain loop (``target_met``), and MEMO
within 5% of the plain loop per sample (``memo_target_met``, on the interleaved ratio when it
was measured, else on the variants' ratio).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.cil_step_speed
    .venv/bin/python -m benchmarks.cil_step_speed --quick --out /tmp/speed.json
    .venv/bin/python -m benchmarks.cil_step_speed --variants plain,memo --repeats 5
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

__all__ = [
    "VARIANTS",
    "StepClock",
    "clock",
    "image_experience",
    "interleaved_steps",
    "main",
    "median_step",
    "summary_table",
    "time_steps",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cil_step_speed.json"
TARGET_RATIO = 1.05
MEMO_TARGET_RATIO = 1.05
N_CLASSES = 100
VARIANTS = ("plain", "learner", "memo", "plain_channels_last", "memo_frozen_trunk")
_KEYS = ("median_step_s", "experience_s_per_step", "replayed_per_step")


class StepClock(Plugin):
    """Record the time of every ``after_batch`` call (the device synchronised first, so that
    a GPU step is timed when it ends, not when it is queued)."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.times: list[float] = []

    def after_batch(self, learner: Learner) -> None:
        self.times.append(clock(self.device))


def clock(device: torch.device | None = None) -> float:
    """``time.perf_counter()`` after the CUDA ``device``'s queued work has finished."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def image_experience(index: int, n: int, seed: int) -> SimpleNamespace:
    """``n`` random ``uint8`` CIFAR-sized images of the ten classes of task ``index``."""
    rng = np.random.default_rng(seed + index)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    classes = np.arange(10 * index, 10 * index + 10)
    return SimpleNamespace(index=index, train=(x, rng.choice(classes, size=n)), test=None)


def median_step(times: list[float], start: float, warmup: int) -> float:
    """Median seconds between consecutive ``times`` (from ``start``), ``warmup`` dropped."""
    steps = np.diff([start, *times])[warmup:]
    return float(statistics.median(steps))


def time_steps(
    variant: str, *, steps: int, warmup: int, batch_size: int, seed: int = 0
) -> dict[str, float]:
    """Median seconds per step of ``variant`` (one of :data:`VARIANTS`).

    Returns ``median_step_s``, ``experience_s_per_step`` (the whole experience over its
    steps) and ``replayed_per_step`` (stored samples added to each batch).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    torch.manual_seed(seed)
    model = CifarResNet(32, n_classes=N_CLASSES)
    n = batch_size * (steps + warmup)
    memo = variant.startswith("memo")
    experience = image_experience(2 if memo else 0, n, seed)
    if variant.startswith("plain"):
        channels_last = variant == "plain_channels_last"
        return _time_plain(model, experience, batch_size, warmup, seed, channels_last)
    clock = StepClock()
    plugin = MEMO(train_base=variant == "memo", seed=seed) if memo else Finetune()
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
    if memo:
        for index in range(2):  # grow to the third task on two one-batch experiences
            learner.train_experience(image_experience(index, batch_size, seed))
        extra = round(batch_size * len(plugin.store) / n)
    clock.times.clear()
    start = time.perf_counter()
    learner.train_experience(experience)
    total = time.perf_counter() - start
    return {
        "median_step_s": median_step(clock.times, start, warmup),
        "experience_s_per_step": total / (steps + warmup),
        "replayed_per_step": float(extra),
    }


def _time_plain(
    model: nn.Module,
    experience: SimpleNamespace,
    batch_size: int,
    warmup: int,
    seed: int,
    channels_last: bool = False,
) -> dict[str, float]:
    x, y = (torch.from_numpy(np.asarray(a)) for a in experience.train)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    times: list[float] = []
    start = time.perf_counter()
    for index in torch.randperm(len(x), generator=generator).split(batch_size):
        inputs = (x[index].to(torch.float32) * (1 / 255)).contiguous(memory_format=layout)
        loss = nn.functional.cross_entropy(model(inputs), y[index].long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter())
    total = time.perf_counter() - start
    return {
        "median_step_s": median_step(times, start, warmup),
        "experience_s_per_step": total / len(times),
        "replayed_per_step": 0.0,
    }


def interleaved_steps(
    *, rounds: int, batch_size: int, replayed: int, seed: int = 0
) -> dict[str, Any]:
    """Step a plain ResNet32 and MEMO's network at task 3 alternately; per-sample ratios.

    Both train with SGD (momentum 0.9) on random images; MEMO's batches hold ``batch_size +
    replayed`` samples of its three tasks' classes and add the auxiliary loss. Each round times
    one step of each, in alternating order, after two untimed steps of each. Returns the step
    times, the medians and ``paired_per_sample_ratio_median``, the median over rounds of
    (MEMO seconds per sample) / (plain seconds per sample).

    Examples
    --------
    >>> import torch
    >>> from benchmarks.cil_step_speed import interleaved_steps
    >>> result = interleaved_steps(rounds=1, batch_size=2, replayed=1)
    >>> result["samples"], result["paired_per_sample_ratio_median"] > 0
    ({'plain': 2, 'memo': 3}, True)
    """
    torch.manual_seed(seed)
    plain = CifarResNet(32, n_classes=N_CLASSES).train()
    torch.manual_seed(seed)
    net = MEMO(seed=seed).expand(CifarResNet(32, n_classes=N_CLASSES))
    for task in range(3):
        net.grow(list(range(10 * task, 10 * task + 10)))
    net.train()
    models = {"plain": plain, "memo": net}
    samples = {"plain": batch_size, "memo": batch_size + replayed}
    optimizers = {
        name: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
        for name, m in models.items()
    }
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (samples["memo"], 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 30, (samples["memo"],), generator=generator)

    def step(name: str) -> float:
        begin = time.perf_counter()
        n = samples[name]
        loss = nn.functional.cross_entropy(models[name](x[:n].to(torch.float32) / 255), y[:n])
        if name == "memo":
            loss = loss + net.aux_loss(y[:n])
        optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[name].step()
        net.last_features = None
        return time.perf_counter() - begin

    for name in ("plain", "memo", "plain", "memo"):
        step(name)
    times: dict[str, list[float]] = {"plain": [], "memo": []}
    for index in range(rounds):
        for name in ("plain", "memo") if index % 2 == 0 else ("memo", "plain"):
            times[name].append(step(name))
    ratios = [
        (m / samples["memo"]) / (p / samples["plain"])
        for p, m in zip(times["plain"], times["memo"])
    ]
    return {
        "samples": samples,
        "step_s": times,
        "median_step_s": {name: float(statistics.median(t)) for name, t in times.items()},
        "paired_per_sample_ratio_median": float(statistics.median(ratios)),
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
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, 'plain' first (default: all of {','.join(VARIANTS)})",
    )
    parser.add_argument(
        "--interleaved-rounds",
        type=int,
        default=10,
        help="rounds of plain and MEMO network steps taken alternately (0: skip)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.batch_size, args.repeats = 2, 1, 8, 1
        args.interleaved_rounds = min(args.interleaved_rounds, 2)
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if not variants or variants[0] != "plain" or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants must start with 'plain' and name only {VARIANTS}")
    torch.set_num_threads(args.threads)
    raw: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            raw[variant].append(
                time_steps(
                    variant, steps=args.steps, warmup=args.warmup, batch_size=args.batch_size
                )
            )
    summary = {
        v: {key: float(statistics.median(r[key] for r in raw[v])) for key in _KEYS}
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
        summary[v]["samples_per_step"] = args.batch_size + summary[v]["replayed_per_step"]
        summary[v]["per_sample_ratio_to_plain"] = _per_sample(
            summary[v], args.batch_size
        ) / _per_sample(summary["plain"], args.batch_size)
        summary[v]["paired_per_sample_ratio_median"] = float(
            statistics.median(
                _per_sample(r, args.batch_size) / _per_sample(p, args.batch_size)
                for r, p in zip(raw[v], raw["plain"])
            )
        )
    interleaved = None
    if args.interleaved_rounds > 0:
        # MEMO's replay count as measured, else about the fifth of a batch it is at batch 128
        replayed = summary["memo"]["replayed_per_step"] if "memo" in summary else None
        interleaved = interleaved_steps(
            rounds=args.interleaved_rounds,
            batch_size=args.batch_size,
            replayed=round(args.batch_size * 0.2 if replayed is None else replayed),
        )
    memo_ratio = (
        interleaved["paired_per_sample_ratio_median"]
        if interleaved is not None
        else summary["memo"]["per_sample_ratio_to_plain"]
        if "memo" in summary
        else None
    )
    document = {
        "benchmark": "cil_step_speed",
        "quick": args.quick,
        "command": "python -m benchmarks.cil_step_speed "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "machine": machine_info(),
        "settings": {
            k: getattr(args, k)
            for k in ("steps", "warmup", "batch_size", "repeats", "threads", "interleaved_rounds")
        },
        "summary": summary,
        "raw": raw,
        "target_ratio": TARGET_RATIO,
        "target_met": (
            summary["learner"]["ratio_to_plain"] <= TARGET_RATIO if "learner" in summary else None
        ),
        "memo_target_ratio": MEMO_TARGET_RATIO,
        "memo_target_met": None if memo_ratio is None else memo_ratio <= MEMO_TARGET_RATIO,
        "interleaved": interleaved,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    print(summary_table(summary))
    if interleaved is not None:
        steps = interleaved["median_step_s"]
        print(
            f"interleaved ({args.interleaved_rounds} rounds): plain {steps['plain']:.4f} s, "
            f"memo {steps['memo']:.4f} s per step; MEMO per sample / plain per sample "
            f"{interleaved['paired_per_sample_ratio_median']:.3f} (target {MEMO_TARGET_RATIO})"
        )
    return document


def _per_sample(result: dict[str, float], batch_size: int) -> float:
    """Seconds per sample: a step's new samples plus the stored ones replayed with them."""
    return result["median_step_s"] / (batch_size + result["replayed_per_step"])


def summary_table(summary: dict[str, dict[str, float]]) -> str:
    """Aligned table of median step times and ratios to the plain loop (per step and per sample)."""
    header = [
        "variant", "median step (s)", "ratio", "paired ratio", "samples", "per-sample ratio",
        "paired per-sample", "per step incl. experience (s)", "ratio to plain",
    ]  # fmt: skip
    keys = ["median_step_s", "ratio_to_plain", "paired_ratio_median", "samples_per_step",
            "per_sample_ratio_to_plain", "paired_per_sample_ratio_median",
            "experience_s_per_step", "experience_ratio_to_plain"]  # fmt: skip
    rows = [[variant, *(s[key] for key in keys)] for variant, s in summary.items()]
    formats = {
        "median step (s)": ".4f", "samples": ".0f", "per step incl. experience (s)": ".4f"
    }  # fmt: skip
    return format_table(header, rows, formats=formats)


if __name__ == "__main__":
    main()
