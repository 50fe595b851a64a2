import json

import pytest

from benchmarks.memact import LARGE_BUDGET, main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "memact.json"
    returned = main(["--quick", "--out", str(out)])
    return returned, json.loads(out.read_text())


def test_quick_run_writes_every_method_and_difficulty(quick_run):
    returned, written = quick_run
    assert written == json.loads(json.dumps(returned))
    assert written["benchmark"] == "memact" and written["quick"] is True
    assert written["command"].startswith("python -m benchmarks.memact --quick --out ")
    methods = {r["method"] for r in written["rows"]}
    assert methods == {
        "dcpo",
        "warm_start_only",
        "naive_final",
        "keep_everything",
        "fifo",
        "recency",
        "queried_keys",
        "mem0",
    }
    assert {(r["n_questions"], r["budget"]) for r in written["rows"]} == {
        (2, 240),
        (3, 240),
        (2, LARGE_BUDGET),
    }
    assert len(written["rows"]) == 3 * 8
    for row in written["rows"]:
        assert 0.0 <= row["success"] <= row["partial"] <= 1.0
        assert row["bytes_per_step"] == pytest.approx(4 * row["tokens_per_step"])


def test_targets_are_derived_from_the_rows(quick_run):
    _, written = quick_run
    rows = {(r["method"], r["n_questions"], r["budget"]): r for r in written["rows"]}
    targets = written["targets"]
    beats = targets["beats_fifo_and_recency"]
    assert beats["met"] == (beats["dcpo"] > max(beats["fifo"], beats["recency"]))
    assert beats["fifo"] == rows[("fifo", 2, 240)]["success"]
    saving = targets["bytes_saving_vs_keep_everything"]
    keep = rows[("keep_everything", 2, LARGE_BUDGET)]
    assert keep["overflow"] == 0.0  # the large budget holds everything
    assert saving["saving"] == pytest.approx(
        1 - rows[("dcpo", 2, LARGE_BUDGET)]["bytes_per_step"] / keep["bytes_per_step"]
    )
    assert rows[("queried_keys", 2, 240)]["success"] == 1.0
    assert written["training_curves"]["dcpo"] and written["training_curves"]["naive_final"]
    assert len(written["training_curves"]["dcpo"]) == written["settings"]["updates"]


def test_learned_curators_report_their_stored_bytes(quick_run):
    _, written = quick_run
    ledgers = written["learner_ledgers"]
    assert set(ledgers) == {"dcpo", "warm_start_only", "naive_final"}
    for name, accounts in ledgers.items():
        assert accounts["reference"] == accounts["policy"] > 0
        assert accounts["optimizer"] > 2 * accounts["policy"]  # two Adam moments and steps
        learned = [r for r in written["rows"] if r["method"] == name]
        assert {r["learner_bytes"] for r in learned} == {sum(accounts.values())}
    assert {r["learner_bytes"] for r in written["rows"] if r["method"] == "fifo"} == {None}
