"""KKT conditions of the margin problem of a homogeneous model, from arrays.

A model f(x; theta) is homogeneous of degree L when f(x; c theta) = c^L f(x; theta) for c > 0:
L = 1 for a linear model, 2 for a diagonal linear net <u^2 - v^2, x> or a two-layer ReLU net
without biases, the depth for bias-free ReLU networks. With q_i(theta) = y_i f(x_i; theta) the
signed margin, gradient flow (or small-step descent) on the logistic or exponential loss converges
in direction to a KKT point of

    min ||theta||^2 / 2   s.t.   q_i(theta) >= 1   for all i                                  (P)

(Lyu and Li 2020, Thm 4.4; Ji and Telgarsky 2020, directional convergence; theorem numbers
unverified). At theta~ = theta / q_min^{1/L} (rescaled so that min_i q_i = 1) the KKT conditions are

    theta~ = sum_i lambda_i grad q_i(theta~),   lambda_i >= 0,   lambda_i (q_i(theta~) - 1) = 0.

The functions take arrays, not models: theta [p], grads [n, p] with grads[i] = grad_theta q_i, the
gradient of the SIGNED margin y_i f(x_i; theta) (multiply the gradient of f by y_i yourself), and
margins [n] = q_i(theta), all at the same theta.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.optimize import nnls

from theory import _scale, _validate

__all__ = ["KKTFit", "kkt_fit", "kkt_residual", "normalized_margin"]


@dataclasses.dataclass(frozen=True)
class KKTFit:
    """Best non-negative multipliers for theta on the active examples, and what they leave over."""

    residual: float  # min_{mu >= 0} ||theta - sum_{i in S} mu_i grads[i]|| / ||theta||, in [0, 1]
    multipliers: np.ndarray  # [n] lambda_i of the KKT conditions at theta~ (zero off S)
    active: np.ndarray  # [s] sorted indices of S, the examples allowed a positive multiplier
    complementary_slackness: float  # sum_i lambda_i (q_i / q_min - 1) >= 0; 0 when S holds only minimisers


def kkt_fit(theta, grads, margins, *, degree: float, tol: float | None = 0.1) -> KKTFit:
    """Fit the stationarity condition of (P) with non-negative multipliers (scipy.optimize.nnls).

    residual = min_{mu >= 0} ||theta - sum_{i in S} mu_i grad q_i(theta)|| / ||theta||,
    S = {i : q_i <= (1 + tol) min_j q_j}, or every example when ``tol`` is None (the fit then puts
    weight on far examples only where that lowers the residual; `complementary_slackness` measures
    it). The scale of theta does not matter, so the residual is 0 exactly at (any positive multiple
    of) a KKT point whose support lies in S, and at most 1 (mu = 0). The multipliers are reported for
    theta~ = theta / q_min^{1/L}: since grad q_i(c theta) = c^{L-1} grad q_i(theta),
    lambda = mu * q_min^{(L - 2) / L}. For a linear model at the l2 max-margin w they are its
    SVM dual variables alpha.

    Regime: every margin positive (theta separates the data), f homogeneous of ``degree`` L > 0.
    The default tol = 0.1 counts examples within 10% of the minimum margin as active: along a
    gradient-descent trajectory the margins of the eventual support vectors equalise only at a
    logarithmic rate, so a tight tol would miss them. At an exact solution a small tol (1e-6) that
    only covers round-off isolates the true support; tol = 0 keeps the single smallest margin.
    Scale: theta, grads and margins are each solved at unit scale (exact powers of two), so the
    residual and the active set are unchanged by scaling any of them, and the multipliers scale as
    the formula says (theta -> a theta, grads -> b grads, margins -> c margins: lambda -> lambda a/b c^((L-2)/L)).

    Args:
        theta: [p] parameters. grads: [n, p] gradients of y_i f(x_i; theta). margins: [n] y_i f(x_i; theta).
        degree: homogeneity degree L. tol: relative margin tolerance defining S, or None for all.

    >>> theta = np.array([2.0, 1.0])  # linear model on x_1 = e_1, x_2 = e_2, both labelled +1
    >>> fit = kkt_fit(theta, np.eye(2), theta, degree=1)
    >>> round(fit.residual, 6), fit.active.tolist()  # only x_2 is at the minimum margin
    (0.894427, [1])
    >>> kkt_fit(np.ones(2), np.eye(2), np.ones(2), degree=1).multipliers.tolist()
    [1.0, 1.0]
    """
    fit = _unit_fit(theta, grads, margins, degree=degree, tol=tol)
    power = (fit.degree - 2.0) / fit.degree  # lambda = mu * q_min^power, with q_min = q_min_unit * 2^em
    shift = fit.shift + fit.em * power
    whole = math.floor(shift)
    q_min = fit.margins.min()
    multipliers = _scale.restore("multipliers", fit.mu * q_min**power * 2.0 ** (shift - whole), whole)
    return KKTFit(
        residual=fit.residual,
        multipliers=multipliers,
        active=fit.active,
        complementary_slackness=float(multipliers @ (fit.margins / q_min - 1.0)),
    )


def kkt_residual(theta, grads, margins, *, degree: float, tol: float | None = 0.1) -> float:
    """The relative stationarity residual of `kkt_fit` (0 at a KKT point of (P), at most 1).

    Scale-invariant in each argument, also where the multipliers would leave the float64 range.

    >>> kkt_residual(np.ones(2), np.eye(2), np.ones(2), degree=1)
    0.0
    """
    return _unit_fit(theta, grads, margins, degree=degree, tol=tol).residual


@dataclasses.dataclass(frozen=True)
class _UnitFit:
    residual: float
    mu: np.ndarray  # [n] the NNLS multipliers for (theta / 2^et, grads / 2^eg): mu_true = mu * 2^(et - eg)
    active: np.ndarray
    margins: np.ndarray  # [n] margins / 2^em
    shift: int  # et - eg
    em: int
    degree: float


def _unit_fit(theta, grads, margins, *, degree, tol) -> _UnitFit:
    """Validate, then fit at unit scale: each array divided exactly by a power of two, which changes
    neither the residual nor the active set."""
    theta = _validate.vector("theta", theta, shape_doc="[p]")
    grads = _validate.matrix("grads", grads, shape_doc="[n, p]")
    if grads.shape[1] != theta.shape[0]:
        raise ValueError(f"grads must have shape [n, p] with p = len(theta) = {theta.shape[0]}; got {grads.shape}")
    margins = _validate.vector("margins", margins, length=grads.shape[0])
    degree = _validate.positive("degree", degree)
    if tol is not None:
        tol = _validate.nonnegative("tol", tol)
    if not np.any(theta):
        raise ValueError("theta must be non-zero; the KKT residual is relative to ||theta||")
    if margins.min() <= 0:
        raise ValueError(
            f"every margin y_i f(x_i) must be > 0 (theta must classify every training point correctly); "
            f"got {margins.min():.3g} at index {int(margins.argmin())}"
        )
    et, eg, em = _scale.exponent(theta), _scale.exponent(grads), _scale.exponent(margins)
    theta, grads, margins = _scale.unit(theta, et), _scale.unit(grads, eg), _scale.unit(margins, em)
    q_min = margins.min()
    active = np.arange(margins.shape[0]) if tol is None else np.flatnonzero(margins <= (1.0 + tol) * q_min)
    mu = np.zeros(margins.shape[0])
    mu[active] = _nonnegative_fit(grads[active], theta)
    residual = float(np.linalg.norm(theta - grads.T @ mu) / np.linalg.norm(theta))
    return _UnitFit(residual, mu, active, margins, et - eg, em, degree)


def normalized_margin(margins, theta_norm: float, degree: float) -> float:
    """Normalised margin min_i y_i f(x_i; theta) / ||theta||^L of a degree-L homogeneous model.

    Scale-invariant in theta (computed through logarithms, so theta_norm^L may exceed the float64
    range); it is non-decreasing along gradient flow once the data are separated and
    converges to the margin of a KKT point of (P) (Lyu and Li 2020, Thm 4.1 [unverified]).
    margins [n] = y_i f(x_i; theta), theta_norm = ||theta|| > 0, degree L > 0.

    >>> normalized_margin(np.array([4.0, 8.0]), theta_norm=2.0, degree=2)
    1.0
    """
    margins = _validate.vector("margins", margins)
    theta_norm = _validate.positive("theta_norm", theta_norm)
    degree = _validate.positive("degree", degree)
    q = margins.min()
    if q == 0:
        return 0.0
    log_value = math.log(abs(q)) - degree * math.log(theta_norm)  # theta_norm**degree may overflow alone
    if log_value > math.log(np.finfo(np.float64).max):
        raise ValueError(
            f"min margin / theta_norm^degree = exp({log_value:.1f}) overflows float64 "
            f"(min margin {q:.3g}, theta_norm {theta_norm:.3g}, degree {degree})"
        )
    return math.copysign(math.exp(log_value), q)


def _nonnegative_fit(G: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """argmin_{mu >= 0} ||theta - G^T mu|| for G [s, p], solved in s dimensions.

    With G G^T = V diag(e) V^T: ||theta - G^T mu||^2 = ||R mu - t||^2 + const for R = diag(e)^{1/2} V^T
    and t = diag(e)^{-1/2} V^T G theta over the non-zero e, so p never enters the NNLS (p can be
    millions of parameters).
    """
    e, V = np.linalg.eigh(G @ G.T)  # [s], [s, s]
    keep = e > 1e-12 * max(e.max(), 0.0)
    if not keep.any():
        return np.zeros(G.shape[0])
    R = np.sqrt(e[keep])[:, None] * V[:, keep].T
    t = (V[:, keep].T @ (G @ theta)) / np.sqrt(e[keep])
    return nnls(R, t, maxiter=50 * G.shape[0])[0]
