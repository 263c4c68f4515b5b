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

import numpy as np
from scipy.optimize import nnls

from theory import _validate

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
    theta = _validate.vector("theta", theta, shape_doc="[p]")
    grads = _validate.matrix("grads", grads, shape_doc="[n, p]")
    if grads.shape[1] != theta.shape[0]:
        raise ValueError(f"grads must have shape [n, p] with p = len(theta) = {theta.shape[0]}; got {grads.shape}")
    margins = _validate.vector("margins", margins, length=grads.shape[0])
    degree = _validate.positive("degree", degree)
    if tol is not None:
        tol = _validate.nonnegative("tol", tol)
    norm = np.linalg.norm(theta)
    if norm == 0:
        raise ValueError("theta must be non-zero; the KKT residual is relative to ||theta||")
    q_min = margins.min()
    if q_min <= 0:
        raise ValueError(
            f"every margin y_i f(x_i) must be > 0 (theta must classify every training point correctly); "
            f"got {q_min:.3g} at index {int(margins.argmin())}"
        )
    active = np.arange(margins.shape[0]) if tol is None else np.flatnonzero(margins <= (1.0 + tol) * q_min)
    mu = np.zeros(margins.shape[0])
    mu[active] = _nonnegative_fit(grads[active], theta)
    residual = np.linalg.norm(theta - grads.T @ mu) / norm
    multipliers = mu * q_min ** ((degree - 2.0) / degree)
    return KKTFit(
        residual=float(residual),
        multipliers=multipliers,
        active=active,
        complementary_slackness=float(multipliers @ (margins / q_min - 1.0)),
    )


def kkt_residual(theta, grads, margins, *, degree: float, tol: float | None = 0.1) -> float:
    """The relative stationarity residual of `kkt_fit` (0 at a KKT point of (P), at most 1).

    >>> kkt_residual(np.ones(2), np.eye(2), np.ones(2), degree=1)
    0.0
    """
    return kkt_fit(theta, grads, margins, degree=degree, tol=tol).residual


def normalized_margin(margins, theta_norm: float, degree: float) -> float:
    """Normalised margin min_i y_i f(x_i; theta) / ||theta||^L of a degree-L homogeneous model.

    Scale-invariant; it is non-decreasing along gradient flow once the data are separated and
    converges to the margin of a KKT point of (P) (Lyu and Li 2020, Thm 4.1 [unverified]).
    margins [n] = y_i f(x_i; theta), theta_norm = ||theta|| > 0, degree L > 0.

    >>> normalized_margin(np.array([4.0, 8.0]), theta_norm=2.0, degree=2)
    1.0
    """
    margins = _validate.vector("margins", margins)
    theta_norm = _validate.positive("theta_norm", theta_norm)
    degree = _validate.positive("degree", degree)
    return float(margins.min() / theta_norm**degree)


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
