"""The run folder writer: figures, TensorBoard curves, results and the log."""

import json
import logging

from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from continual.run_folder import RunFolder


def test_losses_extend_one_curve_stepped_by_epoch(tmp_path):
    folder = RunFolder(tmp_path)
    folder.log_experience("replay", 0, losses=[2.0, 1.5], ledger={"model": 10})
    folder.log_experience("replay", 1, losses=[1.2, float("nan")], scores={"acc": 0.7})
    folder.finish({}, "table")
    events = EventAccumulator(str(tmp_path / "tb" / "replay"))
    events.Reload()
    losses = [(e.step, round(e.value, 6)) for e in events.Scalars("train/loss")]
    assert losses == [(0, 2.0), (1, 1.5), (2, 1.2)]  # the NaN epoch is skipped, but counted
    assert [e.step for e in events.Scalars("memory/model")] == [0]
    assert [e.step for e in events.Scalars("score/acc")] == [1]


def test_finish_writes_results_and_logs_the_table(tmp_path, caplog):
    folder = RunFolder(tmp_path / "run")
    figure = Figure()
    figure.add_subplot().plot([0, 1])
    path = folder.figure("line", figure)
    assert path.stat().st_size > 0 and not figure.axes  # saved, then cleared
    with caplog.at_level(logging.INFO, logger="continual.runner"):
        results = folder.finish({"runs": [1, 2]}, "a  b\n1  2")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved == results == {"runs": [1, 2], "table": "a  b\n1  2"}
    assert "a  b\n1  2" in caplog.text
