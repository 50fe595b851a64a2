"""Mini-batch training of a neural TPP on padded batches (no Python loop over events)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from continual.progress import progress
from tpp.data import EventArrays, make_batch
from tpp.likelihood import sequence_log_likelihood

__all__ = ["train_epochs"]


def train_epochs(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: EventArrays,
    *,
    epochs: int,
    batch_size: int,
    time_scale: float = 1.0,
    n_points: int = 20,
    rng: np.random.Generator,
    penalty: Callable[[], torch.Tensor] | None = None,
    match_weight: float = 0.0,
    alternate: Callable[[str], bool] | None = None,
    verbose: int = 0,
) -> list[float]:
    """Train ``model`` for ``epochs`` passes and return the mean training loss of each epoch.

    The loss of a batch is ``-(sum of sequence log-likelihoods) / (scored events)``, plus
    ``penalty()`` when given (EWC), minus ``match_weight`` times the prompt matching score.
    ``alternate``, when given, is called with each parameter name and returns whether that
    parameter is a prompt; prompts then learn on odd batches and the backbone on even ones.

    Examples
    --------
    >>> from tpp.nhp import NHP
    >>> _ = torch.manual_seed(0)
    >>> data = EventArrays(np.arange(20.0), np.arange(20) % 2, np.array([0, 10, 20]), 2)
    >>> model = NHP(2, 8)
    >>> losses = train_epochs(model, torch.optim.Adam(model.parameters(), 1e-2), data,
    ...                       epochs=3, batch_size=2, rng=np.random.default_rng(0))
    >>> losses[-1] < losses[0]
    True
    """
    model.train()
    names = [name for name, _ in model.named_parameters()]
    is_prompt = [alternate(name) for name in names] if alternate is not None else None
    history, step = [], 0
    for _ in progress(range(epochs), verbose=verbose, desc="epochs"):
        order = rng.permutation(len(data))
        losses = []
        for start in range(0, len(order), batch_size):
            batch = make_batch(data, order[start : start + batch_size], time_scale)
            n_events = batch.n_events
            if n_events == 0:
                continue
            log_likelihood, matching = sequence_log_likelihood(model, batch, n_points)
            loss = -log_likelihood.sum() / n_events - match_weight * matching
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if is_prompt is not None:
                prompts_turn = step % 2 == 1
                for flag, (_, parameter) in zip(is_prompt, model.named_parameters()):
                    if flag != prompts_turn:
                        parameter.grad = None
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
        history.append(float(np.mean(losses)) if losses else float("nan"))
    return history
