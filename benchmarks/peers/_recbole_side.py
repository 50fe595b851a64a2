"""RecBole's side of ``benchmarks.peers.recbole``; runs in the recbole environment only.

Reads the atomic files our side wrote (``<name>.train.inter``, ``.valid.inter``,
``.test.inter``, RecBole's ``benchmark_filename`` layout, so that RecBole uses our split and
does not split again), builds RecBole's ``LightGCN`` and ``Trainer``, and times one BPR
training epoch (``Trainer._train_epoch``, the step ``Trainer.fit`` runs each epoch, batches
and negative sampling included) and one full-ranking evaluation of the test file
(``Trainer.evaluate``: propagation, scores of every item, training items masked, top 20,
Recall@20 and NDCG@20). Dataset loading is outside the clock. Prints one JSON line. Imports
nothing of ours; runs in a scratch working directory (RecBole writes ``log_tensorboard/``
there).

The validation file is a copy of the test file: RecBole masks, for the test phase, every
item seen in training or validation except the test positives themselves, which is then
exactly the training items.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.general_recommender import LightGCN
from recbole.trainer import Trainer
from recbole.utils import init_seed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-path", required=True, help="folder that holds <name>/")
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--reg", type=float, default=1e-4)
    parser.add_argument("--eval-users", type=int, default=1024, help="users per ranking batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = Config(
        model="LightGCN",
        dataset=args.dataset,
        config_dict={
            "data_path": args.data_path,
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]},
            "USER_ID_FIELD": "user_id",
            "ITEM_ID_FIELD": "item_id",
            "embedding_size": args.dim,
            "n_layers": args.layers,
            "reg_weight": args.reg,
            "require_pow": True,  # reg/2 * squared norms / batch: the same L2 term as ours
            "learner": "adam",
            "learning_rate": args.lr,
            "train_batch_size": args.batch_size,
            "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
            "eval_args": {"mode": "full", "order": "RO", "group_by": "user"},
            "metrics": ["Recall", "NDCG"],
            "topk": [20],
            "valid_metric": "Recall@20",
            "eval_batch_size": 10**9,  # replaced below: --eval-users users per batch
            "use_gpu": False,
            "gpu_id": "",
            "worker": 0,
            "seed": args.seed,
            "reproducibility": True,
            "show_progress": False,
            "checkpoint_dir": "saved",
            "save_dataset": False,
            "save_dataloaders": False,
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    config["eval_batch_size"] = args.eval_users * dataset.item_num
    train_data, _, test_data = data_preparation(config, dataset)
    torch.set_num_threads(args.threads)
    init_seed(config["seed"], config["reproducibility"])
    model = LightGCN(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)

    epoch_seconds, epoch_cpu, losses = [], [], []
    for epoch in range(args.epochs):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        epoch_seconds.append(time.perf_counter() - tic)
        epoch_cpu.append(time.process_time() - cpu_tic)
        total = float(sum(loss) if isinstance(loss, tuple) else loss)  # summed over batches
        losses.append(total / len(train_data))
    tic, cpu_tic = time.perf_counter(), time.process_time()
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    eval_seconds, eval_cpu = time.perf_counter() - tic, time.process_time() - cpu_tic
    print(
        json.dumps(
            {
                "library": "recbole",
                "versions": {
                    name: metadata.version(name)
                    for name in ("recbole", "torch", "numpy", "scipy", "pandas")
                },
                "python": sys.version.split()[0],
                "n_users": int(dataset.user_num - 1),  # RecBole adds a [PAD] id
                "n_items": int(dataset.item_num - 1),
                "n_train": len(train_data.dataset),
                "n_test_users": len(test_data.uid_list),
                "epoch_seconds": epoch_seconds,
                "epoch_cpu_seconds": epoch_cpu,
                "train_losses": losses,
                "steps_per_epoch": len(train_data),
                "eval_seconds": eval_seconds,
                "eval_cpu_seconds": eval_cpu,
                "recall": float(result["recall@20"]),
                "ndcg": float(result["ndcg@20"]),
            }
        )
    )


if __name__ == "__main__":
    main()
