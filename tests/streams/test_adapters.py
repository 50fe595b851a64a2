import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import datasets
from river import stream as river_stream
from river.datasets import synth

from streams import Stream, from_arrays, from_pandas, from_river

# from_arrays --------------------------------------------------------------------------------


def test_from_arrays_cuts_contiguous_near_equal_chunks():
    X = np.arange(20, dtype=np.uint8).reshape(10, 2)
    y = np.arange(10) * 10
    stream = from_arrays(X, y, n_experiences=3, name="a")
    assert isinstance(stream, Stream)
    assert (stream.name, len(stream)) == ("a", 3)
    bounds = [(0, 4), (4, 7), (7, 10)]  # 10 rows in 3 chunks: 4, 3, 3
    for exp, (start, stop) in zip(stream, bounds):
        assert dict(exp.metadata) == {"start": start, "stop": stop}
        np.testing.assert_array_equal(exp.train[0], X[start:stop])
        np.testing.assert_array_equal(exp.train[1], y[start:stop])
        assert exp.train[0].dtype == np.uint8
        assert exp.test is None


def test_from_arrays_without_labels():
    stream = from_arrays(np.arange(6), n_experiences=2)
    assert stream[0].train[1] is None
    np.testing.assert_array_equal(stream[1].train[0], [3, 4, 5])


@settings(max_examples=50, deadline=None)
@given(n_rows=st.integers(1, 60), data=st.data())
def test_from_arrays_chunks_cover_the_rows_in_order(n_rows, data):
    n_experiences = data.draw(st.integers(1, n_rows))
    X = np.arange(n_rows)
    stream = from_arrays(X, X * 2, n_experiences=n_experiences)
    sizes = [len(exp.train[0]) for exp in stream]
    assert max(sizes) - min(sizes) <= 1
    np.testing.assert_array_equal(np.concatenate([exp.train[0] for exp in stream]), X)
    assert [exp.metadata["stop"] for exp in stream][:-1] == [
        exp.metadata["start"] for exp in stream
    ][1:]


def test_from_arrays_holds_out_a_seeded_test_part_of_each_chunk():
    X = np.arange(40)
    y = -X
    stream = from_arrays(X, y, n_experiences=4, test_fraction=0.25, seed=5)
    assert stream.seed == 5
    for exp in stream:
        start, stop = exp.metadata["start"], exp.metadata["stop"]
        train_rows, test_rows = exp.train[0], exp.test[0]
        assert len(test_rows) == math.ceil(0.25 * (stop - start))
        assert sorted([*train_rows, *test_rows]) == list(range(start, stop))
        assert np.all(np.diff(train_rows) > 0) and np.all(np.diff(test_rows) > 0)
        np.testing.assert_array_equal(exp.train[1], -train_rows)
        np.testing.assert_array_equal(exp.test[1], -test_rows)


def test_from_arrays_holdout_is_deterministic_and_seeded():
    X = np.arange(100)
    a = from_arrays(X, n_experiences=2, test_fraction=0.3, seed=1)
    b = from_arrays(X, n_experiences=2, test_fraction=0.3, seed=1)
    c = from_arrays(X, n_experiences=2, test_fraction=0.3, seed=2)
    np.testing.assert_array_equal(a[0].test[0], b[0].test[0])
    assert a[0].test[1] is None
    assert not np.array_equal(a[0].test[0], c[0].test[0])


@pytest.mark.parametrize("n_experiences", [0, -1])
def test_from_arrays_n_experiences_positive(n_experiences):
    with pytest.raises(ValueError, match=f"n_experiences == {n_experiences}, must be >= 1"):
        from_arrays(np.arange(5), n_experiences=n_experiences)


def test_from_arrays_n_experiences_int():
    with pytest.raises(TypeError, match="n_experiences must be an instance of int"):
        from_arrays(np.arange(5), n_experiences=2.5)


