"""Validation of hyperparameters and of IDs: one layer every estimator and loader uses.

Hyperparameters are declared, as scikit-learn does, in a class attribute
``_parameter_constraints`` that maps each parameter to the constraints it may satisfy
(:class:`~sklearn.utils._param_validation.Interval`, ``StrOptions``, a type, None, or
:class:`Sizes` for a tuple of layer widths). :class:`~continual.BudgetedEstimator` merges
the declarations along the class hierarchy, so a subclass declares only its own parameters,
and checks them at ``fit`` / ``partial_fit``. A violation raises ``InvalidParameterError``
(a ``ValueError`` and a ``TypeError``) naming the parameter, the value and what was
expected. numpy scalars are accepted wherever Python numbers are; NaN and infinity are
outside every finite range.

IDs (users, items, event types) go through :func:`check_ids`: integers only (``1.7`` is
not user 1), no negatives (``-1`` is not the last user), and below the size the caller
names.

Examples
--------
>>> from continual.validation import POSITIVE_FLOAT, check_ids, check_params
>>> check_params({"lr": [POSITIVE_FLOAT]}, {"lr": float("nan")}, "Model")
Traceback (most recent call last):
...
sklearn.utils._param_validation.InvalidParameterError: The 'lr' parameter of Model must be a
float in the range (0.0, inf). Got nan instead.
>>> check_ids([3, 1.0], "users", upper=4)
array([3, 1])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import (
    Interval as _Interval,
)
from sklearn.utils._param_validation import (
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "COUNT",
    "FRACTION",
    "NON_NEGATIVE_FLOAT",
    "NON_NEGATIVE_INT",
    "POSITIVE_FLOAT",
    "Interval",
    "InvalidParameterError",
    "Sizes",
    "StrOptions",
    "check_ids",
    "check_labels",
    "check_params",
    "merged_constraints",
]


class Interval(_Interval):
    """scikit-learn's ``Interval``, refusing ``True`` and ``False`` (which Python counts as
    numbers): ``epochs=True`` or ``lr=True`` is a mistake, not 1.

    Examples
    --------
    >>> from numbers import Integral
    >>> from continual.validation import Interval
    >>> epochs = Interval(Integral, 1, None, closed="left")
    >>> epochs.is_satisfied_by(True), epochs.is_satisfied_by(np.int64(2))
    (False, True)
    """

    def is_satisfied_by(self, val: Any) -> bool:
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


#: An int >= 1 (a number of epochs, a batch size, a width).
COUNT = Interval(Integral, 1, None, closed="left")
#: An int >= 0.
NON_NEGATIVE_INT = Interval(Integral, 0, None, closed="left")
#: A finite float > 0 (a learning rate, a scale).
POSITIVE_FLOAT = Interval(Real, 0, None, closed="neither")
#: A finite float >= 0 (a weight, a regularisation strength).
NON_NEGATIVE_FLOAT = Interval(Real, 0, None, closed="left")
#: A float in [0, 1].
FRACTION = Interval(Real, 0, 1, closed="both")


class Sizes(Options):  # an Options, because scikit-learn accepts only its own constraint types
    """A sequence of ints, each at least ``low`` (layer widths such as ``(128, 64)``).

    Parameters
    ----------
    low
        The smallest size allowed.
    allow_empty
        Whether ``()`` (no layer) is allowed.

    Examples
    --------
    >>> from continual.validation import Sizes
    >>> Sizes().is_satisfied_by((128, 64)), Sizes().is_satisfied_by((0,))
    (True, False)
    >>> str(Sizes())
    'a sequence of ints >= 1'
    """

    def __init__(self, low: int = 1, *, allow_empty: bool = True) -> None:
        super().__init__(Sequence, set())
        self.low = low
        self.allow_empty = allow_empty

    def is_satisfied_by(self, val: Any) -> bool:
        if isinstance(val, (str, bytes)) or not isinstance(val, Sequence):
            return False
        if not val and not self.allow_empty:
            return False
        return all(_is_int(size) and size >= self.low for size in val)

    def __str__(self) -> str:
        empty = "" if self.allow_empty else "non-empty "
        return f"a {empty}sequence of ints >= {self.low}"


def merged_constraints(cls: type) -> dict[str, Any]:
    """``_parameter_constraints`` of ``cls`` and of every base class, the subclass winning.

    Examples
    --------
    >>> from continual.validation import COUNT, POSITIVE_FLOAT, merged_constraints
    >>> class A:
    ...     _parameter_constraints = {"lr": [POSITIVE_FLOAT]}
    >>> class B(A):
    ...     _parameter_constraints = {"epochs": [COUNT]}
    >>> sorted(merged_constraints(B))
    ['epochs', 'lr']
    """
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("_parameter_constraints", {}))
    return merged


def check_params(constraints: Mapping[str, Any], params: Mapping[str, Any], caller: str) -> None:
    """Raise ``InvalidParameterError`` for the first parameter that meets none of its
    constraints (parameters without a declaration are not checked)."""
    validate_parameter_constraints(dict(constraints), dict(params), caller_name=caller)


def check_ids(values: Any, name: str, *, upper: int | None = None, what: str = "IDs") -> np.ndarray:
    """``values`` as an int64 array, after checking each is a whole number in ``[0, upper)``.

    Parameters
    ----------
    values
        A scalar or anything ``np.asarray`` reads (list, array, tensor on the CPU).
    name
        The argument's name, for the message.
    upper
        The number of known IDs (None: no upper limit).
    what
        What the values are, for the message ("user IDs").

    Raises
    ------
    ValueError
        Naming ``name``, the first offending value and its position.
    TypeError
        When ``values`` are not numbers (strings, objects).

    Examples
    --------
    >>> from continual.validation import check_ids
    >>> check_ids([0, 2], "users", upper=3)
    array([0, 2])
    >>> check_ids([1.7], "users")
    Traceback (most recent call last):
    ...
    ValueError: users must hold whole-number IDs; got 1.7 at position 0
    >>> check_ids([-1], "users", upper=3, what="user IDs")
    Traceback (most recent call last):
    ...
    ValueError: users must hold user IDs in [0, 3); got -1 at position 0
    """
    array = np.asarray(values)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold integer {what}, got dtype {array.dtype} ({values!r:.80})"
        )
    flat = array.reshape(-1)
    if np.issubdtype(array.dtype, np.floating):
        whole = np.isfinite(flat) & (flat == np.round(flat))
        _raise_at(~whole, flat, name, f"whole-number {what}")
    bad = flat < 0 if upper is None else (flat < 0) | (flat >= upper)
    expected = f"non-negative {what}" if upper is None else f"{what} in [0, {upper})"
    _raise_at(bad, flat, name, expected)
    return array.astype(np.int64)


def check_labels(y: Any, name: str = "y") -> None:
    """Raise ``ValueError`` naming the first NaN or infinite value of float labels ``y``
    (an array, a list or a tensor); integer and string labels pass.

    Examples
    --------
    >>> import numpy as np
    >>> from continual.validation import check_labels
    >>> check_labels(np.array([0, 1]))
    >>> check_labels([0.0, float("nan")])
    Traceback (most recent call last):
    ...
    ValueError: y must hold finite labels; got nan at position 1
    """
    if isinstance(y, torch.Tensor):
        if not y.dtype.is_floating_point:
            return
        y = y.detach().float().cpu().numpy()
    labels = np.asarray(y)
    if labels.dtype.kind == "f":
        flat = labels.reshape(-1)
        _raise_at(~np.isfinite(flat), flat, name, "finite labels")


def _raise_at(bad: np.ndarray, flat: np.ndarray, name: str, expected: str) -> None:
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        value = flat[position].item()
        raise ValueError(f"{name} must hold {expected}; got {value!r} at position {position}")


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)
