"""Where the linear regions are on a 2-D slice: boundary length, and how much of it lies near the decision
boundary or near the data (the "region migration" of Humayun, Balestriero, Baraniuk 2024, "Deep networks
always grok and here is why": late in training the regions leave the training points and crowd around the
decision boundary, which the local complexity at the data sees as its second descent).

All measures take an `lc.exact2d.Partition` and work in its plane coordinates (a, b):

- L = the total length of the region boundaries inside the slice: the interior edges between regions,
  each shared edge once, the domain's outline excluded. Every interior boundary point lies on the
  boundary of exactly two regions and an outline point on one, so L = (sum of the interior edges of
  all region polygons) / 2, whatever T-junctions subdivide an edge on one side only.
- L_delta(S) = the length of that boundary within distance delta of a set S: the decision boundary
  (`partition.boundary` segments) or given points. On one edge p + t (q - p), t in [0, 1], the set within
  delta of a segment is an interval (the delta-neighbourhood of a segment, a capsule, is convex): the
  hull of its intersections with the two end discs and the rectangle; within delta of S it is the union
  of those intervals, merged exactly. Shares are L_delta / L; ratios divide a share by the share of the
  slice's area within delta of S (`area_within`, exact distances on a grid of cells), 1 for an even spread.

Everything is exact up to floating-point rounding and the partition's own tolerances (its `tol` merges
lines closer than tol * diameter; slivers below `min_area` are dropped and leave their edges counted
once). No discretisation: edges and targets are cut into pieces of length at most
h = max(delta / 4, diameter / 256) (which changes no length) only to prune with k-d trees on the piece
midpoints: a piece whose midpoint is within delta - h/2 of a target point is covered whole, a pair
farther apart than delta + h cannot meet, and every other pair gets its exact interval.

`regions_in_disc` counts the regions that meet a disc: the exact number of linear regions around a
point, which LC estimates from the crossed units of a cross-polytope. For one hidden layer in general
position the regions meeting a convex neighbourhood number 1 + (unit lines meeting it) + (their
crossings inside it) >= 1 + LC. `plane_through` gives the slice through three points (e.g. training
points).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.spatial import cKDTree

from .exact2d import Partition, finite_array

__all__ = ["Migration", "region_migration", "boundary_length", "length_within", "area_within", "region_edges",
           "plane_through", "regions_in_disc"]

PAIRS_PER_CHUNK = 1 << 18  # (centre, region) pairs per chunk in regions_in_disc (bounds its memory)
PIECES_PER_DIAMETER = 256  # pieces of length h = max(delta / 4, diameter / 256) for the pair search
AREA_GRID = 160  # cells per side of the domain's bounding box for the area shares (area_within)


@dataclasses.dataclass(frozen=True)
class Migration:
    """Region-boundary length on a slice and how much of it lies near the decision boundary and the points.

    length: L, total interior region-boundary length (plane units). delta: the distance used.
    near_boundary: L_delta(decision boundary). near_points: L_delta(points), NaN when no points were given.
    """

    length: float
    near_boundary: float
    near_points: float
    delta: float
    area_near_boundary: float = math.nan  # share of the slice's area within delta of the decision boundary
    area_near_points: float = math.nan  # share of the slice's area within delta of the points

    @property
    def boundary_share(self) -> float:
        """near_boundary / length (NaN when there is no region boundary, L = 0)."""
        return self.near_boundary / self.length if self.length > 0 else math.nan

    @property
    def points_share(self) -> float:
        """near_points / length (NaN when L = 0 or no points were given)."""
        return self.near_points / self.length if self.length > 0 else math.nan

    @property
    def boundary_ratio(self) -> float:
        """boundary_share / area_near_boundary: how much more region boundary lies near the decision boundary
        than if it were spread evenly over the slice (1 = no concentration). The raw share alone can fall while
        regions crowd the decision boundary, when the decision boundary itself gets shorter."""
        return self.boundary_share / self.area_near_boundary if self.area_near_boundary > 0 else math.nan

    @property
    def points_ratio(self) -> float:
        """points_share / area_near_points (1 = no concentration near the points)."""
        return self.points_share / self.area_near_points if self.area_near_points > 0 else math.nan


def _check_partition(partition) -> None:
    if not isinstance(partition, Partition):
        raise ValueError(f"partition must be an lc.exact2d.Partition; got {type(partition).__name__}")


def _check_delta(delta, name: str = "delta") -> float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating, np.integer)) or not (
            math.isfinite(delta) and delta > 0):
        raise ValueError(f"{name} must be a positive finite number; got {delta!r}")
    return float(delta)


def _points(points, name: str) -> np.ndarray:
    arr = finite_array(points, name)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be plane coordinates [n, 2]; got shape {arr.shape}")
    return arr


def region_edges(partition: Partition) -> np.ndarray:
    """The interior edges of every region polygon: [M, 2, 2] (start, end). An interior boundary piece
    appears twice (once per adjacent region); edges on the domain's outline (both ends within
    1e-9 * diameter of one side of the domain) are left out."""
    _check_partition(partition)
    v, off = partition.vertices, partition.offsets
    nxt = np.arange(1, len(v) + 1)
    nxt[off[1:] - 1] = off[:-1]
    dom = partition.domain
    side = np.roll(dom, -1, axis=0) - dom  # [k, 2]
    normal = np.stack([side[:, 1], -side[:, 0]], axis=1) / np.linalg.norm(side, axis=1)[:, None]
    level = np.einsum("kd,kd->k", dom, normal)  # side k is {p : p . normal_k = level_k}
    eps = 1e-9 * float(np.max(np.linalg.norm(dom[:, None] - dom[None], axis=-1)))
    d0, d1 = np.abs(v @ normal.T - level), np.abs(v[nxt] @ normal.T - level)  # [T, k]
    outline = ((d0 <= eps) & (d1 <= eps)).any(1)
    edges = np.stack([v, v[nxt]], axis=1)[~outline]
    return edges[np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1) > 0]


def boundary_length(partition: Partition) -> float:
    """L: total length of the region boundaries inside the slice, shared edges once, outline excluded.

    L = sum over the interior edges of every region polygon of |edge| / 2 (see the module docstring).
    """
    e = region_edges(partition)
    return float(np.linalg.norm(e[:, 1] - e[:, 0], axis=1).sum() / 2)


def _pieces(seg: np.ndarray, h: float) -> np.ndarray:
    """Cut segments [n, 2, 2] into pieces of length <= h: [n', 2, 2] (a point, length 0, stays one piece)."""
    length = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)
    k = np.maximum(1, np.ceil(length / h)).astype(np.int64)
    owner = np.repeat(np.arange(len(seg)), k)
    j = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
    t0, t1 = j / k[owner], (j + 1) / k[owner]
    a, b = seg[owner, 0], seg[owner, 1]
    return np.stack([a + t0[:, None] * (b - a), a + t1[:, None] * (b - a)], axis=1)


