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
member and cached in the run) on fresh test points and on isotropic N(0, I_d) points (where it equals
1 - angle / pi between the two decision boundaries, if the net's is linear); the cosine between the net's effective linear
direction sum_j a_j w_j and the max-margin direction; LC at train, test and random points.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lc import keys as lc_keys
from lc.keys import lc_name

from ... import metrics, plots, style, transitions
from ...config import Members, param, with_defaults
from ...data import for_members, gaussian_mixture
from ...engine import Env, Task
from ...nn import TwoLayerNet, make_generators
from ...registry import register
from ..common import TwoLayerConfig, logistic_loss, make_probe, sign_accuracy, two_layer_memory


@dataclass(frozen=True)
class Config(with_defaults(TwoLayerConfig, lc_radius=4.5, steps=2000)):
    """Two-cluster Gaussian mixture in high dimension, two-layer leaky-ReLU net, full-batch GD (width 512 as in the
    paper's experiments is [unverified]). lc_radius ~ 0.1 sqrt(d) (the noise norm is ~sqrt(d)) crosses ~16% of
    the units at init. 2000 steps: the KKT residual falls like 1 / log t (0.29 at step 600, 0.19 at 2000)."""

    mu_power: float = param(0.26, "cluster-mean norm ||mu|| = d^mu_power (the paper's 0.26 is [unverified])",
                            low=0.0)
    slope: float = param(0.1, "leaky-ReLU negative slope gamma, phi(z) = max(gamma z, z) ([unverified] 0.1)",
                         low=0.0, low_open=True, high=1.0, high_open=True)


PRESETS = {
    "ci": dict(n=20, d=400, width=32, n_test=200, steps=40, n_evals=10, lc_points=20, lc_dirs=8, lc_radius=2.0),
    "default": dict(),
    "paper": dict(d=10000, steps=1000, n_evals=100, n_test=10000, lc_radius=10.0),
}


def init_scale_figure(runs: list, path):
    """Stable rank of W against step, one curve per run (one init scale each), log scale; runs: `sims.Run`s."""
    fig, axes = plots.figure(1, panel=(6.2, 4.2))
    ax = axes[0, 0]
    for r in sorted(runs, key=lambda r: r.config.init_scale):
        plots.band(ax, r.steps, r.metric("stable_rank"), f"init scale {r.config.init_scale:g}")
    style.reference(ax, "rank 2 (KKT points)", y=2.0)
    c = runs[0].config
    plots.finish(ax, "stable rank ||W||_F^2 / ||W||_2^2 (unitless)", steps=runs[0].steps, log=True,
                 title=f"leaky-relu-highdim: n={c.n}, d={c.d}, m={c.width}, gamma={c.slope}")
    return plots.save(fig, path)


def figures(run) -> list:
    """agreement.png (max-margin agreement, accuracies), rank_kkt.png (stable rank, KKT residual, margin), lc.png."""
    c = run.config
    init = f"init {c.init_scale:g}" if run.members.uniform("init_scale") else "init scale by colour"
    title = f"leaky-relu-highdim: n={c.n}, d={c.d}, m={c.width}, gamma={c.slope}, {init}"
    out = [plots.curves_figure(
        run,
        [("agreement with l2 max margin: share or cosine (unitless)",
          [("mm_agreement", "sign f = sign <w_mm, x> (test points)"),
                                           ("mm_cosine", "cos(sum_j a_j w_j, w_mm)")]),
         ("accuracy (fraction)",
          [("train_acc", "train"), ("test_acc", "test"), ("test_acc_clean", "test (clean labels)")])],
        run.dir / "figures" / "agreement.png", title=title)]
    fig, axes = plots.figure(3)
    steps = run.steps
    plots.run_band(axes[0, 0], run, "stable_rank", "stable rank")
    for k in (2, 3):
        plots.run_band(axes[0, 0], run, run.metric(f"sv{k}") / run.metric("sv1"), f"s_{k} / s_1", ls=":")
    style.reference(axes[0, 0], "2", y=2.0)
    plots.finish(axes[0, 0], "stable rank of W; s_k / s_1 (unitless)", steps=steps, log=True)
    plots.run_band(axes[0, 1], run, "kkt_residual", "KKT residual (theory.kkt)")
    plots.finish(axes[0, 1], "KKT residual (relative, unitless)", steps=steps, log=True)
    plots.run_band(axes[0, 2], run, "normalized_margin", "min_i y_i f(x_i) / ||W||_F")
    plots.finish(axes[0, 2], "normalised margin (output units per weight norm)", steps=steps)
    out.append(plots.save(fig, run.dir / "figures" / "rank_kkt.png", title=title))
    out.append(plots.lc_figure(run, run.dir / "figures" / "lc.png",
                               title=f"leaky-relu-highdim local complexity (r={c.lc_radius}, P={c.lc_dirs})"))
    return out


def transition_records(run) -> list[dict]:
    """Per member: the transition record (`sims.transitions.record`) from step 0. A control for the atlas: the
    test accuracy jumps with the first step (no delay after memorisation), and LC's turning points are kept."""
    lc = {s: run.metric(lc_name(s)) for s in plots.LC_SETS if lc_name(s) in run.metric_names}
    return [transitions.record(run.steps, test=run.metric("test_acc")[:, e], train=run.metric("train_acc")[:, e],
                               lc={s: v[:, e] for s, v in lc.items()}, time_per_step=run.members[e].lr)
            for e in range(run.n_members)]


METRICS = {
    "train_acc": "fraction of training points with sign f(x) = y, noisy labels (fraction)",
    "test_acc": "fraction of fresh test points with sign f(x) = y, noisy labels (fraction)",
    "test_acc_clean": "test accuracy against the clean labels (fraction)",
    "train_loss": "mean logistic loss on the training points (nats)",
    "stable_rank": "||W||_F^2 / ||W||_2^2 of the first layer (unitless, 1 to min(d, m))",
    "sv1": "largest singular value of W (weight units)",
    "sv2": "second singular value of W (weight units)",
    "sv3": "third singular value of W (weight units)",
    "normalized_margin": "min_i y_i f(x_i) / ||W||_F (output units per weight norm)",
    "kkt_residual": "KKT residual of the parameter max-margin problem (relative, 0 at a KKT point)",
    "mm_agreement": "share of test points where sign f agrees with the l2 max-margin linear classifier (fraction)",
    "mm_agreement_iso": "the same agreement on isotropic Gaussian inputs (fraction)",
    "mm_cosine": "cosine between sum_j a_j w_j and the max-margin direction (unitless, -1 to 1)",
    "weight_norm": "||W||_F of the first layer (weight units)",
    lc_keys.PATTERN: lc_keys.MEANING,
}


# its row of `sims atlas`: a control (benign overfitting without a delayed transition)
ATLAS = dict(label="leaky ReLU, high dim (Frei et al. 2023): control", order=6, control=True)


@register("leaky-relu-highdim", Config, presets=PRESETS, cpu_runtime="~1.5 min", figures=figures,
          memory=two_layer_memory, memberwise=("init_scale", "noise_rate", "mu_power", "lr", "weight_decay"),
          transitions=transition_records, metrics=METRICS, atlas=ATLAS)
def build(members: Members, env: Env) -> Task:
    """Leaky-ReLU nets on nearly orthogonal data: low stable rank and a max-margin linear boundary (Frei et al. 2023).

    Shows: from a small init, one GD step drops the stable rank of W to about 1-2 and it stays <= 2 (+ slack);
    sign f agrees with the l2 max-margin linear classifier on fresh points; the KKT residual of the
    parameter max-margin problem decreases; a larger init scale keeps a larger stable rank.
    Command: `sims run leaky-relu-highdim` (default preset, ~1.5 min on 2 CPU cores); sweep the init with
    `--set init_scale=0.01`; claims: `sims reproduce frei2023`.
    """
    cfg, seeds, dev, dtype = members[0], members.seeds, env.device, env.dtype
    gens = make_generators(seeds, "data")
    x, y, _ = for_members(lambda c, g: gaussian_mixture(c.n, c.d, c.d**c.mu_power, c.noise_rate, generator=g),
                          members, gens, dtype=dtype, device=dev)
    xt, yt, yt_clean = for_members(
        lambda c, g: gaussian_mixture(c.n_test, c.d, c.d**c.mu_power, c.noise_rate, generator=g), members, gens,
        dtype=dtype, device=dev)
    model = TwoLayerNet(cfg.d, cfg.width, make_generators(seeds, "init"), act="leaky_relu", slope=cfg.slope,
                        init_scale=members.values("init_scale"), dtype=dtype).to(dev)
    w_mm = env.cache.get("l2_max_margin", lambda: metrics.max_margin_directions(x, y))  # [E, d], unit norm
    w_mm = w_mm.to(device=dev, dtype=dtype)
    mm_test = torch.sign(torch.einsum("etd,ed->et", xt, w_mm))  # [E, n_test]
    iso = torch.stack([torch.randn(cfg.n_test, cfg.d, generator=g, dtype=torch.float64)
                       for g in make_generators(seeds, "eval")]).to(device=dev, dtype=dtype)  # [E, n_test, d]
    mm_iso = torch.sign(torch.einsum("etd,ed->et", iso, w_mm))
    x64, y64 = x.double(), y.double()
    xx64 = torch.bmm(x64, x64.transpose(1, 2))  # [E, n, n]

    def evaluate(m) -> dict[str, torch.Tensor]:
        W, a = m[0].weight, m[2].weight[..., 0]  # [E, d, m], [E, m]
        out, out_t = m(x), m(xt)
        sv = metrics.singular_values(W)  # [E, min(d, m)]
        gram, q = metrics.margin_gram(x64, y64, W.double(), a.double(), cfg.slope, xx64)
        w_norm = W.flatten(1).norm(dim=1)
        v = torch.einsum("edm,em->ed", W, a)  # effective linear direction sum_j a_j w_j
        return dict(
            train_acc=sign_accuracy(out, y), test_acc=sign_accuracy(out_t, yt),
            test_acc_clean=sign_accuracy(out_t, yt_clean), train_loss=logistic_loss(out, y),
            stable_rank=metrics.stable_rank(sv), sv1=sv[:, 0], sv2=sv[:, 1], sv3=sv[:, 2],
            normalized_margin=q.min(dim=1).values / w_norm.double(),
            kkt_residual=metrics.kkt_residuals(gram, q),
            mm_agreement=(torch.sign(out_t[..., 0]) == mm_test).to(torch.float64).mean(dim=1),
            mm_agreement_iso=(torch.sign(m(iso)[..., 0]) == mm_iso).to(torch.float64).mean(dim=1),
            mm_cosine=metrics.cosine(v, w_mm), weight_norm=w_norm,
        )

    return Task(model=model, x=x, y=y, loss=logistic_loss, evaluate=evaluate,
                probe=make_probe(cfg, seeds, train=x, test=xt),
                member_summary=[dict(mu_norm=c.d**c.mu_power) for c in members])
