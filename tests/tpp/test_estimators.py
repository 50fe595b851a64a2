import numpy as np
import pytest
import torch
from sklearn.base import clone

from continual import BudgetExceededError, Learner, nbytes
from streams.hawkes import hawkes_drift_stream
from tests.device_checks import (
    assert_allocator_agrees,
    assert_stored_on,
    cuda,
    cuda_bytes_of,
    stored_tensors,
)
from tpp import NeuralTPP, PoissonTPP, PromptTPP


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
PROMPTS = {"d_model": 8, "d_time": 8, "n_prompts": 4, "prompt_length": 2, "top_n": 2}


def n_tensors(model):
    return len(list(model.parameters()))


@pytest.mark.parametrize("strategy", ["finetune", "retrain", "pretrain", "ewc", "replay"])
def test_every_strategy_stays_within_the_budget(stream, strategy):
    budget = 15_000 if strategy == "replay" else 22_000  # replay: less room than the stream
    est = NeuralTPP(hidden_size=8, strategy=strategy, budget=budget, **SMALL)
    for exp in stream:
        est.partial_fit(exp.train)
        ledger = est.accountant_.ledger()
        assert ledger.total <= budget
    model = est.learner_.model
    model_bytes = 4 * sum(p.numel() for p in model.parameters())  # float32 weights
    assert ledger.accounts["model"] == model_bytes == nbytes(model)
    # Adam: two float32 moments per parameter and one float32 step count per tensor
    assert ledger.accounts["optimizer"] == 2 * model_bytes + 4 * n_tensors(model)
    if strategy == "ewc":  # Fisher + anchors, one float32 each per parameter
        assert ledger.accounts["ewc/fisher"] == ledger.accounts["ewc/anchors"] == model_bytes
    if strategy == "replay":
        stored = est.learner_.plugins[0].store
        assert ledger.accounts["replay/sequences"] == stored.nbytes > 0
        assert stored.nbytes == 5 * sum(len(t) for t in stored.times)  # float32 + uint8
        assert budget - ledger.total < 5 * max(stream[0].train.lengths)  # headroom is used
    assert est.n_partial_fits_ == len(stream)


def test_pretrain_freezes_and_retrain_forgets(stream):
    pre = NeuralTPP(hidden_size=8, strategy="pretrain", **SMALL).partial_fit(stream[0].train)
    weights = [p.detach().clone() for p in pre.learner_.model.parameters()]
    moments = [s["exp_avg"].clone() for s in pre.learner_.optimizer.state.values()]
    pre.partial_fit(stream[1].train)
    assert all(torch.equal(a, b) for a, b in zip(weights, pre.learner_.model.parameters()))
    after = [s["exp_avg"] for s in pre.learner_.optimizer.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(moments, after))  # nothing changes
    assert pre.losses_ == []
    retrain = NeuralTPP(hidden_size=8, strategy="retrain", **SMALL)
    retrain.partial_fit(stream[0].train).partial_fit(stream[1].train)
    alone = NeuralTPP(hidden_size=8, **{**SMALL, "random_state": 1}).fit(stream[1].train)
    assert retrain.score(stream[1].test) == pytest.approx(alone.score(stream[1].test), abs=0.2)