def _interval(alpha, beta, lo, hi):
    """{t : lo <= alpha + beta t <= hi} as (t_lo, t_hi) arrays (t_lo > t_hi when empty)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - alpha) / beta, (hi - alpha) / beta
    flat = beta == 0
    inside = (alpha >= lo) & (alpha <= hi)
    t_lo = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
    t_hi = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    return t_lo, t_hi


def _disc(p, u, c, delta):
    """{t : |p + t u - c| <= delta} for edges with |u| > 0: (t_lo, t_hi), empty as t_lo > t_hi."""
    A = np.einsum("nd,nd->n", u, u)
    w = p - c
    B = np.einsum("nd,nd->n", u, w)
    disc = B * B - A * (np.einsum("nd,nd->n", w, w) - delta * delta)
    root = np.sqrt(np.maximum(disc, 0.0))
    ok = disc >= 0
    return np.where(ok, (-B - root) / A, np.inf), np.where(ok, (-B + root) / A, -np.inf)


def _capsule(p, q, c, d, delta):
    """The parameter interval [t_lo, t_hi] (clipped to [0, 1]) of each edge p -> q within delta of its
    paired segment c -> d (a point when c = d). All [n, 2]; the capsule is convex, so the set is the
    hull of the parts cut by the two end discs and the rectangle."""
    u, w = q - p, d - c
    parts = [_disc(p, u, c, delta), _disc(p, u, d, delta)]
    L2 = np.einsum("nd,nd->n", w, w)
    if (L2 > 0).any():
        safe = np.where(L2 > 0, L2, 1.0)
        along = _interval(np.einsum("nd,nd->n", p - c, w) / safe, np.einsum("nd,nd->n", u, w) / safe, 0.0, 1.0)
        n = np.stack([-w[:, 1], w[:, 0]], axis=1) / np.sqrt(safe)[:, None]
        across = _interval(np.einsum("nd,nd->n", p - c, n), np.einsum("nd,nd->n", u, n), -delta, delta)
        lo, hi = np.maximum(along[0], across[0]), np.minimum(along[1], across[1])
        parts.append((np.where(L2 > 0, lo, np.inf), np.where(L2 > 0, hi, -np.inf)))
    lo = np.min([np.where(a <= b, a, np.inf) for a, b in parts], axis=0)
    hi = np.max([np.where(a <= b, b, -np.inf) for a, b in parts], axis=0)
    return np.maximum(lo, 0.0), np.minimum(hi, 1.0)


def _union_length(owner: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per owner, the length of the union of intervals [lo, hi] in [0, 1] (empty ones have lo >= hi): [max owner + 1]."""
    keep = hi > lo
    owner, lo, hi = owner[keep], lo[keep] + 2.0 * owner[keep], hi[keep] + 2.0 * owner[keep]  # owners never overlap
    order = np.lexsort((lo, owner))
    lo, hi, owner = lo[order], hi[order], owner[order]
    reach = np.maximum.accumulate(np.concatenate([[-np.inf], hi[:-1]]))  # furthest end before each interval
    covered = np.maximum(0.0, hi - np.maximum(lo, reach))
    return np.bincount(owner, weights=covered, minlength=int(owner.max(initial=-1)) + 1)


