"""Exact linear regions of a piecewise-linear MLP restricted to a 2-D plane (validation and pictures for LC).

The network is restricted to the plane x(a, b) = origin + a basis[0] + b basis[1] over a convex polygon of
(a, b) (a rectangle by default). On a convex region where the activation pattern is fixed, every
pre-activation is affine in (a, b): z = a A[0] + b A[1] + c. Layer by layer, each region is split by the
lines {z_j = 0} of the units that change sign inside it (Sutherland-Hodgman clipping of a convex polygon by
a line gives two convex polygons), then the activation is applied to its affine map. This is the exact
partition that LC estimates locally (Humayun, Balestriero, Baraniuk 2024, "Deep networks always grok and
here is why", who draw it with SplineCAM); here it is computed with vectorised numpy in float64.

Tolerances (both relative to the domain, documented on `partition`): a vertex within `tol * diameter` of
a unit's line counts as on the line (so near-coincident lines do not create slivers), and polygons with
area below `min_area * area(domain)` are dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from .complexity import check_finite_model

__all__ = ["Partition", "partition", "finite_array"]

CHUNK = 1 << 22  # elements per temporary array when gathering per-region affine maps


@dataclasses.dataclass(frozen=True)
class Partition:
    """The linear regions of a network on a convex polygon of a plane, in plane coordinates (a, b).

    vertices: [T, 2] float64, the vertices of all regions, counter-clockwise, concatenated.
    offsets: [R + 1] int64, region i is vertices[offsets[i]:offsets[i + 1]].
    patterns: bool [R, U], the activation pattern of each region (True where a hidden unit's
        pre-activation is positive), units of all activation layers concatenated (U = sum(layer_sizes)).
    output_slope, output_offset: [R, 2, K] and [R, K], the network output on region i is
        (a, b) @ output_slope[i] + output_offset[i].
    boundary: [B, 2, 2], decision-boundary segments (two endpoints each): the zero level set of a scalar
        output (K = 1), else where the argmax of the K outputs changes. boundary_regions: [B], their regions.
    domain: [k, 2], the polygon that was partitioned (counter-clockwise). origin [D], basis [2, D]: the plane.
    """

    vertices: np.ndarray
    offsets: np.ndarray
    patterns: np.ndarray
    output_slope: np.ndarray
    output_offset: np.ndarray
    boundary: np.ndarray
    boundary_regions: np.ndarray
    domain: np.ndarray
    origin: np.ndarray
    basis: np.ndarray
    layer_sizes: tuple[int, ...]

    @property
    def count(self) -> int:
        """Number of linear regions R."""
        return len(self.offsets) - 1

    @property
    def polygons(self) -> list[np.ndarray]:
        """The R regions as a list of [k_i, 2] vertex arrays (views into `vertices`)."""
        return np.split(self.vertices, self.offsets[1:-1])

    @property
    def areas(self) -> np.ndarray:
        """Area of each region: [R]."""
        return _areas(self.vertices, self.offsets)

    def output(self, ab: np.ndarray, region: np.ndarray) -> np.ndarray:
        """The network output at plane points ab [n, 2] that lie in regions `region` [n]: [n, K]."""
        ab = np.asarray(ab, dtype=np.float64)
        return np.einsum("nd,ndk->nk", ab, self.output_slope[region]) + self.output_offset[region]


# ----------------------------------------------------------------------------------------------- model parsing

def _ops(model: nn.Module) -> list[tuple]:
    """The network as ops on float64 numpy: ("affine", W [out, in], b [out]) or ("act", negative slope [H] | scalar)."""
    mods = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    ops: list[tuple] = []
    for m in mods:
        if isinstance(m, nn.Sequential):
            ops += _ops(m)
        elif type(m) is nn.Linear:
            W = m.weight.detach().double().cpu().numpy()
            b = m.bias.detach().double().cpu().numpy() if m.bias is not None else np.zeros(W.shape[0])
            ops.append(("affine", W, b))
        elif type(m) is nn.BatchNorm1d:
            if m.running_mean is None or m.running_var is None:
                raise ValueError("model has a BatchNorm1d without running statistics (track_running_stats=False); "
                                 "exact2d evaluates batch norm in eval mode with its running statistics")
            var = m.running_var.detach().double().cpu().numpy()
            mean = m.running_mean.detach().double().cpu().numpy()
            g = m.weight.detach().double().cpu().numpy() if m.weight is not None else np.ones_like(var)
            beta = m.bias.detach().double().cpu().numpy() if m.bias is not None else np.zeros_like(var)
            s = g / np.sqrt(var + m.eps)
            ops.append(("affine", np.diag(s), beta - mean * s))
        elif type(m) is nn.ReLU:
            ops.append(("act", 0.0))
        elif type(m) is nn.LeakyReLU:
            ops.append(("act", float(m.negative_slope)))
        elif type(m) is nn.PReLU:
            ops.append(("act", m.weight.detach().double().cpu().numpy()))
        elif type(m) in (nn.Identity, nn.Dropout, nn.Flatten):
            continue
        else:
            raise ValueError(f"model contains {type(m).__name__}; exact2d supports nn.Sequential MLPs of nn.Linear, "
                             "nn.BatchNorm1d (eval mode), nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Identity, nn.Dropout, "
                             "nn.Flatten")
    return ops


# ------------------------------------------------------------------------------------------- ragged polygons

def _areas(verts: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Signed shoelace area of each ragged polygon: [n]."""
    nxt = np.arange(1, len(verts) + 1)
    nxt[off[1:] - 1] = off[:-1]
    cross = verts[:, 0] * verts[nxt, 1] - verts[nxt, 0] * verts[:, 1]
    return 0.5 * np.add.reduceat(cross, off[:-1]) if len(off) > 1 else np.zeros(0)


