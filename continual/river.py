"""river estimators under the byte budget: :class:`Budgeted`, and what river streams tell us.

:class:`Budgeted` wraps any river classifier or regressor. After every ``check_every`` samples
learned it charges the whole model, measured as a :class:`~continual.measure.PythonGraph`, to
its own :class:`~continual.MemoryAccountant` (``accountant_``). When the next growth step
would pass the budget it stops the model's growth where river lets it, and when nothing more
can be stopped it raises :class:`~continual.BudgetExceededError`:

- **Hoeffding trees**, alone or inside an ensemble (``HoeffdingTreeClassifier``,
  ``HoeffdingTreeRegressor``, the extremely fast tree, the trees of ``forest.ARFClassifier``
  and ``ARFRegressor``, bagging of trees): no more splits, by river's own growth flag (the
  one its memory management sets with ``stop_mem_management=True``); the leaves keep learning
  their statistics and predicting. When the model passes the budget all the same (an active
  leaf's split statistics grow with every new value of a nominal feature; the adaptive trees
  do not read the flag and keep splitting), its least promising active leaves are
  deactivated, as river's memory management does (Kirkby, 2007), until it fits: an inactive
  leaf keeps its class counts or target statistics and predicts from them (a naive Bayes
  leaf falls back to the majority class), but drops its split statistics for good.
- **Nearest neighbours on a sliding window** (``neighbors.KNNClassifier`` and
  ``KNNRegressor`` with ``engine=neighbors.LazySearch(...)``): the window stops growing; its
  length becomes its ``window_size``, so each new sample replaces the oldest one.
- **Everything else** (linear models, naive Bayes, ``KNN`` with the default ``SWINN`` engine,
  whose graph cannot shrink, statistics and preprocessors): river offers no lever, so the
  budget is a hard limit and ``learn_one`` raises :class:`~continual.BudgetExceededError`,
  with the ledger, once the model has passed it. The sample that made it pass has been
  learned: a river ``learn_one`` is not rolled back.

"Would pass" means: the bytes measured now plus a reserve for one more growth step exceed the
budget. For trees the reserve is what the active leaves still take as they fill their
statistics up to the size of the largest one, plus one such leaf for each tree with active
leaves (what a binary split adds once its two new leaves are full); for windows, one item for
each window that is not full yet. The trees are reached through river's
internals (``_growth_allowed``, ``_root``, the leaf counters), checked against river 0.26.

:func:`check_finite_stream` refuses an endless river generator without ``take=``, and
:func:`drift_points` reads where a ``ConceptDriftStream`` drifts.

References
----------
.. [1] Kirkby, R. B. (2007). Improving Hoeffding Trees. PhD thesis, University of Waikato.
"""

from __future__ import annotations

import collections
import math
import numbers
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from river import base

from continual.accountant import BudgetExceededError, Ledger, MemoryAccountant, Snapshot
from continual.measure import PythonGraph, nbytes, python_objects

__all__ = [
    "Budgeted",
    "BudgetedClassifier",
    "BudgetedRegressor",
    "check_finite_stream",
    "drift_points",
]


def check_finite_stream(dataset: Any, take: int | None, argument: str = "take") -> None:
    """Raise ``ValueError`` when ``dataset`` is endless and no ``take`` bounds it.

    A river synthetic generator (``synth.SEA``, ``synth.ConceptDriftStream``, ...) has
    ``n_samples`` None and yields forever; an iterable without ``n_samples`` is trusted.

    Parameters
    ----------
    dataset
        A river dataset or any iterable of samples.
    take
        How many samples will be read, or None for all of them.
    argument
        The name of the caller's argument that bounds the stream, for the message.

    Examples
    --------
    >>> from river.datasets import synth
    >>> check_finite_stream(synth.SEA(seed=1), take=100)
    >>> check_finite_stream(synth.SEA(seed=1), take=None)
    Traceback (most recent call last):
    ...
    ValueError: dataset SEA is an endless stream (its n_samples is None): pass take=<number ...
    """
    if take is None and hasattr(dataset, "n_samples") and dataset.n_samples is None:
        raise ValueError(
            f"dataset {type(dataset).__name__} is an endless stream (its n_samples is None): "
            f"pass {argument}=<number of samples> to read a finite part of it, got "
            f"{argument}=None"
        )


