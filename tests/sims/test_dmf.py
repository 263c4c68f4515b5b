"""Deep matrix factorisation: the model, the scalar RMSprop, the three simulations, theory against simulation."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import sims
from sims import engine, plots, registry
from sims.config import ConfigError
from sims.nn import DeepMatrixFactorization, make_generators
from sims.optim import ScalarRMSprop
from sims.claims import arora2019_figures as arora_figures
from sims.settings.common import squared_loss
from sims.settings.factorisation import checks, dmf
from theory import matrices

F64 = torch.float64
FAST = dict(baseline=False)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Small problems: one intra-op thread (the `one_thread` fixture of tests/conftest.py) for every test here."""


def _orthogonal(n, g):
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    return q * torch.sign(torch.diagonal(r))


def _balanced_model(n, depth, seed):
    """A one-member factorisation with balanced factors: W_j = Q_j S^{1/N} Q_{j-1}^T, Q_0 = V, Q_N = U."""
    g = torch.Generator().manual_seed(seed)
    U, V = _orthogonal(n, g), _orthogonal(n, g)
    s = 0.5 + 1.5 * torch.rand(n, generator=g, dtype=F64)  # singular values in [0.5, 2]
    Q = [V] + [_orthogonal(n, g) for _ in range(depth - 1)] + [U]
    model = DeepMatrixFactorization(n, depth, make_generators([0]), dtype=F64)
    with torch.no_grad():
        for j, f in enumerate(model.factors):
            f[0] = Q[j + 1] @ torch.diag(s ** (1.0 / depth)) @ Q[j].T
    return model, g


def _completion_problem(n, g, k):
    pos = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"), -1).reshape(-1, 2)
    pos = pos[torch.randperm(n * n, generator=g)[:k]][None]  # [1, k, 2]
    return pos, torch.randn(1, k, generator=g, dtype=F64)


def _gd_step(model, pos, y, lr):
    """One plain GD step on every factor; returns the factors' gradients before the step (numpy)."""
    loss = squared_loss(model(pos), y).sum()
    grads = torch.autograd.grad(loss, list(model.factors))
    with torch.no_grad():
        for f, gr in zip(model.factors, grads):
            f -= lr * gr
    return [gr[0].numpy() for gr in grads]


