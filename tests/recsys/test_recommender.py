import pickle
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from continual import BudgetExceededError
from continual.checks import assert_same_state
from recsys.metrics import evaluate
from recsys.models import MF, LightGCN, normalized_adjacency
from recsys.recommender import Recommender
from recsys.time_budget import CpuTimeBudget
from streams.communities import planted_communities
from streams.interaction_streams import interaction_blocks
from streams.interactions import Interactions
from tests.device_checks import (
    assert_allocator_agrees,
    assert_stored_on,
    cuda,
    cuda_bytes_of,
    stored_tensors,
)


@pytest.fixture(scope="module")
def split():
    return planted_communities(150, 200, n_communities=5, seed=0).split_per_user(0.2, seed=0)


def small(**params):
    return Recommender(**{"dim": 16, "epochs": 15, "batch_size": 512, "random_state": 0, **params})


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
    assert ledger["model"] == (40 + 50) * 16 * 4
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
    assert rec.n_partial_fits_ == 2
    assert rec.user_map_["labels"] is rec.model_.user_mapper.labels  # the fact is the map
    unseen = Interactions([170], [3], n_users=171, n_items=200)
    assert rec.recommend([170], k=3).shape == (1, 3)
    assert np.isfinite(rec.score(unseen))


def test_bad_input_and_failed_partial_fit_restore(split):
    train, _ = split
    with pytest.raises(ValueError, match="at least one interaction"):
        small().fit(Interactions([], []))
    with pytest.raises(TypeError, match=r"streams\.Interactions"):
        small().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"'embedding' parameter of Recommender.*Got 'bloom'"):
        small(embedding="bloom").fit(train)
    with pytest.raises(BudgetExceededError, match="model needs 22,528 bytes"):
        small(budget="1 KB").fit(train)  # (150 + 1 + 200 + 1) rows x 16 x 4 bytes
    rec = small().fit(train)
    before = rec.model_.table.weight.detach().clone()
    rec.set_params(budget=100)  # the next block cannot fit (the accountant made for None
    rec.accountant_.budget = 100  # is given the same budget: the test changes it in place)
    with pytest.raises(BudgetExceededError):
        rec.partial_fit(train)
    torch.testing.assert_close(rec.model_.table.weight.detach(), before)
    assert rec.n_partial_fits_ == 1


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
    assert ledger["model"] == n_rows * 16 * 4
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
    assert rec.accountant_.ledger().accounts["model"] == (-(-n_rows * 16 // 8) + 4 * table.nnz)
    assert table.mask.count() == table.nnz and rec.dsl_.n_updates > 0
    assert rec.score(test, train=train) > 0.1


def same_state(a, b):
    assert_same_state(a, b)
    return True


def test_lightgcn_trains_again_after_fit_and_reclusters(split, one_thread):
    """Measured bug: fit then partial_fit (and recluster) raised 'Cannot access storage of
    SparseCsrTensorImpl' from the deep copy of the rollback."""
    train, test = split
    rec = small(model="lightgcn", embedding="graphhash", epochs=3).fit(train)
    graph = rec.model_.adjacency
    weight = rec.model_.table.weight.detach().clone()
    rec.partial_fit(train)
    assert rec.n_partial_fits_ == 2 and rec.totals_["steps"] == 2 * 3 * -(-len(train) // 512)
    assert not torch.equal(rec.model_.table.weight.detach(), weight)
    assert rec.model_.adjacency is not graph  # replaced, not modified in place
    rec.recluster(train, resolution=3.0)
    n_rows = rec.model_.user_mapper.n_rows + rec.model_.item_mapper.n_rows
    assert rec.model_.table.weight.shape == (n_rows, 16)
    rec.partial_fit(train)
    assert rec.n_partial_fits_ == 3 and 0.0 <= rec.score(test, train=train) <= 1.0


def test_a_failed_lightgcn_partial_fit_leaves_it_unchanged(split, one_thread):
    train, _ = split
    rec = small(model="lightgcn", epochs=2).fit(train)
    before = pickle.loads(pickle.dumps(rec))
    learn = rec._learn

    def learn_then_fail(data):
        learn(data)
        raise KeyboardInterrupt

    rec._learn = learn_then_fail
    with pytest.raises(KeyboardInterrupt):
        rec.partial_fit(train.select(train.users < 100))
    del rec._learn
    assert same_state(rec, before)
    assert rec.accountant_.transient == 0


def test_recluster_is_transactional(split):
    train, _ = split
    rec = small(embedding="graphhash").fit(train)
    before = pickle.loads(pickle.dumps(rec))
    rec.accountant_.budget = rec.accountant_.total() + 10  # more rows than now cannot fit
    with pytest.raises(BudgetExceededError, match="re-clustering"):
        rec.recluster(train, resolution=50.0)
    assert same_state(rec, before)
    with pytest.raises(ValueError, match="resolution"):
        rec.recluster(train, resolution=0.0)
    with pytest.raises(ValueError, match="recluster needs"):
        small(embedding="graphhash", density=0.5).fit(train).recluster(train)


HUGE_ITEM = 2**31 - 2  # the largest int32 ID below the int32 maximum


@pytest.mark.parametrize(
    ("model", "embedding"),
    [
        ("mf", "full"),
        ("mf", "modulo"),
        ("mf", "frequency"),
        ("mf", "graphhash"),
        ("mf", "doublegraphhash"),
        ("lightgcn", "full"),
        ("lightgcn", "graphhash"),
    ],
)
def test_a_huge_item_id_is_refused_before_anything_is_allocated(model, embedding):
    """Measured bugs: item 2**31-2 under 1 MB first tried to allocate tens of GB (and with
    GraphHash was killed for memory); then, with the maps that do not grow, it was accepted
    and the next recommend tried to allocate 2**31 item embeddings. The stored bytes and the
    working memory of ranking are planned from shapes before anything grows."""
    data = planted_communities(40, 50, n_communities=4, interactions_per_user=6, seed=0)
    huge = Interactions([0, 1], [3, HUGE_ITEM])
    rec = Recommender(model, embedding, budget="1MB", dim=8, epochs=1, random_state=0)
    rec.fit(data)
    before = pickle.loads(pickle.dumps(rec))
    tracemalloc.start()
    try:
        with pytest.raises(BudgetExceededError, match="needs"):
            Recommender(model, embedding, budget="1MB", dim=8, random_state=0).fit(huge)
        with pytest.raises(BudgetExceededError, match="before experience 1"):
            rec.partial_fit(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # numpy's allocations; the table alone would be 8 GB or more
    assert same_state(rec, before) and rec.n_partial_fits_ == 1 and rec.n_items_ == 50


def test_ranking_working_memory_is_checked_against_the_budget():
    """Ranking 2**31 items needs 4 * dim bytes per item: refused by partial_fit (the map of
    modulo hashing does not grow, so only ranking would allocate), and the message says
    what ranking needs (an independent count: 4 bytes x (dim x (users + items) + items))."""
    data = planted_communities(40, 50, n_communities=4, interactions_per_user=6, seed=0)
    rec = Recommender(embedding="modulo", budget="1MB", dim=8, epochs=1, random_state=0)
    rec.fit(data)
    needs = 4 * (8 * (40 + HUGE_ITEM + 1) + HUGE_ITEM + 1)
    with pytest.raises(
        BudgetExceededError,
        match=f"ranking 40 users and {HUGE_ITEM + 1:,} items needs {needs:,} bytes",
    ):
        rec.partial_fit(Interactions([0], [HUGE_ITEM]))
    unlimited = Recommender(embedding="modulo", dim=8, epochs=1, random_state=0).fit(data)
    top = unlimited.recommend([0, 39], k=3)
    assert top.shape == (2, 3) and (top < 50).all()


def test_score_is_recall_at_20_and_scores_gives_every_metric(split):
    train, test = split
    rec = small(embedding="modulo").fit(train)
    all_scores = rec.scores(test, train=train)
    assert set(all_scores) == {"recall", "ndcg"}
    assert rec.score(test, train=train) == all_scores["recall"]
    user_emb, item_emb = rec.model_.final()
    expected = evaluate(user_emb, item_emb, train, test, k=5)
    at_5 = rec.scores(test, train=train, k=5)
    assert at_5 == pytest.approx({"recall": expected["recall"], "ndcg": expected["ndcg"]})
    with pytest.raises(ValueError, match="y must be None"):
        rec.score(test, train)


def test_last_call_facts_totals_and_the_time_budget(split):
    train, _ = split
    batches = -(-len(train) // 512)
    rec = small(epochs=3).fit(train)
    assert rec.last_fit_["epochs"] == 3.0 and rec.last_fit_["steps"] == 3 * batches
    assert rec.last_fit_["loss"] == rec.losses_[-1] and len(rec.losses_) == 3
    rec.partial_fit(train)
    assert rec.totals_ == {"epochs": 6.0, "steps": 6 * batches}
    timer = next(p for p in rec.learner_.plugins if isinstance(p, CpuTimeBudget))
    assert timer.seconds_used > 0  # the last call's CPU seconds, measured even without a budget
    timed = small(epochs=1000, time_budget=0.05, batch_size=64).fit(train)
    assert 0 < timed.last_fit_["epochs"] < 1000  # stopped, mid-epoch if need be
    assert timed.last_fit_["steps"] == timed.learner_.n_steps


def test_random_state_none_draws_and_keeps_a_seed(split):
    train, _ = split
    rec = Recommender(dim=8, epochs=1).fit(train)
    assert rec.random_state is None and isinstance(rec.seed_, int)
    again = Recommender(dim=8, epochs=1, random_state=rec.seed_).fit(train)
    assert same_state(rec, again)


def test_forward_scores_are_the_prequential_protocol():
    """R[t-1][t] of evaluate(stream) equals scoring block t before learning it, with the items
    of the earlier blocks masked, done by hand."""
    data = planted_communities(80, 100, n_communities=4, interactions_per_user=10, seed=1)
    stream = interaction_blocks(data, 3)
    matrix = small(embedding="graphhash", epochs=2).evaluate(stream, horizon=1).matrix
    by_hand = small(embedding="graphhash", epochs=2)
    in_time = np.argsort(data.times, kind="stable")
    for t, experience in enumerate(stream):
        if t > 0:
            past = data.select(in_time[: experience.metadata["start"]])
            assert matrix[t - 1, t] == by_hand.score(experience.train, train=past)
        by_hand.partial_fit(experience.train)
    assert np.isnan(matrix[0, 2])  # beyond the horizon


def test_recommend_never_returns_masked_items(split):
    train, _ = split
    rec = small(embedding="graphhash").fit(train)
    top = rec.recommend(np.arange(150), k=20, exclude=train)
    seen = train.csr().toarray() > 0
    assert not seen[np.arange(150)[:, None], top].any()


# ------------------------------------------------------------------------------ devices
DEVICE_CASES = {
    "mf": {},
    "lightgcn-graphhash": {"model": "lightgcn", "embedding": "graphhash"},
    "dsl": {"density": 0.5, "update_every": 2},
}
ON_THE_CPU = {"user_map", "item_map"}  # the mappers are numpy arrays


def stored(rec):
    """The tensors a recommender keeps: the table, Adam's state, DSL's accumulator, the
    graph."""
    learner = rec.learner_
    graph = getattr(rec.model_, "adjacency", None)
    return stored_tensors(learner.model, learner.optimizer, learner.plugins, learner.amp, graph)


def fit_blocks(case, train, device):
    rec = small(epochs=4, device=device, **DEVICE_CASES[case])
    rec.fit(train.select(train.users < 100)).partial_fit(train)  # new IDs in the second block
    if rec.embedding == "graphhash":
        rec.recluster(train)
    return rec


@pytest.mark.parametrize("case", list(DEVICE_CASES))
def test_everything_stored_lives_on_the_requested_device(split, case, one_thread):
    train, test = split
    rec = fit_blocks(case, train, "cpu")
    assert rec.recommend(np.arange(5), k=3, exclude=train).shape == (5, 3)
    assert 0.0 <= rec.score(test, train=train) <= 1.0
    assert_stored_on("cpu", rec.accountant_.ledger(), stored(rec), cpu=ON_THE_CPU)


def test_an_unavailable_device_fails_before_anything_is_built(split):
    rec = small(device="cuda:99")
    with pytest.raises(ValueError, match=r"device='cuda:99' is not available"):
        rec.fit(split[0])
    assert [name for name in vars(rec) if name.endswith("_")] == []


def test_mixed_precision_keeps_float32_weights_and_charges_the_scaler(split):
    train, test = split
    full = small(epochs=3).fit(train)
    for precision in ("bf16-mixed", "16-mixed"):
        rec = small(epochs=3, precision=precision).fit(train)
        assert rec.model_.table.weight.dtype == torch.float32
        assert np.all(np.isfinite(rec.losses_)) and 0.0 <= rec.score(test, train=train) <= 1.0
        scaler = 8 if precision == "16-mixed" else 0  # a float32 scale and an int32 counter
        optimizer = rec.accountant_.ledger().accounts["optimizer"]
        assert optimizer == full.accountant_.ledger().accounts["optimizer"] + scaler
    with pytest.raises(ValueError, match=r"'precision' parameter of Recommender.*Got 'half'"):
        small(precision="half").fit(train)


def test_lightgcn_trains_in_mixed_precision(split, one_thread):
    rec = small(model="lightgcn", epochs=2, precision="bf16-mixed").fit(split[0])
    assert np.all(np.isfinite(rec.losses_))


@cuda
@pytest.mark.parametrize("case", list(DEVICE_CASES))
def test_cuda_matches_the_cpu_and_the_allocator(split, case):
    train, test = split
    rec, allocated = cuda_bytes_of(lambda: fit_blocks(case, train, "cuda"))
    ledger, tensors = rec.accountant_.ledger(), stored(rec)
    assert_stored_on("cuda:0", ledger, tensors, cpu=ON_THE_CPU)
    assert_allocator_agrees(ledger, allocated, tensors)
    on_cpu = fit_blocks(case, train, "cpu")
    assert rec.score(test, train=train) == pytest.approx(on_cpu.score(test, train=train), abs=0.02)
    top = rec.recommend(np.arange(20), k=5, exclude=train)
    for user, row in enumerate(top):
        assert not set(row.tolist()) & set(train.user_items(user).tolist())
