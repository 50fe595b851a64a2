"""The cost of a transactional ``partial_fit``: time as a stream grows, and the rollback's memory.

1. **Time per call, early against late.** A ReplayClassifier (the README's settings: MLP 128,
   Adam, 20 epochs, a 150 KB budget) learns a stream of 16-digit experiences. A "late" estimator
   is first advanced to call ``late``; then an "early" estimator at call ``early`` and the late
   one alternate, call for call, so that both windows see the same machine. The table gives the
   medians and the median of the paired ratios late / early (target: at most 1.2). Before this
   change the deep-copied history made late calls slower, 16 ms -> 51 ms over 2,000 calls.
2. **Extra peak memory per rollback mode**, each mode in a fresh process whose allocator
   returns every large block to the system when it is freed (``MALLOC_MMAP_THRESHOLD_``), so
   that resident memory follows what is allocated. A ReplayClassifier with an MLP of two 512-wide
   layers learns class-incremental experiences of random uint8 3x32x32 images under a 30 MB
   budget (weights, Adam state, exemplars). For each experience after the first, the process's
   peak resident memory is reset (``/proc/self/clear_refs``) and read again after the call: the
   extra peak is ``VmHWM`` after minus ``VmRSS`` before. The table compares each mode's median
   with ``rollback="off"`` (no backup) and with the ledger's own transient bytes (the backup).

With ``--baseline TREE`` (a checkout of another version, e.g. ``git worktree add /tmp/old
52e3f41``), the early/late timing and the memory of ``rollback="memory"`` are also measured on
that tree's code and on this tree's, each in a fresh subprocess, and printed side by side.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.partial_fit_overhead
    .venv/bin/python -m benchmarks.partial_fit_overhead --baseline /tmp/old --late 2000
    .venv/bin/python -m benchmarks.partial_fit_overhead --quick --out /tmp/overhead.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits

# Only numpy, torch, scikit-learn and the estimator at top level: the --worker mode runs this
# file against another tree's code (--baseline), which may lack the rest of this library.
from strategies import ReplayClassifier

__all__ = ["main", "measure_memory", "time_early_and_late", "time_modes"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "partial_fit_overhead.json"
TARGET_RATIO = 1.2
MODES = ("memory", "disk", "off")


def _replay(rollback: str, **params: Any) -> ReplayClassifier:
    """A ReplayClassifier; ``rollback`` is dropped for code that predates the parameter."""
    if "rollback" in inspect.signature(ReplayClassifier).parameters:
        params["rollback"] = rollback
    return ReplayClassifier(**params)


def _digit_batches(size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order].astype(np.uint8), y[order]
    return [(X[i : i + size], y[i : i + size]) for i in range(0, len(y) - size + 1, size)]


def _timed_call(estimator: ReplayClassifier, batch: tuple[np.ndarray, np.ndarray]) -> float:
    start = time.perf_counter()
    estimator.partial_fit(*batch, classes=range(10))
    return time.perf_counter() - start


def time_early_and_late(
    early: int, late: int, window: int, *, mode: str = "memory", batch: int = 16
) -> dict[str, Any]:
    """Per-call seconds of one estimator at calls ``early..early+window`` and another at
    ``late..late+window``, the two alternating call for call."""
    batches = _digit_batches(batch)
    estimators = {
        name: _replay(mode, budget="150 KB", input_scale=1 / 16, random_state=0)
        for name in ("early", "late")
    }
    calls = {"early": 0, "late": 0}

    def step(name: str) -> float:
        seconds = _timed_call(estimators[name], batches[calls[name] % len(batches)])
        calls[name] += 1
        return seconds

    while calls["late"] < late:
        step("late")
    while calls["early"] < early:
        step("early")
    times: dict[str, list[float]] = {"early": [], "late": []}
    for k in range(window):
        order = ("early", "late") if k % 2 == 0 else ("late", "early")
        for name in order:
            times[name].append(step(name))
    ratios = [b / a for a, b in zip(times["early"], times["late"])]
    accountant = estimators["late"].accountant_
    return {
        "mode": mode,
        "early_call": early,
        "late_call": late,
        "median_early_s": statistics.median(times["early"]),
        "median_late_s": statistics.median(times["late"]),
        "median_paired_ratio": statistics.median(ratios),
        "late_history_length": len(accountant.history),
        "late_snapshots": getattr(accountant, "n_snapshots", len(accountant.history)),
    }


def time_modes(calls: int, window: int, *, batch: int = 16) -> dict[str, Any]:
    """Per-call seconds of one estimator per rollback mode at calls ``calls..calls+window``,
    the three alternating call for call (in a rotating order)."""
    batches = _digit_batches(batch)
    estimators = {
        mode: _replay(mode, budget="150 KB", input_scale=1 / 16, random_state=0) for mode in MODES
    }
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for call in range(calls + window):
        rotation = MODES[call % 3 :] + MODES[: call % 3]
        for mode in rotation:
            seconds = _timed_call(estimators[mode], batches[call % len(batches)])
            if call >= calls:
                times[mode].append(seconds)
    off = times["off"]
    return {
        mode: {
            "median_s": statistics.median(values),
            "median_ratio_to_off": statistics.median(v / o for v, o in zip(values, off)),
        }
        for mode, values in times.items()
    }


def _memory_kb() -> tuple[int, int]:
    status = Path("/proc/self/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    resident = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return peak, resident


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def measure_memory(
    mode: str, *, n_experiences: int, per_class: int, hidden: int, budget: str
) -> dict[str, Any]:
    """Extra peak resident memory of each call after the first, and the ledger's view."""
    rng = np.random.default_rng(0)
    classes = np.arange(10)
    estimator = _replay(
        mode, budget=budget, hidden_sizes=(hidden, hidden), epochs=1, batch_size=128,
        input_scale=1 / 255, random_state=0,
    )  # fmt: skip
    extra, transient = [], []
    for task in range(n_experiences):
        labels = np.repeat(classes[2 * (task % 5) : 2 * (task % 5) + 2], per_class)
        images = rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)
        _reset_peak()
        _, resident = _memory_kb()
        estimator.partial_fit(images, labels, classes=classes)
        peak, _ = _memory_kb()
        if task:
            extra.append((peak - resident) * 1024)
            # the snapshot taken inside the call, while the backup was alive
            transient.append(getattr(estimator.accountant_.history[-1].ledger, "transient", 0))
    ledger = estimator.accountant_.ledger()
    return {
        "mode": mode,
        "total_bytes": ledger.total,
        "accounts": ledger.accounts,
        "ledger_transient_bytes": int(statistics.median(transient)),
        "median_extra_peak_bytes": int(statistics.median(extra)),
        "extra_peak_bytes": extra,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the measurements, print the tables and write the JSON; return the results."""
    from benchmarks.machine import machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--early", type=int, default=100)
    parser.add_argument("--late", type=int, default=5000)
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--baseline", type=Path, help="another tree to measure beside this one")
    parser.add_argument("--quick", action="store_true", help="a tiny run, for tests")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.early, args.late, args.window = 3, 12, 4
        memory = {"n_experiences": 3, "per_class": 50, "hidden": 64, "budget": "4 MB"}
    else:
        memory = {"n_experiences": 6, "per_class": 500, "hidden": 512, "budget": "30 MB"}
    timing = time_early_and_late(args.early, args.late, args.window)
    modes = time_modes(args.early, args.window)
    this_tree = Path(__file__).resolve().parents[1]
    memories = [_in_tree(this_tree, {"mode": mode, "memory": memory}) for mode in MODES]
    off = memories[-1]["median_extra_peak_bytes"]
    results = {
        "command": shlex.join(
            [sys.executable, "-m", "benchmarks.partial_fit_overhead", *(argv or sys.argv[1:])]
        ),
        "machine": machine_info(),
        "settings": {"early": args.early, "late": args.late, "window": args.window, **memory},
        "timing": timing,
        "modes": modes,
        "memory": memories,
        "ratio_late_over_early": timing["median_paired_ratio"],
        "target_met": timing["median_paired_ratio"] <= TARGET_RATIO,
    }
    print(_timing_table(timing, modes))
    print()
    print(_memory_table(memories, off))
    if args.baseline is not None:
        work = {"early": args.early, "late": args.late, "window": args.window, "memory": memory}
        results["baseline"] = {"tree": str(args.baseline), **_in_tree(args.baseline, work)}
        results["baseline"]["this_tree"] = _in_tree(Path(__file__).resolve().parents[1], work)
        print()
        print(_baseline_table(results["baseline"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


def _worker(work: dict[str, Any]) -> dict[str, Any]:
    """One rollback mode's memory (``work["mode"]``), or the measurements compared with a
    baseline (early/late timing and the default mode's memory), in this process."""
    if "mode" in work:
        return measure_memory(work["mode"], **work["memory"])
    return {
        "source": str(Path(inspect.getfile(ReplayClassifier)).parent.parent),
        "timing": time_early_and_late(work["early"], work["late"], work["window"]),
        "memory": measure_memory("memory", **work["memory"]),
    }


def _in_tree(tree: Path, work: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`_worker` on a tree's code, in a fresh process (memory measurements depend
    on what the allocator already holds, so every one starts from a new process)."""
    # glibc otherwise keeps freed blocks resident and reuses them, hiding allocations
    env = {**os.environ, "PYTHONPATH": str(tree.resolve()), "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(work)],
        env=env, cwd=tree, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _baseline_table(baseline: dict[str, Any]) -> str:
    from continual.tables import format_table

    header = ["code", "early ms", "late ms", "late/early", "stored total", "extra peak"]
    rows = []
    for name, result in (("baseline", baseline), ("this tree", baseline["this_tree"])):
        timing, memory = result["timing"], result["memory"]
        rows.append([
            f"{name} ({result['source']})", 1e3 * timing["median_early_s"],
            1e3 * timing["median_late_s"], timing["median_paired_ratio"], memory["total_bytes"],
            memory["median_extra_peak_bytes"],
        ])  # fmt: skip
    calls = f"calls {baseline['timing']['early_call']} and {baseline['timing']['late_call']}"
    formats = {"early ms": ".2f", "late ms": ".2f", "late/early": ".3f"}
    return f"Against the baseline tree ({calls}; memory: rollback as shipped)\n" + format_table(
        header, rows, formats=formats
    )


def _timing_table(timing: dict[str, Any], modes: dict[str, Any]) -> str:
    from continual.tables import format_table

    header = ["early call", "late call", "early ms", "late ms", "late/early"]
    row = [timing["early_call"], timing["late_call"], 1e3 * timing["median_early_s"],
           1e3 * timing["median_late_s"], timing["median_paired_ratio"]]  # fmt: skip
    formats = {"early ms": ".2f", "late ms": ".2f", "late/early": ".3f"}
    lines = ["Time per partial_fit, rollback='memory' (medians; late/early: of paired ratios)"]
    lines.append(format_table(header, [row], formats=formats))
    lines += [
        "",
        f"Time per partial_fit by rollback mode at call {timing['early_call']} (alternating)",
    ]
    rows = [[mode, 1e3 * m["median_s"], m["median_ratio_to_off"]] for mode, m in modes.items()]
    formats = {"ms": ".2f", "ratio to off": ".3f"}
    lines.append(format_table(["rollback", "ms", "ratio to off"], rows, formats=formats))
    return "\n".join(lines)


def _memory_table(memories: list[dict[str, Any]], off: int) -> str:
    from continual.tables import format_table

    header = ["rollback", "stored total", "ledger transient", "extra peak", "extra over off"]
    rows = [
        [m["mode"], m["total_bytes"], m["ledger_transient_bytes"],
         m["median_extra_peak_bytes"], m["median_extra_peak_bytes"] - off]
        for m in memories
    ]  # fmt: skip
    title = "Extra peak resident memory of a call (bytes, median over experiences 2..n)"
    return title + "\n" + format_table(header, rows)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        torch.set_num_threads(1)
        print(json.dumps(_worker(json.loads(sys.argv[2]))))
    else:
        main()
