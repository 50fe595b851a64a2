import numpy as np
import pytest

from continual import nbytes
from streams.interactions import Interactions


def test_arrays_are_compact_and_charged():
    data = Interactions(
        np.array([0, 1, 1], dtype=np.int64), [2, 0, 2], times=[3, 1, 2], ratings=[5, 4, 3]
    )
    assert data.users.dtype == np.int32 and data.items.dtype == np.int32
    assert data.times.dtype == np.int64 and data.ratings.dtype == np.float32
    assert nbytes(data) == 3 * (4 + 4 + 8 + 4)
    assert (data.n_users, data.n_items) == (2, 3)


def test_csr_view_matches_dense_counts():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 7, 50), rng.integers(0, 9, 50)
    data = Interactions(users, items, n_users=8, n_items=10)
    dense = np.zeros((8, 10))
    np.add.at(dense, (users, items), 1)
    csr = data.csr()
    assert csr.shape == (8, 10)
    np.testing.assert_array_equal(csr.toarray(), dense)
    for u in range(8):
        np.testing.assert_array_equal(data.user_items(u), np.flatnonzero(dense[u]))


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([0, -1], r"users must hold IDs in \[0, 2147483648\); got -1 at position 1"),
        ([0.0, 1.5], "users must hold whole-number IDs; got 1.5 at position 1"),
        (["a", "b"], "users must hold integer IDs"),
        ([0, 2**31], "got 2147483648 at position 1"),
    ],
)
def test_bad_ids_are_named(users, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Interactions(users, [0, 1])


def test_declared_vocabulary_too_small_is_named():
    with pytest.raises(ValueError, match=r"n_items=2 is too small.*ID 4"):
        Interactions([0], [4], n_items=2)


def test_integral_floats_are_accepted():
    assert Interactions([0.0, 2.0], [1.0, 1.0]).users.tolist() == [0, 2]


def test_deduplicate_counts_and_keeps_first():
    data = Interactions([0, 0, 1, 0], [1, 1, 1, 2], times=[1, 2, 3, 4])
    unique, dropped = data.deduplicate()
    assert dropped == 1
    assert unique.times.tolist() == [1, 3, 4]


def test_split_per_user_partitions_each_user():
    rng = np.random.default_rng(1)
    data, _ = Interactions(rng.integers(0, 20, 400), rng.integers(0, 50, 400)).deduplicate()
    train, test = data.split_per_user(0.25, seed=3)
    assert len(train) + len(test) == len(data)
    keys = lambda d: set(zip(d.users.tolist(), d.items.tolist()))  # noqa: E731
    assert keys(train) | keys(test) == keys(data) and not keys(train) & keys(test)
    counts = np.bincount(data.users, minlength=20)
    np.testing.assert_array_equal(
        np.bincount(test.users, minlength=20), np.floor(counts * 0.25).astype(int)
    )
    assert train.split_per_user(0.25, seed=3)[1].users.tolist() == (
        train.split_per_user(0.25, seed=3)[1].users.tolist()
    )