@settings(max_examples=10, deadline=None)
@given(n=st.integers(2, 6), depth=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_gd_step_on_balanced_factors_is_the_end_to_end_update(n, depth, seed):
    lr = 1e-3
    errors = []
    for step in (lr, lr / 2):
        model, g = _balanced_model(n, depth, seed)
        pos, y = _completion_problem(n, g, k=max(1, n * n // 2))
        W = model.matrix().detach()
        W.requires_grad_(True)
        grad, = torch.autograd.grad(squared_loss(model.read(W, pos), y).sum(), W)
        predicted = matrices.end_to_end_update(W[0].detach().numpy(), grad[0].numpy(), depth, step)
        _gd_step(model, pos, y, step)
        moved = np.linalg.norm(predicted - W[0].detach().numpy())
        errors.append(np.linalg.norm(model.matrix()[0].detach().numpy() - predicted))
        assert errors[-1] <= 1e-2 * moved + 1e-13  # agrees at first order ...
    if depth == 1:
        assert errors[0] <= 1e-13  # depth 1 is gradient descent on W itself
    else:
        assert 3.0 <= errors[0] / errors[1] <= 5.0  # ... and the rest is O(lr^2): halving lr quarters it


@settings(max_examples=10, deadline=None)
@given(n=st.integers(2, 6), depth=st.integers(2, 4), seed=st.integers(0, 10**6))
def test_balancedness_is_conserved_to_second_order(n, depth, seed):
    gaps = []
    for lr in (1e-2, 5e-3):
        model, g = _balanced_model(n, depth, seed)
        assert matrices.balancedness_gap([f[0].detach().numpy() for f in model.factors], relative=False) < 1e-12
        pos, y = _completion_problem(n, g, k=max(1, n * n // 2))
        G = _gd_step(model, pos, y, lr)
        factors = [f[0].detach().numpy() for f in model.factors]
        gaps.append(matrices.balancedness_gap(factors, relative=False))
        # exactly: the change of W_{j+1}^T W_{j+1} - W_j W_j^T is lr^2 (G_{j+1}^T G_{j+1} - G_j G_j^T)
        for j in range(depth - 1):
            change = factors[j + 1].T @ factors[j + 1] - factors[j] @ factors[j].T
            np.testing.assert_allclose(change, lr**2 * (G[j + 1].T @ G[j + 1] - G[j] @ G[j].T), atol=1e-13)
    assert gaps[0] > 0
    assert 3.9 <= gaps[0] / gaps[1] <= 4.1


def test_model_shapes_init_and_members():
    seeds = [3, 4, 5]
    for depth in (1, 2, 3, 4):
        big = DeepMatrixFactorization(40, depth, make_generators(seeds), init_scale=1e-3, dtype=F64)
        norm = big.matrix()[0].norm().item()
        assert 0.3 < norm / (1e-3 * 40**0.5) < 3  # ||W(0)||_F ~ init_scale sqrt(n), whatever the depth
        one = DeepMatrixFactorization(40, depth, make_generators([4]), init_scale=1e-3, dtype=F64)
        torch.testing.assert_close(big.matrix()[1], one.matrix()[0], rtol=0, atol=0)
        x = torch.randn(7, 40, dtype=F64)
        torch.testing.assert_close(big.member(2)(x), x @ big.matrix()[2].T, rtol=1e-10, atol=1e-14)
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU)) for m in big.modules())
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 5, 40, 40, generator=g, dtype=F64)
    torch.testing.assert_close(big(A), torch.einsum("ekab,eab->ek", A, big.matrix()))
    pos = torch.randint(0, 40, (3, 6, 2), generator=g)
    W = big.matrix()
    torch.testing.assert_close(big(pos), torch.stack([W[e, pos[e, :, 0], pos[e, :, 1]] for e in range(3)]))
    with pytest.raises(ValueError, match="members"):
        big(pos[:2])
    with pytest.raises(ValueError, match="depth"):
        DeepMatrixFactorization(4, 0, make_generators([0]))


def _rms_reference(params, grads_per_step, lr, alpha=0.99, eps=1e-4):
    """The authors' GroupRMSprop on one member, written out."""
    v, out = 0.0, [p.clone() for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        v = alpha * v + (1 - alpha) * sum(float((gr**2).sum()) for gr in grads)
        scale = lr / ((v / (1 - alpha**t)) ** 0.5 + eps)
        out = [p - scale * gr for p, gr in zip(out, grads)]
    return out


def test_scalar_rmsprop_is_per_member_and_resumes_exactly():
    E, g = 3, torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(E, 4, 5, generator=g, dtype=F64)),
              torch.nn.Parameter(torch.randn(E, 2, generator=g, dtype=F64))]
    start = [p.detach().clone() for p in params]
    opt = ScalarRMSprop(params, lr=0.1)
    scales = torch.tensor([1.0, 100.0, 1e-3], dtype=F64)  # members with very different gradient sizes
    history = []
    for _ in range(4):
        grads = [torch.randn(p.shape, generator=g, dtype=F64) * scales.view(-1, *[1] * (p.dim() - 1)) for p in params]
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        opt.step()
        history.append(grads)
    for e in range(E):  # each member follows its own normaliser
        ref = _rms_reference([s[e] for s in start], [[gr[e] for gr in grads] for grads in history], lr=0.1)
        for p, r in zip(params, ref):
            torch.testing.assert_close(p.detach()[e], r, rtol=1e-12, atol=1e-14)
    # state_dict round trip: a fresh optimiser loaded from the state continues identically
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = ScalarRMSprop(twin, lr=0.1)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as torch.save / torch.load would
    grads = [torch.randn(p.shape, generator=g, dtype=F64) for p in params]
    for ps, o in ((params, opt), (twin, opt2)):
        for p, gr in zip(ps, grads):
            p.grad = gr.clone()
        o.step()
    for a, b in zip(params, twin):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="member dimension"):
        ScalarRMSprop([torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(3, 3))])


