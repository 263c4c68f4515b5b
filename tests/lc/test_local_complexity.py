"""lc.local_complexity: the exact one-hidden-layer identity, invariances, and equal paths (ensemble vs
members, chunked vs not, shortcut vs plain, CUDA vs CPU), Conv2d units, sites and hooks."""

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import lc
from lc.complexity import local_complexity
from sims.nn import MLP, TwoLayerNet, make_generators

F64 = torch.float64


def one_hidden(d, width, seed, act=nn.ReLU):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, width), act(), nn.Linear(width, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    return model


def deep(d, widths, seed, out=3):
    g = torch.Generator().manual_seed(seed)
    sizes = [d, *widths]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], out)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64) / math.sqrt(p.shape[-1]))
    return model


def hyperplanes_meeting(model, x, radius, frame):
    """Units with |w.c + b| < r max_p |w.v_p| (frame [P, d] or [N, P, d]): [N]."""
    W, b = model[0].weight, model[0].bias
    z = (x @ W.T + b).abs()  # [N, H]
    reach = (frame @ W.T).abs().amax(-2) * radius  # [H] or [N, H]
    return (z < reach).sum(-1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 8), width=st.integers(1, 24), n=st.integers(1, 6),
       radius=st.floats(0.01, 3.0), data=st.data())
def test_one_hidden_layer_count_is_the_number_of_hyperplanes_meeting_the_cross_polytope(seed, d, width, n, radius,
                                                                                        data):
    P = data.draw(st.integers(1, d), label="n_dirs")
    per_point = data.draw(st.booleans(), label="per_point")
    act = data.draw(st.sampled_from([nn.ReLU, lambda: nn.LeakyReLU(0.1)]), label="act")
    model = one_hidden(d, width, seed, act)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, d, generator=g, dtype=F64) * 2
    frame = lc.orthonormal_frame((d,), P, generator=g, n_points=n if per_point else None)
    expected = hyperplanes_meeting(model, x, radius, frame)
    for shortcut in (True, False):
        res = local_complexity(model, x, radius=radius, frame=frame, shortcut=shortcut)
        assert res.site_names == ("1",) and res.units.tolist() == [width]
        assert torch.equal(res.counts[:, 0], expected)


def test_hyperplane_identity_holds_for_default_frames_too():
    model = one_hidden(6, 40, 3)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    for kind in ("shared", "per_point"):
        res = local_complexity(model, x, radius=0.7, n_dirs=4, frame=kind, generator=torch.Generator().manual_seed(9))
        frame = lc.orthonormal_frame((6,), 4, generator=torch.Generator().manual_seed(9),
                                     n_points=50 if kind == "per_point" else None)
        assert torch.equal(res.per_point, hyperplanes_meeting(model, x, 0.7, frame))
        assert 0 < res.mean() < 40


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.05, 20.0), layer=st.sampled_from([0, 2]))
def test_positive_rescaling_and_permutation_of_units_leave_counts_unchanged(seed, scale, layer):
    model = deep(5, [12, 10], seed)
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(seed), dtype=F64)
    kw = dict(radius=0.5, n_dirs=3, include_output=True)
    before = local_complexity(model, x, **kw).counts
    g = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():  # unit 0 of the chosen layer: (w, b) -> s (w, b), outgoing weights / s
        model[layer].weight[0] *= scale
        model[layer].bias[0] *= scale
        model[layer + 2].weight[:, 0] /= scale
        perm = torch.randperm(model[layer].out_features, generator=g)
        model[layer].weight.copy_(model[layer].weight[perm])
        model[layer].bias.copy_(model[layer].bias[perm])
        model[layer + 2].weight.copy_(model[layer + 2].weight[:, perm])
    assert torch.equal(local_complexity(model, x, **kw).counts, before)


