"""A tiny sweep on the joblib launcher, shared by the sweep and aggregation tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
# finetune_vs_replay at its smallest: two experiences, one epoch, a narrow net, two budgets.
TINY = [
    "experiment.stream.n_experiences=2",
    "experiment.train.epochs=1",
    "experiment.train.width=4",
    "experiment.budgets=[40KB,60KB]",
    "verbose=0",
    "checkpoint=false",
]
# The run function of the sweeps: the runner's, reporting the worker it ran in.
REPORTING_RUN = "tests.continual.conftest.run_reporting_worker"
# What torch would use in a joblib worker if the runner did not set `threads`.
WORKER_DEFAULT_THREADS = 3


def run_reporting_worker(cfg, folder):
    """``run_stream_experiment``, plus the process and the torch threads it ran with."""
    from continual.runner import run_stream_experiment  # in the job, not at test collection

    results = run_stream_experiment(cfg, folder)
    return {**results, "worker": {"pid": os.getpid(), "threads": torch.get_num_threads()}}


@pytest.fixture(scope="session")
def joblib_sweep(tmp_path_factory):
    """``continual-run -m hydra/launcher=joblib seed=0,1`` with two workers: the sweep folder
    and the main process's id."""
    folder = tmp_path_factory.mktemp("multirun") / "sweep"
    command = [
        sys.executable,
        "-m",
        "continual.runner",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={folder}",
        "seed=0,1",
        f"experiment.run={REPORTING_RUN}",
        *TINY,
    ]
    # joblib hands its workers OMP_NUM_THREADS when it is unset; set, it is kept, so a worker's
    # torch would start with WORKER_DEFAULT_THREADS threads unless the runner sets them.
    env = {**os.environ, "OMP_NUM_THREADS": str(WORKER_DEFAULT_THREADS)}
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]
    return folder, process.pid
