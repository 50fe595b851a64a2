"""How much time the memory accounting costs: ``total()`` at scale and per training step.

Two measurements, both reported as medians over interleaved repeats:

1. **total()** -- the time of :meth:`continual.MemoryAccountant.total` on a model of 1,000
   parameter tensors (an ``nn.ModuleList`` of 500 ``nn.Linear(8, 8)`` layers) plus a
   10,000-sample :class:`continual.ExemplarStore` of ``uint8`` 1x8x8 images, tracked as two
   accounts, and again with the model's SGD optimizer (1,000 momentum buffers) as a third account.
2. **step overhead** -- the digits experiment (``split_digits(5)``, ``DigitsConvNet``, batch 32,
   :class:`strategies.Replay` under a ``"200 KB"`` budget). The learner accounts once per
   experience (``_sync_accounts`` and ``check`` before training, ``_sync_accounts`` and a checked
   ``snapshot`` after it) and Replay sizes its store once (``room_for``). Each repeat builds two
   identically seeded learners and times ``train_experience`` on experiences 1..4 (experience 0,
   untimed, fills the replay store):

   (a) the accounting as shipped;
   (b) the accounting replaced by no-ops: a learner whose ``_sync_accounts`` does nothing, an
       accountant whose ``ledger``/``check``/``snapshot``/``room_for`` answer from one
       precomputed ledger, which gives Replay the same capacity as in (a), so both variants do
       identical training work (the script checks that the final weights are equal).

   The order of (a) and (b) alternates between repeats. Reported: median experience times,
   per-step overhead ``(a - b) / n_steps``, the ratio ``(a - b) / b``, the median of the paired
   per-repeat ratios, and, as a low-noise cross-check, the time of the accounting calls of one
   experience run in isolation on the trained learner.

PyTorch runs on one thread unless ``--threads`` says otherwise: on a small shared machine more
threads than free cores can make the training step many times slower, and noisier.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.accountant_overhead
    .venv/bin/python -m benchmarks.accountant_overhead --repeats 31 --out /tmp/overhead.json
    .venv/bin/python -m benchmarks.accountant_overhead --quick   # CI smoke run

It prints an aligned table and writes JSON (default
``benchmarks/results/accountant_overhead.json``) with the numbers, the machine and the command.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import gc
import json
import math
import shlex
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks.machine import machine_info
from continual import ExemplarStore, Learner, Ledger, MemoryAccountant
from continual.tables import format_table
from strategies import DigitsConvNet, Replay
from streams import Stream, split_digits

__all__ = ["bench_digits", "bench_total", "machine_info", "main", "report"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "accountant_overhead.json"
DEFAULT_REPEATS = 31
QUICK_REPEATS = 2
TARGET_PERCENT = 2.0
BATCH_SIZE = 32
INPUT_SCALE = 1 / 16  # digits pixels are 0..16


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (None: leave them), then restore them."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- total()
def _linear_stack(n_layers: int, seed: int) -> nn.ModuleList:
    torch.manual_seed(seed)
    return nn.ModuleList(nn.Linear(8, 8) for _ in range(n_layers))


def _stepped_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum after one step, so that every parameter has a momentum buffer."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = sum(layer(torch.ones(1, 8)).sum() for layer in model)
    loss.backward()
    optimizer.step()
    return optimizer


def _filled_store(n_samples: int, seed: int) -> ExemplarStore:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, size=(n_samples, 1, 8, 8), dtype=np.uint8)
    y = np.arange(n_samples) % 10
    store = ExemplarStore(policy="random", random_state=seed)
    return store.update(x, y, capacity_bytes=n_samples * 65)


def _count_tensors(obj: Any) -> int:
    if isinstance(obj, nn.Module):
        return len(list(obj.parameters())) + len(list(obj.buffers()))
    if isinstance(obj, torch.optim.Optimizer):
        return sum(
            isinstance(v, torch.Tensor) for state in obj.state.values() for v in state.values()
        )
    return len(obj.memory_items())


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _per_call_seconds(fn: Callable[[], Any], repeats: int, number: int) -> list[float]:
    """Seconds per call of ``fn``, one value per repeat of ``number`` calls (gc off)."""
    return [t / number for t in timeit.Timer(fn).repeat(repeat=repeats, number=number)]


def bench_total(
    repeats: int = DEFAULT_REPEATS,
    number: int = 20,
    *,
    n_layers: int = 500,
    n_samples: int = 10_000,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Time ``MemoryAccountant.total()`` on a many-tensor model plus a large exemplar store.

    Two accountants are timed, interleaved: one tracking ``"model"`` and ``"exemplars"``, one
    also tracking the model's stepped SGD optimizer as ``"optimizer"``.

    Parameters
    ----------
    repeats
        Timing repeats; medians are reported.
    number
        Calls of ``total()`` per repeat.
    n_layers
        ``nn.Linear(8, 8)`` layers of the model (two parameter tensors each).
    n_samples
        ``uint8`` 1x8x8 samples in the store.
    seed
        Seed of the model, the samples and the store.
    threads
        Torch threads during the run (restored afterwards); None leaves them as they are.

    Returns
    -------
    dict
        ``{"setups": [...]}``, one entry per accountant with its accounts (bytes and tensor
        counts), ``total_bytes``, ``n_tensors`` and ``median_s`` / ``min_s`` / ``times_s``
        per call.

    Examples
    --------
    >>> result = bench_total(repeats=2, number=1, n_layers=5, n_samples=100)
    >>> [s["name"] for s in result["setups"]]
    ['model + exemplars', 'model + exemplars + optimizer']
    >>> result["setups"][0]["total_bytes"] == 5 * (64 + 8) * 4 + 100 * 65
    True
    >>> result["setups"][1]["n_tensors"], result["setups"][1]["median_s"] > 0
    (22, True)
    """
    _check_positive(repeats=repeats, number=number, n_layers=n_layers, n_samples=n_samples)
    with _torch_threads(threads):
        return _time_total(repeats, number, n_layers, n_samples, seed)