def test_rescaling_a_unit_without_compensation_changes_deeper_counts_only_through_the_function():
    model = deep(5, [12, 10], 1)
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(2), dtype=F64)
    before = local_complexity(model, x, radius=0.5, n_dirs=3).counts
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[0].bias.mul_(3.0)
    after = local_complexity(model, x, radius=0.5, n_dirs=3).counts
    assert torch.equal(after[:, 0], before[:, 0])  # the first layer's signs do not see a positive scale


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), r1=st.floats(0.01, 2.0), factor=st.floats(1.0, 5.0))
def test_one_hidden_layer_counts_never_decrease_as_the_radius_grows(seed, r1, factor):
    model = one_hidden(4, 30, seed)
    x = torch.randn(15, 4, generator=torch.Generator().manual_seed(seed), dtype=F64)
    small = local_complexity(model, x, radius=r1, n_dirs=3).counts
    large = local_complexity(model, x, radius=r1 * factor, n_dirs=3).counts
    assert (large >= small).all()


# ------------------------------------------------------------------------------------------ equal paths

def ensemble_models():
    gens = make_generators([0, 1, 2])
    mlp = MLP(4, 16, 3, 3, gens, dtype=F64)
    bn = MLP(4, 16, 2, 3, make_generators([3, 4]), batch_norm=True, dtype=F64)
    with torch.no_grad():
        for name, buf in bn.named_buffers():
            if "running" in name:
                buf.copy_(torch.rand(buf.shape, generator=torch.Generator().manual_seed(5), dtype=F64) + 0.5)
    two = TwoLayerNet(4, 20, make_generators([5, 6]), act="leaky_relu", slope=0.2, dtype=F64)
    return [mlp, bn, two]


@pytest.mark.parametrize("model", ensemble_models(), ids=["mlp", "mlp-bn", "two-layer-leaky"])
@pytest.mark.parametrize("frame", ["shared", "per_point"])
@pytest.mark.parametrize("per_member", [False, True])
def test_ensemble_equals_its_members_one_by_one(model, frame, per_member):
    E = model.n_members
    g = torch.Generator().manual_seed(11)
    x = torch.randn(E, 25, 4, generator=g, dtype=F64) if per_member else torch.randn(25, 4, generator=g, dtype=F64)
    kw = dict(radius=0.4, n_dirs=3, frame=frame, include_output=True)
    res = local_complexity(model, x, **kw)
    assert res.counts.shape == (E, 25, len(res.site_names)) and res.mean().shape == (E,)
    assert res.counts.sum() > 0
    for e in range(E):
        one = local_complexity(model.member(e), x[e] if per_member else x, **kw)
        assert one.site_names == res.site_names
        assert torch.equal(one.counts, res.counts[e])


def conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.1),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 2)).double()


def path_cases():
    g = torch.Generator().manual_seed(0)
    ens = MLP(6, 16, 2, 3, make_generators([0, 1]), dtype=F64)
    return [
        ("mlp", deep(6, [16, 16], 0), torch.randn(23, 6, generator=g, dtype=F64)),
        ("ensemble-shared-x", ens, torch.randn(23, 6, generator=g, dtype=F64)),
        ("ensemble-own-x", ens, torch.randn(2, 23, 6, generator=g, dtype=F64)),
        ("conv", conv_net(), torch.randn(23, 2, 6, 6, generator=g, dtype=F64)),
    ]


@pytest.mark.parametrize("name,model,x", path_cases(), ids=[c[0] for c in path_cases()])
@pytest.mark.parametrize("frame", ["shared", "per_point"])
@pytest.mark.parametrize("include_center", [False, True])
def test_chunked_and_shortcut_paths_equal_the_plain_unchunked_path(name, model, x, frame, include_center):
    kw = dict(radius=0.3, n_dirs=4, frame=frame, include_center=include_center, include_output=True)
    ref = local_complexity(model, x, shortcut=False, chunk_size=10**6, **kw)
    assert ref.counts.sum() > 0
    for shortcut in (True, False):
        for chunk in (None, 5):
            res = local_complexity(model, x, shortcut=shortcut, chunk_size=chunk, **kw)
            assert torch.equal(res.counts, ref.counts), (shortcut, chunk)


