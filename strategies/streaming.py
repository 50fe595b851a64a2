"""StreamingClassifier: a neural online learner that is a river classifier, under the budget."""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from river import base
from torch import nn

from continual.budget import parse_budgets
from continual.devices import device_name
from continual.estimator import BudgetedEstimator
from continual.exemplars import ExemplarStore
from continual.learner import OPTIMIZERS, OptimizerSpec, make_optimizer, optimizer_state_split
from continual.measure import Reservation, collect_blocks
from continual.progress import progress
from continual.state import load_rng_state, rng_state
from continual.validation import (
    COUNT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    InvalidParameterError,
    Sizes,
    StrOptions,
)
from strategies.backbones import MLP

__all__ = ["StreamingClassifier"]

_POSITION_BYTES = 8  # a key's position in a feature or class map, charged as an int64
_POLICIES = ("reservoir", "class_balanced")
_MAX_REFILL_EVERY = 16


class StreamingClassifier(base.MiniBatchClassifier, BudgetedEstimator):
    """A small neural network that learns a stream one sample at a time, as a river classifier.

    It is a :class:`river.base.MiniBatchClassifier` (``learn_one``, ``predict_one``,
    ``predict_proba_one`` and their ``_many`` versions), so river's tools take it unchanged:
    ``evaluate.progressive_val_score``, ``compose.Pipeline``, ``metrics`` and
    ``utils.Rolling``. It is also a :class:`~continual.estimator.BudgetedEstimator`, the one
    estimator base of this library (``fit``, a transactional ``partial_fit`` = ``learn_many``,
    ``get_params``, checkpoints, ``accountant_``): river's ``Base`` and scikit-learn's
    ``BaseEstimator`` both read the parameters from ``__init__`` and share no method but
    ``__repr__`` and ``_repr_html_``, which come from river.

    **Learning.** Task-free online continual learning, one pass: arriving samples are
    buffered; each complete mini-batch of ``batch_size`` new samples, with
    ``replay_batch_size`` samples drawn from a replay store appended, makes one gradient step.
    Every ``refill_every`` steps the buffered samples are offered to the store in one go (a
    refill copies the store, so refilling less often keeps the cost per sample low when the
    store is large). Predictions are always available and use the network as it is (a
    mini-batch still incomplete is not learned yet). Before anything is learned,
    ``predict_proba_one`` returns ``{}`` like every river classifier. The torch work happens
    once per mini-batch; ``predict_one`` runs the network in numpy on views of its weights.

    **Features.** Each feature name gets a column of the input layer when it is first seen
    (several new names of one sample are ordered by type name and ``repr``, so that the layout
    does not depend on dict order). As in river's linear models, an unseen feature is a new
    weight initialised at 0, and a missing feature contributes 0: the new column of the input
    layer is zero, so predictions do not jump when it appears, and stored or pending samples
    read 0 in it. The columns of the first sample are initialised at random (a network whose
    first layer is all zeros would start with dead units). Values must be numbers (bools count
    as 0/1); encode categories first (``river.preprocessing.OneHotEncoder``) and scale inputs
    (``river.preprocessing.StandardScaler``), as for river's linear models.

    **Classes.** A label seen for the first time adds a row to the head (zero weights, zero
    bias: the logit of the new class starts at 0).

    **Drift.** With a river ``drift_detector`` (such as ``river.drift.ADWIN()``), the mean
    cross-entropy of the new samples of each mini-batch, measured before the step (an
    interleaved test-then-train loss), is fed to it. A detection is a drift when that loss is
    above its mean since the previous drift (a loss that falls is learning, not a drift to
    adapt to). A drift is counted in ``n_drifts_`` (its sample position in ``drifts_``) and
    adapts the learner: the learning rate is multiplied by ``drift_lr_boost`` for the next
    ``drift_boost_steps`` steps, and the store's reservoir restarts its count, so that new
    samples displace the stored ones quickly (after as many new samples as the store holds,
    about half are new) instead of at a rate of ``capacity / samples seen``. The default
    (None) detects nothing.

    **What it stores, and how it is charged.** Every account lives in ``accountant_`` against
    ``budget``:

    - ``model``: the MLP's float32 weights (:class:`~strategies.backbones.MLP`);
    - ``optimizer``: the optimizer's state, reserved from its shapes before the first step
      allocates it (Adam: two moments per weight and a step count per tensor);
    - ``buffer``: the samples not offered to the store yet, ``batch_size * refill_every``
      float32 rows and int64 labels;
    - ``features`` and ``classes``: the maps from feature names and labels to columns and head
      rows: each key's payload (a ``str`` its UTF-8 bytes, an ``int`` or ``float`` 8, a
      ``bool`` 1, a tuple the sum of its parts, anything else its ``repr``'s UTF-8 bytes) plus
      8 bytes for its position;
    - ``replay/exemplars``: the replay store (:class:`~continual.exemplars.ExemplarStore`,
      float32 rows and compact labels), refilled every ``refill_every`` steps with the
      capacity the budget leaves (:meth:`~continual.accountant.MemoryAccountant.room_for`);
    - ``inference``: the weights ``predict_one`` reads, numpy views of the model on the CPU
      (0 bytes: the storage is the model's) and a CPU copy refreshed after each step when
      ``device`` is an accelerator.

    The model, optimizer, buffer and maps are checked against the budget before they grow (a
    new feature or class): the store is shrunk to make room, and when even an empty store
    would not leave enough, :class:`~continual.accountant.BudgetExceededError` is raised before
    anything is allocated. The drift detector is river's object (ADWIN keeps its window in
    Rust) and is not charged; nor is it in checkpoints: a loaded estimator starts a fresh one.

    **Transactions.** ``learn_one`` checks its input and the budget before it changes
    anything, so a bad sample (a NaN, a string value, a None label) raises and leaves the
    estimator as it was, without the cost of a backup. ``learn_many`` and ``partial_fit`` are
    the base's transaction (a backup restored on failure).

    Parameters
    ----------
    budget
        Bytes (int), a string such as ``"1 MB"``, a budget per device, or None to measure only.
        The default is finite because a stream is not: without a budget the store keeps
        every sample.
    hidden_sizes
        Widths of the hidden layers, ints >= 1; ``()`` gives a softmax regression.
    optimizer
        ``"adam"``, ``"sgd"``, ``"adamw"``, an optimizer class or a callable ``params ->
        optimizer`` (:func:`~continual.learner.make_optimizer`).
    lr
        Learning rate (for an optimizer given by name or class), finite and > 0.
    batch_size
        New samples per gradient step, an int >= 1.
    replay_batch_size
        Stored samples replayed with each step (None: ``batch_size``; 0: no replay), drawn
        uniformly with replacement (a draw costs the same whatever the store's size).
    refill_every
        Steps between refills of the store. None picks the most steps (at most 16) whose
        buffered rows take at most 1/32 of the budget: 1 for a budget of a few kilobytes, 16
        for a megabyte; new features make rows wider, and then fewer steps.
    policy
        Which samples the store keeps: ``"reservoir"`` (a uniform sample of the stream) or
        ``"class_balanced"`` (equal quotas per class).
    drift_detector
        A river drift detector fed with the per-batch loss, its class (built with its
        defaults; unlike an instance, a class can be saved by :func:`continual.save`), or
        None. It is cloned on the first call.
    drift_lr_boost
        Factor applied to the learning rate after a drift, finite and > 0.
    drift_boost_steps
        Steps the boost lasts, an int >= 0.
    random_state, verbose, device, rollback
        As in :class:`~continual.estimator.BudgetedEstimator`: the seed of the initialisation,
        the replayed draws and the store's choices; progress bars over the rows of a long
        ``learn_many``; where the network trains; how a failed ``partial_fit`` is undone.

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` naming a parameter outside what is described above and its value,
        at the first ``learn_one`` and at every ``learn_many`` / ``partial_fit`` (numpy
        scalars count as numbers), before anything changes.
    ValueError, TypeError
        A sample that is not a dict (or a frame) of finite numbers, a None or NaN label.
    ~continual.accountant.BudgetExceededError
        When the grown model cannot fit ``budget``, before anything is allocated.

    Attributes
    ----------
    features_ : list
        Feature names, in input-column order.
    classes_ : list
        Labels, in head-row order (order of first appearance).
    n_samples_seen_, n_steps_ : int
        Samples received and gradient steps taken.
    refill_every_ : int
        Steps between refills of the store.
    n_drifts_ : int
        Drifts detected.
    drifts_ : list of int
        ``n_samples_seen_`` at each detected drift.
    loss_mean_, loss_count_ : float, int
        Mean and count of the per-batch losses since the last drift (with a detector).
    loss_ : float or None
        Mean loss of the new samples of the last step, measured before it (None before the
        first step).
    model_ : strategies.backbones.MLP
        The network.
    store_ : ExemplarStore
        The replay store.
    accountant_, seed_, n_partial_fits_, losses_
        As in :class:`~continual.estimator.BudgetedEstimator`; ``losses_`` holds the step
        losses of the last ``learn_many``.

    Examples
    --------
    In a river pipeline, evaluated test-then-train on 3,000 samples of the SEA stream:

    >>> from river import datasets, evaluate, metrics, preprocessing
    >>> from strategies import StreamingClassifier
    >>> model = preprocessing.StandardScaler() | StreamingClassifier(budget="20 KB", random_state=0)
    >>> metric = evaluate.progressive_val_score(
    ...     datasets.synth.SEA(seed=1).take(3000), model, metrics.Accuracy())
    >>> metric.get() > 0.9, model.predict_one({0: 9.0, 1: 9.0, 2: 5.0})  # x0 + x1 > 8
    (True, True)
    >>> clf = model["StreamingClassifier"]
    >>> clf.classes_, clf.features_, clf.n_steps_, len(clf.store_)
    ([True, False], [0, 1, 2], 187, 1328)
    >>> print(clf.accountant_.ledger())
    account           device   bytes   share
    model                cpu     776    3.9%
    optimizer            cpu   1,568    7.8%
    buffer               cpu     320    1.6%
    features             cpu      48    0.2%
    classes              cpu      18    0.1%
    replay/exemplars     cpu  17,264   86.3%
    inference                      0    0.0%
    total                     19,994  100.0%
    budget                    20,000

    A new feature is a zero column, so the prediction does not move; a new class is a new
    head row:

    >>> x = {0: 0.5, 1: -0.2, 2: 1.0}
    >>> before = clf.predict_proba_one(x)
    >>> clf.learn_one({**x, "humidity": 3.0}, "storm")
    >>> clf.features_, clf.classes_, clf.model_.head.out_features
    ([0, 1, 2, 'humidity'], [True, False, 'storm'], 3)
    >>> after = clf.predict_proba_one({**x, "humidity": 3.0})
    >>> abs(after[True] / after[False] - before[True] / before[False]) < 1e-6
    True

    References
    ----------
    .. [1] Aljundi, R., Kelchtermans, K. and Tuytelaars, T. (2019). Task-free continual
       learning. CVPR.
    .. [2] Chaudhry, A. et al. (2019). On tiny episodic memories in continual learning.
       arXiv:1902.10486.
    .. [3] Vitter, J. S. (1985). Random sampling with a reservoir. ACM TOMS 11(1).
    .. [4] Bifet, A. and Gavaldà, R. (2007). Learning from time-changing data with adaptive
       windowing. SDM.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "hidden_sizes": [Sizes()],
        # a name, an optimizer class or a callable params -> optimizer (make_optimizer)
        "optimizer": [StrOptions(set(OPTIMIZERS)), callable],
        "lr": [POSITIVE_FLOAT],
        "batch_size": [COUNT],
        "replay_batch_size": [NON_NEGATIVE_INT, None],
        "refill_every": [COUNT, None],
        "policy": [StrOptions(set(_POLICIES))],
        # a class must be a river DriftDetector: _check_detector says so
        "drift_detector": [None, base.DriftDetector, type],
        "drift_lr_boost": [POSITIVE_FLOAT],
        "drift_boost_steps": [NON_NEGATIVE_INT],
    }

    def __init__(
        self,
        budget: int | str | Mapping[str, int | str] | None = "1 MB",
        *,
        hidden_sizes: Sequence[int] = (32,),
        optimizer: OptimizerSpec = "adam",
        lr: float = 1e-2,
        batch_size: int = 16,
        replay_batch_size: int | None = None,
        refill_every: int | None = None,
        policy: str = "reservoir",
        drift_detector: base.DriftDetector | type[base.DriftDetector] | None = None,
        drift_lr_boost: float = 3.0,
        drift_boost_steps: int = 50,
        random_state: int | None = None,
        verbose: int = 0,
        device: str = "cpu",
        rollback: str = "memory",
    ) -> None:
        self.budget = budget
        self.hidden_sizes = hidden_sizes
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.replay_batch_size = replay_batch_size
        self.refill_every = refill_every
        self.policy = policy
        self.drift_detector = drift_detector
        self.drift_lr_boost = drift_lr_boost
        self.drift_boost_steps = drift_boost_steps
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.rollback = rollback

    @classmethod
    def _unit_test_params(cls) -> Iterable[dict[str, Any]]:
        yield {"budget": "64 KB", "hidden_sizes": (8,), "batch_size": 4, "random_state": 42}

    @property
    def _multiclass(self) -> bool:
        return True

    # ------------------------------------------------------------------- river
    def learn_one(self, x: dict[Any, Any], y: Any) -> None:
        """Learn one sample: buffer it, and take a step when the mini-batch is full.

        Raises ``ValueError`` (a NaN or non-numeric value, a None label) or
        :class:`~continual.accountant.BudgetExceededError` (the grown model cannot fit)
        before anything changes.
        """
        _check_x(x, "x")
        y = _check_label(y, "y")
        if not hasattr(self, "accountant_"):
            self.partial_fit([x], [y])
            return
        positions = self.feature_index_.positions
        new = [key for key in x if key not in positions]
        new_class = y not in self.class_index_.positions
        if new or new_class:
            self._grow(_canonical(new), [y] if new_class else [])
        pending = self.pending_
        row = pending.x[pending.n]
        row.fill(0.0)
        for key, value in x.items():
            row[positions[key]] = value
        self._push(y)

    def learn_many(self, X: pd.DataFrame, y: pd.Series) -> None:
        """Learn a mini-batch of rows, as ``learn_one`` row by row would, in one transaction
        (:meth:`partial_fit`)."""
        self.partial_fit(X, y)

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[Any, float]:
        """Probability of each class seen so far (``{}`` before anything is learned).

        Features never learned are ignored (their weight is 0). A value that is not a finite
        number raises ``ValueError``, learned or not."""
        _check_x(x, "x")
        if not hasattr(self, "accountant_"):
            return {}
        vector = np.zeros(len(self.features_), dtype=np.float32)
        positions = self.feature_index_.positions
        for key, value in x.items():
            column = positions.get(key)
            if column is not None:
                vector[column] = value
        return dict(zip(self.classes_, self.inference_.proba_one(vector)))

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities of each row, one column per class (empty before learning)."""
        if not hasattr(self, "accountant_"):
            return pd.DataFrame(index=getattr(X, "index", None))
        frame = _as_frame(X, "X")
        matrix = np.zeros((len(frame), len(self.features_)), dtype=np.float32)
        positions = self.feature_index_.positions
        known = [column for column in frame.columns if column in positions]
        if known:
            values = _frame_values(frame[known], "X")
            matrix[:, [positions[column] for column in known]] = values
        proba = self.inference_.proba(matrix)
        return pd.DataFrame(proba, columns=list(self.classes_), index=frame.index)

    # ----------------------------------------------------------- scikit-learn
    def partial_fit(self, X: Any, y: Any = None, **params: Any) -> StreamingClassifier:
        """Learn the rows of ``X`` (a DataFrame, a 2-D array, or a list of feature dicts) with
        labels ``y``, as one transaction: a failure leaves the estimator as it was."""
        detector = copy.deepcopy(getattr(self, "drift_detector_", None))
        try:
            return super().partial_fit(X, y, **params)
        except BaseException:
            if hasattr(self, "accountant_"):
                self.drift_detector_ = detector  # a rollback rebuilds a fresh one
            raise

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row of ``X``."""
        proba = self.predict_proba_many(_as_frame(X, "X"))
        if proba.empty:
            return np.full(len(proba), None, dtype=object)
        return np.asarray(self.classes_, dtype=object)[proba.to_numpy().argmax(axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``."""
        labels = [_check_label(label, f"y[{i}]") for i, label in enumerate(_labels(y))]
        return float(np.mean([a == b for a, b in zip(self.predict(X), labels)]))

    def scores(self, X: Any, y: Any = None) -> dict[str, float]:
        """``{"accuracy": ...}`` on ``(X, y)``."""
        return {"accuracy": self.score(X, y)}

    # ------------------------------------------------------ BudgetedEstimator
    def _validate_input(self, X: Any, y: Any = None, *, first: bool, **params: Any) -> _Batch:
        if params:
            raise TypeError(f"partial_fit got unexpected keyword arguments {sorted(params)}")
        if first:
            self._check_detector()
        batch = _batch(X, y)
        if not len(batch.labels):
            raise ValueError("X must hold at least one sample, got 0 rows")
        return batch

    def _initialize(self, data: _Batch, **params: Any) -> None:
        self.features_ = _canonical(data.columns)
        self.refill_every_ = self._pick_refill_every(len(self.features_))
        self.classes_ = [data.labels[0]]
        self.n_samples_seen_ = 0
        self.n_steps_ = 0
        self.n_drifts_ = 0
        self.drifts_: list[int] = []
        self.boost_steps_left_ = 0
        self.loss_count_ = 0
        self.loss_mean_ = 0.0
        self.loss_: float | None = None

    def _planned_bytes(self, data: _Batch) -> dict[str, int]:
        """Bytes of each account after the call, from shapes (the base checks them all on
        ``device``; :meth:`_grow` checks each account on its own device again)."""
        features, classes = self._new_keys(data)
        if hasattr(self, "model_") and not features and not classes:
            return {}
        return {name: sum(sizes.values()) for name, sizes in self._plan(features, classes).items()}

    def _build(self) -> None:
        device = self.device_
        self.feature_index_ = _KeyIndex(self.features_)
        self.class_index_ = _KeyIndex(self.classes_)
        with warnings.catch_warnings():  # a first sample without features: an empty layer
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            model = MLP(len(self.features_), len(self.classes_), self._hidden_sizes())
        self.model_ = model.to(device)
        parameters = list(model.parameters())
        self.optimizer_ = make_optimizer(self.optimizer, parameters, lr=float(self.lr))
        self.store_ = ExemplarStore(policy=self.policy, random_state=self.seed_, device="cpu")
        self.pending_ = _Pending(self.batch_size * self.refill_every_, len(self.features_))
        self.rng_ = np.random.default_rng(self.seed_)  # numpy's pickles deterministically
        self.inference_ = _Inference(self.model_)
        self.drift_detector_ = _make_detector(self.drift_detector)
        optimizer = _OptimizerAccount(self.optimizer_, self._planned_optimizer(device))
        for name, component in (
            ("model", self.model_),
            ("optimizer", optimizer),
            ("buffer", self.pending_),
            ("features", self.feature_index_),
            ("classes", self.class_index_),
            ("replay/exemplars", self.store_),
            ("inference", self.inference_),
        ):
            self.accountant_.track(name, component)

    def _learn(self, data: _Batch) -> None:
        features, _ = self._new_keys(data)
        if features:
            self._grow(features, [])
        positions = self.feature_index_.positions
        columns = [positions[name] for name in data.columns]
        rows = zip(data.values, data.labels)
        for values, label in _progress(rows, self.verbose, len(data.labels)):
            if label not in self.class_index_.positions:
                self._grow([], [label])
            pending = self.pending_
            row = pending.x[pending.n]
            row.fill(0.0)
            row[columns] = values
            loss = self._push(label)
            if loss is not None:
                self.losses_.append(loss)

    def _state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_.state_dict(keep_vars=True),
            "optimizer": self.optimizer_.state_dict(),
            "store": self.store_.state_dict(),
            "pending": self.pending_.state_dict(),
            "rng": rng_state(self.rng_),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.model_.load_state_dict(state["model"])
        # torch keeps the given tensors: copy them, so that no other optimizer shares them
        self.optimizer_.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.store_.load_state_dict(state["store"])
        self.pending_.load_state_dict(state["pending"])
        load_rng_state(self.rng_, state["rng"])
        self.inference_.refresh()

    def _learn_experience(self, experience: Any, stream: Sequence[Any]) -> None:
        X, y = experience.train
        self.partial_fit(X, y)

    def _score_payload(self, payload: Any) -> float:
        X, y = payload
        return self.score(X, y)

    def _scores_payload(self, payload: Any) -> dict[str, float]:
        X, y = payload
        return self.scores(X, y)

    # ---------------------------------------------------------------- learning
    def _push(self, label: Any) -> float | None:
        """Count the row just written to the pending buffer; step when a mini-batch is
        complete, and refill the store when the buffer is full. Returns the step's loss, if
        it stepped."""
        pending = self.pending_
        pending.y[pending.n] = self.class_index_.positions[label]
        pending.n += 1
        self.n_samples_seen_ += 1
        if pending.n % self.batch_size:
            return None
        loss = self._step()
        if pending.n == len(pending.y):
            self._refill()
        return loss

    def _step(self) -> float:
        """One gradient step on the last mini-batch of the buffer plus replayed rows."""
        pending = self.pending_
        rows = slice(pending.n - self.batch_size, pending.n)
        x, y = torch.from_numpy(pending.x[rows]), torch.from_numpy(pending.y[rows])
        inputs, targets = self._with_replay(x, y)
        device = self.device_
        losses = nn.functional.cross_entropy(
            self.model_(inputs.to(device)), targets.to(device), reduction="none"
        )
        loss = float(losses[: len(y)].detach().mean())
        losses.mean().backward()
        self.optimizer_.step()
        self.optimizer_.zero_grad(set_to_none=True)  # gradients are not kept between steps
        self.n_steps_ += 1
        self.loss_ = loss
        if device.type != "cpu":
            self.inference_.refresh()  # on the CPU, the numpy views follow the weights
        self._watch_drift(loss)
        return loss

    def _refill(self) -> None:
        """Offer the buffered rows to the store, with the room the budget leaves."""
        pending = self.pending_
        x, y = torch.from_numpy(pending.x), torch.from_numpy(pending.y)
        self.store_.update(x, y, capacity_bytes=self.accountant_.room_for(self.store_))
        pending.n = 0

    def _with_replay(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.batch_size if self.replay_batch_size is None else self.replay_batch_size
        store = self.store_
        if not size or not len(store):
            return x, y
        index = torch.from_numpy(self.rng_.integers(len(store), size=size))
        return torch.cat([x, store.x[index]]), torch.cat([y, store.y[index].long()])

    def _watch_drift(self, loss: float) -> None:
        """End a finished learning-rate boost; feed the detector; adapt on a drift."""
        if self.boost_steps_left_:
            self.boost_steps_left_ -= 1
            if not self.boost_steps_left_:
                self._scale_lr(1 / float(self.drift_lr_boost))
        detector = self.drift_detector_
        if detector is None:
            return
        detector.update(loss)
        rose = loss > self.loss_mean_
        self.loss_count_ += 1
        self.loss_mean_ += (loss - self.loss_mean_) / self.loss_count_
        if not (detector.drift_detected and rose):
            return
        self.loss_count_, self.loss_mean_ = 0, 0.0
        self.n_drifts_ += 1
        self.drifts_.append(self.n_samples_seen_)
        if self.drift_boost_steps and not self.boost_steps_left_:
            self._scale_lr(float(self.drift_lr_boost))
        self.boost_steps_left_ = self.drift_boost_steps
        self._restart_reservoir()

    def _scale_lr(self, factor: float) -> None:
        for group in self.optimizer_.param_groups:
            group["lr"] *= factor

    def _restart_reservoir(self) -> None:
        """Count the stored samples as the only ones seen, so that new ones replace them fast."""
        state = self.store_.state_dict()
        state["n_seen"] = len(self.store_)
        self.store_.load_state_dict(state)

    # ----------------------------------------------------------------- growing
    def _new_keys(self, data: _Batch) -> tuple[list[Any], list[Any]]:
        """Feature names (canonical order) and labels (order of appearance) of ``data`` that
        the model has no column or row for yet."""
        features = getattr(self, "feature_index_", None) or _KeyIndex(list(self.features_))
        classes = getattr(self, "class_index_", None) or _KeyIndex(list(self.classes_))
        new_features = _canonical([n for n in data.columns if n not in features.positions])
        new_classes = list(dict.fromkeys(c for c in data.labels if c not in classes.positions))
        return new_features, new_classes

    def _grow(self, features: list[Any], classes: list[Any]) -> None:
        """Add input columns for ``features`` and head rows for ``classes``.

        The grown model, optimizer state, buffer and maps are checked against the budget
        first, with an empty store. Then, with the total within the budget at every moment:
        a buffer that must hold fewer rows (``refill_every=None`` and wider rows) offers its
        learned rows to the store and shrinks; the store is shrunk to what is left; and only
        then is anything allocated."""
        n_features = len(self.features_) + len(features)
        n_classes = len(self.classes_) + len(classes)
        context = (
            f"{type(self).__name__} growing to {n_features} features and {n_classes} classes "
            f"at sample {self.n_samples_seen_} (budget {self.budget!r})"
        )
        ledger = self.accountant_.check_plan(self._plan(features, classes), context)
        refill_every = self._refill_every_for(n_features)
        if refill_every < self.refill_every_:
            self._shrink_buffer(refill_every)
        self._make_room(ledger.headroom_on("cpu"), n_features)
        pairs = _grow_mlp(self.model_, n_features, n_classes)
        _swap_parameters(self.optimizer_, pairs)
        self.pending_.widen(n_features)
        _widen_store(self.store_, n_features)
        self.feature_index_.add(features)
        self.class_index_.add(classes)
        self.accountant_.component("optimizer").planned = self._planned_optimizer(self.device_)
        self.inference_.refresh()

    def _plan(self, features: list[Any], classes: list[Any]) -> dict[str, dict[str, int]]:
        """Bytes of each account once ``features`` and ``classes`` are added, the store empty."""
        device = device_name(self.device_)
        n_features = len(self.features_) + len(features)
        n_classes = len(self.classes_) + len(classes)
        shapes = _mlp_shapes(n_features, n_classes, self._hidden_sizes())
        model = sum(math.prod(shape) for shape in shapes) * _float_size()
        rows = self.batch_size * self._refill_every_for(n_features)
        known_features = getattr(self, "feature_index_", None) or _KeyIndex(list(self.features_))
        known_classes = getattr(self, "class_index_", None) or _KeyIndex(list(self.classes_))
        return {
            "model": {device: model},
            "optimizer": _optimizer_split(self.optimizer, shapes, self.device_, float(self.lr)),
            "buffer": {"cpu": _Pending.nbytes_for(rows, n_features)},
            "features": {"cpu": known_features.nbytes_with(features)},
            "classes": {"cpu": known_classes.nbytes_with(classes)},
            "replay/exemplars": {"cpu": 0},
            "inference": {"cpu": 0 if device == "cpu" else model},
        }

    def _planned_optimizer(self, device: torch.device) -> dict[str, int]:
        shapes = [tuple(p.shape) for p in self.model_.parameters()]
        return _optimizer_split(self.optimizer, shapes, device, float(self.lr))

    def _make_room(self, headroom: int | float, n_features: int) -> None:
        """Shrink the store so that its rows, widened to ``n_features``, fit ``headroom``."""
        store = self.store_
        if math.isinf(headroom) or not len(store):
            return
        keep = int(headroom) // (_float_size() * n_features + store.y.element_size())
        if keep < len(store):
            store.shrink(keep * store.per_sample_nbytes)

    def _refill_every_for(self, n_features: int) -> int:
        """Steps between refills once rows have ``n_features`` values: never more than now."""
        return min(self.refill_every_, self._pick_refill_every(n_features))

    def _shrink_buffer(self, refill_every: int) -> None:
        """Offer the rows already learned to the store (with the room the budget leaves), then
        keep the incomplete mini-batch in a buffer of ``batch_size * refill_every`` rows."""
        pending = self.pending_
        learned = pending.n - pending.n % self.batch_size
        if learned:
            x, y = torch.from_numpy(pending.x[:learned]), torch.from_numpy(pending.y[:learned])
            self.store_.update(x, y, capacity_bytes=self.accountant_.room_for(self.store_))
        pending.keep(slice(learned, pending.n), self.batch_size * refill_every)
        self.refill_every_ = refill_every

    def _pick_refill_every(self, n_features: int) -> int:
        """``refill_every``, or the most steps (at most 16) whose rows take at most 1/32 of
        the CPU budget (16 without one)."""
        if self.refill_every is not None:
            return self.refill_every
        budget = parse_budgets(self.budget)
        if isinstance(budget, dict):
            budget = budget.get("cpu")
        if budget is None:
            return _MAX_REFILL_EVERY
        step_bytes = _Pending.nbytes_for(self.batch_size, n_features)
        return max(1, min(_MAX_REFILL_EVERY, budget // 32 // step_bytes))

    def _hidden_sizes(self) -> tuple[int, ...]:
        """``hidden_sizes`` as Python ints (numpy integers are accepted)."""
        return tuple(int(size) for size in self.hidden_sizes)

    def _check_detector(self) -> None:
        """What the declared constraints cannot say: a class given as ``drift_detector`` is a
        river drift detector."""
        detector = self.drift_detector
        if isinstance(detector, type) and not issubclass(detector, base.DriftDetector):
            raise InvalidParameterError(
                f"The 'drift_detector' parameter of {type(self).__name__} must be None, a river "
                f"drift detector such as river.drift.ADWIN() or its class. Got {detector!r} "
                "instead."
            )


# ---------------------------------------------------------------------- input
@dataclass(frozen=True)
class _Batch:
    """Checked rows: feature names, a finite (n, len(columns)) array and n labels."""

    columns: list[Any]
    values: np.ndarray
    labels: list[Any]


def _check_x(x: Any, name: str) -> None:
    if not isinstance(x, Mapping):
        raise TypeError(f"{name} must be a dict of feature name to number, got {type(x).__name__}")
    for key, value in x.items():
        try:
            finite = math.isfinite(value)
        except TypeError:
            raise ValueError(
                f"{name}[{key!r}] must be a number, got {value!r} ({type(value).__name__}); "
                "encode categories first, e.g. with river.preprocessing.OneHotEncoder"
            ) from None
        if not finite:
            raise ValueError(f"{name}[{key!r}] must be a finite number, got {value!r}")


def _check_label(y: Any, name: str) -> Any:
    if y is None:
        raise ValueError(f"{name} must be a class label, got None")
    if isinstance(y, np.generic):
        y = y.item()
    if isinstance(y, float) and math.isnan(y):
        raise ValueError(f"{name} must be a class label, got nan")
    try:
        hash(y)
    except TypeError:
        raise TypeError(f"{name} must be a hashable class label, got {type(y).__name__}") from None
    return y


def _labels(y: Any) -> list[Any]:
    if isinstance(y, (pd.Series, np.ndarray)):
        return y.tolist()
    if y is None or isinstance(y, (str, bytes, Mapping)) or not isinstance(y, Iterable):
        raise TypeError(f"y must be a sequence of labels, one per row, got {type(y).__name__}")
    return list(y)


def _batch(X: Any, y: Any) -> _Batch:
    labels = [_check_label(label, f"y[{i}]") for i, label in enumerate(_labels(y))]
    if isinstance(X, (pd.DataFrame, np.ndarray)):
        frame = _as_frame(X, "X")
        columns, values = list(frame.columns), _frame_values(frame, "X")
    else:
        columns, values = _dict_rows(X)
    if len(values) != len(labels):
        raise ValueError(f"y must hold one label per row of X ({len(values)}), got {len(labels)}")
    return _Batch(columns, values, labels)


def _dict_rows(X: Any) -> tuple[list[Any], np.ndarray]:
    """A list of feature dicts as the union of their names and a row per dict (0 where a
    dict lacks a name)."""
    if isinstance(X, Mapping) or not isinstance(X, Iterable):
        raise TypeError(
            f"X must be a pandas DataFrame, a 2-D array or a list of feature dicts, got "
            f"{type(X).__name__}"
        )
    rows = list(X)
    for i, row in enumerate(rows):
        _check_x(row, f"X[{i}]")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    positions = {name: j for j, name in enumerate(columns)}
    values = np.zeros((len(rows), len(columns)))
    for i, row in enumerate(rows):
        for key, value in row.items():
            values[i, positions[key]] = value
    return columns, values


def _as_frame(X: Any, name: str) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        if X.columns.has_duplicates:
            raise ValueError(f"{name} has duplicated columns {X.columns[X.columns.duplicated()]}")
        return X
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return pd.DataFrame(X)
    raise TypeError(f"{name} must be a pandas DataFrame or a 2-D array, got {type(X).__name__}")


def _frame_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    for column, dtype in frame.dtypes.items():
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise ValueError(
                f"{name}[{column!r}] must hold numbers, got dtype {dtype}; encode categories "
                "first, e.g. with river.preprocessing.OneHotEncoder"
            )
    values = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}[{frame.columns[column]!r}] must hold finite numbers, got "
            f"{values[row, column]} in row {frame.index[row]!r}"
        )
    return values


def _canonical(names: Iterable[Any]) -> list[Any]:
    """Feature names in an order that does not depend on dict order."""
    return sorted(names, key=lambda name: (type(name).__name__, repr(name)))


def _progress(rows: Iterable[Any], verbose: int, total: int) -> Iterable[Any]:
    return progress(rows, verbose=verbose, total=total, desc="learn_many") if verbose else rows


def _make_detector(
    detector: base.DriftDetector | type[base.DriftDetector] | None,
) -> base.DriftDetector | None:
    """A fresh detector: a clone of an instance, or a class built with its defaults."""
    if detector is None:
        return None
    return detector() if isinstance(detector, type) else detector.clone()


# --------------------------------------------------------------------- pieces
class _KeyIndex:
    """Ordered keys (feature names or labels) and their positions, charged at their payload."""

    def __init__(self, keys: list[Any]) -> None:
        self.keys = keys  # the estimator's features_ or classes_ list, extended in place
        self.positions = {key: i for i, key in enumerate(keys)}
        self._nbytes = sum(_key_nbytes(key) + _POSITION_BYTES for key in keys)

    def add(self, keys: Iterable[Any]) -> None:
        for key in keys:
            self.positions[key] = len(self.keys)
            self.keys.append(key)
            self._nbytes += _key_nbytes(key) + _POSITION_BYTES

    def nbytes_with(self, keys: Iterable[Any]) -> int:
        return self._nbytes + sum(_key_nbytes(key) + _POSITION_BYTES for key in keys)

    def __nbytes__(self) -> int:
        return self._nbytes


def _key_nbytes(key: Any) -> int:
    if isinstance(key, str):
        return len(key.encode("utf-8"))
    if isinstance(key, bytes):
        return len(key)
    if isinstance(key, bool):
        return 1
    if isinstance(key, (int, float)):
        return 8
    if isinstance(key, tuple):
        return sum(_key_nbytes(part) for part in key)
    return len(repr(key).encode("utf-8"))


class _Pending:
    """Rows not offered to the store yet: ``n`` float32 rows and their int64 head rows."""

    def __init__(self, size: int, n_features: int) -> None:
        self.x = np.zeros((size, n_features), dtype=np.float32)
        self.y = np.zeros(size, dtype=np.int64)
        self.n = 0

    @staticmethod
    def nbytes_for(size: int, n_features: int) -> int:
        return size * (4 * n_features + 8)

    def keep(self, rows: slice, size: int) -> None:
        """Keep only ``rows``, moved to the front of a buffer of ``size`` rows."""
        x, y = self.x[rows], self.y[rows]
        self.x = np.zeros((size, self.x.shape[1]), dtype=np.float32)
        self.y = np.zeros(size, dtype=np.int64)
        self.x[: len(x)], self.y[: len(y)], self.n = x, y, len(y)

    def widen(self, n_features: int) -> None:
        if n_features != self.x.shape[1]:
            wide = np.zeros((len(self.x), n_features), dtype=np.float32)
            wide[:, : self.x.shape[1]] = self.x
            self.x = wide

    def memory_items(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "y": self.y}

    def state_dict(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "n": self.n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.x[...] = state["x"]
        self.y[...] = state["y"]
        self.n = int(state["n"])


class _Inference:
    """The weights ``predict_one`` reads as numpy arrays: views of a CPU model (no bytes of
    their own), a copy of an accelerator's, refreshed after every step."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.refresh()

    def refresh(self) -> None:
        linears = [m for m in self.model.modules() if isinstance(m, nn.Linear)]
        self.layers = [(_numpy(linear.weight), _numpy(linear.bias)) for linear in linears]

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Softmax of the network on a matrix of rows, in float64."""
        h = x
        for weight, bias in self.layers[:-1]:
            h = np.maximum(h @ weight.T + bias, 0.0)
        weight, bias = self.layers[-1]
        logits = (h @ weight.T + bias).astype(np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=-1, keepdims=True)

    def proba_one(self, x: np.ndarray) -> list[float]:
        """Softmax of the network on one row, as Python floats (a few classes are faster
        in Python than in numpy, whose every call costs a microsecond)."""
        h = x
        for weight, bias in self.layers[:-1]:
            h = weight @ h
            h += bias
            np.maximum(h, 0.0, out=h)
        weight, bias = self.layers[-1]
        logits = (weight @ h + bias).tolist()
        top = max(logits)
        exp = [math.exp(logit - top) for logit in logits]
        total = sum(exp)
        return [value / total for value in exp]

    def memory_items(self) -> list[np.ndarray]:
        return [array for layer in self.layers for array in layer]

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model}  # views would be pickled as copies: rebuild them

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model = state["model"]
        self.refresh()


def _numpy(parameter: torch.Tensor) -> np.ndarray:
    tensor = parameter.detach()
    return tensor.numpy() if tensor.device.type == "cpu" else tensor.cpu().numpy()


class _OptimizerAccount:
    """The optimizer's state, and the bytes it will hold once it steps, reserved before."""

    def __init__(self, optimizer: torch.optim.Optimizer, planned: dict[str, int]) -> None:
        self.optimizer = optimizer
        self.planned = planned

    def memory_items(self) -> list[Any]:
        held = collect_blocks(self.optimizer).size_by_device()
        reserved = [
            Reservation(size - held.get(device, 0), device)
            for device, size in self.planned.items()
            if size > held.get(device, 0)
        ]
        return [self.optimizer, *reserved]


# -------------------------------------------------------------------- growing
def _float_size() -> int:
    return torch.empty((), dtype=torch.get_default_dtype()).element_size()


def _mlp_shapes(n_features: int, n_classes: int, hidden: tuple[int, ...]) -> list[tuple]:
    widths = [n_features, *hidden, n_classes]
    shapes: list[tuple] = []
    for n_in, n_out in itertools.pairwise(widths):
        shapes += [(n_out, n_in), (n_out,)]
    return shapes


def _optimizer_split(
    spec: OptimizerSpec, shapes: list[tuple], device: torch.device, lr: float
) -> dict[str, int]:
    meta = [torch.empty(shape, device="meta") for shape in shapes]
    return optimizer_state_split(spec, meta, device, lr=lr)


def _grow_mlp(
    model: nn.Module, n_features: int, n_classes: int
) -> list[tuple[nn.Parameter, nn.Parameter]]:
    """Zero-pad the first layer to ``n_features`` inputs and the head to ``n_classes``
    outputs; return the (old, new) parameter pairs."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    first, head = linears[0], linears[-1]
    if first is head:
        return _grow_linear(first, n_features, n_classes)
    return _grow_linear(first, n_features, first.out_features) + _grow_linear(
        head, head.in_features, n_classes
    )


def _grow_linear(
    linear: nn.Linear, n_in: int, n_out: int
) -> list[tuple[nn.Parameter, nn.Parameter]]:
    if (n_in, n_out) == (linear.in_features, linear.out_features):
        return []
    old_weight, old_bias = linear.weight, linear.bias
    linear.weight = nn.Parameter(_padded(old_weight.detach(), (n_out, n_in)))
    linear.bias = nn.Parameter(_padded(old_bias.detach(), (n_out,)))
    linear.in_features, linear.out_features = n_in, n_out
    return [(old_weight, linear.weight), (old_bias, linear.bias)]


def _padded(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    out = tensor.new_zeros(shape)
    out[tuple(slice(0, size) for size in tensor.shape)] = tensor
    return out


def _swap_parameters(
    optimizer: torch.optim.Optimizer, pairs: list[tuple[nn.Parameter, nn.Parameter]]
) -> None:
    """Put the grown parameters in the optimizer; zero-pad their state (moments, momentum)."""
    replaced = {id(old): new for old, new in pairs}
    for group in optimizer.param_groups:
        group["params"] = [replaced.get(id(p), p) for p in group["params"]]
    for old, new in pairs:
        state = optimizer.state.pop(old, None)
        if state is not None:
            optimizer.state[new] = {
                key: _padded(value, tuple(new.shape))
                if isinstance(value, torch.Tensor) and value.shape == old.shape
                else value
                for key, value in state.items()
            }


def _widen_store(store: ExemplarStore, n_features: int) -> None:
    """Zero-pad the stored rows to ``n_features`` columns (a missing feature reads 0)."""
    if not len(store) or store.x.shape[1] == n_features:
        return
    state = store.state_dict()
    state["x"] = _padded(state["x"], (len(store), n_features))
    store.load_state_dict(state)
