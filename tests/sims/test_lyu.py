"""Lyu et al. 2024 settings: the diagonal net's early l2 / late l1 bias, the new models and data, ensembles against
single runs, and the lyu2024 claims at the ci preset."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sims import metrics, registry
from sims.claims import VERDICTS
from sims.claims.runner import reproduce
from sims.config import ConfigError
from sims.data import (misgrokking_data, modular_addition, multiplication_table_completion, sparse_boolean,
                       stack_per_member)
from sims.engine import Env
from sims.nn import MLP, DiagonalNet, SymmetricFactorization, make_generators
from sims.settings.dichotomy import diagonal as dichotomy
from sims.settings.common import logistic_loss

CPU, F64 = torch.device("cpu"), torch.float64
TOL = dict(rtol=1e-9, atol=1e-11)


def _gd(task, cfg, steps):
    """`steps` full-batch SGD steps with the config's lr and weight decay (the engine's default optimiser)."""
    opt = torch.optim.SGD(task.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        task.loss(task.model(task.x), task.y).sum().backward()
        opt.step()
    return task


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 24), d=st.integers(60, 200), k=st.sampled_from([1, 3]))
def test_diagonal_net_goes_from_the_l2_to_the_l1_max_margin_direction(seed, n, d, k):
    """From alpha = 100 with weight decay 0.05 (t* = log(100) / 0.05 = 92, 184 steps at lr 0.5): at the first step
    that fits every label the predictor u^2 - v^2 is closer to the l2 than to the l1 max-margin direction; after
    600 steps the reverse (measured margins over 20 random draws: >= 0.24 and >= 0.21)."""
    x, y, _, _, _ = stack_per_member(sparse_boolean, make_generators([seed]), n, 1, d, k, dtype=F64)
    w2, w1 = (metrics.max_margin_directions(x, y, norm=nm) for nm in ("l2", "l1"))
    net = DiagonalNet(d, [100.0], dtype=F64)
    opt = torch.optim.SGD(net.parameters(), lr=0.5, weight_decay=0.05)
    early = None
    for _ in range(600):
        opt.zero_grad()
        logistic_loss(net(x), y).sum().backward()
        opt.step()
        with torch.no_grad():
            if early is None and bool((torch.sign(net(x)[0, :, 0]) == y[0]).all()):
                early = net.predictor().clone()
    late = net.predictor().detach()
    assert early is not None
    assert metrics.cosine(early, w2).item() > metrics.cosine(early, w1).item() + 0.1
    assert metrics.cosine(late, w1).item() > metrics.cosine(late, w2).item() + 0.1


def test_models_start_where_the_paper_says():
    d = 50
    net = DiagonalNet(d, [128.0, 2.0], dtype=F64)
    theta = torch.cat([net.u, net.v], dim=1).norm(dim=1)
    torch.testing.assert_close(theta, torch.tensor([128.0, 2.0], dtype=F64))
    assert net.predictor().abs().max() == 0
    fac = SymmetricFactorization(6, [10.0], dtype=F64)
    assert fac.matrix().abs().max() == 0
    assert math.isclose(torch.cat([fac.U, fac.V]).norm().item(), 10.0 * math.sqrt(12), rel_tol=1e-12)
    mlp = MLP(400, 300, 20, 2, make_generators([0]), init="kaiming", bias="first", init_scale=3.0, dtype=F64)
    first, last = mlp[0], mlp[2]
    assert last.bias is None and first.bias.abs().max() == 0
    assert abs(first.weight.std().item() / (3.0 * math.sqrt(2 / 400)) - 1) < 0.02  # ReLU gain, fan-in
    assert abs(last.weight.std().item() / (3.0 / math.sqrt(300)) - 1) < 0.03  # linear gain
    with pytest.raises(ValueError, match="alphas"):
        DiagonalNet(5, [1.0, -1.0])
    with pytest.raises(ValueError, match="init"):
        MLP(3, 4, 1, 2, make_generators([0]), init="xavier")


@pytest.mark.parametrize("name, over, per", [
    ("dichotomy-sparse", dict(d=40, n=10, n_test=30, max_margin=False), [dict(seed=3, alpha=20.0), dict(seed=5, alpha=3.0)]),
    ("dichotomy-misgrokking", dict(d=40, n=10, n_test=30, max_margin=False), [dict(seed=3, alpha=20.0),
                                                                             dict(seed=5, alpha=3.0)]),
    ("dichotomy-completion", dict(d=7, baseline=False), [dict(seed=3, alpha=4.0), dict(seed=5, alpha=1.5)]),
    ("modular-addition", dict(p=7, width=16, lc=False, snapshots=0), [dict(seed=3), dict(seed=5)]),
])
def test_ensemble_members_equal_single_runs(name, over, per):
    """Member e of a trained ensemble (seeds and, where member-wise, init scales differ) equals the one-member run of
    its config, and `model.member(e)` (an ordinary module) computes the ensemble's member-e outputs."""
    sim = registry.get(name)
    over = dict(over, dtype="float64")
    members = registry.members(sim, "ci", over, member_overrides=per)
    big = _gd(sim.build(members, Env(CPU, F64)), members[0], 6)
    out = big.model(big.x)
    for e, m in enumerate(per):
        one_members = registry.members(sim, "ci", over, member_overrides=[m])
        one = _gd(sim.build(one_members, Env(CPU, F64)), one_members[0], 6)
        for pb, p1 in zip(big.model.parameters(), one.model.parameters()):
            torch.testing.assert_close(pb[e], p1[0], **TOL)
        torch.testing.assert_close(big.model.member(e)(big.x[e]), out[e], **TOL)


