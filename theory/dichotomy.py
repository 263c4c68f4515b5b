"""Dichotomy of early and late implicit biases: when the kernel phase ends, and what each phase predicts.

Setting (Lyu, Jin, Li, Du, Lee, Hu, "Dichotomy of early and late phase implicit biases can provably
induce grokking", ICLR 2024): a model f(x; theta) homogeneous in theta, started at theta_0 = alpha theta_bar
with a large scale alpha, trained by gradient flow on

    L(theta) + (lambda / 2) ||theta||^2,        d theta / dt = -grad L(theta) - lambda theta,

with a small weight decay lambda. While the loss gradient is negligible the norm decays as
alpha e^{-lambda t} and the model stays in its kernel (NTK) regime; the paper proves that the
trajectory is close to the kernel predictor (the NTK max-margin classifier, or the kernel min-norm
regression fit) up to time (1 - c) log(alpha) / lambda, and close to a KKT point of the parameter
min-norm problem (min ||theta||^2 s.t. y_i f(x_i) >= 1, or f(x_i) = y_i) after about log(alpha) / lambda:
a sharp transition at t* = log(alpha) / lambda, which is grokking when the kernel predictor does not
generalise and the late one does (misgrokking in the opposite case).

Discrete time: one step of torch.optim.SGD(params, lr, weight_decay=wd) without momentum is
theta <- theta - lr (grad L + wd theta), the Euler step of the flow above with lambda = wd, so k
steps are continuous time t = lr * k (the authors' code logs 1 + lr * k). AdamW's decoupled decay
theta <- theta (1 - lr wd) is not this flow (Adam rescales grad L), and these times do not apply to it.
"""

from __future__ import annotations

import math

import numpy as np

from theory import _validate
from theory.matrices import nuclear_norm_completion
from theory.max_margin import l1_max_margin, l2_max_margin

__all__ = [
    "diagonal_net_predictors",
    "early_phase_end",
    "late_phase_start",
    "margin_error_bound",
    "matrix_completion_predictors",
    "sparse_l1_margin_error_bound",
    "sparse_l2_margin_error_bound",
    "steps_to_time",
    "time_to_steps",
    "transition_time",
]


def _scale_and_decay(alpha, lam) -> tuple[float, float]:
    alpha = _validate.real("alpha", alpha)
    if alpha <= 1:
        raise ValueError(f"alpha must be > 1 (a large initialisation scale, so that log alpha > 0); got {alpha}")
    return alpha, _validate.positive("lam", lam)


def _fraction(c) -> float:
    c = _validate.real("c", c)
    if not 0 < c < 1:
        raise ValueError(f"c must lie in (0, 1) (the phase margin around log(alpha) / lambda); got {c}")
    return c


def transition_time(alpha: float, lam: float) -> float:
    """t* = log(alpha) / lambda, the continuous time of the sharp kernel-to-rich transition.

    The time at which the kernel-phase norm alpha e^{-lambda t} reaches O(1) (Lyu et al. 2024,
    Sec. 3). It does not depend on the homogeneity degree. Args: alpha > 1 (init scale,
    ||theta_0|| = alpha ||theta_bar||), lam > 0 (weight decay; lam = wd for torch.optim.SGD).
    Steps: `time_to_steps(t, lr)`. The theorems are asymptotic (alpha -> inf, lambda -> 0): measured
    transitions fall within a constant factor of t*, not on it.

    >>> round(transition_time(128.0, 1e-3), 1)  # the sparse-classification run: 4852 / lr = 4.85e5 steps
    4852.0
    """
    alpha, lam = _scale_and_decay(alpha, lam)
    return _validate.finite("transition_time", math.log(alpha) / lam, f"alpha={alpha!r}, lam={lam!r}")


def early_phase_end(alpha: float, lam: float, c: float) -> float:
    """(1 - c) log(alpha) / lambda: until this time the trajectory stays near the kernel predictor.

    c in (0, 1) is the constant of the paper's kernel-regime theorem (any fixed c, as alpha -> inf;
    Lyu et al. 2024, Sec. 3, classification and regression). It has no default: choose the margin
    around t* you want to test.

    >>> early_phase_end(math.e**2, 0.5, c=0.25)
    3.0
    """
    return (1.0 - _fraction(c)) * transition_time(alpha, lam)  # finite: below transition_time


