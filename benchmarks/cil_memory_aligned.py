"""MEMO's memory-aligned class-incremental benchmark on split digits.

Wraps the Hydra experiment ``cil_memory_aligned`` (see
``continual/conf/experiment/cil_memory_aligned.yaml`` and
:func:`strategies.experiments.run_memory_aligned`): Finetune, Replay, iCaRL, DER and MEMO (and
DER / MEMO without weight alignment) on split digits, 5 experiences of 2 classes, at 5 budget
points (DER's cost at 5 conv-net widths plus 200 exemplars), for 3 seeds. It prints the
tables, writes the JSON document (default ``benchmarks/results/cil_memory_aligned.json``) and
the accuracy-versus-memory plot next to it (``cil_memory_aligned.png``).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.cil_memory_aligned
    .venv/bin/python -m benchmarks.cil_memory_aligned --quick --out /tmp/cil.json   # smoke run
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_module

from benchmarks.machine import machine_info
from continual.runner import run_experiment

__all__ = ["main"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cil_memory_aligned.json"
QUICK = [
    "experiment.seeds=[0]",
    "experiment.widths=[2,4]",
    "experiment.learner.epochs=1",
    "~experiment.strategies.finetune",
    "~experiment.strategies.icarl",
    "~experiment.strategies.der_no_wa",
    "~experiment.strategies.memo_no_wa",
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return the JSON document it writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 widths, 1 epoch")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args(argv)
    overrides = ["experiment=cil_memory_aligned", "verbose=0", f"threads={args.threads}"]
    overrides += (QUICK if args.quick else []) + args.overrides
    with initialize_config_module(config_module="continual.conf", version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        results = run_experiment(cfg, tmp)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "accuracy_vs_memory.png", args.out.with_suffix(".png"))
    document = {
        "benchmark": "cil_memory_aligned",
        "quick": args.quick,
        "command": "python -m benchmarks.cil_memory_aligned "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "machine": machine_info(),
        **results,
    }
    ordering = _ordering(results["auc"])
    document["ordering"] = ordering
    args.out.write_text(json.dumps(document, indent=2))
    print(results["table"])
    print(json.dumps(ordering, indent=2))
    return document


def _ordering(auc: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether MEMO >= DER > Replay held on mean AUC-A (with and without weight alignment)."""
    out: dict[str, Any] = {}
    for memo, der in (("memo", "der"), ("memo_no_wa", "der_no_wa")):
        if {memo, der, "replay"} <= set(auc):
            a = {k: auc[k]["auc_a_mean"] for k in (memo, der, "replay")}
            out[f"{memo} >= {der} > replay"] = a[memo] >= a[der] > a["replay"]
    return out


if __name__ == "__main__":
    main()
