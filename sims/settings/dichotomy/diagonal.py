"""Dichotomy of early and late implicit biases: grokking and misgrokking of a diagonal linear net
(Lyu, Jin, Li, Du, Lee, Hu, ICLR 2024).

A diagonal linear net f(x) = <u^2 - v^2, x> started at u = v = alpha / sqrt(2d) 1 (||theta_0|| = alpha, f = 0)
is trained by full-batch GD with weight decay lambda (torch SGD's L2 term: the Euler steps of
d theta / dt = -grad L - lambda theta, continuous time t = lr * step) on the mean logistic loss. With a large
alpha the net first fits the data as its kernel predictor, the l2 max-margin classifier; around
t* = (1/lambda) log alpha the weight decay has shrunk the norm to O(1) and the net moves to the rich
predictor, the l1 max-margin classifier (`theory.dichotomy.diagonal_net_predictors`). On sparse Boolean data
(`dichotomy-sparse`) the l1 classifier generalises and the l2 one does not: grokking at t*. On data with a
large margin along a dense direction (`dichotomy-misgrokking`) it is the other way round: the test accuracy
falls at t* (misgrokking).

Metrics per evaluation and member: train and test accuracy (f = 0 counts 1/2, as in the authors' code),
logistic losses, ||theta||, the normalised margin min_i y_i f(x_i) / ||theta||^2 (f is 2-homogeneous), the
cosines of w = u^2 - v^2 with the l2 and the l1 max-margin classifiers of the member's training set (solved
once, `env.cache`) and with the true direction w*, and (sparse task) the share of ||w||_1 on the k true
coordinates. The net is linear in x: it has no LC probe.

The helpers `predicted_step`, `prediction_lines`, `transition_lines`, `memorisation_step` and `records` are
shared with the completion and modular-addition settings of the same paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ... import metrics, plots, style, transitions
from ...config import ConfigError, Members, TrainConfig, param, with_defaults
from ...data import misgrokking_data, stack_per_member, sparse_boolean
from ...engine import Env, Task
from ...nn import DiagonalNet, make_generators
from ...registry import register
from ..common import logistic_loss, sign_accuracy

__all__ = ["DichotomyConfig", "DiagonalConfig", "SparseConfig", "MisgrokkingConfig", "predicted_step", "prediction_lines",
           "transition_lines", "memorisation_step", "records", "transition_records", "transition_times", "linear_fit",
           "sweep_figure"]

LC_NOTE = "not applicable: the diagonal net is linear in its input (no piecewise-linear sites)"


# shared by the settings of Lyu et al. 2024 -------------------------------------------------------------------

def predicted_step(alpha: float, weight_decay: float, lr: float) -> float | None:
    """The step of the predicted transition t* = (1/lambda) log alpha (`theory.dichotomy.transition_time`),
    t* / lr; None where the theory does not apply (alpha <= 1 or no weight decay)."""
    from theory.dichotomy import time_to_steps, transition_time

    if alpha <= 1 or weight_decay <= 0:
        return None
    return time_to_steps(transition_time(alpha, weight_decay), lr)


def prediction_lines(run, extra: dict | None = None) -> list[tuple[float, str]]:
    """Vertical lines for `curves_figure` at the predicted transition (1/lambda) log alpha of each distinct
    alpha of the run's members, plus `extra` {name: value} lines at (1/lambda) log value (e.g. the init norm);
    only those inside the run."""
    c = run.config
    alphas = sorted(set(run.members.values("alpha")))
    named = {("alpha" if len(alphas) == 1 else f"alpha ({a:g})"): a for a in alphas}
    named.update(extra or {})
    lines = []
    for name, a in named.items():
        s = predicted_step(a, c.weight_decay, c.lr)
        if s is not None and s <= c.steps:
            lines.append((s, f"(1/lambda) log {name} = {s:.4g} steps"))
    return lines


def transition_lines(run, extra: dict | None = None) -> list[tuple[float, str]]:
    """`prediction_lines` plus the measured transition (member-mean generalisation step of the run's transition
    records), where the records have one."""
    gen = [rec["generalisation_step"] for rec in run.summary.get("transitions") or [] if rec and
           rec.get("generalisation_step") is not None]
    measured = [(float(np.mean(gen)), f"measured transition (mean) = {np.mean(gen):.4g} steps")] if gen else []
    return prediction_lines(run, extra) + measured


def memorisation_step(steps, fitted) -> int | None:
    """The first eval step at which `fitted` (train accuracy, or a 0/1 'train loss below tolerance' curve)
    reaches 1 (`sims.transitions.crossing`); None if it never does."""
    cross = transitions.crossing(steps, fitted, 1.0 - 1e-9)
    return None if cross is None else int(np.asarray(steps)[cross.index])


def records(run, test: np.ndarray, fitted: np.ndarray, lc: dict | None = None) -> list[dict]:
    """Per member: `sims.transitions.record` of the curves test [n_evals, E] (must move towards its final value;
    accuracy or minus log test loss) and fitted [n_evals, E], measured from the member's memorisation step
    (`memorisation_step`), in steps and in continuous time lr * step, with the predicted transition."""
    out = []
    for e, member in enumerate(run.members):
        mem = memorisation_step(run.steps, fitted[:, e])
        rec = transitions.record(run.steps, test=test[:, e], train=fitted[:, e],
                                 lc={k: v[:, e] for k, v in (lc or {}).items()}, start=mem,
                                 time_per_step=member.lr)
        pred = predicted_step(member.alpha, member.weight_decay, member.lr)
        rec.update(predicted_step=pred, predicted_time=None if pred is None else pred * member.lr)
        out.append(rec)
    return out


# configs -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DichotomyConfig(TrainConfig):
    """The fields of every setting of Lyu et al. 2024: the setting's init times alpha, full-batch GD with weight decay."""

    alpha: float = param(128.0, "init scale alpha: the setting's initialisation times alpha (may differ between the "
                                "members of one ensemble where the setting allows it)", low=0.0, low_open=True)
    lr: float = param(0.2, "learning rate of full-batch GD (continuous time t = lr * step)", low=0.0, low_open=True)
    weight_decay: float = param(0.01, "weight decay lambda: SGD's L2 term, loss + (lambda / 2) ||theta||^2",
                                low=0.0)

    def check(self) -> None:
        if self.optimizer != "sgd" or self.momentum != 0 or self.batch_size != 0:
            raise ConfigError("the dichotomy theory is about full-batch GD with weight decay: use optimizer=sgd, "
                              f"momentum=0, batch_size=0 (got {self.optimizer}, {self.momentum}, {self.batch_size})")


