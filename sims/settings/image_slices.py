"""Exact linear regions of a trained image classifier on the plane through three of its training points (the
slices Humayun, Balestriero, Baraniuk 2024 draw with SplineCAM): region migration, and LC against exact counts.

The slice: the plane through training points p0, p1, p2 of three different classes (`lc.plane_through`), over
the bounding box of their plane coordinates widened on every side by MARGIN times its larger side e (the extent);
`lc.exact2d.partition` gives its linear regions and decision boundary exactly.

Migration (`migration`). With L the total length of the region boundaries on the slice and L_delta(S) the part
within delta of a set S (`lc.region_migration`, exact):

    boundary share = L_delta(decision boundary) / L   at delta = DELTA_BOUNDARY e,
    points share   = L_delta({p0, p1, p2}) / L         at delta = DELTA_POINTS e,

each also divided by the share of the slice's area within delta of the same set (`area_share`): the ratio is 1
when the region boundaries are spread evenly over the slice, above 1 when they crowd around the set. The raw
share alone can mislead: when the decision boundary gets shorter its neighbourhood shrinks, and the raw share
near it can fall while the boundaries crowd around it.

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
from scipy.spatial import cKDTree
from scipy.stats import spearmanr

MARGIN = 0.3  # the slice's box: the three points' box widened by MARGIN * extent on every side
DELTA_BOUNDARY = 0.05  # delta near the decision boundary, in units of the extent
DELTA_POINTS = 0.1  # delta near the three training points, in units of the extent
GRID = 160  # grid points per side for area shares
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


def _grid(bounds, n: int = GRID) -> np.ndarray:
    """Centres of an n x n grid of equal cells over the box: [n^2, 2]."""
    (a0, a1), (b0, b1) = bounds
    a = a0 + (np.arange(n) + 0.5) * (a1 - a0) / n
    b = b0 + (np.arange(n) + 0.5) * (b1 - b0) / n
    return np.stack(np.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)


def _distance_within(q: np.ndarray, seg: np.ndarray, delta: float) -> np.ndarray:
    """bool [n]: whether each point q [n, 2] lies within delta of a segment seg [B, 2, 2] (points: p = q).

    Segments are cut into pieces of length <= h = delta / 4; a piece can be within delta of q only if its midpoint
    is within delta + h / 2, and those pairs get the exact point-segment distance."""
    near = np.zeros(len(q), dtype=bool)
    if len(seg) == 0 or len(q) == 0:
        return near
    h = delta / 4
    k = np.maximum(1, np.ceil(np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1) / h)).astype(np.int64)
    owner = np.repeat(np.arange(len(seg)), k)
    t = (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))[:, None] / k[owner][:, None]
    a = seg[owner, 0] + t * (seg[owner, 1] - seg[owner, 0])
    b = a + (seg[owner, 1] - seg[owner, 0]) / k[owner][:, None]
    pairs = cKDTree(q).sparse_distance_matrix(cKDTree((a + b) / 2), delta + h / 2, output_type="ndarray")
    i, j = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
    ab, aq = b[j] - a[j], q[i] - a[j]
    s = np.clip(np.einsum("nd,nd->n", aq, ab) / np.maximum(np.einsum("nd,nd->n", ab, ab), 1e-300), 0.0, 1.0)
    close = np.linalg.norm(aq - s[:, None] * ab, axis=1) <= delta
    near[i[close]] = True
    return near


def area_share(bounds, delta: float, *, segments=None, points=None, n: int = GRID) -> float:
    """Share of the box's area within delta of the segments [B, 2, 2] and points [k, 2]: the fraction of the
    centres of an n x n grid of cells (resolution (box side) / n) that lie within delta."""
    q = _grid(bounds, n)
    seg = [np.zeros((0, 2, 2))]
    if segments is not None:
        seg.append(np.asarray(segments, dtype=np.float64))
    if points is not None:
        p = np.asarray(points, dtype=np.float64)
        seg.append(np.stack([p, p], axis=1))
    return float(_distance_within(q, np.concatenate(seg), delta).mean())


def migration(part, sl: dict) -> dict:
    """The migration numbers of a partition of slice `sl` (module docstring): regions, length L, boundary share,
    its area share and their ratio, and the same near the three training points."""
    import lc

    e = sl["extent"]
    near_b = lc.region_migration(part, DELTA_BOUNDARY * e)
    near_p = lc.migration.length_within(part, DELTA_POINTS * e, points=sl["coords"])
    points_share = near_p / near_b.length if near_b.length > 0 else math.nan
    area_b = area_share(sl["bounds"], DELTA_BOUNDARY * e, segments=part.boundary)
    area_p = area_share(sl["bounds"], DELTA_POINTS * e, points=sl["coords"])
    ratio = lambda share, area: share / area if area > 0 and math.isfinite(share) else math.nan
    return dict(regions=int(part.count), length=near_b.length, boundary_share=near_b.boundary_share,
                boundary_area=area_b, boundary_ratio=ratio(near_b.boundary_share, area_b),
                points_share=points_share, points_area=area_p, points_ratio=ratio(points_share, area_p))


def centres(sl: dict, rho: float, n: int, generator: torch.Generator) -> np.ndarray:
    """n points uniform in the slice's box shrunk by rho on every side (discs of radius rho stay inside): [n, 2]."""
    (a0, a1), (b0, b1) = sl["bounds"]
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64).numpy()
    return np.stack([a0 + rho + u[:, 0] * (a1 - a0 - 2 * rho), b0 + rho + u[:, 1] * (b1 - b0 - 2 * rho)], axis=1)


def lc_vs_exact(model: torch.nn.Module, part, sl: dict, *, n_dirs: int, generator: torch.Generator) -> dict:
    """Exact region counts in discs of radius rho = DISC * extent at N_CENTRES points of the slice against LC
    there (module docstring): per-point arrays and the two Spearman correlations."""
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
