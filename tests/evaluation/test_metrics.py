"""Tests of the metric functions against closed forms, hand computations and the sqrtm reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest

from evaluation.metrics import (
    FeatureStatistics,
    RunningStatistics,
    fid_rr,
    frechet_distance,
    frechet_distance_features,
    frechet_distance_sqrtm,
    frechet_distance_to_statistics,
    kid,
    precision_recall,
    relative_fid,
)

Array = npt.NDArray[np.float64]


def diagonal_statistics(mean: list[float], variances: list[float]) -> FeatureStatistics:
    return FeatureStatistics(
        mean=np.array(mean, dtype=np.float64),
        covariance=np.diag(np.array(variances, dtype=np.float64)),
        count=100,
    )


def correlated_samples(rng: np.random.Generator, n: int, dim: int, shift: float) -> Array:
    # Non-negative, correlated, anisotropic: closer to pooled CNN activations than white noise.
    mixing = rng.standard_normal((dim, dim)) / math.sqrt(dim)
    return np.abs(rng.standard_normal((n, dim)) @ mixing + shift)


# --- Fréchet distance ---------------------------------------------------------------------------


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians() -> None:
    a = diagonal_statistics([0.0, 1.0, -2.0, 5.0], [1.0, 4.0, 0.25, 9.0])
    b = diagonal_statistics([1.0, 1.0, 0.0, 2.0], [4.0, 1.0, 0.25, 16.0])
    # ||mean_a - mean_b||² + sum(var_a + var_b - 2 sqrt(var_a var_b))
    #   = (1 + 0 + 4 + 9) + (1 + 1 + 0 + 1)
    assert frechet_distance(a, b) == pytest.approx(17.0, rel=1e-12)
    assert frechet_distance(b, a) == pytest.approx(17.0, rel=1e-12)


def test_frechet_distance_of_one_dimensional_gaussians_is_mean_and_std_differences() -> None:
    a = diagonal_statistics([3.0], [2.25])
    b = diagonal_statistics([1.0], [0.36])
    assert frechet_distance(a, b) == pytest.approx((3.0 - 1.0) ** 2 + (1.5 - 0.6) ** 2, rel=1e-12)


def test_frechet_distance_of_a_rotated_pair_matches_the_closed_form() -> None:
    # Rotating both Gaussians by the same orthogonal matrix leaves the distance unchanged, and
    # makes the covariances non-diagonal, so the Cholesky path sees a general matrix.
    rng = np.random.default_rng(3)
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    var_a = np.array([1.0, 2.0, 3.0, 0.5, 4.0, 0.1])
    var_b = np.array([2.0, 2.0, 1.0, 0.5, 9.0, 0.4])
    mean_a, mean_b = rng.standard_normal(6), rng.standard_normal(6)
    expected = float(np.sum((mean_a - mean_b) ** 2))
    expected += float(np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b)))
    a = FeatureStatistics(rotation @ mean_a, rotation @ np.diag(var_a) @ rotation.T, 50)
    b = FeatureStatistics(rotation @ mean_b, rotation @ np.diag(var_b) @ rotation.T, 50)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_identical_statistics_is_zero() -> None:
    rng = np.random.default_rng(4)
    stats = FeatureStatistics.from_features(correlated_samples(rng, 300, 32, 0.5))
    assert frechet_distance(stats, stats) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(stats, stats) >= 0.0


@pytest.fixture(scope="module")
def statistics_2048() -> tuple[FeatureStatistics, FeatureStatistics]:
    rng = np.random.default_rng(2048)
    a = FeatureStatistics.from_features(correlated_samples(rng, 4000, 2048, 0.0))
    b = FeatureStatistics.from_features(correlated_samples(rng, 4000, 2048, 0.1))
    return a, b


def test_frechet_distance_agrees_with_the_sqrtm_reference_on_2048_d_statistics(
    statistics_2048: tuple[FeatureStatistics, FeatureStatistics],
) -> None:
    a, b = statistics_2048
    fast = frechet_distance(a, b)
    reference = frechet_distance_sqrtm(a, b)
    assert reference > 1.0
    assert abs(fast - reference) <= 1e-6 * abs(reference)


def test_frechet_distance_agrees_with_sqrtm_when_covariances_are_singular() -> None:
    # 40 and 50 samples in 64 dimensions: both covariances have rank < 64, the FID_rr situation.
    rng = np.random.default_rng(5)
    xa = correlated_samples(rng, 40, 64, 0.0)
    xb = correlated_samples(rng, 50, 64, 0.3)
    a, b = FeatureStatistics.from_features(xa), FeatureStatistics.from_features(xb)
    reference = frechet_distance_sqrtm(a, b)
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-6)
    assert frechet_distance_features(xa, xb) == pytest.approx(reference, rel=1e-6)


def test_frechet_distance_features_equals_the_statistics_route_above_the_dimension() -> None:
    rng = np.random.default_rng(6)
    xa = correlated_samples(rng, 120, 16, 0.0)
    xb = correlated_samples(rng, 90, 16, 0.2)
    expected = frechet_distance(
        FeatureStatistics.from_features(xa), FeatureStatistics.from_features(xb)
    )
    assert frechet_distance_features(xa, xb) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("samples_a", [40, 200])
def test_frechet_distance_to_statistics_equals_the_statistics_route(samples_a: int) -> None:
    # 40 samples in 64 dimensions: a singular reference covariance, factored by its features;
    # 200: at least as many samples as dimensions, the statistics route itself. Either way the
    # other side is statistics, as the generated side of an evaluation is (streamed).
    rng = np.random.default_rng(7)
    xa = correlated_samples(rng, samples_a, 64, 0.0)
    b = FeatureStatistics.from_features(correlated_samples(rng, 500, 64, 0.3))
    a = FeatureStatistics.from_features(xa)
    assert frechet_distance_to_statistics(xa, b) == pytest.approx(
        frechet_distance_sqrtm(a, b), rel=1e-6
    )
    assert frechet_distance_to_statistics(xa, b) == pytest.approx(frechet_distance(a, b), rel=1e-9)
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance_to_statistics(xa[:, :10], b)


def test_frechet_distance_refuses_statistics_of_different_dimensions() -> None:
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(diagonal_statistics([0.0], [1.0]), diagonal_statistics([0, 0], [1, 1]))


# --- running statistics -------------------------------------------------------------------------


def test_running_statistics_equal_mean_and_cov_of_the_concatenated_batches() -> None:
    rng = np.random.default_rng(7)
    # A mean far from zero relative to the spread is where naive sum-of-squares loses digits.
    batches = [rng.standard_normal((n, 5)) * 0.01 + 1e4 for n in (1, 17, 0, 64, 3, 100)]
    running = RunningStatistics(5)
    for batch in batches:
        running.update(batch)
    stats = running.finalize()
    everything = np.concatenate(batches)
    assert stats.count == 185
    np.testing.assert_allclose(stats.mean, everything.mean(axis=0), rtol=1e-14)
    centred = everything - everything.mean(axis=0)
    # Variances are 1e-4; the inputs themselves only carry about 1e-12 absolute at 1e4.
    np.testing.assert_allclose(
        stats.covariance, np.cov(centred, rowvar=False), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_array_equal(stats.covariance, stats.covariance.T)


def test_running_statistics_need_two_samples_and_the_right_dimension() -> None:
    running = RunningStatistics(3)
    running.update(np.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        running.finalize()
    with pytest.raises(ValueError, match="dimension 3"):
        running.update(np.ones((2, 4)))


# --- FID_rr and r_FID ---------------------------------------------------------------------------


def test_fid_rr_matches_a_hand_computation_with_the_same_permutations() -> None:
    rng = np.random.default_rng(8)
    features = correlated_samples(rng, 401, 6, 1.0)
    mean, std = fid_rr(features, splits=4, seed=11)

    permutations = np.random.default_rng(11)
    values = []
    for _ in range(4):
        order = permutations.permutation(401)
        first, second = features[order[:200]], features[order[200:400]]
        values.append(
            frechet_distance_sqrtm(
                FeatureStatistics(first.mean(0), np.cov(first, rowvar=False), 200),
                FeatureStatistics(second.mean(0), np.cov(second, rowvar=False), 200),
            )
        )
    assert mean == pytest.approx(float(np.mean(values)), rel=1e-9)
    assert std == pytest.approx(float(np.std(values)), rel=1e-6)
    assert std > 0.0


def test_fid_rr_of_one_gaussian_is_small_compared_with_a_shifted_one() -> None:
    rng = np.random.default_rng(9)
    features = rng.standard_normal((2000, 8))
    mean, std = fid_rr(features, splits=10, seed=0)
    # Expected FID of two 1000-sample halves of N(0, I_8) is about d(d+1)/(2n) ≈ 0.04; the same
    # set against one shifted by 1 in every dimension is 8.
    assert 0.0 < mean < 0.1
    assert std < mean
    shifted = FeatureStatistics.from_features(rng.standard_normal((2000, 8)) + 1.0)
    assert frechet_distance(FeatureStatistics.from_features(features), shifted) > 7.5


def test_fid_rr_with_one_split_has_zero_spread_and_needs_four_samples() -> None:
    features = np.random.default_rng(10).standard_normal((10, 3))
    assert fid_rr(features, splits=1)[1] == 0.0
    with pytest.raises(ValueError, match="at least 4"):
        fid_rr(features[:3])


def test_relative_fid_is_the_ratio_of_real_real_to_real_synthetic() -> None:
    assert relative_fid(2.0, 8.0) == 0.25
    assert relative_fid(12.0, 4.0) == 3.0
    assert relative_fid(0.0, 5.0) == 0.0
    assert relative_fid(0.0, 0.0) == 1.0
    assert relative_fid(3.0, 0.0) == math.inf
    with pytest.raises(ValueError):
        relative_fid(-1.0, 2.0)
    with pytest.raises(ValueError):
        relative_fid(1.0, math.nan)


# --- KID ----------------------------------------------------------------------------------------


def cubic_kernel(x: Array, y: Array) -> float:
    return float((x @ y / x.size + 1.0) ** 3)


def test_kid_with_one_full_subset_equals_the_hand_computed_unbiased_mmd() -> None:
    a = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 0.5]])
    b = np.array([[1.0, 1.0], [3.0, -1.0], [0.5, 0.5]])
    m = 3
    within_a = sum(cubic_kernel(a[i], a[j]) for i, j in itertools.permutations(range(m), 2))
    within_b = sum(cubic_kernel(b[i], b[j]) for i, j in itertools.permutations(range(m), 2))
    across = sum(cubic_kernel(a[i], b[j]) for i in range(m) for j in range(m))
    expected = (within_a + within_b) / (m * (m - 1)) - 2 * across / (m * m)

    # One subset of every row of each set: any draw is a permutation, which MMD² ignores.
    mean, std = kid(a, b, subsets=1, subset_size=3)
    assert mean == pytest.approx(expected, rel=1e-12)
    assert std == 0.0
    assert kid(a, b, subsets=1, subset_size=3, max_kernel_elements=0)[0] == pytest.approx(
        expected, rel=1e-12
    )


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(12)
    a = rng.standard_normal((600, 16))
    b = rng.standard_normal((600, 16))
    c = rng.standard_normal((600, 16)) * 1.5 + 0.5
    same_mean, same_std = kid(a, b, subsets=50, subset_size=200, seed=1)
    other_mean, other_std = kid(a, c, subsets=50, subset_size=200, seed=1)
    assert abs(same_mean) < 0.05
    assert abs(same_mean) < 3 * same_std
    assert other_mean > 1.0
    assert other_mean > 5 * other_std


def test_kid_caps_the_subset_size_at_the_smaller_set_and_both_kernel_routes_agree() -> None:
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((40, 4)), rng.standard_normal((25, 4)) + 0.2
    capped = kid(a, b, subsets=7, subset_size=1000, seed=3)
    assert capped == kid(a, b, subsets=7, subset_size=25, seed=3)
    per_subset = kid(a, b, subsets=7, subset_size=1000, seed=3, max_kernel_elements=0)
    assert per_subset[0] == pytest.approx(capped[0], rel=1e-12)
    assert per_subset[1] == pytest.approx(capped[1], rel=1e-9)


# --- precision and recall -----------------------------------------------------------------------


def lattice(side: int, offset: float = 0.0) -> Array:
    return np.array(
        [(i + offset, j + offset) for i in range(side) for j in range(side)], dtype=np.float64
    )


def test_precision_is_one_for_fake_points_inside_the_real_manifold_and_zero_far_away() -> None:
    real = lattice(10)  # with k = 1 every real radius is 1 (the lattice spacing)
    inside = lattice(10, offset=0.3)  # each within 0.42 of a real point
    far = lattice(10, offset=100.0)
    assert precision_recall(real, inside, k=1) == (1.0, 1.0)
    assert precision_recall(real, far, k=1) == (0.0, 0.0)


def test_recall_counts_the_real_points_that_a_collapsed_fake_set_covers() -> None:
    real = lattice(10)
    fake = lattice(3)  # the 3 x 3 corner of the real lattice, fake radii 1 with k = 1
    precision, recall = precision_recall(real, fake, k=1)
    # Fake points lie on real ones: precision 1. Real points within distance 1 (boundary
    # included) of the corner: its 9 points and the 3 + 3 next to its two inner edges.
    assert precision == 1.0
    assert recall == 15 / 100


def test_precision_recall_is_the_same_in_any_chunk_size() -> None:
    rng = np.random.default_rng(14)
    real = rng.standard_normal((230, 8))
    fake = rng.standard_normal((170, 8)) * 1.3 + 0.4
    whole = precision_recall(real, fake, k=5, chunk_rows=10_000)
    assert precision_recall(real, fake, k=5, chunk_rows=7) == whole
    assert 0.0 < whole[0] < 1.0
    assert 0.0 < whole[1] < 1.0


def test_precision_recall_refuses_k_not_below_the_set_size() -> None:
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(lattice(2), lattice(3), k=4)
