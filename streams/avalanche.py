"""Streams both ways with Avalanche benchmarks (needs the ``avalanche`` extra).

Avalanche is imported inside the functions, so ``streams`` imports without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from continual.validation import check_labels
from streams.experience import Experience, Stream

__all__ = ["from_avalanche", "to_avalanche"]


def to_avalanche(stream: Stream) -> Any:
    """Turn a class-incremental :class:`Stream` into an Avalanche benchmark.

    Every experience must carry ``(X, y)`` train and test payloads and its
    ``classes`` in metadata (as :func:`~streams.class_incremental` streams do).
    The benchmark is built by Avalanche's ``nc_benchmark`` with the stream's
    class order, so experience ``i`` holds the same samples. That generator is
    marked deprecated in Avalanche 0.6, but its experiences carry the
    ``benchmark`` (class order, classes per experience) that Avalanche's own
    iCaRL reads, which ``class_incremental_benchmark`` experiences lack.

    Examples
    --------
    >>> from streams import split_digits, to_avalanche
    >>> benchmark = to_avalanche(split_digits(n_experiences=5, seed=0))
    >>> len(benchmark.train_stream), sorted(benchmark.train_stream[0].classes_in_this_experience)
    (5, [4, 6])
    """
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark

    if not isinstance(stream, Stream):
        raise TypeError(f"stream must be a streams.Stream, got {type(stream).__name__}")
    classes = stream.classes
    if classes is None or any(c is None for c in classes):
        raise ValueError(
            f"stream must be class-incremental (metadata 'classes' on every experience), "
            f"got {stream!r} without it"
        )
    if any(experience.test is None for experience in stream):
        raise ValueError("stream must have a test payload on every experience, got None")
    return nc_benchmark(
        _joined_dataset(stream, "train"),
        _joined_dataset(stream, "test"),
        n_experiences=len(stream),
        task_labels=False,
        shuffle=False,
        fixed_class_order=[int(c) for group in classes for c in group],
        per_exp_classes={i: len(group) for i, group in enumerate(classes)},
    )


def _joined_dataset(stream: Stream, part: str) -> Any:
    """All samples of one payload as a single-task Avalanche classification dataset."""
    import torch
    from avalanche.benchmarks.utils import ConstantSequence, DataAttribute, TaskLabels
    from avalanche.benchmarks.utils.classification_dataset import (
        TaskAwareClassificationDataset,
    )
    from torch.utils.data import TensorDataset

    pairs = [_arrays(getattr(e, part), f"experience {e.index}'s {part} payload") for e in stream]
    x = torch.cat([torch.as_tensor(X) for X, _ in pairs])
    y = torch.cat([torch.as_tensor(y) for _, y in pairs]).long()
    attributes = [DataAttribute(y.tolist(), "targets"), TaskLabels(ConstantSequence(0, len(y)))]
    return TaskAwareClassificationDataset([TensorDataset(x, y)], data_attributes=attributes)


def _arrays(payload: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """An ``(X, y)`` payload as numeric arrays with finite labels, or a clear error."""
    if not (isinstance(payload, tuple) and len(payload) == 2):
        raise TypeError(f"{what} must be an (X, y) pair of arrays, got {type(payload).__name__}")
    X, y = (np.asarray(part) for part in payload)
    if X.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} must be an (X, y) pair of numeric arrays, got dtypes {X.dtype} and {y.dtype}"
        )
    check_labels(y, f"{what}'s y")
    return X, y


def from_avalanche(benchmark: Any, *, name: str | None = None) -> Stream:
    """Turn an Avalanche benchmark's train and test streams into a :class:`Stream`.

    Experience ``i`` receives the samples of the benchmark's ``train_stream[i]``
    and ``test_stream[i]`` as numpy arrays in the dtype the dataset returns
    (uint8 images stay uint8), and its ``classes_in_this_experience`` as
    ``metadata["classes"]``.

    Examples
    --------
    >>> from streams import from_avalanche, split_digits, to_avalanche
    >>> stream = from_avalanche(to_avalanche(split_digits(seed=0)), name="digits")
    >>> stream[0].classes, stream[0].train[0].dtype, len(stream)
    ((4, 6), dtype('uint8'), 5)
    """
    from continual.avalanche import dataset_arrays

    if not (hasattr(benchmark, "train_stream") and hasattr(benchmark, "test_stream")):
        raise TypeError(
            "benchmark must be an Avalanche benchmark with train_stream and test_stream, "
            f"got {type(benchmark).__name__}"
        )
    train, test = benchmark.train_stream, benchmark.test_stream
    if len(train) != len(test):
        raise ValueError(
            f"benchmark must have as many test as train experiences, got {len(train)} train "
            f"and {len(test)} test"
        )
    experiences = [
        Experience(
            index=i,
            train=dataset_arrays(train_exp.dataset),
            test=dataset_arrays(test_exp.dataset),
            metadata={"classes": tuple(sorted(train_exp.classes_in_this_experience))},
        )
        for i, (train_exp, test_exp) in enumerate(zip(train, test))
    ]
    return Stream(experiences, name=name or type(benchmark).__name__)
