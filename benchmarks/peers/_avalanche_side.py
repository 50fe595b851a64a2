"""Avalanche's side of ``benchmarks.peers.avalanche``; runs in the avalanche-lib environment only.

Reads the split-digits experiences that our side wrote (an ``.npz`` file), builds the same
class-incremental benchmark with Avalanche's ``nc_benchmark`` (fixed class order, as
``streams.to_avalanche`` does), and trains Avalanche's ``Naive`` or ``Replay`` strategy on
the same MLP from the same initial weights. Prints one JSON line: the wall and CPU seconds of
each ``strategy.train(experience)``, the optimizer steps, the samples in the replay buffer and
the test accuracies. The evaluation after each experience is plain torch, outside the clock,
and the evaluator has no metrics and no loggers, so the timed part is Avalanche's training
loop only. Imports nothing of ours.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata

import numpy as np
import torch
from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
from avalanche.benchmarks.utils import ConstantSequence, DataAttribute, TaskLabels
from avalanche.benchmarks.utils.classification_dataset import TaskAwareClassificationDataset
from avalanche.training import Naive, Replay
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from torch import nn
from torch.utils.data import TensorDataset


class ToFloat(nn.Module):
    """What our Learner's ``prepare`` does: float cast times the input scale."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32) * self.scale


class StepCounter(SupervisedPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def after_update(self, strategy, **kwargs) -> None:
        self.steps += 1


def dataset(x: np.ndarray, y: np.ndarray):
    x, y = torch.as_tensor(x), torch.as_tensor(y).long()
    attributes = [DataAttribute(y.tolist(), "targets"), TaskLabels(ConstantSequence(0, len(y)))]
    return TaskAwareClassificationDataset([TensorDataset(x, y)], data_attributes=attributes)


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    predictions = model(torch.as_tensor(x)).argmax(dim=1)
    return float((predictions == torch.as_tensor(y)).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help=".npz written by our side")
    parser.add_argument("--strategy", choices=["naive", "replay"], required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--mem-size", type=int, default=200)
    parser.add_argument("--input-scale", type=float, default=1 / 16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    arrays = np.load(args.data)
    n = int(arrays["n_experiences"])
    train = [(arrays[f"train_x_{i}"], arrays[f"train_y_{i}"]) for i in range(n)]
    test = [(arrays[f"test_x_{i}"], arrays[f"test_y_{i}"]) for i in range(n)]
    classes = [np.unique(y).tolist() for _, y in train]
    benchmark = nc_benchmark(
        dataset(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        dataset(np.concatenate([x for x, _ in test]), np.concatenate([y for _, y in test])),
        n_experiences=n,
        task_labels=False,
        shuffle=False,
        fixed_class_order=[c for group in classes for c in group],
        per_exp_classes={i: len(group) for i, group in enumerate(classes)},
    )

    torch.manual_seed(args.seed)  # same initial weights as our MLP (same layer order)
    n_features = int(np.prod(train[0][0].shape[1:]))
    model = nn.Sequential(
        ToFloat(args.input_scale),
        nn.Flatten(),
        nn.Linear(n_features, args.hidden),
        nn.ReLU(),
        nn.Linear(args.hidden, int(arrays["n_classes"])),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    counter = StepCounter()
    common = dict(
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=args.batch_size,
        train_epochs=args.epochs,
        eval_mb_size=512,
        device="cpu",
        evaluator=EvaluationPlugin(loggers=[]),
        plugins=[counter],
    )
    if args.strategy == "naive":
        strategy = Naive(model=model, optimizer=optimizer, **common)
    else:
        strategy = Replay(model=model, optimizer=optimizer, mem_size=args.mem_size, **common)

    seconds, cpu, accuracies = [], [], []
    for i, experience in enumerate(benchmark.train_stream):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        strategy.train(experience)
        seconds.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
        seen_x = np.concatenate([x for x, _ in test[: i + 1]])
        seen_y = np.concatenate([y for _, y in test[: i + 1]])
        accuracies.append(accuracy(model, seen_x, seen_y))
    buffer = 0
    if args.strategy == "replay":
        replay = next(p for p in strategy.plugins if hasattr(p, "storage_policy"))
        buffer = len(replay.storage_policy.buffer)
    print(
        json.dumps(
            {
                "library": "avalanche-lib",
                "versions": {
                    name: metadata.version(name) for name in ("avalanche-lib", "torch", "numpy")
                },
                "python": sys.version.split()[0],
                "strategy": args.strategy,
                "experience_seconds": seconds,
                "experience_cpu_seconds": cpu,
                "steps": counter.steps,
                "stored_samples": buffer,
                "seen_accuracy": accuracies,
            }
        )
    )


if __name__ == "__main__":
    main()
