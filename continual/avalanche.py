"""Avalanche integration: put any Avalanche ``SupervisedTemplate`` strategy under the byte budget.

Avalanche sizes replay buffers in samples and never charges the model. The
:class:`MemoryBudgetPlugin` charges one :class:`~continual.accountant.MemoryAccountant`
for the model, the optimizer state and what the strategy's plugins store, checks the
budget after every training experience, and shrinks replay storage to fit.
:class:`LedgerMetric` reports the ledger to any Avalanche logger.

Needs the ``avalanche`` extra (``pip install continual-budget[avalanche]``).

What is charged, per plugin (account names in brackets):

- any plugin with an ``ExemplarsBuffer`` ``storage_policy`` (``ReplayPlugin`` and the
  strategies built on it) [``<plugin>/buffer``]: the **samples the buffer holds, as if
  copied**. Avalanche buffers are index views into the original dataset, so storage
  deduplication alone would charge either nothing or the whole dataset; a real stream
  would have to keep a copy of each sample once the past data are gone. Each sample
  costs the bytes of its input tensor and its label tensor as the dataset returns them
  (a uint8 8x8 digit with an int64 label: 64 + 8 bytes).
- ``EWCPlugin`` [``ewc/importances``, ``ewc/anchors``]: the Fisher importances and the
  saved parameter copies.
- ``SynapticIntelligencePlugin`` [``si/ewc_data``, ``si/syn_data``]: anchors,
  importances and path-integral tensors.
- ``LwFPlugin`` [``lwf/previous_model``]: the frozen copy of the previous model.
- plugins of this library (:class:`~strategies.memo_avalanche.MEMOPlugin`) [``<name>/<item>``]:
  their ``memory_items()``, measured live; an ``ExemplarStore`` among them is shrunk on excess.
- iCaRL's plugin [``icarl/exemplars``]: the exemplar tensors, their herding order, the
  class means, and the labels at 8 bytes each (int64; Avalanche keeps them as Python ints).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.training.plugins import EWCPlugin, LwFPlugin, SynapticIntelligencePlugin
from avalanche.training.storage_policy import ExemplarsBuffer
from avalanche.training.supervised.icarl import _ICaRLPlugin
from avalanche.training.utils import ParamData
from torch.utils.data import DataLoader

from continual.accountant import BudgetExceededError, Ledger, MemoryAccountant
from continual.exemplars import ExemplarStore
from continual.measure import Live, Reservation, nbytes

__all__ = ["CopiedSamples", "LedgerMetric", "MemoryBudgetPlugin", "dataset_arrays"]

_ON_EXCEED = ("shrink_buffer", "raise")


class CopiedSamples:
    """The samples held by an Avalanche storage policy, charged as if copied.

    Parameters
    ----------
    policy
        An ``ExemplarsBuffer`` (its ``buffer`` dataset is read at measuring time).

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from continual import nbytes
    >>> from continual.avalanche import CopiedSamples
    >>> class Policy:  # any object with a ``buffer`` dataset
    ...     buffer = TensorDataset(torch.zeros(10, 8, 8, dtype=torch.uint8), torch.arange(10))
    >>> nbytes(CopiedSamples(Policy()))  # 10 x (64 + 8)
    720
    """

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def __len__(self) -> int:
        return len(self.policy.buffer)

    def sample_nbytes(self) -> int | None:
        """Bytes of the first held sample (None when empty)."""
        return _sample_nbytes(self.policy.buffer[0]) if len(self) else None

    def __nbytes__(self) -> int:
        return sum(_sample_nbytes(sample) for sample in self.policy.buffer)


def _sample_nbytes(sample: Any) -> int:
    """Input plus label bytes of one ``(x, y, ...)`` sample, as if copied."""
    return sum(_copied_nbytes(part) for part in tuple(sample)[:2])


def _copied_nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, int):
        return 8  # an int64 label
    tensor = torch.as_tensor(value)
    return tensor.numel() * tensor.element_size()


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, ParamData):
        return obj.data
    if isinstance(obj, dict):
        return [_unwrap(value) for value in obj.values()]
    if isinstance(obj, (list, tuple)):
        return [_unwrap(value) for value in obj]
    return obj


class _ICaRLMemory:
    """iCaRL's exemplars, herding order and class means, with labels at 8 bytes each."""

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    def memory_items(self) -> dict[str, Any]:
        plugin = self.plugin
        return {
            "x": list(plugin.x_memory),
            "order": list(plugin.order),
            "class_means": _unwrap(plugin.class_means),
            "labels": Reservation(8 * sum(len(labels) for labels in plugin.y_memory)),
        }


