"""lc.Probe and lc.random_box_points."""

import pytest
import torch
from torch import nn

import lc
from sims.nn import MLP, make_generators

F64 = torch.float64


def point_sets(E=3, d=5):
    g = torch.Generator().manual_seed(0)
    train = torch.randn(E, 20, d, generator=g, dtype=F64)
    return {"train": train, "test": torch.randn(15, d, generator=g, dtype=F64),
            "random": lc.random_box_points(train, 10, g)}


def test_keys_shapes_and_values_per_member():
    model = MLP(5, 16, 2, 3, make_generators([0, 1, 2]), dtype=F64)
    pts = point_sets()
    probe = lc.Probe(points=pts, radius=0.5, n_dirs=3, seed=4)
    out = probe(model)
    assert set(out) == {f"lc_{s}{site}" for s in pts for site in ("", "/1", "/3")}
    assert all(v.shape == (3,) and v.dtype == F64 for v in out.values())
    direct = lc.local_complexity(model, pts["train"], radius=0.5, frame=probe.frame((5,)))
    assert torch.allclose(out["lc_train"], direct.mean())
    assert torch.allclose(out["lc_train/1"] + out["lc_train/3"], out["lc_train"])
    assert (out["lc_test"] > 0).all()


def test_same_frame_and_results_at_every_call_and_model_mode_restored():
    model = MLP(5, 16, 2, 3, make_generators([0, 1, 2]), batch_norm=True, dtype=F64)
    model.train()
    probe = lc.Probe(points=point_sets(), radius=0.5, n_dirs=3, seed=4)
    state = torch.get_rng_state()
    a, b = probe(model), probe(model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert model.training and torch.equal(torch.get_rng_state(), state)
    other = lc.Probe(points=point_sets(), radius=0.5, n_dirs=3, seed=5)(model)
    assert not all(torch.equal(a[k], other[k]) for k in a)


def test_several_radii_suffix_every_key_and_plain_models_give_one_member():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 1)).double()
    pts = {"train": torch.randn(20, 5, dtype=F64)}
    out = lc.Probe(points=pts, radius=[0.1, 0.5], n_dirs=2)(model)
    assert set(out) == {"lc_train@r0.1", "lc_train/1@r0.1", "lc_train@r0.5", "lc_train/1@r0.5"}
    assert all(v.shape == (1,) for v in out.values())
    assert out["lc_train@r0.1"] <= out["lc_train@r0.5"]  # one hidden layer: monotone in the radius


def test_models_without_sites_are_not_applicable():
    linear = MLP(5, 16, 2, 3, make_generators([0]), act="linear")
    relu = MLP(5, 16, 2, 3, make_generators([0]))
    probe = lc.Probe(points={"train": torch.randn(4, 5)}, radius=0.5, n_dirs=2)
    reason = probe.reason_not_applicable(linear)
    assert isinstance(reason, str) and "not applicable" in reason and "nn.Identity" in reason
    assert probe.reason_not_applicable(relu) is None
    with pytest.raises(lc.NoSitesError):
        probe(linear)


def test_random_box_points_stay_in_each_members_box():
    x = torch.stack([torch.rand(30, 3, dtype=F64), torch.rand(30, 3, dtype=F64) * 5 + 10])
    r = lc.random_box_points(x, 200, torch.Generator().manual_seed(0))
    assert r.shape == (2, 200, 3) and r.dtype == F64
    assert ((r >= x.amin(1, keepdim=True)) & (r <= x.amax(1, keepdim=True))).all()
    assert (r[1] > 9).all() and (r[0] < 1).all()
    flat = lc.random_box_points(x[0].float(), 7, torch.Generator().manual_seed(0))
    assert flat.shape == (7, 3) and flat.dtype == torch.float32
    again = lc.random_box_points(x, 200, torch.Generator().manual_seed(0))
    assert torch.equal(r, again)


@pytest.mark.parametrize("kwargs,match", [
    (dict(points={}), "points"), (dict(points={"a/b": torch.randn(3, 5)}), "points keys"),
    (dict(points={"train": torch.randn(5)}), r"points\['train'\]"),
    (dict(points={"train": torch.full((3, 5), float("nan"))}), "finite"),
    (dict(radius=0), "radius"), (dict(radius=[0.1, -1]), "radius"), (dict(radius=[]), "radius"),
    (dict(radius=[0.1, 0.1]), "radius"), (dict(n_dirs=0), "n_dirs"), (dict(n_dirs=6), "n_dirs"),
    (dict(seed="a"), "seed"),
])
def test_bad_probe_arguments(kwargs, match):
    args = dict(points={"train": torch.randn(3, 5)}, radius=0.5, n_dirs=2) | kwargs
    with pytest.raises(ValueError, match=match):
        lc.Probe(**args)


@pytest.mark.parametrize("args,match", [
    ((torch.randn(5), 3), "x must"), ((torch.randn(4, 2), 0), "n "), ((torch.randn(4, 2), 3, None), "generator"),
    ((torch.full((4, 2), float("inf")), 3), "finite"),
])
def test_bad_random_box_arguments(args, match):
    if len(args) == 2:
        args = (*args, torch.Generator())
    with pytest.raises(ValueError, match=match):
        lc.random_box_points(*args)


def test_non_finite_plain_model_raises_naming_the_parameter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 1)).double()
    with torch.no_grad():
        model[2].weight[0, 3] = float("inf")
    probe = lc.Probe(points={"train": torch.randn(6, 5, dtype=F64)}, radius=0.5, n_dirs=2)
    with pytest.raises(ValueError, match=r"parameter '2\.weight' has 1 non-finite"):
        probe(model)


def test_ensemble_members_with_non_finite_parameters_get_nan_and_the_others_are_unchanged():
    model = MLP(5, 16, 2, 3, make_generators([0, 1, 2]), batch_norm=True, dtype=F64)
    probe = lc.Probe(points=point_sets(), radius=0.5, n_dirs=3, seed=4)
    healthy = probe(model)
    with torch.no_grad():
        model[0].weight[1, 2, 3] = float("nan")
    sick = probe(model)
    assert sick.keys() == healthy.keys()
    for k in healthy:
        assert torch.isnan(sick[k][1]) and torch.equal(sick[k][[0, 2]], healthy[k][[0, 2]]), k
    assert torch.isnan(model[0].weight[1, 2, 3])  # the model itself is left as it was
    with torch.no_grad():
        model[1].running_var[0, 0] = float("inf")
        model[3].bias[2, 0, 0] = -float("inf")
    assert all(torch.isnan(v).all() for v in probe(model).values())
