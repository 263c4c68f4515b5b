"""Arora et al. (2019)'s paper-level figures, each drawn from several deep-matrix-factorisation runs
(`sims.settings.factorisation.dmf`): reconstruction error against observations, balancedness, singular values
and effective rank by depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import plots, style
from ..settings.factorisation import dmf
from ..settings.factorisation.checks import end_to_end_check

__all__ = ["sweep_figure", "balance_figure", "singular_values_figure", "effective_rank_figure"]


def sweep_figure(runs, path: Path):
    """Final reconstruction error against the number of observations, one line per depth, with nuclear norm.

    `runs`: dmf-completion runs or views (any mix of depths, n_obs and numbers of members); each point is the
    median over members with a min-max bar (errors span decades between seeds where recovery is marginal); the
    baseline comes from the runs that solved it.
    """
    by_depth: dict[int, dict[int, np.ndarray]] = {}
    base: dict[int, np.ndarray] = {}
    for r in runs:
        by_depth.setdefault(r.config.depth, {})[r.config.n_obs] = r.metric("recon_error")[-1]
        if dmf.baseline_errors(r) is not None:
            base[r.config.n_obs] = dmf.baseline_errors(r)
    fig, axes = plots.figure(1, panel=(6, 4.2))
    ax = axes[0, 0]
    for depth, errs in sorted(by_depth.items()):
        _points(ax, errs, f"depth {depth}", "o-")
    if base:
        _points(ax, base, "nuclear norm", "ks--")
    ax.set_xlabel("number of observed entries (count)")
    c = next(iter(runs)).config
    plots.finish(ax, "reconstruction error ||W - W*||_F^2 / ||W*||_F^2 (relative, unitless)", log=True,
                 title=f"matrix completion, n={c.n}, rank {c.rank} (median and min-max over seeds)")
    return plots.save(fig, path)


def _points(ax, values: dict, label: str, fmt: str) -> None:
    """Median over members against the key, with a min-max bar: values {x: [members]}."""
    xs = sorted(values)
    mid, low, high = (np.array([f(values[x]) for x in xs]) for f in (np.median, np.min, np.max))
    ax.errorbar(xs, mid, yerr=[mid - low, high - mid], fmt=fmt, capsize=3, ms=4, label=label)


def balance_figure(runs, path: Path, *, check=None):
    """Left: balance_drift against time t = step * lr for the runs named lr / half (and wd / wd_half, the weight-
    decay control). Right: the end-to-end check's relative error against the start step for the runs named
    identity and gaussian. `runs`: {name: dmf-dynamics view}, one member each; `check`: the end-to-end check to
    use (default `end_to_end_check`; a caller that measured it already passes a cached one)."""
    fig, axes = plots.figure(2, panel=(5.6, 4.2))
    ax = axes[0, 0]
    for name, ls in (("lr", "-"), ("half", "--"), ("wd", "-"), ("wd_half", "--")):
        r = runs[name]
        wd = f", weight decay {r.config.weight_decay:g}" if r.config.weight_decay else ""
        ax.plot(r.steps * r.config.lr, r.metric("balance_drift")[:, 0], ls, color=style.color(1 if wd else 0),
                label=f"lr {r.config.lr:g}{wd} (init {r.config.init_scale:g})")
    ax.set_xlabel("time t = step x lr (continuous time: lr x steps)")
    ax.set_yscale("log")
    plots.finish(ax, "max_j ||D_j(t) - D_j(0)||_F (squared factor-entry units)",
                 title="balancedness drift (depth 3, GD)")
    ax = axes[0, 1]
    for name in ("identity", "gaussian"):
        r = runs[name]
        c = (check or end_to_end_check)(r)
        ax.semilogy(c["step"], c["rel_error"], "o-", label=f"{r.config.init} init {r.config.init_scale:g}")
    ax.set_xlabel("start step s (GD steps)")
    plots.finish(ax, "||W_e2e(s+k) - W(s+k)|| / ||W(s+k) - W(s)|| (relative, unitless)",
                 title=f"k = {runs['identity'].config.e2e_span} end-to-end updates against GD")
    return plots.save(fig, path)


def singular_values_figure(runs, path: Path, *, k: int = 10):
    """Top-k singular values against step, one panel per depth (member 0 of each run)."""
    runs = sorted(runs, key=lambda r: r.config.depth)
    fig, axes = plots.figure(len(runs), panel=(4.2, 3.8))
    for ax, r in zip(axes[0], runs):
        dmf.plot_singular_values(ax, r, k=k)
        ax.set_title(f"depth {r.config.depth}", fontsize=10)
    c = runs[0].config
    return plots.save(fig, path, title=f"singular values of W during GD (completion, n={c.n}, rank {c.rank}, "
                      f"{c.n_obs} entries, init {c.init_scale:g}, lr {c.lr:g})")


def effective_rank_figure(runs, path: Path):
    """Effective rank of W against step, one line per run (labelled by depth), mean over members."""
    fig, axes = plots.figure(1, panel=(6, 4.2))
    ax = axes[0, 0]
    for r in sorted(runs, key=lambda r: r.config.depth):
        plots.band(ax, r.steps, r.metric("effective_rank"), f"depth {r.config.depth}")
    base = [np.mean([m["nuclear_norm_baseline"]["effective_rank"] for m in r.member_summaries]) for r in runs
            if dmf.baseline_errors(r) is not None]
    if base:
        style.reference(ax, "nuclear norm", y=base[0])
    truth = np.mean([m["ground_truth"]["effective_rank"] for m in runs[0].member_summaries])
    style.reference(ax, "ground truth W*", y=truth)
    c = runs[0].config
    plots.finish(ax, "effective rank of W, mean over seeds (unitless)", steps=runs[0].steps, log=True,
                 title=f"completion, n={c.n}, rank {c.rank}, {c.n_obs} entries, init {c.init_scale:g}")
    return plots.save(fig, path)


# theory against simulation -------------------------------------------------------------------------------------
