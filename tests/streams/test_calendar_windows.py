import numpy as np
import pytest

from streams.calendar_windows import calendar_windows
from streams.events import EventSequences


def clock(n_sequences=20):
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0.0, 40.0, 60)) for _ in range(n_sequences)]
    types = [rng.integers(0, 3, 60) for _ in range(n_sequences)]
    return EventSequences.from_lists(times, types, 3)


def test_each_window_holds_exactly_its_events_split_70_10_20():
    seqs = clock()
    stream = calendar_windows(seqs, 4, width=10.0, start=0.0, seed=1)
    assert len(stream) == 4
    for i, exp in enumerate(stream):
        low, high = exp.metadata["window"]
        assert (low, high) == (10.0 * i, 10.0 * (i + 1))
        parts = [exp.train, exp.metadata["dev"], exp.test]
        assert [len(p) for p in parts] == [14, 2, 4]
        events = np.concatenate([p.times for p in parts])
        assert events.min() >= low and events.max() < high
        expected = np.sum((seqs.times >= low) & (seqs.times < high))
        assert sum(p.n_events for p in parts) == expected
        assert all(p.lengths.min() >= 3 for p in parts)


def test_stride_and_min_events():
    seqs = EventSequences.from_lists(
        [[0.0, 1.0, 2.0, 3.0, 11.0]] * 5 + [[0.5, 10.0, 10.5, 11.5, 12.0]] * 5, [[0] * 5] * 10, 1
    )
    stream = calendar_windows(seqs, 2, width=4.0, stride=10.0, start=0.0, split=(0.6, 0.0, 0.4))
    first, second = stream
    assert sorted(first.metadata["sequences"].tolist()) == [0, 1, 2, 3, 4]
    assert sorted(second.metadata["sequences"].tolist()) == [5, 6, 7, 8, 9]
    assert first.metadata["dev"] is None
    assert second.train.times.min() >= 10.0


def test_empty_window_and_bad_arguments():
    seqs = clock()
    with pytest.raises(ValueError, match="window 0"):
        calendar_windows(seqs, 1, width=10.0, start=100.0)
    with pytest.raises(ValueError, match="width"):
        calendar_windows(seqs, 2, width=-1.0)
    with pytest.raises(ValueError, match="n_windows"):
        calendar_windows(seqs, 0, width=1.0)
    with pytest.raises(TypeError, match="EventSequences"):
        calendar_windows([], 2, width=1.0)


def test_deterministic_given_seed():
    a = calendar_windows(clock(), 2, width=20.0, seed=3)
    b = calendar_windows(clock(), 2, width=20.0, seed=3)
    np.testing.assert_array_equal(a[1].test.times, b[1].test.times)
