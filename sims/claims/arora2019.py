"""Arora, Cohen, Hu, Luo (NeurIPS 2019): implicit regularisation in deep matrix factorisation.

Runs: matrix completion (n = 100, rank 5) at 2000 observed entries for depths 1..4 with the nuclear-norm
baseline on the same entries (3 seeds; depth 2 also at init 1e-3); 1500 entries for depths 1..4 trained to the
same loss threshold (3 seeds); 5000 entries (1 seed) for the error-against-observations sweep; matrix sensing at
its default size (n = 50, rank 3, 600 measurements) for depths 1..3 with its baseline (1 seed); plain-GD
dynamics for depths 1..4 with parameter snapshots; and one depth-3 GD ensemble of 10,000 steps for the
balancedness and end-to-end claims (lr 0.5 and 0.25, the authors' identity init, a large Gaussian init with and
without weight decay). The paper-level figures are `Figure`s of the paper.
"""

from __future__ import annotations

import functools

import numpy as np

from ..settings.factorisation import checks, dmf
from . import arora2019_figures as arora_figures
from . import Claim, Figure, NotApplicable, RunSpec, Sweep, final, register_claims

DEPTHS = (1, 2, 3, 4)
DEEP = (2, 3, 4)
FEW_OBS, FEW_STEPS = 1500, 32000  # depth 3 needs up to 30,232 steps at 1500 entries (the authors ran up to 1e6)
SWEEP_OBS = (FEW_OBS, 2000, 5000)
CHECK_STEPS = 10000  # the balancedness and end-to-end members: GD lr 0.5 up to time 5000 (lr 0.25: 2500)
RANK_TOL = 0.02  # depth 4 vs 3: both recover W*, what differs is the tail left at loss 1e-6 (entropy ~1e-3 each)
RECOVERED = 1e-3  # the premise of the depth-4 rank claim: both depths end within this reconstruction error of W*
DRIFT_TOL, E2E_TOL = 0.1, 1e-2
WEIGHT_DECAY, BIG_INIT, IDENTITY_INIT = 1e-4, 1.0, 1e-3
PAPER_ERRORS = {1: "8.19e-1", 2: "5.92e-2", 3: "2.58e-5", 4: ""}
SENSING = "dmf-sensing"


def _by_depth(sim: str, depths=DEPTHS, seeds: int = 3, **over) -> dict:
    """{"d1": depth 1 with the nuclear-norm baseline, "deep": Sweep over the other depths without it}."""
    out = {"deep": Sweep.of(sim, {"depth": tuple(d for d in depths if d > 1)}, seeds=seeds, baseline=False, **over)}
    if 1 in depths:
        out["d1"] = RunSpec.of(sim, seeds=seeds, depth=1, baseline=True, **over)
    return out


COMPLETION = _by_depth("dmf-completion")
LARGE_INIT = dict(COMPLETION, d2_large=RunSpec.of("dmf-completion", seeds=3, depth=2, baseline=False,
                                                          init_scale=1e-3))
FEW = _by_depth("dmf-completion", n_obs=FEW_OBS, steps=FEW_STEPS)
SWEEP = {"d1": Sweep.of("dmf-completion", {"n_obs": SWEEP_OBS[1:]}, depth=1, baseline=True),
         "deep": Sweep.of("dmf-completion", {"n_obs": SWEEP_OBS[1:], "depth": DEEP}, baseline=False),
         "few_d1": FEW["d1"], "few": FEW["deep"]}  # 1500 entries: the runs of the few-observations claim
# one seed: the 600 dense 50 x 50 measurements of 3 members (36 MB) leave the CPU cache, ~10x slower per member
SENSE = _by_depth(SENSING, depths=(1, 2, 3), seeds=1)
DYNAMICS = {"all": Sweep.of("dmf-dynamics", {"depth": DEPTHS})}


def _check(**over) -> RunSpec:
    """A member of the depth-3 ensemble of the balancedness and end-to-end claims (one seed)."""
    return RunSpec.of("dmf-dynamics", depth=3, steps=CHECK_STEPS, **over)


