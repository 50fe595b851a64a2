"""Aligned plain-text tables for the results that runs and benchmarks print."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["align"]


def align(rows: Sequence[Sequence[str]]) -> str:
    """Join rows of cells into an aligned table: first column left, the others right.

    Parameters
    ----------
    rows
        The header row followed by the data rows, every row with the same number of cells.

    Examples
    --------
    >>> from continual.tables import align
    >>> print(align([["method", "bytes"], ["replay", "1,024"], ["finetune", "0"]]))
    method    bytes
    replay    1,024
    finetune      0
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in rows
    )