def test_conv_units_are_channels_times_positions_and_counts_match_a_direct_computation():
    model = conv_net()
    x = torch.randn(9, 2, 6, 6, generator=torch.Generator().manual_seed(1), dtype=F64)
    frame = lc.orthonormal_frame((2, 6, 6), 5, generator=torch.Generator().manual_seed(2))
    res = local_complexity(model, x, radius=0.5, frame=frame)
    assert res.site_names == ("1", "3") and res.units.tolist() == [3 * 6 * 6, 4 * 4 * 4]
    verts = x[:, None] + 0.5 * torch.cat([frame, -frame])[None]  # [N, 2P, 2, 6, 6]
    z = model[0](verts.flatten(0, 1)).reshape(9, 10, -1)  # [N, 2P, C*H*W]
    direct = (~((z > 0).all(1) | (z < 0).all(1))).sum(-1)
    assert torch.equal(res.counts[:, 0], direct)
    assert torch.equal(res.fractions[:, 0], direct.double() / (3 * 36))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("frame", ["shared", "per_point"])
def test_cuda_equals_cpu(frame):
    for name, model, x in path_cases():
        cpu = local_complexity(model, x, radius=0.3, n_dirs=4, frame=frame, include_output=True)
        gpu = local_complexity(model.cuda(), x.cuda(), radius=0.3, n_dirs=4, frame=frame, include_output=True)
        assert torch.equal(cpu.counts, gpu.counts), name


def test_float32_model_uses_its_dtype_and_counts_as_float64_does():
    """The float32 path computes in float32 (x is cast) and, away from rounding ties, counts exactly what the
    float64 path counts: checked on 200 points where no pre-activation at any vertex is within 1e-3 of 0."""
    model64 = deep(4, [8], 0)
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(5), dtype=F64)
    frame = lc.orthonormal_frame((4,), 2, generator=torch.Generator().manual_seed(6))
    verts = x[:, None] + 0.5 * torch.cat([frame, -frame])[None]  # [N, 4, 4]
    margin = model64[0](verts).abs().amin(dim=(1, 2))  # the closest a pre-activation comes to its kink, per point
    keep = margin > 1e-3
    assert keep.sum() > 150
    res64 = local_complexity(model64, x[keep], radius=0.5, frame=frame)
    res32 = local_complexity(copy.deepcopy(model64).float(), x[keep], radius=0.5, frame=frame)
    assert res32.counts.dtype == torch.long and res32.counts.shape == (int(keep.sum()), 1)
    assert torch.equal(res32.counts, res64.counts) and res64.counts.sum() > 0


# ------------------------------------------------------------------------------------------ frames, RNG

def test_frames_come_from_the_generator_and_never_from_the_global_rng():
    model = deep(5, [20], 0)
    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    state = torch.get_rng_state()
    a = local_complexity(model, x, radius=0.5, n_dirs=2, frame="per_point")
    b = local_complexity(model, x, radius=0.5, n_dirs=2, frame="per_point", generator=torch.Generator().manual_seed(0))
    c = local_complexity(model, x, radius=0.5, n_dirs=2, frame="per_point", generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.counts, b.counts) and not torch.equal(a.counts, c.counts)


def test_orthonormal_frame_is_orthonormal_and_reproducible():
    v = lc.orthonormal_frame((3, 4), 7, generator=torch.Generator().manual_seed(3))
    flat = v.reshape(7, 12)
    assert v.dtype == F64 and torch.allclose(flat @ flat.T, torch.eye(7, dtype=F64), atol=1e-12)
    assert torch.equal(v, lc.orthonormal_frame((3, 4), 7, generator=torch.Generator().manual_seed(3)))
    pp = lc.orthonormal_frame((5,), 2, n_points=4)
    assert pp.shape == (4, 2, 5) and torch.allclose(pp @ pp.transpose(1, 2), torch.eye(2, dtype=F64).expand(4, 2, 2))


# ------------------------------------------------------------------------------------------ sites, hooks

class FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def test_model_with_functional_relu_gets_an_error_that_says_what_to_do():
    with pytest.raises(lc.NoSitesError, match=r"F\.relu.*nn\.ReLU") as err:
        local_complexity(FunctionalReLU(), torch.randn(4, 3), radius=0.1, n_dirs=2)
    assert isinstance(err.value, ValueError)


def test_linear_activations_are_not_sites():
    model = MLP(3, 8, 1, 3, make_generators([0]), act="linear")
    with pytest.raises(lc.NoSitesError, match="nn.Identity"):
        local_complexity(model, torch.randn(4, 3), radius=0.1, n_dirs=2)


