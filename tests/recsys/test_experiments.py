import json

import pytest
from hydra import compose, initialize_config_module

from continual.runner import run_experiment
from recsys.experiments import equal_row_mappers, prequential
from streams.communities import planted_communities
from streams.interaction_streams import interaction_blocks


def compose_small(name, overrides):
    with initialize_config_module("continual.conf", version_base=None):
        return compose("config", overrides=[f"experiment={name}", "verbose=0", *overrides])


def test_budget_experiment_runs_from_hydra(tmp_path):
    cfg = compose_small(
        "recsys_budget",
        [
            "experiment.data.n_users=120",
            "experiment.data.n_items=150",
            "experiment.data.n_communities=4",
            "experiment.train.time_budget=0.1",
            "experiment.train.dim=8",
            "experiment.resolution=5",
            "experiment.densities=[1.0,0.2]",
            "experiment.lightgcn=[graphhash]",
            "budget=20KB",
        ],
    )
    results = run_experiment(cfg, tmp_path)
    names = [r["name"] for r in results["runs"]]
    assert names == [
        "mf/full", "mf/modulo", "mf/double", "mf/frequency", "mf/graphhash",
        "mf/doublegraphhash", "lightgcn/graphhash", "mf/full/dsl0.2",
    ]  # fmt: skip
    rows = {r["name"]: r["rows"] for r in results["runs"]}
    assert len({rows[n] for n in names[1:6]}) == 1 and rows["mf/full"] == 120 + 150 + 2
    for run in results["runs"]:
        assert run["total_bytes"] == sum(run["ledger"].values())
        assert run["fits_budget"] == (run["total_bytes"] <= 20_000)
    assert "mf/graphhash" in results["table"]
    assert (tmp_path / "recall_vs_memory.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["experiment"] == "recsys_budget"


def test_stream_experiment_reports_each_block(tmp_path):
    cfg = compose_small(
        "recsys_stream",
        ["experiment.stream.data.n_users=80", "experiment.stream.data.n_items=100",
         "experiment.stream.n_blocks=3",
         "experiment.params.time_budget=0.1", "experiment.params.dim=8"],
    )  # fmt: skip
    results = run_experiment(cfg, tmp_path)
    curves = results["prequential_recall"]
    assert set(curves) == {"full", "modulo", "graphhash"}
    assert all(len(c) == 2 and all(0 <= v <= 1 for v in c) for c in curves.values())


def test_equal_rows_reduce_the_table_by_the_graphhash_amount():
    graph = planted_communities(300, 400, n_communities=6, seed=0).csr()
    mappers, info = equal_row_mappers(graph, resolution=20.0)
    assert info["reduction"] == pytest.approx(1 - (info["user_rows"] + info["item_rows"]) / 700)
    for name in ("modulo", "double", "frequency", "graphhash", "doublegraphhash"):
        users, items = mappers[name]
        assert (users.n_rows, items.n_rows) == (info["user_rows"], info["item_rows"]), name


def test_prequential_scores_every_block_but_the_first():
    data = planted_communities(80, 100, n_communities=4, seed=0)
    curves = prequential(interaction_blocks(data, 4), ["modulo"], params={"dim": 8, "epochs": 2})
    assert len(curves["modulo"]) == 3