def late_phase_start(alpha: float, lam: float, c: float) -> float:
    """(1 + c) log(alpha) / lambda: after this time the trajectory is near a late-phase (KKT) predictor.

    [unverified]: the paper's rich-phase statement is read here as holding from (1 + c) t*, the
    mirror of `early_phase_end`; the paper's text places the late phase "after about log(alpha) / lambda".

    >>> late_phase_start(math.e**2, 0.5, c=0.25)
    5.0
    """
    c = _fraction(c)
    return _validate.finite("late_phase_start", (1.0 + c) * transition_time(alpha, lam),
                            f"alpha={alpha!r}, lam={lam!r}, c={c!r}")


def time_to_steps(t: float, lr: float) -> float:
    """Gradient steps k = t / lr that reach continuous time t (Euler steps of size lr).

    >>> time_to_steps(4852.0, 0.01)
    485200.0
    """
    t, lr = _validate.nonnegative("t", t), _validate.positive("lr", lr)
    return _validate.finite("time_to_steps", t / lr, f"t={t!r}, lr={lr!r}")


def steps_to_time(steps: float, lr: float) -> float:
    """Continuous time t = lr * steps of `steps` gradient steps of size lr.

    >>> steps_to_time(1000, 0.01)
    10.0
    """
    lr, steps = _validate.positive("lr", lr), _validate.nonnegative("steps", steps)
    return _validate.finite("steps_to_time", lr * steps, f"steps={steps!r}, lr={lr!r}")


def diagonal_net_predictors(X, y) -> tuple[np.ndarray, np.ndarray]:
    """(w_early, w_late) [d] each: the two phases' classifiers of a diagonal linear net, unit l2 norm.

    Model f(x; u, v) = <u^2 - v^2, x>, theta = (u, v) in R^{2d} (2-homogeneous), from
    u = v = alpha / sqrt(2d) 1, so f = 0 and ||theta_0|| = alpha (the authors' code).

    Early (kernel): the NTK at init is K(x, x') = sum_j (2 u_j x_j)(2 u_j x'_j) + (2 v_j x_j)(2 v_j x'_j)
    = (4 alpha^2 / d) <x, x'>, an isotropic linear kernel, so the kernel max-margin classifier is
    the l2 max-margin classifier in x-space (`l2_max_margin`, no bias).

    Late (rich): min ||u||^2 + ||v||^2 s.t. y_i <u^2 - v^2, x_i> >= 1. For u^2 - v^2 = w,
    ||u||^2 + ||v||^2 = sum_j (u_j^2 + v_j^2) >= sum_j |u_j^2 - v_j^2| = ||w||_1, with equality at
    u = sqrt(max(w, 0)), v = sqrt(max(-w, 0)); so its minimum is min ||w||_1 s.t. y_i <w, x_i> >= 1,
    the l1 max-margin classifier (`l1_max_margin`). The paper's late phase is a KKT point of the
    (non-convex) parameter problem: the l1 solution is one, but a point with u_j = v_j = 0 on some
    coordinates can be KKT without being l1-optimal ([unverified] which one the flow reaches; the
    l1 one is the paper's comparison for the sparse task).

    Args: X [n, d], y [n] in {-1, +1}, separable through the origin (else NotSeparableError).
    Both are scale-invariant in X.

    >>> X = np.array([[1.0, 1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, -1.0, -1.0]])
    >>> early, late = diagonal_net_predictors(X, np.array([1.0, -1.0, 1.0]))
    >>> (np.round(late, 6) + 0.0).tolist()  # all l1 mass on the first coordinate, which alone separates
    [1.0, 0.0, 0.0]
    """
    early, late = l2_max_margin(X, y).w, l1_max_margin(X, y).w
    return early / np.linalg.norm(early), late / np.linalg.norm(late)


