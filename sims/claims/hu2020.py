"""Hu, Xiao, Adlam, Pennington (NeurIPS 2020): the early-time dynamics of a two-layer net follow a linear model."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from .. import plots
from ..settings.linear.early_time import GAP_LEVEL, half_loss_step
from . import Claim, Figure, RunSpec, at_step, final, register_claims
from .seeds import RATE

SIM = "early-time"
MAIN = {"net": RunSpec(SIM, seeds=3)}
D_GRID = (25, 50, 100, 200, 400)
N_PER_D = 5  # n grows with d (n = 5 d, as in the default preset): the paper's n polynomial in d
BY_D = {f"d{d}": RunSpec(SIM, (("d", d), ("n", N_PER_D * d), ("n_test", 10), ("steps", 0)), seeds=3)
        for d in D_GRID}  # the tangent kernel at init only


def _early(run) -> tuple[float, float]:
    """(largest gap on train or test points over the seeds and the steps until the linear model's mean training
    loss has halved, that step): the evals before the halving step and each seed's gap interpolated at it
    (`sims.transitions.crossing`); NaN when the loss never halves."""
    half = half_loss_step(run)
    if half is None:
        return float("nan"), float("nan")
    gaps = np.maximum(run.metric("gap_train"), run.metric("gap_test"))  # [evals, E]
    before = gaps[run.steps < half.step]
    at_half = [np.interp(half.step, run.steps, g) for g in gaps.T]
    return float(np.nanmax(np.concatenate([before.ravel(), at_half]))), half.step


def _gap_early(runs):
    r = runs["net"]
    gap, step = _early(r)
    if not np.isfinite(step):
        return gap, "the linear model's training loss never halves"
    return gap, (f"max over {r.n_members} seeds, train and test points, steps 0..{step:.1f} (where the linear "
                 f"model's mean training loss reaches half of {r.metric('loss_lin')[0].mean():.3g}); gap at step 0 "
                 f"{np.round(at_step(r, 'gap_train', 0), 4).tolist()}")


def _gap_late(runs):
    r = runs["net"]
    late, test = final(r, "gap_train"), final(r, "gap_test")
    return float(np.min(late)), (f"min over seeds at step {r.steps[-1]}; train {np.round(late, 3).tolist()}, "
                                 f"test {np.round(test, 3).tolist()}")


def _twice_early(runs) -> float:
    return 2 * _early(runs["net"])[0]


def _kernel_gaps(runs) -> tuple[np.ndarray, np.ndarray]:
    """(d [k], kernel gap per seed [k, seeds]) in the order of d."""
    views = sorted(runs.values(), key=lambda v: v.config.d)
    d = np.array([v.config.d for v in views], dtype=float)
    return d, np.array([[m["kernel_gap"] for m in v.member_summaries] for v in views])


def _kernel_trend(runs):
    d, gaps = _kernel_gaps(runs)
    gap = gaps.mean(axis=1)
    rho = round(float(spearmanr(d, gap).statistic), 9)
    slope = np.polyfit(np.log(d), np.log(gap), 1)[0]
    n = sorted(v.config.n for v in runs.values())
    pairs = ", ".join(f"{int(a)} (n = {k}): {b:.3g}" for a, k, b in zip(d, n, gap))
    return rho, f"Spearman(d, gap); log-log slope {slope:.2f}; mean over {gaps.shape[1]} seeds at d = {pairs}"


def _init_gap(runs):
    r = runs["net"]
    g = at_step(r, "gap_train", 0)
    theory = r.summary["init_gap_theory"]
    return float(np.mean(g) / theory), (f"gap at step 0 / (kappa sqrt(E relu(g)^2) = {theory:.4g}); per seed "
                                        f"{np.round(g, 4).tolist()}")


def _half_step(runs):
    half = half_loss_step(runs["net"])
    return (float("nan"), "never") if half is None else (half.step, f"between eval steps {half.between}")


def kernel_gap_figure(runs, path):
    """Spectral-norm gap between the tangent kernel at init and the affine kernel against d (mean, min-max)."""
    d, gaps = _kernel_gaps(runs)  # [k], [k, seeds]
    fig, axes = plots.figure(1, panel=(6.0, 4.2))
    ax = axes[0, 0]
    plots.band(ax, d, gaps, "||Theta_emp - Theta_aff||_2 / ||Theta_emp||_2", marker="o")
    ax.plot(d, gaps.mean(axis=1)[0] * np.sqrt(d[0] / d), "k:", lw=1, label="d^-1/2 (from the first point)")
    ax.set_xscale("log")
    plots.value_ticks(ax, d)
    ax.set_xlabel("input dimension d (count)")
    c = next(iter(runs.values())).config
    plots.finish(ax, "kernel gap at init (relative, unitless)", log=True,
                 title=f"early-time: n = {N_PER_D} d, m={c.width}, layers={c.layers}, kappa={c.init_scale:g}")
    return plots.save(fig, path)


TITLE = "The surprising simplicity of the early-time learning dynamics of neural networks (Hu et al. 2020)"

register_claims("hu2020", TITLE, [
    Claim("gap-small-while-linear-learns",
          f"until the linear model's training loss has halved, the network's outputs on train and test points stay "
          f"within {GAP_LEVEL} ||y|| of the linear model's",
          MAIN, _gap_early, "<=", GAP_LEVEL,
          paper_value="early GD on the net is mimicked by GD on a linear model (Thm for the first layer)",
          rate=RATE),  # with high probability over the data and the init
    Claim("gap-grows-later",
          "late in training the gap on training points is at least twice its largest early value",
          MAIN, _gap_late, ">=", _twice_early, target_text="2 x the early gap, from the same run",
          paper_value="the network escapes the linear regime later in training"),
    Claim("kernel-gap-decreases-with-d",
          "the spectral-norm gap between the tangent kernel at init and the affine kernel decreases as d grows "
          f"(n = {N_PER_D} d, m fixed; Spearman correlation over {len(D_GRID)} dimensions)",
          BY_D, _kernel_trend, "<=", -0.9,
          paper_value="||Theta - Theta_aff|| small for isotropic inputs in large d"),
    Claim("init-gap-is-init-size",
          "the gap at step 0 (the network's output at init) relative to its prediction kappa sqrt(E relu(g)^2)",
          MAIN, _init_gap, "report", paper_value="small init: the output at init is small"),
    Claim("linear-loss-halving-step",
          "step at which the linear model's training loss has halved",
          MAIN, _half_step, "report", paper_value="early time ~ d log d / lr in the paper's units [unverified]"),
], figures=[
    Figure("kernel-gap-vs-d", BY_D, kernel_gap_figure,
           "relative spectral-norm gap between the empirical tangent kernel at init and the affine kernel, against d"),
])
