"""The streaming protocol: train window by window, fill the score matrices R[i][j]."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from continual.evaluation import ScoreMatrix
from continual.figures import plot_ledger
from continual.progress import progress
from continual.tables import format_table
from tpp.estimator import TPPEstimator

__all__ = [
    "format_stream_table",
    "method_factories",
    "peak_bytes",
    "plot_scores",
    "run_stream",
    "run_tpp_stream",
    "save_score_figures",
    "stream_oracle",
]

METRICS = ("log_likelihood", "accuracy", "rmse")


def _summary(matrix: np.ndarray) -> dict[str, float | None]:
    scores = ScoreMatrix.from_array(matrix_lower(matrix))
    forward = [matrix[i, i + 1] for i in range(len(matrix) - 1)]
    return {
        "final_average": scores.last_accuracy(),
        "average_incremental": scores.average_incremental_accuracy(),
        "forgetting": scores.forgetting(),
        "backward_transfer": scores.backward_transfer(),
        "forward": float(np.mean(forward)) if forward else None,
    }


def matrix_lower(matrix: np.ndarray) -> np.ndarray:
    """The matrix with entries above the diagonal (forward scores) set to NaN."""
    return np.where(np.tril(np.ones_like(matrix, dtype=bool)), matrix, np.nan)


def run_stream(
    stream: Any,
    methods: Mapping[str, Callable[[], TPPEstimator]],
    *,
    n_draws: int = 4,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train every method on the stream; evaluate after each window on windows ``0..i+1``.

    Each experience's ``train`` and ``test`` are event sequences. For every method the result
    holds the matrices ``R[i][j]`` of log-likelihood per event, accuracy and RMSE (NaN where not
    evaluated; ``R[i][i+1]`` is the forward score), their summaries (final average, forgetting,
    backward transfer, forward; for RMSE lower is better, so its forgetting is computed on
    ``-RMSE``), the final ledger, the ledger timeline and the wall time.

    Parameters
    ----------
    stream
        A ``streams.Stream`` of event-sequence experiences.
    methods
        Method name to a factory returning a fresh estimator.
    n_draws
        Thinning draws per prediction.
    verbose
        0 silences the progress bar.
    """
    T = len(stream)
    results: dict[str, Any] = {}
    for name, factory in progress(methods.items(), verbose=verbose, desc="methods"):
        estimator = factory()
        matrices = {metric: np.full((T, T), np.nan) for metric in METRICS}
        start = time.perf_counter()
        for i, experience in enumerate(stream):
            estimator.partial_fit(experience.train)
            for j in range(min(i + 2, T)):
                scores = estimator.evaluate(stream[j].test, n_draws=n_draws)
                for metric in METRICS:
                    matrices[metric][i, j] = scores[metric]
        seconds = time.perf_counter() - start
        summaries = {metric: _summary(matrices[metric]) for metric in METRICS}
        summaries["rmse"] = {
            key: (None if value is None else -value) if key != "forgetting" else value
            for key, value in _summary(-matrices["rmse"]).items()
        }
        results[name] = {
            "matrices": {m: _nan_to_none(matrices[m]) for m in METRICS},
            "summary": summaries,
            "ledger": estimator.accountant_.ledger().to_dict(),
            "timeline": estimator.accountant_.timeline(),
            "seconds": seconds,
        }
    return results


