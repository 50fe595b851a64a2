"""The generic learner loop: trains a classifier over a stream and calls plugin hooks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from continual.accountant import MemoryAccountant
from continual.evaluation import ScoreMatrix
from continual.measure import Live, Reservation
from continual.plugin import Plugin
from continual.progress import progress

__all__ = ["Learner"]

_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


class Learner:
    """Drive a classifier and its strategy plugins over a stream of experiences.

    For each experience the learner calls ``before_experience`` (plugins may
    grow the model there), builds a fresh optimizer over the trainable
    parameters, runs ``epochs`` passes of mini-batch training with the batch
    hooks, calls ``after_experience`` (plugins update their stores there) and
    finally checks the budget. The model, the optimizer state and every
    plugin's :meth:`~continual.plugin.Plugin.memory_items` are charged to one
    shared :class:`~continual.accountant.MemoryAccountant`, so a store sized
    from ``headroom()`` always leaves room for the model that trains with it.

    Payloads are ``(X, y)`` pairs of arrays or tensors. ``X`` keeps its dtype
    until a batch is fed to the model, where it is cast to float32 and
    multiplied by ``input_scale``.

    Parameters
    ----------
    model
        A classifier returning logits over all classes.
    plugins
        Strategy plugins, called in order at every hook.
    accountant
        The shared accountant; a measure-only one is created when None.
    optimizer
        ``"sgd"`` (with ``momentum``) or ``"adam"``.
    lr, momentum, weight_decay
        Optimizer settings.
    epochs
        Passes over each experience.
    batch_size
        Mini-batch size for training and evaluation.
    input_scale
        Factor applied to inputs after the float cast (``1/16`` for digits).
    seed
        Seed of the batch order (the model is initialised by its builder).
    verbose
        0 for silence; otherwise progress bars on a terminal.

    Attributes
    ----------
    experience, batch, logits, loss
        The current experience, mini-batch ``(x, y)``, logits and loss, for plugins.
    scores : ScoreMatrix or None
        The accuracy matrix filled by :meth:`run`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from continual import Learner, MemoryAccountant
    >>> from streams import class_incremental
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    >>> stream = class_incremental(X, y, n_experiences=2, test=(X, y), seed=0)
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> learner = Learner(torch.nn.Linear(4, 4), accountant=MemoryAccountant("1 KB"), epochs=2)
    >>> scores = learner.run(stream)
    >>> scores.matrix.shape
    (2, 2)
    >>> print(learner.accountant.ledger())
    account    bytes  share
    model         80   8.0%
    optimizer     80   8.0%
    total        160  16.0%
    budget     1,000
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        plugins: Sequence[Plugin] = (),
        accountant: MemoryAccountant | None = None,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        epochs: int = 1,
        batch_size: int = 32,
        input_scale: float = 1.0,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {optimizer!r}")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.model = model
        self.plugins = list(plugins)
        self.accountant = MemoryAccountant() if accountant is None else accountant
        self.optimizer_name = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.input_scale = input_scale
        self.seed = seed
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.optimizer: torch.optim.Optimizer | None = None
        self.experience: Any = None
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self.logits: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self.scores: ScoreMatrix | None = None
        self.n_trained = 0
        self._accounts: list[str] = []
        self._sync_accounts()

    # ------------------------------------------------------------------ training
    def run(self, stream: Sequence[Any]) -> ScoreMatrix:
        """Train on every experience of ``stream``; return the accuracy matrix.

        After training on experience ``i`` the learner evaluates on the test
        payload of every experience ``j``, filling R[i][j].
        """
        sizes = [len(exp.test[1]) for exp in stream]
        self.scores = ScoreMatrix(len(stream), test_sizes=sizes)
        for i, experience in enumerate(stream):
            self.train_experience(experience)
            for j, other in enumerate(stream):
                self.scores.record(i, j, self.accuracy(*other.test))
        return self.scores

    def train_experience(self, experience: Any) -> None:
        """Train on one experience, call the hooks and check the budget."""
        self.experience = experience
        x, y = (_as_tensor(part) for part in experience.train)
        if len(x) == 0:
            raise ValueError(f"experience {experience.index} has no training samples")
        self._call("before_experience")
        self.optimizer = self._make_optimizer()
        self._sync_accounts()
        self._check_before(experience.index)
        self.model.train()
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.n_trained)
        try:
            for _ in progress(range(self.epochs), verbose=self.verbose, desc="epochs"):
                for index in torch.randperm(len(x), generator=generator).split(self.batch_size):
                    self._train_batch(x[index], y[index])
        finally:
            self.batch = self.logits = self.loss = None  # drop the autograd graph
        self._call("after_experience")
        self._sync_accounts()
        self.n_trained += 1
        ledger = self.accountant.snapshot(experience.index)
        ledger.check(context=f"after experience {experience.index}")

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.batch = (x, y)
        self._call("before_batch")
        inputs, targets = self.batch
        self.logits = self.model(self.prepare(inputs))
        self.loss = nn.functional.cross_entropy(self.logits, targets.long())
        self._call("before_backward")
        self.optimizer.zero_grad(set_to_none=True)
        self.loss.backward()
        self.optimizer.step()
        self._call("after_batch")

    # ---------------------------------------------------------------- inference
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Cast stored inputs to float32 model inputs."""
        return torch.as_tensor(x).to(torch.float32) * self.input_scale

    @torch.no_grad()
    def predict_logits(self, x: Any) -> torch.Tensor:
        """Logits for ``x`` in evaluation mode, computed in batches."""
        x = _as_tensor(x)
        self._call("before_eval")
        self.model.eval()
        chunks = [self.model(self.prepare(part)) for part in x.split(max(self.batch_size, 256))]
        self._call("after_eval")
        return torch.cat(chunks)

    @torch.no_grad()
    def features(self, x: Any) -> torch.Tensor:
        """Penultimate features from ``model.features`` (used by herding)."""
        self.model.eval()
        x = _as_tensor(x)
        return torch.cat([self.model.features(self.prepare(p)) for p in x.split(256)])

    def accuracy(self, x: Any, y: Any) -> float:
        """Fraction of samples of ``(x, y)`` whose arg-max logit is the label."""
        predictions = self.predict_logits(x).argmax(dim=1)
        return float((predictions == _as_tensor(y)).float().mean())

    # --------------------------------------------------------------- internals
    def _call(self, hook: str) -> None:
        for plugin in self.plugins:
            getattr(plugin, hook)(self)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        kwargs: dict[str, Any] = {"lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer_name == "sgd":
            kwargs["momentum"] = self.momentum
        return _OPTIMIZERS[self.optimizer_name](params, **kwargs)

    def optimizer_state_nbytes(self) -> int:
        """Bytes of state the optimizer holds once it has stepped on the trainable parameters.

        SGD with momentum keeps one buffer per parameter; Adam keeps two plus a
        float32 step counter per parameter tensor; plain SGD keeps nothing.
        """
        params = [p for p in self.model.parameters() if p.requires_grad]
        size = sum(p.numel() * p.element_size() for p in params)
        if self.optimizer_name == "adam":
            return 2 * size + 4 * len(params)
        return size if self.momentum else 0

    def _optimizer_items(self) -> list[Any]:
        """The optimizer's state, plus a reservation for state it will create when it steps.

        A fresh optimizer holds nothing until its first step, so the budget is
        checked against what training will allocate, not against an empty state.
        """
        held = _state_nbytes(self.optimizer) if self.optimizer is not None else 0
        return [self.optimizer, Reservation(max(0, self.optimizer_state_nbytes() - held))]

    def _check_before(self, index: int) -> None:
        ledger = self.accountant.ledger()
        needed = ledger.accounts["model"] + ledger.accounts["optimizer"]
        ledger.check(
            context=f"before experience {index}: the model and its optimizer state need "
            f"{needed:,} bytes"
        )

    def _sync_accounts(self) -> None:
        """Register model, optimizer and plugin items, if the set of accounts changed.

        Every account is a :class:`~continual.measure.Live` view, so a plugin
        that replaces its model or one of its items is charged for the new
        object at once.
        """
        names = ["model", "optimizer"] + [
            f"{plugin.name}/{key}" for plugin in self.plugins for key in plugin.memory_items()
        ]
        if names == self._accounts:
            return
        for name in self._accounts:
            self.accountant.untrack(name)
        self.accountant.track("model", Live(functools.partial(getattr, self, "model")))
        self.accountant.track("optimizer", Live(self._optimizer_items))
        for plugin in self.plugins:
            for key in plugin.memory_items():
                getter = functools.partial(_plugin_item, plugin, key)
                self.accountant.track(f"{plugin.name}/{key}", Live(getter))
        self._accounts = names


def _as_tensor(data: Any) -> torch.Tensor:
    """A tensor view of arrays and tensors (read-only numpy arrays are copied, not written)."""
    if isinstance(data, torch.Tensor):
        return data
    return torch.from_numpy(np.require(np.asarray(data), requirements="W"))


def _state_nbytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the optimizer's state tensors (each owns its storage: no walk needed)."""
    return sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    )


def _plugin_item(plugin: Plugin, key: str) -> Any:
    return plugin.memory_items().get(key)
