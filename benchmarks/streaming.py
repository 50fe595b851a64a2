"""Online learning at equal bytes: StreamingClassifier against river's models on drifting
synthetic streams.

Six river generators, 50,000 samples each, with abrupt, gradual and incremental drift:

- ``sea_abrupt``: SEA with 5% noise, variant 0 then 3, abrupt at 25,000 (over 250 samples:
  river's ``ConceptDriftStream`` overflows with a narrower transition this far in);
- ``agrawal_gradual``: Agrawal, function 0 then 2, over 5,000 samples around 25,000;
- ``sine_abrupt``: Sine, function 0 then 2, abrupt at 25,000 (over 250 samples);
- ``led_gradual``: LED (24 features, 17 irrelevant, 10 classes), 0 then 7 drifting
  features, over 5,000 samples around 25,000;
- ``hyperplane_incremental``: a rotating hyperplane (10 features, 5 drifting);
- ``rbf_incremental``: random RBF with moving centroids (4 classes, 10 features).

Every model has the same byte budget (``--budget``) on one ledger:

- ``StreamingClassifier`` (its own ``accountant_``: network, optimizer state, buffer, maps
  and the replay store that fills the rest), after river's ``StandardScaler``;
- river's ``HoeffdingAdaptiveTreeClassifier``, ``ARFClassifier`` (5 trees),
  ``LogisticRegression`` (one-vs-rest on multi-class streams, after ``StandardScaler``) and
  ``GaussianNB``, each in :class:`continual.river.Budgeted` (trees stop growing at the
  budget; the linear and Bayes models are far below it).

The scaler's bytes are charged with its model's. Each model is evaluated test-then-train with
:func:`continual.evaluation.prequential` (accuracy over the whole stream), timed (samples
per second of predict plus learn, on 1 torch thread), and its bytes are read at the end and
at their peak. River's HAT is also timed unwrapped, as the reference of the throughput
target (StreamingClassifier at least 0.5x HAT's samples/s). The models run in a different
order on each stream.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.streaming
    .venv/bin/python -m benchmarks.streaming --quick --out /tmp/streaming.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from river import forest, linear_model, multiclass, naive_bayes, preprocessing, tree
from river.datasets import synth

from benchmarks.machine import machine_info
from continual import BudgetExceededError
from continual.budget import format_bytes, parse_budget
from continual.evaluation import prequential
from continual.river import Budgeted
from continual.tables import format_table
from strategies import StreamingClassifier

__all__ = ["STREAMS", "main", "make_models", "run_model"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "streaming.json"
HALF = 25_000


def _drifting(first: Any, second: Any, width: int, position: int) -> Any:
    return synth.ConceptDriftStream(first, second, position=position, width=width, seed=1)


#: Stream name to a builder ``(n_samples) -> (river dataset, number of classes)``.
STREAMS: dict[str, Callable[[int], tuple[Any, int]]] = {
    "sea_abrupt": lambda n: (
        _drifting(
            synth.SEA(0, noise=0.05, seed=1), synth.SEA(3, noise=0.05, seed=2), n // 200, n // 2
        ),
        2,
    ),
    "agrawal_gradual": lambda n: (
        _drifting(synth.Agrawal(0, seed=1), synth.Agrawal(2, seed=2), n // 10, n // 2),
        2,
    ),
    "sine_abrupt": lambda n: (
        _drifting(synth.Sine(0, seed=1), synth.Sine(2, seed=2), n // 200, n // 2),
        2,
    ),
    "led_gradual": lambda n: (
        _drifting(
            synth.LEDDrift(seed=1, noise_percentage=0.1, irrelevant_features=True),
            synth.LEDDrift(
                seed=2, noise_percentage=0.1, irrelevant_features=True, n_drift_features=7
            ),
            n // 10,
            n // 2,
        ),
        10,
    ),
    "hyperplane_incremental": lambda n: (
        synth.Hyperplane(seed=1, n_features=10, n_drift_features=5, mag_change=0.001),
        2,
    ),
    "rbf_incremental": lambda n: (
        synth.RandomRBFDrift(
            seed_model=1, seed_sample=1, n_classes=4, n_features=10, change_speed=0.001
        ),
        4,
    ),
}


def make_models(budget: int, n_classes: int, seed: int) -> dict[str, Any]:
    """The contenders, each under ``budget`` bytes (see the module docstring)."""
    logistic: Any = linear_model.LogisticRegression()
    if n_classes > 2:
        logistic = multiclass.OneVsRestClassifier(logistic)
    return {
        "StreamingClassifier": preprocessing.StandardScaler()
        | StreamingClassifier(budget=budget, random_state=seed),
        "HAT": Budgeted(tree.HoeffdingAdaptiveTreeClassifier(seed=seed), budget, check_every=100),
        "ARF": Budgeted(forest.ARFClassifier(n_models=5, seed=seed), budget, check_every=100),
        "LogisticRegression": Budgeted(
            preprocessing.StandardScaler() | logistic, budget, check_every=100
        ),
        "GaussianNB": Budgeted(naive_bayes.GaussianNB(), budget, check_every=100),
    }


def run_model(model: Any, stream: str, n: int) -> dict[str, float]:
    """Prequential accuracy, samples/s and bytes (final and peak) of ``model`` on ``stream``."""
    dataset, _ = STREAMS[stream](n)
    torch.manual_seed(0)
    start = time.perf_counter()
    try:
        result = prequential(model, dataset, take=n, every=max(n // 50, 1), window=n // 10)
    except BudgetExceededError as error:  # a model that cannot be held within the budget
        return {"error": str(error).splitlines()[0]}
    seconds = time.perf_counter() - start
    memory = result.memory
    return {
        "accuracy": float(result.scores["Accuracy"][-1]),
        "samples_per_s": n / seconds,
        "bytes": int(memory[-1]),
        "peak_bytes": int(max(memory)),
    }


def time_plain_hat(stream: str, n: int, seed: int) -> float:
    """Samples/s of river's HAT, unwrapped, on the same predict-then-learn loop."""
    dataset, _ = STREAMS[stream](n)
    model = tree.HoeffdingAdaptiveTreeClassifier(seed=seed)
    start = time.perf_counter()
    for x, y in dataset.take(n):
        model.predict_one(x)
        model.learn_one(x, y)
    return n / (time.perf_counter() - start)