def drift_points(dataset: Any) -> list[tuple[int, int]]:
    """Where a river ``ConceptDriftStream`` drifts: ``(position, width)`` per drift, in samples.

    ``position`` is the centre of the transition (sample index counted from 1, as river
    does) and ``width`` its length. Drift streams nested in ``stream`` keep their positions;
    a drift stream nested in ``drift_stream`` only starts to be read at the outer drift, so
    its positions are shifted by the outer position (exact for an abrupt outer drift, the
    centre of the shift otherwise). Any other dataset has no known drift.

    Parameters
    ----------
    dataset
        A river dataset.

    Returns
    -------
    list of (int, int)
        The drifts sorted by position.

    Examples
    --------
    >>> from river.datasets import synth
    >>> stream = synth.ConceptDriftStream(
    ...     stream=synth.SEA(seed=1, variant=0),
    ...     drift_stream=synth.ConceptDriftStream(
    ...         stream=synth.SEA(seed=1, variant=1), drift_stream=synth.SEA(seed=1, variant=2),
    ...         position=3000, width=10, seed=1),
    ...     position=2000, width=500, seed=1)
    >>> drift_points(stream)
    [(2000, 500), (5000, 10)]
    >>> drift_points(synth.SEA(seed=1))
    []
    """
    return sorted(_drifts(dataset, 0))


def _drifts(dataset: Any, offset: int) -> list[tuple[int, int]]:
    kind = type(dataset)
    if kind.__name__ != "ConceptDriftStream" or not kind.__module__.startswith("river"):
        return []
    position = int(dataset.position)
    return [
        (offset + position, int(dataset.width)),
        *_drifts(dataset.stream, offset),
        *_drifts(dataset.drift_stream, offset + position),
    ]


def _loaded(module: str, name: str) -> type | None:
    """``module.name`` if river has imported that module, else None: a model cannot hold an
    instance of a class that was never imported, and importing river's trees costs seconds."""
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


class _LeafCap:
    """Hoeffding trees: no more splits near the budget, inactive leaves over it."""

    def __init__(self, leaves: list[Any], trees: list[Any]) -> None:
        self.leaves = leaves
        self.trees = trees

    @classmethod
    def find(cls, objects: Sequence[Any]) -> _LeafCap | None:
        leaf_class = _loaded("river.tree.nodes.leaf", "HTLeaf")
        tree_class = _loaded("river.tree.hoeffding_tree", "HoeffdingTree")
        if leaf_class is None or tree_class is None:
            return None
        leaves = [obj for obj in objects if isinstance(obj, leaf_class)]
        trees = [obj for obj in objects if isinstance(obj, tree_class)]
        return cls(leaves, trees) if leaves else None

    def _active(self) -> list[Any]:
        return [leaf for leaf in self.leaves if leaf.is_active()]

    def reserve(self) -> int:
        """What the active leaves still take as they fill their statistics up to the largest
        one, plus one such leaf for each tree with active leaves: what a binary split adds
        once its two new leaves are full."""
        sizes = [nbytes(PythonGraph(leaf)) for leaf in self._active()]
        if not sizes:
            return 0
        largest = max(sizes)
        growing = sum(1 for tree in self.trees if tree.n_active_leaves > 0) or 1
        return sum(largest - size for size in sizes) + largest * growing

    def freeze(self) -> None:
        """Allow no more splits: river's own flag, which its memory management sets when
        ``stop_mem_management=True`` (the adaptive trees do not read it)."""
        for tree in self.trees:
            tree._growth_allowed = False

    def release(self, excess: int) -> int:
        """Deactivate leaves, least promising first, until about ``excess`` bytes of split
        statistics are freed; return the bytes freed."""
        freed = 0
        for leaf in sorted(self._active(), key=lambda leaf: leaf.calculate_promise()):
            if freed >= excess:
                break
            freed += nbytes(PythonGraph(leaf.splitters))
            leaf.deactivate()
        self._recount()
        return freed

    def _recount(self) -> None:
        """Keep each tree's active and inactive leaf counts true (its ``summary`` shows
        them)."""
        for tree in self.trees:
            if tree._root is None:
                continue
            leaves = list(tree._root.iter_leaves())
            active = sum(1 for leaf in leaves if leaf.is_active())
            tree._n_active_leaves, tree._n_inactive_leaves = active, len(leaves) - active


