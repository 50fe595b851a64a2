import numpy as np
import pytest
import torch
from scipy import stats

from streams import EventSequences
from tpp.batches import make_batch
from tpp.likelihood import integration_fractions, sequence_log_likelihood
from tpp.poisson import PoissonTPP
from tpp.thinning import thinning_samples


class ConstantRates(torch.nn.Module):
    """A homogeneous Poisson process as a 'model': lambda_k(t) = rates[k]."""

    def __init__(self, rates):
        super().__init__()
        self.rates = torch.as_tensor(rates, dtype=torch.float32)

    def forward(self, batch, offsets):
        return self.rates.expand(*offsets.shape, len(self.rates)), torch.zeros(())


def test_sequence_log_likelihood_of_a_poisson_process_is_closed_form():
    data = EventSequences(
        np.array([1.0, 1.5, 3.0, 0.0, 2.0]), np.array([0, 1, 1, 1, 0]), np.array([0, 3, 5]), 2
    )
    rates = [0.5, 2.0]
    ll, matching = sequence_log_likelihood(ConstantRates(rates), make_batch(data, [0, 1]), 7)
    # sequence 0 scores types 1, 1 over 2.0 time units; sequence 1 scores type 0 over 2.0
    expected = [2 * np.log(2.0) - 2.5 * 2.0, np.log(0.5) - 2.5 * 2.0]
    np.testing.assert_allclose(ll.numpy(), expected, rtol=1e-6)
    assert float(matching) == 0.0


def test_poisson_baseline_agrees_with_the_neural_routine():
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 10, 30))
    data = EventSequences(times, rng.integers(0, 3, 30), np.array([0, 12, 30]), 3)
    baseline = PoissonTPP().fit(data)
    ll, _ = sequence_log_likelihood(ConstantRates(baseline.rates_), make_batch(data, [0, 1]), 5)
    assert baseline.score(data) == pytest.approx(float(ll.sum()) / 28, rel=1e-5)


def test_integration_fractions_are_midpoints():
    assert integration_fractions(2).tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match="n_points"):
        integration_fractions(0)


def test_thinning_matches_the_closed_form_poisson_case():
    rate = 1.7
    horizons = torch.full((4, 500), 30.0)
    draws = thinning_samples(
        lambda o: torch.full((*o.shape, 1), rate),
        horizons,
        n_draws=4,
        generator=torch.Generator().manual_seed(1),
    )
    samples = draws.flatten().numpy()
    assert samples.mean() == pytest.approx(1 / rate, rel=0.03)
    assert stats.kstest(samples, stats.expon(scale=1 / rate).cdf).pvalue > 0.01


def test_thinning_of_a_decaying_intensity_matches_its_distribution():
    # lambda(t) = 2 exp(-t): P(no event before t) = exp(-2 (1 - exp(-t))); censored at horizon 3
    intensity = lambda o: (2.0 * torch.exp(-o))[..., None]  # noqa: E731
    draws = (
        thinning_samples(
            intensity,
            torch.full((10, 400), 3.0),
            n_draws=2,
            generator=torch.Generator().manual_seed(0),
        )
        .flatten()
        .numpy()
    )
    survival = lambda t: np.exp(-2 * (1 - np.exp(-t)))  # noqa: E731
    assert np.mean(draws >= 3.0) == pytest.approx(survival(3.0), abs=0.02)
    assert np.mean(draws <= 0.5) == pytest.approx(1 - survival(0.5), abs=0.02)


def test_thinning_needs_a_generator_on_the_device_of_the_horizon():
    horizon = torch.full((1, 2), 1.0, device="meta")
    with pytest.raises(ValueError, match=r"generator is on cpu, but horizon is on meta"):
        thinning_samples(lambda o: o[..., None], horizon, generator=torch.Generator())
