"""Property-based fuzzing of the recommendation loaders: generated files of good and bad
lines, and raw bytes, either load to exactly the interactions an independent reading of the
generated rows gives, or raise a ``ValueError`` that names the file and the first bad line.
"""

from __future__ import annotations

import functools
import itertools
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from streams.recsys_loaders import load_interaction_table, read_lightgcn
from tests.bad_inputs import fails_cleanly

FUZZ = settings(max_examples=60)  # the rest from the 'ci' profile (conftest.py)
_NAMES = itertools.count()

#: Tokens that are not an ID in [0, 2**31), as text.
BAD_IDS = ["-1", "1.5", "nan", "inf", "-inf", "1e20", "99999999999999999999", "2147483648", "x"]
#: Tokens that are not a finite number.
BAD_NUMBERS = ["nan", "inf", "-inf", "abc", "1e999"]


@functools.cache
def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="recsys_loader_fuzz_"))


def _write(content: str | bytes) -> Path:
    path = _folder() / f"file{next(_NAMES)}.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# a token: its text, and its value when it is valid (None when it is not)
good_ids = st.one_of(
    st.integers(0, 50).map(lambda i: (str(i), i)),
    st.integers(0, 50).map(lambda i: (f"{i}.0", i)),
)
good_numbers = st.floats(-5, 5, allow_nan=False).map(lambda x: (repr(x), x))
ids = st.one_of(good_ids, st.sampled_from(BAD_IDS).map(lambda token: (token, None)))
numbers = st.one_of(good_numbers, st.sampled_from(BAD_NUMBERS).map(lambda token: (token, None)))


def _checked(path: Path, result: object, bad_line: int | None) -> object:
    """The result, or the error, which must name the file and the first bad line."""
    if isinstance(result, Exception):
        event(f"refused: {type(result).__name__}")
        assert isinstance(result, ValueError), result
        assert str(path) in str(result), result
        if bad_line is not None:
            assert f"line {bad_line}:" in str(result), (bad_line, str(result))
    else:
        event("accepted")
    return result


# ------------------------------------------------------------------ LightGCN
lightgcn_rows = st.one_of(
    st.lists(st.tuples(good_ids, st.lists(good_ids, max_size=4)), max_size=6),
    st.lists(st.tuples(ids, st.lists(ids, max_size=4)), max_size=6),
)


@FUZZ
@given(rows=lightgcn_rows, blank_every=st.integers(0, 3))
def test_read_lightgcn_reads_good_lines_and_names_the_first_bad_one(rows, blank_every):
    lines, expected, bad_line = [], [], None
    for user, items in rows:
        if blank_every and len(lines) % (blank_every + 1) == blank_every:
            lines.append("")  # blank lines are skipped, but counted
        lines.append(" ".join(token for token, _ in [user, *items]))
        tokens_ok = all(value is not None for _, value in [user, *items])
        if bad_line is None and not tokens_ok:
            bad_line = len(lines)
        if bad_line is None:
            expected += [(user[1], value) for _, value in items]
    path = _write("\n".join(lines) + "\n")
    result = _checked(path, fails_cleanly(None, lambda _: read_lightgcn(path)), bad_line)
    if bad_line is not None:
        assert isinstance(result, ValueError)
    elif not expected:
        assert isinstance(result, ValueError) and "no interactions" in str(result)
    else:
        assert list(zip(result.users.tolist(), result.items.tolist(), strict=True)) == expected


# --------------------------------------------------------------- tables
table_rows = st.one_of(
    st.lists(st.tuples(good_ids, good_ids, good_numbers, good_numbers), max_size=6),
    st.lists(st.tuples(ids, ids, numbers, numbers), max_size=6),
)


@FUZZ
@given(rows=table_rows, sep=st.sampled_from(["\t", ",", None]), skip_header=st.booleans())
def test_load_interaction_table_reads_good_lines_and_names_the_first_bad_one(
    rows, sep, skip_header
):
    joiner = " " if sep is None else sep
    lines = ["user item rating time"] if skip_header else []
    expected, bad_line = [], None
    for row in rows:
        lines.append(joiner.join(token for token, _ in row))
        if bad_line is None and any(value is None for _, value in row):
            bad_line = len(lines)
        if bad_line is None:
            expected.append(tuple(value for _, value in row))
    path = _write("\n".join(lines) + "\n")
    load = functools.partial(
        load_interaction_table, sep=sep, rating_col=2, time_col=3, skip_header=skip_header
    )
    result = _checked(path, fails_cleanly(None, lambda _: load(path)), bad_line)
    if bad_line is not None:
        assert isinstance(result, ValueError)
    elif not expected:
        assert isinstance(result, ValueError) and "no interaction" in str(result)
    else:
        users, items, ratings, times = zip(*expected, strict=True)
        assert result.users.tolist() == list(users) and result.items.tolist() == list(items)
        assert result.ratings.tolist() == pytest.approx([float(r) for r in ratings], rel=1e-6)
        assert result.times.tolist() == pytest.approx(list(times))
        assert all(math.isfinite(t) for t in result.times.tolist())


# ------------------------------------------------------------------- bytes
@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=40).map(lambda b: b"0 1 2\n" + b),  # a good line, then bytes
    )
)
def test_any_bytes_load_or_fail_naming_the_file(content):
    path = _write(content)
    for load in (read_lightgcn, load_interaction_table):
        result = _checked(path, fails_cleanly(None, lambda _, load=load: load(path)), None)
        if not isinstance(result, Exception):  # what loads holds only valid IDs
            assert len(result) > 0 and result.users.min() >= 0 and result.items.min() >= 0
