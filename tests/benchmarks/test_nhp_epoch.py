import json
from pathlib import Path

from benchmarks.nhp_epoch import main

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_times_both_trees_and_scores_them(tmp_path):
    out = tmp_path / "nhp_epoch.json"
    returned = main(["--quick", "--out", str(out), "--baseline", str(ROOT)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert written["benchmark"] == "nhp_epoch" and written["quick"] is True
    assert list(written["trees"]) == ["baseline", "this tree"]
    epochs = written["settings"]["epochs"]
    for tree in written["trees"].values():
        assert tree["source"] == str(ROOT)
        (run,) = tree["runs"]
        assert len(run["epoch_seconds"]) == len(run["epoch_cpu_seconds"]) == epochs
        assert run["scored_events"] > 0 and tree["events_per_second"] > 0
    base, this = (written["trees"][name] for name in ("baseline", "this tree"))
    # the same code and seed in both processes: the same model, to the last digit
    assert base["test_log_likelihood"] == this["test_log_likelihood"]
    assert written["ratio_wall"] > 0 and written["ratio_cpu"] > 0
    assert written["machine"]["torch_threads"] == 1