class Kink(lc.PiecewiseLinear):
    def forward(self, z):
        return torch.where(z > 0, z, -0.5 * z)


def test_piecewise_linear_subclasses_names_and_filters_select_sites():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), Kink(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 1)).double()
    x = torch.randn(10, 3, dtype=F64)
    full = local_complexity(model, x, radius=0.5, n_dirs=2)
    assert full.site_names == ("1", "3") and full.units.tolist() == [8, 6]
    named = local_complexity(model, x, radius=0.5, n_dirs=2, sites=["3"])
    filt = local_complexity(model, x, radius=0.5, n_dirs=2, sites=lambda n, m: isinstance(m, Kink))
    assert torch.equal(named.counts[:, 0], full.counts[:, 1]) and torch.equal(filt.counts[:, 0], full.counts[:, 0])
    with pytest.raises(ValueError, match="sites.*'7'"):
        local_complexity(model, x, radius=0.5, n_dirs=2, sites=["7"])


def test_a_module_called_twice_counts_the_units_of_both_calls():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.act = nn.Linear(3, 5), nn.Linear(5, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.b(self.act(self.a(x))))

    model = Shared().double()
    x = torch.randn(20, 3, dtype=F64)
    res = local_complexity(model, x, radius=0.5, n_dirs=2)
    assert res.site_names == ("act",) and res.units.tolist() == [9]
    twin = nn.Sequential(model.a, nn.ReLU(), model.b, nn.ReLU())  # the same function, one module per call
    both = local_complexity(twin, x, radius=0.5, n_dirs=2)
    assert both.counts[:, 0].sum() > 0 and both.counts[:, 1].sum() > 0
    assert torch.equal(res.counts[:, 0], both.counts.sum(1))


def no_hooks(model):
    return all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_hooks_are_removed_after_success_and_after_an_exception_inside_forward():
    class Fails(nn.Sequential):
        def forward(self, x):
            if x.shape[0] > 1:  # the one-centre check passes, the vertex forward raises
                raise RuntimeError("boom inside forward")
            return super().forward(x)

    model = Fails(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        local_complexity(model, torch.randn(5, 3), radius=0.1, n_dirs=2)
    assert no_hooks(model) and model.training and all(m.training for m in model.modules())
    local_complexity(deep(3, [4], 0), torch.randn(5, 3, dtype=F64), radius=0.1, n_dirs=2)
    assert no_hooks(model)


def test_modes_and_batch_norm_statistics_are_left_as_they_were():
    model = MLP(4, 8, 1, 2, make_generators([0]), batch_norm=True, dtype=F64)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    local_complexity(model, torch.randn(7, 4, dtype=F64), radius=0.5, n_dirs=2)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_result_summaries():
    res = local_complexity(deep(4, [10, 10], 0), torch.randn(8, 4, dtype=F64), radius=0.5, n_dirs=3,
                           include_output=True)
    assert res.site_names == ("1", "3", "output") and res.units.tolist() == [10, 10, 3]
    assert torch.equal(res.per_point, res.counts.sum(1))
    assert res.mean().item() == pytest.approx(res.per_point.double().mean().item())
    assert ((res.fractions >= 0) & (res.fractions <= 1)).all()


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs,match", [
    (dict(radius=0.0), "radius"), (dict(radius=-1.0), "radius"), (dict(radius=float("nan")), "radius"),
    (dict(radius=float("inf")), "radius"), (dict(n_dirs=0), "n_dirs"), (dict(n_dirs=5), "n_dirs.*4"),
    (dict(n_dirs=2.5), "n_dirs"), (dict(frame="diagonal"), "frame"), (dict(chunk_size=0), "chunk_size"),
    (dict(frame=torch.ones(2, 4, dtype=F64), n_dirs=None), "orthonormal"),
    (dict(frame=torch.eye(4, dtype=F64)[:2, :3], n_dirs=None), "frame"),
    (dict(frame=torch.eye(4, dtype=F64)[:3], n_dirs=2), "n_dirs"),
    (dict(n_dirs=None), "n_dirs"), (dict(generator="seed"), "generator"),
])
def test_bad_arguments_raise_value_errors_naming_the_argument(kwargs, match):
    args = dict(radius=0.5, n_dirs=2) | kwargs
    with pytest.raises(ValueError, match=match):
        local_complexity(deep(4, [6], 0), torch.randn(5, 4, dtype=F64), **args)


