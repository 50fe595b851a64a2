"""AttNHP: the attentive neural Hawkes process, with an optional PromptTPP prompt pool."""

from __future__ import annotations

import math

import torch
from torch import nn

from tpp.prompt_pool import PromptPool
from tpp.softplus import IntensityHead

__all__ = ["AttNHP", "check_attention_sizes"]


def check_attention_sizes(
    d_model: int,
    d_time: int,
    n_heads: int,
    *,
    names: tuple[str, str, str] = ("d_model", "d_time", "n_heads"),
    owner: str = "AttNHP",
) -> None:
    """Raise ValueError unless ``d_time`` is even (half sines, half cosines) and ``n_heads``
    divides the token size ``d_model + d_time``.

    ``names`` are the three parameters' names in ``owner`` (an estimator may call them
    ``hidden_size``, ``time_size`` and ``n_heads``).

    Examples
    --------
    >>> check_attention_sizes(4, 4, 3)
    Traceback (most recent call last):
    ...
    ValueError: The 'n_heads' parameter of AttNHP must divide d_model + d_time = 8. Got 3 instead.
    """
    model, time, heads = names
    if d_time < 2 or d_time % 2:
        raise ValueError(
            f"The {time!r} parameter of {owner} must be an even int >= 2. Got {d_time!r} instead."
        )
    if n_heads < 1 or (d_model + d_time) % n_heads:
        raise ValueError(
            f"The {heads!r} parameter of {owner} must divide {model} + {time} = "
            f"{d_model + d_time}. Got {n_heads!r} instead."
        )


