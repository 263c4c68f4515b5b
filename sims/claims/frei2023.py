"""Frei, Vardi, Bartlett, Srebro, Hu (ICLR 2023): implicit bias of leaky-ReLU nets on high-dimensional data.

The theorems: gradient flow converges in direction to a KKT point of the parameter max-margin problem; every
such point has rank(W) <= 2 and a linear decision boundary sign f(x) = sign <z, x> with z an approximate
l2 max-margin linear classifier; GD from a small init has small stable rank after one step and keeps it.
The five init scales run as one ensemble (the init scale is member-wise), 3 seeds each, for 600 steps; the
other claims use the preset's small-init run (2000 steps: the KKT residual falls like 1 / log t).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr

from lc.keys import lc_name

from ..settings.clusters.leaky_relu_highdim import init_scale_figure
from . import Claim, Figure, RunSpec, Sweep, at_step, final, register_claims

SIM = "leaky-relu-highdim"
SMALL = RunSpec(SIM, seeds=3)  # the preset's init scale, 1e-4
INIT_SCALES = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
SWEEP_STEPS = 600  # the stable rank settles within a few steps; the KKT claims need the preset's 2000
BY_INIT = {"sweep": Sweep.of(SIM, {"init_scale": INIT_SCALES}, seeds=3, steps=SWEEP_STEPS)}
COSINE = 0.98  # cosine of the net's effective direction with the max-margin direction expected late


def _per_seed(values) -> str:
    return f"per seed {np.round(values, 4).tolist()}"


def _late_stable_rank(runs):
    """max over seeds and over every evaluation from step 1 to the end of the stable rank ("stays")."""
    r = runs["small"]
    sr = r.metric("stable_rank")[r.steps >= 1]  # [evals, E]
    worst = np.unravel_index(int(np.argmax(sr)), sr.shape)
    return float(sr.max()), (f"max over {sr.shape[1]} seeds and the {sr.shape[0]} evals from step 1 to "
                             f"{r.steps[-1]} (at step {r.steps[r.steps >= 1][worst[0]]}); at the end "
                             f"{_per_seed(sr[-1])}")


def _one_step_rank(runs):
    sr, sr0 = at_step(runs["small"], "stable_rank", 1), at_step(runs["small"], "stable_rank", 0)
    return float(np.max(sr)), f"max over seeds (at init {np.mean(sr0):.4g}); {_per_seed(sr)}"


def _rank_two(runs):
    r = runs["small"]
    ratio = final(r, "sv3") / final(r, "sv1")
    return float(np.max(ratio)), f"max over seeds of s_3 / s_1 at the end; {_per_seed(ratio)}"


def _stable_rank_vs_init(runs):
    ordered = sorted(runs["sweep"].views, key=lambda r: r.config.init_scale)
    scales = [r.config.init_scale for r in ordered]
    late = [float(np.mean(final(r, "stable_rank"))) for r in ordered]
    rho = round(float(spearmanr(scales, late).statistic), 9)  # 1 - 1e-16 would read as a failure
    pairs = ", ".join(f"{s:g}: {v:.3g}" for s, v in zip(scales, late))
    return float(rho), f"Spearman(init, late stable rank); mean over 3 seeds at init {pairs}"


def _cosine(runs):
    cos = final(runs["small"], "mm_cosine")
    return float(np.min(cos)), f"min over seeds; {_per_seed(cos)}"


def _agreement_iso(runs):
    r = runs["small"]
    agree, cos = final(r, "mm_agreement_iso"), final(r, "mm_cosine")
    linear = 1 - np.arccos(np.clip(cos, -1, 1)) / math.pi
    return float(np.min(agree)), (f"min over seeds; {_per_seed(agree)}; 1 - angle/pi of the effective direction "
                                  f"{np.round(linear, 4).tolist()} (equal if the boundary is linear)")


def _agreement(runs):
    agree = final(runs["small"], "mm_agreement")
    return float(np.min(agree)), f"min over seeds on mixture test points; {_per_seed(agree)}"


def _decade_start(r) -> int:
    """The eval step nearest a tenth of the last step (the start of the last decade of training)."""
    return int(r.steps[np.argmin(np.abs(np.log(np.maximum(r.steps, 1)) - np.log(r.steps[-1] / 10)))])


def _kkt_last_decade(runs):
    r = runs["small"]
    s0 = _decade_start(r)
    ratio = final(r, "kkt_residual") / at_step(r, "kkt_residual", s0)
    return float(np.max(ratio)), (f"max over seeds of residual(step {r.steps[-1]}) / residual(step {s0}); "
                                  f"{_per_seed(ratio)}; residual at the end {np.round(final(r, 'kkt_residual'), 3).tolist()}"
                                  f", after step 1 {np.round(at_step(r, 'kkt_residual', 1), 3).tolist()}")


def _log_rate(runs) -> float:
    """log(T / 10) / log(T): how much a residual falling like 1 / log t falls over the last decade T/10 -> T."""
    r = runs["small"]
    return math.log(_decade_start(r)) / math.log(r.steps[-1])


def _kkt_decreasing(runs):
    r = runs["small"]
    res = r.metric("kkt_residual")  # [n_evals, E]; NaN until the data are fitted
    ok = np.all(np.isfinite(res), axis=1)
    steps, mean = r.steps[ok], res[ok].mean(axis=1)
    rho = spearmanr(steps, mean).statistic
    return float(rho), (f"Spearman(step, mean residual) over {ok.sum()} evals; mean residual "
                        f"{mean[0]:.3g} at step {steps[0]}, {mean[-1]:.3g} at step {steps[-1]}")


def _lc_collapse(runs):
    r, train, random = runs["small"], lc_name("train"), lc_name("random")
    if train not in r.metric_names:
        return float("nan"), "LC not measured (lc=false)"
    lc0, lc1 = at_step(r, train, 0), at_step(r, train, 1)
    rand = [at_step(r, random, s).mean() for s in (0, 1, int(r.steps[-1]))]
    return float(np.max(lc1 / lc0)), (
        f"max over seeds of LC_train(step 1) / LC_train(init); at init {np.mean(lc0):.3g} of {r.config.width} units "
        f"crossed ({np.mean(lc0) / r.config.width:.0%}) at r = {r.config.lc_radius:g}; LC_train at the end "
        f"{np.mean(final(r, train)):.3g}; LC at random points {rand[0]:.3g} -> {rand[1]:.3g} -> {rand[2]:.3g}")


TITLE = "Implicit bias in leaky ReLU networks trained on high-dimensional data (Frei et al. 2023)"

register_claims("frei2023", TITLE, [
    Claim("one-step-stable-rank",
          "from a small init the stable rank of W is at most 2 after one GD step (max over seeds)",
          {"small": SMALL}, _one_step_rank, "<=", 2.0,
          paper_value="GD from small init: small stable rank after one step"),
    Claim("low-stable-rank-small-init",
          "the stable rank of W stays at most 2 (+0.5 slack) at every evaluation from step 1 to the end of training",
          {"small": SMALL}, _late_stable_rank, "<=", 2.5, paper_value="rank(W) <= 2 at every KKT point"),
    Claim("rank-two-signature",
          "late in training s_3 / s_1 <= 0.05: W is numerically of rank <= 2 (max over seeds)",
          {"small": SMALL}, _rank_two, "<=", 0.05, paper_value="rank(W) <= 2"),
    Claim("stable-rank-grows-with-init",
          "the late stable rank increases with the init scale (Spearman correlation over 5 scales)",
          BY_INIT, _stable_rank_vs_init, ">=", 1.0, paper_value="larger init variance gives higher stable rank"),
    Claim("effective-direction-cosine",
          f"late, the cosine of sum_j a_j w_j with the l2 max-margin direction is >= {COSINE} (min over seeds)",
          {"small": SMALL}, _cosine, ">=", COSINE,
          paper_value="sign f(x) = sign <z, x>, z an approximate l2 max-margin predictor"),
    Claim("agrees-with-max-margin-isotropic",
          "on isotropic N(0, I_d) points sign f agrees with the l2 max-margin classifier at least as often as a "
          f"linear classifier at cosine {COSINE} would (1 - arccos({COSINE}) / pi)",
          {"small": SMALL}, _agreement_iso, ">=", 1 - math.acos(COSINE) / math.pi,
          target_text=f"1 - arccos({COSINE})/pi", paper_value="linear decision boundary near the max-margin one"),
    Claim("kkt-residual-keeps-falling",
          "over the last decade of training (T/10 -> T) the relative KKT residual of the parameter max-margin "
          "problem falls at least as fast as 1 / log t would (max over seeds of its ratio)",
          {"small": SMALL}, _kkt_last_decade, "<=", _log_rate, target_text="log(T/10) / log(T)",
          paper_value="convergence in direction to a KKT point (Lyu and Li 2020); the margin converges like 1/log t"),
    Claim("kkt-residual-decreases",
          "the KKT residual decreases over training (Spearman correlation with the step)",
          {"small": SMALL}, _kkt_decreasing, "<=", -0.9, paper_value="convergence in direction to a KKT point"),
    Claim("agrees-with-max-margin",
          "sign f agrees with the l2 max-margin linear classifier on fresh mixture test points",
          {"small": SMALL}, _agreement, "report",
          paper_value="(the Bayes rule agrees too: uninformative, reported only)"),
    Claim("lc-collapses-after-one-step",
          "LC at training points after one step, as a fraction of LC at init (units crossed at init reported)",
          {"small": SMALL}, _lc_collapse, "<=", 0.05,
          paper_value="not in the paper: after the rank collapse every unit's hyperplane is far from the data"),
], figures=[
    Figure("stable-rank-vs-init", BY_INIT, lambda runs, path: init_scale_figure(runs["sweep"].views, path),
           "stable rank of W against step, one curve per init scale (mean and min-max over 3 seeds)"),
])
