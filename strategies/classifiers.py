"""scikit-learn faces of the class-incremental strategies: ``partial_fit`` is one experience."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.utils.data import Dataset

from continual.devices import resolve_device
from continual.distributed import is_distributed, local_part, mean_over_ranks
from continual.estimator import BudgetedEstimator
from continual.learner import OPTIMIZERS, Learner
from continual.measure import nbytes
from continual.plugin import Plugin
from continual.precision import PRECISIONS
from continual.samples import LazySamples, dataset_labels
from continual.validation import (
    COUNT,
    POSITIVE_FLOAT,
    InvalidParameterError,
    Sizes,
    StrOptions,
    merged_constraints,
)
from strategies.backbones import BACKBONES, make_backbone
from strategies.der import DER
from strategies.finetune import Finetune
from strategies.icarl import ICaRL
from strategies.memo import MEMO
from strategies.replay import Replay

__all__ = [
    "ContinualClassifier",
    "DERClassifier",
    "FinetuneClassifier",
    "ICaRLClassifier",
    "MEMOClassifier",
    "ReplayClassifier",
]


class ContinualClassifier(ClassifierMixin, BudgetedEstimator):
    """Base of the class-incremental classifiers: a backbone, a strategy's plugins, the Learner.

    Subclasses store their hyperparameters in ``__init__`` (at least those of
    :class:`~continual.estimator.BudgetedEstimator` and ``optimizer``, ``lr``, ``epochs``,
    ``batch_size``, ``input_scale`` and ``precision``) and implement :meth:`_make_model` and
    :meth:`_make_plugins`.

    The conventions follow :class:`sklearn.linear_model.SGDClassifier`: ``classes`` is
    required on the first call to :meth:`partial_fit` and declares every class the stream will
    ever show; :meth:`fit` forgets the past and learns ``(X, y)`` as a single experience.
    Integer inputs (uint8 images) keep their dtype in stored exemplars; floating inputs are
    kept as float32. Inputs are cast to float32 and multiplied by ``input_scale`` before they
    reach the model. The model and the optimizer state it will hold are checked against the
    budget, from their shapes, before the model is built.

    Hyperparameters are checked at every :meth:`fit` and :meth:`partial_fit`, before anything
    changes (:mod:`continual.validation`): ``lr`` and ``input_scale`` are finite and positive,
    ``epochs`` and ``batch_size`` are ints >= 1 (numpy scalars count as numbers), and
    ``optimizer`` and ``precision`` are known names. A violation raises
    ``InvalidParameterError`` (a ``ValueError``) naming the parameter and the value.

    Attributes
    ----------
    classes_ : ndarray
        The declared classes.
    n_features_in_ : int
        Features seen on the first call.
    learner_ : Learner
        The training loop, with ``model`` and ``plugins``.
    accountant_, seed_, n_partial_fits_
        As in :class:`~continual.estimator.BudgetedEstimator`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from strategies.classifiers import ContinualClassifier
    >>> class LinearClassifier(ContinualClassifier):
    ...     def __init__(self, budget=None, *, optimizer="sgd", lr=0.1, epochs=5, batch_size=16,
    ...                  input_scale=1.0, random_state=None, verbose=0, device="cpu",
    ...                  precision="32", rollback="memory"):
    ...         self.budget, self.optimizer, self.lr, self.epochs = budget, optimizer, lr, epochs
    ...         self.batch_size, self.input_scale = batch_size, input_scale
    ...         self.random_state, self.verbose = random_state, verbose
    ...         self.device, self.precision, self.rollback = device, precision, rollback
    ...     def _make_model(self, n_features, n_classes):
    ...         return torch.nn.Linear(n_features, n_classes)
    ...     def _make_plugins(self):
    ...         return []
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]] * 20)
    >>> y = np.array([0, 1] * 20)
    >>> clf = LinearClassifier(budget="1 KB", random_state=0).partial_fit(X, y, classes=[0, 1])
    >>> clf.predict([[0.0, 1.0], [1.0, 0.0]]), clf.accountant_.total()
    (array([0, 1]), 48)
    >>> try:
    ...     LinearClassifier(lr=float("nan")).fit(X, y)
    ... except ValueError as error:
    ...     print(error)
    The 'lr' parameter of LinearClassifier must be a float in the range (0.0, inf). Got nan ...
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        # a name, an optimizer class or a callable params -> optimizer (make_optimizer)
        "optimizer": [StrOptions(set(OPTIMIZERS)), callable],
        "lr": [POSITIVE_FLOAT],
        "epochs": [COUNT],
        "batch_size": [COUNT],
        "input_scale": [POSITIVE_FLOAT],
        "precision": [StrOptions(set(PRECISIONS))],
    }

    @abstractmethod
    def _make_model(self, n_features: int, n_classes: int) -> nn.Module:
        """The network for ``n_features`` inputs and ``n_classes`` logits."""

    @abstractmethod
    def _make_plugins(self) -> list[Plugin]:
        """The strategy's plugins, seeded from ``seed_``."""

    # ----------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None) -> ContinualClassifier:
        """Forget everything and learn ``(X, y)`` as one experience (the classes are those
        of ``y``, or of the data set's ``targets``)."""
        labels = dataset_labels(X, y, name="X") if _is_lazy(X) and y is None else y
        classes = np.unique(np.asarray(labels)) if labels is not None else None
        return super().fit(X, y, classes=classes)

    def partial_fit(self, X: Any, y: Any = None, classes: Any = None) -> ContinualClassifier:
        """Learn one experience ``(X, y)``.

        Parameters
        ----------
        X
            Array of shape (n_samples, n_features), or a torch ``Dataset`` (or
            :class:`~continual.samples.LazySamples`) read sample by sample.
        y
            Labels, each one of the declared classes; required with an array, optional with
            a data set (its ``targets`` then).
        classes
            Every class of the stream; required on the first call, optional (and then equal
            to the first) afterwards.

        Raises
        ------
        ValueError
            A hyperparameter out of its range (``InvalidParameterError``); an empty,
            non-numeric or non-finite ``X``, or one with other features than the first call;
            ``y`` missing, of another length, with NaN or labels outside ``classes``.
        TypeError
            A sparse ``X``.
        ~continual.accountant.BudgetExceededError
            When the model (or what the strategy grows) cannot fit ``budget``.

        A failed call leaves the estimator as it was.
        """
        return super().partial_fit(X, y, classes=classes)

    # --------------------------------------------------------------- inference
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``.

        ``X`` is an array, a torch ``Dataset`` or a :class:`~continual.samples.LazySamples`
        (read batch by batch)."""
        check_is_fitted(self)
        if _is_lazy(X):
            X = _check_samples(self, X, reset=False)
        else:
            X = _compact(validate_data(self, X, reset=False, dtype="numeric"))
        logits = self.learner_.predict(X)
        return torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each sample."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)`` (``y`` optional with a data set: its ``targets``).

        Under data-parallel training each rank predicts its share of the rows
        (:func:`~continual.distributed.local_part`) and the ranks add their counts.
        """
        if _is_lazy(X):
            X = _check_samples(self, X, reset=False)
            y = dataset_labels(X, y, name="X")
        if sample_weight is not None or not is_distributed():
            return super().score(X, y, sample_weight=sample_weight)
        X, y = local_part((X, np.asarray(y)))
        hits = float((self.predict(X) == y).sum()) if len(y) else 0.0
        return mean_over_ranks(hits, len(y))

    def scores(self, X: Any, y: Any = None) -> dict[str, float]:
        """``{"accuracy": ...}`` on ``(X, y)``."""
        return {"accuracy": self.score(X, y)}

    # ------------------------------------------------------- BudgetedEstimator
    def _validate_input(
        self, X: Any, y: Any = None, *, first: bool, classes: Any = None
    ) -> tuple[np.ndarray | LazySamples, np.ndarray]:
        """Arrays through ``validate_data``; a torch ``Dataset`` or a
        :class:`~continual.samples.LazySamples` by one sample's size (nothing else is read),
        with its labels from ``y`` or the data set's ``targets``."""
        if _is_lazy(X):
            X = _check_samples(self, X, reset=first)
            y = dataset_labels(X, y, name="X")
        else:
            if y is None:
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None "
                    "(X is an array; only a torch Dataset carries its own labels, its targets)"
                )
            _check_rows(X, y)
            X, y = validate_data(self, X, y, reset=first, dtype="numeric")
            X = _compact(X)
        check_classification_targets(y)
        if first and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit, got classes=None; "
                "expected every class the stream will show, e.g. classes=np.arange(10)"
            )
        declared = np.unique(np.asarray(classes)) if classes is not None else None
        if not first and declared is not None and not np.array_equal(declared, self.classes_):
            raise ValueError(
                f"classes={declared.tolist()} differs from the classes declared on the first "
                f"call to partial_fit, {self.classes_.tolist()}"
            )
        known = declared if first else self.classes_
        unknown = np.setdiff1d(np.unique(y), known)
        if unknown.size:
            raise ValueError(
                f"y contains labels {unknown.tolist()} outside the declared classes "
                f"{known.tolist()}; declare every class in `classes` on the first call"
            )
        return X, y

    def _initialize(self, data: Any, classes: Any = None) -> None:
        self.classes_ = np.unique(np.asarray(classes))

    def _planned_bytes(self, data: Any) -> Mapping[str, int]:
        """On the first call: the model, its optimizer state and what the plugins will keep
        of its size, measured on the meta device."""
        if hasattr(self, "learner_"):
            return {}
        with torch.device("meta"):
            model = self._make_model(self.n_features_in_, len(self.classes_))
        planner = Learner(model, **self._learner_settings())
        planned = {"model": nbytes(model), "optimizer": planner.optimizer_state_nbytes()}
        for plugin in self._make_plugins():
            planned.update(
                {f"{plugin.name}/{k}": v for k, v in plugin.planned_bytes(model).items()}
            )
        return planned

    def _build(self) -> None:
        model = self._make_model(self.n_features_in_, len(self.classes_))
        self.learner_ = Learner(
            model,
            plugins=self._make_plugins(),
            accountant=self.accountant_,
            seed=self.seed_,
            verbose=self.verbose,
            device=self.device_,
            **self._learner_settings(),
        )

    def _learner_settings(self) -> dict[str, Any]:
        """The Learner's settings, numpy scalars as Python numbers (the values are checked)."""
        return {
            "optimizer": self.optimizer,
            "lr": float(self.lr),
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "input_scale": float(self.input_scale),
            "precision": self.precision,
        }

    def _learn(self, data: tuple[np.ndarray, np.ndarray]) -> None:
        X, y = data
        labels = np.searchsorted(self.classes_, y)
        self.losses_ = self.learner_.learn((X, labels), index=self.n_partial_fits_)

    def _state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner_.state_dict()}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner_.load_state_dict(state["learner"])

    def _learn_experience(self, experience: Any, stream: Sequence[Any]) -> None:
        """``partial_fit`` on the experience; the first call declares every label of the
        stream's training payloads as the classes."""
        X, y = experience.train
        classes = None
        if not hasattr(self, "classes_"):
            classes = np.unique(np.concatenate([np.asarray(exp.train[1]) for exp in stream]))
        self.partial_fit(X, y, classes=classes)

    def _score_payload(self, payload: Any) -> float:
        X, y = payload
        return self.score(X, y)

    def _scores_payload(self, payload: Any) -> dict[str, float]:
        X, y = payload
        return self.scores(X, y)


