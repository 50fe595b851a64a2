"""BudgetedEstimator: the one scikit-learn base of every estimator of the library.

A domain's estimator says only what differs: how to read its input, how to build its model
from the first data, how to learn one experience, how to score, and what its state is. The
base does the rest, the same way for every domain:

- the shared parameters ``budget``, ``random_state``, ``verbose``, ``device`` and
  ``rollback``, checked at ``fit`` / ``partial_fit`` as scikit-learn does;
- seeding: an int ``random_state`` gives identical results; None draws a fresh seed on the
  first call and keeps it as ``seed_``; the global torch and numpy generators are neither
  read nor changed;
- the transaction: a ``partial_fit`` validates its input before it changes anything, and a
  call that fails (bad input, a budget that cannot be met) leaves the estimator as it was,
  from a backup of only what the call can change (:mod:`continual.rollback`);
- accounting: ``accountant_`` charges everything the estimator keeps; the backup's bytes are
  reported as transient, in the ledger's peak;
- the state for checkpoints (:func:`continual.save`, :func:`continual.load`) and the
  evaluation protocol (:meth:`BudgetedEstimator.evaluate`).
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator

from continual.accountant import MemoryAccountant
from continual.budget import parse_budgets
from continual.devices import device_name, resolve_device
from continual.evaluation import ScoreMatrix
from continual.protocol import evaluate_stream
from continual.rollback import ROLLBACK_MODES, Backup
from continual.validation import check_params, merged_constraints

__all__ = ["BudgetedEstimator", "draw_seed"]

_FACT_TYPES = (type(None), bool, int, float, str, np.ndarray, np.generic)


def draw_seed(random_state: Any) -> int:
    """An int seed: ``random_state`` itself when it is an int, else one drawn from it.

    ``None`` draws from fresh operating-system entropy, never from numpy's global generator.

    Examples
    --------
    >>> import numpy as np
    >>> from continual.estimator import draw_seed
    >>> draw_seed(7), draw_seed(np.random.default_rng(0)) == draw_seed(np.random.default_rng(0))
    (7, True)
    >>> state = np.random.get_state()[1].copy()
    >>> 0 <= draw_seed(None) < 2**31 - 1, bool((np.random.get_state()[1] == state).all())
    (True, True)
    """
    if isinstance(random_state, (numbers.Integral)) and not isinstance(random_state, bool):
        return int(random_state)
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    raise ValueError(
        f"random_state must be None, an int or a numpy Generator/RandomState, got {random_state!r}"
    )


class BudgetedEstimator(BaseEstimator, ABC):
    """Base class of every budgeted estimator: one ``partial_fit`` call is one experience.

    Every subclass takes ``budget``, ``random_state=None``, ``verbose=0``, ``device="cpu"``
    and ``rollback="memory"`` as keyword parameters, stores every parameter unchanged in
    ``__init__``, and implements:

    - :meth:`_validate_input` (read and check the input; change nothing);
    - :meth:`_initialize` (optional: facts read from the first data, such as the classes);
    - :meth:`_planned_bytes` (optional: bytes each account will hold after the call, from
      shapes, so that a budget that cannot be met fails before anything is allocated);
    - :meth:`_build` (build the model and components from the facts and ``seed_``, and track
      them in ``accountant_``);
    - :meth:`_learn` (learn one experience);
    - :meth:`_state_dict` and :meth:`_load_state_dict` (the components' state);
    - ``score`` and :meth:`scores`.

    Fitted attributes that are plain data (numbers, strings, arrays) are *facts*: the base
    saves and restores them itself. Everything else a subclass keeps must be rebuilt by
    :meth:`_build` and restored by :meth:`_load_state_dict`.

    The parameters that shape what is built (the model's sizes, the strategy) are read on the
    first call: change them with ``set_params`` and then ``fit`` again. ``budget`` applies
    from the next call: a smaller one that what is held cannot meet raises
    :class:`~continual.accountant.BudgetExceededError` and leaves the estimator, and its
    previous budget, as they were.

    Parameters
    ----------
    budget
        Bytes as an int or a string such as ``"200 KB"``; a budget per device such as
        ``{"cuda:0": "8 GB", "cpu": "32 GB"}``; None measures without a limit.
    random_state
        None (a fresh seed, kept as ``seed_``), an int, or a numpy generator to draw one from.
    verbose
        0 silences progress bars; 1 shows them (terminal and Jupyter).
    device
        Where the model, its optimizer state and the working tensors live: ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (the first accelerator, else the
        CPU). A device this machine does not have is a ``ValueError`` on the first call.
    rollback
        How a failed ``partial_fit`` is undone: ``"memory"`` (a CPU copy of what the call can
        change), ``"disk"`` (the same copy in a temporary file) or ``"off"`` (no backup: a
        failure after validation may leave the estimator half-updated).

    Attributes
    ----------
    accountant_ : MemoryAccountant
        Every stored byte, against ``budget``: ``print(est.accountant_.ledger())``.
    seed_ : int
        The seed in use.
    n_partial_fits_ : int
        Successful ``partial_fit`` calls since the last ``fit``.
    losses_ : list of float
        The mean training loss of each epoch (or update) of the last call, for the
        training-loss curve; subclasses fill it in :meth:`_learn`.

    Examples
    --------
    A running mean that stores one float64 and learns one array per call:

    >>> import numpy as np, torch
    >>> from continual import BudgetedEstimator
    >>> class RunningMean(BudgetedEstimator):
    ...     def __init__(self, budget=None, *, random_state=None, verbose=0, device="cpu",
    ...                  rollback="memory"):
    ...         self.budget, self.random_state, self.verbose = budget, random_state, verbose
    ...         self.device, self.rollback = device, rollback
    ...     def _validate_input(self, X, y=None, *, first, **params):
    ...         X = np.asarray(X, dtype=float)
    ...         if not np.isfinite(X).all():
    ...             raise ValueError("X must be finite")
    ...         return X
    ...     def _build(self):
    ...         self.total_ = self.accountant_.track("total", torch.zeros((), dtype=torch.float64))
    ...         self.count_ = 0
    ...     def _learn(self, X):
    ...         self.total_ += X.sum()
    ...         self.count_ += X.size
    ...     def _state_dict(self):
    ...         return {"total": self.total_}
    ...     def _load_state_dict(self, state):
    ...         self.total_.copy_(state["total"])
    ...     def score(self, X, y=None):
    ...         return float(self.total_) / self.count_
    >>> est = RunningMean(budget=8).fit([1.0, 2.0]).partial_fit([6.0])
    >>> est.score(None), est.n_partial_fits_, est.accountant_.total()
    (3.0, 2, 8)
    >>> try:
    ...     est.partial_fit([np.nan])
    ... except ValueError as error:
    ...     print(error)
    X must be finite
    >>> est.score(None), est.n_partial_fits_
    (3.0, 2)
    """

    #: Constraints of the subclass's own parameters (see :mod:`continual.validation`),
    #: merged with those of its bases and checked at every ``fit`` / ``partial_fit``.
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        # the shared parameters have their own parsers, run by _check_shared_params
        **dict.fromkeys(
            ("budget", "random_state", "verbose", "device", "rollback"), "no_validation"
        )
    }

    # ------------------------------------------------------------ to implement
    @abstractmethod
    def _validate_input(self, X: Any, y: Any = None, *, first: bool, **params: Any) -> Any:
        """Read and check one experience's input; return it as the model wants it.

        Must change nothing but what ``sklearn.utils.validation.validate_data`` records on
        the first call (``n_features_in_``). ``first`` is True on the first call after
        ``fit`` or construction.
        """

    def _initialize(self, data: Any, **params: Any) -> None:
        """Record the facts the first data fixes (classes, sizes), before :meth:`_build`."""

    def _planned_bytes(self, data: Any) -> Mapping[str, int]:
        """Bytes per account this call will hold, computed from shapes before allocating.

        The base raises :class:`~continual.accountant.BudgetExceededError` when they do not
        fit, before :meth:`_build` (first call) or :meth:`_learn`. Accounts not named keep
        their current bytes.
        """
        return {}

    @abstractmethod
    def _build(self) -> None:
        """Build every component from the facts and ``seed_``; track them in ``accountant_``.

        Called on the first call and whenever a state is restored (rollback, checkpoint).
        """

    @abstractmethod
    def _learn(self, data: Any) -> None:
        """Learn one experience (the output of :meth:`_validate_input`)."""

    def _state_dict(self) -> dict[str, Any]:
        """The components' state (see :mod:`continual.state`); tensors by reference."""
        return {}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_state_dict` into the components :meth:`_build` made."""

    def scores(self, X: Any, y: Any = None) -> dict[str, float]:
        """Every score of this domain on ``X`` (by default ``{"score": self.score(X, y)}``)."""
        return {"score": self.score(X, y)}

    # ----------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, **params: Any) -> BudgetedEstimator:
        """Forget everything learned, then learn ``X`` as one experience.

        A failure leaves the estimator as it was before the call.
        """
        fitted = self._fitted_attributes()
        for name in fitted:
            delattr(self, name)
        try:
            self.partial_fit(X, y, **params)
        except BaseException:
            self._forget()
            self.__dict__.update(fitted)
            raise
        return self

    def partial_fit(self, X: Any, y: Any = None, **params: Any) -> BudgetedEstimator:
        """Learn one experience; a failure leaves the estimator as it was before the call."""
        first = not hasattr(self, "accountant_")
        self._check_shared_params()
        try:
            data = self._validate_input(X, y, first=first, **params)
        except BaseException:
            if first:
                self._forget()
            raise
        if first:
            with self._transaction(first):
                self.seed_ = draw_seed(self.random_state)
                self.n_partial_fits_ = 0
                self.accountant_ = MemoryAccountant(self.budget)
                self._initialize(data, **params)
                self._check_plan(data, "before building the model")
                with self.seeded():
                    self._build()
                self._learn_next(data)
            return self
        with self._budget_applied():
            # before the backup: a plan that cannot fit costs nothing
            self._check_plan(data, f"before experience {self.n_partial_fits_}")
            with self._transaction(first):
                self._learn_next(data)
        return self

    def _learn_next(self, data: Any) -> None:
        self.losses_ = []
        with self.seeded(self.n_partial_fits_ + 1):
            self._learn(data)
        self.n_partial_fits_ += 1

    @contextmanager
    def _budget_applied(self) -> Iterator[None]:
        """Apply a ``budget`` changed with ``set_params`` since the last call; a call that
        fails (a smaller budget that what is held cannot meet) keeps the previous one."""
        previous = self.accountant_.budget
        self.accountant_.budget = parse_budgets(self.budget)
        try:
            yield
        except BaseException:
            self.accountant_.budget = previous
            raise

    def _check_plan(self, data: Any, moment: str) -> None:
        planned = dict(self._planned_bytes(data))
        if planned:
            needs = ", ".join(f"{name} needs {size:,} bytes" for name, size in planned.items())
            context = f"{type(self).__name__} {moment}: {needs}, the budget is {self.budget!r}"
            self.accountant_.check_plan(planned, context, device=device_name(self.device_))

    @contextmanager
    def seeded(self, offset: int = 0) -> Iterator[None]:
        """Run a block with torch's global generator seeded from ``seed_`` and ``offset``,
        and restored afterwards: whatever the block draws is reproducible, and the caller's
        generator is untouched."""
        device = self.device_
        cuda = [device.index] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda, device_type=device.type if cuda else "cuda"):
            torch.manual_seed(self.seed_ * 100_003 + offset)
            yield

    @property
    def device_(self) -> torch.device:
        """The torch device ``device`` names here (``"auto"`` resolved; ``"cuda"`` with its
        index)."""
        return resolve_device(self.device)

    # -------------------------------------------------------------- evaluating
    def evaluate(
        self,
        stream: Sequence[Any],
        *,
        metrics: Sequence[str] | None = None,
        lower_is_better: Sequence[str] = (),
        horizon: int | None = None,
        **protocol: Any,
    ) -> ScoreMatrix | dict[str, ScoreMatrix]:
        """Learn ``stream`` experience by experience and score every experience after each.

        Starts from the current state (an unfitted estimator, or one just ``fit``, for a
        fresh run). ``R[i][j]`` is the score on experience ``j``'s test payload after learning
        experience ``i``; entries above the diagonal are forward scores.

        Parameters
        ----------
        stream
            Experiences with ``train`` and ``test`` payloads (a ``streams.Stream``).
        metrics
            Names among :meth:`scores`'s keys: one matrix per name. None gives one matrix of
            :meth:`score`.
        lower_is_better
            Metrics where lower is better (an error): their forgetting is computed on ``-R``.
        horizon
            Score only experiences ``j <= i + horizon`` (None: all).
        **protocol
            ``after_experience``, ``start``, ``scores`` and ``verbose`` of
            :func:`continual.protocol.evaluate_stream`.

        Returns
        -------
        ScoreMatrix, or dict of metric name to ScoreMatrix when ``metrics`` is given.
        """
        if metrics is None:
            score = self._score_payload
        else:
            names = list(metrics)

            def score(payload: Any) -> dict[str, float]:
                values = self._scores_payload(payload)
                missing = [name for name in names if name not in values]
                if missing:
                    raise ValueError(
                        f"metrics {missing} are not scores of {type(self).__name__}; "
                        f"expected names among {sorted(values)}"
                    )
                return {name: values[name] for name in names}

        protocol.setdefault("verbose", self.verbose)
        return evaluate_stream(
            stream,
            learn=lambda experience: self._learn_experience(experience, stream),
            score=score,
            horizon=horizon,
            higher_is_better={name: False for name in lower_is_better},
            **protocol,
        )

    def _learn_experience(self, experience: Any, stream: Sequence[Any]) -> None:
        """One experience of ``stream``: ``partial_fit`` on its training payload."""
        self.partial_fit(experience.train)

    def _score_payload(self, payload: Any) -> float:
        """:meth:`score` of one test payload."""
        return self.score(payload)

    def _scores_payload(self, payload: Any) -> dict[str, float]:
        """:meth:`scores` of one test payload."""
        return self.scores(payload)

    # ------------------------------------------------------------------- state
    def _fitted_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _forget(self) -> None:
        for name in self._fitted_attributes():
            delattr(self, name)

    def _facts(self) -> dict[str, Any]:
        """Fitted attributes that are plain data (restored as they are)."""
        return {
            k: v for k, v in self._fitted_attributes().items() if k != "accountant_" and _is_fact(v)
        }

    def get_state(self) -> dict[str, Any]:
        """The fitted state: facts, components and the accountant's history (by reference).

        Used by :func:`continual.save`; see :mod:`continual.state` for the format.
        """
        return {
            "facts": self._facts(),
            "components": self._state_dict(),
            "accountant": self.accountant_.state_dict(),
        }

    def set_state(self, state: Mapping[str, Any]) -> BudgetedEstimator:
        """Restore a fitted state returned by :meth:`get_state` (rebuilding every component)."""
        accountant = MemoryAccountant(self.budget)
        accountant.load_state_dict(state["accountant"])
        self._restore(state, accountant)
        return self

    def _restore(self, state: Mapping[str, Any], accountant: MemoryAccountant) -> None:
        self._forget()
        self.accountant_ = accountant
        for name, value in state["facts"].items():
            setattr(self, name, value)
        with self.seeded():
            self._build()
        self._load_state_dict(state["components"])

    @contextmanager
    def _transaction(self, first: bool) -> Iterator[None]:
        """Undo the block if it fails, or if it ends over the budget: forget on a first
        call, else restore a backup."""
        context = f"{type(self).__name__} after experience {getattr(self, 'n_partial_fits_', 0)}"
        if first or self.rollback == "off":
            try:
                yield
                self.accountant_.check(context)
            except BaseException:
                if first:
                    self._forget()
                raise
            return
        accountant = self.accountant_
        mark = (accountant.n_snapshots, accountant.peak)
        backup = Backup({"facts": self._facts(), "components": self._state_dict()}, self.rollback)
        accountant.transient = backup.nbytes
        try:
            yield
            accountant.check(context)  # records the peak with the backup alive
        except BaseException:
            accountant.untrack_all()
            accountant.truncate(mark[0])
            accountant.peak = mark[1]
            accountant.transient = 0
            self._restore(backup.state(), accountant)
            raise
        finally:
            accountant.transient = 0
            backup.release()

    def _check_shared_params(self) -> None:
        check_params(
            merged_constraints(type(self)), self.get_params(deep=False), type(self).__name__
        )
        parse_budgets(self.budget)
        if self.rollback not in ROLLBACK_MODES:
            raise ValueError(f"rollback must be one of {ROLLBACK_MODES}, got {self.rollback!r}")
        verbose = self.verbose
        if isinstance(verbose, bool) or not isinstance(verbose, numbers.Integral) or verbose < 0:
            raise ValueError(f"verbose must be a non-negative int, got {verbose!r}")
        random_state = self.random_state
        generators = (np.random.Generator, np.random.RandomState)
        is_int = isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)
        if not (random_state is None or is_int or isinstance(random_state, generators)):
            raise ValueError(
                "random_state must be None, an int or a numpy Generator/RandomState, "
                f"got {random_state!r}"
            )
        resolve_device(self.device)


def _is_fact(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_fact(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_fact(v) for k, v in value.items())
    return isinstance(value, _FACT_TYPES)
