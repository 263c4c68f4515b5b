"""Ensembles of linear networks: deep matrix factorisations, diagonal linear nets, symmetric factorisations."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .core import normal_draw, stack_draws, values_per_member

__all__ = ["DeepMatrixFactorization", "DiagonalNet", "DiagonalLinear", "SymmetricFactorization", "SymmetricFactor"]


class DeepMatrixFactorization(nn.Module):
    """E independent depth-N linear factorisations W = W_N ... W_1 of an n x n matrix (Arora et al. 2019).

    Factors `factors[j]` = W_{j+1}: [E, n, n], no bias, each drawn from N(0, s^2) with
    s = init_scale^(1/N) / sqrt(n), so that ||W(0)||_F ~ init_scale * sqrt(n) at every depth (the
    authors' rule; a list of init scales: one per member). Depth 1 is the matrix itself, trained directly.

    `matrix()` is the end-to-end product [E, n, n]. `model(x)` reads it through measurements:
    x [E, k, 2] long = observed positions (i, j) -> entries W[e, i, j], [E, k] (completion); or
    x [E, k, n, n] float = measurement matrices A -> <A_i, W> = sum_ab A_iab W_ab, [E, k] (sensing).
    `member(e)` is an `nn.Sequential` of N bias-free `nn.Linear(n, n)` with weights W_1..W_N, the
    ordinary linear network x -> W x. The model has no activation modules (LC does not apply).
    """

    def __init__(self, n: int, depth: int, generators: Sequence[torch.Generator], *,
                 init_scale: float | Sequence[float] = 1e-3, dtype: torch.dtype = torch.float32):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth (number of factors) must be >= 1; got {depth}")
        if n < 1:
            raise ValueError(f"matrix size n must be >= 1; got {n}")
        self.n, self.depth = n, depth
        std = [s ** (1.0 / depth) / math.sqrt(n) for s in values_per_member(init_scale, len(generators), "init_scale")]
        self.factors = nn.ParameterList(
            nn.Parameter(stack_draws(generators, (n, n), normal_draw(std), dtype)) for _ in range(depth))

    @property
    def n_members(self) -> int:
        return self.factors[0].shape[0]

    def matrix(self) -> torch.Tensor:
        """The end-to-end matrix W_N ... W_1: [E, n, n]."""
        W = self.factors[0]
        for f in self.factors[1:]:
            W = torch.bmm(f, W)
        return W

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.read(self.matrix(), x)

    @staticmethod
    def read(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Measurements of matrices W [E, m, n]: entries at positions x [E, k, 2] (long), or <A_i, W> for
        measurement matrices x [E, k, m, n] (float). Returns [E, k]."""
        E, m, n = W.shape
        if x.shape[0] != E:
            raise ValueError(f"input has {x.shape[0]} members, the model has {E}")
        if not x.is_floating_point():
            if x.dim() != 3 or x.shape[2] != 2:
                raise ValueError(f"positions must be [E, k, 2] (row, col); got shape {tuple(x.shape)}")
            return W.reshape(E, -1).gather(1, x[..., 0] * n + x[..., 1])  # [E, k]
        if x.dim() != 4 or tuple(x.shape[2:]) != (m, n):
            raise ValueError(f"measurement matrices must be [E, k, {m}, {n}]; got {tuple(x.shape)}")
        return torch.bmm(x.reshape(E, x.shape[1], m * n), W.reshape(E, m * n, 1)).squeeze(2)  # [E, k]

    def member(self, e: int) -> nn.Sequential:
        """Member e as `nn.Sequential(Linear_1, ..., Linear_N)` with Linear_j.weight = W_j (x -> W x)."""
        if not 0 <= e < self.n_members:
            raise ValueError(f"member index must be in [0, {self.n_members}); got {e}")
        layers = []
        for f in self.factors:
            lin = nn.Linear(self.n, self.n, bias=False).to(device=f.device, dtype=f.dtype)
            with torch.no_grad():
                lin.weight.copy_(f[e])
            layers.append(lin)
        return nn.Sequential(*layers)

    def extra_repr(self) -> str:
        return f"E={self.n_members}, n={self.n}, depth={self.depth}"


def _scales(alphas: Sequence[float], dtype: torch.dtype) -> torch.Tensor:
    """Per-member init scales as a [E] tensor; each must be a positive finite number."""
    alphas = list(alphas)
    if not alphas or any(isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a <= 0
                         for a in alphas):
        raise ValueError(f"alphas must be a non-empty list of positive finite init scales, one per member; got {alphas!r}")
    return torch.tensor([float(a) for a in alphas], dtype=dtype)


class DiagonalLinear(nn.Module):
    """One diagonal linear net f(x) = <u^2 - v^2, x>, u, v [d] (what `DiagonalNet.member` returns).

    forward: x [N, d] -> [N, 1]; `predictor()` is the linear predictor w = u^2 - v^2 [d].
    """

    def __init__(self, u: torch.Tensor, v: torch.Tensor):
        super().__init__()
        self.u, self.v = nn.Parameter(u.detach().clone()), nn.Parameter(v.detach().clone())

    def predictor(self) -> torch.Tensor:
        return self.u.pow(2) - self.v.pow(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.predictor()).unsqueeze(-1)


class DiagonalNet(nn.Module):
    """E diagonal linear nets f_e(x) = <u_e^2 - v_e^2, x> (Woodworth et al. 2020; Lyu et al. 2024, Sec. 3).

    u, v: [E, d], initialised u_e = v_e = alpha_e / sqrt(2d) 1, so the predictor w_e = u_e^2 - v_e^2 is 0 and
    ||theta_e|| = ||(u_e, v_e)|| = alpha_e exactly (the authors' code). The net is linear in x and
    2-homogeneous in theta = (u, v); from a large alpha it starts in the kernel regime (the NTK at init is the
    linear kernel (4 alpha^2 / d) <x, x'>), from a small one in the rich (l1) regime. The init is deterministic:
    member e equals the one-member net with scale alphas[e].

    forward: x [N, d] (shared) or [E, N, d] -> [E, N, 1]. `predictor()` -> w [E, d]. `member(e)` -> a
    `DiagonalLinear`. There is no activation module: LC does not apply.
    """

    def __init__(self, d: int, alphas: Sequence[float], *, dtype: torch.dtype = torch.float32):
        super().__init__()
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"input dimension d must be an integer >= 1; got {d!r}")
        self.d = d
        u = (_scales(alphas, dtype) / math.sqrt(2 * d)).unsqueeze(1).expand(-1, d).clone()  # [E, d]
        self.u, self.v = nn.Parameter(u), nn.Parameter(u.clone())

    @property
    def n_members(self) -> int:
        return self.u.shape[0]

    def predictor(self) -> torch.Tensor:
        """w = u^2 - v^2: [E, d]."""
        return self.u.pow(2) - self.v.pow(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.predictor()
        if x.dim() == 2:  # [N, d], shared by all members
            return torch.einsum("nd,ed->en", x, w).unsqueeze(-1)
        if x.dim() != 3 or x.shape[0] != self.n_members:
            raise ValueError(f"input must be [N, d] or [{self.n_members}, N, d]; got shape {tuple(x.shape)}")
        # <w_e, x_en> as the row vector w_e^T times x_e^T: one batched gemm whose backward (grad w = g^T x) reads x
        # row by row; bmm(x, w) runs as E strided matrix-vector products, about 10x slower on a CPU for E > 1
        return torch.bmm(w.unsqueeze(1), x.transpose(1, 2)).transpose(1, 2)  # [E, N, 1]

    def member(self, e: int) -> DiagonalLinear:
        if not 0 <= e < self.n_members:
            raise ValueError(f"member index must be in [0, {self.n_members}); got {e}")
        return DiagonalLinear(self.u[e], self.v[e])

    def extra_repr(self) -> str:
        return f"E={self.n_members}, d={self.d}"


class SymmetricFactor(nn.Module):
    """One symmetric factorisation W = U U^T - V V^T, U, V [d, d] (what `SymmetricFactorization.member`
    returns). `matrix()` -> [d, d]; forward: positions [k, 2] (long; row, col) -> entries W[i, j] [k]."""

    def __init__(self, U: torch.Tensor, V: torch.Tensor):
        super().__init__()
        self.U, self.V = nn.Parameter(U.detach().clone()), nn.Parameter(V.detach().clone())

    def matrix(self) -> torch.Tensor:
        return self.U @ self.U.T - self.V @ self.V.T

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        W = self.matrix()
        return W[positions[:, 0], positions[:, 1]]


class SymmetricFactorization(nn.Module):
    """E factorisations W_e = U_e U_e^T - V_e V_e^T of a d x d matrix (Lyu et al. 2024, matrix completion).

    U, V: [E, d, d], initialised U_e = V_e = alpha_e I, so W_e = 0 and ||theta_e||_F = alpha_e sqrt(2d)
    (the authors' code). W is symmetric and, as P - N with P, N PSD, any symmetric matrix; the model is
    2-homogeneous in theta = (U, V). Deterministic init: member e equals the one-member model with alphas[e].

    `matrix()` -> [E, d, d]; forward: positions [E, k, 2] (long) -> entries [E, k]
    (`read(W, positions)`, as `DeepMatrixFactorization.read`). `member(e)` -> a `SymmetricFactor`. No activation module (no LC).
    """

    def __init__(self, d: int, alphas: Sequence[float], *, dtype: torch.dtype = torch.float32):
        super().__init__()
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"matrix size d must be an integer >= 1; got {d!r}")
        self.d = d
        U = _scales(alphas, dtype).view(-1, 1, 1) * torch.eye(d, dtype=dtype)  # [E, d, d]
        self.U, self.V = nn.Parameter(U), nn.Parameter(U.clone())

    @property
    def n_members(self) -> int:
        return self.U.shape[0]

    def matrix(self) -> torch.Tensor:
        """U U^T - V V^T: [E, d, d]."""
        return torch.bmm(self.U, self.U.transpose(1, 2)) - torch.bmm(self.V, self.V.transpose(1, 2))

    read = staticmethod(DeepMatrixFactorization.read)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.read(self.matrix(), positions)

    def member(self, e: int) -> SymmetricFactor:
        if not 0 <= e < self.n_members:
            raise ValueError(f"member index must be in [0, {self.n_members}); got {e}")
        return SymmetricFactor(self.U[e], self.V[e])

    def extra_repr(self) -> str:
        return f"E={self.n_members}, d={self.d}"
