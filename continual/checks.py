"""The contract every BudgetedEstimator keeps, as checks a test suite runs on each of them.

Like scikit-learn's ``check_estimator`` and river's shared checks, :func:`check_estimator`
runs one estimator class through the behaviours the base promises, on a short stream given by
the caller. Each check raises ``AssertionError`` naming what broke:

- ``fit`` forgets, then learns one experience; ``n_partial_fits_`` counts calls;
- an int ``random_state`` gives identical states; None draws a seed, kept as ``seed_``;
- the global torch, numpy and ``random`` generators are neither read nor changed;
- a ``partial_fit`` that fails after learning leaves the estimator exactly as it was, with
  ``rollback="memory"`` and ``rollback="disk"``;
- a checkpoint taken mid-stream and loaded resumes to exactly the state of an uninterrupted
  run, with bit-identical scores;
- pickle round trips, and ``clone`` gives an unfitted copy with the same parameters;
- every tracked module lives on the estimator's ``device``.
"""

from __future__ import annotations

import io
import pickle
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from continual.checkpoint import load, save
from continual.devices import device_name
from continual.estimator import BudgetedEstimator
from continual.measure import Live
from continual.state import flatten

__all__ = ["assert_same_state", "check_estimator"]


def check_estimator(
    make: Callable[..., BudgetedEstimator], stream: Sequence[Any], *, resume_at: int = 1
) -> None:
    """Run every contract check on the estimators ``make(**params)`` builds.

    Parameters
    ----------
    make
        Builds a fresh estimator; it is called with ``random_state`` and ``rollback``
        keywords, which it must pass on. Keep the estimator small: every check trains it.
    stream
        At least two experiences with ``train`` and ``test`` payloads, fed through the
        estimator's ``_learn_experience`` and ``_score_payload`` (as :meth:`evaluate` does).
    resume_at
        The experience after which the resume check saves and loads a checkpoint.
    """
    if len(stream) < 2:
        raise ValueError(f"stream must hold at least two experiences, got {len(stream)}")
    check_fit_forgets(make, stream)
    check_seeding(make, stream)
    check_global_generators_untouched(make, stream)
    for mode in ("memory", "disk"):
        check_failed_partial_fit_rolls_back(make, stream, mode)
    check_checkpoint_resume(make, stream, resume_at)
    check_pickle_and_clone(make, stream)
    check_device_placement(make, stream)


def check_device_placement(make: Callable[..., BudgetedEstimator], stream: Sequence[Any]) -> None:
    """Every parameter and buffer of every tracked module (the model, a policy, a teacher) is
    on the estimator's device. Give ``make`` ``device="auto"`` to run this, and every other
    check, on an accelerator where there is one."""
    estimator = _learn(make(random_state=0, rollback="memory"), stream)
    device = device_name(estimator.device_)
    accountant = estimator.accountant_
    for name in accountant.accounts:
        component = accountant.component(name)
        while isinstance(component, Live):
            component = component.getter()
        if isinstance(component, torch.nn.Module):
            tensors = (*component.parameters(), *component.buffers())
            elsewhere = sorted({device_name(t.device) for t in tensors} - {device})
            assert not elsewhere, f"account {name!r} has tensors on {elsewhere}, not on {device}"


def _learn(
    estimator: BudgetedEstimator, stream: Sequence[Any], start: int = 0, stop: int | None = None
) -> Any:
    for experience in stream[start:stop]:
        estimator._learn_experience(experience, stream)
    return estimator


def _score(estimator: BudgetedEstimator, stream: Sequence[Any]) -> list[float]:
    return [float(estimator._score_payload(experience.test)) for experience in stream]


def check_fit_forgets(make: Callable[..., BudgetedEstimator], stream: Sequence[Any]) -> None:
    """``partial_fit`` counts calls; ``fit`` (through the first experience) starts over."""
    estimator = _learn(make(random_state=0, rollback="memory"), stream)
    assert estimator.n_partial_fits_ == len(stream), "n_partial_fits_ must count the calls"
    fresh = _learn(make(random_state=0, rollback="memory"), stream, stop=1)
    estimator._forget()
    _learn(estimator, stream, stop=1)
    assert_same_state(estimator, fresh, "an estimator that forgot and relearned")


def check_seeding(make: Callable[..., BudgetedEstimator], stream: Sequence[Any]) -> None:
    """Equal int seeds give equal states; None draws and keeps an int ``seed_``."""
    first = _learn(make(random_state=3, rollback="memory"), stream)
    second = _learn(make(random_state=3, rollback="memory"), stream)
    assert_same_state(first, second, "a second estimator with the same random_state")
    drawn = _learn(make(random_state=None, rollback="memory"), stream, stop=1)
    assert isinstance(drawn.seed_, int), f"seed_ must be an int, got {drawn.seed_!r}"


