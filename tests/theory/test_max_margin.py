"""theory.max_margin against scikit-learn's SVC, scipy's linprog, and the KKT conditions."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from sklearn.svm import SVC

import theory
from theory import _hard_margin, max_margin
from theory.max_margin import NotSeparableError, SolverError

# Tolerances, in one place. The exact paths (closed form, active set) satisfy the KKT conditions to
# ~1e-12; KKT_TOL leaves room for round-off only. libsvm's default tol=1e-3 stops ~4e-4 short of
# the optimal margin, so the reference SVC runs at tol=1e-8 (it then lands within ~3e-6).
KKT_TOL = 1e-8
SVC_RTOL = 1e-5
CLARABEL_RTOL = 1e-6  # agreement between the exact paths and the interior-point ones
LP_RTOL = 1e-6
# derandomize: a fixed example sequence, so that a tolerance test cannot fail on one run in a thousand.
HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True)

seeds = st.integers(0, 2**32 - 1)


def separable(seed, n, d, *, bias, gap=0.2):
    """Gaussian X [n, d] labelled by a random hyperplane (offset if bias), classes pushed gap apart."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    s = X @ u
    offset = -np.quantile(s, rng.uniform(0.25, 0.75)) if bias else 0.0
    y = np.where(s + offset >= 0, 1.0, -1.0)
    if not bias and np.unique(y).size == 1:
        y[0], X[0] = -y[0], -X[0]
    X += (gap * y)[:, None] * u
    return X, y


def svc_margin(X, y, *, bias):
    """Geometric margin of libsvm's hard-margin SVM; without bias, fitted on the symmetrised set
    {(x_i, y_i), (-x_i, -y_i)}, whose max-margin classifier has b = 0 and the same w."""
    Xf, yf = (X, y) if bias else (np.vstack([X, -X]), np.concatenate([y, -y]))
    svc = SVC(kernel="linear", C=1e10, tol=1e-8).fit(Xf, yf)
    w, b = svc.coef_[0], (svc.intercept_[0] if bias else 0.0)
    return np.min(y * (X @ w + b)) / np.linalg.norm(w)


@HYPOTHESIS
@given(seed=seeds, n=st.integers(3, 40), d=st.integers(1, 60), bias=st.booleans())
def test_l2_margin_equals_sklearn_svc(seed, n, d, bias):
    X, y = separable(seed, n, d, bias=bias)
    result = max_margin.l2_max_margin(X, y, bias=bias)
    event(f"path={result.method}")
    reference = svc_margin(X, y, bias=bias)
    assert reference <= result.margin * (1 + 1e-12)  # ours is the optimum: libsvm can only fall short
    np.testing.assert_allclose(result.margin, reference, rtol=SVC_RTOL)


@HYPOTHESIS
@given(seed=seeds, n=st.integers(2, 40), d=st.integers(1, 60), bias=st.booleans())
def test_l2_kkt_conditions_hold(seed, n, d, bias):
    X, y = separable(seed, n, d, bias=bias)
    res = max_margin.l2_max_margin(X, y, bias=bias)
    q = y * res.decision_function(X)
    alpha = res.dual
    assert res.status == "optimal"
    assert q.min() == pytest.approx(1.0, abs=KKT_TOL)  # primal feasibility, canonical scaling
    assert alpha.min() >= -KKT_TOL * alpha.max()  # dual feasibility
    assert np.max(alpha * np.abs(q - 1)) <= KKT_TOL * alpha.max()  # complementary slackness
    np.testing.assert_allclose(res.w, X.T @ (alpha * y), rtol=0, atol=KKT_TOL * np.linalg.norm(res.w))
    if bias:
        assert abs(alpha @ y) <= KKT_TOL * alpha.sum()
    else:
        assert res.b == 0.0
    assert res.margin == pytest.approx(1.0 / np.linalg.norm(res.w), rel=KKT_TOL)
    np.testing.assert_array_equal(res.support, np.flatnonzero(q <= 1 + 1e-6))
    assert set(np.flatnonzero(alpha > 1e-6 * alpha.max())) <= set(res.support)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=seeds, n=st.integers(3, 25), d=st.integers(1, 50), bias=st.booleans())
def test_l2_paths_agree(seed, n, d, bias):
    X, y = separable(seed, n, d, bias=bias)
    exact = max_margin.l2_max_margin(X, y, bias=bias, method="active_set")
    for method in ("primal", "dual", "auto"):
        other = max_margin.l2_max_margin(X, y, bias=bias, method=method)
        np.testing.assert_allclose(other.margin, exact.margin, rtol=CLARABEL_RTOL)
        np.testing.assert_allclose(other.w, exact.w, rtol=0, atol=CLARABEL_RTOL * np.linalg.norm(exact.w))
        assert other.b == pytest.approx(exact.b, abs=CLARABEL_RTOL * (1 + abs(exact.b)))


