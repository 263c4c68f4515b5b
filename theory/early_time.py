"""Early-time dynamics of a two-layer network: the NTK at init is an affine kernel, so GD first follows a linear model.

Hu, Xiao, Adlam, Pennington, "The surprising simplicity of the early-time learning dynamics of
neural networks" (NeurIPS 2020): for isotropic inputs in high dimension, the NTK of a two-layer net
at initialisation is close in spectral norm to an affine function of the data kernel X X^T / d, so
early gradient descent on the network is mimicked by gradient descent on a linear model of the
inputs (plus a constant), for training the first layer, the second, or both; later the net leaves
this linear regime. Width need not be huge.

Parametrisation used here (the paper's exact scaling and its time horizon are [unverified]):

    f(x; W, a) = (1 / sqrt(m)) sum_r a_r phi(w_r . x / sqrt(d)),   W [m, d], a [m],

with w_r ~ N(0, I_d), a_r ~ unif{-1, +1} at init, inputs x ~ N(0, I_d) (so ||x||^2 ~ d), and the
squared loss L = (1 / 2n) sum_i (f(x_i) - y_i)^2 minimised by GD with step lr on the trained layer(s).
Small init of the second layer (a_r = +-kappa) multiplies the first-layer kernel by kappa^2 and the
output at init by kappa; the affine kernels below assume |a_r| = 1. For one GD step the training
outputs move by f <- f - (lr / n) Theta (f - y) + O(lr^2), with Theta the NTK.

Derivation of the affine kernels. With u = w.x / sqrt(d), v = w.x' / sqrt(d) and ||x||^2 = ||x'||^2 = d,
(u, v) are standard normals with correlation rho = x.x' / d, and Mehler's formula gives
E[f(u) g(v)] = sum_k f_k g_k rho^k / k! with Hermite coefficients f_k = E[f(g) He_k(g)]. With the
Gaussian moments nu = E phi(g), zeta = E phi'(g), eta = E[g phi'(g)] (= E phi'' = E[phi He_2]):

    second layer  Theta_2(x, x') = E[phi(u) phi(v)]       = nu^2 + zeta^2 rho + (eta^2 / 2) rho^2 + O(rho^3)
    first layer   Theta_1(x, x') = rho E[phi'(u) phi'(v)] = zeta^2 rho + eta^2 rho^2 + O(rho^3)

Off the diagonal rho = O(d^-1/2): keep the constant and linear terms, and replace rho^2 by its mean
E (x.x')^2 / d^2 = 1 / d (isotropic data); on the diagonal (rho = 1) use the exact values E phi^2 and
E phi'^2. So, with 1 the all-ones matrix and I the identity:

    Theta_1 ~ zeta^2 X X^T / d + (eta^2 / d) 1 1^T + (E phi'^2 - zeta^2 - eta^2 / d) I
    Theta_2 ~ zeta^2 X X^T / d + (nu^2 + eta^2 / (2d)) 1 1^T + (E phi^2 - nu^2 - zeta^2 - eta^2 / (2d)) I

(both layers: the sum, for one lr on both). The remainders are the fluctuations of rho^2 about
1 / d (spectral norm ~ sqrt(n) / d), the rho^3 terms (~ n d^-3/2) and the spread of ||x||^2 / d
about 1 (~ d^-1/2): small when d is large and n grows at most polynomially in d (the paper's exact
condition is [unverified]). The off-diagonal part is the Gram matrix of the linear model's
features psi(x) = [zeta x / sqrt(d), c] (first layer c = eta / sqrt(d); second layer
c = sqrt(nu^2 + eta^2 / (2d))); the diagonal remainder acts only on training points and does
not change predictions before time ~ n / lr.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np

from theory import _validate

__all__ = [
    "Activation",
    "GaussianMoments",
    "LAYERS",
    "RELU",
    "TANH",
    "ab_relu",
    "affine_ntk",
    "empirical_ntk",
    "gaussian_expectation",
    "gaussian_moments",
    "leaky_relu",
    "linear_features",
    "linear_model_trajectory",
    "network_output",
]

LAYERS = ("first", "second", "both")  # which layer(s) gradient descent trains
QUADRATURE_NODES = 100  # Gauss-Legendre nodes on each half-line
QUADRATURE_CUTOFF = 16.0  # the Gaussian integrals are cut at |g| = 16 (weight e^-128 ~ 1e-56)


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation phi and its derivative phi' (both elementwise on numpy arrays)."""

    fn: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    name: str = "custom"


