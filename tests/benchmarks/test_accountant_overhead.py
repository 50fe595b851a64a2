import json

import pytest

from benchmarks.accountant_overhead import bench_digits, bench_total, main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "x.json"
    returned = main(["--quick", "--out", str(out)])
    return returned, json.loads(out.read_text())


def test_quick_run_writes_the_returned_document(quick_run):
    returned, written = quick_run
    assert written == json.loads(json.dumps(returned))
    assert written["benchmark"] == "accountant_overhead"
    assert written["quick"] is True
    assert written["repeats"] == 2
    assert written["command"].startswith("python -m benchmarks.accountant_overhead --quick --out ")
    assert {"platform", "cpu_model", "cpu_count", "torch", "torch_threads"} <= set(
        written["machine"]
    )
    assert written["machine"]["torch_threads"] == 1


def test_total_section_counts_the_documented_setup(quick_run):
    _, written = quick_run
    setups = {s["name"]: s for s in written["total"]["setups"]}
    assert list(setups) == ["model + exemplars", "model + exemplars + optimizer"]
    model_bytes = 500 * (8 * 8 + 8) * 4  # 500 nn.Linear(8, 8), float32
    store_bytes = 10_000 * (64 + 1)  # uint8 1x8x8 sample + uint8 label
    two = setups["model + exemplars"]
    three = setups["model + exemplars + optimizer"]
    assert two["accounts"] == {
        "model": {"bytes": model_bytes, "tensors": 1_000},
        "exemplars": {"bytes": store_bytes, "tensors": 2},
    }
    assert three["accounts"]["optimizer"] == {"bytes": model_bytes, "tensors": 1_000}
    assert three["total_bytes"] == 2 * model_bytes + store_bytes
    for setup in setups.values():
        assert len(setup["times_s"]) == 2
        assert all(t > 0 for t in setup["times_s"])
        assert setup["median_s"] > 0


def test_digits_section_has_positive_times_and_identical_training(quick_run):
    _, written = quick_run
    digits = written["digits"]
    for key in ("accounted_s", "unaccounted_s", "isolated_accounting_s", "isolated_per_step_s"):
        assert digits[key] > 0, key
    for key in ("overhead_per_experience_s", "overhead_per_step_s", "overhead_percent"):
        assert isinstance(digits[key], float), key
    assert digits["same_training"] is True
    assert digits["timed_experiences"] == 4
    assert digits["steps_per_experience"] == 9  # ~268 training samples per experience, batch 32
    assert len(digits["raw"]["accounted"]) == len(digits["raw"]["unaccounted"]) == 2
    expected = 100 * (digits["accounted_s"] - digits["unaccounted_s"]) / digits["unaccounted_s"]
    assert digits["overhead_percent"] == pytest.approx(expected)
    assert written["target_met"] == (digits["overhead_percent"] < written["target_percent"])


def test_repeats_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--repeats", "0", "--out", str(tmp_path / "x.json")])
    assert "must be a positive int, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    ("function", "kwargs", "message"),
    [
        (bench_total, {"repeats": 0}, "repeats must be a positive int, got 0"),
        (bench_total, {"n_layers": 2.5}, "n_layers must be a positive int, got 2.5"),
        (bench_digits, {"isolated_number": -1}, "isolated_number must be a positive int, got -1"),
        (bench_digits, {"n_experiences": 1}, "n_experiences must be an int of at least 2, got 1"),
    ],
)
def test_bench_functions_reject_bad_sizes(function, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(**kwargs)
