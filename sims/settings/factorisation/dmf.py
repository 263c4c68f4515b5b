"""Deep matrix factorisation: implicit low rank against nuclear-norm minimisation (Arora, Cohen, Hu, Luo 2019).

A low-rank n x n matrix W* is recovered from a few observed entries (completion) or Gaussian linear
measurements (sensing) by gradient descent on a depth-N product W = W_N ... W_1 of full n x n factors,
started near zero, minimising the mean squared error on the observations only: nothing asks for a low
rank. The paper finds that depth 2 does about as well as nuclear-norm minimisation (the convex
relaxation), depth >= 3 does much better (near-exact recovery where nuclear norm fails), and the
singular values of W are learned one at a time, with sharper jumps the deeper the factorisation,
following d sigma_r/dt = -N (sigma_r^2)^{1-1/N} <grad L(W), u_r v_r^T> (their Thm 3).

Ground truth: W* = U V^T / sqrt(r), U, V ~ N(0, 1)^{n x r}, rescaled to ||W*||_F = n (entries of RMS 1),
so the reconstruction error ||W - W*||_F^2 / ||W*||_F^2 is the mean of (W - W*)^2 over all entries.
Completion observes `n_obs` entries chosen uniformly without replacement (the observed set grows with
n_obs, nested, for a fixed seed); sensing observes y_i = <A_i, W*> with A_i entries N(0, 1) / n.
Each member (seed) draws its own W* and observations, and its own init.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from theory import matrices

from ... import metrics, plots, style
from ...config import ConfigError, Members, TrainConfig, param
from ...data import completion_data, stack_per_member, sensing_data
from ...engine import Env, Task
from ...nn import DeepMatrixFactorization, make_generators
from ...optim import ScalarRMSprop
from ...registry import register
from ..common import squared_loss
from .checks import velocity_check

__all__ = ["Config", "DynamicsConfig", "balance_terms", "build_task", "baseline_errors", "plot_singular_values",
           "LC_NOTE"]

LC_NOTE = "not applicable: the model is linear (no piecewise-linear sites)"
RMS_ALPHA, RMS_EPS = 0.99, 1e-4  # the authors' GroupRMSprop constants


# config --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config(TrainConfig):
    """Depth-N factorisation W = W_N ... W_1 of an n x n matrix fitted to observations of a rank-r W*."""

    n: int = param(100, "matrix size (W* and every factor are n x n)", low=1)
    rank: int = param(5, "rank r of the ground truth W*", low=1)
    n_obs: int = param(2000, "observations: observed entries (completion) or Gaussian measurements (sensing)", low=1)
    depth: int = param(3, "number N of factors, W = W_N ... W_1 (1 = the matrix itself)", low=1, high=4)
    init_scale: float = param(1e-4, "||W(0)||_F ~ init_scale * sqrt(n): factors N(0, s^2), s = init_scale^(1/N)/sqrt(n)",
                              low=0.0, low_open=True)
    optimizer: str = param("rmsprop", "rmsprop = the authors' scalar-normalised RMSprop (alpha 0.99, eps 1e-4); "
                           "sgd with batch_size 0 = plain GD", choices=("rmsprop", "sgd", "adamw"))
    lr: float = param(3e-3, "learning rate", low=0.0, low_open=True)
    steps: int = param(30000, "step budget", low=0)
    loss_threshold: float = param(1e-6, "a member stops (before its update) at the first step its training loss is "
                                  "<= this, checked every step as the authors do (0 = run the whole budget)", low=0.0)
    n_evals: int = param(80, "number of evaluation points (log-spaced plus linear, with 0 and the last step)", low=2)
    n_sv: int = param(10, "number of top singular values recorded (metrics sv_1 .. sv_K)", low=1)
    baseline: bool = param(True, "solve nuclear-norm minimisation on the same observations at build time (cvxpy)")
    baseline_solver: str = param("SCS", "cvxpy solver of the baseline (Clarabel does not fit 100 x 100 in memory)",
                                 choices=("SCS", "CLARABEL"))
    baseline_tol: float = param(1e-3, "baseline constraint |X_ij - M_ij| <= tol (or |<A_i, X> - y_i| <= tol)", low=0.0)
    dtype: str = param("float64", "floating-point type of data and parameters", choices=("float32", "float64"))

    def check(self) -> None:
        if self.rank > self.n:
            raise ConfigError(f"rank={self.rank} exceeds the matrix size n={self.n}; choose rank <= n")
        if self.optimizer == "rmsprop" and (self.momentum or self.weight_decay):
            raise ConfigError("momentum and weight_decay apply to sgd/adamw only; the authors' RMSprop has neither "
                              f"(got momentum={self.momentum}, weight_decay={self.weight_decay})")


@dataclass(frozen=True)
class DynamicsConfig(Config):
    """Config plus snapshot pairs for measuring singular-value velocities (plain GD, no early stop)."""

    optimizer: str = param("sgd", "sgd with batch_size 0 = plain GD (the velocity check needs it)",
                           choices=("rmsprop", "sgd", "adamw"))
    lr: float = param(0.5, "learning rate of GD (time per step in the gradient-flow equations)", low=0.0,
                      low_open=True)
    steps: int = param(25000, "number of GD steps", low=0)
    loss_threshold: float = param(0.0, "a member stops once its training loss is <= this (0 = never)", low=0.0)
    baseline: bool = param(False, "solve nuclear-norm minimisation on the same observations at build time (cvxpy)")
    n_evals: int = param(201, "number of evaluation points (log-spaced plus linear, with 0 and the last step); 201 "
                         "puts the linear ones at every steps/100, so runs at lr and lr/2 meet at equal times", low=2)
    velocity_checks: int = param(9, "parameters are kept at steps s and s+1 for this many s spread evenly over "
                                 "the run, to measure singular-value velocities", low=0)
    e2e_span: int = param(100, "k: the parameters are also kept at s+k for each of those s, to iterate the end-to-end "
                          "update k steps from W(s) (0 = not kept)", low=0)
    init: str = param("gaussian", "gaussian = factors N(0, s^2) (see init_scale); identity = every factor "
                      "init_scale^(1/N) I (the authors' dynamics figure: balanced from the start)",
                      choices=("gaussian", "identity"))


# build ---------------------------------------------------------------------------------------------------------

def build_task(members: Members, env: Env, *, sensing: bool, snapshot_steps: tuple[int, ...] = (),
           identity: Sequence[bool] = ()) -> Task:
    """The Task of one ensemble; `identity[e]` True: member e starts from the identity init (dmf-dynamics)."""
    cfg, seeds, device, dtype = members[0], members.seeds, env.device, env.dtype
    if not sensing and cfg.n_obs > cfg.n * cfg.n:
        raise ConfigError(f"n_obs={cfg.n_obs} exceeds the n^2 = {cfg.n * cfg.n} entries; choose n_obs <= n^2")
    make = sensing_data if sensing else completion_data
    W_star, x, y = stack_per_member(make, make_generators(seeds, "data"), cfg.n, cfg.rank, cfg.n_obs, dtype=dtype,
                                    device=device)
    model = DeepMatrixFactorization(cfg.n, cfg.depth, make_generators(seeds, "init"),
                                    init_scale=members.values("init_scale"), dtype=dtype).to(device)
    _identity_init(model, members, identity)
    star_norm2 = W_star.pow(2).sum(dim=(1, 2))  # [E]
    with torch.no_grad():
        D0 = balance_terms(model.factors)  # [E, N-1, n, n] at init

    def evaluate(m: DeepMatrixFactorization) -> dict[str, torch.Tensor]:
        W = m.matrix()  # [E, n, n]
        sv = torch.linalg.svdvals(W)  # [E, n], descending
        factors = [f.detach().double().cpu().numpy() for f in m.factors]
        gap = [matrices.balancedness_gap([f[e] for f in factors]) for e in range(len(W))]
        drift = (balance_terms(m.factors) - D0).pow(2).sum(dim=(2, 3)).sqrt()  # [E, N-1]
        out = dict(
            train_loss=squared_loss(m(x), y),
            recon_error=(W - W_star).pow(2).sum(dim=(1, 2)) / star_norm2,
            effective_rank=metrics.effective_ranks(W),
            nuclear_norm=sv.sum(dim=1),
            balancedness=torch.tensor(gap, dtype=W.dtype, device=W.device),
            balance_drift=drift.amax(dim=1) if cfg.depth > 1 else torch.zeros_like(star_norm2),
        )
        out.update({f"sv_{i + 1}": sv[:, i] for i in range(min(cfg.n_sv, cfg.n))})
        return out

    facts = [dict(ground_truth=_matrix_facts(w)) for w in W_star.double().cpu().numpy()]
    if cfg.baseline:
        solved = env.cache.get("nuclear_norm_baseline", lambda: _baseline(cfg, W_star, x, y, sensing))
        for f, b in zip(facts, solved):
            f["nuclear_norm_baseline"] = b
    rmsprop = cfg.optimizer == "rmsprop"
    return Task(model=model, x=x, y=y, loss=squared_loss, evaluate=evaluate,
                make_optimizer=(lambda ps: ScalarRMSprop(ps, lr=members.values("lr"), alpha=RMS_ALPHA, eps=RMS_EPS))
                if rmsprop else None,
                summary=dict(lc=LC_NOTE, task="sensing" if sensing else "completion",
                             baseline=dict(solver=cfg.baseline_solver, tol=cfg.baseline_tol) if cfg.baseline else None),
                member_summary=facts, stop_loss=cfg.loss_threshold, snapshot_steps=snapshot_steps)


def balance_terms(factors) -> torch.Tensor:
    """D_j = W_{j+1}^T W_{j+1} - W_j W_j^T for j = 1..N-1 of ensemble factors W_1..W_N [E, n, n]: [E, N-1, n, n].

    Gradient flow on any loss of the product W_N ... W_1 keeps every D_j constant (Arora, Cohen, Hazan 2018,
    Thm 1); one GD step of size lr changes it by exactly lr^2 (G_{j+1}^T G_{j+1} - G_j G_j^T), G_j = dL/dW_j.
    An L2 weight decay lam adds dD_j/dt = -2 lam D_j. Depth 1: [E, 0, n, n].
    """
    E, n = factors[0].shape[0], factors[0].shape[1]
    terms = [b.transpose(1, 2) @ b - a @ a.transpose(1, 2) for a, b in zip(factors, factors[1:])]
    return torch.stack(terms, dim=1) if terms else factors[0].new_zeros(E, 0, n, n)


def _identity_init(model: DeepMatrixFactorization, members: Members, identity: Sequence[bool]) -> None:
    """Members e with identity[e] get every factor init_scale^(1/N) I (the authors' `identity` init)."""
    with torch.no_grad():
        for e, (c, eye) in enumerate(zip(members, identity)):
            if eye:
                for f in model.factors:
                    f[e] = c.init_scale ** (1.0 / c.depth) * torch.eye(c.n, dtype=f.dtype, device=f.device)


def _matrix_facts(W: np.ndarray) -> dict:
    return dict(nuclear_norm=float(np.linalg.svd(W, compute_uv=False).sum()),
                effective_rank=matrices.effective_rank(W))


def _baseline(cfg: Config, W_star, x, y, sensing: bool) -> list[dict]:
    """Nuclear-norm minimisation on each member's observations: error, effective rank, nuclear norm, solve time."""
    Ws, X_obs, Y = (t.detach().cpu().numpy() for t in (W_star.double(), x, y.double()))
    out = []
    for e in range(len(Ws)):
        t0 = time.time()
        if sensing:
            X = matrices.nuclear_norm_sensing(X_obs[e].astype(np.float64), Y[e], tol=cfg.baseline_tol,
                                              solver=cfg.baseline_solver)
        else:
            X = matrices.nuclear_norm_completion((cfg.n, cfg.n), X_obs[e][:, 0], X_obs[e][:, 1], Y[e],
                                                 tol=cfg.baseline_tol, solver=cfg.baseline_solver)
        out.append(dict(recon_error=float(np.sum((X - Ws[e]) ** 2) / np.sum(Ws[e] ** 2)),
                        solve_s=round(time.time() - t0, 2), **_matrix_facts(X)))
    return out


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes: the factors with their copies, the end-to-end products, and the observations (sensing
    stores n_obs measurement matrices of n x n; completion only positions)."""
    from ...memory import PARAM_COPIES

    c, E = members[0], len(members)
    return dict(parameters=E * (PARAM_COPIES + 2) * c.depth * c.n * c.n * itemsize,
                observations=E * c.n_obs * c.n * c.n * itemsize)


def _check_starts(cfg: DynamicsConfig) -> list[int]:
    """The `velocity_checks` steps s spread evenly over (0, steps)."""
    k = cfg.velocity_checks
    return sorted({int(round(i * cfg.steps / (k + 1))) for i in range(1, k + 1)} - {cfg.steps})


def _velocity_snapshots(cfg: DynamicsConfig) -> tuple[int, ...]:
    """Steps s, s+1 and s+k (k = e2e_span, if > 0) for each check start s, within the run."""
    spans = (0, 1, cfg.e2e_span) if cfg.e2e_span else (0, 1)
    return tuple(sorted({s + d for s in _check_starts(cfg) for d in spans if s + d <= cfg.steps}))


# figures -------------------------------------------------------------------------------------------------------

def _sv_names(run) -> list[str]:
    return sorted((m for m in run.metric_names if m.startswith("sv_")), key=lambda m: int(m[3:]))


def plot_singular_values(ax, run, *, k: int | None = None, member: int = 0) -> None:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    names = _sv_names(run)[:k]
    for i, name in enumerate(names):
        ax.plot(run.steps, run.metric(name)[:, member], color=cmap(i / max(1, len(names) - 1)),
                lw=1.2, label=f"sigma_{i + 1}")
    plots.finish(ax, "singular value of W (entry units)", steps=run.steps)
    if names:
        ax.legend(fontsize=6, ncol=2)


def baseline_errors(run) -> np.ndarray | None:
    """Per member of `run` (a Run or RunView): the nuclear-norm baseline's reconstruction error, or None."""
    base = [m.get("nuclear_norm_baseline") for m in run.member_summaries]
    return None if any(b is None for b in base) else np.array([b["recon_error"] for b in base])


def figures(run) -> list:
    """Training loss and reconstruction error (with the nuclear-norm baseline), singular values, effective rank."""
    cfg = run.config
    fig, axes = plots.figure(3, panel=(5.3, 4.2))
    ax = axes[0, 0]
    plots.run_band(ax, run, "train_loss", "training loss")
    plots.run_band(ax, run, "recon_error", "reconstruction error")
    base = baseline_errors(run)
    if base is not None:
        style.reference(ax, "nuclear norm (reconstruction)", y=float(np.mean(base)))
    plots.finish(ax, "training MSE (squared entry units); reconstruction error (relative)", steps=run.steps, log=True)
    plot_singular_values(axes[0, 1], run, k=cfg.n_sv)
    axes[0, 1].set_title("top singular values (member 0)", fontsize=9)
    plots.run_band(axes[0, 2], run, "effective_rank", "effective rank")
    plots.finish(axes[0, 2], "effective rank (unitless)", steps=run.steps, log=True)
    task = run.summary.get("task", "completion")
    return [plots.save(fig, run.dir / "figures" / "training.png",
                       title=f"{run.sim_name}: {task}, n={cfg.n}, rank {cfg.rank}, {cfg.n_obs} observations, depth "
                       f"{cfg.depth}, init {cfg.init_scale:g}, {cfg.optimizer} lr {cfg.lr:g}")]


def dynamics_figures(run) -> list:
    """Singular values against step and measured against predicted singular-value velocities."""
    cfg = run.config
    check = velocity_check(run) if cfg.velocity_checks else None
    fig, axes = plots.figure(2 if check else 1, panel=(5.5, 4.2))
    plot_singular_values(axes[0, 0], run, k=cfg.n_sv)
    axes[0, 0].set_title(f"depth {cfg.depth}: top {cfg.n_sv} singular values (member 0)", fontsize=9)
    if check:
        ax = axes[0, 1]
        p, m = np.abs(check["predicted"]), np.abs(check["measured"])
        ax.loglog(p, m, "o", ms=3, alpha=0.6, label="sigma_r at snapshot steps")
        ax.loglog(p[check["used"]], m[check["used"]], "o", ms=3, color=style.color(3), label="checked")
        lim = [max(1e-12, p.min()), p.max()]
        ax.loglog(lim, lim, label="measured = predicted", **style.reference_style(ax))
        ax.set_xlabel("|d sigma/dt| predicted by Arora et al. 2019, Thm 3 (entry units per unit time)")
        plots.finish(ax, "|d sigma/dt| measured: one GD step / lr (entry units per unit time)",
                     title=f"max relative error {check['max_rel_error']:.2g} over the checked")
    return [plots.save(fig, run.dir / "figures" / "dynamics.png",
                       title=f"{run.sim_name}: n={cfg.n}, rank {cfg.rank}, {cfg.n_obs} observations, depth "
                       f"{cfg.depth}, init {cfg.init_scale:g}, GD lr {cfg.lr:g}")]


_SMALL = dict(n=20, rank=2, n_obs=200, steps=1500, n_evals=20, n_sv=5)

COMPLETION_PRESETS = {
    "ci": dict(_SMALL, depth=2, lr=0.03, loss_threshold=1e-5),
    "default": dict(),
    "paper": dict(lr=1e-3, steps=1_000_000, n_evals=200),
}
SENSING_PRESETS = {
    "ci": dict(_SMALL, depth=2, lr=0.03, n_obs=120, loss_threshold=1e-5),
    "default": dict(n=50, rank=3, n_obs=600),  # ~2x the 291 degrees of freedom; n=100 needs ~15 GB for the baseline
    "paper": dict(lr=1e-3, steps=1_000_000, n_evals=200),
}
DYNAMICS_PRESETS = {
    "ci": dict(_SMALL, depth=3, lr=0.5, steps=3000, velocity_checks=3, n_evals=21),  # linear evals every 300 steps
    "default": dict(),
    "paper": dict(lr=0.01, steps=1_500_000, n_evals=301),  # the authors' GD lr: 50x the default's steps
}


METRICS = {
    "train_loss": "mean squared error on the observations: observed entries (completion) or measurements y_i "
                  "(sensing) (squared entry units; W* has RMS entry 1)",
    "recon_error": "||W - W*||_F^2 / ||W*||_F^2, the mean of (W - W*)^2 over all entries (relative, unitless)",
    "effective_rank": "exp of the entropy of the normalised singular values of W (unitless, 1 to rank W; 0 for W = 0)",
    "nuclear_norm": "||W||_*, the sum of the singular values of W (entry units)",
    "balancedness": "max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F / max(||W_{j+1}^T W_{j+1}||_F, ||W_j W_j^T||_F) "
                    "(relative, 0 to 2; 0 at depth 1)",
    "balance_drift": "max_j ||D_j(t) - D_j(0)||_F, D_j = W_{j+1}^T W_{j+1} - W_j W_j^T (squared factor-entry units; "
                     "0 at depth 1)",
    "sv_<k>": "the k-th largest singular value of W, k = 1 .. min(n_sv, n) (entry units)",
}


@register("dmf-completion", Config, presets=COMPLETION_PRESETS, cpu_runtime="~15 s (depth 3) + ~6 s baseline",
          figures=figures, memory=memory, memberwise=("init_scale", "lr"), metrics=METRICS)
def build_completion(members: Members, env: Env) -> Task:
    """Matrix completion by a depth-N factorisation against nuclear-norm minimisation (Arora et al. 2019).

    Shows: from 2000 of the 10^4 entries of a rank-5 100 x 100 matrix, depth 1 fills the unobserved
    entries with ~0 (error ~0.8), nuclear norm errs by a few 1e-2, depth 2 a little less (at small init),
    depth 3 recovers W* almost exactly (~2e-5); effective rank falls with depth.
    Command: `sims run dmf-completion --set depth=3` (default preset, ~15 s plus the baseline on 2 CPU
    cores); claims: `sims reproduce arora2019`.
    """
    return build_task(members, env, sensing=False)


@register("dmf-sensing", Config, presets=SENSING_PRESETS, cpu_runtime="~15 s (depth 3) + ~20 s baseline",
          figures=figures, memory=memory, memberwise=("init_scale", "lr"), metrics=METRICS)
def build_sensing(members: Members, env: Env) -> Task:
    """Matrix sensing from Gaussian measurements by a depth-N factorisation against nuclear norm (Arora et al. 2019).

    Shows: as for completion, deeper factorisations reach lower effective rank and lower reconstruction
    error than nuclear-norm minimisation on the same measurements y_i = <A_i, W*>.
    Command: `sims run dmf-sensing --set depth=3`.
    """
    return build_task(members, env, sensing=True)


@register("dmf-dynamics", DynamicsConfig, presets=DYNAMICS_PRESETS, cpu_runtime="~20 s (depth 3)",
          figures=dynamics_figures, memory=memory, memberwise=("init_scale", "lr", "weight_decay", "init"), metrics=METRICS)
def build_dynamics(members: Members, env: Env) -> Task:
    """Singular values of a deep factorisation under plain GD: learned one at a time (Arora et al. 2019, Thm 3).

    Shows: the singular values of W rise one after another, with sharper jumps at larger depth; their
    measured speed matches d sigma_r/dt = -N (sigma_r^2)^{1-1/N} <grad L(W), u_r v_r^T>; D_j = W_{j+1}^T W_{j+1}
    - W_j W_j^T drifts from its init only by the O(lr) error of GD (metric `balance_drift`); from balanced
    factors k end-to-end updates land on W(s + k) (`end_to_end_check`). Keeps parameter snapshots at
    `velocity_checks` steps s, at s + 1 and at s + e2e_span. `init`: Gaussian (default) or the authors' identity.
    Command: `sims run dmf-dynamics --set depth=3 [--set init=identity --set init_scale=1e-3]`;
    claims: `sims reproduce arora2019`.
    """
    return build_task(members, env, sensing=False, snapshot_steps=_velocity_snapshots(members[0]),
                  identity=[v == "identity" for v in members.values("init")])
