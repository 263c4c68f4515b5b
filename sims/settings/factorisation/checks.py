"""Deep-linear theory against a run: the singular-value velocity (Arora et al. 2019, Theorem 3) and the
end-to-end update (Arora et al. 2018, Theorem 1) evaluated at a run's snapshots and compared with one measured
gradient step. Used by the dmf-dynamics figure and by the claims of `sims.claims.arora2019`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from theory import matrices

from ... import metrics
from ...config import Members
from ...engine import Env, Task
from ..common import squared_loss

__all__ = ["velocity_check", "end_to_end_check"]


def _check_inputs(run, what: str):
    """The training data of the viewed members (rebuilt from their seeds), the positions (in the view) of the
    members trained by plain GD and their indices in the run's ensemble, and the snapshot steps (a set).
    Raises unless the run is full-batch SGD without momentum and some member has no weight decay."""
    from . import dmf  # dmf draws its figure with velocity_check: imported here, not at the top

    cfg = run.config
    plain = [e for e, m in enumerate(run.members) if m.weight_decay == 0]
    if cfg.optimizer != "sgd" or cfg.momentum or cfg.batch_size or not plain:
        raise ValueError(f"the {what} needs plain full-batch GD (optimizer sgd, no momentum, batch_size 0, a member "
                         f"without weight decay); got optimizer {cfg.optimizer!r}, momentum {cfg.momentum}, "
                         f"batch_size {cfg.batch_size}, weight decay {run.members.values('weight_decay')}")
    members = Members(dataclasses.replace(m, baseline=False) for m in run.members)
    task = dmf.build_task(members, Env(torch.device("cpu"), torch.float64), sensing=run.summary.get("task") == "sensing")
    idx = list(getattr(run, "idx", range(len(members))))  # a RunView holds some members of its run's ensemble
    snaps = set(run.snapshots())
    return task, plain, [idx[e] for e in plain], snaps


def _loss_grad(task: Task, W: torch.Tensor, members: list[int]) -> torch.Tensor:
    """Gradient of the training loss of members `members` of `task` in their end-to-end matrices W [k, n, n]
    (float64): [k, n, n]."""
    W = W.detach().requires_grad_(True)
    grad, = torch.autograd.grad(squared_loss(task.model.read(W, task.x[members]), task.y[members]).sum(), W)
    return grad


def velocity_check(run, *, top: int | None = None, min_fraction: float = 0.1, max_gap: float = 1e-2) -> dict:
    """Measured singular-value velocities of a dmf-dynamics run against `theory.matrices.singular_value_velocity`.

    At each snapshot pair (s, s+1) and member: `sims.metrics.velocity_rows` with grad L the gradient of the
    training loss in W(s) (one GD step of size lr is time lr of gradient flow). Checked, in the theorem's regime:
    snapshots whose factors are balanced (relative gap <= `max_gap`; near a random init it is ~1), and among
    the top `top` (default: the rank of W*) singular values those whose predicted speed is at least
    `min_fraction` of the fastest at that snapshot (the slow ones move by round-off-sized amounts).
    Returns arrays `step`, `member`, `r`, `gap`, `predicted`, `measured`, `rel_error`, `used` (bool), and
    `max_rel_error` over the used ones (NaN if none).
    """
    cfg = run.config
    task, plain, idx, snaps = _check_inputs(run, "velocity check")
    top = min(top or cfg.rank, cfg.n)
    rows = []
    for s in sorted(snaps):
        if s + 1 not in snaps:
            continue
        W0, factors = _state_at(run, s, idx)
        W1, _ = _state_at(run, s + 1, idx)
        grad = _loss_grad(task, W0, plain)
        for i, e in enumerate(plain):
            if not (torch.isfinite(W0[i]).all() and torch.isfinite(W1[i]).all()):
                continue  # a diverged member: nothing to check
            gap, pred, meas, used = metrics.velocity_rows(W0[i].numpy(), W1[i].numpy(), grad[i].numpy(),
                                                          [f[i] for f in factors], cfg.depth, run.members[e].lr,
                                                          top=top, min_fraction=min_fraction, max_gap=max_gap)
            rows += [(s, e, r, gap, pred[r], meas[r], used[r]) for r in range(top)]
    if not rows:
        raise ValueError(f"{run.dir} has no snapshot pairs (s, s+1); run dmf-dynamics with velocity_checks >= 1")
    step, member, r, gap, pred, meas, used = (np.array(c) for c in zip(*rows))
    used = used.astype(bool)
    rel = np.abs(meas - pred) / np.abs(pred)
    return dict(step=step, member=member, r=r, gap=gap, predicted=pred, measured=meas, rel_error=rel, used=used,
                max_rel_error=float(rel[used].max()) if used.any() else math.nan)


def end_to_end_check(run, *, min_fraction: float = 0.1) -> dict:
    """W(s+k) of a dmf-dynamics run against k steps of the end-to-end update iterated from W(s) (k = e2e_span).

    From each kept W(s): W <- `theory.matrices.end_to_end_update`(W, grad L(W), N, lr) k times, with the
    gradient of the training loss at every iterate, then rel_error = ||W_e2e - W(s+k)||_F / ||W(s+k) - W(s)||_F.
    For balanced factors gradient flow moves W exactly by the continuous end-to-end dynamics (Arora, Cohen,
    Hazan 2018, Thm 1) and GD on the factors follows it up to O(lr) over the k steps; unbalanced factors
    (relative gap ~1, a Gaussian init far from zero) break it at first order. Checked: the starts where W moves
    by at least `min_fraction` of the member's largest move over k steps (late, W is still and the ratio is
    round-off). Returns arrays over the checked (start, member) pairs: `step`, `member`, `gap` (relative
    balancedness gap at s), `moved`, `rel_error`; and `max_rel_error` over them (NaN if none).
    """
    cfg = run.config
    task, plain, idx, snaps = _check_inputs(run, "end-to-end check")
    k = cfg.e2e_span
    starts = [s for s in sorted(snaps) if k and s + k in snaps and s + 1 in snaps]
    if not starts:
        raise ValueError(f"{run.dir} has no snapshot pairs (s, s+k); run dmf-dynamics with e2e_span >= 1 and "
                         "velocity_checks >= 1")
    pairs = {s: (_state_at(run, s, idx), _state_at(run, s + k, idx)[0]) for s in starts}
    moved = {s: (W1 - W0).pow(2).sum(dim=(1, 2)).sqrt().numpy() for s, ((W0, _), W1) in pairs.items()}  # [E]
    largest = np.max(np.stack(list(moved.values())), axis=0)  # [E]
    rows = []
    for s, ((W0, factors), W1) in pairs.items():
        for i, e in enumerate(plain):
            if not (np.isfinite(moved[s][i]) and moved[s][i] >= min_fraction * largest[i]):
                continue
            W = W0[i].numpy()
            for _ in range(k):
                W = matrices.end_to_end_update(W, _loss_grad(task, torch.from_numpy(W)[None], [e])[0].numpy(),
                                               cfg.depth, run.members[e].lr)
            rel = np.linalg.norm(W - W1[i].numpy()) / moved[s][i]
            rows.append((s, e, matrices.balancedness_gap([f[i] for f in factors]), moved[s][i], rel))
    step, member, gap, mv, rel = (np.array(c) for c in zip(*rows)) if rows else [np.array([])] * 5
    return dict(step=step, member=member, gap=gap, moved=mv, rel_error=rel,
                max_rel_error=float(rel.max()) if len(rel) else math.nan)


def _state_at(run, step: int, idx: list[int]) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Members `idx` (of the run's ensemble) of the snapshot at `step`: the end-to-end matrices [E, n, n] (float64)
    and the factors (numpy, [E, n, n])."""
    state = run.snapshot(step)["model"]
    factors = [state[f"factors.{j}"][idx].double() for j in range(len(state))]
    W = factors[0]
    for f in factors[1:]:
        W = torch.bmm(f, W)
    return W, [f.numpy() for f in factors]


# registered simulations ----------------------------------------------------------------------------------------