@dataclass(frozen=True)
class DiagonalConfig(with_defaults(DichotomyConfig, steps=4000, n_evals=120)):
    """Diagonal linear net f(x) = <u^2 - v^2, x> from u = v = alpha / sqrt(2d) 1 (||theta_0|| = alpha), GD with
    weight decay. float32 (the default) gives the float64 curves to 3-4 digits here at half the memory traffic."""

    d: int = param(10000, "input dimension", low=1)
    n: int = param(256, "training points per member", low=1)
    n_test: int = param(2000, "test points per member", low=1)
    max_margin: bool = param(True, "solve the l2 and l1 max-margin classifiers of each training set (cosine "
                                   "metrics; cached in the run directory)")


@dataclass(frozen=True)
class SparseConfig(DiagonalConfig):
    """Sparse Boolean classification: x uniform on {-1, +1}^d, y = sign of a k-sparse +-1 combination."""

    k: int = param(3, "number of relevant coordinates (odd, so the label is never a tie)", low=1)

    def check(self) -> None:
        super().check()
        if self.k % 2 == 0 or self.k > self.d:
            raise ConfigError(f"k must be odd and at most d = {self.d}; got k={self.k}")


@dataclass(frozen=True)
class MisgrokkingConfig(with_defaults(DiagonalConfig, d=30000, n=32, n_test=1000, lr=0.5, steps=12000)):
    """Gaussian data with a gap gamma along a dense unit direction w*: x = z + y (gamma / 2) w*."""

    gamma: float = param(20.0, "gap between the classes along w* (the paper's 25 at d = 1e5; at d = 3e4 the l1 "
                               "classifier of gamma = 25 reaches 0.61-0.72, of gamma = 20 0.59-0.66)", low=0.0)


SPARSE_PRESETS = {
    "ci": dict(d=1000, n=128, n_test=1000, lr=1.0, steps=600, n_evals=60),
    "default": dict(),
    "paper": dict(d=100000, n_test=10000, lr=0.01, weight_decay=1e-3, steps=1_000_000, n_evals=400),
}
MISGROKKING_PRESETS = {
    "ci": dict(d=5000, gamma=8.0, weight_decay=0.02, steps=2000, n_evals=60),
    "default": dict(),
    "paper": dict(d=100000, gamma=25.0, n_test=10000, lr=0.01, weight_decay=1e-3, steps=1_000_000, n_evals=400),
}


