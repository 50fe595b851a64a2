"""NHP: the neural Hawkes process, a continuous-time LSTM (Mei and Eisner, 2017).

The two hot paths have hand-written gradients (``torch.autograd.Function``), so that neither
builds an autograd graph of many small or many large temporaries: the recurrence
(:func:`ct_lstm_states`: a step is a few in-place operations into preallocated buffers, and
backpropagation through time runs the same loop backwards) and the intensities at the query
times (:func:`nhp_intensity`, for every interval and query point at once after the
recurrence). Both compute exactly the functions of the paper (``tanh`` is evaluated as
``2 sigmoid(2x) - 1``); ``tests/tpp/test_models.py`` compares them with a plain autograd
implementation and checks their gradients numerically.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from tpp.softplus import IntensityHead

__all__ = ["NHP", "ct_lstm_states", "nhp_intensity"]


class _CTLSTM(torch.autograd.Function):
    """The continuous-time LSTM recurrence with backpropagation through time written out.

    Inputs are time-major: the input projections ``xproj`` (L, B, 7H) (``W_x x_i + b``), the
    recurrent weight ``weight_h`` (7H, H) and the gaps (L, B). Gates are laid out
    ``i, f, z, o, ibar, fbar, delta`` (``z`` through tanh, ``delta`` through softplus, the rest
    through the logistic function). Outputs ``c, cbar, delta, o``, each (L, B, H). Per-step
    views are made once, before the loops.
    """

    @staticmethod
    def forward(ctx, xproj, weight_h, gaps):
        L, B, H7 = xproj.shape
        H = H7 // 7
        like = {"dtype": xproj.dtype, "device": xproj.device}
        acts = torch.empty(L, B, H7, **like)  # gate activations
        c_all, cbar_all = torch.empty(L, B, H, **like), torch.empty(L, B, H, **like)
        # before step i: the decay since event i-1, the decayed cell and its tanh, and the
        # hidden state fed to the gates (all zero at i = 0: the state starts at zero)
        decay, decayed, tanh_decayed, h_prev = torch.zeros(4, L, B, H, **like)
        i_g, f_g, z_g, o_g, ibar_g, fbar_g, delta_g = (
            gate.unbind(0) for gate in acts.split(H, dim=-1)
        )
        act_steps, c_steps, cbar_steps = acts.unbind(0), c_all.unbind(0), cbar_all.unbind(0)
        xproj_steps, neg_gaps = xproj.unbind(0), gaps.neg().unsqueeze(-1).unbind(0)
        decay_steps, decayed_steps = decay.unbind(0), decayed.unbind(0)
        tanh_steps, h_steps = tanh_decayed.unbind(0), h_prev.unbind(0)
        weight_t = weight_h.t()
        pre = torch.empty(B, H7, **like)
        pre_z, pre_delta = pre[:, 2 * H : 3 * H], pre[:, 6 * H :]
        for i in range(L):
            if i == 0:
                pre.copy_(xproj_steps[0])  # h = 0 before the first event
            else:
                d, cd = decay_steps[i], decayed_steps[i]
                cbar_prev = cbar_steps[i - 1]
                torch.mul(delta_g[i - 1], neg_gaps[i], out=d).exp_()
                torch.sub(c_steps[i - 1], cbar_prev, out=cd).mul_(d).add_(cbar_prev)
                torch.mul(o_g[i - 1], torch.tanh(cd, out=tanh_steps[i]), out=h_steps[i])
                torch.addmm(xproj_steps[i], h_steps[i], weight_t, out=pre)
            torch.sigmoid(pre, out=act_steps[i])
            torch.tanh(pre_z, out=z_g[i])
            delta_g[i].copy_(F.softplus(pre_delta))
            torch.mul(f_g[i], decayed_steps[i], out=c_steps[i]).addcmul_(i_g[i], z_g[i])
            if i == 0:
                torch.mul(ibar_g[0], z_g[0], out=cbar_steps[0])
            else:
                torch.mul(fbar_g[i], cbar_steps[i - 1], out=cbar_steps[i])
                cbar_steps[i].addcmul_(ibar_g[i], z_g[i])
        saved = (weight_h, gaps, acts, c_all, cbar_all, decay, decayed, tanh_decayed, h_prev)
        ctx.save_for_backward(*saved)
        return c_all, cbar_all, acts[..., 6 * H :].clone(), acts[..., 3 * H : 4 * H].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, g_c, g_cbar, g_delta, g_o):
        weight_h, gaps, acts, c_all, cbar_all, decay, decayed, tanh_decayed, h_prev = (
            ctx.saved_tensors
        )
        L, B, H7 = acts.shape
        H = H7 // 7
        like = {"dtype": acts.dtype, "device": acts.device}
        g_c, g_cbar, g_delta, g_o = (
            torch.zeros(L, B, H, **like) if g is None else g for g in (g_c, g_cbar, g_delta, g_o)
        )
        # d activation / d pre-activation, all steps at once, in the buffer of the gradients
        g_pre = torch.addcmul(acts, acts, acts, value=-1)  # sigmoid' = s (1 - s)
        z_all, delta_all = acts[..., 2 * H : 3 * H], acts[..., 6 * H :]
        torch.addcmul(torch.ones((), **like), z_all, z_all, value=-1, out=g_pre[..., 2 * H : 3 * H])
        torch.expm1(delta_all.neg(), out=g_pre[..., 6 * H :]).neg_()  # 1 - exp(-softplus)
        # what the decay from event i-1 to event i passes back to step i-1 (rows 1..L-1)
        dh_dcell = acts[:-1, :, 3 * H : 4 * H] * (1 - tanh_decayed[1:] ** 2)
        diff = c_all[:-1] - cbar_all[:-1]
        dcell_ddelta = -diff * decay[1:] * gaps[1:, :, None]
        one_minus_decay = 1 - decay
        g_decayed = torch.zeros(L, B, H, **like)
        carry_c, carry_cbar, carry_delta, carry_o, gc, gcbar = torch.zeros(6, B, H, **like)
        g_act = torch.empty(B, H7, **like)
        g_i, g_f, g_z, g_og, g_ibar, g_fbar, g_dl = g_act.split(H, dim=-1)
        i_g, f_g, z_g, _, ibar_g, fbar_g, _ = (gate.unbind(0) for gate in acts.split(H, dim=-1))
        steps = (g_pre, g_c, g_cbar, g_delta, g_o, decayed, cbar_all, decay, tanh_decayed)
        g_pre_s, g_c_s, g_cbar_s, g_delta_s, g_o_s, decayed_s, cbar_s, decay_s, tanh_s = (
            t.unbind(0) for t in steps
        )
        g_decayed_s, omd_s = g_decayed.unbind(0), one_minus_decay.unbind(0)
        dh_s, dd_s = dh_dcell.unbind(0), dcell_ddelta.unbind(0)
        for i in range(L - 1, -1, -1):
            torch.add(g_c_s[i], carry_c, out=gc)
            torch.add(g_cbar_s[i], carry_cbar, out=gcbar)
            torch.mul(gc, z_g[i], out=g_i)
            torch.mul(gc, decayed_s[i], out=g_f)
            torch.mul(gc, i_g[i], out=g_z).addcmul_(gcbar, ibar_g[i])
            torch.add(g_o_s[i], carry_o, out=g_og)
            torch.mul(gcbar, z_g[i], out=g_ibar)
            if i == 0:
                g_fbar.zero_()
            else:
                torch.mul(gcbar, cbar_s[i - 1], out=g_fbar)
            torch.add(g_delta_s[i], carry_delta, out=g_dl)
            g_pre_s[i].mul_(g_act)
            if i == 0:
                break
            g_h = g_pre_s[i] @ weight_h
            gcd = torch.mul(gc, f_g[i], out=g_decayed_s[i]).addcmul_(g_h, dh_s[i - 1])
            torch.mul(g_h, tanh_s[i], out=carry_o)
            torch.mul(gcd, decay_s[i], out=carry_c)
            torch.mul(gcbar, fbar_g[i], out=carry_cbar).addcmul_(gcd, omd_s[i])
            torch.mul(gcd, dd_s[i - 1], out=carry_delta)
        g_weight = g_pre.view(-1, H7).t() @ h_prev.view(-1, H)
        g_gaps = None
        if ctx.needs_input_grad[2]:  # d decay / d gap = -delta_prev * decay
            g_gaps = torch.zeros_like(gaps)
            g_gaps[1:] = -(g_decayed[1:] * diff * decay[1:] * delta_all[:-1]).sum(-1)
        return g_pre, g_weight, g_gaps


def ct_lstm_states(
    xproj: torch.Tensor, weight_h: torch.Tensor, gaps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the continuous-time LSTM over events: the states right after each event.

    Step ``i`` decays the cell to the event, ``c(t_i) = cbar_{i-1} + (c_{i-1} - cbar_{i-1})
    exp(-delta_{i-1} gap_i)``, reads ``h = o_{i-1} tanh(c(t_i))`` (zero before the first event),
    computes the gates ``i, f, z, o, ibar, fbar, delta`` from ``xproj_i + W_h h`` and sets
    ``c_i = f c(t_i) + i z`` and ``cbar_i = fbar cbar_{i-1} + ibar z``.

    Parameters
    ----------
    xproj
        Input projections ``W_x x_i + b`` of every event, time-major, shape (L, B, 7H).
    weight_h
        The recurrent weight ``W_h``, shape (7H, H).
    gaps
        Time since the previous event, time-major, shape (L, B) (row 0 is not used).

    Returns
    -------
    tuple of torch.Tensor
        ``c, cbar, delta, o``, each (L, B, H).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> c, cbar, delta, o = ct_lstm_states(torch.randn(3, 2, 28), torch.randn(28, 4),
    ...                                    torch.ones(3, 2))
    >>> c.shape, bool((delta > 0).all()), bool(((o > 0) & (o < 1)).all())
    (torch.Size([3, 2, 4]), True, True)
    """
    return _CTLSTM.apply(xproj, weight_h, gaps)


