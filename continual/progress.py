"""Progress bars that stay quiet when nobody is watching."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import TextIO, TypeVar

from tqdm import tqdm

__all__ = ["progress"]

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    *,
    verbose: int = 1,
    desc: str | None = None,
    total: int | None = None,
    leave: bool = False,
    file: TextIO | None = None,
) -> tqdm[T]:
    """Wrap ``iterable`` in a tqdm progress bar.

    The bar is off when ``verbose == 0``. Otherwise tqdm decides (``disable=None``): the bar is
    drawn only when the output stream is a terminal, so logs and CI output stay clean.

    Parameters
    ----------
    iterable
        What to iterate over.
    verbose
        0 turns the bar off; any positive int lets tqdm draw it on a terminal.
    desc
        Text in front of the bar.
    total
        Number of items, when ``iterable`` has no length.
    leave
        Whether the finished bar stays on screen.
    file
        Output stream; tqdm's default (standard error) when None.

    Returns
    -------
    tqdm
        An iterator over the items of ``iterable``.

    Examples
    --------
    >>> sum(progress(range(5), verbose=0, desc="sum"))
    10
    """
    if not isinstance(verbose, numbers.Integral) or verbose < 0:
        raise ValueError(f"verbose must be a non-negative int, got {verbose!r}")
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        leave=leave,
        file=file,
        disable=True if verbose == 0 else None,
    )