def test_l2_scales_with_the_data():
    X, y = separable(3, 30, 8, bias=True)
    base = max_margin.l2_max_margin(X, y, bias=True)
    scaled = max_margin.l2_max_margin(1e3 * X, y, bias=True)
    assert scaled.margin == pytest.approx(1e3 * base.margin, rel=1e-10)
    np.testing.assert_allclose(scaled.w, base.w / 1e3, rtol=1e-9)


@HYPOTHESIS
@given(seed=seeds, n=st.integers(2, 30), d=st.integers(1, 40))
def test_kernel_max_margin_on_linear_gram_matches_l2(seed, n, d):
    X, y = separable(seed, n, d, bias=False)
    linear = max_margin.l2_max_margin(X, y)
    kernel = max_margin.kernel_max_margin(X @ X.T, y)
    np.testing.assert_allclose(kernel.margin, linear.margin, rtol=1e-8)
    Xt = np.random.default_rng(seed).standard_normal((5, d))
    expected = Xt @ linear.w
    atol = 1e-7 * np.abs(expected).max()
    np.testing.assert_allclose(kernel.decision_function(Xt @ X.T), expected, rtol=1e-7, atol=atol)
    np.testing.assert_allclose(kernel.coef, kernel.dual * y)


def test_kernel_max_margin_rbf_kernel_interpolates_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = rng.choice([-1.0, 1.0], 20)
    K = np.exp(-0.5 * np.sum((X[:, None] - X[None]) ** 2, axis=-1))  # non-singular: random labels separable
    res = max_margin.kernel_max_margin(K, y)
    q = y * (K @ res.coef)
    assert q.min() == pytest.approx(1.0, abs=KKT_TOL)
    assert res.dual.min() >= 0
    assert res.margin == pytest.approx(1.0 / np.sqrt(res.coef @ K @ res.coef), rel=1e-9)


def linprog_l1(X, y, *, bias):
    """min ||w||_1 s.t. y_i (<w, x_i> + b) >= 1 as an LP in z = [u, v, (b)], w = u - v, by HiGHS."""
    n, d = X.shape
    A = np.hstack([X, -X] + ([np.ones((n, 1))] if bias else []))
    cost = np.concatenate([np.ones(2 * d), [0.0] if bias else []])
    bounds = [(0, None)] * (2 * d) + ([(None, None)] if bias else [])
    out = linprog(cost, A_ub=-y[:, None] * A, b_ub=-np.ones(n), bounds=bounds, method="highs")
    assert out.status == 0, out.message
    return out.fun


@HYPOTHESIS
@given(seed=seeds, n=st.integers(2, 30), d=st.integers(1, 30), bias=st.booleans())
def test_l1_max_margin_is_the_lp_optimum(seed, n, d, bias):
    X, y = separable(seed, n, d, bias=bias)
    res = max_margin.l1_max_margin(X, y, bias=bias)
    q = y * res.decision_function(X)
    assert q.min() >= 1 - LP_RTOL  # feasible
    l1 = np.abs(res.w).sum()
    np.testing.assert_allclose(l1, linprog_l1(X, y, bias=bias), rtol=LP_RTOL)  # optimal
    np.testing.assert_allclose(res.margin, q.min() / l1, rtol=1e-12)
    np.testing.assert_allclose(res.dual.sum(), l1, rtol=LP_RTOL)  # zero duality gap
    assert np.abs(X.T @ (res.dual * y)).max() <= 1 + LP_RTOL  # dual feasible


def test_l1_margin_is_at_least_the_l2_classifiers_linf_margin():
    X, y = separable(1, 30, 20, bias=False)
    l1 = max_margin.l1_max_margin(X, y)
    l2 = max_margin.l2_max_margin(X, y)
    linf_margin_of_l2 = np.min(y * (X @ l2.w)) / np.abs(l2.w).sum()
    assert l1.margin >= linf_margin_of_l2 * (1 - 1e-7)
    assert l1.margin > linf_margin_of_l2 * 1.01  # and strictly better on generic data


