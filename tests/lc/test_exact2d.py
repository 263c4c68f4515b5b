"""lc.exact2d: regions tile the domain, carry the patterns met on a grid, match a line-arrangement count."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lc import exact2d
from sims.nn import MLP, make_generators

F64 = torch.float64
HEXAGON = np.array([[np.cos(t) * 1.5, np.sin(t)] for t in np.linspace(0, 2 * np.pi, 7)[:-1]])


def seeded(model, seed):
    """Default init from seed; the last bias is shifted so the output is 0 at x = 0 (a boundary in view)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    model = model.double().eval()
    with torch.no_grad():
        model[-1].bias -= model(torch.zeros(1, model[0].in_features, dtype=F64))[0]
    return model


def bn_model():
    model = seeded(nn.Sequential(nn.Linear(2, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Linear(10, 8), nn.PReLU(8),
                                 nn.Linear(8, 1)), 3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model[1].running_mean.copy_(torch.randn(10, generator=g, dtype=F64) * 0.3)
        model[1].running_var.copy_(torch.rand(10, generator=g, dtype=F64) + 0.5)
        model[1].weight.copy_(torch.randn(10, generator=g, dtype=F64))
        model[4].weight.copy_(torch.rand(8, generator=g, dtype=F64) * 0.5)
        model[-1].bias -= model(torch.zeros(1, 2, dtype=F64))[0]
    return model


def cases():
    g = np.random.default_rng(0)
    ens = MLP(2, 12, 3, 3, make_generators([0, 1]), dtype=F64)
    with torch.no_grad():  # outputs equal at x = 0: the argmax changes inside the box
        ens[-1].bias -= ens(torch.zeros(1, 2, dtype=F64))[:, :1]
    return [
        ("relu-2-16-16-1", seeded(nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                                                nn.Linear(16, 1)), 0), np.zeros(2), np.eye(2), ((-1, 1), (-1, 1)), {}),
        ("leaky-3-classes", seeded(nn.Sequential(nn.Linear(2, 12), nn.LeakyReLU(0.1), nn.Linear(12, 12),
                                                 nn.LeakyReLU(0.1), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3)), 1),
         np.zeros(2), np.eye(2), ((-2, 2), (-1, 3)), {}),
        ("batchnorm-prelu", bn_model(), np.zeros(2), np.eye(2), ((-1.5, 1.5), (-1.5, 1.5)), {}),
        ("plane-in-5d-hexagon", seeded(nn.Sequential(nn.Linear(5, 14), nn.ReLU(), nn.Linear(14, 14), nn.ReLU(),
                                                     nn.Linear(14, 2)), 2), g.normal(size=5), g.normal(size=(2, 5)),
         HEXAGON, {}),
        ("ensemble-member", ens, np.zeros(2), np.eye(2), ((-1, 1), (-1, 1)), dict(member=1)),
    ]


def grid_patterns(model, origin, basis, ab):
    """Activation patterns (pre-activation > 0) of every activation module at plane points ab [n, 2]."""
    acts = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.PReLU))]
    seen = []
    handles = [m.register_forward_pre_hook(lambda mod, args: seen.append(args[0] > 0)) for m in acts]
    try:
        x = torch.as_tensor(origin + ab @ basis, dtype=F64)
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return torch.cat(seen, dim=1).numpy(), out.numpy()


def inside(points, polygon):
    """Points strictly inside a counter-clockwise convex polygon."""
    e = np.roll(polygon, -1, axis=0) - polygon
    rel = points[:, None] - polygon[None]
    return ((e[None, :, 0] * rel[..., 1] - e[None, :, 1] * rel[..., 0]) > 0).all(1)


@pytest.mark.parametrize("name,model,origin,basis,bounds,kw", cases(), ids=[c[0] for c in cases()])
def test_regions_tile_the_domain_and_carry_every_pattern_met_on_a_grid(name, model, origin, basis, bounds, kw):
    part = exact2d.partition(model, origin, basis, bounds=bounds, **kw)
    net = model.member(kw["member"]).double().eval() if kw else model
    domain_area = exact2d._areas(part.domain, np.array([0, len(part.domain)]))[0]
    assert part.count > 10
    assert (part.areas > 0).all()
    assert part.areas.sum() == pytest.approx(domain_area, rel=1e-9)
    assert part.patterns.shape == (part.count, sum(part.layer_sizes))
    assert len(np.unique(part.patterns, axis=0)) == part.count  # a pattern's region is convex: one polygon

    lo, hi = part.domain.min(0), part.domain.max(0)
    ab = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150)), -1).reshape(-1, 2)
    ab = ab[inside(ab, part.domain)]
    pats, _ = grid_patterns(net, part.origin, part.basis, ab)
    regions = {row.tobytes() for row in np.packbits(part.patterns, axis=1)}
    assert {row.tobytes() for row in np.packbits(pats, axis=1)} <= regions

    centres = np.add.reduceat(part.vertices, part.offsets[:-1], axis=0) / np.diff(part.offsets)[:, None]
    cp, out = grid_patterns(net, part.origin, part.basis, centres)
    assert (cp == part.patterns).all()
    np.testing.assert_allclose(part.output(centres, np.arange(part.count)), out, rtol=1e-9, atol=1e-9)

    assert len(part.boundary) > 0 and part.boundary_regions.shape == (len(part.boundary),)
    assert (np.linalg.norm(part.boundary[:, 1] - part.boundary[:, 0], axis=1) > 0).all()
    for t in (0.0, 0.5, 1.0):
        _, o = grid_patterns(net, part.origin, part.basis, part.boundary[:, 0] * (1 - t) + part.boundary[:, 1] * t)
        if o.shape[1] == 1:
            np.testing.assert_allclose(o[:, 0], 0.0, atol=1e-9)
        else:
            top2 = np.sort(o, axis=1)[:, -2:]
            np.testing.assert_allclose(top2[:, 1] - top2[:, 0], 0.0, atol=1e-9)


