"""Frei, Vardi, Bartlett, Srebro, Hu (ICLR 2023): implicit bias of leaky-ReLU nets on high-dimensional data."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from ..settings.leaky_relu_highdim import init_scale_figure
from . import Claim, Figure, RunSpec, Sweep, at_step, final, register_claims

SIM = "leaky-relu-highdim"
SMALL = RunSpec(SIM, seeds=3)  # the preset's init scale, 1e-4
INIT_SCALES = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
BY_INIT = {"sweep": Sweep.of(SIM, {"init_scale": INIT_SCALES}, seeds=3)}


def _late_stable_rank(runs):
    sr = final(runs["small"], "stable_rank")
    return float(np.max(sr)), f"max over {len(sr)} seeds; per seed {np.round(sr, 3).tolist()}"


def _stable_rank_vs_init(runs):
    ordered = sorted(runs["sweep"].views, key=lambda r: r.config.init_scale)
    scales = [r.config.init_scale for r in ordered]
    late = [float(np.mean(final(r, "stable_rank"))) for r in ordered]
    rho = round(float(spearmanr(scales, late).statistic), 9)  # 1 - 1e-16 would read as a failure
    pairs = ", ".join(f"{s:g}: {v:.3g}" for s, v in zip(scales, late))
    return float(rho), f"Spearman(init, late stable rank); mean over 3 seeds at init {pairs}"


def _agreement(runs):
    agree = final(runs["small"], "mm_agreement")
    return float(np.min(agree)), f"min over seeds; per seed {np.round(agree, 4).tolist()}"


def _kkt_decreasing(runs):
    r = runs["small"]
    res = r.metric("kkt_residual")  # [n_evals, E]; NaN until the data are fitted
    ok = np.all(np.isfinite(res), axis=1)
    steps, mean = r.steps[ok], res[ok].mean(axis=1)
    rho = spearmanr(steps, mean).statistic
    return float(rho), (f"Spearman(step, mean residual) over {ok.sum()} evals; mean residual "
                        f"{mean[0]:.3g} at step {steps[0]}, {mean[-1]:.3g} at step {steps[-1]}")


def _one_step_rank(runs):
    sr = at_step(runs["small"], "stable_rank", 1)
    sr0 = at_step(runs["small"], "stable_rank", 0)
    return float(np.mean(sr)), f"mean over seeds (at init {np.mean(sr0):.4g}); per seed {np.round(sr, 3).tolist()}"


def _cosine(runs):
    cos = final(runs["small"], "mm_cosine")
    return float(np.mean(cos)), f"mean over seeds; per seed {np.round(cos, 4).tolist()}"


def _lc(runs):
    r = runs["small"]
    if "lc_train" not in r.metric_names:
        return float("nan"), "LC not measured (lc=false or the lc package is missing)"
    parts = []
    for name in ("train", "test", "random"):
        v = r.metric(f"lc_{name}").mean(axis=1)
        parts.append(f"{name} {v[0]:.3g} -> {at_step(r, f'lc_{name}', 1).mean():.3g} -> {v[-1]:.3g}")
    return float(r.metric("lc_train").mean(axis=1)[-1]), "LC at step 0 -> 1 -> last: " + "; ".join(parts)


TITLE = "Implicit bias in leaky ReLU networks trained on high-dimensional data (Frei et al. 2023)"

register_claims("frei2023", TITLE, [
    Claim("low-stable-rank-small-init",
          "from a small init, the stable rank of W is at most 2 (+0.5 slack) late in training",
          {"small": SMALL}, _late_stable_rank, "<=", 2.5,
          paper_value="rank(W) <= 2 at every KKT point; GD from small init: small stable rank after one step"),
    Claim("stable-rank-grows-with-init",
          "the late stable rank increases with the init scale (Spearman correlation over 5 scales)",
          BY_INIT, _stable_rank_vs_init, ">=", 1.0,
          paper_value="larger init variance gives higher stable rank (experiments)"),
    Claim("agrees-with-max-margin",
          "sign f agrees with the l2 max-margin linear classifier on fresh test points",
          {"small": SMALL}, _agreement, ">=", 0.95,
          paper_value="sign f(x) = sign <z, x>, z an approximate l2 max-margin linear predictor"),
    Claim("kkt-residual-decreases",
          "the KKT residual of the parameter max-margin problem decreases over training",
          {"small": SMALL}, _kkt_decreasing, "<=", -0.9,
          paper_value="gradient flow converges in direction to a KKT point (Lyu and Li 2020)"),
    Claim("one-step-stable-rank",
          "stable rank of W after one GD step from a small init",
          {"small": SMALL}, _one_step_rank, "report",
          paper_value="small after one step"),
    Claim("effective-direction-cosine",
          "cosine of sum_j a_j w_j with the l2 max-margin direction, late in training",
          {"small": SMALL}, _cosine, "report", paper_value="near 1 (linear decision boundary)"),
    Claim("lc-trajectory",
          "local complexity at train / test / random points over training",
          {"small": SMALL}, _lc, "report", paper_value="not in the paper (Humayun et al. 2024 estimator)"),
], figures=[
    Figure("stable-rank-vs-init", BY_INIT, lambda runs, path: init_scale_figure(runs["sweep"].views, path),
           "stable rank of W against step, one curve per init scale (mean and min-max over 3 seeds)"),
])
