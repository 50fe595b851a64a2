"""Tests for continual.tensorboard: events are read back with TensorBoard's own reader."""

import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from continual.tensorboard import TensorBoardLogger


def read_events(log_dir):
    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return accumulator


def scalar_series(accumulator, tag):
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def test_constructor_stores_log_dir_and_writes_nothing(tmp_path):
    log_dir = tmp_path / "run"
    logger = TensorBoardLogger(log_dir)
    assert logger.log_dir is log_dir
    logger.close()
    assert not log_dir.exists()


def test_log_scores_round_trip(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        logger.log_scores(0, {"accuracy": 0.5, "forgetting": 0.0})
        logger.log_scores(1, {"accuracy": 0.625, "forgetting": 0.125})
        logger.log_scores(1, {"auc": 1.5}, prefix="summary")
    events = read_events(tmp_path)
    assert set(events.Tags()["scalars"]) == {"score/accuracy", "score/forgetting", "summary/auc"}
    assert scalar_series(events, "score/accuracy") == [(0, 0.5), (1, 0.625)]
    assert scalar_series(events, "score/forgetting") == [(0, 0.0), (1, 0.125)]
    assert scalar_series(events, "summary/auc") == [(1, 1.5)]


def test_log_scores_accepts_numpy_values_and_whole_float_steps(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        logger.log_scores(2.0, {"accuracy": np.float32(0.25)})
    assert scalar_series(read_events(tmp_path), "score/accuracy") == [(2, 0.25)]


def test_log_ledger_logs_every_account_and_the_total(tmp_path):
    snapshots = [
        (0, {"model": 400_000, "exemplars": 0}),
        (1, {"model": 400_000, "exemplars": 1_200_000}),
        (2, {"model": 800_000, "exemplars": 600_000, "masks": 12_345}),
    ]
    with TensorBoardLogger(tmp_path) as logger:
        for step, ledger in snapshots:
            logger.log_ledger(step, ledger)
    events = read_events(tmp_path)
    assert set(events.Tags()["scalars"]) == {
        "memory/model",
        "memory/exemplars",
        "memory/masks",
        "memory/total",
    }
    assert scalar_series(events, "memory/model") == [(0, 4e5), (1, 4e5), (2, 8e5)]
    assert scalar_series(events, "memory/exemplars") == [(0, 0), (1, 1.2e6), (2, 6e5)]
    assert scalar_series(events, "memory/masks") == [(2, 12_345)]
    totals = [(step, sum(ledger.values())) for step, ledger in snapshots]
    assert scalar_series(events, "memory/total") == totals


def test_log_ledger_large_counts_within_float32_precision(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        logger.log_ledger(0, {"model": np.int64(23_500_001)}, prefix="bytes")
    ((step, value),) = scalar_series(read_events(tmp_path), "bytes/total")
    assert step == 0
    assert value == pytest.approx(23_500_001, rel=1e-7)


def test_log_figure_writes_an_image(tmp_path):
    figure = Figure(figsize=(2.0, 1.5), dpi=50)
    figure.add_subplot().plot([0, 1], [0, 1])
    with TensorBoardLogger(tmp_path) as logger:
        logger.log_figure("figures/line", figure, 3)
    events = read_events(tmp_path)
    assert events.Tags()["images"] == ["figures/line"]
    (image,) = events.Images("figures/line")
    assert (image.step, image.width, image.height) == (3, 100, 75)
    assert image.encoded_image_string.startswith(b"\x89PNG")
    # The figure stays usable after logging.
    assert figure.axes[0].lines[0].get_ydata().tolist() == [0, 1]


def test_close_flushes_and_logging_after_close_reopens(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.log_scores(0, {"accuracy": 0.5})
    logger.flush()
    assert scalar_series(read_events(tmp_path), "score/accuracy") == [(0, 0.5)]
    logger.close()
    logger.log_scores(1, {"accuracy": 0.75})
    logger.close()
    # A second event file; file names order by a per-process counter, so read each file alone.
    files = list(tmp_path.glob("events.out.tfevents.*"))
    assert len(files) == 2
    series = sorted(scalar_series(read_events(path), "score/accuracy") for path in files)
    assert series == [[(0, 0.5)], [(1, 0.75)]]


@pytest.mark.parametrize(("step", "error"), [(-1, ValueError), (1.5, ValueError), ("1", TypeError)])
def test_bad_step(tmp_path, step, error):
    with TensorBoardLogger(tmp_path) as logger, pytest.raises(error, match="step must be"):
        logger.log_scores(step, {"accuracy": 0.5})


@pytest.mark.parametrize(
    ("scores", "error", "match"),
    [
        ({"accuracy": math.nan}, ValueError, "must be finite"),
        ({"accuracy": "high"}, TypeError, "must be a real number"),
        ([("accuracy", 0.5)], TypeError, "scores must be a mapping"),
        ({"": 0.5}, TypeError, "score name must be a non-empty str"),
    ],
)
def test_bad_scores(tmp_path, scores, error, match):
    with TensorBoardLogger(tmp_path) as logger, pytest.raises(error, match=match):
        logger.log_scores(0, scores)


@pytest.mark.parametrize(
    ("accounts", "error", "match"),
    [
        ({"total": 3}, ValueError, "named 'total'"),
        ({"model": -1}, ValueError, "non-negative"),
        ({"model": 1.5}, TypeError, "must be an int of bytes"),
        ({"model": True}, TypeError, "must be an int of bytes"),
        ([("model", 1)], TypeError, "accounts must be a mapping"),
    ],
)
def test_bad_ledger(tmp_path, accounts, error, match):
    with TensorBoardLogger(tmp_path) as logger, pytest.raises(error, match=match):
        logger.log_ledger(0, accounts)


def test_bad_input_writes_nothing(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        logger.log_scores(0, {"a": 0.5})
        with pytest.raises(ValueError):
            logger.log_scores(1, {"a": 0.6, "b": math.inf})
    assert scalar_series(read_events(tmp_path), "score/a") == [(0, 0.5)]


def test_log_figure_rejects_non_figures(tmp_path):
    with TensorBoardLogger(tmp_path) as logger, pytest.raises(TypeError, match="figure must be"):
        logger.log_figure("figures/x", np.zeros((3, 3)), 0)
