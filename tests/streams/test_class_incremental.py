import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from continual.samples import LazySamples
from streams import Stream, class_incremental


def labelled(n_classes=10, per_class=4, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    X = rng.integers(0, 255, size=(len(y), 3, 2)).astype(dtype)
    return X, y


def expected_rows(y, group):
    """Row positions, in order, whose label is in group (computed row by row)."""
    return [i for i, label in enumerate(y.tolist()) if label in set(group)]


def test_experiences_hold_the_rows_of_their_class_group_in_order():
    X, y = labelled()
    order = [4, 0, 9, 1, 8, 2, 7, 3, 6, 5]
    stream = class_incremental(X, y, n_experiences=5, class_order=order, name="ci")
    assert isinstance(stream, Stream)
    assert (stream.name, stream.seed, len(stream)) == ("ci", 0, 5)
    assert stream.classes == [(4, 0), (9, 1), (8, 2), (7, 3), (6, 5)]
    for exp, group in zip(stream, [order[i : i + 2] for i in range(0, 10, 2)]):
        rows = expected_rows(y, group)
        X_i, y_i = exp.train
        np.testing.assert_array_equal(X_i, X[rows])
        np.testing.assert_array_equal(y_i, y[rows])
        assert exp.test is None
        assert isinstance(exp.classes[0], int)


def test_classes_per_experience_matches_n_experiences():
    X, y = labelled()
    a = class_incremental(X, y, n_experiences=2, seed=4)
    b = class_incremental(X, y, classes_per_experience=5, seed=4)
    assert a.classes == b.classes
    assert [len(c) for c in a.classes] == [5, 5]
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea.train[0], eb.train[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int16])
def test_dtype_is_preserved(dtype):
    X, y = labelled(dtype=dtype)
    stream = class_incremental(X, y, n_experiences=5, test=(X, y))
    for exp in stream:
        assert exp.train[0].dtype == dtype
        assert exp.test[0].dtype == dtype


def test_default_order_is_the_seeded_permutation_of_sorted_labels():
    X, y = labelled()
    expected = np.random.default_rng(11).permutation(np.arange(10))
    stream = class_incremental(X, y, classes_per_experience=1, seed=11)
    assert [c[0] for c in stream.classes] == expected.tolist()


def test_same_seed_gives_identical_arrays():
    X, y = labelled()
    a = class_incremental(X, y, n_experiences=5, seed=3, test=(X[:10], y[:10]))
    b = class_incremental(X, y, n_experiences=5, seed=3, test=(X[:10], y[:10]))
    assert a.classes == b.classes
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea.train[0], eb.train[0])
        np.testing.assert_array_equal(ea.train[1], eb.train[1])
        np.testing.assert_array_equal(ea.test[0], eb.test[0])


def test_different_seed_gives_different_class_order():
    X, y = labelled()
    assert (
        class_incremental(X, y, n_experiences=5, seed=0).classes
        != class_incremental(X, y, n_experiences=5, seed=1).classes
    )


def test_class_order_overrides_seed():
    X, y = labelled(n_classes=4)
    order = [2, 3, 0, 1]
    a = class_incremental(X, y, n_experiences=2, class_order=order, seed=0)
    b = class_incremental(X, y, n_experiences=2, class_order=np.array(order), seed=99)
    assert a.classes == b.classes == [(2, 3), (0, 1)]


def test_test_payload_is_split_by_the_same_groups():
    X, y = labelled()
    X_test, y_test = labelled(per_class=2, seed=1)
    stream = class_incremental(X, y, n_experiences=5, test=(X_test, y_test), seed=2)
    for exp in stream:
        rows = expected_rows(y_test, exp.classes)
        np.testing.assert_array_equal(exp.test[0], X_test[rows])
        np.testing.assert_array_equal(exp.test[1], y_test[rows])


def test_test_may_miss_some_classes():
    X, y = labelled(n_classes=4)
    stream = class_incremental(
        X, y, n_experiences=2, class_order=[0, 1, 2, 3], test=(X[y == 0], y[y == 0])
    )
    assert len(stream[0].test[1]) == 4
    assert stream[1].test[0].shape == (0, 3, 2)


def test_string_labels():
    X = np.arange(6).reshape(6, 1)
    y = np.array(["cat", "dog", "cat", "eel", "dog", "fox"])
    stream = class_incremental(X, y, n_experiences=2, class_order=["fox", "cat", "dog", "eel"])
    assert stream.classes == [("fox", "cat"), ("dog", "eel")]
    np.testing.assert_array_equal(stream[0].train[0].ravel(), [0, 2, 5])


