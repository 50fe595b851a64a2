"""Task-free streams: cut a sequence into experiences where a river drift detector fires."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from river import base, drift
from sklearn.utils import check_scalar

from streams.adapters import _check_xy, _contiguous_stream
from streams.experience import Stream


def _fresh_detector(detector: Any) -> base.DriftDetector | base.BinaryDriftDetector:
    if detector is None:
        return drift.ADWIN()
    if not isinstance(detector, (base.DriftDetector, base.BinaryDriftDetector)):
        raise TypeError(
            "detector must be a river drift detector (river.base.DriftDetector or "
            f"BinaryDriftDetector), got {type(detector).__name__}"
        )
    return detector.clone()


def _check_signal(signal: Any, binary: bool) -> np.ndarray:
    signal = np.asarray(signal, dtype=float)
    if signal.ndim != 1 or len(signal) == 0:
        raise ValueError(f"signal must be a non-empty 1-D array, got shape {signal.shape}")
    if not np.all(np.isfinite(signal)):
        raise ValueError("signal must be finite, got NaN or infinite values")
    if binary and not np.all((signal == 0) | (signal == 1)):
        raise ValueError("signal must hold only 0 and 1 for a binary drift detector")
    return signal


def detect_drifts(signal: Any, *, detector: Any = None, min_size: int = 1) -> np.ndarray:
    """Positions where a drift detector fires, kept only if every segment has ``min_size`` rows.

    ``signal[t]`` is fed to the detector in order; when ``drift_detected`` is true after the
    update at ``t``, a new segment starts at ``t``. A cut is skipped if the segment it closes,
    or the rest of the signal, would be shorter than ``min_size``.

    Parameters
    ----------
    signal
        1-D sequence of finite floats, e.g. a per-sample loss (0/1 errors for a binary detector).
    detector
        A river drift detector; it is cloned, so the object passed is never updated. None uses a
        fresh ``river.drift.ADWIN()``.
    min_size
        Smallest segment length allowed.

    Returns
    -------
    numpy.ndarray
        The sorted cut points (int), each the first position of a new segment.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> signal = np.concatenate([rng.normal(0, 0.1, 500), rng.normal(1, 0.1, 500)])
    >>> detect_drifts(signal)
    array([511])
    """
    detector = _fresh_detector(detector)
    binary = isinstance(detector, base.BinaryDriftDetector)
    signal = _check_signal(signal, binary)
    check_scalar(min_size, "min_size", numbers.Integral, min_val=1)
    cuts: list[int] = []
    for t, value in enumerate(signal.tolist()):
        detector.update(bool(value) if binary else value)
        last = cuts[-1] if cuts else 0
        if detector.drift_detected and t - last >= min_size and len(signal) - t >= min_size:
            cuts.append(t)
    return np.asarray(cuts, dtype=int)


def segment_by_drift(
    X: Any,
    y: Any = None,
    *,
    signal: Any,
    detector: Any = None,
    min_size: int = 1,
    name: str = "drift",
) -> Stream:
    """Cut a task-free sequence into contiguous experiences at the drifts of ``signal``.

    The cut points are those of :func:`detect_drifts`; ``stream[i].metadata["start"]`` for
    ``i >= 1`` recovers them.

    Parameters
    ----------
    X
        Inputs, one row per time step.
    y
        Targets with as many rows as ``X``, or None.
    signal
        1-D float array with one value per row of ``X`` (e.g. per-sample loss).
    detector
        A river drift detector, cloned before use; None uses ``river.drift.ADWIN()``.
    min_size
        Smallest number of rows in an experience.
    name
        Name of the stream.

    Returns
    -------
    Stream
        Experiences with ``train=(X[start:stop], y[start:stop])`` and
        ``metadata={"start": start, "stop": stop}``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> signal = np.concatenate([rng.normal(0, 0.1, 500), rng.normal(1, 0.1, 500)])
    >>> stream = segment_by_drift(np.arange(1000), signal=signal)
    >>> [dict(exp.metadata) for exp in stream]
    [{'start': 0, 'stop': 511}, {'start': 511, 'stop': 1000}]
    """
    X, y = _check_xy(X, y)
    signal_array = np.asarray(signal)
    if signal_array.ndim != 1 or len(signal_array) != len(X):
        raise ValueError(
            f"signal must be 1-D with one value per row of X ({len(X)}), "
            f"got shape {signal_array.shape}"
        )
    cuts = detect_drifts(signal_array, detector=detector, min_size=min_size)
    chunks = np.split(np.arange(len(X)), cuts)
    return _contiguous_stream(X, y, chunks, name=name)
