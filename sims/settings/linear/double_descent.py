"""Double descent of min-norm least squares on random ReLU features, and its removal by a tuned ridge penalty
(Belkin, Hsu, Ma, Mandal 2019; Nakkiran, Venkat, Kakade, Ma 2021, "Optimal regularization can mitigate double
descent").

Data: x ~ N(0, I_d), y = <beta*, x> + sigma eps with ||beta*|| = 1 (`sims.data.linear_teacher`); n training points,
n_val held-out points for tuning, n_test points for the risk. Features: phi(x) = relu(W x / sqrt(d)) / sqrt(p) with
W [p, d] ~ N(0, 1), the first p rows of one [p_max, d] draw per member (so the models are nested in p). At each p of a
log-spaced grid: the min-norm least-squares fit (`theory.linear_regression.ridge` at lam = 0: the interpolant once
p >= n) and the ridge fit whose penalty, from a log-spaced grid plus 0, has the smallest error on the held-out
points (`theory.linear_regression.ridge_path`). The risk is E (f^(x) - <beta*, x>)^2, estimated on the test points
(noise-free targets). Min-norm risk peaks where p reaches n (the interpolation threshold); the tuned curve has no
peak (Nakkiran et al. prove it for isotropic linear regression with the optimal penalty and observe it for random
features). A grid simulation: members are repetitions (data, teacher and features from the member's seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ... import plots, style
from ...config import ConfigError, GridConfig, Members, param
from ...data import linear_teacher
from ...engine import Env
from ...gridsim import GridTask
from ...nn import make_generators
from ...registry import register_grid


@dataclass(frozen=True)
class Config(GridConfig):
    """Random ReLU features regression with label noise; min-norm and tuned ridge over a grid of feature counts p."""

    n: int = param(100, "training points", low=1)
    d: int = param(20, "input dimension", low=1)
    sigma: float = param(0.5, "label noise standard deviation", low=0.0)
    n_val: int = param(100, "held-out points for tuning the ridge penalty", low=1)
    n_test: int = param(2000, "test points for the risk", low=1)
    p_min: int = param(10, "smallest number of random features", low=1)
    p_max: int = param(2000, "largest number of random features", low=1)
    n_points: int = param(25, "feature counts in the grid (log-spaced)", low=1)
    lam_min: float = param(1e-6, "smallest non-zero ridge penalty tried (summed loss ||F b - y||^2 + lam ||b||^2)",
                           low=0.0, low_open=True)
    lam_max: float = param(1e3, "largest ridge penalty tried", low=0.0, low_open=True)
    n_lams: int = param(37, "non-zero penalties tried (log-spaced; 0 is always tried too)", low=1)

    def check(self) -> None:
        if self.p_max < self.p_min:
            raise ConfigError(f"p_max={self.p_max} is below p_min={self.p_min}")
        if self.lam_max < self.lam_min:
            raise ConfigError(f"lam_max={self.lam_max} is below lam_min={self.lam_min}")


PRESETS = {
    "ci": dict(n=30, d=8, n_val=30, n_test=300, p_min=5, p_max=300, n_points=12, n_lams=13),
    "default": dict(),
    "paper": dict(n=400, d=40, n_val=400, n_test=10000, p_max=8000, n_points=40),
}


def feature_counts(cfg: Config) -> list[int]:
    """The grid of p: rounded log-spaced values from p_min to p_max, without repeats."""
    return sorted({int(round(v)) for v in np.geomspace(cfg.p_min, cfg.p_max, cfg.n_points)})


def _member_problem(cfg: Config, seed: int) -> dict:
    """One member's teacher, data splits and feature weights (numpy float64), from its 'data' and 'init' streams."""
    [gen] = make_generators([seed], "data")
    beta, x, y = linear_teacher(cfg.n + cfg.n_val + cfg.n_test, cfg.d, cfg.sigma, generator=gen)
    [ginit] = make_generators([seed], "init")
    W = torch.randn(cfg.p_max, cfg.d, generator=ginit, dtype=torch.float64)
    x, y, beta, W = (v.numpy() for v in (x, y, beta, W))
    cut = np.cumsum([cfg.n, cfg.n_val])
    xs, ys = np.split(x, cut), np.split(y, cut)
    return dict(x=xs, y=ys[:2], target=xs[2] @ beta, W=W)