def _nan_to_none(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def plot_scores(
    results: Mapping[str, Any], metric: str, *, oracle: list[float] | None = None, path: Any = None
) -> Figure:
    """Average ``metric`` over the windows seen so far, after each window, one line per method.

    ``oracle`` (the true-parameter log-likelihood of each window) is drawn as a dashed line of
    its running mean.
    """
    figure = Figure(figsize=(7.5, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, result in results.items():
        matrix = np.array(result["matrices"][metric], dtype=float)
        seen = np.nanmean(matrix_lower(matrix), axis=1)
        axes.plot(np.arange(1, len(seen) + 1), seen, marker="o", label=name)
    if oracle is not None:
        running = np.cumsum(oracle) / np.arange(1, len(oracle) + 1)
        axes.plot(np.arange(1, len(oracle) + 1), running, "k--", label="oracle")
    axes.set_xlabel("windows learned")
    axes.set_ylabel(f"{metric} (mean over seen windows)")
    figure.legend(loc="outside right upper", fontsize="small")
    if path is not None:
        figure.savefig(path)
    return figure


def stream_oracle(stream: Any) -> list[float] | None:
    """Each window's true-parameter log-likelihood (``metadata["oracle"]``), or None when a
    window has none (real data)."""
    oracle = [exp.metadata.get("oracle") for exp in stream]
    return None if any(o is None for o in oracle) else [float(o) for o in oracle]


def save_score_figures(
    results: Mapping[str, Any], oracle: list[float] | None, directory: Path, *, prefix: str
) -> None:
    """Write :func:`plot_scores` of every metric to ``directory/<prefix><metric>.png``; the
    oracle is drawn on the log-likelihood figure."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for metric in METRICS:
        plot_scores(
            results,
            metric,
            oracle=oracle if metric == "log_likelihood" else None,
            path=directory / f"{prefix}{metric}.png",
        ).clear()


def peak_bytes(result: Mapping[str, Any]) -> int:
    """The largest ledger total after any window of one method's :func:`run_stream` result.

    Examples
    --------
    >>> peak_bytes({"timeline": [[0, {"model": 10, "optimizer": 20}], [1, {"model": 10}]]})
    30
    """
    return max(sum(accounts.values()) for _, accounts in result["timeline"])


def format_stream_table(results: Mapping[str, Any]) -> str:
    """An aligned table: final average, forgetting and forward score per metric, and the bytes
    of the final ledger and of the largest one after any window."""
    header = [
        "method",
        "LL final",
        "LL forget",
        "LL fwd",
        "acc final",
        "acc forget",
        "RMSE final",
        "bytes final",
        "bytes peak",
    ]
    rows = [header]
    for name, result in results.items():
        s = result["summary"]
        fwd = s["log_likelihood"]["forward"]
        rows.append(
            [
                name,
                f"{s['log_likelihood']['final_average']:.3f}",
                f"{s['log_likelihood']['forgetting']:.3f}",
                "-" if fwd is None else f"{fwd:.3f}",
                f"{s['accuracy']['final_average']:.3f}",
                f"{s['accuracy']['forgetting']:.3f}",
                f"{s['rmse']['final_average']:.3f}",
                f"{result['ledger']['total']:,}",
                f"{peak_bytes(result):,}",
            ]
        )
    return format_table(rows[0], rows[1:])


def method_factories(
    specs: Mapping[str, Any],
    train: Mapping[str, Any],
    *,
    budget: int | str | None,
    seed: int,
    only: Collection[str] | None = None,
) -> dict[str, Callable[[], TPPEstimator]]:
    """One factory per method spec (Hydra ``_target_`` dicts) with the shared settings.

    Every method gets ``train``, ``budget`` and ``random_state=seed``; a spec that names its own
    ``budget`` keeps it (e.g. a replay run with a smaller buffer). ``only`` keeps a subset.
    """
    factories = {}
    for name, spec in specs.items():
        if only is not None and name not in only:
            continue
        shared = {**train, "random_state": seed}
        if "budget" not in spec:
            shared["budget"] = budget
        factories[name] = lambda spec=spec, shared=shared: instantiate(spec, **shared)
    return factories


def run_tpp_stream(cfg: Any, out_dir: Path) -> dict[str, Any]:
    """Hydra run function of the ``tpp_stream_*`` experiments (see ``continual/conf``).

    Instantiates ``cfg.experiment.stream`` and every entry of ``cfg.experiment.methods`` with the
    settings of ``cfg.experiment.train``, the run's ``budget`` (the experiment's ``budget`` when
    the top-level one is null; a method's own budget wins) and ``seed``, runs
    :func:`run_stream`, and writes one figure per metric (``scores_<metric>.png``, with the
    oracle on synthetic data) and one ledger figure per method (``ledger_<method>.png``).
    """
    out_dir = Path(out_dir)
    stream = instantiate(cfg.experiment.stream)
    budget = cfg.budget if cfg.budget is not None else cfg.experiment.get("budget")
    train = dict(cfg.experiment.get("train") or {})
    methods = method_factories(cfg.experiment.methods, train, budget=budget, seed=cfg.seed)
    results = run_stream(
        stream, methods, n_draws=cfg.experiment.get("n_draws", 4), verbose=cfg.verbose
    )
    oracle = stream_oracle(stream)
    save_score_figures(results, oracle, out_dir, prefix="scores_")
    for name, result in results.items():
        plot_ledger(
            result["timeline"],
            path=out_dir / f"ledger_{name}.png",
            budget=result["ledger"]["budget"],
        ).clear()
    return {"methods": results, "oracle": oracle, "table": format_stream_table(results)}
