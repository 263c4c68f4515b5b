"""Dichotomy of early and late implicit biases in matrix completion (Lyu, Jin, Li, Du, Lee, Hu, ICLR 2024).

W = U U^T - V V^T with U = V = alpha I (W_0 = 0, ||theta_0||_F = alpha sqrt(2d)) is fitted by full-batch GD with
weight decay lambda to a fraction of the entries of the rank-one multiplication table M_ij = i j / d^2 (mean
squared error on the observed entries, the authors' code). Early (kernel phase) W is the minimum-Frobenius-norm
symmetric fit: the observed entries and their mirror images, zero elsewhere, so it fits the training entries
within a few steps while the test loss sits on a plateau; around t = (1/lambda) log alpha the weight decay
has shrunk the parameters to O(1) and W moves to the minimum-nuclear-norm symmetric completion, which recovers
M: the test loss falls by orders of magnitude (`theory.dichotomy.matrix_completion_predictors` gives both).

Metrics per evaluation and member: train and test loss (test: every unobserved entry), nuclear norm and
effective rank of W, ||W||_* / ||W_late||_* and the relative Frobenius distances of W to the late
(minimum-nuclear-norm, cvxpy, cached in the run directory) and early predictors, ||theta||.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ... import metrics
from ...config import Members, param, with_defaults
from ...data import multiplication_table_completion, stack_per_member
from ...engine import Env, Task
from ...nn import SymmetricFactorization, make_generators
from ...plots import curves_figure
from ...registry import register
from ..common import squared_loss
from .diagonal import DichotomyConfig, records, transition_lines

__all__ = ["Config", "fitted", "transition_records"]

LC_NOTE = "not applicable: the factorisation is linear in its input (no piecewise-linear sites)"


@dataclass(frozen=True)
class Config(with_defaults(DichotomyConfig, alpha=10.0, lr=0.3, weight_decay=1e-3, steps=60000, n_evals=150,
                           dtype="float64")):
    """W = U U^T - V V^T from U = V = alpha I (||theta_0||_F = alpha sqrt(2d)) fitted to observed entries of
    M_ij = i j / d^2 by GD with weight decay."""

    d: int = param(50, "matrix size (M, U, V are d x d)", low=2)
    obs_fraction: float = param(0.12, "fraction of the d^2 entries observed (n_obs = round(fraction d^2))",
                                low=0.0, high=1.0, low_open=True, high_open=True)
    fit_tol: float = param(1e-3, "the training entries count as fitted once the train loss is <= fit_tol times its "
                                 "value at init", low=0.0, low_open=True)
    baseline: bool = param(True, "solve the minimum-nuclear-norm symmetric completion (cvxpy) at build time")
    baseline_solver: str = param("SCS", "cvxpy solver of the baseline (Clarabel is exact but slow beyond d ~ 30)",
                                 choices=("SCS", "CLARABEL"))
    baseline_tol: float = param(1e-3, "baseline constraint |X_ij - M_ij| <= tol", low=0.0)

    @property
    def n_obs(self) -> int:
        return max(1, min(self.d * self.d - 1, round(self.obs_fraction * self.d * self.d)))


PRESETS = {
    "ci": dict(d=20, obs_fraction=0.25, alpha=5.0, lr=0.5, weight_decay=3e-3, steps=5000, n_evals=60),
    "default": dict(),
    "paper": dict(d=97, obs_fraction=0.05, lr=0.1, steps=1_000_000, n_evals=400),
}


def _predictors(cfg: Config, pos: torch.Tensor, vals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per member the early (minimum-Frobenius symmetric fit) and late (minimum-nuclear-norm symmetric
    completion) predictors, [E, d, d] float64 each (`theory.dichotomy.matrix_completion_predictors`)."""
    from theory.dichotomy import matrix_completion_predictors

    early, late = [], []
    for p, v in zip(pos.cpu().numpy(), vals.double().cpu().numpy()):
        e, l = matrix_completion_predictors(cfg.d, p[:, 0], p[:, 1], v, tol=cfg.baseline_tol,
                                            solver=cfg.baseline_solver)
        early.append(torch.from_numpy(e))
        late.append(torch.from_numpy(l))
    return torch.stack(early), torch.stack(late)