def _select(verts: np.ndarray, off: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ragged polygons with indices sel."""
    cnt = np.diff(off)[sel]
    new_off = np.concatenate([[0], np.cumsum(cnt)])
    idx = np.repeat(off[:-1][sel] - new_off[:-1], cnt) + np.arange(new_off[-1])
    return verts[idx], new_off


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    verts = np.concatenate([v for v, _ in parts])
    cnt = np.concatenate([np.diff(o) for _, o in parts])
    return verts, np.concatenate([[0], np.cumsum(cnt)])


def _clip(verts, off, a, c, eps):
    """Split convex polygons by the lines a_i . p + c_i = 0 (one line per polygon).

    verts [T, 2], off [n + 1], a [n, 2], c [n], eps [n] (|a.p + c| <= eps counts as on the line).
    Returns cross [n] bool (line crosses the polygon strictly) and the positive and negative pieces of
    the crossing polygons, each as (verts, off), in the order of the crossing polygons.
    """
    cnt = np.diff(off)
    pid = np.repeat(np.arange(len(cnt)), cnt)
    s = verts[:, 0] * a[pid, 0] + verts[:, 1] * a[pid, 1] + c[pid]
    cls = (s > eps[pid]).astype(np.int8) - (s < -eps[pid]).astype(np.int8)
    cross = (np.maximum.reduceat(cls, off[:-1]) > 0) & (np.minimum.reduceat(cls, off[:-1]) < 0)
    if not cross.any():
        return cross, None, None
    vm = cross[pid]
    v, s, cls = verts[vm], s[vm], cls[vm]
    sub_off = np.concatenate([[0], np.cumsum(cnt[cross])])
    nxt = np.arange(1, len(v) + 1)
    nxt[sub_off[1:] - 1] = sub_off[:-1]
    edge = cls.astype(np.int16) * cls[nxt] < 0
    t = np.where(edge, s / np.where(edge, s - s[nxt], 1.0), 0.0)
    x = v + t[:, None] * (v[nxt] - v)
    slots = np.stack([v, x], axis=1).reshape(-1, 2)  # per vertex: the vertex, then the edge's crossing point
    pieces = []
    for keep_v in (cls >= 0, cls <= 0):
        keep = np.stack([keep_v, edge], axis=1)  # [Tc, 2]
        k_cnt = np.add.reduceat(keep.sum(1), sub_off[:-1])
        pieces.append((slots[keep.reshape(-1)], np.concatenate([[0], np.cumsum(k_cnt)])))
    return cross, pieces[0], pieces[1]


def _padded(verts: np.ndarray, off: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Homogeneous vertices (a, b, 1) of polygons lo..hi padded by repeating their last vertex: [n, kmax, 3]."""
    cnt = np.diff(off[lo:hi + 1])
    k = np.arange(cnt.max())
    idx = off[lo:hi, None] + np.minimum(k[None, :], cnt[:, None] - 1)
    out = np.ones((hi - lo, len(k), 3))
    out[..., :2] = verts[idx]
    return out


# -------------------------------------------------------------------------------------------- layer splitting

def _candidates(verts, off, maps, eps_geom):
    """Per region, the units whose line strictly crosses it: (units ragged [C], offsets [R + 1])."""
    R, _, H = maps.shape
    kmax = int(np.diff(off).max())
    step = max(1, CHUNK // (kmax * H))
    rows, cols = [], []
    for lo in range(0, R, step):
        hi = min(R, lo + step)
        vals = np.matmul(_padded(verts, off, lo, hi), maps[lo:hi])  # [n, kmax, H]
        eps = eps_geom * np.hypot(maps[lo:hi, 0], maps[lo:hi, 1])  # [n, H]
        r, u = np.nonzero((vals.max(1) > eps) & (vals.min(1) < -eps))
        rows.append(r + lo)
        cols.append(u)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return cols, np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=R))])


