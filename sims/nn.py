"""Ensemble-first models: every parameter has a leading member dimension E.

E independent networks (seeds, data draws, hyper-parameter copies) train as one tensor program:
an `EnsembleLinear` is one `torch.baddbmm` over the members instead of E small matmuls. E = 1 is an
ordinary single run.

Conventions shared by every model here (and relied on by `lc`):

- `model.n_members` is E.
- `model(x)` takes `x` of shape [N, d] (the same points for every member) or [E, N, d] (each member
  its own points) and returns [E, N, out].
- Every hidden activation is a torch module (`nn.ReLU`, `nn.LeakyReLU`, `nn.Identity` for linear
  nets), so its input is the pre-activation that `lc` hooks; inside an ensemble it has shape [E, N, H].
- Models are `EnsembleSequential` containers whose first child is the affine map of the input.
- `model.member(e)` returns an ordinary `torch.nn.Module` (an `nn.Sequential` of `nn.Linear`,
  activations, `nn.BatchNorm1d`) holding copies of member e's parameters; its outputs equal
  `model(x)[e]` for inputs `x[e]`.

Initialisation draws each member's parameters from that member's own `torch.Generator` (on the CPU,
in a fixed order), so member e of an E-member model equals the one-member model built with member e's
generator: ensembles reproduce single runs exactly.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "EnsembleLinear",
    "EnsembleBatchNorm1d",
    "EnsembleSequential",
    "TwoLayerNet",
    "NTKTwoLayerNet",
    "Scale",
    "MLP",
    "DeepMatrixFactorization",
    "DiagonalNet",
    "DiagonalLinear",
    "SymmetricFactorization",
    "SymmetricFactor",
    "make_generators",
    "activation",
    "values_per_member",
]


STREAMS = {"data": 0, "init": 1, "probe": 2, "batches": 3, "eval": 4}


def make_generators(seeds: Sequence[int], stream: str = "init") -> list[torch.Generator]:
    """One CPU `torch.Generator` per member for one random stream ('data', 'init', 'probe', 'batches', 'eval').

    The generator of (seed, stream) is seeded with `16 * seed + STREAMS[stream]`: streams never share
    a seed, and changing one stream (say the data size) leaves the others' draws unchanged.
    """
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {sorted(STREAMS)}; got {stream!r}")
    return [torch.Generator().manual_seed(16 * int(s) + STREAMS[stream]) for s in seeds]


def activation(name: str, slope: float = 0.0) -> nn.Module:
    """The activation module by name: 'relu', 'leaky_relu' (negative slope `slope`) or 'linear'."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=slope)
    if name == "linear":
        return nn.Identity()
    raise ValueError(f"activation must be one of 'relu', 'leaky_relu', 'linear'; got {name!r}")


def _stack_draws(generators, shape, draw, dtype) -> torch.Tensor:
    """Stack one CPU draw per member: [E, *shape]; `draw(shape, generator, dtype, e)`."""
    return torch.stack([draw(shape, g, dtype, e) for e, g in enumerate(generators)])


def values_per_member(value: float | Sequence[float], E: int, name: str) -> list[float]:
    """A scalar hyperparameter of a model (an init scale) as a list of E floats: one value repeated, or one value
    per member given as a list or tuple of length E (else a ValueError naming `name`)."""
    values = [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)] * E
    if len(values) != E:
        raise ValueError(f"{name} must be one value or one per member ({E}); got {len(values)} values")
    return values


def _normal(std: float | Sequence[float]):
    """N(0, std^2), or N(0, std[e]^2) for member e."""
    return lambda shape, g, dtype, e: torch.randn(shape, generator=g, dtype=dtype) * (
        std[e] if isinstance(std, (list, tuple)) else std)


def _uniform(bound: float):
    return lambda shape, g, dtype, e: (torch.rand(shape, generator=g, dtype=dtype) * 2 - 1) * bound


