"""``continual-run``: run an experiment from the Hydra configs in ``continual/conf``.

An experiment config names its run function (``run:``, a dotted path). The
default, :func:`run_classification`, trains every strategy of the experiment
on its stream at each budget, under one shared
:class:`~continual.accountant.MemoryAccountant`. The run folder receives
``results.json``, the figures ``accuracy_vs_memory.png`` and
``ledger_<strategy>_<budget>.png``, and TensorBoard logs under ``tb/``.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf

from continual.accountant import MemoryAccountant
from continual.budget import parse_budget
from continual.figures import plot_accuracy_vs_memory, plot_ledger
from continual.learner import Learner
from continual.progress import progress
from continual.tables import align
from continual.tensorboard import TensorBoardLogger

__all__ = ["format_table", "main", "run_classification", "run_experiment"]


def run_experiment(cfg: DictConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run ``cfg.experiment`` and write ``results.json`` to ``out_dir``.

    The experiment's ``run`` key names the function that runs it (a dotted
    path, so that ``continual`` imports no domain package); it defaults to
    :func:`run_classification`. A run function takes ``(cfg, out_dir)``,
    writes its figures and logs to ``out_dir`` and returns JSON-ready results
    whose ``"table"`` entry is the text printed at the end.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    run = get_method(cfg.experiment.get("run", "continual.runner.run_classification"))
    results = {
        "experiment": cfg.experiment.name,
        "seed": cfg.seed,
        "config": OmegaConf.to_container(cfg, resolve=True),
        **run(cfg, out_dir),
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def run_classification(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train every strategy at every budget on the experiment's stream.

    Returns one record per (strategy, budget) with the accuracy matrix, its
    summary, the final ledger and the wall time, plus the printed table.
    Figures: ``accuracy_vs_memory.png`` and ``ledger_<strategy>_<budget>.png``;
    TensorBoard logs under ``tb/``.
    """
    stream = instantiate(cfg.experiment.stream)
    grid = list(itertools.product(_budgets(cfg), cfg.experiment.strategies))
    runs = [
        _run_one(cfg, stream, strategy, budget, out_dir)
        for budget, strategy in progress(grid, verbose=cfg.verbose, desc="runs")
    ]
    _plot_accuracy(runs, out_dir)
    return {"runs": runs, "table": format_table(runs)}


def _budgets(cfg: DictConfig) -> list[int | None]:
    budgets = [cfg.budget] if cfg.budget is not None else list(cfg.experiment.budgets)
    return [parse_budget(b) for b in budgets]


def _run_one(
    cfg: DictConfig, stream: Any, strategy: str, budget: int | None, out_dir: Path
) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    model = instantiate(cfg.experiment.model)
    plugin = instantiate(cfg.experiment.strategies[strategy])
    accountant = MemoryAccountant(budget)
    learner = Learner(
        model,
        plugins=[plugin],
        accountant=accountant,
        seed=cfg.seed,
        **cfg.experiment.learner,
    )
    start = time.perf_counter()
    scores = learner.run(stream)
    seconds = time.perf_counter() - start
    label = f"{strategy}_{budget}"
    _log_tensorboard(out_dir / "tb" / label, scores, accountant)
    plot_ledger(accountant.timeline(), path=out_dir / f"ledger_{label}.png", budget=budget).clear()
    return {
        "strategy": strategy,
        "budget": budget,
        "scores": scores.to_dict(),
        "ledger": accountant.ledger().to_dict(),
        "seconds": seconds,
    }


def _log_tensorboard(log_dir: Path, scores: Any, accountant: MemoryAccountant) -> None:
    accuracies = scores.incremental_accuracies()
    with TensorBoardLogger(log_dir) as logger:
        for snapshot, accuracy in zip(accountant.history, accuracies):
            logger.log_scores(snapshot.step, {"incremental_accuracy": float(accuracy)})
            logger.log_ledger(snapshot.step, snapshot.ledger.accounts)


def _plot_accuracy(runs: list[dict[str, Any]], out_dir: Path) -> None:
    curves: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        used = run["ledger"]["total"]
        accuracy = run["scores"]["summary"]["average_incremental_accuracy"]
        curves.setdefault(run["strategy"], []).append((used, accuracy))
    figure = plot_accuracy_vs_memory(
        curves, path=out_dir / "accuracy_vs_memory.png", metric="average incremental accuracy"
    )
    figure.clear()


def format_table(runs: list[dict[str, Any]]) -> str:
    """An aligned text table: accuracy, forgetting and bytes per ledger account."""
    accounts = sorted({a for run in runs for a in run["ledger"]["accounts"]})
    header = ["strategy", "budget", "avg inc acc", "last acc", "forgetting", *accounts, "total"]
    rows = [header]
    for run in runs:
        summary, ledger = run["scores"]["summary"], run["ledger"]
        rows.append(
            [
                run["strategy"],
                "none" if run["budget"] is None else f"{run['budget']:,}",
                f"{summary['average_incremental_accuracy']:.3f}",
                f"{summary['last_accuracy']:.3f}",
                f"{summary['forgetting']:.3f}",
                *(f"{ledger['accounts'].get(a, 0):,}" for a in accounts),
                f"{ledger['total']:,}",
            ]
        )
    return align(rows)


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    """Entry point of the ``continual-run`` console script."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    results = run_experiment(cfg, out_dir)
    if cfg.verbose:
        print(results["table"])
        print(f"results, figures and TensorBoard logs in {out_dir}")


if __name__ == "__main__":
    main()
