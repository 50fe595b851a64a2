import numpy as np
import pytest
from river import drift
from river.drift import binary

from streams import Stream, detect_drifts, segment_by_drift


def shifted(seed, n=500, means=(0.0, 1.0)):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(mean, 0.1, n) for mean in means])


@pytest.mark.parametrize("seed", range(4))
def test_abrupt_shift_gives_two_segments_cut_soon_after_the_change(seed):
    signal = shifted(seed)
    X = np.arange(2000, dtype=np.float32).reshape(1000, 2)
    y = np.arange(1000) % 2
    stream = segment_by_drift(X, y, signal=signal, name="loss")
    assert isinstance(stream, Stream)
    assert (stream.name, stream.seed, len(stream)) == ("loss", None, 2)
    cut = stream[1].metadata["start"]
    assert 500 <= cut <= 600
    assert [dict(e.metadata) for e in stream] == [
        {"start": 0, "stop": cut},
        {"start": cut, "stop": 1000},
    ]
    np.testing.assert_array_equal(stream[0].train[0], X[:cut])
    np.testing.assert_array_equal(stream[1].train[1], y[cut:])
    assert stream[0].train[0].dtype == np.float32
    np.testing.assert_array_equal(detect_drifts(signal), [cut])


@pytest.mark.parametrize("seed", range(3))
def test_stationary_signal_gives_one_segment(seed):
    signal = np.random.default_rng(seed).normal(0.0, 0.1, 1000)
    stream = segment_by_drift(np.arange(1000), signal=signal)
    assert len(stream) == 1
    assert dict(stream[0].metadata) == {"start": 0, "stop": 1000}
    assert stream[0].train[1] is None
    assert detect_drifts(signal).size == 0


def test_two_shifts_give_three_segments():
    signal = shifted(0, means=(0.0, 1.0, 0.0))
    cuts = detect_drifts(signal)
    assert len(cuts) == 2
    assert 500 <= cuts[0] <= 600 and 1000 <= cuts[1] <= 1100
    stream = segment_by_drift(np.arange(1500), signal=signal)
    assert [e.metadata["start"] for e in stream] == [0, *cuts.tolist()]


def test_detector_passed_in_is_cloned_not_mutated():
    detector = drift.ADWIN(delta=0.01)
    segment_by_drift(np.arange(1000), signal=shifted(0), detector=detector)
    assert detector.width == 0
    assert not detector.drift_detected


def test_custom_detector_is_used():
    signal = shifted(0)
    adwin = detect_drifts(signal)
    page_hinkley = detect_drifts(signal, detector=drift.PageHinkley())
    assert len(page_hinkley) == 1 and 500 <= page_hinkley[0] <= 600
    assert page_hinkley[0] != adwin[0]


def test_binary_detector_gets_zero_one_errors():
    rng = np.random.default_rng(0)
    error_rate = np.r_[np.full(1000, 0.05), np.full(1000, 0.5)]
    errors = (rng.random(2000) < error_rate).astype(float)
    cuts = detect_drifts(errors, detector=binary.DDM())
    assert len(cuts) == 1 and 1000 <= cuts[0] <= 1100


def test_binary_detector_rejects_non_binary_signal():
    with pytest.raises(ValueError, match="signal must hold only 0 and 1"):
        detect_drifts(np.array([0.0, 0.5, 1.0]), detector=binary.DDM())


def test_min_size_skips_a_cut_that_would_leave_a_short_first_segment():
    rng = np.random.default_rng(0)
    signal = np.r_[rng.normal(0.0, 0.1, 500), rng.normal(1.0, 0.1, 1000)]
    (cut,) = detect_drifts(signal)
    np.testing.assert_array_equal(detect_drifts(signal, min_size=cut), [cut])
    assert detect_drifts(signal, min_size=cut + 1).size == 0
    stream = segment_by_drift(np.arange(1500), signal=signal, min_size=cut + 1)
    assert len(stream) == 1


def test_min_size_skips_a_cut_that_would_leave_a_short_tail():
    rng = np.random.default_rng(0)
    signal = np.r_[rng.normal(0.0, 0.1, 900), rng.normal(1.0, 0.1, 150)]
    (cut,) = detect_drifts(signal)
    tail = len(signal) - cut
    np.testing.assert_array_equal(detect_drifts(signal, min_size=tail), [cut])
    assert detect_drifts(signal, min_size=tail + 1).size == 0


def test_min_size_between_cuts():
    rng = np.random.default_rng(0)
    signal = np.r_[rng.normal(0, 0.1, 500), rng.normal(1, 0.1, 150), rng.normal(0, 0.1, 500)]
    assert len(detect_drifts(signal)) == 2
    cuts = detect_drifts(signal, min_size=200)
    assert len(cuts) == 1
    assert np.all(np.diff([0, *cuts.tolist(), len(signal)]) >= 200)


def test_signal_length_must_match_x():
    with pytest.raises(ValueError, match=r"signal must be 1-D with one value per row of X \(10\)"):
        segment_by_drift(np.arange(10), signal=np.zeros(9))


def test_signal_must_be_1d():
    with pytest.raises(ValueError, match=r"signal must be 1-D .* got shape \(10, 1\)"):
        segment_by_drift(np.arange(10), signal=np.zeros((10, 1)))
    with pytest.raises(ValueError, match="signal must be a non-empty 1-D array"):
        detect_drifts(np.zeros((3, 2)))


def test_signal_must_be_finite():
    with pytest.raises(ValueError, match="signal must be finite"):
        segment_by_drift(np.arange(3), signal=[0.0, np.nan, 1.0])


def test_detector_type():
    with pytest.raises(TypeError, match=r"detector must be a river drift detector \(.*\), got str"):
        segment_by_drift(np.arange(3), signal=np.zeros(3), detector="adwin")


def test_min_size_must_be_positive():
    with pytest.raises(ValueError, match="min_size == 0, must be >= 1"):
        segment_by_drift(np.arange(3), signal=np.zeros(3), min_size=0)


def test_x_and_y_lengths_must_match():
    with pytest.raises(ValueError, match="X and y must have the same number of rows"):
        segment_by_drift(np.arange(3), np.arange(2), signal=np.zeros(3))
