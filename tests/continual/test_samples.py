"""LazySamples: rows of a torch Dataset read only when asked, in seeded batches."""

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, IterableDataset, TensorDataset

from continual import Learner
from continual.learner import array_batches
from continual.samples import LazySamples, dataset_labels


class Counting(Dataset):
    """Row i is the vector (i, i, i) as uint8, with target i % 3; every read is recorded."""

    def __init__(self, n=10, as_tuple=True):
        self.n, self.as_tuple, self.reads = n, as_tuple, []
        self.targets = [i % 3 for i in range(n)]

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        self.reads.append(index)
        x = torch.full((3,), index, dtype=torch.uint8)
        return (x, self.targets[index]) if self.as_tuple else x


def test_indexing_reads_nothing_and_read_reads_exactly_the_rows_asked():
    data = Counting()
    samples = LazySamples(data, [7, 2, 9, 4])
    subset = samples[np.array([True, False, True, False])][::-1]
    assert data.reads == []
    assert subset.indices.tolist() == [9, 7]
    assert len(samples) == 4 and len(subset) == 2
    assert subset.read().tolist() == [[9, 9, 9], [7, 7, 7]]
    assert data.reads == [9, 7]
    assert samples.read([3, 0]).tolist() == [[4, 4, 4], [7, 7, 7]]
    assert data.reads == [9, 7, 4, 7]


