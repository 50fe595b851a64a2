"""MemoryAsAction: the estimator face, its bookkeeping and the Hydra experiment."""

import json

import pytest
import torch
from hydra import compose, initialize_config_module
from sklearn.base import clone

from continual import nbytes
from continual.runner import run_experiment
from strategies.memact import (
    EDIT_INSTRUCTIONS,
    MemoryAsAction,
    Message,
    WorkingMemory,
    as_episodes,
)
from streams.episodes import RecallDifficulty, recall_stream

SMALL = {"bc_epochs": 2, "n_updates": 2, "group_size": 2, "d_model": 16, "n_layers": 1}


@pytest.fixture(scope="module")
def stream():
    level = RecallDifficulty(n_questions=1, n_observations=5, budget=200)
    return recall_stream(level, n_train=6, n_test=6, seed=0)


@pytest.fixture(scope="module")
def fitted(stream):
    return MemoryAsAction(**SMALL).fit(stream)


def test_fit_warm_starts_then_runs_dcpo_and_accounts_its_state(fitted, stream):
    assert len(fitted.bc_losses_) == 2 and len(fitted.history_) == 2
    ledger = fitted.accountant_.ledger()
    assert ledger.accounts["policy"] == nbytes(fitted.policy_)
    assert ledger.accounts["reference"] == nbytes(fitted.trainer_.reference_) > 0
    n_tensors = len(list(fitted.policy_.parameters()))
    # Adam: two moments per parameter plus a float32 step counter per tensor
    assert ledger.accounts["optimizer"] == 2 * ledger.accounts["policy"] + 4 * n_tensors
    assert fitted.training_seconds_ > 0
    result = fitted.evaluate(stream[0].test)
    assert fitted.score(stream[0].test) == result["success"]
    assert 0.0 <= result["success"] <= result["partial"] <= 1.0


def test_same_seed_same_policy(fitted, stream):
    twin = clone(fitted).fit(stream)
    for a, b in zip(fitted.policy_.parameters(), twin.policy_.parameters()):
        assert torch.equal(a, b)


def test_curate_edits_another_agents_memory(fitted):
    memory = WorkingMemory(
        [
            Message("user", "Remember the latest value of: k0"),
            Message("tool", "k0=v1 w1 w2 w3 w4", id="aaaaaaaa"),
            Message("tool", "k5=v2 w1 w2 w3 w4", id="bbbbbbbb"),
        ]
    )
    turn = fitted.curate(memory)
    assert turn in memory.messages and turn.role == "assistant"
    if turn.calls:
        assert memory.messages[-1].role == "tool" and len(memory.ids()) == 1
    assert not any(m.content == EDIT_INSTRUCTIONS for m in memory.messages)
    with pytest.raises(ValueError, match="empty"):
        fitted.curate(WorkingMemory())
    with pytest.raises(TypeError, match="memory must be a WorkingMemory, got list"):
        fitted.curate([])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_updates": -1}, "n_updates must be a non-negative int, got -1"),
        ({"group_size": 0}, "group_size must be a positive int, got 0"),
        ({"teacher": "oracle"}, "curator must be one of"),
        ({"mode": "naive"}, "mode must be 'dcpo' or 'final', got 'naive'"),
        ({"final_mask": "x"}, "final_mask must be 'own' or 'all', got 'x'"),
    ],
)
def test_bad_parameters(params, message, stream):
    with pytest.raises(ValueError, match=message):
        MemoryAsAction(**{**SMALL, **params}).fit(stream)


def test_bad_episodes():
    with pytest.raises(TypeError, match=r"episodes\[0\] must be a recall episode"):
        MemoryAsAction().fit([1, 2])
    with pytest.raises(ValueError, match="at least one episode"):
        as_episodes([])
    with pytest.raises(TypeError, match="must be an iterable of episodes, got int"):
        as_episodes(3)


def test_unfitted_estimator_refuses_to_score(stream):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MemoryAsAction().score(stream[0].test)


def test_hydra_experiment_small(tmp_path):
    with initialize_config_module("continual.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "experiment=memact_recall",
                "verbose=0",
                "experiment.stream.n_train=4",
                "experiment.stream.n_test=4",
                "experiment.estimator.bc_epochs=1",
                "experiment.estimator.n_updates=1",
                "experiment.estimator.group_size=2",
                "+experiment.estimator.d_model=16",
                "+experiment.estimator.n_layers=1",
                "experiment.curators=[fifo,queried_keys]",
            ],
        )
    results = run_experiment(cfg, tmp_path)
    methods = {r["method"] for r in results["records"]}
    assert methods == {"dcpo", "warm_start_only", "naive_final", "fifo", "queried_keys"}
    assert {r["n_questions"] for r in results["records"]} == {2, 3}
    assert (tmp_path / "success_vs_context_bytes.png").exists()
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["experiment"] == "memact_recall" and "strict" in written["table"]
    oracle = [r for r in results["records"] if r["method"] == "queried_keys"]
    assert all(r["success"] == 1.0 for r in oracle)
