"""Support-vector proliferation: every training point becomes a support vector of the l2 max-margin classifier
once the dimension is large enough (Hsu, Muthukumar, Xu 2021; Ardeshir, Sanford, Hsu 2021).

For n isotropic Gaussian points x_i ~ N(0, I_d) with arbitrary labels, the hard-margin SVM equals the
minimum-norm interpolant of the labels, and so every point is a support vector, exactly when
y_i ((X X^T)^{-1} y)_i > 0 for all i; this switches on sharply near d = 2 n log n. Below it (d near n) only a
fraction of the points are support vectors. A grid simulation: at each dimension d of a log-spaced grid of
d / n, every member (one Monte-Carlo repetition, its own seed) draws X and random labels and solves the SVM
with `theory.max_margin.l2_max_margin`; metrics: the support-vector fraction and whether the proliferation
criterion holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import plots, style
from ...config import GridConfig, Members, param
from ...engine import Env
from ...gridsim import GridTask
from ...registry import register_grid


@dataclass(frozen=True)
class Config(GridConfig):
    """Isotropic Gaussian points with random labels; the SVM over a grid of dimensions."""

    n: int = param(64, "training points", low=2)
    ratio_min: float = param(1.0, "smallest d / n of the grid", low=1.0)
    ratio_max: float = param(20.0, "largest d / n of the grid", low=1.0)
    n_points: int = param(12, "dimensions in the grid (log-spaced d / n)", low=1)

    def check(self) -> None:
        from ...config import ConfigError

        if self.ratio_max < self.ratio_min:
            raise ConfigError(f"ratio_max={self.ratio_max} is below ratio_min={self.ratio_min}")


PRESETS = {
    "ci": dict(n=16, ratio_max=10.0, n_points=5),
    "default": dict(),
    "paper": dict(n=128, ratio_max=30.0, n_points=20),
}


def threshold(n: int) -> float:
    """The dimension 2 n log n near which proliferation switches on for isotropic data."""
    return 2 * n * math.log(n)


def dimensions(cfg: Config) -> list[int]:
    """The grid of dimensions: round(n * ratio) for log-spaced ratios, without repeats."""
    ratios = np.geomspace(cfg.ratio_min, cfg.ratio_max, cfg.n_points)
    return sorted({max(cfg.n, int(round(cfg.n * r))) for r in ratios})


def figures(run) -> list:
    c = run.config
    d = run.metric("d")[:, 0]
    fig, axes = plots.figure(1, panel=(6.0, 4.2))
    ax = axes[0, 0]
    plots.band(ax, d / c.n, run.metric("sv_fraction"), "support-vector fraction (mean, min-max over seeds)",
               marker="o")
    ax.plot(d / c.n, np.nanmean(run.metric("proliferation"), axis=1), "s--", label="P(every point a support vector)")
    style.reference(ax, "d = 2 n log n", x=threshold(c.n) / c.n)
    ax.set_xscale("log")
    ax.set_xlabel("dimension / samples, d / n (unitless)")
    plots.finish(ax, "share of runs or points (fraction)",
                 title=f"svm-proliferation: n={c.n}, {run.n_members} repetitions per d")
    return [plots.save(fig, run.dir / "figures" / "proliferation.png")]


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes of one solve at the largest dimension (the data, its Gram matrix and the solver's copies)."""
    c = members[0]
    return dict(data=4 * c.n * max(dimensions(c)) * 8 + 8 * c.n * c.n * 8)


METRICS = {
    "d": "grid coordinate: input dimension d (count)",
    "sv_fraction": "share of the training points that are support vectors of the l2 max-margin classifier "
                   "(fraction)",
    "proliferation": "1 if every point is a support vector (y_i ((X X^T)^-1 y)_i > 0 for all i), else 0 (0/1)",
}


@register_grid("svm-proliferation", Config, presets=PRESETS, cpu_runtime="~10 s", figures=figures, memory=memory, metrics=METRICS)
def build(members: Members, env: Env) -> GridTask:
    """Support-vector proliferation: all points become support vectors near d = 2 n log n (Hsu et al. 2021).

    Shows: the fraction of training points that are support vectors of the l2 max-margin classifier, against
    d / n for isotropic Gaussian data with random labels; it reaches 1 near d = 2 n log n.
    Command: `sims run svm-proliferation --seeds 20` (members are Monte-Carlo repetitions).
    """
    from theory.max_margin import l2_max_margin, support_vector_proliferation

    cfg = members[0]
    grid = [dict(d=d) for d in dimensions(cfg)]

    def evaluate(i: int, point: dict) -> dict:
        frac, prolif = [], []
        for seed in members.seeds:
            rng = np.random.default_rng([seed, i])
            X = rng.standard_normal((cfg.n, point["d"]))
            y = rng.choice([-1.0, 1.0], size=cfg.n)
            frac.append(len(l2_max_margin(X, y).support) / cfg.n)
            prolif.append(float(support_vector_proliferation(X, y)))
        return dict(sv_fraction=frac, proliferation=prolif)

    return GridTask(points=grid, evaluate=evaluate, summary=dict(threshold_d=threshold(cfg.n)))