def _length_near(edges: np.ndarray, targets: np.ndarray, delta: float, h: float) -> float:
    """Length of the edges [M, 2, 2] within delta of the union of targets [B, 2, 2] (segments or points).

    Edges and targets are cut into pieces of length <= h. A piece whose midpoint lies within delta - h/2
    of a target piece's midpoint (a point of the target set) is covered whole; the others get the exact
    union of their capsule intervals over the target pieces within delta + h of their midpoint.
    """
    if len(edges) == 0 or len(targets) == 0:
        return 0.0
    ep, tp = _pieces(edges, h), _pieces(targets, h)
    length = np.linalg.norm(ep[:, 1] - ep[:, 0], axis=1)
    mid, tree = ep.mean(1), cKDTree(tp.mean(1))
    nearest, _ = tree.query(mid, distance_upper_bound=delta)
    whole = nearest + length / 2 <= delta
    rest = np.flatnonzero(~whole)
    if len(rest) == 0:
        return float(length.sum())
    pairs = cKDTree(mid[rest]).sparse_distance_matrix(tree, delta + h, output_type="ndarray")
    i, j = rest[pairs["i"].astype(np.int64)], pairs["j"].astype(np.int64)
    lo, hi = _capsule(ep[i, 0], ep[i, 1], tp[j, 0], tp[j, 1], delta)
    frac = _union_length(i, lo, hi)
    return float(length[whole].sum() + (frac * length[:len(frac)]).sum())


def _piece_size(partition: Partition, delta: float) -> float:
    dom = partition.domain
    return max(delta / 4, float(np.max(np.linalg.norm(dom[:, None] - dom[None], axis=-1))) / PIECES_PER_DIAMETER)


def length_within(partition: Partition, delta: float, *, segments=None, points=None) -> float:
    """L_delta(S): the region-boundary length (shared edges once, outline excluded) within distance delta
    of S = the union of `segments` [B, 2, 2] and `points` [n, 2] (plane coordinates); exact (module docstring)."""
    _check_partition(partition)
    delta = _check_delta(delta)
    return _length_near(region_edges(partition), _targets(segments, points), delta, _piece_size(partition, delta)) / 2


def region_migration(partition: Partition, delta: float, points=None) -> Migration:
    """Region-boundary length of the slice and its parts near the decision boundary and near points: the raw
    shares (exact) and the area-normalised ratios, the one estimator of region migration.

    Returns `Migration` with length = L, near_boundary = L_delta(partition.boundary), near_points =
    L_delta(points) (NaN without points), boundary_share = L_delta(boundary) / L and points_share =
    L_delta(points) / L, where L_delta(S) is the region-boundary length within distance delta of S (module
    docstring); area_near_boundary / area_near_points = the share of the slice's area within delta of the same
    set (`area_within`), and boundary_ratio / points_ratio = share / area share (1: boundaries spread evenly).
    points: [n, 2] plane coordinates (e.g. training points on the slice, `plane_through`); delta > 0 in plane
    units.

    Humayun, Balestriero, Baraniuk 2024 describe the late phase of training as regions migrating from the
    data to the decision boundary: boundary_share grows while points_share shrinks.
    """
    _check_partition(partition)
    delta = _check_delta(delta)
    edges, h = region_edges(partition), _piece_size(partition, delta)
    length = float(np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1).sum() / 2)
    # the parts are sums over pieces, the whole over edges: rounding can put a part a few ulps above the whole
    near_b = min(length, _length_near(edges, partition.boundary, delta, h) / 2)
    near_p = math.nan
    if points is not None:
        pts = _points(points, "points")
        near_p = min(length, _length_near(edges, np.stack([pts, pts], axis=1), delta, h) / 2)
    area_p = math.nan if points is None else area_within(partition, delta, points=points)
    return Migration(length=length, near_boundary=near_b, near_points=near_p, delta=delta,
                     area_near_boundary=area_within(partition, delta, segments=partition.boundary),
                     area_near_points=area_p)