def arrangement_regions(W, b, polygon):
    """Regions cut from a convex polygon by the lines W p + b = 0 (general position): Euler's formula,
    1 + (lines meeting the interior) + (pairwise intersections inside)."""
    s = polygon @ W.T + b  # [k, H]
    meets = (s.max(0) > 0) & (s.min(0) < 0)
    inner = 0
    for i, j in itertools.combinations(np.flatnonzero(meets), 2):
        p = np.linalg.solve(W[[i, j]], -b[[i, j]])
        inner += bool(inside(p[None], polygon)[0])
    return 1 + int(meets.sum()) + inner


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.integers(1, 25), hexagon=st.booleans(),
       act=st.sampled_from(["relu", "leaky"]))
def test_one_hidden_layer_count_equals_the_line_arrangement_count(seed, width, hexagon, act):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, width), nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2),
                          nn.Linear(width, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    bounds = HEXAGON if hexagon else ((-1.5, 1.0), (-0.5, 2.0))
    part = exact2d.partition(model, [0.0, 0.0], np.eye(2), bounds=bounds)
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    assert part.count == arrangement_regions(W, b, part.domain)


def test_linear_model_has_one_region_and_a_straight_boundary():
    model = nn.Sequential(nn.Linear(2, 3), nn.Identity(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        model[2].bias.fill_(0.0)
        model[0].bias.fill_(0.0)
    part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))
    assert part.count == 1 and part.patterns.shape == (1, 0) and len(part.boundary) == 1
    np.testing.assert_allclose(np.abs(part.boundary).max(-1), 1.0)  # a chord: both ends on the box edge


@pytest.mark.parametrize("kwargs,match", [
    (dict(bounds=((1, -1), (-1, 1))), "bounds"), (dict(bounds=[[0, 0], [1, 0]]), "bounds"),
    (dict(bounds=[[0, 0], [1, 1], [1, 0], [0, 1]]), "convex"), (dict(bounds=((0, np.nan), (0, 1))), "bounds"),
    (dict(basis=[[1, 0], [2, 0]]), "basis"), (dict(origin=[0, 0, 0]), "origin"),
    (dict(member=0), "member"), (dict(tol=-1.0), "tol"), (dict(min_area=2.0), "min_area"),
])
def test_bad_arguments(kwargs, match):
    args = dict(origin=np.zeros(2), basis=np.eye(2), bounds=((-1, 1), (-1, 1))) | kwargs
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match=match):
        exact2d.partition(model, args.pop("origin"), args.pop("basis"), **args)


def test_unsupported_modules_and_ensembles_without_member():
    with pytest.raises(ValueError, match="Conv2d"):
        exact2d.partition(nn.Sequential(nn.Conv2d(1, 2, 3)), np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))
    with pytest.raises(ValueError, match="member"):
        exact2d.partition(MLP(2, 4, 1, 2, make_generators([0, 1])), np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))


def test_non_finite_models_raise_naming_the_parameter_and_members_are_checked_alone():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        model[0].bias[2] = float("nan")
    with pytest.raises(ValueError, match=r"parameter '0\.bias' has 1 non-finite"):
        exact2d.partition(model, np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))
    ens = MLP(2, 6, 1, 2, make_generators([0, 1]), dtype=F64)
    with torch.no_grad():
        ens[2].weight[1, 0, 0] = float("inf")
    assert exact2d.partition(ens, np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)), member=0).count >= 1
    with pytest.raises(ValueError, match=r"parameter '2\.weight'"):
        exact2d.partition(ens, np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)), member=1)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), widths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
       k=st.integers(1, 3), hexagon=st.booleans())
def test_random_nets_regions_tile_and_match_the_network_at_their_centres(seed, widths, k, hexagon):
    """The round-based cutting (every piece cut by its nearest remaining line, lines re-filtered per piece) on
    random deep nets: regions tile the domain, are convex with distinct patterns, and the pattern and output
    of each region are the network's at its centre; every pattern met on a grid is a region's."""
    g = torch.Generator().manual_seed(seed)
    sizes = (2, *widths, k)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(widths) else [])
    model = nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    bounds = HEXAGON if hexagon else ((-1.5, 1.0), (-0.5, 2.0))
    part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=bounds)
    domain_area = exact2d._areas(part.domain, np.array([0, len(part.domain)]))[0]
    assert (part.areas > 0).all() and part.areas.sum() == pytest.approx(domain_area, rel=1e-9)
    assert len(np.unique(part.patterns, axis=0)) == part.count
    centres = np.add.reduceat(part.vertices, part.offsets[:-1], axis=0) / np.diff(part.offsets)[:, None]
    cp, out = grid_patterns(model, part.origin, part.basis, centres)
    assert (cp == part.patterns).all()
    np.testing.assert_allclose(part.output(centres, np.arange(part.count)), out, rtol=1e-9, atol=1e-9)
    lo, hi = part.domain.min(0), part.domain.max(0)
    ab = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 60), np.linspace(lo[1], hi[1], 60)), -1).reshape(-1, 2)
    pats, _ = grid_patterns(model, part.origin, part.basis, ab[inside(ab, part.domain)])
    regions = {row.tobytes() for row in np.packbits(part.patterns, axis=1)}
    assert {row.tobytes() for row in np.packbits(pats, axis=1)} <= regions
    rotated = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=np.roll(part.domain, 2, axis=0))
    assert rotated.count == part.count  # the polygon's first vertex does not matter
