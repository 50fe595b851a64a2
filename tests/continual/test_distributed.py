"""Data-parallel training on 2 gloo processes of this CPU, against one process.

Each scenario runs in 2 spawned processes joined by a file-based process group; they write
what they saw to a folder (JSON and safetensors) and the test compares it with a reference
computed here in one process. A scenario that hangs is killed after ``TIMEOUT`` seconds and
fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn

from continual import BudgetExceededError, Learner, Plugin, load, save
from continual.distributed import local_part, local_rows, merge_shards
from strategies import DERClassifier, ICaRLClassifier, MEMOClassifier, ReplayClassifier
from streams import hawkes_drift_stream, planted_communities, split_digits

TIMEOUT = 150
BATCH = 16  # per rank; the reference process uses 2 * BATCH


def run_ranks(scenario: Callable[[int, Path], None], folder: Path, world: int = 2) -> None:
    """Run ``scenario(rank, folder)`` on ``world`` processes in one gloo process group; fail
    when a rank raises, or when they have not finished after ``TIMEOUT`` seconds."""
    init = f"file://{folder / 'rendezvous'}"
    context = mp.start_processes(
        _rank_main, args=(scenario, world, init, folder), nprocs=world, join=False
    )
    deadline = time.monotonic() + TIMEOUT
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world} ranks did not finish within {TIMEOUT} s")


def _rank_main(rank: int, scenario, world: int, init: str, folder: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        scenario(rank, folder)
    finally:
        dist.destroy_process_group()


def write(folder: Path, name: str, record: dict, tensors: dict | None = None) -> None:
    (folder / f"{name}.json").write_text(json.dumps(record))
    if tensors:
        save_file({k: v.contiguous() for k, v in tensors.items()}, folder / f"{name}.safetensors")


def read(folder: Path, name: str) -> tuple[dict, dict]:
    tensors = folder / f"{name}.safetensors"
    return json.loads((folder / f"{name}.json").read_text()), (
        load_file(tensors) if tensors.exists() else {}
    )


# ------------------------------------------------------------------ equivalence
class CountRows(Plugin):
    """Counts the training rows each rank's batches hold."""

    def __init__(self) -> None:
        self.rows = 0

    def before_batch(self, learner: Learner) -> None:
        self.rows += len(learner.batch[1])


