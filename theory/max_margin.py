"""Max-margin linear classifiers, kernel max-margin, min-norm interpolation, support vectors.

Conventions: X [n, d] holds one example per row, y [n] holds labels in {-1, +1} (two other classes
are rejected with a ValueError; map them with ``np.where(labels == positive, 1, -1)``), and a
classifier is f(x) = <w, x> + b (b = 0 unless ``bias=True``). Gradient descent on the logistic or
exponential loss of separable data converges in direction to the l2 max-margin classifier
(Soudry, Hoffer, Nacson, Gunasekar, Srebro 2018, Thm 3); diagonal linear networks in the rich
regime go to the l1 one, and the kernel (NTK) regime to the kernel one (Lyu, Jin, Li, Du, Lee, Hu
2024). Non-separable data raise `NotSeparableError` (a ValueError); a solver that does not reach
the status 'optimal' ('optimal_inaccurate' included), or whose answer fails the KKT check, raises
`SolverError` naming the solver and its status: no answer is ever returned unverified.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import scipy.linalg
from scipy.optimize import linprog

from theory import _scale, _validate
from theory._convex import SOLVER, SolverError, solve
from theory._hard_margin import (
    EXACT_TOL,
    METHODS,
    POLISH_FRACTION,
    NotSeparableError,
    cholesky,
    closed_form,
    gram_factor,
    hard_margin,
    not_separable,
)

__all__ = [
    "KernelMaxMarginResult",
    "MaxMarginResult",
    "NotSeparableError",
    "SolverError",
    "kernel_max_margin",
    "l1_max_margin",
    "l2_max_margin",
    "min_norm_interpolant",
    "support_vector_proliferation",
]

LP_TOL = 1e-6  # relative primal, dual and gap residuals accepted from the l1 linear program
L1_WHAT = "l1 max-margin linear program"


@dataclasses.dataclass(frozen=True)
class MaxMarginResult:
    """A max-margin linear classifier f(x) = <w, x> + b, scaled so that min_i y_i f(x_i) = 1."""

    w: np.ndarray  # [d] normal vector
    b: float  # bias; 0.0 when bias=False
    margin: float  # geometric margin min_i y_i f(x_i) / ||w|| (||w||_1 for the l1 problem)
    support: np.ndarray  # [s] sorted indices i with y_i f(x_i) <= (1 + support_tol) min_j y_j f(x_j)
    dual_at_unit_scale: np.ndarray  # [n] alpha * 2^-dual_exponent, stored so at any scale of X
    dual_exponent: int
    status: str  # solver status; always "optimal" (anything else raises)
    method: str  # "closed_form", "active_set", "primal", "dual" (l2); "lp" or "lp-highs" (l1)

    @property
    def dual(self) -> np.ndarray:
        """[n] Lagrange multipliers alpha_i >= 0 of the constraints y_i f(x_i) >= 1.

        They scale as 1 / s^2 (l2) or 1 / s (l1) when X is multiplied by s, so for extreme data they
        can leave the float64 range while w and the margin do not: reading them then raises ValueError.
        """
        return _scale.restore("dual", self.dual_at_unit_scale, self.dual_exponent)

    def decision_function(self, X) -> np.ndarray:
        """f(x) = X w + b for X [m, d] -> [m]."""
        return np.asarray(X, dtype=np.float64) @ self.w + self.b


@dataclasses.dataclass(frozen=True)
class KernelMaxMarginResult:
    """A kernel max-margin classifier f(x) = sum_i alpha_i y_i K(x_i, x) (no bias)."""

    dual: np.ndarray  # [n] alpha_i >= 0, with min_i y_i f(x_i) = 1
    coef: np.ndarray  # [n] alpha_i y_i, so that f(x) = sum_i coef_i K(x_i, x)
    margin: float  # min_i y_i f(x_i) / ||f||_H, ||f||_H^2 = coef^T K coef
    support: np.ndarray  # [s] sorted indices at the minimum margin (relative tolerance support_tol)
    status: str  # always "optimal" (anything else raises)
    method: str  # "closed_form", "active_set", "primal" or "dual", as in l2_max_margin

    def decision_function(self, K_test) -> np.ndarray:
        """f on new points from K_test [m, n], K_test[j, i] = K(x_test_j, x_i) -> [m]."""
        return np.asarray(K_test, dtype=np.float64) @ self.coef


def _checked(X, y, *, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    X = _validate.matrix("X", X)
    y = _validate.labels("y", y, X.shape[0])
    if bias and np.unique(y).size < 2:
        raise ValueError(
            f"y holds only the label {y[0]:+.0f}; with bias=True the max-margin problem is degenerate "
            "(w = 0, b = y); pass both classes or use bias=False"
        )
    return X, y


def _support(q: np.ndarray, support_tol: float) -> np.ndarray:
    return np.flatnonzero(q <= (1.0 + support_tol) * q.min())


def l2_max_margin(X, y, *, bias: bool = False, method: str = "auto", support_tol: float = 1e-6) -> MaxMarginResult:
    """The l2 max-margin (hard-margin SVM) classifier.

    Solves  min ||w||_2^2 / 2  s.t.  y_i (<w, x_i> + b) >= 1  (b = 0 unless ``bias``), whose dual is
    max sum_i alpha_i - ||sum_i alpha_i y_i x_i||^2 / 2 over alpha >= 0 (and sum_i alpha_i y_i = 0
    with bias), with w = sum_i alpha_i y_i x_i. The margin is min_i y_i f(x_i) / ||w||_2 = 1 / ||w||.

    Regime: separable data, any n and d. It is the direction gradient descent on the logistic
    loss converges to (Soudry et al. 2018, Thm 3; Cortes and Vapnik 1995 for the SVM).

    Paths (``method``; "auto" tries them in this order):
    - "closed_form": if X X^T [n, n] is non-singular and support-vector proliferation holds (every
      alpha_i of the min-norm interpolant is > 0, see `support_vector_proliferation`) the answer is
      the min-norm interpolant, from one Cholesky solve, no QP.
    - "active_set": exact non-negative least squares (least-distance programming) on the data or,
      when d >= n, on a factor F of X X^T = F F^T (at most n coordinates); it certifies
      non-separability itself. Exact to round-off, and as fast as libsvm at n = 200.
    - "primal" or "dual": Clarabel through cvxpy on the primal (in the r = min(d, rank X)
      coordinates of F, r + 1 variables) or on the dual (n variables, quadratic form
      ||F^T (alpha * y)||^2). "auto" falls back to them only if the active set fails, choosing the
      primal when r < n and the dual otherwise. Only the status 'optimal' is accepted
      ('optimal_inaccurate' raises SolverError with the solver and status).
    Every answer passes the KKT conditions (primal and dual feasibility, complementary slackness,
    sum alpha_i y_i = 0 with bias) to 1e-9 (exact paths) or 1e-6 (unpolished Clarabel), else raises.
    Scale: X is solved at unit scale (divided exactly by a power of two, then by max_i ||x_i||), so for
    X -> s X the direction of w and the support are unchanged, w -> w / s, margin -> s margin,
    dual -> dual / s^2 and b is unchanged, for any s that keeps w and the margin in the float64
    range (else ValueError; `dual` raises when read if it alone is out of range); w, b and dual
    refer to the original X.

    Args:
        X: [n, d] examples. y: [n] labels in {-1, +1}.
        bias: fit the unregularised intercept b (needs both classes).
        support_tol: relative tolerance defining the support, see `MaxMarginResult`.

    Raises NotSeparableError (a ValueError) for non-separable data, ValueError for bad input,
    SolverError when no path reaches a verified optimum.

    >>> X = np.array([[2.0, 1.0], [3.0, -1.0], [-1.0, 0.0]])
    >>> res = l2_max_margin(X, np.array([1, 1, -1]))
    >>> np.round(res.w, 6).tolist(), round(res.margin, 6), res.support.tolist()
    ([1.0, 0.0], 1.0, [2])
    """
    X, y = _checked(X, y, bias=bias)
    _validate.choice("method", method, METHODS)
    support_tol = _validate.nonnegative("support_tol", support_tol)
    if not np.any(X):
        raise not_separable(bias, "every x_i is zero")
    e = _scale.exponent(X)
    Xu = _scale.unit(X, e)  # X / 2^e, exact: max |entry| in [1, 2)
    n, d = Xu.shape
    scale = np.sqrt(np.max(np.einsum("ij,ij->i", Xu, Xu)))  # max_i ||x_i|| at unit scale
    # features F [n, min(d, rank)] with F F^T = Xu Xu^T / scale^2; the Gram matrix only when d >= n
    F, L = (Xu / scale, None) if d < n else gram_factor(Xu @ Xu.T / scale**2)
    solution = hard_margin(F, L, y, bias=bias, method=method)
    w = Xu.T @ solution.coef / scale**2  # [d], the normal vector for Xu
    q = y * (Xu @ w + solution.b)
    return MaxMarginResult(
        w=_scale.restore("w", w, -e),
        b=solution.b,
        margin=_scale.restore("margin", q.min() / np.linalg.norm(w), e),
        support=_support(q, support_tol),
        dual_at_unit_scale=y * solution.coef / scale**2,
        dual_exponent=-2 * e,
        status=solution.status,
        method=solution.method,
    )


def kernel_max_margin(K, y, *, method: str = "auto", support_tol: float = 1e-6) -> KernelMaxMarginResult:
    """The max-margin classifier in the feature space of a kernel, from its Gram matrix (no bias).

    Solves the dual  max_{alpha >= 0} sum_i alpha_i - (alpha y)^T K (alpha y) / 2; the classifier is
    f(x) = sum_i alpha_i y_i K(x_i, x) with min_i y_i f(x_i) = 1 and margin 1 / ||f||_H.
    With K = X X^T it is `l2_max_margin(X, y)` (bias=False).

    Regime: K symmetric positive semi-definite and the labels separable in its feature space. The
    kernel (NTK / lazy) phase of a wide or large-initialisation network converges to it (Lyu, Jin,
    Li, Du, Lee, Hu 2024, early phase; Chizat, Oyallon, Bach 2019). K is factored as K = F F^T
    (Cholesky, or eigenvectors of the non-zero eigenvalues when singular) and the paths of
    `l2_max_margin` run on F [n, rank K]. Scale: K is solved at unit size (divided exactly by a power
    of four), so K -> s K leaves the support unchanged and gives coef -> coef / s, margin -> sqrt(s) margin.

    Args:
        K: [n, n] Gram matrix K_ij = K(x_i, x_j). y: [n] labels in {-1, +1}.

    >>> res = kernel_max_margin(np.array([[4.0, 0.0], [0.0, 1.0]]), np.array([1, -1]))
    >>> np.round(res.dual, 6).tolist(), round(res.margin, 6)
    ([0.25, 1.0], 0.894427)
    """
    K = _validate.square("K", K)
    y = _validate.labels("y", y, K.shape[0])
    _validate.choice("method", method, METHODS)
    support_tol = _validate.nonnegative("support_tol", support_tol)
    if not np.any(K):
        raise not_separable(False, "K is zero")
    e = 2 * (_scale.exponent(K) // 2)  # even, so that the margin (~ sqrt K) rescales by 2^(e/2)
    Ku = _scale.unit(K, e)  # K / 2^e, exact: max |entry| in [1, 4)
    scale = np.abs(Ku).max()
    if not np.allclose(Ku, Ku.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"K must be symmetric; max |K - K^T| = {np.abs(K - K.T).max():.3g}")
    Ks = (Ku + Ku.T) / (2.0 * scale)
    smallest = np.linalg.eigvalsh(Ks)[0]
    if smallest < -1e-8:
        raise ValueError(f"K must be positive semi-definite; its smallest eigenvalue is {smallest * scale:.3g} * 2^{e}")
    F, L = gram_factor(Ks)
    solution = hard_margin(F, L, y, bias=False, method=method)
    coef = solution.coef / scale  # alpha * y for Ku
    q = y * (Ku @ coef)
    margin = q.min() / np.sqrt(coef @ Ku @ coef)
    coef = _scale.restore("coef", coef, -e)
    return KernelMaxMarginResult(
        dual=y * coef,
        coef=coef,
        margin=_scale.restore("margin", margin, e // 2),
        support=_support(q, support_tol),
        status=solution.status,
        method=solution.method,
    )


def l1_max_margin(X, y, *, bias: bool = False, support_tol: float = 1e-6) -> MaxMarginResult:
    """The l1 max-margin classifier (maximum margin in l_inf distance), by linear programming.

    Solves  min ||w||_1  s.t.  y_i (<w, x_i> + b) >= 1  (b = 0 unless ``bias``); its dual is
    max sum_i alpha_i s.t. ||sum_i alpha_i y_i x_i||_inf <= 1, alpha >= 0 (and sum alpha_i y_i = 0).
    margin = min_i y_i f(x_i) / ||w||_1 = 1 / ||w||_1, the l_inf distance from the closest example to
    the hyperplane. The minimiser need not be unique (an LP); w is one optimal point (see below).

    Regime: separable data. It is the limit direction of diagonal linear networks f = <u^2 - v^2, x>
    trained from small initialisation, the rich phase of Lyu et al. 2024 (Gunasekar, Lee, Soudry,
    Srebro 2018; Moroshko et al. 2020). Clarabel through cvxpy; where Clarabel stops short of
    'optimal' (it does on degenerate LPs such as sparse {-1, +1} data), HiGHS's dual simplex on the
    dual LP (scipy.optimize.linprog, method "lp-highs"). The answer must pass primal and dual
    feasibility and a zero duality gap to 1e-6 (relative), else SolverError. When the supports of
    w and alpha define a vertex that passes these checks to 1e-9, the vertex is returned (exact
    zeros in w instead of the interior point's ~1e-9 entries). Scale: solved at unit scale (X divided
    exactly by a power of two), so X -> s X gives w -> w / s, margin -> s margin, dual -> dual / s.

    Args: X [n, d], y [n] in {-1, +1}; as `l2_max_margin`.

    >>> X = np.array([[2.0, 1.0], [-2.0, 1.0]])
    >>> res = l1_max_margin(X, np.array([1, -1]))
    >>> np.round(res.w, 6).tolist(), round(res.margin, 6)
    ([0.5, 0.0], 2.0)
    """
    X, y = _checked(X, y, bias=bias)
    support_tol = _validate.nonnegative("support_tol", support_tol)
    if not np.any(X):
        raise not_separable(bias, "every x_i is zero")
    e = _scale.exponent(X)
    Xs = _scale.unit(X, e)  # X / 2^e, exact: max |entry| in [1, 2)
    status, solver, (ws, bias_value, alpha) = _l1_solve(Xs, y, bias=bias)
    vertex = _lp_vertex(Xs, y, ws, bias_value, alpha, bias=bias)
    if vertex is not None and _lp_residual(Xs, y, *vertex, bias=bias)[1] <= EXACT_TOL:
        ws, bias_value, alpha = vertex
    else:
        name, worst = _lp_residual(Xs, y, ws, bias_value, alpha, bias=bias)
        if worst > LP_TOL:
            raise SolverError(
                f"{solver} reported 'optimal' on the {L1_WHAT} but its {name} residual is {worst:.1e} > {LP_TOL:.0e}"
            )
    q = y * (Xs @ ws + bias_value)
    return MaxMarginResult(
        w=_scale.restore("w", ws, -e),
        b=bias_value,
        margin=_scale.restore("margin", q.min() / np.abs(ws).sum(), e),
        support=_support(q, support_tol),
        dual_at_unit_scale=np.maximum(alpha, 0.0),
        dual_exponent=-e,
        status=status,
        method="lp" if solver == SOLVER else "lp-highs",
    )


def _l1_solve(Xs, y, *, bias) -> tuple[str, str, tuple[np.ndarray, float, np.ndarray]]:
    """(status, solver, (w, b, alpha)) of the l1 problem on Xs [n, d]: Clarabel, else HiGHS.

    Clarabel's interior point stops at 'optimal_inaccurate' on some degenerate LPs (e.g. {-1, +1}^d
    sparse-parity data, n = 100, d = 400); HiGHS's dual simplex on the dual LP (n variables) then
    returns an exact vertex. Both answers are checked by the caller.
    """
    import cvxpy as cp

    w = cp.Variable(Xs.shape[1])
    b = cp.Variable() if bias else 0.0
    constraint = cp.multiply(y, Xs @ w + b) >= 1
    try:
        with warnings.catch_warnings():  # cvxpy warns on 'optimal_inaccurate'; HiGHS takes over then
            warnings.simplefilter("ignore", UserWarning)
            status = solve(cp.Problem(cp.Minimize(cp.norm1(w)), [constraint]), what=L1_WHAT)
    except SolverError as exc:
        status = f"error ({exc})"
    if status == "infeasible":
        raise not_separable(bias, "Clarabel certified the linear program infeasible")
    if status == "optimal":
        return status, SOLVER, (w.value, float(b.value) if bias else 0.0, constraint.dual_value)
    return "optimal", "HiGHS", _highs_l1(Xs, y, bias=bias, clarabel_status=status)


def _highs_l1(Xs, y, *, bias, clarabel_status) -> tuple[np.ndarray, float, np.ndarray]:
    """The dual LP  min -1^T alpha  s.t.  -1 <= G alpha <= 1 (G = (y * Xs)^T [d, n]), y^T alpha = 0 (bias),
    alpha >= 0, by HiGHS's dual simplex; w and b are its constraint marginals."""
    d = Xs.shape[1]
    G = (y[:, None] * Xs).T  # [d, n]
    out = linprog(
        -np.ones(y.size),
        A_ub=np.vstack([G, -G]),
        b_ub=np.ones(2 * d),
        A_eq=y[None] if bias else None,
        b_eq=[0.0] if bias else None,
        bounds=(0, None),
        method="highs-ds",
    )
    if out.status == 3:  # dual unbounded: the primal is infeasible
        raise not_separable(bias, "HiGHS found the dual linear program unbounded")
    if out.status != 0:
        raise SolverError(
            f"{SOLVER} stopped with status {clarabel_status!r} on the {L1_WHAT} and HiGHS with "
            f"{out.message!r}; no answer is returned"
        )
    marginals = out.ineqlin.marginals  # [2d] <= 0
    return marginals[d:] - marginals[:d], float(out.eqlin.marginals[0]) if bias else 0.0, out.x