def check_global_generators_untouched(
    make: Callable[..., BudgetedEstimator], stream: Sequence[Any]
) -> None:
    """Training neither changes nor depends on the global torch, numpy and random states."""
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)  # noqa: NPY002 - the global generator is what is checked
        random.seed(global_seed)
        before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())  # noqa: NPY002 - the global generator is what is checked
        estimator = _learn(make(random_state=0, rollback="memory"), stream)
        scores = _score(estimator, stream)
        after = (torch.get_rng_state(), np.random.get_state()[1], random.getstate())  # noqa: NPY002 - the global generator is what is checked
        assert torch.equal(before[0], after[0]), "training changed torch's global generator"
        assert np.array_equal(before[1], after[1]), "training changed numpy's global generator"
        assert before[2] == after[2], "training changed the random module's generator"
        results.append((estimator, scores))
    assert_same_state(results[0][0], results[1][0], "training under another global seed")
    assert results[0][1] == results[1][1], "scores depend on the global seed"


class _Injected(RuntimeError):
    """The failure the rollback check injects after an experience was learned."""


def check_failed_partial_fit_rolls_back(
    make: Callable[..., BudgetedEstimator], stream: Sequence[Any], mode: str
) -> None:
    """A call that fails after learning everything leaves the estimator exactly as it was."""
    estimator = _learn(make(random_state=0, rollback=mode), stream, stop=1)
    reference = _learn(make(random_state=0, rollback=mode), stream, stop=1)
    learn = estimator._learn

    def learn_then_fail(data: Any) -> None:
        learn(data)
        raise _Injected("injected after learning")

    estimator._learn = learn_then_fail  # type: ignore[method-assign]
    try:
        estimator._learn_experience(stream[1], stream)
    except _Injected:
        pass
    else:  # pragma: no cover - the wrapper always raises
        raise AssertionError("the injected failure did not propagate")
    finally:
        del estimator._learn
    assert_same_state(estimator, reference, f"an estimator rolled back with rollback={mode!r}")
    assert estimator.accountant_.transient == 0, "transient bytes must be 0 after a call"
    _learn(estimator, stream, start=1)
    _learn(reference, stream, start=1)
    assert_same_state(estimator, reference, "training on after a rollback")


def check_checkpoint_resume(
    make: Callable[..., BudgetedEstimator], stream: Sequence[Any], resume_at: int
) -> None:
    """Saving mid-stream, loading and training on equals an uninterrupted run, bit for bit."""
    straight = _learn(make(random_state=0, rollback="memory"), stream)
    interrupted = _learn(make(random_state=0, rollback="memory"), stream, stop=resume_at)
    with tempfile.TemporaryDirectory() as folder:
        path = save(interrupted, Path(folder) / "checkpoint.safetensors")
        resumed = load(path)
    assert type(resumed) is type(interrupted), "load must return the saved class"
    assert resumed.get_params() == interrupted.get_params(), "load must restore the parameters"
    assert_same_state(resumed, interrupted, "a loaded checkpoint")
    _learn(resumed, stream, start=resume_at)
    assert_same_state(resumed, straight, "a run resumed from a checkpoint")
    assert _score(resumed, stream) == _score(straight, stream), "resumed scores differ"


def check_pickle_and_clone(make: Callable[..., BudgetedEstimator], stream: Sequence[Any]) -> None:
    """pickle keeps the fitted state; clone keeps the parameters and drops the fit."""
    estimator = _learn(make(random_state=0, rollback="memory"), stream, stop=1)
    # scikit-learn users save estimators with pickle and joblib: that must keep working, although
    # the library's own format (continual.save) never uses pickle
    buffer = io.BytesIO()
    pickle.dump(estimator, buffer)
    copy = pickle.loads(buffer.getvalue())
    assert_same_state(copy, estimator, "an unpickled estimator")
    assert _score(copy, stream) == _score(estimator, stream), "unpickled scores differ"
    fresh = clone(estimator)
    assert fresh.get_params() == estimator.get_params(), "clone must keep the parameters"
    assert not hasattr(fresh, "accountant_"), "clone must return an unfitted estimator"


def assert_same_state(a: BudgetedEstimator, b: BudgetedEstimator, what: str = "") -> None:
    """Assert that two fitted estimators hold exactly the same state (every tensor equal).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from continual.checks import assert_same_state
    >>> from strategies import FinetuneClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> a, b = (FinetuneClassifier(epochs=1, random_state=0).fit(X[:100], y[:100])
    ...         for _ in range(2))
    >>> assert_same_state(a, b)
    """
    leaves_a, skeleton_a = flatten(a.get_state())
    leaves_b, skeleton_b = flatten(b.get_state())
    prefix = f"{what}: " if what else ""
    assert skeleton_a == skeleton_b, f"{prefix}the states differ outside their tensors"
    different = [path for path in leaves_a if not _equal(leaves_a[path], leaves_b[path])]
    assert not different, f"{prefix}the states differ at {different[:5]}"


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if a.layout != torch.strided or b.layout != torch.strided:
        return a.layout == b.layout and torch.equal(a.to_dense(), b.to_dense())
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
