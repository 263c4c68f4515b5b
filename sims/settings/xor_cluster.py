"""XOR cluster data: benign overfitting reached through grokking (Xu, Wang, Frei, Vardi, Hu, ICLR 2024).

A two-layer ReLU net f(x) = sum_j a_j relu(<w_j, x>) with the second layer fixed at a_j = +-1/sqrt(m),
small Gaussian init of W, trained by full-batch GD on the logistic loss over XOR cluster data with
label noise eta, in high dimension (d >> n). The paper proves: after the first (large) GD step the net
fits every noisy training label but its test accuracy is near 50% (a non-generalising linear
classifier: catastrophic overfitting); later, still fitting every noisy label, its test error falls to
near eta (near-optimal: benign overfitting). The transition is a grokking curve.

Besides accuracies and losses, the run keeps the model state at a few log-spaced steps (snapshots/) and
draws the exact linear regions (`lc.exact2d`) of member 0 on the plane spanned by mu_1 and mu_2 before,
during and after the transition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import ProbedConfig, param
from ..data import per_member, xor_clusters
from ..engine import Task, eval_schedule
from ..nn import TwoLayerNet, make_generators
from ..plots import _plt, curves_figure
from ..registry import register
from .common import logistic_loss, make_probe, sign_accuracy


@dataclass(frozen=True)
class Config(ProbedConfig):
    """XOR cluster data, two-layer ReLU net with a fixed second layer, full-batch GD, logistic loss."""

    n: int = param(200, "training points per member", low=1)
    d: int = param(16000, "input dimension", low=2)
    mu_norm: float = param(22.0, "norm of each cluster mean, ||mu_1|| = ||mu_2||", low=0.0)
    noise_rate: float = param(0.1, "probability eta that a training (and noisy-test) label is flipped",
                              low=0.0, high=0.5, high_open=True)
    width: int = param(200, "hidden units m", low=1)
    init_scale: float = param(1e-4, "std omega of the first-layer weights, W_ij ~ N(0, omega^2)", low=0.0,
                              low_open=True)
    n_test: int = param(1000, "test points per member", low=1)
    lr: float = param(0.1, "learning rate of full-batch GD on the mean logistic loss", low=0.0, low_open=True)
    steps: int = param(300, "number of GD steps", low=0)
    n_evals: int = param(40, "number of evaluation points (log-spaced plus linear, with 0 and the last step)",
                         low=2)
    lc_radius: float = param(12.5, "radius r of the LC cross-polytope (input units; ~0.1 sqrt(d), the noise "
                                   "norm is ~sqrt(d))", low=0.0, low_open=True)
    snapshots: int = param(6, "about this many eval steps (always 0, 1 and the last, then log-spaced) whose model "
                              "state is kept in snapshots/ for the partition figure; 0 = none", low=0)


PRESETS = {
    "ci": dict(n=40, d=1600, mu_norm=8.0, width=64, lr=0.2, n_test=400, steps=40, n_evals=12, lc_points=30,
               lc_dirs=8, lc_radius=4.0, snapshots=4),
    "default": dict(),
    "paper": dict(n=400, d=64000, mu_norm=37.0, width=1000, n_test=5000, steps=2000, n_evals=100,
                  lc_radius=25.0),
}


def snapshot_steps(cfg: Config) -> tuple[int, ...]:
    """About cfg.snapshots eval steps: 0, 1, the last, and the eval steps nearest log-spaced ones in between."""
    if cfg.snapshots == 0:
        return ()
    evals = np.array(eval_schedule(cfg.steps, cfg.n_evals))
    want = {0, 1, cfg.steps} | set(np.geomspace(2, max(cfg.steps, 2), max(cfg.snapshots - 3, 0)).tolist())
    picked = {int(evals[np.argmin(np.abs(np.log1p(evals) - np.log1p(w)))]) for w in want}
    return tuple(sorted(s for s in picked if s <= cfg.steps))


def _member_data(run):
    """Member 0's training data and labels (regenerated from the run's seed): x [n, d], y [n], y_clean [n]."""
    c = run.config
    x, y, y_clean = per_member(xor_clusters, make_generators(run.seeds[:1], "data"), c.n, c.d, c.mu_norm,
                               c.noise_rate, dtype=torch.float64)
    return x[0], y[0], y_clean[0]


def transition_steps(run) -> dict[str, int]:
    """The snapshot steps drawn as before / during / after the transition (member-mean test accuracy).

    before: step 1 (after the first step, fitted but not generalising); after: the last step; during: the
    snapshot step in between whose test accuracy is closest to the midpoint of the two.
    """
    snaps = sorted(int(p.stem.split("-")[1]) for p in (run.dir / "snapshots").glob("step-*.pt"))
    acc = {s: float(np.mean(run.metric("test_acc")[list(run.steps).index(s)])) for s in snaps if s in run.steps}
    if not acc:
        return {}
    last = max(acc)
    out = {"init": 0, "before": 1}
    between = [s for s in acc if 1 < s < last]
    if between and 1 in acc:
        mid = 0.5 * (acc[1] + acc[last])
        out["during"] = min(between, key=lambda s: abs(acc[s] - mid))
    out["after"] = last
    return {k: v for k, v in out.items() if v in acc}


def partition_figure(run, path):
    """Exact linear regions of member 0 on the plane of mu_1, mu_2 at init / before / during / after."""
    from lc import exact2d
    from lc.plot import plot_partition

    c = run.config
    steps = transition_steps(run)
    x, y, y_clean = _member_data(run)
    model = TwoLayerNet(c.d, c.width, make_generators(run.seeds, "init"), init_scale=c.init_scale,
                        dtype=torch.float64)
    basis = torch.zeros(2, c.d, dtype=torch.float64)
    basis[0, 0] = basis[1, 1] = 1.0  # mu_1 = ||mu|| e_1, mu_2 = ||mu|| e_2 (sims.data.xor_clusters)
    B = 1.8 * c.mu_norm
    plt = _plt()
    fig = plt.figure(figsize=(4.4 * len(steps), 5.0))
    flipped = (y != y_clean).numpy()
    for k, (phase, s) in enumerate(steps.items()):
        state = torch.load(run.dir / "snapshots" / f"step-{s}.pt", map_location="cpu", weights_only=False)
        model.load_state_dict({k2: v.double() for k2, v in state["model"].items()})
        part = exact2d.partition(model, torch.zeros(c.d, dtype=torch.float64), basis, bounds=((-B, B), (-B, B)),
                                 member=0)
        i = list(run.steps).index(s)
        tr, te = run.metric("train_acc")[i, 0], run.metric("test_acc")[i, 0]
        ax = fig.add_subplot(1, len(steps), k + 1)
        plot_partition(part, ax=ax, points=x[:, :2].numpy(), labels=y.numpy(),
                       title=f"{phase}: step {s}\ntrain {tr:.2f}, test {te:.2f}, {part.count} regions")
        ax.scatter(x[flipped, 0], x[flipped, 1], s=60, facecolors="none", edgecolors="k", linewidths=0.8,
                   zorder=4, label="flipped label")
        ax.set_xlabel("<x, mu_1> / ||mu||")
        ax.set_ylabel("<x, mu_2> / ||mu||")
        if k == 0:
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"xor-cluster (n={c.n}, d={c.d}, ||mu||={c.mu_norm:g}), member 0: linear regions on the plane "
                 f"spanned by mu_1, mu_2 through 0; decision boundary black; training points projected, colour = "
                 f"noisy label (red +1, blue -1)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figures(run) -> list:
    c = run.config
    out = [curves_figure(
        run,
        [("accuracy", [("train_acc", "train (noisy labels)"), ("test_acc", "test (noisy labels)"),
                       ("test_acc_clean", "test (clean labels)")]),
         ("logistic loss", [("train_loss", "train"), ("test_loss", "test")])],
        run.dir / "figures" / "accuracy.png",
        title=f"xor-cluster: n={c.n}, d={c.d}, ||mu||={c.mu_norm}, eta={c.noise_rate}, m={c.width}, lr={c.lr}",
        hlines={"accuracy": [(1 - c.noise_rate, "1 - eta (Bayes, noisy)"), (0.5, "chance")]},
    )]
    if "lc_train" in run.metric_names:
        from lc.plot import plot_lc_curves

        curves = {s: run.metric(f"lc_{s}") for s in ("train", "test", "random") if f"lc_{s}" in run.metric_names}
        out.append(plot_lc_curves(run.steps, curves, run.dir / "figures" / "lc.png",
                                  title=f"xor-cluster local complexity (r={c.lc_radius}, P={c.lc_dirs})"))
    if (run.dir / "snapshots").is_dir() and transition_steps(run):
        out.append(partition_figure(run, run.dir / "figures" / "partition.png"))
    return out


@register("xor-cluster", Config, presets=PRESETS, cpu_runtime="~2 min", figures=figures)
def build(cfg: Config, seeds: list[int], device: torch.device, dtype: torch.dtype) -> Task:
    """XOR clusters: catastrophic then benign overfitting through grokking (Xu et al. 2024).

    Shows: after step 1 the net fits every noisy training label with test accuracy near 50%; later
    test accuracy on noisy labels rises towards 1 - eta while training accuracy stays 100%.
    Figures: accuracy curves, LC at train / test / random points, and the exact linear regions on the
    (mu_1, mu_2) plane before, during and after the transition.
    Command: `sims run xor-cluster` (default preset, ~2 min on 2 CPU cores); claims: `sims reproduce xu2024`.
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
                probe=make_probe(cfg, seeds, train=x, test=xt), snapshot_steps=snapshot_steps(cfg))