class _WindowCap:
    """Nearest neighbours: windows of ``neighbors.LazySearch`` engines stop growing."""

    def __init__(self, engines: list[Any]) -> None:
        self.engines = engines

    @classmethod
    def find(cls, objects: Sequence[Any]) -> _WindowCap | None:
        engine_class = _loaded("river.neighbors.lazy", "LazySearch")
        if engine_class is None:
            return None
        engines = [obj for obj in objects if isinstance(obj, engine_class) and obj.window]
        return cls(engines) if engines else None

    @staticmethod
    def _item_bytes(engine: Any) -> float:
        return nbytes(PythonGraph(list(engine.window))) / len(engine.window)

    def _growing(self) -> list[Any]:
        return [e for e in self.engines if len(e.window) < (e.window.maxlen or math.inf)]

    def reserve(self) -> int:
        """One item for each window that is not full yet."""
        return math.ceil(sum(self._item_bytes(engine) for engine in self._growing()))

    def freeze(self) -> None:
        """Make each window's length its size: a new item then replaces the oldest."""
        for engine in self._growing():
            self._resize(engine, len(engine.window))

    def release(self, excess: int) -> int:
        """Shrink the largest windows by enough items to free about ``excess`` bytes (one
        item stays); return the bytes freed."""
        freed = 0
        for engine in sorted(self.engines, key=lambda e: len(e.window), reverse=True):
            item = self._item_bytes(engine)
            keep = max(1, len(engine.window) - math.ceil(max(excess - freed, 0) / item))
            freed += int((len(engine.window) - keep) * item)
            self._resize(engine, keep)
        return freed

    @staticmethod
    def _resize(engine: Any, size: int) -> None:
        engine.window = collections.deque(list(engine.window)[-size:], maxlen=size)
        engine.window_size = size


_CAPS = (_LeafCap, _WindowCap)