class EnsembleLinear(nn.Module):
    """E independent affine maps, y[e] = x[e] @ weight[e] + bias[e].

    weight: [E, in, out] (stored input-major so the forward is one `baddbmm`); bias: [E, 1, out].
    Default init is PyTorch's `nn.Linear` rule, U(-1/sqrt(in), 1/sqrt(in)) for weight and bias,
    drawn per member from `generators`; `std` instead draws the weight from N(0, std^2) (a list: std[e] for
    member e).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        generators: Sequence[torch.Generator],
        *,
        bias: bool = True,
        std: float | Sequence[float] | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        if std is None:
            draw_w = _uniform(bound)
        else:
            draw_w = _normal(values_per_member(std, len(generators), "std") if isinstance(std, (list, tuple)) else std)
        self.weight = nn.Parameter(_stack_draws(generators, (in_features, out_features), draw_w, dtype))
        if bias:
            self.bias = nn.Parameter(_stack_draws(generators, (1, out_features), _uniform(bound), dtype))
        else:
            self.register_parameter("bias", None)

    @property
    def n_members(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # [N, in], shared by all members
            out = torch.matmul(x, self.weight)  # [E, N, out]
            return out if self.bias is None else out + self.bias
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)  # [E, N, out]

    def member(self, e: int) -> nn.Linear:
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        lin = lin.to(device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.weight[e].T)
            if self.bias is not None:
                lin.bias.copy_(self.bias[e, 0])
        lin.weight.requires_grad_(self.weight.requires_grad)
        return lin

    def extra_repr(self) -> str:
        return f"E={self.n_members}, in={self.in_features}, out={self.out_features}, bias={self.bias is not None}"


class EnsembleBatchNorm1d(nn.Module):
    """Batch norm with statistics per member: x [E, N, C] is normalised over N for each (e, c).

    Implemented as one `F.batch_norm` over the flattened [N, E*C] view, so it is exactly E
    independent `nn.BatchNorm1d(C)` (same eps, momentum, running statistics).
    """

    def __init__(self, n_members: int, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(n_members, num_features, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_members, num_features, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(n_members, num_features, dtype=dtype))
        self.register_buffer("running_var", torch.ones(n_members, num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @property
    def n_members(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        E, N, C = x.shape
        if self.training:
            self.num_batches_tracked += 1
        flat = x.transpose(0, 1).reshape(N, E * C)
        out = F.batch_norm(
            flat, self.running_mean.view(-1), self.running_var.view(-1),
            self.weight.reshape(-1), self.bias.reshape(-1), self.training, self.momentum, self.eps,
        )
        return out.reshape(N, E, C).transpose(0, 1)

    def member(self, e: int) -> nn.BatchNorm1d:
        bn = nn.BatchNorm1d(self.num_features, eps=self.eps, momentum=self.momentum)
        bn = bn.to(device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            bn.weight.copy_(self.weight[e])
            bn.bias.copy_(self.bias[e])
            bn.running_mean.copy_(self.running_mean[e])
            bn.running_var.copy_(self.running_var[e])
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
        bn.train(self.training)
        return bn


class EnsembleSequential(nn.Sequential):
    """A sequence of ensemble layers and (stateless) activation modules; see the module docstring."""

    def __init__(self, n_members: int, *layers: nn.Module):
        super().__init__(*layers)
        self.n_members = n_members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3):
            raise ValueError(f"input must be [N, d] or [E, N, d]; got shape {tuple(x.shape)}")
        if x.dim() == 3 and x.shape[0] != self.n_members:
            raise ValueError(f"input has {x.shape[0]} members, the model has {self.n_members}")
        return super().forward(x)

    def member(self, e: int) -> nn.Sequential:
        """Member e as an ordinary `nn.Sequential` with copied parameters."""
        if not 0 <= e < self.n_members:
            raise ValueError(f"member index must be in [0, {self.n_members}); got {e}")
        return nn.Sequential(*(m.member(e) if hasattr(m, "member") else copy.deepcopy(m) for m in self))


class TwoLayerNet(EnsembleSequential):
    """f(x) = sum_j a_j phi(<w_j, x>): the two-layer net of Frei et al. 2023 and Xu et al. 2024.

    First layer W [E, d, m] ~ N(0, init_scale^2) (a list: init_scale[e] for member e), no bias. Second
    layer a [E, m, 1], no bias,
    a_j = +1/sqrt(m) for the first half of the units and -1/sqrt(m) for the rest (balanced), fixed
    at init unless `train_second`. phi is ReLU, or leaky ReLU max(slope z, z).
    Output: [E, N, 1].
    """

    def __init__(self, d: int, width: int, generators: Sequence[torch.Generator], *,
                 act: str = "relu", slope: float = 0.0, init_scale: float | Sequence[float] = 1.0,
                 train_second: bool = False, dtype: torch.dtype = torch.float32):
        E = len(generators)
        first = EnsembleLinear(d, width, generators, bias=False, std=init_scale, dtype=dtype)
        second = EnsembleLinear(width, 1, generators, bias=False, dtype=dtype)
        signs = torch.ones(width, dtype=dtype)
        signs[width // 2 + width % 2:] = -1.0
        with torch.no_grad():
            second.weight.copy_((signs / math.sqrt(width)).view(1, width, 1).expand(E, width, 1))
        second.weight.requires_grad_(train_second)
        super().__init__(E, first, activation(act, slope), second)


class Scale(nn.Module):
    """Multiply by a fixed constant (the 1/sqrt(fan-in) factors of the NTK parametrisation); no parameters."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:.6g}"


