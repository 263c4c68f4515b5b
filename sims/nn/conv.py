"""Convolutional ensembles: images from flat inputs, Conv2d and BatchNorm2d with a member dimension, a small CNN."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .core import EnsembleBatchNorm1d, EnsembleSequential, stack_draws, uniform_draw, values_per_member

__all__ = ["Images", "EnsembleConv2d", "EnsembleBatchNorm2d", "EnsembleFlatten", "SmallCNN"]


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
        self.weight = nn.Parameter(stack_draws(generators, (c_out, c_in, kernel, kernel), uniform_draw(bound), dtype))
        self.bias = nn.Parameter(stack_draws(generators, (c_out,), uniform_draw(bound), dtype))

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
