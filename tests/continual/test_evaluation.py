"""Tests for continual.evaluation: the score matrix, its metrics and AUC over budgets."""

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from continual.evaluation import ScoreMatrix, auc_a, auc_l, auc_over_budgets

NAN = float("nan")

# R[i][j]: score on experience j after training through experience i.
LOWER = [[0.9, NAN, NAN], [0.7, 0.8, NAN], [0.5, 0.6, 0.7]]
# Here R[1][0] > R[0][0], so forgetting uses a maximum that is not on the diagonal.
RISING = [[0.5, NAN, NAN], [0.8, 0.6, NAN], [0.3, 0.5, 0.9]]


def lower_triangle(values):
    """A ScoreMatrix recording ``values[i][j]`` for j <= i."""
    n = len(values)
    scores = ScoreMatrix(n)
    for i in range(n):
        for j in range(i + 1):
            scores.record(i, j, values[i][j])
    return scores


# ---------------------------------------------------------------- construction and validation


def test_constructor_stores_arguments_unchanged():
    sizes = [10, 20]
    scores = ScoreMatrix(2, test_sizes=sizes)
    assert scores.n_experiences == 2
    assert scores.test_sizes is sizes


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None])
def test_constructor_rejects_bad_n_experiences(bad):
    with pytest.raises(ValueError, match="n_experiences must be a positive int"):
        ScoreMatrix(bad)


@pytest.mark.parametrize("bad", [[1, 2], [1, 2, 3, 4], [1, 0, 2], [1, -3, 2], [1, NAN, 2], "abc"])
def test_constructor_rejects_bad_test_sizes(bad):
    with pytest.raises(ValueError, match="test_sizes"):
        ScoreMatrix(3, test_sizes=bad)


def test_new_matrix_is_all_nan():
    matrix = ScoreMatrix(3).matrix
    assert matrix.shape == (3, 3)
    assert matrix.dtype == np.float64
    assert np.isnan(matrix).all()


def test_record_fills_one_entry_and_matrix_is_a_copy():
    scores = ScoreMatrix(2)
    scores.record(1, 0, 0.25)
    matrix = scores.matrix
    expected = np.array([[NAN, NAN], [0.25, NAN]])
    np.testing.assert_array_equal(matrix, expected)
    matrix[0, 0] = 1.0
    assert np.isnan(scores.matrix[0, 0])


def test_record_overwrites():
    scores = ScoreMatrix(1)
    scores.record(0, 0, 0.1)
    scores.record(0, 0, 0.4)
    assert scores.matrix[0, 0] == 0.4


@pytest.mark.parametrize(
    ("i", "j", "name", "value"), [(2, 0, "i", "2"), (-1, 0, "i", "-1"), (0, 5, "j", "5")]
)
def test_record_rejects_out_of_range_indices(i, j, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\], got {value}"):
        ScoreMatrix(2).record(i, j, 0.5)


@pytest.mark.parametrize(("i", "j"), [(0.0, 0), (0, "1"), (True, 0)])
def test_record_rejects_non_int_indices(i, j):
    with pytest.raises(TypeError, match="must be an int"):
        ScoreMatrix(2).record(i, j, 0.5)


def test_record_accepts_numpy_types():
    scores = ScoreMatrix(2)
    scores.record(np.int64(1), np.int32(0), np.float32(0.5))
    assert scores.matrix[1, 0] == 0.5


@pytest.mark.parametrize("bad", [NAN, math.inf, -math.inf])
def test_record_rejects_non_finite_scores(bad):
    with pytest.raises(ValueError, match="score must be finite"):
        ScoreMatrix(1).record(0, 0, bad)


@pytest.mark.parametrize("bad", ["0.5", None, True])
def test_record_rejects_non_numeric_scores(bad):
    with pytest.raises(TypeError, match="score must be a real number"):
        ScoreMatrix(1).record(0, 0, bad)


def test_from_array_round_trips():
    scores = ScoreMatrix.from_array(LOWER, test_sizes=[1, 2, 3])
    np.testing.assert_array_equal(scores.matrix, np.array(LOWER))
    assert scores.n_experiences == 3
    assert scores.test_sizes == [1, 2, 3]


