"""Benign overfitting of the max-margin classifier, reached by gradient descent on the logistic loss
(Chatterji and Long, JMLR 2021; Soudry, Hoffer, Nacson, Gunasekar, Srebro 2018).

Data: the two-cluster mixture x = y~ mu + N(0, I_d), mu = mu_norm e_1, each training label flipped with probability
eta (`sims.data.gaussian_mixture`), n << d. A linear classifier f(x) = <w, x> (no bias), w = 0 at init, trained by
full-batch GD on the mean logistic loss: on separable data its direction converges to the l2 max-margin classifier
(Soudry et al. 2018, Thm 3), which here interpolates every noisy label. Chatterji and Long prove its test error is at
most eta + exp(-c ||mu||^4 / d) when d >> max(||mu||^2 n, n^2 log n) and ||mu||^2 >> log n: it overfits the flipped
labels and still generalises (the constant c is not given; the regime here is chosen empirically, see the paper
page). Beyond d ~ 2 n log n every point is a support vector (Hsu, Muthukumar, Xu 2021) and GD's direction gets close
to the max-margin one within a few steps; below it the approach is logarithmically slow.

The max-margin classifier of each member is solved once (`theory.max_margin.l2_max_margin`, kept in the run's cache).
Test errors are exact, not sampled: for this mixture the error of sign <w, x> is eta + (1 - 2 eta) Phi(-<w, mu>/||w||)
(`sims.metrics.mixture_error`). A trained simulation (the GD trajectory is the point); `noise_rate` and `mu_norm` are
member-wise, so sweeps over flip rates or cluster separations run as one ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ... import metrics, plots, style
from ...config import Members, TrainConfig, param
from ...data import for_members, gaussian_mixture
from ...engine import Env, Task
from ...nn import EnsembleLinear, EnsembleSequential, make_generators
from ...registry import register
from ..common import logistic_loss, sign_accuracy


@dataclass(frozen=True)
class Config(TrainConfig):
    """Two-cluster Gaussian mixture with label flips in high dimension; a linear classifier by full-batch GD."""

    n: int = param(100, "training points per member", low=1)
    d: int = param(5000, "input dimension", low=1)
    mu_norm: float = param(12.0, "norm of the cluster mean mu = mu_norm e_1 (member-wise)", low=0.0)
    noise_rate: float = param(0.1, "probability eta that a training label is flipped (member-wise)", low=0.0,
                              high=0.5, high_open=True)
    lr: float = param(0.02, "GD step on the mean logistic loss (stable below 8 n / lambda_max(X X^T))", low=0.0,
                      low_open=True)
    steps: int = param(1000, "number of GD steps", low=0)
    n_evals: int = param(40, "number of evaluation points (log-spaced plus linear, with 0 and the last step)", low=2)
    dtype: str = param("float64", "floating-point type (cosines near 1 need float64)", choices=("float32", "float64"))


PRESETS = {
    "ci": dict(n=20, d=400, steps=200, n_evals=12, lr=0.05),
    "default": dict(),
    "paper": dict(n=200, d=40000, mu_norm=20.0, steps=10000, n_evals=80),
}


def max_margin(x: torch.Tensor, y: torch.Tensor) -> dict:
    """Per member: the unit l2 max-margin direction w [E, d], its margin [E] and number of support vectors [E]."""
    from theory.max_margin import l2_max_margin

    fits = [l2_max_margin(xe, ye) for xe, ye in zip(x.numpy(), y.numpy())]
    return dict(w=torch.from_numpy(np.stack([f.w / np.linalg.norm(f.w) for f in fits])),
                margin=torch.tensor([f.margin for f in fits]), support=torch.tensor([len(f.support) for f in fits]))


def figures(run) -> list:
    """gd.png: cosine of GD's direction with the max-margin one, and test error per flip rate, against the step."""
    c = run.config
    fig, axes = plots.figure(3)
    plots.band(axes[0, 0], run.steps, 1 - run.metric("mm_cosine"), "1 - cos(w_t, w_mm)")
    style.reference(axes[0, 0], "cosine 0.99", y=0.01)
    plots.finish(axes[0, 0], "1 - cosine with the max-margin direction (unitless)", steps=run.steps, log=True)
    for k, (_, cols) in enumerate(run.members.configurations()):
        eta, mu = run.members[cols[0]].noise_rate, run.members[cols[0]].mu_norm
        plots.band(axes[0, 1], run.steps, run.metric("test_error")[:, cols], f"eta = {eta:g}, ||mu|| = {mu:g}",
                   color=style.color(k))
        axes[0, 1].axhline(eta, color=style.color(k), ls=":", lw=0.8, label=f"eta = {eta:g} (Bayes error)")
    plots.finish(axes[0, 1], "test error on noisy labels (fraction)", steps=run.steps)
    axes[0, 1].set_ylim(-0.02, 0.75)
    axes[0, 1].legend(fontsize=7, loc="upper right", ncol=2)
    plots.band(axes[0, 2], run.steps, run.metric("train_acc"), "train accuracy (noisy labels)")
    plots.band(axes[0, 2], run.steps, run.metric("margin_ratio"), "min_i y_i <w, x_i> / ||w|| / max margin")
    plots.finish(axes[0, 2], "fit of the noisy labels (fraction; unitless ratio)", steps=run.steps)
    mus = sorted(set(run.members.values("mu_norm")))
    title = f"benign-max-margin: n={c.n}, d={c.d}, ||mu|| in {mus}, lr={c.lr:g}"
    return [plots.save(fig, run.dir / "figures" / "gd.png", title=title)]


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes: the data [E, n, d] in float64 and in the run's dtype, the weights with their copies
    (`sims.memory.PARAM_COPIES`), and one member's l2 max-margin solve (its data and Gram matrix, a few copies)."""
    from ...memory import PARAM_COPIES

    c, E = members[0], len(members)
    return dict(data=E * c.n * c.d * (itemsize + 8), parameters=E * PARAM_COPIES * c.d * itemsize,
                max_margin=8 * (4 * c.n * c.d + 8 * c.n * c.n))