DRIFT = {"lr": _check(), "half": _check(lr=0.25)}
DRIFT_WD = {"lr": _check(init_scale=BIG_INIT, weight_decay=WEIGHT_DECAY),
            "half": _check(init_scale=BIG_INIT, weight_decay=WEIGHT_DECAY, lr=0.25)}
E2E = {"identity": _check(init="identity", init_scale=IDENTITY_INIT)}
E2E_BIG = {"gaussian": _check(init_scale=BIG_INIT)}


# measures ------------------------------------------------------------------------------------------------------

def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in np.atleast_1d(values)) + "]"


def _depths(runs) -> dict:
    """{depth: view} from the runs of `_by_depth`."""
    out = {r.config.depth: r for _, r in runs["deep"]}
    if "d1" in runs:
        out[1] = runs["d1"]
    return out


def _errors(runs, which) -> np.ndarray:
    """Final reconstruction errors per seed of depth `which`, or of the nuclear-norm baseline ('nn')."""
    return dmf.baseline_errors(runs["d1"]) if which == "nn" else final(_depths(runs)[which], "recon_error")


def _mean_error(which):
    def measure(runs):
        v = _errors(runs, which)
        return float(np.mean(v)), f"per seed {_fmt(v)}"

    return measure


def _max_error(which):
    def measure(runs):
        v = _errors(runs, which)
        return float(np.max(v)), f"max over seeds; per seed {_fmt(v)}"

    return measure


def _ratio(num, den):
    """max over seeds of error(num) / error(den); 'nn' is the nuclear-norm baseline."""

    def measure(runs):
        a, b = _errors(runs, num), _errors(runs, den)
        return float(np.max(a / b)), f"errors {_fmt(a)} vs {_fmt(b)}"

    return measure


def _large_init_ratio(runs):
    a, b = final(runs["d2_large"], "recon_error"), dmf.baseline_errors(runs["d1"])
    return float(np.max(a / b)), f"errors {_fmt(a)} vs {_fmt(b)}"


def _ranks(runs) -> tuple[dict, str]:
    ranks = {d: final(r, "effective_rank") for d, r in sorted(_depths(runs).items())}
    return ranks, "mean effective rank " + ", ".join(f"depth {d}: {np.mean(v):.4g}" for d, v in ranks.items())


def _rank_falls(runs):
    """max over seeds and N = 1, 2 of erank(depth N+1) - erank(depth N): < 0 when the rank falls 1 -> 2 -> 3."""
    ranks, text = _ranks(runs)
    return float(np.max([ranks[d + 1] - ranks[d] for d in (1, 2)])), text


def _rank_depth4(runs):
    """max over seeds of erank(depth 4) - erank(depth 3); n/a unless both depths recover W* on every seed (a
    depth-4 run stuck far from W* can end at any rank: comparing it says nothing about depth)."""
    errors = {d: _errors(runs, d) for d in (3, 4)}
    missed = {d: _fmt(e) for d, e in errors.items() if not np.all(e <= RECOVERED)}
    if missed:
        raise NotApplicable(f"not every seed recovers W* (error <= {RECOVERED:g}): errors per seed "
                            + "; ".join(f"depth {d} {v}" for d, v in missed.items()))
    ranks, text = _ranks(runs)
    return float(np.max(ranks[4] - ranks[3])), text


def _few_observations(runs):
    """Seeds on which depths 3 and 4 both err less than depth 2 and nuclear norm, all at the loss threshold."""
    depth = _depths(runs)
    err = {d: final(depth[d], "recon_error") for d in DEEP}
    loss = {d: final(depth[d], "train_loss") for d in DEEP}
    nn = dmf.baseline_errors(runs["d1"])
    reached = np.all([loss[d] <= depth[d].config.loss_threshold for d in DEEP], axis=0)
    wins = reached & (np.maximum(err[3], err[4]) < np.minimum(err[2], nn))
    parts = [f"depth {d} {_fmt(err[d])} (loss {_fmt(loss[d])})" for d in DEEP]
    return int(wins.sum()), f"errors per seed: {'; '.join(parts)}; nuclear norm {_fmt(nn)}"


