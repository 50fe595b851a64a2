import json

from benchmarks.gpu_check import main


def test_quick_run_on_the_cpu_runs_every_domain(tmp_path):
    out = tmp_path / "gpu.json"
    returned = main(["--device", "cpu", "--quick", "--precisions", "32", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    rows = written["rows"]
    assert [row for row in rows if "error" in row] == []
    whats = [row["what"] for row in rows]
    assert whats[:3] == ["resnet32 plain", "resnet32 memo (task 3)", "resnet32 der (task 3)"]
    assert any(w.startswith("nhp") for w in whats) and any(w.startswith("dsl") for w in whats)
    memo = rows[1]
    assert memo["samples_per_step"] > 8  # replayed exemplars join each batch of 8
    assert memo["ledger_on_device"] > 0 and memo["allocated"] is None  # no CUDA allocator
    assert written["device"] == "cpu"
