"""MemoryAsAction: the BudgetedEstimator contract, its budget, plugins and the Hydra experiment."""

import functools
import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import strategies.memact.estimator as estimator_module
from continual import BudgetExceededError, Plugin
from continual.checks import check_estimator
from continual.runner import run_experiment
from strategies.memact import (
    EDIT_INSTRUCTIONS,
    MemoryAsAction,
    Message,
    WorkingMemory,
    as_episodes,
)
from streams.episodes import RecallDifficulty, recall_stream
from tests.device_checks import (
    assert_allocator_agrees,
    assert_stored_on,
    cuda,
    cuda_bytes_of,
    stored_tensors,
)

TINY = {
    "bc_epochs": 1,
    "n_updates": 1,
    "group_size": 2,
    "episodes_per_update": 2,
    "d_model": 16,
    "n_layers": 1,
}
SMALL = {**TINY, "bc_epochs": 2, "n_updates": 2}


@pytest.fixture(scope="module")
def tiny_stream():
    level = RecallDifficulty(n_questions=1, n_observations=4, budget=200)
    harder = RecallDifficulty(n_questions=2, n_observations=5, budget=200)
    return recall_stream([level, level, harder], n_train=3, n_test=3, seed=0)


@pytest.fixture(scope="module")
def stream():
    level = RecallDifficulty(n_questions=1, n_observations=5, budget=200)
    return recall_stream(level, n_train=6, n_test=6, seed=0)


@pytest.fixture(scope="module")
def fitted(stream):
    return MemoryAsAction(**SMALL, random_state=0).fit(stream)


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_contract(tiny_stream):
    make = functools.partial(MemoryAsAction, **TINY)
    # the checks are not vacuous: with random_state=0 the optimizer steps before the resume
    # point, and again after it
    probe = make(random_state=0)
    steps = []
    for experience in tiny_stream:
        probe.partial_fit(experience.train)
        steps.append(probe.trainer_.n_steps)
    assert steps[1] >= 1 and steps[2] > steps[1]
    check_estimator(make, tiny_stream, resume_at=2)


def test_fit_warm_starts_then_runs_dcpo_and_charges_its_state(fitted, stream):
    assert len(fitted.bc_losses_) == 2 and len(fitted.losses_) == len(fitted.history_) == 2
    assert fitted.n_partial_fits_ == 1 and fitted.trainer_.n_updates_done == 2
    assert fitted.trainer_.experience is None and not fitted.trainer_.train_data  # no episodes
    ledger = fitted.accountant_.ledger()
    assert ledger.accounts["policy"] == 4 * _n_params(fitted.policy_)  # float32 weights
    assert ledger.accounts["reference"] == ledger.accounts["policy"]
    n_tensors = len(list(fitted.policy_.parameters()))
    # Adam: two float32 moments per weight plus a float32 step counter per tensor
    assert ledger.accounts["optimizer"] == 2 * ledger.accounts["policy"] + 4 * n_tensors
    assert fitted.losses_ == [h["loss"] for h in fitted.history_]
    result = fitted.scores(stream[0].test)
    assert fitted.score(stream[0].test) == result["success"]
    assert 0.0 <= result["success"] <= result["partial"] <= 1.0
    assert result["episodes"] == 6
    assert fitted.scores(stream) == result  # a stream is scored on its test episodes


def test_later_calls_run_dcpo_only_and_keep_bounded_history(stream):
    model = MemoryAsAction(**{**SMALL, "n_updates": 1}, random_state=0).fit(stream[0].train)
    bc_losses = list(model.bc_losses_)
    reference = [p.detach().clone() for p in model.trainer_.reference.parameters()]
    model.set_params(n_updates=3).partial_fit(stream[0].train)
    assert model.n_partial_fits_ == 2 and model.bc_losses_ == bc_losses  # no second warm start
    assert len(model.losses_) == len(model.history_) == 3  # the last call's updates only
    assert model.trainer_.n_updates_done == 4
    frozen = model.trainer_.reference.parameters()
    assert all(torch.equal(a, b) for a, b in zip(reference, frozen))
    snapshots = [step for step, _ in model.accountant_.timeline()]
    assert snapshots == [0, 1]  # the ledger is recorded after each call