def test_from_arrays_more_experiences_than_rows():
    with pytest.raises(ValueError, match=r"n_experiences must be at most the number of rows \(5\)"):
        from_arrays(np.arange(5), n_experiences=6)


@pytest.mark.parametrize("test_fraction", [1.0, -0.1, 2])
def test_from_arrays_test_fraction_range(test_fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        from_arrays(np.arange(10), n_experiences=2, test_fraction=test_fraction)


def test_from_arrays_test_fraction_leaving_no_training_rows():
    with pytest.raises(
        ValueError, match=r"test_fraction=0\.5 leaves no training rows in experience 0"
    ):
        from_arrays(np.arange(3), n_experiences=3, test_fraction=0.5)


def test_from_arrays_length_mismatch():
    with pytest.raises(ValueError, match="X and y must have the same number of rows, got X with 5"):
        from_arrays(np.arange(5), np.arange(4), n_experiences=1)


def test_from_arrays_empty_and_scalar_x():
    with pytest.raises(ValueError, match="X must be non-empty"):
        from_arrays(np.empty((0, 2)), n_experiences=1)
    with pytest.raises(ValueError, match="X must be an array with at least one dimension"):
        from_arrays(3.0, n_experiences=1)


# from_pandas --------------------------------------------------------------------------------


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "a": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
            "day": ["tue", "mon", "tue", "wed", "mon", "tue"],
            "b": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0],
            "label": [1, 0, 1, 2, 0, 1],
        }
    )


def test_from_pandas_groups_by_sorted_column_values(frame):
    stream = from_pandas(frame, target="label", experience="day", name="days")
    assert (stream.name, len(stream)) == ("days", 3)
    assert [exp.metadata["group"] for exp in stream] == ["mon", "tue", "wed"]
    for exp in stream:
        rows = [i for i, d in enumerate(frame["day"]) if d == exp.metadata["group"]]
        assert exp.metadata["columns"] == ("a", "b")
        np.testing.assert_array_equal(exp.train[0], frame[["a", "b"]].to_numpy()[rows])
        np.testing.assert_array_equal(exp.train[1], frame["label"].to_numpy()[rows])
        assert exp.train[0].dtype == np.float64


def test_from_pandas_contiguous_chunks(frame):
    stream = from_pandas(frame.drop(columns="day"), target="label", n_experiences=2)
    assert [dict(exp.metadata) for exp in stream] == [
        {"start": 0, "stop": 3, "columns": ("a", "b")},
        {"start": 3, "stop": 6, "columns": ("a", "b")},
    ]
    np.testing.assert_array_equal(stream[1].train[1], [2, 0, 1])


def test_from_pandas_keeps_integer_dtype_and_allows_no_target():
    df = pd.DataFrame({"x": np.arange(6, dtype=np.int16), "g": [0, 0, 1, 1, 2, 2]})
    stream = from_pandas(df, experience="g")
    assert stream[0].train[1] is None
    assert stream[2].train[0].dtype == np.int16
    np.testing.assert_array_equal(stream[2].train[0].ravel(), [4, 5])


def test_from_pandas_holdout_in_groups(frame):
    two_days = frame[frame["day"] != "wed"]
    stream = from_pandas(two_days, target="label", experience="day", test_fraction=0.5, seed=0)
    assert stream.seed == 0
    assert [len(exp.test[0]) for exp in stream] == [1, 2]  # ceil(0.5 * 2), ceil(0.5 * 3)
    for exp in stream:
        rows = two_days[two_days["day"] == exp.metadata["group"]][["a", "b"]].to_numpy()
        both = np.concatenate([exp.train[0], exp.test[0]])
        np.testing.assert_array_equal(np.sort(both, axis=0), rows)


def test_from_pandas_holdout_error_names_test_fraction(frame):
    with pytest.raises(ValueError, match=r"test_fraction=0\.5 leaves no training rows"):
        from_pandas(frame, target="label", experience="day", test_fraction=0.5, seed=0)


