"""The ensemble contract holds for every trained setting: a member that diverges is frozen before any metric
touches it, its metrics are null from then on, and the other members are exactly what they would have been."""

import warnings

import numpy as np
import pytest
import torch

import sims
from sims import registry

TRAINED = [n for n in registry.names() if registry.get(n).kind == "trained"]
SHORT = dict(steps=30, n_evals=8)


def _poisoned(sim, member: int, after: int):
    """`sim` whose training loss of `member` turns NaN after `after` calls: its gradient and then its parameters
    become NaN during training, wherever the setting's loss comes from."""

    def build(members, env):
        task = sim.build(members, env)
        inner, calls = task.loss, [0]

        def loss(out, y):
            value = inner(out, y)
            calls[0] += 1
            if calls[0] > after:
                poison = torch.ones_like(value)
                poison[member] = float("nan")
                value = value * poison
            return value

        task.loss = loss
        return task

    return registry.Simulation(**{**sim.__dict__, "build": build})


@pytest.mark.parametrize("name", TRAINED)
def test_a_diverging_member_is_frozen_and_the_others_are_untouched(runs_dir, monkeypatch, name):
    sim = registry.get(name)
    over = dict(SHORT, seed=4, **(dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0) if name == "xor-cluster" else {}))
    if "lc" in sim.config_cls.__dataclass_fields__:
        over["lc"] = False
    if "loss_threshold" in sim.config_cls.__dataclass_fields__:
        over["loss_threshold"] = 0.0
    clean = sims.run(name, preset="ci", seeds=2, device="cpu", threads=1, figures=False, **over)
    monkeypatch.setitem(registry._REGISTRY, name, _poisoned(sim, member=1, after=5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the figures are drawn, with the diverged member in them
        bad = sims.run(name, preset="ci", seeds=2, device="cpu", threads=1, figures=True, **over)
    s = bad.summary
    assert s["status"] == "completed" and s["member_status"] == ["completed", "diverged"]
    at = s["ended"][1]["step"]
    later = bad.steps >= at
    for metric in bad.metric_names:
        v = bad.metric(metric)
        assert np.isnan(v[later, 1]).all(), f"{name}: {metric} of the diverged member is not null"
        np.testing.assert_array_equal(v[:, 0], clean.metric(metric)[:, 0], err_msg=f"{name}: {metric}")
    assert (bad.dir / "figures").is_dir()


def test_weights_that_overflow_with_a_finite_loss_are_a_divergence(runs_dir):
    r = sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", threads=1, lc=False, steps=20, n_evals=6,
                 lr=1e38, **dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0))
    assert r.summary["status"] == "diverged" and r.summary["member_status"] == ["diverged", "diverged"]
    assert r.summary["ended"][0]["step"] == 1
