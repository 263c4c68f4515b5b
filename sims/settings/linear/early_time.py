"""Early-time dynamics: a two-layer net first follows a linear model of its input (Hu, Xiao, Adlam, Pennington,
NeurIPS 2020).

The network is `sims.nn.NTKTwoLayerNet`, f(x) = (1/sqrt(m)) sum_r a_r relu(<w_r, x> / sqrt(d)) with w_r ~ N(0, I_d)
and a_r = +-kappa (kappa = init_scale), trained by full-batch GD with step lr on L = (1/2n) sum_i (f(x_i) - y_i)^2
over the layer(s) named by `layers`. Inputs are isotropic Gaussians in high dimension with the labels of a linear
threshold teacher, y = sign(x_1) (`sims.data.sign_teacher`).

The linear model is the paper's f_lin(x) = <beta, psi(x)> from beta = 0, with the features whose Gram matrix is the
affine approximation of the network's tangent kernel at init (`theory.early_time`): psi = [kappa psi_1] (first
layer), [psi_2] (second) or [kappa psi_1, psi_2] (both), psi_1 = [zeta x / sqrt(d), eta / sqrt(d)],
psi_2 = [zeta x / sqrt(d), sqrt(nu^2 + eta^2 / (2d))] (kappa^2 because the first layer's kernel scales with a_r^2).
Its predictions after t GD steps with the same lr are in closed form (`theory.early_time.linear_model_trajectory`,
exact GD on the linear model), evaluated at the network's own step: the optimiser counts its steps in its state,
so a resumed run reads the right step.

The paper's claim: early on, the network's outputs on training and test points stay close to the linear model's
(the gap is of the size of the network's output at init, RMS kappa sqrt(E relu(g)^2) = kappa / sqrt(2)) while the
linear model already fits the linear part of the labels; later the network leaves it (it fits what a linear model
cannot). At build time the run records the spectral-norm gap between the network's empirical tangent kernel at init
and the affine kernel, which shrinks as d grows. The paper's exact scaling, init and time horizon are [unverified]:
this is the parametrisation of `theory.early_time`, small init on the second layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ... import plots, style, transitions
from ...config import ConfigError, Members, TrainConfig, param
from ...data import stack_per_member, sign_teacher
from ...engine import Env, Task, eval_schedule
from ...nn import NTKTwoLayerNet, make_generators
from ...registry import register
from ..common import squared_loss

GAP_LEVEL = 0.1  # the gap the claims call "close" (relative to the label norm)


@dataclass(frozen=True)
class Config(TrainConfig):
    """Two-layer ReLU net in the NTK parametrisation, isotropic Gaussian inputs, y = sign(x_1), full-batch GD."""

    n: int = param(500, "training points per member", low=1)
    d: int = param(100, "input dimension", low=1)
    width: int = param(2000, "hidden units m", low=1)
    n_test: int = param(500, "fresh test points per member", low=1)
    layers: str = param("first", "which layer(s) GD trains", choices=("first", "second", "both"))
    init_scale: float = param(0.1, "kappa: second-layer weights a_r = +-kappa at init (small init: the output at "
                                   "init has RMS kappa / sqrt(2))", low=0.0, low_open=True)
    lr: float = param(1000.0, "GD step on L = (1/2n) sum (f - y)^2; stable for lr lambda_max(K) / n < 2, K the linear "
                              "model's kernel (kappa^2 scales the first layer's: lr ~ 1/kappa^2 there)",
                      low=0.0, low_open=True)
    steps: int = param(300, "number of GD steps", low=0)
    n_evals: int = param(40, "number of evaluation points (log-spaced plus linear, with 0 and the last step)", low=2)

    def check(self) -> None:
        plain = dict(optimizer="sgd", momentum=0.0, weight_decay=0.0, batch_size=0)
        bad = {k: getattr(self, k) for k, v in plain.items() if getattr(self, k) != v}
        if bad:
            raise ConfigError(f"early-time compares with the closed form of plain full-batch GD; {bad} must be "
                              f"{ {k: plain[k] for k in bad} }")


PRESETS = {
    "ci": dict(n=60, d=30, width=200, n_test=60, lr=800.0, steps=40, n_evals=12),
    "default": dict(),
    "paper": dict(n=2000, d=400, width=8000, n_test=2000, steps=1000, n_evals=80),
}


class StepCounter:
    """Plain SGD whose step count lives in its own state (param_groups[0]['steps_done']), so it is checkpointed and
    restored with the optimiser: evaluate() reads the step the model has reached, also after --resume."""

    def __init__(self, lr: float):
        self.lr, self.opt = lr, None

    def make(self, params) -> torch.optim.Optimizer:
        self.opt = torch.optim.SGD(params, lr=self.lr)
        self.opt.param_groups[0]["steps_done"] = 0
        self.opt.register_step_post_hook(_count_step)
        return self.opt

    @property
    def step(self) -> int:
        return 0 if self.opt is None else int(self.opt.param_groups[0]["steps_done"])


def _count_step(opt, args, kwargs) -> None:
    opt.param_groups[0]["steps_done"] += 1


def linear_features(x: np.ndarray, layers: str, kappa: float) -> np.ndarray:
    """psi(x) [N, p] of the linear model (module docstring) for x [N, d]: the first layer's block times kappa."""
    from theory.early_time import RELU, linear_features as psi

    blocks = []
    if layers in ("first", "both"):
        blocks.append(kappa * psi(x, RELU, "first"))
    if layers in ("second", "both"):
        blocks.append(psi(x, RELU, "second"))
    return np.hstack(blocks)


