import numpy as np
import pytest
import torch

import tpp.nhp
from streams import EventSequences
from tpp.attnhp import AttNHP
from tpp.batches import make_batch
from tpp.likelihood import sequence_log_likelihood
from tpp.nhp import NHP, ct_lstm_states, nhp_intensity
from tpp.softplus import IntensityHead


def sequences():
    rng = np.random.default_rng(0)
    times = np.concatenate([np.sort(rng.uniform(0, 10, 12)), np.sort(rng.uniform(0, 5, 7))])
    return EventSequences(times, rng.integers(0, 4, 19), np.array([0, 12, 19]), 4)


def perturbed(data, position):
    times, types = data.times.copy(), data.types.copy()
    types[position] = (types[position] + 1) % 4
    times[position] = 0.5 * (times[position - 1] + times[position])
    return EventSequences(times, types, data.offsets, 4)


MODELS = {
    "nhp": lambda: NHP(4, 16),
    "attnhp": lambda: AttNHP(4, 16),
    "prompttpp": lambda: AttNHP(4, 16, prompts={"n_prompts": 6, "prompt_length": 2, "top_n": 3}),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_perturbing_a_future_event_changes_no_earlier_intensity(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    data = sequences()
    offsets = torch.rand(2, 12, 6)
    before, _ = model(make_batch(data, [0, 1]), offsets)
    position = 7
    after, _ = model(make_batch(perturbed(data, position), [0, 1]), offsets)
    # positions 0..6 of sequence 0 see events 0..6 only: bit-identical
    assert torch.equal(before[0, :position], after[0, :position])
    assert not torch.allclose(before[0, position:], after[0, position:])
    assert torch.equal(before[1], after[1])  # the other sequence is untouched


def test_prompt_query_is_prefix_causal():
    torch.manual_seed(0)
    model = MODELS["prompttpp"]()
    data = sequences()
    batch = make_batch(data, [0])
    events = torch.randn(1, 12, model.d_token)
    count = torch.arange(1, 13)[:, None]
    *before, _ = model.prompt_pools[0].select(events.cumsum(1) / count)
    changed = events.clone()
    changed[0, 8:] += 5.0
    *after, _ = model.prompt_pools[0].select(changed.cumsum(1) / count)
    for index, index_changed in zip(before, after):  # key pool, value pool: (B, H, L, N)
        assert torch.equal(index[:, :, :8], index_changed[:, :, :8])
        assert not torch.equal(index, index_changed)
    assert batch.mask.all()


def test_padding_does_not_change_a_sequence():
    torch.manual_seed(0)
    data = sequences()
    for make_model in MODELS.values():
        model = make_model()
        alone, _ = model(make_batch(data, [1]), torch.ones(1, 7, 3))
        padded, _ = model(make_batch(data, [1, 0]), torch.ones(2, 12, 3))
        torch.testing.assert_close(alone[0], padded[0, :7])


def test_nhp_parameter_count_matches_easytpp():
    assert sum(p.numel() for p in NHP(10, 32).parameters()) == 15_252


def test_intensities_are_positive_and_decay_toward_a_target():
    torch.manual_seed(0)
    model = NHP(4, 16)
    offsets = torch.tensor([0.0, 1.0, 10.0, 100.0, 1000.0]).expand(1, 12, 5)
    intensity, _ = model(make_batch(sequences(), [0]), offsets)
    assert bool((intensity > 0).all())
    torch.testing.assert_close(intensity[..., 3, :], intensity[..., 4, :], atol=1e-4, rtol=1e-3)


def test_prompt_pool_size_with_reference_defaults():
    model = AttNHP(5, 32, prompts={})
    pool = sum(p.numel() for p in model.prompt_pools.parameters())
    # per layer and head, a K and a V pool: 10 keys of 32 + 16 and 10 prompts of 5 tokens of 32
    assert pool == 2 * 2 * 2 * (10 * 48 + 10 * 5 * 32) == 16_640  # the specification's count


def test_attnhp_attention_parameters_match_easytpp():
    model = AttNHP(5, 32, 16)
    attention = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] != "head")
    # EasyTPP: per layer and head, q/k/v Linear(48, 32); ours: per layer q/k/v/o Linear(48, 48)
    assert attention - model.embedding.weight.numel() == 2 * 2 * 3 * (48 * 32 + 32) == 18_816