def ab_relu(a: float, b: float) -> Activation:
    """phi(z) = a min(z, 0) + b max(z, 0), the piecewise-linear family (ReLU = (0, 1), |z| = (-1, 1)).

    Closed forms (used to test the quadrature): nu = (b - a) / sqrt(2 pi), zeta = (a + b) / 2,
    eta = (b - a) / sqrt(2 pi), E phi^2 = E phi'^2 = (a^2 + b^2) / 2.

    >>> ab_relu(0.1, 1.0).fn(np.array([-2.0, 3.0])).tolist()
    [-0.2, 3.0]
    """
    a, b = _validate.real("a", a), _validate.real("b", b)
    return Activation(
        fn=lambda z: a * np.minimum(z, 0.0) + b * np.maximum(z, 0.0),
        grad=lambda z: np.where(z > 0, b, a),
        name=f"ab_relu({a:g}, {b:g})",
    )


def leaky_relu(slope: float) -> Activation:
    """max(z, 0) + slope min(z, 0) = ab_relu(slope, 1).

    >>> leaky_relu(0.2).grad(np.array([-1.0, 1.0])).tolist()
    [0.2, 1.0]
    """
    return ab_relu(slope, 1.0)


RELU = ab_relu(0.0, 1.0)
TANH = Activation(fn=np.tanh, grad=lambda z: 1.0 / np.cosh(z) ** 2, name="tanh")


@dataclasses.dataclass(frozen=True)
class GaussianMoments:
    """Moments of an activation under g ~ N(0, 1)."""

    nu: float  # E phi(g)            (Hermite coefficient 0)
    zeta: float  # E phi'(g) = E[g phi(g)]   (Hermite coefficient 1)
    eta: float  # E[g phi'(g)] = E[(g^2 - 1) phi(g)]   (Hermite coefficient 2)
    second: float  # E phi(g)^2
    grad_second: float  # E phi'(g)^2


def gaussian_expectation(h: Callable[[np.ndarray], np.ndarray]) -> float:
    """E h(g), g ~ N(0, 1), by Gauss-Legendre quadrature on [-16, 0] and [0, 16] (100 nodes each).

    Splitting at 0 makes the rule exact to round-off for activations with a kink there (ReLU-type),
    where Gauss-Hermite (numpy.polynomial.hermite_e) converges only like 1 / N (8e-4 error for ReLU
    at N = 200, and hermegauss overflows beyond N ~ 300); for smooth h both rules agree to ~1e-15.

    >>> round(gaussian_expectation(lambda g: g**4), 12)
    3.0
    """
    x, w = _quadrature_rule()
    values = np.asarray(h(x), dtype=np.float64)
    if values.shape != x.shape or not np.all(np.isfinite(values)):
        raise ValueError("the function must map a float array to a finite float array of the same shape")
    return float(w @ values)


@functools.cache
def _quadrature_rule() -> tuple[np.ndarray, np.ndarray]:
    """Nodes [2N] on [-16, 0] and [0, 16] and weights including the N(0, 1) density."""
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    half = QUADRATURE_CUTOFF / 2.0
    x = np.concatenate([half * (nodes - 1.0), half * (nodes + 1.0)])
    w = np.concatenate([weights, weights]) * half * np.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)
    x.flags.writeable = w.flags.writeable = False
    return x, w


def gaussian_moments(act: Activation) -> GaussianMoments:
    """The Gaussian moments nu, zeta, eta, E phi^2, E phi'^2 of an activation (see `GaussianMoments`).

    >>> m = gaussian_moments(RELU)
    >>> round(m.nu * math.sqrt(2 * math.pi), 12), round(m.zeta, 12), round(m.second, 12)
    (1.0, 0.5, 0.5)
    """
    act = _activation(act)
    return GaussianMoments(
        nu=gaussian_expectation(act.fn),
        zeta=gaussian_expectation(act.grad),
        eta=gaussian_expectation(lambda g: g * act.grad(g)),
        second=gaussian_expectation(lambda g: act.fn(g) ** 2),
        grad_second=gaussian_expectation(lambda g: act.grad(g) ** 2),
    )


def _activation(act) -> Activation:
    if not isinstance(act, Activation):
        raise ValueError(
            f"act must be an Activation (RELU, TANH, leaky_relu(slope), ab_relu(a, b) or "
            f"Activation(fn, grad)); got {act!r}"
        )
    return act


def _layer_constants(moments: GaussianMoments, d: int, layers: str) -> tuple[float, float, float]:
    """(zeta^2 weight on X X^T / d, constant c^2 on 1 1^T, diagonal remainder) of the affine kernel."""
    zeta2, eta2 = moments.zeta**2, moments.eta**2
    first = (zeta2, eta2 / d, moments.grad_second - zeta2 - eta2 / d)
    second = (zeta2, moments.nu**2 + eta2 / (2 * d), moments.second - moments.nu**2 - zeta2 - eta2 / (2 * d))
    if layers == "first":
        return first
    if layers == "second":
        return second
    return tuple(p + q for p, q in zip(first, second))


