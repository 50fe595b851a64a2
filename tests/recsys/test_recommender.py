import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from continual import BudgetExceededError
from recsys.models import MF, LightGCN, normalized_adjacency
from recsys.recommender import Recommender
from streams.communities import planted_communities
from streams.interactions import Interactions


@pytest.fixture(scope="module")
def split():
    return planted_communities(150, 200, n_communities=5, seed=0).split_per_user(0.2, seed=0)


def small(**params):
    return Recommender(dim=16, epochs=15, batch_size=512, random_state=0, **params)


@pytest.mark.parametrize(
    ("model", "embedding"), [("mf", "full"), ("mf", "graphhash"), ("lightgcn", "full")]
)
def test_learns_the_planted_communities(split, model, embedding):
    train, test = split
    rec = small(model=model, embedding=embedding).fit(train)
    recall = rec.score(test, train=train)
    popular = np.bincount(train.items, minlength=200).argsort()[::-1][:20]
    base = np.mean([np.isin(test.user_items(u), popular).mean() for u in np.unique(test.users)])
    assert recall > base + 0.05
    accounts = rec.accountant_.ledger().accounts
    assert ("graph" in accounts) == (model == "lightgcn")


def test_same_seed_same_numbers_and_clone(split):
    train, test = split
    a = small(embedding="double").fit(train).score(test, train=train)
    b = clone(small(embedding="double")).fit(train).score(test, train=train)
    assert a == b


def test_recommend_skips_excluded_items(split):
    train, _ = split
    rec = small().fit(train)
    top = rec.recommend(np.arange(10), k=5, exclude=train)
    for u, row in enumerate(top):
        assert not set(row.tolist()) & set(train.user_items(u).tolist())


def test_ledger_charges_table_maps_and_optimizer(split):
    train, _ = split
    rec = small(embedding="frequency", n_user_rows=40, n_item_rows=50).fit(train)
    ledger = rec.accountant_.ledger().accounts
    assert ledger["embedding_table"] == (40 + 50) * 16 * 4
    assert ledger["user_map"] == 20 * 4 + 8 and ledger["item_map"] == 25 * 4 + 8
    assert ledger["optimizer"] == 2 * (40 + 50) * 16 * 4 + 4


def test_dsl_table_is_smaller(split):
    train, test = split
    dense = small().fit(train)
    sparse = small(density=0.2, update_every=5).fit(train)
    d, s = dense.accountant_.total(), sparse.accountant_.total()
    assert s <= 0.35 * d
    assert sparse.dsl_.n_updates > 0
    assert sparse.score(test, train=train) > 0.05


def test_partial_fit_handles_new_ids_without_crashing(split):
    train, _ = split
    first = train.select(train.users < 100).with_vocabulary(100, 200)
    rec = small(embedding="graphhash").partial_fit(first)
    assert rec.n_users_ == 100
    rec.partial_fit(train)  # users 100..149 are new: fallback, then neighbour majority
    assert rec.n_users_ == 150
    assert (rec.model_.user_mapper.labels[100:] >= 0).mean() > 0.9
    assert len(rec.reports_) == 2
    unseen = Interactions([170], [3], n_users=171, n_items=200)
    assert rec.recommend([170], k=3).shape == (1, 3)
    assert np.isfinite(rec.score(unseen))


def test_bad_input_and_failed_partial_fit_restore(split):
    train, _ = split
    with pytest.raises(ValueError, match="at least one interaction"):
        small().fit(Interactions([], []))
    with pytest.raises(TypeError, match=r"streams\.Interactions"):
        small().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="embedding must be"):
        small(embedding="bloom").fit(train)
    with pytest.raises(BudgetExceededError, match="embedding table alone"):
        small(budget="1 KB").fit(train)
    rec = small().fit(train)
    before = rec.model_.table.weight.detach().clone()
    rec.accountant_.budget = 100  # the next block cannot fit
    with pytest.raises(BudgetExceededError):
        rec.partial_fit(train)
    torch.testing.assert_close(rec.model_.table.weight.detach(), before)
    assert len(rec.reports_) == 1


def test_duplicates_are_deduplicated_and_counted():
    data = Interactions([0, 0, 1], [1, 1, 0])
    unique, dropped = data.deduplicate()
    assert dropped == 1 and len(unique) == 2


def test_lightgcn_propagation_matches_dense_formula():
    graph = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32))
    from recsys.mappers import Full

    model = LightGCN(Full(2), Full(3), 2, 3, dim=4, graph=graph, n_layers=2)
    weight = model.table.dense().detach()
    ego = torch.cat([weight[:2], weight[3:6]])
    a = normalized_adjacency(graph).to_dense()
    expected = (ego + a @ ego + a @ a @ ego) / 3
    torch.testing.assert_close(model.propagate(weight).detach(), expected)
    assert isinstance(model, MF)


def test_duplicates_in_a_block_are_counted(split):
    train, _ = split
    doubled = Interactions(
        np.concatenate([train.users, train.users[:7]]),
        np.concatenate([train.items, train.items[:7]]),
    )
    rec = Recommender(dim=8, epochs=1, random_state=0).fit(doubled)
    assert rec.n_duplicates_ == 7


def test_recluster_remaps_rows_and_keeps_quality(split):
    train, test = split
    rec = small(embedding="graphhash").fit(train)
    before = rec.score(test, train=train)
    old_users = rec.model_.user_mapper
    old_weight = rec.model_.table.weight.detach().clone()
    rec.recluster(train, resolution=3.0)
    users = rec.model_.user_mapper
    assert users is not old_users
    ledger = rec.accountant_.ledger().accounts
    n_rows = users.n_rows + rec.model_.item_mapper.n_rows
    assert ledger["embedding_table"] == n_rows * 16 * 4
    assert ledger["user_map"] == 150 * 4 + 16
    # a user's new row is the mean of the old embeddings of its new cluster's members
    weight = rec.model_.table.weight.detach()
    members = np.flatnonzero(users.labels == users.labels[0])
    old_rows = torch.from_numpy(old_users.rows(members)[:, 0])
    torch.testing.assert_close(weight[users.labels[0]], old_weight[old_rows].mean(0))
    assert rec.score(test, train=train) > 0.5 * before
    assert weight.shape == (n_rows, 16)
    with pytest.raises(ValueError, match="recluster needs"):
        small().fit(train).recluster(train)


def test_dsl_composes_with_graphhash_rows(split):
    train, test = split
    rec = small(embedding="graphhash", density=0.5).fit(train)
    table = rec.model_.table
    n_rows = rec.model_.user_mapper.n_rows + rec.model_.item_mapper.n_rows
    assert table.shape == (n_rows, 16)
    assert rec.accountant_.ledger().accounts["embedding_table"] == (
        -(-n_rows * 16 // 8) + 4 * table.nnz
    )
    assert table.mask.count() == table.nnz and rec.dsl_.n_updates > 0
    assert rec.score(test, train=train) > 0.1