# build -------------------------------------------------------------------------------------------------------

def _baselines(env: Env, x, y, xt, yt) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Unit l2 and l1 max-margin directions [E, d] of each training set (cached) and their test accuracies."""
    w_l2 = env.cache.get("l2_max_margin", lambda: metrics.max_margin_directions(x, y, norm="l2"))
    w_l1 = env.cache.get("l1_max_margin", lambda: metrics.max_margin_directions(x, y, norm="l1"))
    w_l2, w_l1 = (w.to(device=x.device, dtype=x.dtype) for w in (w_l2, w_l1))
    acc = {name: sign_accuracy(torch.einsum("etd,ed->et", xt, w), yt, tie=0.5).tolist()
           for name, w in (("l2", w_l2), ("l1", w_l1))}
    facts = [dict(l2_max_margin_test_acc=a2, l1_max_margin_test_acc=a1) for a2, a1 in zip(acc["l2"], acc["l1"])]
    return w_l2, w_l1, facts


def _build(members: Members, env: Env, data) -> Task:
    """data: (x [E, n, d], y [E, n], x_test, y_test, w* [E, d]) on the device."""
    cfg = members[0]
    x, y, xt, yt, w_star = data
    model = DiagonalNet(cfg.d, members.values("alpha"), dtype=env.dtype).to(env.device)
    w_l2 = w_l1 = None
    facts = [{} for _ in members]
    if cfg.max_margin:
        w_l2, w_l1, facts = _baselines(env, x, y, xt, yt)
    k = getattr(cfg, "k", None)

    def evaluate(m: DiagonalNet) -> dict[str, torch.Tensor]:
        w = m.predictor()  # [E, d]
        out, out_t = m(x), m(xt)
        theta2 = m.u.pow(2).sum(dim=1) + m.v.pow(2).sum(dim=1)
        res = dict(train_acc=sign_accuracy(out, y, tie=0.5), test_acc=sign_accuracy(out_t, yt, tie=0.5),
                   train_loss=logistic_loss(out, y), test_loss=logistic_loss(out_t, yt), theta_norm=theta2.sqrt(),
                   margin=(y * out[..., 0]).min(dim=1).values / theta2, cos_truth=metrics.cosine(w, w_star))
        if w_l2 is not None:
            res.update(cos_l2=metrics.cosine(w, w_l2), cos_l1=metrics.cosine(w, w_l1))
        if k is not None:
            l1 = w.abs()
            res["l1_share"] = l1[:, :k].sum(dim=1) / l1.sum(dim=1).clamp_min(torch.finfo(w.dtype).tiny)
        return res

    for f, member in zip(facts, members):
        f["predicted_step"] = predicted_step(member.alpha, member.weight_decay, member.lr)
    return Task(model=model, x=x, y=y, loss=logistic_loss, evaluate=evaluate, summary=dict(lc=LC_NOTE),
                member_summary=facts)


def transition_records(run) -> list[dict]:
    """Per member: the transition of the test accuracy from the memorisation step (train accuracy 1) to the end
    (`records`): grokking on the sparse task, the fall of misgrokking."""
    return records(run, run.metric("test_acc"), run.metric("train_acc"))


def figures(run) -> list:
    """accuracy.png: accuracies (with the max-margin classifiers' test accuracies), cosines, norm and margin."""
    c, facts = run.config, run.member_summaries
    hl = [(float(np.mean([f[f"{nm}_max_margin_test_acc"] for f in facts])), f"{nm} max-margin test accuracy")
          for nm in ("l2", "l1") if all(f"{nm}_max_margin_test_acc" in f for f in facts)]
    task = f"k={c.k}" if hasattr(c, "k") else f"gamma={c.gamma:g}"
    title = f"{run.sim_name}: d={c.d}, n={c.n}, {task}, alpha={c.alpha:g}, lambda={c.weight_decay:g}, lr={c.lr:g}"
    return [plots.curves_figure(
        run,
        [("accuracy (fraction)", [("train_acc", "train"), ("test_acc", "test")]),
         ("cosine / share (unitless)", [("cos_l2", "cos(w, l2 max margin)"), ("cos_l1", "cos(w, l1 max margin)"),
                                        ("cos_truth", "cos(w, w*)"), ("l1_share", "share of ||w||_1 on the k true coordinates")]),
         ("norm and margin (parameter units; output units per squared parameter norm)",
          [("theta_norm", "||theta||"), ("margin", "min_i y_i f(x_i) / ||theta||^2")])],
        run.dir / "figures" / "accuracy.png", title=title, hlines={"accuracy (fraction)": hl},
        log=("norm and margin (parameter units; output units per squared parameter norm)",),
        vlines=transition_lines(run))]


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes: train and test data [E, n + n_test, d] (float64 while drawn), the diagonal net's u, v with their
    copies (`sims.memory.PARAM_COPIES`), evaluation outputs, and the max-margin solves (one member's data in
    float64, about 16 copies inside the solver)."""
    from ...memory import PARAM_COPIES

    c, E = members[0], len(members)
    points = c.n + c.n_test
    return dict(data=E * points * c.d * (itemsize + 8), parameters=E * PARAM_COPIES * 2 * c.d * itemsize,
                activations=4 * E * points * itemsize,
                max_margin=16 * c.n * c.d * 8 if c.max_margin else 0)


METRICS = {
    "train_acc": "fraction of training points with sign f(x) = y, f = 0 counting 1/2 (fraction)",
    "test_acc": "fraction of test points with sign f(x) = y, f = 0 counting 1/2 (fraction)",
    "train_loss": "mean logistic loss on the training points (nats)",
    "test_loss": "mean logistic loss on the test points (nats)",
    "theta_norm": "||theta|| = sqrt(||u||^2 + ||v||^2) (parameter units)",
    "margin": "normalised margin min_i y_i f(x_i) / ||theta||^2 of the 2-homogeneous net (output units per squared "
              "parameter norm)",
    "cos_truth": "cosine between w = u^2 - v^2 and the true direction w* (unitless, -1 to 1)",
    "cos_l2": "max_margin only: cosine between w and the l2 max-margin classifier (unitless, -1 to 1)",
    "cos_l1": "max_margin only: cosine between w and the l1 max-margin classifier (unitless, -1 to 1)",
}
SPARSE_METRICS = {**METRICS, "l1_share": "share of ||w||_1 on the k true coordinates (fraction)"}


NO_LC = "no LC: the diagonal net u^2 - v^2 is linear in its input (no linear regions)"
DIAGONAL = (("cos_l2", "cos(w, l2 max margin): early predictor"), ("cos_l1", "cos(w, l1 max margin): late predictor"),
            ("theta_norm", "||theta|| / max"), ("margin", "normalised margin / max"))
# their rows of `sims atlas`: no LC panel, the early and late predictors instead
SPARSE_ATLAS = dict(label="diagonal net, sparse parity-like task (Lyu et al. 2024)", order=1, no_lc=NO_LC,
                    linear=DIAGONAL)
MISGROKKING_ATLAS = dict(label="diagonal net, misgrokking (Lyu et al. 2024): test accuracy falls", order=2,
                         no_lc=NO_LC, linear=DIAGONAL)


@register("dichotomy-sparse", SparseConfig, presets=SPARSE_PRESETS, cpu_runtime="~1 min + ~20 s max-margin solves",
          figures=figures, memberwise=("alpha", "lr", "weight_decay"), transitions=transition_records, memory=memory, metrics=SPARSE_METRICS, atlas=SPARSE_ATLAS)
def build_sparse(members: Members, env: Env) -> Task:
    """Diagonal linear net on sparse Boolean data: kernel (l2) fit, then grokking to the l1 max margin (Lyu et al. 2024).

    Shows: train accuracy 1 after step 1 with test accuracy that of the l2 max-margin classifier (~0.55);
    around t = (1/lambda) log alpha (minus a constant) the predictor turns from the l2 to the l1 max-margin
    direction (cosines) and the test accuracy rises to the l1 classifier's (1.0).
    Command: `sims run dichotomy-sparse` (default preset, ~1 min on 2 CPU cores); claims: `sims reproduce lyu2024`.
    """
    cfg = members[0]
    data = stack_per_member(sparse_boolean, make_generators(members.seeds, "data"), cfg.n, cfg.n_test, cfg.d, cfg.k,
                            dtype=env.dtype, device=env.device)
    return _build(members, env, data)


@register("dichotomy-misgrokking", MisgrokkingConfig, presets=MISGROKKING_PRESETS,
          cpu_runtime="~1 min + ~10 s max-margin solves", figures=figures, memberwise=("alpha", "lr", "weight_decay"),
          transitions=transition_records, memory=memory, metrics=METRICS, atlas=MISGROKKING_ATLAS)
def build_misgrokking(members: Members, env: Env) -> Task:
    """Diagonal linear net on data with a dense large-margin direction: test accuracy high, then low (Lyu et al. 2024).

    Shows: misgrokking. The kernel (l2 max-margin) predictor finds the dense direction w* and generalises
    (test accuracy ~1); around t = (1/lambda) log alpha the net moves to the l1 max-margin predictor, which
    fits the n = 32 points with a few coordinates, and the test accuracy falls to ~0.65 while the training
    accuracy stays 1. Command: `sims run dichotomy-misgrokking`; claims: `sims reproduce lyu2024`.
    """
    cfg = members[0]
    data = stack_per_member(misgrokking_data, make_generators(members.seeds, "data"), cfg.n, cfg.n_test, cfg.d,
                            cfg.gamma, dtype=env.dtype, device=env.device)
    return _build(members, env, data)


# the alpha x lambda sweep -------------------------------------------------------------------------------------

def transition_times(points) -> list[dict]:
    """Per (grid point, view) of a sweep over alpha and weight_decay, per member: alpha, lambda, the measured
    transition time t (`generalisation_time` of the transition record, continuous time; None if none) and the
    predicted t* = (1/lambda) log alpha."""
    rows = []
    for point, view in points:
        for member, rec in zip(view.members, view.summary.get("transitions") or [None] * view.n_members):
            rows.append(dict(alpha=member.alpha, lam=member.weight_decay, seed=member.seed,
                             t=None if rec is None else rec["generalisation_time"],
                             t_star=math.log(member.alpha) / member.weight_decay))
    return rows


def linear_fit(x, y) -> tuple[float, float, float]:
    """Least-squares line y = slope x + intercept and its R^2 = 1 - SS_res / SS_tot: (slope, intercept, r2)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    res = y - (slope * x + intercept)
    return float(slope), float(intercept), float(1.0 - res @ res / np.sum((y - y.mean()) ** 2))


def sweep_figure(points, path):
    """Measured transition time against the prediction: t against t* = (1/lambda) log alpha (theory: t = t*, or
    t = t* - c / lambda), and lambda t against log alpha (theory: slope 1) with the least-squares line."""
    points = list(points)
    rows = [r for r in transition_times(points) if r["t"] is not None]
    fig, axes = plots.figure(2, panel=(5.4, 4.4))
    left, right = axes[0]
    slope, icpt, r2 = linear_fit([math.log(r["alpha"]) for r in rows], [r["lam"] * r["t"] for r in rows])
    for k, lam in enumerate(sorted({r["lam"] for r in rows})):
        sel = [r for r in rows if r["lam"] == lam]
        la = np.array([math.log(r["alpha"]) for r in sel])
        left.plot([r["t_star"] for r in sel], [r["t"] for r in sel], "o", color=style.color(k),
                  label=f"lambda = {lam:g}")
        left.plot(la / lam, (la + icpt) / lam, "-", color=style.color(k), lw=0.8, label=f"fit, lambda = {lam:g}")
        right.plot(la, lam * np.array([r["t"] for r in sel]), "o", color=style.color(k), label=f"lambda = {lam:g}")
    top = max(r["t_star"] for r in rows)
    left.plot([0, top], [0, top], label="t = (1/lambda) log alpha", **style.reference_style(left))
    left.set_xlabel("predicted t* = (1/lambda) log alpha (continuous time: lr x steps)")
    plots.finish(left, "measured transition time t = lr * step (continuous time: lr x steps)",
                 title="lines: t = (log alpha - c) / lambda, "
                 f"c = {-icpt:.2f} fitted")
    la = np.linspace(min(math.log(r["alpha"]) for r in rows), max(math.log(r["alpha"]) for r in rows), 2)
    right.plot(la, la + icpt, label="theory: slope 1 (through the fitted offset)", **style.reference_style(right))
    right.plot(la, slope * la + icpt, "k-", lw=0.8, label=f"fit: slope {slope:.3f}, R^2 {r2:.4f}")
    right.set_xlabel("log alpha (unitless)")
    plots.finish(right, "lambda * t, measured (unitless)")
    c = points[0][1].config
    return plots.save(fig, path, title=f"dichotomy-sparse: transition time over alpha x lambda (d={c.d}, n={c.n}, "
                      f"lr={c.lr:g}; t at half the test-accuracy rise from memorisation)")