def _check_rows(X: Any, y: Any) -> None:
    """Before ``validate_data``, what its messages do not say by name: sparse or empty ``X``,
    ``X`` and ``y`` of different lengths, an ``X`` of strings."""
    if issparse(X):
        raise TypeError(
            f"X must be dense: sparse data ({type(X).__name__}) is not supported; convert it "
            "with X.toarray()"
        )
    n_rows, n_labels = _n_rows(X), _n_rows(y)
    if n_rows == 0:
        raise ValueError(
            "X must hold at least one sample: an experience cannot be empty, got 0 samples"
        )
    if n_rows is not None and n_labels is not None and n_rows != n_labels:
        raise ValueError(
            f"y must hold one label per row of X: X has {n_rows} rows and y {n_labels} labels"
        )
    if getattr(X, "dtype", np.dtype(float)).kind in "SU":
        raise ValueError(
            f"X must hold numbers, got an array of strings (dtype {X.dtype}); encode them first"
        )


def _n_rows(data: Any) -> int | None:
    """Rows of an array (its first axis) or a sequence; None for anything else."""
    shape = getattr(data, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    return len(data) if hasattr(data, "__len__") and not isinstance(data, (str, bytes)) else None


def _compact(X: np.ndarray) -> np.ndarray:
    """Keep integer inputs as they are; store floating inputs as float32."""
    return X.astype(np.float32, copy=False) if X.dtype.kind == "f" else X


def _is_lazy(X: Any) -> bool:
    return isinstance(X, (Dataset, LazySamples))


def _check_samples(estimator: ContinualClassifier, X: Any, *, reset: bool) -> LazySamples:
    """Rows of a torch data set, checked by the number of values in one sample (the first
    row is read); ``reset`` records it as ``n_features_in_``."""
    if isinstance(X, Dataset):
        if not hasattr(X, "__len__") or not hasattr(X, "__getitem__"):
            raise TypeError(
                f"X must be an array, a map-style torch Dataset (with __len__ and "
                f"__getitem__) or a LazySamples, got the iterable data set {type(X).__name__}"
            )
        X = LazySamples(X)
    if not len(X):
        raise ValueError(
            f"X must hold at least one sample, got an empty {type(X.dataset).__name__}"
        )
    n_features = math.prod(X.sample_shape)
    if reset:
        estimator.n_features_in_ = n_features
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features per sample (samples of shape {X.sample_shape}), but "
            f"{type(estimator).__name__} is expecting {estimator.n_features_in_} features as "
            "input"
        )
    return X


