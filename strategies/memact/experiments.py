"""Hydra run function of the ``memact_recall`` experiment.

Run it with ``continual-run experiment=memact_recall``. The experiment's stream is built by Hydra
from its ``_target_`` (``streams.episodes.recall_stream``), so this package imports no ``streams``
code: episodes are used through their attributes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from continual.budget import parse_budget
from continual.figures import plot_accuracy_vs_memory
from continual.progress import progress
from continual.tables import format_table
from strategies.memact.curators import make_curator
from strategies.memact.estimator import MemoryAsAction
from strategies.memact.evaluation import evaluate_policy

__all__ = ["format_memact_table", "run_memact"]


def run_memact(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train the learned curators on the first experience, evaluate every method on every one.

    The first experience of ``cfg.experiment.stream`` is the training difficulty; every
    experience's held-out ``test`` episodes are evaluated (the later ones are harder). Each
    learner of ``cfg.experiment.learners`` is a :class:`MemoryAsAction` with the shared
    ``cfg.experiment.estimator`` settings and its own overrides; each name of
    ``cfg.experiment.curators`` is a heuristic. ``cfg.budget`` (when set) replaces the episodes'
    context budget. Writes ``success_vs_context_bytes.png`` and returns one record per
    (method, difficulty) with the measured numbers and the printed table.
    """
    stream = instantiate(cfg.experiment.stream)
    budget = parse_budget(cfg.budget) if cfg.budget is not None else None
    train = list(stream[0].train)
    shared = OmegaConf.to_container(cfg.experiment.estimator, resolve=True)
    policies: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    learners = OmegaConf.to_container(cfg.experiment.learners, resolve=True)
    for name, overrides in progress(learners.items(), verbose=cfg.verbose, desc="learners"):
        model = MemoryAsAction(budget, random_state=cfg.seed, **{**shared, **(overrides or {})})
        start = time.perf_counter()
        model.fit(train)
        seconds[name] = time.perf_counter() - start
        policies[name] = model.policy_
    for name in cfg.experiment.curators:
        policies[name] = make_curator(name)
        seconds[name] = 0.0
    records = []
    for experience in stream:
        level = experience.metadata.get("difficulty", {})
        for name, policy in policies.items():
            result = evaluate_policy(policy, experience.test, budget=budget)
            records.append(
                {
                    "method": name,
                    "difficulty": experience.index,
                    "n_questions": level.get("n_questions"),
                    "budget": budget if budget is not None else level.get("budget"),
                    "train_seconds": seconds[name],
                    **result,
                }
            )
    _plot(records, out_dir)
    return {"records": records, "table": format_memact_table(records)}


def _plot(records: list[dict[str, Any]], out_dir: Path) -> None:
    curves: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        if record["difficulty"] == 0:
            curves.setdefault(record["method"], []).append(
                (record["bytes_per_step"], record["success"])
            )
    figure = plot_accuracy_vs_memory(
        curves, path=out_dir / "success_vs_context_bytes.png", metric="strict success"
    )
    figure.clear()


def format_memact_table(records: list[dict[str, Any]]) -> str:
    """An aligned text table of the records of :func:`run_memact`.

    Examples
    --------
    >>> print(format_memact_table([{"method": "fifo", "difficulty": 0, "n_questions": 2,
    ...     "budget": 240, "success": 0.75, "partial": 0.8, "overflow": 0.0,
    ...     "bytes_per_step": 160.0, "tokens_per_step": 40.0, "edits": 4.0,
    ...     "train_seconds": 0.0}]))
    method  K  budget  strict  partial  overflow  bytes/step  tokens/step  edits  train s
    fifo    2     240   0.750    0.800     0.000       160.0         40.0    4.0      0.0
    """
    header = ["method", "K", "budget", "strict", "partial", "overflow", "bytes/step"]
    header += ["tokens/step", "edits", "train s"]
    rows = [header]
    for r in records:
        rows.append(
            [
                r["method"],
                str(r["n_questions"]),
                str(r["budget"]),
                f"{r['success']:.3f}",
                f"{r['partial']:.3f}",
                f"{r['overflow']:.3f}",
                f"{r['bytes_per_step']:.1f}",
                f"{r['tokens_per_step']:.1f}",
                f"{r['edits']:.1f}",
                f"{r['train_seconds']:.1f}",
            ]
        )
    return format_table(rows[0], rows[1:])