def affine_kernel(x: np.ndarray, layers: str, kappa: float) -> np.ndarray:
    """The affine approximation [n, n] of the tangent kernel at init with a_r = +-kappa: kappa^2 Theta_1 + Theta_2."""
    from theory.early_time import RELU, affine_ntk

    out = np.zeros((len(x), len(x)))
    if layers in ("first", "both"):
        out += kappa**2 * affine_ntk(x, RELU, "first")
    if layers in ("second", "both"):
        out += affine_ntk(x, RELU, "second")
    return out


def spectral_norm(A: np.ndarray) -> float:
    """||A||_2 of a symmetric matrix [n, n]: the largest |eigenvalue| (Lanczos, scipy's eigsh, above n = 200)."""
    if len(A) <= 200:
        return float(np.abs(np.linalg.eigvalsh(A)).max())
    from scipy.sparse.linalg import eigsh

    return float(np.abs(eigsh(A, k=1, which="LM", return_eigenvectors=False, v0=np.ones(len(A)))).max())


def kernel_gap(x: np.ndarray, W: np.ndarray, a: np.ndarray, layers: str, kappa: float) -> float:
    """||Theta_emp - Theta_aff||_2 / ||Theta_emp||_2 at the weights W [m, d], a [m] on x [n, d] (Hu et al. 2020)."""
    from theory.early_time import RELU, empirical_ntk

    emp = empirical_ntk(x, W, a, RELU, layers)
    return spectral_norm(emp - affine_kernel(x, layers, kappa)) / spectral_norm(emp)


class LinearModel:
    """Predictions of the linear model at any step: zero at step 0 (beta = 0), else the closed form of
    `theory.early_time.linear_model_trajectory`; the eval steps are computed once, at build."""

    def __init__(self, feats, feats_test, y, lr: float, steps: list[int]):
        self.feats, self.feats_test, self.y, self.lr = feats, feats_test, y, lr
        self.table = {0: (np.zeros((len(y), len(feats[0]))), np.zeros((len(y), len(feats_test[0]))))}
        self._fill([s for s in steps if s > 0])

    def _fill(self, steps) -> None:
        from theory.early_time import linear_model_trajectory

        if not steps:
            return
        per = [linear_model_trajectory(F, y, lr=self.lr, steps=np.asarray(steps), features_test=Ft)
               for F, Ft, y in zip(self.feats, self.feats_test, self.y)]  # per member ([T, n], [T, n_test])
        for k, s in enumerate(steps):
            self.table[s] = (np.stack([tr[k] for tr, _ in per]), np.stack([te[k] for _, te in per]))

    def at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(train [E, n], test [E, n_test]) after `step` GD steps."""
        if step not in self.table:
            self._fill([step])
        return self.table[step]


def half_loss_step(run) -> transitions.Crossing | None:
    """Where the linear model's training loss (member mean) first falls to half its value at init."""
    loss = np.nanmean(run.metric("loss_lin"), axis=1)
    return transitions.crossing(run.steps, loss, loss[0] / 2, direction="down")


