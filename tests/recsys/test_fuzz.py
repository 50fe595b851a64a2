"""Property-based fuzzing of the Recommender: generated bad hyperparameters, training
blocks, users and cut-offs either raise a clear error (``ValueError``, ``TypeError`` or
``BudgetExceededError`` with a message) and leave the estimator as it was, or give a valid
result, checked against an independent expectation.
"""

from __future__ import annotations

import copy
import functools
import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from recsys import Recommender
from streams.communities import planted_communities
from streams.interactions import Interactions
from tests.bad_inputs import fails_cleanly as _fails_cleanly

FUZZ = settings(max_examples=50)  # the rest from the 'ci' profile (conftest.py)
SMALL = {"dim": 4, "epochs": 1, "batch_size": 64, "random_state": 0}
N_USERS, N_ITEMS = 20, 30


@functools.cache
def _data() -> Interactions:
    return planted_communities(N_USERS, N_ITEMS, n_communities=2, interactions_per_user=4, seed=0)


@functools.cache
def _fitted_once(budget: Any = None) -> Recommender:
    return Recommender(budget=budget, **SMALL).fit(_data())


def _fitted(budget: Any = None) -> Recommender:
    return copy.deepcopy(_fitted_once(budget))


def fails_cleanly(subject: Any, act: Any) -> Any:
    """:func:`tests.bad_inputs.fails_cleanly`, counting refusals and acceptances (see
    ``pytest --hypothesis-show-statistics``)."""
    result = _fails_cleanly(subject, act)
    event(f"refused: {type(result).__name__}" if isinstance(result, Exception) else "accepted")
    return result


# ------------------------------------------------------------------ values
SPECIAL = [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e-3, 0.5, 1.0, 1.5, 3.0]
numbers = st.one_of(
    st.integers(-3, 6),
    st.sampled_from(SPECIAL),
    st.integers(-3, 6).map(np.int64),
    st.sampled_from(SPECIAL).map(np.float32),
)
# (no bools: the shared layer's Interval(Integral) takes True as 1, like scikit-learn)
anything = st.one_of(numbers, st.sampled_from([None, "3", "fast", [1], (2,)]))


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


#: An independent statement of what each parameter accepts (the issue's table).
ACCEPTS = {
    "density": lambda v: _is_real(v) and 0 < v <= 1,
    "dim": _is_count,
    "lr": lambda v: _is_real(v) and v > 0,
    "epochs": _is_count,
    "batch_size": _is_count,
    "reg": lambda v: _is_real(v) and v >= 0,
    "time_budget": lambda v: v is None or (_is_real(v) and v > 0),
    "n_user_rows": lambda v: v is None or _is_count(v),
    "n_item_rows": lambda v: v is None or _is_count(v),
    "resolution": lambda v: _is_real(v) and v > 0,
    "update_every": lambda v: v is None or _is_count(v),
}

counts = st.one_of(st.integers(1, 3), st.integers(1, 3).map(np.int64))
fractions = st.sampled_from([0.5, 1.0, np.float32(0.5), np.float64(1.0)])
#: Values each parameter accepts, drawn as often as anything else, so that fits run too.
VALID = {
    "density": fractions,
    "dim": counts,
    "lr": st.sampled_from([0.01, np.float32(0.01), 0.5]),
    "epochs": counts,
    "batch_size": counts.map(lambda n: n * 32),
    "reg": st.sampled_from([0.0, 1e-4, np.float64(1e-4)]),
    "time_budget": st.sampled_from([None, 60.0, np.float32(60.0)]),
    "n_user_rows": st.one_of(st.none(), counts),
    "n_item_rows": st.one_of(st.none(), counts),
    "resolution": fractions,
    "update_every": st.one_of(st.none(), counts),
}
parameters = st.lists(
    st.sampled_from(sorted(ACCEPTS)), min_size=1, max_size=3, unique=True
).flatmap(
    lambda names: st.fixed_dictionaries({name: st.one_of(VALID[name], anything) for name in names})
)


@FUZZ
@given(params=parameters, embedding=st.sampled_from(["full", "modulo", "graphhash"]))
def test_hyperparameters_are_checked_at_fit(params, embedding):
    rec = Recommender(embedding=embedding, **{**SMALL, **params})
    result = fails_cleanly(rec, lambda est: est.fit(_data()))
    valid = all(ACCEPTS[name](value) for name, value in params.items())
    if isinstance(result, Exception):
        assert not valid, f"valid {params} refused: {result}"
        bad = [name for name, value in params.items() if not ACCEPTS[name](value)]
        assert any(name in str(result) for name in bad), str(result)
        assert not hasattr(rec, "n_partial_fits_")
    else:
        assert valid, f"accepted {params}"
        assert rec.n_partial_fits_ == 1 and rec.n_users_ == N_USERS