def matrix_completion_predictors(
    d: int, rows, cols, values, *, tol: float = 1e-3, solver: str = "CLARABEL"
) -> tuple[np.ndarray, np.ndarray]:
    """(W_early, W_late) [d, d]: the two phases' completions by W = U U^T - V V^T, U, V [d, d].

    From U = V = alpha I (W_0 = 0), trained on the squared error of the observed entries (the
    authors' code). W is symmetric, so observing (i, j) observes (j, i): a pair seen both ways must
    agree within 2 tol and the early fit uses their mean.

    Early (kernel): at init dW = alpha (A + A^T) with A = dU - dV, and the cheapest parameter move
    giving a symmetric change S is dU = -dV = S / (4 alpha) with ||dU||^2 + ||dV||^2 = ||S||_F^2 / (8 alpha^2);
    gradient descent on the linearised model goes to the min-norm fit, so W_early is the
    minimum-Frobenius-norm symmetric matrix through the observations: the observed entries and
    their transposes, zero elsewhere (the NTK between entries is 4 alpha^2 (d_ik d_jl + d_il d_jk)).

    Late (rich): min ||U||_F^2 + ||V||_F^2 s.t. (U U^T - V V^T)_ij = M_ij. For symmetric W = P - N with
    P = U U^T, N = V V^T PSD, tr P + tr N >= max_{||Z||_2 <= 1} tr(Z W) = ||W||_*, with equality at
    P = W_+, N = W_- (U = W_+^{1/2}, V = W_-^{1/2}); so it is min ||W||_* over symmetric W through the
    observations: the minimum-nuclear-norm completion over symmetric matrices
    (`nuclear_norm_completion(..., symmetric=True)`, each observation fitted within tol).

    Args: d >= 1; rows, cols [k] integer indices; values [k]; tol >= 0 the slack of the late fit;
    solver as in `nuclear_norm_completion` (Clarabel's dense SDP fits d ~ 30, SCS d ~ 100).

    >>> early, late = matrix_completion_predictors(2, [0, 0], [0, 1], [1.0, 1.0], tol=0.0)
    >>> early.tolist(), np.round(late, 3).tolist()  # late: the rank-one completion [[1, 1], [1, 1]]
    ([[1.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]])
    """
    d = _validate.integer("d", d, minimum=1)
    tol = _validate.nonnegative("tol", tol)
    values = _validate.vector("values", values, shape_doc="[k]")
    rows = _validate.indices("rows", rows, values.shape[0], d)
    cols = _validate.indices("cols", cols, values.shape[0], d)
    total, count = np.zeros((d, d)), np.zeros((d, d))
    np.add.at(total, (rows, cols), values)
    np.add.at(count, (rows, cols), 1.0)
    if count.max() > 1:
        raise ValueError("rows, cols must not repeat an entry (i, j); average repeated observations first")
    seen_both = (count > 0) & (count.T > 0)
    spread = np.abs(total - total.T)[seen_both]
    if spread.size and spread.max() > 2 * tol:
        raise ValueError(
            f"entries (i, j) and (j, i) differ by up to {spread.max():.3g} > 2 tol = {2 * tol:.3g}, but "
            "W = U U^T - V V^T is symmetric; pass symmetric observations or a larger tol"
        )
    observed = (count + count.T) > 0
    early = np.where(observed, (total + total.T) / np.maximum(count + count.T, 1.0), 0.0)  # [d, d]
    late = nuclear_norm_completion((d, d), rows, cols, values, tol=tol, solver=solver, symmetric=True)
    return early, late


