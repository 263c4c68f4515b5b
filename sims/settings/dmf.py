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

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from theory import matrices

from ..config import ConfigError, TrainConfig, param
from ..data import per_member
from ..engine import Task
from ..nn import DeepMatrixFactorization, make_generators
from ..optim import ScalarRMSprop
from ..registry import register

__all__ = ["Config", "DynamicsConfig", "low_rank_matrix", "completion_data", "sensing_data", "squared_loss",
           "velocity_check", "sweep_figure", "singular_values_figure", "effective_rank_figure", "LC_NOTE"]

LC_NOTE = "not applicable: the model is linear (no piecewise-linear sites)"
RMS_ALPHA, RMS_EPS = 0.99, 1e-4  # the authors' GroupRMSprop constants


# data ----------------------------------------------------------------------------------------------------------

def low_rank_matrix(n: int, rank: int, *, generator: torch.Generator) -> torch.Tensor:
    """W* = U V^T / sqrt(r) with U, V ~ N(0, 1)^{n x r}, rescaled to ||W*||_F = n: [n, n] float64."""
    U = torch.randn(n, rank, generator=generator, dtype=torch.float64)
    V = torch.randn(n, rank, generator=generator, dtype=torch.float64)
    W = U @ V.T / math.sqrt(rank)
    return W * (n / W.norm())