class Budgeted(base.Wrapper, base.Estimator):
    """A river estimator whose memory is charged to a byte budget after it learns.

    ``Budgeted(model, budget)`` returns a :class:`BudgetedClassifier` for a river classifier
    and a :class:`BudgetedRegressor` for a regressor (a pipeline counts as its last step),
    so river's tools (``evaluate.progressive_val_score``, ``compose.Pipeline``, metrics)
    treat it as the model it wraps. ``predict_one`` and ``predict_proba_one`` are the
    model's own.

    After every ``check_every`` samples learned, the model, measured as a
    :class:`~continual.measure.PythonGraph` (every Python object it holds, once), is charged
    to ``accountant_`` under the account ``"model"`` and a snapshot is recorded at the number
    of samples learned. How growth is stopped for each model family, and when
    :class:`~continual.BudgetExceededError` is raised instead, is in the
    :mod:`continual.river` docstring. The model is changed in place, and the constructor
    already raises when the untrained model does not fit.

    Parameters
    ----------
    model
        A river classifier or regressor (or a pipeline ending in one).
    budget
        Bytes as an int or a string such as ``"200 kB"`` or ``"1 MiB"``, or None to measure
        only.
    check_every
        Measure after every ``check_every`` samples learned. Each measure walks the whole
        model (about 3 ms for a tree of 150 kB), so a large model learns much faster with a
        period of 10 or 100; between measures the model may pass the budget by what it grows
        in that many samples.

    Attributes
    ----------
    accountant_ : MemoryAccountant
        The model's account, its budget and the snapshots of the ledger.
    n_learned_ : int
        Samples learned so far.

    Examples
    --------
    >>> from river import evaluate, metrics, tree
    >>> from river.datasets import synth
    >>> from continual.river import Budgeted
    >>> model = Budgeted(tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3),
    ...                  budget="60 kB", check_every=10)
    >>> type(model).__name__
    'BudgetedClassifier'
    >>> evaluate.progressive_val_score(synth.SEA(seed=1).take(3000), model, metrics.Accuracy())
    Accuracy: 93.33%
    >>> model.model.n_leaves, model.accountant_.total() <= 60_000  # 7 leaves without a budget
    (2, True)
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Budgeted:
        if cls is Budgeted:
            cls = _kind(args[0] if args else kwargs.get("model"))
        return super().__new__(cls)

    def __init__(self, model: base.Estimator, budget: int | str | None, *, check_every: int = 1):
        self.model = model
        self.budget = budget
        self.check_every = check_every
        self._reset()

    def _reset(self) -> None:
        expected = BudgetedClassifier if isinstance(self, BudgetedClassifier) else BudgetedRegressor
        if _kind(self.model) is not expected:
            raise TypeError(
                f"model must be a river {expected._KIND}, got {type(self.model).__name__}; "
                "use Budgeted(model, budget) to pick the right wrapper"
            )
        every = self.check_every
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"check_every must be a positive int, got {every!r}")
        self.accountant_ = MemoryAccountant(self.budget)
        self.accountant_.track("model", PythonGraph(self.model))
        self.n_learned_ = 0
        self._reserve = 0  # bytes the next growth step may take, as last looked at
        self._looked_at: int | None = None  # the total when the model was last looked at
        self._frozen = False  # whether growth was stopped at the last look
        self._enforce()

    @property
    def _wrapped_model(self) -> base.Estimator:
        return self.model

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        """Learn one sample, then charge the model (every ``check_every`` samples)."""
        self.model.learn_one(x, y, **kwargs)
        self._learned(1)

    def learn_many(self, X: Any, y: Any, **kwargs: Any) -> None:
        """Learn a mini-batch (models with ``learn_many`` only), then charge the model."""
        _require(self.model, "learn_many")
        self.model.learn_many(X, y, **kwargs)
        self._learned(len(X))

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        """The model's ``predict_one``."""
        return self.model.predict_one(x, **kwargs)

    def predict_many(self, X: Any, **kwargs: Any) -> Any:
        """The model's ``predict_many`` (models with ``learn_many`` only)."""
        _require(self.model, "predict_many")
        return self.model.predict_many(X, **kwargs)

    def _learned(self, n: int) -> None:
        before = self.n_learned_
        self.n_learned_ += n
        if self.n_learned_ // self.check_every > before // self.check_every:
            self._enforce()

    def _enforce(self) -> Ledger:
        """Measure; stop growth if the next step would pass the budget, free memory if it
        is passed; record the ledger and check it."""
        ledger = self.accountant_.ledger()
        if ledger.budget is not None and self._needs_look(ledger):
            ledger = self._cap(ledger)
        self.accountant_.history.append(Snapshot(self.n_learned_, ledger))
        self.accountant_.n_snapshots += 1
        if ledger.headroom < 0:
            context = f"{type(self.model).__name__} after {self.n_learned_} samples"
            if self._frozen:
                context += " with its growth stopped"
            raise BudgetExceededError(ledger, context)
        return ledger

    def _needs_look(self, ledger: Ledger) -> bool:
        """Whether to look for the model's caps: when it is over budget, when the next
        growth step would pass the budget and growth is not yet stopped, or when the model
        changed by about half a growth step (or a twentieth of its size) since the last look
        (a split, a new tree)."""
        if ledger.headroom < 0 or (self._reserve > ledger.headroom and not self._frozen):
            return True
        if self._looked_at is None:
            return True
        change = abs(ledger.total - self._looked_at)
        return change > max(self._reserve, ledger.total / 10) / 2

    def _cap(self, ledger: Ledger) -> Ledger:
        """Find the model's caps; freeze them if the next growth step would pass the budget,
        release memory if the budget is passed; return the ledger after."""
        objects = list(python_objects(self.model))
        caps = [cap for kind in _CAPS if (cap := kind.find(objects)) is not None]
        del objects
        self._reserve = sum(cap.reserve() for cap in caps)
        self._looked_at = ledger.total
        self._frozen = bool(caps) and self._reserve > ledger.headroom
        if self._frozen:
            for cap in caps:
                cap.freeze()
        if ledger.headroom < 0 and caps:
            excess = -int(ledger.headroom)
            for cap in caps:
                excess -= cap.release(excess)
            ledger = self.accountant_.ledger()
            self._looked_at = None  # the model changed: look again next time
        return ledger


