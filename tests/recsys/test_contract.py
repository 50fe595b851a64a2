"""Recommender keeps the BudgetedEstimator contract (continual.checks) on a stream of blocks."""

import functools

import pytest

from continual.checks import check_estimator
from recsys import Recommender
from streams import interaction_blocks, planted_communities

TINY = {"dim": 8, "epochs": 2, "batch_size": 64, "budget": "200 KB"}


@pytest.fixture(scope="module")
def stream():
    """Three blocks in user order (each brings 20 new users); each test payload masks the
    earlier blocks (streams.RankingTest)."""
    data = planted_communities(60, 80, n_communities=4, interactions_per_user=8, seed=0)
    return interaction_blocks(data, 3, order="id")


@pytest.mark.parametrize(
    "params",
    [
        {"model": "mf", "embedding": "full"},
        {"model": "mf", "embedding": "graphhash", "resolution": 2.0},
        {"model": "mf", "embedding": "full", "density": 0.5, "update_every": 2},
        {"model": "lightgcn", "embedding": "graphhash", "resolution": 2.0},
    ],
    ids=["mf-full", "mf-graphhash", "mf-dsl", "lightgcn-graphhash"],
)
def test_contract(params, stream, one_thread):
    check_estimator(functools.partial(Recommender, **TINY, **params), stream, resume_at=2)


def test_the_stream_exercises_new_ids_and_dsl_updates(stream):
    """The checks above see IDs arrive after the first block and DSL prune and grow."""
    assert [e.metadata["n_new_users"] for e in stream] == [20, 20, 20]
    rec = Recommender(**TINY, density=0.5, update_every=2, random_state=0)
    for experience in stream:
        rec.partial_fit(experience.train)
    assert rec.dsl_.n_updates > 0 and rec.n_users_ == 60