def _sweep_views(runs) -> list:
    """Every run of SWEEP (the 1500-entry ones at 3 seeds, the others at 1)."""
    return [runs["few_d1"], *[r for _, r in runs["few"]], *[r for _, r in runs["d1"]], *[r for _, r in runs["deep"]]]


def _sweep(runs):
    """Observation counts at which depth 3 errs less than nuclear norm (on every seed)."""
    views = _sweep_views(runs)
    nn = {r.config.n_obs: dmf.baseline_errors(r) for r in views if r.config.depth == 1}
    d3 = {r.config.n_obs: final(r, "recon_error") for r in views if r.config.depth == 3}
    wins = sum(bool(np.all(d3[k] < nn[k])) for k in SWEEP_OBS)
    return wins, "depth 3 vs nuclear norm at " + "; ".join(f"{k}: {np.mean(d3[k]):.2g} vs {np.mean(nn[k]):.2g}"
                                                           for k in SWEEP_OBS)


def _velocity(runs):
    """Max relative error over the depths; NaN (a FAIL) if any error is NaN; n/a if a depth has no balanced
    snapshot (the theorem's premise) to check."""
    errors, parts, unbalanced = [], [], []
    for _, r in runs["all"]:
        c = checks.velocity_check(r)
        if not c["used"].any():
            unbalanced.append(r.config.depth)
        errors.append(c["max_rel_error"])
        parts.append(f"depth {r.config.depth}: {c['max_rel_error']:.2g} over {int(c['used'].sum())}")
    if unbalanced:
        raise NotApplicable(f"no balanced snapshot (relative gap <= 1e-2) at depth(s) {unbalanced}; "
                            + "; ".join(parts))
    return float(np.max(errors)), "max relative error " + "; ".join(parts)  # np.max keeps a NaN


def _jump_width(run, member: int = 0) -> float:
    """(t90 - t10) / t50 of sigma_1 (fractions of its final value, crossing times interpolated): small = sharp."""
    s, v = run.steps.astype(float), run.metric("sv_1")[:, member]
    times = []
    for q in (0.1, 0.5, 0.9):
        i = int(np.argmax(v >= q * v[-1]))
        times.append(np.interp(q * v[-1], [v[i - 1], v[i]], [s[i - 1], s[i]]) if i > 0 else s[0])
    return (times[2] - times[0]) / times[1]


def _sharper(runs):
    widths = [_jump_width(r) for _, r in sorted(runs["all"], key=lambda pr: pr[0]["depth"])]
    return float(np.max(np.diff(widths))), "relative width of the sigma_1 jump " + _fmt(widths)


def drift_ratio(runs):
    """max over matched times t of balance_drift at lr, over the same at lr / 2 (t = step * lr; times both runs
    evaluated): ~ the ratio of the learning rates when the drift is the O(lr) error of GD against gradient flow.
    The seed whose ratio is farthest from that target."""
    a, b = runs["lr"], runs["half"]
    ta, tb = np.round(a.steps * a.config.lr, 9), np.round(b.steps * b.config.lr, 9)
    common = np.intersect1d(ta, tb)
    da = a.metric("balance_drift")[np.isin(ta, common)].max(axis=0)  # [E]
    db = b.metric("balance_drift")[np.isin(tb, common)].max(axis=0)
    ratio = da / db
    worst = int(np.argmax(np.abs(ratio - _lr_ratio(runs))))
    return float(ratio[worst]), (f"up to time {common.max():g}: max drift {_fmt(da)} at lr {a.config.lr:g}, "
                                 f"{_fmt(db)} at lr {b.config.lr:g}")


def _lr_ratio(runs) -> float:
    return runs["lr"].config.lr / runs["half"].config.lr


_e2e_check = functools.lru_cache(maxsize=None)(checks.end_to_end_check)  # the claims and the figure share a view


