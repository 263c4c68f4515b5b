"""An LC probe for training loops: local complexity at named point sets, on the same frame every time.

Humayun, Balestriero, Baraniuk 2024 track the mean LC at training, test and random points (uniform in
the data's bounding box) through training: descent, ascent, and a final descent that comes with grokking.
"""

from __future__ import annotations

import copy
import numbers
from typing import Mapping, Sequence

import torch
from torch import nn

from .complexity import (check_finite_model, check_radius, ensemble_size, finite_members, local_complexity,
                         model_tensors, point_layout)
from .frames import orthonormal_frame
from .keys import lc_name
from .sites import NoSitesError, SiteSpec, resolve_sites

__all__ = ["Probe", "random_box_points"]


def random_box_points(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points uniform in the bounding box of x (per coordinate min..max over the points).

    x: [N, d] -> [n, d], or [E, N, d] -> [E, n, d] (one box per member). Drawn on the CPU in float64
    from `generator` (a CPU `torch.Generator`), returned in x's dtype and device.
    """
    if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() not in (2, 3) or x.shape[-2] < 1:
        raise ValueError(f"x must be a floating tensor [N, d] or [E, N, d] with N >= 1; got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite; it has NaN or infinite entries")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (number of points) must be a positive integer; got {n!r}")
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator; got {generator!r}")
    xd = x.detach().double().cpu()
    lo, hi = xd.amin(-2, keepdim=True), xd.amax(-2, keepdim=True)  # [(E,) 1, d]
    u = torch.rand(*x.shape[:-2], n, x.shape[-1], generator=generator, dtype=torch.float64)
    return (lo + u * (hi - lo)).to(device=x.device, dtype=x.dtype)


class Probe:
    """Mean LC at named point sets, as per-member metrics for the engine's eval schedule.

    points: {"train": X, "test": Xt, "random": Xr, ...}, each [N, *in] (shared by members) or
        [E, N, *in] (per member), see `local_complexity`.
    radius: one radius or several (then every key carries the suffix "@r<radius>", e.g. "lc_train@r0.5").
    n_dirs: P, directions of the cross-polytope.
    seed: the frame is drawn once (lazily, per input shape) from `torch.Generator().manual_seed(seed)`
        and reused at every call, so successive evaluations see the same vertices.
    include_center, sites, output_sites, include_output, chunk_size: passed to `local_complexity`.

    `probe(model)` returns {"lc_<set>": [E], "lc_<set>/<site>": [E], ...} as float64 CPU tensors (E = 1
    for a plain model): the mean over the set's points of the LC summed over sites, and the mean count
    per site. It runs under `torch.no_grad()` in eval mode and restores each module's mode (as
    `local_complexity` does).
    Non-finite models: a plain module with a NaN or infinite parameter or buffer raises ValueError naming
    it; in an ensemble, the members with one get NaN in every entry (the others are measured as usual),
    so that a training run whose member diverged records that member as undefined and goes on.
    """

    def __init__(self, points: Mapping[str, torch.Tensor], radius: float | Sequence[float], n_dirs: int,
                 seed: int = 0, *, include_center: bool = False, sites: SiteSpec = None,
                 include_output: bool = False, chunk_size: int | None = None,
                 output_sites: Sequence[str] | None = None):
        if not isinstance(points, Mapping) or not points:
            raise ValueError(f"points must be a non-empty dict {{name: tensor}}; got {points!r}")
        for name, pts in points.items():
            if not isinstance(name, str) or not name or any(c in name for c in "/@ "):
                raise ValueError(f"points keys must be non-empty names without '/', '@' or spaces; got {name!r}")
            if not torch.is_tensor(pts) or not pts.is_floating_point() or pts.dim() < 2 or pts.numel() == 0:
                raise ValueError(f"points[{name!r}] must be a floating tensor [N, *in] or [E, N, *in] with "
                                 f"N >= 1; got {tuple(pts.shape) if torch.is_tensor(pts) else type(pts).__name__}")
            if not bool(torch.isfinite(pts).all()):
                raise ValueError(f"points[{name!r}] must be finite; it has NaN or infinite entries")
        radii = list(radius) if isinstance(radius, (list, tuple)) else [radius]
        if not radii:
            raise ValueError("radius must be a positive number or a non-empty list of them; got []")
        for r in radii:
            try:
                check_radius(r)
            except ValueError:
                raise ValueError(f"radius must be a positive finite number or a list of them; got {radius!r}") from None
        self.radii = [float(r) for r in radii]
        if len(set(self.radii)) != len(self.radii):
            raise ValueError(f"radius lists a value twice: {radius!r}")
        if isinstance(n_dirs, bool) or not isinstance(n_dirs, int) or n_dirs < 1:
            raise ValueError(f"n_dirs must be a positive integer; got {n_dirs!r}")
        for name, pts in points.items():
            if pts.dim() == 2 and n_dirs > pts.shape[1]:
                raise ValueError(f"n_dirs must be at most the input dimension {pts.shape[1]} of points[{name!r}]; "
                                 f"got {n_dirs}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an integer; got {seed!r}")
        self.points = dict(points)
        self.n_dirs, self.seed = n_dirs, int(seed)
        self.options = dict(include_center=include_center, sites=sites, output_sites=output_sites,
                            include_output=include_output, chunk_size=chunk_size)
        self._frames: dict[tuple[int, ...], torch.Tensor] = {}

    def frame(self, shape: Sequence[int]) -> torch.Tensor:
        """The directions used for inputs of shape `shape`: [P, *shape] float64, the same at every call."""
        shape = tuple(shape)
        if shape not in self._frames:
            g = torch.Generator().manual_seed(self.seed)
            self._frames[shape] = orthonormal_frame(shape, self.n_dirs, generator=g)
        return self._frames[shape]

    def reason_not_applicable(self, model: nn.Module) -> str | None:
        """Why LC does not apply to `model` (no piecewise-linear site), or None when it does."""
        try:
            resolve_sites(model, self.options["sites"], self.options["output_sites"])
        except NoSitesError as err:
            return str(err)
        return None

    def __call__(self, model: nn.Module) -> dict[str, torch.Tensor]:
        E = ensemble_size(model)
        if E is None:
            check_finite_model(model)
        finite = torch.ones(E or 1, dtype=torch.bool) if E is None else finite_members(model, E)
        measured = model if bool(finite.all()) else _zero_members(model, ~finite)
        tag = (lambda r: r) if len(self.radii) > 1 else (lambda r: None)
        out: dict[str, torch.Tensor] = {}
        for name, pts in self.points.items():
            _, point_shape = point_layout(measured, pts, E)
            frame = self.frame(point_shape)
            for r in self.radii:
                res = local_complexity(measured, pts, radius=r, frame=frame, **self.options)
                counts = res.counts.double().reshape(-1, *res.counts.shape[-2:])  # [E, N, S]
                counts[~finite] = float("nan")
                out[lc_name(name, tag(r))] = counts.sum(-1).mean(-1)
                site_means = counts.mean(-2)  # [E, S]
                for s, site in enumerate(res.site_names):
                    out[lc_name(name, tag(r), site=site)] = site_means[:, s]
        return out


def _zero_members(model: nn.Module, bad: torch.Tensor) -> nn.Module:
    """A copy of an ensemble whose members `bad` (bool [E]) have all parameters and buffers set to 0, and
    whose other non-finite entries (in tensors shared by the members) are 0 too: finite, same layout."""
    clean = copy.deepcopy(model)
    with torch.no_grad():
        for _, _, t in model_tensors(clean):
            if t.dim() >= 1 and t.shape[0] == len(bad):
                t[bad.to(t.device)] = 0
            t.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    return clean