def _plugin_items(plugin: Any) -> list[tuple[str, Any]]:
    """The named stores of one Avalanche plugin (empty for plugins that store nothing)."""
    if callable(getattr(plugin, "memory_items", None)):  # this library's plugin protocol
        return [
            (f"{plugin.name}/{key}", Live(functools.partial(_item, plugin, key)))
            for key in plugin.memory_items()
        ]
    if isinstance(getattr(plugin, "storage_policy", None), ExemplarsBuffer):
        return [(f"{_plugin_name(plugin)}/buffer", CopiedSamples(plugin.storage_policy))]
    if isinstance(plugin, EWCPlugin):
        return [
            ("ewc/importances", Live(lambda: _unwrap(plugin.importances))),
            ("ewc/anchors", Live(lambda: _unwrap(plugin.saved_params))),
        ]
    if isinstance(plugin, SynapticIntelligencePlugin):
        return [
            ("si/ewc_data", Live(lambda: _unwrap(plugin.ewc_data))),
            ("si/syn_data", Live(lambda: _unwrap(plugin.syn_data))),
        ]
    if isinstance(plugin, LwFPlugin):
        return [("lwf/previous_model", Live(lambda: plugin.lwf.prev_model))]
    if isinstance(plugin, _ICaRLPlugin):
        return [("icarl/exemplars", _ICaRLMemory(plugin))]
    return []


def _item(plugin: Any, key: str) -> Any:
    return plugin.memory_items().get(key)


def _plugin_name(plugin: Any) -> str:
    name = type(plugin).__name__.strip("_").lower()
    return name.removesuffix("plugin") or name


