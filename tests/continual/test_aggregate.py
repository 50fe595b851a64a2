"""continual-aggregate: a sweep's jobs merged into mean ± sd per method and budget, AUCs, a
figure and aggregate.json."""

import json

import numpy as np
import pytest

from continual.aggregate import aggregate, load_runs, main, summarise

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METHODS = ["finetune", "replay"]
BUDGETS = [40_000, 80_000]
SEEDS = [0, 1, 2]


def _matrix(rng):
    """A 2x2 lower-triangular score matrix, as the runner writes it (None: not evaluated)."""
    a, b, c = rng.uniform(0.1, 0.9, size=3).round(4).tolist()
    return [[a, None], [b, c]]


def _run(method, budget, matrix, total, seconds):
    return {
        "method": method,
        "run": f"{method}_{budget}",
        "budget": budget,
        "scores": {"score": {"n_experiences": 2, "test_sizes": None, "matrix": matrix}},
        "ledger": {"total": total, "peak": total + 1, "accounts": {"model": total}},
        "seconds": seconds,
    }


def _write_job(folder, job, results, overrides=None):
    path = folder / str(job)
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps(results))
    if overrides is not None:
        (path / ".hydra").mkdir()
        (path / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))


@pytest.fixture
def sweep(tmp_path):
    """One job per seed and budget, as ``budget=40KB,80KB seed=0,1,2`` makes, with known
    numbers; returns the folder and {(method, budget, seed): (matrix, total, seconds)}."""
    rng = np.random.default_rng(7)
    known = {}
    job = 0
    for budget in BUDGETS:
        for seed in SEEDS:
            runs = []
            for method in METHODS:
                matrix = _matrix(rng)
                total, seconds = int(rng.integers(1_000, budget)), float(rng.uniform(1, 9))
                known[method, budget, seed] = (matrix, total, seconds)
                runs.append(_run(method, budget, matrix, total, seconds))
            overrides = [f"budget={budget}", f"seed={seed}", "hydra/launcher=joblib"]
            _write_job(tmp_path, job, {"experiment": "demo", "seed": seed, "runs": runs}, overrides)
            job += 1
    return tmp_path, known


def _expected(matrix):
    """Average incremental, last and forgetting of [[a, -], [b, c]], from their definitions."""
    (a, _), (b, c) = matrix
    return {"average_incremental": (a + (b + c) / 2) / 2, "last": (b + c) / 2, "forgetting": a - b}


def _check(stats, values):
    assert stats["n"] == len(values)
    assert stats["mean"] == pytest.approx(np.mean(values))
    assert stats["sd"] == pytest.approx(np.std(values, ddof=1))


def test_means_and_sds_over_seeds_match_numpy(sweep):
    folder, known = sweep
    merged = aggregate(folder)
    assert [(g["method"], g["budget"]) for g in merged["groups"]] == [
        (m, b) for m in METHODS for b in BUDGETS
    ]
    for group in merged["groups"]:
        cells = [known[group["method"], group["budget"], seed] for seed in SEEDS]
        assert group["seeds"] == SEEDS and group["label"] == group["method"]
        for name in ("average_incremental", "last", "forgetting"):
            _check(group[name], [_expected(matrix)[name] for matrix, _, _ in cells])
        _check(group["total"], [total for _, total, _ in cells])
        _check(group["seconds"], [seconds for _, _, seconds in cells])
    assert merged["jobs"] == [str(job) for job in range(6)] and merged["skipped"] == []


def test_auc_per_seed_over_budgets_then_mean_and_sd(sweep):
    folder, known = sweep
    merged = aggregate(folder, unit="KB")
    for row in merged["auc"]:
        assert row["budgets"] == BUDGETS and row["seeds"] == SEEDS
        width = (BUDGETS[1] - BUDGETS[0]) / 1_000  # KB
        for key, name in (("auc_a", "average_incremental"), ("auc_l", "last")):
            values = [
                width * sum(_expected(known[row["method"], b, seed][0])[name] for b in BUDGETS) / 2
                for seed in SEEDS
            ]
            np.testing.assert_allclose(row[key]["values"], values)
            _check(row[key], values)


def test_aggregate_writes_the_figure_and_a_json_of_everything(sweep):
    folder, _ = sweep
    merged = aggregate(folder)
    assert (folder / "accuracy_vs_memory.png").read_bytes().startswith(PNG_SIGNATURE)
    saved = json.loads((folder / "aggregate.json").read_text())
    assert saved == json.loads(json.dumps(merged))
    assert set(saved) >= {"jobs", "skipped", "groups", "auc", "table", "auc_table", "metric"}
    lines = saved["table"].splitlines()
    assert lines[0].split() == [
        "method", "budget", "seeds", "avg", "last", "forget", "total", "seconds"
    ]  # fmt: skip
    assert lines[1].split()[:4] == ["finetune", "40.00", "kB", "3"]
    assert "±" in lines[1] and len(lines) == 1 + len(METHODS) * len(BUDGETS)
    assert saved["auc_table"].splitlines()[0].split()[:3] == ["method", "budgets", "seeds"]


