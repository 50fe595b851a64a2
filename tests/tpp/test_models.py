import numpy as np
import pytest
import torch

from streams import EventSequences
from tpp.attnhp import AttNHP
from tpp.batches import make_batch
from tpp.nhp import NHP


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
