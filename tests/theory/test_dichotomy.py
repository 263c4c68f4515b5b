"""theory.dichotomy: phase times, the early and late predictors (and their derivations), the margin bounds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import dichotomy, matrices, max_margin

HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True)
SOLVES = settings(max_examples=10, deadline=None, derandomize=True)  # a QP and an LP per example
seeds = st.integers(0, 2**32 - 1)
alphas = st.floats(1.001, 1e12)
decays = st.floats(1e-8, 10.0)


@HYPOTHESIS
@given(a1=alphas, a2=alphas, lam1=decays, lam2=decays, c=st.floats(0.01, 0.99))
def test_transition_time_follows_log_alpha_over_lambda(a1, a2, lam1, lam2, c):
    t = dichotomy.transition_time(a1, lam1)
    assert t == pytest.approx(math.log(a1) / lam1, rel=1e-12)
    if a1 < a2:  # later for a larger initialisation ...
        assert dichotomy.transition_time(a2, lam1) > t
    if lam1 < lam2:  # ... and earlier for a stronger weight decay
        assert dichotomy.transition_time(a1, lam2) < t
    early, late = dichotomy.early_phase_end(a1, lam1, c), dichotomy.late_phase_start(a1, lam1, c)
    assert early < t < late
    assert early == pytest.approx((1 - c) * t, rel=1e-12) and late == pytest.approx((1 + c) * t, rel=1e-12)


@HYPOTHESIS
@given(t=st.floats(0.0, 1e9), lr=st.floats(1e-6, 10.0))
def test_steps_are_time_over_lr(t, lr):
    steps = dichotomy.time_to_steps(t, lr)
    assert steps == t / lr
    assert dichotomy.steps_to_time(steps, lr) == pytest.approx(t, rel=1e-12, abs=1e-300)


def test_the_sparse_run_of_the_paper():
    # d = 1e5, n = 256, ||theta_0|| = alpha = 128, lr 0.01, wd 1e-3 (SGD weight_decay = lambda):
    # t* = 1000 log 128 = 4852, 4.85e5 steps; the paper's test accuracy rises between ~1.4e5 and ~3.6e5
    # steps, inside [(1 - c) t*, t*] for c = 0.75: the theory fixes the scale, not the constant.
    steps = dichotomy.time_to_steps(dichotomy.transition_time(128.0, 1e-3), 0.01)
    assert steps == pytest.approx(4.852e5, rel=1e-3)
    assert dichotomy.time_to_steps(dichotomy.early_phase_end(128.0, 1e-3, c=0.75), 0.01) < 1.4e5


def sparse_task(seed, n, d, k):
    """The authors' sparse classification data: x uniform on {-1, +1}^d, y = sign <x_{1:k}, w*>, k odd."""
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(n, d))
    w_star = rng.choice([-1.0, 1.0], size=k)
    return X, np.sign(X[:, :k] @ w_star)


def l1_share(w, k):
    return np.abs(w[:k]).sum() / np.abs(w).sum()


@SOLVES
@given(seed=seeds, n=st.integers(20, 40), ratio=st.integers(2, 4), k=st.sampled_from([1, 3]))
def test_late_predictor_puts_more_l1_mass_on_the_true_coordinates(seed, n, ratio, k):
    X, y = sparse_task(seed, n, ratio * n, k)
    early, late = dichotomy.diagonal_net_predictors(X, y)
    assert np.linalg.norm(early) == pytest.approx(1.0) and np.linalg.norm(late) == pytest.approx(1.0)
    assert np.all(y * (X @ early) > 0) and np.all(y * (X @ late) > 0)  # both separate the training data
    assert l1_share(late, k) > l1_share(early, k)


def test_late_predictor_generalises_and_early_does_not():
    # n = 100 < d = 400: the l1 max-margin classifier finds the 3 coordinates, the l2 one interpolates.
    X, y = sparse_task(0, 2100, 400, 3)
    early, late = dichotomy.diagonal_net_predictors(X[:100], y[:100])
    accuracy = [np.mean(np.sign(X[100:] @ w) == y[100:]) for w in (early, late)]
    assert accuracy[1] >= 0.99 and accuracy[0] <= 0.75  # measured: 1.000 and 0.647


def diagonal_ntk(X, alpha):
    """NTK of f = <u^2 - v^2, x> at u = v = alpha / sqrt(2d), from its parameter gradients."""
    d = X.shape[1]
    u = v = np.full(d, alpha / np.sqrt(2 * d))
    grads = np.hstack([2 * X * u, -2 * X * v])  # [n, 2d]: df/du = 2 u x, df/dv = -2 v x
    return grads @ grads.T


