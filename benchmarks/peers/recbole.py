"""LightGCN on Gowalla beside RecBole's: one BPR epoch and one full-ranking evaluation, in one run.

Both sides train LightGCN (d=64, 3 layers, Adam lr 1e-3, one uniform negative per positive
that avoids the user's training items, L2 of 1e-4 on the batch's layer-0 embeddings, batch
``--batch-size`` positives) for one epoch on the Gowalla training split, then rank all items
for every test user with the training items masked and compute Recall@20 and NDCG@20 (1,024
users per matrix product on both sides).

- **Peer**: recbole 1.2.1 in its own environment (``benchmarks/peers/_recbole_side.py``):
  ``recbole.model.general_recommender.LightGCN``, one ``Trainer._train_epoch`` (the step that
  ``Trainer.fit`` runs per epoch) and ``Trainer.evaluate`` on the test file. The split is ours,
  handed over as RecBole atomic files in its ``benchmark_filename`` layout, so both rank the
  same test items. The environment pins ``numpy<2`` (RecBole 1.2.1's compatibility code
  assigns ``np.float_`` and friends, which numpy 2 removed) and ``scipy<1.13`` (its LightGCN
  builds the adjacency with ``dok_matrix._update``, which scipy 1.13 removed; RecBole issue
  2034).
- **Ours**: :class:`recsys.models.LightGCN` with full ID maps, one epoch of
  :func:`recsys.training.make_learner` (BPR through :class:`continual.Learner`), then
  ``model.final()`` and :func:`recsys.metrics.evaluate`.

Times are wall and CPU seconds of the epoch and of the evaluation (the propagation for the
final embeddings included on both sides); data loading is outside the clock. Medians over
``--repeats`` alternating runs. Target: ours at least 1.5x faster at each.

LightGCN propagates the whole graph at every step, so an epoch costs about the steps times one
propagation: at RecBole's default batch of 2,048 (396 steps on Gowalla) our epoch had not
finished after 4 CPU minutes here. The default batch is therefore 8,192 positives (99 steps),
the batch of ``benchmarks.recsys_budget``; the data are the whole of Gowalla.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.peers.recbole                  # Gowalla, 3 repeats
    .venv/bin/python -m benchmarks.peers.recbole --users 10000    # users 0..9,999 only
    .venv/bin/python -m benchmarks.peers.recbole --quick --ours-only   # no peer environment

The first run makes the peer environment (see :mod:`benchmarks.peers.environment`). It prints
a table and writes ``benchmarks/results/peers_recbole.json``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.peers.compare import alternate, base_parser, median, speed_row, write_document
from benchmarks.peers.environment import PeerEnvironment
from continual.tables import format_table
from recsys.mappers import Full
from recsys.metrics import evaluate
from recsys.models import LightGCN
from recsys.training import PositivePairs, make_learner
from streams.communities import planted_communities
from streams.interactions import Interactions
from streams.recsys_loaders import load_lightgcn

__all__ = ["environment", "main", "ours_side", "write_atomic"]

SIDE = Path(__file__).resolve().parent / "_recbole_side.py"
REQUIREMENTS = ("recbole==1.2.1",)
CONSTRAINTS = ("numpy<2", "scipy<1.13")
TARGET = 1.5


def environment(cache: Path | None = None) -> PeerEnvironment:
    """recbole's environment (our torch shared into it; numpy and scipy pinned to what
    RecBole 1.2.1 runs with)."""
    return PeerEnvironment("recbole", REQUIREMENTS, constraints=CONSTRAINTS, cache=cache)


def ours_side(
    train: Interactions,
    test: Interactions,
    *,
    epochs: int = 1,
    dim: int = 64,
    layers: int = 3,
    batch_size: int = 8192,
    lr: float = 1e-3,
    reg: float = 1e-4,
    eval_users: int = 1024,
    seed: int = 0,
) -> dict[str, Any]:
    """Train our LightGCN for ``epochs`` and evaluate; the same keys as the peer's side."""
    train_csr, test_csr = train.csr(), test.csr()
    model = LightGCN(
        Full(train.n_users),
        Full(train.n_items),
        train.n_users,
        train.n_items,
        dim,
        seed=seed,
        graph=train_csr,
        n_layers=layers,
    )
    learner = make_learner(model, lr=lr, epochs=1, batch_size=batch_size, reg=reg, seed=seed)
    pairs = PositivePairs.from_matrix(train_csr)
    epoch_seconds, epoch_cpu, losses = [], [], []
    for _ in range(epochs):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        losses += learner.learn(pairs)
        epoch_seconds.append(time.perf_counter() - tic)
        epoch_cpu.append(time.process_time() - cpu_tic)
    steps = learner.n_steps // epochs
    tic, cpu_tic = time.perf_counter(), time.process_time()
    users, items = model.final()
    scores = evaluate(users, items, train_csr, test_csr, k=20, batch_size=eval_users)
    eval_seconds, eval_cpu = time.perf_counter() - tic, time.process_time() - cpu_tic
    return {
        "library": "continual-budget",
        "n_users": train.n_users,
        "n_items": train.n_items,
        "n_train": len(train),
        "n_test_users": int(scores["n_users_evaluated"]),
        "epoch_seconds": epoch_seconds,
        "epoch_cpu_seconds": epoch_cpu,
        "train_losses": losses,
        "steps_per_epoch": steps,
        "eval_seconds": eval_seconds,
        "eval_cpu_seconds": eval_cpu,
        "recall": float(scores["recall"]),
        "ndcg": float(scores["ndcg"]),
    }