def threshold_data(seed, n, factor):
    """Isotropic Gaussian X [n, d], d = factor * 2 n log n, labels independent fair coins."""
    rng = np.random.default_rng(seed)
    d = max(n, int(round(factor * 2 * n * np.log(n))))
    return rng.standard_normal((n, d)), rng.choice([-1.0, 1.0], n)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=seeds, n=st.integers(6, 16), factor=st.floats(0.25, 1.5))
def test_proliferation_criterion_iff_svm_is_min_norm_interpolant(seed, n, factor):
    X, y = threshold_data(seed, n, factor)
    criterion = max_margin.support_vector_proliferation(X, y)
    svm = max_margin.l2_max_margin(X, y, method="dual")  # a QP, independent of the criterion
    interpolant = max_margin.min_norm_interpolant(X, y)
    same = np.allclose(svm.w, interpolant, rtol=0, atol=1e-6 * np.linalg.norm(interpolant))
    event(f"proliferation={criterion}")
    assert criterion == same
    assert criterion == (svm.support.size == n)
    assert criterion == (max_margin.l2_max_margin(X, y).method == "closed_form")


def test_proliferation_switches_on_across_the_threshold():
    n = 12
    below = [max_margin.support_vector_proliferation(*threshold_data(s, n, 0.3)) for s in range(10)]
    above = [max_margin.support_vector_proliferation(*threshold_data(s, n, 3.0)) for s in range(10)]
    assert sum(below) <= 2 and sum(above) >= 8


def test_proliferation_with_bias_matches_the_bias_svm():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((8, 200)), np.array([1.0, -1, 1, -1, 1, -1, 1, 1])
    assert max_margin.support_vector_proliferation(X, y, bias=True)
    res = max_margin.l2_max_margin(X, y, bias=True, method="dual")
    np.testing.assert_allclose(y * res.decision_function(X), 1.0, atol=1e-6)
    assert max_margin.l2_max_margin(X, y, bias=True).method == "closed_form"


def test_min_norm_interpolant():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 12)), rng.standard_normal(5)
    w = max_margin.min_norm_interpolant(X, y)
    np.testing.assert_allclose(X @ w, y, atol=1e-12)
    np.testing.assert_allclose(w, X.T @ np.linalg.solve(X @ X.T, y), atol=1e-12)  # in the row space
    targets = rng.standard_normal(12)
    X_tall = rng.standard_normal((12, 5))  # no interpolant: least squares
    least_squares = np.linalg.lstsq(X_tall, targets, rcond=None)[0]
    np.testing.assert_allclose(max_margin.min_norm_interpolant(X_tall, targets), least_squares)
    X_rank_deficient = np.vstack([X, X[:2]])  # d > n but X X^T singular: the SVD route
    w = max_margin.min_norm_interpolant(X_rank_deficient, np.concatenate([y, y[:2]]))
    np.testing.assert_allclose(w, max_margin.min_norm_interpolant(X, y), atol=1e-12)
    with pytest.raises(ValueError, match=r"y must have shape \[n\] = \(5,\)"):
        max_margin.min_norm_interpolant(X, y[:4])


XOR = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]), np.array([1.0, 1.0, -1.0, -1.0])


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("method", ["auto", "active_set", "primal", "dual"])
def test_non_separable_data_raise(bias, method):
    X, y = XOR
    with pytest.raises(NotSeparableError, match="not separable"):
        max_margin.l2_max_margin(X, y, bias=bias, method=method)


def test_non_separable_in_high_dimension_and_other_solvers():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 50))
    X[1] = X[0]  # the same point with both labels: X X^T is singular, d > n
    y = np.array([1.0, -1, 1, -1, 1, -1])
    for method in ("auto", "primal", "dual"):
        with pytest.raises(NotSeparableError):
            max_margin.l2_max_margin(X, y, method=method)
    with pytest.raises(NotSeparableError):
        max_margin.kernel_max_margin(X @ X.T, y)
    with pytest.raises(NotSeparableError):
        max_margin.l1_max_margin(*XOR, bias=True)
    assert not max_margin.support_vector_proliferation(X, y)
    assert issubclass(NotSeparableError, ValueError)
    with pytest.raises(NotSeparableError):
        max_margin.l2_max_margin(np.zeros((3, 2)), np.array([1, -1, 1]))


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.ones((3, 2)), np.array([0, 1, 1]), r"y must contain only the labels -1 and \+1"),
        (np.ones((3, 2)), np.array([1, 2, -1]), r"y must contain only the labels"),
        (np.ones((3, 2)), np.array([1, -1]), r"y must have shape \[n\] = \(3,\)"),
        (np.ones(3), np.array([1, -1, 1]), r"X must be a 2-D array"),
        (np.array([[1.0, np.nan]]), np.array([1]), r"X must be finite"),
        (np.ones((0, 2)), np.zeros(0), r"X must not be empty"),
    ],
)
def test_bad_input_raises_value_error(X, y, match):
    for solver in (max_margin.l2_max_margin, max_margin.l1_max_margin, max_margin.support_vector_proliferation):
        with pytest.raises(ValueError, match=match):
            solver(X, y)


