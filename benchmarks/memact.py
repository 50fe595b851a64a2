"""Benchmark Memory-as-Action: learned context curation (DCPO) against heuristics, one budget.

Recall episodes (``streams.episodes``): K questions, T = 10 tool results of which about half are
distractors, 4 filler words per result, and a context budget of 240 bytes of int32 tokens
(keeping everything needs 340). The tiny policy is trained on K = 2 and tested on held-out
episodes with K = 2 and with K = 3 (generalisation to more questions). Methods:

- ``dcpo``: behaviour-cloning warm start from the ``queried_keys`` curator, then DCPO;
- ``warm_start_only``: the same warm start, no RL;
- ``naive_final``: the same warm start, then the naive trainer on the final edited sequence;
- every heuristic curator (keep everything, FIFO, recency, keep-queried-keys, Mem0-style).

Reported per method and difficulty: strict and partial success, overflow rate, mean context
bytes and tokens per step, edits per episode, the learned curators' stored bytes (policy, frozen
reference, Adam state; their ledgers are in the JSON) and training wall time. The context-size
target is measured with a budget large enough to hold everything (400 bytes). The episodes are
generated, so there is no ``--data`` file. Writes ``benchmarks/results/memact.json``.

Run: ``python -m benchmarks.memact`` (a few CPU minutes), or ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.machine import machine_info
from strategies.memact import CURATORS, MemoryAsAction, evaluate_policy, make_curator
from strategies.memact.experiments import format_memact_table
from streams.episodes import RecallDifficulty, recall_stream

__all__ = ["main", "run"]

TEACHER = "queried_keys"
BUDGET = 240
LARGE_BUDGET = 400
TARGET_BYTES_SAVING = 0.30
TARGET_TRAIN_SECONDS = 30 * 60


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "n_train": 16,
            "n_test": 8,
            "bc_epochs": 1,
            "updates": 2,
            "d_model": 16,
            "n_layers": 1,
            "group_size": 4,
        }
    return {
        "n_train": 512,
        "n_test": 200,
        "bc_epochs": 4,
        "updates": 60,
        "d_model": 64,
        "n_layers": 2,
        "group_size": 8,
    }


def _train(settings: dict[str, Any], train: Sequence[Any], seed: int) -> dict[str, Any]:
    """Warm start once (a first ``fit`` with no update), then DCPO and the naive trainer each
    continue a copy of it with one ``partial_fit`` of ``updates`` updates."""
    warm = MemoryAsAction(
        teacher=TEACHER,
        bc_epochs=settings["bc_epochs"],
        bc_lr=3e-3,
        n_updates=0,
        group_size=settings["group_size"],
        episodes_per_update=4,
        lr=1e-3,
        d_model=settings["d_model"],
        n_layers=settings["n_layers"],
        random_state=seed,
    )
    start = time.perf_counter()
    warm.fit(train)
    warm_seconds = time.perf_counter() - start
    models = {"warm_start_only": warm}
    seconds = {"warm_start_only": warm_seconds}
    history = {}
    for name, mode in (("dcpo", "dcpo"), ("naive_final", "final")):
        model = copy.deepcopy(warm).set_params(mode=mode, n_updates=settings["updates"])
        start = time.perf_counter()
        model.partial_fit(train)
        seconds[name] = warm_seconds + time.perf_counter() - start
        models[name] = model
        history[name] = model.history_
    ledgers = {name: model.accountant_.ledger() for name, model in models.items()}
    return {
        "policies": {name: model.policy_ for name, model in models.items()},
        "seconds": seconds,
        "history": history,
        "ledgers": {name: ledger.accounts for name, ledger in ledgers.items()},
        "stored": {name: ledger.total for name, ledger in ledgers.items()},
    }


def run(quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Train, evaluate and return the JSON-ready results (see the module docstring)."""
    settings = _settings(quick)
    levels = [
        RecallDifficulty(n_questions=2, n_observations=10, budget=BUDGET),
        RecallDifficulty(n_questions=3, n_observations=10, budget=BUDGET),
    ]
    stream = recall_stream(
        levels, n_train=settings["n_train"], n_test=settings["n_test"], seed=seed
    )
    trained = _train(settings, list(stream[0].train), seed)
    methods: dict[str, Any] = {**trained["policies"]}
    methods.update({name: make_curator(name) for name in CURATORS})
    rows = []
    for experience, budget in ((stream[0], BUDGET), (stream[1], BUDGET), (stream[0], LARGE_BUDGET)):
        for name, policy in methods.items():
            result = evaluate_policy(policy, experience.test, budget=budget)
            rows.append(
                {
                    "method": name,
                    "n_questions": experience.metadata["difficulty"]["n_questions"],
                    "budget": budget,
                    "learner_bytes": trained["stored"].get(name),
                    "train_seconds": trained["seconds"].get(name, 0.0),
                    **result,
                }
            )
    return {
        "settings": settings,
        "rows": rows,
        "targets": _targets(rows),
        "training_curves": {
            name: [{k: round(v, 4) for k, v in step.items()} for step in steps]
            for name, steps in trained["history"].items()
        },
        "learner_ledgers": trained["ledgers"],
    }


def _row(rows: list[dict[str, Any]], method: str, n_questions: int, budget: int) -> dict:
    return next(
        r
        for r in rows
        if r["method"] == method and r["n_questions"] == n_questions and r["budget"] == budget
    )


def _targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    dcpo = _row(rows, "dcpo", 2, BUDGET)
    fifo, recency = _row(rows, "fifo", 2, BUDGET), _row(rows, "recency", 2, BUDGET)
    naive = _row(rows, "naive_final", 2, BUDGET)
    large_dcpo = _row(rows, "dcpo", 2, LARGE_BUDGET)
    large_keep = _row(rows, "keep_everything", 2, LARGE_BUDGET)
    saving = 1 - large_dcpo["bytes_per_step"] / large_keep["bytes_per_step"]
    return {
        "beats_fifo_and_recency": {
            "dcpo": dcpo["success"],
            "fifo": fifo["success"],
            "recency": recency["success"],
            "met": dcpo["success"] > max(fifo["success"], recency["success"]),
        },
        "bytes_saving_vs_keep_everything": {
            "dcpo_bytes_per_step": large_dcpo["bytes_per_step"],
            "keep_everything_bytes_per_step": large_keep["bytes_per_step"],
            "saving": saving,
            "target": TARGET_BYTES_SAVING,
            "met": saving >= TARGET_BYTES_SAVING,
        },
        "beats_naive": {
            "dcpo": dcpo["success"],
            "naive_final": naive["success"],
            "met": dcpo["success"] > naive["success"],
        },
        "training_time": {
            "dcpo_seconds": dcpo["train_seconds"],
            "target_seconds": TARGET_TRAIN_SECONDS,
            "met": dcpo["train_seconds"] <= TARGET_TRAIN_SECONDS,
        },
        "generalisation_k3": {
            "dcpo": _row(rows, "dcpo", 3, BUDGET)["success"],
            "warm_start_only": _row(rows, "warm_start_only", 3, BUDGET)["success"],
            "queried_keys": _row(rows, "queried_keys", 3, BUDGET)["success"],
        },
    }


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "memact.json"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON and return it."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    args = _parse_args(args_list)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        result = {
            "benchmark": "memact",
            "command": shlex.join(["python", "-m", "benchmarks.memact", *args_list]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "quick": args.quick,
            "seed": args.seed,
            **run(quick=args.quick, seed=args.seed),
        }
        result["total_seconds"] = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    print(format_memact_table(result["rows"]))
    print(json.dumps(result["targets"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