def write_atomic(train: Interactions, test: Interactions, folder: Path, name: str) -> None:
    """Write RecBole atomic files ``<name>.{train,valid,test}.inter`` into ``folder/name``
    (valid is a copy of test; see ``_recbole_side.py``).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_atomic(Interactions([0, 1], [2, 0]), Interactions([0], [1]), folder, "toy")
    >>> print((folder / "toy" / "toy.train.inter").read_text(), end="")
    user_id:token	item_id:token
    0	2
    1	0
    """
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    for part, data in (("train", train), ("valid", test), ("test", test)):
        rows = np.column_stack([data.users, data.items])
        with open(target / f"{name}.{part}.inter", "w") as handle:
            handle.write("user_id:token\titem_id:token\n")
            np.savetxt(handle, rows, fmt="%d", delimiter="\t")


def first_users(
    train: Interactions, test: Interactions, n_users: int
) -> tuple[Interactions, Interactions]:
    """The interactions of users ``0 .. n_users - 1``, items renumbered ``0 .. m - 1`` in the
    order of their IDs over the items these users have (so that both sides rank the same
    ``m`` items: RecBole knows only the items in its files).

    Examples
    --------
    >>> train = Interactions([0, 1, 2], [5, 3, 4])
    >>> test = Interactions([0, 2], [4, 1])
    >>> small_train, small_test = first_users(train, test, 2)
    >>> small_train.users.tolist(), small_train.items.tolist(), small_test.items.tolist()
    ([0, 1], [2, 0], [1])
    >>> small_train.n_items
    3
    """
    keep_train, keep_test = train.users < n_users, test.users < n_users
    items = np.unique(np.concatenate([train.items[keep_train], test.items[keep_test]]))
    n_items = items.size

    def part(data: Interactions, keep: np.ndarray) -> Interactions:
        return Interactions(
            data.users[keep],
            np.searchsorted(items, data.items[keep]),
            n_users=n_users,
            n_items=n_items,
        )

    return part(train, keep_train), part(test, keep_test)


