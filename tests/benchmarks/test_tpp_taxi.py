import json

from benchmarks.tpp_taxi import main


def test_quick_run_reports_every_number(tmp_path):
    out = tmp_path / "taxi.json"
    returned = main(["--quick", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert written["benchmark"] == "tpp_taxi" and written["quick"] is True
    metrics = written["checkpoints"]["2"]
    assert {"log_likelihood", "accuracy", "rmse", "most_frequent_accuracy"} <= set(metrics)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["rmse"] > 0
    assert written["events_per_second"] > 0 and written["events_per_cpu_second"] > 0
    assert written["poisson_log_likelihood"] < 0
    assert written["machine"]["torch_threads"] == 1