def _lp_residual(Xs, y, w, b, alpha, *, bias) -> tuple[str, float]:
    """The worst relative residual of the l1 problem's optimality conditions, and its name."""
    q = y * (Xs @ w + b)
    norm = np.abs(w).sum()
    residuals = {
        "primal feasibility": 1.0 - q.min(),
        "dual feasibility": max(np.abs(Xs.T @ (alpha * y)).max() - 1.0, -alpha.min() / alpha.max()),
        "duality gap": abs(norm - alpha.sum()) / norm,
        "sum alpha_i y_i": abs(alpha @ y) / alpha.sum() if bias else 0.0,
    }
    return max(residuals.items(), key=lambda item: item[1])


def _lp_vertex(Xs, y, w, b, alpha, *, bias):
    """An interior-point LP answer snapped to the vertex its supports define, or None.

    With J the support of w and S that of alpha: solve y_i (<w_J, x_iJ> + b) = 1 on S (primal) and
    sum_{i in S} alpha_i y_i x_iJ = sign(w_J), sum alpha_i y_i = 0 (dual, bias only); exact zeros
    replace the solver's ~1e-9 entries. The caller accepts it only if it passes `_lp_residual`.
    """
    J = np.flatnonzero(np.abs(w) > POLISH_FRACTION * np.abs(w).max())
    S = np.flatnonzero(alpha > POLISH_FRACTION * alpha.max())
    if S.size != J.size + bias:
        return None
    A = y[S, None] * Xs[np.ix_(S, J)]  # [s, |J|]
    if bias:
        A = np.hstack([A, y[S, None]])
    try:
        z = np.linalg.solve(A, np.ones(S.size))
        a = np.linalg.solve(A.T, np.append(np.sign(w[J]), [0.0] * bias))
    except np.linalg.LinAlgError:
        return None
    w_vertex, alpha_vertex = np.zeros_like(w), np.zeros_like(alpha)
    w_vertex[J], alpha_vertex[S] = z[: J.size], a
    return w_vertex, float(z[-1]) if bias else 0.0, alpha_vertex


