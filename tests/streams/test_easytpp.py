import json
import warnings

import numpy as np
import pytest

from streams.easytpp import as_event_sequences, load_easytpp


def rows():
    return [
        {
            "dim_process": 3,
            "seq_idx": 0,
            "seq_len": 3,
            "time_since_start": [0.0, 0.5, 2.0],
            "time_since_last_event": [0.0, 0.5, 1.5],
            "type_event": [0, 2, 1],
        },
        {
            "dim_process": 3,
            "seq_idx": 1,
            "seq_len": 2,
            "time_since_start": [1.0, 4.0],
            "time_since_last_event": [0.0, 3.0],
            "type_event": [1, 1],
        },
    ]


def test_reads_a_list_and_a_json_file(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows()))
    for source in (rows(), path, str(path)):
        seqs = load_easytpp(source)
        assert seqs.offsets.tolist() == [0, 3, 5]
        assert seqs.times.tolist() == [0.0, 0.5, 2.0, 1.0, 4.0]
        assert seqs.types.tolist() == [0, 2, 1, 1, 1]
        assert seqs.dim_process == 3


def test_several_files_are_concatenated_in_order(tmp_path):
    first, second = tmp_path / "train.json", tmp_path / "test.json"
    first.write_text(json.dumps(rows()[:1]))
    second.write_text(json.dumps(rows()[1:]))
    both = load_easytpp([first, str(second)])
    assert both.offsets.tolist() == [0, 3, 5]
    assert both.times.tolist() == [0.0, 0.5, 2.0, 1.0, 4.0]


def test_disagreeing_gaps_are_recomputed_with_one_warning():
    data = rows()
    data[0]["time_since_last_event"] = [0.0, 0.7, 1.0]
    data[1]["time_since_last_event"] = [0.0, 2.0]
    with pytest.warns(UserWarning, match="3 gaps") as record:
        seqs = load_easytpp(data)
    assert len(record) == 1
    np.testing.assert_allclose(seqs.gaps(), [0.0, 0.5, 1.5, 0.0, 3.0])


def test_agreeing_gaps_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_easytpp(rows())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_since_start", [0.0, 2.0, 1.0], r"source\[0\]: time_since_start must be sorted"),
        ("time_since_start", [0.0, 2.0, 1.0], "got 1.0 after 2.0 at position 2"),
        ("time_since_start", [0.0, float("nan"), 1.0], "finite numbers; got nan at position 1"),
        ("time_since_start", [-1.0, 0.0, 1.0], "non-negative; got -1.0 at position 0"),
        ("time_since_last_event", [0.0, float("inf"), 1.0], "finite numbers; got inf at posit"),
        ("type_event", [0, 3, 1], r"type_event must hold event types in \[0, 3\); got 3 at"),
        ("type_event", [0, 1.5, 1], r"source\[0\]: type_event must hold whole-number"),
        ("type_event", [0, 1], "equal lengths, got 3, 3 and 2"),
        ("dim_process", 2.5, r"source\[0\]: dim_process must be an int .*; got 2.5"),
    ],
)
def test_bad_rows_are_refused(field, value, message):
    data = rows()
    data[0][field] = value
    with pytest.raises(ValueError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_easytpp(data)


def test_missing_fields_and_empty_inputs():
    data = rows()
    del data[1]["type_event"]
    with pytest.raises(ValueError, match="type_event"):
        load_easytpp(data)
    with pytest.raises(ValueError, match="empty"):
        load_easytpp([])
    with pytest.raises(TypeError, match="list of dicts"):
        load_easytpp(42)
    with pytest.raises(ValueError, match="JSON file"):
        load_easytpp("/nonexistent/file.json")
    data = rows()
    data[1]["dim_process"] = 4
    with pytest.raises(ValueError, match="same for every sequence"):
        load_easytpp(data)


def test_as_event_sequences_reads_dicts_and_keeps_containers():
    seqs = as_event_sequences(rows())
    assert seqs.offsets.tolist() == [0, 3, 5] and seqs.types.tolist() == [0, 2, 1, 1, 1]
    assert as_event_sequences(seqs) is seqs
    assert as_event_sequences(tuple(rows()), dim_process=3).dim_process == 3


def test_as_event_sequences_refuses_bad_input_with_the_argument_named():
    bad = rows()
    bad[0]["time_since_start"] = [1.0, 0.5, 2.0]
    with pytest.raises(ValueError, match="sorted"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        as_event_sequences(bad)
    with pytest.raises(ValueError, match="sequences must hold at least one sequence"):
        as_event_sequences([])
    with pytest.raises(ValueError, match="expected 4"):
        as_event_sequences(rows(), dim_process=4)
    with pytest.raises(TypeError, match=r"sequences\[1\] must be a dict in the EasyTPP layout"):
        as_event_sequences([rows()[0], 3])
    with pytest.raises(TypeError, match="load_easytpp"):
        as_event_sequences("file.json")  # paths are read by load_easytpp, not here


def test_whole_number_floats_are_types_and_file_errors_name_the_file(tmp_path):
    data = rows()
    data[0]["type_event"] = [0.0, 2.0, 1.0]  # JSON writers may print ints as floats
    assert load_easytpp(data).types.tolist() == [0, 2, 1, 1, 1]
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(rows(), indent=1)[:-30])
    with pytest.raises(ValueError, match=r"cut\.json: invalid JSON at line \d+.*truncated"):
        load_easytpp(path)
    path.write_text(json.dumps([rows()[0], {**rows()[1], "time_since_start": [1.0, None]}]))
    with pytest.raises(TypeError, match=r"cut\.json, record 1: time_since_start .*None at pos"):
        load_easytpp(path)
