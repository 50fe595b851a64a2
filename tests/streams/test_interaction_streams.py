import numpy as np
import pytest

from streams.interaction_streams import RankingTest, interaction_blocks
from streams.interactions import Interactions


def data(times=True):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 200), rng.integers(0, 40, 200)
    return Interactions(users, items, times=rng.permutation(200) if times else None)


@pytest.mark.parametrize("order", ["time", "random", "id"])
def test_blocks_partition_and_mark_first_appearances(order):
    d = data()
    stream = interaction_blocks(d, 4, order=order, seed=1)
    assert len(stream) == 4
    assert sum(len(e.train) for e in stream) == len(d)
    seen_u, seen_i = set(), set()
    for e in stream:
        block_u, block_i = set(e.train.users.tolist()), set(e.train.items.tolist())
        assert set(e.metadata["new_users"].tolist()) == block_u - seen_u
        assert set(e.metadata["new_items"].tolist()) == block_i - seen_i
        assert e.metadata["n_new_users"] == len(block_u - seen_u)
        seen_u |= block_u
        seen_i |= block_i
        assert e.train.n_users == d.n_users


def test_time_order_is_sorted_and_auto_picks_it():
    stream = interaction_blocks(data(), 3)
    times = np.concatenate([e.train.times for e in stream])
    assert np.all(np.diff(times) >= 0) and stream[0].metadata["order"] == "time"


def test_random_order_is_seeded_and_auto_without_times():
    a = interaction_blocks(data(False), 3, seed=5)
    b = interaction_blocks(data(False), 3, seed=5)
    c = interaction_blocks(data(False), 3, seed=6)
    assert a[0].metadata["order"] == "random"
    assert a[1].train.users.tolist() == b[1].train.users.tolist()
    assert a[1].train.users.tolist() != c[1].train.users.tolist()


def test_id_order_brings_new_users_late():
    stream = interaction_blocks(data(), 2, order="id")
    assert stream[0].train.users.max() <= stream[1].train.users.min()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="needs timestamps"):
        interaction_blocks(data(False), 2, order="time")
    with pytest.raises(ValueError, match="n_blocks"):
        interaction_blocks(data(), 0)
    with pytest.raises(ValueError, match=r"'order' parameter of interaction_blocks.*Got 'size'"):
        interaction_blocks(data(), 2, order="size")


@pytest.mark.parametrize("order", ["time", "random", "id"])
def test_test_payloads_target_the_block_and_mask_the_earlier_ones(order):
    d = data()
    stream = interaction_blocks(d, 4, order=order, seed=1)
    earlier = []  # (user, item) of every interaction of the earlier blocks, duplicates kept
    for e in stream:
        assert isinstance(e.test, RankingTest) and e.test.targets is e.train
        masked = list(zip(e.test.exclude.users.tolist(), e.test.exclude.items.tolist()))
        assert sorted(masked) == sorted(earlier)
        assert (e.test.exclude.n_users, e.test.exclude.n_items) == (d.n_users, d.n_items)
        earlier += zip(e.train.users.tolist(), e.train.items.tolist())
