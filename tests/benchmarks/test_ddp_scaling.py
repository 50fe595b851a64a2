import json

import pytest

from benchmarks.ddp_scaling import main


def test_quick_run_reports_both_world_sizes_and_their_shares(tmp_path):
    out = tmp_path / "ddp.json"
    returned = main(["--quick", "--comm-steps", "10", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    one, two = written["summary"]["1"], written["summary"]["2"]
    assert two["speedup"] == pytest.approx(two["samples_per_s"] / one["samples_per_s"])
    # samples/s counts every rank's rows: two ranks of --batch rows per step
    assert two["samples_per_s"] == pytest.approx(2 * 32 / (two["step_ms"] / 1e3))
    assert two["communication_share"] == pytest.approx(
        1 - two["no_sync_step_ms"] / two["ddp_step_ms"]
    )
    assert "communication_share" not in one  # one process has nothing to communicate
    assert written["runs"]["2"][0]["steps"] == pytest.approx(one["steps"] / 2, abs=1)
