"""The bad-input table: every named case across the five domains gets a clear error (or,
for an input that must be accepted, a valid result), and a failed call changes nothing.

See :mod:`tests.bad_inputs` for how a case is judged; ``python -m tests.bad_inputs`` prints
the counts by outcome.
"""

from __future__ import annotations

import inspect

import pytest

import recsys
import strategies
import tpp
from continual.estimator import BudgetedEstimator
from continual.validation import merged_constraints
from tests.bad_inputs import outcome
from tests.bad_inputs.cases import all_cases

CASES = all_cases()


def test_the_table_has_at_least_150_cases_in_every_domain() -> None:
    assert len(CASES) >= 150, len(CASES)
    domains = {case.domain for case in CASES}
    assert {"class-incremental", "tpp", "recsys", "memory-as-action", "avalanche"} <= domains


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_clear_error(case) -> None:
    kind, detail = outcome(case)
    assert kind == "clear", f"{kind}: {detail}"


def _public_estimators() -> list[type]:
    classes = {
        obj
        for package in (strategies, tpp, recsys)
        for obj in vars(package).values()
        if isinstance(obj, type) and issubclass(obj, BudgetedEstimator)
    }
    return sorted((c for c in classes if not inspect.isabstract(c)), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _public_estimators(), ids=lambda cls: cls.__name__)
def test_every_parameter_of_every_estimator_is_declared(cls) -> None:
    """The one validation layer covers every parameter: none is left unchecked by omission."""
    undeclared = set(cls().get_params(deep=False)) - set(merged_constraints(cls))
    assert not undeclared, f"{cls.__name__} declares no constraint for {sorted(undeclared)}"
