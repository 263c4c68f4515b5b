"""theory.kkt: the KKT residual is 0 at max-margin solutions (degree 1 and 2) and large elsewhere."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import kkt, max_margin

HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True)
seeds = st.integers(0, 2**32 - 1)
EXACT = 1e-9  # the l2 max-margin solution is exact to round-off
LP = 1e-9  # l1_max_margin returns the exact LP vertex (snapped from the interior point)


def separable(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    u = rng.standard_normal(d)
    y = np.where(X @ u >= 0, 1.0, -1.0)
    X += 0.2 * y[:, None] * u / np.linalg.norm(u)
    return X, y


def linear_model(theta, X, y):
    """Signed margins q_i = y_i <theta, x_i> and their gradients y_i x_i (degree 1)."""
    return y[:, None] * X, y * (X @ theta)


def diagonal_net(theta, X, y):
    """f(x) = <u^2 - v^2, x>, theta = (u, v) (degree 2): q_i and grad q_i = y_i (2 x_i u, -2 x_i v)."""
    u, v = np.split(theta, 2)
    grads = y[:, None] * np.hstack([2 * X * u, -2 * X * v])
    return grads, y * (X @ (u**2 - v**2))


@HYPOTHESIS
@given(
    seed=seeds,
    n=st.integers(2, 30),
    d=st.integers(1, 40),
    scale=st.floats(0.1, 10.0),
    tol=st.sampled_from([1e-6, 0.1, None]),
)
def test_residual_vanishes_at_the_l2_max_margin_solution(seed, n, d, scale, tol):
    X, y = separable(seed, n, d)
    svm = max_margin.l2_max_margin(X, y)
    theta = scale * svm.w  # any positive multiple of a KKT point is one
    fit = kkt.kkt_fit(theta, *linear_model(theta, X, y), degree=1, tol=tol)
    assert fit.residual <= EXACT
    if tol == 1e-6:  # only minimum-margin examples allowed: complementary slackness holds too
        assert fit.complementary_slackness <= EXACT * svm.dual.sum()
    # the multipliers reproduce theta~ = w (min margin 1): sum_i lambda_i y_i x_i = w
    np.testing.assert_allclose(X.T @ (fit.multipliers * y), svm.w, atol=EXACT * np.linalg.norm(svm.w) * 10)
    assert fit.multipliers.min() >= 0


def test_multipliers_are_the_svm_dual_variables():
    X, y = separable(0, 8, 30)  # d > n: the dual solution is unique
    svm = max_margin.l2_max_margin(X, y)
    fit = kkt.kkt_fit(3.0 * svm.w, *linear_model(3.0 * svm.w, X, y), degree=1, tol=1e-6)
    np.testing.assert_allclose(fit.multipliers, svm.dual, rtol=1e-8, atol=1e-10 * svm.dual.max())


@HYPOTHESIS
@given(seed=seeds, n=st.integers(3, 12), d=st.integers(20, 40))
def test_residual_is_large_for_a_random_separating_theta(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    theta = rng.standard_normal(d)
    y = np.sign(X @ theta)  # theta separates the data but is no KKT point
    grads, margins = linear_model(theta, X, y)
    assert kkt.kkt_residual(theta, grads, margins, degree=1) > 0.5
    assert kkt.kkt_residual(theta, grads, margins, degree=1, tol=None) > 0.3  # n < d directions cannot span theta


@HYPOTHESIS
@given(seed=seeds, n=st.integers(3, 10), d=st.integers(15, 30))
def test_diagonal_net_is_at_a_kkt_point_exactly_at_the_l1_solution(seed, n, d):
    # Parameter-space KKT points of <u^2 - v^2, x> are the l1 max-margin predictors (u^2 - v^2 = beta):
    # stationarity u_j = 2 u_j (X^T (lambda y))_j holds with lambda = alpha / 2, alpha the LP dual.
    X, y = separable(seed, n, d)
    beta = max_margin.l1_max_margin(X, y).w
    theta = np.concatenate([np.sqrt(np.maximum(beta, 0)), np.sqrt(np.maximum(-beta, 0))])
    fit = kkt.kkt_fit(theta, *diagonal_net(theta, X, y), degree=2)
    assert fit.residual <= LP
    w = max_margin.l2_max_margin(X, y).w  # the l2 solution, written as a diagonal net, is not one
    theta_l2 = np.concatenate([np.sqrt(np.maximum(w, 0)), np.sqrt(np.maximum(-w, 0))])
    assert kkt.kkt_residual(theta_l2, *diagonal_net(theta_l2, X, y), degree=2, tol=None) > 1e-2


def test_multipliers_scale_with_the_degree():
    # theta = 2 * theta*, degree 2: margins are 4x, gradients 2x; lambda refers to theta~ = theta*
    X, y = separable(1, 6, 20)
    beta = max_margin.l1_max_margin(X, y).w
    theta = np.concatenate([np.sqrt(np.maximum(beta, 0)), np.sqrt(np.maximum(-beta, 0))])
    base = kkt.kkt_fit(theta, *diagonal_net(theta, X, y), degree=2)
    doubled = kkt.kkt_fit(2 * theta, *diagonal_net(2 * theta, X, y), degree=2)
    np.testing.assert_allclose(doubled.multipliers, base.multipliers, rtol=1e-6, atol=1e-9 * base.multipliers.max())
    assert doubled.residual == pytest.approx(base.residual, abs=1e-9)


def test_active_set_follows_tol():
    theta = np.array([1.0, 1.0, 1.0])
    margins = np.array([1.0, 1.05, 1.5])
    assert kkt.kkt_fit(theta, np.eye(3), margins, degree=1).active.tolist() == [0, 1]
    assert kkt.kkt_fit(theta, np.eye(3), margins, degree=1, tol=0.0).active.tolist() == [0]
    full = kkt.kkt_fit(theta, np.eye(3), margins, degree=1, tol=None)
    assert full.active.tolist() == [0, 1, 2] and full.residual == pytest.approx(0.0, abs=1e-12)
    assert full.complementary_slackness == pytest.approx(0.05 + 0.5)  # lambda = 1 on every example
    assert kkt.kkt_residual(theta, np.eye(3), margins, degree=1, tol=0.0) == pytest.approx(np.sqrt(2 / 3))


def test_normalized_margin_is_scale_invariant():
    X, y = separable(2, 10, 5)
    theta = np.random.default_rng(0).standard_normal(10)
    _, margins = diagonal_net(theta, X, y)
    value = kkt.normalized_margin(margins, np.linalg.norm(theta), degree=2)
    _, scaled = diagonal_net(3 * theta, X, y)
    assert kkt.normalized_margin(scaled, np.linalg.norm(3 * theta), degree=2) == pytest.approx(value, rel=1e-12)
    assert value == pytest.approx(margins.min() / np.sum(theta**2))


def test_kkt_input_errors():
    theta, grads, margins = np.ones(3), np.eye(3), np.ones(3)
    with pytest.raises(ValueError, match=r"grads must have shape \[n, p\] with p = len\(theta\) = 3"):
        kkt.kkt_residual(theta, np.ones((3, 2)), margins, degree=1)
    with pytest.raises(ValueError, match=r"margins must have shape \[n\] = \(3,\)"):
        kkt.kkt_residual(theta, grads, np.ones(2), degree=1)
    with pytest.raises(ValueError, match="every margin y_i f\\(x_i\\) must be > 0.*index 1"):
        kkt.kkt_residual(theta, grads, np.array([1.0, -0.5, 2.0]), degree=1)
    with pytest.raises(ValueError, match="theta must be non-zero"):
        kkt.kkt_residual(np.zeros(3), grads, margins, degree=1)
    with pytest.raises(ValueError, match="degree must be > 0"):
        kkt.kkt_residual(theta, grads, margins, degree=0)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        kkt.kkt_residual(theta, grads, margins, degree=1, tol=-0.1)
    with pytest.raises(ValueError, match="theta_norm must be > 0"):
        kkt.normalized_margin(margins, 0.0, 1)
