"""Arora, Cohen, Hu, Luo (NeurIPS 2019): implicit regularisation in deep matrix factorisation.

Runs: matrix completion (n = 100, rank 5) at 2000 observed entries for depths 1..4 with the nuclear-norm
baseline on the same entries (3 seeds); a sweep over the number of observations (1 seed); plain-GD
dynamics for depths 1..4 with parameter snapshots; depths 2 and 3 at the smallest init of the paper's
range (1e-6) for balancedness; depth 2 at init 1e-3 (reported). The paper-level figures (error against
observations, singular values per depth, effective rank per depth) are `Figure`s of the paper.
"""

from __future__ import annotations

import numpy as np

from ..settings import dmf
from . import Claim, Figure, RunSpec, final, register_claims

DEPTHS = (1, 2, 3, 4)
SWEEP_OBS = (1000, 3000, 4000, 5000)  # plus 2000, the headline runs
SMALL_INIT = 1e-6


def _completion(depth: int, *, n_obs: int = 2000, seeds: int = 3, **extra) -> RunSpec:
    over = dict(dict(depth=depth, baseline=depth == 1), **extra)  # the baseline does not depend on depth: solve it once
    if n_obs != 2000:
        over["n_obs"] = n_obs
    return RunSpec("dmf-completion", tuple(sorted(over.items())), seeds=seeds)


COMPLETION = {f"d{d}": _completion(d) for d in DEPTHS}
SWEEP = dict(COMPLETION, **{f"d{d}-k{k}": _completion(d, n_obs=k, seeds=1) for d in DEPTHS for k in SWEEP_OBS})
DYNAMICS = {f"d{d}": RunSpec("dmf-dynamics", (("depth", d),)) for d in DEPTHS}
BALANCED = {f"d{d}": _completion(d, seeds=1, init_scale=SMALL_INIT, baseline=False) for d in (2, 3)}
BALANCED_D4 = {"d4": _completion(4, seeds=1, init_scale=SMALL_INIT, baseline=False)}
LARGE_INIT = dict(COMPLETION, d2_large=_completion(2, init_scale=1e-3))
PAPER_ERRORS = {1: "8.19e-1", 2: "5.92e-2", 3: "2.58e-5", 4: "not reported"}


def _errors(run) -> np.ndarray:
    return final(run, "recon_error")


def _baseline(runs) -> np.ndarray:
    return dmf.baseline_errors(runs["d1"])


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in np.atleast_1d(values)) + "]"


def _mean_error(name: str):
    def measure(runs):
        v = _baseline(runs) if name == "nn" else _errors(runs[name])
        return float(np.mean(v)), f"per seed {_fmt(v)}"

    return measure


def _ratio(num: str, den: str):
    """max over seeds of error(num) / error(den); 'nn' is the nuclear-norm baseline."""

    def measure(runs):
        a = _baseline(runs) if num == "nn" else _errors(runs[num])
        b = _baseline(runs) if den == "nn" else _errors(runs[den])
        return float(np.max(a / b)), f"errors {_fmt(a)} vs {_fmt(b)}"

    return measure


def _rank_drop(runs):
    """max over seeds and consecutive depths of erank(depth N+1) - erank(depth N): < 0 when rank falls with depth."""
    ranks = np.stack([final(runs[f"d{d}"], "effective_rank") for d in DEPTHS])  # [depth, seed]
    means = ", ".join(f"depth {d}: {m:.3g}" for d, m in zip(DEPTHS, ranks.mean(axis=1)))
    return float(np.max(np.diff(ranks, axis=0))), f"mean effective rank {means}"


def _sweep(runs):
    """Observation counts at which depth 3 beats nuclear norm on every seed."""
    wins, rows = 0, []
    for k in (2000,) + SWEEP_OBS:
        tag = "" if k == 2000 else f"-k{k}"
        nn = dmf.baseline_errors(runs[f"d1{tag}"])
        d3 = _errors(runs[f"d3{tag}"])
        wins += bool(np.all(d3 < nn))
        rows.append(f"{k}: {np.mean(d3):.2g} vs {np.mean(nn):.2g}")
    return wins, "depth 3 vs nuclear norm at " + "; ".join(rows)


def _velocity(runs):
    worst, parts = 0.0, []
    for d in DEPTHS:
        c = dmf.velocity_check(runs[f"d{d}"])
        worst = max(worst, c["max_rel_error"])
        parts.append(f"depth {d}: {c['max_rel_error']:.2g} over {int(c['used'].sum())}")
    return worst, "max relative error " + "; ".join(parts)


def _balancedness(runs):
    gaps = {name: float(np.max(final(r, "balancedness"))) for name, r in runs.items()}
    return max(gaps.values()), ", ".join(f"depth {k[1:]}: {v:.2g}" for k, v in gaps.items())


