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


# Polygons being cut are kept padded: P [n, K, 2] holds polygon i in P[i, :cnt[i]] (counter-clockwise),
# followed by copies of its first vertex, so that column j + 1 (cyclically) is always the next vertex and
# the padding adds only zero-length edges.

def _padded(verts: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ragged polygons (verts [T, 2], off [n + 1]) as padded (P [n, kmax, 2], cnt [n])."""
    cnt = np.diff(off)
    j = np.arange(cnt.max())
    return verts[off[:-1, None] + np.where(j < cnt[:, None], j, 0)], cnt


def _ragged(P: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """The vertices [sum(cnt), 2] of padded polygons, concatenated."""
    return P[np.arange(P.shape[1]) < cnt[:, None]]


def _clip(P, cnt, a, c, eps):
    """Split padded convex polygons by the lines a_i . p + c_i = 0 (one line per polygon, crossing it).

    P [n, K, 2], cnt [n], a [n, 2], c [n], eps [n] (|a.p + c| <= eps counts as on the line). Returns the
    positive and negative pieces, each padded (P' [n, K + 1, 2], cnt' [n]) (a piece has at most one vertex
    more than the polygon).
    """
    n, K, _ = P.shape
    Pe = np.concatenate([P, P[:, :1]], axis=1)  # [n, K + 1, 2]: column j + 1 is vertex j's successor
    se = Pe[..., 0] * a[:, :1] + Pe[..., 1] * a[:, 1:] + c[:, None]
    cls = (se > eps[:, None]).astype(np.int8) - (se < -eps[:, None]).astype(np.int8)
    s, s_n = se[:, :-1], se[:, 1:]
    edge = cls[:, :-1].astype(np.int16) * cls[:, 1:] < 0  # [n, K]: the edge from vertex j crosses strictly
    t = np.where(edge, s / np.where(edge, s - s_n, 1.0), 0.0)
    x = P + t[..., None] * (Pe[:, 1:] - P)
    slots = np.stack([P, x], axis=2).reshape(n, 2 * K, 2)  # per vertex: the vertex, then its edge's crossing
    real = np.arange(K) < cnt[:, None]
    pieces = []
    for keep_v in (cls[:, :-1] >= 0, cls[:, :-1] <= 0):
        keep = np.stack([keep_v & real, edge], axis=2).reshape(n, 2 * K)
        pos = np.cumsum(keep, axis=1)
        r, col = np.nonzero(keep)
        out = np.empty((n, K + 1, 2))
        out[r, pos[r, col] - 1] = slots[r, col]
        k = pos[:, -1]
        pieces.append((np.where((np.arange(K + 1) < k[:, None])[..., None], out, out[:, :1]), k))
    return pieces


def _candidates(verts, off, maps, eps_geom):
    """Per region, the units whose line strictly crosses it: (region [C], unit [C]), sorted by region."""
    R, _, H = maps.shape
    cnt = np.diff(off)
    rows, cols = [], []
    for k in np.unique(cnt):  # regions grouped by vertex count: no padding
        reg = np.flatnonzero(cnt == k)
        step = max(1, CHUNK // (k * H))
        for lo in range(0, len(reg), step):
            r = reg[lo:lo + step]
            Q = verts[off[r, None] + np.arange(k)]  # [n, k, 2]
            A = maps[r, :, None]  # [n, 3, 1, H]
            vals = Q[..., :1] * A[:, 0] + Q[..., 1:] * A[:, 1] + A[:, 2]  # [n, k, H]
            eps = eps_geom * np.hypot(A[:, 0, 0], A[:, 1, 0])  # [n, H]
            i, u = np.nonzero((vals.max(1) > eps) & (vals.min(1) < -eps))
            rows.append(r[i])
            cols.append(u)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order]


def _pairs(P, maps, parent, piece, unit, eps_geom):
    """For pairs (piece [M], unit [M]): does the unit's line strictly cross P[piece] (bool [M]), and how far
    from the piece's centre does it pass ([M], distance to the mean of P[piece]'s columns)?"""
    hit, dist = np.empty(len(piece), dtype=bool), np.empty(len(piece))
    step = max(1, CHUNK // P.shape[1])
    for lo in range(0, len(piece), step):
        pc, u = piece[lo:lo + step], unit[lo:lo + step]
        m = maps[parent[pc], :, u]  # [n, 3]
        Q = P[pc]  # [n, K, 2]
        s = Q[..., 0] * m[:, :1] + Q[..., 1] * m[:, 1:2] + m[:, 2:]
        norm = np.hypot(m[:, 0], m[:, 1])
        hit[lo:lo + step] = (s.max(1) > eps_geom * norm) & (s.min(1) < -eps_geom * norm)
        dist[lo:lo + step] = np.abs(s.mean(1)) / norm
    return hit, dist


def _cut(verts, off, maps, eps_geom):
    """Cut every region by the lines of its units: (verts, off) of the pieces and their regions [n].

    Rounds: every piece with units left whose line crosses it is cut by the one passing nearest its
    centre (balanced cuts keep the number of rounds near log2 of the pieces per region), and each of the two
    pieces keeps those remaining units whose line crosses it; a piece with none left is final.
    """
    piece, units = _candidates(verts, off, maps, eps_geom)
    P, cnt = _padded(verts, off)
    parent = np.arange(len(cnt))
    done_v, done_c, done_p = [], [], []
    while True:
        hit, dist = _pairs(P, maps, parent, piece, units, eps_geom)
        piece, units, dist = piece[hit], units[hit], dist[hit]
        ncand = np.bincount(piece, minlength=len(cnt))
        fin = ncand == 0
        done_v.append(_ragged(P[fin], cnt[fin]))
        done_c.append(cnt[fin])
        done_p.append(parent[fin])
        if fin.all():
            break
        busy = ~fin
        piece = (np.cumsum(busy) - 1)[piece]
        P, cnt, parent, ncand = P[busy], cnt[busy], parent[busy], ncand[busy]
        P = P[:, :cnt.max()]
        start = np.concatenate([[0], np.cumsum(ncand)[:-1]])
        near = np.minimum.reduceat(dist, start)
        first = np.flatnonzero(dist == near[piece])
        first = first[np.concatenate([[True], piece[first[1:]] != piece[first[:-1]]])]  # [n]: one per piece
        u = units[first]
        a = np.stack([maps[parent, 0, u], maps[parent, 1, u]], axis=1)
        (Pp, kp), (Pn, kn) = _clip(P, cnt, a, maps[parent, 2, u], eps_geom * np.hypot(a[:, 0], a[:, 1]))
        n = len(cnt)
        P, cnt, parent = np.concatenate([Pp, Pn]), np.concatenate([kp, kn]), np.concatenate([parent, parent])
        rest = np.ones(len(units), dtype=bool)
        rest[first] = False
        piece, units = np.concatenate([piece[rest], piece[rest] + n]), np.concatenate([units[rest], units[rest]])
    cnt = np.concatenate(done_c)
    return np.concatenate(done_v), np.concatenate([[0], np.cumsum(cnt)]), np.concatenate(done_p)


def _split(verts, off, maps, eps_geom, min_area):
    """Split every region by the lines of its units; returns the pieces (verts, off), their parent regions
    and their activation patterns bool [n, H] (pre-activation > 0 at the piece's vertex mean)."""
    verts, off, parent = _cut(verts, off, maps, eps_geom)
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
    out = (maps.reshape(-1, W.shape[1]) @ W.T).reshape(len(maps), 3, W.shape[0])  # one matrix product
    out[:, 2] += b
    return out


# ---------------------------------------------------------------------------------------- decision boundary

def _chords(Q: np.ndarray, lines: np.ndarray, eps_geom: float):
    """Chords cut from padded convex polygons Q [L, k, 2] by lines [L, 3] (a0, a1, c), one line per polygon:
    endpoints p0, p1 [L, 2] and crosses [L] (the line strictly crosses its polygon)."""
    Qe = np.concatenate([Q, Q[:, :1]], axis=1)  # [L, k + 1, 2]: column j + 1 is vertex j's successor
    se = Qe[..., 0] * lines[:, :1] + Qe[..., 1] * lines[:, 1:2] + lines[:, 2:]
    eps = eps_geom * np.hypot(lines[:, :1], lines[:, 1:2])
    cls = (se > eps).astype(np.int8) - (se < -eps).astype(np.int8)
    crosses = (cls > 0).any(1) & (cls < 0).any(1)
    s, s_n = se[:, :-1], se[:, 1:]
    edge = cls[:, :-1].astype(np.int16) * cls[:, 1:] < 0
    t = np.where(edge, s / np.where(edge, s - s_n, 1.0), 0.0)
    pts = np.concatenate([Q + t[..., None] * (Qe[:, 1:] - Q), Q], axis=1)  # [L, 2k, 2]: crossings, vertices
    mask = np.concatenate([edge, cls[:, :-1] == 0], axis=1)
    proj = pts[..., 0] * -lines[:, 1:2] + pts[..., 1] * lines[:, :1]  # position along the line
    rows = np.arange(len(lines))
    lo = np.where(mask, proj, np.inf).argmin(1)
    hi = np.where(mask, proj, -np.inf).argmax(1)
    return pts[rows, lo], pts[rows, hi], crosses


def _boundary(verts, off, maps, eps_geom):
    """Decision-boundary segments [B, 2, 2] and their regions [B] from the output maps [R, 3, K]."""
    R, _, K = maps.shape
    P, _ = _padded(verts, off)
    i_idx, j_idx = np.triu_indices(K, 1) if K > 1 else (np.zeros(1, int), np.zeros(1, int))
    other = np.ones((len(i_idx), K), bool)  # [pairs, K]: the classes other than the pair's two
    other[np.arange(len(i_idx)), i_idx] = other[np.arange(len(i_idx)), j_idx] = False
    step = max(1, CHUNK // (P.shape[1] * K * len(i_idx)))
    segs, regions = [], []
    for lo in range(0, R, step):
        A = maps[lo:lo + step]
        vals = np.matmul(P[lo:lo + step], A[:, :2]) + A[:, 2:]  # [n, kmax, K]
        if K == 1:
            eps = eps_geom * np.hypot(A[:, 0, 0], A[:, 1, 0])
            hit = (vals[..., 0].max(1) > eps) & (vals[..., 0].min(1) < -eps)
        else:
            top = vals.argmax(-1)
            hit = (top != top[:, :1]).any(1)
        r = np.flatnonzero(hit) + lo
        rows = np.repeat(r, len(i_idx))  # [L]: one line per (region, class pair)
        A = maps[rows]  # [L, 3, K]
        pair = np.tile(np.arange(len(i_idx)), len(r))
        lines = A[np.arange(len(rows)), :, i_idx[pair]] - A[np.arange(len(rows)), :, j_idx[pair]] if K > 1 \
            else A[:, :, 0]
        p0, p1, ok = _chords(P[rows], lines, eps_geom)
        if K > 1:  # keep the part of each chord where classes i and j are the argmax
            v0, v1 = np.einsum("lc,lck->lk", p0, A[:, :2]) + A[:, 2], np.einsum("lc,lck->lk", p1, A[:, :2]) + A[:, 2]
            h0 = v0[np.arange(len(rows)), i_idx[pair]][:, None] - v0
            h1 = v1[np.arange(len(rows)), i_idx[pair]][:, None] - v1
            oth, d = other[pair], h1 - h0
            with np.errstate(divide="ignore", invalid="ignore"):
                t = -h0 / d
            t_lo = np.where(oth & (d > 0), t, 0.0).max(1, initial=0.0)
            t_hi = np.where(oth & (d < 0), t, 1.0).min(1, initial=1.0)
            ok &= ~(oth & (d == 0) & (h0 < 0)).any(1) & (t_hi - t_lo > 1e-12)
            p0, p1 = p0 + t_lo[:, None] * (p1 - p0), p0 + t_hi[:, None] * (p1 - p0)
        segs.append(np.stack([p0[ok], p1[ok]], axis=1))
        regions.append(rows[ok])
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
