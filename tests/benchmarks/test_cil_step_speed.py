import json

import pytest

from benchmarks.cil_step_speed import VARIANTS, main, time_steps


def test_quick_run_reports_every_variant_and_ratios(tmp_path):
    out = tmp_path / "speed.json"
    returned = main(["--quick", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    summary = written["summary"]
    assert list(summary) == list(VARIANTS)
    assert VARIANTS[:3] == ("plain", "learner", "memo")
    assert summary["plain"]["ratio_to_plain"] == 1.0
    assert summary["plain"]["per_sample_ratio_to_plain"] == 1.0
    for variant in summary.values():
        assert variant["median_step_s"] > 0
    ratio = summary["learner"]["median_step_s"] / summary["plain"]["median_step_s"]
    assert summary["learner"]["ratio_to_plain"] == pytest.approx(ratio)
    assert written["target_met"] == (ratio <= 1.05)
    assert written["settings"]["batch_size"] == 8
    # MEMO's batches carry replayed exemplars; its time is compared per sample as well
    memo, plain = summary["memo"], summary["plain"]
    assert (
        memo["replayed_per_step"] >= 1 and memo["samples_per_step"] == 8 + memo["replayed_per_step"]
    )
    per_sample = (memo["median_step_s"] / memo["samples_per_step"]) / (plain["median_step_s"] / 8)
    assert memo["per_sample_ratio_to_plain"] == pytest.approx(per_sample)
    # the target is judged on plain and MEMO steps taken alternately in one process
    interleaved = written["interleaved"]
    assert interleaved["samples"] == {"plain": 8, "memo": memo["samples_per_step"]}
    assert len(interleaved["step_s"]["plain"]) == len(interleaved["step_s"]["memo"]) == 2
    ratios = [
        (m / interleaved["samples"]["memo"]) / (p / 8)
        for p, m in zip(interleaved["step_s"]["plain"], interleaved["step_s"]["memo"])
    ]
    assert interleaved["paired_per_sample_ratio_median"] == pytest.approx(sum(ratios) / 2)
    assert written["memo_target_met"] == (sum(ratios) / 2 <= 1.05)


def test_variants_can_be_chosen_and_must_start_with_plain(tmp_path):
    out = tmp_path / "speed.json"
    written = main(
        ["--quick", "--variants", "plain,memo", "--interleaved-rounds", "0", "--out", str(out)]
    )
    assert list(written["summary"]) == ["plain", "memo"] and written["target_met"] is None
    assert written["interleaved"] is None
    memo_ratio = written["summary"]["memo"]["per_sample_ratio_to_plain"]
    assert written["memo_target_met"] == (memo_ratio <= 1.05)
    with pytest.raises(SystemExit):
        main(["--quick", "--variants", "memo,plain", "--out", str(out)])
    with pytest.raises(ValueError, match="variant must be one of"):
        time_steps("fast", steps=1, warmup=0, batch_size=2)
