"""The strategy plugin protocol: lifecycle hooks plus the items a plugin stores."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from continual.measure import Live

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from continual.accountant import MemoryAccountant
    from continual.learner import Learner

__all__ = ["HOOKS", "Plugin", "load_plugin_states", "sync_accounts"]

HOOKS = (
    "before_experience",
    "before_batch",
    "before_backward",
    "after_backward",
    "after_batch",
    "after_experience",
    "before_eval",
    "after_eval",
)


class Plugin:
    """Base class of strategy plugins; every hook is a no-op until overridden.

    A plugin changes what a :class:`~continual.learner.Learner` does at named
    moments of training, like an Avalanche plugin (the names follow
    Avalanche's callbacks, without the ``_training_exp`` suffixes). Each hook
    receives the learner, whose public attributes (``model``, ``optimizer``,
    ``experience``, ``train_data``, ``batch``, ``output``, ``loss``,
    ``accountant``, ``stop_training``) it may read and replace.

    Whatever a plugin keeps between experiences must be returned by
    :meth:`memory_items`: the learner charges those items to the shared
    accountant under ``"<name>/<item>"`` accounts. A plugin sizes its stores
    from ``learner.accountant.headroom()``; it never holds a private budget.

    Whatever a plugin keeps must also be in its :meth:`state_dict`, so that a
    checkpoint or a rollback restores it (see :mod:`continual.state`).

    Attributes
    ----------
    name : str
        Prefix of the plugin's ledger accounts (defaults to the lower-cased
        class name).

    Examples
    --------
    >>> import torch
    >>> from continual.plugin import Plugin
    >>> class CountBatches(Plugin):
    ...     def __init__(self):
    ...         self.seen = torch.zeros(1, dtype=torch.int64)
    ...     def after_batch(self, learner):
    ...         self.seen += 1
    ...     def memory_items(self):
    ...         return {"counter": self.seen}
    >>> plugin = CountBatches()
    >>> plugin.name
    'countbatches'
    >>> plugin.memory_items()["counter"].nbytes
    8
    """

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def memory_items(self) -> dict[str, Any]:
        """Named objects this plugin stores (charged to the budget).

        Return the same keys every time, with None for an item that does not
        exist yet: each key is an account measured live, so an object replaced
        under a key is charged at once, while a new key is registered only
        after the current hook.
        """
        return {}

    def planned_bytes(self, model: nn.Module) -> dict[str, int]:
        """Bytes of what the plugin will store, by item, that its model's shapes fix.

        Estimators add them to the plan checked before anything is allocated (``model`` may
        live on the meta device). Stores sized from the headroom need no plan.
        """
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What the plugin keeps, as a state of tensors, arrays and JSON values.

        Tensors are returned by reference; declare with :func:`continual.state.read_only`
        those that are replaced rather than modified, so that rollbacks do not copy them.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        """Restore what :meth:`state_dict` returned, before the learner loads its model.

        A plugin that changes the model's structure (adds blocks, heads) rebuilds it here on
        ``learner.model``, so that the learner can then load the weights.
        """

    def before_experience(self, learner: Learner) -> None:
        """Called before training on ``learner.experience`` (grow the model, or replace
        ``learner.train_data``, here)."""

    def before_batch(self, learner: Learner) -> None:
        """Called with ``learner.batch`` set; may replace it (add replayed samples)."""

    def before_backward(self, learner: Learner) -> None:
        """Called with ``learner.output`` and ``learner.loss``; may add loss terms."""

    def after_backward(self, learner: Learner) -> None:
        """Called with the gradients computed, before the optimizer step (may edit them)."""

    def after_batch(self, learner: Learner) -> None:
        """Called after the optimizer step; may set ``learner.stop_training`` (also from
        ``before_experience``, which then trains nothing)."""

    def after_experience(self, learner: Learner) -> None:
        """Called after training on an experience (update stores here)."""

    def before_eval(self, learner: Learner) -> None:
        """Called before an evaluation pass."""

    def after_eval(self, learner: Learner) -> None:
        """Called after an evaluation pass."""


def sync_accounts(
    accountant: MemoryAccountant,
    own: Mapping[str, Callable[[], Any]],
    plugins: Sequence[Plugin],
    tracked: Sequence[str],
) -> list[str]:
    """Track a loop's own accounts and every plugin item as live views; return the names.

    ``own`` maps account names to getters of what they charge (the model, the optimizer). A
    plugin's item ``key`` is charged to ``"<plugin name>/<key>"``. Nothing is done when the
    names equal ``tracked`` (the names the last call returned); otherwise those are untracked
    and every account is tracked again. Each account is a :class:`~continual.measure.Live`
    view, so an object replaced under a name is charged at once.

    Examples
    --------
    >>> import torch
    >>> from continual import MemoryAccountant
    >>> from continual.plugin import Plugin, sync_accounts
    >>> class Keeps(Plugin):
    ...     def memory_items(self):
    ...         return {"kept": torch.zeros(4)}
    >>> accountant = MemoryAccountant()
    >>> model = torch.nn.Linear(2, 1)
    >>> sync_accounts(accountant, {"model": lambda: model}, [Keeps()], [])
    ['model', 'keeps/kept']
    >>> accountant.ledger().accounts
    {'model': 12, 'keeps/kept': 16}
    """
    names = list(own) + [f"{p.name}/{key}" for p in plugins for key in p.memory_items()]
    if names == list(tracked):
        return names
    for name in tracked:
        accountant.untrack(name)
    for name, getter in own.items():
        accountant.track(name, Live(getter))
    for plugin in plugins:
        for key in plugin.memory_items():
            getter = functools.partial(_plugin_item, plugin, key)
            accountant.track(f"{plugin.name}/{key}", Live(getter))
    return names


def load_plugin_states(plugins: Sequence[Plugin], states: Sequence[Any], host: Any) -> None:
    """Restore each plugin's state (``host`` is the loop the plugins receive in their hooks)."""
    if len(states) != len(plugins):
        raise ValueError(f"the state holds {len(states)} plugin states for {len(plugins)} plugins")
    for plugin, state in zip(plugins, states):
        plugin.load_state_dict(state, host)


def _plugin_item(plugin: Plugin, key: str) -> Any:
    return plugin.memory_items().get(key)
