"""``continual-run``: run an experiment from the Hydra configs in ``continual/conf``.

An experiment config names its run function (``run:``, a dotted path, so that ``continual``
imports no domain package). The default, :func:`run_stream_experiment`, runs every method of
the experiment (an estimator spec) on its stream at each budget with the one evaluation
protocol. Every run function receives a :class:`~continual.run_folder.RunFolder` and returns
JSON-ready results with a ``"table"``; the folder receives ``results.json``, the figures,
TensorBoard logs under ``tb/`` and, with ``checkpoint=true``, a checkpoint per run after each
experience, from which ``resume=true`` continues an interrupted run::

    continual-run experiment=finetune_vs_replay
    continual-run experiment=finetune_vs_replay hydra.run.dir=outputs/<day>/<time> resume=true

``trainer.nproc=N`` trains every method data-parallel on N local processes: the command
starts them through ``torch.distributed.run`` (so no ``torchrun`` command is needed), each
runs the same experiment in the same run folder, and rank 0 writes it. Started by
``torchrun`` directly (``torchrun --nproc-per-node=N -m continual.runner ...``), the runner
joins the process group torchrun describes. The backend is gloo on the CPU, nccl on CUDA::

    continual-run experiment=finetune_vs_replay trainer.nproc=2
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf

from continual.budget import format_bytes, parse_budget
from continual.checkpoint import load, save
from continual.distributed import backend_for, is_distributed, is_writer
from continual.estimator import BudgetedEstimator
from continual.evaluation import ScoreMatrix
from continual.figures import plot_accuracy_vs_memory, plot_ledger, plot_stream_scores
from continual.progress import progress
from continual.run_folder import RunFolder
from continual.tables import format_table

__all__ = [
    "format_runs",
    "launch",
    "main",
    "process_group",
    "run_experiment",
    "run_stream_experiment",
]


def run_experiment(cfg: DictConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run ``cfg.experiment`` and write its run folder at ``out_dir``.

    The experiment's ``run`` key names the function that runs it; it defaults to
    :func:`run_stream_experiment`. A run function takes ``(cfg, folder)``, writes its figures
    and logs through the :class:`~continual.run_folder.RunFolder` and returns JSON-ready
    results whose ``"table"`` entry is the text printed at the end.
    """
    folder = RunFolder(out_dir)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    run = get_method(cfg.experiment.get("run", "continual.runner.run_stream_experiment"))
    results = run(cfg, folder)
    table = results.pop("table")
    header = {
        "experiment": cfg.experiment.name,
        "seed": cfg.seed,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    return folder.finish({**header, **results}, table)


def run_stream_experiment(cfg: DictConfig, folder: RunFolder) -> dict[str, Any]:
    """Run every method of ``cfg.experiment`` on its stream at every budget.

    The experiment gives a ``stream`` (a Hydra ``_target_``), ``methods`` (name to an
    estimator spec), ``train`` (settings shared by every method), ``budgets`` (used when the
    top-level ``budget`` is null; a method's own ``budget`` wins), and optionally ``metrics``
    (names among the estimators' ``scores``; default: ``score``), ``lower_is_better`` and
    ``horizon`` (see :meth:`~continual.estimator.BudgetedEstimator.evaluate`).

    Each run records its score matrices, their summaries, the final ledger and the wall time;
    the results also hold the stream's ``oracle`` scores (``metadata["oracle"]`` of every
    experience, from a simulator) or None.
    Figures: ``score_vs_memory.png`` (the first metric's average incremental score against
    the bytes used), ``scores_<metric>.png`` (the incremental score after each experience,
    with the stream's ``oracle`` metadata as a reference when every experience has one) and
    ``ledger_<run>.png``.
    """
    exp = cfg.experiment
    stream = instantiate(exp.stream)
    metrics = list(exp.get("metrics") or []) or None
    grid = list(itertools.product(_budgets(cfg), exp.methods))
    several = len({budget for budget, _ in grid}) > 1
    runs = []
    for budget, name in progress(grid, verbose=cfg.verbose, desc="runs"):
        label = f"{name}_{budget}" if several else name
        runs.append(_run_method(cfg, stream, name, budget, label, metrics, folder))
    oracle = _oracle(stream)
    _plot_stream(runs, oracle, folder)
    return {"runs": runs, "oracle": oracle, "table": format_runs(runs)}


def _oracle(stream: Any) -> list[float] | None:
    """Each experience's ``metadata["oracle"]`` score (a simulator's truth), or None when an
    experience has none (real data)."""
    values = [getattr(exp, "metadata", {}).get("oracle") for exp in stream]
    return None if any(v is None for v in values) else [float(v) for v in values]


def _budgets(cfg: DictConfig) -> list[int | None]:
    if cfg.budget is not None:
        return [parse_budget(cfg.budget)]
    budgets = cfg.experiment.get("budgets")
    if budgets is None:
        return [parse_budget(cfg.experiment.get("budget"))]
    return [parse_budget(b) for b in budgets]


def _run_method(
    cfg: DictConfig,
    stream: Any,
    name: str,
    budget: int | None,
    label: str,
    metrics: list[str] | None,
    folder: RunFolder,
) -> dict[str, Any]:
    exp = cfg.experiment
    spec = OmegaConf.to_container(exp.methods[name], resolve=True)
    spec = {**(OmegaConf.to_container(exp.get("train") or {}, resolve=True)), **spec}
    spec.setdefault("budget", budget)
    spec["random_state"] = cfg.seed
    device = cfg.get("device")
    if device is not None:
        spec["device"] = device
    checkpoint = folder.path / "checkpoints" / f"{label}.safetensors"
    progress_file = checkpoint.with_suffix(".json")
    start, done = 0, None
    if cfg.get("resume") and progress_file.exists():
        done = json.loads(progress_file.read_text())
        estimator = load(checkpoint, device=device)
        start = done["experiences"]
    else:
        estimator = instantiate(spec, _convert_="all")  # lists as lists, for checkpoints
    if not isinstance(estimator, BudgetedEstimator):
        raise TypeError(f"method {name!r} must be a BudgetedEstimator, got {type(estimator)}")
    seconds = 0.0 if done is None else done["seconds"]
    clock = time.perf_counter()

    def after_experience(i: int) -> None:
        nonlocal seconds, clock
        seconds += time.perf_counter() - clock
        ledger = estimator.accountant_.ledger()
        folder.log_experience(label, i, losses=estimator.losses_, ledger=ledger.accounts)
        if cfg.get("checkpoint", True):
            checkpoint.parent.mkdir(exist_ok=True)
            save(estimator, checkpoint)  # every rank: rank 0 gathers and writes
            partial = {k: _partial(m) for k, m in _as_dict(scores).items()}
            record = {"experiences": i + 1, "seconds": seconds, "scores": partial}
            if is_writer():
                progress_file.write_text(json.dumps(record))
        clock = time.perf_counter()

    scores = _empty(stream, metrics, exp) if done is None else _matrices(done["scores"], metrics)
    matrices = estimator.evaluate(
        stream,
        metrics=metrics,
        lower_is_better=list(exp.get("lower_is_better") or []),
        horizon=exp.get("horizon"),
        after_experience=after_experience,
        start=start,
        scores=scores,
        verbose=0,
    )
    matrices = _as_dict(matrices)
    for i, values in enumerate(zip(*(m.incremental_accuracies() for m in matrices.values()))):
        folder.log_experience(label, i, scores=dict(zip(matrices, map(float, values))))
    ledger = estimator.accountant_.ledger()
    plot = plot_ledger(estimator.accountant_.timeline(), budget=ledger.budget)
    folder.figure(f"ledger_{label}", plot)
    return {
        "method": name,
        "run": label,
        "budget": ledger.budget,
        "scores": {metric: matrix.to_dict() for metric, matrix in matrices.items()},
        "ledger": ledger.to_dict(),
        "ledger_all_ranks": estimator.accountant_.ledger(reduce=True).to_dict()
        if is_distributed()
        else None,
        "seconds": seconds,
    }


def _empty(stream: Any, metrics: list[str] | None, exp: DictConfig) -> Any:
    lower = set(exp.get("lower_is_better") or [])
    if metrics is None:
        return ScoreMatrix(len(stream))
    return {m: ScoreMatrix(len(stream), higher_is_better=m not in lower) for m in metrics}


def _matrices(saved: Mapping[str, Any], metrics: list[str] | None) -> Any:
    matrices = {
        name: ScoreMatrix.from_array(
            np.array([[np.nan if v is None else v for v in row] for row in data["matrix"]]),
            data["test_sizes"],
            higher_is_better=data.get("higher_is_better", True),
        )
        for name, data in saved.items()
    }
    return matrices["score"] if metrics is None else matrices


def _partial(matrix: ScoreMatrix) -> dict[str, Any]:
    """The entries of a matrix being filled (no summary: it needs every row)."""
    return {
        "matrix": [[None if np.isnan(v) else float(v) for v in row] for row in matrix.matrix],
        "test_sizes": None if matrix.test_sizes is None else list(matrix.test_sizes),
        "higher_is_better": matrix.higher_is_better,
    }


def _as_dict(scores: ScoreMatrix | Mapping[str, ScoreMatrix]) -> dict[str, ScoreMatrix]:
    return {"score": scores} if isinstance(scores, ScoreMatrix) else dict(scores)


def _plot_stream(runs: list[dict[str, Any]], oracle: list[float] | None, folder: RunFolder) -> None:
    metrics = list(runs[0]["scores"])
    first = metrics[0]
    curves: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        final = run["scores"][first]["summary"]["average_incremental_accuracy"]
        curves.setdefault(run["method"], []).append((run["ledger"]["total"], final))
    figure = plot_accuracy_vs_memory(curves, metric=f"{first}: average incremental score")
    folder.figure("score_vs_memory", figure)
    reference = None
    if oracle is not None:  # the running mean, like the incremental scores it is drawn with
        reference = list(np.cumsum(oracle) / np.arange(1, len(oracle) + 1))
    for metric in metrics:
        lines = {run["run"]: _incremental(run["scores"][metric]) for run in runs}
        figure = plot_stream_scores(
            lines,
            metric=f"{metric}, mean over experiences seen",
            reference=reference if metric == first else None,
            reference_label="oracle",
        )
        folder.figure(f"scores_{metric}", figure)


def _incremental(saved: Mapping[str, Any]) -> list[float]:
    matrix = np.array([[np.nan if v is None else v for v in row] for row in saved["matrix"]])
    return ScoreMatrix.from_array(matrix, saved["test_sizes"]).incremental_accuracies().tolist()


def format_runs(runs: list[dict[str, Any]]) -> str:
    """A table of runs: per metric the average incremental score, last score, forgetting and
    forward score; the bytes of every ledger account, the total, the peak; the wall time."""
    metrics = list(runs[0]["scores"])
    accounts = list(dict.fromkeys(a for run in runs for a in run["ledger"]["accounts"]))
    header = ["run", "budget"]
    for metric in metrics:
        prefix = "" if metric == "score" else f"{metric} "
        header += [f"{prefix}avg", f"{prefix}last", f"{prefix}forget", f"{prefix}fwd"]
    header += [*accounts, "total", "peak", "seconds"]
    rows = []
    for run in runs:
        row: list[Any] = [run["run"], format_bytes(run["budget"] or float("inf"))]
        for metric in metrics:
            summary = run["scores"][metric]["summary"]
            row += [
                summary["average_incremental_accuracy"],
                summary["last_accuracy"],
                summary["forgetting"],
                summary["forward_score"],
            ]
        ledger = run["ledger"]
        row += [*(ledger["accounts"].get(a, 0) for a in accounts), ledger["total"], ledger["peak"]]
        rows.append([*row, f"{run['seconds']:.1f}"])
    return format_table(header, rows)


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    """Entry point of the ``continual-run`` console script."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    nproc = int(cfg.get("trainer", {}).get("nproc", 1))
    if nproc < 1:
        raise ValueError(f"trainer.nproc must be a positive int, got {nproc}")
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        launch(nproc, list(HydraConfig.get().overrides.task), out_dir)
        return
    with process_group(cfg.get("device")):
        run_experiment(cfg, out_dir)


def launch(nproc: int, overrides: list[str], out_dir: Path) -> None:
    """Run this command's experiment on ``nproc`` local processes, through
    ``torch.distributed.run`` (torchrun's engine), all writing to ``out_dir``."""
    from torch.distributed.run import get_args_parser, run  # torchrun, only when launching

    arguments = [
        "--standalone",
        f"--nproc-per-node={nproc}",
        "--module",
        "continual.runner",
        *overrides,
        f"hydra.run.dir={out_dir}",
    ]
    run(get_args_parser().parse_args(arguments))


@contextlib.contextmanager
def process_group(device: str | None) -> Iterator[None]:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE``
    above 1), with gloo on the CPU or nccl on CUDA, for the block; otherwise do nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    cuda = device is not None and device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend_for("cuda" if cuda else "cpu"))
    try:
        yield
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