class BudgetedClassifier(Budgeted, base.Classifier):
    """A river classifier under a byte budget; see :class:`Budgeted`.

    Parameters
    ----------
    model
        A river classifier (or a pipeline ending in one).
    budget
        Bytes as an int or a string, or None to measure only.
    check_every
        Measure after every ``check_every`` samples learned.

    Examples
    --------
    >>> from river import neighbors
    >>> from river.datasets import synth
    >>> from continual.river import BudgetedClassifier
    >>> knn = neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=1000))
    >>> model = BudgetedClassifier(knn, budget="20 kB")
    >>> for x, y in synth.SEA(seed=1).take(500):
    ...     model.learn_one(x, y)
    >>> len(model.model._nn.window) < 500, model.accountant_.total() <= 20_000
    (True, True)
    >>> model.predict_one({0: 1.0, 1: 9.0, 2: 5.0})
    True
    """

    _KIND = "classifier"

    def __init__(self, model: base.Classifier, budget: int | str | None, *, check_every: int = 1):
        super().__init__(model, budget, check_every=check_every)

    @classmethod
    def _unit_test_params(cls) -> Iterable[dict[str, Any]]:
        from river import tree

        yield {"model": tree.HoeffdingTreeClassifier(), "budget": "1 MB", "check_every": 50}

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict:
        """The model's ``predict_proba_one``."""
        return self.model.predict_proba_one(x, **kwargs)

    def predict_proba_many(self, X: Any, **kwargs: Any) -> Any:
        """The model's ``predict_proba_many`` (models with ``learn_many`` only)."""
        _require(self.model, "predict_proba_many")
        return self.model.predict_proba_many(X, **kwargs)


class BudgetedRegressor(Budgeted, base.Regressor):
    """A river regressor under a byte budget; see :class:`Budgeted`.

    Parameters
    ----------
    model
        A river regressor (or a pipeline ending in one).
    budget
        Bytes as an int or a string, or None to measure only.
    check_every
        Measure after every ``check_every`` samples learned.

    Examples
    --------
    >>> from river import linear_model
    >>> from continual import BudgetExceededError
    >>> from continual.river import Budgeted
    >>> model = Budgeted(linear_model.LinearRegression(), budget=3_000)
    >>> try:
    ...     for i in range(100):
    ...         model.learn_one({f"word {i}": 1.0}, 1.0)  # one weight per new feature
    ... except BudgetExceededError as error:
    ...     print(str(error).splitlines()[0])
    LinearRegression after ... samples: memory budget exceeded by ... bytes (... kB used of 3.00 kB)
    """

    _KIND = "regressor"

    def __init__(self, model: base.Regressor, budget: int | str | None, *, check_every: int = 1):
        super().__init__(model, budget, check_every=check_every)

    @classmethod
    def _unit_test_params(cls) -> Iterable[dict[str, Any]]:
        from river import tree

        yield {"model": tree.HoeffdingTreeRegressor(), "budget": "1 MB", "check_every": 50}


def _kind(model: Any) -> type[Budgeted]:
    if isinstance(model, base.Classifier):
        return BudgetedClassifier
    if isinstance(model, base.Regressor):
        return BudgetedRegressor
    raise TypeError(
        f"model must be a river classifier or regressor (or a pipeline ending in one), got "
        f"{model!r} of type {type(model).__name__}"
    )


def _require(model: Any, method: str) -> None:
    if not hasattr(model, method):
        raise NotImplementedError(
            f"{type(model).__name__} has no {method}; learn and predict one sample at a time"
        )
