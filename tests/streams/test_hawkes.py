import numpy as np
import pytest
import torch
from scipy import integrate, stats

from streams.hawkes import HawkesProcess, hawkes_drift_stream, oracle_log_likelihood, random_hawkes
from tpp.likelihood import integration_fractions, log_likelihood_from_intensities


def process():
    return HawkesProcess(
        np.array([0.3, 0.2, 0.1]),
        np.array([[0.3, 0.1, 0.0], [0.2, 0.2, 0.1], [0.0, 0.3, 0.3]]),
        1.5,
    )


def test_exact_log_likelihood_matches_numerical_integration():
    p = process()
    times, types = p.simulate(40.0, random_state=1)
    grid_integral, _ = integrate.quad(
        lambda t: p.intensity([t], times, types).sum(), 0.0, 40.0, points=times, limit=500
    )
    log_events = np.log(p.intensity(times, times, types)[np.arange(len(times)), types]).sum()
    assert p.log_likelihood(times, types, end=40.0) == pytest.approx(
        log_events - grid_integral, abs=1e-6
    )


def test_library_log_likelihood_on_true_intensity_reproduces_the_exact_value():
    p = process()
    times, types = p.simulate(100.0, random_state=2)
    exact = p.log_likelihood(times, types, condition_on_first=True)
    errors = []
    for n_points in (5, 20, 80):
        gaps = np.diff(times)
        points = times[:-1, None] + integration_fractions(n_points).numpy() * gaps[:, None]
        total = p.intensity(points.ravel(), times, types).sum(1).reshape(points.shape)
        at_events = p.intensity(times[1:], times, types)[np.arange(len(times) - 1), types[1:]]
        ll = log_likelihood_from_intensities(
            torch.as_tensor(at_events[None]),
            torch.as_tensor(total[None]),
            torch.as_tensor(gaps[None]),
            torch.ones(1, len(gaps), dtype=torch.bool),
        ).item()
        errors.append(abs(ll - exact))
    # midpoint rule: error within 1e-3 nats per event at 20 points, shrinking like 1/S^2
    assert errors[1] < 1e-3 * len(times)
    assert errors[0] / errors[1] > 8 and errors[1] / errors[2] > 8


def test_thinning_simulator_reproduces_poisson_counts():
    p = HawkesProcess(np.array([0.5, 1.5]), np.zeros((2, 2)), 1.0)
    counts = [np.bincount(p.simulate(10.0, random_state=s)[1], minlength=2) for s in range(300)]
    counts = np.array(counts)
    assert counts.mean(0) == pytest.approx([5.0, 15.0], rel=0.06)
    assert counts[:, 1].var() == pytest.approx(15.0, rel=0.2)
    gaps = np.concatenate([np.diff(p.simulate(50.0, random_state=s)[0]) for s in range(20)])
    assert stats.kstest(gaps, stats.expon(scale=0.5).cdf).pvalue > 0.01


def test_simulated_mean_rate_matches_stationary_theory():
    p = process()
    stationary = np.linalg.solve(np.eye(3) - p.adjacency, p.baseline)
    _, types = p.simulate(3000.0, random_state=0)
    assert np.bincount(types, minlength=3) / 3000.0 == pytest.approx(stationary, rel=0.15)


def test_random_hawkes_respects_the_ranges():
    for seed in range(5):
        p = random_hawkes(5, random_state=seed)
        assert 0.5 <= p.spectral_radius <= 0.8 + 1e-9
        assert np.all((p.baseline >= 0.05) & (p.baseline <= 0.4))
        assert 1.0 <= p.decay <= 2.0


def test_drift_stream_shape_and_oracle():
    stream = hawkes_drift_stream(3, 4, horizon=300.0, n_sequences=10, seed=0)
    assert len(stream) == 3
    for exp in stream:
        assert (len(exp.train), len(exp.metadata["dev"]), len(exp.test)) == (7, 1, 2)
        assert exp.train.dim_process == 4 and exp.test.lengths.min() >= 3
        assert exp.metadata["oracle"] == pytest.approx(
            oracle_log_likelihood(exp.metadata["process"], exp.test)
        )
    # the true regime explains its own data better than another regime does
    own = stream[1].metadata["oracle"]
    other = oracle_log_likelihood(stream[0].metadata["process"], stream[1].test)
    assert own > other


def test_bad_parameters():
    with pytest.raises(ValueError, match="baseline"):
        HawkesProcess(np.array([-1.0]), np.zeros((1, 1)), 1.0)
    with pytest.raises(ValueError, match="adjacency"):
        HawkesProcess(np.array([1.0]), np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="decay"):
        HawkesProcess(np.array([1.0]), np.zeros((1, 1)), 0.0)
