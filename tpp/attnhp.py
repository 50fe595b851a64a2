"""AttNHP: the attentive neural Hawkes process, with an optional PromptTPP prompt pool."""

from __future__ import annotations

import math

import torch
from torch import nn

from tpp.prompt_pool import PromptPool
from tpp.softplus import IntensityHead

__all__ = ["AttNHP"]


def time_embedding(times: torch.Tensor, size: int) -> torch.Tensor:
    """Sinusoidal embedding of absolute times: ``sin`` and ``cos`` at geometric frequencies."""
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(0, size, 2) / size)
    angles = times[..., None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[..., :size]


class AttNHP(nn.Module):
    """The attentive neural Hawkes process, optionally with a prompt pool per layer (PromptTPP).

    Event tokens are ``tanh(type embedding) ⊕ time embedding``; a state token at query time
    ``t`` is ``0 ⊕ time embedding(t)``. In every layer and head, event rows attend causally to
    events (``j <= i``), and state rows after position ``i`` attend to events ``0..i`` and to
    themselves; with prompts, the selected prompt tokens are prepended to the keys and values
    and their columns are always visible (the mask is padded, never shifted over events). The
    intensity is ``softplus(linear(state token of the last layer))``. Every position, sample
    and head is computed in one batched tensor operation.

    Parameters
    ----------
    n_types
        Number of event types ``K``.
    d_model
        Token size; half type embedding, half time embedding.
    n_layers, n_heads
        Attention layers and heads per layer.
    prompts
        None for plain AttNHP, or a dict of :class:`~tpp.prompt_pool.PromptPool` arguments
        (``n_prompts``, ``prompt_length``, ``top_n``) for PromptTPP.

    Examples
    --------
    >>> from tpp.data import EventArrays, make_batch
    >>> import numpy as np
    >>> _ = torch.manual_seed(0)
    >>> model = AttNHP(n_types=3, d_model=16, prompts={"n_prompts": 4, "top_n": 2})
    >>> data = EventArrays(np.array([0.0, 0.5, 1.5]), np.array([1, 2, 0]), np.array([0, 3]), 3)
    >>> intensity, matching = model(make_batch(data, [0]), torch.rand(1, 2, 5))
    >>> intensity.shape, bool(intensity.min() > 0), -2.0 <= float(matching.detach()) <= 2.0
    (torch.Size([1, 2, 5, 3]), True, True)

    References
    ----------
    .. [1] Yang, C., Mei, H. and Eisner, J. (2022). Transformer Embeddings of Irregularly Spaced
       Events and Their Participants. ICLR.
    """

    def __init__(
        self,
        n_types: int,
        d_model: int = 32,
        *,
        n_layers: int = 2,
        n_heads: int = 2,
        prompts: dict | None = None,
    ) -> None:
        super().__init__()
        if d_model % (2 * n_heads):
            raise ValueError(f"d_model must be a multiple of 2 * n_heads, got {d_model}")
        self.n_types, self.d_model, self.n_heads = n_types, d_model, n_heads
        self.d_type = d_model // 2
        self.embedding = nn.Embedding(n_types + 1, self.d_type, padding_idx=n_types)
        self.query = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_layers))
        self.key = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_layers))
        self.value = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_layers))
        self.output = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_layers))
        self.head = IntensityHead(d_model, n_types)
        self.prompt_pools = None
        if prompts is not None:
            self.prompt_pools = nn.ModuleList(
                PromptPool(d_model, self.d_type, n_heads=n_heads, **prompts)
                for _ in range(n_layers)
            )

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_model) -> (B, H, ..., d_head)."""
        split = x.reshape(*x.shape[:-1], self.n_heads, -1)
        return split.movedim(-2, 1)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(1, -2).flatten(-2)

    def forward(self, batch, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Intensities ``(B, P, N, K)`` at ``t_i + offsets[:, i]`` given events ``0..i``,
        and the mean prompt-matching score (0 without prompts)."""
        L = batch.types.shape[1]
        P = offsets.shape[1]
        events = torch.cat(
            [torch.tanh(self.embedding(batch.types)), time_embedding(batch.times, self.d_type)], -1
        )
        query_times = batch.times[:, :P, None] + offsets
        states = torch.cat(
            [
                torch.zeros(*query_times.shape, self.d_type),
                time_embedding(query_times, self.d_model - self.d_type),
            ],
            dim=-1,
        )
        causal = torch.ones(L, L, dtype=torch.bool).tril() & batch.mask[:, None, None, :]
        count = torch.arange(1, L + 1, dtype=torch.float32)
        mean_gap = batch.gaps.cumsum(1) / (count - 1).clamp_min(1.0)  # gaps 1..i, no padding
        gap_embedding = time_embedding(mean_gap, self.d_model - self.d_type)
        matching = torch.zeros(())
        for layer in range(len(self.query)):
            prompt = None
            if self.prompt_pools is not None:
                prompt, score = self._prompt_context(layer, events, count, gap_embedding)
                valid = batch.mask[:, :P].float()
                matching = matching + (score[:, :P] * valid).sum() / valid.sum().clamp_min(1.0)
            events, states = self._layer(layer, events, states, causal, prompt)
        return self.head(states), matching / max(1, len(self.query))

    def _prompt_context(self, layer, events, count, gap_embedding):
        pool = self.prompt_pools[layer]
        running_mean = events.cumsum(dim=1) / count[:, None]  # causal query: events 0..i
        selected, score = pool.select(running_mean)
        weight_k = self.key[layer].weight.view(self.n_heads, -1, self.d_model)
        weight_v = self.value[layer].weight.view(self.n_heads, -1, self.d_model)
        bias_k = self.key[layer].bias.view(self.n_heads, 1, -1)
        bias_v = self.value[layer].bias.view(self.n_heads, 1, -1)
        flat_k = pool.key_prompts.flatten(1, 2)  # (H, M*Lp, d_type)
        flat_v = pool.value_prompts.flatten(1, 2)
        keys = torch.einsum("hmt,hdt->hmd", flat_k, weight_k[..., : self.d_type]) + bias_k
        values = torch.einsum("hmt,hdt->hmd", flat_v, weight_v[..., : self.d_type]) + bias_v
        time_k = torch.einsum("blt,hdt->bhld", gap_embedding, weight_k[..., self.d_type :])
        time_v = torch.einsum("blt,hdt->bhld", gap_embedding, weight_v[..., self.d_type :])
        return (keys, values, time_k, time_v, pool.tokens(selected)), score

    def _attend(self, q, k_events, v_events, visible, prompt, self_kv, position_axes):
        """Softmax attention over [prompt tokens; events; self] for rows grouped by position."""
        scale = 1.0 / math.sqrt(q.shape[-1])
        blocks = [torch.einsum("bh...d,bhjd->bh...j", q, k_events) * scale]
        masks = [visible]
        if self_kv is not None:
            blocks.append((q * self_kv[0]).sum(-1, keepdim=True) * scale)
            masks.append(torch.ones_like(blocks[-1], dtype=torch.bool))
        if prompt is not None:
            keys, values, time_k, time_v, tokens = prompt
            time_k, time_v = (
                t.reshape(*t.shape[:3], *position_axes, t.shape[-1])
                for t in (time_k[:, :, : q.shape[2]], time_v[:, :, : q.shape[2]])
            )
            prompt_scores = torch.einsum("bh...d,hmd->bh...m", q, keys)
            prompt_scores = prompt_scores + (q * time_k).sum(-1, keepdim=True)
            blocks.insert(0, prompt_scores * scale)
            tokens = tokens[:, None, : q.shape[2]]
            masks.insert(0, tokens.reshape(*tokens.shape[:3], *position_axes, tokens.shape[-1]))
        sizes = [b.shape[-1] for b in blocks]
        scores = torch.cat(blocks, -1)
        mask = torch.cat([m.expand(*b.shape) for m, b in zip(masks, blocks)], -1)
        weights = torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1).split(sizes, -1)
        if prompt is not None:
            out = torch.einsum("bh...m,hmd->bh...d", weights[0], values)
            out = out + weights[0].sum(-1, keepdim=True) * time_v
            weights = weights[1:]
        else:
            out = 0.0
        out = out + torch.einsum("bh...j,bhjd->bh...d", weights[0], v_events)
        if self_kv is not None:
            out = out + weights[1] * self_kv[1]
        return out

    def _layer(self, layer, events, states, causal, prompt):
        q_e, k_e, v_e = (self._heads(f[layer](events)) for f in (self.query, self.key, self.value))
        q_s, k_s, v_s = (self._heads(f[layer](states)) for f in (self.query, self.key, self.value))
        P = states.shape[1]
        event_out = self._attend(q_e, k_e, v_e, causal, prompt, None, ())
        state_visible = causal[:, :, :P, None, :]  # position i sees events 0..i
        state_out = self._attend(q_s, k_e, v_e, state_visible, prompt, (k_s, v_s), (1,))
        new_events = events + torch.tanh(self.output[layer](self._merge(event_out)))
        new_states = states + torch.tanh(self.output[layer](self._merge(state_out)))
        return new_events, new_states
