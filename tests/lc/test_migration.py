"""lc.migration: boundary lengths, shares near the decision boundary and near points, regions in discs and the
plane through three points, against networks whose regions are known in closed form."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

import lc
from lc import exact2d, migration

F64 = torch.float64
SQUARE = ((-1, 1), (-1, 1))
HEXAGON = np.array([[np.cos(t) * 1.5, np.sin(t)] for t in np.linspace(0, 2 * np.pi, 7)[:-1]])


def axis_net():
    """f(a, b) = relu(a) + relu(b) - 1/2 on [-1, 1]^2: region boundaries are the axes (length 2 + 2), the
    decision boundary is the polyline (1/2, -1) - (1/2, 0) - (0, 1/2) - (-1, 1/2)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2, dtype=F64))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, 1.0]], dtype=F64))
        model[2].bias.fill_(-0.5)
    return model


def one_hidden(width, seed, d=2):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    return model


def test_axis_net_boundary_length_and_decision_boundary():
    part = exact2d.partition(axis_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    assert part.count == 4
    assert migration.boundary_length(part) == pytest.approx(4.0, rel=1e-12)
    assert len(migration.region_edges(part)) == 8  # each half-axis twice, the outline left out
    assert sum(np.linalg.norm(s[1] - s[0]) for s in part.boundary) == pytest.approx(2 + math.sqrt(0.5), rel=1e-12)


@pytest.mark.parametrize("delta", [0.01, 0.1, 0.25, 0.34])
def test_share_near_the_decision_boundary_is_known_in_closed_form(delta):
    # on the a-axis (t, 0): within delta of the diagonal for t in [1/2 - sqrt(2) delta, 1/2] and of the
    # vertical piece for t in [1/2, 1/2 + delta]; the horizontal piece b = 1/2 is 1/2 > delta away. Same on b.
    part = exact2d.partition(axis_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    res = migration.region_migration(part, delta)
    near = 2 * delta * (1 + math.sqrt(2))
    assert res.length == pytest.approx(4.0, rel=1e-12)
    assert res.near_boundary == pytest.approx(near, rel=1e-12)
    assert res.boundary_share == pytest.approx(near / 4, rel=1e-12)
    assert math.isnan(res.near_points) and math.isnan(res.points_share)


@settings(max_examples=30, deadline=None)
@given(y0=st.floats(0.0, 0.2), delta=st.floats(0.21, 0.45), gap=st.floats(0.0, 0.2))
def test_length_near_two_points_is_the_union_of_two_chords(y0, delta, gap):
    # points (0.3, y0), (0.3 + gap, y0) cut chords of half-width w = sqrt(delta^2 - y0^2) centred at 0.3 and
    # 0.3 + gap from the a-axis (their union), and nested chords centred at y0 from the b-axis (the first
    # point's, half-width sqrt(delta^2 - 0.3^2), when delta > 0.3); every chord stays inside [-1, 1]^2.
    # at tangency (delta = 0.3 or delta = y0) a chord's length is sqrt(rounding error) ~ 1e-9, not 0: skip it
    assume(abs(delta - 0.3) > 1e-6 and abs(delta - y0) > 1e-6)
    part = exact2d.partition(axis_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    pts = np.array([[0.3, y0], [0.3 + gap, y0]])
    w = math.sqrt(delta**2 - y0**2)
    on_a = gap + 2 * w if gap <= 2 * w else 4 * w
    on_b = 2 * math.sqrt(max(delta**2 - 0.3**2, 0.0))
    got = migration.length_within(part, delta, points=pts)
    assert got == pytest.approx(on_a + on_b, abs=1e-12)
    res = migration.region_migration(part, delta, points=pts)
    assert res.near_points == pytest.approx(got, abs=1e-15) and res.points_share == pytest.approx(got / 4)


def test_the_domain_outline_is_not_a_region_boundary():
    part = exact2d.partition(axis_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    assert migration.length_within(part, 0.3, points=[[-1.0, -0.9], [0.9, 1.0]]) == 0.0  # near the outline only
    assert migration.length_within(part, 0.2, points=[[-0.95, 0.0]]) == pytest.approx(0.25, abs=1e-12)  # [-1, -0.75]
    flat = nn.Sequential(nn.Linear(2, 1), nn.ReLU()).double()
    with torch.no_grad():  # its only line, a = 0, misses the domain [2, 3]^2
        flat[0].weight.copy_(torch.tensor([[1.0, 0.0]], dtype=F64))
        flat[0].bias.zero_()
    one = exact2d.partition(flat, np.zeros(2), np.eye(2), bounds=((2, 3), (2, 3)))
    res = migration.region_migration(one, 0.1, points=[[2.5, 2.5]])
    assert one.count == 1 and res.length == 0.0 and math.isnan(res.boundary_share)


@pytest.mark.parametrize("center,count", [((0, 0), 4), ((0.5, 0.5), 1), ((0.5, 0.05), 2), ((0.05, 0.05), 4),
                                          ((0.08, 0.08), 3), ((0.1, 0.5), 1), ((0.0999, 0.5), 2), ((1.05, 0), 2)])
def test_regions_in_disc_of_the_axis_net(center, count):
    part = exact2d.partition(axis_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    assert migration.regions_in_disc(part, np.array([center]), 0.1).tolist() == [count]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.integers(1, 14), hexagon=st.booleans())
def test_one_hidden_layer_boundary_length_is_the_sum_of_the_unit_chords(seed, width, hexagon):
    model = one_hidden(width, seed)
    part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=HEXAGON if hexagon else SQUARE)
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    total = 0.0
    for w, c in zip(W, b):  # chord of the line w.p + c = 0 in the convex domain: clip the line by every side
        d = np.array([-w[1], w[0]]) / np.linalg.norm(w)
        p0 = -c * w / (w @ w)
        lo, hi = -np.inf, np.inf
        dom = part.domain
        for k in range(len(dom)):
            e = dom[(k + 1) % len(dom)] - dom[k]
            n = np.array([-e[1], e[0]])  # inward normal of a counter-clockwise polygon
            s0, s1 = (p0 - dom[k]) @ n, d @ n
            if s1 > 0:
                lo = max(lo, -s0 / s1)
            elif s1 < 0:
                hi = min(hi, -s0 / s1)
            elif s0 < 0:
                lo, hi = 1.0, 0.0
        total += max(hi - lo, 0.0)
    assert migration.boundary_length(part) == pytest.approx(total, rel=1e-9, abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.integers(2, 10), delta=st.floats(0.02, 0.5))
def test_exact_near_lengths_match_dense_sampling_of_the_edges(seed, width, delta):
    model = one_hidden(width, seed)
    with torch.no_grad():
        model[2].bias -= model(torch.zeros(1, 2, dtype=F64))[0]  # a decision boundary through the origin
    part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=SQUARE)
    pts = np.random.default_rng(seed).uniform(-1, 1, (5, 2))
    edges = migration.region_edges(part)
    h = 2e-4  # midpoints of pieces of length <= h; each end of a near interval costs at most h / 2
    lengths = np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1)
    k = np.ceil(lengths / h).astype(int)
    owner = np.repeat(np.arange(len(edges)), k)
    t = (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k) + 0.5) / k[owner]
    sample = edges[owner, 0] + t[:, None] * (edges[owner, 1] - edges[owner, 0])
    weight = lengths[owner] / k[owner]
    seg = part.boundary
    ab = seg[:, 1] - seg[:, 0]
    tt = np.clip(np.einsum("nsd,sd->ns", sample[:, None] - seg[None, :, 0], ab) / (ab * ab).sum(1), 0, 1)
    d_seg = np.linalg.norm(sample[:, None] - seg[None, :, 0] - tt[..., None] * ab, axis=-1).min(1, initial=np.inf)
    d_pts = np.linalg.norm(sample[:, None] - pts[None], axis=-1).min(1)
    res = migration.region_migration(part, delta, points=pts)
    ends = 4 * (width + len(seg) + len(pts)) * 2  # generous bound on the number of interval ends per side
    assert res.near_boundary == pytest.approx(weight[d_seg <= delta].sum() / 2, abs=ends * h)
    assert res.near_points == pytest.approx(weight[d_pts <= delta].sum() / 2, abs=ends * h)
    assert 0 <= res.near_boundary <= res.length and 0 <= res.near_points <= res.length
    assert res.length == pytest.approx(lengths.sum() / 2)


