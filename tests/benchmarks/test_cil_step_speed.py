import json

import pytest

from benchmarks.cil_step_speed import main


def test_quick_run_reports_three_variants_and_ratios(tmp_path):
    out = tmp_path / "speed.json"
    returned = main(["--quick", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    summary = written["summary"]
    assert list(summary) == ["plain", "learner", "memo"]
    assert summary["plain"]["ratio_to_plain"] == 1.0
    for variant in summary.values():
        assert variant["median_step_s"] > 0
    ratio = summary["learner"]["median_step_s"] / summary["plain"]["median_step_s"]
    assert summary["learner"]["ratio_to_plain"] == pytest.approx(ratio)
    assert written["target_met"] == (ratio <= 1.05)
    assert written["settings"]["batch_size"] == 8