def figures(run) -> list:
    """gap.png: network-to-linear-model gap and both models' losses against the step (none for a 0-step run)."""
    c = run.config
    if len(run.steps) < 2:
        return []
    fig, axes = plots.figure(2)
    ax = axes[0, 0]
    plots.band(ax, run.steps, run.metric("gap_train"), "train points")
    plots.band(ax, run.steps, run.metric("gap_test"), "test points")
    style.reference(ax, f"{GAP_LEVEL} (the claims' early bound)", y=GAP_LEVEL)
    half = half_loss_step(run)
    if half is not None:
        for a in axes[0]:
            style.reference(a, "linear model's loss halved", x=half.step)
    plots.finish(ax, "||f_net - f_lin|| / ||y|| (relative, unitless)", steps=run.steps, log=True)
    ax = axes[0, 1]
    for name, label in (("loss_train", "network, train"), ("loss_test", "network, test"),
                        ("loss_lin", "linear model, train"), ("loss_lin_test", "linear model, test")):
        plots.band(ax, run.steps, run.metric(name), label, ls="-" if "lin" not in name else "--")
    plots.finish(ax, "(1/2) mean squared error (squared output units)", steps=run.steps, log=True)
    title = (f"early-time: n={c.n}, d={c.d}, m={c.width}, layers={c.layers}, kappa={c.init_scale:g}, lr={c.lr:g}")
    return [plots.save(fig, run.dir / "figures" / "gap.png", title=title)]


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes: train and test data [E, n + n_test, d] (and float64 copies), the weights [E, d, m] with their
    copies (`sims.memory.PARAM_COPIES`), activations [E, n + n_test, m], the linear model's features [n, 2d + 2] and
    closed-form tables, and the tangent kernels at init (activations [n, m] and a few n x n, float64)."""
    from ...memory import PARAM_COPIES

    c, E = members[0], len(members)
    points = c.n + c.n_test
    return dict(data=E * points * c.d * (itemsize + 8), parameters=E * PARAM_COPIES * (c.d + 1) * c.width * itemsize,
                activations=4 * E * points * c.width * itemsize,
                linear_model=E * 8 * (2 * points * (2 * c.d + 2) + (c.n_evals + 2) * points),
                kernels=8 * (3 * c.n * c.width + 4 * c.n * c.n))


METRICS = {
    "gap_train": "||f_net - f_lin|| / ||y|| on the training points (relative, unitless)",
    "gap_test": "||f_net - f_lin|| / ||y|| on the test points (relative, unitless)",
    "loss_train": "half mean squared error of the network on the training points (squared output units)",
    "loss_test": "half mean squared error of the network on the test points (squared output units)",
    "loss_lin": "half mean squared error of the linear model on the training points (squared output units)",
    "loss_lin_test": "half mean squared error of the linear model on the test points (squared output units)",
}


@register("early-time", Config, presets=PRESETS, cpu_runtime="~10 s", figures=figures, memory=memory, metrics=METRICS)
def build(members: Members, env: Env) -> Task:
    """Early-time dynamics: a two-layer net first follows a linear model of its input (Hu et al. 2020).

    Shows: the relative gap ||f_net - f_lin|| / ||y|| between the network and the paper's linear model (trained by GD
    with the same lr and steps, closed form) stays at the size of the init (~ kappa / sqrt(2)) while the linear
    model's training loss halves, then grows as the network fits what a linear model cannot; the spectral-norm gap
    between the tangent kernel at init and its affine approximation is recorded (summary: kernel_gap).
    Command: `sims run early-time --seeds 3` (~20 s on 2 CPU cores); claims: `sims reproduce hu2020`.
    """
    cfg, seeds, dev, dtype = members[0], members.seeds, env.device, env.dtype
    gens = make_generators(seeds, "data")
    x, y = stack_per_member(sign_teacher, gens, cfg.n, cfg.d, dtype=dtype, device=dev)
    xt, yt = stack_per_member(sign_teacher, gens, cfg.n_test, cfg.d, dtype=dtype, device=dev)
    model = NTKTwoLayerNet(cfg.d, cfg.width, make_generators(seeds, "init"), init_scale=cfg.init_scale,
                           train=cfg.layers, dtype=dtype).to(dev)
    x64, xt64, y64 = (v.detach().double().cpu().numpy() for v in (x, xt, y))
    feats = [linear_features(xe, cfg.layers, cfg.init_scale) for xe in x64]
    feats_test = [linear_features(xe, cfg.layers, cfg.init_scale) for xe in xt64]
    linear = LinearModel(feats, feats_test, y64, cfg.lr, eval_schedule(cfg.steps, cfg.n_evals))
    W = model[0].weight.detach().double().cpu().numpy()  # [E, d, m]
    a = model[3].weight.detach().double().cpu().numpy()[..., 0]  # [E, m]
    facts = [dict(kernel_gap=kernel_gap(x64[e], W[e].T, a[e], cfg.layers, cfg.init_scale),
                  lr_stability=float(cfg.lr * np.linalg.eigvalsh(F.T @ F)[-1] / cfg.n))
             for e, F in enumerate(feats)]
    counter = StepCounter(cfg.lr)
    y_norm, yt_norm = y.norm(dim=1), yt.norm(dim=1)

    def loss(out, target):
        return 0.5 * squared_loss(out.reshape(target.shape), target)

    def evaluate(m) -> dict[str, torch.Tensor]:
        lin, lin_t = (torch.as_tensor(v, dtype=dtype, device=dev) for v in linear.at(counter.step))
        out, out_t = m(x)[..., 0], m(xt)[..., 0]  # [E, n], [E, n_test]
        return dict(gap_train=(out - lin).norm(dim=1) / y_norm, gap_test=(out_t - lin_t).norm(dim=1) / yt_norm,
                    loss_train=loss(out, y), loss_test=loss(out_t, yt), loss_lin=loss(lin, y),
                    loss_lin_test=loss(lin_t, yt))

    return Task(model=model, x=x, y=y, loss=loss, evaluate=evaluate, make_optimizer=counter.make,
                member_summary=facts,
                summary=dict(init_gap_theory=cfg.init_scale * math.sqrt(0.5), gap_level=GAP_LEVEL))
