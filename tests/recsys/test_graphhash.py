import numpy as np
import pytest
import scipy.sparse as sp
from sknetwork.clustering import Louvain

from continual import nbytes
from recsys.graphhash import DoubleGraphHash, GraphHash
from streams.communities import planted_communities


@pytest.fixture(scope="module")
def graph():
    return planted_communities(300, 400, n_communities=6, seed=0).csr()


@pytest.mark.parametrize("resolution", [0.5, 1.0, 5.0])
def test_row_counts_match_direct_louvain(graph, resolution):
    louvain = Louvain(resolution=resolution, random_state=0)
    louvain.fit(graph.astype(np.float64), force_bipartite=True)
    users, items = GraphHash.fit(graph, resolution)
    assert users.n_clusters == np.unique(louvain.labels_row_).size
    assert items.n_clusters == np.unique(louvain.labels_col_).size
    same = louvain.labels_row_[:, None] == louvain.labels_row_[None, :]
    np.testing.assert_array_equal(users.labels[:, None] == users.labels[None, :], same)
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
    new = np.array([300, 301])
    rows = users.rows(new).ravel()
    assert (rows >= users.n_clusters).all()
    cluster_items = np.flatnonzero(items.labels == 0)[:5]
    neighbours = sp.csr_matrix((np.ones(5), (np.zeros(5, int), cluster_items)), shape=(2, 400))
    assert users.assign_by_neighbours(new, neighbours, items) == 1
    assert users.rows(new).ravel()[0] == 0 and users.rows(new).ravel()[1] >= users.n_clusters
    assert nbytes(users) == 302 * 4 + 16


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
