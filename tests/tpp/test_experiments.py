"""The tpp_stream_* Hydra experiments, composed in-process and run on the generic runner."""

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from continual import runner
from continual.runner import run_experiment
from streams.hawkes import hawkes_drift_stream

EXPERIMENTS = ["tpp_stream_synthetic", "tpp_stream_so", "tpp_stream_taobao"]


def _compose(overrides):
    with initialize_config_module("continual.conf", version_base=None):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_compose_onto_the_generic_runner(name):
    cfg = _compose([f"experiment={name}"])
    exp = cfg.experiment
    assert exp.name == name and exp.run == "continual.runner.run_stream_experiment"
    assert list(exp.metrics) == ["log_likelihood", "accuracy", "rmse"]
    assert list(exp.lower_is_better) == ["rmse"] and exp.horizon == 1
    assert exp.train.n_draws == 2
    assert {"pretrain", "retrain", "finetune", "ewc", "replay", "prompttpp"} <= set(exp.methods)


def calendar_rows(start, width, n_sequences=12, n_events=48, n_types=3):
    """EasyTPP rows whose events spread evenly over 8 windows of the given clock."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n_sequences):
        times = np.sort(rng.uniform(start, start + 8 * width, n_events))
        gaps = np.diff(times, prepend=times[0])
        rows.append(
            {
                "dim_process": n_types,
                "time_since_start": times.tolist(),
                "time_since_last_event": gaps.tolist(),
                "type_event": rng.integers(0, n_types, n_events).tolist(),
            }
        )
    return rows


@pytest.mark.parametrize("name", ["tpp_stream_so", "tpp_stream_taobao"])
def test_real_data_experiments_build_their_streams(name, tmp_path):
    stream_cfg = _compose([f"experiment={name}"]).experiment.stream
    path = tmp_path / "events.json"
    path.write_text(json.dumps(calendar_rows(stream_cfg.start, stream_cfg.width)))
    source = str(path) if name == "tpp_stream_so" else f"[{path},{path}]"  # Taobao: a file list
    cfg = _compose([f"experiment={name}", f"experiment.stream.sequences.source={source}"])
    stream = instantiate(cfg.experiment.stream)
    assert len(stream) == 8
    assert all(len(exp.train) >= 3 and len(exp.test) >= 1 for exp in stream)


TINY = [
    "verbose=0",
    "budget=60KB",
    "experiment.stream.n_regimes=3",
    "experiment.stream.n_types=2",
    "experiment.stream.horizon=60.0",
    "experiment.stream.n_sequences=6",
    "experiment.train.epochs=1",
    "experiment.train.n_points=2",
    "experiment.train.n_draws=1",
    "+experiment.methods.replay.hidden_size=8",
    "+experiment.methods.replay.time_size=4",
    "~experiment.methods.pretrain",
    "~experiment.methods.retrain",
    "~experiment.methods.finetune",
    "~experiment.methods.ewc",
    "~experiment.methods.replay_small",
    "~experiment.methods.replay_tiny",
    "~experiment.methods.prompttpp_async",
    "+experiment.methods.prompttpp.d_model=8",
    "+experiment.methods.prompttpp.d_time=4",
    "+experiment.methods.prompttpp.n_prompts=2",
    "+experiment.methods.prompttpp.top_n=1",
]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tpp_run")
    cfg = _compose(["experiment=tpp_stream_synthetic", *TINY])
    figures = {}
    plot = runner.plot_stream_scores

    def recording(curves, **kwargs):
        figures[kwargs["metric"].split(",")[0]] = (curves, kwargs)
        return plot(curves, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "plot_stream_scores", recording)
        results = run_experiment(cfg, out)
    return results, out, figures


def test_synthetic_experiment_fills_the_protocol_matrices(synthetic_run):
    results, out, _ = synthetic_run
    written = json.loads((out / "results.json").read_text())
    assert [run["method"] for run in written["runs"]] == ["replay", "prompttpp"]
    for run in written["runs"]:
        assert set(run["scores"]) == {"log_likelihood", "accuracy", "rmse"}
        ll = np.array(run["scores"]["log_likelihood"]["matrix"], dtype=float)
        # windows 0..i and the next one (horizon 1), nothing beyond
        assert np.isfinite(ll[np.tril_indices(3)]).all() and np.isfinite(ll[0, 1])
        assert np.isnan(ll[0, 2])
        summary = run["scores"]["log_likelihood"]["summary"]
        assert summary["last_accuracy"] == pytest.approx(np.mean(ll[2]))
        assert summary["forward_score"] == pytest.approx(np.mean([ll[0, 1], ll[1, 2]]))
        assert run["scores"]["rmse"]["higher_is_better"] is False
        assert run["ledger"]["total"] <= 60_000 == run["budget"]
    accounts = {run["method"]: run["ledger"]["accounts"] for run in written["runs"]}
    assert accounts["replay"]["replay/sequences"] > 0
    assert list(accounts["prompttpp"]) == ["prompts", "model", "optimizer"]
    assert "prompttpp" in results["table"] and "log_likelihood avg" in results["table"]


def test_synthetic_experiment_draws_the_oracle_and_the_ledgers(synthetic_run):
    results, out, figures = synthetic_run
    for name in ("scores_log_likelihood", "scores_rmse", "score_vs_memory", "ledger_prompttpp"):
        assert (out / f"{name}.png").stat().st_size > 0
    # the log-likelihood figure: each method's mean over the windows seen so far, and the
    # oracle (each window's true-parameter log-likelihood) as its running mean
    stream = hawkes_drift_stream(3, 2, horizon=60.0, n_sequences=6, seed=0)
    oracle = np.array([exp.metadata["oracle"] for exp in stream])
    assert np.all((oracle > -4.0) & (oracle < 0.0))
    curves, options = figures["log_likelihood"]
    np.testing.assert_allclose(options["reference"], [oracle[0], oracle[:2].mean(), oracle.mean()])
    assert options["reference_label"] == "oracle"
    assert figures["rmse"][1]["reference"] is None  # the oracle is a log-likelihood
    for run in results["runs"]:
        ll = np.array(run["scores"]["log_likelihood"]["matrix"], dtype=float)
        seen = [np.mean(ll[i, : i + 1]) for i in range(3)]
        np.testing.assert_allclose(curves[run["run"]], seen)
    assert (out / "checkpoints" / "prompttpp.safetensors").exists()