@pytest.mark.parametrize("x,match", [
    (torch.randn(5, 3, dtype=F64), "x of shape"), (torch.randn(5, dtype=F64), "x must be"),
    (torch.full((5, 4), float("nan"), dtype=F64), "x must be finite"), (torch.ones(5, 4, dtype=torch.long), "x must"),
    (torch.randn(0, 4, dtype=F64), "x must hold"),
])
def test_bad_points_raise_value_errors_naming_x(x, match):
    with pytest.raises(ValueError, match=match):
        local_complexity(deep(4, [6], 0), x, radius=0.5, n_dirs=2)


def test_ensemble_points_must_fit_the_members():
    model = MLP(4, 8, 1, 2, make_generators([0, 1]))
    with pytest.raises(ValueError, match=r"x must be \[N, 4\].*\[2, N, 4\]"):
        local_complexity(model, torch.randn(3, 5, 4), radius=0.5, n_dirs=2)


# ------------------------------------------------------------------------------------------ Flatten shortcut

def image_mlp(shape=(1, 5, 5), widths=(16, 12), out=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = [math.prod(shape), *widths]
    layers = [nn.Flatten()]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], out)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64) / math.sqrt(p.shape[-1]))
    return model


def rows_seen_by(module):
    """A forward hook recording the batch size of every call of `module` (to see which path ran)."""
    rows = []
    return rows, module.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))