def end_to_end(runs):
    """Max relative error of k end-to-end updates from W(s) against the run's W(s + k) (checks.end_to_end_check)."""
    (run,) = runs.values()
    c = _e2e_check(run)
    return c["max_rel_error"], (f"k = {run.config.e2e_span}, over {len(c['step'])} starts (steps "
                                f"{_fmt(np.unique(c['step']))}); relative balancedness gap at them {_fmt(c['gap'])}")


# claims --------------------------------------------------------------------------------------------------------

def _completion_claims() -> list[Claim]:
    return [
        Claim("error-nuclear-norm", "reconstruction error of nuclear-norm minimisation, 2000 observations",
              COMPLETION, _mean_error("nn"), "report", paper_value="1.06e-1"),
        *[Claim(f"error-depth-{d}", f"reconstruction error of depth {d}, 2000 observations", COMPLETION,
                _mean_error(d), "report", paper_value=PAPER_ERRORS[d]) for d in (1, 2, 4)],
        Claim("error-depth-3", "depth 3 recovers W* almost exactly from 2000 observations (max over seeds)",
              COMPLETION, _max_error(3), "<=", 1e-4, paper_value="2.58e-5"),
        Claim("depth3-below-nuclear-norm",
              "with 2000 observations depth 3 errs at most 1e-2 times as much as nuclear norm (max ratio over seeds)",
              COMPLETION, _ratio(3, "nn"), "<=", 1e-2, paper_value="2.4e-4"),
        Claim("nuclear-norm-below-depth1",
              "with 2000 observations nuclear norm errs less than depth 1 (max ratio over seeds)",
              COMPLETION, _ratio("nn", 1), "<=", 1.0, paper_value="0.13"),
        Claim("depth2-not-above-nuclear-norm",
              "with 2000 observations depth 2 (init 1e-4) errs at most as much as nuclear norm (max ratio)",
              COMPLETION, _ratio(2, "nn"), "<=", 1.0, paper_value="0.56"),
        Claim("depth2-large-init", "the same at init 1e-3 (inside the paper's init range): max ratio of errors",
              LARGE_INIT, _large_init_ratio, "report", paper_value="0.56"),
        Claim("effective-rank-falls-1-2-3",
              "effective rank at the end falls strictly from depth 1 to 2 to 3 (max over seeds and N = 1, 2 of "
              "erank(N+1) - erank(N))", COMPLETION, _rank_falls, "<=", 0.0, paper_value="lower with depth"),
        Claim("effective-rank-depth4-not-above-depth3",
              f"depth 4 ends at an effective rank at most depth 3's + {RANK_TOL} (both recover W*; max over seeds "
              "of erank(4) - erank(3))", COMPLETION, _rank_depth4, "<=", 0.0, tol=RANK_TOL,
              paper_value="lower with depth"),
        Claim("few-observations-deep-wins",
              f"{FEW_OBS} entries, every depth trained to loss 1e-6 ({FEW_STEPS} steps at most): seeds on which "
              "depths 3 and 4 both err less than depth 2 and nuclear norm", FEW, _few_observations, "report",
              paper_value="deeper recovers from fewer entries"),
        Claim("sweep-depth3-wins",
              f"observation counts out of {len(SWEEP_OBS)} ({SWEEP_OBS[0]}..{SWEEP_OBS[-1]}, 1 seed) at which depth 3 "
              "errs less than nuclear norm", SWEEP, _sweep, "report", paper_value="depth 3 lowest throughout"),
    ]


def _sensing_claims() -> list[Claim]:
    return [
        Claim("sensing-error-depth-3", "sensing: depth 3 recovers W* almost exactly (max over seeds)", SENSE,
              _max_error(3), "<=", 1e-4, paper_value="near-exact (as completion)"),
        Claim("sensing-error-nuclear-norm", "sensing: reconstruction error of nuclear-norm minimisation", SENSE,
              _mean_error("nn"), "report"),
        Claim("sensing-depth3-not-above-nuclear-norm",
              "sensing: depth 3 errs at most as much as nuclear norm (max ratio over seeds)", SENSE,
              _ratio(3, "nn"), "<=", 1.0, paper_value="deeper better than nuclear norm"),
        Claim("sensing-nuclear-norm-below-depth1", "sensing: nuclear norm errs less than depth 1 (max ratio)",
              SENSE, _ratio("nn", 1), "<=", 1.0),
        Claim("sensing-effective-rank-falls-1-2-3",
              "sensing: effective rank falls strictly from depth 1 to 2 to 3 (max over seeds and N = 1, 2 of "
              "erank(N+1) - erank(N))", SENSE, _rank_falls, "<=", 0.0, paper_value="lower with depth"),
    ]


