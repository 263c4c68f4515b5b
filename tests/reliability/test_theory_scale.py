"""Scale equivariance of the theory functions over the whole float range, and loud failure on bad numbers.

For inputs multiplied by s in [1e-150, 1e150] (log-uniform) every function must return what its
mathematics says: the same direction, support and ranks, and margins, norms, multipliers and risks
multiplied by the right power of s. Without internal rescaling, squares of 1e155 overflow and squares
of 1e-155 underflow, so l2_max_margin(1e154 X) used to raise NotSeparableError, l2_max_margin(1e-160 X)
returned margin 0 and stable_rank(1e160 diag(1, 2)) returned nan.
"""

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import dichotomy, early_time, kkt, linear_regression, matrices, max_margin

SCALES = st.floats(-150.0, 150.0).map(lambda p: 10.0**p)  # log-uniform in [1e-150, 1e150]
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True)
SOLVER_PROPERTY = settings(max_examples=6, deadline=None, derandomize=True)  # an SDP per example
EXACT = 1e-9  # relative agreement of the exact (linear-algebra) paths: the data differ by rounding only
SOLVER = 1e-6  # relative agreement of interior-point answers at two scales


def separable(seed=0, n=12, d=6, gap=0.3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    y = np.where(X @ u >= 0, 1.0, -1.0)
    return X + gap * y[:, None] * u, y


@functools.cache
def solved(solver, shape, bias):
    """The unscaled reference answer, computed once per problem."""
    return solver(*separable(n=shape[0], d=shape[1]), bias=bias)


def close(actual, expected, rtol):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)))


@PROPERTY
@given(s=SCALES, bias=st.booleans(), shape=st.sampled_from([(12, 6), (6, 12)]))
def test_l2_max_margin_is_scale_equivariant(s, bias, shape):
    X, y = separable(n=shape[0], d=shape[1])
    base, scaled = solved(max_margin.l2_max_margin, shape, bias), max_margin.l2_max_margin(s * X, y, bias=bias)
    close(scaled.w * s, base.w, EXACT)
    assert scaled.margin / s == pytest.approx(base.margin, rel=EXACT)
    assert scaled.b == pytest.approx(base.b, rel=EXACT, abs=EXACT)
    close(scaled.dual * s**2, base.dual, EXACT)
    np.testing.assert_array_equal(scaled.support, base.support)


@settings(max_examples=10, deadline=None, derandomize=True)  # an LP per example
@given(s=SCALES, bias=st.booleans())
def test_l1_max_margin_is_scale_equivariant(s, bias):
    X, y = separable(n=10, d=8)
    base, scaled = solved(max_margin.l1_max_margin, (10, 8), bias), max_margin.l1_max_margin(s * X, y, bias=bias)
    close(scaled.w * s, base.w, EXACT)  # both are the exact LP vertex
    assert scaled.margin / s == pytest.approx(base.margin, rel=EXACT)
    close(scaled.dual * s, base.dual, EXACT)


@PROPERTY
@given(s=SCALES)
def test_kernel_max_margin_is_scale_equivariant(s):
    X, y = separable(n=10, d=4)
    K = np.exp(-0.5 * np.sum((X[:, None] - X[None]) ** 2, axis=-1))
    base, scaled = max_margin.kernel_max_margin(K, y), max_margin.kernel_max_margin(s * K, y)
    close(scaled.coef * s, base.coef, EXACT)
    assert scaled.margin / math.sqrt(s) == pytest.approx(base.margin, rel=EXACT)
    np.testing.assert_array_equal(scaled.support, base.support)


@PROPERTY
@given(s=SCALES, t=SCALES, shape=st.sampled_from([(5, 12), (12, 5)]))
def test_min_norm_interpolant_and_ridge_are_scale_equivariant(s, t, shape):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal(shape), rng.standard_normal(shape[0])
    close(max_margin.min_norm_interpolant(s * X, t * y) * s / t, max_margin.min_norm_interpolant(X, y), EXACT)
    for lam in (0.0, 0.3):
        close(linear_regression.ridge(s * X, t * y, lam * s * s) * s / t, linear_regression.ridge(X, y, lam), EXACT)


