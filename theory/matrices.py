"""Matrix quantities of deep matrix factorisation: ranks, nuclear-norm recovery, end-to-end dynamics.

A depth-N linear network computes W = W_N ... W_1 with factors W_j [d_j, d_{j-1}]. Gradient flow on
the factors from a balanced start (W_{j+1}^T W_{j+1} = W_j W_j^T, preserved by the flow) moves the
product by the end-to-end update below (Arora, Cohen, Hazan 2018, Thm 1), whose singular values
move one by one, faster the deeper the network (Arora, Cohen, Hu, Luo 2019, Thm 3); the depth-1
and shallow limits of the implicit bias are compared with nuclear-norm minimisation.
Fractional powers of the PSD matrices W W^T and W^T W use their eigendecomposition, with
round-off eigenvalues (negative, or below k * eps * the largest) set to zero; A^0 = I by convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theory import _scale, _validate
from theory._convex import SOLVERS, SolverError, require_optimal, solve

__all__ = [
    "SolverError",
    "balancedness_gap",
    "effective_rank",
    "end_to_end_update",
    "nuclear_norm_completion",
    "nuclear_norm_sensing",
    "singular_value_velocity",
    "stable_rank",
]


def effective_rank(M) -> float:
    """Effective rank exp(H(p)), p_i = s_i / sum_j s_j over the singular values s of M [m, n].

    H(p) = -sum_i p_i log p_i (0 log 0 = 0), so a matrix with k equal non-zero singular values has
    effective rank k and any matrix has 1 <= erank <= rank; the zero matrix gets 0. Scale-invariant
    (erank(s M) = erank(M) for any s != 0 whose s M is finite).
    (Roy and Vetterli 2007; the rank measure of Arora, Cohen, Hu, Luo 2019.)

    >>> round(effective_rank(np.diag([3.0, 3.0, 0.0])), 12)
    2.0
    """
    s = _singular_values(M)
    if s[0] == 0:
        return 0.0
    p = s[s > 0] / s.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def stable_rank(M) -> float:
    """Stable rank ||M||_F^2 / ||M||_2^2 = sum_i s_i^2 / s_1^2 of M [m, n]; 1 <= srank <= rank, 0 for M = 0.

    Computed as sum_i (s_i / s_1)^2, so it is scale-invariant over the whole float64 range.

    Used for the rank collapse of leaky-ReLU networks (Frei, Vardi, Bartlett, Srebro, Hu 2023).

    >>> stable_rank(np.diag([2.0, 1.0]))
    1.25
    """
    s = _singular_values(M)
    return 0.0 if s[0] == 0 else float(np.sum((s / s[0]) ** 2))


def _singular_values(M) -> np.ndarray:
    """Singular values of M [m, n] divided exactly by the power of two nearest max |M_ij| (descending).

    Both ranks are scale-invariant, so they use these: squares of raw singular values overflow
    above ~1e154 and underflow below ~1e-154.
    """
    M = _validate.matrix("M", M, shape_doc="[m, n]")
    return np.linalg.svd(_scale.unit(M, _scale.exponent(M)), compute_uv=False)


def nuclear_norm_completion(
    shape, rows, cols, values, *, tol: float = 1e-3, solver: str = "CLARABEL", symmetric: bool = False
) -> np.ndarray:
    """Minimum-nuclear-norm completion: argmin ||X||_* s.t. |X_ij - M_ij| <= tol on the observed (i, j).

    The convex baseline of deep matrix factorisation (Arora, Cohen, Hu, Luo 2019, following
    Gunasekar et al. 2017's conjecture that depth-2 factorisation approaches it); exact recovery of
    a rank-r incoherent m x n matrix from about r (m + n) log^2 n uniform entries (Candes and Recht
    2009). An SDP through cvxpy; raises SolverError unless the solver reports ``optimal``.
    Clarabel (interior point, the default) is accurate but its PSD cone of side m + n is dense:
    30 x 30 takes ~8 s on 2 CPU cores and 100 x 100 does not fit in memory; solver="SCS"
    (first-order, accuracy ~1e-4) does 30 x 30 in ~2 s and 100 x 100 with 2000 entries in ~15 s.

    Args:
        shape: (m, n). rows, cols: [k] integer indices of the observed entries, no pair repeated.
        values: [k] observed values M_ij. tol: entrywise slack (the authors' code uses 1e-3).
        solver: "CLARABEL" or "SCS". symmetric: minimise over symmetric X only (needs m = n; for
        models W = U U^T - V V^T, where an observed (i, j) also constrains (j, i)).
    Returns: X [m, n]. Solved at unit scale: (values, tol) -> s (values, tol) gives s X.

    >>> X = nuclear_norm_completion((2, 2), [0, 0, 1], [0, 1, 0], [1.0, 1.0, 1.0], tol=0.0)
    >>> np.round(X, 2).tolist()  # the missing entry is 1 (rank one)
    [[1.0, 1.0], [1.0, 1.0]]
    """
    import cvxpy as cp

    if len(tuple(shape)) != 2:
        raise ValueError(f"shape must be (m, n); got {shape!r}")
    m, n = (_validate.integer(f"shape[{i}]", v, minimum=1) for i, v in enumerate(shape))
    values = _validate.vector("values", values, shape_doc="[k]")
    rows = _validate.indices("rows", rows, values.shape[0], m)
    cols = _validate.indices("cols", cols, values.shape[0], n)
    flat = rows * n + cols
    if np.unique(flat).size != flat.size:
        raise ValueError("rows, cols must not repeat an entry (i, j); average repeated observations first")
    tol = _validate.nonnegative("tol", tol)
    solver = _validate.choice("solver", solver, SOLVERS)
    if symmetric and m != n:
        raise ValueError(f"symmetric=True needs a square shape; got {(m, n)}")
    e = _scale.exponent(np.append(values, tol))  # solved at unit scale: (values, tol) -> 2^-e (values, tol)
    X = cp.Variable((m, n), symmetric=bool(symmetric))
    constraint = cp.abs(X[rows, cols] - _scale.unit(values, e)) <= _scale.unit(tol, e)
    problem = cp.Problem(cp.Minimize(cp.normNuc(X)), [constraint])
    what = "nuclear-norm completion SDP"
    require_optimal(solve(problem, what=what, solver=solver), what=what, solver=solver)
    return _scale.restore("X", X.value, e)


def nuclear_norm_sensing(A, y, *, tol: float = 1e-3, solver: str = "CLARABEL") -> np.ndarray:
    """Minimum-nuclear-norm matrix sensing: argmin ||X||_* s.t. |<A_i, X> - y_i| <= tol for all i.

    <A_i, X> = sum_jk A_ijk X_jk. Recovers a rank-r d1 x d2 matrix from about r (d1 + d2) Gaussian
    measurements (Recht, Fazel, Parrilo 2010); the baseline of Arora, Cohen, Hu, Luo 2019 (sensing
    with N(0, 1/n) entries). An SDP through cvxpy; infeasible constraints raise ValueError, any
    other non-optimal status SolverError. Solver choice as in `nuclear_norm_completion`.

    Args: A [m, d1, d2] measurement matrices, y [m] measurements, tol >= 0 slack,
    solver "CLARABEL" or "SCS". Returns X [d1, d2]. Solved at unit scale: (s A, t y, t tol) gives X t / s.

    >>> A = np.stack([np.eye(2)[[i]].T @ np.eye(2)[[j]] for i, j in [(0, 0), (0, 1), (1, 0)]])
    >>> (np.round(nuclear_norm_sensing(A, np.array([1.0, 0.0, 0.0]), tol=0.0), 4) + 0.0).tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """
    import cvxpy as cp

    A = _validate.as_array("A", A, ndim=3, shape_doc="[m, d1, d2]")
    y = _validate.vector("y", y, length=A.shape[0], shape_doc="[m]")
    tol = _validate.nonnegative("tol", tol)
    solver = _validate.choice("solver", solver, SOLVERS)
    _, d1, d2 = A.shape
    # unit scale: <A_i, X> = y_i +- tol  <=>  <A_i / 2^a, X 2^(a - b)> = y_i / 2^b +- tol / 2^b, with
    # 2^a ~ max_i ||A_i||_F (so that X keeps the size of y) and 2^b ~ max(|y|, tol)
    a = _scale.exponent(A)
    a += _scale.exponent(np.linalg.norm(_scale.unit(A, a).reshape(A.shape[0], -1), axis=1))
    b = _scale.exponent(np.append(y, tol))
    X = cp.Variable((d1, d2))
    measured = _scale.unit(A, a).reshape(A.shape[0], -1) @ cp.reshape(X, (d1 * d2,), order="C")
    constraint = cp.abs(measured - _scale.unit(y, b)) <= _scale.unit(tol, b)
    problem = cp.Problem(cp.Minimize(cp.normNuc(X)), [constraint])
    what = "nuclear-norm sensing SDP"
    status = solve(problem, what=what, solver=solver)
    if status == "infeasible":
        raise ValueError(f"no matrix X satisfies |<A_i, X> - y_i| <= tol = {tol}; increase tol")
    require_optimal(status, what=what, solver=solver)
    return _scale.restore("X", X.value, b - a)


def _psd_power(P: np.ndarray, exponent: float) -> np.ndarray:
    """P^exponent for a symmetric PSD P [k, k] via eigh; P^0 = I.

    Eigenvalues below k * eps * max eigenvalue are round-off of exact zeros (W W^T of a wide or
    rank-deficient W) and are set to 0: a fractional power would otherwise blow 1e-16 up to ~1e-5.
    """
    if exponent == 0:
        return np.eye(P.shape[0])
    values, vectors = np.linalg.eigh(P)
    floor = P.shape[0] * np.finfo(np.float64).eps * max(values.max(), 0.0)
    values = np.where(values > floor, values, 0.0)
    return (vectors * values**exponent) @ vectors.T


def end_to_end_update(W, grad, depth: int, lr: float) -> np.ndarray:
    """One step of the end-to-end dynamics of a depth-N linear network.

    W <- W - lr * sum_{j=1..N} (W W^T)^{(j-1)/N} grad (W^T W)^{(N-j)/N}

    Regime: the factors are balanced (W_{j+1}^T W_{j+1} = W_j W_j^T, e.g. from a small or balanced
    initialisation); then gradient flow on the factors moves W = W_N ... W_1 exactly by the
    continuous version of this update (Arora, Cohen, Hazan 2018, Thm 1), and one gradient step of
    size lr on every factor agrees with it to O(lr^2). Depth 1 is plain gradient descent.

    Args: W [m, n] end-to-end matrix, grad [m, n] = dL/dW at W, depth N >= 1, lr the step size.
    Returns the updated W [m, n].

    >>> end_to_end_update(np.diag([4.0, 1.0]), np.eye(2), depth=2, lr=0.1).round(6).tolist()
    [[3.2, 0.0], [0.0, 0.8]]
    """
    W = _validate.matrix("W", W, shape_doc="[m, n]")
    grad = _same_shape("grad", grad, W)
    N = _validate.integer("depth", depth, minimum=1)
    lr = _validate.real("lr", lr)
    left, right = W @ W.T, W.T @ W  # [m, m], [n, n]
    step = sum(_psd_power(left, (j - 1) / N) @ grad @ _psd_power(right, (N - j) / N) for j in range(1, N + 1))
    return W - lr * step


def singular_value_velocity(W, grad, depth: int) -> np.ndarray:
    """Time derivatives of the singular values of W under end-to-end gradient flow of depth N.

    d sigma_r / dt = -N (sigma_r^2)^{1 - 1/N} <grad, u_r v_r^T>,  r = 1..min(m, n)

    with W = sum_r sigma_r u_r v_r^T (Arora, Cohen, Hu, Luo 2019, Thm 3). Regime: balanced factors
    and distinct singular values (u_r v_r^T is then unique). For N >= 2 small singular values move
    slowly (the factor sigma^{2 - 2/N}), so they are learned one at a time.

    Args: W [m, n], grad [m, n] = dL/dW, depth N >= 1.
    Returns [min(m, n)], in the order of the singular values (descending).

    >>> singular_value_velocity(np.diag([4.0, 1.0]), np.eye(2), depth=2).round(6).tolist()
    [-8.0, -2.0]
    """
    W = _validate.matrix("W", W, shape_doc="[m, n]")
    grad = _same_shape("grad", grad, W)
    N = _validate.integer("depth", depth, minimum=1)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    projection = np.einsum("ir,ij,rj->r", U, grad, Vt)  # <grad, u_r v_r^T>
    return -N * (s**2) ** (1.0 - 1.0 / N) * projection


def balancedness_gap(factors: Sequence, *, relative: bool = True) -> float:
    """How far factors W_1..W_N (product W_N ... W_1, W_j [d_j, d_{j-1}]) are from balanced.

    Absolute gap: max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F over j = 1..N-1.
    Relative gap (the default): max_j of that norm divided by
    max(||W_{j+1}^T W_{j+1}||_F, ||W_j W_j^T||_F), a number in [0, 2] (0 when both are zero).
    Gradient flow preserves W_{j+1}^T W_{j+1} - W_j W_j^T exactly (Arora, Cohen, Hazan 2018,
    Thm 1), so the gap stays at its initial value; a single factor has gap 0.

    >>> factors = [np.eye(2), 2.0 * np.eye(2)]  # W_2^T W_2 - W_1 W_1^T = 3 I
    >>> round(balancedness_gap(factors, relative=False), 6), round(balancedness_gap(factors), 6)
    (4.242641, 0.75)
    """
    if isinstance(factors, np.ndarray) and factors.ndim == 2:
        raise ValueError("factors must be a sequence of 2-D arrays W_1..W_N; got one 2-D array (wrap it in a list)")
    mats = [_validate.matrix(f"factors[{j}]", f, shape_doc="[d_j, d_{j-1}]") for j, f in enumerate(factors)]
    if not mats:
        raise ValueError("factors must hold at least one matrix; got an empty sequence")
    e = max(_scale.exponent(f) for f in mats)  # W_j -> W_j / 2^e (exact): the relative gap is unchanged
    scaled = [_scale.unit(f, e) for f in mats]
    gap = 0.0
    for j in range(len(mats) - 1):
        inner, outer = scaled[j], scaled[j + 1]
        if outer.shape[1] != inner.shape[0]:
            raise ValueError(
                f"factors[{j + 1}] has shape {outer.shape} but factors[{j}] has shape {inner.shape}: "
                f"W_{{j+1}} W_j needs factors[{j + 1}].shape[1] == factors[{j}].shape[0]"
            )
        a, b = outer.T @ outer, inner @ inner.T
        value = np.linalg.norm(a - b)
        if relative:
            size = max(np.linalg.norm(a), np.linalg.norm(b))
            value = value / size if size > 0 else 0.0
        gap = max(gap, float(value))
    return gap if relative else _scale.restore("balancedness gap", gap, 2 * e)


def _same_shape(name: str, value, like: np.ndarray) -> np.ndarray:
    array = _validate.matrix(name, value, shape_doc=f"[m, n] = {like.shape}")
    if array.shape != like.shape:
        raise ValueError(f"{name} must have the shape of W {like.shape}; got {array.shape}")
    return array