def test_accepts_lists():
    stream = class_incremental([[1], [2], [3], [4]], [0, 1, 0, 1], n_experiences=2, seed=0)
    assert sum(len(exp.train[1]) for exp in stream) == 4


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 7), min_size=1, max_size=40),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_experiences_partition_rows_and_classes(labels, seed, data):
    y = np.array(labels)
    X = np.arange(len(y))
    n_classes = len(np.unique(y))
    divisors = [d for d in range(1, n_classes + 1) if n_classes % d == 0]
    n_experiences = data.draw(st.sampled_from(divisors))
    stream = class_incremental(X, y, n_experiences=n_experiences, seed=seed)
    assert len(stream) == n_experiences
    seen_classes = [c for group in stream.classes for c in group]
    assert sorted(seen_classes) == sorted(set(labels))
    rows = np.concatenate([exp.train[0] for exp in stream])
    assert sorted(rows.tolist()) == list(range(len(y)))
    for exp in stream:
        assert set(exp.train[1].tolist()) == set(exp.classes)
        assert np.all(np.diff(exp.train[0]) > 0)  # original order within an experience


# errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"n_experiences": 2, "classes_per_experience": 5}], ids=["neither", "both"]
)
def test_exactly_one_of_n_experiences_and_classes_per_experience(kwargs):
    X, y = labelled()
    with pytest.raises(ValueError, match="exactly one of n_experiences and classes_per_experience"):
        class_incremental(X, y, **kwargs)


def test_n_experiences_must_divide_the_classes():
    X, y = labelled()
    with pytest.raises(ValueError) as info:
        class_incremental(X, y, n_experiences=3)
    message = str(info.value)
    assert "n_experiences=3" in message
    assert "10 classes" in message
    assert "[1, 2, 5, 10]" in message


def test_classes_per_experience_must_divide_the_classes():
    X, y = labelled(n_classes=6)
    with pytest.raises(ValueError) as info:
        class_incremental(X, y, classes_per_experience=4)
    message = str(info.value)
    assert "classes_per_experience=4" in message
    assert "6 classes" in message
    assert "[1, 2, 3, 6]" in message


def test_more_experiences_than_classes():
    X, y = labelled(n_classes=4)
    with pytest.raises(ValueError, match=r"n_experiences=8 .* 4 classes"):
        class_incremental(X, y, n_experiences=8)


@pytest.mark.parametrize("argument", ["n_experiences", "classes_per_experience"])
def test_counts_must_be_positive_ints(argument):
    X, y = labelled()
    with pytest.raises(ValueError, match=f"{argument} == 0, must be >= 1"):
        class_incremental(X, y, **{argument: 0})
    with pytest.raises(TypeError, match=f"{argument} must be an instance of int"):
        class_incremental(X, y, **{argument: 2.0})


@pytest.mark.parametrize(
    "order", [[0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 4], [[0, 1], [2, 3]], [0, 1, 2, 3, 4]]
)
def test_class_order_must_be_a_permutation_of_the_labels(order):
    X, y = labelled(n_classes=4)
    with pytest.raises(ValueError, match=r"class_order must be a permutation of the labels"):
        class_incremental(X, y, n_experiences=2, class_order=order)


def test_x_and_y_lengths_must_match():
    X, y = labelled()
    with pytest.raises(ValueError, match="X and y must have the same number of rows, got X with"):
        class_incremental(X, y[:-1], n_experiences=2)


def test_y_must_be_1d():
    X, y = labelled()
    with pytest.raises(ValueError, match=r"y must be 1-D, got shape \(40, 1\)"):
        class_incremental(X, y[:, None], n_experiences=2)


def test_y_is_required():
    X, _ = labelled()
    with pytest.raises(ValueError, match=r"y must be given when data is an array.*targets"):
        class_incremental(X, None, n_experiences=2)


def test_x_must_be_non_empty():
    with pytest.raises(ValueError, match="X must be non-empty"):
        class_incremental(np.empty((0, 3)), np.empty(0), n_experiences=1)


def test_test_must_be_a_pair():
    X, y = labelled()
    with pytest.raises(
        TypeError, match=r"test must be None, a tuple \(X_test, y_test\) or a torch Dataset"
    ):
        class_incremental(X, y, n_experiences=2, test=[X, y])


def test_test_lengths_must_match():
    X, y = labelled()
    with pytest.raises(ValueError, match="X and y must have the same number of rows"):
        class_incremental(X, y, n_experiences=2, test=(X, y[:3]))