def disc_arrangement(W, b, center, radius):
    """Regions of the open disc cut by lines W p + b = 0 in general position: 1 + lines meeting it +
    pairwise intersections inside it."""
    dist = np.abs(W @ center + b) / np.linalg.norm(W, axis=1)
    meets = np.flatnonzero(dist < radius)
    inner = sum(np.linalg.norm(np.linalg.solve(W[[i, j]], -b[[i, j]]) - center) < radius
                for i, j in itertools.combinations(meets, 2))
    return 1 + len(meets) + inner


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.integers(1, 16), radius=st.floats(0.05, 0.6))
def test_regions_in_disc_equal_the_line_arrangement_count_and_bound_lc(seed, width, radius):
    model = one_hidden(width, seed)
    part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=((-2, 2), (-2, 2)))
    centers = np.random.default_rng(seed).uniform(-1.3, 1.3, (12, 2))  # discs inside the domain
    got = migration.regions_in_disc(part, centers, radius)
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    assert got.tolist() == [disc_arrangement(W, b, c, radius) for c in centers]
    # LC with P = 2 looks at a square inscribed in the disc: it sees at most the lines that meet the disc
    res = lc.local_complexity(model, torch.as_tensor(centers), radius=radius, frame=torch.eye(2, dtype=F64))
    assert (res.per_point.numpy() + 1 <= got).all()


