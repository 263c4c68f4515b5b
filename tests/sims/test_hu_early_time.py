"""early-time (Hu, Xiao, Adlam, Pennington 2020): the NTK-parametrised net against theory.early_time, the linear
model at the network's own step (also after a resume), the network and the linear model at t = 0, members against
single runs, and the hu2020 claims at the ci preset."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import sims
import theory.early_time as et
from sims import engine, registry
from sims.claims.runner import reproduce
from sims.config import ConfigError
from sims.engine import Env
from sims.nn import NTKTwoLayerNet, make_generators
from sims.settings.linear import early_time

CPU, F64 = torch.device("cpu"), torch.float64
SMALL = dict(n=12, d=8, width=30, n_test=10, steps=6, n_evals=4, dtype="float64")


def _task(seeds=(0,), **overrides):
    sim = registry.get("early-time")
    members = registry.members(sim, "ci", dict(SMALL, seed=seeds[0], **overrides), seeds=len(seeds))
    return members, sim.build(members, Env(CPU, F64))


@settings(max_examples=10, deadline=None)
@given(E=st.integers(1, 3), d=st.integers(1, 7), m=st.integers(1, 9), kappa=st.floats(0.01, 2.0),
       train=st.sampled_from(["first", "second", "both"]))
def test_ntk_net_equals_theory_and_its_members(E, d, m, kappa, train):
    net = NTKTwoLayerNet(d, m, make_generators(range(E)), init_scale=kappa, train=train, dtype=F64)
    x = torch.randn(E, 5, d, dtype=F64, generator=torch.Generator().manual_seed(1))
    out = net(x)
    assert net[0].weight.requires_grad == (train != "second") and net[3].weight.requires_grad == (train != "first")
    for e in range(E):
        W, a = net[0].weight[e].detach().T.numpy(), net[3].weight[e, :, 0].detach().numpy()
        np.testing.assert_allclose(np.abs(a), kappa)
        np.testing.assert_allclose(out[e, :, 0].detach().numpy(), et.network_output(x[e].numpy(), W, a, et.RELU),
                                   rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(net.member(e)(x[e]), out[e], rtol=1e-12, atol=1e-12)
        one = NTKTwoLayerNet(d, m, make_generators([e]), init_scale=kappa, train=train, dtype=F64)
        torch.testing.assert_close(one(x[e])[0], out[e], rtol=0, atol=0)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 1000), kappa=st.floats(1e-3, 0.5), layers=st.sampled_from(["first", "second", "both"]))
def test_at_step_zero_network_and_linear_model_agree_to_the_size_of_the_init(seed, kappa, layers):
    # f_lin(0) = 0, f_net(0) = f0 with RMS ~ kappa sqrt(E relu^2) = kappa / sqrt(2): the gap is the init, exactly linear
    # in kappa (same seed, same W and signs), and small when kappa is.
    gaps = {}
    for k in (kappa, 1.0):
        _, task = _task((seed,), layers=layers, init_scale=k)
        with torch.no_grad():
            got, f0 = task.evaluate(task.model), task.model(task.x)[..., 0]
        torch.testing.assert_close(got["gap_train"], f0.norm(dim=1) / task.y.norm(dim=1), rtol=1e-12, atol=0)
        torch.testing.assert_close(got["loss_lin"], 0.5 * torch.ones(1, dtype=F64), rtol=1e-12, atol=0)
        gaps[k] = float(got["gap_train"][0])
    assert gaps[kappa] == pytest.approx(kappa * gaps[1.0], rel=1e-10)
    assert gaps[kappa] <= 2.5 * kappa  # the output at init, RMS kappa sqrt(E relu(g)^2 (1 + O(1/sqrt(m))))


def test_linear_model_follows_explicit_gd_at_the_networks_step(runs_dir):
    r = sims.run("early-time", preset="ci", device="cpu", figures=False, **dict(SMALL, steps=7, n_evals=8))
    c = r.config
    members, task = _task(steps=7, n_evals=8)
    F = early_time.linear_features(task.x[0].numpy(), c.layers, c.init_scale)
    y = task.y[0].numpy()
    beta, losses = np.zeros(F.shape[1]), {}
    for step in range(8):
        losses[step] = 0.5 * np.mean((F @ beta - y) ** 2)
        beta -= c.lr * F.T @ (F @ beta - y) / c.n
    np.testing.assert_allclose(r.metric("loss_lin")[:, 0], [losses[s] for s in r.steps], rtol=1e-9)
    assert r.member_summaries[0]["lr_stability"] < 2


def test_resume_reads_the_step_from_the_optimizer(runs_dir, monkeypatch, interrupting):
    over = dict(SMALL, steps=20, n_evals=10, checkpoint_every=2)
    full = sims.run("early-time", preset="ci", seeds=2, device="cpu", figures=False, **over)
    sim = registry.get("early-time")
    monkeypatch.setitem(registry._REGISTRY, "early-time", interrupting(sim, at_eval=6))
    with pytest.raises(engine.Interrupted):
        sims.run("early-time", preset="ci", seeds=2, device="cpu", figures=False, **over)
    monkeypatch.setitem(registry._REGISTRY, "early-time", sim)
    [cut] = [d for d in (runs_dir / "early-time").iterdir() if d != full.dir]
    resumed = sims.resume(cut, device="cpu", figures=False)
    for name in ("gap_train", "gap_test", "loss_lin", "loss_train"):
        np.testing.assert_array_equal(resumed.metric(name), full.metric(name))


def test_members_equal_single_runs_and_kernel_gap(runs_dir):
    many = sims.run("early-time", preset="ci", seeds=3, device="cpu", figures=False, **SMALL)
    one = sims.run("early-time", preset="ci", seeds=1, device="cpu", figures=False, **dict(SMALL, seed=2))
    for name in many.metric_names:
        np.testing.assert_allclose(many.metric(name)[:, 2], one.metric(name)[:, 0], rtol=1e-10, atol=1e-12)
    assert many.member_summaries[2]["kernel_gap"] == pytest.approx(one.member_summaries[0]["kernel_gap"], rel=1e-10)


def test_kernel_gap_shrinks_from_d_100_to_1000():
    # the affine kernel's gap to the empirical tangent kernel at init, mean over 3 seeds (n = 60, m = 1000, a = +-1)
    def gap(d):
        vals = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            x, W, a = rng.standard_normal((60, d)), rng.standard_normal((1000, d)), rng.choice([-1.0, 1.0], 1000)
            vals.append(early_time.kernel_gap(x, W, a, "first", 1.0))
        return np.mean(vals)

    small, large = gap(100), gap(1000)
    assert large < 0.75 * small, (small, large)


def test_spectral_norm_matches_numpy_above_the_lanczos_cut():
    A = np.random.default_rng(0).standard_normal((300, 300))
    A = A + A.T
    assert early_time.spectral_norm(A) == pytest.approx(np.linalg.norm(A, 2), rel=1e-9)
    assert math.isclose(early_time.spectral_norm(A[:50, :50]), np.linalg.norm(A[:50, :50], 2), rel_tol=1e-12)


def test_config_errors():
    sim = registry.get("early-time")
    with pytest.raises(ConfigError, match="plain full-batch GD"):
        registry.resolve(sim, "ci", {"optimizer": "adamw"})
    with pytest.raises(ConfigError, match="layers"):
        registry.resolve(sim, "ci", {"layers": "third"})
    with pytest.raises(ValueError, match="train must be"):
        NTKTwoLayerNet(3, 4, make_generators([0]), train="all")


def test_hu2020_claims_run_at_ci(tmp_path):
    report = reproduce("hu2020", preset="ci", out=tmp_path / "hu", device="cpu", log=lambda msg: None)
    assert not report["run_failures"]
    rows = {row["id"]: row for row in report["rows"]}
    assert set(rows) >= {"gap-small-while-linear-learns", "gap-grows-later", "kernel-gap-decreases-with-d"}
    assert all(np.isfinite(row["measured"]) for row in rows.values())
    assert "hu2020-kernel-gap-vs-d.png" in report["figures"]