def test_indices_default_to_every_row_and_samples_may_be_bare_tensors_or_arrays():
    data = Counting(4, as_tuple=False)
    assert LazySamples(data).indices.tolist() == [0, 1, 2, 3]

    class Arrays(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return np.full((2, 2), index, dtype=np.int16)

    read = LazySamples(Arrays()).read()
    assert read.dtype == torch.int16 and read.shape == (2, 2, 2)
    assert read[1].tolist() == [[1, 1], [1, 1]]


def test_sample_dtype_and_shape_read_the_first_row_once():
    data = Counting()
    samples = LazySamples(data, [5, 6])
    assert (samples.sample_dtype, samples.sample_shape) == (torch.uint8, (3,))
    assert samples.sample_shape == (3,)
    assert data.reads == [5]


def test_shuffled_loader_cuts_the_seeded_permutation_like_array_batches():
    data = Counting(11)
    samples = LazySamples(data, np.arange(1, 11))
    labels = torch.arange(10) * 10
    batches = list(samples.loader(4, labels=labels, generator=torch.Generator().manual_seed(3)))
    permutation = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    expected = [chunk.tolist() for chunk in permutation.split(4)]
    assert [(y // 10).tolist() for _, y in batches] == expected
    # inputs line up with labels: row p of samples is dataset row p + 1
    assert [x[:, 0].tolist() for x, _ in batches] == [[p + 1 for p in e] for e in expected]
    assert sorted(data.reads) == list(range(1, 11))


def test_array_batches_give_the_same_batches_for_arrays_and_for_a_dataset():
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10) % 4
    lazy = (LazySamples(TensorDataset(torch.from_numpy(X))), y)
    got = list(array_batches(lazy, 3, torch.Generator().manual_seed(1)))
    want = list(array_batches((X, y), 3, torch.Generator().manual_seed(1)))
    assert len(got) == len(want) == 4
    for (gx, gy), (wx, wy) in zip(got, want):
        assert torch.equal(gx, wx) and torch.equal(gy, wy)


def test_unshuffled_loader_keeps_the_order_and_leaves_the_global_generator_alone():
    samples = LazySamples(Counting(), [3, 1, 2])
    state = torch.get_rng_state()
    batches = [x[:, 0].tolist() for x in samples.loader(2)]
    assert batches == [[3, 1], [2]]
    assert torch.equal(torch.get_rng_state(), state)


def test_workers_give_the_same_batches_as_the_main_process():
    samples = LazySamples(Counting(12), np.arange(12))
    labels = torch.arange(12)

    def batches(workers):
        loader = samples.loader(
            5, labels=labels, generator=torch.Generator().manual_seed(0), num_workers=workers
        )
        return [y.tolist() for _, y in loader]

    assert batches(2) == batches(0)


def test_learner_trains_the_same_from_a_dataset_as_from_arrays_and_reads_only_its_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)

    class Rows(Dataset):
        def __init__(self):
            self.reads = []

        def __len__(self):
            return 80  # rows 40..79 are never part of the payload

        def __getitem__(self, index):
            self.reads.append(index)
            return torch.from_numpy(X[index % 40])

    def train(payload):
        torch.manual_seed(0)
        learner = Learner(torch.nn.Linear(3, 2), epochs=2, batch_size=8)
        losses = learner.learn(payload)
        return losses, learner.model.weight.detach().clone()

    data = Rows()
    lazy_losses, lazy_weight = train((LazySamples(data, np.arange(40)), y))
    losses, weight = train((X, y))
    assert lazy_losses == pytest.approx(losses, abs=0, rel=1e-6)
    assert torch.allclose(lazy_weight, weight, atol=1e-6)
    assert set(data.reads) == set(range(40)) and len(data.reads) == 80  # 2 epochs


def test_learner_predicts_and_scores_a_dataset_in_order():
    X = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    learner = Learner(torch.nn.Linear(3, 3), batch_size=2)
    with torch.no_grad():
        learner.model.weight.copy_(torch.eye(3))
        learner.model.bias.zero_()
    samples = LazySamples(TensorDataset(torch.from_numpy(X)))
    assert learner.predict(samples).argmax(dim=1).tolist() == [0, 1, 2, 1]
    assert learner.accuracy(samples, np.array([0, 1, 0, 1])) == 0.75


@pytest.mark.parametrize(
    "indices, match",
    [
        ([[0, 1]], "1-D array of integer positions"),
        ([0.5], "1-D array of integer positions"),
        ([0, 10], r"indices must lie in \[0, 9\]"),
        ([-1], r"indices must lie in \[0, 9\]"),
    ],
)
def test_bad_indices_are_rejected(indices, match):
    with pytest.raises(ValueError, match=match):
        LazySamples(Counting(), indices)


def test_bad_datasets_and_keys_are_rejected_with_the_fix():
    class Stream(IterableDataset):
        def __iter__(self):
            yield torch.zeros(2)

    with pytest.raises(TypeError, match=r"map-style torch\.utils\.data\.Dataset"):
        LazySamples(Stream())
    with pytest.raises(TypeError, match="map-style"):
        LazySamples(np.zeros((3, 2)))
    with pytest.raises(TypeError, match=r"use read\(\[2\]\)"):
        LazySamples(Counting())[2]

    class Images(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return "an image", 0

    with pytest.raises(TypeError, match=r"dataset\[0\] must give a tensor.*PILToTensor"):
        LazySamples(Images()).read([0])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        LazySamples(Counting()).loader(0)
    with pytest.raises(ValueError, match=r"labels must be 1-D with one label per row \(10\)"):
        LazySamples(Counting()).loader(2, labels=torch.zeros(3))


def test_dataset_labels_come_from_y_or_from_targets():
    data = Counting(5)
    assert dataset_labels(data).tolist() == [0, 1, 2, 0, 1]
    assert dataset_labels(data, y=torch.tensor([4, 4, 4, 4, 4])).tolist() == [4] * 5
    assert dataset_labels(LazySamples(data, [4, 2])).tolist() == [1, 2]
    assert data.reads == []
    bare = TensorDataset(torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"train is a TensorDataset without a `targets`.*pass y"):
        dataset_labels(bare, name="train")
    with pytest.raises(ValueError, match=r"y must hold one label per row of data \(5 rows\)"):
        dataset_labels(data, y=[0, 1])
    data.targets = [0, 1]
    with pytest.raises(ValueError, match=r"data's targets must hold one label per row"):
        dataset_labels(data)
