"""XOR cluster data: benign overfitting reached through grokking (Xu, Wang, Frei, Vardi, Hu, ICLR 2024).

A two-layer ReLU net f(x) = sum_j a_j relu(<w_j, x>) with the second layer fixed at a_j = +-1/sqrt(m),
small Gaussian init of W, trained by full-batch GD on the logistic loss over XOR cluster data with
label noise eta, in high dimension (d >> n). The paper proves: after the first (large) GD step the net
fits every noisy training label but its test accuracy is near 50% (a non-generalising linear
classifier: catastrophic overfitting); later, still fitting every noisy label, its test error falls to
near eta (near-optimal: benign overfitting). The transition is a grokking curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import ProbedConfig, param
from ..data import per_member, xor_clusters
from ..engine import Task
from ..nn import TwoLayerNet, make_generators
from ..plots import curves_figure
from ..registry import register
from .common import logistic_loss, make_probe, sign_accuracy


@dataclass(frozen=True)
class Config(ProbedConfig):
    """XOR cluster data, two-layer ReLU net with a fixed second layer, full-batch GD, logistic loss."""

    n: int = param(50, "training points per member", low=1)
    d: int = param(2000, "input dimension", low=2)
    mu_norm: float = param(16.0, "norm of each cluster mean, ||mu_1|| = ||mu_2||", low=0.0)
    noise_rate: float = param(0.1, "probability eta that a training (and noisy-test) label is flipped",
                              low=0.0, high=0.5, high_open=True)
    width: int = param(200, "hidden units m", low=1)
    init_scale: float = param(1e-4, "std omega of the first-layer weights, W_ij ~ N(0, omega^2)", low=0.0,
                              low_open=True)
    n_test: int = param(2000, "test points per member", low=1)
    lr: float = param(1.0, "learning rate of full-batch GD", low=0.0, low_open=True)
    steps: int = param(1000, "number of GD steps", low=0)
    lc_radius: float = param(4.0, "radius r of the LC cross-polytope (input units; noise has norm ~sqrt(d))",
                             low=0.0, low_open=True)


PRESETS = {
    "ci": dict(n=30, d=400, mu_norm=8.0, width=64, n_test=500, steps=60, n_evals=12, lc_points=30, lc_dirs=8),
    "default": dict(),
    "paper": dict(n=100, d=10000, mu_norm=30.0, width=1000, n_test=10000, steps=20000, n_evals=120),
}


def figures(run) -> list:
    out = [curves_figure(
        run,
        [("accuracy", [("train_acc", "train (noisy labels)"), ("test_acc", "test (noisy labels)"),
                       ("test_acc_clean", "test (clean labels)")]),
         ("logistic loss", [("train_loss", "train"), ("test_loss", "test")])],
        run.dir / "figures" / "accuracy.png",
        title=f"xor-cluster: n={run.config.n}, d={run.config.d}, ||mu||={run.config.mu_norm}, "
              f"eta={run.config.noise_rate}",
        hlines={"accuracy": [(1 - run.config.noise_rate, "1 - eta (Bayes, noisy)"), (0.5, "chance")]},
    )]
    if "lc_train" in run.metric_names:
        from lc.plot import plot_lc_curves

        curves = {s: run.metric(f"lc_{s}") for s in ("train", "test", "random") if f"lc_{s}" in run.metric_names}
        out.append(plot_lc_curves(run.steps, curves, run.dir / "figures" / "lc.png",
                                  title=f"xor-cluster local complexity (r={run.config.lc_radius}, "
                                        f"P={run.config.lc_dirs})"))
    return out


@register("xor-cluster", Config, presets=PRESETS, cpu_runtime="~1 min", figures=figures)
def build(cfg: Config, seeds: list[int], device: torch.device, dtype: torch.dtype) -> Task:
    """XOR clusters: catastrophic then benign overfitting through grokking (Xu et al. 2024).

    Shows: after step 1 the net fits every noisy training label with test accuracy near 50%; later
    test accuracy on noisy labels rises towards 1 - eta while training accuracy stays 100%.
    Command: `sims run xor-cluster` (default preset, ~1 min on 2 CPU cores); claims: `sims reproduce xu2024`.
    """
    gens = make_generators(seeds, "data")
    x, y, _ = per_member(xor_clusters, gens, cfg.n, cfg.d, cfg.mu_norm, cfg.noise_rate, dtype=dtype, device=device)
    xt, yt, yt_clean = per_member(xor_clusters, gens, cfg.n_test, cfg.d, cfg.mu_norm, cfg.noise_rate,
                                  dtype=dtype, device=device)
    model = TwoLayerNet(cfg.d, cfg.width, make_generators(seeds, "init"), act="relu",
                        init_scale=cfg.init_scale, dtype=dtype).to(device)

    def evaluate(m) -> dict[str, torch.Tensor]:
        out, out_t = m(x), m(xt)
        return dict(
            train_acc=sign_accuracy(out, y), test_acc=sign_accuracy(out_t, yt),
            test_acc_clean=sign_accuracy(out_t, yt_clean),
            train_loss=logistic_loss(out, y), test_loss=logistic_loss(out_t, yt),
            weight_norm=m[0].weight.flatten(1).norm(dim=1),
        )

    return Task(model=model, x=x, y=y, loss=logistic_loss, evaluate=evaluate,
                probe=make_probe(cfg, seeds, train=x, test=xt))
