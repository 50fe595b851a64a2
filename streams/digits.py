"""Split digits: scikit-learn's bundled 8x8 digits as a small class-incremental stream."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from streams.class_incremental import class_incremental
from streams.experience import Stream


def split_digits(
    n_experiences: int = 5, *, seed: Any = 0, flatten: bool = False, test_size: float = 0.25
) -> Stream:
    """Scikit-learn's digits (1,797 images of 8x8, values 0..16) as a class-incremental stream.

    The images are stored as ``uint8`` (1 byte per pixel). The train/test split is fixed and
    stratified (``random_state=0``), independent of ``seed``; only the class order is drawn from
    ``seed``, through :func:`~streams.class_incremental.class_incremental`. No download is needed:
    the data ship with scikit-learn.

    Parameters
    ----------
    n_experiences
        Number of experiences; must divide the 10 classes (1, 2, 5 or 10).
    seed
        Seed of the class order.
    flatten
        If True, ``X`` has shape ``(n, 64)``; otherwise ``(n, 1, 8, 8)`` (channels first).
    test_size
        Test part of the split, as accepted by ``sklearn.model_selection.train_test_split``.

    Returns
    -------
    Stream
        A stream named ``"split_digits"`` with ``metadata={"classes": ...}`` per experience.

    Examples
    --------
    >>> stream = split_digits(5, seed=0)
    >>> stream
    Stream(name='split_digits', n_experiences=5, seed=0)
    >>> X, y = stream[0].train
    >>> X.dtype, X.shape[1:], len(stream.classes[0])
    (dtype('uint8'), (1, 8, 8), 2)
    >>> split_digits(2, flatten=True)[0].test[0].shape[1]
    64
    """
    if not isinstance(flatten, (bool, np.bool_)):
        raise TypeError(f"flatten must be a bool, got {type(flatten).__name__}")
    digits = load_digits()
    X = digits.images.astype(np.uint8)
    X = X.reshape(len(X), -1) if flatten else X[:, np.newaxis, :, :]
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=test_size, stratify=digits.target, random_state=0
    )
    return class_incremental(
        X_train,
        y_train,
        n_experiences=n_experiences,
        test=(X_test, y_test),
        seed=seed,
        name="split_digits",
    )