def _split(verts, off, maps, eps_geom, min_area):
    """Split every region by the lines of its units; returns the pieces (verts, off), their parent regions
    and their activation patterns bool [n, H] (pre-activation > 0 at the piece's vertex mean)."""
    units, c_off = _candidates(verts, off, maps, eps_geom)
    ncand = np.diff(c_off)
    idle = ncand == 0
    done = [(*_select(verts, off, np.flatnonzero(idle)), np.flatnonzero(idle))]
    act_v, act_o = _select(verts, off, np.flatnonzero(~idle))
    parent, ptr = np.flatnonzero(~idle), np.zeros(int((~idle).sum()), dtype=np.int64)
    while len(parent):
        u = units[c_off[parent] + ptr]
        a = np.stack([maps[parent, 0, u], maps[parent, 1, u]], axis=1)
        cross, pos, neg = _clip(act_v, act_o, a, maps[parent, 2, u], eps_geom * np.hypot(a[:, 0], a[:, 1]))
        if pos is not None:
            keep = np.flatnonzero(~cross)
            act_v, act_o = _concat([_select(act_v, act_o, keep), pos, neg])
            parent = np.concatenate([parent[keep], parent[cross], parent[cross]])
            ptr = np.concatenate([ptr[keep], ptr[cross], ptr[cross]])
        ptr = ptr + 1
        fin = ptr >= ncand[parent]
        if fin.any():
            done.append((*_select(act_v, act_o, np.flatnonzero(fin)), parent[fin]))
            act_v, act_o = _select(act_v, act_o, np.flatnonzero(~fin))
            parent, ptr = parent[~fin], ptr[~fin]
    verts, off = _concat([(v, o) for v, o, _ in done])
    parent = np.concatenate([p for _, _, p in done])
    big = np.flatnonzero(_areas(verts, off) >= min_area)
    verts, off = _select(verts, off, big)
    parent = parent[big]
    cnt = np.diff(off)
    centre = np.ones((len(cnt), 3))
    centre[:, :2] = np.add.reduceat(verts, off[:-1], axis=0) / cnt[:, None]
    H = maps.shape[2]
    step = max(1, CHUNK // (3 * H))
    pattern = np.concatenate([np.einsum("nk,nkh->nh", centre[s:s + step], maps[parent[s:s + step]]) > 0
                              for s in range(0, len(parent), step)]) if len(parent) else np.zeros((0, H), bool)
    return verts, off, parent, pattern


def _advance(maps, pending, op):
    """Apply a pending activation (parent, pattern, negative slope) and then the affine op (or None)."""
    if pending is None:
        return maps if op is None else _affine(maps, op)
    parent, pattern, slope = pending
    H = maps.shape[2]
    out_w = H if op is None else op[1].shape[0]
    out = np.empty((len(parent), 3, out_w))
    step = max(1, CHUNK // (3 * max(H, out_w)))
    for s in range(0, len(parent), step):
        m = maps[parent[s:s + step]] * np.where(pattern[s:s + step], 1.0, slope)[:, None, :]
        out[s:s + step] = m if op is None else _affine(m, op)
    return out


def _affine(maps, op):
    _, W, b = op
    out = maps @ W.T
    out[:, 2] += b
    return out


# ---------------------------------------------------------------------------------------- decision boundary

def _line_in_polygon(poly: np.ndarray, lines: np.ndarray, eps_geom: float):
    """Chords of a convex polygon [k, 2] cut by lines [L, 3] (a0, a1, c): p0, p1 [L, 2] and crosses [L]."""
    s = poly @ lines[:, :2].T + lines[:, 2]  # [k, L]
    eps = eps_geom * np.hypot(lines[:, 0], lines[:, 1])
    cls = (s > eps).astype(np.int8) - (s < -eps).astype(np.int8)
    crosses = (cls > 0).any(0) & (cls < 0).any(0)
    s_next, cls_next = np.roll(s, -1, axis=0), np.roll(cls, -1, axis=0)
    edge = cls.astype(np.int16) * cls_next < 0
    t = np.where(edge, s / np.where(edge, s - s_next, 1.0), 0.0)
    pts = np.concatenate([poly[:, None] + t[..., None] * (np.roll(poly, -1, axis=0) - poly)[:, None],
                          np.broadcast_to(poly[:, None], s.shape + (2,))])  # [2k, L, 2]
    mask = np.concatenate([edge, cls == 0])
    proj = pts[..., 0] * -lines[:, 1] + pts[..., 1] * lines[:, 0]  # along the line
    lo = np.where(mask, proj, np.inf).argmin(0)
    hi = np.where(mask, proj, -np.inf).argmax(0)
    L = np.arange(len(lines))
    return pts[lo, L], pts[hi, L], crosses


def _boundary(verts, off, maps, eps_geom):
    """Decision-boundary segments [B, 2, 2] and their regions [B] from the output maps [R, 3, K]."""
    R, _, K = maps.shape
    kmax = int(np.diff(off).max())
    step = max(1, CHUNK // (kmax * K))
    cand = []
    for lo in range(0, R, step):
        hi = min(R, lo + step)
        vals = np.matmul(_padded(verts, off, lo, hi), maps[lo:hi])  # [n, kmax, K]
        if K == 1:
            eps = eps_geom * np.hypot(maps[lo:hi, 0, 0], maps[lo:hi, 1, 0])
            hit = (vals[..., 0].max(1) > eps) & (vals[..., 0].min(1) < -eps)
        else:
            top = vals.argmax(-1)
            hit = (top != top[:, :1]).any(1)
        cand.append(np.flatnonzero(hit) + lo)
    i_idx, j_idx = np.triu_indices(K, 1) if K > 1 else (np.zeros(1, int), np.zeros(1, int))
    segs, regions = [], []
    for r in np.concatenate(cand):
        poly, A = verts[off[r]:off[r + 1]], maps[r]  # A [3, K]
        lines = (A[:, i_idx] - A[:, j_idx]).T if K > 1 else A.T
        p0, p1, ok = _line_in_polygon(poly, lines, eps_geom)
        if K > 1:  # keep the part of each chord where classes i and j are the argmax
            h0 = (p0 @ A[:2] + A[2])[np.arange(len(i_idx)), i_idx][:, None] - (p0 @ A[:2] + A[2])
            h1 = (p1 @ A[:2] + A[2])[np.arange(len(i_idx)), i_idx][:, None] - (p1 @ A[:2] + A[2])
            other = np.ones((len(i_idx), K), bool)
            other[np.arange(len(i_idx)), i_idx] = other[np.arange(len(i_idx)), j_idx] = False
            d = h1 - h0
            with np.errstate(divide="ignore", invalid="ignore"):
                t = -h0 / d
            t_lo = np.where(other & (d > 0), t, 0.0).max(1)
            t_hi = np.where(other & (d < 0), t, 1.0).min(1)
            ok &= ~(other & (d == 0) & (h0 < 0)).any(1) & (t_hi - t_lo > 1e-12)
            p0, p1 = p0 + t_lo[:, None] * (p1 - p0), p0 + t_hi[:, None] * (p1 - p0)
        segs.append(np.stack([p0[ok], p1[ok]], axis=1))
        regions.append(np.full(int(ok.sum()), r))
    if not segs:
        return np.zeros((0, 2, 2)), np.zeros(0, dtype=np.int64)
    return np.concatenate(segs), np.concatenate(regions).astype(np.int64)


# ---------------------------------------------------------------------------------------------------- entry

def finite_array(value, name: str) -> np.ndarray:
    """`value` (a tensor or anything numpy reads) as a float64 array; ValueError naming `name` when it is not
    numeric or not finite."""
    if torch.is_tensor(value):
        value = value.detach().double().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers; got {value!r}") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite; got {value!r}")
    return arr


def _domain(bounds) -> np.ndarray:
    """Counter-clockwise vertices [k, 2] of the rectangle ((a_min, a_max), (b_min, b_max)) or convex polygon."""
    arr = finite_array(bounds, "bounds")
    if arr.shape == (2, 2):
        (a0, a1), (b0, b1) = arr
        if not (a0 < a1 and b0 < b1):
            raise ValueError(f"bounds must be ((a_min, a_max), (b_min, b_max)) with min < max; got {bounds!r}")
        return np.array([[a0, b0], [a1, b0], [a1, b1], [a0, b1]])
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3:
        raise ValueError(f"bounds must be ((a_min, a_max), (b_min, b_max)) or the vertices [k >= 3, 2] of a convex "
                         f"polygon; got an array of shape {arr.shape}")
    e = np.roll(arr, -1, axis=0) - arr
    turn = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    if not ((turn > 0).all() or (turn < 0).all()):
        raise ValueError("bounds polygon must be strictly convex with its vertices in order (no repeated or "
                         f"collinear vertices); got {arr.tolist()}")
    return arr if turn[0] > 0 else arr[::-1].copy()


def _plane(origin, basis, ops) -> tuple[np.ndarray, np.ndarray]:
    """Validated origin [D] and basis [2, D] (independent rows, D the model's input dimension)."""
    origin, basis = finite_array(origin, "origin"), finite_array(basis, "basis")
    if origin.ndim != 1 or basis.shape != (2, origin.shape[0]):
        raise ValueError(f"origin must be [D] and basis [2, D]; got shapes {origin.shape} and {basis.shape}")
    sv = np.linalg.svd(basis, compute_uv=False)
    if sv[1] <= 1e-12 * sv[0]:
        raise ValueError(f"basis rows must be linearly independent (singular values {sv.tolist()})")
    affine = [op for op in ops if op[0] == "affine"]
    if affine and affine[0][1].shape[1] != origin.shape[0]:
        raise ValueError(f"origin and basis have dimension {origin.shape[0]}, the model's input dimension is "
                         f"{affine[0][1].shape[1]}")
    return origin, basis


def _regions(ops, maps, domain, eps_geom, area_min):
    """Split the domain layer by layer. maps [1, 3, D]: the plane as an affine map of (a, b).

    Returns (vertices, offsets, patterns bool [R, U], output maps [R, 3, K], layer sizes).
    """
    verts, off = domain.copy(), np.array([0, len(domain)])
    pending, parents, patterns, sizes = None, [], [], []
    for op in ops:
        if op[0] == "affine":
            maps, pending = _advance(maps, pending, op), None
            continue
        maps = _advance(maps, pending, None)
        slope = np.broadcast_to(np.asarray(op[1], dtype=np.float64), (maps.shape[2],))
        verts, off, parent, pattern = _split(verts, off, maps, eps_geom, area_min)
        pending = (parent, pattern, slope)
        parents.append(parent)
        patterns.append(pattern)
        sizes.append(maps.shape[2])
    maps = _advance(maps, pending, None)
    idx, pats = np.arange(len(off) - 1), []  # each region's pattern: walk its ancestors back through the layers
    for parent, pattern in zip(reversed(parents), reversed(patterns)):
        pats.append(pattern[idx])
        idx = parent[idx]
    pats = np.concatenate(pats[::-1], axis=1) if pats else np.zeros((len(off) - 1, 0), bool)
    return verts, off, pats, maps, tuple(sizes)


def partition(model: nn.Module, origin, basis, *, bounds, member: int | None = None, tol: float = 1e-10,
              min_area: float = 1e-12) -> Partition:
    """Exact linear regions of `model` on the plane origin + a basis[0] + b basis[1], (a, b) in `bounds`.

    model: an `nn.Sequential` MLP of nn.Linear, nn.ReLU / nn.LeakyReLU / nn.PReLU, nn.BatchNorm1d
        (evaluated with its running statistics, as in eval mode), nn.Identity, nn.Dropout (identity),
        nn.Flatten; its parameters and buffers must be finite (else ValueError naming the first offending
        one). An ensemble (integer `n_members`) needs `member=e` and is read through `model.member(e)`.
    origin: [D]; basis: [2, D], two linearly independent directions (not necessarily orthonormal;
        `lc.migration.plane_through` gives the plane through three points).
    bounds: ((a_min, a_max), (b_min, b_max)) or the vertices [k, 2] of a convex polygon in (a, b).
    tol: a vertex within tol * diameter(bounds) of a unit's line is on the line (no split there).
    min_area: pieces with area below min_area * area(bounds) are dropped as degenerate slivers, so the
        regions tile the domain up to that relative area per dropped piece.

    Computed in float64 (Humayun, Balestriero, Baraniuk 2024 use such exact 2-D partitions, via SplineCAM,
    to show regions migrating towards the decision boundary). Cost grows with the number of regions: a
    2-64-64-1 MLP on [-1, 1]^2 takes milliseconds, 2-256-256-256-1 (about 80,000 regions) seconds.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    E = getattr(model, "n_members", None)
    if isinstance(E, int) and not isinstance(E, bool):
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < E:
            raise ValueError(f"member must be an integer in [0, {E}) for an ensemble of {E} members; got {member!r}")
        model = model.member(member)
    elif member is not None:
        raise ValueError(f"member={member!r} is only for ensemble models (with n_members); this model has none")
    for name, v in (("tol", tol), ("min_area", min_area)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ValueError(f"{name} must be a number in [0, 1); got {v!r}")
    check_finite_model(model)
    ops = _ops(model)
    origin, basis = _plane(origin, basis, ops)
    domain = _domain(bounds)
    box_area = float(_areas(domain, np.array([0, len(domain)]))[0])
    diam = float(np.max(np.linalg.norm(domain[:, None] - domain[None], axis=-1)))
    maps = np.concatenate([basis, origin[None]])[None]  # [1, 3, D]: rows a, b, constant
    verts, off, pats, maps, sizes = _regions(ops, maps, domain, tol * diam, min_area * box_area)
    seg, seg_reg = _boundary(verts, off, maps, tol * diam)
    return Partition(vertices=verts, offsets=off.astype(np.int64), patterns=pats, output_slope=maps[:, :2],
                     output_offset=maps[:, 2], boundary=seg, boundary_regions=seg_reg, domain=domain,
                     origin=origin, basis=basis, layer_sizes=sizes)
