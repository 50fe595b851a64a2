import numpy as np
import scipy.sparse as sp

from recsys.sampling import NegativeSampler


def test_negatives_avoid_positives_and_cover_the_rest():
    rng = np.random.default_rng(0)
    train = sp.random(50, 30, density=0.6, random_state=0, format="csr")
    train.sort_indices()
    sampler = NegativeSampler(train, seed=1)
    users = rng.integers(0, 50, 20_000)
    items = sampler.sample(users)
    dense = train.toarray() > 0
    assert not dense[users, items].any()
    for u in range(5):  # every non-positive item of user u is drawn, roughly uniformly
        drawn = np.bincount(items[users == u], minlength=30)
        assert set(np.flatnonzero(drawn)) == set(np.flatnonzero(~dense[u]))


def test_user_with_every_item_gets_minus_one():
    sampler = NegativeSampler(sp.csr_matrix(np.ones((1, 3))), seed=0, max_rounds=5)
    assert sampler.sample(np.array([0, 0])).tolist() == [-1, -1]


def test_seeded():
    train = sp.csr_matrix(np.eye(10))
    a = NegativeSampler(train, seed=3).sample(np.arange(10))
    b = NegativeSampler(train, seed=3).sample(np.arange(10))
    np.testing.assert_array_equal(a, b)


def test_an_outside_generator_drives_the_draws_and_pairs_need_no_matrix():
    train = sp.csr_matrix(np.eye(10))
    users, items = np.arange(10), np.arange(10)
    from_pairs = NegativeSampler.from_pairs(users, items, n_items=10)
    a = from_pairs.sample(np.arange(10), np.random.default_rng(5))
    b = NegativeSampler(train, seed=99).sample(np.arange(10), np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)  # same keys, same generator: same draws
    assert (a != np.arange(10)).all()
    huge = NegativeSampler.from_pairs(np.array([2**31 - 2]), np.array([0]), n_items=2**31 - 1)
    assert huge.memory_items()["keys"].nbytes == 8  # one key, nothing per user or item