def _data(args: Any) -> tuple[Interactions, Interactions, str]:
    if args.quick:
        data = planted_communities(300, 400, seed=args.seed)
        train, test = data.split_per_user(0.2, seed=args.seed)
        return train, test, "synthetic 300 x 400"
    train, test = load_lightgcn(args.data / "gowalla")
    if args.users is None or args.users >= train.n_users:
        return train, test, "gowalla"
    train, test = first_users(train, test, args.users)
    return train, test, f"gowalla, users 0..{args.users - 1} ({train.n_items} items)"


def format_report(document: dict[str, Any]) -> str:
    """The speed rows, then each run's metrics."""
    header = ["measure", "ours s", "recbole s", "ratio", "paired ratio", "target", "met"]
    rows = [
        [r["what"], r["ours"], r["peer"], r["ratio"], r["paired_ratio"], r["target"], r["met"]]
        for r in document["speed"]
    ]
    formats = {"ours s": ".2f", "recbole s": ".2f", "ratio": ".2f", "paired ratio": ".2f"}
    lines = [format_table(header, rows, formats=formats), ""]
    run_rows = [
        [
            side,
            i,
            run["steps_per_epoch"],
            run["train_losses"][-1],
            run["recall"],
            run["ndcg"],
            run["n_test_users"],
        ]
        for side, runs in document["runs"].items()
        for i, run in enumerate(runs, 1)
    ]
    run_header = ["side", "repeat", "steps", "last loss", "Recall@20", "NDCG@20", "test users"]
    lines.append(format_table(run_header, run_rows, formats={"Recall@20": ".4f", "NDCG@20": ".4f"}))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both sides alternately, print the table and write the JSON document."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = base_parser(__doc__.splitlines()[0], "recbole")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument(
        "--users", type=int, default=None, help="only users 0..N-1 of Gowalla (a subset)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.repeats, args.batch_size = 1, 256
    train, test, dataset = _data(args)
    settings = {
        "epochs": args.epochs,
        "dim": 64,
        "layers": 3,
        "batch_size": args.batch_size,
        "lr": 1e-3,
        "reg": 1e-4,
        "eval_users": 1024,
        "k": 20,
        "repeats": args.repeats,
        "seed": args.seed,
    }
    sides = {
        "ours": lambda: ours_side(
            train, test, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed
        )
    }
    freeze: list[str] = []
    with tempfile.TemporaryDirectory() as workdir:
        if not args.ours_only:
            env = environment(args.cache)
            env.ensure(rebuild=args.rebuild)
            freeze = env.freeze()
            write_atomic(train, test, Path(workdir), "data")
            side_args = [
                "--data-path",
                workdir,
                "--dataset",
                "data",
                "--epochs",
                str(args.epochs),
                "--batch-size",
                str(args.batch_size),
                "--seed",
                str(args.seed),
            ]
            sides = {"recbole": lambda: env.run(SIDE, side_args, cwd=Path(workdir)), **sides}
        runs = alternate(sides, args.repeats)
    speed = []
    for key, label in (
        ("epoch_seconds", "epoch s (wall)"),
        ("epoch_cpu_seconds", "epoch s (CPU)"),
        ("eval_seconds", "evaluation s (wall)"),
        ("eval_cpu_seconds", "evaluation s (CPU)"),
    ):

        def value(run: dict[str, Any], key: str = key) -> float:
            return median(run[key]) if isinstance(run[key], list) else run[key]

        speed.append(
            speed_row(
                label,
                [value(r) for r in runs["ours"]],
                [value(r) for r in runs.get("recbole", [])],
                higher_is_better=False,
                target=TARGET,
            )
        )
    document = write_document(
        args.out,
        "recbole",
        argv,
        quick=args.quick,
        dataset=dataset,
        peer={
            "requirements": list(REQUIREMENTS),
            "constraints": list(CONSTRAINTS),
            "freeze": freeze,
        },
        settings=settings,
        speed=speed,
        runs=runs,
    )
    print(format_report(document))
    return document


if __name__ == "__main__":
    main()
