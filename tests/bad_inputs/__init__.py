"""The table of bad inputs: named cases across the five domains, and how each is judged.

A :class:`Case` is one call with one bad input (or a valid input that must be accepted).
:func:`outcome` runs it and sorts the result into one of four outcomes:

- ``clear``: a ``ValueError``, ``TypeError``, ``BudgetExceededError`` (or, for a missing
  file, ``FileNotFoundError``) whose message names
  what the case lists in ``mentions`` (the argument and the offending value), and the
  subject (a fitted estimator) exactly as it was; for a valid input, a result that passes
  the case's check;
- ``unclear``: any other exception, or a message that does not name them (a valid input
  that is refused is unclear too);
- ``silent``: no error for a bad input, a wrong result for a valid one, or an error that
  changed the subject;
- ``crash``: the call ran past its time limit, or raised what stops a process
  (``SystemExit``, ``KeyboardInterrupt``, ``MemoryError``, ``RecursionError``).

The cases live in one module per domain (:mod:`tests.bad_inputs.continual_cases`, ...);
``tests/test_bad_inputs.py`` asserts that every case is clear, and
``python -m tests.bad_inputs`` prints the counts by outcome.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from continual.accountant import BudgetExceededError
from continual.estimator import BudgetedEstimator
from continual.state import flatten

__all__ = ["CLEAR_ERRORS", "Case", "fails_cleanly", "outcome", "snapshot"]

# FileNotFoundError is Python's own error for a missing file, and its message names the path
CLEAR_ERRORS = (ValueError, TypeError, BudgetExceededError, FileNotFoundError)
OUTCOMES = ("clear", "unclear", "silent", "crash")
_CRASHES = (SystemExit, KeyboardInterrupt, MemoryError, RecursionError)
TIME_LIMIT_S = 120


@dataclass(frozen=True)
class Case:
    """One named call with one bad input.

    Parameters
    ----------
    name
        Unique, readable: ``"FinetuneClassifier(input_scale=nan)"``.
    act
        The call, given what ``subject`` built (None without a subject).
    mentions
        What a clear message names, matched case-insensitively: the argument and the value.
    subject
        Builds what ``act`` works on, such as a fitted estimator; it must be unchanged after
        a failed call.
    valid
        For an input that must be accepted: checks the result (raises AssertionError when it
        is wrong). Cases with ``valid`` expect no error.
    """

    name: str
    act: Callable[[Any], Any]
    mentions: tuple[str, ...] = ()
    subject: Callable[[], Any] | None = None
    valid: Callable[[Any], None] | None = None
    domain: str = field(default="", compare=False)


def outcome(case: Case) -> tuple[str, str]:
    """``(outcome, detail)`` of running ``case``; see the module docstring."""
    subject = case.subject() if case.subject is not None else None
    before = snapshot(subject)
    try:
        with _time_limit(TIME_LIMIT_S):
            result = case.act(subject)
    except _CRASHES as error:
        return "crash", f"{type(error).__name__}: {error}"
    except _TimedOut:
        return "crash", f"ran past {TIME_LIMIT_S} s"
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        if case.valid is not None:
            return "unclear", f"a valid input was refused: {message}"
        if not isinstance(error, CLEAR_ERRORS):
            return "unclear", message
        missing = [m for m in case.mentions if m.lower() not in str(error).lower()]
        if missing:
            return "unclear", f"the message does not name {missing}: {message}"
        changed = _difference(before, snapshot(subject))
        if changed:
            return "silent", f"the error changed the subject ({changed}): {message}"
        return "clear", message
    if case.valid is None:
        return "silent", f"accepted, returned {result!r:.120}"
    try:
        case.valid(result)
    except AssertionError as error:
        return "silent", f"accepted with a wrong result: {error}"
    return "clear", "accepted, with a valid result"


def fails_cleanly(subject: Any, act: Callable[[Any], Any]) -> Any:
    """The fuzzing property: ``act(subject)`` returns, or raises a clear error with a message
    and leaves ``subject`` unchanged. Returns the result, or the error raised."""
    before = snapshot(subject)
    try:
        return act(subject)
    except CLEAR_ERRORS as error:
        assert str(error).strip(), f"{type(error).__name__} without a message"
        changed = _difference(before, snapshot(subject))
        assert not changed, f"{type(error).__name__} ({error}) changed the subject: {changed}"
        return error


def snapshot(subject: Any) -> Any:
    """A copy of what a failed call must not change: an estimator's fitted state (or the
    fact that it is unfitted), a module's tensors; None for anything else."""
    if isinstance(subject, BudgetedEstimator):
        fitted = subject._fitted_attributes()
        if "accountant_" not in fitted:
            return ("unfitted", sorted(fitted))
        leaves, skeleton = flatten(subject.get_state())
        return ("fitted", _copied(leaves), repr(skeleton))
    if isinstance(subject, torch.nn.Module):
        return ("module", _copied(subject.state_dict()), None)
    return None


def _copied(leaves: dict[str, Any]) -> dict[str, Any]:
    return {k: v.clone() if isinstance(v, torch.Tensor) else _copy(v) for k, v in leaves.items()}


def _copy(value: Any) -> Any:
    return value.copy() if hasattr(value, "copy") else value


def _difference(before: Any, after: Any) -> str:
    if before is None:
        return ""
    if before[0] != after[0] or before[0] == "unfitted":
        return "" if before == after else f"{before[:2]} became {after[:2]}"
    if before[2] != after[2]:
        return "its state's structure"
    changed = [k for k in before[1] if not _same(before[1][k], after[1].get(k))]
    return f"entries {changed[:5]}" if changed else ""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.layout != b.layout:
            return False
        if a.layout != torch.strided:
            a, b = a.to_dense(), b.to_dense()
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    try:
        import numpy as np

        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:
        return bool(a == b)


class _TimedOut(Exception):
    pass


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
