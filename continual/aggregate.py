"""``continual-aggregate``: merge the jobs of a Hydra sweep into one table, figure and JSON.

A sweep (``continual-run -m``, on any Hydra launcher) writes one folder per job,
``multirun/<date>/<time>/<job>/results.json``. :func:`aggregate` reads the runs of every job
(the ``"runs"`` that :func:`continual.runner.run_stream_experiment` writes), groups them by
method and budget, and reports over seeds, as mean ± sample standard deviation:

- the average incremental score, the last score, forgetting, the bytes stored at the end
  (the ledger's total) and the wall time, per method and budget;
- MEMO's AUC-A and AUC-L per method, computed per seed over that seed's budgets;
- ``accuracy_vs_memory.png``: each method's mean average incremental score against its mean
  bytes, with error bars of one standard deviation;
- ``aggregate.json``: all of the above and the jobs merged or skipped.

A job whose ``results.json`` lacks the standard runs (an experiment with its own run
function, such as ``recsys_budget`` or ``memact_recall``) is skipped and reported. When the
jobs of a sweep differ in an override other than ``seed`` and ``budget`` (read from each job's
``.hydra/overrides.yaml``, for example ``experiment.train.lr=0.1,0.01``), runs are kept apart
by it, and the override is shown after the method's name::

    continual-run -m hydra/launcher=joblib budget=60KB,120KB seed=0,1
    continual-aggregate multirun/<date>/<time>
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from continual.budget import format_bytes
from continual.evaluation import MEMORY_UNITS, ScoreMatrix, auc_a, auc_l
from continual.figures import plot_accuracy_vs_memory
from continual.tables import format_cell, format_table

__all__ = [
    "SweepRun",
    "aggregate",
    "auc_by_method",
    "format_auc",
    "format_summary",
    "load_runs",
    "main",
    "mean_sd",
    "summarise",
]

#: Keys a run of the standard ``"runs"`` format holds.
_RUN_KEYS = ("method", "budget", "scores", "ledger", "seconds")
#: Overrides that make no variant: seed and budget are what runs are averaged over and grouped
#: by, the experiment is grouped by its name, and ``hydra...`` overrides choose where jobs run.
_GRID_KEYS = ("seed", "budget", "experiment")
FIGURE = "accuracy_vs_memory.png"
RESULTS = "aggregate.json"


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: one method at one budget in one job (one seed).

    Parameters
    ----------
    job
        The job's folder, relative to the sweep folder (``"0"``, ``"1"``, ...).
    experiment
        The experiment's name.
    variant
        The overrides in which this job differs from others apart from seed and budget,
        such as ``"experiment.train.lr=0.1"``; empty when there are none.
    seed
        The job's seed.
    method
        The method's name in the experiment.
    budget
        The budget in bytes; None when unlimited.
    metric
        The name of the score in ``scores``.
    scores
        The run's score matrix for ``metric``.
    total
        Bytes stored at the end of the run (the ledger's total).
    seconds
        Wall time of the run.

    Examples
    --------
    >>> from continual.evaluation import ScoreMatrix
    >>> run = SweepRun("0", "demo", "", 0, "replay", 60_000, "score",
    ...                ScoreMatrix.from_array([[0.9, 0.0], [0.5, 0.7]]), 59_949, 1.5)
    >>> run.label(several_experiments=False), run.scores.last_accuracy()
    ('replay', 0.6)
    """

    job: str
    experiment: str
    variant: str
    seed: int
    method: str
    budget: int | None
    metric: str
    scores: ScoreMatrix
    total: int
    seconds: float

    def label(self, *, several_experiments: bool) -> str:
        """The method's name, after its experiment's when a sweep holds several experiments,
        and before its variant's overrides when it has any."""
        name = f"{self.experiment}/{self.method}" if several_experiments else self.method
        return f"{name} [{self.variant}]" if self.variant else name