@PROPERTY
@given(s=SCALES)
def test_support_vector_proliferation_is_scale_invariant(s):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((6, 80)), rng.choice([-1.0, 1.0], 6)
    assert max_margin.support_vector_proliferation(X, y)  # d >> n log n: it holds, so the check is informative
    assert max_margin.support_vector_proliferation(s * X, y)
    assert not max_margin.support_vector_proliferation(s * X[:, :3], y)  # d < n: never


@PROPERTY
@given(s=SCALES)
def test_stable_and_effective_rank_are_scale_invariant(s):
    M = np.random.default_rng(3).standard_normal((5, 4)) @ np.diag([3.0, 1.0, 0.5, 1e-3])
    assert matrices.stable_rank(s * M) == pytest.approx(matrices.stable_rank(M), rel=EXACT)
    assert matrices.effective_rank(s * M) == pytest.approx(matrices.effective_rank(M), rel=EXACT)
    assert matrices.stable_rank(s * np.diag([1.0, 2.0])) == pytest.approx(1.25, rel=EXACT)


@PROPERTY
@given(s=SCALES)
def test_balancedness_gap_scales_as_its_definition(s):
    rng = np.random.default_rng(4)
    factors = [rng.standard_normal((3, 4)), rng.standard_normal((2, 3))]
    scaled = [s * f for f in factors]
    assert matrices.balancedness_gap(scaled) == pytest.approx(matrices.balancedness_gap(factors), rel=EXACT)
    absolute = matrices.balancedness_gap(factors, relative=False)
    assert matrices.balancedness_gap(scaled, relative=False) / s**2 == pytest.approx(absolute, rel=EXACT)


POWERS_OF_TWO = st.integers(-498, 498).map(lambda k: 2.0**k)  # the same range; scaling by them is exact
FEASIBLE = 1e-7  # constraint violation allowed to Clarabel (feasibility tolerance 1e-8), relative to the data


def nuclear(X):
    return np.linalg.svd(X, compute_uv=False).sum()


@functools.cache
def completion_problem():
    rng = np.random.default_rng(5)
    M = np.outer(rng.standard_normal(4), rng.standard_normal(4))
    rows, cols = np.nonzero(rng.random((4, 4)) < 0.7)
    base = matrices.nuclear_norm_completion(M.shape, rows, cols, M[rows, cols], tol=1e-3)
    return M[rows, cols], rows, cols, base


@SOLVER_PROPERTY
@given(s=SCALES, k=POWERS_OF_TWO)
def test_nuclear_norm_completion_is_scale_equivariant(s, k):
    # The minimiser of an SDP with a flat optimal face is only determined to ~1e-5 by an interior point,
    # so a general scale is checked on what is determined (optimal value, feasibility); an exact power
    # of two gives the unit-scale problem bit for bit, hence the same X.
    values, rows, cols, base = completion_problem()
    scaled = matrices.nuclear_norm_completion((4, 4), rows, cols, s * values, tol=s * 1e-3) / s
    assert nuclear(scaled) == pytest.approx(nuclear(base), rel=SOLVER)
    assert np.abs(scaled[rows, cols] - values).max() <= 1e-3 + FEASIBLE * np.abs(values).max()
    exact = matrices.nuclear_norm_completion((4, 4), rows, cols, k * values, tol=k * 1e-3)
    np.testing.assert_array_equal(exact / k, base)


@functools.cache
def sensing_problem():
    rng = np.random.default_rng(6)
    M = np.outer(rng.standard_normal(3), rng.standard_normal(3))
    A = rng.standard_normal((7, 3, 3)) / 3
    y = np.einsum("mij,ij->m", A, M)
    return A, y, matrices.nuclear_norm_sensing(A, y, tol=1e-4)


