"""Sample-quality metrics as pure functions over feature vectors or their statistics, in float64.

- `RunningStatistics` accumulates mean and covariance batch by batch, so that an evaluation of
  100,000 generated images never holds their features at once.
- `frechet_distance` is the Fréchet (2-Wasserstein) distance between two Gaussians, the number
  behind FID; `frechet_distance_sqrtm` computes the same number the way pytorch-fid does, as the
  reference it is tested and benchmarked against.
- `fid_rr` is the FID between random halves of the real reference set (FID_rr, a floor for what
  a generator can reach on that set); `relative_fid` is the medigan paper's ratio
  r_FID = FID_rr / FID_rs.
- `kid` is the Kernel Inception Distance (unbiased MMD², cubic polynomial kernel, over subsets).
- `precision_recall` is the improved precision and recall of k-NN manifolds.

Numbers follow the published definitions; where a definition leaves a choice (the spread of
FID_rr, r_FID at FID_rs = 0) the function's docstring says which one is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.linalg

__all__ = [
    "FeatureStatistics",
    "RunningStatistics",
    "fid_rr",
    "frechet_distance",
    "frechet_distance_features",
    "frechet_distance_sqrtm",
    "frechet_distance_to_statistics",
    "kid",
    "precision_recall",
    "relative_fid",
]

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class FeatureStatistics:
    """Mean (d,), unbiased covariance (d, d) and sample count of a set of feature vectors."""

    mean: Float64Array
    covariance: Float64Array
    count: int

    def __post_init__(self) -> None:
        if self.mean.ndim != 1 or self.covariance.shape != (self.mean.size, self.mean.size):
            raise ValueError(
                f"mean must be (d,) and covariance (d, d); got {self.mean.shape} and "
                f"{self.covariance.shape}"
            )
        if self.count < 2:
            raise ValueError(f"statistics need at least 2 samples, got {self.count}")

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    @classmethod
    def from_features(cls, features: npt.ArrayLike) -> FeatureStatistics:
        """Statistics of a (N, d) array of features, N >= 2: `np.mean` and `np.cov` in float64."""
        array = _as_features(features)
        if array.shape[0] < 2:
            raise ValueError(f"statistics need at least 2 samples, got {array.shape[0]}")
        return cls(
            mean=array.mean(axis=0),
            covariance=np.atleast_2d(np.cov(array, rowvar=False)),
            count=int(array.shape[0]),
        )


class RunningStatistics:
    """Mean and covariance of feature vectors that arrive in batches, in float64.

    Each batch's own mean and centred scatter matrix are merged into the running ones with the
    pairwise (parallel) update of streaming mean and covariance. Unlike accumulating
    sum(x) and sum(x xᵀ) and subtracting at the end, it never forms the difference of two large
    nearly-equal numbers, so features with a large mean relative to their spread keep their
    precision. Memory is O(d²) whatever the number of samples.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.count = 0
        self._mean: Float64Array = np.zeros(dim, dtype=np.float64)
        # Sum over samples of (x - mean)(x - mean)ᵀ, the numerator of the covariance.
        self._scatter: Float64Array = np.zeros((dim, dim), dtype=np.float64)

    def update(self, features: npt.ArrayLike) -> None:
        """Add a (n, dim) batch of feature vectors; an empty batch changes nothing."""
        batch = _as_features(features)
        if batch.shape[1] != self.dim:
            raise ValueError(f"expected features of dimension {self.dim}, got {batch.shape[1]}")
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        batch_scatter = centred.T @ centred
        total = self.count + n
        delta = batch_mean - self._mean
        self._mean = self._mean + delta * (n / total)
        self._scatter += batch_scatter + np.outer(delta, delta) * (self.count * n / total)
        self.count = total

    def finalize(self) -> FeatureStatistics:
        """Statistics so far, covariance with ddof=1 as `np.cov`; needs at least 2 samples."""
        if self.count < 2:
            raise ValueError(f"statistics need at least 2 samples, got {self.count}")
        # Symmetrise: the rank-one updates are symmetric in exact arithmetic only.
        covariance = (self._scatter + self._scatter.T) / (2.0 * (self.count - 1))
        return FeatureStatistics(mean=self._mean.copy(), covariance=covariance, count=self.count)