def test_bad_options_and_kernels_raise():
    X, y = separable(0, 6, 3, bias=False)
    with pytest.raises(ValueError, match="method must be one of"):
        max_margin.l2_max_margin(X, y, method="newton")
    with pytest.raises(ValueError, match="only the label"):
        max_margin.l2_max_margin(X, np.ones(6), bias=True)
    with pytest.raises(ValueError, match="needs support-vector proliferation"):
        max_margin.l2_max_margin(X, y, method="closed_form")
    with pytest.raises(ValueError, match="K must be square"):
        max_margin.kernel_max_margin(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="K must be symmetric"):
        max_margin.kernel_max_margin(np.array([[1.0, 0.5], [0.0, 1.0]]), np.array([1, -1]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        max_margin.kernel_max_margin(np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([1, -1]))
    with pytest.raises(ValueError, match="support_tol must be >= 0"):
        max_margin.l2_max_margin(X, y, support_tol=-1)


def test_a_solver_that_stops_short_raises_with_solver_and_status(monkeypatch):
    monkeypatch.setattr(_hard_margin, "solve", lambda problem, what: "optimal_inaccurate")
    X, y = separable(0, 10, 3, bias=True)
    with pytest.raises(SolverError, match="CLARABEL stopped with status 'optimal_inaccurate'"):
        max_margin.l2_max_margin(X, y, bias=True, method="primal")
    monkeypatch.setattr(max_margin, "solve", lambda problem, what: "solver_error")
    monkeypatch.setattr(max_margin, "linprog", lambda *args, **kwargs: SimpleNamespace(status=4, message="stalled"))
    with pytest.raises(SolverError, match="CLARABEL stopped with status 'solver_error' .* HiGHS with 'stalled'"):
        max_margin.l1_max_margin(X, y)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=seeds, n=st.integers(2, 30), d=st.integers(1, 30), bias=st.booleans())
def test_l1_falls_back_to_highs_when_clarabel_stops_short(seed, n, d, bias):
    X, y = separable(seed, n, d, bias=bias)
    reference = max_margin.l1_max_margin(X, y, bias=bias)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(max_margin, "solve", lambda problem, what: "optimal_inaccurate")
        res = max_margin.l1_max_margin(X, y, bias=bias)
    assert res.method == "lp-highs" and reference.method == "lp"
    np.testing.assert_allclose(np.abs(res.w).sum(), linprog_l1(X, y, bias=bias), rtol=LP_RTOL)
    np.testing.assert_allclose(res.margin, reference.margin, rtol=LP_RTOL)
    assert np.min(y * res.decision_function(X)) >= 1 - LP_RTOL
    np.testing.assert_allclose(res.dual.sum(), np.abs(res.w).sum(), rtol=LP_RTOL)  # zero duality gap


def test_l1_on_sparse_sign_data_where_clarabel_stops_short():
    rng = np.random.default_rng(0)
    X = rng.choice([-1.0, 1.0], size=(100, 400))
    y = np.sign(X[:, :3] @ np.array([1.0, -1.0, 1.0]))
    res = max_margin.l1_max_margin(X, y)
    assert res.method == "lp-highs"  # Clarabel reports 'optimal_inaccurate' on this LP
    np.testing.assert_allclose(res.w[:3] * res.margin, [1 / 3, -1 / 3, 1 / 3], rtol=1e-9)  # the 3-sparse w*/3
    assert np.count_nonzero(res.w) == 3 and res.margin == pytest.approx(1 / 3, rel=1e-12)


def test_an_answer_failing_the_kkt_check_is_refused():
    X, y = separable(0, 10, 3, bias=False)
    good = max_margin.l2_max_margin(X, y, method="dual")
    bad = _hard_margin.Solution(coef=1.01 * good.dual * y + 1e-3, b=0.0, status="optimal", method="dual")
    with pytest.raises(SolverError, match="KKT residual"):
        _hard_margin.polish(X, y, bad, bias=False)


def test_package_exposes_submodules_lazily():
    assert theory.max_margin.l2_max_margin is max_margin.l2_max_margin
    with pytest.raises(AttributeError):
        theory.not_a_module
