"""The learner loop: hook order, accounting of model, optimizer and plugin items, budget checks."""

import functools

import numpy as np
import pytest
import torch

from continual import BudgetExceededError, Learner, MemoryAccountant, Plugin, nbytes
from continual.plugin import HOOKS
from streams import class_incremental


def _stream(n_experiences=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(160, 6)).astype(np.float32)
    y = rng.integers(0, 4, size=160)
    X[np.arange(160), y] += 3.0  # separable enough to learn
    return class_incremental(X, y, n_experiences=n_experiences, test=(X, y), seed=seed)


class Recorder(Plugin):
    """Records the name of every hook call."""

    def __init__(self):
        self.calls = []


for _hook in HOOKS:
    setattr(Recorder, _hook, lambda self, learner, _hook=_hook: self.calls.append(_hook))


def test_hooks_are_called_in_lifecycle_order():
    recorder = Recorder()
    experience = _stream()[0]
    learner = Learner(torch.nn.Linear(6, 4), plugins=[recorder], epochs=2, batch_size=30)
    learner.train_experience(experience)
    n_batches = -(-len(experience.train[1]) // 30)
    batch = ["before_batch", "before_backward", "after_backward", "after_batch"]
    assert recorder.calls == ["before_experience", *batch * (2 * n_batches), "after_experience"]
    learner.accuracy(*experience.test)
    assert recorder.calls[-2:] == ["before_eval", "after_eval"]


def test_run_fills_the_score_matrix_and_learns():
    torch.manual_seed(0)
    learner = Learner(torch.nn.Linear(6, 4), epochs=20, lr=0.1)
    scores = learner.run(_stream(n_experiences=1))
    assert scores.matrix.shape == (1, 1)
    assert scores.matrix[0, 0] > 0.9


def test_model_optimizer_and_plugin_items_are_charged():
    class Keeps(Plugin):
        def __init__(self):
            self.kept = torch.zeros(10, dtype=torch.float64)

        def memory_items(self):
            return {"kept": self.kept}

    model = torch.nn.Linear(6, 4)
    accountant = MemoryAccountant()
    learner = Learner(model, plugins=[Keeps()], accountant=accountant, optimizer="adam")
    learner.train_experience(_stream()[0])
    ledger = accountant.ledger()
    params = (6 * 4 + 4) * 4
    assert ledger.accounts["model"] == params
    assert ledger.accounts["optimizer"] == nbytes(learner.optimizer) >= 2 * params
    assert ledger.accounts["keeps/kept"] == 80
    assert [s.step for s in accountant.history] == [0]


def test_user_accounts_survive_the_learner_resync():
    accountant = MemoryAccountant()
    accountant.track("embeddings", torch.zeros(25))
    learner = Learner(torch.nn.Linear(6, 4), accountant=accountant)
    learner.train_experience(_stream()[0])
    assert accountant.ledger().accounts["embeddings"] == 100


def test_model_larger_than_budget_raises_before_training():
    model = torch.nn.Linear(6, 4)
    before = model.weight.detach().clone()
    learner = Learner(model, accountant=MemoryAccountant(50))
    with pytest.raises(BudgetExceededError, match="before experience 0") as error:
        learner.train_experience(_stream()[0])
    assert error.value.ledger.accounts["model"] == 112
    assert torch.equal(model.weight, before)


def test_plugin_that_overspends_is_caught_after_the_experience():
    class Hoarder(Plugin):
        def __init__(self):
            self.items = []

        def after_experience(self, learner):
            self.items.append(torch.zeros(1000))

        def memory_items(self):
            return {"hoard": self.items}

    learner = Learner(torch.nn.Linear(6, 4), plugins=[Hoarder()], accountant=MemoryAccountant(2000))
    with pytest.raises(BudgetExceededError, match="after experience 0"):
        learner.train_experience(_stream()[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        (
            {"epochs": 0},
            r"The 'epochs' parameter of Learner must be an int in the range \[1, inf\)\. Got 0",
        ),
        ({"batch_size": 2.5}, "The 'batch_size' parameter of Learner must be an int .* Got 2.5"),
        ({"lr": float("nan")}, "The 'lr' parameter of Learner must be a float .* Got nan"),
        ({"device": "cuda:99"}, "device='cuda:99' is not available"),
        ({"device": "tpu"}, "device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got 'tpu'"),
        ({"precision": "fp8"}, r"precision must be one of \('32', 'bf16-mixed', '16-mixed'\)"),
        ({"num_workers": -1}, "The 'num_workers' parameter of Learner .* Got -1"),
    ],
)
def test_bad_learner_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Learner(torch.nn.Linear(2, 2), **kwargs)


def test_same_seed_same_scores():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(Learner(torch.nn.Linear(6, 4), seed=7, epochs=2).run(_stream()).matrix)
    np.testing.assert_array_equal(*runs)


@pytest.mark.parametrize(
    "optimizer",
    [
        "adamw",
        torch.optim.RMSprop,
        functools.partial(torch.optim.Adagrad, lr=0.1),
    ],
    ids=["name", "class", "callable"],
)
def test_optimizer_by_name_class_or_callable_and_its_state_is_reserved_exactly(optimizer):
    learner = Learner(torch.nn.Linear(6, 4), optimizer=optimizer, lr=0.01)
    planned = learner.optimizer_state_nbytes()
    learner.train_experience(_stream()[0])
    assert planned == nbytes(learner.optimizer) > 0  # the dry step on meta matched the real one


def test_a_callable_that_returns_no_optimizer_is_named():
    learner = Learner(torch.nn.Linear(6, 4), optimizer=lambda params: "sgd")
    with pytest.raises(TypeError, match=r"optimizer callable must return a torch\.optim"):
        learner.train_experience(_stream()[0])


def test_loss_forward_and_batches_come_from_the_domain():
    seen = []

    def batches(payload, batch_size, generator):
        x, y = payload
        yield torch.as_tensor(x[:10]), torch.as_tensor(y[:10])

    def loss(output, targets):
        seen.append((tuple(output.shape), tuple(targets.shape)))
        return output.pow(2).mean()  # pull every output to 0

    learner = Learner(
        torch.nn.Linear(6, 4), loss=loss, batches=batches, forward=lambda m, x: m(x.float()) * 2
    )
    learner.train_experience(_stream()[0])
    assert seen == [((10, 4), (10,))] and learner.n_steps == 1
    assert learner.epoch_losses == [pytest.approx(learner.epoch_losses[0])]


def test_a_scheduler_steps_once_per_epoch():
    def halve(optimizer):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    learner = Learner(torch.nn.Linear(6, 4), lr=0.8, scheduler=halve, epochs=3)
    learner.train_experience(_stream()[0])
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_a_kept_optimizer_carries_its_state_and_is_rebuilt_when_the_model_grows():
    model = torch.nn.Sequential(torch.nn.Linear(6, 4))
    learner = Learner(model, optimizer="adam", keep_optimizer=True)
    stream = _stream()
    learner.train_experience(stream[0])
    kept = learner.optimizer
    steps = int(kept.state[model[0].weight]["step"])
    learner.train_experience(stream[1])
    assert learner.optimizer is kept and int(kept.state[model[0].weight]["step"]) > steps
    model.append(torch.nn.Linear(4, 4))
    learner.train_experience(stream[0])
    assert learner.optimizer is not kept


def test_a_plugin_can_stop_an_experience():
    class OneBatch(Plugin):
        def after_batch(self, learner):
            learner.stop_training = True

    learner = Learner(torch.nn.Linear(6, 4), plugins=[OneBatch()], epochs=5, batch_size=8)
    learner.train_experience(_stream()[0])
    assert learner.n_steps == 1 and len(learner.epoch_losses) == 1


def test_state_dict_round_trip_restores_weights_counters_and_optimizer():
    torch.manual_seed(0)
    a = Learner(torch.nn.Linear(6, 4), optimizer="adam", keep_optimizer=True)
    a.train_experience(_stream()[0])
    b = Learner(torch.nn.Linear(6, 4), optimizer="adam", keep_optimizer=True)
    b.load_state_dict(a.state_dict())
    assert (b.n_trained, b.n_steps) == (a.n_trained, a.n_steps)
    a.train_experience(_stream()[1])
    b.train_experience(_stream()[1])
    assert torch.equal(a.model.weight, b.model.weight)


def test_learn_trains_one_payload_as_the_next_experience():
    learner = Learner(torch.nn.Linear(6, 4), epochs=3, accountant=MemoryAccountant())
    losses = learner.learn(_stream()[0].train)
    assert len(losses) == 3 and losses == learner.epoch_losses
    learner.learn(_stream()[1].train)
    assert learner.n_trained == 2
    assert [s.step for s in learner.accountant.history] == [0, 1]  # indices of the experiences


class DtypeProbe(Plugin):
    """Records the dtype of the model output and of the weights during training."""

    def __init__(self):
        self.output, self.weights = set(), set()

    def before_backward(self, learner):
        self.output.add(learner.output.dtype)
        self.weights.update(p.dtype for p in learner.model.parameters())


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)]
)
def test_mixed_precision_runs_the_forward_in_low_precision_and_keeps_float32_state(
    precision, dtype
):
    torch.manual_seed(0)
    probe = DtypeProbe()
    learner = Learner(
        torch.nn.Linear(6, 4),
        plugins=[probe],
        precision=precision,
        epochs=3,
        accountant=MemoryAccountant("10 KB"),
        optimizer="adam",
        lr=0.05,
    )
    scores = learner.run(_stream())
    assert probe.output == {dtype}
    assert probe.weights == {torch.float32}
    assert scores.matrix[-1].mean() > 0.6  # it learns
    # the optimizer state is float32 Adam state, plus the gradient scaler's 8 bytes for fp16
    scaler = 8 if precision == "16-mixed" else 0
    adam = 2 * (6 * 4 + 4) * 4 + 2 * 4  # two moments per weight, a step per tensor
    assert learner.accountant.ledger().accounts["optimizer"] == adam + scaler
    assert learner.optimizer_state_nbytes() == adam + scaler


