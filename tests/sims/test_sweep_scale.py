"""Sweeps at scale: hyperparameters as ensemble members (per-member lr and weight decay in the optimisers),
a worker killed mid-group, and resuming a sweep."""

import csv
import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import sims
from sims import optim
from sims import sweep as sw

F64 = torch.float64


def _params(E, g):
    return [torch.nn.Parameter(torch.randn(E, 3, 4, generator=g, dtype=F64)),
            torch.nn.Parameter(torch.randn(E, 1, 4, generator=g, dtype=F64))]


def _singles(big):
    """Each member's slice of the ensemble parameters as its own one-member parameters."""
    return [[torch.nn.Parameter(p.detach()[e:e + 1].clone()) for p in big] for e in range(big[0].shape[0])]


def _step_together(opt, big, refs, singles, g, steps):
    """`steps` steps of the ensemble optimiser and of each member's reference on the same random gradients;
    then every member's parameters must equal its reference's."""
    for _ in range(steps):
        grads = [torch.randn(p.shape, generator=g, dtype=F64) for p in big]
        for p, gr in zip(big, grads):
            p.grad = gr.clone()
        for e, s in enumerate(singles):
            for p, gr in zip(s, grads):
                p.grad = gr[e:e + 1].clone()
        opt.step()
        for r in refs:
            r.step()
    for e, s in enumerate(singles):
        for p, q in zip(big, s):
            torch.testing.assert_close(p.detach()[e:e + 1], q.detach(), rtol=1e-12, atol=1e-14)


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(["sgd", "adamw"]), E=st.integers(2, 4), momentum=st.sampled_from([0.0, 0.9]),
       seed=st.integers(0, 1000))
def test_per_member_lr_and_weight_decay_equal_separate_optimisers(name, E, momentum, seed):
    g = torch.Generator().manual_seed(seed)
    lr = (torch.rand(E, generator=g, dtype=F64) * 0.1 + 0.01).tolist()
    wd = (torch.rand(E, generator=g, dtype=F64) * 0.05).tolist()
    big = _params(E, g)
    singles = _singles(big)
    opt = optim.make(name, big, lr, wd, momentum)
    assert type(opt).__name__.startswith("Ensemble")
    refs = [optim.make(name, s, [lr[e]], [wd[e]], momentum) for e, s in enumerate(singles)]
    assert all(isinstance(r, (torch.optim.SGD, torch.optim.AdamW)) for r in refs)  # torch's own update for one member
    _step_together(opt, big, refs, singles, g, steps=4)


def test_per_member_rmsprop_lr_equals_separate_runs():
    g = torch.Generator().manual_seed(1)
    big = _params(3, g)
    singles = _singles(big)
    lr = [0.1, 0.01, 0.3]
    opt = optim.ScalarRMSprop(big, lr=lr)
    refs = [optim.ScalarRMSprop(s, lr=lr[e]) for e, s in enumerate(singles)]
    _step_together(opt, big, refs, singles, g, steps=3)


@pytest.mark.parametrize("name,grid", [
    ("xor-cluster", {"lr": [0.1, 0.3], "init_scale": [1e-4, 1e-2]}),
    ("dmf-completion", {"lr": [0.02, 0.05], "init_scale": [1e-4, 1e-3]}),
])
def test_a_hyperparameter_grid_runs_as_one_ensemble_equal_to_separate_runs(tmp_path, name, grid):
    base = dict(steps=25, n_evals=6, dtype="float64")
    base.update(dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0, lc=False) if name == "xor-cluster" else dict(baseline=False, loss_threshold=0.0))
    index = sw.sweep(name, grid, preset="ci", base=base, out=tmp_path / "sweep", device="cpu", threads=1)
    [group] = index["groups"]
    assert group["status"] == "completed" and len(group["members"]) == np.prod([len(v) for v in grid.values()])
    run = sims.load(group["dir"])
    for e, over in enumerate(group["members"]):
        one = sims.run(name, preset="ci", device="cpu", out=tmp_path / "one", figures=False, threads=1,
                       **{**base, **over})
        for metric in one.metric_names:
            np.testing.assert_allclose(run.metric(metric)[:, e], one.metric(metric)[:, 0], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{metric} of member {over}")


def test_a_worker_killed_mid_group_loses_no_point(tmp_path):
    pytest.importorskip("dask.distributed")
    out = tmp_path / "sweep"
    base = dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0, lc=False, steps=2000, n_evals=200, checkpoint_every=2)
    result = {}

    def run():
        result["index"] = sw.sweep("xor-cluster", {"width": [8, 16]}, preset="ci", seeds=2, base=base, out=out,
                                   device="cpu", workers=2, threads=1)

    t = threading.Thread(target=run)
    t.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and t.is_alive():
        for lock in out.glob("runs/*/lock"):
            ckpt = lock.parent / "checkpoint.pt"
            if ckpt.exists():  # mid-group, after its first checkpoint
                killed = json.loads(lock.read_text())["pid"]
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.1)
    t.join(timeout=300)
    assert killed is not None, "no worker was caught mid-group"
    index = result["index"]
    assert [g["status"] for g in index["groups"]] == ["completed", "completed"]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    for g in index["groups"]:
        run = sims.load(g["dir"])
        assert run.steps[-1] == 2000 and len(run.steps) == len(set(run.steps))
