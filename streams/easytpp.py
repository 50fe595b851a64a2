"""Read event sequences in the EasyTPP row layout: JSON files, or a list of dicts in memory.

:func:`load_easytpp` reads files (or a list of dicts); :func:`as_event_sequences` is what an
estimator calls on its input: :class:`~streams.events.EventSequences` as they are, or a list
of EasyTPP dicts read by the same converter. One reader, one set of errors.
"""

from __future__ import annotations

import json
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from continual.validation import COUNT, NON_NEGATIVE_FLOAT, check_ids, check_params
from streams.events import EventSequences, _raise_first, check_events

__all__ = ["as_event_sequences", "load_easytpp"]

_FIELDS = ("time_since_start", "time_since_last_event", "type_event", "dim_process")
_LAYOUT = f"a dict in the EasyTPP layout (fields {list(_FIELDS)})"


def _records(source: Any) -> tuple[list[Any], list[str]]:
    """The records of ``source`` and their names in messages (file and record, or index)."""
    if (
        isinstance(source, Sequence)
        and not isinstance(source, str)
        and len(source)
        and isinstance(source[0], (str, Path))
    ):
        records: list[Any] = []
        labels: list[str] = []
        for part in source:  # several files, in order
            if not isinstance(part, (str, Path)):
                raise TypeError(f"source must be a list of paths, got {part!r} among them")
            more, names = _records(part)
            records, labels = records + more, labels + names
        return records, labels
    if isinstance(source, (str, Path)):
        path = Path(source)
        records = _read_json(path)
        return records, [f"{path}, record {i}" for i in range(len(records))]
    if isinstance(source, Mapping) or not isinstance(source, Iterable):
        raise TypeError(
            f"source must be a path or a list of dicts in the EasyTPP layout, got "
            f"{type(source).__name__}"
        )
    records = list(source)
    return records, [f"source[{i}]" for i in range(len(records))]


def _read_json(path: Path) -> list[Any]:
    """The JSON list in the file ``path``; every error names the file (and the line)."""
    if not path.is_file():
        raise ValueError(f"source must be an existing JSON file, got {str(path)!r}")
    content = path.read_bytes()
    if not content.strip():
        raise ValueError(f"{path} is empty: expected a JSON list of EasyTPP records")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not a JSON text file: byte {content[error.start]:#04x} at offset "
            f"{error.start} is not UTF-8 (a binary file?)"
        ) from None
    if "\x00" in text:
        raise ValueError(
            f"{path} is not a JSON text file: a NUL byte at offset {text.index(chr(0))} "
            "(a binary file?)"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        cut = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated")
        ends = " (the file ends too early: truncated?)" if cut else ""
        raise ValueError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}{ends}"
        ) from None
    if not isinstance(data, list):
        raise TypeError(
            f"{path} must hold a JSON list of EasyTPP records, got a JSON {_json_kind(data)}"
        )
    if not data:
        raise ValueError(f"{path} holds an empty list: expected at least one EasyTPP record")
    return data


def _json_kind(value: Any) -> str:
    kinds = {bool: "boolean", dict: "object", str: "string", int: "number", float: "number"}
    return kinds.get(type(value), "null" if value is None else type(value).__name__)


