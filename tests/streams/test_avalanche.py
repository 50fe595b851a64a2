"""Streams to Avalanche benchmarks and back."""

import numpy as np
import pytest
import torch
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import as_classification_dataset
from torch.utils.data import TensorDataset

from streams import from_arrays, from_avalanche, split_digits, to_avalanche

pytestmark = pytest.mark.filterwarnings("ignore")


def _rows(X, y):
    """Samples as a sorted list of (label, bytes) pairs, independent of order."""
    return sorted((int(label), x.tobytes()) for x, label in zip(X, y))


def test_round_trip_keeps_every_sample_class_and_dtype():
    stream = split_digits(n_experiences=5, seed=3)
    back = from_avalanche(to_avalanche(stream), name="digits")
    assert len(back) == len(stream) == 5
    for ours, theirs in zip(stream, back):
        assert theirs.classes == tuple(sorted(ours.classes))
        assert theirs.train[0].dtype == np.uint8
        assert _rows(*theirs.train) == _rows(*ours.train)
        assert _rows(*theirs.test) == _rows(*ours.test)


def test_avalanche_experiences_follow_the_stream_class_order():
    stream = split_digits(n_experiences=5, seed=1)
    benchmark = to_avalanche(stream)
    for ours, theirs in zip(stream, benchmark.train_stream):
        assert set(theirs.classes_in_this_experience) == set(ours.classes)
    assert list(benchmark.classes_order) == [c for e in stream for c in e.classes]


def test_from_a_benchmark_built_by_avalanche():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(60, 3)).astype(np.float32))
    y = torch.as_tensor(np.repeat(np.arange(6), 10))
    dataset = TensorDataset(x, y)
    dataset.targets = y.tolist()
    data = as_classification_dataset(dataset)
    benchmark = class_incremental_benchmark(
        {"train": data, "test": data}, num_experiences=3, class_order=[5, 4, 3, 2, 1, 0]
    )
    stream = from_avalanche(benchmark)
    assert [e.classes for e in stream] == [(4, 5), (2, 3), (0, 1)]
    assert all(len(e.train[1]) == 20 and e.train[0].dtype == np.float32 for e in stream)


def test_to_avalanche_needs_a_class_incremental_stream():
    X, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="stream must be class-incremental"):
        to_avalanche(from_arrays(X, y, n_experiences=2))