def test_the_16_bit_scaler_is_reserved_before_training_and_restored_from_state():
    learner = Learner(
        torch.nn.Linear(6, 4),
        precision="16-mixed",
        accountant=MemoryAccountant(),
        optimizer="sgd",
        momentum=0.0,
    )
    assert learner.accountant.ledger().accounts["optimizer"] == 8  # reserved, not yet held
    learner.learn(_stream()[0].train)
    state = learner.state_dict()
    assert state["precision"]["scale"] == learner.amp.scaler.get_scale()
    other = Learner(torch.nn.Linear(6, 4), precision="16-mixed", optimizer="sgd")
    other.load_state_dict(state)
    assert other.amp.scaler.get_scale() == learner.amp.scaler.get_scale()


def test_bf16_training_tracks_float32_training():
    """bf16 autocast on the CPU reaches close to the float32 loss (an independent run)."""
    losses = {}
    for precision in ("32", "bf16-mixed"):
        torch.manual_seed(0)
        learner = Learner(torch.nn.Linear(6, 4), precision=precision, epochs=5, lr=0.05)
        losses[precision] = learner.learn(_stream()[0].train)
    assert losses["bf16-mixed"][-1] < losses["bf16-mixed"][0]
    assert abs(losses["bf16-mixed"][-1] - losses["32"][-1]) < 0.05


def test_device_defaults_to_the_model_device_and_batches_are_moved_there():
    learner = Learner(torch.nn.Linear(6, 4))
    assert learner.device == torch.device("cpu")
    assert learner.pin_memory is False  # pinning only helps copies to CUDA
    batch = (torch.zeros(2, 6), torch.zeros(2, dtype=torch.long))
    assert all(a is b for a, b in zip(learner.to_device(batch), batch))  # no copy on the CPU


def test_compile_runs_the_compiled_model_and_keeps_the_plain_one():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    eager = Learner(model, epochs=2, seed=1)
    torch.manual_seed(0)
    compiled = Learner(torch.nn.Linear(6, 4), epochs=2, seed=1, compile={"backend": "eager"})
    losses = eager.learn(_stream()[0].train), compiled.learn(_stream()[0].train)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    assert type(compiled.model) is torch.nn.Linear  # state and accounting see the plain module
    assert compiled._runnable_model() is not compiled.model