def _declared(plugin: type[Plugin], *names: str) -> dict[str, Any]:
    """The constraints ``plugin`` declares for ``names``: one declaration for the plugin and
    the estimator that passes them on."""
    constraints = merged_constraints(plugin)
    return {name: constraints[name] for name in names}


def _check_device_param(value: Any, name: str, caller: str) -> None:
    """``value`` names a device of this machine, or an ``InvalidParameterError`` naming it."""
    try:
        resolve_device(value)
    except ValueError as error:
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must name a device of this machine ({error}). "
            f"Got {value!r} instead."
        ) from None


class FinetuneClassifier(ContinualClassifier):
    """Class-incremental fine-tuning with a scikit-learn interface.

    Each :meth:`partial_fit` call trains the network on one experience, with
    no memory of the past. The model and its optimizer state are charged to
    ``accountant_`` against ``budget``.

    Parameters
    ----------
    budget
        Bytes (int) or a string such as ``"200 KB"``; None measures only.
    backbone
        ``"mlp"`` for flat features or ``"conv8"`` for 8x8 images given as 64 features.
    hidden_sizes
        Hidden widths of the MLP, each an int >= 1; ``()`` gives a softmax regression.
    width
        First-block channels of the conv net, an int >= 1.
    optimizer
        ``"adam"``, ``"sgd"`` (or another name of :func:`~continual.learner.make_optimizer`),
        an optimizer class or a callable ``params -> optimizer``.
    lr
        Learning rate, finite and > 0.
    epochs
        Passes over each experience, an int >= 1.
    batch_size
        Mini-batch size, an int >= 1.
    input_scale
        Inputs are multiplied by this after the float cast (``1/16`` for digits, ``1/255``
        for uint8 images); finite and > 0.
    random_state
        Seed of the initialisation, the batch order and the strategy's choices; None draws
        one (kept as ``seed_``).
    verbose
        0 for silence.
    device, rollback
        As in :class:`~continual.estimator.BudgetedEstimator`.
    precision
        ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"``: mixed precision through
        ``torch.autocast`` (see :class:`~continual.precision.Precision`).

    Raises
    ------
    InvalidParameterError
        At :meth:`fit` / :meth:`partial_fit`, before anything changes, for a parameter
        outside what is described above (a ``ValueError`` naming it and the value).
    ~continual.accountant.BudgetExceededError
        When the model and its optimizer state cannot fit ``budget`` (before they are built).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from strategies import FinetuneClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = FinetuneClassifier(budget="150 KB", input_scale=1 / 16, random_state=0)
    >>> clf = clf.partial_fit(X[:900], y[:900], classes=range(10))
    >>> clf.score(X[900:], y[900:]) > 0.9
    True
    >>> clf.accountant_.ledger().accounts
    {'model': 38440, 'optimizer': 76896}
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "backbone": [StrOptions(set(BACKBONES))],
        "hidden_sizes": [Sizes()],
        "width": [COUNT],
    }
    #: Whether the strategy splits the backbone into a shared and a grown part (MEMO, DER):
    #: an MLP then needs a hidden layer.
    _splits_backbone: ClassVar[bool] = False

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (128,),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        precision: str = "32",
        rollback: str = "memory",
    ) -> None:
        self.budget = budget
        self.backbone = backbone
        self.hidden_sizes = hidden_sizes
        self.width = width
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.input_scale = input_scale
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.rollback = rollback

    def _make_model(self, n_features: int, n_classes: int) -> nn.Module:
        return make_backbone(
            self.backbone, n_features, n_classes, hidden_sizes=self.hidden_sizes, width=self.width
        )

    def _make_plugins(self) -> list[Plugin]:
        return [Finetune()]

    def _check_shared_params(self) -> None:
        """The declared constraints, then what they cannot say: ``store_device`` names a
        device of this machine, and a split backbone has a hidden layer to split."""
        super()._check_shared_params()
        caller = type(self).__name__
        if "store_device" in self.get_params(deep=False):
            _check_device_param(self.store_device, "store_device", caller)
        if self._splits_backbone and self.backbone == "mlp" and not len(self.hidden_sizes):
            raise InvalidParameterError(
                f"The 'hidden_sizes' parameter of {caller} must be a non-empty sequence of "
                f"ints >= 1 with backbone='mlp' ({caller} splits off the last hidden layer). "
                f"Got {self.hidden_sizes!r} instead."
            )


class ReplayClassifier(FinetuneClassifier):
    """Class-incremental replay with a scikit-learn interface.

    Like :class:`FinetuneClassifier`, plus an exemplar store that takes all
    the headroom the budget leaves after the model and optimizer state
    (account ``replay/exemplars``). Stored samples keep the input dtype:
    pass uint8 images to pay one byte per pixel.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose, device, precision, rollback
        As in :class:`FinetuneClassifier`.
    store_device
        Where the exemplars live: ``"cpu"`` (the default: stores are large, and the budget
        per device can give the CPU its own) or a device such as ``"cuda"`` (no copy per
        replayed batch).
    policy
        Exemplar selection: ``"class_balanced"``, ``"herding"``, ``"random"`` or ``"reservoir"``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies import ReplayClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.astype(np.uint8)
    >>> clf = ReplayClassifier(budget="150 KB", input_scale=1 / 16, random_state=0)
    >>> for task in range(5):
    ...     mask = (y // 2) == task
    ...     clf = clf.partial_fit(X[mask], y[mask], classes=range(10))
    >>> ledger = clf.accountant_.ledger()
    >>> ledger.total <= 150_000, ledger.accounts["replay/exemplars"] // 65
    (True, 533)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = _declared(Replay, "policy", "store_device")

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        policy: str = "class_balanced",
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (128,),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        precision: str = "32",
        store_device: str = "cpu",
        rollback: str = "memory",
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
            device=device,
            precision=precision,
            rollback=rollback,
        )
        self.store_device = store_device
        self.policy = policy

    def _make_plugins(self) -> list[Plugin]:
        return [Replay(policy=self.policy, seed=self.seed_, store_device=self.store_device)]