def _dynamics_claims() -> list[Claim]:
    return [
        Claim("singular-value-velocity",
              "measured d sigma_r/dt (one GD step / lr) matches theory.matrices.singular_value_velocity "
              "(max relative error, balanced snapshots, depths 1-4)", DYNAMICS, _velocity, "<=", 0.05,
              paper_value="Thm 3"),
        Claim("sharper-jumps-with-depth",
              "the sigma_1 jump gets sharper with depth: (t90 - t10) / t50 decreases 1 -> 4 (max difference)",
              DYNAMICS, _sharper, "<=", 0.0, paper_value="sharper with depth"),
        Claim("balance-drift-scales-with-lr",
              "D_j = W_{j+1}^T W_{j+1} - W_j W_j^T, conserved by gradient flow, drifts under GD by the O(lr) "
              "discretisation error: the largest drift max_j ||D_j(t) - D_j(0)||_F up to a fixed time halves with lr "
              "(depth 3, Gaussian init 1e-4, lr 0.5 against 0.25)", DRIFT, drift_ratio, "==", _lr_ratio,
              tol=DRIFT_TOL, target_text="lr ratio", paper_value="balancedness preserved by gradient flow"),
        # its control (tests/sims/test_dmf.py): with L2 weight decay, dD_j/dt = -2 lam D_j relaxes D_j from a large
        # init whatever the step size, so the ratio is ~1 and this claim fails; drawn in the balance figure
        Claim("end-to-end-trajectory",
              "from a snapshot W(s), k = 100 iterated end-to-end updates (gradient at each iterate) land on the run's "
              f"W(s + k): max ||W_e2e - W(s+k)|| / ||W(s+k) - W(s)|| (depth 3, the authors' identity init "
              f"{IDENTITY_INIT:g}, GD lr 0.5)", E2E, end_to_end, "<=", E2E_TOL,
              paper_value="end-to-end dynamics (Arora et al. 2018, Thm 1)"),
        Claim("end-to-end-unbalanced",
              f"control: the same from a Gaussian init at {BIG_INIT:g}, where the factors stay far from balanced "
              "(the update assumes balance)", E2E_BIG, end_to_end, "report", paper_value="(control)"),
    ]


def _dynamics_figure(runs, path):
    return arora_figures.singular_values_figure([r for _, r in runs["all"]], path)


def _completion_views(runs) -> list:
    return [runs["d1"], *[r for _, r in runs["deep"]]]


register_claims("arora2019", "Implicit regularisation in deep matrix factorisation (Arora, Cohen, Hu, Luo 2019)",
                _completion_claims() + _sensing_claims() + _dynamics_claims(), figures=[
    Figure("error-vs-observations", SWEEP, lambda runs, path: arora_figures.sweep_figure(_sweep_views(runs), path),
           "final reconstruction error against the number of observed entries, per depth, with nuclear norm"),
    Figure("singular-values", DYNAMICS, _dynamics_figure,
           "top singular values of W during plain GD, one panel per depth (Gaussian init 1e-4)"),
    Figure("effective-rank", COMPLETION,
           lambda runs, path: arora_figures.effective_rank_figure(_completion_views(runs), path),
           "effective rank of W against step per depth, 2000 observations"),
    Figure("balance-and-end-to-end", dict(DRIFT, wd=DRIFT_WD["lr"], wd_half=DRIFT_WD["half"], **E2E, **E2E_BIG),
           lambda runs, path: arora_figures.balance_figure(runs, path, check=_e2e_check),
           "balancedness drift against time at lr and lr / 2 (with the weight-decay control), and the end-to-end "
           "check per start"),
])
