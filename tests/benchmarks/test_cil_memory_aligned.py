import json

from benchmarks.cil_memory_aligned import main


def test_quick_run_writes_json_and_plot(tmp_path):
    out = tmp_path / "cil.json"
    returned = main(["--quick", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert written["benchmark"] == "cil_memory_aligned" and written["quick"] is True
    assert written["machine"]["torch_threads"] == 1
    assert out.with_suffix(".png").stat().st_size > 0
    assert set(written["auc"]) == {"replay", "der", "memo"}
    a = {k: v["auc_a_mean"] for k, v in written["auc"].items()}
    assert written["ordering"] == {"memo >= der > replay": a["memo"] >= a["der"] > a["replay"]}
    for run in written["runs"]:
        assert run["ledger"]["total"] <= run["budget"]
