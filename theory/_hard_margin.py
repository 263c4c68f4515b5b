"""Solvers for the hard-margin problem on a feature matrix F [n, r]:

    minimise ||w||^2 / 2   subject to   y_i (<w, phi_i> + b) >= 1,   i = 1..n      (b = 0 without bias)

The rows phi_i of F are the data or any factor of a Gram matrix K = F F^T [n, n] (K itself is never
formed here: n may be large when r is small). Every solver returns the dual coefficients
c = alpha * y [n] and the bias b; the normal vector is w = F^T c, and w = X^T c for any X with
X X^T = K, so one representation serves the linear and the kernel problems. Every answer passes
the KKT conditions before it is returned (q_i = y_i ((K c)_i + b)):

    q_i >= 1,   alpha_i >= 0,   alpha_i (q_i - 1) = 0,   sum_i c_i = 0 (bias only).

Paths, tried in this order by ``method="auto"``:

- ``closed_form``: K c + b 1 = y (and 1^T c = 0 with bias), one Cholesky factorisation. It is the
  optimum exactly when every alpha_i = y_i c_i > 0 (support-vector proliferation).
- ``active_set``: least-distance programming (Lawson & Hanson 1974, ch. 23): min ||w|| s.t.
  G w >= h is solved by the non-negative least squares min_{u >= 0} ||[G^T; h^T] u - e_last||, with
  w = -r[:-1] / r[-1] for the residual r; a zero residual certifies that the data are not separable
  (u >= 0, sum u = 1, sum_i u_i y_i phi_i = 0). The bias enters as a feature column C y around a
  proximal centre b_k (the subproblem adds (b - b_k)^2 / C^2). The active set S of each iterate is
  made exact by solving the equality system on S; the first exact point that passes the KKT check
  at `EXACT_TOL` is returned. Finite, exact, and faster than an interior-point solver at n ~ 100s.
- ``primal`` (r + 1 variables) or ``dual`` (n variables): Clarabel through cvxpy, chosen by shape
  (primal when r < n). The answer is polished on its active set; if the polished point fails the
  KKT check, the raw answer must pass it at `SOLVER_TOL`, else `SolverError`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg
from scipy.optimize import nnls

from theory._convex import SOLVER, SolverError, require_optimal, solve

EXACT_TOL = 1e-9  # KKT residual accepted from the exact (linear-algebra) paths
SOLVER_TOL = 1e-6  # KKT residual accepted from an unpolished interior-point answer
RCOND_FLOOR = 1e-6  # min/max diagonal of the Cholesky factor below which K counts as singular
RANK_FLOOR = 1e-12  # eigenvalues of K below this fraction of the largest are dropped
SEPARATION_FLOOR = 1e-9  # LDP residual norm below which the data count as not separable
BIAS_SCALE = 10.0  # C: the bias column of the active-set subproblem
MAX_PROXIMAL_STEPS = 50
POLISH_FRACTION = 1e-6  # a solver's alpha_i > this * max(alpha) is in the active set
METHODS = ("auto", "closed_form", "active_set", "primal", "dual")


class NotSeparableError(ValueError):
    """The data are not (linearly, or in the kernel's feature space) separable."""

    __module__ = "theory.max_margin"


@dataclasses.dataclass(frozen=True)
class Solution:
    coef: np.ndarray  # [n] c = alpha * y
    b: float
    status: str
    method: str


def not_separable(bias: bool, detail: str) -> NotSeparableError:
    what = "(w, b)" if bias else "w"
    return NotSeparableError(
        f"the data are not separable{' with a bias' if bias else ' by a hyperplane through the origin'}: "
        f"no {what} has y_i (<w, x_i>{' + b' if bias else ''}) > 0 for every i ({detail})"
    )


def kkt_violation(F: np.ndarray, y: np.ndarray, coef: np.ndarray, b: float, *, bias: bool) -> float:
    """Largest relative violation of the KKT conditions listed in the module docstring."""
    alpha = y * coef
    top = alpha.max()
    if not top > 0:
        return np.inf
    q = y * (F @ (F.T @ coef) + b)
    parts = [1.0 - q.min(), -alpha.min() / top, np.max(np.maximum(alpha, 0.0) * np.abs(q - 1.0)) / top]
    if bias:
        parts.append(abs(coef.sum()) / np.maximum(alpha, 0.0).sum())
    return max(0.0, *parts)


def cholesky(K: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of K [n, n], or None when K is (numerically) singular."""
    try:
        L = np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        return None
    diag = np.diag(L)
    return L if diag.min() > RCOND_FLOOR * diag.max() else None


def gram_factor(K: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(F [n, r], L): F F^T = K with r = numerical rank; L is the Cholesky factor (= F) or None."""
    L = cholesky(K)
    if L is not None:
        return L, L
    values, vectors = np.linalg.eigh(K)
    keep = values > RANK_FLOOR * values.max()
    return vectors[:, keep] * np.sqrt(values[keep]), None


def closed_form(L: np.ndarray, y: np.ndarray, *, bias: bool) -> tuple[np.ndarray, float]:
    """Min-norm interpolant of the labels: c = K^{-1} (y - b 1), b = 1^T K^{-1} y / 1^T K^{-1} 1."""
    p = scipy.linalg.cho_solve((L, True), y)
    if not bias:
        return p, 0.0
    q = scipy.linalg.cho_solve((L, True), np.ones_like(y))
    b = p.sum() / q.sum()
    return p - b * q, float(b)


def exact_on_support(F, y, support, *, bias) -> tuple[np.ndarray, float] | None:
    """Solve y_i ((K c)_i + b) = 1 on the support S with c = 0 off S (and 1^T c = 0 with bias)."""
    idx = np.flatnonzero(support)
    m = idx.size
    if m == 0:
        return None
    A = F[idx] @ F[idx].T  # K_SS
    rhs = y[idx]
    if bias:
        A = np.block([[A, np.ones((m, 1))], [np.ones((1, m)), np.zeros((1, 1))]])
        rhs = np.append(rhs, 0.0)
    try:
        sol = np.linalg.solve(A, rhs)
    except np.linalg.LinAlgError:
        return None
    coef = np.zeros_like(y)
    coef[idx] = sol[:m]
    return coef, float(sol[m]) if bias else 0.0


def active_set(F, y, *, bias) -> Solution | None:
    """Exact solution by least-distance programming (see the module docstring), or None."""
    n = F.shape[0]
    G = y[:, None] * F  # [n, r]
    if bias:
        G = np.hstack([G, BIAS_SCALE * y[:, None]])
    target = np.zeros(G.shape[1] + 1)
    target[-1] = 1.0
    centre = 0.0
    for _ in range(MAX_PROXIMAL_STEPS if bias else 1):
        E = np.vstack([G.T, 1.0 - y * centre])  # [r (+1) + 1, n]
        try:
            u, rnorm = nnls(E, target, maxiter=20 * n)
        except RuntimeError:
            return None
        if rnorm < SEPARATION_FLOOR:
            detail = f"weights u >= 0, sum 1, give ||sum_i u_i y_i x_i|| < {SEPARATION_FLOOR:.0e} max_i ||x_i||"
            raise not_separable(bias, detail)
        residual = E @ u - target
        exact = exact_on_support(F, y, u > 0, bias=bias)
        if exact is not None and kkt_violation(F, y, *exact, bias=bias) <= EXACT_TOL:
            return Solution(exact[0], exact[1], "optimal", "active_set")
        if not bias:
            return None
        centre += BIAS_SCALE * (-residual[-2] / residual[-1])
    return None


def clarabel_primal(F, y, *, bias) -> Solution:
    import cvxpy as cp

    w = cp.Variable(F.shape[1])
    b = cp.Variable() if bias else 0.0
    constraint = cp.multiply(y, F @ w + b) >= 1
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w)), [constraint])
    what = "primal hard-margin QP"
    status = solve(problem, what=what)
    if status == "infeasible":
        raise not_separable(bias, f"{SOLVER} certified the primal infeasible")
    require_optimal(status, what=what)
    coef = y * constraint.dual_value
    gap = np.linalg.norm(w.value - F.T @ coef)
    if gap > SOLVER_TOL * np.linalg.norm(w.value):
        raise SolverError(f"{SOLVER} reported 'optimal' on the {what} but w != sum_i alpha_i y_i x_i (gap {gap:.1e})")
    return Solution(coef, float(b.value) if bias else 0.0, status, "primal")


