"""Exact linear regions of a trained image classifier on the plane through three of its training points (the
slices Humayun, Balestriero, Baraniuk 2024 draw with SplineCAM): region migration, and LC against exact counts.

The slice: the plane through training points p0, p1, p2 of three different classes (`lc.plane_through`), over
the bounding box of their plane coordinates widened on every side by MARGIN times its larger side e (the extent);
`lc.exact2d.partition` gives its linear regions and decision boundary exactly.

Migration (`migration`). With L the total length of the region boundaries on the slice and L_delta(S) the part
within delta of a set S (`lc.region_migration`, exact):

    boundary share = L_delta(decision boundary) / L   at delta = DELTA_BOUNDARY e,
    points share   = L_delta({p0, p1, p2}) / L         at delta = DELTA_POINTS e,

each also divided by the share of the slice's area within delta of the same set (`lc.migration.area_within`):
the ratio is 1 when the region boundaries are spread evenly over the slice, above 1 when they crowd around the
set. The raw share alone can mislead: when the decision boundary gets shorter its neighbourhood shrinks, and the
raw share near it can fall while the boundaries crowd around it.

LC against exact counts (`lc_vs_exact`). At points c of the slice (uniform in its inner box, at least rho from
its edge), the number of regions meeting the disc |p - c| < rho (`lc.regions_in_disc`, exact) against the LC of
the network at c: with the cross-polytope spanned by the plane's two directions (P = 2, the square inscribed in
the disc; the count of crossed units inside the slice) and with P random directions of the full input space at
radius rho (the probe's estimate). Spearman rank correlations over the points.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MARGIN = 0.3  # the slice's box: the three points' box widened by MARGIN * extent on every side
DELTA_BOUNDARY = 0.05  # delta near the decision boundary, in units of the extent
DELTA_POINTS = 0.1  # delta near the three training points, in units of the extent
DISC = 0.05  # LC against exact counts: disc radius rho in units of the extent
N_CENTRES = 200  # LC against exact counts: points of the slice


def pick_points(y: np.ndarray, generator: torch.Generator) -> list[int]:
    """Indices of three training points of three different classes, drawn with `generator`."""
    classes = np.unique(y)
    if len(classes) < 3:
        raise ValueError(f"a slice through three classes needs labels of 3 classes; got {classes.tolist()}")
    chosen = classes[torch.randperm(len(classes), generator=generator)[:3].numpy()]
    out = []
    for c in chosen:
        idx = np.flatnonzero(y == c)
        out.append(int(idx[int(torch.randint(0, len(idx), (1,), generator=generator))]))
    return out


def plane(points: np.ndarray) -> dict:
    """The slice through three points [3, D]: origin [D], basis [2, D], coords [3, 2], bounds ((a0, a1), (b0, b1))
    and the extent e (the larger side of the points' box in the plane)."""
    import lc

    origin, basis, coords = lc.plane_through(*points)
    lo, hi = coords.min(0), coords.max(0)
    e = float((hi - lo).max())
    bounds = tuple((float(lo[k] - MARGIN * e), float(hi[k] + MARGIN * e)) for k in range(2))
    return dict(origin=origin, basis=basis, coords=coords, bounds=bounds, extent=e)


def partition(model: torch.nn.Module, sl: dict):
    """`lc.exact2d.partition` of a plain model (e.g. `ensemble.member(e)`) on the slice `sl` (float64)."""
    from lc import exact2d

    return exact2d.partition(model.double(), sl["origin"], sl["basis"], bounds=sl["bounds"])


def migration(part, sl: dict) -> dict:
    """The migration numbers of a partition of slice `sl` (module docstring): regions, length L, boundary share,
    its area share and their ratio, and the same near the three training points (`lc.region_migration`)."""
    import lc

    e = sl["extent"]
    near_b = lc.region_migration(part, DELTA_BOUNDARY * e)
    near_p = lc.region_migration(part, DELTA_POINTS * e, points=sl["coords"])
    return dict(regions=int(part.count), length=near_b.length, boundary_share=near_b.boundary_share,
                boundary_area=near_b.area_near_boundary, boundary_ratio=near_b.boundary_ratio,
                points_share=near_p.points_share, points_area=near_p.area_near_points, points_ratio=near_p.points_ratio)


def centres(sl: dict, rho: float, n: int, generator: torch.Generator) -> np.ndarray:
    """n points uniform in the slice's box shrunk by rho on every side (discs of radius rho stay inside): [n, 2]."""
    (a0, a1), (b0, b1) = sl["bounds"]
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64).numpy()
    return np.stack([a0 + rho + u[:, 0] * (a1 - a0 - 2 * rho), b0 + rho + u[:, 1] * (b1 - b0 - 2 * rho)], axis=1)


def lc_vs_exact(model: torch.nn.Module, part, sl: dict, *, n_dirs: int, generator: torch.Generator) -> dict:
    """Exact region counts in discs of radius rho = DISC * extent at N_CENTRES points of the slice against LC
    there (module docstring): per-point arrays and the two Spearman correlations."""
    from scipy.stats import spearmanr  # scipy.stats takes ~1 s to import: only where it is used

    import lc

    rho = DISC * sl["extent"]
    c = centres(sl, rho, N_CENTRES, generator)
    exact = lc.regions_in_disc(part, c, rho)
    model = model.double()
    x = torch.from_numpy(sl["origin"] + c @ sl["basis"])
    in_plane = torch.from_numpy(sl["basis"])  # the plane's two directions, orthonormal
    lc_plane = lc.local_complexity(model, x, radius=rho, frame=in_plane).per_point.numpy()
    full = lc.local_complexity(model, x, radius=rho, n_dirs=n_dirs, generator=generator).per_point.numpy()
    rank = lambda a: float(spearmanr(exact, a).statistic) if np.ptp(exact) > 0 and np.ptp(a) > 0 else math.nan
    return dict(rho=rho, centres=c, exact=exact, lc_plane=lc_plane, lc_full=full, spearman_plane=rank(lc_plane),
                spearman_full=rank(full))