def test_from_pandas_rejects_non_dataframe():
    with pytest.raises(TypeError, match="df must be a pandas DataFrame, got dict"):
        from_pandas({"a": [1]}, n_experiences=1)


@pytest.mark.parametrize("kwargs", [{}, {"experience": "day", "n_experiences": 2}])
def test_from_pandas_exactly_one_grouping(frame, kwargs):
    with pytest.raises(ValueError, match="exactly one of experience and n_experiences"):
        from_pandas(frame, **kwargs)


def test_from_pandas_unknown_columns(frame):
    with pytest.raises(ValueError, match="target must be a column of df, got 'nope'"):
        from_pandas(frame, target="nope", n_experiences=1)
    with pytest.raises(ValueError, match="experience must be a column of df, got 'nope'"):
        from_pandas(frame, experience="nope")


def test_from_pandas_target_equals_experience(frame):
    with pytest.raises(ValueError, match="target and experience must be different columns"):
        from_pandas(frame, target="day", experience="day")


def test_from_pandas_needs_a_feature_column():
    df = pd.DataFrame({"y": [0, 1], "g": [0, 1]})
    with pytest.raises(ValueError, match="df must have a feature column"):
        from_pandas(df, target="y", experience="g")


def test_from_pandas_experience_column_without_missing_values(frame):
    frame.loc[2, "day"] = None
    with pytest.raises(ValueError, match="experience column 'day' must not contain missing"):
        from_pandas(frame, experience="day")


# from_river ---------------------------------------------------------------------------------


def test_from_river_reads_iter_array_in_order():
    X = np.arange(30, dtype=float).reshape(10, 3)
    y = np.arange(10) % 3
    stream = from_river(
        river_stream.iter_array(X, y, feature_names=["c", "a", "b"]), n_experiences=2
    )
    assert (stream.name, len(stream)) == ("generator", 2)
    assert stream[0].metadata["columns"] == ("c", "a", "b")
    np.testing.assert_array_equal(np.concatenate([e.train[0] for e in stream]), X)
    np.testing.assert_array_equal(np.concatenate([e.train[1] for e in stream]), y)
    assert [(e.metadata["start"], e.metadata["stop"]) for e in stream] == [(0, 5), (5, 10)]


def test_from_river_feature_order_follows_the_first_row():
    rows = [({"b": 1.0, "a": 2.0}, 0), ({"a": 4.0, "b": 3.0}, 1)]
    stream = from_river(rows, n_experiences=1, name="dicts")
    assert stream.name == "dicts"
    np.testing.assert_array_equal(stream[0].train[0], [[1.0, 2.0], [3.0, 4.0]])


def test_from_river_unlabelled():
    stream = from_river(river_stream.iter_array(np.ones((4, 2))), experience_size=2)
    assert stream[1].train[1] is None


def test_from_river_experience_size_and_take():
    X = np.arange(23).reshape(23, 1)
    stream = from_river(river_stream.iter_array(X, X.ravel()), experience_size=5, take=17)
    assert [len(e.train[0]) for e in stream] == [5, 5, 5, 2]
    np.testing.assert_array_equal(stream[-1].train[1], [15, 16])


def test_from_river_take_reads_only_take_rows():
    source = iter([({"x": float(i)}, i) for i in range(10)])
    from_river(source, n_experiences=1, take=4)
    assert next(source)[1] == 4


def test_from_river_bundled_phishing_dataset_offline():
    dataset = datasets.Phishing()
    assert Path(dataset.path).is_file()  # shipped with river: no download
    stream = from_river(dataset, n_experiences=4, take=200)
    assert (stream.name, len(stream)) == ("Phishing", 4)
    first_x, first_y = next(iter(dataset))
    assert stream[0].metadata["columns"] == tuple(first_x)
    np.testing.assert_array_equal(stream[0].train[0][0], list(first_x.values()))
    assert stream[0].train[1][0] == first_y
    assert sum(len(e.train[0]) for e in stream) == 200
    assert stream[0].train[0].dtype == np.float64