@pytest.mark.parametrize("bad", [[1.0, 2.0], [[1.0, 2.0]], [], [[[1.0]]]])
def test_from_array_rejects_non_square(bad):
    with pytest.raises(ValueError, match="array must be a non-empty square 2-d array"):
        ScoreMatrix.from_array(bad)


def test_from_array_rejects_infinite():
    with pytest.raises(ValueError, match="infinite"):
        ScoreMatrix.from_array([[math.inf]])


# ---------------------------------------------------------------- derived metrics, by hand


def test_metrics_by_hand():
    scores = ScoreMatrix.from_array(LOWER)
    np.testing.assert_allclose(scores.incremental_accuracies(), [0.9, 0.75, 0.6])
    assert scores.average_incremental_accuracy() == pytest.approx(0.75)
    assert scores.last_accuracy() == pytest.approx(0.6)
    # j=0: max(0.9, 0.7) - 0.5 = 0.4; j=1: 0.8 - 0.6 = 0.2
    assert scores.forgetting() == pytest.approx(0.3)
    # (0.5 - 0.9 + 0.6 - 0.8) / 2
    assert scores.backward_transfer() == pytest.approx(-0.3)


def test_forgetting_uses_best_earlier_score_not_the_diagonal():
    scores = ScoreMatrix.from_array(RISING)
    # j=0: max(0.5, 0.8) - 0.3 = 0.5; j=1: 0.6 - 0.5 = 0.1
    assert scores.forgetting() == pytest.approx(0.3)
    # (0.3 - 0.5 + 0.5 - 0.6) / 2
    assert scores.backward_transfer() == pytest.approx(-0.15)


def test_forgetting_ignores_the_last_row_in_the_maximum():
    # The final score is the best one for experience 0: forgetting is negative.
    scores = ScoreMatrix.from_array([[0.2, NAN], [0.9, 0.5]])
    assert scores.forgetting() == pytest.approx(0.2 - 0.9)


def test_weighted_incremental_accuracies_by_hand():
    scores = ScoreMatrix.from_array(LOWER, test_sizes=[1, 3, 6])
    expected = [0.9, (0.7 * 1 + 0.8 * 3) / 4, (0.5 * 1 + 0.6 * 3 + 0.7 * 6) / 10]
    np.testing.assert_allclose(scores.incremental_accuracies(), expected)
    assert scores.average_incremental_accuracy() == pytest.approx(np.mean(expected))
    assert scores.last_accuracy() == pytest.approx(0.65)
    # forgetting and backward transfer stay unweighted
    assert scores.forgetting() == pytest.approx(0.3)
    assert scores.backward_transfer() == pytest.approx(-0.3)


def test_entries_above_the_diagonal_are_forward_scores_only():
    full = np.array(LOWER)
    full[np.triu_indices(3, k=1)] = [0.1, 0.0, 0.3]  # R[0][1], R[0][2], R[1][2]
    with_upper = ScoreMatrix.from_array(full).summary()
    lower = ScoreMatrix.from_array(LOWER).summary()
    assert with_upper.pop("forward_score") == pytest.approx((0.1 + 0.3) / 2)
    assert lower.pop("forward_score") is None
    assert with_upper == pytest.approx(lower)


def test_lower_is_better_flips_forgetting_and_transfer():
    errors = ScoreMatrix.from_array([[0.2, np.nan], [0.5, 0.1]], higher_is_better=False)
    assert errors.forgetting() == pytest.approx(0.3)  # the error on 0 rose from 0.2 to 0.5
    assert errors.backward_transfer() == pytest.approx(-0.3)
    assert errors.to_dict()["higher_is_better"] is False


def test_single_experience():
    scores = ScoreMatrix.from_array([[0.42]])
    assert scores.summary() == pytest.approx(
        {
            "average_incremental_accuracy": 0.42,
            "last_accuracy": 0.42,
            "forgetting": 0.0,
            "backward_transfer": 0.0,
            "forward_score": None,
        }
    )


