import json

import numpy as np

from benchmarks.tpp_stream import main, merge_seeds


def test_quick_synthetic_run_writes_matrices_ledgers_and_oracle(tmp_path):
    out = tmp_path / "stream.json"
    main(["--quick", "--out", str(out), "--figures", str(tmp_path)])
    written = json.loads(out.read_text())
    synthetic = written["datasets"]["synthetic"]
    assert len(synthetic["oracle"]) == 2
    assert set(synthetic["methods"]) == {
        "pretrain",
        "retrain",
        "finetune",
        "ewc",
        "replay",
        "replay_small",
        "replay_tiny",
        "prompttpp",
        "prompttpp_async",
    }
    for result in synthetic["methods"].values():
        matrix = np.array(result["matrices"]["log_likelihood"], dtype=float)
        assert matrix.shape == (2, 2) and np.isfinite(matrix).all()
        assert result["ledger"]["total"] <= result["ledger"]["budget"]
    assert "prompts" in synthetic["methods"]["prompttpp"]["ledger"]["accounts"]
    assert (tmp_path / "tpp_stream_synthetic_log_likelihood.png").exists()
    assert synthetic["methods"]["replay_small"]["ledger"]["budget"] == 300_000  # its own budget


def test_merging_seed_runs_keeps_one_value_per_run():
    def document(value):
        summary = {
            m: {"final_average": value, "forgetting": 0.0, "forward": None}
            for m in ("log_likelihood", "accuracy", "rmse")
        }
        run = {"summary": summary, "ledger": {"total": 10}, "timeline": [[0, {"a": 12}]]}
        return {"datasets": {"synthetic": {"methods": {"finetune": run}}}}

    merged = merge_seeds([document(-1.0), document(-2.0)])
    entry = merged["synthetic"]["finetune"]
    assert entry["LL final"] == [-1.0, -2.0] and entry["LL fwd"] == [None, None]
    assert entry["bytes"] == [10, 10] and entry["peak"] == [12, 12]
