import numpy as np
import pytest

from continual import MemoryAccountant, nbytes
from streams.events import EventSequences


def make():
    return EventSequences.from_lists(
        [[0.0, 1.0, 1.0, 4.0], [2.0], [3.0, 5.0]], [[0, 2, 1, 0], [1], [2, 2]], 3
    )


def test_layout_and_access():
    seqs = make()
    assert seqs.offsets.tolist() == [0, 4, 5, 7]
    assert seqs.types.dtype == np.uint8
    times, types = seqs[2]
    assert times.tolist() == [3.0, 5.0] and types.tolist() == [2, 2]
    assert seqs[-1][0].tolist() == [3.0, 5.0]
    assert [len(t) for t, _ in seqs] == [4, 1, 2]
    assert seqs.gaps().tolist() == [0.0, 1.0, 0.0, 3.0, 0.0, 0.0, 2.0]


def test_nbytes_counts_the_three_arrays_once():
    seqs = make()
    expected = 7 * 8 + 7 * 1 + 4 * 8
    assert seqs.nbytes == expected
    assert nbytes(seqs) == expected
    accountant = MemoryAccountant(1000)
    accountant.track("data", seqs)
    accountant.track("again", seqs.times)
    assert accountant.ledger().accounts == {"data": expected, "again": 0}


def test_type_dtype_grows_with_dim_process():
    seqs = EventSequences.from_lists([[0.0, 1.0]], [[0, 299]], 300)
    assert seqs.types.dtype == np.uint16


def test_subset_and_round_trip_through_dicts():
    seqs = make()
    sub = seqs.subset([2, 0])
    assert sub.times.tolist() == [3.0, 5.0, 0.0, 1.0, 1.0, 4.0]
    assert sub.offsets.tolist() == [0, 2, 6]
    rows = seqs.to_dicts()
    assert rows[0]["time_since_last_event"] == [0.0, 1.0, 0.0, 3.0]
    back = EventSequences.from_lists(
        [r["time_since_start"] for r in rows], [r["type_event"] for r in rows], 3
    )
    np.testing.assert_array_equal(back.times, seqs.times)


@pytest.mark.parametrize(
    ("times", "types", "message"),
    [
        ([[0.0, 2.0, 1.0]], [[0, 0, 0]], "sequence 0: times must be sorted .* 1.0 after 2.0"),
        ([[0.0], [-1.0, 2.0]], [[0], [0, 0]], "sequence 1: times must be non-negative; got -1.0"),
        ([[0.0, np.nan]], [[0, 0]], "finite numbers; got nan at position 1"),
        ([[0.0, 1.0]], [[0, 3]], r"sequence 0: types must hold event types in \[0, 3\); got 3"),
        ([[0.0, 1.0]], [[0, 0.7]], r"sequence 0: types must hold whole-number .* got 0.7"),
        ([[0.0, 1.0], []], [[0, 1], []], "sequence 1 is empty: .* at least one event"),
    ],
)
def test_bad_sequences_are_refused(times, types, message):
    with pytest.raises(ValueError, match=message):
        EventSequences.from_lists(times, types, 3)


def test_unsorted_across_sequences_is_fine():
    seqs = EventSequences.from_lists([[5.0, 6.0], [1.0, 2.0]], [[0, 0], [0, 0]], 1)
    assert len(seqs) == 2


def test_truncated_keeps_the_first_events_of_each_sequence():
    short = make().truncated(2)
    assert short.offsets.tolist() == [0, 2, 3, 5]
    assert short.times.tolist() == [0.0, 1.0, 2.0, 3.0, 5.0]
    assert short.types.tolist() == [0, 2, 1, 2, 2]
    with pytest.raises(ValueError, match="max_length"):
        make().truncated(0)


def test_concatenate_appends_sequences_in_order():
    seqs = make()
    empty = EventSequences(np.zeros(0), np.zeros(0, dtype=int), [0], 3)
    both = EventSequences.concatenate([seqs, empty, seqs.subset([2])])
    assert both.offsets.tolist() == [0, 4, 5, 7, 9]
    assert both.times.tolist() == [0.0, 1.0, 1.0, 4.0, 2.0, 3.0, 5.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="dim_process"):
        EventSequences.concatenate([seqs, EventSequences.from_lists([[0.0]], [[0]], 2)])
    with pytest.raises(TypeError, match="EventSequences"):
        EventSequences.concatenate([])


@pytest.mark.parametrize(
    ("indices", "message"),
    [([3], r"in \[0, 3\); got 3 at position 0"), ([0, -1], "got -1 at position 1"),
     ([0.5], "whole-number sequence indices; got 0.5")],
)  # fmt: skip
def test_subset_refuses_indices_out_of_range(indices, message):
    with pytest.raises(ValueError, match=r"indices must hold .*" + message):
        make().subset(indices)
