"""The shared validation layer: declared constraints, merged along the class hierarchy and
checked at fit; IDs; labels."""

import math
from typing import ClassVar

import numpy as np
import pytest
import torch

from continual import BudgetExceededError
from continual.estimator import BudgetedEstimator
from continual.validation import (
    COUNT,
    POSITIVE_FLOAT,
    InvalidParameterError,
    Sizes,
    check_ids,
    check_labels,
    merged_constraints,
)


class Mean(BudgetedEstimator):
    """A running mean with one declared parameter, to test the base's checks."""

    _parameter_constraints: ClassVar[dict] = {"shift": [POSITIVE_FLOAT]}

    def __init__(self, shift=1.0, budget=None, *, random_state=None, verbose=0, device="cpu",
                 rollback="memory"):  # fmt: skip
        self.shift = shift
        self.budget = budget
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.rollback = rollback

    def _validate_input(self, X, y=None, *, first, **params):
        return np.asarray(X, dtype=float)

    def _build(self):
        self.total_ = torch.zeros(1, dtype=torch.float64)
        self.accountant_.track("total", self.total_)

    def _learn(self, X):
        self.total_ += X.sum() + self.shift

    def _state_dict(self):
        return {"total": self.total_}

    def _load_state_dict(self, state):
        self.total_.copy_(state["total"])

    def score(self, X, y=None):
        return float(self.total_)


class Windowed(Mean):
    _parameter_constraints: ClassVar[dict] = {"window": [COUNT, None]}

    def __init__(self, shift=1.0, window=None, budget=None, **shared):
        super().__init__(shift, budget, **shared)
        self.window = window


def test_subclasses_declare_only_their_own_parameters():
    merged = merged_constraints(Windowed)
    assert merged["shift"] == [POSITIVE_FLOAT]
    assert merged["window"] == [COUNT, None]
    assert merged["budget"] == "no_validation"  # from the base, which parses budgets itself


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"shift": math.nan}, "The 'shift' parameter of Windowed must be a float in the range "
                              "(0.0, inf). Got nan instead."),
        ({"shift": -1}, "Got -1 instead"),
        ({"window": 2.5}, "The 'window' parameter of Windowed must be an int in the range "
                          "[1, inf) or None. Got 2.5 instead."),
        ({"window": 0}, "Got 0 instead"),
    ],
)  # fmt: skip
def test_a_bad_parameter_fails_at_fit_with_its_name_and_value(params, message):
    estimator = Windowed(**params)  # construction only stores
    with pytest.raises(InvalidParameterError) as error:
        estimator.fit([1.0])
    assert message in str(error.value)
    assert isinstance(error.value, ValueError) and isinstance(error.value, TypeError)
    assert not hasattr(estimator, "accountant_")


def test_a_bad_parameter_set_after_fit_leaves_the_estimator_as_it_was():
    estimator = Windowed().fit([2.0])
    estimator.set_params(shift=math.inf)
    with pytest.raises(ValueError, match="shift"):
        estimator.partial_fit([5.0])
    assert estimator.score(None) == 3.0 and estimator.n_partial_fits_ == 1


def test_numpy_scalars_are_accepted_like_python_numbers():
    ours = Windowed(shift=np.float32(0.5), window=np.int64(3)).fit([1.0, 2.0])
    python = Windowed(shift=0.5, window=3).fit([1.0, 2.0])
    assert ours.score(None) == python.score(None) == 3.5


def test_a_budget_changed_after_the_first_call_applies_from_the_next_call():
    estimator = Mean(budget="1 KB").fit([1.0])
    estimator.set_params(budget=4)  # less than the 8 bytes of the running total
    with pytest.raises(BudgetExceededError, match="total"):
        estimator.partial_fit([1.0])
    assert estimator.n_partial_fits_ == 1 and estimator.accountant_.budget == 1000
    estimator.set_params(budget="2 KB").partial_fit([1.0])
    assert estimator.accountant_.budget == 2000 and estimator.n_partial_fits_ == 2


@pytest.mark.parametrize(
    ("sizes", "ok"),
    [((128, 64), True), ((), True), ([np.int64(8)], True), ((0,), False), ((8.0,), False),
     ((True,), False), ("64", False), (64, False)],
)  # fmt: skip
def test_sizes_accepts_sequences_of_positive_ints_only(sizes, ok):
    assert Sizes().is_satisfied_by(sizes) is ok


def test_sizes_can_require_a_layer():
    assert not Sizes(allow_empty=False).is_satisfied_by(())
    assert str(Sizes(allow_empty=False)) == "a non-empty sequence of ints >= 1"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0, -1], "users must hold user IDs in [0, 5); got -1 at position 1"),
        ([1.7], "users must hold whole-number user IDs; got 1.7 at position 0"),
        ([math.nan], "users must hold whole-number user IDs; got nan at position 0"),
        ([1e20], "users must hold user IDs in [0, 5); got 1e+20 at position 0"),
        ([5], "users must hold user IDs in [0, 5); got 5 at position 0"),
    ],
)
def test_check_ids_names_the_argument_the_value_and_its_position(values, message):
    with pytest.raises(ValueError) as error:
        check_ids(values, "users", upper=5, what="user IDs")
    assert str(error.value) == message


def test_check_ids_returns_int64_and_refuses_non_numbers():
    ids = check_ids(torch.tensor([[1.0, 2.0]]), "items")
    assert ids.dtype == np.int64 and ids.tolist() == [[1, 2]]
    for bad in (["a"], [True]):
        with pytest.raises(TypeError, match="items must hold integer IDs"):
            check_ids(bad, "items")


def test_check_labels_finds_nan_and_inf_in_arrays_and_tensors():
    check_labels(["cat", "dog"])
    check_labels(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="y must hold finite labels; got inf at position 2"):
        check_labels(torch.tensor([0.0, 1.0, math.inf]))