def frechet_distance(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """Fréchet distance ||μa - μb||² + tr(Σa) + tr(Σb) - 2 tr((Σa Σb)^½) between two Gaussians.

    tr((Σa Σb)^½) is the sum of the square roots of the eigenvalues of Σa Σb, and those are the
    eigenvalues of the symmetric positive semi-definite matrix Lᵀ Σb L for any factor Σa = L Lᵀ.
    L is the Cholesky factor when Σa is positive definite; otherwise (fewer samples than
    dimensions, or constant features) L = V diag(√w) from the eigendecomposition Σa = V diag(w) Vᵀ
    with negative rounding noise in w set to 0. One Cholesky (or `eigh`) plus one symmetric
    eigenvalues-only solve replaces the general matrix square root (a Schur decomposition):
    about 10x faster at d = 2048 on one core (`benchmarks/frechet.py`), and never complex.

    Numerical behaviour: eigenvalues of Lᵀ Σb L are exact up to about d·ε·λmax; those below that
    level (Σa Σb is singular) are set to 0 before the square root, so rank deficiency does not
    add √noise per dimension. No ε offset is added to the covariances, unlike pytorch-fid's
    fallback for singular products, so for singular inputs the two differ by that offset's
    effect. A result that rounding takes below 0 (identical statistics) is returned as 0.0.
    """
    _check_same_dim(a, b)
    trace_sqrt = _trace_sqrt_product(a.covariance, b.covariance)
    return _assemble(a.mean - b.mean, a.covariance, b.covariance, trace_sqrt)


def frechet_distance_to_statistics(features_a: npt.ArrayLike, b: FeatureStatistics) -> float:
    """Fréchet distance between the Gaussian fitted to features (N, d) and statistics `b`.

    In exact arithmetic `frechet_distance(FeatureStatistics.from_features(features_a), b)`.
    With fewer samples than dimensions (a reference set of 624 images, 2048-d Inception features)
    Σa is singular, and `frechet_distance` has to eigendecompose the d x d matrix to factor it:
    tens of seconds at d = 2048 on a loaded 2-core machine. The centred features are a factor
    already: Σa = L Lᵀ with L = (Xa - μa)ᵀ / √(N - 1), d x N, so tr((Σa Σb)^½) comes from the
    N x N matrix Lᵀ Σb L (two matrix products and an N x N symmetric eigenvalue solve), with less
    rounding than through the eigendecomposition (docs/evaluation.md, "The Fréchet distance").
    With at least as many samples as dimensions this is `frechet_distance` of the statistics.
    """
    xa = _as_features(features_a)
    n, dim = int(xa.shape[0]), int(xa.shape[1])
    if dim != b.dim:
        raise ValueError(f"feature dimensions differ: {dim} and {b.dim}")
    if n < 2:
        raise ValueError(f"statistics need at least 2 samples, got {n}")
    if n >= dim:
        return frechet_distance(FeatureStatistics.from_features(xa), b)
    mean = xa.mean(axis=0)
    centred = xa - mean
    factor: Float64Array = centred.T / math.sqrt(n - 1)
    trace_sqrt = _trace_sqrt_from_factor(factor, b.covariance)
    diff = mean - b.mean
    trace_a = float(np.einsum("ij,ij->", centred, centred)) / (n - 1)
    value = float(diff @ diff) + trace_a + float(np.trace(b.covariance)) - 2.0 * trace_sqrt
    return max(value, 0.0)


def frechet_distance_sqrtm(
    a: FeatureStatistics, b: FeatureStatistics, *, eps: float = 1e-6
) -> float:
    """The Fréchet distance as pytorch-fid's `calculate_frechet_distance` computes it.

    `scipy.linalg.sqrtm(Σa Σb)`; if that is not finite, `eps` is added to both diagonals and the
    root taken again; a complex result whose diagonal has imaginary parts above 1e-3 is an error,
    otherwise its real part is used. The reference for `frechet_distance`, not for daily use:
    the general square root is several times slower. (pytorch-fid passes `disp=False`, which
    SciPy >= 1.16 deprecates without changing the root; it is left out here.)
    """
    _check_same_dim(a, b)
    covmean = scipy.linalg.sqrtm(a.covariance @ b.covariance)
    if not np.isfinite(covmean).all():
        offset = np.eye(a.dim) * eps
        covmean = scipy.linalg.sqrtm((a.covariance + offset) @ (b.covariance + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            largest = float(np.max(np.abs(covmean.imag)))
            raise ValueError(f"matrix square root has an imaginary component of {largest}")
        covmean = covmean.real
    diff = a.mean - b.mean
    return float(diff @ diff + np.trace(a.covariance) + np.trace(b.covariance)) - 2.0 * float(
        np.trace(covmean)
    )


def frechet_distance_features(features_a: npt.ArrayLike, features_b: npt.ArrayLike) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (ddof=1 covariances).

    Equal to `frechet_distance` of their statistics, computed without d x d matrices when the
    sets are smaller than the dimension: with centred features Xa (na, d) and Xb (nb, d),
    tr((Σa Σb)^½) is the nuclear norm (sum of singular values) of Xa Xbᵀ / √((na-1)(nb-1)),
    an na x nb matrix. Singular values carry absolute error ε·s_max rather than the √(ε·λ_max) of
    square-rooted eigenvalues, so rank-deficient covariances, the normal case for FID_rr on
    reference halves of a few hundred images with 2048-d features, come out accurately.
    Larger sets go through `frechet_distance` on their statistics.
    """
    xa = _as_features(features_a)
    xb = _as_features(features_b)
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"feature dimensions differ: {xa.shape[1]} and {xb.shape[1]}")
    na, nb, dim = xa.shape[0], xb.shape[0], xa.shape[1]
    if na < 2 or nb < 2:
        raise ValueError(f"each set needs at least 2 samples, got {na} and {nb}")
    if max(na, nb) > dim:
        return frechet_distance(
            FeatureStatistics.from_features(xa), FeatureStatistics.from_features(xb)
        )
    mean_a, mean_b = xa.mean(axis=0), xb.mean(axis=0)
    ca, cb = xa - mean_a, xb - mean_b
    cross = (ca @ cb.T) / math.sqrt((na - 1) * (nb - 1))
    trace_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    diff = mean_a - mean_b
    value: float = (
        float(diff @ diff)
        + float(np.einsum("ij,ij->", ca, ca)) / (na - 1)
        + float(np.einsum("ij,ij->", cb, cb)) / (nb - 1)
        - 2.0 * trace_sqrt
    )
    return max(value, 0.0)


def fid_rr(
    reference_features: npt.ArrayLike, *, splits: int = 10, seed: int = 0
) -> tuple[float, float]:
    """FID_rr: mean and spread of the FID between two random halves of the reference features.

    For each of `splits` rounds, a permutation from `np.random.default_rng(seed)` (one generator,
    drawn from in turn) puts its first ⌊N/2⌋ indices in one half and the next ⌊N/2⌋ in the other;
    with N odd the last permuted sample sits out that round, so both halves always have equal size.
    Returns (mean, population standard deviation, ddof=0, so that `splits=1` gives 0.0 and not
    NaN). FID is biased upwards at small N, so FID_rr at N/2 is a floor for an FID_rs measured at
    a similar size, not for one measured at much larger size.
    """
    features = _as_features(reference_features)
    if splits < 1:
        raise ValueError(f"splits must be at least 1, got {splits}")
    n = features.shape[0]
    if n < 4:
        raise ValueError(f"FID_rr needs at least 4 reference samples, got {n}")
    half = n // 2
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(splits):
        order = rng.permutation(n)
        values.append(
            frechet_distance_features(features[order[:half]], features[order[half : 2 * half]])
        )
    return float(np.mean(values)), float(np.std(values))


def relative_fid(fid_rr: float, fid_rs: float) -> float:
    """r_FID = FID_rr / FID_rs, the medigan paper's ratio of real-real to real-synthetic FID.

    Near 1 the synthetic set is as close to the reference as real halves are to each other;
    smaller is further. At FID_rs = 0 the ratio is +inf when FID_rr > 0, and 1.0 when FID_rr is
    0 too (synthetic and real halves equally indistinguishable). Negative inputs are refused.
    """
    if fid_rr < 0 or fid_rs < 0 or math.isnan(fid_rr) or math.isnan(fid_rs):
        raise ValueError(f"FID values must be non-negative numbers, got {fid_rr} and {fid_rs}")
    if fid_rs == 0:
        return 1.0 if fid_rr == 0 else math.inf
    return fid_rr / fid_rs


def kid(
    features_a: npt.ArrayLike,
    features_b: npt.ArrayLike,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    max_kernel_elements: int = 25_000_000,
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std (ddof=0) of the unbiased MMD² over random subsets.

    Kernel k(x, y) = (xᵀy / d + 1)³ (the KID paper's kernel, as in torch-fidelity). Each subset
    draws m = min(subset_size, Na, Nb) rows of each set without replacement, from
    `np.random.default_rng(seed)`, and contributes
    Σ_{i≠j} k(a_i, a_j) / (m(m-1)) + Σ_{i≠j} k(b_i, b_j) / (m(m-1)) - 2 Σ_{i,j} k(a_i, b_j) / m².
    The estimate is unbiased, so it can be slightly negative when the sets match.

    When the three full kernel matrices together hold at most `max_kernel_elements` entries they
    are computed once: (Na + Nb)² d multiply-adds in total instead of 3 m² d per subset. A
    subset's block sums are then wᵀKw for its 0/1 indicator vector w, all subsets in one matrix
    product, instead of gathering 3 m x m blocks per subset. Beyond that each subset computes
    its own kernels.
    """
    xa = _as_features(features_a)
    xb = _as_features(features_b)
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"feature dimensions differ: {xa.shape[1]} and {xb.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    m = min(subset_size, xa.shape[0], xb.shape[0])
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 samples, got {m}")
    dim = xa.shape[1]
    na, nb = xa.shape[0], xb.shape[0]
    precomputed = na * na + nb * nb + na * nb <= max_kernel_elements
    if precomputed:
        k_aa, k_bb, k_ab = (
            _polynomial_kernel(xa, xa, dim),
            _polynomial_kernel(xb, xb, dim),
            _polynomial_kernel(xa, xb, dim),
        )
    rng = np.random.default_rng(seed)
    if precomputed:
        # Column s of `wa` / `wb` marks subset s's rows; draws in the same order as below.
        wa = np.zeros((na, subsets), dtype=np.float64)
        wb = np.zeros((nb, subsets), dtype=np.float64)
        for index in range(subsets):
            wa[rng.choice(na, m, replace=False), index] = 1.0
            wb[rng.choice(nb, m, replace=False), index] = 1.0
        sum_aa = np.einsum("is,is->s", k_aa @ wa, wa) - np.diagonal(k_aa) @ wa
        sum_bb = np.einsum("is,is->s", k_bb @ wb, wb) - np.diagonal(k_bb) @ wb
        sum_ab = np.einsum("is,is->s", k_ab @ wb, wa)
        values = (sum_aa + sum_bb) / (m * (m - 1)) - 2.0 * sum_ab / (m * m)
        return float(values.mean()), float(values.std())
    values = np.empty(subsets, dtype=np.float64)
    for index in range(subsets):
        ia = rng.choice(na, m, replace=False)
        ib = rng.choice(nb, m, replace=False)
        sa, sb = xa[ia], xb[ib]
        sub_aa = _polynomial_kernel(sa, sa, dim)
        sub_bb = _polynomial_kernel(sb, sb, dim)
        sub_ab = _polynomial_kernel(sa, sb, dim)
        within = (sub_aa.sum() - np.trace(sub_aa) + sub_bb.sum() - np.trace(sub_bb)) / (m * (m - 1))
        values[index] = within - 2.0 * sub_ab.sum() / (m * m)
    return float(values.mean()), float(values.std())


def precision_recall(
    real: npt.ArrayLike, fake: npt.ArrayLike, *, k: int = 5, chunk_rows: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall (the 2019 improved precision and recall) of k-NN manifolds.

    Each set's manifold is the union of balls around its points, each ball's radius being the
    distance to that point's k-th nearest other point of the same set. Precision is the fraction
    of fake points inside the real manifold (a point on a ball's boundary counts as inside, as in
    the authors' code); recall the fraction of real points inside the fake manifold. Distances
    are computed `chunk_rows` query rows at a time, so memory is O(chunk_rows · N), not O(N²).
    """
    xr = _as_features(real)
    xf = _as_features(fake)
    if xr.shape[1] != xf.shape[1]:
        raise ValueError(f"feature dimensions differ: {xr.shape[1]} and {xf.shape[1]}")
    if k < 1 or k >= min(xr.shape[0], xf.shape[0]):
        raise ValueError(
            f"k must be in 1 .. (smaller set size - 1); got k={k} for sets of "
            f"{xr.shape[0]} and {xf.shape[0]}"
        )
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    real_radii = _kth_neighbour_sq_radii(xr, k, chunk_rows)
    fake_radii = _kth_neighbour_sq_radii(xf, k, chunk_rows)
    precision = _fraction_inside(xf, xr, real_radii, chunk_rows)
    recall = _fraction_inside(xr, xf, fake_radii, chunk_rows)
    return precision, recall


def _as_features(features: npt.ArrayLike) -> Float64Array:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"features must be a 2-d (N, d) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("features contain NaN or infinite values")
    return array


def _check_same_dim(a: FeatureStatistics, b: FeatureStatistics) -> None:
    if a.dim != b.dim:
        raise ValueError(f"statistics have different dimensions: {a.dim} and {b.dim}")


def _trace_sqrt_product(sigma_a: Float64Array, sigma_b: Float64Array) -> float:
    # tr((Σa Σb)^½) through a factor Σa = L Lᵀ; see frechet_distance.
    try:
        factor = np.linalg.cholesky(sigma_a)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(sigma_a)
        factor = v * np.sqrt(np.clip(w, 0.0, None))
    return _trace_sqrt_from_factor(np.asarray(factor, dtype=np.float64), sigma_b)


def _trace_sqrt_from_factor(factor: Float64Array, sigma_b: Float64Array) -> float:
    # The eigenvalues of Σa Σb are those of Lᵀ Σb L for any factor Σa = L Lᵀ, L of shape (d, k).
    product = factor.T @ sigma_b @ factor
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2.0)
    largest = float(eigenvalues[-1]) if eigenvalues.size else 0.0
    # Eigenvalues below the solver's resolution are zeros of a singular product, not signal.
    noise_floor = max(largest, 0.0) * eigenvalues.size * np.finfo(np.float64).eps
    eigenvalues = np.where(eigenvalues > noise_floor, eigenvalues, 0.0)
    return float(np.sqrt(eigenvalues).sum())


def _assemble(
    diff: Float64Array, sigma_a: Float64Array, sigma_b: Float64Array, trace_sqrt: float
) -> float:
    value = float(diff @ diff) + float(np.trace(sigma_a)) + float(np.trace(sigma_b))
    return max(value - 2.0 * trace_sqrt, 0.0)


def _polynomial_kernel(x: Float64Array, y: Float64Array, dim: int) -> Float64Array:
    # In place: one (n, m) array instead of a temporary per operation.
    result: Float64Array = x @ y.T
    result /= dim
    result += 1.0
    result **= 3
    return result


def _squared_distances(x: Float64Array, y: Float64Array) -> Float64Array:
    # ||x||² + ||y||² - 2 x·y, in place in one (n, m) array; rounding can take it a hair below 0
    # for (near-)equal points, hence the clamp.
    result: Float64Array = x @ y.T
    result *= -2.0
    result += np.einsum("ij,ij->i", x, x)[:, None]
    result += np.einsum("ij,ij->i", y, y)[None, :]
    np.maximum(result, 0.0, out=result)
    return result


def _kth_neighbour_sq_radii(x: Float64Array, k: int, chunk_rows: int) -> Float64Array:
    radii = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], chunk_rows):
        distances = _squared_distances(x[start : start + chunk_rows], x)
        # Column k of the sorted row: column 0 is the point itself (distance 0).
        radii[start : start + chunk_rows] = np.partition(distances, k, axis=1)[:, k]
    return radii


def _fraction_inside(
    queries: Float64Array, manifold: Float64Array, sq_radii: Float64Array, chunk_rows: int
) -> float:
    inside = 0
    for start in range(0, queries.shape[0], chunk_rows):
        distances = _squared_distances(queries[start : start + chunk_rows], manifold)
        inside += int(np.count_nonzero((distances <= sq_radii[None, :]).any(axis=1)))
    return inside / int(queries.shape[0])
