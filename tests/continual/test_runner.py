"""The Hydra runner, composed in-process from the packaged configs."""

import json
import logging

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from continual.runner import format_runs, run_experiment
from strategies import ReplayClassifier

SMALL = [
    "experiment.stream.n_experiences=2",
    "experiment.train.epochs=1",
    "experiment.train.width=4",
    "verbose=0",
]


def _compose(overrides):
    with initialize_config_module(config_module="continual.conf", version_base=None):
        return compose(config_name="config", overrides=overrides)


def test_default_experiment_compares_finetune_and_replay_at_three_budgets():
    cfg = _compose([])
    assert list(cfg.experiment.methods) == ["finetune", "replay"]
    assert len(cfg.experiment.budgets) == 3
    assert cfg.budget is None and cfg.checkpoint is True and cfg.resume is False


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = _compose([*SMALL, "experiment.budgets=[40KB,60KB]"])
    return run_experiment(cfg, out), out


def test_run_writes_results_figures_tensorboard_and_checkpoints(small_run):
    results, out = small_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == json.loads(json.dumps(results["runs"]))
    assert saved["table"] == results["table"]
    assert [(r["method"], r["budget"]) for r in saved["runs"]] == [
        ("finetune", 40_000),
        ("replay", 40_000),
        ("finetune", 60_000),
        ("replay", 60_000),
    ]
    for name in ("score_vs_memory", "scores_score", "ledger_replay_60000"):
        assert (out / f"{name}.png").stat().st_size > 0
    events = EventAccumulator(str(out / "tb" / "replay_60000"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"memory/replay/exemplars", "memory/total", "train/loss", "score/score"} <= set(scalars)
    assert [e.step for e in events.Scalars("memory/total")] == [0, 1]
    assert [e.step for e in events.Scalars("train/loss")] == [0, 1]  # one epoch per experience
    assert (out / "checkpoints" / "replay_60000.safetensors").stat().st_size > 0


def test_every_run_fits_its_budget_and_replay_uses_the_headroom(small_run):
    results, _ = small_run
    for run in results["runs"]:
        ledger = run["ledger"]
        assert ledger["total"] <= run["budget"]
        assert sum(ledger["accounts"].values()) == ledger["total"]
        assert ledger["peak"] > ledger["total"]  # the rollback backup of the second call
        if run["method"] == "replay":
            assert ledger["headroom"] < 65  # a uint8 digit plus its label
    replay = [r for r in results["runs"] if r["method"] == "replay"]
    assert (
        replay[1]["ledger"]["accounts"]["replay/exemplars"]
        > replay[0]["ledger"]["accounts"]["replay/exemplars"]
    )


def test_table_lists_scores_and_accounts(small_run):
    results, _ = small_run
    lines = results["table"].splitlines()
    assert lines == format_runs(results["runs"]).splitlines()
    assert lines[0].split()[:4] == ["run", "budget", "avg", "last"]
    assert "replay/exemplars" in lines[0] and "forget" in lines[0] and "peak" in lines[0]
    assert len(lines) == 5


def test_the_table_goes_to_the_log(tmp_path, caplog):
    cfg = _compose([*SMALL, "budget=50KB", "~experiment.methods.replay", "checkpoint=false"])
    with caplog.at_level(logging.INFO, logger="continual.runner"):
        results = run_experiment(cfg, tmp_path)
    assert results["table"] in caplog.text
    assert [(r["method"], r["budget"]) for r in results["runs"]] == [("finetune", 50_000)]
    assert not (tmp_path / "checkpoints").exists()


def test_bad_budget_override_names_the_argument(tmp_path):
    cfg = _compose([*SMALL, "budget=lots"])
    with pytest.raises(ValueError, match="budget must look like"):
        run_experiment(cfg, tmp_path)


def test_a_device_override_reaches_every_method_and_an_unavailable_one_is_named(tmp_path):
    cfg = _compose([*SMALL, "budget=200KB", "device=cuda:99"])
    with pytest.raises(ValueError, match="device='cuda:99' is not available"):
        run_experiment(cfg, tmp_path)


class InterruptedReplay(ReplayClassifier):
    """A ReplayClassifier whose second experience fails while ``INTERRUPT`` is set."""

    INTERRUPT = False

    def _learn(self, data):
        if InterruptedReplay.INTERRUPT and self.n_partial_fits_ == 1:
            raise KeyboardInterrupt("simulated interruption")
        super()._learn(data)


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    overrides = [
        *SMALL,
        "experiment.stream.n_experiences=5",
        "budget=60KB",
        "~experiment.methods.finetune",
        f"experiment.methods.replay._target_={__name__}.InterruptedReplay",
    ]
    straight = run_experiment(_compose(overrides), tmp_path / "straight")
    InterruptedReplay.INTERRUPT = True
    try:
        with pytest.raises(KeyboardInterrupt):
            run_experiment(_compose(overrides), tmp_path / "resumed")
    finally:
        InterruptedReplay.INTERRUPT = False
    progress = json.loads((tmp_path / "resumed" / "checkpoints" / "replay.json").read_text())
    assert progress["experiences"] == 1
    resumed = run_experiment(_compose([*overrides, "resume=true"]), tmp_path / "resumed")
    [a], [b] = straight["runs"], resumed["runs"]
    np.testing.assert_array_equal(
        np.array(a["scores"]["score"]["matrix"], dtype=float),
        np.array(b["scores"]["score"]["matrix"], dtype=float),
    )
    assert a["ledger"]["accounts"] == b["ledger"]["accounts"]
