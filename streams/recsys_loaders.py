"""Loaders for recommendation data: the LightGCN format and delimited interaction tables.

Both read plain text and raise ``ValueError`` naming the file and the line number of the first
malformed line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streams.interactions import Interactions

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
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                row = np.array(fields, dtype=np.int64)
            except ValueError:
                raise ValueError(
                    f"{path}, line {number}: expected integer IDs 'user item item ...', "
                    f"got {line.strip()[:80]!r}"
                ) from None
            if row.min() < 0:
                raise ValueError(
                    f"{path}, line {number}: IDs must be non-negative, got {int(row.min())}"
                )
            users.append(np.full(row.size - 1, row[0]))
            items.append(row[1:])
    if not users:
        return Interactions([], [], n_users=n_users or 0, n_items=n_items or 0)
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
    comment: str = "#",
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
        Lines starting with this are skipped.

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
    columns = {"user_col": user_col, "item_col": item_col}
    columns.update(
        {k: v for k, v in (("rating_col", rating_col), ("time_col", time_col)) if v is not None}
    )
    for name, value in columns.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    width = max(columns.values()) + 1
    rows: list[list[float]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if (skip_header and number == 1) or not line.strip() or line.startswith(comment):
                continue
            fields = line.rstrip("\n").split(sep)
            if len(fields) < width:
                raise ValueError(
                    f"{path}, line {number}: expected at least {width} fields separated by "
                    f"{sep!r}, got {len(fields)} in {line.strip()[:80]!r}"
                )
            try:
                rows.append([float(fields[c]) for c in columns.values()])
            except ValueError:
                raise ValueError(
                    f"{path}, line {number}: expected numeric fields, got {line.strip()[:80]!r}"
                ) from None
            user, item = rows[-1][0], rows[-1][1]
            if user < 0 or item < 0 or user != int(user) or item != int(item):
                raise ValueError(
                    f"{path}, line {number}: user and item must be non-negative integers, "
                    f"got {line.strip()[:80]!r}"
                )
    table = np.array(rows, dtype=np.float64).reshape(-1, len(columns))
    names = list(columns)
    extra = {
        key: table[:, names.index(col)]
        for key, col in (("ratings", "rating_col"), ("times", "time_col"))
        if col in names
    }
    return Interactions(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), **extra)
