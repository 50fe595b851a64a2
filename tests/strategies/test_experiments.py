"""The memory-aligned experiment, composed from the packaged Hydra config in a tiny setting."""

import json

import pytest
import torch
from hydra import compose, initialize_config_module

from continual import Learner, MemoryAccountant
from continual.runner import run_experiment
from strategies import DigitsConvNet
from strategies.der import DER
from strategies.experiments import der_budget
from streams import split_digits

TINY = [
    "experiment=cil_memory_aligned",
    "experiment.seeds=[0,1]",
    "experiment.widths=[2,3]",
    "experiment.learner.epochs=1",
    "~experiment.strategies.finetune",
    "~experiment.strategies.icarl",
    "~experiment.strategies.der",
    "~experiment.strategies.der_no_wa",
    "~experiment.strategies.memo_no_wa",
    "verbose=0",
]


def _compose(overrides):
    with initialize_config_module(config_module="continual.conf", version_base=None):
        return compose(config_name="config", overrides=overrides)


def test_config_declares_five_methods_five_widths_three_seeds():
    exp = _compose(["experiment=cil_memory_aligned"]).experiment
    assert {"finetune", "replay", "icarl", "der", "memo"} <= set(exp.strategies)
    assert len(exp.widths) == 5 and list(exp.seeds) == [0, 1, 2]
    assert exp.stream.n_experiences == 5


def test_der_budget_is_what_der_really_uses_plus_the_exemplars():
    width, exemplars = 2, 40
    budget = der_budget(width, 5, 10, exemplars, 65)
    torch.manual_seed(0)
    der = DER(seed=0)
    learner = Learner(
        DigitsConvNet(10, width=width),
        plugins=[der],
        accountant=MemoryAccountant(budget),
        input_scale=1 / 16,
    )
    learner.run(split_digits(5, seed=0))
    ledger = learner.accountant.ledger()
    assert ledger.accounts["model"] + ledger.accounts["optimizer"] == budget - exemplars * 65
    assert len(der.store) == exemplars  # DER ends with exactly the fixed exemplar count


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("aligned")
    return run_experiment(_compose(TINY), out), out


def test_results_fit_their_budgets_and_report_everything(tiny_run):
    results, out = tiny_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == json.loads(json.dumps(results["runs"]))
    assert (out / "accuracy_vs_memory.png").stat().st_size > 0
    budgets = [p["budget"] for p in results["budget_points"]]
    assert budgets == [der_budget(w, 5, 10, 200, 65) for w in (2, 3)]
    assert len(results["runs"]) == 2 * 2 * 2  # strategies x budgets x seeds
    for run in results["runs"]:
        assert run["ledger"]["total"] <= run["budget"]
        assert len(run["scores"]["matrix"]) == 5
        assert 0 < run["heads"] < run["ledger"]["accounts"]["model"]
    assert set(results["auc"]) == {"replay", "memo"}
    for auc in results["auc"].values():
        assert len(auc["auc_a_per_seed"]) == 2
        assert auc["auc_a_mean"] == pytest.approx(sum(auc["auc_a_per_seed"]) / 2)
    assert "AUC-A" in results["table"] and f"{budgets[0]:,}" in results["table"]


def test_a_top_level_budget_is_refused(tmp_path):
    with pytest.raises(ValueError, match="budget must be null for cil_memory_aligned"):
        run_experiment(_compose([*TINY, "budget=100KB"]), tmp_path)
