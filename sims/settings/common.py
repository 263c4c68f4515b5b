"""Pieces shared by the settings: losses, accuracies, the LC probe built from a config."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..nn import make_generators

__all__ = ["logistic_loss", "sign_accuracy", "make_probe"]


def logistic_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss per member: out [E, N, 1] or [E, N], y [E, N] (+-1) -> [E]."""
    return F.softplus(-y * out.reshape(y.shape)).mean(dim=1)


def sign_accuracy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of points with sign(out) == y per member (out == 0 counts as wrong): [E]."""
    return (torch.sign(out.reshape(y.shape)) == y).to(out.dtype).mean(dim=1)


def make_probe(cfg, seeds, *, train: torch.Tensor, test: torch.Tensor):
    """An `lc.Probe` on train (first lc_points), test (first lc_points) and random box points.

    train, test: [E, N, ...]. Random points are uniform in the bounding box of each member's training
    inputs, drawn from the member's 'probe' generator; the frame comes from seed cfg.seed.
    Returns None when cfg.lc is off.
    """
    if not cfg.lc:
        return None
    import lc

    k = cfg.lc_points
    gens = make_generators(seeds, "probe")
    rand = torch.stack([lc.random_box_points(train[e].double().cpu(), k, g) for e, g in enumerate(gens)])
    points = {"train": train[:, :k], "test": test[:, :k], "random": rand.to(train.device, train.dtype)}
    return lc.Probe(points=points, radius=cfg.lc_radius, n_dirs=cfg.lc_dirs, seed=cfg.seed)
