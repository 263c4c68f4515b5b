"""theory.matrices: ranks, nuclear-norm recovery, deep-linear end-to-end dynamics, balancedness."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from theory import matrices

HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True)
seeds = st.integers(0, 2**32 - 1)


def orthonormal(rng, rows, cols):
    """[rows, cols] with orthonormal columns (cols <= rows)."""
    return ortho_group.rvs(rows, random_state=rng)[:, :cols] if rows > 1 else np.ones((1, 1))


@HYPOTHESIS
@given(seed=seeds, m=st.integers(1, 8), n=st.integers(1, 8), data=st.data())
def test_k_equal_singular_values_give_effective_and_stable_rank_k(seed, m, n, data):
    k = data.draw(st.integers(1, min(m, n)))
    rng = np.random.default_rng(seed)
    M = 3.7 * orthonormal(rng, m, k) @ orthonormal(rng, n, k).T
    assert matrices.effective_rank(M) == pytest.approx(k, rel=1e-12)
    assert matrices.stable_rank(M) == pytest.approx(k, rel=1e-12)


@HYPOTHESIS
@given(seed=seeds, m=st.integers(1, 8), n=st.integers(1, 8), data=st.data())
def test_ranks_are_between_one_and_the_rank(seed, m, n, data):
    k = data.draw(st.integers(1, min(m, n)))
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((m, k)) @ np.diag(rng.exponential(size=k)) @ rng.standard_normal((k, n))
    rank = np.linalg.matrix_rank(M)
    for value in (matrices.effective_rank(M), matrices.stable_rank(M)):
        assert 1 - 1e-12 <= value <= rank + 1e-12
    if k >= 2:  # unequal singular values: strictly below the rank
        assert matrices.stable_rank(M) < rank


def test_ranks_of_the_zero_matrix_and_known_values():
    assert matrices.effective_rank(np.zeros((3, 2))) == 0.0 and matrices.stable_rank(np.zeros((3, 2))) == 0.0
    s = np.array([2.0, 1.0, 1.0])
    p = s / s.sum()
    assert matrices.effective_rank(np.diag(s)) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert matrices.stable_rank(np.diag(s)) == pytest.approx(6 / 4)


def test_nuclear_norm_completion_recovers_a_rank_2_matrix():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 30))
    mask = rng.random((30, 30)) < 0.6
    rows, cols = np.nonzero(mask)
    X = matrices.nuclear_norm_completion(M.shape, rows, cols, M[rows, cols], tol=1e-3)
    assert np.linalg.norm(X - M) / np.linalg.norm(M) <= 1e-2
    assert np.abs(X[rows, cols] - M[rows, cols]).max() <= 1e-3 + 1e-7  # Clarabel: feasibility to ~1e-8 x scale


def test_nuclear_norm_completion_with_scs():
    rng = np.random.default_rng(2)
    M = np.outer(rng.standard_normal(12), rng.standard_normal(12))
    rows, cols = np.nonzero(rng.random((12, 12)) < 0.7)
    X = matrices.nuclear_norm_completion(M.shape, rows, cols, M[rows, cols], solver="SCS")
    assert np.linalg.norm(X - M) / np.linalg.norm(M) <= 1e-2
    with pytest.raises(ValueError, match="solver must be one of 'CLARABEL', 'SCS'"):
        matrices.nuclear_norm_completion(M.shape, rows, cols, M[rows, cols], solver="MOSEK")


def test_nuclear_norm_sensing_recovers_a_rank_1_matrix():
    rng = np.random.default_rng(1)
    M = np.outer(rng.standard_normal(8), rng.standard_normal(8))
    A = rng.standard_normal((48, 8, 8)) / 8  # 3 r (d1 + d2) Gaussian measurements, N(0, 1/n) entries
    y = np.einsum("mij,ij->m", A, M)
    X = matrices.nuclear_norm_sensing(A, y, tol=1e-4)
    assert np.linalg.norm(X - M) / np.linalg.norm(M) <= 1e-2


def test_recovery_input_errors():
    with pytest.raises(ValueError, match="must not repeat an entry"):
        matrices.nuclear_norm_completion((3, 3), [0, 0], [1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 3\)"):
        matrices.nuclear_norm_completion((3, 3), [0, 3], [1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="cols must be an integer array"):
        matrices.nuclear_norm_completion((3, 3), [0, 1], [0.5, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="tol must be >= 0"):
        matrices.nuclear_norm_completion((3, 3), [0, 1], [0, 1], [1.0, 2.0], tol=-1)
    with pytest.raises(ValueError, match=r"symmetric=True needs a square shape; got \(3, 2\)"):
        matrices.nuclear_norm_completion((3, 2), [0, 1], [0, 1], [1.0, 2.0], symmetric=True)
    with pytest.raises(ValueError, match=r"y must have shape \[m\] = \(2,\)"):
        matrices.nuclear_norm_sensing(np.ones((2, 3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="no matrix X satisfies"):  # X_00 = 0 and X_00 = 1
        matrices.nuclear_norm_sensing(np.stack([np.eye(2)[:1].T @ np.eye(2)[:1]] * 2), np.array([0.0, 1.0]), tol=0.0)


def balanced_factors(rng, m, n, depth, hidden):
    """Factors W_1 [h, n], W_j [h, h], W_N [m, h] of W = U S V^T with W_{j+1}^T W_{j+1} = W_j W_j^T:
    W_1 = R_1 S^{1/N} V^T, W_j = R_j S^{1/N} R_{j-1}^T, W_N = U S^{1/N} R_{N-1}^T, R_j orthonormal."""
    k = min(m, n)
    U, V = orthonormal(rng, m, k), orthonormal(rng, n, k)
    root = np.diag(rng.uniform(0.5, 2.0, size=k) ** (1.0 / depth))
    R = [orthonormal(rng, hidden, k) for _ in range(depth - 1)]
    ends = [V] + R + [U]  # right frame of W_1, ..., left frame of W_N
    return [ends[j + 1] @ root @ ends[j].T for j in range(depth)]


def product(factors):
    out = factors[0]
    for W in factors[1:]:
        out = W @ out
    return out


def factor_gradient_step(factors, G, lr):
    """One gradient step on every factor for a loss with dL/dW = G at the product:
    dL/dW_j = (W_N ... W_{j+1})^T G (W_{j-1} ... W_1)^T."""
    N = len(factors)
    new = []
    for j in range(N):
        left = product(factors[j + 1 :]) if j < N - 1 else np.eye(G.shape[0])
        right = product(factors[:j]) if j > 0 else np.eye(G.shape[1])
        new.append(factors[j] - lr * left.T @ G @ right.T)
    return new


@HYPOTHESIS
@given(seed=seeds, m=st.integers(1, 4), n=st.integers(1, 4), depth=st.integers(2, 4), extra=st.integers(0, 2))
def test_end_to_end_update_matches_factor_descent_to_second_order(seed, m, n, depth, extra):
    # On balanced factors the product after one step on every factor is W - lr * step + O(lr^2),
    # with step the end-to-end sum (Arora, Cohen, Hazan 2018). So the error is C lr^2 (1 + O(lr)):
    # dividing lr by 10 divides it by 100 (1 + O(lr)). With lr = 1e-3 and O(1) matrices the O(lr)
    # correction is ~1%; the window [50, 200] rejects first-order (10x) and third-order (1000x) agreement.
    rng = np.random.default_rng(seed)
    factors = balanced_factors(rng, m, n, depth, hidden=max(m, n) + extra)
    W = product(factors)
    G = rng.standard_normal((m, n))
    errors = []
    for lr in (1e-3, 1e-4):
        stepped = product(factor_gradient_step(factors, G, lr))
        errors.append(np.linalg.norm(stepped - matrices.end_to_end_update(W, G, depth, lr)))
        assert errors[-1] <= 1e-2 * np.linalg.norm(stepped - W)  # the first-order term is reproduced
    assert 50 <= errors[0] / errors[1] <= 200


def test_end_to_end_update_depth_one_is_gradient_descent():
    rng = np.random.default_rng(0)
    W, G = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    np.testing.assert_array_equal(matrices.end_to_end_update(W, G, 1, 0.1), W - 0.1 * G)


@HYPOTHESIS
@given(seed=seeds, m=st.integers(1, 5), n=st.integers(1, 5), depth=st.integers(1, 4))
def test_singular_value_velocity_matches_finite_differences(seed, m, n, depth):
    rng = np.random.default_rng(seed)
    k = min(m, n)
    s = np.sort(rng.uniform(0.5, 3.0, size=k))[::-1] + np.arange(k)[::-1]  # distinct, gaps >= 1
    W = orthonormal(rng, m, k) @ np.diag(s) @ orthonormal(rng, n, k).T
    G = rng.standard_normal((m, n))
    velocity = matrices.singular_value_velocity(W, G, depth)
    lr = 1e-6
    moved = np.linalg.svd(matrices.end_to_end_update(W, G, depth, lr), compute_uv=False)
    np.testing.assert_allclose((moved - s) / lr, velocity, rtol=0, atol=1e-4 * (1 + np.abs(velocity).max()))


def test_singular_value_velocity_small_values_move_slowly_with_depth():
    W, G = np.diag([1.0, 1e-2]), -np.eye(2)
    for depth in (1, 2, 3):
        v = matrices.singular_value_velocity(W, G, depth)
        np.testing.assert_allclose(v, depth * np.array([1.0, 1e-2]) ** (2 - 2 / depth))


def test_balancedness_gap():
    rng = np.random.default_rng(0)
    factors = balanced_factors(rng, 3, 4, depth=3, hidden=5)
    assert matrices.balancedness_gap(factors) <= 1e-14
    assert matrices.balancedness_gap(factors, relative=False) <= 1e-13
    random = [rng.standard_normal(f.shape) for f in factors]
    assert matrices.balancedness_gap(random) > 0.1
    assert matrices.balancedness_gap([rng.standard_normal((2, 3))]) == 0.0
    # a gradient step keeps the factors balanced to O(lr^2): the gap falls 100x when lr falls 10x
    G = rng.standard_normal((3, 4))
    gaps = [matrices.balancedness_gap(factor_gradient_step(factors, G, lr), relative=False) for lr in (1e-3, 1e-4)]
    assert 50 <= gaps[0] / gaps[1] <= 200


def test_matrix_dynamics_input_errors():
    W = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"grad must have the shape of W \(2, 3\)"):
        matrices.end_to_end_update(W, np.ones((3, 2)), 2, 0.1)
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        matrices.singular_value_velocity(W, W, 0)
    with pytest.raises(ValueError, match="lr must be a finite real number"):
        matrices.end_to_end_update(W, W, 2, float("nan"))
    with pytest.raises(ValueError, match=r"factors\[1\] has shape \(2, 2\) but factors\[0\] has shape \(3, 3\)"):
        matrices.balancedness_gap([np.eye(3), np.eye(2)])
    with pytest.raises(ValueError, match="got one 2-D array"):
        matrices.balancedness_gap(np.eye(2))
    with pytest.raises(ValueError, match="M must be a 2-D array"):
        matrices.effective_rank(np.ones(3))
