"""Replay: rehearsal from an exemplar store that fills the budget's headroom."""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import torch

from continual.devices import resolve_device
from continual.distributed import local_part
from continual.exemplars import POLICIES, ExemplarStore
from continual.learner import Learner
from continual.plugin import Plugin
from continual.samples import LazySamples
from continual.state import load_rng_state, rng_state
from continual.validation import COUNT, StrOptions, check_params, merged_constraints

__all__ = ["Replay", "experience_arrays"]


def experience_arrays(payload: tuple[Any, Any]) -> tuple[np.ndarray | LazySamples, np.ndarray]:
    """An ``(X, y)`` training payload as arrays; the rows of a torch ``Dataset``
    (:class:`~continual.samples.LazySamples`) stay unread.

    Examples
    --------
    >>> from strategies.replay import experience_arrays
    >>> experience_arrays(([[1, 2]], [0]))
    (array([[1, 2]]), array([0]))
    """
    x, y = payload
    return (x if isinstance(x, LazySamples) else np.asarray(x)), np.asarray(y)


class Replay(Plugin):
    """Rehearse stored exemplars alongside every training batch.

    After each experience the store is refilled from the samples of that
    experience and the current contents. Its capacity is whatever the shared
    accountant's headroom allows at that moment (plus what the store already
    holds), so the model, the optimizer state and the exemplars together never
    exceed the budget. Without a budget the store keeps every sample.

    Under data-parallel training each rank fills its store from its shard of the experience
    (rows ``rank::world_size``) with the capacity every rank agrees on
    (:meth:`~continual.Learner.room_for`): the global store is the union of the shards.

    What it stores: one :class:`~continual.exemplars.ExemplarStore` (account
    ``replay/exemplars``), samples in their native dtype (a uint8 8x8 digit
    costs 64 bytes) plus one compact label each.

    Parameters
    ----------
    policy
        Which samples to keep: ``"reservoir"``, ``"random"``,
        ``"class_balanced"`` or ``"herding"`` (uses ``model.features``).
    replay_batch_size
        Stored samples added to each batch (an int >= 1); defaults to the learner's batch
        size.
    seed
        Seed of the selection and of the replayed batches.
    store_device
        Where the exemplars live: ``"cpu"`` (the default) or the model's device, such as
        ``"cuda"`` (then replayed batches need no copy).

    Raises
    ------
    InvalidParameterError
        For a parameter outside what is described above (a ``ValueError`` naming it), when
        the plugin is made; subclasses' parameters too (:meth:`_check_params`).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from continual import Learner, MemoryAccountant
    >>> from streams import class_incremental
    >>> from strategies import Replay
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 255, size=(120, 8), dtype=np.uint8)
    >>> y = np.repeat(np.arange(4), 30)
    >>> stream = class_incremental(X, y, n_experiences=2, test=(X, y), seed=0)
    >>> replay = Replay(seed=0)
    >>> learner = Learner(torch.nn.Linear(8, 4), plugins=[replay],
    ...                   accountant=MemoryAccountant(1000), input_scale=1 / 255)
    >>> _ = learner.run(stream)
    >>> ledger = learner.accountant.ledger()
    >>> ledger.accounts["replay/exemplars"], len(replay.store), ledger.total <= 1000
    (711, 79, True)
    >>> try:
    ...     Replay(policy="fifo")
    ... except ValueError as error:
    ...     print(error)
    The 'policy' parameter of Replay must be a str among {...}. Got 'fifo' instead.
    """

    #: Constraints of the parameters (see :mod:`continual.validation`); subclasses add theirs.
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "policy": [StrOptions(set(POLICIES))],
        "replay_batch_size": [COUNT, None],
        "seed": [Integral],
        "store_device": [str, torch.device],  # resolve_device checks the name
    }

    def __init__(
        self,
        policy: str = "class_balanced",
        replay_batch_size: int | None = None,
        seed: int = 0,
        store_device: str = "cpu",
    ) -> None:
        self.policy = policy
        self.replay_batch_size = replay_batch_size
        self.seed = seed
        self.store_device = store_device
        self._check_params()
        self._reset()

    def _check_params(self) -> None:
        """Check every declared parameter (this class's and its subclasses', which set theirs
        before calling ``Replay.__init__``)."""
        constraints = merged_constraints(type(self))
        params = {name: getattr(self, name) for name in constraints}
        check_params(constraints, params, type(self).__name__)

    def _reset(self) -> None:
        device = resolve_device(self.store_device)
        self.store = ExemplarStore(policy=self.policy, random_state=self.seed, device=device)
        self._generator = torch.Generator().manual_seed(self.seed)

    def memory_items(self) -> dict[str, Any]:
        return {"exemplars": self.store}

    def state_dict(self) -> dict[str, Any]:
        return {"store": self.store.state_dict(), "generator": rng_state(self._generator)}

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        self.store.load_state_dict(state["store"])
        load_rng_state(self._generator, state["generator"])

    def before_batch(self, learner: Learner) -> None:
        if not len(self.store):
            return
        x, y = learner.batch
        n = min(self.replay_batch_size or learner.batch_size, len(self.store))
        old_x, old_y = self.store.sample(n, self._generator)
        learner.batch = (
            torch.cat([x, old_x.to(x.device, x.dtype)]),
            torch.cat([y, old_y.to(y.device, y.dtype)]),
        )

    def after_experience(self, learner: Learner) -> None:
        x, y = experience_arrays(local_part(learner.experience.train))
        feature_fn = learner.features if self.policy == "herding" else None
        capacity = learner.room_for(self.store)
        self.store.update(x, y, capacity_bytes=capacity, feature_fn=feature_fn)