def clarabel_dual(F, y, *, bias) -> Solution:
    import cvxpy as cp

    alpha = cp.Variable(F.shape[0], nonneg=True)
    objective = 0.5 * cp.sum_squares(F.T @ cp.multiply(y, alpha)) - cp.sum(alpha)
    problem = cp.Problem(cp.Minimize(objective), [y @ alpha == 0] if bias else [])
    what = "dual hard-margin QP"
    status = solve(problem, what=what)
    if status == "unbounded":
        raise not_separable(bias, f"{SOLVER} certified the dual unbounded")
    require_optimal(status, what=what)
    a = alpha.value
    coef = y * a
    b = float(a @ (y - F @ (F.T @ coef)) / a.sum()) if bias else 0.0  # b = y_i - (K c)_i on the support
    return Solution(coef, b, status, "dual")


def polish(F, y, solution: Solution, *, bias) -> Solution:
    """The solver's answer made exact on its active set when that passes the KKT check."""
    alpha = y * solution.coef
    exact = exact_on_support(F, y, alpha > POLISH_FRACTION * alpha.max(), bias=bias)
    if exact is not None and kkt_violation(F, y, *exact, bias=bias) <= EXACT_TOL:
        return dataclasses.replace(solution, coef=exact[0], b=exact[1])
    violation = kkt_violation(F, y, solution.coef, solution.b, bias=bias)
    if violation > SOLVER_TOL:
        raise SolverError(
            f"{SOLVER} reported 'optimal' on the {solution.method} hard-margin QP but its KKT residual "
            f"is {violation:.1e} > {SOLVER_TOL:.0e}; no answer is returned"
        )
    return solution


def hard_margin(F, L, y, *, bias, method) -> Solution:
    """Dispatch over the paths of the module docstring. L: the Cholesky factor of K = F F^T, or None."""
    if method in ("auto", "closed_form"):
        if L is not None:
            coef, b = closed_form(L, y, bias=bias)
            if np.all(y * coef > 0) and kkt_violation(F, y, coef, b, bias=bias) <= EXACT_TOL:
                return Solution(coef, b, "optimal", "closed_form")
        if method == "closed_form":
            raise ValueError(
                "method='closed_form' needs support-vector proliferation (X X^T non-singular and every "
                "y_i ((X X^T)^{-1} y)_i > 0), which does not hold for these data; use method='auto'"
            )
    if method in ("auto", "active_set"):
        solution = active_set(F, y, bias=bias)
        if solution is not None:
            return solution
        if method == "active_set":
            raise SolverError("the active-set (NNLS) solver found no point passing the KKT check; use method='auto'")
    if method == "primal" or (method == "auto" and F.shape[1] < F.shape[0]):
        return polish(F, y, clarabel_primal(F, y, bias=bias), bias=bias)
    return polish(F, y, clarabel_dual(F, y, bias=bias), bias=bias)