def completion_data(n: int, rank: int, n_obs: int, *, generator: torch.Generator):
    """W* [n, n], observed positions [n_obs, 2] (row, col; uniform without replacement), values [n_obs].

    The positions are the first n_obs of one random permutation of the n^2 entries, so for a fixed
    generator seed a larger n_obs observes a superset of the entries.
    """
    W = low_rank_matrix(n, rank, generator=generator)
    flat = torch.randperm(n * n, generator=generator)[:n_obs]
    return W, torch.stack([flat // n, flat % n], dim=1), W.reshape(-1)[flat]


def sensing_data(n: int, rank: int, n_obs: int, *, generator: torch.Generator):
    """W* [n, n], measurement matrices A [n_obs, n, n] with N(0, 1) / n entries, y_i = <A_i, W*> [n_obs]."""
    W = low_rank_matrix(n, rank, generator=generator)
    A = torch.randn(n_obs, n, n, generator=generator, dtype=torch.float64) / n
    return W, A, (A * W).sum(dim=(1, 2))


def squared_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the observations per member: out, y [E, k] -> [E]."""
    return (out - y).pow(2).mean(dim=1)


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
    loss_threshold: float = param(1e-6, "a member stops once its training loss is <= this, checked at evaluations "
                                  "(0 = run the whole budget)", low=0.0)
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
    n_evals: int = param(200, "number of evaluation points (log-spaced plus linear, with 0 and the last step)", low=2)
    velocity_checks: int = param(9, "parameters are kept at steps s and s+1 for this many s spread evenly over "
                                 "the run, to measure singular-value velocities", low=0)


# build ---------------------------------------------------------------------------------------------------------

def _build(cfg: Config, seeds: list[int], device: torch.device, dtype: torch.dtype, *, sensing: bool,
           snapshot_steps: tuple[int, ...] = ()) -> Task:
    if not sensing and cfg.n_obs > cfg.n * cfg.n:
        raise ConfigError(f"n_obs={cfg.n_obs} exceeds the n^2 = {cfg.n * cfg.n} entries; choose n_obs <= n^2")
    gens = make_generators(seeds, "data")
    make = sensing_data if sensing else completion_data
    W_star, x, y = per_member(make, gens, cfg.n, cfg.rank, cfg.n_obs, dtype=dtype, device=device)
    model = DeepMatrixFactorization(cfg.n, cfg.depth, make_generators(seeds, "init"), init_scale=cfg.init_scale,
                                    dtype=dtype).to(device)
    star_norm2 = W_star.pow(2).sum(dim=(1, 2))  # [E]

    def evaluate(m: DeepMatrixFactorization) -> dict[str, torch.Tensor]:
        W = m.matrix()  # [E, n, n]
        sv = torch.linalg.svdvals(W)  # [E, n], descending
        Wn = W.detach().double().cpu().numpy()
        factors = [f.detach().double().cpu().numpy() for f in m.factors]
        erank = [matrices.effective_rank(w) for w in Wn]
        gap = [matrices.balancedness_gap([f[e] for f in factors]) for e in range(len(Wn))]
        out = dict(
            train_loss=squared_loss(m(x), y),
            recon_error=(W - W_star).pow(2).sum(dim=(1, 2)) / star_norm2,
            effective_rank=torch.tensor(erank, dtype=W.dtype, device=W.device),
            nuclear_norm=sv.sum(dim=1),
            balancedness=torch.tensor(gap, dtype=W.dtype, device=W.device),
        )
        out.update({f"sv_{i + 1}": sv[:, i] for i in range(min(cfg.n_sv, cfg.n))})
        return out

    make_optimizer = None
    if cfg.optimizer == "rmsprop":
        def make_optimizer(params):
            return ScalarRMSprop(params, lr=cfg.lr, alpha=RMS_ALPHA, eps=RMS_EPS)

    stop = (lambda metrics: metrics["train_loss"] <= cfg.loss_threshold) if cfg.loss_threshold > 0 else None
    summary = dict(lc=LC_NOTE, task="sensing" if sensing else "completion",
                   ground_truth=_matrix_facts(W_star.double().cpu().numpy()))
    if cfg.baseline:
        summary["nuclear_norm_baseline"] = _baseline(cfg, W_star, x, y, sensing)
    return Task(model=model, x=x, y=y, loss=squared_loss, evaluate=evaluate, make_optimizer=make_optimizer,
                summary=summary, stop=stop, snapshot_steps=snapshot_steps)


def _matrix_facts(Ws: np.ndarray) -> dict:
    return dict(nuclear_norm=[float(np.linalg.svd(w, compute_uv=False).sum()) for w in Ws],
                effective_rank=[matrices.effective_rank(w) for w in Ws])


def _baseline(cfg: Config, W_star, x, y, sensing: bool) -> dict:
    """Nuclear-norm minimisation on each member's observations: errors, ranks, norms, solve times."""
    Ws, X_obs, Y = (t.detach().cpu().numpy() for t in (W_star.double(), x, y.double()))
    errors, solve_s, solutions = [], [], []
    for e in range(len(Ws)):
        t0 = time.time()
        if sensing:
            X = matrices.nuclear_norm_sensing(X_obs[e].astype(np.float64), Y[e], tol=cfg.baseline_tol,
                                              solver=cfg.baseline_solver)
        else:
            X = matrices.nuclear_norm_completion((cfg.n, cfg.n), X_obs[e][:, 0], X_obs[e][:, 1], Y[e],
                                                 tol=cfg.baseline_tol, solver=cfg.baseline_solver)
        solve_s.append(round(time.time() - t0, 2))
        errors.append(float(np.sum((X - Ws[e]) ** 2) / np.sum(Ws[e] ** 2)))
        solutions.append(X)
    return dict(solver=cfg.baseline_solver, tol=cfg.baseline_tol, recon_error=errors, solve_s=solve_s,
                **_matrix_facts(np.stack(solutions)))


def _velocity_snapshots(cfg: DynamicsConfig) -> tuple[int, ...]:
    """Steps s and s+1 for `velocity_checks` values of s spread evenly over (0, steps)."""
    k = cfg.velocity_checks
    starts = sorted({int(round(i * cfg.steps / (k + 1))) for i in range(1, k + 1)} - {cfg.steps})
    return tuple(sorted({t for s in starts for t in (s, s + 1) if t <= cfg.steps}))


# figures -------------------------------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _sv_names(run) -> list[str]:
    return sorted((m for m in run.metric_names if m.startswith("sv_")), key=lambda m: int(m[3:]))


def _plot_singular_values(ax, run, *, k: int | None = None, member: int = 0) -> None:
    cmap = _plt().get_cmap("viridis")
    names = _sv_names(run)[:k]
    for i, name in enumerate(names):
        ax.plot(run.steps, run.metric(name)[:, member], color=cmap(i / max(1, len(names) - 1)),
                lw=1.2, label=f"sigma_{i + 1}" if i < 5 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("singular value")
    ax.grid(alpha=0.3)


def _baseline_error(run) -> float | None:
    base = run.summary.get("nuclear_norm_baseline")
    return float(np.mean(base["recon_error"])) if base else None


def figures(run) -> list[Path]:
    """Training loss and reconstruction error (with the nuclear-norm baseline), singular values, effective rank."""
    plt, cfg = _plt(), run.config
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    ax = axes[0]
    for metric, label in (("train_loss", "training loss"), ("recon_error", "reconstruction error")):
        v = run.metric(metric)
        line, = ax.plot(run.steps, np.nanmean(v, axis=1), label=label)
        if v.shape[1] > 1:
            ax.fill_between(run.steps, np.nanmin(v, axis=1), np.nanmax(v, axis=1), color=line.get_color(), alpha=0.2)
    base = _baseline_error(run)
    if base is not None:
        ax.axhline(base, color="k", ls="--", lw=0.8, label="nuclear norm (reconstruction)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    _plot_singular_values(axes[1], run, k=cfg.n_sv)
    axes[1].legend(fontsize=7)
    axes[1].set_title("top singular values (member 0)", fontsize=9)
    v = run.metric("effective_rank")
    axes[2].plot(run.steps, np.nanmean(v, axis=1))
    axes[2].set_yscale("log")
    axes[2].set_ylabel("effective rank")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    task = run.summary.get("task", "completion")
    fig.suptitle(f"{run.sim_name}: {task}, n={cfg.n}, rank {cfg.rank}, {cfg.n_obs} observations, depth {cfg.depth}, "
                 f"init {cfg.init_scale:g}, {cfg.optimizer} lr {cfg.lr:g}")
    fig.tight_layout()
    path = run.dir / "figures" / f"depth{cfg.depth}-obs{cfg.n_obs}-init{cfg.init_scale:.0e}-lr{cfg.lr:.0e}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def dynamics_figures(run) -> list[Path]:
    """Singular values against step (linear axes) and measured against predicted singular-value velocities."""
    plt, cfg = _plt(), run.config
    check = velocity_check(run) if cfg.velocity_checks else None
    fig, axes = plt.subplots(1, 2 if check else 1, figsize=(11 if check else 5.5, 4.2), squeeze=False)
    _plot_singular_values(axes[0, 0], run, k=cfg.n_sv)
    axes[0, 0].legend(fontsize=7)
    axes[0, 0].set_title(f"depth {cfg.depth}: top {cfg.n_sv} singular values (member 0)", fontsize=9)
    if check:
        ax = axes[0, 1]
        p, m = np.abs(check["predicted"]), np.abs(check["measured"])
        ax.loglog(p, m, "o", ms=3, alpha=0.6, label="sigma_r at snapshot steps")
        ax.loglog(p[check["used"]], m[check["used"]], "o", ms=3, color="C3", label="checked")
        lim = [max(1e-12, p.min()), p.max()]
        ax.loglog(lim, lim, "k--", lw=0.8, label="measured = predicted")
        ax.set_xlabel("|d sigma/dt| predicted (Arora et al. 2019, Thm 3)")
        ax.set_ylabel("|d sigma/dt| measured (one GD step / lr)")
        ax.set_title(f"max relative error {check['max_rel_error']:.2g} over the checked", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{run.sim_name}: n={cfg.n}, rank {cfg.rank}, {cfg.n_obs} observations, depth {cfg.depth}, "
                 f"init {cfg.init_scale:g}, GD lr {cfg.lr:g}")
    fig.tight_layout()
    path = run.dir / "figures" / f"depth{cfg.depth}-init{cfg.init_scale:.0e}-lr{cfg.lr:.0e}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def sweep_figure(runs, path: Path) -> Path:
    """Final reconstruction error against the number of observations, one line per depth, with nuclear norm.

    `runs`: dmf-completion runs (any mix of depths and n_obs); lines are means over members with a
    min-max band; the baseline comes from the runs that solved it.
    """
    plt = _plt()
    by_depth: dict[int, dict[int, np.ndarray]] = {}
    base: dict[int, list[float]] = {}
    for r in runs:
        by_depth.setdefault(r.config.depth, {})[r.config.n_obs] = r.metric("recon_error")[-1]
        if r.summary.get("nuclear_norm_baseline"):
            base[r.config.n_obs] = r.summary["nuclear_norm_baseline"]["recon_error"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for depth in sorted(by_depth):
        obs = sorted(by_depth[depth])
        v = [by_depth[depth][k] for k in obs]
        line, = ax.plot(obs, [np.mean(a) for a in v], "o-", label=f"depth {depth}")
        ax.fill_between(obs, [np.min(a) for a in v], [np.max(a) for a in v], color=line.get_color(), alpha=0.2)
    if base:
        obs = sorted(base)
        ax.plot(obs, [np.mean(base[k]) for k in obs], "ks--", label="nuclear norm")
    ax.set_yscale("log")
    ax.set_xlabel("number of observed entries")
    ax.set_ylabel("reconstruction error ||W - W*||_F^2 / ||W*||_F^2")
    any_run = next(iter(runs))
    ax.set_title(f"matrix completion, n={any_run.config.n}, rank {any_run.config.rank}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def singular_values_figure(runs, path: Path, *, k: int = 10) -> Path:
    """Top-k singular values against step, one panel per depth (member 0 of each run)."""
    plt = _plt()
    runs = sorted(runs, key=lambda r: r.config.depth)
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), squeeze=False)
    for ax, r in zip(axes[0], runs):
        _plot_singular_values(ax, r, k=k)
        ax.set_title(f"depth {r.config.depth}", fontsize=10)
    axes[0, 0].legend(fontsize=7)
    c = runs[0].config
    fig.suptitle(f"singular values of W during GD (completion, n={c.n}, rank {c.rank}, {c.n_obs} entries, "
                 f"init {c.init_scale:g}, lr {c.lr:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def effective_rank_figure(runs, path: Path) -> Path:
    """Effective rank of W against step, one line per run (labelled by depth), mean over members."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for r in sorted(runs, key=lambda r: r.config.depth):
        ax.plot(r.steps, np.nanmean(r.metric("effective_rank"), axis=1), label=f"depth {r.config.depth}")
    base = [np.mean(r.summary["nuclear_norm_baseline"]["effective_rank"]) for r in runs
            if r.summary.get("nuclear_norm_baseline")]
    if base:
        ax.axhline(base[0], color="k", ls="--", lw=0.8, label="nuclear norm")
    truth = np.mean(runs[0].summary["ground_truth"]["effective_rank"])
    ax.axhline(truth, color="0.5", ls=":", lw=0.8, label="ground truth W*")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("effective rank of W (mean over seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    c = runs[0].config
    ax.set_title(f"completion, n={c.n}, rank {c.rank}, {c.n_obs} entries, init {c.init_scale:g}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


# theory against simulation -------------------------------------------------------------------------------------

def velocity_check(run, *, top: int | None = None, min_fraction: float = 0.1, max_gap: float = 1e-2) -> dict:
    """Measured singular-value velocities of a dmf-dynamics run against `theory.matrices.singular_value_velocity`.

    At each snapshot pair (s, s+1) and member: measured = (sigma_r(W(s+1)) - sigma_r(W(s))) / lr, predicted =
    -N (sigma_r^2)^{1-1/N} <grad L(W(s)), u_r v_r^T> with grad L the gradient of the training loss in W (one GD
    step of size lr is time lr of gradient flow). Checked, in the theorem's regime: snapshots whose factors are
    balanced (relative gap `theory.matrices.balancedness_gap` <= `max_gap`; near a random init it is ~1), and
    among the top `top` (default: the rank of W*) singular values those whose predicted speed is at least
    `min_fraction` of the fastest at that snapshot (the slow ones move by round-off-sized amounts).
    Returns arrays `step`, `member`, `r`, `gap`, `predicted`, `measured`, `rel_error`, `used` (bool), and
    `max_rel_error` over the used ones (NaN if none).
    """
    cfg = run.config
    if cfg.optimizer != "sgd" or cfg.momentum or cfg.weight_decay or cfg.batch_size:
        raise ValueError("the velocity check needs plain full-batch GD (optimizer sgd, no momentum, no weight "
                         f"decay, batch_size 0); got optimizer {cfg.optimizer!r}")
    top = min(top or cfg.rank, cfg.n)
    task = _build(dataclasses.replace(cfg, baseline=False), run.seeds, torch.device("cpu"), torch.float64,
                  sensing=run.summary.get("task") == "sensing")
    model = task.model
    snaps = {int(p.stem.split("-")[1]): p for p in (run.dir / "snapshots").glob("step-*.pt")}
    rows = []
    for s in sorted(snaps):
        if s + 1 not in snaps:
            continue
        W0, factors = _state_at(model, snaps[s])
        W1, _ = _state_at(model, snaps[s + 1])
        W0.requires_grad_(True)
        grad, = torch.autograd.grad(squared_loss(model.read(W0, task.x), task.y).sum(), W0)
        for e in range(W0.shape[0]):
            w0, w1 = W0[e].detach().numpy(), W1[e].numpy()
            gap = matrices.balancedness_gap([f[e] for f in factors])
            pred = matrices.singular_value_velocity(w0, grad[e].numpy(), cfg.depth)[:top]
            meas = (np.linalg.svd(w1, compute_uv=False) - np.linalg.svd(w0, compute_uv=False))[:top] / cfg.lr
            used = (np.abs(pred) >= min_fraction * np.abs(pred).max()) & (gap <= max_gap)
            rows += [(s, e, r, gap, pred[r], meas[r], used[r]) for r in range(top)]
    if not rows:
        raise ValueError(f"{run.dir} has no snapshot pairs (s, s+1); run dmf-dynamics with velocity_checks >= 1")
    step, member, r, gap, pred, meas, used = (np.array(c) for c in zip(*rows))
    used = used.astype(bool)
    rel = np.abs(meas - pred) / np.abs(pred)
    return dict(step=step, member=member, r=r, gap=gap, predicted=pred, measured=meas, rel_error=rel, used=used,
                max_rel_error=float(rel[used].max()) if used.any() else math.nan)


def _state_at(model: DeepMatrixFactorization, path: Path) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Load a snapshot into `model`: the end-to-end matrix [E, n, n] (float64) and the factors as numpy."""
    from ..store import load_checkpoint

    model.load_state_dict(load_checkpoint(path, torch.device("cpu"))["model"])
    with torch.no_grad():
        return model.matrix().double().clone(), [f.detach().double().numpy() for f in model.factors]


# registered simulations ----------------------------------------------------------------------------------------

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
    "ci": dict(_SMALL, depth=3, lr=0.5, steps=3000, velocity_checks=3),
    "default": dict(),
    "paper": dict(lr=0.01, steps=1_500_000, n_evals=300),  # the authors' GD lr: 50x the default's steps
}


@register("dmf-completion", Config, presets=COMPLETION_PRESETS, cpu_runtime="~15 s (depth 3) + ~6 s baseline",
          figures=figures)
def build_completion(cfg: Config, seeds: list[int], device: torch.device, dtype: torch.dtype) -> Task:
    """Matrix completion by a depth-N factorisation against nuclear-norm minimisation (Arora et al. 2019).

    Shows: from 2000 of the 10^4 entries of a rank-5 100 x 100 matrix, depth 1 fills the unobserved
    entries with ~0 (error ~0.8), nuclear norm errs by a few 1e-2, depth 2 a little less (at small init),
    depth 3 recovers W* almost exactly (~2e-5); effective rank falls with depth.
    Command: `sims run dmf-completion --set depth=3` (default preset, ~15 s plus the baseline on 2 CPU
    cores); claims: `sims reproduce arora2019`.
    """
    return _build(cfg, seeds, device, dtype, sensing=False)


@register("dmf-sensing", Config, presets=SENSING_PRESETS, cpu_runtime="~15 s (depth 3) + ~20 s baseline",
          figures=figures)
def build_sensing(cfg: Config, seeds: list[int], device: torch.device, dtype: torch.dtype) -> Task:
    """Matrix sensing from Gaussian measurements by a depth-N factorisation against nuclear norm (Arora et al. 2019).

    Shows: as for completion, deeper factorisations reach lower effective rank and lower reconstruction
    error than nuclear-norm minimisation on the same measurements y_i = <A_i, W*>.
    Command: `sims run dmf-sensing --set depth=3`.
    """
    return _build(cfg, seeds, device, dtype, sensing=True)


@register("dmf-dynamics", DynamicsConfig, presets=DYNAMICS_PRESETS, cpu_runtime="~20 s (depth 3)",
          figures=dynamics_figures)
def build_dynamics(cfg: DynamicsConfig, seeds: list[int], device: torch.device, dtype: torch.dtype) -> Task:
    """Singular values of a deep factorisation under plain GD: learned one at a time (Arora et al. 2019, Thm 3).

    Shows: the singular values of W rise one after another, with sharper jumps at larger depth; their
    measured speed matches d sigma_r/dt = -N (sigma_r^2)^{1-1/N} <grad L(W), u_r v_r^T>; the factors stay
    balanced. Keeps parameter snapshots at `velocity_checks` pairs of consecutive steps.
    Command: `sims run dmf-dynamics --set depth=3`; claims: `sims reproduce arora2019`.
    """
    return _build(cfg, seeds, device, dtype, sensing=False, snapshot_steps=_velocity_snapshots(cfg))
