"""Scores of a neural TPP: log-likelihood per event, next-type accuracy and next-time RMSE."""

from __future__ import annotations

import numpy as np
import torch

from continual.devices import module_device, move_to
from streams.events import EventSequences
from tpp.batches import EventBatch, ordered_batches
from tpp.likelihood import sequence_log_likelihood
from tpp.thinning import thinning_samples

__all__ = ["event_scores", "log_likelihood_per_event", "predict_next"]


@torch.no_grad()
def log_likelihood_per_event(
    model: torch.nn.Module,
    data: EventSequences,
    *,
    time_scale: float = 1.0,
    n_points: int = 20,
    batch_size: int = 64,
) -> float:
    """Total log-likelihood over scored events (each sequence's first event is conditioned on).

    Times are divided by ``time_scale``, so the value is in nats per event in those units. The
    prompt matching term is never included. Batches are built on the CPU and moved to the
    model's device; the sum stays there (float64) until the end: one synchronisation per call.
    """
    model.eval()
    device = module_device(model)
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for batch in ordered_batches(data, batch_size, time_scale=time_scale):
        count += batch.n_events  # on the CPU batch: no synchronisation
        log_likelihood = sequence_log_likelihood(model, move_to(batch, device), n_points)[0]
        total = total + log_likelihood.sum().double()
    if count == 0:
        raise ValueError("sequences must hold at least one sequence with two or more events")
    return float(total) / count


@torch.no_grad()
def predict_next(
    model: torch.nn.Module,
    batch: EventBatch,
    horizon: float,
    *,
    n_draws: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted offset (mean of thinning draws) and type (argmax intensity) after every event.

    ``batch`` is on the model's device, and ``generator`` too (see
    :func:`~tpp.thinning.thinning_samples`).
    """
    P = batch.types.shape[1]
    horizons = torch.full((batch.types.shape[0], P), float(horizon), device=batch.types.device)

    def intensity(offsets: torch.Tensor) -> torch.Tensor:
        return model(batch, offsets)[0]

    draws = thinning_samples(
        intensity, horizons, n_draws=n_draws, n_proposals=16, n_bound_points=8, generator=generator
    )
    offset = draws.mean(dim=-1)
    types = intensity(offset[..., None])[:, :, 0].argmax(dim=-1)
    return offset, types


@torch.no_grad()
def event_scores(
    model: torch.nn.Module,
    data: EventSequences,
    *,
    time_scale: float = 1.0,
    horizon: float,
    n_points: int = 20,
    n_draws: int = 8,
    batch_size: int = 64,
    frequent_type: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Log-likelihood per event, next-type accuracy and error, next-time RMSE, and the baseline.

    Every event but each sequence's first is predicted from its history: the time is the mean of
    ``n_draws`` thinning draws on ``[0, horizon]`` (in scaled units), the type the argmax of the
    intensity at that time. RMSE is in the original time units. ``most_frequent_accuracy`` is
    the accuracy of always answering ``frequent_type`` (the most frequent type of these
    sequences when None). The draws use a generator seeded with ``seed``, on the model's
    device: the scores are deterministic on a given device. Sums stay on the device until the
    end of the call.
    """
    model.eval()
    device = module_device(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    hits = torch.zeros((), dtype=torch.int64, device=device)
    squared = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for batch in ordered_batches(data, batch_size, time_scale=time_scale):
        count += batch.n_events  # on the CPU batch: no synchronisation
        batch = move_to(batch, device)
        offset, types = predict_next(model, batch, horizon, n_draws=n_draws, generator=generator)
        mask = batch.mask[:, 1:]
        hits = hits + ((types[:, :-1] == batch.types[:, 1:]) & mask).sum()
        error = (offset[:, :-1] - batch.gaps[:, 1:]) * time_scale
        squared = squared + (error**2 * mask).sum().double()
    if count == 0:
        raise ValueError("sequences must hold at least one sequence with two or more events")
    hits, squared = int(hits), float(squared)
    first = np.zeros(data.n_events, dtype=bool)
    first[data.offsets[:-1]] = True
    scored = data.types[~first].astype(np.int64)
    if frequent_type is None:
        frequent_type = int(np.bincount(scored).argmax())
    accuracy = hits / count
    return {
        "log_likelihood": log_likelihood_per_event(
            model, data, time_scale=time_scale, n_points=n_points, batch_size=batch_size
        ),
        "accuracy": accuracy,
        "error_rate": 1.0 - accuracy,
        "rmse": float(np.sqrt(squared / count)),
        "most_frequent_accuracy": float(np.mean(scored == frequent_type)),
        "n_events": count,
    }