class MemoryBudgetPlugin(SupervisedPlugin):
    """Charge an Avalanche strategy's model, optimizer and plugin stores to one byte budget.

    Works with any ``SupervisedTemplate`` strategy. Before and after each training
    experience the plugin measures, in one accountant, the model (parameters and
    buffers), the optimizer state and every store of the strategy's plugins (see the
    module docstring for what is charged per plugin, and the as-if-copied rule for
    replay buffers). After each training experience it records a snapshot and, when
    the total exceeds the budget:

    - ``on_exceed="shrink_buffer"``: resizes replay storage policies (and iCaRL's
      exemplar memory) to the largest sample count that fits, then checks again;
    - ``on_exceed="raise"``: raises :class:`~continual.accountant.BudgetExceededError`
      with the ledger.

    A model and optimizer that alone exceed the budget always raise, before training.
    To see the stores after every other plugin has updated them, the plugin moves
    itself after all other plugins (just before the evaluation plugin) when training
    starts.

    Parameters
    ----------
    budget
        Bytes (int) or a string such as ``"200 KB"``; None measures only. Ignored when
        ``accountant`` is given (its budget applies).
    accountant
        A shared accountant, for example one that also charges other components.
    on_exceed
        ``"shrink_buffer"`` or ``"raise"``.

    Attributes
    ----------
    accountant : MemoryAccountant
        The accountant in use; ``print(plugin.accountant.ledger())``.

    Examples
    --------
    >>> import torch
    >>> from avalanche.training import Naive
    >>> from continual.avalanche import MemoryBudgetPlugin
    >>> model = torch.nn.Linear(64, 10)
    >>> budget = MemoryBudgetPlugin("10 KB")
    >>> strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
    ...                  criterion=torch.nn.CrossEntropyLoss(), plugins=[budget], evaluator=None)
    >>> budget.sync(strategy).accounts
    {'model': 2600, 'optimizer': 0}
    """

    def __init__(
        self,
        budget: int | str | None = None,
        accountant: MemoryAccountant | None = None,
        on_exceed: str = "shrink_buffer",
    ) -> None:
        super().__init__()
        if on_exceed not in _ON_EXCEED:
            raise ValueError(f"on_exceed must be one of {_ON_EXCEED}, got {on_exceed!r}")
        if accountant is not None and not isinstance(accountant, MemoryAccountant):
            raise TypeError(
                f"accountant must be a MemoryAccountant or None, got {type(accountant).__name__} "
                f"{accountant!r}"
            )
        self.budget = budget
        self.on_exceed = on_exceed
        self.accountant = MemoryAccountant(budget) if accountant is None else accountant
        self._tracked: list[tuple[str, int]] = []

    # ------------------------------------------------------------------ callbacks
    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        if getattr(strategy, "optimizer", None) is None:
            raise ValueError(
                f"strategy.optimizer must be a torch optimizer, got None for "
                f"{type(strategy).__name__}: MemoryBudgetPlugin charges the optimizer state"
            )
        _move_before_evaluator(strategy, self)

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        ledger = self.sync(strategy)
        core = ("model", "optimizer")
        alone = Ledger(
            {name: ledger.accounts[name] for name in core},
            ledger.budget,
            devices={name: ledger.account_devices(name) for name in core},
        )
        if alone.headroom < 0:  # per device, with a budget per device
            raise BudgetExceededError(ledger, "the model and optimizer alone exceed the budget")
        self._enforce(strategy, f"before training experience {_experience(strategy)}")

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.sync(strategy)
        self._enforce(strategy, f"after training experience {_experience(strategy)}")
        self.accountant.snapshot(_experience(strategy))

    # ------------------------------------------------------------------ accounting
    def sync(self, strategy: Any) -> Ledger:
        """Track the strategy's model, optimizer and plugin stores; return the ledger."""
        items = [("model", strategy.model), ("optimizer", strategy.optimizer)]
        for plugin in strategy.plugins:
            if plugin is not self:
                items += _plugin_items(plugin)
        if [(name, id(obj)) for name, obj in items] != self._tracked:
            for name, _ in self._tracked:
                self.accountant.untrack(name)
            for name, obj in items:
                self.accountant.track(name, obj)
            self._tracked = [(name, id(obj)) for name, obj in items]
        return self.accountant.ledger()

    def _enforce(self, strategy: Any, context: str) -> None:
        ledger = self.accountant.ledger()
        if ledger.headroom >= 0:
            return
        if self.on_exceed == "raise":
            raise BudgetExceededError(ledger, context)
        for plugin in strategy.plugins:
            if ledger.headroom >= 0:
                break
            _shrink(plugin, strategy, ledger.headroom)
            ledger = self.accountant.ledger()
        ledger.check(context)


def _shrink(plugin: Any, strategy: Any, headroom: int | float) -> None:
    """Resize one plugin's store so that it gives back ``-headroom`` bytes, if it has one."""
    store = getattr(plugin, "store", None)
    if isinstance(store, ExemplarStore):
        store.shrink(max(0, int(nbytes(store) + headroom)))
    elif isinstance(getattr(plugin, "storage_policy", None), ExemplarsBuffer):
        samples = CopiedSamples(plugin.storage_policy)
        if len(samples):
            size = _fitting_count(samples.__nbytes__(), headroom, samples.sample_nbytes())
            _resize_policy(plugin.storage_policy, strategy, size)
    elif isinstance(plugin, _ICaRLPlugin) and plugin.x_memory:
        per_sample = _icarl_sample_nbytes(plugin)
        held = sum(len(x) for x in plugin.x_memory) * per_sample
        _resize_icarl(plugin, strategy, _fitting_count(held, headroom, per_sample))