def _jump_width(run, member: int = 0) -> float:
    """(t90 - t10) / t50 of sigma_1 (fractions of its final value, crossing times interpolated): small = sharp."""
    s, v = run.steps.astype(float), run.metric("sv_1")[:, member]
    times = []
    for q in (0.1, 0.5, 0.9):
        i = int(np.argmax(v >= q * v[-1]))
        times.append(np.interp(q * v[-1], [v[i - 1], v[i]], [s[i - 1], s[i]]) if i > 0 else s[0])
    return (times[2] - times[0]) / times[1]


def _sharper(runs):
    widths = [_jump_width(runs[f"d{d}"]) for d in DEPTHS]
    return float(np.max(np.diff(widths))), "relative width of the sigma_1 jump " + _fmt(widths)


register_claims("arora2019", "Implicit regularisation in deep matrix factorisation (Arora, Cohen, Hu, Luo 2019)", [
    Claim("error-nuclear-norm",
          "reconstruction error of nuclear-norm minimisation, 2000 observations (paper 1.06e-1)",
          COMPLETION, _mean_error("nn"), "report", paper_value="1.06e-1"),
    *[Claim(f"error-depth-{d}", f"reconstruction error of depth {d}, 2000 observations (paper {PAPER_ERRORS[d]})",
            COMPLETION, _mean_error(f"d{d}"), "report", paper_value=PAPER_ERRORS[d]) for d in DEPTHS],
    Claim("depth3-below-nuclear-norm",
          "with 2000 observations depth 3 errs less than nuclear norm (max over seeds of the ratio; paper 2.58e-5 vs 1.06e-1)",
          COMPLETION, _ratio("d3", "nn"), "<=", 1.0, paper_value="2.4e-4"),
    Claim("nuclear-norm-below-depth1",
          "with 2000 observations nuclear norm errs less than depth 1 (max ratio; paper 1.06e-1 vs 8.19e-1)",
          COMPLETION, _ratio("nn", "d1"), "<=", 1.0, paper_value="0.13"),
    Claim("depth2-not-above-nuclear-norm",
          "with 2000 observations depth 2 errs at most as much as nuclear norm (max ratio; paper 5.92e-2 vs 1.06e-1)",
          COMPLETION, _ratio("d2", "nn"), "<=", 1.0, paper_value="0.56"),
    Claim("effective-rank-falls-with-depth",
          "effective rank at the end decreases with depth 1 -> 4 (max over seeds of erank(N+1) - erank(N))",
          COMPLETION, _rank_drop, "<=", 0.0, paper_value="decreasing"),
    Claim("sweep-depth3-wins",
          f"observation counts out of {1 + len(SWEEP_OBS)} (1000..5000) at which depth 3 beats nuclear norm on every seed",
          SWEEP, _sweep, "report", paper_value="depth 3 lowest throughout"),
    Claim("singular-value-velocity",
          "measured d sigma_r/dt (one GD step / lr) matches theory.matrices.singular_value_velocity "
          "(max relative error, balanced snapshots, depths 1-4)",
          DYNAMICS, _velocity, "<=", 0.05, paper_value="Thm 3"),
    Claim("sharper-jumps-with-depth",
          "the sigma_1 jump gets sharper with depth: (t90 - t10) / t50 decreases 1 -> 4 (max difference)",
          DYNAMICS, _sharper, "<=", 0.0, paper_value="sharper with depth"),
    Claim("balancedness-preserved",
          f"relative balancedness gap at the end <= 1e-3 at small init ({SMALL_INIT:g}, depths 2 and 3)",
          BALANCED, _balancedness, "<=", 1e-3, paper_value="preserved by gradient flow"),
    Claim("balancedness-depth4",
          f"relative balancedness gap at the end, depth 4 at init {SMALL_INIT:g} (the init's own gap ~ init^(1/2))",
          BALANCED_D4, _balancedness, "report"),
    Claim("depth2-large-init",
          "depth 2 at init_scale 1e-3 against nuclear norm, 2000 observations (max ratio of errors)",
          LARGE_INIT, _ratio("d2_large", "nn"), "report"),
], figures=[
    Figure("error-vs-observations", SWEEP, lambda runs, path: dmf.sweep_figure(list(runs.values()), path),
           "final reconstruction error against the number of observed entries, per depth, with nuclear norm"),
    Figure("singular-values", DYNAMICS, lambda runs, path: dmf.singular_values_figure(list(runs.values()), path),
           "top singular values of W during plain GD, one panel per depth"),
    Figure("effective-rank", COMPLETION, lambda runs, path: dmf.effective_rank_figure(list(runs.values()), path),
           "effective rank of W against step per depth, 2000 observations"),
])
