"""What the peer benchmarks share: the command line, the alternation, medians and ratios, and
the JSON document.

A peer benchmark measures two *sides*: the peer's, run by a script in the peer's own
environment (:class:`benchmarks.peers.environment.PeerEnvironment`), and ours, run in this
process. :func:`alternate` runs them in turn, ``repeats`` times, swapping which goes first in
every repeat, so that a change of load on a shared machine falls on both. Every speed is a
median over repeats; the ratio is ours over the peer's, for medians and (less disturbed by
drift) as the median of the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import statistics
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from benchmarks.machine import machine_info

__all__ = [
    "DATA_ROOT",
    "RESULTS",
    "alternate",
    "base_parser",
    "median",
    "paired_ratio",
    "single_threaded",
    "speed_row",
    "tree_state",
    "write_document",
]

ROOT = Path(__file__).resolve().parents[2]
DATA_ROOT = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def base_parser(description: str, peer: str) -> argparse.ArgumentParser:
    """The options every peer benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data", type=Path, default=DATA_ROOT, help="the shared data folder (../shared/data)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny synthetic smoke run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=RESULTS / f"peers_{peer}.json", help="JSON document"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder of the peer environments (default $CONTINUAL_BUDGET_PEERS or "
        "~/.cache/continual-budget/peers)",
    )
    parser.add_argument("--rebuild", action="store_true", help="make the peer environment anew")
    parser.add_argument(
        "--ours-only", action="store_true", help="run our side only (no peer environment)"
    )
    return parser


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """One thread for torch and for the BLAS under numpy and scipy, as the peer's side gets
    (``OMP_NUM_THREADS=1``): without it numpy's OpenBLAS would use every core on our side."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def alternate(
    sides: Mapping[str, Callable[[], dict[str, Any]]],
    repeats: int,
    *,
    log: Callable[[str], Any] = print,
) -> dict[str, list[dict[str, Any]]]:
    """Run every side ``repeats`` times, rotating the order each repeat, on one thread
    (:func:`single_threaded`); return each side's results in repeat order.

    Examples
    --------
    >>> calls = []
    >>> sides = {name: (lambda name=name: calls.append(name) or {}) for name in ("peer", "ours")}
    >>> runs = alternate(sides, 3, log=lambda _: None)
    >>> calls, len(runs["ours"])
    (['peer', 'ours', 'ours', 'peer', 'peer', 'ours'], 3)
    """
    names = list(sides)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with single_threaded():
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                log(f"[peers] repeat {repeat + 1}/{repeats}: {name}")
                results[name].append(sides[name]())
    return results


def median(values: Sequence[float]) -> float:
    """The median as a float."""
    return float(statistics.median(values))


def paired_ratio(ours: Sequence[float], peer: Sequence[float], *, higher_is_better: bool) -> float:
    """Median over repeats of ours/peer (``higher_is_better``: a rate) or peer/ours (a time):
    above 1 means ours is faster.

    Examples
    --------
    >>> paired_ratio([2.0, 4.0, 3.0], [1.0, 1.0, 2.0], higher_is_better=True)
    2.0
    >>> paired_ratio([1.0, 2.0, 1.0], [3.0, 2.0, 2.0], higher_is_better=False)
    2.0
    """
    pairs = zip(ours, peer)
    if higher_is_better:
        return median([o / p for o, p in pairs])
    return median([p / o for o, p in pairs])


def speed_row(
    what: str,
    ours: Sequence[float],
    peer: Sequence[float],
    *,
    higher_is_better: bool,
    target: float | None,
) -> dict[str, Any]:
    """One row of a speed table: both medians, the ratio of medians and the paired ratio
    (ours faster when above 1), and whether the ratio of medians meets ``target``. With no
    peer runs (``--ours-only``) the peer's cells are None.

    Examples
    --------
    >>> row = speed_row("events/s", [30.0, 20.0, 40.0], [10.0, 10.0, 20.0],
    ...                 higher_is_better=True, target=1.5)
    >>> row["ratio"], row["paired_ratio"], row["met"]  # medians 30 / 10; pairs 3, 2, 2
    (3.0, 2.0, True)
    >>> speed_row("s", [1.0], [], higher_is_better=False, target=3.0)["ratio"] is None
    True
    """
    if not peer:
        return {
            "what": what,
            "ours": median(ours),
            "peer": None,
            "ratio": None,
            "paired_ratio": None,
            "target": target,
            "met": None,
            "ours_runs": list(ours),
            "peer_runs": [],
        }
    ours_median, peer_median = median(ours), median(peer)
    ratio = ours_median / peer_median if higher_is_better else peer_median / ours_median
    return {
        "what": what,
        "ours": ours_median,
        "peer": peer_median,
        "ratio": ratio,
        "paired_ratio": paired_ratio(ours, peer, higher_is_better=higher_is_better),
        "target": target,
        "met": None if target is None else bool(ratio >= target),
        "ours_runs": list(ours),
        "peer_runs": list(peer),
    }


def write_document(
    path: Path, benchmark: str, argv: Sequence[str], **content: Any
) -> dict[str, Any]:
    """Write the JSON document of a run (with the command and the machine) and return it."""
    document = {
        "benchmark": benchmark,
        "command": f"python -m benchmarks.peers.{benchmark} {shlex.join(argv)}".strip(),
        "machine": machine_info(),
        "tree": tree_state(),
        **content,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=_jsonable))
    return json.loads(json.dumps(document, default=_jsonable))


def tree_state() -> dict[str, Any]:
    """The commit our side ran from and the tracked files that differed from it (other work
    in progress changes our numbers); empty outside a git checkout."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        modified = _git("diff", "--name-only", "HEAD").split()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "modified": modified}


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
