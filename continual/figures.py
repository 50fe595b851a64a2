"""Figures of a run: score against memory, the memory ledger over time, and a stream's
prequential curves.

Figures are built as :class:`matplotlib.figure.Figure` objects drawn by the Agg canvas, without
pyplot: nothing is shown, no global backend is changed and no figure is left in pyplot's registry.
Memory is given in bytes and drawn in MB (10**6 bytes), or in the decimal unit that suits the
numbers where a figure says so.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

__all__ = ["plot_accuracy_vs_memory", "plot_ledger", "plot_prequential", "plot_stream_scores"]

_BYTES_PER_MB = 10**6
_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def _new_figure(figsize: tuple[float, float] = (6.0, 4.0)) -> Figure:
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path | None) -> None:
    if path is not None:
        figure.savefig(path)


def _check_bytes(argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a number of bytes, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{argument} must be a non-negative finite number of bytes, got {value!r}")
    return value


def _curve_points(
    method: str, points: Any, per_unit: int = _BYTES_PER_MB, errors: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return the (memory in units of ``per_unit`` bytes, score, error or None) arrays of one
    method, sorted by memory."""
    try:
        pairs = [(memory, score) for memory, score in points]
    except (TypeError, ValueError):
        raise TypeError(
            f"curves[{method!r}] must be a sequence of (bytes, score) pairs, got {points!r}"
        ) from None
    if not pairs:
        raise ValueError(f"curves[{method!r}] must hold at least one (bytes, score) pair, got none")
    memory = np.array([_check_bytes(f"curves[{method!r}] memory", m) for m, _ in pairs], float)
    scores = np.array([score for _, score in pairs], dtype=float)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"curves[{method!r}] scores must be finite, got {scores.tolist()}")
    order = np.argsort(memory, kind="stable")
    bars = None if errors is None else _check_errors(method, errors, len(pairs))[order]
    return memory[order] / per_unit, scores[order], bars


def _check_errors(method: str, errors: Any, n: int) -> np.ndarray:
    """One error per point: non-negative, NaN where there is none (no bar)."""
    try:
        values = np.array(errors, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"errors[{method!r}] must be a sequence of numbers, got {errors!r}"
        ) from None
    if values.shape != (n,):
        raise ValueError(
            f"errors[{method!r}] must hold one error per point of curves[{method!r}] ({n}), "
            f"got {errors!r}"
        )
    if np.any(np.isinf(values)) or np.any(values < 0):
        raise ValueError(
            f"errors[{method!r}] must be non-negative (NaN for none), got {values.tolist()}"
        )
    return values


