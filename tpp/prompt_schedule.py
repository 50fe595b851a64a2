"""What learns when in PromptTPP: prompts and backbone on alternate batches, or a backbone
frozen after the first experience."""

from __future__ import annotations

from typing import Any

from continual.learner import Learner
from continual.plugin import Plugin

__all__ = ["AlternateUpdates", "FreezeBackbone"]


class AlternateUpdates(Plugin):
    """Update the prompts and the backbone on alternate batches (asynchronous optimisation).

    In every experience, the first batch updates the backbone, the second the prompts, and so
    on: after the backward pass the gradients of the other group are dropped, so that one
    optimizer steps only the group whose turn it is (Adam leaves a parameter without a
    gradient untouched). Prompts are the parameters whose name starts with ``prefix``.

    Stored: nothing.

    Parameters
    ----------
    prefix
        Name prefix of the prompt parameters.

    Examples
    --------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> model = torch.nn.ModuleDict({"prompt_pools": torch.nn.Linear(1, 1),
    ...                              "head": torch.nn.Linear(1, 1)})
    >>> learner = SimpleNamespace(model=model)
    >>> plugin = AlternateUpdates()
    >>> plugin.before_experience(learner)
    >>> turns = []
    >>> for _ in range(2):
    ...     for p in model.parameters():
    ...         p.grad = torch.ones_like(p)
    ...     plugin.after_backward(learner)
    ...     turns.append([name for name, p in model.named_parameters() if p.grad is not None])
    >>> turns
    [['head.weight', 'head.bias'], ['prompt_pools.weight', 'prompt_pools.bias']]
    """

    def __init__(self, prefix: str = "prompt_pools") -> None:
        self.prefix = prefix
        self._step = 0

    def before_experience(self, learner: Learner) -> None:
        self._step = 0

    def after_backward(self, learner: Learner) -> None:
        prompts_turn = self._step % 2 == 1
        for name, parameter in learner.model.named_parameters():
            if name.startswith(self.prefix) != prompts_turn:
                parameter.grad = None
        self._step += 1


class FreezeBackbone(Plugin):
    """Train the backbone on the first experience only; afterwards only the prompts learn.

    Before every experience but the first, every parameter whose name does not start with
    ``prefix`` stops requiring gradients and its optimizer state (Adam's moments) is freed, so
    that it is no longer charged to the ``optimizer`` account.

    Stored: nothing (the frozen flag is in its state, so that a restored model is frozen too).

    Parameters
    ----------
    prefix
        Name prefix of the parameters that keep learning (the prompts).

    Examples
    --------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> model = torch.nn.ModuleDict({"prompt_pools": torch.nn.Linear(1, 1),
    ...                              "head": torch.nn.Linear(1, 1)})
    >>> learner = SimpleNamespace(model=model, optimizer=None, n_trained=1)
    >>> FreezeBackbone().before_experience(learner)
    >>> [name for name, p in model.named_parameters() if p.requires_grad]
    ['prompt_pools.weight', 'prompt_pools.bias']
    """

    def __init__(self, prefix: str = "prompt_pools") -> None:
        self.prefix = prefix
        self.frozen = False

    def before_experience(self, learner: Learner) -> None:
        if learner.n_trained > 0:
            self._freeze(learner)

    def _freeze(self, learner: Learner) -> None:
        for name, parameter in learner.model.named_parameters():
            if not name.startswith(self.prefix):
                parameter.requires_grad_(False)
                if learner.optimizer is not None:
                    learner.optimizer.state.pop(parameter, None)
        self.frozen = True

    def state_dict(self) -> dict[str, Any]:
        return {"frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any], learner: Learner) -> None:
        if state["frozen"]:
            self._freeze(learner)
