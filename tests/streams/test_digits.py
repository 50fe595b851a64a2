import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from streams import split_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def stream():
    return split_digits(5, seed=0)


def gather(stream, part):
    X = np.concatenate([getattr(exp, part)[0] for exp in stream])
    y = np.concatenate([getattr(exp, part)[1] for exp in stream])
    return X, y


def test_stream_shape_name_and_dtype(stream):
    assert (stream.name, stream.seed, len(stream)) == ("split_digits", 0, 5)
    for exp in stream:
        for X, _ in (exp.train, exp.test):
            assert X.dtype == np.uint8
            assert X.shape[1:] == (1, 8, 8)


def test_counts(stream, digits):
    X_train, y_train = gather(stream, "train")
    X_test, y_test = gather(stream, "test")
    assert len(y_train) + len(y_test) == 1797
    assert len(y_test) == math.ceil(0.25 * 1797)
    assert len(X_train) == len(y_train) and len(X_test) == len(y_test)
    totals = np.bincount(digits.target, minlength=10)
    np.testing.assert_array_equal(
        np.bincount(y_train, minlength=10) + np.bincount(y_test, minlength=10), totals
    )


def test_split_is_stratified(stream, digits):
    _, y_test = gather(stream, "test")
    totals = np.bincount(digits.target, minlength=10)
    per_class_test = np.bincount(y_test, minlength=10)
    assert np.all(np.abs(per_class_test - 0.25 * totals) <= 1)


def test_each_class_in_exactly_one_experience(stream):
    classes = [c for group in stream.classes for c in group]
    assert sorted(classes) == list(range(10))
    assert all(len(group) == 2 for group in stream.classes)
    for exp in stream:
        assert set(exp.train[1].tolist()) == set(exp.classes)
        assert set(exp.test[1].tolist()) == set(exp.classes)


def test_pixels_are_the_digits_images(stream, digits):
    X_train, _ = gather(stream, "train")
    X_test, _ = gather(stream, "test")
    pixels = np.concatenate([X_train, X_test]).reshape(-1, 64).astype(np.int64)
    assert pixels.min() == 0 and pixels.max() == 16
    assert pixels.sum() == int(digits.images.sum())
    original = digits.images.reshape(-1, 64).astype(np.int64)
    np.testing.assert_array_equal(np.sort(pixels.sum(axis=1)), np.sort(original.sum(axis=1)))


def test_flatten_gives_64_columns(digits):
    flat = split_digits(2, flatten=True)
    for exp in flat:
        assert exp.train[0].shape[1:] == (64,)
        assert exp.train[0].dtype == np.uint8
    image = split_digits(2, flatten=False)
    np.testing.assert_array_equal(flat[0].train[0], image[0].train[0].reshape(-1, 64))


def test_same_seed_is_identical():
    a, b = split_digits(5, seed=3), split_digits(5, seed=3)
    assert a.classes == b.classes
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea.train[0], eb.train[0])
        np.testing.assert_array_equal(ea.test[1], eb.test[1])


def test_seed_changes_class_order_but_not_the_split(stream):
    other = split_digits(5, seed=1)
    assert other.classes != stream.classes
    for part in ("train", "test"):
        X_a, y_a = gather(stream, part)
        X_b, y_b = gather(other, part)
        order_a = np.lexsort(X_a.reshape(len(X_a), -1).T)
        order_b = np.lexsort(X_b.reshape(len(X_b), -1).T)
        np.testing.assert_array_equal(X_a[order_a], X_b[order_b])
        np.testing.assert_array_equal(np.sort(y_a), np.sort(y_b))


def test_test_size():
    stream = split_digits(10, test_size=0.5)
    assert len(stream) == 10
    assert sum(len(exp.test[1]) for exp in stream) == math.ceil(0.5 * 1797)


def test_n_experiences_must_divide_ten():
    with pytest.raises(ValueError, match=r"n_experiences=3 .*10 classes.*\[1, 2, 5, 10\]"):
        split_digits(3)


def test_flatten_must_be_bool():
    with pytest.raises(TypeError, match="flatten must be a bool, got str"):
        split_digits(5, flatten="yes")


@pytest.mark.parametrize("test_size", [0.0, 1.5, -0.1])
def test_test_size_is_validated(test_size):
    with pytest.raises(ValueError, match="test_size"):
        split_digits(5, test_size=test_size)