def test_fit_equals_forget_then_one_partial_fit(stream):
    fitted = MemoryAsAction(**SMALL, random_state=0).fit(stream)
    fitted.partial_fit(stream)
    refit = fitted.fit(stream)
    fresh = MemoryAsAction(**SMALL, random_state=0).partial_fit(stream)
    assert refit.n_partial_fits_ == 1
    for a, b in zip(refit.policy_.parameters(), fresh.policy_.parameters()):
        assert torch.equal(a, b)


def test_budget_below_the_policy_fails_before_anything_is_allocated(stream, monkeypatch):
    codec = estimator_module.RecallCodec()
    shape = {"d_model": 16, "n_layers": 1, "id_range": (codec.slot_base, codec.vocab_size)}
    policy_bytes = 4 * _n_params(estimator_module.TinyCurationPolicy(codec.vocab_size, **shape))
    built = []

    class RecordingPolicy(estimator_module.TinyCurationPolicy):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(next(self.parameters()).device.type)

    monkeypatch.setattr(estimator_module, "TinyCurationPolicy", RecordingPolicy)
    model = MemoryAsAction(policy_bytes - 1, **SMALL, random_state=0)
    with pytest.raises(BudgetExceededError, match="before building the model: policy needs"):
        model.fit(stream)
    assert built == ["meta"]  # planned on the meta device; no real policy was built
    assert not hasattr(model, "accountant_") and not hasattr(model, "policy_")
    # room for the policy and its reference is not enough: Adam's state is charged too
    with pytest.raises(BudgetExceededError, match="memory budget exceeded"):
        MemoryAsAction(2 * policy_bytes, **SMALL, random_state=0).fit(stream)
    assert built == ["meta", "meta"]
    enough = MemoryAsAction(4 * policy_bytes + 1_000, **SMALL, random_state=0).fit(stream)
    assert enough.accountant_.ledger().total <= 4 * policy_bytes + 1_000
    assert built[-1] == "cpu"


def test_global_generators_are_untouched(stream):
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    model = MemoryAsAction(**SMALL).fit(stream)  # random_state=None draws from the OS
    model.partial_fit(stream)
    model.scores(stream)
    assert isinstance(model.seed_, int)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002


def test_same_seed_same_policy_and_clone(fitted, stream):
    twin = clone(fitted).fit(stream)
    for a, b in zip(fitted.policy_.parameters(), twin.policy_.parameters()):
        assert torch.equal(a, b)
    assert twin.history_ == fitted.history_


def test_evaluate_learns_each_experience_and_scores_every_one(tiny_stream):
    model = MemoryAsAction(**TINY, random_state=0)
    matrices = model.evaluate(tiny_stream, metrics=["success", "partial"])
    assert set(matrices) == {"success", "partial"}
    assert matrices["success"].matrix.shape == (3, 3) and model.n_partial_fits_ == 3
    last = model.scores(tiny_stream[2].test)
    assert matrices["partial"].matrix[2, 2] == last["partial"]
    assert matrices["success"].matrix[2, 2] == model.score(tiny_stream[2].test)


def test_context_budget_overrides_the_episodes_budget(stream):
    roomy = MemoryAsAction(**SMALL, random_state=0).fit(stream)
    assert roomy.scores(stream[0].test)["overflow"] < 1.0
    # scored under 20 bytes, which cannot even hold the instruction: every episode ends
    # without an answer (training under it fails instead, see the next test)
    roomy.set_params(context_budget="20B")
    assert roomy.scores(stream[0].test)["overflow"] == 1.0
    assert roomy.trainer_.context_budget is None  # scoring does not change the trainer