@SOLVES
@given(seed=seeds, n=st.integers(5, 20), d=st.integers(10, 40), alpha=st.floats(1.0, 1e3))
def test_early_predictor_is_the_ntk_max_margin_classifier(seed, n, d, alpha):
    X, y = sparse_task(seed, n, d, 1)
    K = diagonal_ntk(X, alpha)
    np.testing.assert_allclose(K, 4 * alpha**2 / d * X @ X.T, rtol=1e-12, atol=1e-12 * K.max())
    kernel = max_margin.kernel_max_margin(K, y)
    early, _ = dichotomy.diagonal_net_predictors(X, y)
    Xt = np.random.default_rng(seed).choice([-1.0, 1.0], size=(10, d))
    f = kernel.decision_function(Xt @ X.T * 4 * alpha**2 / d)  # the kernel predictor on new points
    np.testing.assert_allclose(f / np.linalg.norm(f), Xt @ early / np.linalg.norm(Xt @ early), atol=1e-7)


@SOLVES
@given(seed=seeds, n=st.integers(5, 15), d=st.integers(15, 30))
def test_late_predictor_is_the_parameter_min_norm_solution(seed, n, d):
    # The cheapest (u, v) with u^2 - v^2 = w has ||u||^2 + ||v||^2 = ||w||_1; any other costs more.
    X, y = sparse_task(seed, n, d, 3)
    w = max_margin.l1_max_margin(X, y).w  # margins >= 1
    u, v = np.sqrt(np.maximum(w, 0)), np.sqrt(np.maximum(-w, 0))
    np.testing.assert_allclose(u**2 - v**2, w, atol=1e-12)
    assert np.sum(u**2) + np.sum(v**2) == pytest.approx(np.abs(w).sum())
    c = np.random.default_rng(seed).uniform(0.01, 1.0, size=d)
    assert np.sum(u**2 + c) + np.sum(v**2 + c) > np.abs(w).sum()  # (sqrt(u^2 + c), sqrt(v^2 + c)) also gives w
    _, late = dichotomy.diagonal_net_predictors(X, y)
    np.testing.assert_allclose(late, w / np.linalg.norm(w), atol=1e-6)


def paper_target(d):
    """The authors' completion target M = v v^T, v_i = i / d (rank one)."""
    v = np.arange(d) / d
    return np.outer(v, v)


def test_matrix_completion_predictors():
    d = 8
    M = paper_target(d)
    flat = np.random.default_rng(0).permutation(d * d)[:40]  # the authors' sampling: ordered pairs
    rows, cols = flat // d, flat % d
    early, late = dichotomy.matrix_completion_predictors(d, rows, cols, M[rows, cols], tol=1e-6)
    seen = np.zeros((d, d), bool)
    seen[rows, cols] = seen[cols, rows] = True
    np.testing.assert_array_equal(early, np.where(seen, M, 0.0))  # min Frobenius norm: zero off the data
    np.testing.assert_allclose(late, late.T)
    assert np.abs(late - M)[seen].max() <= 1e-6 + 1e-7  # tol, plus Clarabel's feasibility tolerance
    unseen = ~seen
    errors = [np.mean((W - M)[unseen] ** 2) for W in (early, late)]
    assert errors[1] < 1e-3 * errors[0]  # the late (nuclear-norm) phase recovers M, the kernel one does not
    s = np.linalg.svd(late, compute_uv=False)
    assert s[1] < 1e-3 * s[0]


def test_completion_ntk_and_nuclear_norm_derivations():
    d, alpha = 4, 3.0
    # NTK between entries at U = V = alpha I: <dW_ij/dtheta, dW_kl/dtheta> = 4 alpha^2 (d_ik d_jl + d_il d_jk)
    U = alpha * np.eye(d)
    grad = np.zeros((d, d, d, d))  # dW_ij / dU_ab = d_ai U_jb + d_aj U_ib
    for i in range(d):
        for j in range(d):
            grad[i, j, i, :] += U[j]
            grad[i, j, j, :] += U[i]
    flat = grad.reshape(d * d, -1)
    K = 2 * flat @ flat.T  # U and V contribute alike (V with a minus sign on both sides)
    eye = np.eye(d)
    expected = 4 * alpha**2 * (np.einsum("ik,jl->ijkl", eye, eye) + np.einsum("il,jk->ijkl", eye, eye))
    np.testing.assert_allclose(K, expected.reshape(d * d, d * d))
    # min ||U||^2 + ||V||^2 over U U^T - V V^T = W is ||W||_*, at U = W_+^{1/2}, V = W_-^{1/2}
    A = np.random.default_rng(1).standard_normal((d, d))
    W = A + A.T
    values, vectors = np.linalg.eigh(W)
    U = vectors * np.sqrt(np.maximum(values, 0))
    V = vectors * np.sqrt(np.maximum(-values, 0))
    np.testing.assert_allclose(U @ U.T - V @ V.T, W, atol=1e-12)
    nuclear = np.abs(values).sum()
    assert np.sum(U**2) + np.sum(V**2) == pytest.approx(nuclear)
    assert nuclear == pytest.approx(np.linalg.svd(W, compute_uv=False).sum())