def time_embedding(times: torch.Tensor, size: int) -> torch.Tensor:
    """Sinusoidal embedding of absolute times: ``sin`` and ``cos`` at geometric frequencies."""
    frequencies = torch.exp(
        -math.log(10_000.0) * torch.arange(0, size, 2, device=times.device) / size
    )
    angles = times[..., None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[..., :size]


class AttNHP(nn.Module):
    """The attentive neural Hawkes process, optionally with a prompt pool per layer (PromptTPP).

    Event tokens are ``tanh(type embedding) ⊕ time embedding``; a state token at query time
    ``t`` is ``0 ⊕ time embedding(t)``. With the defaults (``d_model=32``, ``d_time=16``, 2
    layers of 2 heads) the attention weights have 18,816 parameters, as EasyTPP's AttNHP. In
    every layer and head, event rows attend causally to events (``j <= i``), and state rows
    after position ``i`` attend to events ``0..i`` and to themselves; with prompts, the
    retrieved prompt tokens are prepended to the keys and values and their columns are always
    visible (the mask is padded, never shifted over events). The intensity is
    ``softplus(linear(state token of the last layer))``. Every position, sample and head is
    computed in one batched tensor operation.

    Parameters
    ----------
    n_types
        Number of event types ``K``.
    d_model
        Size of the type embedding (EasyTPP's hidden size).
    d_time
        Size of the sinusoidal time embedding; a token has ``d_model + d_time`` entries.
    n_layers, n_heads
        Attention layers and heads per layer.
    prompts
        None for plain AttNHP, or a dict of :class:`~tpp.prompt_pool.PromptPool` arguments
        (``n_prompts``, ``prompt_length``, ``top_n``) for PromptTPP.

    Examples
    --------
    >>> from streams import EventSequences
    >>> from tpp.batches import make_batch
    >>> _ = torch.manual_seed(0)
    >>> model = AttNHP(n_types=3, d_model=16, d_time=8, prompts={"n_prompts": 4, "top_n": 2})
    >>> data = EventSequences.from_lists([[0.0, 0.5, 1.5]], [[1, 2, 0]], 3)
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
        d_time: int = 16,
        *,
        n_layers: int = 2,
        n_heads: int = 2,
        prompts: dict | None = None,
    ) -> None:
        super().__init__()
        check_attention_sizes(d_model, d_time, n_heads)
        self.n_types, self.n_heads = n_types, n_heads
        self.d_type, self.d_time = d_model, d_time
        self.d_token = d_token = d_model + d_time
        self.embedding = nn.Embedding(n_types + 1, d_model, padding_idx=n_types)
        self.query = nn.ModuleList(nn.Linear(d_token, d_token) for _ in range(n_layers))
        self.key = nn.ModuleList(nn.Linear(d_token, d_token) for _ in range(n_layers))
        self.value = nn.ModuleList(nn.Linear(d_token, d_token) for _ in range(n_layers))
        self.output = nn.ModuleList(nn.Linear(d_token, d_token) for _ in range(n_layers))
        self.head = IntensityHead(d_token, n_types)
        self.prompt_pools = None
        if prompts is not None:
            self.prompt_pools = nn.ModuleList(
                PromptPool(d_token, d_model, n_heads=n_heads, **prompts) for _ in range(n_layers)
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
            [torch.tanh(self.embedding(batch.types)), time_embedding(batch.times, self.d_time)], -1
        )
        query_times = batch.times[:, :P, None] + offsets
        states = torch.cat(
            [
                query_times.new_zeros(*query_times.shape, self.d_type),
                time_embedding(query_times, self.d_time),
            ],
            dim=-1,
        )
        device = batch.times.device
        causal = torch.ones(L, L, dtype=torch.bool, device=device).tril()
        causal = causal & batch.mask[:, None, None, :]
        count = torch.arange(1, L + 1, dtype=torch.float32, device=device)
        mean_gap = batch.gaps.cumsum(1) / (count - 1).clamp_min(1.0)  # gaps 1..i, no padding
        gap_embedding = time_embedding(mean_gap, self.d_time)
        matching = torch.zeros((), device=device)
        for layer in range(len(self.query)):
            prompt = None
            if self.prompt_pools is not None:
                prompt, score = self._prompt_context(layer, events, count, gap_embedding)
                valid = batch.mask[:, :P].float()
                matching = matching + (score[:, :P] * valid).sum() / valid.sum().clamp_min(1.0)
            events, states = self._layer(layer, events, states, causal, prompt)
        return self.head(states), matching / max(1, len(self.query))

    def _prompt_context(self, layer, events, count, gap_embedding):
        """Projected prompt tokens of every pool, their time part, and the retrieved indices."""
        pool = self.prompt_pools[layer]
        running_mean = events.cumsum(dim=1) / count[:, None]  # causal query: events 0..i
        key_index, value_index, score = pool.select(running_mean)
        weight_k = self.key[layer].weight.view(self.n_heads, -1, self.d_token)
        weight_v = self.value[layer].weight.view(self.n_heads, -1, self.d_token)
        bias_k = self.key[layer].bias.view(self.n_heads, 1, 1, -1)
        bias_v = self.value[layer].bias.view(self.n_heads, 1, 1, -1)
        type_k, time_k = weight_k.split([self.d_type, self.d_time], -1)
        type_v, time_v = weight_v.split([self.d_type, self.d_time], -1)
        keys = torch.einsum("hmlt,hdt->hmld", pool.key_prompts, type_k) + bias_k
        values = torch.einsum("hmlt,hdt->hmld", pool.value_prompts, type_v) + bias_v
        gap_k = torch.einsum("blt,hdt->bhld", gap_embedding, time_k)
        gap_v = torch.einsum("blt,hdt->bhld", gap_embedding, time_v)
        return (keys, values, gap_k, gap_v, key_index, value_index), score

    @staticmethod
    def _by_position(x: torch.Tensor, n_positions: int, position_axes: tuple) -> torch.Tensor:
        """(B, H, L, ...) -> (B, H, n_positions, *position_axes, ...) for broadcasting."""
        x = x[:, :, :n_positions]
        return x.reshape(*x.shape[:3], *position_axes, *x.shape[3:])

    def _prompt_scores(self, q, prompt, position_axes):
        """Attention scores of each row against its retrieved key-pool tokens, (..., N * Lp)."""
        keys, _, gap_k, _, key_index, _ = prompt
        everything = torch.einsum("bh...d,hmld->bh...ml", q, keys)  # all M x Lp tokens
        index = self._by_position(key_index, q.shape[2], position_axes)[..., None]
        index = index.expand(*everything.shape[:-2], index.shape[-2], everything.shape[-1])
        scores = everything.gather(-2, index).flatten(-2)
        gap = self._by_position(gap_k, q.shape[2], position_axes)
        return scores + (q * gap).sum(-1, keepdim=True)

    def _prompt_values(self, weights, prompt, position_axes):
        """Weighted sum of the retrieved value-pool tokens; rank r pairs with key rank r."""
        _, values, _, gap_v, _, value_index = prompt
        n_prompts, length = values.shape[1], values.shape[2]
        paired = weights.unflatten(-1, (-1, length))  # (..., N, Lp)
        index = self._by_position(value_index, weights.shape[2], position_axes)[..., None]
        spread = paired.new_zeros(*paired.shape[:-2], n_prompts, length)
        spread = spread.scatter(-2, index.expand_as(paired), paired)
        out = torch.einsum("bh...ml,hmld->bh...d", spread, values)
        gap = self._by_position(gap_v, weights.shape[2], position_axes)
        return out + weights.sum(-1, keepdim=True) * gap

    def _attend(self, q, k_events, v_events, visible, prompt, self_kv, position_axes):
        """Softmax attention over [retrieved prompt tokens; events; self] for rows grouped by
        position; the prompt columns are always visible (the event mask is padded, not shifted)."""
        scale = 1.0 / math.sqrt(q.shape[-1])
        blocks = [torch.einsum("bh...d,bhjd->bh...j", q, k_events) * scale]
        masks = [visible]
        if self_kv is not None:
            blocks.append((q * self_kv[0]).sum(-1, keepdim=True) * scale)
            masks.append(torch.ones_like(blocks[-1], dtype=torch.bool))
        if prompt is not None:
            blocks.insert(0, self._prompt_scores(q, prompt, position_axes) * scale)
            masks.insert(0, torch.ones_like(blocks[0], dtype=torch.bool))
        sizes = [b.shape[-1] for b in blocks]
        scores = torch.cat(blocks, -1)
        mask = torch.cat([m.expand(*b.shape) for m, b in zip(masks, blocks)], -1)
        lowest = torch.finfo(scores.dtype).min  # -1e9 overflows float16
        weights = torch.softmax(scores.masked_fill(~mask, lowest), dim=-1).split(sizes, -1)
        out = 0.0
        if prompt is not None:
            out = self._prompt_values(weights[0], prompt, position_axes)
            weights = weights[1:]
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
