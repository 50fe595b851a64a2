"""The memory-aligned class-incremental experiment (MEMO's protocol) as a Hydra run function.

Every budget point is the cost of DER with one backbone width after the last task, plus a
fixed number of exemplars (the paper's points are DER with ConvNet2 / ResNet14 / 20 / 26 / 32
plus 2,000 CIFAR images). At each point every method trains the backbone of that width under
that byte budget and stores what it wants; the shared accountant checks the total.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from continual.accountant import MemoryAccountant
from continual.evaluation import ScoreMatrix, auc_a, auc_l
from continual.figures import plot_accuracy_vs_memory
from continual.learner import Learner
from continual.measure import nbytes
from continual.progress import progress
from continual.run_folder import RunFolder
from continual.tables import format_table
from strategies.backbones import DigitsConvNet
from strategies.der import DER
from strategies.expandable import ExpandableNet

__all__ = ["der_budget", "run_memory_aligned"]


def der_budget(
    width: int, n_experiences: int, n_classes: int, n_exemplars: int, exemplar_nbytes: int
) -> int:
    """Bytes of DER on the digits conv net of ``width`` after the last task, plus exemplars.

    The model (one backbone per task, the unified head and the last auxiliary head, BN
    statistics included), the SGD momentum of its trainable part and ``n_exemplars`` samples
    of ``exemplar_nbytes`` bytes each.

    Examples
    --------
    >>> from strategies.experiments import der_budget
    >>> without = der_budget(4, 5, 10, 0, 65)
    >>> der_budget(4, 5, 10, 100, 65) - without, der_budget(6, 5, 10, 0, 65) > without
    (6500, True)
    """
    net = DER().expand(DigitsConvNet(n_classes, width=width))
    per_task = np.array_split(np.arange(n_classes), n_experiences)
    for classes in per_task:
        net.grow(classes.tolist())
    trainable = [p for p in net.parameters() if p.requires_grad]
    return nbytes(net) + nbytes(trainable) + n_exemplars * exemplar_nbytes


def run_memory_aligned(cfg: DictConfig, folder: RunFolder) -> dict[str, Any]:
    """Run every strategy at every memory-aligned budget point for every seed.

    Returns JSON-ready results: the budget points, one record per (strategy, budget, seed)
    with the accuracy matrix, its summary, the ledger (plus the bytes of the heads inside
    ``model``) and the wall time; per strategy the AUC-A and AUC-L (trapezoid rule, memory in
    MB, accuracy as a fraction: the paper's percent AUC is 100 times these) per seed, their
    mean and standard deviation, and the total wall time; and the printed ``table``. Writes
    ``accuracy_vs_memory.png`` (mean over seeds, one line per method) and, per run, the
    training-loss curve and the ledger to TensorBoard, through ``folder``.
    """
    exp = cfg.experiment
    if cfg.budget is not None:
        raise ValueError(
            f"budget must be null for {exp.name}: its budgets are DER's cost at each backbone "
            f"width in experiment.widths, got budget={cfg.budget!r}"
        )
    points = _budget_points(exp)
    grid = [
        (strategy, point, seed)
        for seed in exp.seeds
        for point in points
        for strategy in exp.strategies
    ]
    runs = [
        _run_one(exp, strategy, point, int(seed), folder)
        for strategy, point, seed in progress(grid, verbose=cfg.verbose, desc="runs")
    ]
    aucs = _aucs(runs, list(exp.strategies), points, [int(s) for s in exp.seeds])
    _plot(runs, folder)
    return {
        "budget_points": points,
        "runs": runs,
        "auc": aucs,
        "table": format_aligned_table(points, runs, aucs),
    }


def _budget_points(exp: DictConfig) -> list[dict[str, int]]:
    exemplar_nbytes = int(exp.exemplar_nbytes)
    return [
        {
            "width": int(width),
            "budget": der_budget(
                int(width),
                int(exp.stream.n_experiences),
                int(exp.n_classes),
                int(exp.exemplars),
                exemplar_nbytes,
            ),
        }
        for width in exp.widths
    ]


def _run_one(
    exp: DictConfig, strategy: str, point: dict[str, int], seed: int, folder: RunFolder
) -> dict[str, Any]:
    stream = instantiate(exp.stream, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsConvNet(int(exp.n_classes), width=point["width"])
    spec = exp.strategies[strategy]
    plugin = instantiate(spec, **({"seed": seed} if "seed" in spec else {}))
    accountant = MemoryAccountant(point["budget"])
    learner = Learner(model, plugins=[plugin], accountant=accountant, seed=seed, **exp.learner)
    label = f"{strategy}_width{point['width']}_seed{seed}"

    def log(i: int) -> None:
        ledger = accountant.ledger().accounts
        folder.log_experience(label, i, losses=learner.epoch_losses, ledger=ledger)

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the global generator stays the caller's
        torch.manual_seed(seed)
        scores = learner.run(stream, after_experience=log)
    seconds = time.perf_counter() - start
    return {
        "strategy": strategy,
        "width": point["width"],
        "budget": point["budget"],
        "seed": seed,
        "scores": scores.to_dict(),
        "ledger": accountant.ledger().to_dict(),
        "heads": _heads_nbytes(learner.model),
        "seconds": seconds,
    }


def _heads_nbytes(model: nn.Module) -> int:
    if isinstance(model, ExpandableNet):
        return nbytes([model.head, model.aux_head] if model.aux_head else [model.head])
    return nbytes(model.head)


def _aucs(
    runs: list[dict[str, Any]],
    strategies: list[str],
    points: list[dict[str, int]],
    seeds: list[int],
) -> dict[str, dict[str, Any]]:
    budgets = [p["budget"] for p in points]
    out: dict[str, dict[str, Any]] = {}
    for strategy in strategies:
        per_seed = {"auc_a": [], "auc_l": []}
        for seed in seeds:
            matrices = [
                ScoreMatrix.from_array(
                    run["scores"]["matrix"], test_sizes=run["scores"]["test_sizes"]
                )
                for budget in budgets
                for run in runs
                if (run["strategy"], run["budget"], run["seed"]) == (strategy, budget, seed)
            ]
            per_seed["auc_a"].append(auc_a(budgets, matrices))
            per_seed["auc_l"].append(auc_l(budgets, matrices))
        out[strategy] = {
            **{f"{k}_per_seed": v for k, v in per_seed.items()},
            **{f"{k}_mean": float(np.mean(v)) for k, v in per_seed.items()},
            **{f"{k}_std": float(np.std(v)) for k, v in per_seed.items()},
            "seconds": float(sum(r["seconds"] for r in runs if r["strategy"] == strategy)),
        }
    return out


def _mean_curves(runs: list[dict[str, Any]], metric: str) -> dict[str, list[tuple[int, float]]]:
    grouped: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        by_budget = grouped.setdefault(run["strategy"], {})
        by_budget.setdefault(run["budget"], []).append(run["scores"]["summary"][metric])
    return {
        strategy: [(budget, float(np.mean(v))) for budget, v in sorted(by_budget.items())]
        for strategy, by_budget in grouped.items()
    }


def _plot(runs: list[dict[str, Any]], folder: RunFolder) -> None:
    curves = _mean_curves(runs, "average_incremental_accuracy")
    figure = plot_accuracy_vs_memory(curves, metric="average incremental accuracy (mean of seeds)")
    folder.figure("accuracy_vs_memory", figure)


def format_aligned_table(
    points: list[dict[str, int]], runs: list[dict[str, Any]], aucs: dict[str, dict[str, Any]]
) -> str:
    """Three aligned tables: budget points; mean scores and ledger per method and budget; AUCs."""
    lines = ["budget points (DER at each width + fixed exemplars):"]
    lines += format_table(
        ["width", "bytes", "MB"],
        [[p["width"], p["budget"], p["budget"] / 1e6] for p in points],
        formats={"MB": ".4f"},
    ).splitlines()
    header = [
        "strategy", "budget", "avg inc acc", "last acc", "forgetting",
        "model", "(heads)", "optimizer", "exemplars", "other", "total", "seconds",
    ]  # fmt: skip
    rows = [
        _row(strategy, point["budget"], [r for r in runs if _at(r, strategy, point["budget"])])
        for strategy in aucs
        for point in points
    ]
    lines += ["", "per method and budget (mean over seeds; bytes of the last seed):"]
    lines += format_table(header, rows, formats={"seconds": ".1f"}).splitlines()
    auc_rows = [
        [strategy, *(auc[k] for k in ("auc_a_mean", "auc_a_std", "auc_l_mean", "auc_l_std")),
         auc["seconds"]]
        for strategy, auc in aucs.items()
    ]  # fmt: skip
    header = ["strategy", "AUC-A", "AUC-A sd", "AUC-L", "AUC-L sd", "seconds"]
    formats = {name: ".5f" for name in header[1:5]} | {"seconds": ".1f"}
    lines += ["", "AUC over budgets (trapezoid rule, memory in MB, accuracy as a fraction):"]
    lines += format_table(header, auc_rows, formats=formats).splitlines()
    return "\n".join(lines)


def _at(run: dict[str, Any], strategy: str, budget: int) -> bool:
    return run["strategy"] == strategy and run["budget"] == budget


def _row(strategy: str, budget: int, group: list[dict[str, Any]]) -> list[Any]:
    def mean(key: str) -> float:
        return float(np.mean([r["scores"]["summary"][key] for r in group]))

    last = group[-1]
    accounts = last["ledger"]["accounts"]
    model = accounts.get("model", 0)
    optimizer = accounts.get("optimizer", 0)
    exemplars = sum(v for k, v in accounts.items() if k.endswith("/exemplars"))
    other = last["ledger"]["total"] - model - optimizer - exemplars
    return [
        strategy,
        budget,
        mean("average_incremental_accuracy"),
        mean("last_accuracy"),
        mean("forgetting"),
        model,
        last["heads"],
        optimizer,
        exemplars,
        other,
        last["ledger"]["total"],
        sum(r["seconds"] for r in group),
    ]