def test_plane_through_three_points_gives_an_orthonormal_slice_through_them():
    g = np.random.default_rng(0)
    p = g.normal(size=(3, 7))
    origin, basis, coords = migration.plane_through(*p)
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-14)
    np.testing.assert_allclose(origin + coords @ basis, p, atol=1e-14)
    np.testing.assert_allclose(coords.sum(0), 0.0, atol=1e-14)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 1)).double()
    lo, hi = coords.min(0) - 0.5, coords.max(0) + 0.5
    part = exact2d.partition(model, origin, basis, bounds=((lo[0], hi[0]), (lo[1], hi[1])))
    assert migration.regions_in_disc(part, coords, 1e-9).tolist() == [1, 1, 1]
    region = [next(r for r, poly in enumerate(part.polygons) if _contains(poly, c)) for c in coords]
    with torch.no_grad():
        direct = model(torch.as_tensor(p)).numpy()
    np.testing.assert_allclose(part.output(coords, np.array(region)), direct, rtol=1e-10, atol=1e-10)
    t_origin, t_basis, _ = migration.plane_through(*torch.as_tensor(p))
    np.testing.assert_allclose(t_origin, origin, rtol=1e-15)
    np.testing.assert_allclose(t_basis, basis, rtol=1e-15)
    images = torch.as_tensor(p).reshape(3, 1, 7)  # any shape is flattened, as nn.Flatten does
    i_origin, i_basis, i_coords = migration.plane_through(*images)
    np.testing.assert_allclose(i_basis, basis, rtol=1e-15)
    np.testing.assert_allclose(i_coords, coords, rtol=1e-15)


def _contains(poly, c):
    e = np.roll(poly, -1, axis=0) - poly
    rel = c - poly
    return bool(((e[:, 0] * rel[:, 1] - e[:, 1] * rel[:, 0]) >= -1e-12).all())


@pytest.mark.parametrize("points,match", [
    (([0, 0, 0], [0, 0, 0], [1, 0, 0]), "coincide"), (([0, 0], [1, 1], [2, 2]), "collinear"),
    (([0, 0], [1, 0], [0, 1, 0]), "one number of entries"), (([0], [1], [2]), "D >= 2"),
    (([0, np.nan], [1, 0], [0, 1]), "p0 must be finite"),
])
def test_plane_through_bad_points(points, match):
    with pytest.raises(ValueError, match=match):
        migration.plane_through(*points)


