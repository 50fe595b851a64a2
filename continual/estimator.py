"""The scikit-learn face of budgeted continual classifiers."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from continual.accountant import MemoryAccountant
from continual.learner import Learner
from continual.plugin import Plugin

__all__ = ["ContinualClassifier", "FittedStateMixin", "int_seed"]


class FittedStateMixin:
    """scikit-learn helpers shared by every estimator of this library.

    :meth:`_forget` deletes the fitted attributes (those ending in ``_``) and
    :meth:`_restored_on_failure` restores the whole estimator when the block it
    guards raises, so that a failed ``fit`` or ``partial_fit`` loses nothing.
    """

    def _forget(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    @contextmanager
    def _restored_on_failure(self) -> Iterator[None]:
        backup = copy.deepcopy(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(backup)
            raise


def int_seed(random_state: Any) -> int:
    """An int seed: ``random_state`` itself when it is an int, else one drawn from it.

    Examples
    --------
    >>> import numpy as np
    >>> from continual.estimator import int_seed
    >>> int_seed(7), int_seed(np.random.RandomState(0)) == int_seed(np.random.RandomState(0))
    (7, True)
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class ContinualClassifier(FittedStateMixin, ClassifierMixin, BaseEstimator, ABC):
    """Base class: one ``partial_fit`` call is one experience of a stream.

    Subclasses define ``__init__`` with their hyperparameters (stored
    unchanged) and implement :meth:`_make_model` and :meth:`_make_plugins`.
    They must accept at least ``budget``, ``optimizer``, ``lr``, ``epochs``,
    ``batch_size``, ``input_scale``, ``random_state`` and ``verbose``.

    The conventions follow :class:`sklearn.linear_model.SGDClassifier`:
    ``classes`` is required on the first call to :meth:`partial_fit` and
    declares every class the stream will ever show; :meth:`fit` forgets the
    past and learns ``(X, y)`` as a single experience. Integer inputs (uint8
    images) keep their dtype in stored exemplars; floating inputs are kept as
    float32. Inputs are cast to float32 and multiplied by ``input_scale``
    before they reach the model.

    A call that fails (bad input, or a budget that cannot be met, which raises
    :class:`~continual.accountant.BudgetExceededError`) leaves the estimator
    exactly as it was before the call.

    Attributes
    ----------
    classes_ : ndarray
        The declared classes.
    n_features_in_ : int
        Features seen on the first call.
    accountant_ : MemoryAccountant
        The fitted accountant: ``print(clf.accountant_.ledger())``.
    learner_ : Learner
        The training loop, with ``model`` and ``plugins``.
    n_experiences_ : int
        Experiences learned so far.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from continual import Plugin
    >>> from continual.estimator import ContinualClassifier
    >>> class LinearClassifier(ContinualClassifier):
    ...     def __init__(self, budget=None, *, optimizer="sgd", lr=0.1, epochs=5, batch_size=16,
    ...                  input_scale=1.0, random_state=None, verbose=0):
    ...         self.budget, self.optimizer, self.lr, self.epochs = budget, optimizer, lr, epochs
    ...         self.batch_size, self.input_scale = batch_size, input_scale
    ...         self.random_state, self.verbose = random_state, verbose
    ...     def _make_model(self, n_features, n_classes):
    ...         return torch.nn.Linear(n_features, n_classes)
    ...     def _make_plugins(self, seed):
    ...         return []
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]] * 20)
    >>> y = np.array([0, 1] * 20)
    >>> clf = LinearClassifier(budget="1 KB", random_state=0).partial_fit(X, y, classes=[0, 1])
    >>> clf.predict([[0.0, 1.0], [1.0, 0.0]]), clf.accountant_.total()
    (array([0, 1]), 48)
    """

    @abstractmethod
    def _make_model(self, n_features: int, n_classes: int) -> nn.Module:
        """The network for ``n_features`` inputs and ``n_classes`` logits."""

    @abstractmethod
    def _make_plugins(self, seed: int) -> list[Plugin]:
        """The strategy's plugins, seeded with ``seed``."""

    # ----------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any) -> ContinualClassifier:
        """Forget everything and learn ``(X, y)`` as one experience."""
        with self._restored_on_failure():
            self._forget()
            classes = np.unique(np.asarray(y)) if y is not None else None
            self.partial_fit(X, y, classes=classes)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> ContinualClassifier:
        """Learn one experience ``(X, y)``.

        Parameters
        ----------
        X
            Array of shape (n_samples, n_features).
        y
            Labels, each one of the declared classes.
        classes
            Every class of the stream; required on the first call, optional
            (and then equal to the first) afterwards.
        """
        first = not hasattr(self, "learner_")
        with self._restored_on_failure():
            X, y = self._validate_experience(X, y, classes, first)
            if first:
                self._initialize(X.shape[1], classes)
            labels = np.searchsorted(self.classes_, y)
            experience = SimpleNamespace(index=self.n_experiences_, train=(X, labels), test=None)
            self.learner_.train_experience(experience)
            self.n_experiences_ += 1
        return self

    # --------------------------------------------------------------- inference
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``."""
        check_is_fitted(self)
        X = self._validate_features(X, reset=False)
        logits = self.learner_.predict_logits(X)
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each sample."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    # --------------------------------------------------------------- internals
    def _initialize(self, n_features: int, classes: Any) -> None:
        seed = int_seed(self.random_state)
        self.classes_ = np.unique(np.asarray(classes))
        self.accountant_ = MemoryAccountant(self.budget)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self._make_model(n_features, len(self.classes_))
        self.learner_ = Learner(
            model,
            plugins=self._make_plugins(seed),
            accountant=self.accountant_,
            optimizer=self.optimizer,
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            input_scale=self.input_scale,
            seed=seed,
            verbose=self.verbose,
        )
        self.n_experiences_ = 0

    def _validate_experience(
        self, X: Any, y: Any, classes: Any, first: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if y is not None and hasattr(X, "__len__") and len(X) == 0:
            raise ValueError(
                "X must hold at least one sample: an experience cannot be empty, got 0 samples"
            )
        X, y = validate_data(self, X, y, reset=first, dtype="numeric")
        check_classification_targets(y)
        if first and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit, got classes=None; "
                "expected every class the stream will show, e.g. classes=np.arange(10)"
            )
        if (
            not first
            and classes is not None
            and not np.array_equal(np.unique(np.asarray(classes)), self.classes_)
        ):
            raise ValueError(
                f"classes={np.unique(np.asarray(classes)).tolist()} differs from the classes "
                f"declared on the first call to partial_fit, {self.classes_.tolist()}"
            )
        known = np.unique(np.asarray(classes)) if first else self.classes_
        unknown = np.setdiff1d(np.unique(y), known)
        if unknown.size:
            raise ValueError(
                f"y contains labels {unknown.tolist()} outside the declared classes "
                f"{known.tolist()}; declare every class in `classes` on the first call"
            )
        return _compact(X), y

    def _validate_features(self, X: Any, reset: bool) -> np.ndarray:
        return _compact(validate_data(self, X, reset=reset, dtype="numeric"))


def _compact(X: np.ndarray) -> np.ndarray:
    """Keep integer inputs as they are; store floating inputs as float32."""
    return X.astype(np.float32, copy=False) if X.dtype.kind == "f" else X
