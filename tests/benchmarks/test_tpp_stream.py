import json

import numpy as np
import pytest

from benchmarks.tpp_stream import format_merged_table, main, merge_seeds


def test_quick_synthetic_run_writes_matrices_ledgers_and_oracle(tmp_path):
    out = tmp_path / "stream.json"
    main(["--quick", "--out", str(out), "--figures", str(tmp_path)])
    written = json.loads(out.read_text())
    synthetic = written["datasets"]["synthetic"]
    assert len(synthetic["oracle"]) == 2
    assert synthetic["oracle_average"] == pytest.approx(np.mean(synthetic["oracle"]))
    runs = {run["method"]: run for run in synthetic["runs"]}
    assert set(runs) == {
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
    for run in runs.values():
        matrix = np.array(run["scores"]["log_likelihood"]["matrix"], dtype=float)
        assert matrix.shape == (2, 2) and np.isfinite(matrix).all()
        assert run["ledger"]["total"] <= run["ledger"]["budget"]
    assert "prompts" in runs["prompttpp"]["ledger"]["accounts"]
    assert runs["replay_small"]["ledger"]["budget"] == 300_000  # its own budget
    assert runs["replay"]["ledger"]["budget"] == 450_000  # the experiment's
    figures = tmp_path / "tpp_stream_synthetic"
    assert (figures / "scores_log_likelihood.png").exists()
    assert (figures / "ledger_prompttpp.png").exists()
    assert "prompttpp_async" in synthetic["table"]


def test_a_subset_of_methods(tmp_path):
    out = tmp_path / "stream.json"
    main(["--quick", "--methods", "finetune", "--out", str(out)])
    runs = json.loads(out.read_text())["datasets"]["synthetic"]["runs"]
    assert [run["method"] for run in runs] == ["finetune"]
    with pytest.raises(ValueError, match="magic"):
        main(["--quick", "--methods", "magic", "--out", str(out)])


def test_merging_seed_runs_keeps_one_value_per_run():
    def document(value):
        summary = {
            "average_incremental_accuracy": value,
            "last_accuracy": value,
            "forgetting": 0.0,
            "forward_score": None,
        }
        scores = {m: {"summary": summary} for m in ("log_likelihood", "accuracy", "rmse")}
        run = {"method": "finetune", "scores": scores, "ledger": {"total": 10, "peak": 12}}
        return {"datasets": {"synthetic": {"runs": [run]}}}

    merged = merge_seeds([document(-1.0), document(-2.0)])
    entry = merged["synthetic"]["finetune"]
    assert entry["LL last"] == [-1.0, -2.0] and entry["LL fwd"] == [None, None]
    assert entry["bytes"] == [10, 10] and entry["peak"] == [12, 12]
    table = format_merged_table(merged["synthetic"]).splitlines()
    assert table[1].split()[:4] == ["finetune", "-1.500", "±", "0.707"]