def area_within(partition: Partition, delta: float, *, segments=None, points=None, grid: int = AREA_GRID) -> float:
    """The share of the slice's area within distance delta of S = segments [B, 2, 2] and/or points [n, 2].

    The area is counted on cells: the centres of a grid x grid array of equal cells over the domain's bounding
    box, those inside the domain, each counting when its exact distance to S is at most delta
    (`_near_targets`); the share is off by the cells' resolution only (~ perimeter x cell side / area). This is
    the reference for `Migration.boundary_ratio` and `Migration.points_ratio`.
    """
    _check_partition(partition)
    delta = _check_delta(delta)
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"grid must be a positive integer; got {grid!r}")
    dom = partition.domain
    (a0, b0), (a1, b1) = dom.min(0), dom.max(0)
    a = a0 + (np.arange(grid) + 0.5) * (a1 - a0) / grid
    b = b0 + (np.arange(grid) + 0.5) * (b1 - b0) / grid
    centres = np.stack(np.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)  # [grid^2, 2]
    edge = np.roll(dom, -1, axis=0) - dom  # counter-clockwise: inside is left of every edge
    inside = np.all(edge[:, 0] * (centres[:, None, 1] - dom[:, 1]) - edge[:, 1] * (centres[:, None, 0] - dom[:, 0])
                    >= 0, axis=1)
    centres = centres[inside]
    if len(centres) == 0:
        return 0.0
    return float(_near_targets(centres, _targets(segments, points), delta).mean())


def _targets(segments, points) -> np.ndarray:
    """The set S as segments [B, 2, 2], a point p as the segment (p, p)."""
    targets = [np.zeros((0, 2, 2))]
    if segments is not None:
        seg = finite_array(segments, "segments")
        if seg.ndim != 3 or seg.shape[1:] != (2, 2):
            raise ValueError(f"segments must be [B, 2, 2] (two endpoints each); got shape {seg.shape}")
        targets.append(seg)
    if points is not None:
        pts = _points(points, "points")
        targets.append(np.stack([pts, pts], axis=1))
    return np.concatenate(targets)


def _near_targets(q: np.ndarray, seg: np.ndarray, delta: float) -> np.ndarray:
    """bool [n]: whether each point q [n, 2] lies within delta of a segment seg [B, 2, 2] (exact distance).

    Segments are cut into pieces of length <= h = delta / 4; a piece can be within delta of q only if its
    midpoint is within delta + h / 2, and those pairs get the exact point-segment distance."""
    near = np.zeros(len(q), dtype=bool)
    if len(seg) == 0 or len(q) == 0:
        return near
    pieces = _pieces(seg, delta / 4)
    a, b = pieces[:, 0], pieces[:, 1]
    pairs = cKDTree(q).sparse_distance_matrix(cKDTree((a + b) / 2), delta + delta / 8, output_type="ndarray")
    i, j = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
    ab, aq = b[j] - a[j], q[i] - a[j]
    s = np.clip(np.einsum("nd,nd->n", aq, ab) / np.maximum(np.einsum("nd,nd->n", ab, ab), 1e-300), 0.0, 1.0)
    close = np.linalg.norm(aq - s[:, None] * ab, axis=1) <= delta
    near[i[close]] = True
    return near