def test_missing_entry_raises_and_names_it():
    scores = ScoreMatrix(2)
    scores.record(0, 0, 0.5)
    scores.record(1, 1, 0.5)
    for metric in (
        scores.incremental_accuracies,
        scores.average_incremental_accuracy,
        scores.last_accuracy,
        scores.forgetting,
        scores.backward_transfer,
        scores.summary,
        scores.to_dict,
    ):
        with pytest.raises(ValueError, match=r"R\[1\]\[0\] was not recorded"):
            metric()


def test_last_accuracy_needs_only_the_last_row():
    scores = ScoreMatrix(2)
    scores.record(1, 0, 0.4)
    scores.record(1, 1, 0.8)
    assert scores.last_accuracy() == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"R\[0\]\[0\]"):
        scores.average_incremental_accuracy()


def test_to_dict_is_json_ready():
    scores = ScoreMatrix.from_array(LOWER, test_sizes=[1, 3, 6])
    data = json.loads(json.dumps(scores.to_dict()))
    assert data["n_experiences"] == 3
    assert data["test_sizes"] == [1, 3, 6]
    assert data["matrix"] == [[0.9, None, None], [0.7, 0.8, None], [0.5, 0.6, 0.7]]
    assert data["summary"] == pytest.approx(scores.summary())
    assert set(data["summary"]) == {
        "average_incremental_accuracy",
        "last_accuracy",
        "forgetting",
        "backward_transfer",
        "forward_score",
    }


def test_from_dict_reads_back_what_to_dict_wrote_through_json():
    scores = ScoreMatrix.from_array(LOWER, test_sizes=[1, 3, 6], higher_is_better=False)
    back = ScoreMatrix.from_dict(json.loads(json.dumps(scores.to_dict())))
    np.testing.assert_array_equal(back.matrix, scores.matrix)
    assert back.test_sizes == [1, 3, 6] and back.higher_is_better is False
    # 1 * 0.5 + 3 * 0.6 + 6 * 0.7 over 10 test examples, computed by hand
    assert back.last_accuracy() == pytest.approx(0.65)


@pytest.mark.parametrize("data", [[[0.5]], {"summary": {}}])
def test_from_dict_names_the_missing_matrix(data):
    with pytest.raises(ValueError, match="data must be a mapping with a 'matrix' entry"):
        ScoreMatrix.from_dict(data)


# ---------------------------------------------------------------- properties


@st.composite
def correct_counts(draw):
    """Test sizes and, for j <= i, the number of correct test examples of experience j."""
    n = draw(st.integers(1, 5))
    sizes = draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    counts = [[draw(st.integers(0, sizes[j])) for j in range(i + 1)] for i in range(n)]
    return sizes, counts


@settings(max_examples=50, deadline=None)
@given(correct_counts())
def test_weighted_incremental_accuracy_is_pooled_accuracy(data):
    sizes, counts = data
    n = len(sizes)
    scores = ScoreMatrix(n, test_sizes=sizes)
    for i in range(n):
        for j in range(i + 1):
            scores.record(i, j, counts[i][j] / sizes[j])
    pooled = [sum(counts[i]) / sum(sizes[: i + 1]) for i in range(n)]
    np.testing.assert_allclose(scores.incremental_accuracies(), pooled)
    assert scores.last_accuracy() == pytest.approx(pooled[-1])


score_values = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def lower_matrices(draw):
    n = draw(st.integers(1, 5))
    return [[draw(score_values) for _ in range(i + 1)] for i in range(n)]


@settings(max_examples=50, deadline=None)
@given(lower_matrices())
def test_forgetting_bounds_backward_transfer(values):
    # max over l in [j, T-2] of R[l][j] >= R[j][j], so forgetting >= -backward transfer.
    scores = lower_triangle(values)
    assert scores.forgetting() + scores.backward_transfer() >= -1e-12
    accuracies = scores.incremental_accuracies()
    assert accuracies.min() - 1e-12 <= scores.average_incremental_accuracy()
    assert scores.average_incremental_accuracy() <= accuracies.max() + 1e-12


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), score_values)
def test_constant_matrix(n, value):
    scores = lower_triangle([[value] * (i + 1) for i in range(n)])
    assert scores.summary() == pytest.approx(
        {
            "average_incremental_accuracy": value,
            "last_accuracy": value,
            "forgetting": 0.0,
            "backward_transfer": 0.0,
            "forward_score": None,
        }
    )