@pytest.mark.parametrize("frame", ["shared", "per_point"])
@pytest.mark.parametrize("include_center", [False, True])
def test_flatten_then_linear_takes_the_shortcut_with_the_counts_of_the_plain_path(frame, include_center):
    model = image_mlp()
    x = torch.rand(17, 1, 5, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    kw = dict(radius=0.4, n_dirs=6, frame=frame, include_center=include_center, include_output=True)
    plain = local_complexity(model, x, shortcut=False, **kw)
    assert plain.counts.sum() > 0
    rows, handle = rows_seen_by(model[1])
    try:
        for chunk in (None, 4):
            rows.clear()
            res = local_complexity(model, x, chunk_size=chunk, **kw)
            assert torch.equal(res.counts, plain.counts), chunk
            # the input layer module ran on the 1 + 17 centres only, never on the 17 x 12 vertices
            assert sum(rows) == 1 + 17
    finally:
        handle.remove()


def test_flatten_shortcut_equals_the_flat_model_on_the_flattened_frame():
    model = image_mlp(shape=(2, 3, 3))
    flat = nn.Sequential(*list(model)[1:])
    x = torch.randn(12, 2, 3, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    frame = lc.orthonormal_frame((2, 3, 3), 5, generator=torch.Generator().manual_seed(3))
    img = local_complexity(model, x, radius=0.5, frame=frame)
    ref = local_complexity(flat, x.reshape(12, 18), radius=0.5, frame=frame.reshape(5, 18))
    assert img.site_names == ("2", "4") and ref.site_names == ("1", "3")
    assert torch.equal(img.counts, ref.counts) and img.counts.sum() > 0


def test_no_shortcut_when_a_flatten_would_merge_the_batch_or_a_leading_module_is_a_site():
    from lc.complexity import _shortcut_plan
    from lc.sites import resolve_sites

    model = image_mlp()
    assert _shortcut_plan(model, resolve_sites(model), None, 3).prefix == (model[0],)
    merged = nn.Sequential(nn.Flatten(0), nn.Linear(25, 4), nn.ReLU())
    assert _shortcut_plan(merged, resolve_sites(merged), None, 3) is None
    assert _shortcut_plan(model, resolve_sites(model, output_sites=["1"]), None, 3) is None


# ------------------------------------------------------------------------------------------ functional activations

class FunctionalMLP(nn.Module):
    """relu or leaky relu applied as functions: no activation module to hook."""

    def __init__(self, d, widths, out, seed, slope=0.0):
        super().__init__()
        ref = deep(d, widths, seed, out)
        self.fc1, self.fc2, self.fc3 = ref[0], ref[2], ref[4]
        self.slope = slope

    def forward(self, x):
        act = (lambda z: F.leaky_relu(z, self.slope)) if self.slope else F.relu
        return self.fc3(act(self.fc2(act(self.fc1(x)))))

    def as_sequential(self):
        act = (lambda: nn.LeakyReLU(self.slope)) if self.slope else nn.ReLU
        return nn.Sequential(self.fc1, act(), self.fc2, act(), self.fc3)


@pytest.mark.parametrize("slope", [0.0, 0.1])
@pytest.mark.parametrize("frame", ["shared", "per_point"])
def test_output_sites_count_functional_activations_like_activation_modules(slope, frame):
    model = FunctionalMLP(5, [14, 9], 3, 0, slope)
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    kw = dict(radius=0.6, n_dirs=3, frame=frame, include_output=True)
    res = local_complexity(model, x, output_sites=["fc1", "fc2"], **kw)
    ref = local_complexity(model.as_sequential(), x, **kw)
    assert res.site_names == ("fc1", "fc2", "output") and res.units.tolist() == [14, 9, 3]
    assert torch.equal(res.counts, ref.counts) and ref.counts[:, :2].sum() > 0
    for chunk in (1, 7):
        assert torch.equal(local_complexity(model, x, output_sites=["fc1", "fc2"], chunk_size=chunk, **kw).counts,
                           ref.counts)


def test_output_sites_join_the_default_activation_modules_in_module_order():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            ref = deep(4, [10, 8], 2)
            self.fc1, self.act, self.fc2, self.head = ref[0], nn.ReLU(), ref[2], ref[4]

        def forward(self, x):
            return self.head(F.relu(self.fc2(self.act(self.fc1(x)))))

    model = Mixed()
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    res = local_complexity(model, x, radius=0.5, n_dirs=2, output_sites=["fc2"])
    ref = local_complexity(deep(4, [10, 8], 2), x, radius=0.5, n_dirs=2)
    assert res.site_names == ("act", "fc2") and torch.equal(res.counts, ref.counts)


def test_the_no_sites_error_names_output_sites_and_the_candidate_modules():
    with pytest.raises(lc.NoSitesError, match=r"output_sites=\['fc1'\].*'fc1', 'fc2'"):
        local_complexity(FunctionalReLU(), torch.randn(4, 3), radius=0.1, n_dirs=2)
    probe = lc.Probe(points={"train": torch.randn(6, 3)}, radius=0.5, n_dirs=2, output_sites=["fc1"])
    model = FunctionalReLU()
    assert probe.reason_not_applicable(model) is None
    out = probe(model)
    assert set(out) == {"lc_train", "lc_train/fc1"} and out["lc_train"].shape == (1,)


@pytest.mark.parametrize("kwargs,match", [
    (dict(output_sites=["fc9"]), r"output_sites names unknown modules \['fc9'\]"),
    (dict(output_sites="fc1"), "output_sites must be"), (dict(output_sites=["fc1", "fc1"]), "twice"),
    (dict(output_sites=[]), "output_sites is empty"),
    (dict(output_sites=["fc1"], sites=["fc1"]), r"both input sites and output_sites"),
    (dict(output_sites=["unused"]), r"sites \['unused'\] are never called"),
])
def test_bad_output_sites(kwargs, match):
    model = FunctionalReLU().double()
    model.unused = nn.Linear(3, 3)
    with pytest.raises(ValueError, match=match):
        local_complexity(model, torch.randn(4, 3, dtype=F64), radius=0.1, n_dirs=2, **kwargs)


# ------------------------------------------------------------------------------------------ pruned units

def test_units_zero_at_every_vertex_are_not_crossed_and_the_rest_is_unchanged():
    model = deep(5, [12, 10], 4)
    x = torch.randn(25, 5, generator=torch.Generator().manual_seed(5), dtype=F64)
    pruned = deep(5, [12, 10], 4)
    with torch.no_grad():
        for layer, units in ((0, [1, 6]), (2, [0, 3, 9])):
            pruned[layer].weight[units] = 0.0
            pruned[layer].bias[units] = 0.0
    kw = dict(radius=0.8, n_dirs=4, include_output=True)
    res = local_complexity(pruned, x, **kw)
    assert torch.equal(res.counts, local_complexity(pruned, x, shortcut=False, **kw).counts)
    # the same net with the pruned units removed (layer 2 still sees layer 1's remaining units)
    keep1, keep2 = [i for i in range(12) if i not in (1, 6)], [i for i in range(10) if i not in (0, 3, 9)]
    small = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 7), nn.ReLU(), nn.Linear(7, 3)).double()
    with torch.no_grad():
        small[0].weight.copy_(pruned[0].weight[keep1])
        small[0].bias.copy_(pruned[0].bias[keep1])
        small[2].weight.copy_(pruned[2].weight[keep2][:, keep1])
        small[2].bias.copy_(pruned[2].bias[keep2])
        small[4].weight.copy_(pruned[4].weight[:, keep2])
        small[4].bias.copy_(pruned[4].bias)
    ref = local_complexity(small, x, **kw)
    assert torch.equal(res.counts, ref.counts) and res.counts[:, 0].sum() > 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.integers(2, 20), radius=st.floats(0.05, 3.0), data=st.data())