@pytest.mark.parametrize("sim", ["dmf-completion", "dmf-sensing"])
def test_ensemble_members_equal_single_runs(runs_dir, sim):
    over = dict(FAST, steps=60, seed=5)
    big = sims.run(sim, preset="ci", seeds=3, device="cpu", figures=False, **over)
    assert big.summary["status"] == "completed"
    for e in (0, 2):
        one = sims.run(sim, preset="ci", seeds=1, device="cpu", figures=False, **dict(over, seed=5 + e))
        for name in ("train_loss", "recon_error", "sv_1", "balancedness"):
            np.testing.assert_allclose(big.metric(name)[:, e], one.metric(name)[:, 0], rtol=1e-9, atol=1e-12)


def test_rmsprop_run_resumes_exactly(runs_dir, monkeypatch, interrupting):
    over = dict(FAST, steps=80, n_evals=12, checkpoint_every=2, loss_threshold=0.0)
    full = sims.run("dmf-completion", preset="ci", seeds=2, device="cpu", figures=False, **over)
    sim = registry.get("dmf-completion")
    monkeypatch.setitem(registry._REGISTRY, "dmf-completion", interrupting(sim, at_eval=6))
    with pytest.raises(engine.Interrupted):
        sims.run("dmf-completion", preset="ci", seeds=2, device="cpu", figures=False, **over)
    monkeypatch.setitem(registry._REGISTRY, "dmf-completion", sim)
    [cut] = [d for d in (runs_dir / "dmf-completion").iterdir() if d != full.dir]
    resumed = sims.resume(cut, device="cpu", figures=False)
    np.testing.assert_array_equal(resumed.steps, full.steps)
    for name in ("train_loss", "recon_error", "sv_1"):
        np.testing.assert_array_equal(resumed.metric(name), full.metric(name))


def test_completion_learns_low_rank_and_records_the_baseline(runs_dir):
    r = sims.run("dmf-completion", preset="ci", seeds=2, device="cpu")
    s = r.summary
    assert s["lc"] == dmf.LC_NOTE and s["task"] == "completion"
    assert s["member_status"] == ["stopped", "stopped"] and s["step"] < r.config.steps  # the loss threshold stopped them
    assert s["baseline"]["solver"] == "SCS"
    base = dmf.baseline_errors(r)
    # filling the unobserved half with zeros (depth 1) errs by ~0.5; nuclear norm errs by 0.053 and 0.021 here
    assert len(base) == 2 and max(base) < 0.1 and min(base) > 0
    for m in r.member_summaries:  # W* fits the observations, so the minimum nuclear norm is at most ||W*||_*
        assert m["nuclear_norm_baseline"]["nuclear_norm"] <= m["ground_truth"]["nuclear_norm"] * (1 + 1e-3)
    assert np.all(r.metric("train_loss")[-1] <= 1e-5)
    assert np.all(r.metric("recon_error")[-1] < 0.05)  # rank 2 of 20 x 20 from 200 entries: recovered
    assert np.all(r.metric("effective_rank")[-1] < 2.5)
    assert (r.dir / "figures" / "training.png").is_file()


