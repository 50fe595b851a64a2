"""Loaders for recommendation data: the LightGCN format and delimited interaction tables.

Both read UTF-8 text. Every parse error is a ``ValueError`` that names the file, the line
number and the field of the first malformed line, and quotes the offending text: an ID that is
not a whole number in ``[0, 2**31)`` (``1e20``, ``-3``, ``nan``, ``x``), a NaN or infinite
rating or timestamp, a line with too few fields. A binary file (bytes that are not UTF-8
text, or a NUL byte) and a file without any interaction are errors too, and an error on a
last line that has no newline says the file may be truncated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from continual.validation import NON_NEGATIVE_INT, check_params
from streams.interactions import ID_LIMIT, Interactions

__all__ = ["load_interaction_table", "load_lightgcn", "read_lightgcn"]


def read_lightgcn(
    path: str | Path, *, n_users: int | None = None, n_items: int | None = None
) -> Interactions:
    """Read one LightGCN file: one line per user, ``user item item ...``.

    Blank lines and users without items are skipped.

    Parameters
    ----------
    path
        The file, for example ``gowalla/train.txt``.
    n_users, n_items
        Declared vocabulary sizes (default: largest ID plus one).

    Raises
    ------
    ValueError
        Naming the file, the line and the field: an ID that is not a whole number in
        ``[0, 2**31)``, a binary file, a file without interactions, a declared vocabulary
        smaller than the largest ID.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from streams.recsys_loaders import read_lightgcn
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.txt").write_text("0 1 2\\n1 0\\n2\\n")
    >>> data = read_lightgcn(folder / "train.txt")
    >>> data.users.tolist(), data.items.tolist(), data.n_users
    ([0, 0, 1], [1, 2, 0], 2)
    """
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    for line in _lines(path):
        fields = line.text.split()
        if not fields:
            continue
        row = _lightgcn_row(line, fields)
        users.append(np.full(row.size - 1, row[0]))
        items.append(row[1:])
    if not any(row.size for row in items):
        raise ValueError(f"{path}: no interactions: the file is empty (or every user has no item)")
    with _naming(path):
        return Interactions(
            np.concatenate(users), np.concatenate(items), n_users=n_users, n_items=n_items
        )


def load_lightgcn(folder: str | Path) -> tuple[Interactions, Interactions]:
    """Load ``train.txt`` and ``test.txt`` of a LightGCN data set with one shared vocabulary.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from streams.recsys_loaders import load_lightgcn
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.txt").write_text("0 1 2\\n1 0\\n")
    >>> _ = (folder / "test.txt").write_text("0 3\\n1 2\\n")
    >>> train, test = load_lightgcn(folder)
    >>> (len(train), len(test), train.n_items, test.n_items)
    (3, 2, 4, 4)

    Raises
    ------
    ValueError
        As :func:`read_lightgcn`, naming the file (``train.txt`` or ``test.txt``).
    """
    folder = Path(folder)
    train, test = read_lightgcn(folder / "train.txt"), read_lightgcn(folder / "test.txt")
    n_users, n_items = max(train.n_users, test.n_users), max(train.n_items, test.n_items)
    return train.with_vocabulary(n_users, n_items), test.with_vocabulary(n_users, n_items)


def load_interaction_table(
    path: str | Path,
    *,
    sep: str | None = None,
    user_col: int = 0,
    item_col: int = 1,
    rating_col: int | None = None,
    time_col: int | None = None,
    skip_header: bool = False,
    comment: str | None = "#",
) -> Interactions:
    """Read a delimited (user, item[, rating, timestamp]) table.

    Fits MovieLens ``u.data`` (tab separated, ``user item rating timestamp``; the defaults with
    ``rating_col=2, time_col=3``) and RecBole ``.inter`` files (``skip_header=True``).

    Parameters
    ----------
    path
        The file.
    sep
        Field separator; None splits on any whitespace.
    user_col, item_col, rating_col, time_col
        0-based column positions; rating and time are optional.
    skip_header
        Skip the first line (RecBole's ``user_id:token ...`` header).
    comment
        Lines starting with this are skipped (None: no comment lines).

    Raises
    ------
    ValueError
        Naming the file, the line and the field: a user or item that is not a whole number
        in ``[0, 2**31)``, a rating or timestamp that is not a finite number, a line with too
        few fields, a binary file, a file without interactions; or naming the parameter: a
        column position that is not a non-negative int, two fields in one column, an empty
        ``sep``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from streams.recsys_loaders import load_interaction_table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "u.data"
    >>> _ = path.write_text("1\\t5\\t4\\t881250949\\n2\\t5\\t3\\t881250950\\n")
    >>> data = load_interaction_table(path, rating_col=2, time_col=3)
    >>> data.users.tolist(), data.ratings.tolist(), data.times.tolist()
    ([1, 2], [4.0, 3.0], [881250949, 881250950])
    """
    check_params(
        _TABLE_CONSTRAINTS,
        {
            "user_col": user_col,
            "item_col": item_col,
            "rating_col": rating_col,
            "time_col": time_col,
            "sep": sep,
            "skip_header": skip_header,
            "comment": comment,
        },
        "load_interaction_table",
    )
    if sep == "":
        raise ValueError("The 'sep' parameter of load_interaction_table must not be ''.")
    columns = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col}
    columns = {field: int(col) for field, col in columns.items() if col is not None}
    _distinct(columns)
    width = max(columns.values()) + 1
    parsed: dict[str, list[float]] = {field: [] for field in columns}
    for line in _lines(path):
        if (skip_header and line.number == 1) or not line.text.strip():
            continue
        if comment and line.text.startswith(comment):
            continue
        fields = line.text.rstrip("\r\n").split(sep)
        if len(fields) < width:
            raise line.error(
                f"expected at least {width} fields separated by {sep!r}, got {len(fields)} in "
                f"{line.text.strip()[:80]!r}"
            )
        for field, col in columns.items():
            parsed[field].append(_PARSERS[field](line, fields[col], f"{field} field ({col})"))
    if not parsed["user"]:
        raise ValueError(
            f"{path}: no interaction lines: the file is empty (or holds only blank, comment or "
            "header lines)"
        )
    extra = {name: parsed[field] for name, field in (("ratings", "rating"), ("times", "time"))
             if field in parsed}  # fmt: skip
    with _naming(path):
        return Interactions(parsed["user"], parsed["item"], **extra)


_TABLE_CONSTRAINTS = {
    "user_col": [NON_NEGATIVE_INT],
    "item_col": [NON_NEGATIVE_INT],
    "rating_col": [NON_NEGATIVE_INT, None],
    "time_col": [NON_NEGATIVE_INT, None],
    "sep": [str, None],
    "skip_header": ["boolean"],
    "comment": [str, None],
}


def _distinct(columns: dict[str, int]) -> None:
    """Raise ValueError when two fields are read from the same column."""
    seen: dict[int, str] = {}
    for field, col in columns.items():
        if col in seen:
            raise ValueError(
                f"{field}_col={col} is the column of {seen[col]}_col: each field needs its own "
                "column"
            )
        seen[col] = field


class _Line(NamedTuple):
    """One decoded line of a file, for the parsers and their messages."""

    path: str | Path
    number: int
    text: str
    complete: bool  # it ends with a newline

    def error(self, message: str) -> ValueError:
        """A ValueError naming the file and the line (and a possible truncation)."""
        hint = "" if self.complete else " (the file ends inside this line: is it truncated?)"
        return ValueError(f"{self.path}, line {self.number}: {message}{hint}")


def _lines(path: str | Path) -> Iterator[_Line]:
    """The lines of ``path`` decoded as UTF-8; a binary file raises ValueError naming the line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = _Line(path, number, "", raw.endswith(b"\n"))
            nul = raw.find(b"\x00")
            if nul >= 0:
                raise line.error(
                    f"a NUL byte at column {nul + 1}: expected text; is this a binary file?"
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise line.error(
                    f"byte {raw[error.start]:#04x} at column {error.start + 1} is not UTF-8 text; "
                    "is this a binary file?"
                ) from None
            yield line._replace(text=text)


def _lightgcn_row(line: _Line, fields: list[str]) -> np.ndarray:
    """The IDs of a ``user item item ...`` line as int64 (a fast path, then per field)."""
    try:
        row = np.array(fields, dtype=np.int64)
    except (ValueError, OverflowError):
        row = None
    if row is None or row.min() < 0 or row.max() >= ID_LIMIT:
        names = ("user", *["item"] * (len(fields) - 1))
        row = np.array(
            [_parse_id(line, token, f"{name} field ({position})")
             for position, (name, token) in enumerate(zip(names, fields, strict=True))],
            dtype=np.int64,
        )  # fmt: skip
    return row


def _parse_id(line: _Line, token: str, field: str) -> int:
    """An ID in ``[0, 2**31)``: an int, or a float with a whole value (``"3.0"``)."""
    try:
        value = int(token)
    except ValueError:
        try:
            number = float(token)
        except ValueError:
            raise line.error(f"the {field} must be an integer ID, got {token!r}") from None
        if not number.is_integer():
            raise line.error(f"the {field} must be a whole-number ID, got {token!r}") from None
        value = int(number)
    if not 0 <= value < ID_LIMIT:
        raise line.error(f"the {field} must be an ID in [0, {ID_LIMIT}), got {token!r}")
    return value


def _parse_number(line: _Line, token: str, field: str) -> float:
    """A finite float (NaN and infinity are errors)."""
    try:
        value = float(token)
    except ValueError:
        raise line.error(f"the {field} must be a number, got {token!r}") from None
    if not math.isfinite(value):
        raise line.error(f"the {field} must be a finite number, got {token!r}")
    return value


def _parse_time(line: _Line, token: str, field: str) -> float:
    """An int timestamp (exact, even beyond 2**53), else a finite float."""
    try:
        value = int(token)
    except ValueError:
        return _parse_number(line, token, field)
    if not -(2**63) <= value < 2**63:
        raise line.error(f"the {field} must fit int64, got {token!r}")
    return value


_PARSERS: dict[str, Callable[[_Line, str, str], float]] = {
    "user": _parse_id,
    "item": _parse_id,
    "rating": _parse_number,
    "time": _parse_time,
}


@contextmanager
def _naming(path: str | Path) -> Iterator[None]:
    """Prefix the ValueError of the block with the file's name."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
