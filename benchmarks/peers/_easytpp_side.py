"""EasyTPP's side of ``benchmarks.peers.easytpp``; runs in the easy-tpp environment only.

Trains EasyTPP's own NHP (``easy_tpp.model.NHP`` through ``easy_tpp.ModelWrapper.run_batch``,
its training step: ``loglike_loss``, loss divided by the events, Adam) on EasyTPP-layout JSON
files, one epoch at a time, and prints one JSON line: the wall and CPU seconds of every epoch,
the scored events per epoch and the test log-likelihood per event after the last epoch.

The batches are prebuilt before the clock starts: EasyTPP's own tokenizer and collator pad
every epoch's shuffled batches (sequence order from ``--seed``), so the timed loop is the
model's training step and nothing else. Imports nothing of ours.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata

import numpy as np
import torch
from easy_tpp.config_factory import ModelConfig
from easy_tpp.config_factory.data_config import DataSpecConfig
from easy_tpp.model.nhp import NHP
from easy_tpp.model_wrapper import ModelWrapper
from easy_tpp.preprocess.data_collator import TPPDataCollator
from easy_tpp.preprocess.event_tokenizer import EventTokenizer
from easy_tpp.utils import RunnerPhase


def read(path: str) -> dict[str, list]:
    """The fields EasyTPP's JSON loader reads (``_build_input_from_json``), without the
    Hugging Face ``datasets`` cache."""
    with open(path) as handle:
        rows = json.load(handle)
    return {
        "time_seqs": [row["time_since_start"] for row in rows],
        "time_delta_seqs": [row["time_since_last_event"] for row in rows],
        "type_seqs": [row["type_event"] for row in rows],
        "dim_process": int(rows[0]["dim_process"]),
    }


def batches(data: dict, order: np.ndarray, size: int, collator: TPPDataCollator) -> list:
    out = []
    for start in range(0, len(order), size):
        features = [
            {key: data[key][i] for key in ("time_seqs", "time_delta_seqs", "type_seqs")}
            for i in order[start : start + size]
        ]
        out.append(collator(features))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--eval-points", type=int, nargs="*", default=[20, 200])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train, test = read(args.train), read(args.test)
    n_types = train["dim_process"]
    spec = DataSpecConfig(
        num_event_types=n_types,
        pad_token_id=n_types,
        padding_side="right",
        truncation_side="right",
        padding_strategy="longest",
        max_len=None,
        truncation_strategy=None,
    )
    collator = TPPDataCollator(EventTokenizer(spec), padding=True, return_tensors="pt")
    model_config = ModelConfig(
        hidden_size=args.hidden,
        loss_integral_num_sample_per_step=args.points,
        use_mc_samples=True,
        num_event_types=n_types,
        num_event_types_pad=n_types + 1,
        event_pad_index=n_types,
        model_id="NHP",
        training=True,
        thinning=None,
        gpu=-1,
    )
    model = NHP(model_config)
    base = argparse.Namespace(model_id="NHP", specs={})
    trainer = argparse.Namespace(gpu=-1, optimizer="adam", learning_rate=args.lr, use_tfb=False)
    wrapper = ModelWrapper(model, base, model_config, trainer)

    rng = np.random.default_rng(args.seed)
    n = len(train["type_seqs"])
    epochs = [
        batches(train, rng.permutation(n), args.batch_size, collator) for _ in range(args.epochs)
    ]
    seconds, cpu, losses, events = [], [], [], []
    for epoch_batches in epochs:
        tic, cpu_tic = time.perf_counter(), time.process_time()
        total_loss, total_events = 0.0, 0
        for batch in epoch_batches:
            loss, n_events, *_ = wrapper.run_batch(batch, RunnerPhase.TRAIN)
            total_loss, total_events = total_loss + loss, total_events + n_events
        seconds.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
        losses.append(total_loss / total_events)
        events.append(total_events)

    test_batches = batches(test, np.arange(len(test["type_seqs"])), args.batch_size, collator)
    log_likelihood = {}
    model.eval()
    with torch.no_grad():
        for points in args.eval_points:
            model.loss_integral_num_sample_per_step = points
            total, count = 0.0, 0
            for batch in test_batches:
                loss, n_events = model.loglike_loss(**batch)
                total, count = total - float(loss), count + n_events
            log_likelihood[str(points)] = total / count
    print(
        json.dumps(
            {
                "library": "easy-tpp",
                "versions": {
                    name: metadata.version(name) for name in ("easy-tpp", "torch", "numpy")
                },
                "python": sys.version.split()[0],
                "parameters": sum(p.numel() for p in model.parameters()),
                "epoch_seconds": seconds,
                "epoch_cpu_seconds": cpu,
                "scored_events": events,
                "train_losses": losses,
                "test_log_likelihood": log_likelihood,
                "test_scored_events": count,
            }
        )
    )


if __name__ == "__main__":
    main()