METRICS = {
    "train_acc": "fraction of training points with sign <w, x> = y, noisy labels (fraction)",
    "train_loss": "mean logistic loss on the training points (nats)",
    "mm_cosine": "cosine between w and the member's l2 max-margin direction (unitless, -1 to 1)",
    "test_error": "exact test error of sign <w, x> against noisy labels, eta + (1 - 2 eta) Phi(-<w, mu> / ||w||) "
                  "(fraction)",
    "test_error_clean": "exact test error of sign <w, x> against the clean labels, Phi(-<w, mu> / ||w||) (fraction)",
    "margin_ratio": "min_i y_i <w, x_i> / ||w|| over the max-margin classifier's margin (unitless, 1 at the max "
                    "margin; 0 at w = 0)",
    "weight_norm": "||w||_2 of the linear classifier (weight units)",
}


@register("benign-max-margin", Config, presets=PRESETS, cpu_runtime="~10 s", figures=figures,
          memberwise=("noise_rate", "mu_norm"), memory=memory, metrics=METRICS)
def build(members: Members, env: Env) -> Task:
    """Benign max-margin classification: GD's direction -> l2 max margin, test error ~ flip rate (Chatterji, Long 2021).

    GD on the logistic loss goes to the l2 max-margin classifier, which fits every flipped label and still has test
    error near the flip rate. Shows: the cosine between GD's iterate and the max-margin direction rises above 0.99;
    training accuracy on the noisy labels reaches 1; the test error (exact) ends near eta. Sweep the flip rate with
    `sims sweep benign-max-margin --grid noise_rate=0,0.05,0.1,0.2 --seeds 3` (one ensemble).
    Command: `sims run benign-max-margin --seeds 3` (~15 s on 2 CPU cores); claims: `sims reproduce benign-linear`.
    """
    cfg, dev, dtype = members[0], env.device, env.dtype
    x64, y64 = for_members(lambda c, g: gaussian_mixture(c.n, c.d, c.mu_norm, c.noise_rate, generator=g)[:2],
                           members, make_generators(members.seeds, "data"), dtype=torch.float64)
    mm = env.cache.get("l2_max_margin", lambda: max_margin(x64, y64))
    x, y = x64.to(device=dev, dtype=dtype), y64.to(device=dev, dtype=dtype)
    w_mm, mm_margin = mm["w"].to(device=dev, dtype=dtype), mm["margin"].to(device=dev, dtype=dtype)
    eta, mu = (torch.tensor(members.values(k), dtype=dtype, device=dev) for k in ("noise_rate", "mu_norm"))
    model = EnsembleSequential(len(members), EnsembleLinear(cfg.d, 1, make_generators(members.seeds, "init"),
                                                            bias=False, std=0.0, dtype=dtype)).to(dev)

    def evaluate(m) -> dict[str, torch.Tensor]:
        w = m[0].weight[..., 0]  # [E, d]
        out = m(x)[..., 0]  # [E, n]
        norm = w.norm(dim=1)
        margin = torch.where(norm > 0, (y * out).min(dim=1).values / norm.clamp_min(torch.finfo(dtype).tiny),
                             torch.zeros_like(norm))
        return dict(train_acc=sign_accuracy(out, y), train_loss=logistic_loss(out, y),
                    mm_cosine=metrics.cosine(w, w_mm), test_error=metrics.mixture_error(w, mu, eta),
                    test_error_clean=metrics.mixture_error(w, mu, 0.0), margin_ratio=margin / mm_margin,
                    weight_norm=norm)

    facts = [dict(mm_test_error=float(metrics.mixture_error(w_mm, mu, eta)[e]),
                  mm_margin=float(mm["margin"][e]), n_support=int(mm["support"][e]))
             for e in range(len(members))]
    return Task(model=model, x=x, y=y, loss=logistic_loss, evaluate=evaluate, member_summary=facts)
