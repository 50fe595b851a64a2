"""Fuzzing of the TPP estimators' ``fit``, ``partial_fit``, ``score`` and ``predict``.

The property (:func:`tests.bad_inputs.fails_cleanly`): a call either returns, and then its
input was valid by an independent reading (:func:`tests.streams.test_easytpp_fuzz.valid_records`,
or the documented range of a hyperparameter) and the result is right, or it raises a
``ValueError``, ``TypeError`` or ``BudgetExceededError`` with a message and leaves the estimator
exactly as it was. Fitted subjects are built once and deep-copied per example.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bad_inputs import fails_cleanly
from tests.streams.test_easytpp_fuzz import records, valid_records
from tpp import NeuralTPP, PoissonTPP, PromptTPP

SMALL = {"epochs": 1, "batch_size": 4, "n_points": 2, "n_draws": 2, "random_state": 0}
FUZZ = settings(max_examples=25)  # the rest from the 'ci' profile (conftest.py)
EVENT_DATA = st.lists(records(), min_size=0, max_size=3)


def rows() -> list[dict[str, Any]]:
    return [
        {
            "dim_process": 2,
            "time_since_start": [float(i + j) for j in range(5)],
            "time_since_last_event": [0.0] + [1.0] * 4,
            "type_event": [j % 2 for j in range(5)],
        }
        for i in range(4)
    ]


@functools.cache
def _fitted(kind: str) -> Any:
    pool = {"n_prompts": 2, "prompt_length": 1, "top_n": 1}
    make = {
        "nhp": lambda: NeuralTPP(hidden_size=4, **SMALL),
        "attnhp": lambda: NeuralTPP("attnhp", 4, 4, n_layers=1, **SMALL),
        "prompt": lambda: PromptTPP(4, 4, n_layers=1, **pool, **SMALL),
        "poisson": PoissonTPP,
    }[kind]
    return make().fit(rows())


def fitted(kind: str) -> Any:
    return copy.deepcopy(_fitted(kind))


def quietly(subject: Any, act: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gaps that disagree with the times: a warning
        return fails_cleanly(subject, act)


def scored(data: list[dict[str, Any]]) -> bool:
    """Whether some sequence has an event after its first (a log-likelihood to report)."""
    return any(len(record["type_event"]) > 1 for record in data)


KINDS = ["nhp", "attnhp", "prompt", "poisson"]


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=EVENT_DATA)
def test_partial_fit_learns_valid_windows_and_refuses_the_rest_unchanged(kind, data):
    est = fitted(kind)
    result = quietly(est, lambda e: e.partial_fit(data))
    if isinstance(result, Exception):
        assert not valid_records(data, dim=2), f"valid window refused: {result}"
    else:
        assert valid_records(data, dim=2), f"invalid window accepted: {data}"
        assert est.n_partial_fits_ == 2


@pytest.mark.parametrize("kind", ["nhp", "prompt"])
@FUZZ
@given(data=EVENT_DATA)
def test_predict_and_score_answer_valid_input_and_refuse_the_rest(kind, data):
    est = fitted(kind)
    result = quietly(est, lambda e: e.predict(data))
    assert isinstance(result, Exception) != valid_records(data, dim=2), (result, data)
    if not isinstance(result, Exception):
        times, types = result
        last = [record["time_since_start"][-1] for record in data]
        assert times.shape == types.shape == (len(data),)
        assert np.all(times >= last) and np.all((types >= 0) & (types < 2))
        score = quietly(est, lambda e: e.score(data))
        assert isinstance(score, Exception) != scored(data), (score, data)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    return real and math.isfinite(value)


#: Each hyperparameter fuzzed, and whether a value is in its documented range.
IN_RANGE = {
    "lr": lambda v: _is_real(v) and v > 0,
    "time_scale": lambda v: _is_real(v) and v > 0,
    "ewc_lambda": lambda v: _is_real(v) and v >= 0,
    **dict.fromkeys(
        ("epochs", "batch_size", "hidden_size", "n_points", "n_draws"),
        lambda v: _is_int(v) and v >= 1,
    ),
}
#: Python bools are left out: the shared layer reads True as the int 1 (see the report).
VALUES = st.one_of(
    st.floats(-1.0, 2.0),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, 1.5, "1", None, np.bool_(True)]),
    st.integers(-2, 3),
    st.integers(1, 3).map(np.int64),
    st.floats(0.01, 1.0).map(np.float32),
)


@FUZZ
@given(name=st.sampled_from(sorted(IN_RANGE)), value=VALUES)
def test_fit_accepts_hyperparameters_in_range_and_refuses_the_rest(name, value):
    est = NeuralTPP(**{"hidden_size": 4, "strategy": "ewc", **SMALL, name: value})
    result = quietly(est, lambda e: e.fit(rows()))
    if isinstance(result, Exception):
        assert not IN_RANGE[name](value), f"{name}={value!r} refused: {result}"
        assert name in str(result), result
    else:
        assert IN_RANGE[name](value), f"{name}={value!r} accepted"
        assert est.n_partial_fits_ == 1 and len(est.losses_) == est.epochs


@FUZZ
@given(budget=st.integers(0, 12_000), hidden=st.integers(1, 12))
def test_a_budget_below_the_model_fails_before_anything_is_kept(budget, hidden):
    est = fitted("nhp")
    model_bytes = _fitted("nhp").accountant_.ledger().total  # hidden_size=4
    result = quietly(est, lambda e: e.set_params(budget=budget, hidden_size=hidden).fit(rows()))
    if isinstance(result, Exception):
        assert est.accountant_.ledger().total == model_bytes  # the fitted state is back
    else:
        assert est.accountant_.ledger().total <= budget
