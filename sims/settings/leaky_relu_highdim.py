"""Leaky-ReLU networks on nearly orthogonal data (Frei, Vardi, Bartlett, Srebro, Hu, ICLR 2023).

A two-layer leaky-ReLU net f(x) = sum_j a_j phi(<w_j, x>), phi(z) = max(gamma z, z), second layer
fixed at a_j = +-1/sqrt(m), first layer W ~ N(0, omega^2), trained by full-batch GD on the logistic
loss over a two-cluster Gaussian mixture x = y mu + N(0, I_d) (labels optionally flipped) with
d >> n, so the training points are nearly orthogonal. The paper proves that gradient flow converges
in direction to a KKT point of the parameter max-margin problem, that such a point has rank(W) <= 2
and a linear decision boundary sign f(x) = sign <z, x> that approximates the l2 max-margin linear
classifier, and that GD from a small init reaches small stable rank after one step and keeps it;
a larger init gives a larger stable rank.

Metrics at every evaluation (per member): stable rank ||W||_F^2 / ||W||_2^2 and the top three
singular values of W; train and test accuracy; the normalised margin min_i y_i f(x_i) / ||W||_F
and the KKT residual of the margin problem (`theory.kkt`, degree 1: f is 1-homogeneous in W);
agreement of sign f with the l2 max-margin linear classifier (`theory.max_margin`, solved once per
member at build time) on fresh test points; the cosine between the net's effective linear
direction sum_j a_j w_j and the max-margin direction; LC at train, test and random points.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import ProbedConfig, param
from ..data import gaussian_mixture, per_member
from ..engine import Task
from ..nn import TwoLayerNet, make_generators
from ..plots import _plt, curves_figure, step_axis
from ..registry import register
from .common import logistic_loss, make_probe, sign_accuracy


@dataclass(frozen=True)
class Config(ProbedConfig):
    """Two-cluster Gaussian mixture in high dimension, two-layer leaky-ReLU net, full-batch GD."""

    n: int = param(100, "training points per member", low=1)
    d: int = param(2000, "input dimension", low=2)
    mu_power: float = param(0.26, "cluster-mean norm ||mu|| = d^mu_power (the paper's 0.26 is [unverified])",
                            low=0.0)
    noise_rate: float = param(0.0, "probability that a training (and noisy-test) label is flipped",
                              low=0.0, high=0.5, high_open=True)
    width: int = param(512, "hidden units m (the paper's 512 is [unverified])", low=4)
    slope: float = param(0.1, "leaky-ReLU negative slope gamma, phi(z) = max(gamma z, z) ([unverified] 0.1)",
                         low=0.0, low_open=True, high=1.0, high_open=True)
    init_scale: float = param(1e-4, "std omega of the first-layer weights, W_ij ~ N(0, omega^2)", low=0.0,
                              low_open=True)
    n_test: int = param(1000, "fresh test points per member (accuracy and max-margin agreement)", low=1)
    lr: float = param(0.1, "learning rate of full-batch GD on the mean logistic loss", low=0.0, low_open=True)
    steps: int = param(600, "number of GD steps", low=0)
    n_evals: int = param(40, "number of evaluation points (log-spaced plus linear, with 0 and the last step)",
                         low=2)
    lc_radius: float = param(4.5, "radius r of the LC cross-polytope (input units; ~0.1 sqrt(d), the noise "
                                  "norm is ~sqrt(d))", low=0.0, low_open=True)


PRESETS = {
    "ci": dict(n=20, d=400, width=32, n_test=200, steps=40, n_evals=10, lc_points=20, lc_dirs=8, lc_radius=2.0),
    "default": dict(),
    "paper": dict(d=10000, steps=1000, n_evals=100, n_test=10000, lc_radius=10.0),
}


def singular_values(W: torch.Tensor) -> torch.Tensor:
    """Singular values of each member's W [E, d, m], descending, [E, min(d, m)] (float64).

    From the eigenvalues of the smaller Gram matrix (W^T W or W W^T): 4x faster than an SVD of [d, m]
    and accurate to ~1e-8 s_1 for the values that matter here (the top ones and ||W||_F).
    """
    W = W.double()
    gram = W.transpose(1, 2) @ W if W.shape[1] >= W.shape[2] else W @ W.transpose(1, 2)
    return torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt().flip(1)


def stable_rank(sv: torch.Tensor) -> torch.Tensor:
    """sum_i s_i^2 / s_1^2 from singular values sv [E, k] sorted descending -> [E]."""
    return (sv**2).sum(dim=1) / sv[:, 0].clamp_min(torch.finfo(sv.dtype).tiny) ** 2


def margin_gram(x: torch.Tensor, y: torch.Tensor, W: torch.Tensor, a: torch.Tensor, slope: float,
                xx: torch.Tensor | None = None):
    """Inner products of theta = W and the gradients g_i = grad_W y_i f(x_i), in closed form.

    f(x) = sum_j a_j phi(<w_j, x>) with phi leaky ReLU, so g_i = y_i x_i (a * phi'(x_i W))^T [d, m] and
    <g_i, g_k> = y_i y_k <x_i, x_k> sum_j a_j^2 phi'_ij phi'_kj, <theta, g_i> = y_i f(x_i) (phi'(z) z = phi(z)).
    x [E, n, d], y [E, n], W [E, d, m], a [E, m]; xx [E, n, n] = x x^T if already known. Returns the Gram
    matrix of (theta, g_1, ..., g_n), [E, n+1, n+1], and the margins q [E, n]. Never forms the [n, d, m]
    gradients.
    """
    pre = torch.bmm(x, W)  # [E, n, m]
    dphi = torch.where(pre > 0, torch.ones_like(pre), torch.full_like(pre, slope))  # [E, n, m]
    q = y * torch.einsum("enm,em->en", torch.where(pre > 0, pre, slope * pre), a)  # [E, n]
    act = dphi * a.unsqueeze(1)  # [E, n, m]
    xx = torch.bmm(x, x.transpose(1, 2)) if xx is None else xx
    gg = (y.unsqueeze(2) * y.unsqueeze(1)) * xx * torch.bmm(act, act.transpose(1, 2))
    E, n = q.shape
    gram = torch.empty(E, n + 1, n + 1, dtype=x.dtype, device=x.device)
    gram[:, 0, 0] = W.flatten(1).pow(2).sum(dim=1)
    gram[:, 0, 1:] = q
    gram[:, 1:, 0] = q
    gram[:, 1:, 1:] = gg
    return gram, q


def gram_coordinates(gram: np.ndarray) -> np.ndarray:
    """Rows v_0..v_n in R^(n+1) with <v_i, v_k> = gram[i, k] (gram PSD [n+1, n+1]).

    The KKT fit only uses inner products of theta and the gradients, so these coordinates give the same
    residual as the [d * m]-dimensional vectors.
    """
    e, V = np.linalg.eigh(gram)
    return V * np.sqrt(np.clip(e, 0.0, None))


def kkt_residuals(gram: torch.Tensor, q: torch.Tensor) -> list[float]:
    """Per member: `theory.kkt.kkt_residual` (degree 1), NaN while some training point is misclassified."""
    from theory.kkt import kkt_residual

    out = []
    for G, qe in zip(gram.detach().cpu().double().numpy(), q.detach().cpu().double().numpy()):
        if qe.min() <= 0:
            out.append(float("nan"))
            continue
        C = gram_coordinates(G)
        out.append(kkt_residual(C[0], C[1:], qe, degree=1))
    return out


def max_margin_directions(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unit l2 max-margin direction (no bias) per member, x [E, n, d], y [E, n] -> [E, d] (float64)."""
    from theory.max_margin import l2_max_margin

    ws = []
    for xe, ye in zip(x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()):
        w = l2_max_margin(xe, ye, bias=False).w
        ws.append(torch.from_numpy(w / np.linalg.norm(w)))
    return torch.stack(ws)


def _band(ax, steps, values, label, **kw):
    """Mean over members with a min-max band; values [n_evals, E] (all-NaN rows, e.g. no KKT residual yet, stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        line, = ax.plot(steps, np.nanmean(values, axis=1), label=label, **kw)
        if values.shape[1] > 1:
            ax.fill_between(steps, np.nanmin(values, axis=1), np.nanmax(values, axis=1), color=line.get_color(),
                            alpha=0.2)


def _finish(ax, steps, ylabel, log=False):
    step_axis(ax, steps)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def init_scale_figure(runs: list, path) -> Path:
    """Stable rank of W against step, one curve per run (one init scale each), log scale; runs: `sims.Run`s."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for r in sorted(runs, key=lambda r: r.config.init_scale):
        _band(ax, r.steps, r.metric("stable_rank"), f"init scale {r.config.init_scale:g}")
    ax.axhline(2.0, color="k", ls="--", lw=0.8, label="rank 2 (KKT points)")
    _finish(ax, runs[0].steps, "stable rank ||W||_F^2 / ||W||_2^2", log=True)
    c = runs[0].config
    ax.set_title(f"leaky-relu-highdim: n={c.n}, d={c.d}, m={c.width}, gamma={c.slope}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def figures(run) -> list:
    """agreement-init<omega>.png, rank_kkt-init<omega>.png, lc-init<omega>.png (named by the init scale, so that
    the runs of an init sweep keep distinct figures when `sims reproduce` copies them side by side)."""
    c = run.config
    tag = f"init{c.init_scale:g}"
    title = f"leaky-relu-highdim: n={c.n}, d={c.d}, m={c.width}, gamma={c.slope}, init {c.init_scale:g}"
    out = [curves_figure(
        run,
        [("agreement with l2 max margin", [("mm_agreement", "sign f = sign <w_mm, x> (test points)"),
                                           ("mm_cosine", "cos(sum_j a_j w_j, w_mm)")]),
         ("accuracy", [("train_acc", "train"), ("test_acc", "test"), ("test_acc_clean", "test (clean labels)")])],
        run.dir / "figures" / f"agreement-{tag}.png", title=title)]
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15.6, 3.8))
    steps = run.steps
    _band(axes[0], steps, run.metric("stable_rank"), "stable rank")
    for k in (2, 3):
        _band(axes[0], steps, run.metric(f"sv{k}") / run.metric("sv1"), f"s_{k} / s_1", ls=":")
    axes[0].axhline(2.0, color="k", ls="--", lw=0.8, label="2")
    _finish(axes[0], steps, "stable rank of W", log=True)
    _band(axes[1], steps, run.metric("kkt_residual"), "KKT residual (theory.kkt)")
    _finish(axes[1], steps, "relative KKT residual", log=True)
    _band(axes[2], steps, run.metric("normalized_margin"), "min_i y_i f(x_i) / ||W||_F")
    _finish(axes[2], steps, "normalised margin")
    fig.suptitle(title)
    fig.tight_layout()
    path = run.dir / "figures" / f"rank_kkt-{tag}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    out.append(path)
    if "lc_train" in run.metric_names:
        from lc.plot import plot_lc_curves

        curves = {s: run.metric(f"lc_{s}") for s in ("train", "test", "random") if f"lc_{s}" in run.metric_names}
        out.append(plot_lc_curves(steps, curves, run.dir / "figures" / f"lc-{tag}.png",
                                  title=f"leaky-relu-highdim local complexity (r={c.lc_radius}, P={c.lc_dirs})"))
    return out


@register("leaky-relu-highdim", Config, presets=PRESETS, cpu_runtime="~1 min", figures=figures)
def build(cfg: Config, seeds: list[int], device: torch.device, dtype: torch.dtype) -> Task:
    """Leaky-ReLU nets on nearly orthogonal data: low stable rank and a max-margin linear boundary (Frei et al. 2023).

    Shows: from a small init, one GD step drops the stable rank of W to about 1-2 and it stays <= 2 (+ slack);
    sign f agrees with the l2 max-margin linear classifier on fresh points; the KKT residual of the
    parameter max-margin problem decreases; a larger init scale keeps a larger stable rank.
    Command: `sims run leaky-relu-highdim` (default preset, ~1 min on 2 CPU cores); sweep the init with
    `--set init_scale=0.01`; claims: `sims reproduce frei2023`.
    """
    gens = make_generators(seeds, "data")
    mu_norm = cfg.d**cfg.mu_power
    x, y, _ = per_member(gaussian_mixture, gens, cfg.n, cfg.d, mu_norm, cfg.noise_rate, dtype=dtype, device=device)
    xt, yt, yt_clean = per_member(gaussian_mixture, gens, cfg.n_test, cfg.d, mu_norm, cfg.noise_rate,
                                  dtype=dtype, device=device)
    model = TwoLayerNet(cfg.d, cfg.width, make_generators(seeds, "init"), act="leaky_relu", slope=cfg.slope,
                        init_scale=cfg.init_scale, dtype=dtype).to(device)
    w_mm = max_margin_directions(x, y).to(device=device, dtype=dtype)  # [E, d], unit norm
    mm_test = torch.sign(torch.einsum("etd,ed->et", xt, w_mm))  # [E, n_test]
    x64, y64 = x.double(), y.double()
    xx64 = torch.bmm(x64, x64.transpose(1, 2))  # [E, n, n]

    def evaluate(m) -> dict[str, torch.Tensor]:
        W, a = m[0].weight, m[2].weight[..., 0]  # [E, d, m], [E, m]
        out, out_t = m(x), m(xt)
        sv = singular_values(W)  # [E, min(d, m)]
        gram, q = margin_gram(x64, y64, W.double(), a.double(), cfg.slope, xx64)
        w_norm = W.flatten(1).norm(dim=1)
        v = torch.einsum("edm,em->ed", W, a)  # effective linear direction sum_j a_j w_j
        cos = (v * w_mm).sum(dim=1) / v.norm(dim=1).clamp_min(torch.finfo(dtype).tiny)
        return dict(
            train_acc=sign_accuracy(out, y), test_acc=sign_accuracy(out_t, yt),
            test_acc_clean=sign_accuracy(out_t, yt_clean), train_loss=logistic_loss(out, y),
            stable_rank=stable_rank(sv), sv1=sv[:, 0], sv2=sv[:, 1], sv3=sv[:, 2],
            normalized_margin=q.min(dim=1).values / w_norm.double(),
            kkt_residual=torch.tensor(kkt_residuals(gram, q), dtype=torch.float64),
            mm_agreement=(torch.sign(out_t[..., 0]) == mm_test).to(dtype).mean(dim=1),
            mm_cosine=cos, weight_norm=w_norm,
        )

    return Task(model=model, x=x, y=y, loss=logistic_loss, evaluate=evaluate,
                probe=make_probe(cfg, seeds, train=x, test=xt),
                summary=dict(mu_norm=mu_norm))