def _relative_distance(W: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """||W - ref||_F / ||ref||_F per member: [E]."""
    return (W - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1).clamp_min(torch.finfo(W.dtype).tiny)


def fitted(run) -> np.ndarray:
    """[n_evals, E] 0/1: whether the train loss is at most fit_tol times its value at init."""
    loss = run.metric("train_loss")
    return (loss <= run.config.fit_tol * loss[:1]).astype(np.float64)


def transition_records(run) -> list[dict]:
    """Per member: the fall of the test loss (as -log10 test loss, halfway from its value at the memorisation
    step, where the train loss first reaches fit_tol of its initial value, to its final value; `records`)."""
    return records(run, -np.log10(run.metric("test_loss")), fitted(run))


def figures(run) -> list:
    """completion.png: losses, nuclear norm against the minimum and distances to the two predictors, effective rank."""
    c = run.config
    lines = transition_lines(run, extra={"(alpha sqrt(2d))": c.alpha * np.sqrt(2 * c.d)})
    return [curves_figure(
        run,
        [("mean squared error (squared entry units)",
          [("train_loss", "train (observed entries)"), ("test_loss", "test (unobserved)")]),
         ("ratio / relative distance (unitless)", [("nuclear_ratio", "||W||_* / min-nuclear-norm completion's"),
                                                   ("dist_late", "||W - W_late||_F / ||W_late||_F (min nuclear norm)"),
                                                   ("dist_early", "||W - W_early||_F / ||W_early||_F (kernel fit)")]),
         ("effective rank (unitless)", [("effective_rank", "effective rank of W")])],
        run.dir / "figures" / "completion.png", vlines=lines,
        log=("mean squared error (squared entry units)", "effective rank (unitless)"),
        title=f"dichotomy-completion: d={c.d}, {c.n_obs} observed entries, alpha={c.alpha:g}, "
              f"lambda={c.weight_decay:g}, lr={c.lr:g}")]


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes: U, V [E, d, d] with their copies (`sims.memory.PARAM_COPIES`), the product W and the SVD work of
    an evaluation (a few d x d per member), and the nuclear-norm baseline (cvxpy with a PSD block of size 2d, about
    50 copies of d x d in float64)."""
    from ...memory import PARAM_COPIES

    c, E = members[0], len(members)
    square = c.d * c.d
    return dict(parameters=E * PARAM_COPIES * 2 * square * itemsize, evaluation=E * 8 * square * itemsize,
                baseline=50 * square * 8 if c.baseline else 0)


METRICS = {
    "train_loss": "mean squared error of W on the observed entries (squared entry units)",
    "test_loss": "mean squared error of W on every unobserved entry (squared entry units)",
    "nuclear_norm": "||W||_*, the sum of the singular values of W (entry units; NaN once W overflows)",
    "effective_rank": "exp of the entropy of the normalised singular values of W (unitless, 1 to d)",
    "theta_norm": "||theta|| = sqrt(||U||_F^2 + ||V||_F^2) (parameter units)",
    "nuclear_ratio": "baseline only: ||W||_* / that of the minimum-nuclear-norm completion (unitless, 1 at the "
                     "late predictor)",
    "dist_late": "baseline only: ||W - W_late||_F / ||W_late||_F, W_late the minimum-nuclear-norm completion "
                 "(relative, unitless)",
    "dist_early": "baseline only: ||W - W_early||_F / ||W_early||_F, W_early the minimum-Frobenius symmetric fit "
                  "(relative, unitless)",
}


# its row of `sims atlas`: losses (log axis), the distances to the early and late predictors instead of LC
ATLAS = dict(label="matrix completion U U^T - V V^T (Lyu et al. 2024)", order=3, test="test_loss", train="train_loss",
             log=True, no_lc="no LC: a matrix factorisation is linear in its input",
             linear=(("dist_early", "distance to the kernel fit (early)"),
                     ("dist_late", "distance to min nuclear norm (late)"),
                     ("nuclear_ratio", "||W||_* / min-nuclear-norm's")))


@register("dichotomy-completion", Config, presets=PRESETS, cpu_runtime="~30 s + ~20 s nuclear-norm baseline per seed",
          figures=figures, memberwise=("alpha", "lr", "weight_decay"), transitions=transition_records, memory=memory, metrics=METRICS, atlas=ATLAS)
def build(members: Members, env: Env) -> Task:
    """W = U U^T - V V^T on the multiplication table: kernel fit, then the min-nuclear-norm completion (Lyu et al. 2024).

    Shows: the training entries are fitted within a few steps while the test loss stays on a plateau (~0.09 at the
    default); around t = (1/lambda) log(alpha sqrt(2d)) the test loss falls by more than 100x and the nuclear
    norm of W comes within a few % of the minimum-nuclear-norm completion's.
    Command: `sims run dichotomy-completion` (default preset, ~1 min on 2 CPU cores); claims: `sims reproduce lyu2024`.
    """
    cfg, dev, dtype = members[0], env.device, env.dtype
    _, pos, vals, pos_t, vals_t = stack_per_member(multiplication_table_completion,
                                                   make_generators(members.seeds, "data"), cfg.d, cfg.n_obs,
                                                   dtype=dtype, device=dev)
    model = SymmetricFactorization(cfg.d, members.values("alpha"), dtype=dtype).to(dev)
    late = early = None
    facts = [{} for _ in members]
    if cfg.baseline:
        early, late = env.cache.get("completion_predictors", lambda: _predictors(cfg, pos, vals))
        early, late = early.to(device=dev, dtype=dtype), late.to(device=dev, dtype=dtype)
        late_nuc = torch.linalg.svdvals(late).sum(dim=1)  # [E]
        facts = [dict(min_nuclear_norm=float(n), min_nuclear_norm_test_loss=float(t)) for n, t in
                 zip(late_nuc, squared_loss(model.read(late, pos_t), vals_t))]

    def evaluate(m: SymmetricFactorization) -> dict[str, torch.Tensor]:
        W = m.matrix()  # [E, d, d]
        finite = torch.isfinite(W).flatten(1).all(dim=1)  # a diverging member can overflow W before its parameters
        safe = torch.where(finite[:, None, None], W, torch.zeros_like(W))
        nan = torch.full_like(finite, math.nan, dtype=W.dtype)
        nuc = torch.where(finite, torch.linalg.svdvals(safe).sum(dim=1), nan)
        res = dict(train_loss=squared_loss(m.read(W, pos), vals), test_loss=squared_loss(m.read(W, pos_t), vals_t),
                   nuclear_norm=nuc, effective_rank=torch.where(finite, metrics.effective_ranks(safe), nan),
                   theta_norm=(m.U.pow(2).sum(dim=(1, 2)) + m.V.pow(2).sum(dim=(1, 2))).sqrt())
        if late is not None:
            res.update(nuclear_ratio=nuc / late_nuc, dist_late=_relative_distance(W, late),
                       dist_early=_relative_distance(W, early))
        return res

    return Task(model=model, x=pos, y=vals, loss=squared_loss, evaluate=evaluate, summary=dict(lc=LC_NOTE),
                member_summary=facts)