def test_hyperplane_identity_holds_with_pruned_units(seed, width, radius, data):
    dead = data.draw(st.lists(st.integers(0, width - 1), min_size=1, max_size=width, unique=True), label="dead")
    model = one_hidden(4, width, seed)
    with torch.no_grad():
        model[0].weight[dead] = 0.0
        model[0].bias[dead] = 0.0
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    frame = lc.orthonormal_frame((4,), 3, generator=torch.Generator().manual_seed(seed + 2))
    expected = hyperplanes_meeting(model, x, radius, frame)  # |w.c + b| < r max |w.v|: 0 < 0 is false
    for shortcut in (True, False):
        assert torch.equal(local_complexity(model, x, radius=radius, frame=frame, shortcut=shortcut).counts[:, 0],
                           expected)
    assert (expected <= width - len(dead)).all()


def test_a_unit_touching_zero_at_one_vertex_is_still_crossed():
    model = nn.Sequential(nn.Linear(2, 1), nn.ReLU()).double()
    with torch.no_grad():  # z = x_1 - 0.5: 0 at the vertex +r e_1 of x = 0 with r = 0.5, negative elsewhere
        model[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        model[0].bias.fill_(-0.5)
    res = local_complexity(model, torch.zeros(1, 2, dtype=F64), radius=0.5, frame=torch.eye(2, dtype=F64))
    assert res.counts.tolist() == [[1]]


# ------------------------------------------------------------------------------------------ non-finite models

@pytest.mark.parametrize("where,value,match", [
    ("2.weight", float("nan"), r"parameter '2\.weight' has 1 non-finite"),
    ("0.bias", float("inf"), r"parameter '0\.bias'"),
])
def test_non_finite_parameters_raise_naming_the_first_one(where, value, match):
    model = deep(4, [6, 6], 0)
    with torch.no_grad():
        model.get_parameter(where).view(-1)[0] = value
        model[4].bias[0] = float("nan")  # a later offender is not the one named
    with pytest.raises(ValueError, match=match):
        local_complexity(model, torch.randn(5, 4, dtype=F64), radius=0.5, n_dirs=2)


def test_non_finite_buffers_and_ensemble_members_raise():
    bn = MLP(4, 8, 1, 2, make_generators([0]), batch_norm=True, dtype=F64)
    with torch.no_grad():
        bn[1].running_var[0, 3] = float("inf")
    with pytest.raises(ValueError, match=r"buffer '1\.running_var'"):
        local_complexity(bn, torch.randn(5, 4, dtype=F64), radius=0.5, n_dirs=2)
    ens = MLP(4, 8, 1, 2, make_generators([0, 1, 2]), dtype=F64)
    with torch.no_grad():
        ens[2].weight[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"parameter '2\.weight'.*member\(s\) \[1\]"):
        local_complexity(ens, torch.randn(5, 4, dtype=F64), radius=0.5, n_dirs=2)
