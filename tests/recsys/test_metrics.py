import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.metrics import evaluate
from streams.interactions import Interactions


def reference(user_emb, item_emb, train, test, k):
    """Straightforward per-user loop: full sort, Python sets."""
    recalls, ndcgs = [], []
    for u in range(user_emb.shape[0]):
        truth = set(test.getrow(u).indices.tolist())
        if not truth:
            continue
        scores = item_emb @ user_emb[u]
        scores[train.getrow(u).indices] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        hits = [int(i in truth) for i in top]
        recalls.append(sum(hits) / len(truth))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(truth))))
        ndcgs.append(dcg / idcg)
    return float(np.mean(recalls)), float(np.mean(ndcgs)), len(recalls)


@pytest.mark.parametrize(("seed", "k", "batch"), [(0, 20, 7), (1, 5, 64), (2, 50, 1000)])
def test_matches_per_user_reference(seed, k, batch):
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 80
    users = rng.normal(size=(n_users, 8)).astype(np.float32)
    items = rng.normal(size=(n_items, 8)).astype(np.float32)
    both = sp.random(n_users, n_items, density=0.2, random_state=seed, format="csr")
    train = sp.csr_matrix(both.multiply(rng.random(both.shape) < 0.7))
    test = sp.csr_matrix(both - train)
    train.eliminate_zeros(), test.eliminate_zeros()
    recall, ndcg, n = reference(users, items, train, test, k)
    result = evaluate(torch.from_numpy(users), items, train, test, k=k, batch_size=batch)
    assert result["recall"] == pytest.approx(recall, abs=1e-12)
    assert result["ndcg"] == pytest.approx(ndcg, abs=1e-12)
    assert result["n_users_evaluated"] == n
    assert result["n_users_without_test"] == n_users - n


def test_accepts_interactions_and_counts_users_without_test():
    users = np.eye(3, dtype=np.float32)
    items = np.eye(3, dtype=np.float32)
    train = Interactions([0], [0], n_users=3, n_items=3)
    test = Interactions([0, 1], [1, 1], n_users=3, n_items=3)
    result = evaluate(users, items, train, test, k=1)
    # user 0: top item after masking item 0 is a tie at 0 between items 1 and 2 -> lowest index 1
    assert result["n_users_evaluated"] == 2 and result["n_users_without_test"] == 1
    assert result["recall"] == pytest.approx(1.0)


def test_training_items_are_never_recommended():
    users = np.ones((1, 1), dtype=np.float32)
    items = np.array([[5.0], [4.0], [1.0]], dtype=np.float32)
    train = sp.csr_matrix(np.array([[1, 1, 0]]))
    test = sp.csr_matrix(np.array([[0, 0, 1]]))
    assert evaluate(users, items, train, test, k=1)["recall"] == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"'k' parameter of evaluate.*Got 0 instead"):
        evaluate(np.ones((2, 2)), np.ones((2, 2)), sp.csr_matrix((2, 2)), sp.csr_matrix((2, 2)), 0)
    with pytest.raises(ValueError, match="share their width"):
        evaluate(np.ones((2, 2)), np.ones((2, 3)), sp.csr_matrix((2, 2)), sp.csr_matrix((2, 2)))


def test_as_csr_rejects_other_types():
    with pytest.raises(TypeError, match="train must be an interactions container"):
        evaluate(np.ones((1, 1)), np.ones((1, 1)), [[0]], sp.csr_matrix((1, 1)))


def test_non_finite_embeddings_are_named_with_their_position():
    users = np.array([[1.0, 0.0], [0.0, np.nan]])
    with pytest.raises(ValueError, match="user_emb must be finite; got nan at row 1, column 1"):
        evaluate(users, np.ones((2, 2)), sp.csr_matrix((2, 2)), sp.csr_matrix((2, 2)))
    items = np.array([[np.inf, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="item_emb must be finite; got inf at row 0, column 0"):
        evaluate(np.ones((2, 2)), items, sp.csr_matrix((2, 2)), sp.csr_matrix((2, 2)))