def test_dynamics_velocity_matches_theory_and_figures(runs_dir, tmp_path):
    r = sims.run("dmf-dynamics", preset="ci", seeds=1, device="cpu")
    assert len(list((r.dir / "snapshots").glob("step-*.pt"))) == 9  # s, s + 1, s + e2e_span for 3 starts s
    check = checks.velocity_check(r)
    assert check["used"].sum() == 6  # 3 starts x the top rank-2 values, all balanced and moving
    assert check["max_rel_error"] <= 0.05
    assert np.all(r.metric("balancedness")[-1] < 1e-2)
    assert (r.dir / "figures" / "dynamics.png").is_file()
    other = sims.run("dmf-dynamics", preset="ci", seeds=1, device="cpu", depth=2, velocity_checks=0)
    assert plots.saved_path(arora_figures.singular_values_figure([r, other], tmp_path / "sv.png")).is_file()
    assert plots.saved_path(arora_figures.effective_rank_figure([r, other], tmp_path / "er.png")).is_file()
    with pytest.raises(ValueError, match="no snapshot pairs"):
        checks.velocity_check(other)
    from sims.claims import SweepRuns

    assert _verdict("singular-value-velocity", {"all": SweepRuns([{"depth": 3}], [r])}) == "PASS"
    big = sims.run("dmf-dynamics", preset="ci", seeds=1, device="cpu", init_scale=1.0, figures=False)
    assert not checks.velocity_check(big)["used"].any()  # a large Gaussian init is far from balanced
    assert _verdict("singular-value-velocity", {"all": SweepRuns([{"depth": 3}, {"depth": 3}], [r, big])}) == "n/a"


def test_bad_configs_fail_before_anything_is_written(runs_dir):
    with pytest.raises(ConfigError, match="rank=30 exceeds"):
        sims.run("dmf-completion", preset="ci", rank=30)
    with pytest.raises(ConfigError, match="n_obs=500 exceeds"):
        sims.run("dmf-completion", preset="ci", n_obs=500)
    with pytest.raises(ConfigError, match="depth=5 is out of range"):
        sims.run("dmf-completion", preset="ci", depth=5)
    with pytest.raises(ConfigError, match="momentum and weight_decay"):
        sims.run("dmf-completion", preset="ci", momentum=0.9)
    assert not runs_dir.exists()


def test_arora2019_claims_resolve():
    from sims.claims import get_claims

    paper = get_claims("arora2019")
    for spec in {s for c in paper.claims for s in c.runs.values()}:
        for settings in spec.settings():
            registry.resolve(registry.get(spec.sim), "default", settings)
    assert {c.id for c in paper.claims} >= {"depth3-below-nuclear-norm", "nuclear-norm-below-depth1",
                                            "depth2-not-above-nuclear-norm", "effective-rank-falls-1-2-3",
                                            "singular-value-velocity", "balance-drift-scales-with-lr",
                                            "end-to-end-trajectory", "sensing-effective-rank-falls-1-2-3"}


def test_baseline_is_cached_in_the_run_and_not_solved_again_on_resume(runs_dir, monkeypatch, interrupting):
    calls = []
    solve = matrices.nuclear_norm_completion
    monkeypatch.setattr(matrices, "nuclear_norm_completion", lambda *a, **k: calls.append(1) or solve(*a, **k))
    sim = registry.get("dmf-completion")
    monkeypatch.setitem(registry._REGISTRY, "dmf-completion", interrupting(sim, at_eval=4))
    over = dict(steps=200, n_evals=12, loss_threshold=0.0)
    with pytest.raises(engine.Interrupted):
        sims.run("dmf-completion", preset="ci", seeds=2, device="cpu", figures=False, **over)
    assert len(calls) == 2  # one solve per member
    monkeypatch.setitem(registry._REGISTRY, "dmf-completion", sim)
    [cut] = list((runs_dir / "dmf-completion").iterdir())
    assert (cut / "cache" / "nuclear_norm_baseline.pt").is_file()
    resumed = sims.resume(cut, device="cpu", figures=False)
    assert len(calls) == 2 and resumed.summary["status"] == "completed"
    assert len(dmf.baseline_errors(resumed)) == 2


# the arora2019 claims: each measure passes where the phenomenon is and fails on a control run ---------------------

def _claim(claim_id):
    from sims.claims import get_claims

    [c] = [c for c in get_claims("arora2019").claims if c.id == claim_id]
    return c


def _verdict(claim_id, runs):
    from sims.claims import evaluate

    return evaluate(_claim(claim_id), runs)["verdict"]


