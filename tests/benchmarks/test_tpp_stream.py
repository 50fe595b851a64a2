import json

import numpy as np

from benchmarks.tpp_stream import main


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
        "prompttpp",
    }
    for result in synthetic["methods"].values():
        matrix = np.array(result["matrices"]["log_likelihood"], dtype=float)
        assert matrix.shape == (2, 2) and np.isfinite(matrix).all()
        assert result["ledger"]["total"] <= result["ledger"]["budget"]
    assert "prompts" in synthetic["methods"]["prompttpp"]["ledger"]["accounts"]
    assert (tmp_path / "tpp_stream_synthetic_log_likelihood.png").exists()