def test_jobs_without_standard_runs_are_skipped_with_a_reason(sweep):
    folder, _ = sweep
    _write_job(folder, 6, {"experiment": "memact_recall", "seed": 0, "records": []})
    recsys = {"experiment": "recsys_budget", "seed": 0, "runs": [{"model": "mf", "recall": 0.1}]}
    _write_job(folder, 7, recsys)
    merged = aggregate(folder)
    assert merged["jobs"] == [str(job) for job in range(6)]
    assert [s["job"] for s in merged["skipped"]] == ["6", "7"]
    assert "wrote no 'runs' list" in merged["skipped"][0]["reason"]
    lacks = "runs[0] lacks ['method', 'budget', 'scores', 'ledger', 'seconds']"
    assert lacks in merged["skipped"][1]["reason"]


def test_jobs_that_differ_in_another_override_are_kept_apart(tmp_path):
    rng = np.random.default_rng(0)
    for job, (lr, seed) in enumerate([(0.1, 0), (0.1, 1), (0.01, 0), (0.01, 1)]):
        runs = [_run("replay", 40_000, _matrix(rng), 39_000, 1.0)]
        overrides = [f"seed={seed}", f"experiment.train.lr={lr}", "experiment.train.epochs=1"]
        _write_job(tmp_path, job, {"experiment": "demo", "seed": seed, "runs": runs}, overrides)
    runs, _ = load_runs(tmp_path)
    labels = [group["label"] for group in summarise(runs)]
    assert labels == ["replay [experiment.train.lr=0.1]", "replay [experiment.train.lr=0.01]"]


def test_a_single_seed_has_no_sd_and_an_unlimited_budget_no_auc(tmp_path):
    runs = [_run("replay", None, [[0.5, None], [0.25, 0.75]], 90_000, 2.0)]
    _write_job(tmp_path, 0, {"experiment": "demo", "seed": 0, "runs": runs})
    merged = aggregate(tmp_path)
    [group] = merged["groups"]
    assert group["last"] == {"mean": 0.5, "sd": None, "n": 1}
    assert merged["auc"][0]["auc_a"] is None
    assert merged["table"].splitlines()[1].split()[:3] == ["replay", "unlimited", "1"]


def test_a_repeated_point_of_the_grid_is_an_error(tmp_path):
    for job in (0, 1):
        runs = [_run("replay", 40_000, [[0.5, None], [0.25, 0.75]], 39_000, 2.0)]
        _write_job(tmp_path, job, {"experiment": "demo", "seed": 3, "runs": runs})
    with pytest.raises(ValueError, match=r"'replay' at budget 40000 with seed 3 2 times"):
        aggregate(tmp_path)


def test_a_folder_without_results_names_the_folder_and_what_was_expected(tmp_path):
    (tmp_path / "0").mkdir()
    with pytest.raises(ValueError, match=r"folder='.*' holds no results\.json; expected a Hydra"):
        aggregate(tmp_path)
    with pytest.raises(ValueError, match="which is not a directory"):
        aggregate(tmp_path / "missing")
    _write_job(tmp_path, 1, {"experiment": "memact_recall", "seed": 0, "records": []})
    with pytest.raises(ValueError, match="holds no runs in the standard format"):
        aggregate(tmp_path)


def test_an_unknown_metric_skips_the_jobs_that_lack_it(sweep):
    folder, _ = sweep
    with pytest.raises(ValueError, match=r"has no metric 'recall' \(it has \['score'\]\)"):
        aggregate(folder, metric="recall")
    with pytest.raises(ValueError, match=r"unit must be one of"):
        aggregate(folder, unit="GB")


def test_the_command_prints_both_tables_and_explains_itself(sweep, capsys):
    folder, _ = sweep
    assert main([str(folder), "--unit", "KB"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("6 jobs merged, metric 'score'")
    assert "AUC-A (score x KB)" in out and "replay    80.00 kB      3" in out
    with pytest.raises(SystemExit) as exit_help:
        main(["--help"])
    assert exit_help.value.code == 0
    assert "multirun/<date>/<time>" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_error:
        main([str(folder / "nothing")])
    assert exit_error.value.code == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_real_joblib_sweep_aggregates(joblib_sweep):
    folder, _ = joblib_sweep
    merged = aggregate(folder)
    jobs = {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/results.json")}
    assert merged["jobs"] == ["0", "1"]
    assert [(g["method"], g["budget"], g["seeds"]) for g in merged["groups"]] == [
        ("finetune", 40_000, [0, 1]),
        ("finetune", 60_000, [0, 1]),
        ("replay", 40_000, [0, 1]),
        ("replay", 60_000, [0, 1]),
    ]
    for group in merged["groups"]:
        runs = [
            run
            for job in jobs.values()
            for run in job["runs"]
            if (run["method"], run["budget"]) == (group["method"], group["budget"])
        ]
        summaries = [run["scores"]["score"]["summary"] for run in runs]
        _check(group["average_incremental"], [s["average_incremental_accuracy"] for s in summaries])
        _check(group["last"], [s["last_accuracy"] for s in summaries])
        assert group["total"]["mean"] == np.mean([run["ledger"]["total"] for run in runs])
    assert (folder / "accuracy_vs_memory.png").read_bytes().startswith(PNG_SIGNATURE)
    assert [row["seeds"] for row in merged["auc"]] == [[0, 1], [0, 1]]
