"""RunFolder: the one writer of an experiment's run folder.

Every Hydra experiment writes the same things the same way: ``results.json``, PNG figures,
TensorBoard scalars under ``tb/<run>/`` (the training-loss curve, the scores after each
experience and every ledger account over time) and its printed table, which also goes to the
run's log (``<job>.log`` under Hydra) through the ``continual.runner`` logger. Under
data-parallel training only rank 0 writes; on the other ranks every method does nothing.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from continual.distributed import is_writer
from continual.tensorboard import TensorBoardLogger

__all__ = ["RunFolder"]

log = logging.getLogger("continual.runner")


class RunFolder:
    """The output folder of one experiment run.

    Parameters
    ----------
    path
        The folder; it is created if needed.

    Examples
    --------
    >>> import tempfile
    >>> from continual.run_folder import RunFolder
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     run = RunFolder(folder)
    ...     run.log_experience("replay", 0, losses=[0.9, 0.5], ledger={"model": 400},
    ...                        scores={"accuracy": 0.8})
    ...     results = run.finish({"runs": []}, "method  accuracy\\nreplay     0.800")
    ...     sorted(p.name for p in run.path.iterdir())
    ['results.json', 'tb']
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.writes = is_writer()
        if self.writes:
            self.path.mkdir(parents=True, exist_ok=True)
        self._loggers: dict[str, TensorBoardLogger] = {}
        self._epochs: dict[str, int] = {}

    def figure(self, name: str, figure: Figure) -> Path:
        """Save ``figure`` as ``<name>.png`` in the folder, then clear it; return the path."""
        path = self.path / f"{name}.png"
        if self.writes:
            figure.savefig(path)
        figure.clear()
        return path

    def log_experience(
        self,
        run: str,
        step: int,
        *,
        losses: list[float] | None = None,
        ledger: dict[str, int] | None = None,
        scores: dict[str, float] | None = None,
    ) -> None:
        """Log one experience of ``run`` to TensorBoard (``tb/<run>/``).

        ``losses`` (the mean training loss of each epoch of the experience) extend the
        run's ``train/loss`` curve, stepped by epoch; ``ledger`` (bytes per account) and
        ``scores`` are logged at ``step``.
        """
        if not self.writes:
            return
        logger = self._loggers.setdefault(run, TensorBoardLogger(self.path / "tb" / run))
        for loss in losses or []:
            epoch = self._epochs.get(run, 0)
            if math.isfinite(loss):
                logger.log_scores(epoch, {"loss": loss}, prefix="train")
            self._epochs[run] = epoch + 1
        if ledger:
            logger.log_ledger(step, ledger)
        finite = {k: v for k, v in (scores or {}).items() if v is not None and math.isfinite(v)}
        if finite:
            logger.log_scores(step, finite)

    def finish(self, results: dict[str, Any], table: str) -> dict[str, Any]:
        """Write ``results.json`` (with the table), log the table, close TensorBoard files."""
        results = {**results, "table": table}
        if not self.writes:
            return results
        (self.path / "results.json").write_text(json.dumps(results, indent=2, default=_json))
        log.info("results in %s\n%s", self.path, table)
        for logger in self._loggers.values():
            logger.close()
        return results


def _json(value: Any) -> Any:
    """JSON for numpy scalars and arrays inside results."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"results hold a {type(value).__name__}, which JSON cannot write")
