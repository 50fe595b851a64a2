"""Fuzzing of the EasyTPP loader: generated records, JSON texts and bytes, written to files.

The property: ``load_easytpp`` either returns sequences, and then the input was valid by an
independent reading of the EasyTPP layout (:func:`valid_records`) and the sequences hold what
the records say, or raises a ``ValueError`` / ``TypeError`` whose message names the file.
The record strategies and the validity oracle are shared with :mod:`tests.tpp.test_fuzz`.
"""

from __future__ import annotations

import json
import math
import warnings
from itertools import pairwise
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.easytpp import load_easytpp
from tests.bad_inputs import fails_cleanly

FIELDS = ("time_since_start", "time_since_last_event", "type_event", "dim_process")
FUZZ = settings(max_examples=40)  # the rest from the 'ci' profile (conftest.py)

#: Anything that may replace one entry of a field.
BAD_ENTRIES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1, 0.5, 2, 7, 1e300]),
    st.text(max_size=2),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 2), max_size=2),
)
#: Anything that may replace a whole field.
BAD_FIELDS = st.one_of(
    st.none(),
    st.integers(-1, 3),
    st.floats(),
    st.text(max_size=3),
    st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
)


@st.composite
def records(draw: Any, dim: int = 2) -> dict[str, Any]:
    """A valid EasyTPP record, with 0 to 2 mutations (entries, order, fields, dim_process)."""
    times = sorted(draw(st.lists(st.floats(0.0, 50.0), min_size=0, max_size=5)))
    n = len(times)
    record: dict[str, Any] = {
        "dim_process": dim,
        "time_since_start": times,
        "time_since_last_event": [0.0] * min(n, 1) + [b - a for a, b in pairwise(times)],
        "type_event": draw(st.lists(st.integers(0, dim - 1), min_size=n, max_size=n)),
    }
    for _ in range(draw(st.integers(0, 2))):
        mutate(draw, record)
    return record


def mutate(draw: Any, record: dict[str, Any]) -> None:
    """One random change of ``record`` (which may leave it valid)."""
    field = draw(st.sampled_from(FIELDS))
    how = draw(st.sampled_from(["entry", "swap", "drop", "delete", "replace"]))
    value = record.get(field)
    if field == "dim_process" or how == "replace":
        record[field] = draw(st.one_of(BAD_FIELDS, st.integers(-1, 4)))
    elif how == "delete":
        record.pop(field, None)
    elif isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        if how == "entry":
            value[i] = draw(BAD_ENTRIES)
        elif how == "drop":
            del value[i]
        else:
            value[i], value[0] = value[0], value[i]


def _number(x: Any) -> bool:
    return type(x) in (int, float) and math.isfinite(x)


def valid_record(record: Any, dim: int | None = None) -> bool:
    """The EasyTPP layout, read independently of the loader."""
    if not isinstance(record, dict) or any(field not in record for field in FIELDS):
        return False
    k = record["dim_process"]
    if type(k) is not int or k < 1 or (dim is not None and k != dim):
        return False
    t, g, types = (record[field] for field in FIELDS[:3])
    if not all(isinstance(x, list) for x in (t, g, types)) or not len(t) == len(g) == len(types):
        return False
    if not t or not all(_number(x) for x in t + g + types):
        return False
    if any(x < 0 for x in t) or any(b < a for a, b in pairwise(t)):
        return False
    return all(x == int(x) and 0 <= x < k for x in types)


def valid_records(data: Any, dim: int | None = None) -> bool:
    """A non-empty list of valid records sharing one ``dim_process`` (``dim`` when given)."""
    if not isinstance(data, list) or not data:
        return False
    if not all(valid_record(record, dim) for record in data):
        return False
    return len({record["dim_process"] for record in data}) == 1


def assert_holds(sequences: Any, data: list[dict[str, Any]]) -> None:
    """``sequences`` hold the times and types of ``data``, in order."""
    assert sequences.times.tolist() == [float(t) for r in data for t in r["time_since_start"]]
    assert sequences.types.tolist() == [int(k) for r in data for k in r["type_event"]]
    assert sequences.lengths.tolist() == [len(r["type_event"]) for r in data]


def _load(path: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gaps that disagree: recomputed, with a warning
        return fails_cleanly(None, lambda _: load_easytpp(path))


@FUZZ
@given(data=st.lists(records(), min_size=0, max_size=4))
def test_generated_records_are_read_or_refused_naming_the_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "records.json"
    path.write_text(json.dumps(data))  # NaN and inf as JSON's NaN, Infinity
    result = _load(path)
    if isinstance(result, Exception):
        assert not valid_records(data), f"valid records refused: {result}"
        assert "records.json" in str(result), result
    else:
        assert valid_records(data), f"invalid records accepted: {data}"
        assert_holds(result, data)


@FUZZ
@given(data=st.lists(records(), min_size=1, max_size=3), cut=st.integers(0, 10_000))
def test_truncated_json_names_the_file_and_the_line(tmp_path_factory, data, cut):
    text = json.dumps(data, indent=1)
    path = tmp_path_factory.mktemp("fuzz") / "cut.json"
    path.write_text(text[: cut % len(text)])
    error = _load(path)
    assert isinstance(error, ValueError), error
    assert "cut.json" in str(error) and ("line" in str(error) or "empty" in str(error)), error


@FUZZ
@given(content=st.binary(max_size=64))
def test_arbitrary_bytes_are_refused_naming_the_file(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "bytes.json"
    path.write_bytes(content)
    result = _load(path)
    if isinstance(result, Exception):
        assert "bytes.json" in str(result), result
    else:  # a few bytes can spell a valid file
        assert valid_records(json.loads(content)), content


@FUZZ
@given(data=st.lists(records(), min_size=0, max_size=4))
def test_records_in_memory_are_read_or_refused(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fails_cleanly(None, lambda _: load_easytpp(data))
    assert isinstance(result, Exception) != valid_records(data), (result, data)
    if not isinstance(result, Exception):
        assert np.all(np.diff(result.offsets) >= 1)
