"""Benign overfitting in linear regression: effective ranks, k*, the bound terms, and the excess risk
of min-norm interpolation for a covariance spectrum; ridge regression and its optimal penalty
(double descent and its removal).

Setting (Bartlett, Long, Lugosi, Tsigler 2020): x ~ N(0, Sigma) in R^d, y = <x, theta*> + eps with
eps ~ N(0, sigma^2), n samples, estimator theta^ = X^+ y (the min-norm interpolant when d >= n).
Sigma is given by its spectrum lambda_1 >= lambda_2 >= ... > 0 [d] and taken diagonal, so theta*
is expressed in the eigenbasis of Sigma. Indices k below are 0-based: r[k] uses lambda_{k+1}.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from theory import _scale, _validate
from theory.max_margin import min_norm_interpolant

__all__ = [
    "BenignBound",
    "ExcessRisk",
    "benign_bound_terms",
    "benign_log_spectrum",
    "effective_ranks",
    "isotropic",
    "isotropic_min_norm_risk",
    "isotropic_ridge_risk",
    "k_star",
    "min_norm_excess_risk",
    "optimal_ridge_penalty",
    "power_law",
    "ridge",
    "ridge_path",
    "two_tier",
]


def _spectrum(spectrum, *, sorted_: bool = True) -> np.ndarray:
    lam = _validate.vector("spectrum", spectrum, shape_doc="[d]")
    if lam.min() <= 0:
        raise ValueError(f"spectrum must be positive; got {lam.min():.3g} at index {int(lam.argmin())}")
    if sorted_ and np.any(np.diff(lam) > 0):
        k = int(np.argmax(np.diff(lam) > 0))
        raise ValueError(
            f"spectrum must be non-increasing (lambda_1 >= lambda_2 >= ...); got spectrum[{k + 1}] = "
            f"{lam[k + 1]:.3g} > spectrum[{k}] = {lam[k]:.3g}; pass np.sort(spectrum)[::-1]"
        )
    return lam


def effective_ranks(spectrum) -> tuple[np.ndarray, np.ndarray]:
    """The two effective ranks of Bartlett, Long, Lugosi, Tsigler 2020 (Def. 3), for every k.

    r_k = sum_{i>k} lambda_i / lambda_{k+1},   R_k = (sum_{i>k} lambda_i)^2 / sum_{i>k} lambda_i^2,

    for k = 0..d-1 (1-based lambda in the formulas, array index k). Always
    1 <= r_k <= R_k <= min(r_k^2, d - k); Sigma = I gives r_k = R_k = d - k. Scale-invariant (the
    spectrum is divided exactly by a power of two first, so lambda_i^2 cannot overflow).

    Args: spectrum [d], positive and non-increasing. Returns (r [d], R [d]).

    >>> r, R = effective_ranks(np.ones(4))
    >>> r.tolist(), R.tolist()
    ([4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0])
    """
    lam = _spectrum(spectrum)
    lam = _scale.unit(lam, _scale.exponent(lam))  # both ranks are scale-invariant; squares stay in range
    tail = np.cumsum(lam[::-1])[::-1]  # [d] sum_{i >= k} lam[i]
    tail_sq = np.cumsum((lam**2)[::-1])[::-1]
    return tail / lam, tail**2 / tail_sq


def k_star(spectrum, n: int, b: float = 1.0) -> float:
    """k* = min{k >= 0 : r_k >= b n}, or math.inf when no k < d qualifies (the sentinel).

    The split between the k* "spiky" directions that are learned and the tail that absorbs the noise
    (Bartlett, Long, Lugosi, Tsigler 2020, Thm 4; the theorem needs b > some constant, [unverified]
    here: b = 1 by default). Returns an int, or math.inf.

    >>> k_star(np.ones(10), n=4), k_star(np.ones(10), n=20)
    (0, inf)
    """
    n = _validate.integer("n", n, minimum=1)
    b = _validate.positive("b", b)
    r, _ = effective_ranks(spectrum)
    hits = np.flatnonzero(r >= b * n)
    return int(hits[0]) if hits.size else math.inf


@dataclasses.dataclass(frozen=True)
class BenignBound:
    """The pieces of the excess-risk bound of Bartlett, Long, Lugosi, Tsigler 2020, Thm 4."""

    r0: float  # r_0 = tr(Sigma) / ||Sigma||
    k_star: float  # k*, or math.inf
    R_k_star: float  # R_{k*}, or math.nan when k* is infinite
    bias: float  # ||theta*||^2 lambda_1 (sqrt(r_0 / n) + r_0 / n)
    variance: float  # sigma^2 (k*/n + n / R_{k*}), math.inf when k* is infinite
    total: float  # bias + variance


def benign_bound_terms(spectrum, n: int, theta_norm: float, sigma: float, *, b: float = 1.0) -> BenignBound:
    """Bias and variance terms of the min-norm-interpolation excess-risk bound.

    bias = ||theta*||^2 lambda_1 (sqrt(r_0/n) + r_0/n),   variance = sigma^2 (k*/n + n/R_{k*}).

    Bartlett, Long, Lugosi, Tsigler 2020, Thm 4 bounds the excess risk by c (bias + variance) with
    probability 1 - delta (the bias with max{...} instead of the sum and a log(1/delta) factor on the
    variance): the constants are unverified and set to 1, so compare trends, not values. Benign
    (risk -> 0) iff r_0 = o(n), k* = o(n) and R_{k*} = omega(n): 1/(i log^2(i+1)) is benign, I is not.

    Args: spectrum [d] positive non-increasing; n samples; theta_norm = ||theta*||; sigma noise std;
    b the k* threshold.

    >>> bound = benign_bound_terms(np.ones(100), n=10, theta_norm=1.0, sigma=1.0)
    >>> bound.k_star, round(bound.bias, 6), bound.variance
    (0, 13.162278, 0.1)
    """
    lam = _spectrum(spectrum)
    n = _validate.integer("n", n, minimum=1)
    theta_norm = _validate.nonnegative("theta_norm", theta_norm)
    sigma = _validate.nonnegative("sigma", sigma)
    r, R = effective_ranks(lam)
    k = k_star(lam, n, b)
    inputs = f"theta_norm={theta_norm!r}, sigma={sigma!r}"
    r0, lam1 = float(r[0]), float(lam[0])  # Python floats: an overflow gives inf (refused below), not a warning
    bias = _validate.finite("bias", theta_norm * theta_norm * lam1 * (math.sqrt(r0 / n) + r0 / n), inputs)
    if math.isinf(k):  # the documented sentinel: no k < d qualifies
        R_k, variance = math.nan, math.inf
    else:
        R_k = float(R[k])
        variance = _validate.finite("variance", sigma * sigma * (k / n + n / R_k), inputs)
    return BenignBound(r0=float(r[0]), k_star=k, R_k_star=R_k, bias=bias, variance=variance, total=bias + variance)


@dataclasses.dataclass(frozen=True)
class ExcessRisk:
    """Monte Carlo estimate of E (theta^ - theta*)^T Sigma (theta^ - theta*)."""

    mean: float
    stderr: float  # standard error of the mean over trials
    n_trials: int


def min_norm_excess_risk(spectrum, n: int, theta, sigma: float, *, n_trials: int, seed) -> ExcessRisk:
    """Excess risk of theta^ = X^+ y, by Monte Carlo over draws of (X, eps).

    Each trial draws X [n, d] with rows N(0, diag(spectrum)), y = X theta* + sigma eps, and records
    (theta^ - theta*)^T Sigma (theta^ - theta*) = sum_j lambda_j (theta^_j - theta*_j)^2. For
    Sigma = I and d > n + 1 the expectation is (1 - n/d) ||theta*||^2 + sigma^2 n / (d - n - 1);
    for n > d + 1 (least squares) it is sigma^2 d / (n - d - 1).

    Args: spectrum [d] positive (any order); n >= 1; theta [d] = theta* in the eigenbasis;
    sigma >= 0; n_trials >= 2; seed: int or numpy Generator (the only randomness used).

    >>> risk = min_norm_excess_risk(np.ones(50), 10, np.zeros(50), 1.0, n_trials=200, seed=0)
    >>> abs(risk.mean - 10 / 39) < 3 * risk.stderr
    True
    """
    lam = _spectrum(spectrum, sorted_=False)
    d = lam.shape[0]
    n = _validate.integer("n", n, minimum=1)
    theta = _validate.vector("theta", theta, length=d, shape_doc="[d]")
    sigma = _validate.nonnegative("sigma", sigma)
    n_trials = _validate.integer("n_trials", n_trials, minimum=2)
    if not isinstance(seed, (int, np.integer, np.random.Generator)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int or a numpy.random.Generator; got {seed!r}")
    rng = np.random.default_rng(seed)
    risks = np.empty(n_trials)
    for t in range(n_trials):
        X = rng.standard_normal((n, d)) * np.sqrt(lam)
        y = X @ theta + sigma * rng.standard_normal(n)
        error = min_norm_interpolant(X, y) - theta
        risks[t] = lam @ error**2
    stderr = float(risks.std(ddof=1) / math.sqrt(n_trials))
    return ExcessRisk(mean=float(risks.mean()), stderr=stderr, n_trials=n_trials)


def isotropic_min_norm_risk(n: int, d: int, theta_norm: float, sigma: float) -> float:
    """Expected excess risk E ||X^+ y - theta*||^2 of min-norm least squares for Sigma = I (closed form).

    Over-parametrised (d > n + 1): (1 - n/d) ||theta*||^2 + sigma^2 n / (d - n - 1), the part of theta* outside
    the random n-dimensional row space plus the noise through an inverse Wishart; under-parametrised (n > d + 1):
    sigma^2 d / (n - d - 1) (ordinary least squares); math.inf for |n - d| <= 1 with sigma > 0 (the
    interpolation peak of double descent). Not benign: the bias stays near ||theta*||^2 while n << d
    (Bartlett, Long, Lugosi, Tsigler 2020; Hastie, Montanari, Rosset, Tibshirani 2022 for the formulas).

    >>> isotropic_min_norm_risk(10, 50, theta_norm=1.0, sigma=1.0)  # 0.8 + 10 / 39
    1.0564102564102564
    """
    n = _validate.integer("n", n, minimum=1)
    d = _validate.integer("d", d, minimum=1)
    theta_norm = _validate.nonnegative("theta_norm", theta_norm)
    sigma = _validate.nonnegative("sigma", sigma)
    inputs = f"n={n}, d={d}, theta_norm={theta_norm!r}, sigma={sigma!r}"
    t2, s2 = theta_norm * theta_norm, sigma * sigma  # inf, not OverflowError, when they overflow: checked below
    if d > n + 1:
        return _validate.finite("isotropic_min_norm_risk", (1 - n / d) * t2 + s2 * n / (d - n - 1), inputs)
    bias = _validate.finite("isotropic_min_norm_risk", (1 - n / d) * t2 if d > n else 0.0, inputs)
    if n > d + 1:
        return _validate.finite("isotropic_min_norm_risk", bias + s2 * d / (n - d - 1), inputs)
    return bias if sigma == 0 else math.inf  # the interpolation peak (documented)


def ridge_path(X, y, lams) -> np.ndarray:
    """`ridge` at every penalty of `lams` from one SVD of X: [L, d], row l = argmin ||X b - y||^2 + lams[l] ||b||^2.

    Same conventions as `ridge` (summed loss; lam = 0 is min-norm least squares X^+ y). Costs one thin SVD,
    O(n d min(n, d)), plus O(L d min(n, d)): the path a validation search over lam needs.

    >>> ridge_path(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([1.0, 2.0]), [0.0, 1.0]).tolist()
    [[1.0, 1.0], [0.5, 0.8]]
    """
    X = _validate.matrix("X", X)
    y = _validate.vector("y", y, length=X.shape[0])
    lams = _validate.vector("lams", lams, shape_doc="[L]")
    if lams.min() < 0:
        raise ValueError(f"lams must be >= 0; got {lams.min():.3g}")
    ex, ey = _scale.exponent(X), _scale.exponent(y)
    U, s, Vt = np.linalg.svd(_scale.unit(X, ex), full_matrices=False)
    uy = U.T @ _scale.unit(y, ey)  # [r]
    gains = np.stack([_spectral_filter(s, float(lam), ex, X.shape)[1] for lam in lams])  # [L, r]
    return _scale.restore("beta", (gains * uy) @ Vt, ey - ex)


def ridge(X, y, lam: float) -> np.ndarray:
    """Ridge regression beta = argmin_beta ||X beta - y||^2 + lam ||beta||^2 [d] (sums, not means).

    beta = (X^T X + lam I)^{-1} X^T y = X^T (X X^T + lam I)^{-1} y = V diag(s / (s^2 + lam)) U^T y
    with X = U diag(s) V^T the thin SVD, which costs O(n d min(n, d)): the cost of the dual form
    (an n x n system) when d > n and of the primal (d x d) when d <= n. lam = 0 is min-norm least
    squares X^+ y (the interpolant when rank X = n; singular values below numpy lstsq's cut-off
    max(n, d) eps s_max count as zero), the lam -> 0 limit of ridge. For the mean loss
    (1/n)||X beta - y||^2 + lam' ||beta||^2 pass lam = n lam'. Scale: solved at unit scale, so
    (c X, t y, c^2 lam) gives beta t / c.

    Args: X [n, d], y [n], lam >= 0.

    >>> ridge(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([1.0, 2.0]), lam=1.0).tolist()
    [0.5, 0.8]
    """
    return ridge_path(X, y, [_validate.nonnegative("lam", lam)])[0]


def _spectral_filter(s, lam: float, e: int, shape) -> tuple[np.ndarray, np.ndarray]:
    """(shrink, gain): lam / (s^2 + lam) and s / (s^2 + lam) for singular values s of X / 2^e.

    lam is rescaled to lam / 2^(2e) (it may overflow to inf: beta = 0, or underflow to 0). lam = 0 is
    the pseudo-inverse: gain 1 / s above the cut-off max(n, d) eps s_max of numpy's lstsq, shrink 1 below it.
    """
    if lam == 0:
        kept = s > max(shape) * np.finfo(np.float64).eps * (s.max() if s.size else 0.0)
        return np.where(kept, 0.0, 1.0), np.divide(1.0, s, out=np.zeros_like(s), where=kept)
    with np.errstate(over="ignore", under="ignore"):
        lam = float(np.ldexp(lam, -2 * e))
    if math.isinf(lam):
        return np.ones_like(s), np.zeros_like(s)
    positive = s > 0
    denominator = np.where(positive, s**2 + lam, 1.0)
    return np.where(positive, lam / denominator, 1.0), np.where(positive, s / denominator, 0.0)


def optimal_ridge_penalty(d: int, sigma: float, theta_norm: float) -> float:
    """lam* = d sigma^2 / ||theta*||^2, the best ridge penalty for isotropic Gaussian linear regression.

    Setting: x ~ N(0, I_d), y = <x, theta*> + eps, eps ~ N(0, sigma^2), any n; `ridge` with the
    summed loss ||X beta - y||^2 + lam ||beta||^2. Among all lam >= 0, lam* minimises the expected
    excess risk E ||beta_lam - theta*||^2, and with it the risk is monotone in n: no double descent
    (Nakkiran, Venkat, Kakade, Ma 2021, "Optimal regularization can mitigate double descent",
    Thm 1 for isotropic data [theorem number unverified]).
    Derivation: the law of X is rotation invariant, so the risk at theta* equals its average over
    theta* uniform on the sphere of radius ||theta*||; a linear estimator's risk depends on a prior
    only through E theta theta^T = (||theta*||^2 / d) I, the same as the Gaussian prior
    N(0, ||theta*||^2 / d I), whose posterior mean is ridge with lam = sigma^2 / (||theta*||^2 / d). It
    is optimal for every X (see `isotropic_ridge_risk`: each direction's risk is stationary there).
    With the mean loss (1/n)||X beta - y||^2 + lam' ||beta||^2, lam'* = lam* / n.

    >>> optimal_ridge_penalty(100, sigma=0.5, theta_norm=2.0)
    6.25
    """
    d = _validate.integer("d", d, minimum=1)
    sigma = _validate.nonnegative("sigma", sigma)
    theta_norm = _validate.positive("theta_norm", theta_norm)
    ratio = sigma / theta_norm
    return _validate.finite("optimal_ridge_penalty", d * ratio * ratio, f"sigma={sigma!r}, theta_norm={theta_norm!r}")


def isotropic_ridge_risk(X, lam: float, theta_norm: float, sigma: float) -> float:
    """Expected excess risk of `ridge` for Sigma = I given the design X: E ||beta_lam - theta*||^2.

    The expectation is over the noise eps ~ N(0, sigma^2 I_n) and over the direction of theta*
    (uniform on the sphere of radius ||theta*||; for Gaussian X every fixed theta* of that norm has
    the same risk averaged over X). With X = U diag(s) V^T and s_j = 0 for j > rank (d terms):

        risk = (||theta*||^2 / d) sum_j (lam / (s_j^2 + lam))^2 + sigma^2 sum_j s_j^2 / (s_j^2 + lam)^2,

    bias (shrinkage) plus variance; at lam = 0 (min-norm least squares) the bias terms are 1 on the
    d - rank null directions and 0 elsewhere, the variance terms 1 / s_j^2 on the others. Each
    term's derivative in lam is 2 s_j^2 (lam ||theta*||^2 / d - sigma^2) / (s_j^2 + lam)^3, so
    `optimal_ridge_penalty` minimises it for every X. Averaging over X gives the double-descent
    curves of min-norm (lam = 0, peak at n = d) and optimal ridge (monotone) regression.
    Scale: risk(c X, c^2 lam, theta_norm, c sigma) = risk(X, lam, theta_norm, sigma).

    Args: X [n, d], lam >= 0, theta_norm = ||theta*|| >= 0, sigma >= 0.

    >>> isotropic_ridge_risk(np.eye(2), lam=1.0, theta_norm=2.0, sigma=1.0)  # 2 (1/4 + 1/4) + (1/4 + 1/4)
    1.5
    """
    X = _validate.matrix("X", X)
    lam = _validate.nonnegative("lam", lam)
    theta_norm = _validate.nonnegative("theta_norm", theta_norm)
    sigma = _validate.nonnegative("sigma", sigma)
    d = X.shape[1]
    e = _scale.exponent(X)
    s = np.zeros(d)  # [d] singular values at unit scale, zero beyond the rank
    singular = np.linalg.svd(_scale.unit(X, e), compute_uv=False)
    s[: singular.size] = singular
    shrink, gain = _spectral_filter(s, lam, e, X.shape)
    with np.errstate(over="ignore"):  # an overflow becomes inf, refused by restore / finite
        variance = _scale.restore("variance", sigma * sigma * np.sum(gain**2), -2 * e) if sigma > 0 else 0.0
        risk = float(theta_norm * theta_norm / d * np.sum(shrink**2) + variance)
    return _validate.finite("isotropic_ridge_risk", risk, f"lam={lam!r}, theta_norm={theta_norm!r}, sigma={sigma!r}")


def isotropic(d: int) -> np.ndarray:
    """Sigma = I: lambda_i = 1 [d]. Not benign: r_0 = d, and for d >> n the bias (1 - n/d)||theta*||^2 stays.

    >>> isotropic(3).tolist()
    [1.0, 1.0, 1.0]
    """
    return np.ones(_validate.integer("d", d, minimum=1))


def power_law(d: int, alpha: float) -> np.ndarray:
    """lambda_i = i^{-alpha}, i = 1..d [d]. In infinite dimension i^{-alpha} log^{-beta}(i + 1) is
    benign iff alpha = 1 and beta > 1 (Bartlett, Long, Lugosi, Tsigler 2020, Thm 6 [unverified
    number]), so a pure power law is not; at finite d it shows the transition.

    >>> power_law(3, 1.0).round(4).tolist()
    [1.0, 0.5, 0.3333]
    """
    d = _validate.integer("d", d, minimum=1)
    alpha = _validate.nonnegative("alpha", alpha)
    return np.arange(1, d + 1, dtype=np.float64) ** -alpha


def benign_log_spectrum(d: int) -> np.ndarray:
    """lambda_i = 1 / (i log^2(i + 1)), i = 1..d [d], natural log: the benign example of
    Bartlett, Long, Lugosi, Tsigler 2020 (as d -> inf, r_0 stays finite and R_{k*} / n -> inf).

    >>> benign_log_spectrum(2).round(4).tolist()
    [2.0814, 0.4143]
    """
    i = np.arange(1, _validate.integer("d", d, minimum=1) + 1, dtype=np.float64)
    return 1.0 / (i * np.log(i + 1.0) ** 2)


def two_tier(d: int, k: int, big: float, small: float) -> np.ndarray:
    """k eigenvalues `big` followed by d - k eigenvalues `small` [d] (big >= small > 0, 0 <= k <= d):
    a spiked covariance. For k' >= k, r_k' = R_k' = d - k'; for k' < k,
    r_k' = ((k - k') big + (d - k) small) / big.

    >>> two_tier(4, 1, 10.0, 1.0).tolist()
    [10.0, 1.0, 1.0, 1.0]
    """
    d = _validate.integer("d", d, minimum=1)
    k = _validate.integer("k", k, minimum=0)
    if k > d:
        raise ValueError(f"k must be <= d = {d}; got {k}")
    small = _validate.positive("small", small)
    big = _validate.positive("big", big)
    if big < small:
        raise ValueError(f"big must be >= small = {small} (a non-increasing spectrum); got {big}")
    return np.where(np.arange(d) < k, big, small).astype(np.float64)
