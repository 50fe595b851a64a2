"""Read event sequences in the EasyTPP row layout: JSON files, or a list of dicts in memory.

:func:`load_easytpp` reads files (or a list of dicts); :func:`as_event_sequences` is what an
estimator calls on its input: :class:`~streams.events.EventSequences` as they are, or a list
of EasyTPP dicts read by the same converter. One reader, one set of errors.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streams.events import EventSequences

__all__ = ["as_event_sequences", "load_easytpp"]

_FIELDS = ("time_since_start", "time_since_last_event", "type_event", "dim_process")


def _rows(source: Any) -> list[Mapping[str, Any]]:
    if (
        isinstance(source, Sequence)
        and not isinstance(source, str)
        and len(source)
        and isinstance(source[0], (str, Path))
    ):
        return [row for part in source for row in _rows(part)]  # several files, in order
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"source must be an existing JSON file, got {str(path)!r}")
        source = json.loads(path.read_text())
    if isinstance(source, Mapping) or not isinstance(source, Iterable):
        raise TypeError(
            f"source must be a path or a list of dicts in the EasyTPP layout, got "
            f"{type(source).__name__}"
        )
    return _checked_rows(list(source), "source")


def _checked_rows(rows: list[Any], argument: str) -> list[Mapping[str, Any]]:
    """``rows`` when it holds at least one dict and every dict has the EasyTPP fields."""
    if not rows:
        raise ValueError(f"{argument} must hold at least one sequence, got an empty list")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(
                f"{argument}[{i}] must be a dict in the EasyTPP layout (fields {list(_FIELDS)}), "
                f"got {type(row).__name__}"
            )
        missing = [name for name in _FIELDS if name not in row]
        if missing:
            raise ValueError(f"{argument}[{i}] lacks the EasyTPP fields {missing}")
    return rows


def load_easytpp(source: Any, *, atol: float = 1e-6) -> EventSequences:
    """Read EasyTPP-layout sequences into :class:`~streams.events.EventSequences`.

    Each sequence is a dict with ``time_since_start`` (absolute times), ``time_since_last_event``
    (gaps, the first one 0), ``type_event`` (ints in ``[0, dim_process)``) and ``dim_process``.
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
        Tolerance of the gap check, relative to ``max(1, |time|)``.

    Returns
    -------
    EventSequences

    Examples
    --------
    >>> rows = [{"dim_process": 2, "time_since_start": [0.0, 1.0, 3.0],
    ...          "time_since_last_event": [0.0, 1.0, 2.0], "type_event": [0, 1, 1]}]
    >>> load_easytpp(rows)
    EventSequences(n_sequences=1, n_events=3, dim_process=2)
    """
    return _from_rows(_rows(source), atol=atol)


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
        For an empty list, a dict without the EasyTPP fields, unsorted, negative or
        non-finite times, types out of range, or a ``dim_process`` other than the expected.

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
        data = sequences
    elif isinstance(sequences, (list, tuple)):
        data = _from_rows(_checked_rows(list(sequences), "sequences"))
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


def _from_rows(rows: list[Mapping[str, Any]], *, atol: float = 1e-6) -> EventSequences:
    """The one converter of checked EasyTPP rows into ``EventSequences``."""
    dims = {int(row["dim_process"]) for row in rows}
    if len(dims) != 1:
        raise ValueError(f"dim_process must be the same for every sequence, got {sorted(dims)}")
    times, types, disagree = [], [], 0
    for i, row in enumerate(rows):
        t = np.asarray(row["time_since_start"], dtype=np.float64)
        k = np.asarray(row["type_event"])
        gaps = np.asarray(row["time_since_last_event"], dtype=np.float64)
        if t.shape != k.shape or gaps.shape != t.shape or t.ndim != 1:
            raise ValueError(
                f"sequence {i}: time_since_start, time_since_last_event and type_event must "
                f"have equal lengths, got {t.shape}, {gaps.shape} and {k.shape}"
            )
        if k.size and not np.issubdtype(k.dtype, np.integer):
            raise ValueError(f"sequence {i}: type_event must hold ints, got dtype {k.dtype}")
        if t.size > 1 and np.all(np.isfinite(t)):
            scale = np.maximum(1.0, np.abs(t[1:]))
            disagree += int(np.sum(np.abs(gaps[1:] - np.diff(t)) > atol * scale))
        times.append(t)
        types.append(k.astype(np.int64) if k.size else np.zeros(0, dtype=np.int64))
    if disagree:
        warnings.warn(
            f"{disagree} gaps in time_since_last_event disagree with time_since_start; gaps "
            "are recomputed from the absolute times",
            UserWarning,
            stacklevel=3,
        )
    return EventSequences.from_lists(times, types, dims.pop())