class NTKTwoLayerNet(EnsembleSequential):
    """f(x) = (1 / sqrt(m)) sum_r a_r relu(<w_r, x> / sqrt(d)): the two-layer net of Hu, Xiao, Adlam,
    Pennington 2020 in the NTK parametrisation (`theory.early_time`).

    First layer W [E, d, m] ~ N(0, 1), no bias; second layer a [E, m, 1] = +-init_scale with independent
    fair signs (init_scale = kappa: the network's output at init has RMS kappa sqrt(E relu(g)^2) = kappa /
    sqrt(2), and the first layer's tangent kernel is kappa^2 times that of |a_r| = 1). `train` says which
    layers get gradients: 'first', 'second' or 'both'. Children: Linear, Scale(1/sqrt(d)), ReLU, Linear,
    Scale(1/sqrt(m)), so the ReLU's input is the pre-activation <w_r, x> / sqrt(d). Output: [E, N, 1].
    """

    def __init__(self, d: int, width: int, generators: Sequence[torch.Generator], *,
                 init_scale: float | Sequence[float] = 1.0, train: str = "both", dtype: torch.dtype = torch.float32):
        if train not in ("first", "second", "both"):
            raise ValueError(f"train must be 'first', 'second' or 'both'; got {train!r}")
        E = len(generators)
        first = EnsembleLinear(d, width, generators, bias=False, std=1.0, dtype=dtype)
        second = EnsembleLinear(width, 1, generators, bias=False, dtype=dtype)  # its draw is replaced by:
        signs = _stack_draws(generators, (width, 1), lambda shape, g, dt, e: torch.randint(0, 2, shape, generator=g)
                             .to(dt) * 2 - 1, dtype)
        kappa = torch.tensor(values_per_member(init_scale, E, "init_scale"), dtype=dtype).view(E, 1, 1)
        with torch.no_grad():
            second.weight.copy_(kappa * signs)
        first.weight.requires_grad_(train in ("first", "both"))
        second.weight.requires_grad_(train in ("second", "both"))
        super().__init__(E, first, Scale(1 / math.sqrt(d)), nn.ReLU(), second, Scale(1 / math.sqrt(width)))


