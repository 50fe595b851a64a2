import numpy as np
import pytest
import torch
from sklearn.base import clone

from continual import BudgetExceededError, nbytes
from streams.hawkes import hawkes_drift_stream
from tpp import NeuralTPP, PromptTPP


@pytest.fixture(scope="module")
def stream():
    return hawkes_drift_stream(3, 3, horizon=240.0, n_sequences=12, seed=0)


def rows(n=6, length=8):
    return [
        {
            "dim_process": 2,
            "time_since_start": list(np.arange(float(length)) * 0.5 + i),
            "time_since_last_event": [0.0] + [0.5] * (length - 1),
            "type_event": [0, 1] * (length // 2),
        }
        for i in range(n)
    ]


SMALL = {"epochs": 2, "batch_size": 8, "n_points": 5, "random_state": 0}


@pytest.mark.parametrize("strategy", ["finetune", "retrain", "pretrain", "ewc", "replay"])
def test_every_strategy_stays_within_the_budget(stream, strategy):
    budget = 15_000 if strategy == "replay" else 22_000  # replay: less room than the stream
    est = NeuralTPP(hidden_size=8, strategy=strategy, budget=budget, **SMALL)
    for exp in stream:
        est.partial_fit(exp.train)
        ledger = est.accountant_.ledger()
        assert ledger.total <= budget
    model_bytes = nbytes(est.model_)
    assert ledger.accounts["model"] == model_bytes
    n_tensors = len(list(est.model_.parameters()))
    # Adam: two float32 moments per parameter and one float32 step count per tensor
    assert ledger.accounts["optimizer"] == 2 * model_bytes + 4 * n_tensors
    if strategy == "ewc":
        assert ledger.accounts["ewc"] == 2 * model_bytes  # Fisher + anchors
    if strategy == "replay":
        stored = est.replay_
        assert ledger.accounts["replay"] == stored.nbytes > 0
        assert stored.nbytes == 5 * sum(len(t) for t in stored.times)  # float32 + uint8
        assert budget - ledger.total < 5 * max(stream[0].train.lengths)  # headroom is used


def test_pretrain_freezes_and_retrain_forgets(stream):
    pre = NeuralTPP(hidden_size=8, strategy="pretrain", **SMALL).partial_fit(stream[0].train)
    weights = [p.detach().clone() for p in pre.model_.parameters()]
    pre.partial_fit(stream[1].train)
    assert all(torch.equal(a, b) for a, b in zip(weights, pre.model_.parameters()))
    retrain = NeuralTPP(hidden_size=8, strategy="retrain", **SMALL)
    retrain.partial_fit(stream[0].train).partial_fit(stream[1].train)
    alone = NeuralTPP(hidden_size=8, **{**SMALL, "random_state": 1}).fit(stream[1].train)
    assert retrain.score(stream[1].test) == pytest.approx(alone.score(stream[1].test), abs=0.2)


def test_learning_improves_on_an_untrained_model(stream):
    est = NeuralTPP(hidden_size=8, **{**SMALL, "epochs": 0}).fit(stream[0].train)
    untrained = est.score(stream[0].test)
    est.set_params(epochs=15, lr=0.02).fit(stream[0].train)
    assert est.score(stream[0].test) > untrained + 0.05


def test_sklearn_conventions(stream):
    est = PromptTPP(d_model=8, d_time=8, n_prompts=4, prompt_length=2, top_n=2, **SMALL)
    assert clone(est).get_params() == est.get_params()
    est.fit(stream[0].train)
    assert est.n_windows_ == 1 and est.accountant_.accounts == ["prompts", "backbone", "optimizer"]
    assert not hasattr(clone(est), "model_")
    a = PromptTPP(d_model=8, d_time=8, n_prompts=4, prompt_length=2, top_n=2, **SMALL).fit(
        stream[0].train
    )
    assert a.score(stream[0].test) == est.score(stream[0].test)  # seeded


def test_predict_returns_next_times_after_each_sequence(stream):
    est = NeuralTPP(hidden_size=8, **SMALL).fit(stream[0].train)
    times, types = est.predict(stream[0].test)
    last = stream[0].test.times[stream[0].test.offsets[1:] - 1]
    assert times.shape == types.shape == (len(stream[0].test),)
    assert np.all(times >= last) and np.all((types >= 0) & (types < 3))
    metrics = est.evaluate(stream[0].test)
    assert set(metrics) >= {"log_likelihood", "accuracy", "rmse", "most_frequent_accuracy"}
    assert metrics["log_likelihood"] == pytest.approx(est.score(stream[0].test))


def test_prompttpp_score_excludes_the_matching_term(stream):
    est = PromptTPP(d_model=8, d_time=8, n_prompts=4, prompt_length=2, top_n=2, **SMALL).fit(
        stream[0].train
    )
    score = est.score(stream[0].test)
    est.set_params(match_weight=100.0)  # the weight enters training only
    assert est.score(stream[0].test) == score


def test_frozen_backbone_trains_prompts_only(stream):
    est = PromptTPP(
        d_model=8,
        d_time=8,
        n_prompts=4,
        prompt_length=2,
        top_n=2,
        train_backbone="first",
        alternate=True,
        **SMALL,
    )
    est.partial_fit(stream[0].train)
    backbone = {
        n: p.detach().clone()
        for n, p in est.model_.named_parameters()
        if not n.startswith("prompt_pools")
    }
    prompts = est.model_.prompt_pools[0].value_prompts.detach().clone()
    est.partial_fit(stream[1].train)
    after = dict(est.model_.named_parameters())
    assert all(torch.equal(v, after[n]) for n, v in backbone.items())
    assert not torch.equal(prompts, est.model_.prompt_pools[0].value_prompts)
    # the frozen backbone's Adam moments are freed and no longer charged
    pool = est.accountant_.ledger().accounts["prompts"]
    assert est.accountant_.ledger().accounts["optimizer"] == 2 * pool + 4 * 3 * est.n_layers


def test_failed_partial_fit_leaves_the_estimator_unchanged(stream):
    est = NeuralTPP(hidden_size=8, strategy="replay", budget=30_000, **SMALL)
    est.partial_fit(stream[0].train)
    before = est.score(stream[0].test)
    stored = len(est.replay_)
    bad = rows()
    bad[0]["type_event"][0] = 7
    with pytest.raises(ValueError):
        est.partial_fit(bad)
    est.accountant_.budget = 10_000  # below the model and its optimizer
    with pytest.raises(BudgetExceededError):
        est.partial_fit(stream[1].train)
    assert est.n_windows_ == 1 and len(est.replay_) == stored
    assert est.score(stream[0].test) == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r[0].update(time_since_start=[1.0, 0.5, *r[0]["time_since_start"][2:]]),
            "sorted",
        ),
        (
            lambda r: r[0].update(time_since_start=[-1.0, *r[0]["time_since_start"][1:]]),
            "non-negative",
        ),
        (
            lambda r: r[1].update(time_since_start=[float("nan"), *r[1]["time_since_start"][1:]]),
            "finite",
        ),
        (lambda r: r[2].update(type_event=[5] * 8), "dim_process"),
        (lambda r: r[3].update(time_since_start=[], type_event=[]), "at least one event"),
    ],
)
def test_bad_input_gets_a_clear_error(edit, message):
    data = rows()
    edit(data)
    with pytest.raises(ValueError, match=message):
        NeuralTPP(hidden_size=4, **SMALL).fit(data)


def test_empty_window_long_sequences_and_oversized_pool():
    with pytest.raises(ValueError, match="at least one sequence"):
        NeuralTPP(**SMALL).fit([])
    with pytest.raises(ValueError, match="max_length=4"):
        NeuralTPP(hidden_size=4, max_length=4, **SMALL).fit(rows())
    est = NeuralTPP(hidden_size=4, max_length=4, truncate=True, **SMALL).fit(rows())
    assert np.isfinite(est.score(rows()))
    with pytest.raises(ValueError, match="prompt pool alone"):
        PromptTPP(d_model=32, budget="10 KB", **SMALL).fit(rows())
