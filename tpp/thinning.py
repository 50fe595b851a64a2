"""Next-event prediction by Ogata thinning with accumulated exponential proposals."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["thinning_samples"]


def thinning_samples(
    intensity: Callable[[torch.Tensor], torch.Tensor],
    horizon: torch.Tensor,
    *,
    n_draws: int = 8,
    n_proposals: int = 24,
    n_bound_points: int = 16,
    bound_factor: float = 1.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw next-event times after every position by Ogata's thinning.

    For each position the intensity is bounded on ``[0, horizon]`` by ``bound_factor`` times its
    largest value on a grid of ``n_bound_points``. Proposals are the *accumulated* sums of
    exponential steps at that rate (a homogeneous Poisson process at the bound), each accepted
    with probability ``lambda(t) / bound``; a draw's sample is its first accepted proposal, or
    ``horizon`` when none is accepted before it. The predicted time is the mean of the draws.

    Parameters
    ----------
    intensity
        Maps offsets after each position, shape (B, P, N), to intensities (B, P, N, K).
    horizon
        Look-ahead of each position, shape (B, P).
    n_draws, n_proposals
        Independent draws per position, and proposals per draw.
    n_bound_points, bound_factor
        The grid and safety factor of the upper bound.
    generator
        Random generator, for reproducible draws; it must be on the device of ``horizon``
        (``torch.Generator(device=horizon.device)``: a CPU generator cannot draw CUDA
        tensors).

    Returns
    -------
    torch.Tensor
        The sampled offsets, shape (B, P, n_draws).

    Examples
    --------
    >>> rate = lambda offsets: torch.full((*offsets.shape, 1), 2.0)  # Poisson, rate 2
    >>> g = torch.Generator().manual_seed(0)
    >>> draws = thinning_samples(rate, torch.full((1, 200), 50.0), n_draws=50, generator=g)
    >>> round(draws.mean().item(), 2)  # mean of Exp(2): 0.5
    0.5
    """
    device = horizon.device
    if generator is not None and torch.device(generator.device) != device:
        raise ValueError(
            f"generator is on {generator.device}, but horizon is on {device}: pass "
            f"torch.Generator(device={str(device)!r})"
        )
    grid = torch.linspace(0.0, 1.0, n_bound_points, device=device)
    with torch.no_grad():
        peak = intensity(horizon[..., None] * grid).sum(dim=-1).amax(dim=-1)
    bound = (bound_factor * peak).clamp_min(1e-9)  # (B, P)
    shape = (*horizon.shape, n_draws, n_proposals)
    steps = torch.empty(shape, device=device).exponential_(1.0, generator=generator)
    proposals = steps.cumsum(dim=-1) / bound[..., None, None]
    flat = proposals.reshape(*horizon.shape, n_draws * n_proposals)
    with torch.no_grad():
        total = intensity(flat.clamp_max(horizon[..., None])).sum(dim=-1).reshape(shape)
    uniform = torch.rand(shape, device=device, generator=generator)
    accepted = (uniform * bound[..., None, None] <= total) & (proposals <= horizon[..., None, None])
    first = accepted.float().argmax(dim=-1, keepdim=True)
    sample = proposals.gather(-1, first).squeeze(-1)
    return torch.where(accepted.any(dim=-1), sample, horizon[..., None].expand_as(sample))
