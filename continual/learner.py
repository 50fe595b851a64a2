"""The one training loop: trains any gradient-trained model over a stream and calls plugin hooks."""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from numbers import Integral, Real
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.distributed.algorithms.join import Join

from continual.accountant import MemoryAccountant, check_all_ranks
from continual.devices import device_name, module_device, move_to, resolve_device
from continual.distributed import (
    BatchRows,
    agree_min,
    data_parallel,
    is_distributed,
    local_part,
    local_rows,
    mean_over_ranks,
    world_size,
)
from continual.evaluation import ScoreMatrix
from continual.measure import Reservation, collect_blocks
from continual.plugin import Plugin, load_plugin_states, sync_accounts
from continual.precision import Precision
from continual.progress import progress
from continual.protocol import evaluate_stream
from continual.samples import LazySamples
from continual.validation import (
    COUNT,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    Interval,
    check_labels,
    check_params,
)

__all__ = [
    "Learner",
    "array_batches",
    "as_tensor",
    "batch_rows",
    "cross_entropy",
    "make_optimizer",
    "optimizer_state_nbytes",
    "optimizer_state_split",
]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}

OptimizerSpec = str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer]
Batches = Callable[[Any, int, torch.Generator], Iterable[Any]]


def cross_entropy(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The default loss: cross-entropy of logits ``output`` against integer ``targets``."""
    return nn.functional.cross_entropy(output, targets.long())


def array_batches(
    payload: Any,
    batch_size: int,
    generator: torch.Generator,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The default batches: shuffled ``(x, y)`` mini-batches of an ``(X, y)`` payload.

    The rows are shuffled by ``torch.randperm(len(y), generator=generator)`` and cut in order.
    ``X`` is an array or a tensor, or a :class:`~continual.samples.LazySamples` (the rows of a
    torch ``Dataset``): then a ``DataLoader`` with ``num_workers`` and ``pin_memory`` reads
    the same batches from the data set, one batch at a time (see
    :meth:`~continual.samples.LazySamples.loader`). Under data-parallel training
    ``batch_size`` is the global batch and each rank keeps and reads only its rows of every
    batch (:func:`~continual.distributed.local_rows`).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch.utils.data import TensorDataset
    >>> from continual.learner import array_batches
    >>> from continual.samples import LazySamples
    >>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    >>> batches = list(array_batches((X, y), 2, torch.Generator().manual_seed(0)))
    >>> [len(y) for _, y in batches], sorted(torch.cat([y for _, y in batches]).tolist())
    ([2, 2, 1], [0, 1, 2, 3, 4])
    >>> lazy = (LazySamples(TensorDataset(torch.as_tensor(X))), y)
    >>> [b.tolist() for _, b in array_batches(lazy, 2, torch.Generator().manual_seed(0))]
    [[4, 0], [1, 3], [2]]
    >>> [b.tolist() for _, b in batches]
    [[4, 0], [1, 3], [2]]
    """
    x, y = payload
    if isinstance(x, LazySamples):
        yield from x.loader(
            batch_size,
            labels=as_tensor(y),
            generator=generator,
            num_workers=num_workers,
            pin_memory=pin_memory,
            local=True,
        )
        return
    x, y = as_tensor(x), as_tensor(y)
    for index in torch.randperm(len(x), generator=generator).split(batch_size):
        index = local_rows(index)
        if len(index):
            yield x[index], y[index]


def make_optimizer(
    spec: OptimizerSpec,
    params: Sequence[torch.Tensor],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Build an optimizer from a name, an optimizer class or a callable ``params -> optimizer``.

    A name (``"sgd"``, ``"adam"``, ``"adamw"``) or a class receives ``lr`` and
    ``weight_decay``, and ``momentum`` when it takes one. A callable receives the parameters
    only.

    Examples
    --------
    >>> import functools, torch
    >>> from continual.learner import make_optimizer
    >>> params = list(torch.nn.Linear(2, 1).parameters())
    >>> type(make_optimizer("adamw", params, lr=0.1)).__name__
    'AdamW'
    >>> make_optimizer(torch.optim.SGD, params, lr=0.1, momentum=0.9).defaults["momentum"]
    0.9
    >>> rms = functools.partial(torch.optim.RMSprop, lr=0.01, alpha=0.9)
    >>> make_optimizer(rms, params, lr=0.1).defaults["alpha"]
    0.9
    """
    if isinstance(spec, str):
        if spec not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}, a torch.optim.Optimizer "
                f"subclass or a callable params -> optimizer, got {spec!r}"
            )
        spec = OPTIMIZERS[spec]
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
        if "momentum" in inspect.signature(spec).parameters:
            kwargs["momentum"] = momentum
        return spec(params, **kwargs)
    if not callable(spec):
        raise TypeError(
            f"optimizer must be a name, a torch.optim.Optimizer subclass or a callable "
            f"params -> optimizer, got {spec!r}"
        )
    optimizer = spec(params)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            "optimizer callable must return a torch.optim.Optimizer, got "
            f"{type(optimizer).__name__}"
        )
    return optimizer


def optimizer_state_nbytes(
    spec: OptimizerSpec, params: Sequence[torch.Tensor], **settings: Any
) -> int:
    """Bytes of state the optimizer ``spec`` holds once it has stepped on ``params``.

    Measured by a dry step of the same optimizer on meta-device copies of the parameters:
    exact, and nothing is allocated. ``settings`` go to :func:`make_optimizer`. An optimizer
    that cannot step on the meta device counts 0 (its state is charged once it exists).

    Examples
    --------
    >>> import torch
    >>> from continual.learner import optimizer_state_nbytes
    >>> params = list(torch.nn.Linear(10, 3).parameters())  # 33 floats in 2 tensors
    >>> optimizer_state_nbytes("adam", params, lr=0.1)  # two moments and a step per tensor
    272
    >>> optimizer_state_nbytes("sgd", params, lr=0.1, momentum=0.0)
    0
    """
    return sum(optimizer_state_split(spec, params, torch.device("cpu"), **settings).values())


def optimizer_state_split(
    spec: OptimizerSpec, params: Sequence[torch.Tensor], device: torch.device, **settings: Any
) -> dict[str, int]:
    """:func:`optimizer_state_nbytes` per device, for parameters on ``device``.

    State that follows its parameter (moments, momentum buffers) is on ``device``; what torch
    keeps on the CPU whatever the parameters' device (Adam's step counters, unless the
    optimizer is fused or capturable) is on ``"cpu"``.

    Examples
    --------
    >>> import torch
    >>> from continual.learner import optimizer_state_split
    >>> params = list(torch.nn.Linear(10, 3).parameters())
    >>> optimizer_state_split("adam", params, torch.device("cuda", 0), lr=0.1)
    {'cpu': 8, 'cuda:0': 264}
    """
    if not params:
        return {}
    meta = [nn.Parameter(torch.empty_like(p, device="meta")) for p in params]
    for parameter in meta:
        parameter.grad = torch.empty_like(parameter)
    try:
        optimizer = make_optimizer(spec, meta, **settings)
        optimizer.step()
    except (RuntimeError, NotImplementedError, TypeError):
        return {}
    split: dict[str, int] = {}
    for where, size in collect_blocks(optimizer).size_by_device().items():
        name = device_name(device) if where == "meta" else where
        split[name] = split.get(name, 0) + size
    return split


class Learner:
    """Drive a model and its strategy plugins over a stream of experiences.

    For each experience the learner sets ``train_data`` to the experience's training
    payload and calls ``before_experience`` (plugins may grow the model or replace
    ``train_data`` there). It builds the optimizer (a fresh one for every experience, or one
    kept across experiences with ``keep_optimizer=True``), checks that the model and the
    optimizer state it will hold fit the budget, and runs ``epochs`` passes: each mini-batch
    from ``batches`` goes through ``forward`` and ``loss``, the batch hooks, the backward pass
    and the optimizer step. ``after_experience`` follows (plugins update their stores there)
    and the budget is checked again. The model, the optimizer state and every plugin's
    :meth:`~continual.plugin.Plugin.memory_items` are charged to one shared
    :class:`~continual.accountant.MemoryAccountant`, so a store sized from ``headroom()``
    always leaves room for the model that trains with it.

    The defaults train a classifier on ``(X, y)`` payloads with cross-entropy; a domain
    supplies its own ``batches``, ``forward`` and ``loss`` (event sequences and their
    log-likelihood, interactions and BPR).

    **Data-parallel training.** When ``torch.distributed`` is initialised with several
    processes (under ``torchrun``), the same code trains data-parallel: the model is wrapped
    in ``DistributedDataParallel`` for each experience (and unwrapped after it, with its
    gradient buckets), ``batches`` is asked for global batches of ``batch_size`` times the
    world size and each rank trains on its rows of each (see :mod:`continual.distributed`).
    Gradients are averaged with each rank's rows as weights, so ``W`` ranks with batch ``b``
    take the steps of one process with batch ``W * b``. A rank that runs out of batches first
    waits for the others (DDP's ``join``); every budget check fails on all ranks when one rank
    is over (:func:`~continual.accountant.check_all_ranks`); :meth:`room_for` is agreed across
    ranks; :meth:`accuracy` scores each rank's share of the rows and adds the counts.
    ``compile`` is ignored then (the DDP wrapper runs eagerly).

    Parameters
    ----------
    model
        The network.
    plugins
        Strategy plugins, called in order at every hook.
    accountant
        The shared accountant; a measure-only one is created when None.
    optimizer
        ``"sgd"`` (with ``momentum``), ``"adam"``, ``"adamw"``, a ``torch.optim.Optimizer``
        subclass, or a callable ``params -> optimizer`` (see :func:`make_optimizer`).
    lr, momentum, weight_decay
        Optimizer settings for a name or a class.
    scheduler
        Optional callable ``optimizer -> learning-rate scheduler``, stepped after each epoch.
    loss
        ``loss(output, targets) -> scalar tensor``; cross-entropy on logits by default.
    forward
        ``forward(model, inputs) -> output``; by default ``model(learner.prepare(inputs))``.
    batches
        ``batches(payload, batch_size, generator)`` yields ``(inputs, targets)`` mini-batches;
        by default shuffled slices of an ``(X, y)`` payload (:func:`array_batches`).
    epochs
        Passes over each experience.
    batch_size
        Mini-batch size for training and evaluation.
    input_scale
        Factor applied to array inputs after the float cast (``1/16`` for digits).
    keep_optimizer
        Keep one optimizer, and its state, across experiences (it is rebuilt when the
        model gains parameters); otherwise each experience starts a fresh one.
    seed
        Seed of the batch order (the model is initialised by its builder).
    verbose
        0 for silence; otherwise progress bars.
    device
        Where the model, its optimizer state and every batch live: ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``, ``"auto"`` (the first accelerator, else the CPU), or None
        for the device the model is on. The model is moved there, and so is each batch (from
        pinned memory with ``non_blocking=True`` on CUDA). An unavailable device is a
        ``ValueError``.
    precision
        ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"`` (see
        :class:`~continual.precision.Precision`): the forward pass and the loss run under
        ``torch.autocast``; weights and optimizer state stay float32.
    compile
        Run the model through ``torch.compile``: True, or a dict of its options such as
        ``{"mode": "max-autotune"}``. The stored model stays the plain module, so its state,
        its accounting and the plugins that grow it are unchanged; a grown model is compiled
        again.
    num_workers, pin_memory
        DataLoader options for payloads read from a torch ``Dataset``; ``pin_memory=None``
        pins when the device is CUDA (array batches are pinned then too).

    Attributes
    ----------
    experience, train_data, batch, output, loss
        The current experience, its training payload, mini-batch ``(inputs, targets)``, model
        output and loss, for plugins.
    stop_training : bool
        Set by a plugin to end the current experience after this batch (or, set in
        ``before_experience``, to train nothing).
    epoch_losses : list of float
        Mean training loss of each epoch of the last experience.
    n_trained, n_steps : int
        Experiences trained and optimizer steps taken so far.
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
    account    device  bytes  share
    model         cpu     80   8.0%
    optimizer     cpu     80   8.0%
    total                160  16.0%
    budget             1,000
    """

    #: The numeric parameters, checked when the learner is built (see continual.validation).
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "lr": [POSITIVE_FLOAT],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "weight_decay": [NON_NEGATIVE_FLOAT],
        "epochs": [COUNT],
        "batch_size": [COUNT],
        "input_scale": [POSITIVE_FLOAT],
        "seed": [Integral],
        "verbose": [NON_NEGATIVE_INT],
        "num_workers": [NON_NEGATIVE_INT],
    }

    def __init__(
        self,
        model: nn.Module,
        *,
        plugins: Sequence[Plugin] = (),
        accountant: MemoryAccountant | None = None,
        optimizer: OptimizerSpec = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        loss: Callable[[Any, Any], torch.Tensor] | None = None,
        forward: Callable[[nn.Module, Any], Any] | None = None,
        batches: Batches | None = None,
        epochs: int = 1,
        batch_size: int = 32,
        input_scale: float = 1.0,
        keep_optimizer: bool = False,
        seed: int = 0,
        verbose: int = 0,
        device: str | torch.device | None = None,
        precision: str = "32",
        compile: bool | dict[str, Any] = False,
        num_workers: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}, a torch.optim.Optimizer "
                f"subclass or a callable params -> optimizer, got {optimizer!r}"
            )
        numbers = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "epochs": epochs,
            "batch_size": batch_size,
            "input_scale": input_scale,
            "seed": seed,
            "verbose": verbose,
            "num_workers": num_workers,
        }
        check_params(self._parameter_constraints, numbers, "Learner")
        epochs, batch_size, num_workers, seed = (
            int(epochs),
            int(batch_size),
            int(num_workers),
            int(seed),
        )
        self.model = model
        self.plugins = list(plugins)
        self.accountant = MemoryAccountant() if accountant is None else accountant
        self.optimizer_spec = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.scheduler_factory = scheduler
        self.loss_fn = cross_entropy if loss is None else loss
        self.forward_fn = forward
        self.batches = array_batches if batches is None else batches
        self.epochs = epochs
        self.batch_size = batch_size
        self.input_scale = input_scale
        self.keep_optimizer = keep_optimizer
        self.seed = seed
        self.verbose = verbose
        self.device = module_device(model) if device is None else resolve_device(device)
        self.amp = Precision(precision, self.device)
        self.precision = precision
        self.compile = compile
        self.num_workers = num_workers
        self.pin_memory = self.device.type == "cuda" if pin_memory is None else bool(pin_memory)
        self._reset()

    def _reset(self) -> None:
        self.model.to(self.device)
        self._compiled: tuple[nn.Module, Any] | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.experience: Any = None
        self.train_data: Any = None
        self.batch: Any = None
        self.output: Any = None
        self.loss: torch.Tensor | None = None
        self.stop_training = False
        self.epoch_losses: list[float] = []
        self.scores: ScoreMatrix | None = None
        self.n_trained = 0
        self.n_steps = 0
        self._planned: tuple[Any, int] | None = None
        self._parallel: nn.Module | None = None
        self._rows: BatchRows | None = None
        self._accounts: list[str] = []
        self._sync_accounts()

    # ------------------------------------------------------------------ training
    def run(
        self, stream: Sequence[Any], *, after_experience: Callable[[int], Any] | None = None
    ) -> ScoreMatrix:
        """Train on every experience of ``stream``; return the accuracy matrix.

        After training on experience ``i`` the learner evaluates on the test payload of
        every experience ``j`` (forward transfer included), filling R[i][j], then calls
        ``after_experience(i)`` (see :func:`continual.protocol.evaluate_stream`).
        """
        self.scores = evaluate_stream(
            stream,
            learn=self.train_experience,
            score=lambda test: self.accuracy(*test),
            sizes=[len(exp.test[1]) for exp in stream] if _all_tested(stream) else None,
            after_experience=after_experience,
        )
        return self.scores

    def learn(self, payload: Any, index: int | None = None) -> list[float]:
        """Train on one training ``payload`` as experience ``index`` (default: the next);
        return the mean loss of each epoch. The estimators' ``partial_fit`` calls this."""
        index = self.n_trained if index is None else index
        self.train_experience(SimpleNamespace(index=index, train=payload, test=None))
        return list(self.epoch_losses)

    def train_experience(self, experience: Any) -> None:
        """Train on one experience, call the hooks and check the budget."""
        self.experience = experience
        self.train_data = experience.train
        self.stop_training = False
        self._call("before_experience")
        self.model.to(self.device)  # plugins may have grown it with new modules
        self._prepare_optimizer()
        self._sync_accounts()
        self._check_before(experience.index)
        if self.batches is array_batches:
            check_labels(experience.train[1])
        self.model.train()
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.n_trained)
        self.epoch_losses = []
        joined = self._data_parallel()
        try:
            with joined:  # a rank with fewer batches waits for the others' steps
                for _ in progress(range(self.epochs), verbose=self.verbose, desc="epochs"):
                    self._train_epoch(generator)
                    if self.stop_training:
                        break
                if self._rows is not None:
                    self._rows.rows = 0  # waiting for the others, this rank adds nothing
        finally:
            self._parallel = self._rows = None  # the DDP wrapper and its buckets go
            self.batch = self.output = self.loss = None  # drop the autograd graph
        self._call("after_experience")
        self.model.zero_grad(set_to_none=True)  # gradients are not kept between experiences
        self._sync_accounts()
        self.n_trained += 1
        ledger = self.accountant.snapshot(experience.index)
        check_all_ranks(ledger, context=f"after experience {experience.index}")

    def _train_epoch(self, generator: torch.Generator) -> None:
        total, count = torch.zeros((), device=self.device), 0
        options = self.loader_options() if self.batches is array_batches else {}
        size = self.batch_size * world_size()  # the global batch; each rank keeps its rows
        for batch in self.batches(self.train_data, size, generator, **options):
            if self.stop_training:
                break
            self._train_batch(batch)
            total = total + self.loss.detach().float()  # stays on the device: no sync
            count += 1
        if count:
            self.epoch_losses.append(float(total) / count)
        if self.scheduler is not None:
            self.scheduler.step()

    def _data_parallel(self) -> contextlib.AbstractContextManager[Any]:
        """Wrap the model in DDP for this experience when a process group runs, and return
        the ``join`` context that lets ranks with fewer batches wait for the others."""
        if not is_distributed():
            return contextlib.nullcontext()
        self._rows = BatchRows()
        self._parallel = data_parallel(self.model, self._rows)
        return Join([self._parallel])

    def _train_batch(self, batch: Any) -> None:
        self.batch = self.to_device(batch)
        self._call("before_batch")
        inputs, targets = self.batch
        with self.amp.autocast():
            self.output = self.forward(inputs)
            self.loss = self.loss_fn(self.output, targets)
            self._call("before_backward")
        self.optimizer.zero_grad(set_to_none=True)
        if self._rows is not None:  # the weight of this rank's gradient in the all-reduce
            self._rows.rows = batch_rows(self.batch)
        self.amp.backward(self.loss)
        self.amp.unscale(self.optimizer)
        self._call("after_backward")
        self.amp.step(self.optimizer)
        self.n_steps += 1
        self._call("after_batch")

    def to_device(self, batch: Any) -> Any:
        """``batch`` with every tensor on :attr:`device` (see
        :func:`~continual.devices.move_to`)."""
        return move_to(batch, self.device, pin_memory=self.pin_memory)

    # ---------------------------------------------------------------- inference
    def forward(self, inputs: Any) -> Any:
        """The model's output for a batch of ``inputs`` (through ``forward`` when given)."""
        model = self._parallel if self._parallel is not None else self._runnable_model()
        if self.forward_fn is not None:
            return self.forward_fn(model, inputs)
        return model(self.prepare(inputs))

    def _runnable_model(self) -> nn.Module:
        """The model, or its compiled version (compiled again when the model was replaced)."""
        if not self.compile:
            return self.model
        if self._compiled is None or self._compiled[0] is not self.model:
            options = self.compile if isinstance(self.compile, dict) else {}
            self._compiled = (self.model, torch.compile(self.model, **options))
        return self._compiled[1]

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Stored array inputs as float32 model inputs on :attr:`device`, times
        ``input_scale`` (moved before the cast, so that ``uint8`` images travel small)."""
        x = move_to(torch.as_tensor(x), self.device, pin_memory=self.pin_memory)
        return x.to(torch.float32) * self.input_scale

    @torch.no_grad()
    def predict(self, x: Any) -> torch.Tensor:
        """Outputs (logits for a classifier) for inputs ``x``, in evaluation mode and in
        batches. ``x`` is an array, a tensor or a :class:`~continual.samples.LazySamples`
        (read batch by batch, in order)."""
        self._call("before_eval")
        self.model.eval()
        chunks = [self.forward(part) for part in self._chunks(x, max(self.batch_size, 256))]
        self._call("after_eval")
        return torch.cat(chunks)

    @torch.no_grad()
    def features(self, x: Any) -> torch.Tensor:
        """Penultimate features from ``model.features`` (used by herding), for the same
        inputs as :meth:`predict`."""
        self.model.eval()
        return torch.cat([self.model.features(self.prepare(p)) for p in self._chunks(x, 256)])

    def accuracy(self, x: Any, y: Any) -> float:
        """Fraction of samples of ``(x, y)`` whose arg-max output is the label.

        Under data-parallel training each rank predicts its share of the rows
        (:func:`~continual.distributed.local_part`) and the ranks add their counts.
        """
        x, y = local_part((x, y))
        predictions = self.predict(x).argmax(dim=1) if len(y) else torch.empty(0)
        correct = (predictions == as_tensor(y).to(predictions.device)).sum()
        return mean_over_ranks(float(correct), len(y))

    def room_for(self, store: Any) -> int:
        """Bytes ``store`` may hold when refilled: the accountant's
        :meth:`~continual.accountant.MemoryAccountant.room_for`, the smallest over the ranks
        under data-parallel training, so that every rank keeps a shard of the same size."""
        return agree_min(self.accountant.room_for(store))

    def loader_options(self) -> dict[str, Any]:
        """``num_workers`` and ``pin_memory`` of the data loaders that read a
        :class:`~continual.samples.LazySamples` payload."""
        return {"num_workers": self.num_workers, "pin_memory": self.pin_memory}

    def _chunks(self, x: Any, size: int) -> Iterable[torch.Tensor]:
        """Consecutive batches of at most ``size`` inputs of ``x``, in order."""
        if isinstance(x, LazySamples):
            return x.loader(size, **self.loader_options())
        return as_tensor(x).split(size)

    # -------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Counters, model weights, the kept optimizer state and every plugin's state.

        Tensors are references (see :mod:`continual.state`). A fresh-per-experience
        optimizer is not state: the next experience starts a new one.
        """
        keep = self.keep_optimizer and self.optimizer is not None
        return {
            "n_trained": self.n_trained,
            "n_steps": self.n_steps,
            "plugins": [plugin.state_dict() for plugin in self.plugins],
            "model": self.model.state_dict(keep_vars=True),
            "optimizer": self.optimizer.state_dict() if keep else None,
            "scheduler": self.scheduler.state_dict() if keep and self.scheduler else None,
            "precision": self.amp.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned: plugins first (they may rebuild the
        model's structure), then the weights and the optimizer."""
        load_plugin_states(self.plugins, state["plugins"], self)
        self.model.load_state_dict(state["model"])
        self.n_trained = int(state["n_trained"])
        self.n_steps = int(state["n_steps"])
        self.amp.load_state_dict(state.get("precision", {}))
        if state["optimizer"] is not None:
            self._prepare_optimizer()
            # torch keeps the given tensors: copy them, so that no other optimizer shares them
            self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
            if state["scheduler"] is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        self._sync_accounts()

    # --------------------------------------------------------------- internals
    def _call(self, hook: str) -> None:
        for plugin in self.plugins:
            getattr(plugin, hook)(self)

    def _trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _build_optimizer(self, params: Sequence[torch.Tensor]) -> torch.optim.Optimizer:
        return make_optimizer(
            self.optimizer_spec,
            params,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )

    def _prepare_optimizer(self) -> None:
        """A fresh optimizer, or the kept one unless the model gained or lost parameters."""
        if self.keep_optimizer and self.optimizer is not None:
            held = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
            if held == {id(p) for p in self.model.parameters()}:
                return
        params = list(self.model.parameters()) if self.keep_optimizer else self._trainable()
        self.optimizer = self._build_optimizer(params)
        factory = self.scheduler_factory
        self.scheduler = factory(self.optimizer) if factory is not None else None

    def optimizer_state_nbytes(self) -> int:
        """Bytes of state the optimizer holds once it has stepped on the trainable parameters.

        Measured exactly by :func:`optimizer_state_nbytes` (a dry step on the meta device),
        and cached until the trainable shapes change. SGD with momentum keeps one buffer per
        parameter; Adam keeps two plus a float32 step counter per parameter tensor; plain
        SGD keeps nothing. Under ``"16-mixed"`` the gradient scaler's 8 bytes are added.
        """
        return sum(self._planned_optimizer_state().values())

    def _planned_optimizer_state(self) -> dict[str, int]:
        """What the optimizer and the gradient scaler will hold, per device."""
        params = self._trainable()
        key = tuple((tuple(p.shape), p.dtype) for p in params)
        if self._planned is None or self._planned[0] != key:
            settings = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
            split = optimizer_state_split(self.optimizer_spec, params, self.device, **settings)
            self._planned = (key, split)
        planned = dict(self._planned[1])
        if self.amp.planned_nbytes():
            name = device_name(self.device)
            planned[name] = planned.get(name, 0) + self.amp.planned_nbytes()
        return planned

    def _optimizer_items(self) -> list[Any]:
        """The optimizer's state, plus a reservation, per device, for state it will create
        when it steps.

        A fresh optimizer holds nothing until its first step, so the budget is
        checked against what training will allocate, not against an empty state.
        """
        held = collect_blocks([self.optimizer, self.amp]).size_by_device()
        reserved = [
            Reservation(max(0, size - held.get(device, 0)), device)
            for device, size in self._planned_optimizer_state().items()
        ]
        return [self.optimizer, self.amp, *reserved]

    def _check_before(self, index: int) -> None:
        ledger = self.accountant.ledger()
        needed = ledger.accounts["model"] + ledger.accounts["optimizer"]
        check_all_ranks(
            ledger,
            context=f"before experience {index}: the model and its optimizer state need "
            f"{needed:,} bytes",
        )

    def _sync_accounts(self) -> None:
        """Charge the model, the optimizer (with its reservation) and every plugin item."""
        own = {
            "model": functools.partial(getattr, self, "model"),
            "optimizer": self._optimizer_items,
        }
        self._accounts = sync_accounts(self.accountant, own, self.plugins, self._accounts)


def batch_rows(batch: Any) -> float:
    """What a batch's loss averages over: the length of its targets, or the targets
    themselves when they are a count (the scored events of a TPP batch), or the length of its
    first input when it has no targets (BPR's users).

    Examples
    --------
    >>> import torch
    >>> from continual.learner import batch_rows
    >>> batch_rows((torch.zeros(5, 2), torch.zeros(5))), batch_rows(("events", 12))
    (5, 12)
    """
    inputs, targets = batch
    if isinstance(targets, (int, float)):
        return targets
    if targets is not None:
        return len(targets)
    return len(inputs[0] if isinstance(inputs, (tuple, list)) else inputs)


def _all_tested(stream: Sequence[Any]) -> bool:
    """Whether every experience has a test payload (else the protocol says which do not)."""
    return all(getattr(exp, "test", None) is not None for exp in stream)


def as_tensor(data: Any) -> torch.Tensor:
    """A tensor view of arrays and tensors (read-only numpy arrays are copied, not written)."""
    if isinstance(data, torch.Tensor):
        return data
    return torch.from_numpy(np.require(np.asarray(data), requirements="W"))