def affine_ntk(X, act: Activation, layers: str) -> np.ndarray:
    """The affine kernel [n, n] that approximates the NTK of the two-layer net at init (module docstring).

    Theta_aff = zeta^2 X X^T / d + c^2 1 1^T + r I, with (c^2, r) for the first layer
    (eta^2 / d, E phi'^2 - zeta^2 - eta^2 / d), the second (nu^2 + eta^2 / (2d),
    E phi^2 - nu^2 - zeta^2 - eta^2 / (2d)), and the sums for both (2 zeta^2 then).
    Regime: rows of X [n, d] with ||x_i||^2 ~ d (isotropic Gaussian), d large. Hu et al. 2020.

    >>> np.round(affine_ntk(np.eye(2) * np.sqrt(2), RELU, "second"), 4).tolist()  # d = 2
    [[0.5, 0.1989], [0.1989, 0.5]]
    """
    X = _validate.matrix("X", X)
    layers = _validate.choice("layers", layers, LAYERS)
    n, d = X.shape
    linear, constant, diagonal = _layer_constants(gaussian_moments(act), d, layers)
    return linear * (X @ X.T) / d + constant + diagonal * np.eye(n)


def linear_features(X, act: Activation, layers: str) -> np.ndarray:
    """Features psi(x) [n, p] of the linear model the network follows early: psi(x) . psi(x') is the
    off-diagonal part of `affine_ntk` (zeta^2 x.x' / d + c^2).

    first: [zeta x / sqrt(d), eta / sqrt(d)]; second: [zeta x / sqrt(d), sqrt(nu^2 + eta^2 / (2d))];
    both: the two concatenated (p = 2d + 2). The network's outputs move early like those of
    f0(x) + psi(x) . beta trained by GD from beta = 0 (see `linear_model_trajectory`).

    >>> np.round(linear_features(np.array([[2.0, 0.0]]), RELU, "first"), 4).tolist()  # d = 2
    [[0.7071, 0.0, 0.2821]]
    """
    X = _validate.matrix("X", X)
    layers = _validate.choice("layers", layers, LAYERS)
    moments = gaussian_moments(act)
    n, d = X.shape
    linear = moments.zeta * X / math.sqrt(d)  # [n, d]
    blocks = {
        "first": np.hstack([linear, np.full((n, 1), moments.eta / math.sqrt(d))]),
        "second": np.hstack([linear, np.full((n, 1), math.sqrt(moments.nu**2 + moments.eta**2 / (2 * d)))]),
    }
    return np.hstack([blocks["first"], blocks["second"]]) if layers == "both" else blocks[layers]


def _network_arrays(X, W, a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = _validate.matrix("X", X, shape_doc="[n, d]")
    W = _validate.matrix("W", W, shape_doc="[m, d]")
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"W must have shape [m, d] with d = X.shape[1] = {X.shape[1]}; got {W.shape}")
    a = _validate.vector("a", a, length=W.shape[0], shape_doc="[m]")
    return X, W, a


def network_output(X, W, a, act: Activation) -> np.ndarray:
    """f(x) = (1 / sqrt(m)) sum_r a_r phi(w_r . x / sqrt(d)) for X [n, d], W [m, d], a [m] -> [n].

    >>> network_output(np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]]), np.array([2.0]), RELU).round(6).tolist()
    [2.828427]
    """
    X, W, a = _network_arrays(X, W, a)
    act = _activation(act)
    return act.fn(X @ W.T / math.sqrt(X.shape[1])) @ a / math.sqrt(W.shape[0])


def empirical_ntk(X, W, a, act: Activation, layers: str) -> np.ndarray:
    """The NTK [n, n] of f (module docstring) at the weights (W [m, d], a [m]) on X [n, d].

    With H = X W^T / sqrt(d) [n, m]:
    first layer  Theta_1 = ((phi'(H) diag(a^2) phi'(H)^T) / m) * (X X^T / d)   (elementwise product),
    second layer Theta_2 = phi(H) phi(H)^T / m;  both: Theta_1 + Theta_2.
    At init it tends to the expectation over w as m -> inf, which `affine_ntk` approximates.

    >>> empirical_ntk(np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]]), np.array([2.0]), RELU, "both").tolist()
    [[6.0]]
    """
    X, W, a = _network_arrays(X, W, a)
    act = _activation(act)
    layers = _validate.choice("layers", layers, LAYERS)
    m, d = W.shape
    H = X @ W.T / math.sqrt(d)  # [n, m]
    kernel = np.zeros((X.shape[0], X.shape[0]))
    if layers in ("second", "both"):
        phi = act.fn(H)
        kernel += phi @ phi.T / m
    if layers in ("first", "both"):
        dphi = act.grad(H)
        kernel += ((dphi * a**2) @ dphi.T / m) * (X @ X.T / d)
    return kernel


