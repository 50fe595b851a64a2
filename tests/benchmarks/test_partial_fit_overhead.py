import json
from pathlib import Path

from benchmarks.partial_fit_overhead import main

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_times_every_mode_and_measures_memory(tmp_path):
    out = tmp_path / "overhead.json"
    returned = main(["--quick", "--out", str(out), "--baseline", str(ROOT)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert list(written["modes"]) == ["memory", "disk", "off"]
    assert written["modes"]["off"]["median_ratio_to_off"] == 1.0
    late = written["timing"]
    window = written["settings"]["window"]
    assert late["late_snapshots"] == late["late_call"] + window  # one snapshot per call
    assert written["ratio_late_over_early"] == late["median_paired_ratio"] > 0
    memory = {m["mode"]: m for m in written["memory"]}
    assert memory["memory"]["ledger_transient_bytes"] > 0
    assert memory["disk"]["ledger_transient_bytes"] == memory["off"]["ledger_transient_bytes"] == 0
    assert len({m["total_bytes"] for m in memory.values()}) == 1  # same training in every mode
    baseline = written["baseline"]  # this tree as its own baseline: same code, same bytes
    assert baseline["source"] == baseline["this_tree"]["source"] == str(ROOT)
    assert baseline["memory"]["total_bytes"] == memory["memory"]["total_bytes"]