def test_bad_arguments():
    part = exact2d.partition(axis_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    for bad in (0.0, -1.0, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="delta"):
            migration.region_migration(part, bad)
        with pytest.raises(ValueError, match="radius"):
            migration.regions_in_disc(part, [[0, 0]], bad)
    with pytest.raises(ValueError, match="points"):
        migration.region_migration(part, 0.1, points=[0.0, 0.0])
    with pytest.raises(ValueError, match="centers"):
        migration.regions_in_disc(part, [[0, 0, 0]], 0.1)
    with pytest.raises(ValueError, match="segments"):
        migration.length_within(part, 0.1, segments=[[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="partition"):
        migration.boundary_length(axis_net())


def test_the_package_exports_the_migration_measures():
    assert lc.region_migration is migration.region_migration and lc.Migration is migration.Migration
    assert lc.plane_through is migration.plane_through and lc.regions_in_disc is migration.regions_in_disc
    assert {"migration", "region_migration", "plane_through", "regions_in_disc"} <= set(lc.__all__)


def test_area_within_delta_of_a_line_and_of_a_point():
    """On [-1, 1]^2: the band |a| <= delta around the line a = 0 covers delta of the area (4 delta / 4); a disc
    of radius delta around (0.3, 0.2) covers pi delta^2 / 4; the ratio of an even spread is 1."""
    part = exact2d.partition(axis_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    line = np.array([[[0.0, -1.0], [0.0, 1.0]]])
    for delta in (0.05, 0.2):
        assert migration.area_within(part, delta, segments=line) == pytest.approx(delta, abs=0.01)
        disc = migration.area_within(part, delta, points=np.array([[0.3, 0.2]]))
        assert disc == pytest.approx(math.pi * delta**2 / 4, rel=0.1)
    res = migration.region_migration(part, 0.1)
    assert res.area_near_boundary > 0 and res.boundary_ratio == pytest.approx(res.boundary_share / res.area_near_boundary)


def cross_net():
    """f(a, b) = relu(a) - relu(-a) + 0 relu(b - 1/2) - 0.02 on [-1, 1]^2: region boundaries a = 0 and b = 1/2
    (length 2 + 2), decision boundary a = 0.02, beside the first line (on it, it would be no region's interior)."""
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=F64))
        model[0].bias.copy_(torch.tensor([0.0, 0.0, -0.5], dtype=F64))
        model[2].weight.copy_(torch.tensor([[1.0, -1.0, 0.0]], dtype=F64))
        model[2].bias.fill_(-0.02)
    return model


def test_one_call_gives_the_raw_share_and_the_area_normalised_ratio():
    """cross_net at delta = 0.1: the region boundary within delta of the decision boundary a = 0.02 is the line
    a = 0 (2) and the piece |a - 0.02| <= 0.1 of b = 1/2 (0.2): share 2.2 / 4 = 0.55. The band |a - 0.02| <= 0.1
    is 0.1 of the square, and exactly 16 of the 160 cell columns (centres -1 + (i + 1/2) / 80, i = 74..89): ratio
    0.55 / 0.1 = 5.5. Near the point (1/2, 1/2): 0.2 of b = 1/2 (share 0.05) against a disc of pi 0.01 / 4."""
    part = exact2d.partition(cross_net(), np.zeros(2), np.eye(2), bounds=SQUARE)
    assert part.count == 4
    res = migration.region_migration(part, 0.1, points=[[0.5, 0.5]])
    assert res.length == pytest.approx(4.0, rel=1e-12)
    assert res.boundary_share == pytest.approx(0.55, rel=1e-12)
    assert res.area_near_boundary == pytest.approx(0.1, rel=1e-12)
    assert res.boundary_ratio == pytest.approx(5.5, rel=1e-12)
    assert res.points_share == pytest.approx(0.05, rel=1e-12)
    assert res.area_near_points == pytest.approx(math.pi * 0.01 / 4, rel=0.05)
    assert res.points_ratio == pytest.approx(res.points_share / res.area_near_points, rel=1e-12)


def test_area_of_a_capsule_and_a_disc():
    """The area within delta of a segment is a capsule (rectangle plus two half discs), of a point a disc."""
    model = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1)).double()
    part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=((0.0, 10.0), (0.0, 10.0)))
    seg, delta = np.array([[[2.0, 5.0], [8.0, 5.0]]]), 0.5
    capsule = 2 * delta * 6.0 + np.pi * delta**2
    assert migration.area_within(part, delta, segments=seg, grid=512) == pytest.approx(capsule / 100, rel=0.02)
    assert migration.area_within(part, 1.0, points=[[5.0, 5.0]], grid=512) == pytest.approx(np.pi / 100, rel=0.02)
    with pytest.raises(ValueError, match="grid"):
        migration.area_within(part, 1.0, points=[[5.0, 5.0]], grid=0)
