"""The log-likelihood of a temporal point process, with a documented integral estimate.

Convention (that of EasyTPP, so that its published numbers compare): each sequence is
conditioned on its first event. For events ``t_0 < t_1 < ... < t_{n-1}`` with types ``k_i``

.. math:: \\ell = \\sum_{i=1}^{n-1} \\log \\lambda_{k_i}(t_i) - \\int_{t_0}^{t_{n-1}}
   \\sum_k \\lambda_k(t)\\,dt,

and the log-likelihood per event is the sum of ``ell`` over sequences divided by the number of
scored events, ``sum (n - 1)``. The integral is estimated inside each inter-event interval
``(t_{i-1}, t_i]`` by the midpoint rule with ``S`` points (default 20), at
``t_{i-1} + (j + 1/2) / S * (t_i - t_{i-1})``, ``j = 0..S-1``: deterministic, with an error of
order ``gap^3 / S^2`` times the curvature of the intensity.
"""

from __future__ import annotations

import numbers

import torch

__all__ = [
    "integration_fractions",
    "log_likelihood_from_intensities",
    "sequence_log_likelihood",
    "training_loss",
]


def integration_fractions(n_points: int) -> torch.Tensor:
    """Midpoint-rule positions ``(j + 1/2) / S`` inside an interval, as fractions of its length.

    Examples
    --------
    >>> integration_fractions(4).tolist()
    [0.125, 0.375, 0.625, 0.875]
    """
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or n_points < 1:
        raise ValueError(f"n_points must be a positive int, got {n_points!r}")
    return (torch.arange(int(n_points), dtype=torch.float32) + 0.5) / int(n_points)


def log_likelihood_from_intensities(
    event_intensity: torch.Tensor,
    sample_total_intensity: torch.Tensor,
    gaps: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Per-sequence log-likelihood from intensities at events and at the midpoints.

    Parameters
    ----------
    event_intensity
        ``lambda_{k_i}(t_i)`` for the scored events, shape (B, P).
    sample_total_intensity
        ``sum_k lambda_k`` at the ``S`` midpoints of each interval ending at a scored event,
        shape (B, P, S).
    gaps
        Interval lengths ``t_i - t_{i-1}``, shape (B, P).
    mask
        True where position ``i`` is a real event, shape (B, P).

    Returns
    -------
    torch.Tensor
        Shape (B,): the log-likelihood of each sequence.

    Examples
    --------
    >>> rate = torch.full((1, 3), 2.0)  # a Poisson process of rate 2
    >>> gaps = torch.tensor([[0.5, 1.0, 0.25]])
    >>> ll = log_likelihood_from_intensities(rate, rate[..., None].expand(1, 3, 5), gaps,
    ...                                      torch.ones(1, 3, dtype=torch.bool))
    >>> round(ll.item(), 4)  # 3 log 2 - 2 * 1.75
    -1.4206
    """
    log_events = torch.log(event_intensity.clamp_min(1e-12))
    integral = gaps * sample_total_intensity.mean(dim=-1)
    return ((log_events - integral) * mask).sum(dim=1)


def sequence_log_likelihood(
    model: torch.nn.Module, batch, n_points: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence log-likelihood of ``batch`` under ``model`` and the model's matching score.

    ``model(batch, offsets)`` must return the intensities ``(B, P, N, K)`` at ``t_i + offsets``
    given the events up to ``i``, and a scalar auxiliary score (the prompt matching term, 0 for
    plain models); that score is returned apart and never enters the log-likelihood.
    """
    gaps = batch.gaps[:, 1:]
    fractions = integration_fractions(n_points).to(gaps.device)
    offsets = torch.cat([gaps[..., None] * fractions, gaps[..., None]], dim=-1)
    intensity, matching = model(batch, offsets)
    types = batch.types[:, 1:].clamp_max(intensity.shape[-1] - 1)
    at_events = intensity[:, :, -1, :].gather(-1, types[..., None]).squeeze(-1)
    # over types first, then without the event point: the backward pass broadcasts a (B, P, N)
    # gradient instead of filling a (B, P, N, K) one
    total = intensity.sum(dim=-1)[:, :, :-1]
    return log_likelihood_from_intensities(at_events, total, gaps, batch.mask[:, 1:]), matching


def training_loss(
    output: tuple[torch.Tensor, torch.Tensor], n_events: int, match_weight: float = 0.0
) -> torch.Tensor:
    """The loss of a batch: minus the log-likelihood per scored event, minus ``match_weight``
    times the matching score.

    ``output`` is what :func:`sequence_log_likelihood` returns, ``n_events`` the batch's scored
    events: this is the ``loss`` of the :class:`~continual.Learner` of the TPP estimators
    (bind ``match_weight`` with ``functools.partial``).

    Examples
    --------
    >>> output = (torch.tensor([-3.0, -1.0]), torch.tensor(0.5))
    >>> round(training_loss(output, 4).item(), 3), round(training_loss(output, 4, 0.1).item(), 3)
    (1.0, 0.95)
    """
    log_likelihood, matching = output
    return -log_likelihood.sum() / n_events - match_weight * matching
