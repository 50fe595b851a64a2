"""``Learner(compile=True)`` against eager on the CPU: the first experience (compile time
included) and the steady step time afterwards.

The digits conv net (:class:`strategies.DigitsConvNet`, width 16) trains with SGD, batch 64, on
the first experience of split digits; then a second experience of the same shapes is timed
per step. Eager and compiled learners alternate, ``--repeats`` times; the table gives medians
and compiled/eager ratios (below 1: compiled is faster).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.learner_compile
    .venv/bin/python -m benchmarks.learner_compile --quick --out /tmp/compile.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.cil_step_speed import StepClock
from benchmarks.machine import machine_info
from continual import Learner
from continual.tables import format_table
from strategies import DigitsConvNet
from streams import split_digits

__all__ = ["main", "time_learner"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "learner_compile.json"


def time_learner(
    compiled: bool, epochs: int, seed: int = 0, backend: str = "inductor"
) -> dict[str, float]:
    """Seconds of the first experience, and the median step of the second."""
    stream = split_digits(5, seed=seed)
    torch.manual_seed(seed)
    clock = StepClock()
    learner = Learner(DigitsConvNet(10, width=16), plugins=[clock], epochs=epochs,
                      batch_size=64, input_scale=1 / 16,
                      compile={"backend": backend} if compiled else False)  # fmt: skip
    start = time.perf_counter()
    learner.train_experience(stream[0])
    first = time.perf_counter() - start
    clock.times.clear()
    start = time.perf_counter()
    learner.train_experience(stream[1])
    steps = np.diff([start, *clock.times])[1:]
    return {"first_experience_s": first, "median_step_ms": 1e3 * float(statistics.median(steps))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return the JSON document it writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1 epoch")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs = 1, 1
    torch.set_num_threads(args.threads)
    runs: dict[str, list[dict[str, float]]] = {"eager": [], "compiled": []}
    for repeat in range(args.repeats):
        order = ("eager", "compiled") if repeat % 2 == 0 else ("compiled", "eager")
        for name in order:
            runs[name].append(time_learner(name == "compiled", args.epochs, backend=args.backend))
    keys = ("first_experience_s", "median_step_ms")
    summary = {
        name: {key: float(statistics.median(r[key] for r in results)) for key in keys}
        for name, results in runs.items()
    }
    ratios = {key: summary["compiled"][key] / summary["eager"][key] for key in keys}
    rows = [[name, *summary[name].values()] for name in summary]
    rows.append(["compiled / eager", *ratios.values()])
    print(format_table(["learner", "first experience s", "median step ms"], rows))
    document = {
        "command": "python -m benchmarks.learner_compile " + shlex.join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "settings": vars(args) | {"out": str(args.out)},
        "summary": summary,
        "ratios": ratios,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


if __name__ == "__main__":
    main()
