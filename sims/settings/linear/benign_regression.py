"""Benign overfitting in linear regression: the excess risk of min-norm interpolation against n for the standard
covariance spectra, beside the bound terms of Bartlett, Long, Lugosi, Tsigler (PNAS 2020).

x ~ N(0, Sigma) in R^d with Sigma = diag(lambda) (`theory.linear_regression`: isotropic, power law i^-alpha,
1 / (i log^2(i + 1)), two-tier), y = <x, theta*> + sigma eps, and theta* = e_1 / sqrt(lambda_1) (unit signal variance
on the top eigendirection). The min-norm interpolant theta^ = X^+ y fits the noisy labels exactly (d > n); its
excess risk (theta^ - theta*)^T Sigma (theta^ - theta*) is measured by Monte Carlo
(`theory.linear_regression.min_norm_excess_risk`) on a log-spaced grid of n at fixed d. The theorem: the risk goes to
0 (benign) iff r_0 = o(n), k* = o(n) and R_{k*} = omega(n), with bound terms bias ||theta*||^2 lambda_1
(sqrt(r_0/n) + r_0/n) and variance sigma^2 (k*/n + n/R_{k*}) (constants set to 1: compare trends, not values).
Isotropic Sigma is not benign: for n << d the risk stays near ||theta*||^2 (closed form
`theory.linear_regression.isotropic_min_norm_risk`). A grid simulation: members are Monte-Carlo repetitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import plots, style
from ...config import ConfigError, GridConfig, Members, param
from ...engine import Env
from ...gridsim import GridTask
from ...registry import register_grid

SPECTRA = ("isotropic", "power-law", "log", "two-tier")


@dataclass(frozen=True)
class Config(GridConfig):
    """Gaussian linear regression with label noise; min-norm interpolation over a grid of n at fixed d."""

    spectrum: str = param("two-tier", "covariance spectrum: isotropic lambda_i = 1; power-law i^-alpha; log "
                                      "1 / (i log^2(i + 1)); two-tier (tier_k eigenvalues 1, the rest tier_small)",
                          choices=SPECTRA)
    d: int = param(4000, "dimension", low=2)
    n_min: int = param(16, "smallest number of samples of the grid", low=1)
    n_max: int = param(512, "largest number of samples of the grid (below d - 1: interpolation)", low=1)
    n_points: int = param(6, "sample sizes in the grid (log-spaced)", low=1)
    sigma: float = param(0.5, "label noise standard deviation", low=0.0)
    alpha: float = param(0.5, "power-law exponent: lambda_i = i^-alpha", low=0.0)
    tier_k: int = param(5, "two-tier: number of large eigenvalues (= 1)", low=0)
    tier_small: float = param(0.01, "two-tier: the small eigenvalue", low=0.0, low_open=True, high=1.0)
    n_trials: int = param(4, "Monte-Carlo draws of (X, eps) per member and grid point", low=2)

    def check(self) -> None:
        if self.n_max < self.n_min:
            raise ConfigError(f"n_max={self.n_max} is below n_min={self.n_min}")
        if self.n_max >= self.d - 1:
            raise ConfigError(f"n_max={self.n_max} must be below d - 1 = {self.d - 1} (interpolation needs d > n + 1)")
        if self.tier_k > self.d:
            raise ConfigError(f"tier_k={self.tier_k} exceeds d={self.d}")


PRESETS = {
    "ci": dict(d=400, n_min=8, n_max=64, n_points=4, n_trials=2),
    "default": dict(),
    "paper": dict(d=20000, n_max=2048, n_points=9, n_trials=8),
}


def spectrum(cfg: Config) -> np.ndarray:
    """The eigenvalues lambda [d] of Sigma for cfg.spectrum (`theory.linear_regression`)."""
    from theory import linear_regression as lr

    if cfg.spectrum == "isotropic":
        return lr.isotropic(cfg.d)
    if cfg.spectrum == "power-law":
        return lr.power_law(cfg.d, cfg.alpha)
    if cfg.spectrum == "log":
        return lr.benign_log_spectrum(cfg.d)
    return lr.two_tier(cfg.d, cfg.tier_k, 1.0, cfg.tier_small)


def sample_sizes(cfg: Config) -> list[int]:
    """The grid of n: rounded log-spaced values from n_min to n_max, without repeats."""
    return sorted({int(round(v)) for v in np.geomspace(cfg.n_min, cfg.n_max, cfg.n_points)})


def theta_star(lam: np.ndarray) -> np.ndarray:
    """theta* = e_1 / sqrt(lambda_1) [d]: unit signal variance <theta*, Sigma theta*> = 1 on the top direction."""
    theta = np.zeros_like(lam)
    theta[0] = 1 / math.sqrt(lam[0])
    return theta


def bound_terms(cfg: Config, n: int) -> dict:
    """The Bartlett et al. bound terms at n (constants 1), k*, r_0, R_k*, and the closed form for Sigma = I."""
    from theory.linear_regression import benign_bound_terms, isotropic_min_norm_risk

    lam = spectrum(cfg)
    theta_norm = float(np.linalg.norm(theta_star(lam)))
    b = benign_bound_terms(lam, n, theta_norm, cfg.sigma)
    out = dict(bound_bias=b.bias, bound_variance=b.variance, bound_total=b.total, k_star=b.k_star, r0=b.r0,
               R_k_star=b.R_k_star)
    if cfg.spectrum == "isotropic":
        out["closed_form"] = isotropic_min_norm_risk(n, cfg.d, theta_norm, cfg.sigma)
    return out


def risk_axes(ax, run, label: str | None = None, **kw):
    """Excess risk against n (mean, min-max over members) on log-log axes; returns the line."""
    n = run.metric("n")[:, 0]
    line = plots.band(ax, n, run.metric("excess_risk"), label, marker="o", **kw)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plots.value_ticks(ax, n)
    ax.set_xlabel("number of samples n (count)")
    return line


def figures(run) -> list:
    """risk.png: measured excess risk against n with the bound terms (constants 1) and the isotropic closed form."""
    c = run.config
    n = run.metric("n")[:, 0]
    fig, axes = plots.figure(1, panel=(6.4, 4.4))
    ax = axes[0, 0]
    risk_axes(ax, run, f"min-norm interpolant (mean, min-max over {run.n_members} members)")
    ax.plot(n, run.metric("bound_total")[:, 0], label="bound: bias + variance (constants 1)",
            **style.reference_style(ax))
    ax.plot(n, run.metric("bound_bias")[:, 0], "k:", lw=1, label="bound: bias")
    variance = run.metric("bound_variance")[:, 0]
    ax.plot(n, np.where(np.isfinite(variance), variance, np.nan), "k-.", lw=1, label="bound: variance")
    if "closed_form" in run.metric_names:
        ax.plot(n, run.metric("closed_form")[:, 0], "s", mfc="none", color=style.color(3),
                label="closed form (Sigma = I)")
    plots.finish(ax, "excess risk (squared label units)",
                 title=f"benign-regression: {c.spectrum}, d={c.d}, sigma={c.sigma:g}")
    return [plots.save(fig, run.dir / "figures" / "risk.png")]


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes (float64) of one Monte-Carlo draw at the largest n: the data [n_max, d] scaled by the spectrum,
    the noise and estimator (a few copies), the Gram matrix [n_max, n_max] with its factorisation, and the
    spectrum's vectors [d]."""
    c = members[0]
    return dict(data=8 * 4 * c.n_max * c.d, gram=8 * 3 * c.n_max * c.n_max, spectrum=8 * 8 * c.d)


