import json

from benchmarks.recsys_budget import main


def test_quick_run_reports_every_table_and_the_stream(tmp_path):
    out = tmp_path / "budget.json"
    main(["--quick", "--out", str(out)])
    written = json.loads(out.read_text())
    runs = {r["name"]: r for r in written["synthetic"]["runs"]}
    assert set(runs) == {
        "mf/full", "mf/modulo", "mf/double", "mf/frequency", "mf/graphhash",
        "mf/doublegraphhash", "lightgcn/full", "lightgcn/graphhash",
        "mf/full/dsl0.5", "mf/full/dsl0.2", "mf/full/dsl0.1",
    }  # fmt: skip
    for run in runs.values():
        assert 0 <= run["recall"] <= 1 and run["epochs"] > 0 and run["eval_s"] >= 0
    dsl = [runs[f"mf/full/dsl{d}"]["total_bytes"] for d in (0.5, 0.2, 0.1)]
    assert runs["mf/full"]["total_bytes"] > dsl[0] > dsl[1] > dsl[2]
    assert written["synthetic"]["summary"]["dsl0.2_bytes_over_dense"] <= 0.35
    curves = written["stream"]["prequential_recall"]
    assert set(curves) == {"full", "modulo", "graphhash"} and len(curves["full"]) == 2