def train_mlp(batch_size: int) -> tuple[Learner, CountRows, np.ndarray]:
    stream = split_digits(n_experiences=2, flatten=True, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    counter = CountRows()
    learner = Learner(
        model,
        plugins=[counter],
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        epochs=2,
        batch_size=batch_size,
        input_scale=1 / 16,
        seed=0,
    )
    scores = learner.run(stream)
    return learner, counter, scores.matrix


def _equivalence(rank: int, folder: Path) -> None:
    learner, counter, matrix = train_mlp(BATCH)
    weights = {k: v.detach() for k, v in learner.model.state_dict().items()}
    ledger = learner.accountant.ledger(reduce=True)
    record = {
        "rows": counter.rows,
        "matrix": matrix.tolist(),
        "reduced": ledger.accounts,
        "devices": ledger.devices,
        "local": learner.accountant.ledger().accounts,
    }
    write(folder, f"equivalence{rank}", record, weights)


def test_two_ranks_with_batch_b_match_one_process_with_batch_2b(tmp_path):
    run_ranks(_equivalence, tmp_path)
    reference, counter, matrix = train_mlp(2 * BATCH)
    expected = reference.model.state_dict()
    ranks = [read(tmp_path, f"equivalence{rank}") for rank in range(2)]
    for record, weights in ranks:
        for name, tensor in expected.items():
            torch.testing.assert_close(weights[name], tensor, atol=1e-5, rtol=0)
        np.testing.assert_allclose(record["matrix"], matrix, atol=0.01)
        # each rank trained on half the rows the single process saw
        assert abs(record["rows"] - counter.rows / 2) <= 2 * 2 * 2  # a row per epoch and task
        # the reduced ledger sums the ranks, and names each rank's device
        assert record["reduced"] == {k: 2 * v for k, v in record["local"].items()}
        assert set(record["devices"]["model"]) == {"rank0:cpu", "rank1:cpu"}
    assert ranks[0][0]["rows"] + ranks[1][0]["rows"] == counter.rows


# --------------------------------------------------------------- sharded stores
BUDGET = 40_000


def replay_classifier(budget: int = BUDGET) -> ReplayClassifier:
    return ReplayClassifier(
        budget=budget,
        hidden_sizes=(16,),
        optimizer="sgd",
        epochs=1,
        batch_size=BATCH,
        input_scale=1 / 16,
        random_state=0,
    )


def _sharded_store(rank: int, folder: Path) -> None:
    stream = split_digits(n_experiences=2, flatten=True, seed=0)
    clf = replay_classifier()
    for experience in stream:
        clf.partial_fit(*experience.train, classes=range(10))
    store = clf.learner_.plugins[0].store
    shard = np.concatenate([local_part(exp.train)[0] for exp in stream])
    own = {row.tobytes() for row in shard}
    in_own_shard = all(row.tobytes() in own for row in store.x.numpy())
    save(clf, folder / "replay.safetensors")  # every rank calls; rank 0 writes
    written = sorted(p.name for p in folder.iterdir() if p.suffix == ".safetensors")
    ledger = clf.accountant_.ledger()
    record = {
        "n": len(store),
        "classes": store.class_counts(),
        "in_own_shard": in_own_shard,
        "total": ledger.total,
        "score": clf.score(*stream[0].test),
        "written": written,
    }
    write(folder, f"store{rank}", record, {"x": store.x, "y": store.y})
    dist.barrier()
    resumed = load(folder / "replay.safetensors")  # the union, shared among 2 ranks again
    resumed_store = resumed.learner_.plugins[0].store
    write(folder, f"resumed{rank}", {"n": len(resumed_store)}, {"y": resumed_store.y})


def test_stores_are_sharded_and_checkpoints_hold_every_shard(tmp_path):
    run_ranks(_sharded_store, tmp_path)
    ranks = [read(tmp_path, f"store{rank}") for rank in range(2)]
    (first, first_tensors), (second, second_tensors) = ranks
    for record, _ in ranks:
        assert record["in_own_shard"]
        assert 0 < record["total"] <= BUDGET
    assert first["n"] == second["n"]  # the ranks agreed on one capacity
    assert first["score"] == second["score"]  # one accuracy, from both ranks' counts
    # each rank's shard is class-balanced: counts differ by at most one between classes
    for record, _ in ranks:
        counts = list(record["classes"].values())
        assert max(counts) - min(counts) <= 1
    # the checkpoint is the union: one process resumes with every rank's exemplars
    single = load(tmp_path / "replay.safetensors").learner_.plugins[0].store
    assert len(single) == first["n"] + second["n"]
    union = torch.cat([first_tensors["y"], second_tensors["y"]])
    assert torch.equal(single.y, union)
    # two ranks resuming it take every other row of the union
    for rank in range(2):
        resumed, tensors = read(tmp_path, f"resumed{rank}")
        assert torch.equal(tensors["y"], union[rank::2])
        assert resumed["n"] == len(union[rank::2])


def _budget_failure(rank: int, folder: Path) -> None:
    stream = split_digits(n_experiences=2, flatten=True, seed=0)
    clf = replay_classifier(BUDGET if rank == 0 else 2_000)  # rank 1 cannot hold the model
    try:
        clf.partial_fit(*stream[0].train, classes=range(10))
    except BudgetExceededError as error:
        write(folder, f"failure{rank}", {"message": str(error), "ranks": error.ranks})
        return
    write(folder, f"failure{rank}", {"message": None})


def test_a_budget_failure_on_one_rank_raises_on_every_rank(tmp_path):
    run_ranks(_budget_failure, tmp_path)
    for rank in range(2):
        record, _ = read(tmp_path, f"failure{rank}")
        assert record["message"] is not None, f"rank {rank} did not raise"
        assert record["ranks"] == [1]
        assert "rank 1 of 2 is over its budget" in record["message"]
    within, _ = read(tmp_path, "failure0")
    assert "within the budget" in within["message"]


# ------------------------------------------------------------- other domains
def _other_domains(rank: int, folder: Path) -> None:
    from recsys import Recommender
    from tpp import NeuralTPP

    events = hawkes_drift_stream(2, 2, horizon=120.0, n_sequences=8, seed=0)
    tpp = NeuralTPP(hidden_size=8, epochs=2, batch_size=4, n_points=5, random_state=0)
    tpp.partial_fit(events[0].train)
    tensors = {f"tpp.{k}": v for k, v in tpp.learner_.model.state_dict().items()}
    split = planted_communities(60, 80, n_communities=3, seed=0).split_per_user(0.2, seed=0)
    for model in ("mf", "lightgcn"):
        rec = Recommender(model, dim=8, epochs=2, batch_size=64, random_state=0)
        rec.fit(split[0])
        state = rec.learner_.model.state_dict()
        tensors |= {f"{model}.{k}": v.to_dense() for k, v in state.items() if v.is_floating_point()}
    digits = split_digits(n_experiences=2, flatten=True, seed=0)
    scores = {}
    for cls in (ICaRLClassifier, MEMOClassifier, DERClassifier):  # grown and distilled models
        clf = cls(
            budget="300KB",
            backbone="conv8",
            width=4,
            epochs=1,
            batch_size=BATCH,
            input_scale=1 / 16,
            random_state=0,
        )
        for experience in digits:
            clf.partial_fit(*experience.train, classes=range(10))
        scores[cls.__name__] = clf.score(*digits[1].test)
        state = clf.learner_.model.state_dict()
        tensors |= {f"{cls.__name__}.{k}": v for k, v in state.items() if v.is_floating_point()}
    write(folder, f"domains{rank}", {"steps": tpp.learner_.n_steps, "scores": scores}, tensors)


def test_every_domain_trains_data_parallel_in_step(tmp_path):
    run_ranks(_other_domains, tmp_path)
    (first, first_tensors), (second, second_tensors) = (
        read(tmp_path, f"domains{rank}") for rank in range(2)
    )
    assert first["steps"] > 0
    assert first["scores"] == second["scores"]
    assert all(score > 0.3 for score in first["scores"].values())  # 10 classes: chance is 0.1
    assert first_tensors.keys() == second_tensors.keys()
    for name, tensor in first_tensors.items():  # DDP keeps the replicas equal
        torch.testing.assert_close(second_tensors[name], tensor, atol=1e-6, rtol=0, msg=name)


# -------------------------------------------------------------------- helpers
def test_without_a_process_group_everything_is_local():
    rows = torch.arange(5)
    assert torch.equal(local_rows(rows), rows)
    payload = (np.zeros((3, 2)), np.arange(3))
    assert local_part(payload) is payload
    merged = merge_shards([{"x": torch.arange(2), "shards": ["x"]}])
    assert merged["union_of_ranks"] == 1


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun's standalone rendezvous")
def test_continual_run_trains_on_two_processes(tmp_path):
    overrides = [
        "experiment=finetune_vs_replay",
        "budget=80KB",
        "experiment.stream.n_experiences=2",
        "experiment.train.epochs=1",
        "+experiment.methods.replay.hidden_sizes=[16]",
        "experiment.train.backbone=mlp",
        "trainer.nproc=2",
        "verbose=0",
        f"hydra.run.dir={tmp_path}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "continual.runner", *overrides],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [run["method"] for run in results["runs"]] == ["finetune", "replay"]
    assert results["runs"][1]["ledger"]["total"] <= 80_000
    assert (tmp_path / "checkpoints" / "replay.safetensors").exists()
