"""Tests for continual.figures: accuracy against memory, and the ledger as a stacked area."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.collections import PolyCollection

from continual.figures import plot_accuracy_vs_memory, plot_ledger, plot_prequential

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def top_edge(collection, steps):
    """Highest y of a filled polygon at each step (stacked areas are non-negative)."""
    vertices = np.concatenate([path.vertices for path in collection.get_paths()])
    return np.array([vertices[np.isclose(vertices[:, 0], x), 1].max() for x in steps])


# ---------------------------------------------------------------- accuracy against memory


def test_accuracy_vs_memory_lines(tmp_path):
    curves = {
        "replay": [(4_000_000, 0.7), (1_000_000, 0.5), (2_000_000, 0.6)],
        "memo": [(2_000_000, 0.65), (4_000_000, 0.8)],
    }
    path = tmp_path / "accuracy.png"
    figure = plot_accuracy_vs_memory(curves, path=path, metric="last accuracy")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    (ax,) = figure.axes
    assert [line.get_label() for line in ax.lines] == ["replay", "memo"]
    replay, memo = ax.lines
    np.testing.assert_allclose(replay.get_xydata(), [[1.0, 0.5], [2.0, 0.6], [4.0, 0.7]])
    np.testing.assert_allclose(memo.get_xydata(), [[2.0, 0.65], [4.0, 0.8]])
    assert all(line.get_marker() not in (None, "None", "") for line in ax.lines)
    assert ax.get_ylabel() == "last accuracy"
    assert "MB" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["replay", "memo"]


def test_accuracy_vs_memory_without_path_leaves_pyplot_alone(tmp_path):
    before = plt.get_fignums()
    plot_accuracy_vs_memory({"a": [(1, 0.5)]})
    assert plt.get_fignums() == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("curves", "error", "match"),
    [
        ({}, ValueError, "curves must be a non-empty mapping"),
        ([("a", [(1, 0.5)])], ValueError, "curves must be a non-empty mapping"),
        ({"a": []}, ValueError, r"curves\['a'\] must hold at least one"),
        ({"a": [(1, 0.5, 3)]}, TypeError, r"curves\['a'\] must be a sequence of \(bytes, score\)"),
        ({"a": [(-5, 0.5)]}, ValueError, "non-negative"),
        ({"a": [(5, float("nan"))]}, ValueError, "scores must be finite"),
    ],
)
def test_accuracy_vs_memory_rejects_bad_curves(curves, error, match):
    with pytest.raises(error, match=match):
        plot_accuracy_vs_memory(curves)


def test_accuracy_vs_memory_error_bars_follow_their_points_when_sorted():
    curves = {"replay": [(3_000, 0.5), (1_000, 0.7), (2_000, 0.6)], "finetune": [(1_000, 0.2)]}
    errors = {"replay": [0.1, float("nan"), 0.2]}
    figure = plot_accuracy_vs_memory(curves, errors=errors, unit="kB")
    (ax,) = figure.axes
    (bars,) = ax.containers
    data_line, _, (vertical,) = bars
    np.testing.assert_allclose(data_line.get_xydata(), [[1.0, 0.7], [2.0, 0.6], [3.0, 0.5]])
    segments = vertical.get_segments()
    assert len(segments[0]) == 0  # NaN: no bar at 1 kB
    np.testing.assert_allclose(segments[1], [[2.0, 0.4], [2.0, 0.8]])  # 0.6 ± 0.2
    np.testing.assert_allclose(segments[2], [[3.0, 0.4], [3.0, 0.6]])  # 0.5 ± 0.1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["replay", "finetune"]


@pytest.mark.parametrize(
    ("errors", "error", "match"),
    [
        ({"memo": [0.1]}, ValueError, r"errors must be a mapping whose methods are among"),
        ({"a": [0.1, 0.2]}, ValueError, r"errors\['a'\] must hold one error per point"),
        ({"a": [-0.1]}, ValueError, r"errors\['a'\] must be non-negative"),
        ({"a": [float("inf")]}, ValueError, r"errors\['a'\] must be non-negative"),
        ({"a": ["wide"]}, TypeError, r"errors\['a'\] must be a sequence of numbers"),
    ],
)
def test_accuracy_vs_memory_rejects_bad_errors(errors, error, match):
    with pytest.raises(error, match=match):
        plot_accuracy_vs_memory({"a": [(1, 0.5)]}, errors=errors)


# ---------------------------------------------------------------- ledger


def test_ledger_stack_top_is_total_and_missing_accounts_count_zero(tmp_path):
    snapshots = [
        (0, {"model": 1_000_000}),
        (1, {"model": 1_000_000, "exemplars": 2_000_000}),
        (2, {"exemplars": 1_500_000, "masks": 250_000}),
        (3, {"model": 2_000_000, "exemplars": 500_000, "masks": 250_000}),
    ]
    path = tmp_path / "ledger.png"
    figure = plot_ledger(snapshots, path=path)
    assert path.stat().st_size > 0
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    (ax,) = figure.axes
    layers = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert [layer.get_label() for layer in layers] == ["model", "exemplars", "masks"]
    steps = [0, 1, 2, 3]
    expected_layers = np.array([[1.0, 1.0, 0.0, 2.0], [0.0, 2.0, 1.5, 0.5], [0.0, 0.0, 0.25, 0.25]])
    for layer, expected in zip(layers, np.cumsum(expected_layers, axis=0)):
        np.testing.assert_allclose(top_edge(layer, steps), expected)
    totals = [sum(ledger.values()) / 1e6 for _, ledger in snapshots]
    np.testing.assert_allclose(top_edge(layers[-1], steps), totals)
    assert ax.get_ylabel() == "memory (MB)"


def test_ledger_budget_line():
    figure = plot_ledger([(0, {"a": 10}), (5, {"a": 20})], budget=3_500_000)
    (ax,) = figure.axes
    (line,) = ax.lines
    assert line.get_linestyle() == "--"
    np.testing.assert_allclose(line.get_ydata(), [3.5, 3.5])
    assert line.get_label() == "budget"


def test_ledger_without_budget_has_no_line():
    figure = plot_ledger([(0.5, {"a": 10})])
    assert len(figure.axes[0].lines) == 0


@pytest.mark.parametrize(
    ("snapshots", "error", "match"),
    [
        ([], ValueError, "snapshots must be a non-empty sequence"),
        ("abc", ValueError, "snapshots must be a non-empty sequence"),
        ([(0, {}), (1, {})], ValueError, "at least one account"),
        ([(1, {"a": 1}), (0, {"a": 1})], ValueError, "non-decreasing"),
        ([(0, {"a": -1})], ValueError, "non-negative"),
        ([(0, {"a": 1}, 3)], TypeError, r"snapshots\[0\] must be a \(step, ledger\) pair"),
        ([(None, {"a": 1})], TypeError, "step must be a finite number"),
        ([(0, [("a", 1)])], TypeError, "ledger must be a mapping"),
    ],
)
def test_ledger_rejects_bad_snapshots(snapshots, error, match):
    with pytest.raises(error, match=match):
        plot_ledger(snapshots)


def test_ledger_rejects_bad_budget():
    with pytest.raises(ValueError, match="budget must be a non-negative"):
        plot_ledger([(0, {"a": 1})], budget=-1)


ledgers = st.dictionaries(
    st.sampled_from(["model", "exemplars", "masks", "pool"]),
    st.integers(0, 10**8),
    max_size=4,
)


@settings(max_examples=15, deadline=None)
@given(st.lists(ledgers, min_size=1, max_size=6).filter(lambda ls: any(ls)))
def test_ledger_top_edge_property(ledger_list):
    snapshots = list(enumerate(ledger_list))
    figure = plot_ledger(snapshots)
    layers = [c for c in figure.axes[0].collections if isinstance(c, PolyCollection)]
    totals = [sum(ledger.values()) / 1e6 for ledger in ledger_list]
    np.testing.assert_allclose(top_edge(layers[-1], range(len(ledger_list))), totals)


# ---------------------------------------------------------------- prequential curves


def test_prequential_panels_scores_memory_budget_and_drifts(tmp_path):
    path = tmp_path / "prequential.svg"
    figure = plot_prequential(
        [1000, 2000, 3000],
        {"Accuracy": [0.8, 0.85, 0.9], "LogLoss": [0.5, 0.4, 0.3]},
        [200_000, 1_500_000, 1_800_000],
        window_scores={"Accuracy": [0.8, 0.9, 0.95]},
        window=500,
        drifts=[1500, (2500, 200)],
        budget=2_000_000,
        path=path,
    )
    assert path.read_text().lstrip().startswith("<?xml")
    top, bottom = figure.axes
    assert [line.get_label() for line in top.lines[:3]] == [
        "Accuracy",
        "Accuracy, last 500 samples",
        "LogLoss",
    ]
    assert top.lines[0].get_color() == top.lines[1].get_color()
    assert top.lines[1].get_linestyle() == "--" and top.get_ylabel() == "score"
    assert bottom.get_ylabel() == "memory (MB)"
    np.testing.assert_allclose(bottom.lines[0].get_ydata(), [0.2, 1.5, 1.8])
    budget_line = [line for line in bottom.lines if line.get_label() == "budget"]
    assert budget_line[0].get_ydata()[0] == pytest.approx(2.0)
    drift_lines = [line for line in top.lines if line.get_linestyle() == ":"]
    assert [line.get_xdata()[0] for line in drift_lines] == [1500, 2500]
    assert len(top.patches) == 1  # one shaded transition: the drift with a width
    legend_texts = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend_texts.count("drift") == 1
    assert bottom.get_xlabel() == "samples seen"
    assert bottom.xaxis.get_major_formatter()(3000, 0) == "3,000"


def test_prequential_legends_sit_outside_the_panels():
    figure = plot_prequential([10, 20], {"Accuracy": [0.5, 0.6]}, [100, 900])
    figure.canvas.draw()
    for ax in figure.axes:
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1


@pytest.mark.parametrize(
    ("largest", "unit"), [(900, "B"), (45_000, "kB"), (3_200_000, "MB"), (7e9, "GB")]
)
def test_prequential_memory_unit_suits_the_numbers(largest, unit):
    figure = plot_prequential([1, 2], {"Accuracy": [0.5, 0.6]}, [largest / 2, largest])
    assert figure.axes[1].get_ylabel() == f"memory ({unit})"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"samples": []}, ValueError, "samples must be a non-empty increasing sequence"),
        ({"samples": [2, 1]}, ValueError, "samples must be a non-empty increasing sequence"),
        ({"scores": {}}, ValueError, "scores must be a non-empty mapping"),
        ({"memory": [1]}, ValueError, r"memory must hold one value per sample count \(2\)"),
        ({"memory": [1, -2]}, ValueError, r"memory\[1\] must be a non-negative"),
        ({"scores": {"a": [1.0]}}, ValueError, r"scores\['a'\] must hold one value"),
        ({"budget": -1}, ValueError, "budget must be a non-negative"),
        ({"drifts": [-3]}, ValueError, r"drifts\[0\] position must be a non-negative"),
    ],
)
def test_prequential_rejects_bad_curves(kwargs, error, match):
    arguments = {"samples": [1, 2], "scores": {"Accuracy": [0.5, 0.6]}, "memory": [10, 20]}
    arguments.update(kwargs)
    samples, scores, memory = (arguments.pop(k) for k in ("samples", "scores", "memory"))
    with pytest.raises(error, match=match):
        plot_prequential(samples, scores, memory, **arguments)
