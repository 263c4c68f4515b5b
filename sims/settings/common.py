"""Pieces shared by the settings: per-member losses and accuracies, shared config fields, the LC probe."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..config import ProbedConfig, param
from ..nn import make_generators

__all__ = ["logistic_loss", "sign_accuracy", "squared_loss", "cross_entropy", "argmax_accuracy", "make_probe",
           "TwoLayerConfig", "two_layer_memory"]


def _check_pair(fn: str, out: torch.Tensor, y: torch.Tensor, ok: bool, want: str) -> None:
    """Raise one ValueError naming `fn`, both shapes and the shapes it accepts when `ok` is False."""
    if not ok:
        raise ValueError(f"{fn}: output of shape {tuple(out.shape)} does not match targets of shape "
                         f"{tuple(y.shape)}; expected {want}")


def _per_point(fn: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """out [E, N] or [E, N, 1] as [E, N] against y [E, N] (one output per point); any other pair raises."""
    ok = y.dim() == 2 and tuple(out.shape) in (tuple(y.shape), (*y.shape, 1))
    _check_pair(fn, out, y, ok, "y [E, N] and out [E, N] or [E, N, 1]")
    return out.reshape(y.shape)


def _per_class(fn: str, out: torch.Tensor, y: torch.Tensor) -> None:
    """Check logits out [E, N, K] against integer labels y [E, N]."""
    ok = out.dim() == 3 and tuple(y.shape) == tuple(out.shape[:2]) and not y.is_floating_point()
    _check_pair(fn, out, y, ok, "logits out [E, N, K] and integer labels y [E, N]")


def logistic_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss per member: out [E, N, 1] or [E, N], y [E, N] (+-1) -> [E]."""
    return F.softplus(-y * _per_point("logistic_loss", out, y)).mean(dim=1)


def sign_accuracy(out: torch.Tensor, y: torch.Tensor, *, tie: float = 0.0) -> torch.Tensor:
    """Fraction of points with sign(out) == y per member, a point with out == 0 counting `tie` (0: wrong;
    1/2: a coin flip, as in Lyu et al. 2024's code): out [E, N, 1] or [E, N], y [E, N] -> [E], float64 (a
    float32 mean would turn 352 / 400 into 0.8799999952)."""
    out = _per_point("sign_accuracy", out, y)
    right = (torch.sign(out) == y).to(torch.float64)
    return (right + tie * (out == 0).to(torch.float64)).mean(dim=1)


def squared_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per member over every point and output: out, y [E, N, ...] of one shape (or out
    [E, N, 1] against y [E, N], a single output per point) -> [E]. Any other pair raises (broadcasting out
    [E, N, 1] against y [E, N] would silently average an [E, N, N] table of wrong differences)."""
    ok = y.dim() >= 2 and tuple(out.shape) in (tuple(y.shape), (*y.shape, 1))
    _check_pair("squared_loss", out, y, ok, "out and y of one shape [E, N, ...], or out [E, N, 1] and y [E, N]")
    return (out.reshape(y.shape) - y).pow(2).flatten(1).mean(dim=1)


def cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per member: logits out [E, N, K], integer labels y [E, N] -> [E]."""
    _per_class("cross_entropy", out, y)
    E, N, K = out.shape
    return F.cross_entropy(out.reshape(E * N, K), y.reshape(E * N), reduction="none").view(E, N).mean(dim=1)


def argmax_accuracy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of points whose largest logit is the label, per member: out [E, N, K], y [E, N] -> [E] float64."""
    _per_class("argmax_accuracy", out, y)
    return (out.argmax(dim=-1) == y).to(torch.float64).mean(dim=1)


@dataclass(frozen=True)
class TwoLayerConfig(ProbedConfig):
    """Shared fields of the two-layer settings on high-dimensional Gaussian data (Frei et al. 2023, Xu et al. 2024):
    f(x) = sum_j a_j phi(<w_j, x>), a_j = +-1/sqrt(m) fixed, W ~ N(0, omega^2), full-batch GD, logistic loss."""

    n: int = param(100, "training points per member", low=1)
    d: int = param(2000, "input dimension", low=2)
    noise_rate: float = param(0.0, "probability that a training (and noisy-test) label is flipped",
                              low=0.0, high=0.5, high_open=True)
    width: int = param(512, "hidden units m", low=4)
    init_scale: float = param(1e-4, "std omega of the first-layer weights, W_ij ~ N(0, omega^2)", low=0.0,
                              low_open=True)
    n_test: int = param(1000, "fresh test points per member", low=1)
    lr: float = param(0.1, "learning rate of full-batch GD on the mean logistic loss", low=0.0, low_open=True)
    steps: int = param(600, "number of GD steps", low=0)
    n_evals: int = param(40, "number of evaluation points (log-spaced plus linear, with 0 and the last step)",
                         low=2)

    @property
    def lc_input_dim(self) -> int:
        """Input dimension: the LC probe takes at most this many directions (checked by `sims.config.validate`)."""
        return self.d


def two_layer_memory(members, itemsize: int) -> dict:
    """Rough bytes of a two-layer setting: data (and float64 training copies for margins), parameters with
    their copies (`sims.memory.PARAM_COPIES`), and activations of train and test points."""
    from ..memory import PARAM_COPIES

    c, E = members[0], len(members)
    points = c.n + c.n_test
    return dict(data=E * (points * c.d * itemsize + c.n * c.d * 8), parameters=E * PARAM_COPIES * c.d * c.width * itemsize,
                activations=4 * E * points * c.width * itemsize)


def make_probe(cfg, seeds, *, train: torch.Tensor, test: torch.Tensor, radius=None):
    """An `lc.Probe` on train (first lc_points), test (first lc_points) and random box points.

    train, test: [E, N, ...]. Random points are uniform in the bounding box of each member's training
    inputs, drawn from the member's 'probe' generator; the frame comes from seed cfg.seed. `radius`
    (one value or a list) replaces cfg.lc_radius. Returns None when cfg.lc is off.
    """
    if not cfg.lc:
        return None
    import lc

    k = cfg.lc_points
    gens = make_generators(seeds, "probe")
    flat = train.flatten(2)
    rand = torch.stack([lc.random_box_points(flat[e].double().cpu(), k, g) for e, g in enumerate(gens)])
    rand = rand.reshape(len(gens), k, *train.shape[2:])
    points = {"train": train[:, :k], "test": test[:, :k], "random": rand.to(train.device, train.dtype)}
    return lc.Probe(points=points, radius=cfg.lc_radius if radius is None else radius, n_dirs=cfg.lc_dirs,
                    seed=cfg.seed)
