"""The streaming protocol of PromptTPP: every method on a drifting stream under one byte budget.

Datasets: ``synthetic`` (the drifting Hawkes stream, 8 regimes, K=5; the exact log-likelihood
under the true parameters is the oracle), ``stackoverflow`` (8 calendar windows of 3 months
from 2012-01-01, times in days) and ``taobao`` (8 windows of 10.25 hours, times in hours), the
real ones read from ``--data``. Settings come from the Hydra experiments
``tpp_stream_synthetic``, ``tpp_stream_so`` and ``tpp_stream_taobao``
(``continual/conf/experiment``); ``--epochs`` and ``--quick`` shrink them. The experiments run
on :func:`continual.runner.run_stream_experiment` (the protocol of ``continual-run``, without
checkpoints): every method is an estimator (``tpp.NeuralTPP``, ``tpp.PromptTPP``) whose
``evaluate(stream)`` fills the matrices R[i][j] of log-likelihood per event, type accuracy and
RMSE on the windows seen and the next one. For every method: the matrices and their summaries
(average incremental score, last score, forgetting, backward transfer, forward score), the
ledger (its peak includes the rollback backup) and the wall time; per dataset the oracle (the
synthetic stream's true-parameter log-likelihood of each window).

Log-likelihood convention: nats per event, each sequence conditioned on its first event, the
integral from the first to the last event by the midpoint rule (``n_points`` per interval).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.tpp_stream                       # synthetic
    .venv/bin/python -m benchmarks.tpp_stream --datasets stackoverflow taobao --epochs 2
    .venv/bin/python -m benchmarks.tpp_stream --quick               # CI smoke run
    .venv/bin/python -m benchmarks.tpp_stream --seed 1 --out seed1.json
    .venv/bin/python -m benchmarks.tpp_stream --merge seed0.json seed1.json --out merged.json

It prints one table per dataset and writes JSON (default
``benchmarks/results/tpp_stream.json``); ``--figures DIR`` also keeps the runner's figures
(scores per metric with the oracle, score against memory, the ledger of each run) and
TensorBoard logs in ``DIR/tpp_stream_<dataset>/``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from benchmarks.machine import machine_info
from continual.run_folder import RunFolder
from continual.runner import run_stream_experiment
from continual.tables import format_table

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tpp"
EXPERIMENTS = {
    "synthetic": "tpp_stream_synthetic",
    "stackoverflow": "tpp_stream_so",
    "taobao": "tpp_stream_taobao",
}


def _source_override(dataset: str, root: Path) -> list[str]:
    """The Hydra override pointing a real data set's experiment at ``root``."""
    key = "experiment.stream.sequences.source"
    if dataset == "stackoverflow":
        return [f"{key}={root / 'stackoverflow' / 'events.json'}"]
    if dataset == "taobao":
        files = ",".join(str(root / "taobao" / f"{name}.json") for name in ("train", "dev", "test"))
        return [f"{key}=[{files}]"]
    return []


QUICK = ["experiment.train.epochs=1", "experiment.train.n_points=2", "experiment.train.n_draws=1"]
QUICK_STREAM = {  # a shorter stream
    "synthetic": [
        "experiment.stream.n_regimes=2",
        "experiment.stream.horizon=100.0",
        "experiment.stream.n_sequences=10",
    ],
    "stackoverflow": ["experiment.stream.n_windows=2"],
    "taobao": ["experiment.stream.n_windows=2"],
}