def _time_total(
    repeats: int, number: int, n_layers: int, n_samples: int, seed: int
) -> dict[str, Any]:
    model = _linear_stack(n_layers, seed)
    components = {
        "model": model,
        "exemplars": _filled_store(n_samples, seed),
        "optimizer": _stepped_optimizer(model),
    }
    setups = {
        "model + exemplars": ("model", "exemplars"),
        "model + exemplars + optimizer": ("model", "exemplars", "optimizer"),
    }
    accountants = {}
    for name, accounts in setups.items():
        accountant = MemoryAccountant()
        for account in accounts:
            accountant.track(account, components[account])
        accountants[name] = accountant
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(repeats):
        for name, accountant in accountants.items():
            times[name] += _per_call_seconds(accountant.total, 1, number)
    results = []
    for name, accountant in accountants.items():
        ledger = accountant.ledger()
        counts = {account: _count_tensors(components[account]) for account in setups[name]}
        results.append(
            {
                "name": name,
                "accounts": {
                    a: {"bytes": b, "tensors": counts[a]} for a, b in ledger.accounts.items()
                },
                "total_bytes": ledger.total,
                "n_tensors": sum(counts.values()),
                "median_s": statistics.median(times[name]),
                "min_s": min(times[name]),
                "times_s": times[name],
            }
        )
    return {"n_layers": n_layers, "n_samples": n_samples, "number": number, "setups": results}


# --------------------------------------------------------------------------- digits
class _UnaccountedLearner(Learner):
    """A learner whose account registration does nothing (variant b)."""

    def _sync_accounts(self) -> None:
        pass


class _FrozenAccountant(MemoryAccountant):
    """An accountant that measures nothing: every query returns one precomputed ledger."""

    def __init__(self, frozen: Ledger) -> None:
        super().__init__(frozen.budget)
        self.frozen = frozen

    def ledger(self) -> Ledger:
        return self.frozen

    def check(self, context: str = "") -> Ledger:
        return self.frozen

    def snapshot(self, step: int | float) -> Ledger:
        return self.frozen

    def room_for(self, obj: Any) -> int:
        return max(0, int(self.frozen.headroom))


def _make_learner(accounting: bool, budget: str, frozen: Ledger | None, seed: int) -> Learner:
    torch.manual_seed(seed)
    model = DigitsConvNet(n_classes=10)
    kwargs: dict[str, Any] = {
        "plugins": [Replay(seed=seed)],
        "batch_size": BATCH_SIZE,
        "input_scale": INPUT_SCALE,
        "seed": seed,
    }
    if accounting:
        return Learner(model, accountant=MemoryAccountant(budget), **kwargs)
    return _UnaccountedLearner(model, accountant=_FrozenAccountant(frozen), **kwargs)


def _frozen_ledger(stream: Stream, budget: str, seed: int) -> Ledger:
    """Model and optimizer bytes after one experience: the capacity Replay sees in variant a."""
    learner = _make_learner(True, budget, None, seed)
    learner.train_experience(stream[0])
    accounts = learner.accountant.ledger().accounts
    kept = {name: accounts[name] for name in ("model", "optimizer")}
    return Ledger(kept, budget=learner.accountant.budget)


