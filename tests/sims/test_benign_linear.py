"""benign-regression, benign-max-margin, svm-proliferation and double-descent: the data generators, the exact mixture
error, theory against simulation (isotropic closed form, support-vector proliferation), members against single runs
(member-wise flip rates and cluster separations), and the benign-linear claims at the ci preset."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import sims
from sims import metrics, registry
from sims.claims.runner import reproduce
from sims.config import ConfigError
from sims.data import gaussian_mixture, linear_teacher, sign_teacher
from sims.engine import Env
from sims.settings.linear import double_descent
from sims.settings.linear import svm_proliferation

CPU, F64 = torch.device("cpu"), torch.float64


def test_teachers():
    g = torch.Generator().manual_seed(0)
    x, y = sign_teacher(50, 7, generator=g)
    assert x.shape == (50, 7) and torch.equal(y, torch.where(x[:, 0] >= 0, 1.0, -1.0).double())
    beta_a, xa, ya = linear_teacher(30, 5, 0.0, generator=torch.Generator().manual_seed(3))
    beta_b, _, _ = linear_teacher(80, 5, 0.3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(beta_a, beta_b)  # the teacher does not depend on n
    assert beta_a.norm().item() == pytest.approx(1.0) and torch.allclose(ya, xa @ beta_a)


@settings(max_examples=10, deadline=None)
@given(mu=st.floats(0.0, 4.0), eta=st.floats(0.0, 0.4), seed=st.integers(0, 1000))
def test_mixture_error_is_exact(mu, eta, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(2, 6, generator=g, dtype=F64)
    x, y, _ = gaussian_mixture(40000, 6, mu, eta, generator=g)
    sampled = (torch.sign(x @ w.T) != y[:, None]).double().mean(dim=0)  # [2]
    exact = metrics.mixture_error(w, torch.tensor([mu, mu]), eta)
    assert torch.all((sampled - exact).abs() <= 4 * (0.25 / 40000) ** 0.5 + 1e-12), (sampled, exact)
    assert metrics.mixture_error(torch.zeros(1, 6, dtype=F64), mu, eta).item() == pytest.approx(0.5)


def test_benign_regression_members_and_isotropic_closed_form(runs_dir):
    over = dict(spectrum="isotropic", d=300, n_min=10, n_max=80, n_points=3, n_trials=20)
    many = sims.run("benign-regression", preset="ci", seeds=3, device="cpu", figures=False, **over)
    one = sims.run("benign-regression", preset="ci", seeds=1, device="cpu", figures=False, **dict(over, seed=1))
    np.testing.assert_array_equal(many.metric("excess_risk")[:, 1], one.metric("excess_risk")[:, 0])
    measured, exact = many.metric("excess_risk").mean(axis=1), many.metric("closed_form")[:, 0]
    np.testing.assert_allclose(measured, exact, rtol=0.03)  # 60 draws per n; the spread is ~0.5% of the risk here
    assert np.all(many.metric("k_star")[:, 0] == 0)  # r_0 = d >= n: k* = 0, and the bias term stays ~||theta||^2


def test_benign_regression_config_errors():
    sim = registry.get("benign-regression")
    with pytest.raises(ConfigError, match="must be below d - 1"):
        registry.resolve(sim, "ci", {"n_max": 399})
    with pytest.raises(ConfigError, match="spectrum"):
        registry.resolve(sim, "ci", {"spectrum": "flat"})


def _svm_fraction(n, d, seeds):
    sim = registry.get("svm-proliferation")
    members = registry.members(sim, "ci", {"n": n}, seeds=seeds)
    return np.array(sim.build(members, Env(CPU, F64)).evaluate(0, {"d": d})["sv_fraction"])


@settings(max_examples=8, deadline=None)
@given(n=st.integers(6, 16))
def test_support_vectors_all_points_far_above_the_threshold_and_not_near_n(n):
    far = int(4 * svm_proliferation.threshold(n))
    assert np.all(_svm_fraction(n, far, 5) == 1.0)  # every point a support vector, every repetition
    assert _svm_fraction(n, n, 10).mean() < 1.0  # near d = n some points are not


def test_max_margin_members_with_memberwise_flip_rates_and_separations(runs_dir):
    sim = registry.get("benign-max-margin")
    over = dict(n=12, d=150, steps=30, n_evals=6)
    mixed = [dict(seed=0, noise_rate=0.0, mu_norm=5.0), dict(seed=1, noise_rate=0.2, mu_norm=5.0),
             dict(seed=1, noise_rate=0.2, mu_norm=8.0)]
    many = sims.api.run_members(sim, "ci", registry.members(sim, "ci", over, member_overrides=mixed), device="cpu",
                                figures=False)
    for e, m in enumerate(mixed):
        one = sims.run("benign-max-margin", preset="ci", device="cpu", figures=False, **over, **m)
        for name in ("mm_cosine", "test_error", "train_acc", "margin_ratio"):
            np.testing.assert_allclose(many.metric(name)[:, e], one.metric(name)[:, 0], rtol=1e-10, atol=1e-12)
        assert many.member_summaries[e]["n_support"] == one.member_summaries[0]["n_support"]
    cos = many.metric("mm_cosine")
    assert np.all(cos[-1] > cos[1]) and np.all(many.metric("test_error")[-1] >= np.array([0.0, 0.2, 0.2]) - 1e-12)


def test_double_descent_members_interpolation_and_tuning(runs_dir):
    over = dict(n=20, d=5, n_val=20, n_test=200, p_min=5, p_max=80, n_points=6, n_lams=9)
    many = sims.run("double-descent", preset="ci", seeds=2, device="cpu", figures=False, **over)
    one = sims.run("double-descent", preset="ci", seeds=1, device="cpu", figures=False, **dict(over, seed=1))
    for name in many.metric_names:
        np.testing.assert_array_equal(many.metric(name)[:, 1], one.metric(name)[:, 0])
    p = many.metric("p")[:, 0]
    fitted = many.metric("train_mse_min_norm")
    assert np.all(fitted[p >= 20] < 1e-20) and np.all(fitted[p < 20] > 1e-3)  # interpolation exactly from p = n
    assert np.all(many.metric("lam_tuned") >= 0)


def test_curve_measures():
    assert double_descent.largest_rise(np.array([3.0, 2.0, 2.0, 1.0])) == 0.0
    assert double_descent.largest_rise(np.array([2.0, 1.0, 1.5, 0.5])) == pytest.approx(0.5)
    assert double_descent.peak_ratio(np.array([10, 50, 200]), np.array([1.0, 3.0, 2.0]), 100) == pytest.approx(2.0)
    assert math.isclose(svm_proliferation.threshold(64), 2 * 64 * math.log(64))


def test_benign_linear_claims_run_at_ci(tmp_path):
    report = reproduce("benign-linear", preset="ci", out=tmp_path / "bl", device="cpu", log=lambda msg: None)
    assert not report["run_failures"]
    rows = {row["id"]: row for row in report["rows"]}
    assert all(np.isfinite(row["measured"]) for row in rows.values())
    assert rows["isotropic-matches-closed-form"]["verdict"] == "PASS"
    assert rows["svm-all-support-vectors"]["verdict"] == "PASS"
    assert {"benign-linear-risk-vs-n.png", "benign-linear-test-error-vs-flip-rate.png"} <= set(report["figures"])