def load_easytpp(source: Any, *, atol: float = 1e-6) -> EventSequences:
    """Read EasyTPP-layout sequences into :class:`~streams.events.EventSequences`.

    Each sequence is a dict with ``time_since_start`` (absolute times), ``time_since_last_event``
    (gaps, the first one 0), ``type_event`` (whole numbers in ``[0, dim_process)``) and
    ``dim_process``.
    Times must be finite, non-negative and sorted, and types in range (otherwise ValueError). The
    absolute times are the truth: where a gap disagrees with the difference of absolute times by
    more than ``atol`` (relative to the time scale), the gaps are recomputed from the absolute
    times and one warning gives the count of disagreeing gaps.

    Parameters
    ----------
    source
        A path to a JSON file holding a list of such dicts, a list of such paths (their
        sequences are concatenated in order, e.g. a train, dev and test split), or the list
        of dicts itself.
    atol
        Tolerance of the gap check, relative to ``max(1, |time|)``; a finite float >= 0.

    Returns
    -------
    EventSequences

    Raises
    ------
    ValueError
        For a file that does not exist, is empty, binary or not valid JSON (naming the file
        and the line), an empty list, a record without the EasyTPP fields, a field that is not
        a flat list, unequal lengths, NaN or infinite numbers (in any field), negative or
        unsorted times, types that are not whole numbers in ``[0, dim_process)``, a
        ``dim_process`` that is not an int >= 1 or differs between records, or a bad ``atol``.
        Each names the file and the record (or the list index), the field, the value and its
        position.
    TypeError
        For a source that is not a path or a list, a JSON file that does not hold a list, a
        record that is not a dict, or a field that holds something other than numbers.

    Examples
    --------
    >>> rows = [{"dim_process": 2, "time_since_start": [0.0, 1.0, 3.0],
    ...          "time_since_last_event": [0.0, 1.0, 2.0], "type_event": [0, 1, 1]}]
    >>> load_easytpp(rows)
    EventSequences(n_sequences=1, n_events=3, dim_process=2)
    """
    check_params({"atol": [NON_NEGATIVE_FLOAT]}, {"atol": atol}, "load_easytpp")
    records, labels = _records(source)
    return _from_records(records, labels, atol=atol)


def as_event_sequences(sequences: Any, dim_process: int | None = None) -> EventSequences:
    """An estimator's event input as :class:`~streams.events.EventSequences`.

    ``sequences`` is an ``EventSequences`` container (returned as it is) or a list of dicts in
    the EasyTPP layout (read as :func:`load_easytpp` reads them, with the same checks and
    errors). Paths are not read here: load files with :func:`load_easytpp`.

    Parameters
    ----------
    sequences
        ``EventSequences``, or a list or tuple of EasyTPP dicts.
    dim_process
        The number of event types expected (the one an estimator was fitted with), or None.

    Raises
    ------
    TypeError
        For any other input.
    ValueError
        For no sequence, a dict without the EasyTPP fields, unsorted, negative or non-finite
        times, types out of range, or a ``dim_process`` other than the expected: each names
        the sequence (``sequences[i]``), the field and the value, as :func:`load_easytpp`.

    Examples
    --------
    >>> rows = [{"dim_process": 2, "time_since_start": [0.0, 1.0],
    ...          "time_since_last_event": [0.0, 1.0], "type_event": [0, 1]}]
    >>> as_event_sequences(rows)
    EventSequences(n_sequences=1, n_events=2, dim_process=2)
    >>> try:
    ...     as_event_sequences(rows, dim_process=3)
    ... except ValueError as error:
    ...     print(error)
    sequences have dim_process=2, expected 3 (the number of types the estimator was fitted on)
    """
    if isinstance(sequences, EventSequences):
        if not len(sequences):
            raise ValueError("sequences must hold at least one sequence, got none")
        data = sequences
    elif isinstance(sequences, (list, tuple)):
        labels = [f"sequences[{i}]" for i in range(len(sequences))]
        data = _from_records(list(sequences), labels, argument="sequences")
    else:
        raise TypeError(
            "sequences must be EventSequences or a list of dicts in the EasyTPP layout, got "
            f"{type(sequences).__name__}; read files with streams.load_easytpp"
        )
    if dim_process is not None and int(data.dim_process) != int(dim_process):
        raise ValueError(
            f"sequences have dim_process={data.dim_process}, expected {dim_process} (the number "
            "of types the estimator was fitted on)"
        )
    return data