def load_runs(
    folder: str | Path, *, metric: str | None = None
) -> tuple[list[SweepRun], list[dict[str, str]]]:
    """Read the runs of every job of a sweep folder.

    Parameters
    ----------
    folder
        A Hydra multirun folder (``multirun/<date>/<time>``); every ``results.json`` under it
        is read, in job order.
    metric
        The score to read; None reads each run's first score (``"score"`` for the
        classification experiments).

    Returns
    -------
    tuple
        The runs, and one ``{"job": ..., "reason": ...}`` per job skipped because its
        results do not hold runs in the standard format (or not ``metric``).

    Examples
    --------
    A job that is not in the standard format is skipped, with the reason:

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> tmp = tempfile.TemporaryDirectory()
    >>> (Path(tmp.name) / "0").mkdir()
    >>> _ = (Path(tmp.name) / "0" / "results.json").write_text('{"experiment": "other"}')
    >>> runs, skipped = load_runs(tmp.name)
    >>> runs, skipped[0]["reason"]
    ([], "experiment 'other' wrote no 'runs' list (its run function has its own results format)")
    >>> tmp.cleanup()

    :func:`aggregate` shows runs read from a sweep.
    """
    folder = Path(folder)
    paths = _results_files(folder)
    variants = _variants(paths)
    runs: list[SweepRun] = []
    skipped: list[dict[str, str]] = []
    for path in paths:
        job = path.parent.relative_to(folder).as_posix()
        data = json.loads(path.read_text())
        reason = _nonstandard(data, metric)
        if reason is not None:
            skipped.append({"job": job, "reason": reason})
            continue
        metric = metric or next(iter(data["runs"][0]["scores"]))
        runs += [_sweep_run(job, data, run, variants[path], metric) for run in data["runs"]]
    return runs, skipped


def _results_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ValueError(
            f"folder must be a sweep folder such as multirun/<date>/<time>, got {str(folder)!r}, "
            "which is not a directory"
        )
    paths = sorted(folder.rglob("results.json"), key=lambda p: _job_order(p, folder))
    if not paths:
        raise ValueError(
            f"folder={str(folder)!r} holds no results.json; expected a Hydra multirun folder "
            "(multirun/<date>/<time>) whose job folders 0/, 1/, ... each hold the results.json "
            "that continual-run writes"
        )
    return paths


def _job_order(path: Path, folder: Path) -> tuple[tuple[int, int | str], ...]:
    """Job folders in numeric order: 2 before 10."""
    parts = path.parent.relative_to(folder).parts
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _nonstandard(data: Any, metric: str | None) -> str | None:
    """Why a job's results cannot be aggregated, or None when they can."""
    name = data.get("experiment") if isinstance(data, Mapping) else None
    runs = data.get("runs") if isinstance(data, Mapping) else None
    if not isinstance(runs, list) or not runs:
        return (
            f"experiment {name!r} wrote no 'runs' list (its run function has its own results "
            "format)"
        )
    if "seed" not in data:
        return f"experiment {name!r} wrote no 'seed'"
    for k, run in enumerate(runs):
        missing = [key for key in _RUN_KEYS if not isinstance(run, Mapping) or key not in run]
        if missing:
            return (
                f"experiment {name!r}: runs[{k}] lacks {missing}, so its runs are not in the "
                "standard format of continual.runner.run_stream_experiment"
            )
        if metric is not None and metric not in run["scores"]:
            metrics = list(run["scores"])
            return f"experiment {name!r}: runs[{k}] has no metric {metric!r} (it has {metrics})"
    return None


def _sweep_run(
    job: str, data: Mapping[str, Any], run: Mapping[str, Any], variant: str, metric: str
) -> SweepRun:
    return SweepRun(
        job=job,
        experiment=str(data.get("experiment")),
        variant=variant,
        seed=data["seed"],
        method=run["method"],
        budget=run["budget"],
        metric=metric,
        scores=ScoreMatrix.from_dict(run["scores"][metric]),
        total=run["ledger"]["total"],
        seconds=float(run["seconds"]),
    )


