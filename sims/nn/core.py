"""Ensemble building blocks and the two-layer nets and MLPs of the survey (see `sims.nn`)."""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EnsembleLinear", "EnsembleBatchNorm1d", "EnsembleSequential", "TwoLayerNet", "NTKTwoLayerNet", "Scale", "MLP",
           "make_generators", "activation", "values_per_member", "STREAMS"]


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


def stack_draws(generators, shape, draw, dtype) -> torch.Tensor:
    """Stack one CPU draw per member: [E, *shape]; `draw(shape, generator, dtype, e)`."""
    return torch.stack([draw(shape, g, dtype, e) for e, g in enumerate(generators)])


def values_per_member(value: float | Sequence[float], E: int, name: str) -> list[float]:
    """A scalar hyperparameter of a model (an init scale) as a list of E floats: one value repeated, or one value
    per member given as a list or tuple of length E (else a ValueError naming `name`)."""
    values = [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)] * E
    if len(values) != E:
        raise ValueError(f"{name} must be one value or one per member ({E}); got {len(values)} values")
    return values


def normal_draw(std: float | Sequence[float]):
    """N(0, std^2), or N(0, std[e]^2) for member e."""
    return lambda shape, g, dtype, e: torch.randn(shape, generator=g, dtype=dtype) * (
        std[e] if isinstance(std, (list, tuple)) else std)


def uniform_draw(bound: float):
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
            draw_w = uniform_draw(bound)
        else:
            draw_w = normal_draw(values_per_member(std, len(generators), "std") if isinstance(std, (list, tuple)) else std)
        self.weight = nn.Parameter(stack_draws(generators, (in_features, out_features), draw_w, dtype))
        if bias:
            self.bias = nn.Parameter(stack_draws(generators, (1, out_features), uniform_draw(bound), dtype))
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
        signs = stack_draws(generators, (width, 1), lambda shape, g, dt, e: torch.randint(0, 2, shape, generator=g)
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