def _from_records(
    records: list[Any], labels: list[str], *, atol: float = 1e-6, argument: str = "source"
) -> EventSequences:
    """The one converter of EasyTPP records into ``EventSequences``, with every check."""
    if not records:
        raise ValueError(f"{argument} must hold at least one sequence, got an empty list")
    parsed = [_parse_record(record, label) for record, label in zip(records, labels)]
    dims = [dim for *_, dim in parsed]
    for label, dim in zip(labels, dims):
        if dim != dims[0]:
            raise ValueError(
                f"dim_process must be the same for every sequence: {label} has {dim}, "
                f"{labels[0]} has {dims[0]}"
            )
    lengths = [len(times) for times, *_ in parsed]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    times, gaps, types = (np.concatenate([part[i] for part in parsed]) for i in range(3))
    where = labels.__getitem__
    check_events(times, types, offsets, dims[0], where=where, fields=_FIELDS[::2])
    expected = "time_since_last_event must hold finite numbers"
    _raise_first(~np.isfinite(gaps), gaps, offsets, where, expected)
    _warn_disagreeing_gaps(times, gaps, offsets, atol)
    return EventSequences(times, types, offsets, dims[0])


def _parse_record(record: Any, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(times, gaps, types, dim_process)`` of one record, each field checked on its own."""
    if not isinstance(record, Mapping):
        raise TypeError(f"{label} must be {_LAYOUT}, got {type(record).__name__}")
    missing = [name for name in _FIELDS if name not in record]
    if missing:
        raise ValueError(f"{label} lacks the EasyTPP fields {missing}")
    dim = record["dim_process"]
    if isinstance(dim, bool) or not COUNT.is_satisfied_by(dim):
        raise ValueError(f"{label}: dim_process must be {COUNT}; got {dim!r}")
    times = _numbers(record, "time_since_start", label)
    gaps = _numbers(record, "time_since_last_event", label)
    _flat(record, "type_event", label)
    types = check_ids(record["type_event"], f"{label}: type_event", upper=dim, what="event types")
    if not len(times) == len(gaps) == len(types):
        raise ValueError(
            f"{label}: time_since_start, time_since_last_event and type_event must have equal "
            f"lengths, got {len(times)}, {len(gaps)} and {len(types)}"
        )
    return times, gaps, types, int(dim)


def _flat(record: Mapping[str, Any], field: str, label: str) -> np.ndarray:
    """``record[field]`` as a 1-d array (a ValueError for anything else; a TypeError for a
    boolean among numbers)."""
    value = record[field]
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists
        array = np.asarray(None)
    if array.ndim != 1:
        raise ValueError(f"{label}: {field} must be a flat list of numbers, got {value!r:.80}")
    if array.dtype != bool and isinstance(value, (list, tuple)):  # [0, True] reads as [0, 1]
        for position, item in enumerate(value):
            if isinstance(item, (bool, np.bool_)):
                raise TypeError(
                    f"{label}: {field} must hold numbers; got {item!r} at position {position}"
                )
    return array


def _numbers(record: Mapping[str, Any], field: str, label: str) -> np.ndarray:
    """``record[field]`` as float64 (a TypeError names the first entry that is no number)."""
    array = _flat(record, field, label)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        for position, value in enumerate(record[field]):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"{label}: {field} must hold numbers; got {value!r} at position {position}"
                )
    return array.astype(np.float64)


def _warn_disagreeing_gaps(
    times: np.ndarray, gaps: np.ndarray, offsets: np.ndarray, atol: float
) -> None:
    """One warning with the number of gaps that disagree with the absolute times."""
    inner = np.ones(len(times), dtype=bool)
    inner[offsets[:-1]] = False  # each sequence's first gap is not compared
    steps = np.diff(times, prepend=0.0)
    scale = np.maximum(1.0, np.abs(times))
    disagree = int(np.sum(inner & (np.abs(gaps - steps) > atol * scale)))
    if disagree:
        warnings.warn(
            f"{disagree} gaps in time_since_last_event disagree with time_since_start; gaps "
            "are recomputed from the absolute times",
            UserWarning,
            stacklevel=4,
        )