def test_data_generators():
    g = make_generators([7])
    x, y, xt, yt, w = stack_per_member(sparse_boolean, g, 40, 30, 20, 3, dtype=F64)
    assert set(x.unique().tolist()) == {-1.0, 1.0} and (w[0, 3:] == 0).all() and (w[0, :3].abs() == 1).all()
    torch.testing.assert_close(y[0], torch.sign(x[0, :, :3] @ w[0, :3]))
    torch.testing.assert_close(yt[0], torch.sign(xt[0, :, :3] @ w[0, :3]))
    x, y, xt, yt, w = stack_per_member(misgrokking_data, g, 30, 20, 15, 4.0, dtype=F64)
    assert math.isclose(w[0].norm().item(), 1.0) and ((y[0] * (x[0] @ w[0])) >= 2.0 - 1e-12).all()
    M, pos, vals, pos_t, vals_t = stack_per_member(multiplication_table_completion, g, 6, 10, dtype=F64)
    seen = torch.cat([pos[0], pos_t[0]])
    assert len({tuple(p) for p in seen.tolist()}) == 36 and len(pos_t[0]) == 26
    torch.testing.assert_close(vals[0], pos[0, :, 0] * pos[0, :, 1] / 36.0, check_dtype=False)
    x, y, xt, yt = stack_per_member(modular_addition, g, 5, 18, dtype=F64)
    both = torch.cat([x[0], xt[0]])
    a, b = both[:, :5].argmax(1), both[:, 5:].argmax(1)
    assert both.sum(1).eq(2).all() and len(set(zip(a.tolist(), b.tolist()))) == 25
    torch.testing.assert_close(torch.cat([y[0], yt[0]]), (a + b) % 5)


def test_config_errors_and_predicted_step():
    sim = registry.get("dichotomy-sparse")
    with pytest.raises(ConfigError, match="k must be odd"):
        registry.resolve(sim, "ci", {"k": 2})
    with pytest.raises(ConfigError, match="full-batch GD"):
        registry.resolve(sim, "ci", {"optimizer": "adamw"})
    with pytest.raises(ConfigError, match="training set"):
        registry.resolve(registry.get("modular-addition"), "ci", {"train_fraction": 0.001})
    assert dichotomy.predicted_step(1.0, 0.01, 0.5) is None and dichotomy.predicted_step(8.0, 0.0, 0.5) is None
    assert math.isclose(dichotomy.predicted_step(128.0, 1e-3, 0.01), math.log(128) / 1e-3 / 0.01)


def test_claims_run_at_ci(tmp_path):
    report = reproduce("lyu2024", preset="ci", out=tmp_path / "lyu", device="cpu", log=lambda msg: None)
    assert not report["run_failures"]
    rows = {row["id"]: row for row in report["rows"]}
    assert all(row["verdict"] in VERDICTS for row in rows.values())
    assert all(np.isfinite(row["measured"]) for row in rows.values() if row["verdict"] != "n/a")
    for claim in ("early-predictor-near-l2", "late-predictor-near-l1", "transition-time-linear",
                  "misgrokking-train-stays-1", "completion-test-falls"):
        assert rows[claim]["verdict"] == "PASS", rows[claim]
    assert "lyu2024-transition-time.png" in report["figures"]
    assert any(f.endswith("partition.png") for f in report["figures"])