# ---------------------------------------------------------------- AUC over budgets


def test_auc_by_hand():
    budgets = [1_000_000, 2_000_000, 4_000_000]
    scores = [0.5, 0.6, 0.8]
    # (0.5 + 0.6) / 2 * 1 MB + (0.6 + 0.8) / 2 * 2 MB
    assert auc_over_budgets(budgets, scores) == pytest.approx(1.95)


def test_auc_sorts_points_by_budget():
    budgets = [4_000_000, 1_000_000, 2_000_000]
    scores = [0.8, 0.5, 0.6]
    assert auc_over_budgets(budgets, scores) == pytest.approx(1.95)


def test_auc_units():
    budgets = [2**20, 3 * 2**20]
    scores = [0.4, 0.6]
    assert auc_over_budgets(budgets, scores, unit="MiB") == pytest.approx(1.0)
    assert auc_over_budgets(budgets, scores, unit="MB") == pytest.approx(2 * 2**20 / 1e6 * 0.5)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 10**9), min_size=2, max_size=8, unique=True).flatmap(
        lambda b: st.tuples(st.just(b), st.lists(score_values, min_size=len(b), max_size=len(b)))
    )
)
def test_auc_matches_trapezoid_sum(data):
    budgets, scores = data
    points = sorted(zip(budgets, scores))
    by_hand = sum(
        (x1 - x0) / 1e6 * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points)
    )
    xs, ys = zip(*points)
    auc = auc_over_budgets(budgets, scores)
    assert auc == pytest.approx(by_hand, rel=1e-9, abs=1e-12)
    assert auc == pytest.approx(np.trapezoid(ys, np.array(xs) / 1e6), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("budgets", "scores", "match"),
    [
        ([1], [0.5], "at least 2 points"),
        ([], [], "at least 2 points"),
        ([1, 2], [0.5], "same length"),
        ([1, 2, 3], [0.5, 0.6], "same length"),
        ([1, 1, 2], [0.5, 0.6, 0.7], "all be different"),
        ([-1, 2], [0.5, 0.6], "non-negative"),
        ([1, 2], [0.5, NAN], "scores must be finite"),
    ],
)
def test_auc_rejects_bad_points(budgets, scores, match):
    with pytest.raises(ValueError, match=match):
        auc_over_budgets(budgets, scores)


def test_auc_rejects_unknown_unit():
    with pytest.raises(ValueError, match=r"unit must be one of .* got 'GB'"):
        auc_over_budgets([1, 2], [0.5, 0.6], unit="GB")


def test_auc_a_and_auc_l_use_the_right_metric():
    budgets = [3_000_000, 1_000_000]
    runs = [ScoreMatrix.from_array(LOWER), ScoreMatrix.from_array(RISING)]
    # LOWER: average incremental accuracy 0.75, last 0.6.
    # RISING: A = [0.5, 0.7, 0.5667], average 0.5889, last 0.5667.
    rising_average = np.mean([0.5, 0.7, 1.7 / 3])
    assert auc_a(budgets, runs) == pytest.approx((0.75 + rising_average) / 2 * 2)
    assert auc_l(budgets, runs) == pytest.approx((0.6 + 1.7 / 3) / 2 * 2)
    assert auc_l(budgets, runs, unit="MiB") == pytest.approx((0.6 + 1.7 / 3) / 2 * 2e6 / 2**20)


def test_auc_a_validates_matrices():
    with pytest.raises(TypeError, match=r"matrices\[1\] must be a ScoreMatrix"):
        auc_a([1, 2], [ScoreMatrix.from_array([[0.5]]), [[0.5]]])
    with pytest.raises(ValueError, match="same length"):
        auc_l([1, 2, 3], [ScoreMatrix.from_array([[0.5]])] * 2)