def plot_accuracy_vs_memory(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    *,
    path: str | Path | None = None,
    metric: str = "accuracy",
    unit: str = "MB",
    errors: Mapping[str, Sequence[float]] | None = None,
) -> Figure:
    """Plot each method's score against its memory, one line with markers per method.

    Parameters
    ----------
    curves
        Method name to ``(bytes, score)`` points; the points are sorted by bytes before drawing.
    path
        Where to save the figure; the format follows the suffix (PNG when there is none).
    metric
        Name of the score, used as the y label.
    unit
        Unit of the x axis: ``"B"``, ``"kB"``, ``"MB"`` (default) or ``"GB"`` (powers of 10);
        ``"B"`` draws small byte counts (an agent's context) readably.
    errors
        Optional method name to one error per point of ``curves[method]``, in the same order
        (a standard deviation over seeds, say), drawn as vertical error bars of that half
        height; NaN draws no bar. Methods it does not name are drawn without bars.

    Returns
    -------
    Figure
        The figure, with x in ``unit`` (MB: bytes / 10**6).

    Examples
    --------
    >>> figure = plot_accuracy_vs_memory({"replay": [(2_000_000, 0.6), (1_000_000, 0.5)]})
    >>> figure.axes[0].lines[0].get_xydata().tolist()
    [[1.0, 0.5], [2.0, 0.6]]
    >>> figure = plot_accuracy_vs_memory({"fifo": [(160, 0.75)]}, unit="B")
    >>> figure.axes[0].lines[0].get_xydata().tolist(), figure.axes[0].get_xlabel()
    ([[160.0, 0.75]], 'memory (B)')

    With error bars (the bars of a method are its container's third element):

    >>> figure = plot_accuracy_vs_memory({"replay": [(2_000_000, 0.6), (1_000_000, 0.5)]},
    ...                                  errors={"replay": [0.05, 0.1]})
    >>> [segment[:, 1].tolist() for segment in figure.axes[0].containers[0][2][0].get_segments()]
    [[0.4, 0.6], [0.55, 0.65]]
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves must be a non-empty mapping of method to points, got {curves!r}")
    if unit not in _UNITS:
        raise ValueError(f"unit must be one of {sorted(_UNITS)}, got {unit!r}")
    errors = {} if errors is None else errors
    if not isinstance(errors, Mapping) or not set(errors) <= set(curves):
        raise ValueError(
            f"errors must be a mapping whose methods are among curves' {list(curves)}, "
            f"got {errors!r}"
        )
    data = {
        str(method): _curve_points(method, points, _UNITS[unit], errors.get(method))
        for method, points in curves.items()
    }
    figure = _new_figure()
    ax = figure.add_subplot()
    handles = []  # in the order of curves, lines and error bars alike
    for method, (memory, scores, bars) in data.items():
        if bars is None:
            handles += ax.plot(memory, scores, marker="o", label=method)
        else:
            handles.append(
                ax.errorbar(memory, scores, yerr=bars, marker="o", capsize=3, label=method)
            )
    ax.set_xlabel(f"memory ({unit})")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles)
    _save(figure, path)
    return figure


def plot_stream_scores(
    curves: Mapping[str, Sequence[float]],
    *,
    metric: str = "accuracy",
    reference: Sequence[float] | None = None,
    reference_label: str = "reference",
    path: str | Path | None = None,
) -> Figure:
    """Plot, for each method, its score after each experience of a stream.

    Parameters
    ----------
    curves
        Method name to one score per experience learned (for example the incremental scores
        of a :class:`~continual.evaluation.ScoreMatrix`).
    metric
        The y label, with its unit (``"log-likelihood (nats/event)"``).
    reference
        An optional reference curve (an oracle), drawn dashed in black.
    reference_label
        Its legend label.
    path
        Where to save the figure.

    Returns
    -------
    Figure
        One line with markers per method; x is the number of experiences learned (integers).

    Examples
    --------
    >>> figure = plot_stream_scores({"replay": [0.9, 0.8], "finetune": [0.9, 0.5]})
    >>> [line.get_label() for line in figure.axes[0].lines]
    ['replay', 'finetune']
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves must be a non-empty mapping of method to scores, got {curves!r}")
    figure = _new_figure()
    ax = figure.add_subplot()
    markers = "osD^vP*X"
    for k, (method, scores) in enumerate(curves.items()):
        values = np.asarray(scores, dtype=float)
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, marker=markers[k % len(markers)], label=str(method), alpha=0.85)
    if reference is not None:
        values = np.asarray(reference, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, "k--", label=reference_label)
    ax.set_xlabel("experiences learned")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    figure.legend(loc="outside right upper", fontsize="small")
    _save(figure, path)
    return figure


