"""The memory accountant: one byte budget for every component of an experiment."""

from __future__ import annotations

import math
import numbers
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from continual.budget import format_bytes, parse_budgets
from continual.devices import device_name
from continual.distributed import failing_ranks, gather_to_all, is_distributed, rank, world_size
from continual.measure import Blocks, collect_blocks
from continual.tables import format_table

__all__ = ["BudgetExceededError", "Ledger", "MemoryAccountant", "Snapshot", "check_all_ranks"]


@dataclass(frozen=True)
class Ledger:
    """Bytes per account, and per device, at one moment, with the budget they are charged
    against.

    Storage shared by several accounts is attributed to the account registered
    first, so the accounts sum to the deduplicated total.

    Parameters
    ----------
    accounts
        Account name to bytes, in registration order.
    budget
        The budget in bytes, a budget per device (``{"cuda:0": 8e9, "cpu": 32e9}``, bytes
        after :func:`~continual.budget.parse_budgets`), or None when only measuring.
    transient
        Bytes held only while a call runs and then freed (the rollback backup of a
        ``partial_fit``): not stored, so not charged to the budget, but part of the peak.
    peak
        The largest ``total + transient`` the accountant has measured so far (at least
        ``total + transient``).
    devices
        Account name to its bytes on each device; accounts missing here are on the CPU.

    Examples
    --------
    >>> from continual.accountant import Ledger
    >>> ledger = Ledger({"model": 600, "exemplars": 400}, budget=2000)
    >>> ledger.total, ledger.headroom
    (1000, 1000)
    >>> print(ledger)
    account    device  bytes  share
    model         cpu    600  30.0%
    exemplars     cpu    400  20.0%
    total                1,000  50.0%
    budget               2,000
    >>> print(Ledger({"model": 600}, budget=2000, transient=600))
    account  device  bytes  share
    model       cpu    600  30.0%
    total              600  30.0%
    transient          600  30.0%
    peak             1,200  60.0%
    budget           2,000

    With a budget per device, each device is checked against its own budget:

    >>> ledger = Ledger({"model": 900, "exemplars": 400}, budget={"cuda:0": 1000, "cpu": 300},
    ...                 devices={"model": {"cuda:0": 900}})
    >>> ledger.device_totals(), ledger.headroom_on("cuda:0"), ledger.headroom
    ({'cuda:0': 900, 'cpu': 400}, 100, -100)
    >>> print(ledger)
    account    device  bytes   share
    model      cuda:0    900   90.0%
    exemplars     cpu    400  133.3%
    total      cuda:0    900   90.0%
    total         cpu    400  133.3%
    total              1,300
    budget     cuda:0  1,000
    budget        cpu    300
    """

    accounts: dict[str, int]
    budget: int | dict[str, int] | None = None
    transient: int = 0
    peak: int = 0
    devices: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak", max(self.peak, self.total + self.transient))

    @property
    def total(self) -> int:
        """Deduplicated bytes of all accounts."""
        return sum(self.accounts.values())

    def account_devices(self, name: str) -> dict[str, int]:
        """Bytes of account ``name`` on each device that holds some."""
        if name in self.devices:
            return dict(self.devices[name])
        size = self.accounts[name]
        return {"cpu": size} if size else {}

    def device_totals(self) -> dict[str, int]:
        """Deduplicated bytes on each device that holds some."""
        totals: dict[str, int] = {}
        for name in self.accounts:
            for device, size in self.account_devices(name).items():
                totals[device] = totals.get(device, 0) + size
        return totals

    @property
    def headroom(self) -> int | float:
        """Budget minus total (``math.inf`` without a budget). With a budget per device, the
        smallest headroom of the budgeted devices: negative when any device is over."""
        if self.budget is None:
            return math.inf
        if isinstance(self.budget, int):
            return self.budget - self.total
        return min(self.headroom_on(device) for device in self.budget)

    def headroom_on(self, device: str) -> int | float:
        """What ``device`` may still take: its own budget minus its bytes with a budget per
        device (``math.inf`` for a device without one), else the total headroom."""
        if not isinstance(self.budget, dict):
            return self.headroom
        if device not in self.budget:
            return math.inf
        return self.budget[device] - self.device_totals().get(device, 0)

    def share(self, name: str) -> float | None:
        """Fraction of the budget used by account ``name`` (None without a budget, or with a
        budget per device for an account spread over several devices)."""
        sizes = self.account_devices(name)
        if isinstance(self.budget, dict):
            if len(sizes) != 1:
                return None
            ((device, size),) = sizes.items()
            return _fraction(size, self.budget.get(device))
        return _fraction(self.accounts[name], self.budget)

    def check(self, context: str = "") -> Ledger:
        """Return ``self``, or raise :class:`BudgetExceededError` if over budget."""
        if self.headroom < 0:
            raise BudgetExceededError(self, context)
        return self

    def over_devices(self) -> dict[str, int]:
        """Bytes over budget on each device that is over (``"total"`` for one budget)."""
        if self.budget is None:
            return {}
        if isinstance(self.budget, int):
            return {"total": self.total - self.budget} if self.total > self.budget else {}
        over = {device: -self.headroom_on(device) for device in self.budget}
        return {device: int(size) for device, size in over.items() if size > 0}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: accounts, their devices, total, budget, headroom, transient and
        peak, in bytes."""
        headroom = None if self.budget is None else self.headroom
        return {
            "accounts": dict(self.accounts),
            "devices": {name: self.account_devices(name) for name in self.accounts},
            "total": self.total,
            "budget": dict(self.budget) if isinstance(self.budget, dict) else self.budget,
            "headroom": headroom,
            "transient": self.transient,
            "peak": self.peak,
        }

    def __str__(self) -> str:
        per_device = isinstance(self.budget, dict)
        rows: list[list[Any]] = []
        for name, size in self.accounts.items():
            sizes = self.account_devices(name) or {"": size}
            for device, part in sizes.items():
                share = _fraction(part, self.budget.get(device) if per_device else self.budget)
                rows.append([name, device, part, share])
        totals = self.device_totals()
        if per_device or len(totals) > 1:
            for device, size in totals.items():
                budget = self.budget.get(device) if per_device else None
                rows.append(["total", device, size, _fraction(size, budget)])
        whole = None if per_device else _fraction(self.total, self.budget)
        rows.append(["total", "", self.total, whole])
        for label, size in (("transient", self.transient), ("peak", self.peak)):
            if size and (label == "transient" or size > self.total):
                rows.append([label, "", size, None if per_device else _fraction(size, self.budget)])
        if isinstance(self.budget, dict):
            rows.extend(["budget", device, size] for device, size in self.budget.items())
        elif self.budget is not None:
            rows.append(["budget", "", self.budget])
        header = ["account", "device", "bytes"] + (["share"] if self.budget else [])
        if not self.budget:
            rows = [row[:3] for row in rows]
        else:
            rows = [row if len(row) < 4 or row[3] is not None else row[:3] for row in rows]
        return format_table(header, rows, formats={"share": ".1%"} if self.budget else None)


def _fraction(size: int, budget: int | None) -> float | None:
    if budget is None:
        return None
    return size / budget if budget else math.inf


def _over_ranks(ledger: Ledger) -> Ledger:
    """Every rank's ``ledger`` as one: accounts summed, devices named ``rank<r>:<device>``."""
    parts = gather_to_all((ledger.accounts, ledger.devices, ledger.budget, ledger.transient))
    accounts: dict[str, int] = {}
    devices: dict[str, dict[str, int]] = {}
    for r, (ranked, ranked_devices, budget, _) in enumerate(parts):
        view = Ledger(ranked, budget, devices=ranked_devices)
        for name, size in ranked.items():
            accounts[name] = accounts.get(name, 0) + size
            for device, part in view.account_devices(name).items():
                devices.setdefault(name, {})[f"rank{r}:{device}"] = part
    budgets = [budget for _, _, budget, _ in parts]
    total: int | dict[str, int] | None = None
    if all(isinstance(budget, int) for budget in budgets):
        total = sum(budgets)
    elif all(isinstance(budget, dict) for budget in budgets):
        total = {f"rank{r}:{d}": size for r, b in enumerate(budgets) for d, size in b.items()}
    transient = sum(part[3] for part in parts)
    return Ledger(accounts, total, transient=transient, devices=devices)


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

    The error carries the :class:`Ledger` that broke the budget (``.ledger``), the excess in
    bytes (``.over``) and, with a budget per device, the devices that are over
    (``.devices``, device name to bytes over); its message names them and prints the ledger.
    """

    def __init__(self, ledger: Ledger, context: str = "", ranks: Sequence[int] = ()) -> None:
        self.ledger = ledger
        self.devices = ledger.over_devices()
        self.over = sum(self.devices.values())
        self.ranks = list(ranks)
        prefix = f"{context}: " if context else ""
        if self.ranks:
            over = ", ".join(map(str, self.ranks))
            prefix += f"rank {over} of {world_size()} is over its budget; on rank {rank()}, "
        if isinstance(ledger.budget, dict):
            totals = ledger.device_totals()
            what = "; ".join(
                f"the budget on {device} is exceeded by {over:,} bytes "
                f"({format_bytes(totals.get(device, 0))} used of "
                f"{format_bytes(ledger.budget[device])})"
                for device, over in self.devices.items()
            )
        else:
            what = (
                f"memory budget exceeded by {self.over:,} bytes "
                f"({format_bytes(ledger.total)} used of {format_bytes(ledger.budget or 0)})"
            )
        if self.ranks and not self.over:
            what = f"{format_bytes(ledger.total)} are used, within the budget"
        super().__init__(f"{prefix}{what}\n{ledger}")


def check_all_ranks(ledger: Ledger, context: str = "") -> Ledger:
    """:meth:`Ledger.check` on every rank at once: return ``ledger``, or raise
    :class:`BudgetExceededError` on every rank when any rank is over its budget.

    Under data-parallel training each rank checks its own ledger (its model replica,
    optimizer state and store shard against its own budget), and the ranks exchange one
    flag (:func:`~continual.distributed.failing_ranks`): a rank within its budget raises too,
    naming the ranks that are over, so that no rank waits for the others in a collective.
    Every rank must call it at the same point. Without a process group it is
    :meth:`Ledger.check`.

    Examples
    --------
    >>> from continual import BudgetExceededError, Ledger
    >>> from continual.accountant import check_all_ranks
    >>> check_all_ranks(Ledger({"model": 600}, budget=2000)).total
    600
    """
    failing = failing_ranks(ledger.headroom < 0)
    if not failing:
        return ledger
    if not is_distributed():
        raise BudgetExceededError(ledger, context)
    raise BudgetExceededError(ledger, context, ranks=failing)


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
        None to measure only. A mapping such as ``{"cuda:0": "8 GB", "cpu": "32 GB"}``
        gives each device its own budget: every device is checked against its own,
        and a device the mapping does not name is not limited.
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
    account  device  bytes  share
    model       cpu  4,040  50.5%
    head                 0   0.0%
    total            4,040  50.5%
    budget           8,000
    """

    budget: int | str | dict[str, int | str] | None = None
    history_size: int = 1024
    history: deque[Snapshot] = field(init=False, repr=False)
    n_snapshots: int = field(default=0, init=False, repr=False)
    transient: int = field(default=0, init=False, repr=False)
    peak: int = field(default=0, init=False, repr=False)
    _components: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.budget = parse_budgets(self.budget)
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

    def component(self, name: str) -> Any:
        """The object tracked under account ``name``."""
        if name not in self._components:
            raise ValueError(f"name {name!r} is not tracked; tracked accounts are {self.accounts}")
        return self._components[name]

    def untrack(self, name: str) -> Any:
        """Stop tracking account ``name`` and return its object."""
        if name not in self._components:
            raise ValueError(f"name {name!r} is not tracked; tracked accounts are {self.accounts}")
        return self._components.pop(name)

    def untrack_all(self) -> None:
        """Stop tracking every account (the history is kept)."""
        self._components.clear()

    def ledger(self, reduce: bool = False) -> Ledger:
        """Measure every component now and return the deduplicated :class:`Ledger`.

        The measurement also raises :attr:`peak` when ``total + transient`` passes it.

        With ``reduce=True`` under data-parallel training (a collective: every rank must
        call it), the ledger of every rank: each account's bytes summed over the ranks, its
        device column naming rank and device (``rank1:cpu``), and the ranks' budgets summed
        (or, per device, one per rank and device). Without a process group, ``reduce`` changes
        nothing.
        """
        ledger = self._ledger()
        self.peak = ledger.peak
        return _over_ranks(ledger) if reduce and is_distributed() else ledger

    def _ledger(self, planned: dict[str, dict[str, int]] | None = None) -> Ledger:
        devices = {**self._measure(), **(planned or {})}
        accounts = {name: sum(sizes.values()) for name, sizes in devices.items()}
        return Ledger(
            accounts, self.budget, transient=self.transient, peak=self.peak, devices=devices
        )

    def _measure(self) -> dict[str, dict[str, int]]:
        """Each account's bytes per device, storage shared with earlier accounts excluded."""
        covered = Blocks()
        before: dict[str, int] = {}
        accounts: dict[str, dict[str, int]] = {}
        for name, obj in self._components.items():
            covered.update(collect_blocks(obj))
            after = covered.size_by_device()
            sizes = {device: size - before.get(device, 0) for device, size in after.items()}
            accounts[name] = {device: size for device, size in sizes.items() if size}
            before = after
        return accounts

    def total(self) -> int:
        """Deduplicated bytes of all tracked components."""
        return self.ledger().total

    def headroom(self, device: str | None = None) -> int | float:
        """Budget minus :meth:`total`; ``math.inf`` when there is no budget.

        With a budget per device: the headroom of ``device`` (see
        :meth:`Ledger.headroom_on`), or with ``device=None`` the smallest headroom of the
        budgeted devices.
        """
        ledger = self.ledger()
        return ledger.headroom if device is None else ledger.headroom_on(device_name(device))

    def extra_bytes(self, obj: Any) -> int:
        """Bytes ``obj`` would add if tracked now (0 for storage already charged)."""
        covered = Blocks()
        for component in self._components.values():
            covered.update(collect_blocks(component))
        before = covered.size()
        covered.update(collect_blocks(obj))
        return covered.size() - before

    def room_for(self, obj: Any, device: str | None = None) -> int:
        """Bytes ``obj`` may hold: the headroom plus what it holds now.

        This is the capacity a store should be given when it is refilled. It
        is ``sys.maxsize`` without a budget and never negative. With a budget per
        device, the headroom is that of the device ``obj`` lives on: ``device``, else
        ``obj.device`` when it has one, else the one device its bytes are on, else the CPU.
        """
        blocks = collect_blocks(obj)
        if device is None:
            device = getattr(obj, "device", None)
        if device is None:
            held = list(blocks.size_by_device())
            device = held[0] if len(held) == 1 else "cpu"
        headroom = self.headroom(device)
        if math.isinf(headroom):
            return sys.maxsize
        return max(0, int(headroom) + blocks.size())

    def timeline(self) -> list[tuple[int | float, dict[str, int]]]:
        """The recorded :attr:`history` as ``(step, {account: bytes})`` pairs, for plots."""
        return [(snapshot.step, dict(snapshot.ledger.accounts)) for snapshot in self.history]

    def fits(self, extra_bytes: int, device: str | None = None) -> bool:
        """Whether ``extra_bytes`` more (on ``device``, with a budget per device) would
        still fit the budget."""
        if isinstance(extra_bytes, bool) or not isinstance(extra_bytes, int) or extra_bytes < 0:
            raise ValueError(f"extra_bytes must be a non-negative int, got {extra_bytes!r}")
        return self.headroom(device) >= extra_bytes

    def check(self, context: str = "") -> Ledger:
        """Return the ledger, or raise :class:`BudgetExceededError` if over budget (on every
        rank when any rank is over, see :func:`check_all_ranks`)."""
        return check_all_ranks(self.ledger(), context)

    def check_plan(
        self,
        planned: Mapping[str, int | Mapping[str, int]],
        context: str = "",
        device: str = "cpu",
    ) -> Ledger:
        """Raise :class:`BudgetExceededError` if the accounts would exceed the budget with
        ``planned`` bytes (account name to the bytes it will hold) in place of what they
        hold now.

        Call it with the bytes a step is about to allocate, computed from shapes, so that a
        budget that cannot be met fails before anything is allocated. It only reads: the
        :attr:`peak` does not change. A planned size is on ``device``, or, given as a
        mapping, on each device it names. Under data-parallel training every rank raises
        when any rank's plan does not fit (see :func:`check_all_ranks`).

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
        on_devices: dict[str, dict[str, int]] = {}
        for name, size in planned.items():
            sizes = size if isinstance(size, Mapping) else {device: size}
            for part in sizes.values():
                if isinstance(part, bool) or not isinstance(part, numbers.Integral) or part < 0:
                    raise ValueError(f"planned[{name!r}] must be a non-negative int, got {size!r}")
            on_devices[name] = {device_name(where): int(part) for where, part in sizes.items()}
        ledger = self._ledger(on_devices)
        return check_all_ranks(
            Ledger(ledger.accounts, self.budget, devices=ledger.devices), context
        )

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
                [s.step, s.ledger.accounts, s.ledger.transient, s.ledger.peak, s.ledger.devices]
                for s in self.history
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.history.clear()
        for step, accounts, transient, peak, *devices in state["history"]:
            ledger = Ledger(
                dict(accounts),
                self.budget,
                transient=transient,
                peak=peak,
                devices=dict(devices[0]) if devices else {},
            )
            self.history.append(Snapshot(step, ledger))
        self.n_snapshots = int(state["n_snapshots"])
        self.peak = int(state["peak"])
