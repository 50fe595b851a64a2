"""The one formatter of the plain-text tables that ledgers, runs and benchmarks print."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_cell", "format_table"]


def format_cell(value: Any, spec: str | None = None) -> str:
    """Format one table cell: ``spec`` when given, else by type.

    Integers get thousands separators, floats three decimals, ``None`` a dash; strings are
    kept as they are.

    Examples
    --------
    >>> from continual.tables import format_cell
    >>> format_cell(1234567), format_cell(0.12345), format_cell(None), format_cell(0.25, ".1%")
    ('1,234,567', '0.123', '-', '25.0%')
    """
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if spec is not None:
        return format(value, spec)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):.3f}"
    return str(value)


def format_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    formats: Mapping[str, str] | None = None,
) -> str:
    """An aligned table: the first column left-aligned, the others right-aligned.

    Cells are formatted by :func:`format_cell`, with the format spec ``formats[column]`` for
    the columns it names. A row shorter than the header leaves its last cells blank.

    Parameters
    ----------
    header
        Column titles.
    rows
        One sequence of cell values per row, at most as long as ``header``.
    formats
        Column title to a format spec such as ``".1%"`` or ``".4f"``.

    Examples
    --------
    >>> from continual.tables import format_table
    >>> print(format_table(["method", "bytes", "accuracy"],
    ...                    [["replay", 1024, 0.91234], ["finetune", 0, None], ["budget", 2000]],
    ...                    formats={"accuracy": ".2f"}))
    method    bytes  accuracy
    replay    1,024      0.91
    finetune      0         -
    budget    2,000
    """
    formats = dict(formats or {})
    unknown = set(formats) - set(header)
    if unknown:
        raise ValueError(f"formats names columns {sorted(unknown)} that are not in the header")
    cells = [list(header)]
    for position, row in enumerate(rows):
        if len(row) > len(header):
            raise ValueError(
                f"rows[{position}] has {len(row)} cells, more than the {len(header)} columns"
            )
        cells.append(
            [format_cell(value, formats.get(column)) for column, value in zip(header, row)]
            + [""] * (len(header) - len(row))
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in cells
    ]
    return "\n".join(line.rstrip() for line in lines)
