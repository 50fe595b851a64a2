import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from continual.exemplars import ExemplarStore
from continual.samples import LazySamples
from continual.selection import herding

POLICIES = ["reservoir", "random", "class_balanced", "herding"]


def flat_features(x):
    return x.reshape(len(x), -1).float()


def make_batch(seed, n, n_classes=4, label_offset=0, shape=(1, 8, 8)):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, n_classes, (n,), generator=gen) + label_offset
    return x, y


def rows(x):
    return {tuple(row.reshape(-1).tolist()) for row in x}


def test_uint8_store_costs_one_byte_per_value_and_label():
    x, y = make_batch(0, 40)
    store = ExemplarStore(policy="class_balanced", random_state=0)
    store.update(x, y, capacity_bytes=65 * 17 + 30)
    assert len(store) == 17
    assert store.x.dtype == torch.uint8 and store.y.dtype == torch.uint8
    assert store.per_sample_nbytes == 65
    assert store.__nbytes__() == 17 * (64 + 1)
    assert {name: t.untyped_storage().nbytes() for name, t in store.memory_items().items()} == {
        "x": 17 * 64,
        "y": 17,
    }


@settings(max_examples=25, deadline=None)
@given(
    policy=st.sampled_from(POLICIES),
    updates=st.lists(st.tuples(st.integers(1, 30), st.integers(0, 2000)), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_uint8_store_costs_exactly_65_bytes_per_sample(policy, updates, seed):
    store = ExemplarStore(policy=policy, random_state=seed)
    for step, (n, capacity_bytes) in enumerate(updates):
        x, y = make_batch(seed + step, n, n_classes=10)
        store.update(x, y, capacity_bytes=capacity_bytes, feature_fn=flat_features)
        assert store.__nbytes__() == len(store) * (64 + 1)


@settings(max_examples=40, deadline=None)
@given(
    policy=st.sampled_from(POLICIES),
    updates=st.lists(
        st.tuples(st.integers(1, 25), st.integers(0, 6), st.integers(0, 400), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 2**16),
)
def test_store_never_exceeds_capacity_and_fills_it(policy, updates, seed):
    store = ExemplarStore(policy=policy, random_state=seed)
    for step, (n, n_classes, capacity_bytes, big_labels) in enumerate(updates):
        x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed + step))
        y = torch.arange(n) % (n_classes + 1) + (1000 if big_labels else 0)
        pool = len(store) + n
        label_size = 2 if big_labels or (len(store) and store.y.max() > 255) else 1
        capacity = capacity_bytes // (4 * 3 + label_size)
        store.update(x, y, capacity_bytes=capacity_bytes, feature_fn=flat_features)
        assert store.__nbytes__() <= capacity_bytes
        assert len(store) == min(capacity, pool)
        assert len(store.x) == len(store.y) == len(store)
        assert store.__nbytes__() == len(store) * (12 + store.y.element_size())


@pytest.mark.parametrize("policy", POLICIES)
def test_same_random_state_gives_same_contents(policy):
    def run(random_state):
        store = ExemplarStore(policy=policy, random_state=random_state)
        for step in range(4):
            x, y = make_batch(step, 30)
            store.update(x, y, capacity_bytes=65 * (25 - 3 * step), feature_fn=flat_features)
        return store

    first, second = run(7), run(7)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    if policy != "herding":  # herding is deterministic given the features
        other = run(8)
        assert not torch.equal(first.x, other.x)


@pytest.mark.parametrize("policy", ["class_balanced", "herding"])
def test_class_quotas_spend_the_whole_capacity(policy):
    x = torch.arange(60, dtype=torch.float32).reshape(20, 3)
    y = torch.tensor([0] * 2 + [1] * 9 + [2] * 9)
    store = ExemplarStore(policy=policy, random_state=0)
    store.update(x, y, capacity_bytes=13 * 11, feature_fn=flat_features)  # 12 + 1 bytes each
    assert store.class_counts() == {0: 2, 1: 5, 2: 4}
    assert store.classes == [0, 1, 2]
    assert store.y.tolist() == sorted(store.y.tolist())  # grouped by class


def test_herding_orders_each_class_by_herding():
    x, y = make_batch(3, 30, n_classes=2)
    store = ExemplarStore(policy="herding")
    store.update(x, y, capacity_bytes=65 * 10, feature_fn=flat_features)
    for label in (0, 1):
        members = x[y == label]
        expected = members[torch.as_tensor(herding(flat_features(members), 5))]
        assert torch.equal(store.x[store.y == label], expected)


def test_herding_keeps_prefix_of_untouched_classes_and_reherds_others():
    x0, y0 = make_batch(1, 24, n_classes=2)
    store = ExemplarStore(policy="herding")
    store.update(x0, y0, capacity_bytes=65 * 12, feature_fn=flat_features)
    before = {label: store.x[store.y == label].clone() for label in (0, 1)}
    x1, _ = make_batch(2, 6)
    y1 = torch.full((6,), 1)
    calls = []

    def recording_features(batch):
        calls.append(len(batch))
        return flat_features(batch)

    store.update(x1, y1, capacity_bytes=65 * 8, feature_fn=recording_features)
    assert store.class_counts() == {0: 4, 1: 4}
    assert torch.equal(store.x[store.y == 0], before[0][:4])
    pool = torch.cat([before[1], x1])
    assert calls == [len(pool)]
    expected = pool[torch.as_tensor(herding(flat_features(pool), 4))]
    assert torch.equal(store.x[store.y == 1], expected)
    store.shrink(65 * 4)
    assert torch.equal(store.x[store.y == 0], before[0][:2])
    assert torch.equal(store.x[store.y == 1], expected[:2])


def test_herding_requires_feature_fn():
    x, y = make_batch(0, 5)
    with pytest.raises(ValueError, match="feature_fn must be a callable"):
        ExemplarStore(policy="herding").update(x, y, capacity_bytes=1000)
    with pytest.raises(ValueError, match="feature_fn must return a 2-D array"):
        ExemplarStore(policy="herding").update(
            x, y, capacity_bytes=1000, feature_fn=lambda b: b.float()
        )


def test_reservoir_keeps_uniform_sample_of_everything_seen():
    n_items, capacity, trials = 24, 6, 800
    x = torch.arange(n_items, dtype=torch.int16).reshape(n_items, 1)
    y = torch.zeros(n_items, dtype=torch.int64)
    counts = np.zeros(n_items)
    for seed in range(trials):
        store = ExemplarStore(policy="reservoir", random_state=seed)
        for start in range(0, n_items, 8):
            store.update(x[start : start + 8], y[start : start + 8], capacity_bytes=3 * capacity)
        assert store.n_seen == n_items
        counts[store.x.reshape(-1).numpy()] += 1
    frequencies = counts / trials
    p = capacity / n_items
    assert np.all(np.abs(frequencies - p) < 5 * math.sqrt(p * (1 - p) / trials))


def test_reservoir_shrinks_to_random_subset_of_stored():
    x = torch.arange(20, dtype=torch.float32).reshape(20, 1)
    y = torch.zeros(20, dtype=torch.int64)
    store = ExemplarStore(policy="reservoir", random_state=0).update(x, y, capacity_bytes=5 * 20)
    assert store.x.reshape(-1).tolist() == list(range(20))
    store.shrink(5 * 8)
    kept = store.x.reshape(-1).tolist()
    assert len(kept) == 8 and set(kept) <= set(range(20)) and len(set(kept)) == 8
    assert store.n_seen == 20


@pytest.mark.parametrize("policy", POLICIES)
def test_contents_come_from_the_pool_without_duplicates(policy):
    store = ExemplarStore(policy=policy, random_state=0)
    offered = set()
    for step in range(3):
        x, y = make_batch(10 + step, 15)
        offered |= rows(x)
        store.update(x, y, capacity_bytes=65 * 12, feature_fn=flat_features)
        assert rows(store.x) <= offered
        assert len(rows(store.x)) == len(store)
    pairs = {(tuple(row.reshape(-1).tolist()), int(label)) for row, label in zip(store.x, store.y)}
    assert len(pairs) == len(store)


@pytest.mark.parametrize("policy", POLICIES)
def test_stored_tensors_own_exactly_their_payload(policy):
    x = torch.randn(100, 3, 4)
    y = torch.arange(100) % 10
    store = ExemplarStore(policy=policy, random_state=0)
    store.update(x[10:], y[10:], capacity_bytes=10_000_000, feature_fn=flat_features)
    assert len(store) == 90
    assert store.x.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    assert store.__nbytes__() == 90 * (4 * 12 + 1)


def test_labels_use_smallest_dtype():
    x = np.zeros((4, 2), dtype=np.float64)
    cases = [
        ([0, 1, 2, 255], torch.uint8, 1),
        ([0, 1, 2, 256], torch.int16, 2),
        ([-1, 0, 1, 2], torch.int16, 2),
        ([0, 1, 2, 40_000], torch.int32, 4),
        ([0, 1, 2, 2**40], torch.int64, 8),
    ]
    for labels, dtype, size in cases:
        store = ExemplarStore(policy="random", random_state=0)
        store.update(x, np.array(labels), capacity_bytes=1000)
        assert store.y.dtype == dtype
        assert sorted(store.y.tolist()) == sorted(labels)
        assert store.per_sample_nbytes == 16 + size
        assert store.__nbytes__() == 4 * (16 + size)


def test_numpy_input_keeps_native_dtype():
    x = np.arange(24, dtype=np.uint8).reshape(6, 2, 2)
    store = ExemplarStore(policy="random", random_state=0)
    store.update(x, np.arange(6), capacity_bytes=30)
    assert store.x.dtype == torch.uint8 and tuple(store.x.shape) == (6, 2, 2)
    assert store.__nbytes__() == 30


def test_shrink_respects_class_balance_and_is_noop_when_fitting():
    x, y = make_batch(5, 60, n_classes=3)
    store = ExemplarStore(policy="class_balanced", random_state=0)
    store.update(x, y, capacity_bytes=65 * 30)
    snapshot = store.x.clone()
    store.shrink(65 * 40)
    assert torch.equal(store.x, snapshot)
    store.shrink(65 * 7 + 64)
    assert store.class_counts() == {0: 3, 1: 2, 2: 2}
    assert store.__nbytes__() == 7 * 65
    store.shrink(0)
    assert len(store) == 0 and store.__nbytes__() == 0


def test_empty_store_state_and_clear():
    store = ExemplarStore(policy="random", random_state=0)
    assert len(store) == 0 and store.per_sample_nbytes is None
    assert store.memory_items() == {} and store.__nbytes__() == 0
    assert store.x.numel() == 0 and store.y.numel() == 0 and store.classes == []
    x, y = make_batch(0, 5)
    store.update(x, y, capacity_bytes=0)
    assert len(store) == 0 and store.per_sample_nbytes is None
    with pytest.raises(ValueError, match="x must match earlier updates"):
        store.update(x.float(), y, capacity_bytes=1000)
    store.clear()
    store.update(x.float(), y, capacity_bytes=1000)
    assert store.x.dtype == torch.float32 and store.n_seen == 5


def test_sample_without_and_with_replacement():
    x = torch.arange(10, dtype=torch.int32).reshape(10, 1)
    store = ExemplarStore(policy="random", random_state=0)
    store.update(x, torch.arange(10), capacity_bytes=1000)
    xb, yb = store.sample(10, torch.Generator().manual_seed(0))
    assert sorted(xb.reshape(-1).tolist()) == list(range(10))
    assert torch.equal(xb.reshape(-1), yb.to(torch.int32))
    xb2, _ = store.sample(10, torch.Generator().manual_seed(0))
    assert torch.equal(xb, xb2)
    xb3, yb3 = store.sample(25, torch.Generator().manual_seed(1))
    assert len(xb3) == len(yb3) == 25
    assert set(xb3.reshape(-1).tolist()) <= set(range(10))
    with pytest.raises(ValueError, match="empty"):
        ExemplarStore().sample(1, torch.Generator())
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        store.sample(1, 0)


def test_input_validation_messages():
    store = ExemplarStore(policy="random", random_state=0)
    x, y = make_batch(0, 5)
    with pytest.raises(ValueError, match="capacity_bytes must be a non-negative int, got -1"):
        store.update(x, y, capacity_bytes=-1)
    with pytest.raises(ValueError, match=r"capacity_bytes must be a non-negative int, got 1\.5"):
        store.update(x, y, capacity_bytes=1.5)
    with pytest.raises(ValueError, match="x must hold at least one sample"):
        store.update(x[:0], y[:0], capacity_bytes=10)
    with pytest.raises(ValueError, match="y must be 1-D with one label per sample"):
        store.update(x, y[:3], capacity_bytes=10)
    with pytest.raises(TypeError, match="y must hold integer labels, got dtype float32"):
        store.update(x, y.float(), capacity_bytes=10)
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor, a numpy\.ndarray or a .*Lazy"):
        store.update([[1]], y[:1], capacity_bytes=10)
    with pytest.raises(ValueError, match="policy must be one of"):
        ExemplarStore(policy="fifo").update(x, y, capacity_bytes=10)
    store.update(x, y, capacity_bytes=1000)
    with pytest.raises(ValueError, match=r"sample shape \(1, 8, 8\), got dtype torch.uint8"):
        store.update(x.reshape(5, 64), y, capacity_bytes=1000)
    assert len(store) == 5  # failed calls leave the contents alone


def test_constructor_stores_arguments_and_repr():
    rng = np.random.default_rng(0)
    store = ExemplarStore(policy="herding", random_state=rng)
    assert store.policy == "herding" and store.random_state is rng
    assert repr(ExemplarStore(policy="random", random_state=3)) == (
        "ExemplarStore(policy='random', random_state=3, n=0, classes=0, nbytes=0)"
    )


class CountingRows(torch.utils.data.Dataset):
    """The rows of ``x`` as a data set of ``(sample, label)`` pairs; every read is recorded."""

    def __init__(self, x, y):
        self.x, self.targets, self.reads = x, y, []

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        self.reads.append(index)
        return self.x[index], self.targets[index]


@pytest.mark.parametrize("policy", ["reservoir", "random", "class_balanced"])
def test_lazy_update_reads_only_the_kept_rows_and_stores_what_arrays_store(policy):
    x1, y1 = make_batch(0, 30)
    x2, y2 = make_batch(1, 30)
    data = CountingRows(torch.cat([x1, x2]), torch.cat([y1, y2]))
    lazy = ExemplarStore(policy=policy, random_state=0)
    eager = ExemplarStore(policy=policy, random_state=0)
    for offset, (x, y) in ((0, (x1, y1)), (30, (x2, y2))):
        data.reads.clear()
        samples = LazySamples(data, np.arange(offset, offset + 30))
        lazy.update(samples, y, capacity_bytes=12 * 65)
        eager.update(x, y, capacity_bytes=12 * 65)
        assert torch.equal(lazy.x, eager.x) and torch.equal(lazy.y, eager.y)
        assert lazy.__nbytes__() == eager.__nbytes__() == 12 * 65
        # the new rows kept, plus the first row of the experience (read for dtype and shape)
        kept_new = {offset + int(i) for i in _positions(lazy.x, x)}
        assert set(data.reads) == kept_new | {offset}
        assert len(data.reads) == len(kept_new) + 1


def _positions(stored, x):
    """Positions in x of the stored rows that come from x (rows of make_batch are distinct)."""
    new = {tuple(row.reshape(-1).tolist()): i for i, row in enumerate(x)}
    keys = (tuple(row.reshape(-1).tolist()) for row in stored)
    return [new[key] for key in keys if key in new]


def test_lazy_herding_reads_only_the_current_experience():
    x, y = make_batch(2, 40)
    data = CountingRows(torch.cat([x, x]), torch.cat([y, y]))
    lazy = ExemplarStore(policy="herding", random_state=0)
    eager = ExemplarStore(policy="herding", random_state=0)
    lazy.update(
        LazySamples(data, np.arange(40, 80)), y, capacity_bytes=650, feature_fn=flat_features
    )
    eager.update(x, y, capacity_bytes=650, feature_fn=flat_features)
    assert torch.equal(lazy.x, eager.x) and torch.equal(lazy.y, eager.y)
    assert set(data.reads) == set(range(40, 80))
    assert lazy.x.dtype == torch.uint8 and not lazy.x.requires_grad


def test_lazy_update_checks_the_dtype_against_earlier_updates():
    x, y = make_batch(0, 5)
    store = ExemplarStore(policy="random", random_state=0).update(x, y, capacity_bytes=1000)
    data = CountingRows(x.float(), y)
    with pytest.raises(ValueError, match=r"expected dtype torch.uint8.*got dtype torch.float32"):
        store.update(LazySamples(data), y, capacity_bytes=1000)
    with pytest.raises(ValueError, match="x must hold at least one sample, got an empty"):
        store.update(LazySamples(data, []), y[:0], capacity_bytes=1000)
    with pytest.raises(ValueError, match=r"y must be 1-D with one label per sample of x \(5\)"):
        store.update(LazySamples(CountingRows(x, y)), y[:2], capacity_bytes=1000)
    assert len(store) == 5
