"""The strategy plugin protocol: lifecycle hooks plus the items a plugin stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from continual.learner import Learner

__all__ = ["HOOKS", "Plugin"]

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