METRICS = {
    "n": "grid coordinate: number of training samples n (count)",
    "excess_risk": "Monte-Carlo mean of (theta^ - theta*)^T Sigma (theta^ - theta*) of the min-norm interpolant "
                   "(squared label units)",
    "bound_bias": "bound term ||theta*||^2 lambda_1 (sqrt(r_0/n) + r_0/n), constants 1 (squared label units)",
    "bound_variance": "bound term sigma^2 (k*/n + n/R_k*), constants 1; inf where k* does not exist "
                      "(squared label units)",
    "bound_total": "bound_bias + bound_variance (squared label units)",
    "k_star": "k* = the smallest k with r_k >= n, r_k = sum_{i>k} lambda_i / lambda_{k+1}; inf where no k < d "
              "qualifies (count)",
    "r0": "effective rank r_0 = sum_i lambda_i / lambda_1 of Sigma (unitless)",
    "R_k_star": "effective rank R_k* = (sum_{i>k*} lambda_i)^2 / sum_{i>k*} lambda_i^2; NaN where k* does not exist "
                "(unitless)",
    "closed_form": "spectrum=isotropic only: the closed-form excess risk of the min-norm interpolant "
                   "(squared label units)",
}


@register_grid("benign-regression", Config, presets=PRESETS, cpu_runtime="~7 s", figures=figures, memory=memory, metrics=METRICS)
def build(members: Members, env: Env) -> GridTask:
    """Benign overfitting: excess risk of min-norm interpolation against n per spectrum (Bartlett et al. 2020).

    Shows: with label noise, the min-norm interpolant's excess risk falls with n for a spectrum with a few large
    eigenvalues and a long flat-ish tail (two-tier, power law with alpha < 1 at d >> n), next to the bound's bias
    and variance terms; for Sigma = I it stays near ||theta*||^2 (not benign); 1 / (i log^2(i + 1)) is benign only
    as n -> infinity (its variance term decays like 1 / log n).
    Command: `sims run benign-regression --set spectrum=isotropic --seeds 5` (members are Monte-Carlo repetitions).
    """
    from theory.linear_regression import min_norm_excess_risk

    cfg = members[0]
    lam = spectrum(cfg)
    theta = theta_star(lam)
    grid = [dict(n=n) for n in sample_sizes(cfg)]

    def evaluate(i: int, point: dict) -> dict:
        risks = [min_norm_excess_risk(lam, point["n"], theta, cfg.sigma, n_trials=cfg.n_trials,
                                      seed=np.random.default_rng([seed, i])).mean for seed in members.seeds]
        terms = bound_terms(cfg, point["n"])
        return dict(excess_risk=risks, **{k: [v] * len(members) for k, v in terms.items()})

    return GridTask(points=grid, evaluate=evaluate, summary=dict(theta_norm=float(np.linalg.norm(theta))))