class MLP(EnsembleSequential):
    """A fully-connected net with `depth` Linear layers (depth - 1 hidden layers of `width` units).

    init "torch": PyTorch's default `nn.Linear` init; "kaiming": weights N(0, gain^2 / fan_in) (Kaiming-normal,
    fan-in mode) with the gain of the activation that follows (ReLU sqrt(2), leaky ReLU sqrt(2 / (1 + slope^2)),
    linear 1; the last layer 1) and biases 0. Then every parameter is multiplied by `init_scale` (the alpha of
    Omnigrok / Humayun et al. and Lyu et al. 2024: a large alpha starts far from the origin; a list:
    init_scale[e] for member e, batch-norm weights and biases included).
    bias "all": every Linear has a bias; "first": only the first one (Lyu et al. 2024's modular-addition net:
    the net is then homogeneous of degree `depth` in all its parameters). Optional per-member batch norm
    after every hidden Linear. Output: [E, N, d_out].
    """

    def __init__(self, d_in: int, width: int, d_out: int, depth: int, generators: Sequence[torch.Generator],
                 *, act: str = "relu", slope: float = 0.0, init_scale: float | Sequence[float] = 1.0,
                 batch_norm: bool = False, init: str = "torch", bias: str = "all",
                 dtype: torch.dtype = torch.float32):
        if depth < 1:
            raise ValueError(f"depth (number of Linear layers) must be >= 1; got {depth}")
        if init not in ("torch", "kaiming"):
            raise ValueError(f"init must be 'torch' or 'kaiming'; got {init!r}")
        if bias not in ("all", "first"):
            raise ValueError(f"bias must be 'all' or 'first'; got {bias!r}")
        E = len(generators)
        sizes = [d_in] + [width] * (depth - 1) + [d_out]
        gain = {"relu": math.sqrt(2.0), "leaky_relu": math.sqrt(2.0 / (1.0 + slope**2)), "linear": 1.0}.get(act, 1.0)
        layers: list[nn.Module] = []
        for i in range(depth):
            std = None if init == "torch" else (gain if i < depth - 1 else 1.0) / math.sqrt(sizes[i])
            lin = EnsembleLinear(sizes[i], sizes[i + 1], generators, bias=bias == "all" or i == 0, std=std,
                                 dtype=dtype)
            if init == "kaiming" and lin.bias is not None:
                with torch.no_grad():
                    lin.bias.zero_()
            layers.append(lin)
            if i < depth - 1:
                if batch_norm:
                    layers.append(EnsembleBatchNorm1d(E, sizes[i + 1], dtype=dtype))
                layers.append(activation(act, slope))
        super().__init__(E, *layers)
        scales = values_per_member(init_scale, E, "init_scale")
        if any(a != 1.0 for a in scales):
            alpha = torch.tensor(scales, dtype=dtype)
            with torch.no_grad():
                for p in self.parameters():  # every parameter has the member dimension first
                    p.mul_(alpha.view(E, *([1] * (p.dim() - 1))))


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
            nn.Parameter(_stack_draws(generators, (n, n), _normal(std), dtype)) for _ in range(depth))

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


# ------------------------------------------------------------------------------------------ convolutional nets

__all__ += ["Images", "EnsembleConv2d", "EnsembleBatchNorm2d", "EnsembleFlatten", "SmallCNN"]


