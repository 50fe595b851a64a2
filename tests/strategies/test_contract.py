"""Every class-incremental classifier keeps the BudgetedEstimator contract (continual.checks)."""

import functools

import pytest

from continual.checks import check_estimator
from strategies import (
    DERClassifier,
    FinetuneClassifier,
    ICaRLClassifier,
    MEMOClassifier,
    ReplayClassifier,
)
from streams import split_digits

SMALL = {"budget": "120 KB", "epochs": 1, "batch_size": 64, "input_scale": 1 / 16, "device": "auto"}


@pytest.fixture(scope="module")
def stream():
    return split_digits(5, seed=0, flatten=True)[:3]


@pytest.mark.parametrize(
    "estimator_class",
    [FinetuneClassifier, ReplayClassifier, MEMOClassifier, DERClassifier, ICaRLClassifier],
)
def test_contract(estimator_class, stream):
    small = {**SMALL, "hidden_sizes": (16, 8)}
    check_estimator(functools.partial(estimator_class, **small), stream, resume_at=2)
