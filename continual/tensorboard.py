"""TensorBoard logging of scores, memory ledgers and figures.

TensorBoard stores scalars as 32-bit floats, so byte counts above 2**24 (about 16.8 MB) are
logged with a relative rounding error of about 6e-8.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter

__all__ = ["TensorBoardLogger"]


def _check_step(step: Any) -> int:
    """Return ``step`` as an int; whole floats such as ``3.0`` are accepted."""
    if isinstance(step, bool) or not isinstance(step, numbers.Real):
        raise TypeError(f"step must be a non-negative int, got {step!r}")
    if not math.isfinite(step) or step != int(step) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return int(step)


def _check_name(argument: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{argument} must be a non-empty str, got {name!r}")
    return name


class TensorBoardLogger:
    """Write scores, memory ledgers and figures to a TensorBoard event file.

    The event writer is created on the first call that logs something, so building a logger
    touches no file. Tags are ``"{prefix}/{name}"``. Use the logger as a context manager, or call
    :meth:`close`, to flush the events to disk.

    Parameters
    ----------
    log_dir
        Folder of the event files; it is created when the first event is written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with TensorBoardLogger(folder) as logger:
    ...         logger.log_scores(0, {"accuracy": 0.5})
    ...         logger.log_ledger(0, {"model": 400, "exemplars": 600})
    ...     logger.log_dir == folder
    True
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = log_dir
        self._reset()

    def _reset(self) -> None:
        self._writer: SummaryWriter | None = None

    def _get_writer(self) -> SummaryWriter:
        if self._writer is None:
            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        return self._writer

    def log_scores(self, step: int, scores: Mapping[str, float], prefix: str = "score") -> None:
        """Log one scalar ``"{prefix}/{name}"`` per entry of ``scores``.

        Parameters
        ----------
        step
            Global step (for example the index of the experience just trained).
        scores
            Score name to finite real value.
        prefix
            First part of every tag.

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with TensorBoardLogger(folder) as logger:
        ...         logger.log_scores(1, {"average_incremental_accuracy": 0.71})
        """
        step = _check_step(step)
        prefix = _check_name("prefix", prefix)
        if not isinstance(scores, Mapping):
            raise TypeError(f"scores must be a mapping of name to float, got {scores!r}")
        values = {}
        for name, value in scores.items():
            _check_name("score name", name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"scores[{name!r}] must be a real number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"scores[{name!r}] must be finite, got {value!r}")
            values[name] = float(value)
        writer = self._get_writer()
        for name, value in values.items():
            writer.add_scalar(f"{prefix}/{name}", value, global_step=step)

    def log_ledger(self, step: int, accounts: Mapping[str, int], prefix: str = "memory") -> None:
        """Log the bytes of every account, and their sum under ``"{prefix}/total"``.

        Parameters
        ----------
        step
            Global step of the snapshot.
        accounts
            Account name to bytes (a non-negative int), as given by the accountant's ledger.
            No account may be named ``"total"``.
        prefix
            First part of every tag.

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with TensorBoardLogger(folder) as logger:
        ...         logger.log_ledger(3, {"model": 1_000, "exemplars": 2_500})
        """
        step = _check_step(step)
        prefix = _check_name("prefix", prefix)
        if not isinstance(accounts, Mapping):
            raise TypeError(f"accounts must be a mapping of name to bytes, got {accounts!r}")
        if "total" in accounts:
            raise ValueError("accounts must not hold an account named 'total', got one")
        for name, size in accounts.items():
            _check_name("account name", name)
            if isinstance(size, bool) or not isinstance(size, numbers.Integral):
                raise TypeError(f"accounts[{name!r}] must be an int of bytes, got {size!r}")
            if size < 0:
                raise ValueError(f"accounts[{name!r}] must be non-negative, got {size}")
        writer = self._get_writer()
        for name, size in accounts.items():
            writer.add_scalar(f"{prefix}/{name}", int(size), global_step=step)
        writer.add_scalar(f"{prefix}/total", sum(int(s) for s in accounts.values()), step)

    def log_figure(self, tag: str, figure: Figure, step: int) -> None:
        """Render a matplotlib figure and log it as an image; the figure is left open.

        Parameters
        ----------
        tag
            Tag of the image.
        figure
            The figure to render.
        step
            Global step of the image.

        Examples
        --------
        >>> import tempfile
        >>> from matplotlib.figure import Figure
        >>> figure = Figure(figsize=(2, 2))
        >>> _ = figure.add_subplot().plot([0, 1], [1, 0])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with TensorBoardLogger(folder) as logger:
        ...         logger.log_figure("figures/line", figure, 0)
        """
        tag = _check_name("tag", tag)
        step = _check_step(step)
        if not isinstance(figure, Figure):
            raise TypeError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
        self._get_writer().add_figure(tag, figure, global_step=step, close=False)

    def flush(self) -> None:
        """Write pending events to disk; does nothing before the first event.

        Examples
        --------
        >>> TensorBoardLogger("unused").flush()
        """
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; a later log call opens a new one.

        Examples
        --------
        >>> TensorBoardLogger("unused").close()
        """
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TensorBoardLogger(log_dir={self.log_dir!r})"