def test_a_context_budget_without_room_for_one_step_fails_before_anything_is_built(stream):
    # one question, 4 filler words: TOOL, BOS Q k, key value 4*FILL ID, NOOP = 12 int32 tokens
    first_step = 4 * (1 + 3 + 7 + 1)
    model = MemoryAsAction(**TINY, context_budget=first_step - 1, random_state=0)
    with pytest.raises(BudgetExceededError, match=f"context_budget={first_step - 1} cannot hold"):
        model.fit(stream)
    assert [name for name in vars(model) if name.endswith("_")] == []
    fitted = model.set_params(context_budget=first_step).fit(stream)
    assert fitted.trainer_.context_budget == first_step
    state = [p.detach().clone() for p in fitted.policy_.parameters()]
    with pytest.raises(BudgetExceededError, match="needs 48 bytes"):
        fitted.set_params(context_budget="47B").partial_fit(stream)
    assert fitted.n_partial_fits_ == 1 and fitted.trainer_.context_budget == first_step
    assert all(torch.equal(a, b) for a, b in zip(state, fitted.policy_.parameters()))


class HookRecorder(Plugin):
    """Records the hooks it sees and what the trainer exposes at each; stops after one update
    when ``stop`` is set."""

    stop = False

    def __init__(self):
        self.calls = []
        self.seen = torch.zeros(1, dtype=torch.int64)

    def before_experience(self, learner):
        self.calls.append(("before_experience", len(learner.train_data)))

    def before_batch(self, learner):
        self.calls.append(("before_batch", len(learner.batch)))

    def before_backward(self, learner):
        rows = learner.output.shape[0] == len(learner.segments) == len(learner.advantages)
        self.calls.append(("before_backward", rows and learner.loss.requires_grad))

    def after_backward(self, learner):
        grads = [p.grad for p in learner.model.parameters() if p.grad is not None]
        self.calls.append(("after_backward", bool(grads)))

    def after_batch(self, learner):
        self.seen += 1
        self.calls.append(("after_batch", sorted(learner.stats)))
        learner.stop_training = self.stop

    def after_experience(self, learner):
        self.calls.append(("after_experience", learner.n_updates_done))

    def before_eval(self, learner):
        self.calls.append(("before_eval", None))

    def after_eval(self, learner):
        self.calls.append(("after_eval", None))

    def memory_items(self):
        return {"seen": self.seen}

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state, learner):
        self.seen.copy_(state["seen"])


class StoppingRecorder(HookRecorder):
    stop = True


def test_plugins_see_the_hooks_and_are_charged(stream):
    model = MemoryAsAction(**{**SMALL, "n_updates": 3}, plugins=[HookRecorder], random_state=2)
    model.fit(stream[0].train[:1])
    plugin = model.trainer_.plugins[0]
    plugin.calls.clear()
    steps = model.trainer_.n_steps
    model.partial_fit(stream[0].train)
    steps = model.trainer_.n_steps - steps
    assert steps >= 1
    names = [name for name, _ in plugin.calls]
    assert names[0] == "before_experience" and plugin.calls[0][1] == 6
    assert names[-1] == "after_experience" and plugin.calls[-1][1] == 6
    assert names.count("before_batch") == names.count("after_batch") == 3
    assert [v for n, v in plugin.calls if n == "before_batch"] == [2, 2, 2]
    assert names.count("before_backward") == names.count("after_backward") == steps
    assert all(v for n, v in plugin.calls if n in ("before_backward", "after_backward"))
    stats = {"clip_fraction", "edits", "kl", "loss", "reward", "segments", "success"}
    assert all(set(v) == stats for n, v in plugin.calls if n == "after_batch")
    assert int(plugin.seen) == 6  # 3 updates per call, state kept across calls
    assert model.accountant_.ledger().accounts["hookrecorder/seen"] == 8
    plugin.calls.clear()
    model.score(stream[0].test)
    assert [name for name, _ in plugin.calls] == ["before_eval", "after_eval"]
    # fit starts a fresh plugin; the plugin's state is restored with the estimator's
    state = model.get_state()
    copy = clone(model).set_state(state)
    assert int(copy.trainer_.plugins[0].seen) == 6
    assert copy.trainer_.plugins[0] is not plugin


