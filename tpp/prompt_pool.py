"""The continuous-time retrieval prompt pool of PromptTPP, for one attention layer."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PromptPool"]


class PromptPool(nn.Module):
    """Key and value prompts per head, retrieved by cosine similarity to a causal query.

    The pool holds ``n_prompts`` prompts, each with a retrieval key (``keys``, size
    ``d_model``) and, per attention head, ``prompt_length`` key tokens and ``prompt_length``
    value tokens of size ``d_type`` (separate K and V pools). A prompt token is completed with
    the time embedding of the history's mean observed gap, so it lives in the same
    (type ⊕ time) space as an event token, then goes through the layer's key or value
    projection and is prepended to the attention keys and values (prefix tuning).

    Retrieval is per position and leak-free: the query of position ``i`` is the running mean of
    the layer input over events ``0..i``, and the ``top_n`` prompts of highest cosine similarity
    are selected. The matching score is the mean over positions of the summed cosine of the
    selected keys; the training loss subtracts ``0.1`` (the match weight) times it, and the
    reported log-likelihood never includes it.

    Stored: ``keys`` (M, d_model), ``key_prompts`` and ``value_prompts`` (H, M, Lp, d_type),
    all float32 parameters, charged to the ``prompts`` account by :class:`tpp.PromptTPP`.

    Parameters
    ----------
    d_model, d_type
        Size of a token, and of its type part (the rest is the time embedding).
    n_heads
        Attention heads.
    n_prompts, prompt_length, top_n
        ``M``, ``Lp`` and the number ``N`` of prompts retrieved.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> pool = PromptPool(8, 4, n_heads=2, n_prompts=6, prompt_length=3, top_n=2)
    >>> selected, matching = pool.select(torch.randn(1, 5, 8))
    >>> selected.shape, selected.sum(-1).tolist()
    (torch.Size([1, 5, 6]), [[2, 2, 2, 2, 2]])
    >>> sum(p.numel() for p in pool.parameters())  # 6 * 8 + 2 * (2 * 6 * 3 * 4)
    336

    References
    ----------
    .. [1] Xue, S. et al. (2023). Prompt-augmented Temporal Point Process for Streaming Event
       Sequence. NeurIPS.
    """

    def __init__(
        self,
        d_model: int,
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
        self.keys = nn.Parameter(torch.empty(n_prompts, d_model).uniform_(-1.0, 1.0))
        shape = (n_heads, n_prompts, prompt_length, d_type)
        self.key_prompts = nn.Parameter(torch.empty(shape).uniform_(-1.0, 1.0))
        self.value_prompts = nn.Parameter(torch.empty(shape).uniform_(-1.0, 1.0))

    def select(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-N prompts per position (bool, (B, L, M)) and the matching score (B, L)."""
        cosine = nn.functional.cosine_similarity(
            query.detach()[..., None, :], self.keys[None, None], dim=-1
        )
        top = cosine.topk(self.top_n, dim=-1)
        selected = torch.zeros_like(cosine, dtype=torch.bool).scatter_(-1, top.indices, True)
        return selected, top.values.sum(dim=-1)

    def tokens(self, selected: torch.Tensor) -> torch.Tensor:
        """Visibility of each prompt token, (B, L, M * Lp), from the prompt selection."""
        return selected.repeat_interleave(self.prompt_length, dim=-1)