def features(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """relu(x W^T / sqrt(d)) / sqrt(p) [N, p] for x [N, d], W [p, d]."""
    return np.maximum(x @ W.T / math.sqrt(x.shape[1]), 0.0) / math.sqrt(W.shape[0])


def fit(problem: dict, p: int, lams: np.ndarray) -> dict:
    """Min-norm and validation-tuned ridge fits on the first p features: their test risks and the chosen penalty."""
    from theory.linear_regression import ridge_path

    W = problem["W"][:p]
    F, Fv, Ft = (features(x, W) for x in problem["x"])
    path = ridge_path(F, problem["y"][0], lams)  # [L, p]; lams[0] = 0 (min-norm)
    val = np.mean((Fv @ path.T - problem["y"][1][:, None]) ** 2, axis=0)  # [L]
    risks = np.mean((Ft @ path.T - problem["target"][:, None]) ** 2, axis=0)  # [L]
    best = int(np.argmin(val))
    return dict(risk_min_norm=risks[0], risk_tuned=risks[best], lam_tuned=lams[best],
                train_mse_min_norm=float(np.mean((F @ path[0] - problem["y"][0]) ** 2)))


def peak_ratio(p: np.ndarray, risk: np.ndarray, n: int) -> float:
    """p at the largest mean risk over n, folded above 1: max(p*/n, n/p*) (1 = the peak sits at p = n)."""
    top = p[int(np.nanargmax(risk))]
    return float(max(top / n, n / top))


def largest_rise(risk: np.ndarray) -> float:
    """The largest rise of a curve above its running minimum, relative to that minimum (0 for a non-increasing one)."""
    low = np.minimum.accumulate(risk)
    return float(np.max(risk / low - 1.0))


def figures(run) -> list:
    """risk.png: test risk against p / n for min-norm least squares and for the tuned ridge penalty."""
    c = run.config
    p = run.metric("p")[:, 0]
    fig, axes = plots.figure(2)
    ax = axes[0, 0]
    plots.band(ax, p / c.n, run.metric("risk_min_norm"), "min-norm least squares (lam = 0)", marker="o", ms=3)
    plots.band(ax, p / c.n, run.metric("risk_tuned"), "ridge, penalty tuned on held-out data", marker="s", ms=3)
    style.reference(ax, "p = n", x=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("features / samples, p / n (unitless)")
    plots.finish(ax, "test risk E (f(x) - <beta*, x>)^2 (squared label units)", log=True,
                 title=f"double-descent: n={c.n}, d={c.d}, sigma={c.sigma:g}, {run.n_members} members")
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[0, 1]
    plots.band(ax, p / c.n, np.maximum(run.metric("lam_tuned"), c.lam_min / 10), "tuned penalty", marker="o", ms=3)
    style.reference(ax, "p = n", x=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("features / samples, p / n (unitless)")
    plots.finish(ax, f"chosen lam, 0 drawn at {c.lam_min / 10:g} (penalty units)", log=True)
    return [plots.save(fig, run.dir / "figures" / "risk.png")]


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes (float64): every member's problem (data [n + n_val + n_test, d] and feature weights [p_max, d]),
    the features of one fit [n + n_val + n_test, p_max] with the ridge path's SVD, and its coefficients and
    predictions for every penalty."""
    c, E = members[0], len(members)
    points = c.n + c.n_val + c.n_test
    return dict(problems=E * 8 * (points * c.d + c.p_max * c.d), features=8 * (2 * points * c.p_max + 3 * c.n * c.p_max),
                ridge_path=8 * (c.n_lams + 1) * (2 * c.p_max + 2 * points))


METRICS = {
    "p": "grid coordinate: number of random ReLU features p (count)",
    "risk_min_norm": "test risk E (f^(x) - <beta*, x>)^2 of min-norm least squares (squared label units)",
    "risk_tuned": "test risk of the ridge fit whose penalty has the smallest held-out error (squared label units)",
    "lam_tuned": "the penalty chosen on the held-out points, 0 = min-norm (penalty units of ||F b - y||^2 + "
                 "lam ||b||^2)",
    "train_mse_min_norm": "mean squared error of the min-norm fit on its training points, 0 once p >= n "
                          "(squared label units)",
}


@register_grid("double-descent", Config, presets=PRESETS, cpu_runtime="~7 s", figures=figures, memory=memory, metrics=METRICS)
def build(members: Members, env: Env) -> GridTask:
    """Double descent: min-norm random-features risk peaks at p = n; tuned ridge removes it (Nakkiran et al. 2021).

    Shows: the test risk of min-norm least squares on p random ReLU features against p / n rises to a peak where p
    reaches n and falls again beyond it; with the ridge penalty tuned on held-out data the curve is monotone.
    Command: `sims run double-descent --seeds 5` (~7 s on 2 CPU cores); claims: `sims reproduce benign-linear`.
    """
    cfg = members[0]
    problems = [_member_problem(cfg, seed) for seed in members.seeds]
    lams = np.concatenate([[0.0], np.geomspace(cfg.lam_min, cfg.lam_max, cfg.n_lams)])

    def evaluate(i: int, point: dict) -> dict:
        fits = [fit(pr, point["p"], lams) for pr in problems]
        return {k: [f[k] for f in fits] for k in fits[0]}

    return GridTask(points=[dict(p=p) for p in feature_counts(cfg)], evaluate=evaluate)