def _warm_up(budget: int) -> None:
    """Pay the process's one-off costs (torch's first optimizer imports ``torch._dynamo``, a
    few seconds) before anything is timed."""
    model = StreamingClassifier(budget=budget, random_state=0)
    for x, y in synth.SEA(seed=0).take(64):
        model.learn_one(x, y)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return the JSON document it writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--budget", default="1 MB", help="bytes for every model")
    parser.add_argument("--streams", nargs="+", default=list(STREAMS), choices=list(STREAMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 streams of 2,000 samples")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.streams = 2_000, args.streams[:2]
    torch.set_num_threads(1)
    budget = parse_budget(args.budget)
    _warm_up(budget)
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for index, stream in enumerate(args.streams):
        models = make_models(budget, STREAMS[stream](args.samples)[1], args.seed)
        names = list(models)
        names = names[index % len(names) :] + names[: index % len(names)]  # rotate the order
        results[stream] = {name: run_model(models[name], stream, args.samples) for name in names}
        results[stream]["HAT (unwrapped)"] = {
            "samples_per_s": time_plain_hat(stream, args.samples, args.seed)
        }
    verdict = _verdict(results)
    print(format_table(*_table(results)))
    print(format_table(*_verdict_table(verdict)))
    document = {
        "command": "python -m benchmarks.streaming " + shlex.join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "settings": vars(args) | {"out": str(args.out), "budget_bytes": budget},
        "seconds": time.perf_counter() - started,
        "results": results,
        "verdict": verdict,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


def _table(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = ["stream", "model", "accuracy", "samples/s", "bytes", "peak bytes"]
    rows = []
    for stream, models in results.items():
        for name, values in models.items():
            if "error" in values:
                rows.append([stream, name, "does not fit", "", "", ""])
                continue
            if "accuracy" not in values:
                rows.append([stream, name, "", values["samples_per_s"], "", ""])
                continue
            sizes = [format_bytes(values[key]) for key in ("bytes", "peak_bytes")]
            rows.append([stream, name, values["accuracy"], values["samples_per_s"], *sizes])
    return header, rows


def _verdict(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per stream: the best model, ours' gap to it, and ours' throughput over HAT's."""
    per_stream = {}
    for stream, models in results.items():
        scored = {name: v["accuracy"] for name, v in models.items() if "accuracy" in v}
        best = max(scored, key=scored.get)
        ours = models["StreamingClassifier"]
        per_stream[stream] = {
            "best": best,
            "gap_points": 100 * (scored[best] - ours["accuracy"]),
            "vs_hat": ours["samples_per_s"] / models["HAT (unwrapped)"]["samples_per_s"],
            "vs_budgeted_hat": ours["samples_per_s"] / models["HAT"]["samples_per_s"],
        }
    within = [s for s, v in per_stream.items() if v["gap_points"] <= 1.0]
    return {
        "streams": per_stream,
        "best_or_within_1_point": within,
        "accuracy_target_met": 2 * len(within) >= len(per_stream),
        "median_vs_hat": statistics.median(v["vs_hat"] for v in per_stream.values()),
        "throughput_target_met": all(v["vs_hat"] >= 0.5 for v in per_stream.values()),
    }


def _verdict_table(verdict: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["stream", "best", "ours: points below best", "ours / HAT samples/s",
              "ours / budgeted HAT samples/s"]  # fmt: skip
    rows = [[stream, v["best"], v["gap_points"], v["vs_hat"], v["vs_budgeted_hat"]]
            for stream, v in verdict["streams"].items()]  # fmt: skip
    return header, rows


if __name__ == "__main__":
    main()
