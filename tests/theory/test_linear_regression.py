"""theory.linear_regression: effective ranks, k*, bound terms and Monte Carlo excess risk."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import linear_regression as lr
from theory import max_margin

HYPOTHESIS = settings(max_examples=30, deadline=None, derandomize=True)


@HYPOTHESIS
@given(d=st.integers(1, 200), n=st.integers(1, 300), b=st.floats(0.1, 3.0))
def test_isotropic_effective_ranks_and_k_star(d, n, b):
    r, R = lr.effective_ranks(lr.isotropic(d))
    expected = d - np.arange(d)
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    np.testing.assert_allclose(R, expected, rtol=1e-12)
    # r_k = d - k >= b n first at k = 0 when b n <= d; never once b n > d
    assert lr.k_star(lr.isotropic(d), n, b) == (0 if b * n <= d else math.inf)


@HYPOTHESIS
@given(d=st.integers(2, 100), data=st.data(), big=st.floats(1.0, 1e3), ratio=st.floats(1e-3, 1.0))
def test_two_tier_effective_ranks(d, data, big, ratio):
    k = data.draw(st.integers(0, d))
    small = big * ratio
    r, R = lr.effective_ranks(lr.two_tier(d, k, big, small))
    for j in range(d):
        if j >= k:
            assert r[j] == pytest.approx(d - j, rel=1e-10) and R[j] == pytest.approx(d - j, rel=1e-10)
        else:
            tail = (k - j) * big + (d - k) * small
            assert r[j] == pytest.approx(tail / big, rel=1e-10)
            assert R[j] == pytest.approx(tail**2 / ((k - j) * big**2 + (d - k) * small**2), rel=1e-10)


@HYPOTHESIS
@given(spectrum=st.lists(st.floats(1e-6, 1e3), min_size=1, max_size=60))
def test_effective_rank_inequalities(spectrum):
    lam = np.sort(np.array(spectrum))[::-1]
    r, R = lr.effective_ranks(lam)
    room = len(lam) - np.arange(len(lam))
    slack = 1 + 1e-10
    assert np.all(1 <= r * slack) and np.all(r <= R * slack)
    assert np.all(R <= np.minimum(r**2, room) * slack)


def test_standard_spectra():
    np.testing.assert_allclose(lr.power_law(5, 0.0), lr.isotropic(5))
    r, _ = lr.effective_ranks(lr.power_law(100, 1.0))
    assert r[0] == pytest.approx(sum(1 / i for i in range(1, 101)))  # harmonic number
    i = np.arange(1, 11)
    np.testing.assert_allclose(lr.benign_log_spectrum(10), 1 / (i * np.log(i + 1) ** 2))
    assert np.all(np.diff(lr.benign_log_spectrum(1000)) < 0)
    # the benign spectrum's r_0 stays bounded as d grows, the isotropic one's is d
    r_small, r_large = (lr.effective_ranks(lr.benign_log_spectrum(d))[0][0] for d in (10**4, 10**6))
    assert r_large - r_small < 0.1 * r_small


def test_k_star_on_the_benign_spectrum():
    lam = lr.benign_log_spectrum(10**6)
    r, R = lr.effective_ranks(lam)
    trend = []
    for n in (10, 100, 1000):
        k = lr.k_star(lam, n)
        assert r[k - 1] < n <= r[k]  # the first k with r_k >= n
        trend.append((r[0] / n, k / n, n / R[k]))
    # benign: r_0 = o(n), k* = o(n), R_k* = omega(n); the last two only at a logarithmic rate
    for earlier, later in zip(trend, trend[1:]):
        assert all(b < a for a, b in zip(earlier, later))
    assert trend[-1][1] < 0.3 and trend[-1][2] < 0.2


def test_benign_bound_terms():
    bound = lr.benign_bound_terms(lr.isotropic(400), n=100, theta_norm=2.0, sigma=0.5)
    assert bound.r0 == 400 and bound.k_star == 0 and bound.R_k_star == 400
    assert bound.bias == pytest.approx(4.0 * (2.0 + 4.0))
    assert bound.variance == pytest.approx(0.25 * (0 + 100 / 400))
    assert bound.total == pytest.approx(bound.bias + bound.variance)
    none = lr.benign_bound_terms(lr.isotropic(50), n=100, theta_norm=1.0, sigma=1.0)
    assert none.k_star == math.inf and none.variance == math.inf and math.isnan(none.R_k_star)
    # the benign spectrum's bound falls with n; the isotropic one's bias does not (r_0 = d grows with d)
    benign = [lr.benign_bound_terms(lr.benign_log_spectrum(10**5), n, 1.0, 1.0).total for n in (50, 200, 800)]
    assert benign[0] > benign[1] > benign[2]


@pytest.mark.parametrize("n, d", [(20, 80), (40, 15)])
def test_min_norm_excess_risk_matches_isotropic_closed_forms(n, d):
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(d)
    sigma = 0.7
    risk = lr.min_norm_excess_risk(lr.isotropic(d), n, theta, sigma, n_trials=400, seed=1)
    if d > n:  # bias (1 - n/d)||theta||^2 (random projection) + variance sigma^2 n / (d - n - 1) (inverse Wishart)
        expected = (1 - n / d) * theta @ theta + sigma**2 * n / (d - n - 1)
    else:  # ordinary least squares
        expected = sigma**2 * d / (n - d - 1)
    assert abs(risk.mean - expected) <= 4 * risk.stderr
    assert risk.stderr < 0.05 * expected  # the check is informative
    again = lr.min_norm_excess_risk(lr.isotropic(d), n, theta, sigma, n_trials=400, seed=np.random.default_rng(1))
    assert again == risk


def test_min_norm_excess_risk_benign_vs_isotropic():
    n, d = 40, 1000
    theta = np.zeros(d)
    theta[0] = 1.0
    benign = lr.min_norm_excess_risk(lr.benign_log_spectrum(d), n, theta, 0.5, n_trials=20, seed=0)
    flat = lr.min_norm_excess_risk(lr.isotropic(d), n, theta, 0.5, n_trials=20, seed=0)
    assert benign.mean < 0.5 * flat.mean  # isotropic: bias ~ (1 - n/d) = 0.96 stays


def test_linear_regression_input_errors():
    with pytest.raises(ValueError, match=r"spectrum must be non-increasing.*spectrum\[1\] = 2 > spectrum\[0\] = 1"):
        lr.effective_ranks([1.0, 2.0])
    with pytest.raises(ValueError, match="spectrum must be positive"):
        lr.k_star([1.0, 0.0], 3)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        lr.k_star([1.0], 0)
    with pytest.raises(ValueError, match=r"theta must have shape \[d\] = \(3,\)"):
        lr.min_norm_excess_risk(np.ones(3), 5, np.ones(2), 1.0, n_trials=3, seed=0)
    with pytest.raises(ValueError, match="seed must be an int or a numpy.random.Generator"):
        lr.min_norm_excess_risk(np.ones(3), 5, np.ones(3), 1.0, n_trials=3, seed=0.5)
    with pytest.raises(ValueError, match="n_trials must be an integer >= 2"):
        lr.min_norm_excess_risk(np.ones(3), 5, np.ones(3), 1.0, n_trials=1, seed=0)
    with pytest.raises(ValueError, match="big must be >= small"):
        lr.two_tier(5, 2, 1.0, 2.0)
    with pytest.raises(ValueError, match="k must be <= d = 5"):
        lr.two_tier(5, 6, 2.0, 1.0)


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25), d=st.integers(1, 25), lam=st.floats(1e-3, 1e3))
def test_ridge_solves_the_normal_equations(seed, n, d, lam):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    beta = lr.ridge(X, y, lam)
    np.testing.assert_allclose(beta, np.linalg.solve(X.T @ X + lam * np.eye(d), X.T @ y), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(beta, X.T @ np.linalg.solve(X @ X.T + lam * np.eye(n), y), rtol=1e-9, atol=1e-12)


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25), d=st.integers(1, 25))
def test_ridge_tends_to_min_norm_least_squares(seed, n, d):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    limit = max_margin.min_norm_interpolant(X, y)
    np.testing.assert_allclose(lr.ridge(X, y, 0.0), limit, rtol=1e-9, atol=1e-10 * np.abs(limit).max())
    s = np.linalg.svd(X, compute_uv=False)
    if s.min() > 1e-3 * s.max():  # well conditioned: ridge(lam) - X^+ y = O(lam / s_min^3) -> 0
        gaps = [np.linalg.norm(lr.ridge(X, y, lam * s.min() ** 2) - limit) for lam in (1e-4, 1e-6)]
        assert gaps[1] <= 1e-6 * np.linalg.norm(limit) and gaps[1] < gaps[0] / 50


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40), d=st.integers(2, 40), sigma=st.floats(0.1, 2.0))
def test_optimal_ridge_penalty_minimises_the_isotropic_risk_on_a_grid(seed, n, d, sigma):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    theta_norm = rng.uniform(0.5, 3.0)
    best = lr.optimal_ridge_penalty(d, sigma, theta_norm)
    grid = best * 2.0 ** np.arange(-8, 9)  # [17] around lam*, which sits at index 8
    risks = [lr.isotropic_ridge_risk(X, lam, theta_norm, sigma) for lam in grid]
    assert int(np.argmin(risks)) == 8
    assert lr.isotropic_ridge_risk(X, 0.0, theta_norm, sigma) > risks[8]


def test_isotropic_ridge_risk_matches_monte_carlo():
    rng = np.random.default_rng(0)
    n, d, sigma, theta_norm = 15, 20, 0.5, 2.0
    X = rng.standard_normal((n, d))
    theta = rng.standard_normal((4000, d))
    theta *= theta_norm / np.linalg.norm(theta, axis=1, keepdims=True)  # [trials, d] uniform on the sphere
    noise = sigma * rng.standard_normal((4000, n))
    for lam in (0.0, 3.0):
        B = np.stack([lr.ridge(X, e, lam) for e in np.eye(n)], axis=1)  # [d, n]: ridge is linear in y
        errors = np.sum(((theta @ X.T + noise) @ B.T - theta) ** 2, axis=1)
        stderr = np.std(errors) / np.sqrt(len(errors))
        assert abs(np.mean(errors) - lr.isotropic_ridge_risk(X, lam, theta_norm, sigma)) <= 4 * stderr
        assert stderr < 0.02 * np.mean(errors)  # the check is informative


def test_optimal_ridge_removes_the_double_descent_peak():
    # Averaged over Gaussian designs (Nakkiran et al. 2021): min-norm least squares peaks at n = d,
    # optimally regularised ridge decreases with n.
    rng = np.random.default_rng(1)
    d, sigma, theta_norm = 20, 0.5, 1.0
    best = lr.optimal_ridge_penalty(d, sigma, theta_norm)
    sizes = (5, 10, 15, 20, 25, 30, 40)
    designs = {n: [rng.standard_normal((n, d)) for _ in range(100)] for n in sizes}
    min_norm = [np.mean([lr.isotropic_ridge_risk(X, 0.0, theta_norm, sigma) for X in designs[n]]) for n in sizes]
    ridge = [np.mean([lr.isotropic_ridge_risk(X, best, theta_norm, sigma) for X in designs[n]]) for n in sizes]
    peak = sizes.index(d)
    assert min_norm[peak] > 5 * max(min_norm[peak - 1], min_norm[peak + 1])
    assert all(later < earlier for earlier, later in zip(ridge, ridge[1:]))
    assert all(r <= m for r, m in zip(ridge, min_norm))


def test_ridge_input_errors():
    with pytest.raises(ValueError, match="lam must be >= 0"):
        lr.ridge(np.eye(2), np.ones(2), -1.0)
    with pytest.raises(ValueError, match=r"y must have shape \[n\] = \(2,\)"):
        lr.ridge(np.eye(2), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="theta_norm must be > 0"):
        lr.optimal_ridge_penalty(3, 1.0, 0.0)
    with pytest.raises(ValueError, match="d must be an integer >= 1"):
        lr.optimal_ridge_penalty(0, 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        lr.isotropic_ridge_risk(np.eye(2), 1.0, 1.0, -0.1)


@HYPOTHESIS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), d=st.integers(1, 12))
def test_ridge_path_equals_ridge_at_each_penalty(seed, n, d):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    lams = [0.0, 1e-3, 0.5, 10.0]
    path = lr.ridge_path(X, y, lams)
    assert path.shape == (len(lams), d)
    for lam, beta in zip(lams, path):
        if lam == 0:
            limit = np.linalg.lstsq(X, y, rcond=None)[0]
        else:
            limit = np.linalg.solve(X.T @ X + lam * np.eye(d), X.T @ y)
        np.testing.assert_allclose(beta, limit, rtol=1e-8, atol=1e-9 * (1 + np.abs(limit).max()))


@pytest.mark.parametrize("n, d", [(20, 80), (40, 15), (30, 30)])
def test_isotropic_min_norm_risk_matches_monte_carlo(n, d):
    theta = np.zeros(d)
    theta[0] = 1.3
    expected = lr.isotropic_min_norm_risk(n, d, theta_norm=1.3, sigma=0.7)
    if abs(n - d) <= 1:
        assert expected == math.inf and lr.isotropic_min_norm_risk(n, d, 1.3, 0.0) == pytest.approx(1.69 * (1 - n / d))
        return
    risk = lr.min_norm_excess_risk(lr.isotropic(d), n, theta, 0.7, n_trials=400, seed=2)
    assert abs(risk.mean - expected) <= 4 * risk.stderr and risk.stderr < 0.05 * expected


def test_ridge_path_input_errors():
    with pytest.raises(ValueError, match="lams must be >= 0"):
        lr.ridge_path(np.eye(2), np.ones(2), [1.0, -0.5])
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        lr.isotropic_min_norm_risk(0, 3, 1.0, 1.0)