@SOLVER_PROPERTY
@given(s=SCALES, t=SCALES)
def test_nuclear_norm_sensing_is_scale_equivariant(s, t):
    A, y, base = sensing_problem()
    scaled = matrices.nuclear_norm_sensing(s * A, t * y, tol=t * 1e-4) * s / t
    assert nuclear(scaled) == pytest.approx(nuclear(base), rel=SOLVER)
    assert np.abs(np.einsum("mij,ij->m", A, scaled) - y).max() <= 1e-4 + FEASIBLE * np.abs(y).max()


@PROPERTY
@given(a=SCALES, b=SCALES, c=SCALES, degree=st.sampled_from([1.0, 2.0, 3.0]))
def test_kkt_fit_is_scale_equivariant(a, b, c, degree):
    X, y = separable(n=8, d=5)
    theta = max_margin.l2_max_margin(X, y).w + 0.05  # near, not at, the max-margin direction
    grads, margins = y[:, None] * X, y * (X @ theta)
    base = kkt.kkt_fit(theta, grads, margins, degree=degree, tol=0.3)
    assert 1e-3 < base.residual < 1  # informative
    residual = kkt.kkt_residual(a * theta, b * grads, c * margins, degree=degree, tol=0.3)
    assert residual == pytest.approx(base.residual, rel=EXACT)
    factor = a / b * c ** ((degree - 2) / degree)  # lambda -> factor * lambda
    if not 1e-300 < factor * base.multipliers.max() < 1e300:  # not representable: refused, not flushed
        with pytest.raises(ValueError, match="multipliers .* outside the float64 range"):
            kkt.kkt_fit(a * theta, b * grads, c * margins, degree=degree, tol=0.3)
        return
    scaled = kkt.kkt_fit(a * theta, b * grads, c * margins, degree=degree, tol=0.3)
    assert scaled.residual == residual
    np.testing.assert_array_equal(scaled.active, base.active)
    close(scaled.multipliers / factor, base.multipliers, EXACT)
    assert scaled.complementary_slackness / factor == pytest.approx(base.complementary_slackness, rel=EXACT)


@PROPERTY
@given(s=SCALES, degree=st.sampled_from([1.0, 2.0]))
def test_normalized_margin_is_scale_invariant(s, degree):
    margins = np.array([4.0, 8.0])
    expected = kkt.normalized_margin(margins, 2.0, degree)
    assert kkt.normalized_margin(margins * s**degree, 2.0 * s, degree) == pytest.approx(expected, rel=EXACT)


def test_normalized_margin_when_the_norm_power_alone_overflows():
    assert kkt.normalized_margin(np.array([1e300]), 1e200, 2) == pytest.approx(1e-100, rel=EXACT)
    assert kkt.normalized_margin(np.array([-2.0, 3.0]), 1.0, 2) == -2.0
    with pytest.raises(ValueError, match="overflows float64"):
        kkt.normalized_margin(np.array([1e300]), 1e-100, 2)


@PROPERTY
@given(s=SCALES)
def test_linear_regression_quantities_scale_as_their_formulas(s):
    lam = linear_regression.benign_log_spectrum(200)
    r, R = linear_regression.effective_ranks(lam)
    r_s, R_s = linear_regression.effective_ranks(s * lam)
    close(r_s, r, EXACT)
    close(R_s, R, EXACT)
    assert linear_regression.k_star(s * lam, 20) == linear_regression.k_star(lam, 20)
    bound, scaled = (linear_regression.benign_bound_terms(v, 20, 1.0, 0.5) for v in (lam, s * lam))
    assert (scaled.r0, scaled.k_star) == pytest.approx((bound.r0, bound.k_star), rel=EXACT)
    assert scaled.R_k_star == pytest.approx(bound.R_k_star, rel=EXACT)
    assert scaled.bias / s == pytest.approx(bound.bias, rel=EXACT)
    assert scaled.variance == pytest.approx(bound.variance, rel=EXACT)