def test_completion_uses_both_orientations_of_an_entry():
    # (0, 1) observed as 1.0 and (1, 0) as 1.0015: W is symmetric, so the early fit averages them
    early, late = dichotomy.matrix_completion_predictors(2, [0, 1, 0], [1, 0, 0], [1.0, 1.0015, 1.0], tol=1e-3)
    assert early[0, 1] == early[1, 0] == pytest.approx(1.00075)
    assert abs(late[0, 1] - 1.0) <= 1e-3 + 1e-7 and abs(late[1, 0] - 1.0015) <= 1e-3 + 1e-7
    assert matrices.stable_rank(late) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match=r"entries \(i, j\) and \(j, i\) differ by up to 0.0015 > 2 tol"):
        dichotomy.matrix_completion_predictors(2, [0, 1], [1, 0], [1.0, 1.0015], tol=1e-4)


@HYPOTHESIS
@given(n=st.integers(1, 10**6), d=st.integers(2, 10**6), k=st.sampled_from([1, 3, 5]), delta=st.floats(1e-6, 0.5))
def test_sparse_bounds_have_the_stated_leading_terms(n, d, k, delta):
    k = min(k, d)
    lower = math.sqrt(math.log(2 / delta) / (2 * n))
    l1 = dichotomy.sparse_l1_margin_error_bound(n, d, k, delta=delta)
    l2 = dichotomy.sparse_l2_margin_error_bound(n, d, k, delta=delta)
    leading_l1, leading_l2 = 4 * k * math.sqrt(2 * math.log(2 * d) / n), 4 * math.sqrt(k * d / n)
    assert l1 - leading_l1 == pytest.approx(math.sqrt(math.log(math.log2(2 * k)) / n) + lower, rel=1e-9, abs=1e-12)
    assert l2 - leading_l2 == pytest.approx(math.sqrt(math.log(math.log2(2 * math.sqrt(k * d))) / n) + lower, rel=1e-9)
    assert dichotomy.sparse_l1_margin_error_bound(2 * n, d, k, delta=delta) < l1  # more data, smaller bound


def test_l1_bound_beats_l2_bound_when_k_log_d_is_small():
    # l1: 4 k sqrt(2 log(2d)/n), l2: 4 sqrt(k d / n); the ratio is sqrt(2 k log(2d) / d)
    assert dichotomy.sparse_l1_margin_error_bound(10**5, 10**5, 3) < 0.2  # non-vacuous at n ~ 1e5
    assert dichotomy.sparse_l2_margin_error_bound(10**5, 10**5, 3) > 1  # vacuous until n >> k d
    assert dichotomy.sparse_l1_margin_error_bound(100, 10, 3) > dichotomy.sparse_l2_margin_error_bound(100, 10, 3)


def test_dichotomy_input_errors():
    with pytest.raises(ValueError, match="alpha must be > 1"):
        dichotomy.transition_time(1.0, 1e-3)
    with pytest.raises(ValueError, match="lam must be > 0"):
        dichotomy.transition_time(10.0, 0.0)
    with pytest.raises(ValueError, match=r"c must lie in \(0, 1\)"):
        dichotomy.early_phase_end(10.0, 1e-3, c=1.0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        dichotomy.time_to_steps(1.0, 0.0)
    with pytest.raises(ValueError, match=r"margin must lie in \(0, 1\]"):
        dichotomy.margin_error_bound(0.1, 2.0, 10)
    with pytest.raises(ValueError, match=r"delta must lie in \(0, 1\)"):
        dichotomy.margin_error_bound(0.1, 0.5, 10, delta=1.0)
    with pytest.raises(ValueError, match="k must be <= d = 2"):
        dichotomy.sparse_l1_margin_error_bound(10, 2, 3)
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 2\)"):
        dichotomy.matrix_completion_predictors(2, [2], [0], [1.0])
    with pytest.raises(ValueError, match="must not repeat an entry"):
        dichotomy.matrix_completion_predictors(2, [0, 0], [1, 1], [1.0, 1.0])
    with pytest.raises(max_margin.NotSeparableError):
        dichotomy.diagonal_net_predictors(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([1.0, -1.0]))
