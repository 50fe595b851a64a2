"""Fuzzing from_arrays: any arrays and settings give a stream that holds every row exactly
once, or a clear error."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streams import from_arrays
from tests.bad_inputs import CLEAR_ERRORS

FUZZ = settings(max_examples=60)  # the rest from the 'ci' profile (conftest.py)

_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3))


@FUZZ
@given(
    X=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=12)),
    y=st.one_of(st.none(), hnp.arrays(st.sampled_from([np.int64, np.float64]), st.integers(0, 12))),
    n_experiences=st.one_of(st.integers(-2, 15), st.floats(0, 5), st.just(np.int64(2))),
    test_fraction=_numbers,
)
def test_from_arrays_keeps_every_row_once_or_fails_clearly(X, y, n_experiences, test_fraction):
    try:
        stream = from_arrays(X, y, n_experiences=n_experiences, test_fraction=test_fraction)
    except CLEAR_ERRORS as error:
        assert str(error).strip()
        return
    assert len(stream) == n_experiences
    rows = sum(len(e.train[0]) + (0 if e.test is None else len(e.test[0])) for e in stream)
    assert rows == len(X)
    if y is not None:
        labels = np.concatenate([e.train[1] for e in stream])
        assert np.isfinite(labels.astype(float)).all(), "NaN labels must not pass"
