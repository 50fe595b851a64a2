import json

from benchmarks.recsys_eval_speed import evaluate_numpy, main


def test_quick_run_times_both_versions_and_they_agree(tmp_path):
    out = tmp_path / "speed.json"
    result = main(["--quick", "--out", str(out), "--threads", "1"])
    written = json.loads(out.read_text())
    assert written["benchmark"] == "recsys_eval_speed" and written["quick"] is True
    assert written["same_metrics"] is True
    for version in ("fast", "plain_numpy"):
        assert len(written[version]["times_s"]) == 2 and written[version]["median_s"] > 0
    assert result["fast"]["recall"] == written["plain_numpy"]["recall"] or written["same_metrics"]
    assert callable(evaluate_numpy)