def margin_error_bound(
    rademacher: float, margin: float, n: int, *, delta: float = 0.05, constant: float = 4.0
) -> float:
    """Test-error bound of a classifier that separates n training points with normalised margin rho.

    err <= constant * Rad_n / rho + sqrt(log log2(2 / rho) / n) + sqrt(log(2 / delta) / (2 n))

    with probability 1 - delta over the sample, simultaneously for every rho in (0, 1] and every h
    in a class H with |h| <= 1 whose Rademacher complexity is Rad_n (Mohri, Rostamizadeh, Talwalkar,
    "Foundations of machine learning", 2nd ed., Thm 5.9, with zero empirical margin loss). The
    leading constant 4 is the one of the sparse-task bounds of Lyu et al. 2024; their lower-order
    terms are [unverified]: the two square roots here are Thm 5.9's.

    Args: rademacher >= 0, margin in (0, 1], n >= 1, delta in (0, 1), constant > 0.

    >>> round(margin_error_bound(0.01, 0.5, 10_000), 4)  # 4 * 0.02 + sqrt(log 2 / 1e4) + sqrt(log 40 / 2e4)
    0.1019
    """
    rademacher = _validate.nonnegative("rademacher", rademacher)
    margin = _validate.positive("margin", margin)
    if margin > 1:
        raise ValueError(f"margin must lie in (0, 1] (normalised so that |h| <= 1); got {margin}")
    n = _validate.integer("n", n, minimum=1)
    delta = _validate.positive("delta", delta)
    if delta >= 1:
        raise ValueError(f"delta must lie in (0, 1); got {delta}")
    constant = _validate.positive("constant", constant)
    lower_order = math.sqrt(math.log(math.log2(2.0 / margin)) / n) + math.sqrt(math.log(2.0 / delta) / (2.0 * n))
    return _validate.finite("margin_error_bound", constant * rademacher / margin + lower_order,
                            f"rademacher={rademacher!r}, margin={margin!r}, constant={constant!r}")


def _sparse_task(n, d, k) -> tuple[int, int, int]:
    n = _validate.integer("n", n, minimum=1)
    d = _validate.integer("d", d, minimum=1)
    k = _validate.integer("k", k, minimum=1)
    if k > d:
        raise ValueError(f"k must be <= d = {d} (the label depends on the first k coordinates); got {k}")
    return n, d, k


def sparse_l1_margin_error_bound(n: int, d: int, k: int, *, delta: float = 0.05, constant: float = 4.0) -> float:
    """Test-error bound of the l1 max-margin classifier on the sparse task: 4 k sqrt(2 log(2d) / n) + ....

    Task (Lyu et al. 2024, Sec. 3, the authors' code): x uniform on {-1, +1}^d, w* in {-1, +1}^k on
    the first k coordinates (k odd), y = sign <x_{1:k}, w*>. Class {x -> <w, x> : ||w||_1 <= 1}: |h| <= 1
    and Rad_n <= sqrt(2 log(2d) / n) (Massart's lemma on the 2d vertices +-e_j); w* / k separates
    with normalised margin >= 1 / k, so the l1 max-margin classifier does too, and
    `margin_error_bound` with rho = 1 / k gives constant * k * sqrt(2 log(2d) / n) + lower-order terms
    ([unverified] as there). Logarithmic in d: the late (rich) phase generalises from n ~ k^2 log d.

    >>> round(sparse_l1_margin_error_bound(256, 100_000, 3), 2)  # the paper's run: vacuous at n = 256
    3.85
    """
    n, d, k = _sparse_task(n, d, k)
    return margin_error_bound(math.sqrt(2.0 * math.log(2.0 * d) / n), 1.0 / k, n, delta=delta, constant=constant)


def sparse_l2_margin_error_bound(n: int, d: int, k: int, *, delta: float = 0.05, constant: float = 4.0) -> float:
    """Test-error bound of the l2 max-margin (early, kernel) classifier on the sparse task: 4 sqrt(k d / n) + ....

    Same task as `sparse_l1_margin_error_bound`. Class {x -> <w, x> / sqrt(d) : ||w||_2 <= 1}: |h| <= 1
    (||x||_2 = sqrt(d)) and Rad_n <= 1 / sqrt(n); w* / sqrt(k) separates with normalised margin
    >= 1 / sqrt(k d), so `margin_error_bound` with rho = 1 / sqrt(k d) gives
    constant * sqrt(k d / n) + lower-order terms ([unverified] as there). Linear in d: the kernel
    phase needs n ~ k d; the paper also shows the kernel predictor fails for n << d [not implemented].

    >>> round(sparse_l2_margin_error_bound(256, 100_000, 3), 1)
    137.1
    """
    n, d, k = _sparse_task(n, d, k)
    return margin_error_bound(1.0 / math.sqrt(n), 1.0 / math.sqrt(k * d), n, delta=delta, constant=constant)