def _fitting_count(held: int, headroom: int | float, per_sample: int) -> int:
    return max(0, int(held + headroom) // per_sample)


def _resize_policy(policy: Any, strategy: Any, size: int) -> None:
    try:
        policy.resize(strategy, size)
    except NotImplementedError as error:
        raise ValueError(
            f"storage policy {type(policy).__name__} cannot be resized, so it cannot be shrunk "
            f"to fit the budget; use on_exceed='raise' or a resizable policy"
        ) from error


def _icarl_sample_nbytes(plugin: Any) -> int:
    """Bytes of one iCaRL exemplar: its input, its herding order entry and an int64 label."""
    x, order = plugin.x_memory[0], plugin.order[0]
    return x[0].numel() * x.element_size() + order.element_size() + 8


def _resize_icarl(plugin: Any, strategy: Any, size: int) -> None:
    """Keep the first ``size // n_classes`` exemplars of each class in herding order."""
    per_class = size // max(1, len(plugin.x_memory))
    plugin.memory_size = per_class * len(plugin.observed_classes)
    for i, order in enumerate(plugin.order):
        keep = torch.where(order < per_class + 1)[0]
        plugin.x_memory[i] = plugin.x_memory[i][keep]
        plugin.y_memory[i] = plugin.y_memory[i][: len(keep)]
        plugin.order[i] = order[keep]
    plugin.compute_class_means(strategy)


def _experience(strategy: Any) -> int:
    return int(strategy.clock.train_exp_counter)


def _move_before_evaluator(strategy: Any, plugin: MemoryBudgetPlugin) -> None:
    plugins = strategy.plugins
    plugins.remove(plugin)
    evaluator = getattr(strategy, "evaluator", None)
    index = next((i for i, p in enumerate(plugins) if p is evaluator), len(plugins))
    plugins.insert(index, plugin)


class LedgerMetric(PluginMetric[dict]):
    """Report the bytes of every ledger account after each training experience.

    Add it to an ``EvaluationPlugin`` and any Avalanche logger (TensorBoard, text,
    interactive) receives ``Memory/<account>`` scalars in bytes, plus ``Memory/total``,
    once per training experience.

    Parameters
    ----------
    plugin
        The :class:`MemoryBudgetPlugin` whose accountant is reported.

    Examples
    --------
    >>> from continual.avalanche import LedgerMetric, MemoryBudgetPlugin
    >>> metric = LedgerMetric(MemoryBudgetPlugin("1 MB"))
    >>> metric.result()
    {}
    """

    def __init__(self, plugin: MemoryBudgetPlugin) -> None:
        super().__init__()
        self.plugin = plugin
        self._last: dict[str, int] = {}

    def result(self) -> dict[str, int]:
        return dict(self._last)

    def reset(self) -> None:
        self._last = {}

    def after_training_exp(self, strategy: Any) -> list[MetricValue]:
        ledger = self.plugin.accountant.ledger()
        self._last = {**ledger.accounts, "total": ledger.total}
        step = strategy.clock.train_iterations
        return [
            MetricValue(self, f"Memory/{name}", value, step) for name, value in self._last.items()
        ]

    def __str__(self) -> str:
        return "Memory"


def dataset_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (in the dtype the dataset returns) and labels of a dataset, in order.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from continual.avalanche import dataset_arrays
    >>> x, y = dataset_arrays(TensorDataset(torch.zeros(3, 2, dtype=torch.uint8), torch.arange(3)))
    >>> x.dtype, y.tolist()
    (dtype('uint8'), [0, 1, 2])
    """
    xs, ys = [], []
    for batch in DataLoader(dataset, batch_size=1024, shuffle=False):
        xs.append(batch[0].numpy())
        ys.append(batch[1].numpy())
    return np.concatenate(xs), np.concatenate(ys)