def _ledger_table(
    snapshots: Sequence[tuple[float, Mapping[str, int]]],
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Return steps, account names (in order of appearance) and bytes of shape (accounts, steps)."""
    if isinstance(snapshots, (str, bytes)) or not isinstance(snapshots, Sequence) or not snapshots:
        raise ValueError(
            f"snapshots must be a non-empty sequence of (step, ledger) pairs, got {snapshots!r}"
        )
    steps, ledgers = [], []
    for k, snapshot in enumerate(snapshots):
        if not isinstance(snapshot, Sequence) or len(snapshot) != 2:
            raise TypeError(f"snapshots[{k}] must be a (step, ledger) pair, got {snapshot!r}")
        step, ledger = snapshot
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or not math.isfinite(step):
            raise TypeError(f"snapshots[{k}] step must be a finite number, got {step!r}")
        if not isinstance(ledger, Mapping):
            raise TypeError(f"snapshots[{k}] ledger must be a mapping, got {ledger!r}")
        for name, size in ledger.items():
            _check_bytes(f"snapshots[{k}] ledger[{name!r}]", size)
        steps.append(float(step))
        ledgers.append(ledger)
    if np.any(np.diff(steps) < 0):
        raise ValueError(f"snapshots steps must be non-decreasing, got {steps}")
    accounts = list(dict.fromkeys(name for ledger in ledgers for name in ledger))
    if not accounts:
        raise ValueError("snapshots must hold at least one account, got only empty ledgers")
    table = np.array([[ledger.get(name, 0) for ledger in ledgers] for name in accounts], float)
    return np.array(steps), accounts, table


def plot_ledger(
    snapshots: Sequence[tuple[float, Mapping[str, int]]],
    *,
    path: str | Path | None = None,
    budget: int | None = None,
) -> Figure:
    """Plot the bytes of every account over time as a stacked area.

    Parameters
    ----------
    snapshots
        ``(step, {account: bytes})`` pairs with non-decreasing steps, as recorded by the memory
        accountant. An account missing from a snapshot counts 0 bytes there.
    path
        Where to save the figure; the format follows the suffix (PNG when there is none).
    budget
        The memory budget in bytes, drawn as a dashed horizontal line when given.

    Returns
    -------
    Figure
        The figure, with y in MB (bytes / 10**6); the top of the stack is the total.

    Examples
    --------
    >>> snapshots = [(0, {"model": 1_000_000}), (1, {"model": 1_000_000, "exemplars": 500_000})]
    >>> figure = plot_ledger(snapshots, budget=2_000_000)
    >>> [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    ['model', 'exemplars', 'budget']
    """
    steps, accounts, table = _ledger_table(snapshots)
    if budget is not None:
        _check_bytes("budget", budget)
    figure = _new_figure()
    ax = figure.add_subplot()
    ax.stackplot(steps, table / _BYTES_PER_MB, labels=accounts)
    if budget is not None:
        ax.axhline(budget / _BYTES_PER_MB, color="black", linestyle="--", label="budget")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("memory (MB)")
    ax.legend(loc="best")
    _save(figure, path)
    return figure


def _readable_unit(largest: float) -> str:
    """The largest decimal unit of ``_UNITS`` in which ``largest`` bytes is at least 1."""
    fitting = [unit for unit, scale in _UNITS.items() if largest >= scale]
    return fitting[-1] if fitting else "B"


def _check_series(name: str, values: Any, n: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.shape != (n,):
        raise ValueError(f"{name} must hold one value per sample count ({n}), got {values!r}")
    return array


def _drift_spans(drifts: Any) -> list[tuple[float, float]]:
    """``(position, width)`` pairs from positions or pairs, checked."""
    spans = []
    for k, drift in enumerate(drifts):
        position, width = drift if isinstance(drift, Sequence) else (drift, 0)
        _check_bytes(f"drifts[{k}] position", position)  # a non-negative finite number
        _check_bytes(f"drifts[{k}] width", width)
        spans.append((float(position), float(width)))
    return spans


def plot_prequential(
    samples: Sequence[int],
    scores: Mapping[str, Sequence[float]],
    memory: Sequence[int],
    *,
    window_scores: Mapping[str, Sequence[float]] | None = None,
    window: int | None = None,
    drifts: Sequence[int | tuple[int, int]] = (),
    budget: int | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Plot a prequential run: scores (top) and memory (bottom) against samples seen.

    Each metric is one colour: its cumulative score a solid line, its score over the last
    ``window`` samples a dashed one. Memory is drawn in the decimal unit that suits its
    largest value (B, kB, MB or GB), with the budget as a dashed black line. Each drift is a
    dotted vertical line on both panels, its transition shaded when it has a width. The
    legends sit outside the panels, one entry per line.

    Parameters
    ----------
    samples
        Samples seen at each point (increasing).
    scores
        Metric name to its cumulative score at each point.
    memory
        Bytes held at each point.
    window_scores
        Metric name to its score over the last ``window`` samples at each point.
    window
        The window length, for the legend.
    drifts
        Drift positions in samples, or ``(position, width)`` pairs.
    budget
        The memory budget in bytes, drawn when given.
    path
        Where to save the figure; the format follows the suffix (PNG when there is none).

    Returns
    -------
    Figure
        Two panels sharing the x axis (samples seen, integers).

    Examples
    --------
    >>> figure = plot_prequential([100, 200, 300], {"Accuracy": [0.7, 0.8, 0.85]},
    ...                           [20_000, 45_000, 52_000], budget=60_000, drifts=[(150, 20)])
    >>> top, bottom = figure.axes
    >>> bottom.get_ylabel(), bottom.lines[0].get_ydata().tolist()
    ('memory (kB)', [20.0, 45.0, 52.0])
    >>> [text.get_text() for text in top.get_legend().get_texts()]
    ['Accuracy', 'drift']
    """
    steps = np.asarray(samples, dtype=float)
    if steps.ndim != 1 or steps.size == 0 or np.any(np.diff(steps) <= 0):
        raise ValueError(f"samples must be a non-empty increasing sequence, got {samples!r}")
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(f"scores must be a non-empty mapping of metric to values, got {scores!r}")
    held = _check_series("memory", memory, steps.size)
    for k, size in enumerate(held):
        _check_bytes(f"memory[{k}]", size)
    if budget is not None:
        _check_bytes("budget", budget)
    spans = _drift_spans(drifts)
    figure = _new_figure((7.5, 5.5))
    top, bottom = figure.subplots(2, 1, sharex=True)
    _draw_scores(top, steps, scores, window_scores or {}, window)
    _draw_memory(bottom, steps, held, budget)
    for ax in (top, bottom):
        _draw_drifts(ax, spans)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    bottom.set_xlabel("samples seen")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    _save(figure, path)
    return figure


def _draw_scores(
    ax: Any,
    steps: np.ndarray,
    scores: Mapping[str, Sequence[float]],
    window_scores: Mapping[str, Sequence[float]],
    window: int | None,
) -> None:
    for k, (name, values) in enumerate(scores.items()):
        color = f"C{k}"
        ax.plot(
            steps,
            _check_series(f"scores[{name!r}]", values, steps.size),
            color=color,
            label=str(name),
        )
        if name in window_scores:
            last = f"last {window:,} samples" if window else "windowed"
            windowed = _check_series(f"window_scores[{name!r}]", window_scores[name], steps.size)
            ax.plot(steps, windowed, color=color, linestyle="--", label=f"{name}, {last}")
    ax.set_ylabel("score" if len(scores) > 1 else str(next(iter(scores))))


def _draw_memory(ax: Any, steps: np.ndarray, held: np.ndarray, budget: int | None) -> None:
    unit = _readable_unit(max(held.max(), budget or 0))
    scale = _UNITS[unit]
    ax.plot(steps, held / scale, color="C0", label="memory")
    if budget is not None:
        ax.axhline(budget / scale, color="black", linestyle="--", label="budget")
    ax.set_ylabel(f"memory ({unit})")
    ax.set_ylim(bottom=0)


def _draw_drifts(ax: Any, spans: list[tuple[float, float]]) -> None:
    for k, (position, width) in enumerate(spans):
        label = "drift" if k == 0 else None
        ax.axvline(position, color="0.3", linestyle=":", label=label)
        if width:
            ax.axvspan(position - width / 2, position + width / 2, color="0.5", alpha=0.15)