def _variants(paths: Sequence[Path]) -> dict[Path, str]:
    """Each job's overrides that vary across jobs, apart from the grid's seed and budget and
    Hydra's own settings, as ``"key=value key=value"``."""
    overrides = {path: _overrides(path.parent / ".hydra" / "overrides.yaml") for path in paths}
    keys = sorted({key for job in overrides.values() for key in job})
    varying = [key for key in keys if len({job.get(key) for job in overrides.values()}) > 1]
    return {
        path: " ".join(f"{key}={job.get(key)}" for key in varying)
        for path, job in overrides.items()
    }


def _overrides(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    result = {}
    for override in OmegaConf.to_container(OmegaConf.load(path)):
        key, _, value = str(override).lstrip("+~").partition("=")
        if key not in _GRID_KEYS and not key.startswith("hydra"):
            result[key] = value
    return result


def mean_sd(values: Iterable[float]) -> dict[str, Any]:
    """The mean and sample standard deviation (``ddof=1``) of values over seeds.

    Parameters
    ----------
    values
        One value per seed.

    Returns
    -------
    dict
        ``{"mean": float, "sd": float or None, "n": int}``; ``sd`` is None for a single value.

    Examples
    --------
    >>> mean_sd([0.5, 0.7])
    {'mean': 0.6, 'sd': 0.1414..., 'n': 2}
    >>> mean_sd([0.5])
    {'mean': 0.5, 'sd': None, 'n': 1}
    """
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        raise ValueError("values must hold at least one value, got none")
    sd = float(np.std(array, ddof=1)) if array.size > 1 else None
    return {"mean": float(np.mean(array)), "sd": sd, "n": int(array.size)}


def _group(runs: Iterable[SweepRun], key: Callable[[SweepRun], Hashable]) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return groups


def _budget_order(budget: int | None) -> float:
    return float("inf") if budget is None else budget


def _check_one_run_per_seed(runs: Sequence[SweepRun], several: bool) -> None:
    cells = _group(runs, lambda r: (r.experiment, r.variant, r.method, r.budget, r.seed))
    for (_, _, _, budget, seed), same in cells.items():
        if len(same) > 1:
            raise ValueError(
                f"runs hold {same[0].label(several_experiments=several)!r} at budget {budget} "
                f"with seed {seed} {len(same)} times (jobs {[r.job for r in same]}); a sweep "
                "must not repeat a (method, budget, seed) point"
            )


def _identity(run: SweepRun, several: bool) -> dict[str, Any]:
    """What names a group of runs: its label, experiment, variant and method."""
    return {
        "label": run.label(several_experiments=several),
        "experiment": run.experiment,
        "variant": run.variant,
        "method": run.method,
    }


def summarise(runs: Sequence[SweepRun]) -> list[dict[str, Any]]:
    """Mean ± standard deviation over seeds of every method at every budget.

    Parameters
    ----------
    runs
        The runs of a sweep (:func:`load_runs`).

    Returns
    -------
    list of dict
        One per method and budget, in the order methods first appear and by budget (None,
        unlimited, last): ``label``, ``experiment``, ``variant``, ``method``, ``budget``,
        ``seeds``, ``jobs``, and :func:`mean_sd` of ``average_incremental``, ``last``,
        ``forgetting``, ``total`` (bytes) and ``seconds``.

    Examples
    --------
    >>> from continual.evaluation import ScoreMatrix
    >>> runs = [SweepRun(str(seed), "demo", "", seed, "replay", 60_000, "score",
    ...                  ScoreMatrix.from_array([[last]]), 59_000, 1.0)
    ...         for seed, last in enumerate([0.5, 0.7])]
    >>> [group] = summarise(runs)
    >>> group["label"], group["seeds"], group["last"]
    ('replay', [0, 1], {'mean': 0.6, 'sd': 0.1414..., 'n': 2})
    """
    several = len({run.experiment for run in runs}) > 1
    _check_one_run_per_seed(runs, several)
    methods = _group(runs, lambda r: (r.experiment, r.variant, r.method))
    groups = []
    for same_method in methods.values():
        by_budget = _group(same_method, lambda r: r.budget)
        for budget in sorted(by_budget, key=_budget_order):
            group = sorted(by_budget[budget], key=lambda r: r.seed)
            first = group[0]
            groups.append(
                {
                    **_identity(first, several),
                    "budget": budget,
                    "seeds": [r.seed for r in group],
                    "jobs": [r.job for r in group],
                    "average_incremental": mean_sd(
                        r.scores.average_incremental_accuracy() for r in group
                    ),
                    "last": mean_sd(r.scores.last_accuracy() for r in group),
                    "forgetting": mean_sd(r.scores.forgetting() for r in group),
                    "total": mean_sd(r.total for r in group),
                    "seconds": mean_sd(r.seconds for r in group),
                }
            )
    return groups


def auc_by_method(runs: Sequence[SweepRun], *, unit: str = "MB") -> list[dict[str, Any]]:
    """MEMO's AUC-A and AUC-L of every method, per seed over its budgets, then over seeds.

    A seed counts when the method ran at two budgets or more with it (unlimited runs are left
    out); the areas are under the average incremental score (AUC-A) and the last score
    (AUC-L) against the budget, by :func:`continual.evaluation.auc_a` and
    :func:`~continual.evaluation.auc_l`.

    Parameters
    ----------
    runs
        The runs of a sweep (:func:`load_runs`).
    unit
        Memory unit of the x axis (``"B"``, ``"KB"``, ``"MB"``, ``"KiB"`` or ``"MiB"``).

    Returns
    -------
    list of dict
        One per method: ``label``, ``experiment``, ``variant``, ``method``, ``budgets``
        (bytes), ``seeds`` (those that count), ``unit``, and ``auc_a`` and ``auc_l``:
        :func:`mean_sd` with the per-seed ``values``, or None when no seed counts.

    Examples
    --------
    >>> from continual.evaluation import ScoreMatrix
    >>> runs = [SweepRun("0", "demo", "", seed, "replay", budget, "score",
    ...                  ScoreMatrix.from_array([[score]]), budget, 1.0)
    ...         for seed, budget, score in [(0, 1000, 0.4), (0, 3000, 0.6),
    ...                                     (1, 1000, 0.6), (1, 3000, 0.8)]]
    >>> [row] = auc_by_method(runs, unit="KB")
    >>> row["auc_a"]
    {'mean': 1.2, 'sd': 0.2828..., 'n': 2, 'values': [1.0, 1.4]}
    """
    several = len({run.experiment for run in runs}) > 1
    _check_one_run_per_seed(runs, several)
    rows = []
    for same_method in _group(runs, lambda r: (r.experiment, r.variant, r.method)).values():
        bounded = [r for r in same_method if r.budget is not None]
        per_seed = {
            seed: sorted(seed_runs, key=lambda r: r.budget)
            for seed, seed_runs in sorted(_group(bounded, lambda r: r.seed).items())
            if len(seed_runs) > 1
        }
        first = same_method[0]
        rows.append(
            {
                **_identity(first, several),
                "budgets": sorted({r.budget for r in bounded}),
                "seeds": list(per_seed),
                "unit": unit,
                "auc_a": _auc_stats(auc_a, per_seed.values(), unit),
                "auc_l": _auc_stats(auc_l, per_seed.values(), unit),
            }
        )
    return rows


def _auc_stats(
    auc: Callable[..., float], seeds: Iterable[list[SweepRun]], unit: str
) -> dict[str, Any] | None:
    values = [auc([r.budget for r in runs], [r.scores for r in runs], unit=unit) for runs in seeds]
    return {**mean_sd(values), "values": values} if values else None


def _pm(stats: Mapping[str, Any] | None, spec: str | None = None) -> str:
    """``mean ± sd`` formatted by the table formatter's cell rule."""
    if stats is None:
        return format_cell(None)
    mean = format_cell(stats["mean"], spec)
    return mean if stats["sd"] is None else f"{mean} ± {format_cell(stats['sd'], spec)}"


def format_summary(groups: Sequence[Mapping[str, Any]]) -> str:
    """The table of :func:`summarise`: mean ± sd over seeds per method and budget.

    Examples
    --------
    >>> from continual.evaluation import ScoreMatrix
    >>> runs = [SweepRun(str(seed), "demo", "", seed, "replay", 60_000, "score",
    ...                  ScoreMatrix.from_array([[last]]), 59_000 + seed, 1.0)
    ...         for seed, last in enumerate([0.5, 0.7])]
    >>> print(format_summary(summarise(runs)))
    method    budget  seeds            avg           last         forget       total    seconds
    replay  60.00 kB      2  0.600 ± 0.141  0.600 ± 0.141  0.000 ± 0.000  59,000 ± 1  1.0 ± 0.0
    """
    header = ["method", "budget", "seeds", "avg", "last", "forget", "total", "seconds"]
    rows = [
        [
            group["label"],
            format_bytes(_budget_order(group["budget"])),
            len(group["seeds"]),
            _pm(group["average_incremental"]),
            _pm(group["last"]),
            _pm(group["forgetting"]),
            _pm(group["total"], ",.0f"),
            _pm(group["seconds"], ".1f"),
        ]
        for group in groups
    ]
    return format_table(header, rows)


def format_auc(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table of :func:`auc_by_method`: AUC-A and AUC-L, mean ± sd over seeds.

    Examples
    --------
    >>> row = {"label": "replay", "budgets": [1000, 3000], "seeds": [0, 1], "unit": "KB",
    ...        "auc_a": {"mean": 1.2, "sd": 0.28, "n": 2}, "auc_l": None}
    >>> print(format_auc([row]))
    method  budgets  seeds  AUC-A (score x KB)  AUC-L (score x KB)
    replay        2      2       1.200 ± 0.280                   -
    """
    unit = rows[0]["unit"] if rows else "MB"
    area_a, area_l = f"AUC-A (score x {unit})", f"AUC-L (score x {unit})"
    header = ["method", "budgets", "seeds", area_a, area_l]
    table = [
        [row["label"], len(row["budgets"]), len(row["seeds"]), _pm(row["auc_a"]), _pm(row["auc_l"])]
        for row in rows
    ]
    return format_table(header, table)


def _plot(groups: Sequence[Mapping[str, Any]], metric: str, path: Path) -> None:
    curves: dict[str, list[tuple[float, float]]] = {}
    errors: dict[str, list[float]] = {}
    for group in groups:
        score = group["average_incremental"]
        curves.setdefault(group["label"], []).append((group["total"]["mean"], score["mean"]))
        errors.setdefault(group["label"], []).append(np.nan if score["sd"] is None else score["sd"])
    largest = max(memory for points in curves.values() for memory, _ in points)
    unit = "MB" if largest >= 10**6 else "kB" if largest >= 10**3 else "B"
    label = f"{metric}: avg incremental (mean ± sd)"
    plot_accuracy_vs_memory(curves, errors=errors, metric=label, unit=unit, path=path)


def aggregate(folder: str | Path, *, metric: str | None = None, unit: str = "MB") -> dict[str, Any]:
    """Merge the jobs of a sweep folder: tables, AUCs, a figure and ``aggregate.json``.

    Parameters
    ----------
    folder
        A Hydra multirun folder (``multirun/<date>/<time>``).
    metric
        The score to aggregate; None takes each run's first (``"score"``).
    unit
        Memory unit of the AUCs' x axis (``"B"``, ``"KB"``, ``"MB"``, ``"KiB"`` or ``"MiB"``).

    Returns
    -------
    dict
        What ``aggregate.json`` holds: ``folder``, ``metric``, ``jobs`` (merged), ``skipped``
        (job and reason), ``groups`` (:func:`summarise`), ``auc`` (:func:`auc_by_method`), the
        two printed tables ``table`` and ``auc_table``, and the ``figure``'s file name. The
        figure, ``accuracy_vs_memory.png``, and ``aggregate.json`` are written to ``folder``.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from continual.evaluation import ScoreMatrix
    >>> tmp = tempfile.TemporaryDirectory()
    >>> sweep = Path(tmp.name)
    >>> for job, (seed, budget, score) in enumerate([(0, 1000, 0.4), (0, 3000, 0.6),
    ...                                              (1, 1000, 0.6), (1, 3000, 0.8)]):
    ...     run = {"method": "replay", "budget": budget, "seconds": 2.0,
    ...            "scores": {"score": ScoreMatrix.from_array([[score]]).to_dict()},
    ...            "ledger": {"total": budget - 10}}
    ...     (sweep / str(job)).mkdir()
    ...     results = {"experiment": "demo", "seed": seed, "runs": [run]}
    ...     _ = (sweep / str(job) / "results.json").write_text(json.dumps(results))
    >>> merged = aggregate(sweep, unit="KB")
    >>> print(merged["table"])
    method   budget  seeds            avg           last         forget      total    seconds
    replay  1.00 kB      2  0.500 ± 0.141  0.500 ± 0.141  0.000 ± 0.000    990 ± 0  2.0 ± 0.0
    replay  3.00 kB      2  0.700 ± 0.141  0.700 ± 0.141  0.000 ± 0.000  2,990 ± 0  2.0 ± 0.0
    >>> merged["auc"][0]["auc_l"]["mean"], merged["jobs"]
    (1.2, ['0', '1', '2', '3'])
    >>> sorted(p.name for p in sweep.iterdir() if p.is_file())
    ['accuracy_vs_memory.png', 'aggregate.json']
    >>> tmp.cleanup()
    """
    if unit not in MEMORY_UNITS:
        raise ValueError(f"unit must be one of {sorted(MEMORY_UNITS)}, got {unit!r}")
    folder = Path(folder)
    runs, skipped = load_runs(folder, metric=metric)
    if not runs:
        reasons = "; ".join(f"{s['job']}: {s['reason']}" for s in skipped)
        raise ValueError(
            f"folder={str(folder)!r} holds no runs in the standard format to aggregate ({reasons})"
        )
    groups = summarise(runs)
    aucs = auc_by_method(runs, unit=unit)
    _plot(groups, runs[0].metric, folder / FIGURE)
    merged = {
        "folder": str(folder),
        "metric": runs[0].metric,
        "jobs": list(dict.fromkeys(run.job for run in runs)),
        "skipped": skipped,
        "groups": groups,
        "auc": aucs,
        "table": format_summary(groups),
        "auc_table": format_auc(aucs),
        "figure": FIGURE,
    }
    (folder / RESULTS).write_text(json.dumps(merged, indent=2))
    return merged


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="continual-aggregate",
        description=(
            "Merge the jobs of a continual-run sweep (a Hydra multirun folder): print mean ± sd "
            "over seeds per method and budget and the AUC-A / AUC-L per method, and write "
            f"{FIGURE} and {RESULTS} into the folder."
        ),
        epilog="example: continual-aggregate multirun/2026-12-01/04-33-17",
    )
    parser.add_argument("folder", type=Path, help="the sweep folder, multirun/<date>/<time>")
    parser.add_argument(
        "--metric", default=None, help="the score to aggregate (default: each run's first)"
    )
    parser.add_argument(
        "--unit",
        default="MB",
        choices=sorted(MEMORY_UNITS),
        help="memory unit of the AUCs' x axis (default: MB)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``continual-aggregate`` console script.

    Examples
    --------
    >>> main(["/no/such/sweep"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        merged = aggregate(args.folder, metric=args.metric, unit=args.unit)
    except ValueError as error:
        parser.error(str(error))
    for skip in merged["skipped"]:
        print(f"skipped job {skip['job']}: {skip['reason']}", file=sys.stderr)
    print(f"{len(merged['jobs'])} jobs merged, metric {merged['metric']!r}")
    print(merged["table"])
    print()
    print(merged["auc_table"])
    print(f"wrote {args.folder / FIGURE} and {args.folder / RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