def linear_model_trajectory(features, y, *, lr: float, steps, features_test=None, init=None, init_test=None):
    """Predictions of the linear model f(x) = f0(x) + psi(x) . beta after `steps` GD steps from beta = 0.

    Loss L(beta) = (1 / 2n) sum_i (f(x_i) - y_i)^2, step beta <- beta - lr grad L. With K = Psi Psi^T
    = Q diag(lambda) Q^T [n, n] and r_0 = f0(X) - y, in closed form:

        train residual  r_t = Q diag((1 - lr lambda / n)^t) Q^T r_0,
        beta_t = -Psi^T Q diag(g_t) Q^T r_0,  g_t(lambda) = (1 - (1 - lr lambda / n)^t) / lambda  (t lr / n at 0),
        test            f_t(x) = f0(x) + psi(x) . beta_t.

    t = 0 gives f0 (the linearised network's output at init); for lr < 2n / lambda_max, t -> inf gives
    f0 + the min-norm least-squares fit of y - f0 in feature space. For the network of this module,
    psi = `linear_features`, f0 = `network_output` at init.

    Args:
        features: Psi [n, p]. y: [n] targets. lr > 0. steps: int >= 0, or [T] of them.
        features_test: [n_test, p] or None. init, init_test: f0 on the train / test points ([n],
        [n_test]; zeros when None).
    Returns (train [n], test [n_test] or None), with a leading [T] axis when steps is an array.

    >>> train, _ = linear_model_trajectory(np.eye(2), np.array([1.0, 2.0]), lr=1.0, steps=1)
    >>> train.tolist()  # one step of size lr / n = 1/2 towards y
    [0.5, 1.0]
    """
    F = _validate.matrix("features", features, shape_doc="[n, p]")
    n = F.shape[0]
    y = _validate.vector("y", y, length=n)
    lr = _validate.positive("lr", lr)
    t = _steps(steps)
    f0 = np.zeros(n) if init is None else _validate.vector("init", init, length=n)
    values, Q = np.linalg.eigh(F @ F.T)  # [n], [n, n]
    values = np.maximum(values, 0.0)
    r0 = Q.T @ (f0 - y)  # [n] in the eigenbasis
    decay, gain = _gd_factors(values, t, lr / n)  # [T, n] each
    train = y + (decay * r0) @ Q.T  # [T, n]
    test = None
    if features_test is not None:
        Ft = _validate.matrix("features_test", features_test, shape_doc="[n_test, p]")
        if Ft.shape[1] != F.shape[1]:
            raise ValueError(f"features_test must have p = {F.shape[1]} columns like features; got {Ft.shape}")
        n_test = Ft.shape[0]
        ft0 = np.zeros(n_test) if init_test is None else _validate.vector("init_test", init_test, length=n_test)
        test = ft0 - (gain * r0) @ (Ft @ (F.T @ Q)).T  # [T, n_test]
    if np.ndim(steps) == 0:
        return train[0], None if test is None else test[0]
    return train, test


def _gd_factors(values, t, rate) -> tuple[np.ndarray, np.ndarray]:
    """decay = (1 - rate lambda)^t and gain = (1 - decay) / lambda (= t rate at lambda = 0), [T, n] each.

    Through log1p / expm1 while rate lambda < 1, so that eigenvalues at round-off level keep their
    exact limit t * rate instead of 0 / 0-like cancellation.
    """
    x = rate * values  # [n]
    stable = x < 1.0
    logs = np.log1p(-np.where(stable, x, 0.0))  # [n]
    decay = np.where(stable, np.exp(t[:, None] * logs), np.power(1.0 - x, t[:, None]))
    drop = np.where(stable, -np.expm1(t[:, None] * logs), 1.0 - decay)  # 1 - decay
    positive = values > 0
    gain = np.where(positive, drop / np.where(positive, values, 1.0), t[:, None] * rate)
    return decay, gain


def _steps(steps) -> np.ndarray:
    array = np.atleast_1d(np.asarray(steps))
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer) or array.size == 0 or array.min() < 0:
        raise ValueError(f"steps must be an integer >= 0 or a 1-D array of them; got {steps!r}")
    return array.astype(np.float64)