class Images(nn.Module):
    """Flat inputs to images: [N, d] or [E, N, d] -> [N, *shape] or [E, N, *shape] (d = prod(shape)), so that
    conv nets take the flat inputs every model here takes. member(e): `nn.Unflatten(1, shape)`."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-1], *self.shape)

    def member(self, e: int) -> nn.Unflatten:
        return nn.Unflatten(1, self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class EnsembleConv2d(nn.Module):
    """E independent 2-D convolutions: x [E, N, C_in, H, W] (or [N, C_in, H, W], shared) -> [E, N, C_out, H', W'].

    One grouped convolution (groups = E) on the [N, E * C_in, H, W] view, so member e sees only its own channels:
    exactly E `nn.Conv2d(C_in, C_out, k, stride, padding)`. weight [E, C_out, C_in, k, k], bias [E, C_out], drawn
    per member by PyTorch's default Conv2d rule, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C_in k^2.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, generators: Sequence[torch.Generator], *, stride: int = 1,
                 padding: int = 0, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.c_in, self.c_out, self.kernel, self.stride, self.padding = c_in, c_out, kernel, stride, padding
        bound = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.weight = nn.Parameter(_stack_draws(generators, (c_out, c_in, kernel, kernel), _uniform(bound), dtype))
        self.bias = nn.Parameter(_stack_draws(generators, (c_out,), _uniform(bound), dtype))

    @property
    def n_members(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        E = self.n_members
        if x.dim() == 4:  # shared by the members
            x = x.unsqueeze(0).expand(E, *x.shape)
        _, N, C, H, W = x.shape
        flat = x.transpose(0, 1).reshape(N, E * C, H, W)
        out = F.conv2d(flat, self.weight.reshape(E * self.c_out, self.c_in, self.kernel, self.kernel),
                       self.bias.reshape(-1), stride=self.stride, padding=self.padding, groups=E)
        return out.reshape(N, E, self.c_out, *out.shape[2:]).transpose(0, 1)  # [E, N, C_out, H', W']

    def member(self, e: int) -> nn.Conv2d:
        conv = nn.Conv2d(self.c_in, self.c_out, self.kernel, stride=self.stride, padding=self.padding)
        conv = conv.to(device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(self.weight[e])
            conv.bias.copy_(self.bias[e])
        return conv

    def extra_repr(self) -> str:
        return (f"E={self.n_members}, {self.c_in}->{self.c_out}, kernel={self.kernel}, stride={self.stride}, "
                f"padding={self.padding}")


class EnsembleBatchNorm2d(EnsembleBatchNorm1d):
    """Batch norm over (N, H, W) per member and channel: x [E, N, C, H, W], one `F.batch_norm` on the
    [N, E * C, H, W] view, exactly E independent `nn.BatchNorm2d(C)`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        E, N, C, H, W = x.shape
        if self.training:
            self.num_batches_tracked += 1
        flat = x.transpose(0, 1).reshape(N, E * C, H, W)
        out = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1), self.weight.reshape(-1),
                           self.bias.reshape(-1), self.training, self.momentum, self.eps)
        return out.reshape(N, E, C, H, W).transpose(0, 1)

    def member(self, e: int) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(self.num_features, eps=self.eps, momentum=self.momentum)
        bn = bn.to(device=self.weight.device, dtype=self.weight.dtype)
        bn.load_state_dict(super().member(e).state_dict())
        bn.train(self.training)
        return bn


class EnsembleFlatten(nn.Module):
    """[E, N, ...] -> [E, N, prod(...)]; member(e): `nn.Flatten()`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)

    def member(self, e: int) -> nn.Flatten:
        return nn.Flatten()


class SmallCNN(EnsembleSequential):
    """A small conv net for small images (the CNN of the LC experiments on digits, Humayun et al. 2024):

        Images(c, h, w) -> Conv(c -> c1, 3x3, pad 1) -> [BN] -> ReLU -> Conv(c1 -> c2, 3x3, stride 2, pad 1) -> [BN]
        -> ReLU -> Conv(c2 -> d_out, kernel = the whole h/2 x w/2 map) -> Flatten

    The last convolution covers the whole feature map: it is the dense read-out Linear(c2 (h/2) (w/2) -> d_out)
    written as a convolution, so that every weight of the net is a convolution kernel (an LC probe then reads
    the input layout from the points, [E, N, c h w], and counts the c1 h w + c2 (h/2) (w/2) conv units).
    Inputs are flat, [N, c h w] or [E, N, c h w]; output [E, N, d_out]. Every parameter (batch-norm weights
    and biases included) is multiplied by init_scale (a list: init_scale[e] for member e), as in `MLP`.
    """

    def __init__(self, shape: Sequence[int], d_out: int, generators: Sequence[torch.Generator], *,
                 channels: Sequence[int] = (16, 32), batch_norm: bool = False,
                 init_scale: float | Sequence[float] = 1.0, dtype: torch.dtype = torch.float32):
        c, h, w = shape
        if h % 2 or w % 2:
            raise ValueError(f"SmallCNN needs an even image height and width; got shape {tuple(shape)}")
        E, (c1, c2) = len(generators), channels
        layers: list[nn.Module] = [Images(shape)]
        for c_in, c_out, stride in ((c, c1, 1), (c1, c2, 2)):
            layers.append(EnsembleConv2d(c_in, c_out, 3, generators, stride=stride, padding=1, dtype=dtype))
            if batch_norm:
                layers.append(EnsembleBatchNorm2d(E, c_out, dtype=dtype))
            layers.append(nn.ReLU())
        layers += [EnsembleConv2d(c2, d_out, h // 2, generators, dtype=dtype), EnsembleFlatten()]
        super().__init__(E, *layers)
        alpha = torch.tensor(values_per_member(init_scale, E, "init_scale"), dtype=dtype)
        if bool((alpha != 1).any()):
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(alpha.view(E, *([1] * (p.dim() - 1))))
