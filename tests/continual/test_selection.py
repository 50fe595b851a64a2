import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from continual.selection import balanced_quotas, herding, reservoir_update


def slow_herding(features, n):
    """iCaRL herding written as plainly as possible."""
    rows = [np.asarray(f, dtype=np.float64) for f in features]
    unit = [r / np.linalg.norm(r) if np.linalg.norm(r) > 0 else r for r in rows]
    mu = sum(unit) / len(unit)
    chosen = []
    total = np.zeros_like(mu)
    for k in range(1, n + 1):
        best, best_distance = None, np.inf
        for i, u in enumerate(unit):
            if i in chosen:
                continue
            distance = np.linalg.norm(mu - (total + u) / k)
            if distance < best_distance:
                best, best_distance = i, distance
        chosen.append(best)
        total = total + unit[best]
    return chosen


@pytest.mark.parametrize("seed", range(6))
def test_herding_matches_slow_loop(seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(25, 4)) * rng.uniform(0.1, 10, size=(25, 1))
    n = int(rng.integers(1, 26))
    result = herding(features, n)
    assert result.dtype == np.int64
    assert result.tolist() == slow_herding(features, n)


def test_herding_prefix_property_and_torch_input():
    features = torch.randn(30, 5, generator=torch.Generator().manual_seed(3))
    full = herding(features, 30)
    assert sorted(full.tolist()) == list(range(30))
    for m in (0, 1, 7, 29):
        assert herding(features, m).tolist() == full[:m].tolist()


def test_herding_ignores_feature_scale():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(12, 3))
    scaled = features * rng.uniform(0.01, 100, size=(12, 1))
    assert herding(features, 12).tolist() == herding(scaled, 12).tolist()


def test_herding_breaks_ties_by_lowest_index():
    assert herding(np.ones((4, 2)), 4).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("n", [-1, 6, 2.0, True])
def test_herding_rejects_bad_n(n):
    with pytest.raises(ValueError, match=r"n must be an int in \[0, 5\]"):
        herding(np.ones((5, 2)), n)


def test_herding_rejects_non_2d_features():
    with pytest.raises(ValueError, match="2D"):
        herding(np.ones(5), 1)


def slow_quotas(available, n_total):
    """Hand out one slot at a time to the unfilled class with the smallest quota."""
    quotas = dict.fromkeys(available, 0)
    for _ in range(min(n_total, sum(available.values()))):
        open_labels = [label for label in sorted(available) if quotas[label] < available[label]]
        label = min(open_labels, key=lambda lab: (quotas[lab], lab))
        quotas[label] += 1
    return quotas


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.integers(-5, 40), st.integers(0, 30), max_size=8),
    st.integers(0, 300),
)
def test_balanced_quotas_matches_one_at_a_time_reference(available, n_total):
    quotas = balanced_quotas(available, n_total)
    assert list(quotas) == sorted(available)
    assert sum(quotas.values()) == min(n_total, sum(available.values()))
    assert all(0 <= quotas[label] <= available[label] for label in available)
    # max-min fairness: an unfilled class is never two slots behind another class
    for label in available:
        if quotas[label] < available[label]:
            assert all(q <= quotas[label] + 1 for q in quotas.values())
    assert quotas == slow_quotas(available, n_total)


def test_balanced_quotas_redistributes_surplus_and_remainder():
    # naive "share then redistribute" would give {0: 1, 1: 4, 2: 3, 3: 2, 4: 2}
    assert balanced_quotas({0: 1, 1: 100, 2: 100, 3: 100, 4: 100}, 12) == {
        0: 1,
        1: 3,
        2: 3,
        3: 3,
        4: 2,
    }
    assert balanced_quotas({"b": 5, "a": 5, "c": 0}, 7) == {"a": 4, "b": 3, "c": 0}
    assert balanced_quotas({}, 10) == {}


def test_balanced_quotas_validates():
    with pytest.raises(ValueError, match="n_total must be a non-negative int, got -1"):
        balanced_quotas({0: 3}, -1)
    with pytest.raises(ValueError, match="available must map labels to non-negative ints"):
        balanced_quotas({0: -3}, 1)


def test_reservoir_appends_until_full():
    rng = np.random.default_rng(0)
    assert reservoir_update(2, 2, 3, 10, rng).tolist() == [2, 3, 4]
    slots = reservoir_update(2, 7, 5, 4, rng)
    assert slots[:2].tolist() == [2, 3]
    assert all(-1 <= s < 4 for s in slots[2:])


def test_reservoir_keeps_every_item_with_equal_probability():
    n_items, capacity, trials = 20, 5, 3000
    rng = np.random.default_rng(123)
    kept_counts = np.zeros(n_items)
    for _ in range(trials):
        reservoir = []
        n_seen = 0
        for start in range(0, n_items, 7):  # offered in batches of 7, 7, 6
            batch = list(range(start, min(start + 7, n_items)))
            slots = reservoir_update(len(reservoir), n_seen, len(batch), capacity, rng)
            for item, slot in zip(batch, slots):
                if slot == len(reservoir):
                    reservoir.append(item)
                elif slot >= 0:
                    reservoir[slot] = item
            n_seen += len(batch)
        assert len(reservoir) == capacity
        kept_counts[reservoir] += 1
    frequencies = kept_counts / trials
    std = np.sqrt(0.25 * 0.75 / trials)
    assert np.all(np.abs(frequencies - capacity / n_items) < 5 * std)


def test_reservoir_update_validates():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_stored must be at most capacity=2, got 3"):
        reservoir_update(3, 3, 1, 2, rng)
    with pytest.raises(ValueError, match="n_seen must be an int >= n_stored=3"):
        reservoir_update(3, 1, 1, 5, rng)
    with pytest.raises(ValueError, match="capacity must be a non-negative int"):
        reservoir_update(0, 0, 1, -1, rng)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        reservoir_update(0, 0, 1, 1, 0)
