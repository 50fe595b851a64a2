import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import Experience, Stream


def make_experiences(n):
    return [
        Experience(i, (np.full((2, 3), i, dtype=np.uint8), np.array([i, i])), metadata={"k": i})
        for i in range(n)
    ]


# Experience ---------------------------------------------------------------------------------


def test_experience_defaults_and_classes():
    exp = Experience(0, "payload")
    assert exp.test is None
    assert dict(exp.metadata) == {}
    assert exp.classes is None
    exp = Experience(2, "payload", "test", {"classes": (3, 7)})
    assert (exp.index, exp.train, exp.test, exp.classes) == (2, "payload", "test", (3, 7))


def test_experience_default_metadata_is_not_shared():
    a, b = Experience(0, None), Experience(1, None)
    a.metadata["x"] = 1
    assert "x" not in b.metadata


def test_experience_is_frozen():
    exp = Experience(0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.index = 1


def test_experience_accepts_numpy_int_index():
    assert Experience(np.int64(3), None).index == 3


@pytest.mark.parametrize("index", [1.0, "0", True, None])
def test_experience_rejects_non_int_index(index):
    with pytest.raises(TypeError, match="index must be an int"):
        Experience(index, None)


def test_experience_rejects_negative_index():
    with pytest.raises(ValueError, match="index must be a non-negative int, got -1"):
        Experience(-1, None)


def test_experience_rejects_non_mapping_metadata():
    with pytest.raises(TypeError, match="metadata must be a mapping, got list"):
        Experience(0, None, metadata=[("classes", (1,))])


def test_experience_repr_summarises_arrays():
    exp = Experience(1, (np.zeros((5, 2), dtype=np.float32), None), metadata={"a": 1})
    assert repr(exp) == (
        "Experience(index=1, train=(ndarray(shape=(5, 2), dtype=float32), None), "
        "test=None, metadata={'a': 1})"
    )


def test_experiences_compare_by_identity():
    exp = Experience(0, (np.zeros(3), np.zeros(3)))
    same = Experience(0, exp.train)
    assert exp == exp
    assert exp != same


# Stream -------------------------------------------------------------------------------------


def test_stream_len_index_and_negative_index():
    exps = make_experiences(4)
    stream = Stream(exps, name="s", seed=3)
    assert isinstance(stream, Sequence)
    assert len(stream) == 4
    assert stream[0] is exps[0]
    assert stream[-1] is exps[3]
    assert stream[np.int64(2)] is exps[2]
    with pytest.raises(IndexError):
        stream[4]


@pytest.mark.parametrize("key", ["0", 1.0, True, None])
def test_stream_rejects_bad_index_type(key):
    stream = Stream(make_experiences(2))
    with pytest.raises(TypeError, match="Stream indices must be int or slice"):
        stream[key]


def test_stream_is_reiterable_in_the_same_order():
    exps = make_experiences(3)
    stream = Stream(iter(exps))  # a one-shot iterator is read once
    first, second = list(stream), list(stream)
    assert [id(e) for e in first] == [id(e) for e in exps]
    assert [id(e) for e in second] == [id(e) for e in exps]


def test_stream_slice_keeps_name_seed_payloads_and_reindexes():
    exps = make_experiences(5)
    stream = Stream(exps, name="toy", seed=7)
    sliced = stream[1:4:2]
    assert isinstance(sliced, Stream)
    assert (sliced.name, sliced.seed, len(sliced)) == ("toy", 7, 2)
    assert [e.index for e in sliced] == [0, 1]
    assert sliced[0].train is exps[1].train
    assert sliced[1].train is exps[3].train
    assert sliced[1].metadata is exps[3].metadata
    assert [e.index for e in stream] == [0, 1, 2, 3, 4]  # the original is untouched


def test_stream_empty_slice():
    empty = Stream(make_experiences(2), name="x")[5:]
    assert len(empty) == 0
    assert list(empty) == []
    assert empty.classes is None


@given(
    n=st.integers(0, 12),
    start=st.none() | st.integers(-15, 15),
    stop=st.none() | st.integers(-15, 15),
    step=st.none() | st.integers(-4, 4).filter(lambda s: s != 0),
)
def test_stream_slicing_matches_list_slicing(n, start, stop, step):
    exps = make_experiences(n)
    sliced = Stream(exps)[start:stop:step]
    expected = exps[start:stop:step]
    assert [e.train for e in sliced] == [e.train for e in expected]
    assert [e.index for e in sliced] == list(range(len(expected)))


def test_stream_repr():
    assert repr(Stream(make_experiences(5), name="split_digits", seed=0)) == (
        "Stream(name='split_digits', n_experiences=5, seed=0)"
    )
    assert repr(Stream([])) == "Stream(name='stream', n_experiences=0, seed=None)"


def test_stream_rejects_out_of_order_indices():
    a, b = make_experiences(2)
    with pytest.raises(ValueError, match=r"indices 0\.\.1 in order, got index 1 at position 0"):
        Stream([b, a])


def test_stream_rejects_indices_not_starting_at_zero():
    with pytest.raises(ValueError, match="got index 1 at position 0"):
        Stream([Experience(1, None)])


def test_stream_rejects_non_experience():
    with pytest.raises(TypeError, match="must contain Experience objects, got tuple at position 1"):
        Stream([Experience(0, None), (1, None)])


def test_stream_rejects_non_str_name():
    with pytest.raises(TypeError, match="name must be a str, got int"):
        Stream([], name=3)


def test_stream_classes():
    with_classes = [Experience(i, None, metadata={"classes": (2 * i, 2 * i + 1)}) for i in range(3)]
    assert Stream(with_classes).classes == [(0, 1), (2, 3), (4, 5)]
    mixed = [*with_classes[:2], Experience(2, None)]
    assert Stream(mixed).classes is None
    assert Stream(make_experiences(2)).classes is None


def test_stream_sequence_mixins():
    exps = make_experiences(3)
    stream = Stream(exps)
    assert exps[1] in stream
    assert stream.index(exps[2]) == 2
    assert list(reversed(stream)) == exps[::-1]
