import numpy as np
import pytest

from streams.communities import planted_communities


def test_seeded_and_mostly_inside_communities():
    a, users, items = planted_communities(
        200, 300, n_communities=5, p_in=0.9, seed=3, return_communities=True
    )
    b = planted_communities(200, 300, n_communities=5, p_in=0.9, seed=3)
    np.testing.assert_array_equal(a.items, b.items)
    inside = (users[a.users] == items[a.items]).mean()
    assert 0.85 < inside < 0.97  # 0.9 plus the 1/5 of outside draws that land inside
    assert len(a.deduplicate()[0]) == len(a)
    assert a.times is not None and np.all(np.diff(a.times) >= 0)
    assert np.bincount(items, minlength=5).min() == 60


def test_p_in_zero_ignores_communities():
    data, users, items = planted_communities(
        300, 100, n_communities=4, p_in=0.0, seed=0, return_communities=True
    )
    assert abs((users[data.users] == items[data.items]).mean() - 0.25) < 0.05


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_users"):
        planted_communities(0, 10)
    with pytest.raises(ValueError, match="p_in"):
        planted_communities(10, 10, p_in=1.5)
    with pytest.raises(ValueError, match=r"'popularity' parameter.*Got nan"):
        planted_communities(10, 10, popularity=float("nan"))
    with pytest.raises(ValueError, match=r"popularity=-200 is too extreme for 1000 items"):
        planted_communities(10, 1000, popularity=-200)  # 1000 ** 200 overflows float64


def test_numpy_sizes_give_the_same_data():
    expected = planted_communities(20, 30, n_communities=3, p_in=0.8, seed=1)
    data = planted_communities(
        np.int64(20), np.int32(30), n_communities=np.int64(3), p_in=np.float32(0.8), seed=1
    )
    np.testing.assert_array_equal(data.users, expected.users)
    np.testing.assert_array_equal(data.items, expected.items)