class ReferenceNHP(torch.nn.Module):
    """NHP written the plain way, from the paper's equations, with autograd: the
    specification the optimised :class:`tpp.nhp.NHP` must match (it shares its parameters)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch, offsets):
        m = self.model
        B, L = batch.types.shape
        H = m.hidden_size
        x = m.embedding(batch.types)
        h = c = cbar = delta = o = torch.zeros(B, H, dtype=x.dtype)
        states = []
        for i in range(L):
            cell = cbar + (c - cbar) * torch.exp(-delta * batch.gaps[:, i, None])
            h = o * torch.tanh(cell)  # zero before the first event
            gates = torch.cat([x[:, i], h], dim=-1) @ m.gates.weight.T + m.gates.bias
            g_i, g_f, g_z, g_o, g_ibar, g_fbar, g_delta = gates.chunk(7, dim=-1)
            i_in, f, o, i_bar, f_bar = map(torch.sigmoid, (g_i, g_f, g_o, g_ibar, g_fbar))
            z, delta = torch.tanh(g_z), torch.nn.functional.softplus(g_delta)
            c, cbar = f * cell + i_in * z, f_bar * cbar + i_bar * z
            states.append(torch.stack([c, cbar, delta, o]))
        c, cbar, delta, o = torch.stack(states, dim=2)[:, :, : offsets.shape[1], None, :]
        hidden = o * torch.tanh(cbar + (c - cbar) * torch.exp(-delta * offsets[..., None]))
        scale = m.head.log_scale.exp()
        linear = hidden @ m.head.linear.weight.T + m.head.linear.bias
        return scale * torch.nn.functional.softplus(linear / scale), torch.zeros(())


def long_batch(n_sequences=5, n_types=3, seed=0):
    """Sequences of 1 to 9 events with gaps from 0 to 3, padded into one batch."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, n_sequences)
    lengths[0] = 9
    times = np.concatenate([np.cumsum(rng.exponential(0.7, n)) for n in lengths])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    data = EventSequences(times, rng.integers(0, n_types, times.size), offsets, n_types)
    return make_batch(data, np.arange(n_sequences))


def perturbed_model(n_types, hidden_size, dtype=torch.float32, seed=0):
    """An NHP with every parameter moved off its initial value (scales included)."""
    torch.manual_seed(seed)
    model = NHP(n_types, hidden_size).to(dtype)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
            if name == "embedding.weight":
                parameter[n_types] = 0.0  # the padding row stays zero, as nn.Embedding keeps it
    return model


@pytest.mark.parametrize("chunk_rows", [512, 4])  # one chunk, and chunks with a partial last one
def test_nhp_matches_the_plain_reference_with_its_gradients(monkeypatch, chunk_rows):
    monkeypatch.setattr(tpp.nhp, "CHUNK_ROWS", chunk_rows)
    model = perturbed_model(3, 8)
    reference = ReferenceNHP(model)
    batch = long_batch()
    offsets = torch.rand(5, 8, 6, generator=torch.Generator().manual_seed(1)) * 3
    fast, _ = model(batch, offsets)
    slow, _ = reference(batch, offsets)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the path that keeps nothing for a backward pass
        torch.testing.assert_close(model(batch, offsets)[0], slow, rtol=1e-5, atol=1e-5)
    params = list(model.parameters())
    grads = {}
    for name, net in (("fast", model), ("slow", reference)):
        log_likelihood, _ = sequence_log_likelihood(net, batch, n_points=7)
        grads[name] = (log_likelihood, torch.autograd.grad(log_likelihood.sum(), params))
    torch.testing.assert_close(grads["fast"][0], grads["slow"][0], rtol=1e-5, atol=1e-5)
    for fast_grad, slow_grad in zip(grads["fast"][1], grads["slow"][1]):
        torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-4, atol=1e-5)


def test_nhp_gradients_match_the_reference_in_double_precision():
    model = perturbed_model(3, 6, torch.float64, seed=1)
    batch = long_batch(seed=1)
    batch = type(batch)(batch.times.double(), batch.gaps.double(), batch.types, batch.mask)
    params = list(model.parameters())
    results = []
    for net in (model, ReferenceNHP(model)):
        log_likelihood, _ = sequence_log_likelihood(net, batch, n_points=5)
        results.append(torch.autograd.grad(log_likelihood.sum(), params))
    assert results[1][0][3].abs().sum() == 0  # the padding row of the embedding learns nothing
    for fast_grad, slow_grad in zip(*results):
        torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-9, atol=1e-11)


def test_recurrence_gradient_is_the_numerical_one():
    generator = torch.Generator().manual_seed(0)
    xproj = torch.randn(4, 2, 21, dtype=torch.float64, generator=generator)
    weight = 0.5 * torch.randn(21, 3, dtype=torch.float64, generator=generator)
    gaps = torch.rand(4, 2, dtype=torch.float64, generator=generator) * 2
    inputs = tuple(t.requires_grad_() for t in (xproj, weight, gaps))
    assert torch.autograd.gradcheck(ct_lstm_states, inputs)


@pytest.mark.parametrize("chunk_rows", [512, 2])
def test_intensity_gradient_is_the_numerical_one(monkeypatch, chunk_rows):
    monkeypatch.setattr(tpp.nhp, "CHUNK_ROWS", chunk_rows)
    generator = torch.Generator().manual_seed(0)
    c, cbar, o = (torch.randn(5, 3, dtype=torch.float64, generator=generator) for _ in range(3))
    delta = torch.rand(5, 3, dtype=torch.float64, generator=generator) + 0.1
    o = torch.sigmoid(o)
    offsets = torch.rand(5, 4, dtype=torch.float64, generator=generator) * 2
    head = IntensityHead(3, 2).double()
    with torch.no_grad():
        head.log_scale.copy_(torch.tensor([0.3, -0.4]))
    tensors = tuple(t.requires_grad_() for t in (c, cbar, delta, o, offsets))

    class Intensity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head

        def forward(self, *states):
            return nhp_intensity(*states, self.head)

    names = [f"head.{name}" for name, _ in head.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in head.parameters())

    def intensity(c, cbar, delta, o, offsets, *values):
        states = (c, cbar, delta, o, offsets)
        return torch.func.functional_call(Intensity(), dict(zip(names, values)), states)

    assert torch.autograd.gradcheck(intensity, (*tensors, *params))
