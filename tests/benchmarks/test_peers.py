"""The peer benchmarks without a peer: our sides in --quick mode, and how the peers'
environments would be made (no network, no peer installed)."""

import json
import math
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from benchmarks.peers import avalanche, easytpp, recbole
from benchmarks.peers.environment import PeerEnvironment, default_cache, last_json
from streams import split_digits


def test_environment_commands(tmp_path):
    env = PeerEnvironment(
        "peer", ("peer-lib==1.2.3",), constraints=("numpy<2",), cache=tmp_path, python="/py"
    )
    assert env.venv_command() == ["/py", "-m", "venv", str(tmp_path / "peer" / "venv")]
    python = str(tmp_path / "peer" / "venv" / "bin" / "python")
    assert env.install_command() == [
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-c",
        str(tmp_path / "peer" / "constraints.txt"),
        "peer-lib==1.2.3",
    ]
    # torch is shared by default, and pinned to our version so that no resolver replaces it
    assert env.constraint_lines() == ["numpy<2", f"torch=={metadata.version('torch')}"]
    assert env.run_command(Path("side.py"), ["--x", "1"]) == [python, "-I", "side.py", "--x", "1"]
    assert not env.ready()  # nothing made yet
    assert env.overlay_dir.parent == env.venv_dir.parent  # the overlay is outside the prefix


def test_environment_defaults_follow_our_interpreter_and_the_cache_variable(monkeypatch, tmp_path):
    env = PeerEnvironment("x", ())
    assert Path(env.base_python()).name.startswith("python3")
    assert env.stamp()["share"] == {"torch": metadata.version("torch")}
    monkeypatch.setenv("CONTINUAL_BUDGET_PEERS", str(tmp_path))
    assert default_cache() == tmp_path and env.root == tmp_path / "x"
    monkeypatch.delenv("CONTINUAL_BUDGET_PEERS")
    assert default_cache() == Path.home() / ".cache" / "continual-budget" / "peers"


def test_only_torch_and_what_it_requires_is_shared(tmp_path):
    links = PeerEnvironment("x", (), cache=tmp_path).shared_links()
    site = Path(metadata.distribution("torch").locate_file(""))
    assert links["torch"] == site / "torch"
    assert any(name.startswith("torch-") and name.endswith(".dist-info") for name in links)
    assert "sympy" in links  # a requirement of torch
    for other in ("numpy", "scipy", "pandas", "sklearn"):  # the peer's own versions
        assert other not in links
    assert all(target.exists() for target in links.values())
    assert PeerEnvironment("x", (), share=(), cache=tmp_path).shared_links() == {}


def test_last_json_skips_library_chatter():
    assert last_json('warning: x\n{"a": 1}\n{"b": [2]}\ntrailing\n') == {"b": [2]}
    with pytest.raises(ValueError, match="no JSON"):
        last_json("nothing here")


def test_easytpp_our_side_quick(tmp_path):
    out = tmp_path / "e.json"
    document = easytpp.main(["--quick", "--ours-only", "--out", str(out)])
    assert json.loads(out.read_text()) == document
    assert document["machine"]["torch_threads"] == 1
    (run,) = document["runs"]["ours"]
    assert len(run["epoch_seconds"]) == document["settings"]["epochs"] == 2
    assert run["scored_events"][0] == run["scored_events"][1] > 0
    assert all(math.isfinite(v) for v in run["test_log_likelihood"].values())
    assert {row["what"] for row in document["speed"]} == {
        f"scored events/s, {name} ({clock})"
        for name in ("median epoch", "all epochs")
        for clock in ("wall", "CPU")
    }
    assert all(row["ours"] > 0 and row["peer"] is None for row in document["speed"])


def test_easytpp_our_side_counts_scored_events():
    stream = easytpp.load_easytpp(
        [
            {
                "dim_process": 2,
                "time_since_start": [0.0, 1.0, 1.5],
                "time_since_last_event": [0.0, 1.0, 0.5],
                "type_event": [0, 1, 0],
            }
        ]
        * 3
    )
    run = easytpp.ours_side(stream, stream, epochs=1, lr=1e-2, batch_size=2, eval_points=(20,))
    assert run["scored_events"] == [6] and run["test_scored_events"] == 6  # 3 x (3 - 1)
    assert run["parameters"] > 0 and list(run["test_log_likelihood"]) == ["20"]


def test_avalanche_our_side_keeps_as_many_samples_as_the_peer():
    stream = split_digits(5, seed=0)
    run = avalanche.ours_side(stream, "replay", epochs=1, mem_size=50)
    assert run["stored_samples"] == 50  # the byte budget holds exactly mem_size samples
    sizes = [len(e.train[1]) for e in stream]
    assert run["steps"] == sum(math.ceil(n / 32) for n in sizes)
    assert len(run["seen_accuracy"]) == 5 and run["ledger"]["total"] <= run["budget"]


def test_avalanche_our_side_quick(tmp_path):
    document = avalanche.main(["--quick", "--ours-only", "--out", str(tmp_path / "a.json")])
    assert set(document["runs"]) == {"ours/naive", "ours/replay"}
    assert document["runs"]["ours/naive"][0]["stored_samples"] == 0
    assert document["runs"]["ours/replay"][0]["stored_samples"] == 10
    rows = {(r["strategy"], r["what"]) for r in document["speed"]}
    assert ("replay", "train s (CPU)") in rows and len(rows) == 4


def test_recbole_our_side_quick(tmp_path):
    document = recbole.main(["--quick", "--ours-only", "--out", str(tmp_path / "r.json")])
    (run,) = document["runs"]["ours"]
    train, test, _ = recbole._data(type("Args", (), {"quick": True, "seed": 0})())
    assert run["steps_per_epoch"] == math.ceil(len(train) / 256)
    assert run["n_test_users"] == np.unique(test.users).size
    assert 0.0 <= run["ndcg"] <= 1.0 and 0.0 <= run["recall"] <= 1.0
    assert len(document["speed"]) == 4


def test_recbole_atomic_files_hold_our_split(tmp_path):
    train, test, _ = recbole._data(type("Args", (), {"quick": True, "seed": 0})())
    recbole.write_atomic(train, test, tmp_path, "d")
    for part, data in (("train", train), ("valid", test), ("test", test)):
        rows = np.loadtxt(tmp_path / "d" / f"d.{part}.inter", dtype=np.int64, skiprows=1)
        assert rows.shape == (len(data), 2)
        assert (rows[:, 0] == data.users).all() and (rows[:, 1] == data.items).all()


@pytest.mark.parametrize("module", [easytpp, avalanche, recbole])
def test_every_peer_runs_its_side_from_its_own_environment(module, tmp_path):
    env = module.environment(tmp_path)
    assert env.root == tmp_path / env.name and env.share == ("torch",)
    assert all("==" in requirement for requirement in env.requirements)  # pinned
    assert module.SIDE.exists() and module.SIDE.name.startswith("_")
    assert sys.executable not in env.run_command(module.SIDE)