@PROPERTY
@given(s=SCALES)
def test_risks_and_the_optimal_penalty_scale_as_their_formulas(s):
    theta = np.random.default_rng(7).standard_normal(30)
    lam = linear_regression.power_law(30, 1.0)
    risk = linear_regression.min_norm_excess_risk(lam, 10, theta, 0.5, n_trials=3, seed=0)
    scaled = linear_regression.min_norm_excess_risk(s * lam, 10, theta, 0.5 * math.sqrt(s), n_trials=3, seed=0)
    assert scaled.mean / s == pytest.approx(risk.mean, rel=EXACT)  # the same draws, x -> sqrt(s) x
    X = np.random.default_rng(8).standard_normal((10, 30))
    for penalty in (0.0, 2.0):
        expected = linear_regression.isotropic_ridge_risk(X, penalty, 1.5, 0.5)
        got = linear_regression.isotropic_ridge_risk(s * X, penalty * s * s, 1.5, 0.5 * s)
        assert got == pytest.approx(expected, rel=EXACT)
    assert linear_regression.optimal_ridge_penalty(30, 0.5 * s, 2.0 * s) == pytest.approx(30 / 16, rel=EXACT)


@PROPERTY
@given(s=SCALES, k=POWERS_OF_TWO)
def test_dichotomy_predictors_are_scale_invariant(s, k):
    # On {-1, +1} data the l1 max-margin LP often has a whole optimal face, so for a general scale the
    # late predictor is checked by its l1 margin (the optimal value); an exact power of two is bitwise.
    rng = np.random.default_rng(9)
    X = rng.choice([-1.0, 1.0], size=(12, 20))
    y = np.sign(X[:, :3].sum(axis=1))
    early, late = dichotomy.diagonal_net_predictors(X, y)
    early_s, late_s = dichotomy.diagonal_net_predictors(s * X, y)
    close(early_s, early, EXACT)
    l1_margin = [np.min(y * (X @ w)) / np.abs(w).sum() for w in (late, late_s)]
    assert l1_margin[1] == pytest.approx(l1_margin[0], rel=SOLVER)
    for base, exact in zip((early, late), dichotomy.diagonal_net_predictors(k * X, y)):
        np.testing.assert_array_equal(exact, base)


NAN, INF = float("nan"), float("inf")
BAD = np.array([[1.0, NAN], [0.0, 1.0]])
BAD_INF = np.array([[1.0, INF], [0.0, 1.0]])
LABELS = np.array([1.0, -1.0])
NON_FINITE_CALLS = {
    "l2_max_margin": lambda bad: max_margin.l2_max_margin(bad, LABELS),
    "l1_max_margin": lambda bad: max_margin.l1_max_margin(bad, LABELS),
    "kernel_max_margin": lambda bad: max_margin.kernel_max_margin(bad, LABELS),
    "min_norm_interpolant": lambda bad: max_margin.min_norm_interpolant(bad, np.ones(2)),
    "support_vector_proliferation": lambda bad: max_margin.support_vector_proliferation(bad, LABELS),
    "stable_rank": matrices.stable_rank,
    "effective_rank": matrices.effective_rank,
    "balancedness_gap": lambda bad: matrices.balancedness_gap([bad, np.eye(2)]),
    "nuclear_norm_completion": lambda bad: matrices.nuclear_norm_completion((2, 2), [0, 1], [0, 1], bad[0]),
    "nuclear_norm_sensing": lambda bad: matrices.nuclear_norm_sensing(np.stack([bad, bad]), np.ones(2)),
    "kkt_residual": lambda bad: kkt.kkt_residual(np.ones(2), bad, np.ones(2), degree=1),
    "normalized_margin": lambda bad: kkt.normalized_margin(bad[0], 1.0, 1),
    "effective_ranks": lambda bad: linear_regression.effective_ranks(bad[0]),
    "ridge": lambda bad: linear_regression.ridge(bad, np.ones(2), 1.0),
    "isotropic_ridge_risk": lambda bad: linear_regression.isotropic_ridge_risk(bad, 1.0, 1.0, 1.0),
    "diagonal_net_predictors": lambda bad: dichotomy.diagonal_net_predictors(bad, LABELS),
    "affine_ntk": lambda bad: early_time.affine_ntk(bad, early_time.RELU, "both"),
    "empirical_ntk": lambda bad: early_time.empirical_ntk(np.eye(2), bad, np.ones(2), early_time.RELU, "first"),
    "linear_model_trajectory": lambda bad: early_time.linear_model_trajectory(bad, np.ones(2), lr=0.1, steps=3),
}