def _run_variant(
    accounting: bool, stream: Stream, budget: str, frozen: Ledger, seed: int
) -> tuple[list[float], Learner]:
    """Train experience 0 untimed, then time ``train_experience`` on each later experience."""
    learner = _make_learner(accounting, budget, frozen, seed)
    times = []
    learner.train_experience(stream[0])
    gc.collect()
    for index in range(1, len(stream)):
        start = time.perf_counter()
        learner.train_experience(stream[index])
        times.append(time.perf_counter() - start)
    return times, learner


def _accounting_calls(learner: Learner) -> None:
    """The accounting one experience does (``train_experience`` and ``Replay.after_experience``)."""
    accountant = learner.accountant
    learner._sync_accounts()
    accountant.check()
    accountant.room_for(learner.plugins[0].store)
    learner._sync_accounts()
    accountant.snapshot(-1).check()
    accountant.history.pop()


def _weights(learner: Learner) -> list[torch.Tensor]:
    return [t.detach().clone() for t in learner.model.state_dict().values()]


def _steps_per_experience(stream: Stream, batch_size: int) -> float:
    sizes = [len(stream[index].train[1]) for index in range(1, len(stream))]
    return sum(math.ceil(size / batch_size) for size in sizes) / len(sizes)


def bench_digits(
    repeats: int = DEFAULT_REPEATS,
    *,
    budget: str = "200 KB",
    n_experiences: int = 5,
    isolated_number: int = 20,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Time one experience of the digits experiment with and without the accounting.

    See the module docstring for the two variants. In each repeat both variants run once, in
    alternating order, from identically seeded learners; after variant (a) the accounting calls
    of one experience are also timed alone on its trained learner.

    Parameters
    ----------
    repeats
        Paired repeats; medians are reported.
    budget
        The byte budget of the experiment.
    n_experiences
        Experiences of ``split_digits`` (at least 2: experience 0 is the untimed warm-up).
    isolated_number
        Calls of the isolated accounting sequence per repeat.
    seed
        Seed of the class order, the model, the batch order and Replay.
    threads
        Torch threads during the run (restored afterwards); None leaves them as they are.
        More threads than free cores can make training many times slower.

    Returns
    -------
    dict
        Median experience times of both variants (``accounted_s``, ``unaccounted_s``),
        ``steps_per_experience``, ``overhead_per_experience_s``, ``overhead_per_step_s``,
        ``overhead_percent``, ``paired_overhead_percent``, ``isolated_accounting_s``,
        ``isolated_percent``, ``same_training`` and the raw per-repeat times.

    Examples
    --------
    >>> result = bench_digits(repeats=1, n_experiences=2, isolated_number=1)
    >>> result["same_training"], result["steps_per_experience"], result["accounted_s"] > 0
    (True, 21.0, True)
    """
    _check_positive(repeats=repeats, isolated_number=isolated_number)
    if isinstance(n_experiences, bool) or not isinstance(n_experiences, int) or n_experiences < 2:
        raise ValueError(f"n_experiences must be an int of at least 2, got {n_experiences!r}")
    with _torch_threads(threads):
        return _time_digits(repeats, budget, n_experiences, isolated_number, seed)


def _time_digits(
    repeats: int, budget: str, n_experiences: int, isolated_number: int, seed: int
) -> dict[str, Any]:
    stream = split_digits(n_experiences, seed=seed)
    frozen = _frozen_ledger(stream, budget, seed)
    raw: dict[str, list[float]] = {"accounted": [], "unaccounted": [], "isolated": []}
    same_training = True
    for repeat in range(repeats):
        order = (True, False) if repeat % 2 == 0 else (False, True)
        weights = {}
        for accounting in order:
            times, learner = _run_variant(accounting, stream, budget, frozen, seed)
            raw["accounted" if accounting else "unaccounted"].append(statistics.fmean(times))
            weights[accounting] = _weights(learner)
            if accounting:
                calls = _per_call_seconds(
                    functools.partial(_accounting_calls, learner), 1, isolated_number
                )
                raw["isolated"] += calls
        same_training &= all(torch.equal(a, b) for a, b in zip(weights[True], weights[False]))
    return _summarise_digits(raw, stream, budget, same_training)


def _summarise_digits(
    raw: dict[str, list[float]], stream: Stream, budget: str, same_training: bool
) -> dict[str, Any]:
    accounted = statistics.median(raw["accounted"])
    unaccounted = statistics.median(raw["unaccounted"])
    isolated = statistics.median(raw["isolated"])
    steps = _steps_per_experience(stream, BATCH_SIZE)
    paired = [100 * (a - b) / b for a, b in zip(raw["accounted"], raw["unaccounted"])]
    return {
        "budget": budget,
        "n_experiences": len(stream),
        "timed_experiences": len(stream) - 1,
        "batch_size": BATCH_SIZE,
        "steps_per_experience": steps,
        "accounted_s": accounted,
        "unaccounted_s": unaccounted,
        "overhead_per_experience_s": accounted - unaccounted,
        "overhead_per_step_s": (accounted - unaccounted) / steps,
        "overhead_percent": 100 * (accounted - unaccounted) / unaccounted,
        "paired_overhead_percent": statistics.median(paired),
        "isolated_accounting_s": isolated,
        "isolated_per_step_s": isolated / steps,
        "isolated_percent": 100 * isolated / unaccounted,
        "same_training": same_training,
        "raw": {**raw, "paired_overhead_percent": paired},
    }


# --------------------------------------------------------------------------- report
def report(result: dict[str, Any]) -> str:
    """Render a result of :func:`main` (the JSON dict) as plain aligned text.

    Examples
    --------
    >>> total = bench_total(repeats=1, number=1, n_layers=2, n_samples=10)
    >>> digits = bench_digits(repeats=1, n_experiences=2, isolated_number=1)
    >>> text = report({"total": total, "digits": digits, "repeats": 1,
    ...                      "machine": machine_info()})
    >>> "total() ms" in text and "overhead (a-b)/b" in text
    True
    """
    total, digits = result["total"], result["digits"]
    lines = [
        f"Accountant overhead: medians of {result['repeats']} repeats, "
        f"torch {result['machine']['torch']} on {result['machine']['torch_threads']} thread(s)",
        "",
        f"1. MemoryAccountant.total(): {total['n_layers']} nn.Linear(8, 8) layers and "
        f"{total['n_samples']:,} uint8 1x8x8 exemplars",
    ]
    rows = [
        [s["name"], s["n_tensors"], s["total_bytes"], 1e3 * s["median_s"]] for s in total["setups"]
    ]
    lines += [format_table(["accounts", "tensors", "bytes", "total() ms"], rows), ""]
    lines.append(
        f"2. Digits experiment: DigitsConvNet, batch {digits['batch_size']}, Replay, budget "
        f"{digits['budget']}, {digits['steps_per_experience']:g} steps per timed experience"
    )
    ms = 1e3
    rows = [
        ["(a) accounting as shipped", f"{ms * digits['accounted_s']:.2f}"],
        ["(b) accounting as no-ops", f"{ms * digits['unaccounted_s']:.2f}"],
        ["overhead a-b per experience", f"{ms * digits['overhead_per_experience_s']:.3f}"],
        ["overhead a-b per step", f"{ms * digits['overhead_per_step_s']:.4f}"],
        ["overhead (a-b)/b", None, digits["overhead_percent"]],
        ["median of paired (a-b)/b", None, digits["paired_overhead_percent"]],
        ["accounting calls alone, per exp.", f"{ms * digits['isolated_accounting_s']:.3f}"],
        ["accounting calls alone / b", None, digits["isolated_percent"]],
    ]
    lines.append(format_table(["", "ms", "%"], rows, formats={"%": ".2f"}))
    verdict = "met" if digits["overhead_percent"] < TARGET_PERCENT else "NOT met"
    lines += [
        "",
        f"identical training in (a) and (b): {digits['same_training']}",
        f"target (a-b)/b < {TARGET_PERCENT:g}%: {verdict}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative int, got {text!r}")
    return value


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time MemoryAccountant.total() and the accounting overhead per training step."
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        help=f"interleaved repeats (default {DEFAULT_REPEATS}; {QUICK_REPEATS} with --quick)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--quick", action="store_true", help="a few repeats, for a CI smoke run")
    parser.add_argument(
        "--threads",
        type=_non_negative_int,
        default=1,
        help="torch threads (default 1; 0 keeps torch's default)",
    )
    parser.add_argument("--budget", default="200 KB", help="byte budget of the digits run")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both measurements, print the table, write the JSON and return it.

    Parameters
    ----------
    argv
        Command-line arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    dict
        The JSON document that was written.
    """
    args_list = sys.argv[1:] if argv is None else list(argv)
    args = _parse_args(args_list)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    threads = args.threads or None
    with _torch_threads(threads):
        result = {
            "benchmark": "accountant_overhead",
            "command": shlex.join(["python", "-m", "benchmarks.accountant_overhead", *args_list]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "repeats": repeats,
            "quick": args.quick,
            "target_percent": TARGET_PERCENT,
            "total": bench_total(repeats, number=3 if args.quick else 20, threads=None),
            "digits": bench_digits(repeats, budget=args.budget, threads=None),
        }
    result["target_met"] = result["digits"]["overhead_percent"] < TARGET_PERCENT
    print(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