def test_retrain_restarts_the_optimizer_state(stream):
    est = NeuralTPP(hidden_size=8, strategy="retrain", **{**SMALL, "epochs": 1})
    est.partial_fit(stream[0].train).partial_fit(stream[1].train)
    steps = {int(s["step"]) for s in est.learner_.optimizer.state.values()}
    batches = -(-len(stream[1].train) // SMALL["batch_size"])  # ceil: one step per batch
    assert steps == {batches}  # counted from 0 again, not from the first window's steps


def test_learning_improves_on_an_untrained_model(stream):
    est = NeuralTPP(hidden_size=8, **{**SMALL, "lr": 1e-12}).fit(stream[0].train)  # ~no change
    untrained = est.score(stream[0].test)
    est.set_params(epochs=15, lr=0.02).fit(stream[0].train)
    assert est.score(stream[0].test) > untrained + 0.05


def test_sklearn_conventions(stream):
    est = PromptTPP(**PROMPTS, **SMALL)
    assert clone(est).get_params() == est.get_params()
    est.fit(stream[0].train)
    assert est.n_partial_fits_ == 1
    assert est.accountant_.accounts == ["prompts", "model", "optimizer"]
    assert not hasattr(clone(est), "learner_")
    a = PromptTPP(**PROMPTS, **SMALL).fit(stream[0].train)
    assert a.score(stream[0].test) == est.score(stream[0].test)  # seeded


def test_predict_and_scores(stream):
    est = NeuralTPP(hidden_size=8, n_draws=4, **SMALL).fit(stream[0].train)
    test = stream[0].test
    times, types = est.predict(test)
    last = test.times[test.offsets[1:] - 1]
    assert times.shape == types.shape == (len(test),)
    assert np.all(times >= last) and np.all((types >= 0) & (types < 3))
    scores = est.scores(test)
    assert set(scores) == {
        "log_likelihood",
        "accuracy",
        "error_rate",
        "rmse",
        "most_frequent_accuracy",
        "n_events",
    }
    assert scores["log_likelihood"] == pytest.approx(est.score(test))
    assert scores["n_events"] == test.n_events - len(test)
    assert scores["accuracy"] + scores["error_rate"] == pytest.approx(1.0)
    train_types = stream[0].train.types
    frequent = np.bincount(train_types).argmax()
    first = np.zeros(test.n_events, bool)
    first[test.offsets[:-1]] = True
    assert scores["most_frequent_accuracy"] == pytest.approx(
        np.mean(test.types[~first] == frequent)
    )
    assert est.scores(test) == scores  # deterministic draws
    assert est.set_params(n_draws=1).scores(test)["rmse"] != scores["rmse"]  # n_draws is used


def test_prompttpp_score_excludes_the_matching_term(stream):
    est = PromptTPP(**PROMPTS, **SMALL).fit(stream[0].train)
    score = est.score(stream[0].test)
    est.set_params(match_weight=100.0)  # the weight enters training only
    assert est.score(stream[0].test) == score
    heavy = PromptTPP(**PROMPTS, **{**SMALL, "match_weight": 100.0}).fit(stream[0].train)
    keys = [m.learner_.model.prompt_pools[0].keys for m in (est, heavy)]
    assert not torch.equal(*keys)  # training uses it: the retrieval keys learn from matching


def test_frozen_backbone_trains_prompts_only(stream):
    est = PromptTPP(**PROMPTS, train_backbone="first", alternate=True, **SMALL)
    est.partial_fit(stream[0].train)
    model = est.learner_.model
    backbone = {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if not n.startswith("prompt_pools")
    }
    prompts = model.prompt_pools[0].value_prompts.detach().clone()
    est.partial_fit(stream[1].train)
    after = dict(model.named_parameters())
    assert all(torch.equal(v, after[n]) for n, v in backbone.items())
    assert not torch.equal(prompts, model.prompt_pools[0].value_prompts)
    # the frozen backbone's Adam moments are freed and no longer charged
    ledger = est.accountant_.ledger().accounts
    pool = ledger["prompts"]
    assert pool == 4 * sum(p.numel() for p in model.prompt_pools.parameters())
    assert ledger["model"] == 4 * sum(p.numel() for p in model.parameters()) - pool
    assert ledger["optimizer"] == 2 * pool + 4 * 3 * est.n_layers  # 3 tensors per pool


def test_alternate_updates_move_one_group_per_batch(stream, monkeypatch):
    one_batch = {**SMALL, "epochs": 1, "batch_size": 100}  # one batch: the backbone's turn
    est = PromptTPP(**PROMPTS, alternate=True, **one_batch).fit(stream[0].train)
    monkeypatch.setattr(Learner, "learn", lambda self, data, index=0: [])  # initial weights
    still = PromptTPP(**PROMPTS, alternate=True, **one_batch).fit(stream[0].train)
    moved, initial = est.learner_.model.state_dict(), still.learner_.model.state_dict()
    for name in moved:
        same = torch.equal(moved[name], initial[name])
        assert same == name.startswith("prompt_pools"), name
    state = est.learner_.optimizer.state
    assert all(p not in state for p in est.learner_.model.prompt_pools.parameters())


def test_budget_that_cannot_hold_the_model_fails_before_allocating(monkeypatch):
    est = NeuralTPP(hidden_size=32, budget="10 KB", **SMALL)

    def never():
        raise AssertionError("the model was built")

    monkeypatch.setattr(est, "_build", never)
    nhp = 3 * 32 + (64 * 224 + 224) + (32 * 2 + 2) + 2  # embedding, 7 gates, head, scales
    with pytest.raises(BudgetExceededError, match=f"model needs {4 * nhp:,} bytes"):
        est.fit(rows())
    assert not hasattr(est, "accountant_")
    prompt = PromptTPP(d_model=32, budget="10 KB", **SMALL)
    monkeypatch.setattr(prompt, "_build", never)
    with pytest.raises(BudgetExceededError, match="prompts needs 66,560 bytes"):
        prompt.fit(rows())  # 2 layers x 2 pools x 2 heads x 10 x (48 + 5 x 32) floats
    ewc = NeuralTPP(hidden_size=8, strategy="ewc", budget=3 * 3_984 + 100, **SMALL)
    monkeypatch.setattr(ewc, "_build", never)
    with pytest.raises(BudgetExceededError, match="ewc/fisher needs 3,984 bytes"):
        ewc.fit(rows())  # model and Adam fit; the Fisher and anchors would not


def test_failed_partial_fit_leaves_the_estimator_unchanged(stream):
    est = NeuralTPP(hidden_size=8, strategy="replay", budget=30_000, **SMALL)
    est.partial_fit(stream[0].train)
    before = est.score(stream[0].test)
    store = est.learner_.plugins[0].store
    stored = len(store)
    bad = rows()
    bad[0]["type_event"][0] = 7
    with pytest.raises(ValueError):
        est.partial_fit(bad)
    est.budget = est.accountant_.budget = 10_000  # below the model and its optimizer
    with pytest.raises(BudgetExceededError):
        est.partial_fit(stream[1].train)
    assert est.n_partial_fits_ == 1 and len(est.learner_.plugins[0].store) == stored
    assert est.score(stream[0].test) == before


def test_global_generators_are_untouched(stream):
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002 - the global generator is what is checked
    state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    est = NeuralTPP(hidden_size=8, strategy="replay", **SMALL)
    for exp in stream:
        est.partial_fit(exp.train)
    est.scores(stream[0].test)
    est.predict(stream[0].test)
    assert torch.equal(torch.get_rng_state(), state[0])
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r[0].update(time_since_start=[1.0, 0.5, *r[0]["time_since_start"][2:]]),
            r"sequences\[0\]: time_since_start must be sorted .* got 0.5 after 1.0 at position 1",
        ),
        (
            lambda r: r[0].update(time_since_start=[-1.0, *r[0]["time_since_start"][1:]]),
            r"sequences\[0\]: time_since_start must be non-negative; got -1.0 at position 0",
        ),
        (
            lambda r: r[1].update(time_since_start=[float("nan"), *r[1]["time_since_start"][1:]]),
            r"sequences\[1\]: time_since_start must hold finite numbers; got nan at position 0",
        ),
        (
            lambda r: r[2].update(type_event=[5] * 8),
            r"sequences\[2\]: type_event must hold event types in \[0, 2\); got 5 at position 0",
        ),
        (
            lambda r: r[3].update(time_since_start=[], time_since_last_event=[], type_event=[]),
            r"sequences\[3\] is empty: every sequence must hold at least one event",
        ),
        (lambda r: r[4].pop("type_event"), r"sequences\[4\] lacks the EasyTPP fields"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*gaps in time_since_last_event")
def test_bad_input_gets_a_clear_error(edit, message):
    data = rows()
    edit(data)
    with pytest.raises(ValueError, match=message):
        NeuralTPP(hidden_size=4, **SMALL).fit(data)


def test_bad_parameters_and_inputs():
    with pytest.raises(ValueError, match="at least one sequence"):
        NeuralTPP(**SMALL).fit([])
    with pytest.raises(TypeError, match="EasyTPP"):
        NeuralTPP(**SMALL).fit("events.json")
    with pytest.raises(ValueError, match=r"'strategy' parameter of NeuralTPP .* Got 'magic'"):
        NeuralTPP(strategy="magic", **SMALL).fit(rows())
    with pytest.raises(ValueError, match=r"'model' parameter of NeuralTPP .* Got 'rnn'"):
        NeuralTPP(model="rnn", **SMALL).fit(rows())
    with pytest.raises(ValueError, match="'train_backbone' parameter of PromptTPP"):
        PromptTPP(train_backbone="never", **SMALL).fit(rows())
    with pytest.raises(ValueError, match=r"'time_scale' .* range \(0.0, inf\). Got 0 instead"):
        NeuralTPP(time_scale=0, **SMALL).fit(rows())
    with pytest.raises(ValueError, match=r"'n_draws' .* int in the range \[1, inf\). Got 0"):
        PromptTPP(n_draws=0, **SMALL).fit(rows())
    with pytest.raises(ValueError, match="'epochs' parameter of NeuralTPP must be an int"):
        NeuralTPP(epochs=0, random_state=0).fit(rows())
    with pytest.raises(ValueError, match="'time_size' parameter of NeuralTPP must be an even"):
        NeuralTPP(model="attnhp", time_size=5, **SMALL).fit(rows())
    with pytest.raises(ValueError, match="'n_heads' parameter of PromptTPP must divide"):
        PromptTPP(d_model=5, d_time=4, n_heads=2, **SMALL).fit(rows())
    est = NeuralTPP(hidden_size=4, **SMALL).fit(rows())
    three = [{**row, "dim_process": 3} for row in rows()]
    with pytest.raises(ValueError, match="expected 2"):
        est.partial_fit(three)
    assert est.n_partial_fits_ == 1


def test_long_sequences_are_refused_or_truncated():
    with pytest.raises(ValueError, match="max_length=4"):
        NeuralTPP(hidden_size=4, max_length=4, **SMALL).fit(rows())
    est = NeuralTPP(hidden_size=4, max_length=4, truncate=True, **SMALL).fit(rows())
    assert np.isfinite(est.score(rows()))


def test_poisson_accumulates_every_window(stream):
    both = PoissonTPP().fit(stream[0].train).partial_fit(stream[1].train)
    data = [stream[0].train, stream[1].train]
    counts = sum(
        np.bincount(d.types[np.setdiff1d(np.arange(d.n_events), d.offsets[:-1])], minlength=3)
        for d in data
    )
    exposure = sum(
        float((d.times[d.offsets[1:] - 1] - d.times[d.offsets[:-1]]).sum()) for d in data
    )
    np.testing.assert_allclose(both.rates_, np.maximum(counts, 0.5) / exposure)
    assert both.n_partial_fits_ == 2
    assert both.accountant_.ledger().accounts == {"counts": 24, "exposure": 8}


# ------------------------------------------------------------------------------ devices
DEVICE_CASES = {
    "nhp-ewc": lambda **p: NeuralTPP(hidden_size=8, strategy="ewc", **SMALL, **p),
    "attnhp-replay": lambda **p: NeuralTPP(
        "attnhp", hidden_size=8, time_size=4, strategy="replay", budget=40_000, **SMALL, **p
    ),
    "prompttpp": lambda **p: PromptTPP(**PROMPTS, **SMALL, **p),
    "poisson": lambda **p: PoissonTPP(**p),
}
ON_THE_CPU = {"replay/sequences"}  # the reservoir is numpy arrays


def stored(est):
    """The tensors an estimator keeps: the model, Adam's state and the plugins' stores."""
    if isinstance(est, PoissonTPP):
        return stored_tensors(est.counts_, est.exposure_)
    learner = est.learner_
    return stored_tensors(learner.model, learner.optimizer, learner.plugins, learner.amp)


def fit_windows(case, windows, device):
    est = DEVICE_CASES[case](device=device)
    for window in windows:
        est.partial_fit(window.train)
    return est


@pytest.mark.parametrize("case", list(DEVICE_CASES))
def test_everything_stored_lives_on_the_requested_device(stream, case):
    windows = list(stream)[:2]
    est = fit_windows(case, windows, "cpu")
    est.scores(windows[1].test)
    if not isinstance(est, PoissonTPP):
        est.predict(windows[1].test)
    assert_stored_on("cpu", est.accountant_.ledger(), stored(est), cpu=ON_THE_CPU)


@pytest.mark.parametrize("case", list(DEVICE_CASES))
def test_an_unavailable_device_fails_before_anything_is_built(case):
    est = DEVICE_CASES[case](device="cuda:99")
    with pytest.raises(ValueError, match=r"device='cuda:99' is not available"):
        est.partial_fit(rows())
    assert [name for name in vars(est) if name.endswith("_")] == []


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: NeuralTPP("attnhp", hidden_size=8, time_size=4, **SMALL), id="attnhp"),
        pytest.param(lambda: PromptTPP(**PROMPTS, **SMALL), id="prompttpp"),
        pytest.param(lambda: NeuralTPP(hidden_size=8, **SMALL), id="nhp"),
    ],
)
def test_mixed_precision_trains_float32_weights(stream, make):
    est = make().set_params(precision="bf16-mixed").fit(stream[0].train)
    assert {p.dtype for p in est.learner_.model.parameters()} == {torch.float32}
    assert np.all(np.isfinite(est.losses_)) and np.isfinite(est.score(stream[0].test))
    assert est.accountant_.ledger().accounts["optimizer"] == sum(
        nbytes(s) for s in est.learner_.optimizer.state.values()
    )  # no gradient scaler in bfloat16


