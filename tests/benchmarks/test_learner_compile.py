import json

import pytest

from benchmarks.learner_compile import main


def test_quick_run_reports_both_learners_and_their_ratios(tmp_path):
    out = tmp_path / "compile.json"
    returned = main(["--quick", "--backend", "eager", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    summary = written["summary"]
    assert set(summary) == {"eager", "compiled"}
    for key, ratio in written["ratios"].items():
        assert ratio == pytest.approx(summary["compiled"][key] / summary["eager"][key])
        assert summary["eager"][key] > 0