def plane_through(p0, p1, p2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plane through three points of R^D: (origin [D], orthonormal basis [2, D], coords [3, 2]).

    origin = (p0 + p1 + p2) / 3; basis[0] = (p1 - p0) / |p1 - p0|, basis[1] = the unit part of p2 - p0
    orthogonal to it (Gram-Schmidt); coords[i] = basis (p_i - origin), so p_i = origin + coords[i] @ basis.
    Points of any shape (e.g. images [1, 28, 28]) are flattened to [D], as an nn.Flatten model sees them.
    Pass origin and basis to `lc.exact2d.partition` to slice through three training points (Humayun et
    al. 2024 draw such slices). Float64 numpy; torch tensors are accepted.
    """
    pts = [finite_array(p, f"p{i}").reshape(-1) for i, p in enumerate((p0, p1, p2))]
    if len({p.shape[0] for p in pts}) != 1 or pts[0].shape[0] < 2:
        raise ValueError(f"p0, p1, p2 must be three points with one number of entries D >= 2; got sizes "
                         f"{[p.shape[0] for p in pts]}")
    pts = np.stack(pts)
    scale = max(np.abs(pts - pts[0]).max(), np.finfo(np.float64).tiny)
    e0 = pts[1] - pts[0]
    n0 = np.linalg.norm(e0)
    if n0 <= 1e-12 * scale:
        raise ValueError("p0 and p1 coincide; the plane through three points needs three distinct points")
    e0 = e0 / n0
    e1 = pts[2] - pts[0] - (pts[2] - pts[0]) @ e0 * e0
    n1 = np.linalg.norm(e1)
    if n1 <= 1e-12 * scale:
        raise ValueError("p0, p1, p2 are collinear (or p2 coincides with one of them); they span no plane")
    basis = np.stack([e0, e1 / n1])
    origin = pts.mean(0)
    return origin, basis, (pts - origin) @ basis.T


def _disc_candidates(lo: np.ndarray, hi: np.ndarray, centers: np.ndarray, radius: float):
    """(centre index, region index) pairs whose bounding-box circle meets the disc: regions are grouped by
    the power of two of their half-diagonal s, one k-d tree query at radius + max s per group."""
    mid, half = (lo + hi) / 2, np.linalg.norm(hi - lo, axis=1) / 2
    group = np.ceil(np.log2(np.maximum(half, 1e-300))).astype(np.int64)
    ctree, ci, ri = cKDTree(centers), [], []
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        pairs = ctree.sparse_distance_matrix(cKDTree(mid[members]), radius + half[members].max(),
                                             output_type="ndarray")
        ci.append(pairs["i"].astype(np.int64))
        ri.append(members[pairs["j"].astype(np.int64)])
    return np.concatenate(ci), np.concatenate(ri)


def _distance_to_polygons(v, nxt, off, reg, p) -> np.ndarray:
    """Distance from points p [n, 2] to the convex counter-clockwise polygons reg [n] (0 inside): [n]."""
    k = np.diff(off)[reg]  # one row per (pair, edge of the pair's region)
    starts = np.cumsum(k) - k
    e = np.repeat(off[:-1][reg] - starts, k) + np.arange(k.sum())
    a, ab = v[e], v[nxt[e]] - v[e]
    ap = np.repeat(p, k, axis=0) - a
    t = np.clip(np.einsum("nd,nd->n", ap, ab) / np.einsum("nd,nd->n", ab, ab), 0.0, 1.0)
    d = np.linalg.norm(ap - t[:, None] * ab, axis=1)
    left = ab[:, 0] * ap[:, 1] - ab[:, 1] * ap[:, 0] >= 0  # the point is on the inner side of the edge
    return np.where(np.minimum.reduceat(left, starts), 0.0, np.minimum.reduceat(d, starts))


def regions_in_disc(partition: Partition, centers, radius: float) -> np.ndarray:
    """int64 [n]: the number of regions whose polygon meets the open disc |p - centers[i]| < radius.

    A region meets it when the distance from the centre to the (closed, convex) polygon is below radius:
    0 inside, else the least distance to an edge. Only the partition's regions (inside its domain) count.
    This is the exact number of linear regions around a point that LC estimates from a cross-polytope.
    """
    _check_partition(partition)
    c = _points(centers, "centers")
    radius = _check_delta(radius, "radius")
    v, off = partition.vertices, partition.offsets
    nxt = np.arange(1, len(v) + 1)
    nxt[off[1:] - 1] = off[:-1]
    out = np.zeros(len(c), dtype=np.int64)
    if len(c) == 0:
        return out
    i, reg = _disc_candidates(np.minimum.reduceat(v, off[:-1]), np.maximum.reduceat(v, off[:-1]), c, radius)
    for s in range(0, len(reg), PAIRS_PER_CHUNK):
        ii, rr = i[s:s + PAIRS_PER_CHUNK], reg[s:s + PAIRS_PER_CHUNK]
        out += np.bincount(ii[_distance_to_polygons(v, nxt, off, rr, c[ii]) < radius], minlength=len(c))
    return out