def _by_depth(runs):
    """{"d1": the depth-1 run (with the baseline), "deep": SweepRuns of the others}, as the claims see them."""
    from sims.claims import SweepRuns

    deep = sorted((r for r in runs if r.config.depth > 1), key=lambda r: r.config.depth)
    return {"d1": next(r for r in runs if r.config.depth == 1),
            "deep": SweepRuns([{"depth": r.config.depth} for r in deep], deep)}


def _ci_runs(sim, depths, *, seeds=2, **over):
    return [sims.run(sim, preset="ci", seeds=seeds, device="cpu", figures=False, depth=d, baseline=d == 1,
                     **over) for d in depths]


def test_completion_rank_and_error_claims_pass_and_fail_on_large_init(runs_dir):
    small = _ci_runs("dmf-completion", (1, 2, 3, 4), loss_threshold=1e-7, steps=4000)
    large = _ci_runs("dmf-completion", (3, 4), init_scale=3.0)  # no pull to low rank from a large init
    runs = _by_depth(small)
    assert _verdict("effective-rank-falls-1-2-3", runs) == "PASS"
    assert _verdict("effective-rank-depth4-not-above-depth3", runs) == "PASS"
    assert _verdict("error-depth-3", runs) == "PASS"
    control = _by_depth(small[:2] + large)
    for claim in ("effective-rank-falls-1-2-3", "error-depth-3", "depth3-below-nuclear-norm"):
        assert _verdict(claim, control) == "FAIL", claim
    # a depth 4 that does not recover W* lacks the claim's premise: n/a, never a pass
    assert _verdict("effective-rank-depth4-not-above-depth3", _by_depth(small[:3] + large[1:])) == "n/a"


def test_sensing_claims_pass_and_fail_on_large_init(runs_dir):
    small = _ci_runs("dmf-sensing", (1, 2, 3), seeds=1, loss_threshold=1e-7, steps=6000, lr=0.01)  # 0.03 bounces
    runs = _by_depth(small)
    for claim in ("sensing-error-depth-3", "sensing-depth3-not-above-nuclear-norm",
                  "sensing-nuclear-norm-below-depth1", "sensing-effective-rank-falls-1-2-3"):
        assert _verdict(claim, runs) == "PASS", claim
    control = _by_depth(small[:2] + _ci_runs("dmf-sensing", (3,), seeds=1, init_scale=3.0))
    for claim in ("sensing-error-depth-3", "sensing-depth3-not-above-nuclear-norm",
                  "sensing-effective-rank-falls-1-2-3"):
        assert _verdict(claim, control) == "FAIL", claim


def test_balance_drift_and_end_to_end_claims_pass_and_fail_on_controls(runs_dir, tmp_path):
    from sims import api

    sim = registry.get("dmf-dynamics")
    big = dict(init_scale=1.0, weight_decay=1e-3)
    members = registry.members(sim, "ci", dict(depth=3), member_overrides=[
        {}, dict(lr=0.25), big, dict(big, lr=0.25), dict(init="identity", init_scale=1e-3), dict(init_scale=1.0)])
    run = api.run_members(sim, "ci", members, device="cpu", figures=False)
    plain, half, wd, wd_half, identity, gaussian = (run.view([e]) for e in range(6))
    assert _verdict("balance-drift-scales-with-lr", dict(lr=plain, half=half)) == "PASS"
    assert _verdict("balance-drift-scales-with-lr", dict(lr=wd, half=wd_half)) == "FAIL"
    assert _verdict("end-to-end-trajectory", dict(identity=identity)) == "PASS"
    assert _verdict("end-to-end-trajectory", dict(identity=gaussian)) == "FAIL"
    assert identity.metric("balancedness")[0, 0] == 0  # the identity init is balanced exactly
    assert plots.saved_path(arora_figures.balance_figure(dict(lr=plain, half=half, wd=wd, wd_half=wd_half, identity=identity,
                                                    gaussian=gaussian), tmp_path / "balance.png")).is_file()
    with pytest.raises(ValueError, match="plain full-batch GD"):
        checks.end_to_end_check(wd)
