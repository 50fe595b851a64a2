"""Every TPP estimator keeps the BudgetedEstimator contract (continual.checks)."""

import functools

import pytest

from continual.checks import check_estimator
from streams.hawkes import hawkes_drift_stream
from tpp import NeuralTPP, PoissonTPP, PromptTPP

SMALL = {"epochs": 1, "batch_size": 4, "n_points": 3, "n_draws": 2, "lr": 0.01}


@pytest.fixture(scope="module")
def stream():
    return hawkes_drift_stream(3, 2, horizon=60.0, n_sequences=6, seed=0)


@pytest.mark.parametrize("strategy", ["finetune", "replay", "ewc", "retrain", "pretrain"])
def test_neural_tpp_contract(strategy, stream):
    budget = 4_000 if strategy == "replay" else None  # replay fills (and evicts from) the rest
    make = functools.partial(NeuralTPP, hidden_size=4, strategy=strategy, budget=budget, **SMALL)
    check_estimator(make, stream, resume_at=2)


@pytest.mark.parametrize(
    "settings", [{"train_backbone": "first"}, {"alternate": True}], ids=["first", "alternate"]
)
def test_prompttpp_contract(settings, stream):
    make = functools.partial(
        PromptTPP, d_model=4, d_time=4, n_layers=1, n_prompts=3, prompt_length=2, top_n=2,
        **settings, **SMALL,
    )  # fmt: skip
    check_estimator(make, stream, resume_at=2)


def test_poisson_contract(stream):
    check_estimator(PoissonTPP, stream, resume_at=1)