def test_test_labels_must_occur_in_y():
    X, y = labelled(n_classes=4)
    with pytest.raises(
        ValueError, match=r"test labels must all occur in y, got unknown labels \[9\]"
    ):
        class_incremental(X, y, n_experiences=2, test=(X[:2], np.array([0, 9])))


class CountingDataset(torch.utils.data.Dataset):
    """Rows of X as ``(tensor, label)`` pairs with ``targets``; every read is recorded."""

    def __init__(self, X, y, with_targets=True):
        self.X, self.y, self.reads = X, y, []
        if with_targets:
            self.targets = list(y.tolist())

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        self.reads.append(index)
        return torch.as_tensor(self.X[index]), int(self.y[index])


def test_a_dataset_becomes_index_subsets_and_building_reads_no_sample():
    X, y = labelled()
    train, test = CountingDataset(X, y), CountingDataset(X[:20], y[:20])
    order = [4, 0, 9, 1, 8, 2, 7, 3, 6, 5]
    stream = class_incremental(train, n_experiences=5, class_order=order, test=test)
    assert train.reads == [] and test.reads == []
    assert stream.classes == [(4, 0), (9, 1), (8, 2), (7, 3), (6, 5)]
    for exp, group in zip(stream, [order[i : i + 2] for i in range(0, 10, 2)]):
        samples, labels = exp.train
        assert isinstance(samples, LazySamples) and samples.dataset is train
        assert samples.indices.tolist() == expected_rows(y, group)
        np.testing.assert_array_equal(labels, y[expected_rows(y, group)])
        test_samples, test_labels = exp.test
        assert test_samples.indices.tolist() == expected_rows(y[:20], group)
        np.testing.assert_array_equal(test_labels, y[:20][expected_rows(y[:20], group)])
    assert train.reads == [] and test.reads == []
    assert torch.equal(stream[1].train[0].read(), torch.as_tensor(X[expected_rows(y, [9, 1])]))


def test_dataset_labels_from_y_override_targets_and_test_may_be_a_pair():
    X, y = labelled(n_classes=4)
    data = CountingDataset(X, y, with_targets=False)
    relabelled = (y + 1) % 4
    stream = class_incremental(
        data, relabelled, n_experiences=2, class_order=[0, 1, 2, 3], test=(data, relabelled)
    )
    assert stream[0].train[0].indices.tolist() == expected_rows(relabelled, [0, 1])
    assert stream[1].test[0].indices.tolist() == expected_rows(relabelled, [2, 3])
    assert data.reads == []


def test_a_dataset_without_targets_needs_y():
    X, y = labelled()
    with pytest.raises(ValueError, match=r"data is a CountingDataset without a `targets`.*pass y"):
        class_incremental(CountingDataset(X, y, with_targets=False), n_experiences=2)
    with pytest.raises(ValueError, match="test is a CountingDataset without a `targets`"):
        class_incremental(X, y, n_experiences=2, test=CountingDataset(X, y, with_targets=False))
    with pytest.raises(ValueError, match=r"y must hold one label per row of data \(40 rows\)"):
        class_incremental(CountingDataset(X, y), y[:5], n_experiences=2)
    with pytest.raises(ValueError, match=r"test labels must all occur in y.*\[11\]"):
        class_incremental(X, y, n_experiences=2, test=CountingDataset(X[:1], np.array([11])))


def test_an_image_folder_on_disk_is_split_without_a_copy(tmp_path):
    from PIL import Image
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import PILToTensor

    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "eel", "fox"):
        (tmp_path / label).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 255, size=(4, 4, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")

    class Counted(ImageFolder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.reads = []

        def __getitem__(self, index):
            self.reads.append(index)
            return super().__getitem__(index)

    folder = Counted(tmp_path, transform=PILToTensor())
    stream = class_incremental(folder, n_experiences=2, class_order=[3, 0, 2, 1])
    assert folder.reads == []
    # ImageFolder sorts classes (cat=0, dog=1, eel=2, fox=3) and files: 3 rows per class
    assert stream[0].train[0].indices.tolist() == [0, 1, 2, 9, 10, 11]
    np.testing.assert_array_equal(stream[1].train[1], [1, 1, 1, 2, 2, 2])
    images = stream[1].train[0].read([0, 5])
    assert images.dtype == torch.uint8 and images.shape == (2, 3, 4, 4)
    expected = np.asarray(Image.open(tmp_path / "eel" / "2.png")).transpose(2, 0, 1)
    np.testing.assert_array_equal(images[1].numpy(), expected)
    assert folder.reads == [3, 8]
