"""Orthonormal frames: the P directions v_1..v_P whose cross-polytope {x +- r v_p} is a point's neighbourhood.

Directions are drawn on the CPU in float64 from a `torch.Generator` (a fresh one seeded with
`DEFAULT_SEED` when none is given; the global RNG is never touched) and orthonormalised by QR, so the
same generator gives the same vertices on every device and dtype (the frame is cast afterwards).
Per-point frames draw point i's Gaussian from its own generator, seeded by the i-th of N seeds taken
from `generator`: the frame of a point does not depend on how the points are chunked.
Humayun, Balestriero, Baraniuk 2024 use P = 25 directions on MNIST (P = 20 on CIFAR).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["DEFAULT_SEED", "orthonormal_frame", "check_frame", "PerPointFrames", "cpu_generator"]

DEFAULT_SEED = 0


def cpu_generator(generator: torch.Generator | None) -> torch.Generator:
    """`generator`, or a new one seeded DEFAULT_SEED when None; ValueError for anything but a CPU generator."""
    if generator is None:
        return torch.Generator().manual_seed(DEFAULT_SEED)
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator or None; got {generator!r}")
    return generator


def _qr_frames(gauss: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows from Gaussian columns: gauss [B, D, P] float64 -> [B, P, D] (QR, sign-fixed)."""
    q, r = torch.linalg.qr(gauss)  # q [B, D, P]
    sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    sign[sign == 0] = 1.0
    return (q * sign.unsqueeze(-2)).transpose(-1, -2)


def _check_sizes(shape: Sequence[int], n_dirs) -> int:
    D = math.prod(shape)
    if isinstance(n_dirs, bool) or not isinstance(n_dirs, int) or not 1 <= n_dirs <= D:
        raise ValueError(f"n_dirs must be an integer in [1, {D}] (the input dimension); got {n_dirs!r}")
    return D


class PerPointFrames:
    """One orthonormal frame per point, drawn lazily: `frames[i:j]` is [j - i, P, *shape] float64 on the CPU."""

    def __init__(self, shape: Sequence[int], n_dirs: int, n_points: int, generator: torch.Generator | None):
        self.shape, self.n_dirs = tuple(shape), n_dirs
        self.D = _check_sizes(self.shape, n_dirs)
        self.seeds = torch.randint(0, 2**62, (n_points,), generator=cpu_generator(generator)).tolist()

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, idx: slice) -> torch.Tensor:
        seeds = self.seeds[idx]
        gauss = torch.stack([torch.randn(self.D, self.n_dirs, dtype=torch.float64,
                                         generator=torch.Generator().manual_seed(s)) for s in seeds])
        return _qr_frames(gauss).reshape(len(seeds), self.n_dirs, *self.shape)


def orthonormal_frame(shape: Sequence[int], n_dirs: int, *, generator: torch.Generator | None = None,
                      n_points: int | None = None) -> torch.Tensor:
    """P = `n_dirs` orthonormal directions in the input space of shape `shape` (float64, CPU).

    Returns [P, *shape] (one frame for every point) or, with `n_points`, [n_points, P, *shape] (one per
    point; the same frames as `local_complexity(..., frame="per_point")` draws from the same generator).
    Directions flattened to vectors satisfy V V^T = I.
    """
    shape = tuple(int(s) for s in shape)
    if n_points is not None:
        if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 1:
            raise ValueError(f"n_points must be a positive integer or None; got {n_points!r}")
        return PerPointFrames(shape, n_dirs, n_points, generator)[:]
    D = _check_sizes(shape, n_dirs)
    gauss = torch.randn(1, D, n_dirs, dtype=torch.float64, generator=cpu_generator(generator))
    return _qr_frames(gauss)[0].reshape(n_dirs, *shape)


def check_frame(frame: torch.Tensor, shape: Sequence[int], n_points: int, n_dirs: int | None) -> torch.Tensor:
    """Validate caller-given directions: [P, *shape] or [n_points, P, *shape], orthonormal rows.

    The tolerance on |V V^T - I| is sqrt(machine epsilon) of the frame's dtype. Returns the frame.
    """
    shape = tuple(shape)
    k = len(shape)
    if not torch.is_tensor(frame) or not frame.is_floating_point():
        raise ValueError(f"frame must be 'shared', 'per_point' or a floating tensor of directions; got {frame!r}")
    per_point = frame.dim() == k + 2
    if frame.dim() not in (k + 1, k + 2) or tuple(frame.shape[frame.dim() - k:]) != shape or (
            per_point and frame.shape[0] != n_points):
        raise ValueError(f"frame (directions) must have shape [P, {', '.join(map(str, shape))}] or "
                         f"[{n_points}, P, {', '.join(map(str, shape))}] for these points; got {tuple(frame.shape)}")
    P = frame.shape[-k - 1]
    if n_dirs is not None and n_dirs != P:
        raise ValueError(f"n_dirs={n_dirs!r} does not match the {P} directions in frame; pass n_dirs=None or {P}")
    _check_sizes(shape, P)
    if not bool(torch.isfinite(frame).all()):
        raise ValueError("frame (directions) has non-finite entries")
    flat = frame.reshape(-1, P, math.prod(shape)).double()
    gram = flat @ flat.transpose(-1, -2)
    err = (gram - torch.eye(P, dtype=torch.float64, device=gram.device)).abs().max().item()
    tol = math.sqrt(torch.finfo(frame.dtype).eps)
    if err > tol:
        raise ValueError(f"frame (directions) must be orthonormal: max |V V^T - I| = {err:.3g} > {tol:.3g}")
    return frame
