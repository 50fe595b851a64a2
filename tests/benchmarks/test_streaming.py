import json

import pytest

from benchmarks.streaming import main


def test_quick_run_compares_every_model_at_one_budget(tmp_path):
    out = tmp_path / "streaming.json"
    returned = main(["--quick", "--budget", "1 MB", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    budget = written["settings"]["budget_bytes"]
    for stream, models in written["results"].items():
        assert {"StreamingClassifier", "HAT", "ARF", "LogisticRegression", "GaussianNB"} <= set(
            models
        )
        for values in models.values():
            if "accuracy" in values:
                assert 0.0 <= values["accuracy"] <= 1.0
                assert 0 < values["bytes"] <= values["peak_bytes"]
        # our learner checks its budget before every allocation; river's StandardScaler in
        # front of it (outside its budget) adds a few kB
        assert models["StreamingClassifier"]["peak_bytes"] <= budget + 10_000
        verdict = written["verdict"]["streams"][stream]
        ours = models["StreamingClassifier"]
        assert verdict["vs_hat"] == pytest.approx(
            ours["samples_per_s"] / models["HAT (unwrapped)"]["samples_per_s"]
        )
        best = max(v["accuracy"] for v in models.values() if "accuracy" in v)
        assert verdict["gap_points"] == pytest.approx(100 * (best - ours["accuracy"]))