def bench_dataset(
    dataset: str,
    *,
    seed: int,
    epochs: int | None,
    quick: bool,
    data: Path,
    figures: Path | None,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run every method (or those in ``only``) of the dataset's experiment and return its runs.

    The runs are :func:`continual.runner.run_stream_experiment`'s, without checkpoints; its
    figures and TensorBoard logs go to ``figures/tpp_stream_<dataset>/`` (or are discarded).
    """
    overrides = [f"experiment={EXPERIMENTS[dataset]}", f"seed={seed}", "checkpoint=false"]
    overrides += ["verbose=0", *_source_override(dataset, data)]
    if quick:
        overrides += QUICK + QUICK_STREAM[dataset]
    if epochs is not None:
        overrides.append(f"experiment.train.epochs={epochs}")
    with initialize_config_module("continual.conf", version_base=None):
        cfg = compose("config", overrides=overrides)
    if only is not None:
        unknown = sorted(set(only) - set(cfg.experiment.methods))
        if unknown:
            raise ValueError(f"--methods {unknown} are not methods of {EXPERIMENTS[dataset]}")
        with open_dict(cfg):
            for name in [m for m in cfg.experiment.methods if m not in only]:
                del cfg.experiment.methods[name]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) if figures is None else figures / f"tpp_stream_{dataset}"
        results = run_stream_experiment(cfg, RunFolder(folder))
    stream = instantiate(cfg.experiment.stream)  # deterministic: the stream the runs saw
    oracle = [experience.metadata.get("oracle") for experience in stream]
    oracle = None if any(value is None for value in oracle) else [float(v) for v in oracle]
    return {
        "budget": cfg.experiment.budget,
        "train": OmegaConf.to_container(cfg.experiment.train, resolve=True),
        "n_windows": len(stream),
        "events_per_window": [e.train.n_events + e.test.n_events for e in stream],
        "oracle": oracle,
        "oracle_average": None if oracle is None else float(np.mean(oracle)),
        "runs": results["runs"],
        "seconds": time.perf_counter() - start,
        "table": results["table"],
    }


COLUMNS = {  # merged table column -> (metric, summary key)
    "LL avg": ("log_likelihood", "average_incremental_accuracy"),
    "LL last": ("log_likelihood", "last_accuracy"),
    "LL forget": ("log_likelihood", "forgetting"),
    "LL fwd": ("log_likelihood", "forward_score"),
    "acc last": ("accuracy", "last_accuracy"),
    "RMSE last": ("rmse", "last_accuracy"),
}


def merge_seeds(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per data set and method: every summary column and the bytes, one value per seed run."""
    merged: dict[str, Any] = {}
    for document in documents:
        for dataset, result in document["datasets"].items():
            for run in result["runs"]:
                entry = merged.setdefault(dataset, {}).setdefault(
                    run["method"], {column: [] for column in [*COLUMNS, "bytes", "peak"]}
                )
                for column, (metric, key) in COLUMNS.items():
                    entry[column].append(run["scores"][metric]["summary"][key])
                entry["bytes"].append(run["ledger"]["total"])
                entry["peak"].append(run["ledger"]["peak"])
    return merged


def format_merged_table(methods: dict[str, Any]) -> str:
    """Mean ± standard deviation over seeds (n seeds in the last column)."""

    def cell(values: list[float]) -> str:
        values = np.array([np.nan if v is None else v for v in values], dtype=float)
        form = "{:,.0f}" if abs(values.mean()) >= 1_000 else "{:.3f}"  # RMSE in seconds
        spread = " ± " + form.format(values.std(ddof=1)) if len(values) > 1 else ""
        return form.format(values.mean()) + spread

    header = ["method", *COLUMNS, "bytes final", "bytes peak", "seeds"]
    rows = [
        [
            method,
            *(cell(entry[column]) for column in COLUMNS),
            int(max(entry["bytes"])),
            int(max(entry["peak"])),
            len(entry["bytes"]),
        ]
        for method, entry in methods.items()
    ]
    return format_table(header, rows)


def _merge_main(paths: Sequence[Path], out: Path) -> dict[str, Any]:
    documents = [json.loads(Path(path).read_text()) for path in paths]
    merged = merge_seeds(documents)
    for dataset, methods in merged.items():
        print(f"== {dataset}: mean ± sd over seed runs (bytes: the largest over seeds)")
        print(format_merged_table(methods))
    document = {
        "benchmark": "tpp_stream",
        "merged": [str(path) for path in paths],
        "commands": [d["command"] for d in documents],
        "datasets": merged,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2))
    return document


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic"], choices=list(EXPERIMENTS))
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="folder holding stackoverflow/events.json and taobao/{train,dev,test}.json",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per window")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--methods", nargs="+", default=None, help="a subset of the methods")
    parser.add_argument("--figures", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/tpp_stream.json")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        help="instead of running: summarize these result files (one per seed) over seeds",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and write the JSON document."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse_args(argv)
    if args.merge:
        return _merge_main(args.merge, args.out)
    torch.set_num_threads(1)
    document = {
        "benchmark": "tpp_stream",
        "quick": args.quick,
        "command": "python -m benchmarks.tpp_stream " + shlex.join(argv),
        "machine": machine_info(),
        "log_likelihood_convention": "nats per event; first event of each sequence conditioned "
        "on; midpoint-rule integral from first to last event",
        "datasets": {},
    }
    for dataset in args.datasets:
        result = bench_dataset(
            dataset,
            seed=args.seed,
            epochs=args.epochs,
            quick=args.quick,
            data=args.data,
            figures=args.figures,
            only=args.methods,
        )
        document["datasets"][dataset] = result
        print(f"== {dataset} (budget {result['budget']}, {result['seconds']:.0f} s)")
        if result["oracle"] is not None:
            print(f"oracle log-likelihood, mean over windows {result['oracle_average']:.3f}")
        print(result["table"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