#: Event positions per chunk in :func:`nhp_intensity`: a chunk's hidden states and their
#: gradients live in one small reused buffer instead of (R, N, H) tensors.
CHUNK_ROWS = 512


class _Intensity(torch.autograd.Function):
    """NHP's intensities at offsets after each position (see :func:`nhp_intensity`)."""

    @staticmethod
    def forward(ctx, c, cbar, delta, o, offsets, weight, bias, log_scale, keep):
        R, N = offsets.shape
        H, K = c.shape[1], weight.shape[0]
        like = {"dtype": c.dtype, "device": c.device}
        n = max(1, min(CHUNK_ROWS, R))
        # decay = exp(-delta s) and u = sigmoid(2 cell) (tanh(cell) = 2u - 1), kept for the
        # backward pass when it will run, else one chunk at a time
        decay, u = (torch.empty(R if keep else n, N, H, **like) for _ in range(2))
        hidden = torch.empty(n, N, H, **like)
        z = bias[:, None].expand(K, R * N).contiguous()  # z^T = W h^T + b, (K, R N)
        for start in range(0, R, n):
            rows = slice(start, min(start + n, R))
            m = rows.stop - start
            d, u_r = (decay[rows], u[rows]) if keep else (decay[:m], u[:m])
            torch.mul(offsets[rows].unsqueeze(-1), delta[rows].neg().unsqueeze(-2), out=d).exp_()
            c_r, cbar_r = c[rows].unsqueeze(-2), cbar[rows].unsqueeze(-2)
            torch.addcmul(2 * cbar_r, 2 * (c_r - cbar_r), d, out=u_r).sigmoid_()
            h = _hidden(o[rows], u_r, hidden[:m])
            # the wide orientation of the head's product is the fast one
            z[:, start * N : rows.stop * N].addmm_(weight, h.view(-1, H).t())
        scale = log_scale.exp()[:, None]
        x = z.div_(scale)
        out = torch.empty(R, N, K, **like)
        torch.mul(F.softplus(x), scale, out=out.view(-1, K).t())  # written transposed
        if keep:
            ctx.save_for_backward(c, cbar, delta, o, offsets, weight, log_scale, decay, u, x, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, *_):
        c, cbar, delta, o, offsets, weight, log_scale, decay, u, x, out = ctx.saved_tensors
        R, N = offsets.shape
        H, K = c.shape[1], weight.shape[0]
        like = {"dtype": c.dtype, "device": c.device}
        # lambda = s softplus(z / s): d/dz = sigmoid(z / s), d/d(log s) = lambda - z sigmoid(z / s)
        g_z = torch.sigmoid(x).mul_(g_out.reshape(-1, K).t())
        g_log_scale = (g_out * out).sum(dim=(0, 1))
        g_log_scale -= log_scale.exp() * torch.linalg.vecdot(g_z, x)
        g_weight, g_bias = torch.zeros(K, H, **like), g_z.sum(1)
        g_c, g_cbar, g_delta, g_o = torch.empty(4, R, H, **like)
        g_offsets = torch.empty(R, N, **like) if ctx.needs_input_grad[4] else None
        n = max(1, min(CHUNK_ROWS, R))
        hidden = torch.empty(n, N, H, **like)
        for start in range(0, R, n):
            rows = slice(start, min(start + n, R))
            m = rows.stop - start
            u_r, o_r, diff = u[rows], o[rows], c[rows] - cbar[rows]
            h = _hidden(o_r, u_r, hidden[:m]).view(-1, H)
            g_zr = g_z[:, start * N : rows.stop * N]
            g_weight.addmm_(g_zr, h)
            g_h = torch.mm(g_zr.t(), weight, out=h).view(m, N, H)  # h is no longer needed
            # h = o (2u - 1): d/do = 2u - 1, d/du = 2o; u = sigmoid(2 cell): du/dcell = 2u (1 - u)
            g_h_sum = g_h.sum(-2)
            g_hu = g_h.mul_(u_r)
            torch.sub(2 * g_hu.sum(-2), g_h_sum, out=g_o[rows])
            g_cell = g_hu.addcmul_(g_hu, u_r, value=-1).mul_((4 * o_r).unsqueeze(-2))
            g_cell_sum = g_cell.sum(-2)
            g_arg = g_cell.mul_(decay[rows])  # cell = cbar + (c - cbar) decay
            torch.sum(g_arg, -2, out=g_c[rows])
            torch.sub(g_cell_sum, g_c[rows], out=g_cbar[rows])
            # d decay / d delta = -s decay, d decay / d s = -delta decay
            weighted = torch.bmm(offsets[rows].unsqueeze(1), g_arg).squeeze(1)
            torch.mul(weighted, diff, out=g_delta[rows]).neg_()
            if g_offsets is not None:
                weighted = torch.bmm(g_arg, (diff * delta[rows]).unsqueeze(-1)).squeeze(-1)
                torch.neg(weighted, out=g_offsets[rows])
        return g_c, g_cbar, g_delta, g_o, g_offsets, g_weight, g_bias, g_log_scale, None


