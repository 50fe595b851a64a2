"""Parsing memory budgets such as ``"23.5 MB"`` or ``"4 MiB"`` into bytes."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from continual.devices import device_name

__all__ = ["format_bytes", "parse_budget", "parse_budgets"]

_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_PATTERN = re.compile(
    r"^\s*(?P<number>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*$"
)


def parse_budget(budget: int | float | str | None) -> int | None:
    """Convert a budget to a whole number of bytes.

    KB, MB, GB and TB are powers of 10; KiB, MiB, GiB and TiB are powers of 2.
    Units are case-insensitive. A fractional result is rounded down to whole
    bytes. ``None`` means "no budget" and is returned unchanged.

    Parameters
    ----------
    budget
        Bytes as a non-negative int (or a float with an integral value), or a
        string made of a number and an optional unit.

    Returns
    -------
    int or None
        The budget in bytes.

    Raises
    ------
    ValueError
        If the budget is negative, not finite, or a string that cannot be parsed.
    TypeError
        If the budget has another type.

    Examples
    --------
    >>> from continual.budget import parse_budget
    >>> parse_budget("23.5 MB")
    23500000
    >>> parse_budget("4 MiB")
    4194304
    >>> parse_budget("200KB")
    200000
    >>> parse_budget(1024)
    1024
    """
    if budget is None:
        return None
    if isinstance(budget, bool):
        raise TypeError(f"budget must be an int, a str such as '23.5 MB', or None, got {budget!r}")
    if isinstance(budget, str):
        return _parse_string(budget)
    if isinstance(budget, numbers.Integral):  # int and numpy ints alike
        budget = int(budget)
    elif isinstance(budget, numbers.Real):  # float and numpy floats alike
        if not math.isfinite(budget) or budget != int(budget):
            raise ValueError(f"budget must be a whole number of bytes, got {budget!r}")
        budget = int(budget)
    else:
        raise TypeError(
            f"budget must be an int, a str such as '23.5 MB', or None, "
            f"got {type(budget).__name__} {budget!r}"
        )
    if budget < 0:
        raise ValueError(f"budget must be non-negative bytes, got {budget}")
    return budget


def parse_budgets(budget: Any) -> int | dict[str, int] | None:
    """Convert one budget, or a budget per device, to bytes.

    A mapping such as ``{"cuda:0": "8 GB", "cpu": "32 GB"}`` gives each device its own
    budget; device names are normalised the way tensors report them (``"cuda"`` is
    ``"cuda:0"``). Anything else goes to :func:`parse_budget`.

    Examples
    --------
    >>> from continual.budget import parse_budgets
    >>> parse_budgets({"cuda": "8 GB", "cpu": "32 GB"})
    {'cuda:0': 8000000000, 'cpu': 32000000000}
    >>> parse_budgets("1 KB")
    1000
    """
    if not isinstance(budget, Mapping):
        return parse_budget(budget)
    if not budget:
        raise ValueError("budget per device must name at least one device, got {}")
    parsed: dict[str, int] = {}
    for device, value in budget.items():
        try:
            name = device_name(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"budget keys must be devices such as 'cpu' or 'cuda:0', got {device!r}"
            ) from None
        if name in parsed:
            raise ValueError(f"budget names device {name!r} twice (as {device!r})")
        try:
            parsed[name] = parse_budget(value)
        except (TypeError, ValueError) as error:
            raise type(error)(f"budget[{device!r}]: {error}") from None
        if parsed[name] is None:
            raise ValueError(f"budget[{device!r}] must be bytes, got None")
    return parsed


def _parse_string(text: str) -> int:
    match = _PATTERN.match(text)
    unit = match.group("unit").upper() if match else ""
    if match is None or (unit and unit not in _UNITS):
        raise ValueError(
            f"budget must look like '200KB', '23.5 MB' or '4 MiB' (units B, KB, MB, GB, TB, "
            f"KiB, MiB, GiB, TiB), got {text!r}"
        )
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation as error:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"budget has an unreadable number, got {text!r}") from error
    return int(number * _UNITS[unit or "B"])


def format_bytes(n: int | float) -> str:
    """Format a byte count with a decimal unit, e.g. ``"1.85 MB"``.

    Examples
    --------
    >>> from continual.budget import format_bytes
    >>> format_bytes(1_854_016)
    '1.85 MB'
    >>> format_bytes(512)
    '512 B'
    """
    if math.isinf(n):
        return "unlimited"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"