def min_norm_interpolant(X, y) -> np.ndarray:
    """The minimum-l2-norm solution w = X^+ y [d] of X w = y.

    When rank X = n (needs d >= n) it interpolates, w = X^T (X X^T)^{-1} y (computed so, by Cholesky,
    when that interpolates to 1e-10 relative; else by SVD least squares); otherwise it is the
    minimum-norm least-squares solution (no exact interpolant exists). y may be any real targets [n].
    It is the limit of gradient descent on the square loss from w = 0 (overparameterised least
    squares), the estimator of benign overfitting (Bartlett, Long, Lugosi, Tsigler 2020), and the
    l2 max-margin classifier when support vectors proliferate (Hsu, Muthukumar, Xu 2021).
    Solved at unit scale: (s X, t y) gives w t / s for any s, t > 0 with w t / s in range.

    >>> min_norm_interpolant(np.array([[1.0, 1.0]]), np.array([2.0])).round(12).tolist()
    [1.0, 1.0]
    """
    X = _validate.matrix("X", X)
    y = _validate.vector("y", y, length=X.shape[0])
    ex, ey = _scale.exponent(X), _scale.exponent(y)
    X, y = _scale.unit(X, ex), _scale.unit(y, ey)  # exact power-of-two rescaling: w -> w 2^(ey - ex)
    w = None
    if X.shape[1] >= X.shape[0]:  # fast path: X^T (X X^T)^{-1} y, kept only if it interpolates to 1e-10
        L = cholesky(X @ X.T)
        if L is not None:
            w = X.T @ scipy.linalg.cho_solve((L, True), y)
            if np.linalg.norm(X @ w - y) > 1e-10 * np.linalg.norm(y):
                w = None
    if w is None:
        w = np.linalg.lstsq(X, y, rcond=None)[0]
    return _scale.restore("w", w, ey - ex)


