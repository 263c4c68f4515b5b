"""Synthetic data with a member dimension: each member draws its own data from its own generator.

Every generator here draws one member's data from one `torch.Generator` (CPU, float64, then cast),
and `per_member(fn, generators, ...)` stacks the members: arrays [E, n, ...].
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = ["per_member", "xor_clusters", "gaussian_mixture", "flip_labels"]


def per_member(fn: Callable, generators: Sequence[torch.Generator], *args, dtype=torch.float32, device="cpu",
               **kwargs) -> tuple[torch.Tensor, ...]:
    """Call `fn(*args, generator=g, **kwargs)` for each member and stack every returned tensor on dim 0.

    Floating tensors are cast to `dtype`; everything is moved to `device`.
    """
    outs = [fn(*args, generator=g, **kwargs) for g in generators]
    stacked = []
    for parts in zip(*outs):
        t = torch.stack(parts)
        stacked.append(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype))
    return tuple(stacked)


def flip_labels(y: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Each +-1 label flipped independently with probability `rate`."""
    flips = torch.rand(y.shape, generator=generator, dtype=torch.float64) < rate
    return torch.where(flips, -y, y)


def xor_clusters(n: int, d: int, mu_norm: float, noise_rate: float, *, generator: torch.Generator):
    """XOR cluster data (Xu, Wang, Frei, Vardi, Hu 2024).

    Cluster means +-mu_1 and +-mu_2 with mu_1 = mu_norm e_1, mu_2 = mu_norm e_2 (orthogonal, equal
    norms; with isotropic noise this choice of axes loses no generality). x = mu + xi, xi ~ N(0, I_d),
    the cluster chosen uniformly among the four. Clean label +1 for +-mu_1, -1 for +-mu_2; the returned
    label is flipped with probability `noise_rate`.
    Returns x [n, d] (float64), y [n] noisy labels, y_clean [n] (both +-1 float64).
    """
    cluster = torch.randint(0, 4, (n,), generator=generator)  # 0: +mu1, 1: -mu1, 2: +mu2, 3: -mu2
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    sign = 1.0 - 2.0 * (cluster % 2).double()
    axis = (cluster // 2).long()
    x[torch.arange(n), axis] += sign * mu_norm
    y_clean = torch.where(axis == 0, 1.0, -1.0).double()
    return x, flip_labels(y_clean, noise_rate, generator), y_clean


def gaussian_mixture(n: int, d: int, mu_norm: float, noise_rate: float, *, generator: torch.Generator):
    """Two-cluster Gaussian mixture x = y_clean mu + N(0, I_d), mu = mu_norm e_1, labels flipped w.p. rate.

    (Frei et al. 2023; Chatterji and Long 2021.) Returns x [n, d], y [n], y_clean [n] (float64).
    """
    y_clean = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, 1.0, -1.0).double()
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    x[:, 0] += y_clean * mu_norm
    return x, flip_labels(y_clean, noise_rate, generator), y_clean
