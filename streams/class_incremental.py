"""Class-incremental streams: each experience brings a new, disjoint group of classes."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.utils import check_scalar
from torch.utils.data import Dataset

from continual.samples import LazySamples, dataset_labels
from streams.adapters import _check_xy
from streams.experience import Experience, Stream


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _group_size(n_classes: int, n_experiences: Any, classes_per_experience: Any) -> int:
    """Number of classes per experience, checking that the classes split into equal groups."""
    if (n_experiences is None) == (classes_per_experience is None):
        raise ValueError(
            "give exactly one of n_experiences and classes_per_experience, got "
            f"n_experiences={n_experiences!r} and classes_per_experience={classes_per_experience!r}"
        )
    argument, value = (
        ("n_experiences", n_experiences)
        if n_experiences is not None
        else ("classes_per_experience", classes_per_experience)
    )
    check_scalar(value, argument, numbers.Integral, min_val=1)
    if n_classes % value != 0:
        raise ValueError(
            f"{argument}={value} does not split the {n_classes} classes into equal groups; "
            f"{argument} must divide {n_classes}, i.e. be one of {_divisors(n_classes)}"
        )
    return n_classes // value if argument == "n_experiences" else int(value)


def _class_order(classes: np.ndarray, class_order: Any, seed: Any) -> np.ndarray:
    """The given order after checking it is a permutation of ``classes``, or a seeded one."""
    if class_order is None:
        return np.random.default_rng(seed).permutation(classes)
    order = np.asarray(class_order)
    if order.ndim != 1 or len(order) != len(classes) or not np.array_equal(np.sort(order), classes):
        raise ValueError(
            f"class_order must be a permutation of the labels in y {classes.tolist()}, "
            f"got {order.tolist()}"
        )
    return order


def _check_data(data: Any, y: Any, name: str) -> tuple[np.ndarray | LazySamples, np.ndarray]:
    """Arrays ``(X, y)``, or every row of a torch ``Dataset`` with its labels (none read)."""
    if isinstance(data, LazySamples):
        return data, dataset_labels(data, y, name=name)
    if isinstance(data, Dataset):
        return LazySamples(data), dataset_labels(data, y, name=name)
    if y is None:
        raise ValueError(
            f"y must be given when {name} is an array ({type(data).__name__}); only a torch "
            "Dataset can give its labels, through its `targets` attribute"
        )
    return _check_xy(data, y, y_required=True)


def _check_test(test: Any, classes: np.ndarray) -> tuple[Any, np.ndarray] | None:
    """``test`` as ``(X_test, y_test)``; a bad one raises an error that names ``test``."""
    if test is None:
        return None
    if not (isinstance(test, Dataset) or (isinstance(test, tuple) and len(test) == 2)):
        raise TypeError(
            "test must be None, a tuple (X_test, y_test) or a torch Dataset with `targets`, "
            f"got {type(test).__name__}"
        )
    try:
        if isinstance(test, Dataset):
            X_test, y_test = _check_data(test, None, "test")
        else:
            X_test, y_test = _check_data(*test, "test[0]")
    except ValueError as error:
        raise ValueError(f"test (X_test, y_test): {error}") from error
    if len(X_test) == 0:
        raise ValueError("test must hold at least one sample, got an empty data set")
    if y_test.ndim != 1:
        raise ValueError(f"test labels y_test must be 1-D, got shape {y_test.shape}")
    unknown = np.setdiff1d(y_test, classes)
    if len(unknown):
        raise ValueError(f"test labels must all occur in y, got unknown labels {unknown.tolist()}")
    return X_test, y_test


def class_incremental(
    data: Any,
    y: Any = None,
    *,
    n_experiences: int | None = None,
    classes_per_experience: int | None = None,
    class_order: Any = None,
    test: Any = None,
    seed: Any = 0,
    name: str = "class_incremental",
) -> Stream:
    """Split a labelled data set into experiences with disjoint, equal-sized groups of classes.

    The classes are put in order (``class_order``, or a permutation drawn from
    ``np.random.default_rng(seed)``) and cut into consecutive groups; experience ``i`` holds the
    rows whose label is in group ``i``, in their original order and with ``X``'s dtype.

    ``data`` may be a torch ``Dataset`` (an ``ImageFolder``, ``CIFAR100``, ...): the stream
    then holds index subsets, :class:`~continual.samples.LazySamples`, and building it reads
    no sample; the labels come from ``y`` or from the data set's ``targets``. Training reads
    each experience's rows batch by batch, and exemplar stores copy only the rows they keep.

    Parameters
    ----------
    data
        Inputs, one row per sample (any shape after the first axis; the dtype is kept), or a
        map-style torch ``Dataset`` whose items are a tensor, an array or an ``(input,
        target)`` tuple.
    y
        1-D labels, one per row of ``data``; None takes a data set's ``targets``.
    n_experiences
        Number of experiences. Give exactly one of ``n_experiences`` and
        ``classes_per_experience``; either must divide the number of classes.
    classes_per_experience
        Number of classes per experience.
    class_order
        A permutation of the distinct labels of ``y``; None draws one from ``seed``.
    test
        None, a tuple ``(X_test, y_test)`` (``X_test`` may be a ``Dataset``) or a ``Dataset``
        with ``targets``, split by the same class groups.
    seed
        Seed of the class order (unused when ``class_order`` is given).
    name
        Name of the stream.

    Returns
    -------
    Stream
        Experiences with ``train=(X_i, y_i)``, ``test=(X_test_i, y_test_i)`` or None, and
        ``metadata={"classes": (c1, c2, ...)}`` in class order. ``X_i`` is an array, or a
        :class:`~continual.samples.LazySamples` for a data set; ``y_i`` is an array.

    Raises
    ------
    ValueError
        Rows of ``data`` and labels that differ in number, NaN or infinite labels, a count
        that does not split the classes, a ``class_order`` that is not a permutation of the
        labels; for ``test``, a message that starts with ``test``.
    TypeError
        A count that is not an int, a ``test`` that is neither a tuple nor a data set.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(12, dtype=np.uint8).reshape(6, 2)
    >>> y = np.array([0, 1, 2, 3, 0, 1])
    >>> stream = class_incremental(X, y, n_experiences=2, class_order=[3, 1, 0, 2])
    >>> stream.classes
    [(3, 1), (0, 2)]
    >>> stream[0].train
    (array([[ 2,  3],
           [ 6,  7],
           [10, 11]], dtype=uint8), array([1, 3, 1]))
    >>> class_incremental(X, y, classes_per_experience=1, seed=0).classes
    [(2,), (0,), (1,), (3,)]

    A torch data set becomes index subsets:

    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> dataset = TensorDataset(torch.as_tensor(X))
    >>> lazy = class_incremental(dataset, y, n_experiences=2, class_order=[3, 1, 0, 2])
    >>> samples, labels = lazy[0].train
    >>> samples, samples.indices, labels
    (LazySamples(dataset=TensorDataset, n=3), array([1, 3, 5]), array([1, 3, 1]))
    >>> samples.read()
    tensor([[ 2,  3],
            [ 6,  7],
            [10, 11]], dtype=torch.uint8)
    """
    X, y = _check_data(data, y, "data")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    classes = np.unique(y)
    size = _group_size(len(classes), n_experiences, classes_per_experience)
    order = _class_order(classes, class_order, seed)
    test = _check_test(test, classes)
    experiences = []
    for index, start in enumerate(range(0, len(order), size)):
        group = order[start : start + size]
        mask = np.isin(y, group)
        test_payload = None
        if test is not None:
            test_mask = np.isin(test[1], group)
            test_payload = (test[0][test_mask], test[1][test_mask])
        meta = {"classes": tuple(group.tolist())}
        experiences.append(Experience(index, (X[mask], y[mask]), test_payload, meta))
    return Stream(experiences, name=name, seed=seed)
