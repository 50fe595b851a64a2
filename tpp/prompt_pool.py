"""The continuous-time retrieval prompt pool of PromptTPP, for one attention layer."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PromptPool"]


class PromptPool(nn.Module):
    """Separate key and value prompt pools per head, retrieved by a causal cosine query.

    Every attention head has two pools, one for the attention keys and one for the attention
    values. A pool holds ``n_prompts`` prompts; each has a retrieval key (size ``d_token``, the
    size of a layer input) and ``prompt_length`` tokens of size ``d_type``. A prompt token is
    completed with the time embedding of the history's mean observed gap, so it lives in the
    same (type ⊕ time) space as an event token; it then goes through the layer's key or value
    projection and is prepended to the attention keys or values (prefix tuning). The ``r``-th
    prompt retrieved from the key pool pairs with the ``r``-th one retrieved from the value pool.

    Retrieval is per position and leak-free: the query of position ``i`` is the running mean of
    the layer input over events ``0..i``, and each pool returns its ``top_n`` prompts of highest
    cosine similarity. The matching score of a position is the sum of the cosines of every
    selected key (all pools of the layer); the training loss subtracts ``match_weight`` times
    its mean over positions, and the reported log-likelihood never includes it.

    Stored: ``keys`` (2, H, M, d_token), ``key_prompts`` and ``value_prompts``
    (H, M, Lp, d_type), all float32 parameters, charged to the ``prompts`` account by
    :class:`tpp.PromptTPP`. With the reference defaults (d_type 32, d_token 32 + 16 time, 2
    heads, M=10, Lp=5) that is 8,320 floats per layer.

    Parameters
    ----------
    d_token, d_type
        Size of a layer input (the query), and of a prompt token's type part.
    n_heads
        Attention heads.
    n_prompts, prompt_length, top_n
        ``M``, ``Lp`` and the number ``N`` of prompts retrieved from each pool.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> pool = PromptPool(8, 4, n_heads=2, n_prompts=6, prompt_length=3, top_n=2)
    >>> key_index, value_index, matching = pool.select(torch.randn(1, 5, 8))
    >>> key_index.shape, value_index.shape, matching.shape  # (B, H, L, N)
    (torch.Size([1, 2, 5, 2]), torch.Size([1, 2, 5, 2]), torch.Size([1, 5]))
    >>> sum(p.numel() for p in pool.parameters())  # 2 * 2 * 6 * 8 + 2 * (2 * 6 * 3 * 4)
    480

    References
    ----------
    .. [1] Xue, S. et al. (2023). Prompt-augmented Temporal Point Process for Streaming Event
       Sequence. NeurIPS.
    """

    def __init__(
        self,
        d_token: int,
        d_type: int,
        *,
        n_heads: int,
        n_prompts: int = 10,
        prompt_length: int = 5,
        top_n: int = 5,
    ) -> None:
        super().__init__()
        if not 1 <= top_n <= n_prompts:
            raise ValueError(f"top_n must be in [1, n_prompts={n_prompts}], got {top_n}")
        self.top_n = top_n
        self.prompt_length = prompt_length
        self.keys = nn.Parameter(torch.empty(2, n_heads, n_prompts, d_token))
        shape = (n_heads, n_prompts, prompt_length, d_type)
        self.key_prompts = nn.Parameter(torch.empty(shape))
        self.value_prompts = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keys and prompt tokens drawn uniformly from [-1, 1]."""
        with torch.no_grad():
            for parameter in (self.keys, self.key_prompts, self.value_prompts):
                parameter.uniform_(-1.0, 1.0)

    def select(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-N prompt indices of the key and of the value pools, each (B, H, L, N), and the
        matching score (B, L), for queries (B, L, d_token)."""
        cosine = nn.functional.cosine_similarity(
            query.detach()[:, None, None, :, None, :], self.keys[None, :, :, None], dim=-1
        )  # (B, 2, H, L, M)
        top = cosine.topk(self.top_n, dim=-1)
        return top.indices[:, 0], top.indices[:, 1], top.values.sum(dim=(1, 2, 4))
