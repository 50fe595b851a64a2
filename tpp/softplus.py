"""The intensity head shared by the neural models: a linear map and a per-type scaled softplus."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["IntensityHead"]


class IntensityHead(nn.Module):
    """``lambda_k = s_k * log(1 + exp(w_k . h / s_k))`` with a learnable scale ``s_k > 0`` per type.

    Parameters
    ----------
    hidden_size
        Size of the hidden state ``h``.
    n_types
        Number of event types ``K``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> head = IntensityHead(4, 3)
    >>> head(torch.zeros(2, 4)).shape, sum(p.numel() for p in head.parameters())
    (torch.Size([2, 3]), 18)
    """

    def __init__(self, hidden_size: int, n_types: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, n_types)
        self.log_scale = nn.Parameter(torch.zeros(n_types))

    def reset_parameters(self) -> None:
        """Scales back to 1 (the linear map resets itself)."""
        with torch.no_grad():
            self.log_scale.zero_()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        scale = self.log_scale.exp()
        return scale * nn.functional.softplus(self.linear(hidden) / scale)
