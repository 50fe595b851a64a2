import json

from benchmarks.dsl_pass import RATIOS, main


def test_quick_run_times_a_pass_per_ratio(tmp_path):
    out = tmp_path / "dsl_pass.json"
    returned = main(["--quick", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert written["benchmark"] == "dsl_pass" and written["quick"] is True
    settings = written["settings"]
    assert settings["entries"] == (600 + 1 + 800 + 1) * 64  # Full maps add a fallback row
    assert settings["nnz"] == round(0.2 * settings["entries"])
    assert [run["ratio"] for run in written["passes"]] == list(RATIOS)
    for run in written["passes"]:
        assert run["swapped"] == -(-run["ratio"] * settings["nnz"] // 1)  # ceil(ratio * nnz)
        assert len(run["wall_ms"]) == settings["repeats"] and run["median_cpu_ms"] >= 0
    assert written["worst_median_wall_ms"] == max(r["median_wall_ms"] for r in written["passes"])
    assert {"cpu_model", "torch_threads"} <= set(written["machine"])
