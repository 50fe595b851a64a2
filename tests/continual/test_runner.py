"""The Hydra runner, composed in-process from the packaged configs."""

import json

import pytest
from hydra import compose, initialize_config_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from continual.runner import format_table, run_experiment

SMALL = [
    "experiment.stream.n_experiences=2",
    "experiment.learner.epochs=1",
    "experiment.model.width=4",
    "verbose=0",
]


def _compose(overrides):
    with initialize_config_module(config_module="continual.conf", version_base=None):
        return compose(config_name="config", overrides=overrides)


def test_default_experiment_compares_finetune_and_replay_at_three_budgets():
    cfg = _compose([])
    assert list(cfg.experiment.strategies) == ["finetune", "replay"]
    assert len(cfg.experiment.budgets) == 3
    assert cfg.budget is None


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = _compose([*SMALL, "experiment.budgets=[40KB,60KB]"])
    return run_experiment(cfg, out), out


def test_run_writes_results_figures_and_tensorboard(small_run):
    results, out = small_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == json.loads(json.dumps(results["runs"]))
    assert [(r["strategy"], r["budget"]) for r in saved["runs"]] == [
        ("finetune", 40_000),
        ("replay", 40_000),
        ("finetune", 60_000),
        ("replay", 60_000),
    ]
    assert (out / "accuracy_vs_memory.png").stat().st_size > 0
    assert (out / "ledger_replay_60000.png").stat().st_size > 0
    events = EventAccumulator(str(out / "tb" / "replay_60000"))
    events.Reload()
    assert "memory/replay/exemplars" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("memory/total")] == [0, 1]


def test_every_run_fits_its_budget_and_replay_uses_the_headroom(small_run):
    results, _ = small_run
    for run in results["runs"]:
        ledger = run["ledger"]
        assert ledger["total"] <= run["budget"]
        assert sum(ledger["accounts"].values()) == ledger["total"]
        if run["strategy"] == "replay":
            assert ledger["headroom"] < 65  # a uint8 digit plus its label
    replay = [r for r in results["runs"] if r["strategy"] == "replay"]
    assert (
        replay[1]["ledger"]["accounts"]["replay/exemplars"]
        > replay[0]["ledger"]["accounts"]["replay/exemplars"]
    )


def test_table_lists_accuracy_forgetting_and_accounts(small_run):
    results, _ = small_run
    lines = results["table"].splitlines()
    assert lines == format_table(results["runs"]).splitlines()
    assert lines[0].split()[:2] == ["strategy", "budget"]
    assert "replay/exemplars" in lines[0] and "forgetting" in lines[0]
    assert len(lines) == 5


def test_single_budget_override(tmp_path):
    cfg = _compose([*SMALL, "budget=50KB", "~experiment.strategies.replay"])
    results = run_experiment(cfg, tmp_path)
    assert [(r["strategy"], r["budget"]) for r in results["runs"]] == [("finetune", 50_000)]


def test_bad_budget_override_names_the_argument(tmp_path):
    cfg = _compose([*SMALL, "budget=lots"])
    with pytest.raises(ValueError, match="budget must look like"):
        run_experiment(cfg, tmp_path)
