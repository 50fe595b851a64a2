import json

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from continual.runner import run_experiment
from streams.hawkes import hawkes_drift_stream
from tpp import NeuralTPP, PromptTPP, run_stream

SMALL = {"epochs": 1, "batch_size": 8, "n_points": 4, "random_state": 0}


def test_run_stream_fills_the_protocol_matrices():
    stream = hawkes_drift_stream(3, 3, horizon=150.0, n_sequences=10, seed=0)
    methods = {
        "finetune": lambda: NeuralTPP(hidden_size=8, budget="40 KB", **SMALL),
        "prompttpp": lambda: PromptTPP(
            d_model=8, d_time=8, n_prompts=4, prompt_length=2, top_n=2, budget="40 KB", **SMALL
        ),
    }
    results = run_stream(stream, methods, n_draws=1)
    for result in results.values():
        ll = np.array(result["matrices"]["log_likelihood"], dtype=float)
        # evaluated on windows 0..i and the next one (forward), nothing beyond
        assert np.isfinite(ll[np.tril_indices(3)]).all()
        assert np.isfinite(ll[0, 1]) and np.isnan(ll[0, 2])
        summary = result["summary"]["log_likelihood"]
        assert summary["final_average"] == pytest.approx(np.mean(ll[2]))
        assert summary["forward"] == pytest.approx(np.mean([ll[0, 1], ll[1, 2]]))
        assert result["ledger"]["total"] <= 40_000
        assert len(result["timeline"]) == 3


@pytest.mark.parametrize("name", ["tpp_stream_synthetic", "tpp_stream_so", "tpp_stream_taobao"])
def test_hydra_experiments_compose(name):
    with initialize_config_module("continual.conf", version_base=None):
        cfg = compose("config", overrides=[f"experiment={name}"])
    assert cfg.experiment.name == name
    assert cfg.experiment.run == "tpp.stream.run_tpp_stream"
    assert {"pretrain", "retrain", "finetune", "ewc", "replay", "prompttpp"} <= set(
        cfg.experiment.methods
    )


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
    with initialize_config_module("continual.conf", version_base=None):
        stream_cfg = compose("config", overrides=[f"experiment={name}"]).experiment.stream
    path = tmp_path / "events.json"
    path.write_text(json.dumps(calendar_rows(stream_cfg.start, stream_cfg.width)))
    source = str(path) if name == "tpp_stream_so" else f"[{path},{path}]"  # Taobao: a file list
    with initialize_config_module("continual.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[f"experiment={name}", f"experiment.stream.sequences.source={source}"],
        )
    stream = instantiate(cfg.experiment.stream)
    assert len(stream) == 8
    assert all(len(exp.train) >= 3 and len(exp.test) >= 1 for exp in stream)


def test_synthetic_experiment_runs_end_to_end(tmp_path):
    overrides = [
        "experiment=tpp_stream_synthetic",
        "verbose=0",
        "budget=60KB",
        "experiment.stream.n_regimes=2",
        "experiment.stream.n_types=2",
        "experiment.stream.horizon=60.0",
        "experiment.stream.n_sequences=6",
        "experiment.train.epochs=1",
        "experiment.train.n_points=2",
        "experiment.n_draws=1",
        "+experiment.methods.finetune.hidden_size=8",
        "~experiment.methods.pretrain",
        "~experiment.methods.retrain",
        "~experiment.methods.ewc",
        "~experiment.methods.replay",
        "~experiment.methods.replay_small",
        "~experiment.methods.replay_tiny",
        "~experiment.methods.prompttpp_async",
        "+experiment.methods.prompttpp.d_model=8",
        "+experiment.methods.prompttpp.d_time=8",
        "+experiment.methods.prompttpp.n_prompts=2",
        "+experiment.methods.prompttpp.top_n=1",
    ]
    with initialize_config_module("continual.conf", version_base=None):
        cfg = compose("config", overrides=overrides)
    results = run_experiment(cfg, tmp_path)
    written = json.loads((tmp_path / "results.json").read_text())
    assert set(written["methods"]) == {"finetune", "prompttpp"}
    assert len(written["oracle"]) == 2
    assert "prompttpp" in results["table"]
    assert (tmp_path / "scores_log_likelihood.png").exists()
    assert (tmp_path / "ledger_prompttpp.png").exists()