def test_from_river_bundled_trump_approval_offline():
    stream = from_river(datasets.TrumpApproval(), experience_size=1000)
    assert [len(e.train[0]) for e in stream] == [1000, 1]
    assert stream[0].train[0].shape[1] == 6


def test_from_river_missing_key_names_key_and_row():
    rows = [({"a": 1, "b": 2}, 0), ({"a": 1, "b": 2}, 0), ({"a": 3}, 1)]
    with pytest.raises(ValueError, match="dataset row 2 is missing feature 'b'"):
        from_river(rows, n_experiences=1)


def test_from_river_unexpected_key():
    rows = [({"a": 1}, 0), ({"a": 1, "z": 2}, 0)]
    with pytest.raises(ValueError, match="dataset row 1 has feature 'z' absent from row 0"):
        from_river(rows, n_experiences=1)


def test_from_river_requires_dict_rows():
    with pytest.raises(
        TypeError, match="dataset must yield \\(dict, y\\) pairs, got x of type list"
    ):
        from_river([([1, 2], 0)], n_experiences=1)


@pytest.mark.parametrize("item", [3, ({"a": 1},), ({"a": 1}, 0, "extra")])
def test_from_river_requires_pairs(item):
    with pytest.raises(TypeError, match=r"dataset must yield \(x, y\) pairs, got .* at row 1"):
        from_river([({"a": 0}, 0), item], n_experiences=1)


def test_from_river_mixed_missing_labels():
    rows = [({"a": 1}, 0), ({"a": 2}, None)]
    with pytest.raises(ValueError, match="y=None at row 1 but labels elsewhere"):
        from_river(rows, n_experiences=1)


def test_from_river_empty_dataset():
    with pytest.raises(ValueError, match="dataset must yield at least one"):
        from_river([], n_experiences=1)


@pytest.mark.parametrize("kwargs", [{}, {"n_experiences": 2, "experience_size": 3}])
def test_from_river_exactly_one_size(kwargs):
    with pytest.raises(ValueError, match="exactly one of n_experiences and experience_size"):
        from_river([({"a": 1}, 0)], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_experiences": 1, "take": 0}, "take == 0, must be >= 1"),
        ({"experience_size": 0}, "experience_size == 0, must be >= 1"),
        ({"n_experiences": 0}, "n_experiences == 0, must be >= 1"),
        ({"n_experiences": 3}, "n_experiences must be at most the number of rows"),
    ],
)
def test_from_river_size_arguments_are_validated(kwargs, message):
    rows = [({"a": 1}, 0), ({"a": 2}, 1)]
    with pytest.raises(ValueError, match=message):
        from_river(rows, **kwargs)


def test_from_river_validates_before_reading():
    def never():
        raise AssertionError("read")
        yield

    with pytest.raises(ValueError, match="take"):
        from_river(never(), n_experiences=1, take=-1)


def test_from_river_refuses_an_endless_generator_without_take():
    with pytest.raises(ValueError, match=r"dataset SEA is an endless stream .* pass take="):
        from_river(synth.SEA(seed=1), n_experiences=5)


def test_from_river_reads_take_rows_of_an_endless_generator():
    stream = from_river(synth.SEA(seed=1), n_experiences=5, take=500)
    assert [len(exp.train[0]) for exp in stream] == [100] * 5
    first = [list(x.values()) for x, _ in synth.SEA(seed=1).take(100)]
    np.testing.assert_array_equal(stream[0].train[0], first)


def test_from_river_trusts_iterables_without_n_samples():
    rows = iter([({"a": 1.0}, 0), ({"a": 2.0}, 1)])
    assert len(from_river(rows, n_experiences=1)[0].train[0]) == 2
