"""Parsing memory budgets such as ``"23.5 MB"`` or ``"4 MiB"`` into bytes."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["format_bytes", "parse_budget"]

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
    if isinstance(budget, float):
        if not math.isfinite(budget) or budget != int(budget):
            raise ValueError(f"budget must be a whole number of bytes, got {budget!r}")
        budget = int(budget)
    if not isinstance(budget, int):
        raise TypeError(
            f"budget must be an int, a str such as '23.5 MB', or None, "
            f"got {type(budget).__name__} {budget!r}"
        )
    if budget < 0:
        raise ValueError(f"budget must be non-negative bytes, got {budget}")
    return budget


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