@pytest.mark.parametrize("name", sorted(NON_FINITE_CALLS))
@pytest.mark.parametrize("bad", [BAD, BAD_INF], ids=["nan", "inf"])
def test_non_finite_arrays_raise_a_clear_value_error(name, bad):
    with pytest.raises(ValueError, match=r"must be finite; got (nan|inf) at index"):
        NON_FINITE_CALLS[name](bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda: linear_regression.ridge(np.eye(2), np.ones(2), NAN),
        lambda: linear_regression.optimal_ridge_penalty(3, INF, 1.0),
        lambda: matrices.nuclear_norm_completion((2, 2), [0], [0], [1.0], tol=INF),
        lambda: dichotomy.transition_time(NAN, 1e-3),
        lambda: kkt.normalized_margin(np.ones(2), INF, 1),
    ],
)
def test_non_finite_scalars_raise_a_clear_value_error(call):
    with pytest.raises(ValueError, match="must be a finite real number"):
        call()


@pytest.mark.parametrize("s", [1e-300, 1e-160, 1e154, 1e160, 1e300])
def test_the_reported_failures_at_extreme_scales(s):
    # Before the rescaling: l2_max_margin(1e154 X) raised NotSeparableError, l2_max_margin(1e-160 X) gave
    # margin 0, stable_rank(1e160 diag(1, 2)) was nan, effective_ranks overflowed, the KKT residual of
    # 1e154-scaled arrays was 0 and of 1e-200-scaled ones raised.
    X, y = separable(n=12, d=6)
    for bias in (False, True):
        base, scaled = solved(max_margin.l2_max_margin, (12, 6), bias), max_margin.l2_max_margin(s * X, y, bias=bias)
        close(scaled.w * s, base.w, EXACT)
        assert scaled.margin / s == pytest.approx(base.margin, rel=EXACT)
        np.testing.assert_array_equal(scaled.support, base.support)
    assert matrices.stable_rank(s * np.diag([1.0, 2.0])) == pytest.approx(1.25, rel=EXACT)
    assert matrices.effective_rank(s * np.diag([1.0, 1.0])) == pytest.approx(2.0, rel=EXACT)
    np.testing.assert_allclose(linear_regression.effective_ranks(s * np.array([2.0, 1.0]))[1], [1.8, 1.0], rtol=EXACT)
    residual = kkt.kkt_residual(s * np.ones(2), s * np.eye(2), s * np.array([1.0, 2.0]), degree=1)
    assert residual == pytest.approx(math.sqrt(0.5), rel=EXACT)


def test_results_outside_the_float_range_raise_instead_of_returning_zero_or_inf():
    X, y = separable(n=6, d=3)
    res = max_margin.l2_max_margin(1e-300 * X, y)  # w ~ 1e300 and margin ~ 1e-300 are fine ...
    with pytest.raises(ValueError, match="dual .* is outside the float64 range"):
        res.dual  # ... the multipliers ~ 1e600 are not
    with pytest.raises(ValueError, match="w .* is outside the float64 range"):
        max_margin.min_norm_interpolant(1e-300 * X.T, 1e300 * y[:3])