def test_a_plugin_can_stop_a_call(stream):
    model = MemoryAsAction(**{**SMALL, "n_updates": 4}, plugins=[StoppingRecorder], random_state=0)
    model.fit(stream)
    assert len(model.losses_) == 1 and model.trainer_.n_updates_done == 1


def test_curate_edits_another_agents_memory(fitted):
    memory = WorkingMemory(
        [
            Message("user", "Remember the latest value of: k0"),
            Message("tool", "k0=v1 w1 w2 w3 w4", id="aaaaaaaa"),
            Message("tool", "k5=v2 w1 w2 w3 w4", id="bbbbbbbb"),
        ]
    )
    turn = fitted.curate(memory)
    assert turn in memory.messages and turn.role == "assistant"
    if turn.calls:
        assert memory.messages[-1].role == "tool" and len(memory.ids()) == 1
    assert not any(m.content == EDIT_INSTRUCTIONS for m in memory.messages)
    with pytest.raises(ValueError, match="empty"):
        fitted.curate(WorkingMemory())
    with pytest.raises(TypeError, match="memory must be a WorkingMemory, got list"):
        fitted.curate([])


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"n_updates": -1}, ValueError, r"'n_updates' parameter .* range \[0, inf\)\. Got -1 inst"),
        ({"group_size": 1}, ValueError, r"'group_size' parameter .* range \[2, inf\)\. Got 1 inst"),
        ({"lr": 0}, ValueError, r"'lr' parameter .* float in the range \(0\.0, inf\)\. Got 0 "),
        ({"clip": float("nan")}, ValueError, r"'clip' parameter .* Got nan instead"),
        ({"d_model": 18}, ValueError, "'d_model' parameter .* multiple of 4 .* Got 18 instead"),
        ({"explore_fraction": 2}, ValueError, r"'explore_fraction' .* \[0\.0, 1\.0\]\. Got 2 "),
        ({"teacher": "oracle"}, ValueError, "'teacher' parameter .* or None. Got 'oracle'"),
        ({"mode": "naive"}, ValueError, "'mode' parameter .* Got 'naive' instead"),
        ({"final_mask": "x"}, ValueError, "'final_mask' parameter .* Got 'x' instead"),
        ({"context_budget": "lots"}, ValueError, "'context_budget' .* Got 'lots' instead"),
        ({"plugins": [HookRecorder()]}, TypeError, r"plugins\[0\] must be a Plugin class"),
        ({"plugins": [dict]}, TypeError, r"plugins\[0\] must return a continual.Plugin"),
        ({"rollback": "maybe"}, ValueError, "rollback must be one of"),
    ],
)
def test_bad_parameters(params, error, message, stream):
    model = MemoryAsAction(**{**SMALL, **params})
    with pytest.raises(error, match=message):
        model.fit(stream)
    assert not hasattr(model, "accountant_")


def test_bad_input_leaves_a_fitted_model_unchanged(fitted, stream):
    before = [p.detach().clone() for p in fitted.policy_.parameters()]
    with pytest.raises(TypeError, match=r"episodes\[0\] must be a recall episode"):
        fitted.partial_fit([1, 2])
    with pytest.raises(ValueError, match="y must be None"):
        fitted.partial_fit(stream, [1])
    assert fitted.n_partial_fits_ == 1
    assert all(torch.equal(a, b) for a, b in zip(before, fitted.policy_.parameters()))


def test_bad_episodes():
    with pytest.raises(TypeError, match=r"episodes\[0\] must be a recall episode"):
        MemoryAsAction().fit([1, 2])
    with pytest.raises(ValueError, match="at least one episode"):
        as_episodes([])
    with pytest.raises(TypeError, match="must be an iterable of episodes, got int"):
        as_episodes(3)
    with pytest.raises(ValueError, match="part must be 'train' or 'test', got 'dev'"):
        as_episodes([], "dev")