class MEMOClassifier(FinetuneClassifier):
    """MEMO (a shared generalized trunk, one specialized block per experience) for scikit-learn.

    Each :meth:`partial_fit` call is one task of :class:`~strategies.memo.MEMO`: the backbone
    is split by :func:`~strategies.backbones.split_backbone` (for the MLP, every hidden layer
    but the last is generalized), a specialized block is added, and herding exemplars fill what
    the grown model leaves of ``budget``. The ledger holds ``model`` (trunk, blocks, heads),
    ``optimizer`` and ``memo/exemplars``. A budget that cannot hold the grown model and its
    optimizer state raises :class:`~continual.accountant.BudgetExceededError` naming both.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose, device, precision, rollback
        As in :class:`FinetuneClassifier` (the MLP defaults to two hidden layers, so that
        there is a generalized part to share; it needs at least one, the specialized one).
    store_device
        Where the exemplars live: ``"cpu"`` (the default: stores are large, and the budget
        per device can give the CPU its own) or a device such as ``"cuda"`` (no copy per
        replayed batch).
    train_base
        Keep training the generalized blocks after the first experience (a bool).
    aux_weight
        Weight of the auxiliary ``new + 1`` loss, finite and >= 0.
    weight_alignment
        A bool: rescale the new classes' head rows after each experience (MEMO's default). With few
        epochs and balanced replay the new rows are the *shorter* ones, and alignment then
        favours new classes: the example turns it off.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies.classifiers import MEMOClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.astype(np.uint8)
    >>> clf = MEMOClassifier(budget="200 KB", input_scale=1 / 16, epochs=5,
    ...                      weight_alignment=False, random_state=0)
    >>> for task in range(5):
    ...     mask = (y // 2) == task
    ...     clf = clf.partial_fit(X[mask], y[mask], classes=range(10))
    >>> ledger = clf.accountant_.ledger()
    >>> ledger.total <= 200_000, len(clf.learner_.model.blocks), clf.score(X, y) > 0.8
    (True, 5, True)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = _declared(
        MEMO, "train_base", "aux_weight", "weight_alignment", "store_device"
    )
    _splits_backbone = True

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        train_base: bool = True,
        aux_weight: float = 1.0,
        weight_alignment: bool = True,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (64, 32),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        precision: str = "32",
        store_device: str = "cpu",
        rollback: str = "memory",
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
            device=device,
            precision=precision,
            rollback=rollback,
        )
        self.store_device = store_device
        self.train_base = train_base
        self.aux_weight = aux_weight
        self.weight_alignment = weight_alignment

    def _make_plugins(self) -> list[Plugin]:
        return [
            MEMO(
                train_base=self.train_base,
                aux_weight=float(self.aux_weight),
                weight_alignment=self.weight_alignment,
                seed=self.seed_,
                store_device=self.store_device,
            )
        ]


class DERClassifier(FinetuneClassifier):
    """DER (one whole backbone per experience) for scikit-learn.

    Each :meth:`partial_fit` call is one task of :class:`~strategies.der.DER`: a copy of the
    backbone is added and the old ones are frozen; herding exemplars fill what the models
    leave of ``budget``. The ledger holds ``model`` (every backbone and the heads),
    ``optimizer`` and ``der/exemplars``.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose, device, precision, store_device, rollback
        As in :class:`MEMOClassifier` (the MLP needs a hidden layer: DER copies the backbone
        without its head).
    aux_weight, weight_alignment
        As in :class:`MEMOClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies.classifiers import DERClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DERClassifier(budget="200 KB", input_scale=1 / 16, epochs=5, random_state=0)
    >>> clf = clf.partial_fit(X[y < 5], y[y < 5], classes=range(10))
    >>> clf = clf.partial_fit(X[y >= 5], y[y >= 5])
    >>> clf.accountant_.total() <= 200_000, len(clf.learner_.model.blocks), clf.score(X, y) > 0.8
    (True, 2, True)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = _declared(
        DER, "aux_weight", "weight_alignment", "store_device"
    )
    _splits_backbone = True

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        aux_weight: float = 1.0,
        weight_alignment: bool = True,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (64, 32),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        precision: str = "32",
        store_device: str = "cpu",
        rollback: str = "memory",
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
            device=device,
            precision=precision,
            rollback=rollback,
        )
        self.store_device = store_device
        self.aux_weight = aux_weight
        self.weight_alignment = weight_alignment

    def _make_plugins(self) -> list[Plugin]:
        return [
            DER(
                aux_weight=float(self.aux_weight),
                weight_alignment=self.weight_alignment,
                seed=self.seed_,
                store_device=self.store_device,
            )
        ]


class ICaRLClassifier(FinetuneClassifier):
    """iCaRL (herding, distillation, nearest-mean-of-exemplars) for scikit-learn.

    Each :meth:`partial_fit` call is one task of :class:`~strategies.icarl.ICaRL`.
    :meth:`predict` and :meth:`predict_proba` score classes by their distance to the class
    means of the stored exemplars (a softmax over minus squared distances). The ledger holds
    ``model``, ``optimizer``, ``icarl/exemplars``, ``icarl/old_model`` (the distillation
    teacher), ``icarl/class_means`` and ``icarl/mean_classes``.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose, device, precision, rollback
        As in :class:`FinetuneClassifier`.
    store_device
        Where the exemplars live: ``"cpu"`` (the default: stores are large, and the budget
        per device can give the CPU its own) or a device such as ``"cuda"`` (no copy per
        replayed batch).
    temperature
        Distillation temperature, finite and > 0.
    distillation_weight
        Weight of the distillation loss, finite and >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies.classifiers import ICaRLClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.astype(np.uint8)
    >>> clf = ICaRLClassifier(budget="200 KB", input_scale=1 / 16, epochs=5, random_state=0)
    >>> for task in range(5):
    ...     mask = (y // 2) == task
    ...     clf = clf.partial_fit(X[mask], y[mask], classes=range(10))
    >>> clf.accountant_.total() <= 200_000, clf.score(X, y) > 0.8
    (True, True)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = _declared(
        ICaRL, "temperature", "distillation_weight", "store_device"
    )

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        temperature: float = 2.0,
        distillation_weight: float = 1.0,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (128,),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        precision: str = "32",
        store_device: str = "cpu",
        rollback: str = "memory",
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
            device=device,
            precision=precision,
            rollback=rollback,
        )
        self.store_device = store_device
        self.temperature = temperature
        self.distillation_weight = distillation_weight

    def _make_plugins(self) -> list[Plugin]:
        return [
            ICaRL(
                temperature=float(self.temperature),
                distillation_weight=float(self.distillation_weight),
                seed=self.seed_,
                store_device=self.store_device,
            )
        ]
