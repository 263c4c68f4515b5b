"""Synthetic data with a member dimension: each member draws its own data from its own generator.

Every generator here draws one member's data from one `torch.Generator` (CPU, float64, then cast),
and `per_member(fn, generators, ...)` stacks the members: arrays [E, n, ...].
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

__all__ = ["per_member", "for_members", "xor_clusters", "gaussian_mixture", "flip_labels", "low_rank_matrix",
           "completion_data", "sensing_data", "sign_teacher", "linear_teacher"]


def _stack(outs, dtype, device) -> tuple[torch.Tensor, ...]:
    """Stack the members' returned tensors on dim 0; floating ones cast to `dtype`, all moved to `device`."""
    stacked = []
    for parts in zip(*outs):
        t = torch.stack(parts)
        stacked.append(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype))
    return tuple(stacked)


def per_member(fn: Callable, generators: Sequence[torch.Generator], *args, dtype=torch.float32, device="cpu",
               **kwargs) -> tuple[torch.Tensor, ...]:
    """Call `fn(*args, generator=g, **kwargs)` for each member and stack every returned tensor on dim 0.

    Floating tensors are cast to `dtype`; everything is moved to `device`.
    """
    return _stack([fn(*args, generator=g, **kwargs) for g in generators], dtype, device)


def for_members(fn: Callable, members: Sequence, generators: Sequence[torch.Generator], *, dtype=torch.float32,
                device="cpu") -> tuple[torch.Tensor, ...]:
    """Like `per_member`, for data whose parameters may differ between members (member-wise config fields such
    as the noise rate): `fn(cfg, generator)` with member e's config and generator, stacked on dim 0."""
    return _stack([fn(c, g) for c, g in zip(members, generators)], dtype, device)


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


def sign_teacher(n: int, d: int, *, generator: torch.Generator):
    """Isotropic inputs with the labels of a linear threshold teacher: x ~ N(0, I_d), y = sign(x_1) (+-1).

    (Hu, Xiao, Adlam, Pennington 2020 use binary labels on isotropic data; the teacher direction e_1 loses no
    generality for isotropic x.) The best linear predictor of y is sqrt(2/pi) x_1, which leaves a fraction
    1 - 2/pi of E y^2 unexplained: a linear model stalls there, a network can fit more.
    Returns x [n, d], y [n] (float64).
    """
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return x, torch.where(x[:, 0] >= 0, 1.0, -1.0).double()


def linear_teacher(n: int, d: int, noise: float, *, generator: torch.Generator):
    """x ~ N(0, I_d), y = <beta*, x> + noise * N(0, 1), with beta* uniform on the unit sphere (drawn first, so a
    fixed generator seed gives the same teacher for every n).

    (Nakkiran, Venkat, Kakade, Ma 2021, isotropic linear regression; the random-features double-descent
    setting regresses on features of these x.) Returns beta* [d], x [n, d], y [n] (float64).
    """
    beta = torch.randn(d, generator=generator, dtype=torch.float64)
    beta = beta / beta.norm()
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return beta, x, x @ beta + noise * torch.randn(n, generator=generator, dtype=torch.float64)


def low_rank_matrix(n: int, rank: int, *, generator: torch.Generator) -> torch.Tensor:
    """W* = U V^T / sqrt(r) with U, V ~ N(0, 1)^{n x r}, rescaled to ||W*||_F = n: [n, n] float64.

    (Arora, Cohen, Hu, Luo 2019: entries of RMS 1, so ||W - W*||_F^2 / ||W*||_F^2 is a mean over entries.)
    """
    U = torch.randn(n, rank, generator=generator, dtype=torch.float64)
    V = torch.randn(n, rank, generator=generator, dtype=torch.float64)
    W = U @ V.T / math.sqrt(rank)
    return W * (n / W.norm())


def completion_data(n: int, rank: int, n_obs: int, *, generator: torch.Generator):
    """W* [n, n], observed positions [n_obs, 2] (row, col; uniform without replacement), values [n_obs].

    The positions are the first n_obs of one random permutation of the n^2 entries, so for a fixed
    generator seed a larger n_obs observes a superset of the entries.
    """
    W = low_rank_matrix(n, rank, generator=generator)
    flat = torch.randperm(n * n, generator=generator)[:n_obs]
    return W, torch.stack([flat // n, flat % n], dim=1), W.reshape(-1)[flat]


def sensing_data(n: int, rank: int, n_obs: int, *, generator: torch.Generator):
    """W* [n, n], measurement matrices A [n_obs, n, n] with N(0, 1) / n entries, y_i = <A_i, W*> [n_obs]."""
    W = low_rank_matrix(n, rank, generator=generator)
    A = torch.randn(n_obs, n, n, generator=generator, dtype=torch.float64) / n
    return W, A, (A * W).sum(dim=(1, 2))
