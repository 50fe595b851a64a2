import json

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from continual.runner import run_experiment
from recsys.experiments import equal_row_mappers, prequential, recall_vs_memory_curves
from recsys.metrics import evaluate
from recsys.recommender import Recommender
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
        assert len(run["losses"]) >= 1 and run["epochs"] > 0
    lines = results["table"].splitlines()
    assert lines[0].split()[:3] == ["run", "recall@20", "ndcg@20"]
    graphhash = next(line for line in lines if line.startswith("mf/graphhash ")).split()
    record = next(r for r in results["runs"] if r["name"] == "mf/graphhash")
    assert graphhash[1] == f"{record['recall']:.4f}" and f"{record['total_bytes']:,}" in graphhash
    assert (tmp_path / "recall_vs_memory.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["experiment"] == "recsys_budget"
    assert list((tmp_path / "tb" / "mf" / "graphhash").glob("events.out.tfevents.*"))


def test_stream_experiment_runs_on_the_generic_runner(tmp_path):
    cfg = compose_small(
        "recsys_stream",
        ["experiment.stream.data.n_users=80", "experiment.stream.data.n_items=100",
         "experiment.stream.n_blocks=3",
         "experiment.train.time_budget=0.1", "experiment.train.dim=8"],
    )  # fmt: skip
    results = run_experiment(cfg, tmp_path)
    assert [run["method"] for run in results["runs"]] == ["full", "modulo", "graphhash"]
    for run in results["runs"]:
        recall = np.array(run["scores"]["recall"]["matrix"], dtype=float)
        assert recall.shape == (3, 3) and np.isnan(recall[0, 2])  # horizon 1
        forward = [recall[0, 1], recall[1, 2]]
        assert all(0 <= v <= 1 for v in forward)
        assert run["scores"]["recall"]["summary"]["forward_score"] == pytest.approx(
            np.mean(forward)
        )
    assert "recall fwd" in results["table"]
    for name in ("scores_recall.png", "score_vs_memory.png", "ledger_graphhash.png"):
        assert (tmp_path / name).exists()


def test_the_stream_masks_what_the_old_prequential_masked():
    """The stream's forward scores are the old protocol: block t scored before it is learned,
    the items of blocks 0..t-1 masked (computed here with the metric on the embeddings)."""
    data = planted_communities(80, 100, n_communities=4, seed=0)
    stream = interaction_blocks(data, 3)
    curves = prequential(stream, ["modulo"], params={"dim": 8, "epochs": 2})
    rec = Recommender(embedding="modulo", dim=8, epochs=2, random_state=0)
    rec.partial_fit(stream[0].train)
    past = stream[0].train
    user_emb, item_emb = rec.model_.final()
    expected = evaluate(user_emb, item_emb, past.csr(), stream[1].train.csr())["recall"]
    assert curves["modulo"][0] == expected


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


def test_the_figure_labels_each_table_and_joins_only_the_dsl_densities():
    records = [
        {"name": name, "total_bytes": size, "recall": recall}
        for name, size, recall in [
            ("mf/full", 1000, 0.4), ("mf/modulo", 300, 0.1), ("mf/graphhash", 320, 0.3),
            ("lightgcn/graphhash", 900, 0.35), ("mf/full/dsl0.5", 600, 0.38),
            ("mf/full/dsl0.2", 300, 0.3),
        ]
    ]  # fmt: skip
    curves = recall_vs_memory_curves(records)
    assert curves["mf/full, DSL densities"] == [(1000, 0.4), (600, 0.38), (300, 0.3)]
    singles = {k: v for k, v in curves.items() if k != "mf/full, DSL densities"}
    assert singles == {
        "mf/modulo": [(300, 0.1)], "mf/graphhash": [(320, 0.3)],
        "lightgcn/graphhash": [(900, 0.35)],
    }  # fmt: skip