def test_unfitted_estimator_refuses_to_score(stream):
    with pytest.raises(NotFittedError):
        MemoryAsAction().score(stream[0].test)


def test_hydra_experiment_small(tmp_path):
    with initialize_config_module("continual.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "experiment=memact_recall",
                "verbose=0",
                "experiment.context_budget=260",
                "experiment.stream.n_train=4",
                "experiment.stream.n_test=4",
                "experiment.estimator.bc_epochs=1",
                "experiment.estimator.n_updates=2",
                "experiment.estimator.group_size=2",
                "+experiment.estimator.d_model=16",
                "+experiment.estimator.n_layers=1",
                "experiment.curators=[fifo,queried_keys]",
            ],
        )
    results = run_experiment(cfg, tmp_path)
    records = results["records"]
    methods = {r["method"] for r in records}
    assert methods == {"dcpo", "warm_start_only", "naive_final", "fifo", "queried_keys"}
    assert {r["n_questions"] for r in records} == {2, 3}
    assert {r["budget"] for r in records} == {260}
    learned = [r for r in records if r["method"] == "dcpo"]
    assert all(r["learner_bytes"] > 0 for r in learned)
    assert all(r["learner_bytes"] is None for r in records if r["method"] == "fifo")
    assert (tmp_path / "success_vs_context_bytes.png").exists()
    for run in ("dcpo", "warm_start_only", "naive_final", "dcpo_warm_start"):
        assert any((tmp_path / "tb" / run).iterdir()), run
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["experiment"] == "memact_recall" and "strict" in written["table"]
    fifo = next(r for r in records if r["method"] == "fifo" and r["difficulty"] == 0)
    line = next(line for line in written["table"].splitlines() if line.startswith("fifo"))
    assert f"{fifo['success']:.3f}" in line.split() and "260" in line.split()
    oracle = [r for r in records if r["method"] == "queried_keys"]
    assert all(r["success"] == 1.0 for r in oracle)


# ------------------------------------------------------------------------------ devices
def stored(model):
    """The tensors the learner keeps: policy, reference, Adam's state, plugins' items."""
    trainer = model.trainer_
    return stored_tensors(trainer.model, trainer.reference, trainer.optimizer, trainer.plugins)


def fit_twice(stream, device):
    model = MemoryAsAction(**SMALL, random_state=0, device=device).fit(stream[0].train)
    return model.partial_fit(stream[0].train)


def test_everything_stored_lives_on_the_requested_device(stream):
    model = fit_twice(stream, "cpu")
    assert 0.0 <= model.score(stream[0].test) <= 1.0
    assert model.trainer_.device == torch.device("cpu")
    assert_stored_on("cpu", model.accountant_.ledger(), stored(model))


def test_an_unavailable_device_fails_before_anything_is_built(stream):
    model = MemoryAsAction(**SMALL, random_state=0, device="cuda:99")
    with pytest.raises(ValueError, match=r"device='cuda:99' is not available"):
        model.fit(stream)
    assert [name for name in vars(model) if name.endswith("_")] == []


@cuda
def test_cuda_matches_the_cpu_and_the_allocator(stream):
    model, allocated = cuda_bytes_of(lambda: fit_twice(stream, "cuda"))
    ledger, tensors = model.accountant_.ledger(), stored(model)
    assert_stored_on("cuda:0", ledger, tensors)
    assert_allocator_agrees(ledger, allocated, tensors)
    on_cpu = fit_twice(stream, "cpu")
    # the same initial weights and the same warm-start batches: the same cloning curve
    np.testing.assert_allclose(model.bc_losses_, on_cpu.bc_losses_, rtol=1e-3)
    assert model.score(stream[0].test) == pytest.approx(on_cpu.score(stream[0].test), abs=0.34)
    memory = WorkingMemory([Message("user", "Remember: k0"), Message("tool", "k0=v1", id="a")])
    assert model.curate(memory).role == "assistant"
