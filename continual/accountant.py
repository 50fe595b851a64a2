"""The memory accountant: one byte budget for every component of an experiment."""

from __future__ import annotations

import math
import numbers
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from continual.budget import format_bytes, parse_budget
from continual.measure import Blocks, collect_blocks
from continual.tables import format_table

__all__ = ["BudgetExceededError", "Ledger", "MemoryAccountant", "Snapshot"]


@dataclass(frozen=True)
class Ledger:
    """Bytes per account at one moment, with the budget they are charged against.

    Storage shared by several accounts is attributed to the account registered
    first, so the accounts sum to the deduplicated total.

    Parameters
    ----------
    accounts
        Account name to bytes, in registration order.
    budget
        The budget in bytes, or None when only measuring.
    transient
        Bytes held only while a call runs and then freed (the rollback backup of a
        ``partial_fit``): not stored, so not charged to the budget, but part of the peak.
    peak
        The largest ``total + transient`` the accountant has measured so far (at least
        ``total + transient``).

    Examples
    --------
    >>> from continual.accountant import Ledger
    >>> ledger = Ledger({"model": 600, "exemplars": 400}, budget=2000)
    >>> ledger.total, ledger.headroom
    (1000, 1000)
    >>> print(ledger)
    account    bytes  share
    model        600  30.0%
    exemplars    400  20.0%
    total      1,000  50.0%
    budget     2,000
    >>> print(Ledger({"model": 600}, budget=2000, transient=600))
    account    bytes  share
    model        600  30.0%
    total        600  30.0%
    transient    600  30.0%
    peak       1,200  60.0%
    budget     2,000
    """

    accounts: dict[str, int]
    budget: int | None = None
    transient: int = 0
    peak: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak", max(self.peak, self.total + self.transient))

    @property
    def total(self) -> int:
        """Deduplicated bytes of all accounts."""
        return sum(self.accounts.values())

    @property
    def headroom(self) -> int | float:
        """Budget minus total (``math.inf`` without a budget)."""
        return math.inf if self.budget is None else self.budget - self.total

    def share(self, name: str) -> float | None:
        """Fraction of the budget used by account ``name`` (None without a budget)."""
        if self.budget is None:
            return None
        return self.accounts[name] / self.budget if self.budget else math.inf

    def check(self, context: str = "") -> Ledger:
        """Return ``self``, or raise :class:`BudgetExceededError` if over budget."""
        if self.headroom < 0:
            raise BudgetExceededError(self, context)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: accounts, total, budget, headroom, transient and peak, in bytes."""
        headroom = None if self.budget is None else self.headroom
        return {
            "accounts": dict(self.accounts),
            "total": self.total,
            "budget": self.budget,
            "headroom": headroom,
            "transient": self.transient,
            "peak": self.peak,
        }

    def __str__(self) -> str:
        rows: list[tuple[str, int]] = [*self.accounts.items(), ("total", self.total)]
        if self.transient:
            rows.append(("transient", self.transient))
        if self.peak > self.total:
            rows.append(("peak", self.peak))
        header = ["account", "bytes"] + (["share"] if self.budget else [])
        cells = [
            [name, size, *([size / self.budget] if self.budget else [])] for name, size in rows
        ]
        if self.budget is not None:
            cells.append(["budget", self.budget])
        return format_table(header, cells, formats={"share": ".1%"} if self.budget else None)


@dataclass(frozen=True)
class Snapshot:
    """The ledger recorded at one step (see :meth:`MemoryAccountant.snapshot`).

    Examples
    --------
    >>> from continual.accountant import Ledger, Snapshot
    >>> Snapshot(3, Ledger({"model": 40})).ledger.total
    40
    """

    step: int | float
    ledger: Ledger


class BudgetExceededError(RuntimeError):
    """Raised when the tracked components do not fit the budget.

    The error carries the :class:`Ledger` that broke the budget (``.ledger``)
    and the excess in bytes (``.over``); its message prints both.
    """

    def __init__(self, ledger: Ledger, context: str = "") -> None:
        self.ledger = ledger
        self.over = ledger.total - (ledger.budget or 0)
        prefix = f"{context}: " if context else ""
        super().__init__(
            f"{prefix}memory budget exceeded by {self.over:,} bytes "
            f"({format_bytes(ledger.total)} used of {format_bytes(ledger.budget or 0)})\n{ledger}"
        )


@dataclass
class MemoryAccountant:
    """Charge every stored byte of an experiment against one budget.

    Components are registered under account names with :meth:`track` and are
    measured with :func:`continual.nbytes` every time the accountant is asked:
    nothing is cached, so a store that grew is seen at once. Storage shared by
    several accounts (a submodule tracked beside its model, a tensor and its
    views) is counted once, for the account registered first.

    Bytes that exist only while a call runs (the rollback backup of a
    ``partial_fit``) are reported as :attr:`transient`: they are not stored, so
    the budget does not charge them, but every ledger shows them in its peak.

    Parameters
    ----------
    budget
        Bytes as an int, a string such as ``"23.5 MB"``, ``"4 MiB"`` or
        ``"200KB"`` (KB/MB/GB are powers of 10, KiB/MiB/GiB powers of 2), or
        None to measure only.
    history_size
        Snapshots kept in :attr:`history`; older ones are dropped, so that a
        stream of any length costs the same per call. :attr:`peak` and
        :attr:`n_snapshots` still cover every snapshot.

    Attributes
    ----------
    history : collections.deque of Snapshot
        The last ``history_size`` ledgers recorded by :meth:`snapshot`, for plots and
        TensorBoard.
    n_snapshots : int
        Snapshots recorded since the accountant was made.
    transient : int
        Bytes held now only for the duration of a call (set by the estimator).
    peak : int
        The largest ``total + transient`` measured so far.

    Examples
    --------
    >>> import torch
    >>> from continual import MemoryAccountant
    >>> model = torch.nn.Linear(100, 10)
    >>> accountant = MemoryAccountant("8 KB")
    >>> accountant.track("model", model)
    Linear(in_features=100, out_features=10, bias=True)
    >>> accountant.track("head", model.weight)  # already charged to "model"
    Parameter containing: ...
    >>> accountant.total(), accountant.headroom()
    (4040, 3960)
    >>> accountant.fits(4000)
    False
    >>> print(accountant.ledger())
    account  bytes  share
    model    4,040  50.5%
    head         0   0.0%
    total    4,040  50.5%
    budget   8,000
    """

    budget: int | str | None = None
    history_size: int = 1024
    history: deque[Snapshot] = field(init=False, repr=False)
    n_snapshots: int = field(default=0, init=False, repr=False)
    transient: int = field(default=0, init=False, repr=False)
    peak: int = field(default=0, init=False, repr=False)
    _components: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.budget = parse_budget(self.budget)
        size = self.history_size
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"history_size must be a positive int, got {size!r}")
        self.history = deque(maxlen=int(size))

    @property
    def accounts(self) -> list[str]:
        """Names of the tracked components, in registration order."""
        return list(self._components)

    def track(self, name: str, obj: Any) -> Any:
        """Register ``obj`` under account ``name`` and return ``obj``.

        Raises ValueError for an empty or already used name and TypeError if
        ``obj`` cannot be measured.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        if name in self._components:
            raise ValueError(f"name {name!r} is already tracked; untrack it first")
        try:
            collect_blocks(obj)
        except TypeError as error:
            raise TypeError(f"cannot track {name!r}: {error}") from error
        self._components[name] = obj
        return obj

    def untrack(self, name: str) -> Any:
        """Stop tracking account ``name`` and return its object."""
        if name not in self._components:
            raise ValueError(f"name {name!r} is not tracked; tracked accounts are {self.accounts}")
        return self._components.pop(name)

    def untrack_all(self) -> None:
        """Stop tracking every account (the history is kept)."""
        self._components.clear()

    def ledger(self) -> Ledger:
        """Measure every component now and return the deduplicated :class:`Ledger`.

        The measurement also raises :attr:`peak` when ``total + transient`` passes it.
        """
        accounts = self._measure()
        ledger = Ledger(accounts, self.budget, transient=self.transient, peak=self.peak)
        self.peak = ledger.peak
        return ledger

    def _measure(self) -> dict[str, int]:
        covered = Blocks()
        covered_size = 0
        accounts: dict[str, int] = {}
        for name, obj in self._components.items():
            covered.update(collect_blocks(obj))
            size = covered.size()
            accounts[name] = size - covered_size
            covered_size = size
        return accounts

    def total(self) -> int:
        """Deduplicated bytes of all tracked components."""
        return self.ledger().total

    def headroom(self) -> int | float:
        """Budget minus :meth:`total`; ``math.inf`` when there is no budget."""
        return self.ledger().headroom

    def extra_bytes(self, obj: Any) -> int:
        """Bytes ``obj`` would add if tracked now (0 for storage already charged)."""
        covered = Blocks()
        for component in self._components.values():
            covered.update(collect_blocks(component))
        before = covered.size()
        covered.update(collect_blocks(obj))
        return covered.size() - before

    def room_for(self, obj: Any) -> int:
        """Bytes ``obj`` may hold: the headroom plus what it holds now.

        This is the capacity a store should be given when it is refilled. It
        is ``sys.maxsize`` without a budget and never negative.
        """
        headroom = self.headroom()
        if math.isinf(headroom):
            return sys.maxsize
        return max(0, int(headroom) + collect_blocks(obj).size())

    def timeline(self) -> list[tuple[int | float, dict[str, int]]]:
        """The recorded :attr:`history` as ``(step, {account: bytes})`` pairs, for plots."""
        return [(snapshot.step, dict(snapshot.ledger.accounts)) for snapshot in self.history]

    def fits(self, extra_bytes: int) -> bool:
        """Whether ``extra_bytes`` more would still fit the budget."""
        if isinstance(extra_bytes, bool) or not isinstance(extra_bytes, int) or extra_bytes < 0:
            raise ValueError(f"extra_bytes must be a non-negative int, got {extra_bytes!r}")
        return self.headroom() >= extra_bytes

    def check(self, context: str = "") -> Ledger:
        """Return the ledger, or raise :class:`BudgetExceededError` if over budget."""
        return self.ledger().check(context)

    def check_plan(self, planned: dict[str, int], context: str = "") -> Ledger:
        """Raise :class:`BudgetExceededError` if the accounts would exceed the budget with
        ``planned`` bytes (account name to the bytes it will hold) in place of what they
        hold now.

        Call it with the bytes a step is about to allocate, computed from shapes, so that a
        budget that cannot be met fails before anything is allocated. It only reads: the
        :attr:`peak` does not change.

        Examples
        --------
        >>> import torch
        >>> from continual import BudgetExceededError, MemoryAccountant
        >>> accountant = MemoryAccountant(1000)
        >>> _ = accountant.track("model", torch.zeros(100))
        >>> accountant.check_plan({"table": 500}).total
        900
        >>> try:
        ...     accountant.check_plan({"model": 800, "table": 500}, "growing")
        ... except BudgetExceededError as error:
        ...     print(str(error).splitlines()[0])
        growing: memory budget exceeded by 300 bytes (1.30 kB used of 1.00 kB)
        """
        for name, size in planned.items():
            if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 0:
                raise ValueError(f"planned[{name!r}] must be a non-negative int, got {size!r}")
        accounts = {**self._measure(), **{name: int(size) for name, size in planned.items()}}
        return Ledger(accounts, self.budget).check(context)

    def snapshot(self, step: int | float) -> Ledger:
        """Record the ledger at ``step`` in :attr:`history` and return it."""
        ledger = self.ledger()
        self.history.append(Snapshot(step, ledger))
        self.n_snapshots += 1
        return ledger

    def truncate(self, n_snapshots: int) -> None:
        """Forget the snapshots recorded after the first ``n_snapshots`` (a rollback)."""
        while self.n_snapshots > n_snapshots and self.history:
            self.history.pop()
            self.n_snapshots -= 1
        self.n_snapshots = min(self.n_snapshots, n_snapshots)

    def state_dict(self) -> dict[str, Any]:
        """The history and peak as JSON-ready values (tracked components are not state)."""
        return {
            "n_snapshots": self.n_snapshots,
            "peak": self.peak,
            "history": [
                [s.step, s.ledger.accounts, s.ledger.transient, s.ledger.peak] for s in self.history
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.history.clear()
        for step, accounts, transient, peak in state["history"]:
            ledger = Ledger(dict(accounts), self.budget, transient=transient, peak=peak)
            self.history.append(Snapshot(step, ledger))
        self.n_snapshots = int(state["n_snapshots"])
        self.peak = int(state["peak"])
