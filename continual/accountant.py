"""The memory accountant: one byte budget for every component of an experiment."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from continual.budget import format_bytes, parse_budget
from continual.measure import Blocks, collect_blocks

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
    """

    accounts: dict[str, int]
    budget: int | None = None

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
        """JSON-ready view: accounts, total, budget and headroom in bytes."""
        headroom = None if self.budget is None else self.headroom
        return {
            "accounts": dict(self.accounts),
            "total": self.total,
            "budget": self.budget,
            "headroom": headroom,
        }

    def __str__(self) -> str:
        rows = [(name, nbytes) for name, nbytes in self.accounts.items()]
        rows.append(("total", self.total))
        width = max(len("account"), *(len(name) for name, _ in rows), len("budget"))
        digits = max(len("bytes"), *(len(f"{n:,}") for _, n in rows), len(f"{self.budget or 0:,}"))
        lines = [f"{'account':<{width}}  {'bytes':>{digits}}" + ("   share" if self.budget else "")]
        for name, nbytes in rows:
            line = f"{name:<{width}}  {nbytes:>{digits},}"
            if self.budget:
                line += f"  {nbytes / self.budget:>6.1%}"
            lines.append(line)
        if self.budget is not None:
            lines.append(f"{'budget':<{width}}  {self.budget:>{digits},}")
        return "\n".join(lines)


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

    Parameters
    ----------
    budget
        Bytes as an int, a string such as ``"23.5 MB"``, ``"4 MiB"`` or
        ``"200KB"`` (KB/MB/GB are powers of 10, KiB/MiB/GiB powers of 2), or
        None to measure only.

    Attributes
    ----------
    history : list of Snapshot
        Ledgers recorded by :meth:`snapshot`, for plots and TensorBoard.

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
    history: list[Snapshot] = field(default_factory=list, init=False, repr=False)
    _components: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.budget = parse_budget(self.budget)

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

    def ledger(self) -> Ledger:
        """Measure every component now and return the deduplicated :class:`Ledger`."""
        covered = Blocks()
        covered_size = 0
        accounts: dict[str, int] = {}
        for name, obj in self._components.items():
            covered.update(collect_blocks(obj))
            size = covered.size()
            accounts[name] = size - covered_size
            covered_size = size
        return Ledger(accounts, self.budget)

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

    def snapshot(self, step: int | float) -> Ledger:
        """Record the ledger at ``step`` in :attr:`history` and return it."""
        ledger = self.ledger()
        self.history.append(Snapshot(step, ledger))
        return ledger