@FUZZ
@given(params=parameters)
def test_hyperparameters_are_checked_again_at_partial_fit(params):
    rec = _fitted()
    result = fails_cleanly(rec, lambda est: est.set_params(**params).partial_fit(_data()))
    valid = all(ACCEPTS[name](value) for name, value in params.items())
    assert isinstance(result, Exception) != valid, (params, result)
    assert rec.n_partial_fits_ == (2 if valid else 1)


# ------------------------------------------------------------------ blocks
ids = st.one_of(
    st.integers(0, 40),
    st.sampled_from([-1, 2**31 - 2, 2**31, 2**40, 1.5, math.nan, math.inf, "a", None]),
)
valid_ids = st.lists(st.integers(0, 40), min_size=1, max_size=6)
blocks = st.one_of(
    valid_ids.flatmap(
        lambda users: st.tuples(
            st.just(users), st.lists(st.integers(0, 40), min_size=len(users), max_size=len(users))
        )
    ),
    st.tuples(st.lists(ids, max_size=6), st.lists(ids, max_size=6)),
    st.sampled_from([None, "data", 3, np.zeros((3, 2)), [(0, 1)], {"users": [0]}]),
)


def _block(value: Any) -> Any:
    """A block to learn: Interactions built from the generated IDs (its constructor is part
    of what is fuzzed), or the generated object itself."""
    if isinstance(value, tuple):
        users, items = value
        return Interactions(users, items)
    return value


@FUZZ
@given(block=blocks, budget=st.sampled_from([None, "1MB"]))
def test_partial_fit_learns_a_valid_block_or_changes_nothing(block, budget):
    rec = _fitted(budget)
    result = fails_cleanly(rec, lambda est: est.partial_fit(_block(block)))
    if isinstance(result, Exception):
        assert rec.n_partial_fits_ == 1 and rec.n_items_ == N_ITEMS
        return
    users, items = block  # only interactions of whole, in-range IDs are learned
    assert len(users) == len(items) > 0
    assert all(isinstance(i, int) and 0 <= i < 2**31 for i in [*users, *items])
    assert rec.n_partial_fits_ == 2
    assert rec.n_items_ == max(N_ITEMS, max(items) + 1)
    if budget is not None:  # ranking fits the budget: embeddings and a user's scores
        assert 4 * (4 * (rec.n_users_ + rec.n_items_) + rec.n_items_) <= 1_000_000


# --------------------------------------------------------------- inference
valid_users = st.lists(st.one_of(st.integers(0, N_USERS + 5), st.just(2**31 - 1)), max_size=5)
users_lists = st.one_of(valid_users, st.lists(ids, max_size=5), ids, st.just([[0, 1]]))
cutoffs = st.one_of(
    st.integers(1, N_ITEMS + 5), numbers, st.sampled_from([None, "5", 10**9, np.int64(3)])
)


def _expected_top(rec: Recommender, users: list[int], k: int) -> np.ndarray:
    """Independent ranking: every item's score from the model's final embeddings (known
    users) or the user's layer-0 lookup (unseen users)."""
    user_emb, item_emb = rec.model_.final()
    rows = [
        user_emb[u]
        if u < user_emb.shape[0]
        else rec.model_.lookup(rec.model_.table.dense().detach(), [u], "user")[0]
        for u in users
    ]
    return (torch.stack(rows) @ item_emb.T).numpy() if rows else np.zeros((0, N_ITEMS))


@FUZZ
@given(users=users_lists, k=cutoffs)
def test_recommend_ranks_valid_users_or_refuses_clearly(users, k):
    rec = _fitted()
    result = fails_cleanly(rec, lambda est: est.recommend(users, k=k))
    if isinstance(result, Exception):
        return
    assert isinstance(users, list) and all(isinstance(u, int) and 0 <= u < 2**31 for u in users)
    assert isinstance(k, Integral) and not isinstance(k, bool) and k >= 1
    assert result.shape == (len(users), min(int(k), N_ITEMS))
    scores = _expected_top(rec, users, int(k))
    for row, top in zip(scores, result, strict=True):
        assert len(set(top.tolist())) == top.size
        rest = np.setdiff1d(np.arange(N_ITEMS), top)
        if rest.size:  # every returned item scores at least as high as every other
            assert row[top].min() >= row[rest].max() - 1e-5


@FUZZ
@given(k=cutoffs, train=st.one_of(st.none(), st.sampled_from(["abc", 0, np.eye(2)])))
def test_scores_take_a_valid_cut_off_and_mask(k, train):
    rec = _fitted()
    train_value = _data() if train is None else train
    result = fails_cleanly(rec, lambda est: est.scores(_data(), train=train_value, k=k))
    if isinstance(result, Exception):
        return
    assert train is None and isinstance(k, Integral) and k >= 1
    assert set(result) == {"recall", "ndcg"} and all(0.0 <= v <= 1.0 for v in result.values())