def _hidden(o: torch.Tensor, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``h = o (2u - 1)``, which is ``o tanh(cell)``, into ``out`` (rows, N, H)."""
    o = o.unsqueeze(-2)
    return torch.addcmul(o.neg(), 2 * o, u, out=out)


def nhp_intensity(
    c: torch.Tensor,
    cbar: torch.Tensor,
    delta: torch.Tensor,
    o: torch.Tensor,
    offsets: torch.Tensor,
    head: IntensityHead,
) -> torch.Tensor:
    """NHP's intensities ``head(o tanh(cbar + (c - cbar) exp(-delta s)))`` at offsets ``s``.

    One autograd node with a hand-written gradient. Positions are processed in chunks of
    :data:`CHUNK_ROWS`; ``tanh(x)`` is evaluated as ``2 sigmoid(2x) - 1`` (one cheap
    transcendental per entry) and the head's product in its fast orientation. Only the decays
    ``exp(-delta s)`` and the gates ``sigmoid(2 cell)`` are kept for the backward pass (and
    nothing when no gradient is needed); the hidden states are recomputed one chunk at a time.
    The result equals ``head(hidden)`` with :class:`~tpp.softplus.IntensityHead`'s formula
    ``s_k softplus((w_k . h + b_k) / s_k)``.

    Parameters
    ----------
    c, cbar, delta, o
        States right after each of R positions, shape (R, H).
    offsets
        Times after each position, shape (R, N).
    head
        The intensity head: its linear map and per-type log-scales are used.

    Returns
    -------
    torch.Tensor
        Shape (R, N, K).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> head = IntensityHead(2, 3)
    >>> ones = torch.ones(1, 2)
    >>> late = nhp_intensity(ones, 0 * ones, ones, ones, torch.tensor([[100.0]]), head)
    >>> torch.allclose(late[0, 0], head(torch.zeros(2)))  # the cell has decayed to cbar = 0
    True
    """
    weight, bias, log_scale = head.linear.weight, head.linear.bias, head.log_scale
    inputs = (c, cbar, delta, o, offsets, weight, bias, log_scale)
    keep = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
    return _Intensity.apply(*inputs, keep)


class NHP(nn.Module):
    """The neural Hawkes process: an LSTM whose cell decays toward a target between events.

    After event ``i`` the cell is ``c(t) = cbar_i + (c_i - cbar_i) exp(-delta_i (t - t_i))``, the
    hidden state ``h(t) = o_i * tanh(c(t))`` and the intensities
    ``lambda_k(t) = softplus_k(w_k . h(t))`` (a learnable scale per type). The recurrence runs
    over sequence positions, vectorised over the padded batch (:func:`ct_lstm_states`); the
    intensities at any set of times after every position are then computed at once
    (:func:`nhp_intensity`). With ``hidden_size=32`` and 10 types it has 15,252 parameters,
    like EasyTPP's NHP. Both are hand-written float32 kernels: under mixed precision they run
    in float32 (autocast is switched off inside), so ``precision`` changes nothing for NHP.

    Parameters
    ----------
    n_types
        Number of event types ``K``.
    hidden_size
        Size of the LSTM state.

    Examples
    --------
    >>> from streams import EventSequences
    >>> from tpp.batches import make_batch
    >>> _ = torch.manual_seed(0)
    >>> model = NHP(n_types=10, hidden_size=32)
    >>> sum(p.numel() for p in model.parameters())
    15252
    >>> data = EventSequences.from_lists([[0.0, 0.5, 1.5]], [[1, 2, 3]], 10)
    >>> intensity, matching = model(make_batch(data, [0]), torch.rand(1, 3, 4))
    >>> intensity.shape, float(matching)
    (torch.Size([1, 3, 4, 10]), 0.0)

    References
    ----------
    .. [1] Mei, H. and Eisner, J. (2017). The Neural Hawkes Process: A Neurally Self-Modulating
       Multivariate Point Process. NeurIPS.
    """

    def __init__(self, n_types: int, hidden_size: int = 32) -> None:
        super().__init__()
        self.n_types = n_types
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(n_types + 1, hidden_size, padding_idx=n_types)
        self.gates = nn.Linear(2 * hidden_size, 7 * hidden_size)  # [x, h] -> 7 gates
        self.head = IntensityHead(hidden_size, n_types)

    def states(self, batch) -> tuple[torch.Tensor, ...]:
        """Cell states right after each event: ``c, cbar, delta, o``, each (B, L, H)."""
        H, weight = self.hidden_size, self.gates.weight
        # W_x x + b for every type (the padding row of the embedding stays 0 and gets no
        # gradient), then looked up for every event, time-major (L, B, 7H)
        types = torch.arange(self.n_types + 1, device=weight.device)
        # the hand-written recurrence is float32: mixed precision leaves it as it is
        with torch.autocast(weight.device.type, enabled=False):
            table = F.linear(self.embedding(types), weight[:, :H], self.gates.bias)
            xproj = F.embedding(batch.types.t(), table)
            states = ct_lstm_states(xproj, weight[:, H:], batch.gaps.t())
        return tuple(s.transpose(0, 1) for s in states)

    def forward(self, batch, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Intensities ``(B, P, N, K)`` at ``t_i + offsets[:, i]`` given events ``0..i``."""
        B, P, N = offsets.shape
        rows = (s[:, :P].reshape(B * P, -1) for s in self.states(batch))
        with torch.autocast(offsets.device.type, enabled=False):
            intensity = nhp_intensity(*rows, offsets.reshape(B * P, N), self.head)
        return intensity.view(B, P, N, -1), offsets.new_zeros(())