def test_a_bad_precision_is_refused_before_anything_is_built():
    est = NeuralTPP(precision="64", **SMALL)
    with pytest.raises(ValueError, match=r"'precision' parameter of NeuralTPP .* Got '64'"):
        est.fit(rows())
    assert [name for name in vars(est) if name.endswith("_")] == []
    assert clone(est).get_params()["precision"] == "64"  # stored unchanged


@cuda
@pytest.mark.parametrize("case", list(DEVICE_CASES))
def test_cuda_matches_the_cpu_and_the_allocator(stream, case):
    windows = list(stream)[:2]
    est, allocated = cuda_bytes_of(lambda: fit_windows(case, windows, "cuda"))
    ledger, tensors = est.accountant_.ledger(), stored(est)
    assert_stored_on("cuda:0", ledger, tensors, cpu=ON_THE_CPU)
    assert_allocator_agrees(ledger, allocated, tensors)
    on_cpu = fit_windows(case, windows, "cpu")
    test = windows[1].test
    assert est.score(test) == pytest.approx(on_cpu.score(test), rel=1e-3, abs=1e-3)
    scores = est.scores(test)
    assert all(np.isfinite(value) for value in scores.values())
    if not isinstance(est, PoissonTPP):
        times, types = est.predict(test)
        assert times.shape == types.shape == (len(test),)
        assert np.all(times >= test.times[test.offsets[1:] - 1])
