"""Hydra run function of the ``memact_recall`` experiment.

Run it with ``continual-run experiment=memact_recall``. The experiment's stream is built by Hydra
from its ``_target_`` (``streams.episodes.recall_stream``); episodes are used through their
attributes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from continual.budget import parse_budget
from continual.figures import plot_accuracy_vs_memory
from continual.progress import progress
from continual.run_folder import RunFolder
from continual.tables import format_table
from strategies.memact.curators import make_curator
from strategies.memact.estimator import MemoryAsAction
from strategies.memact.evaluation import evaluate_policy

__all__ = ["format_memact_table", "run_memact"]


def run_memact(cfg: DictConfig, folder: RunFolder) -> dict[str, Any]:
    """Train the learned curators on the first experience, evaluate every method on every one.

    The first experience of ``cfg.experiment.stream`` is the training difficulty; every
    experience's held-out ``test`` episodes are evaluated (the later ones are harder). Each
    learner of ``cfg.experiment.learners`` is a :class:`MemoryAsAction` fitted once, with the
    shared ``cfg.experiment.estimator`` settings and its own overrides; each name of
    ``cfg.experiment.curators`` is a heuristic. ``cfg.experiment.context_budget`` (when set)
    replaces the episodes' context budget; the top-level ``cfg.budget`` is the learners'
    byte budget (policy, reference, optimizer; null measures only).

    Writes ``success_vs_context_bytes.png`` (strict success against the mean context bytes
    per step, on the first difficulty), TensorBoard logs under ``tb/<learner>/`` (the DCPO
    loss of each update and the ledger) and ``tb/<learner>_warm_start/`` (the warm-start loss
    per epoch), and returns one record per (method, difficulty) and the table.
    """
    exp = cfg.experiment
    stream = instantiate(exp.stream)
    context_budget = parse_budget(exp.get("context_budget"))
    shared = OmegaConf.to_container(exp.estimator, resolve=True)
    learners = OmegaConf.to_container(exp.learners, resolve=True)
    methods: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    stored: dict[str, int] = {}
    for name, overrides in progress(learners.items(), verbose=cfg.verbose, desc="learners"):
        settings = {**shared, **(overrides or {})}
        model = MemoryAsAction(
            cfg.budget, context_budget=context_budget, random_state=cfg.seed, **settings
        )
        start = time.perf_counter()
        model.fit(stream[0].train)
        seconds[name] = time.perf_counter() - start
        ledger = model.accountant_.ledger()
        folder.log_experience(name, 0, losses=model.losses_, ledger=ledger.accounts)
        folder.log_experience(f"{name}_warm_start", 0, losses=model.bc_losses_)
        methods[name], stored[name] = model.policy_, ledger.total
    for name in exp.curators:
        methods[name] = make_curator(name)
    records = []
    for experience in stream:
        level = experience.metadata.get("difficulty", {})
        for name, policy in methods.items():
            result = evaluate_policy(policy, experience.test, budget=context_budget)
            records.append(
                {
                    "method": name,
                    "difficulty": experience.index,
                    "n_questions": level.get("n_questions"),
                    "budget": context_budget if context_budget is not None else level.get("budget"),
                    "learner_bytes": stored.get(name),
                    "train_seconds": seconds.get(name, 0.0),
                    **result,
                }
            )
    curves = {
        r["method"]: [(r["bytes_per_step"], r["success"])] for r in records if r["difficulty"] == 0
    }
    figure = plot_accuracy_vs_memory(curves, metric="strict success", unit="B")
    figure.axes[0].set_xlabel("mean context bytes per step (int32 tokens)")
    folder.figure("success_vs_context_bytes", figure)
    return {"records": records, "table": format_memact_table(records)}


_COLUMNS = (
    ("method", "method"),
    ("K", "n_questions"),
    ("budget", "budget"),
    ("strict", "success"),
    ("partial", "partial"),
    ("overflow", "overflow"),
    ("bytes/step", "bytes_per_step"),
    ("tokens/step", "tokens_per_step"),
    ("edits", "edits"),
    ("learner bytes", "learner_bytes"),
    ("train s", "train_seconds"),
)


def format_memact_table(records: Sequence[dict[str, Any]]) -> str:
    """A table of the records of :func:`run_memact` (``budget`` is the context budget;
    ``learner bytes``, the learned curator's stored bytes, is blank for heuristics).

    Examples
    --------
    >>> print(format_memact_table([{"method": "fifo", "n_questions": 2, "budget": 240,
    ...     "success": 0.75, "partial": 0.8, "overflow": 0.0, "bytes_per_step": 160.0,
    ...     "tokens_per_step": 40.0, "edits": 4.0, "train_seconds": 0.0}]))
    method  K  budget  strict  partial  overflow  bytes/step  tokens/step  edits  learner bytes  train s
    fifo    2     240   0.750    0.800     0.000       160.0         40.0    4.0              -      0.0
    """  # noqa: E501
    header = [title for title, _ in _COLUMNS]
    rows = [[record.get(key) for _, key in _COLUMNS] for record in records]
    formats = {"bytes/step": ".1f", "tokens/step": ".1f", "edits": ".1f", "train s": ".1f"}
    return format_table(header, rows, formats=formats)
