import numpy as np
import pytest
import scipy.sparse as sp
from sknetwork.clustering import Louvain

from continual import nbytes
from recsys.graphhash import DoubleGraphHash, GraphHash
from recsys.mapper_specs import mapper_from_dict
from streams.communities import planted_communities


@pytest.fixture(scope="module")
def graph():
    return planted_communities(300, 400, n_communities=6, seed=0).csr()


@pytest.mark.parametrize("resolution", [0.5, 1.0, 5.0])
def test_row_counts_match_direct_louvain_on_the_ids_with_interactions(graph, resolution):
    active_items = np.flatnonzero(graph.getnnz(axis=0))
    assert graph.getnnz(axis=1).all() and active_items.size == 399  # item 182 has none
    louvain = Louvain(resolution=resolution, random_state=0)
    louvain.fit(graph[:, active_items].astype(np.float64), force_bipartite=True)
    users, items = GraphHash.fit(graph, resolution)
    assert users.n_clusters == np.unique(louvain.labels_row_).size
    assert items.n_clusters == np.unique(louvain.labels_col_).size
    same = louvain.labels_row_[:, None] == louvain.labels_row_[None, :]
    np.testing.assert_array_equal(users.labels[:, None] == users.labels[None, :], same)
    same = louvain.labels_col_[:, None] == louvain.labels_col_[None, :]
    found = items.labels[active_items]
    np.testing.assert_array_equal(found[:, None] == found[None, :], same)
    assert (np.delete(items.labels, active_items) == -1).all()  # no cluster of its own
    assert users.n_rows == users.n_clusters + 1
    assert nbytes(users) == 300 * 4 + 16 and nbytes(items) == 400 * 4 + 16


def test_recovers_planted_communities():
    data, user_c, _ = planted_communities(
        300, 400, n_communities=6, p_in=0.95, seed=1, return_communities=True
    )
    users, _ = GraphHash.fit(data.csr(), 1.0)
    # most pairs of users in one planted community share a cluster
    same_planted = user_c[:, None] == user_c[None, :]
    same_found = users.labels[:, None] == users.labels[None, :]
    assert (same_found[same_planted]).mean() > 0.8


def test_unseen_ids_fall_back_then_join_the_neighbours_majority(graph):
    users, items = GraphHash.fit(graph, 1.0, n_fallback=2)
    labels = users.labels
    new = np.array([300, 301])
    rows = users.rows(new).ravel()
    assert (rows >= users.n_clusters).all()
    cluster_items = np.flatnonzero(items.labels == 0)[:5]
    # user 300 interacted with five items of cluster 0; user 301 with an item nobody labelled
    ids = np.array([300] * 5 + [301])
    neighbours = np.concatenate([cluster_items, [10_000]])
    assert users.assign_by_neighbours(ids, neighbours, items) == 1
    assert users.rows(new).ravel()[0] == 0 and users.rows(new).ravel()[1] >= users.n_clusters
    assert nbytes(users) == 302 * 4 + 16 == users.grown_nbytes(301)
    assert labels is not users.labels and not labels.flags.writeable  # replaced, not modified
    # a clustered ID keeps its cluster whatever its new neighbours say
    before = users.labels[0]
    other = np.flatnonzero(items.labels != before)[:3]
    assert users.assign_by_neighbours([0, 0, 0], other, items) == 0
    assert users.labels[0] == before


def test_majority_vote_matches_a_count_per_id():
    """Against a plain count: the most frequent neighbour cluster, ties to the smaller one."""
    rng = np.random.default_rng(0)
    items = GraphHash(rng.integers(0, 4, size=30))
    ids = rng.integers(0, 12, size=200)
    neighbours = rng.integers(0, 30, size=200)
    users = GraphHash(np.r_[np.full(12, -1), [3]])  # one cluster id 3 exists: 4 clusters
    users.assign_by_neighbours(ids, neighbours, items)
    for user in range(12):
        votes = np.bincount(items.labels[neighbours[ids == user]], minlength=4)
        expected = int(votes.argmax()) if votes.sum() else -1
        assert users.labels[user] == expected


def test_isolated_ids_get_no_cluster():
    graph = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 2))))
    graph.resize((8, 7))  # users 6, 7 and item 4..6 have no interaction
    users, items = GraphHash.fit(graph, 1.0)
    assert users.labels.tolist() == [0, 0, 0, 1, 1, 1]  # ends at the last active ID
    assert items.labels.tolist() == [0, 0, 1, 1] and users.n_clusters == 2
    pairs_users, pairs_items = GraphHash.fit_pairs([5, 5, 9], [2, 2, 40])
    assert pairs_users.labels.size == 10 and pairs_items.labels.size == 41
    assert (pairs_users.labels[[0, 1, 2, 3, 4, 6, 7, 8]] == -1).all()


def test_for_budget_fits_and_is_maximal_enough(graph):
    budget = 40_000
    users, items, _ = GraphHash.for_budget(budget, graph, dim=16, steps=8)
    cost = (users.n_rows + items.n_rows) * 16 * 4 + nbytes(users) + nbytes(items)
    assert cost <= budget
    assert cost > 0.5 * budget
    with pytest.raises(ValueError, match="too small"):
        GraphHash.for_budget(1000, graph, dim=16)


def test_double_graph_hash_adds_a_hashed_row(graph):
    users, _ = GraphHash.fit(graph, 1.0)
    mapper = DoubleGraphHash(users, n_hash_rows=10)
    rows = mapper.rows(np.arange(300))
    np.testing.assert_array_equal(rows[:, 0], users.labels)
    assert (rows[:, 1] >= users.n_rows).all() and (rows[:, 1] < mapper.n_rows).all()
    assert nbytes(mapper) == nbytes(users) + 24
    copy = mapper_from_dict(mapper.to_dict())
    np.testing.assert_array_equal(copy.rows(np.arange(400)), mapper.rows(np.arange(400)))
    assert copy.graph.labels is users.labels  # the facts share the arrays
