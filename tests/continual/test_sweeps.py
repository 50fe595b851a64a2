"""Sweeps on Hydra launchers: joblib in parallel on this machine, Ray and SLURM on clusters."""

import json
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.continual.conftest import REPORTING_RUN, ROOT, TINY, WORKER_DEFAULT_THREADS

GRID = [("finetune", 40_000), ("replay", 40_000), ("finetune", 60_000), ("replay", 60_000)]


def _compose(overrides):
    with initialize_config_module(config_module="continual.conf", version_base=None):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def _jobs(folder):
    """Job number to its results.json."""
    return {int(p.parent.name): json.loads(p.read_text()) for p in folder.glob("*/results.json")}


def _matrices(job):
    return [run["scores"]["score"]["matrix"] for run in job["runs"]]


def test_joblib_sweep_runs_each_seed_in_a_worker_with_the_configured_threads(joblib_sweep):
    folder, main_pid = joblib_sweep
    jobs = _jobs(folder)
    assert sorted(jobs) == [0, 1]
    assert [jobs[0]["seed"], jobs[1]["seed"]] == [0, 1]
    for job in jobs.values():
        assert [(run["method"], run["budget"]) for run in job["runs"]] == GRID
        assert all(run["ledger"]["total"] <= run["budget"] for run in job["runs"])
        assert job["worker"]["pid"] != main_pid  # a joblib worker ran it, not the main process
        # `threads: 1` holds in the worker, whose torch would otherwise start with 3 threads
        assert job["config"]["threads"] == 1 != WORKER_DEFAULT_THREADS
        assert job["worker"]["threads"] == 1
    assert _matrices(jobs[0]) != _matrices(jobs[1])  # each job drew its own seed's stream
    launcher = OmegaConf.load(folder / "multirun.yaml").hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 2


def test_the_joblib_launcher_composes_with_the_packaged_configs():
    launcher = _compose(["hydra/launcher=joblib", "hydra.launcher.n_jobs=4"]).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert launcher.n_jobs == 4 and launcher.prefer == "processes"


def test_the_slurm_example_config_composes_and_builds_the_submitit_launcher():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=a100", "seed=0"]
    launcher = _compose([*overrides, "hydra.launcher.gpus_per_node=4"]).hydra.launcher
    assert launcher._target_ == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert launcher.partition == "a100" and launcher.gpus_per_node == 4
    assert (launcher.timeout_min, launcher.tasks_per_node, launcher.nodes) == (240, 1, 1)
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.array_parallelism) == (8, 32, 32)
    built = instantiate(launcher)
    assert type(built).__name__ == "SlurmLauncher" and built.params["partition"] == "a100"


def test_a_ray_sweep_on_a_local_ray_instance_matches_the_joblib_sweep(joblib_sweep, tmp_path):
    """Needs the `distributed` extra (not in `all`); skipped without it."""
    pytest.importorskip("ray")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    folder = tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "continual.runner",
        "-m",
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
        f"hydra.sweep.dir={folder}",
        "seed=0,1",
        f"experiment.run={REPORTING_RUN}",
        *TINY,
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    jobs, on_joblib = _jobs(folder), _jobs(joblib_sweep[0])
    assert sorted(jobs) == [0, 1]
    for number, job in jobs.items():
        assert job["seed"] == number and job["worker"]["threads"] == 1
        assert [(run["method"], run["budget"]) for run in job["runs"]] == GRID
        # the same seed gives the same numbers on the CPU, whichever launcher ran it
        assert _matrices(job) == _matrices(on_joblib[number])