def support_vector_proliferation(X, y, *, bias: bool = False) -> bool:
    """Whether every training example is a support vector of the l2 max-margin classifier.

    Criterion: X X^T [n, n] non-singular and y_i ((X X^T)^{-1} y)_i > 0 for every i. Then the
    min-norm interpolant w = X^T (X X^T)^{-1} y has multipliers alpha_i = y_i ((X X^T)^{-1} y)_i > 0
    and satisfies the KKT conditions, so it is the hard-margin SVM and every point has margin
    exactly 1 / ||w||. With ``bias``, the interpolant is w = X^T c with (X X^T) c + b 1 = y,
    1^T c = 0, and the criterion is y_i c_i > 0. Returns False when d < n or X X^T is singular.

    Regime: the criterion is exact for any data; for isotropic Gaussian X it switches on sharply
    near d = 2 n log n, and in general when ||lambda||_1 / ||lambda||_inf >> n log n for the
    covariance spectrum lambda (Hsu, Muthukumar, Xu 2021; Ardeshir, Sanford, Hsu 2021; theorem
    numbers unverified).

    >>> support_vector_proliferation(np.eye(3), np.array([1, -1, 1]))
    True
    """
    X, y = _checked(X, y, bias=bias)
    n, d = X.shape
    if d < n or not np.any(X):
        return False
    Xs = _scale.unit(X, _scale.exponent(X))  # exact power-of-two rescaling: the criterion is scale-free
    Xs = Xs / np.sqrt(np.max(np.einsum("ij,ij->i", Xs, Xs)))
    L = cholesky(Xs @ Xs.T)
    if L is None:
        return False
    coef, _ = closed_form(L, y, bias=bias)
    return bool(np.all(y * coef > 0))
